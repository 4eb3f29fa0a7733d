"""The review stage's figures: the 2-D embedding map and the scores across active-learning rounds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure


def embedding_map(frame: pd.DataFrame, coordinates: np.ndarray, method: str, title: str, path: str | Path) -> None:
    """Each image a dot coloured by subspecies; hybrids as black crosses. The legend sits outside
    the axes so it never covers the points."""
    figure = Figure(figsize=(8.5, 5.5))
    axis = figure.subplots()
    hybrid = frame["is_hybrid"].to_numpy(bool)
    labels = frame["label"].to_numpy()
    palette = colormaps["tab20"].colors
    markers = ["o", "s", "^", "D", "v", "P"]
    for i, name in enumerate(sorted(set(labels[~hybrid]))):
        rows = (labels == name) & ~hybrid
        axis.scatter(
            coordinates[rows, 0],
            coordinates[rows, 1],
            s=12,
            color=palette[i % 20],
            marker=markers[i // 20 % 6],
            label=name,
            alpha=0.8,
        )
    if hybrid.any():
        axis.scatter(
            coordinates[hybrid, 0],
            coordinates[hybrid, 1],
            s=26,
            color="black",
            marker="x",
            label="hybrid",
            linewidths=1,
        )
    axis.set(title=title, xlabel=f"{method} 1", ylabel=f"{method} 2", xticks=[], yticks=[])
    axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7, frameon=False, ncols=1 + len(set(labels)) // 24)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def rounds_figure(table: pd.DataFrame, path: str | Path) -> None:
    """One panel per metric: each table's value in each round (whole-number round axis)."""
    metrics = list(dict.fromkeys(table["metric"])) or ["challenge_score"]
    figure = Figure(figsize=(4 * len(metrics), 3.4))
    axes = figure.subplots(1, len(metrics), squeeze=False)[0]
    order = {name: i + 1 for i, name in enumerate(dict.fromkeys(table["round"]))}
    for axis, metric in zip(axes, metrics):
        rows = table[table["metric"] == metric]
        for name, values in rows.groupby("table", sort=False):
            axis.plot(values["round"].map(order), pd.to_numeric(values["value"]), marker="o", label=name)
        axis.set(title=metric.replace("_", " "), xlabel="round", ylim=(0, 1.02))
        axis.set_xticks(list(order.values()))
        if len(rows):
            axis.legend(fontsize=7, frameon=False, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
