"""Which architecture to train from scratch offline: each candidate trained with the same settings
on the TRAIN split of a finished run (background-removed, not augmented) and scored on its
validation split. Usage: python bench/architectures.py RUN_DIR [EPOCHS [MODEL...]]. Appends to
results/bench/architectures.csv and prints the rows of this run.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import pandas as pd

from hybridwing.finetune.steps import labelled_split
from hybridwing.finetune.train import FinetuneSettings, finetune

REPO = Path(__file__).resolve().parents[1]
CANDIDATES = ("hybridwing-vit-tiny", "hybridwing-resnet18")


def main() -> None:
    run = Path(sys.argv[1]).resolve()
    epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    candidates = sys.argv[3:] or CANDIDATES
    manifest = pd.read_csv(run / "results/balance/manifest.csv", keep_default_na=False)
    classes = list(manifest.drop_duplicates("class_index").sort_values("class_index")["class"])
    wings = pd.read_csv(run / "results/segment/wings.csv", keep_default_na=False)
    wings["path"] = [str(run / path) for path in wings["path"]]
    splits = pd.read_csv(run / "results/data/splits.csv", keep_default_na=False)
    train, val = (labelled_split(wings, splits, split, classes) for split in ("train", "val"))
    base = FinetuneSettings(
        allow_random_init=True, unfrozen_blocks="all", backbone_lr=3e-4, head_lr=3e-4, epochs=epochs, patience=epochs
    )
    rows = []
    for model in candidates:
        with tempfile.TemporaryDirectory() as folder:
            result = finetune(train, val, classes, replace(base, model=model), Path(folder) / "ck.pt", threads=2)
        history = pd.DataFrame(result.state["history"])
        best = history.loc[history["val_macro_f1"].idxmax()]
        rows.append(
            {
                "model": model,
                "parameters_M": round(sum(p.numel() for p in result["backbone"].visual.parameters()) / 1e6, 2),
                "n_train": len(train),
                "n_val": len(val),
                "epochs": len(history),
                "best_epoch": int(best["epoch"]),
                "val_macro_f1": round(best["val_macro_f1"], 4),
                "val_accuracy": round(best["val_accuracy"], 4),
                "seconds_per_epoch": round(history["seconds"].mean(), 1),
            }
        )
    table = pd.DataFrame(rows)
    out = REPO / "results" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    path = out / "architectures.csv"
    table.to_csv(path, index=False, mode="a", header=not path.exists())
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
