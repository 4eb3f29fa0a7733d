"""Figures shared by stages: training curves (the U-Net and the fine-tune) and contact sheets."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from PIL import Image


def training_curves(history: pd.DataFrame, panels: list[tuple[str, str, str]], path: str | Path) -> None:
    """One panel per (column, y label, title) of `history` against its ``epoch`` column; one line
    per ensemble member where `history` has a ``member`` column."""
    figure = Figure(figsize=(4.5 * len(panels), 3.4))
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    groups = list(history.groupby("member")) if "member" in history else [(None, history)]
    for axis, (column, label, title) in zip(axes, panels):
        for (member, rows), colour in zip(groups, ("tab:blue", "tab:green", "tab:orange", "tab:red", "tab:purple")):
            axis.plot(
                rows["epoch"],
                rows[column],
                marker="o",
                color=colour,
                label=None if member is None else f"member {member}",
            )
        axis.set(xlabel="epoch", ylabel=label, title=title)
        axis.xaxis.get_major_locator().set_params(integer=True)
        if len(groups) > 1:
            axis.legend(fontsize=8, frameon=False)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def contact_sheet(
    sections: list[tuple[str, list[str], list[str]]], path: str | Path, title: str, tile: int = 112, columns: int = 8
) -> None:
    """Sections of thumbnails: each (heading, image paths, captions) starts on a new row under its
    heading; a section without images says so."""
    layout = []  # ("heading", text) or ("images", paths, captions) per grid row
    for heading, paths, captions in sections:
        layout.append(("heading", f"{heading} ({len(paths)} shown)" if paths else f"{heading}: none"))
        layout += [("images", paths[i : i + columns], captions[i : i + columns]) for i in range(0, len(paths), columns)]
    heights = [0.35 if row[0] == "heading" else (tile + 24) / 80 for row in layout]
    figure = Figure(figsize=(columns * tile / 80, sum(heights) + 0.4))
    grid = figure.add_gridspec(
        len(layout),
        columns,
        height_ratios=heights,
        hspace=0.35,
        wspace=0.05,
        left=0.02,
        right=0.98,
        bottom=0.02,
        top=1 - 0.3 / (sum(heights) + 0.4),
    )
    for row, entry in enumerate(layout):
        if entry[0] == "heading":
            axis = figure.add_subplot(grid[row, :])
            axis.axis("off")
            axis.text(0, 0.2, entry[1], fontsize=9, fontweight="bold", transform=axis.transAxes)
            continue
        for column, (image_path, caption) in enumerate(zip(entry[1], entry[2])):
            axis = figure.add_subplot(grid[row, column])
            axis.axis("off")
            with Image.open(image_path) as image:
                axis.imshow(image.convert("RGB").resize((tile, tile)))
            axis.set_title(caption, fontsize=6)
    figure.suptitle(title, fontsize=9)
    figure.savefig(path, dpi=80)
