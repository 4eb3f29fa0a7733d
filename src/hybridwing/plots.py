"""Figures people read in results/ and the report."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure


def training_curves(history: pd.DataFrame, panels: list[tuple[str, str, str]], path: str | Path) -> None:
    """One panel per (column, y label, title) of `history` against its ``epoch`` column."""
    figure = Figure(figsize=(4.5 * len(panels), 3.4))
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for axis, (column, label, title), colour in zip(axes, panels, ("tab:blue", "tab:green", "tab:orange")):
        axis.plot(history["epoch"], history[column], marker="o", color=colour)
        axis.set(xlabel="epoch", ylabel=label, title=title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
