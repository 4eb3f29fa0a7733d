"""Which inference settings detect hybrids best, measured on one finished run's model folders.

Each model folder's members (and every member of an ensemble folder) are run once over the
validation split and every evaluation table, on the images and their mirror images; then every
combination is scored from those logits: each member alone, the ensemble (probabilities averaged),
with and without the flip, at temperature 1 and at the temperature fitted on validation, and for
each of the hybrid scores. Settings are to be chosen on validation; the evaluation tables are
reported beside it.

Usage: python bench/hybrid_levers.py RUN_DIR [LABEL=MODEL_DIR ...]
(default: the run's results/finetune/model). Writes results/bench/hybrid_levers.csv and prints it.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from hybridwing.data.tables import read_metadata
from hybridwing.hybrid_scores import SCORE_NAMES, hybrid_scores
from hybridwing.model.inference import ensemble_probabilities, fit_temperature
from hybridwing.score.challenge import hybrid_metrics
from hybridwing.score.predictor import Predictor
from hybridwing.score.steps import scored_rows

REPO = Path(__file__).resolve().parents[1]


def logits_by_table(predictor: Predictor, tables: dict[str, pd.DataFrame]) -> dict[str, np.ndarray]:
    """(members, 2 views, images, classes) logits of every table."""
    return {
        name: predictor.member_logits_of_files(rows["path"].tolist(), flip_average=True)
        for name, rows in tables.items()
    }


def main() -> None:
    run = Path(sys.argv[1]).resolve()
    folders = dict(argument.split("=", 1) for argument in sys.argv[2:]) or {
        "model": str(run / "results/finetune/model")
    }
    metadata = read_metadata(run / "results/data/metadata.csv")
    splits = pd.read_csv(run / "results/data/splits.csv", keep_default_na=False)
    wings = pd.read_csv(run / "results/segment/wings.csv", keep_default_na=False)
    wings["path"] = [str(run / path) for path in wings["path"]]
    evaluation = [name for name in splits["split"].unique() if name not in ("train", "val", "test")]
    tables = {name: scored_rows(wings, metadata, splits, name) for name in ["val", *evaluation]}

    members: dict[str, dict[str, np.ndarray]] = {}
    for label, folder in folders.items():
        predictor = Predictor.load(folder)
        logits = logits_by_table(predictor, tables)
        for k in range(len(predictor.classifiers)):
            members[f"{label}[{k}]"] = {name: values[k : k + 1] for name, values in logits.items()}
        classes = predictor.classes
    index_of = {name: k for k, name in enumerate(classes)}
    val_labels = tables["val"]["label"].map(index_of)
    known = val_labels.notna().to_numpy()

    combos = [[name] for name in members] + ([list(members)] if len(members) > 1 else [])
    rows = []
    for chosen, flip, fitted in itertools.product(combos, (False, True), (False, True)):
        stacked = {name: np.concatenate([members[m][name][:, : 2 if flip else 1] for m in chosen]) for name in tables}
        temperature = (
            fit_temperature(stacked["val"][:, :, known], val_labels[known].astype(int).to_numpy()) if fitted else 1.0
        )
        setting = {"models": "+".join(chosen), "flip": flip, "temperature": round(temperature, 3)}
        results = {}
        for name, rows_of_table in tables.items():
            scores = hybrid_scores(ensemble_probabilities(stacked[name], temperature))
            hybrid = rows_of_table["is_hybrid"].to_numpy(bool)
            parts = rows_of_table["part"].to_numpy()
            for score in SCORE_NAMES:
                metrics = hybrid_metrics(
                    scores[score], pd.Series(hybrid), pd.Series(parts), 200 if name != "val" else 0, 0
                )
                results[(name, score)] = metrics
        for score in SCORE_NAMES:
            row = dict(setting, score=score)
            for name in tables:
                metrics = results[(name, score)]
                row[f"{name}_challenge"] = metrics["challenge_score"]
                if name != "val":
                    row[f"{name}_ci90"] = "-".join(f"{v:.3f}" for v in metrics.get("challenge_score_ci90") or [])
                    for part in ("major", "minor", "mimic"):
                        row[f"{name}_{part}"] = metrics.get(f"{part}_recall")
            rows.append(row)
    table = pd.DataFrame(rows)
    out = REPO / "results/bench/hybrid_levers.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False, float_format="%.4f")
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.max_rows", 500):
        print(table.round(3).to_string(index=False))
    print(json.dumps({"written": str(out)}))


if __name__ == "__main__":
    main()
