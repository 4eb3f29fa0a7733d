"""Which crosses the held-out model never sees, which TRAIN photographs it leaves out, and the
validation composites of the held-out pairs."""

from __future__ import annotations

import itertools
import logging

import numpy as np
import pandas as pd

from hybridwing.balance.crosses import pair_key, pair_seed
from hybridwing.classes import HYBRID_CLASS

log = logging.getLogger(__name__)


def holdout_pairs(images: pd.DataFrame, usable: set[str], count: int) -> pd.DataFrame:
    """The crosses the held-out model never sees: every real cross of the training table, and the
    `count` pairs of subspecies (of one species) with the rarest parents in the TRAIN split among
    those whose two parents both have val/test photographs to compose from (`usable`: image ids
    with a gap between their wing rows), no subspecies in two of them. Columns: parent_1, parent_2,
    kind (real | composed).

    `images` holds the training table's images: image_id, label, species, split, parent_1, parent_2."""
    real = images[images["label"] == HYBRID_CLASS]
    real_pairs = sorted({pair_key(a, b) for a, b in zip(real["parent_1"], real["parent_2"])})
    non_hybrids = images[images["label"] != HYBRID_CLASS]
    train_counts = non_hybrids[non_hybrids["split"] == "train"]["label"].value_counts()
    held = non_hybrids[(non_hybrids["split"] != "train") & non_hybrids["image_id"].isin(usable)]
    rows = []
    for _, group in held.groupby("species", sort=True):
        names = sorted(set(group["label"]) & set(train_counts.index))
        rows += [
            (min(train_counts[a], train_counts[b]), train_counts[a] + train_counts[b], a, b)
            for a, b in itertools.combinations(names, 2)
            if (a, b) not in real_pairs
        ]
    chosen, used = [], set()
    for *_, a, b in sorted(rows):  # rarest parent first, each subspecies in one pair at most
        if len(chosen) < count and not {a, b} & used:
            chosen.append((a, b))
            used |= {a, b}
    if len(chosen) < count:
        log.warning(
            "holdout.pairs asks for %d composed pairs; only %d can be composed (pairs of one species whose "
            "parents both have val/test photographs with a gap between the wing rows, no subspecies twice)",
            count,
            len(chosen),
        )
    return pd.DataFrame(
        [(a, b, "real") for a, b in real_pairs] + [(a, b, "composed") for a, b in chosen],
        columns=["parent_1", "parent_2", "kind"],
    )


def thinned_parents(images: pd.DataFrame, pairs: pd.DataFrame, keep: int, seed: int) -> pd.DataFrame:
    """The TRAIN photographs the held-out model leaves out so that each parent of a real held-out
    cross keeps only `keep` of its own (drawn by `seed`; 0 keeps all). Columns: image_id, label."""
    parents = sorted(set(pairs.loc[pairs["kind"] == "real", ["parent_1", "parent_2"]].to_numpy().ravel()))
    train = images[(images["split"] == "train") & images["label"].isin(parents)]
    left_out = []
    for label in [label for label in parents if keep and (train["label"] == label).sum() <= keep]:
        log.warning(
            "holdout.thin_parents %d: %s has %d TRAIN photographs, so none is left out",
            keep,
            label,
            (train["label"] == label).sum(),
        )
    for label in parents if keep else []:
        ids = sorted(train.loc[train["label"] == label, "image_id"])
        order = np.random.default_rng(pair_seed(seed, label, label, keep)).permutation(len(ids))
        left_out += [(ids[k], label) for k in sorted(order[keep:])]
    return pd.DataFrame(left_out, columns=["image_id", "label"])


def plan_validation_crosses(held: pd.DataFrame, pairs: pd.DataFrame, per_pair: int, seed: int) -> pd.DataFrame:
    """`per_pair` composites of each composed held-out pair from val/test photographs (`held`:
    image_id, label of the usable ones), alternating which parent gives the forewings and drawing
    without repeats while distinct pairs of photographs last."""
    rows = []
    by_label = {label: sorted(group["image_id"]) for label, group in held.groupby("label")}
    for pair in pairs[pairs["kind"] == "composed"].itertuples():
        orders = [(pair.parent_1, pair.parent_2), (pair.parent_2, pair.parent_1)]
        combinations = [(order, a, b) for order in orders for a in by_label[order[0]] for b in by_label[order[1]]]
        draw = np.random.default_rng(pair_seed(seed, pair.parent_1, pair.parent_2, 0))
        for number, k in enumerate(draw.permutation(len(combinations))[:per_pair]):
            (fore, hind), source, partner = combinations[k]
            rows.append(
                {"source_image": source, "partner": partner, "parent_1": fore, "parent_2": hind, "copy": number}
            )
    return pd.DataFrame(rows, columns=["source_image", "partner", "parent_1", "parent_2", "copy"])
