"""The atypicality score on dev, against the top-2 score of the same model.

For one trained model folder and the run whose wings it was trained on: embeds the TRAIN
photographs, the validation split and dev with the model (first member), then scores dev by the
model's own hybrid score (top-2), by atypicality alone, and by the larger of the two after each is
put on its validation non-hybrids' scale (`hybridwing.model.atypicality`). Appends one row per
score to bench/results/dev_atypicality.csv (commit, machine, setting, seed, dev's challenge score
with its 90% interval and parts, ROC-AUC). The top-2 row must equal the pipeline's own dev score of
the model (checked against MODEL_DIR/../score/dev/metrics.json when present).

Usage: python bench/atypicality.py RUN_DIR MODEL_DIR SETTING SEED
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from common import commit, dev_figures, machine

from hybridwing.data.tables import read_metadata
from hybridwing.hybrid_scores import hybrid_scores, top_two
from hybridwing.model.atypicality import Atypicality, ValidationScale
from hybridwing.model.inference import embed_files, ensemble_probabilities
from hybridwing.score.challenge import hybrid_metrics
from hybridwing.score.predictor import Predictor
from hybridwing.score.steps import scored_rows

RECORD = Path(__file__).resolve().parent / "results/dev_atypicality.csv"


def embedded_tables(
    run: Path, predictor: Predictor
) -> tuple[dict[str, pd.DataFrame], dict[str, tuple[np.ndarray, np.ndarray]], pd.DataFrame]:
    """The TRAIN split, the validation split and dev of a run (their rows as the score rule reads
    them), each photograph's embedding and class probabilities under the model, and the metadata."""
    metadata = read_metadata(run / "results/data/metadata.csv")
    splits = pd.read_csv(run / "results/data/splits.csv", keep_default_na=False)
    wings = pd.read_csv(run / "results/segment/wings.csv", keep_default_na=False)
    wings["path"] = [str(run / path) for path in wings["path"]]
    tables = {name: scored_rows(wings, metadata, splits, name) for name in ("train", "val", "dev")}
    embedded = {}
    for name, rows in tables.items():
        features, logits = embed_files(
            predictor.classifiers,
            rows["path"].tolist(),
            predictor.size,
            predictor.mean,
            predictor.std,
            torch.device("cpu"),
        )
        embedded[name] = (features, ensemble_probabilities(logits, predictor.inference.temperature))
    return tables, embedded, metadata


def main() -> None:
    run, model_dir, setting, seed = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    predictor = Predictor.load(model_dir, torch.device("cpu"))
    tables, embedded, _ = embedded_tables(run, predictor)
    index = {name: k for k, name in enumerate(predictor.classes)}

    def non_hybrids(name: str) -> np.ndarray:
        return ~tables[name]["is_hybrid"].to_numpy(bool)

    train_keep, val_keep = non_hybrids("train"), non_hybrids("val")
    atypicality = Atypicality.fit(
        embedded["train"][0][train_keep],
        tables["train"]["subspecies"][train_keep].map(index).to_numpy(),
        embedded["val"][0][val_keep],
        tables["val"]["subspecies"][val_keep].map(index).to_numpy(),
    )
    method = predictor.inference.score

    def scores(name: str) -> dict[str, np.ndarray]:
        features, probabilities = embedded[name]
        return {
            "top2": hybrid_scores(probabilities)[method].to_numpy(),
            "atypicality": atypicality(features, top_two(probabilities)[0]),
        }

    val, dev = scores("val"), scores("dev")
    scales = {name: ValidationScale.fit(values[val_keep]) for name, values in val.items()}
    dev["combined"] = np.maximum(scales["top2"](dev["top2"]), scales["atypicality"](dev["atypicality"]))
    rows = []
    for score, values in dev.items():
        metrics = hybrid_metrics(values, tables["dev"]["is_hybrid"].to_numpy(bool), tables["dev"]["part"].to_numpy())
        rows.append(
            {"commit": commit(), "machine": machine(), "setting": setting, "seed": seed, "score": score}
            | dev_figures(metrics)
        )
    pipeline = model_dir.parent / "score/dev/metrics.json"
    if pipeline.is_file():
        expected = json.loads(pipeline.read_text())["challenge_score"]
        if abs(rows[0]["dev"] - expected) > 1e-6:
            raise SystemExit(f"top-2 gives dev {rows[0]['dev']}, the pipeline {expected}: not the same scores")
    record = pd.read_csv(RECORD) if RECORD.is_file() else pd.DataFrame()
    pd.concat([record, pd.DataFrame(rows)], ignore_index=True).to_csv(RECORD, index=False, float_format="%.4f")
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
