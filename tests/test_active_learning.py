"""An active-learning round on a copy of the shared tiny run (conftest.tiny_run): reviewed dev
photographs join the training table, exclusions drop, and everything the labels reach reruns."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from conftest import CORES, ENSEMBLE, TINY_CONFIG, planned_jobs, run_snakemake, write_config

from hybridwing.cli import main as cli_main


def test_an_active_learning_round_reruns_what_the_labels_reach_and_is_recorded(tiny_run, tmp_path):
    """Round 2: dev photographs from `hybridwing review` (labels kept, the mimic species' rows left
    out as a curator would) join the training table, two training photographs are excluded, and the
    round trains an ensemble of two; everything after the metadata reruns, nothing before it, the
    old checkpoint is not resumed, and rounds.csv holds both rounds."""
    shutil.copytree(tiny_run, tmp_path, dirs_exist_ok=True, symlinks=True)
    batch_path = tmp_path / "round_2_labels.csv"
    taxa = tmp_path / "resources/synthetic/taxa.csv"
    assert (
        cli_main(
            [
                "review",
                "dev",
                "--results",
                str(tmp_path / "results"),
                "--taxa",
                str(taxa),
                "--count",
                "8",
                "--out",
                str(batch_path),
            ]
        )
        == 0
    )
    batch = pd.read_csv(batch_path, dtype=str, keep_default_na=False)
    assert len(batch) == 8 and set(batch["band"]) <= {"B", "C"}
    labelled = batch[(batch["subspecies"] != "") | (batch["parent_subspecies_2"] != "")]
    labelled.to_csv(batch_path, index=False)
    splits = pd.read_csv(tmp_path / "results/data/splits.csv")
    excluded = splits.loc[splits["split"] == "train", "image_id"].head(2).tolist()
    (tmp_path / "exclude.csv").write_text(
        "image_id,reason\n" + "".join(f"{image_id},blurred\n" for image_id in excluded)
    )

    round_2 = TINY_CONFIG | {
        "dataset": TINY_CONFIG["dataset"] | {"extra_labels": str(batch_path), "exclude": str(tmp_path / "exclude.csv")},
        "finetune": TINY_CONFIG["finetune"] | ENSEMBLE,
    }
    planned = planned_jobs(tmp_path, round_2)
    assert "synthesize" not in planned and planned["fetch"] == 1, "only the reviewed labels are fetched"
    assert {"metadata", "split", "train_unet", "finetune", "score", "embed", "triage", "label_issues", "rounds"} <= set(
        planned
    )
    result = run_snakemake(tmp_path, *CORES, "--configfile", str(write_config(tmp_path, round_2)))
    assert result.returncode == 0, result.stdout[-3000:]
    assert "reviewed labels: %d images" % len(labelled) in (tmp_path / "logs/metadata.log").read_text()
    metadata = pd.read_csv(tmp_path / "results/data/metadata.csv")
    assert not set(excluded) & set(metadata["image_id"])
    moved = metadata[metadata["image_id"].isin(labelled["filename"].str.removesuffix(".jpg"))]
    assert len(moved) == len(labelled) and set(moved["source"]) == {"train"}
    dev = json.loads((tmp_path / "results/score/dev/metrics.json").read_text())
    assert dev["n_images"] == 20 - len(labelled)
    log = (tmp_path / "logs/finetune.log").read_text()
    assert (
        "ignoring resources/checkpoints/finetune.pt: it was written for other settings, classes, image contents or code"
        in log
    )
    model_dir = tmp_path / "results/finetune/model"
    inference = json.loads((model_dir / "inference.json").read_text())
    assert (
        inference["weights"] == ["weights.safetensors", "weights_1.safetensors"] and inference["flip_average"] is True
    )
    finetuned = json.loads((tmp_path / "results/finetune/metrics.json").read_text())
    assert finetuned["ensemble"] == 2 and finetuned["temperature"] == inference["temperature"] > 0
    assert set(pd.read_csv(tmp_path / "results/finetune/history.csv")["member"]) == {0, 1}
    members = np.load(tmp_path / "results/embed/dev/member_probabilities.npy")
    triage = pd.read_csv(tmp_path / "results/review/dev/triage.csv")
    assert members.shape[0] == 2 and (triage["variation_ratio"] > 0).tolist() == list(
        members.argmax(-1).min(0) != members.argmax(-1).max(0)
    )
    rounds = pd.read_csv(tmp_path / "results/review/rounds.csv")
    assert rounds["round"].nunique() == 2 and rounds.groupby("round")[
        "extra_labels"
    ].first().sort_values().tolist() == [0, len(labelled)]
    assert planned_jobs(tmp_path, round_2) == {}, "the round is complete"


def test_a_rerun_of_a_round_keeps_the_first_runs_scores(tmp_path):
    """Snakemake removes round-0.json before a rerun; the history keeps both runs in rounds.csv."""
    from hybridwing.review.rounds import rounds_step

    embed, triage = tmp_path / "embed.json", tmp_path / "dev" / "triage.csv"
    embed.write_text(json.dumps({"table": "dev", "knn1_cosine_subspecies": 0.7}))
    triage.parent.mkdir()
    pd.DataFrame({"band": ["A", "C"]}).to_csv(triage, index=False)
    outputs = {name: str(tmp_path / "results" / name) for name in ("round-0.json", "rounds.csv", "rounds.png")}
    (tmp_path / "results").mkdir()
    history = tmp_path / "resources/review/rounds.jsonl"
    for run, score in enumerate((0.41, 0.47)):
        metrics = tmp_path / f"score{run}.json"
        metrics.write_text(json.dumps({"table": "dev", "challenge_score": score, "prc_auc": 0.5}))
        Path(outputs["round-0.json"]).unlink(missing_ok=True)  # as Snakemake does before a rerun
        rounds_step("round-0", [str(metrics)], [str(embed)], [str(triage)], None, None, *outputs.values(), str(history))
    table = pd.read_csv(outputs["rounds.csv"])
    scores = table[table["metric"] == "challenge_score"]
    assert scores["value"].tolist() == [0.41, 0.47] and set(scores["round"]) == {"round-0"}
    assert json.loads(Path(outputs["round-0.json"]).read_text())["scores"]["dev"]["challenge_score"] == 0.47
    assert len(history.read_text().splitlines()) == 2
