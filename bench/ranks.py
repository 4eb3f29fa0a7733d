"""The rank and novelty of a trained model's calls on dev's real photographs.

For one model folder and the run whose wings it was trained on: fits the rank and novelty
thresholds on the TRAIN photographs and the validation split as the fine-tune does
(`hybridwing.model.ranks`; a folder written before ranks has none of its own), then appends one row
to bench/results/dev_ranks.csv (commit, machine, setting, seed): the novelty score's ROC-AUC for
dev's non-hybrids of a species never trained on (the mimic species) against those of the trained
species, how often dev's calls of trained subspecies are right at `subspecies` rank against all
calls, and the shares at `subspecies` rank and `unknown`.

Usage: python bench/ranks.py RUN_DIR MODEL_DIR SETTING SEED
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from atypicality import embedded_tables
from common import commit, machine
from sklearn.metrics import roc_auc_score

from hybridwing.model.ranks import Ranks
from hybridwing.score.predictor import Predictor

RECORD = Path(__file__).resolve().parent / "results/dev_ranks.csv"


def rank_figures(ranks: Ranks, features: np.ndarray, probabilities: np.ndarray, dev: pd.DataFrame, index: dict) -> dict:
    """Dev's novelty ROC-AUC and the accuracy of its calls at subspecies rank and overall."""
    ranked = ranks.table(probabilities, features)
    non_hybrid = ~dev["is_hybrid"].to_numpy(bool)
    unseen = ~dev["species"].isin(set(ranks.species)).to_numpy()
    labels = dev["subspecies"].map(index)
    known = non_hybrid & labels.notna().to_numpy()
    right = probabilities[:, :-1].argmax(axis=1) == labels.fillna(-1).to_numpy()
    sure = known & (ranked["rank"] == "subspecies").to_numpy()
    return {
        "novelty_roc_auc_unseen_species": float(roc_auc_score(unseen[non_hybrid], ranked["novelty"][non_hybrid])),
        "n_unseen": int((unseen & non_hybrid).sum()),
        "n_known": int(known.sum()),
        "accuracy_all_calls": float(right[known].mean()),
        "accuracy_subspecies_rank": float(right[sure].mean()) if sure.any() else None,
        "share_at_subspecies_rank": float(sure.sum() / known.sum()),
        "share_unknown_of_known": float((ranked["rank"] == "unknown").to_numpy()[known].mean()),
        "share_unknown_of_unseen": float((ranked["rank"] == "unknown").to_numpy()[unseen & non_hybrid].mean()),
    }


def main() -> None:
    run, model_dir, setting, seed = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    predictor = Predictor.load(model_dir, torch.device("cpu"))
    tables, embedded, metadata = embedded_tables(run, predictor)
    index = {name: k for k, name in enumerate(predictor.classes[:-1])}
    species_of = metadata.drop_duplicates("subspecies").set_index("subspecies")["species"]
    train, val = (~tables[name]["is_hybrid"].to_numpy(bool) for name in ("train", "val"))
    ranks = Ranks.fit(
        embedded["train"][0][train],
        tables["train"]["subspecies"][train].map(index).to_numpy(),
        embedded["val"][0][val],
        embedded["val"][1][val],
        tables["val"]["subspecies"][val].map(index).to_numpy(),
        [str(species_of[name]) for name in predictor.classes[:-1]],
    )
    row = {"commit": commit(), "machine": machine(), "setting": setting, "seed": seed} | rank_figures(
        ranks, *embedded["dev"], tables["dev"], index
    )
    record = pd.read_csv(RECORD) if RECORD.is_file() else pd.DataFrame()
    pd.concat([record, pd.DataFrame([row])], ignore_index=True).to_csv(RECORD, index=False, float_format="%.4f")
    print(pd.DataFrame([row]).to_string(index=False))


if __name__ == "__main__":
    main()
