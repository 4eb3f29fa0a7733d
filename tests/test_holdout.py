"""The held-out-cross validation: which crosses are held out, what the held-out model never trains on,
and how each held-out cross is measured."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hybridwing.holdout.pairs import holdout_pairs, plan_validation_crosses, thinned_parents
from hybridwing.holdout.rows import held_out_hybrids
from hybridwing.holdout.validation import cross_metrics


def training_table() -> pd.DataFrame:
    """Four subspecies of one species (rare to common), one of another, a real cross of the two commonest."""
    rows = []
    for label, n_train, n_held in (
        ("rare", 2, 2),
        ("scarce", 4, 2),
        ("common", 30, 6),
        ("abundant", 50, 8),
        ("solo", 5, 0),
    ):
        species = "melpomene" if label == "solo" else "erato"
        rows += [
            {
                "image_id": f"{label}{k}",
                "label": label,
                "species": species,
                "split": "train" if k < n_train else "val",
                "parent_1": "",
                "parent_2": "",
            }
            for k in range(n_train + n_held)
        ]
    rows += [
        {
            "image_id": f"hyb{k}",
            "label": "hybrid",
            "species": "erato",
            "split": "train",
            "parent_1": "abundant",
            "parent_2": "common",
        }
        for k in range(5)
    ]
    return pd.DataFrame(rows)


def test_the_held_out_crosses_are_the_real_one_and_pairs_of_rare_parents():
    images = training_table()
    usable = set(images["image_id"])
    pairs = holdout_pairs(images, usable, count=2)
    # the rarest parents first; no subspecies in two pairs; the real cross is never composed again
    assert pairs.values.tolist() == [["abundant", "common", "real"], ["rare", "scarce", "composed"]]
    without_rare_val = usable - {"rare2", "rare3"}
    assert "rare" not in set(holdout_pairs(images, without_rare_val, count=2)[["parent_1", "parent_2"]].values.ravel())


def test_no_photograph_of_a_held_out_cross_reaches_the_held_out_model():
    """The held-out model's training set keeps every non-hybrid and the other composites, and loses
    the real crosses (and their copies) and the composites of the held-out pairs."""
    manifest = pd.DataFrame(
        {
            "path": [f"p{k}" for k in range(7)],
            "class": ["rare", "common", "hybrid", "hybrid", "hybrid", "hybrid", "hybrid"],
            "recipe": ["original", "original", "original", "{}", '{"cross": "x"}', '{"cross": "y"}', '{"cross": "z"}'],
            "parent_1": ["", "", "abundant", "abundant", "scarce", "rare", "common"],
            "parent_2": ["", "", "common", "common", "rare", "abundant", "abundant"],
        }
    )
    pairs = pd.DataFrame(
        {"parent_1": ["abundant", "rare"], "parent_2": ["common", "scarce"], "kind": ["real", "composed"]}
    )
    held_out = held_out_hybrids(manifest, pairs)
    assert held_out["path"].tolist() == ["p2", "p3", "p4", "p6"]


def test_thinning_leaves_each_real_parent_a_few_train_photographs_and_touches_nothing_else():
    images = training_table()
    pairs = holdout_pairs(images, set(images["image_id"]), count=1)
    left_out = thinned_parents(images, pairs, keep=3, seed=0)
    train = images[images["split"] == "train"]
    kept = train[~train["image_id"].isin(left_out["image_id"])]["label"].value_counts()
    assert kept["abundant"] == 3 and kept["common"] == 3, "each parent of the real cross keeps 3"
    assert kept["rare"] == 2 and kept["scarce"] == 4 and kept["hybrid"] == 5, "other subspecies keep all"
    assert set(images.set_index("image_id").loc[left_out["image_id"], "split"]) == {"train"}
    assert left_out.equals(thinned_parents(images, pairs, keep=3, seed=0)), "the draw repeats with the seed"
    assert not left_out.equals(thinned_parents(images, pairs, keep=3, seed=1))
    assert thinned_parents(images, pairs, keep=0, seed=0).empty, "0 keeps every photograph"


def test_validation_composites_come_from_val_photographs_of_the_pair_in_both_orders():
    images = training_table()
    held = images[(images["split"] != "train") & (images["label"] != "hybrid")]
    pairs = pd.DataFrame({"parent_1": ["rare"], "parent_2": ["scarce"], "kind": ["composed"]})
    plan = plan_validation_crosses(held, pairs, per_pair=8, seed=0)
    assert len(plan) == 8 and not plan.duplicated(["source_image", "partner"]).any()
    assert set(plan["source_image"]) | set(plan["partner"]) <= set(held["image_id"])
    assert {tuple(p) for p in plan[["parent_1", "parent_2"]].values} == {("rare", "scarce"), ("scarce", "rare")}


def test_cross_metrics_threshold_recall_auc_and_parents():
    negatives = pd.DataFrame(
        {
            "is_hybrid": False,
            "cross": "",
            "kind": "non-hybrid",
            "hybrid_score": np.linspace(0, 0.5, 20),
            "subspecies": "rare",
            "top2": "common",
        }
    )
    found = pd.DataFrame(
        {
            "is_hybrid": True,
            "cross": "rare x scarce",
            "kind": "composed",
            "hybrid_score": [0.9, 0.95, 0.2, 0.99],
            "subspecies": ["rare", "scarce", "rare", "common"],
            "top2": ["scarce", "rare", "common", "rare"],
        }
    )
    metrics = cross_metrics(pd.concat([negatives, found], ignore_index=True), "hybrid_score")
    assert metrics["threshold"] == np.linspace(0, 0.5, 20)[18]
    cross = metrics["crosses"]["rare x scarce"]
    assert cross["recall"] == 0.75 and cross["top2_are_parents"] == 0.5 and cross["n_images"] == 4
    assert (
        cross["roc_auc"] == pytest.approx(68 / 80)
        and metrics["holdout_recall"] == 0.75
        and metrics["real_cross_recall"] is None
    )


def test_asking_for_more_held_out_pairs_or_thinner_parents_than_there_are_says_so(caplog):
    labels = ["malleti"] * 3 + ["lativitta"] * 3 + ["cyrbia"] * 3
    images = pd.DataFrame(
        {"image_id": [f"i{k}" for k in range(9)], "label": labels, "species": ["erato"] * 6 + ["melpomene"] * 3}
    ).assign(split=["train", "val", "test"] * 3, parent_1="", parent_2="")
    hybrids = pd.DataFrame(
        {"image_id": ["h0"], "label": ["hybrid"], "species": ["erato"], "split": ["train"]}
        | {"parent_1": ["malleti"], "parent_2": ["lativitta"]}
    )
    images = pd.concat([images, hybrids], ignore_index=True)
    with caplog.at_level("WARNING"):
        pairs = holdout_pairs(images, set(images["image_id"]), 20)
        thinned_parents(images, pairs, 100_000, 0)
    assert "holdout.pairs asks for 20 composed pairs; only 0 can be composed" in caplog.text
    assert "holdout.thin_parents 100000: lativitta has 1 TRAIN photographs, so none is left out" in caplog.text
