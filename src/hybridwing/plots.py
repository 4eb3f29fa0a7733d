"""Figures shared by stages: training curves (the U-Net and the fine-tune)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure


def training_curves(history: pd.DataFrame, panels: list[tuple[str, str, str]], path: str | Path) -> None:
    """One panel per (column, y label, title) of `history` against its ``epoch`` column; one line
    per ensemble member where `history` has a ``member`` column."""
    figure = Figure(figsize=(4.5 * len(panels), 3.4))
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    groups = list(history.groupby("member")) if "member" in history else [(None, history)]
    for axis, (column, label, title) in zip(axes, panels):
        for (member, rows), colour in zip(groups, ("tab:blue", "tab:green", "tab:orange", "tab:red", "tab:purple")):
            axis.plot(rows["epoch"], rows[column], marker="o", color=colour, label=None if member is None else f"member {member}")
        axis.set(xlabel="epoch", ylabel=label, title=title)
        axis.xaxis.get_major_locator().set_params(integer=True)
        if len(groups) > 1:
            axis.legend(fontsize=8, frameon=False)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
