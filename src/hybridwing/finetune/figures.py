"""The finetune rule's own figure: the validation confusion matrix."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure


def confusion_heatmap(confusion: pd.DataFrame, path: str | Path, note: str = "") -> None:
    """Counts of true (rows) against predicted (columns) classes, shaded by each row's share, with
    an optional `note` above (what a class that is never predicted was trained towards)."""
    counts = confusion.to_numpy()
    shares = counts / counts.sum(axis=1, keepdims=True).clip(min=1)
    size = 2.5 + 0.42 * len(confusion)
    figure = Figure(figsize=(size + 1, size))
    axis = figure.subplots()
    image = axis.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in pd.DataFrame(counts).stack().items():
        if count:
            axis.text(
                j, i, str(count), ha="center", va="center", fontsize=7, color="white" if shares[i, j] > 0.6 else "black"
            )
    axis.set_xticks(range(len(confusion)), confusion.columns, rotation=60, ha="right", fontsize=8)
    axis.set_yticks(range(len(confusion)), confusion.index, fontsize=8)
    axis.set(xlabel="predicted", ylabel="true")
    if note:
        axis.set_title(note, fontsize=7, wrap=True)
    figure.colorbar(image, ax=axis, fraction=0.046, label="share of the true class")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
