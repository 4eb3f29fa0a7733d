"""The held-out model (the holdout block) on a copy of the shared tiny run (conftest.tiny_run): trained
without the real cross and the held-out pairs, and scored on them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
from conftest import CORES, TINY_CONFIG, planned_jobs, run_snakemake, write_config
from PIL import Image


def test_the_held_out_model_is_scored_on_crosses_it_never_saw(tiny_run, tmp_path):
    """With the holdout block, a second model trains without the real cross and the held-out pairs
    (none of their photographs or composites), on a set balanced again from 2 TRAIN photographs of
    each real parent (thin_parents), and holdout_score scores it on them."""
    shutil.copytree(tiny_run, tmp_path, dirs_exist_ok=True, symlinks=True)
    holdout = {"pairs": 2, "per_pair": 3, "thin_parents": 2}
    held = TINY_CONFIG | {"holdout": holdout}
    config = write_config(tmp_path, held)
    shards = len(list((tmp_path / "results/balance/shards").iterdir()))
    assert planned_jobs(tmp_path, held) == {
        "holdout_pairs": 1,
        "augment_holdout": shards,
        "balance_holdout": 1,
        "holdout_rows": 1,
        "finetune_holdout": 1,
        "holdout_score": 1,
        "all": 1,
    }, "the main model is not retrained"
    result = run_snakemake(tmp_path, *CORES, "--configfile", str(config))
    assert result.returncode == 0, result.stdout[-3000:]
    pairs = pd.read_csv(tmp_path / "results/holdout/pairs.csv")
    assert pairs["kind"].tolist()[0] == "real" and (pairs["kind"] == "composed").sum() >= 1
    left_out = pd.read_csv(tmp_path / "results/holdout/thinned_parents.csv")["image_id"]
    manifest = pd.read_csv(tmp_path / "results/holdout/balance/manifest.csv", keep_default_na=False)
    originals = manifest[manifest["recipe"] == "original"]
    real = pairs[pairs["kind"] == "real"].iloc[0]
    assert len(left_out) and originals["class"].value_counts()[[real["parent_1"], real["parent_2"]]].max() == 2
    stems = manifest["path"].map(lambda path: Path(path).stem)
    partners = stems[stems.str.contains("_x_")].str.split("_x_").str[1].str.rsplit("_", n=1).str[0]
    assert len(partners) and not manifest["source_image"].isin(left_out).any(), "no copy of a left-out photograph"
    assert not partners.isin(left_out).any(), "no composite of one either"
    assert (manifest["class"].value_counts().drop("hybrid") >= 12).all(), "every class balanced again"
    log = (tmp_path / "logs/holdout/rows.log").read_text()
    assert "held-out model:" in log and "every hybrid of" in log
    held_out = pd.read_csv(tmp_path / "results/holdout/held_out_rows.csv", keep_default_na=False)
    assert len(held_out) and (held_out["class"] == "hybrid").all()
    assert "training images held out" in (tmp_path / "logs/holdout/finetune.log").read_text()
    metrics = json.loads((tmp_path / "results/holdout/metrics.json").read_text())
    crosses = metrics["crosses"]
    assert {values["kind"] for values in crosses.values()} == {"real", "composed"}
    assert all(0 <= values["roc_auc"] <= 1 for values in crosses.values()) and metrics["n_non_hybrids"] > 0
    assert set(metrics["alternatives"]) == {"one_minus_max_p", "p_hybrid", "entropy", "probability_filter"}
    with Image.open(tmp_path / "results/holdout/recall.png") as figure:
        assert figure.width > 400, "the report's figure of the held-out crosses"
    predictions = pd.read_csv(tmp_path / "results/holdout/predictions.csv", keep_default_na=False)
    splits = pd.read_csv(tmp_path / "results/data/splits.csv").set_index("image_id")["split"]
    composed = predictions[predictions["kind"] == "composed"]
    sources = pd.concat([composed["image_id"].str.split("_x_").str[0], composed["image_id"].str.split("_x_").str[1]])
    assert len(composed) and set(splits[sources]) <= {"val", "test"}, (
        "validation composites never use a TRAIN photograph"
    )
