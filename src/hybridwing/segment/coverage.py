"""How much of the wings a mask keeps: pattern coverage against colour-pattern label maps.

A pattern map (``<CAMID>.png``, as in Imageomics/SST) marks every pattern element painted on a wing
with a non-zero value and nothing off the wings, so the share of its pixels inside a wing mask says
how much wing the mask keeps, and the mask's area share says how much board, ruler and label it
takes with it.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from PIL import Image

SOURCES = ("teacher", "student")
LOW_COVERAGE = 0.95
LARGE_AREA = 0.35


def read_binary(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """A mask or label map as booleans (non-zero), resized with nearest neighbour to (width, height)."""
    with Image.open(path) as picture:
        array = np.asarray(picture.convert("L"))
    if size is not None and (array.shape[1], array.shape[0]) != size:
        array = cv2.resize(array, size, interpolation=cv2.INTER_NEAREST)
    return array > 0


def pattern_coverage(mask: np.ndarray, pattern: np.ndarray) -> float:
    """Share of the pattern pixels inside the mask (NaN when the map has no pattern pixel)."""
    total = int(pattern.sum())
    return float((mask & pattern).sum() / total) if total else float("nan")


def coverage_columns(
    qc: pd.DataFrame, teacher: pd.DataFrame, camids: pd.Series, pattern_dir: str | Path | None
) -> pd.DataFrame:
    """`qc` (one row per image with the student's ``mask``) with, for teacher and student, the mask's
    area share and, where ``<pattern_dir>/<CAMID>.png`` exists, its pattern pixels and coverage.
    `teacher` is the teacher's index (image_id, mask); `camids` maps image_id to CAMID."""
    table = qc.merge(teacher[["image_id", "mask"]].rename(columns={"mask": "teacher_mask"}), on="image_id", how="left")
    table["teacher_mask"] = table["teacher_mask"].fillna("")
    records = []
    for row in table.itertuples():
        student = read_binary(row.mask)
        size = (student.shape[1], student.shape[0])
        masks = {"student": student, "teacher": read_binary(row.teacher_mask, size) if row.teacher_mask else None}
        pattern_path = Path(pattern_dir) / f"{camids.get(row.image_id, '')}.png" if pattern_dir else None
        pattern = read_binary(pattern_path, size) if pattern_path is not None and pattern_path.is_file() else None
        record = {"pattern_pixels": int(pattern.sum()) if pattern is not None else 0}
        for source in SOURCES:
            mask = masks[source]
            record[f"area_{source}"] = float(mask.mean()) if mask is not None else float("nan")
            record[f"coverage_{source}"] = (
                pattern_coverage(mask, pattern) if mask is not None and pattern is not None else float("nan")
            )
        records.append(record)
    return pd.concat([table.reset_index(drop=True), pd.DataFrame(records, index=range(len(table)))], axis=1)


def coverage_summary(table: pd.DataFrame) -> dict[str, dict[str, float | int]]:
    """Per mask source: images with a pattern map, mean coverage, share under 0.95 and 0.9, and the
    mean mask area share and the share above 0.35 (over every image the source masked)."""
    summary: dict[str, dict[str, float | int]] = {}
    for source in SOURCES:
        area = table[f"area_{source}"].dropna()
        coverage = table[f"coverage_{source}"].dropna()
        summary[source] = {
            "n_masks": int(len(area)),
            "mean_area_share": round(float(area.mean()), 4) if len(area) else float("nan"),
            "share_area_above_0.35": round(float((area > LARGE_AREA).mean()), 4) if len(area) else float("nan"),
            "n_pattern_maps": int(len(coverage)),
            "mean_coverage": round(float(coverage.mean()), 4) if len(coverage) else float("nan"),
            "share_coverage_below_0.95": round(float((coverage < LOW_COVERAGE).mean()), 4)
            if len(coverage)
            else float("nan"),
            "n_coverage_below_0.9": int((coverage < 0.9).sum()),
        }
    return summary


def coverage_histogram(table: pd.DataFrame, path: str | Path) -> None:
    """Histograms of pattern coverage and of mask area share, teacher against student."""
    figure = Figure(figsize=(9, 3.6))
    coverage_axis, area_axis = figure.subplots(1, 2)
    bins = np.linspace(0, 1, 41)
    for source, colour in zip(SOURCES, ("tab:orange", "tab:blue")):
        coverage = table[f"coverage_{source}"].dropna()
        if len(coverage):
            coverage_axis.hist(
                coverage.clip(0, 1), bins=bins, alpha=0.6, color=colour, label=f"{source} (mean {coverage.mean():.4f})"
            )
        area = table[f"area_{source}"].dropna()
        if len(area):
            area_axis.hist(area, bins=bins / 2, alpha=0.6, color=colour, label=f"{source} (mean {area.mean():.3f})")
    coverage_axis.axvline(LOW_COVERAGE, color="grey", linestyle="--", linewidth=1)
    coverage_axis.set(
        xlabel="share of pattern pixels inside the wing mask",
        ylabel="photographs",
        yscale="log",
        title="pattern coverage",
    )
    area_axis.axvline(LARGE_AREA, color="grey", linestyle="--", linewidth=1)
    area_axis.set(xlabel="mask area / image area", ylabel="photographs", title="mask area share")
    for axis in (coverage_axis, area_axis):
        axis.legend(loc="upper left", fontsize=8, frameon=False)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def worst_sheet(
    table: pd.DataFrame,
    image_paths: pd.Series,
    camids: pd.Series,
    pattern_dir: str | Path,
    path: str | Path,
    count: int = 16,
) -> None:
    """The `count` photographs whose student mask keeps the least pattern: each photograph beside
    itself with the mask's outline (cyan) and the pattern pixels the mask lost (red)."""
    worst = table.dropna(subset=["coverage_student"]).nsmallest(count, "coverage_student")
    tiles = []
    for row in worst.itertuples():
        with Image.open(image_paths[row.image_id]) as picture:
            rgb = np.asarray(picture.convert("RGB").resize((224, 224)))
        mask = read_binary(row.mask, (224, 224))
        pattern = read_binary(Path(pattern_dir) / f"{camids[row.image_id]}.png", (224, 224))
        marked = rgb.copy()
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(marked, contours, -1, (0, 255, 255), 1)
        marked[pattern & ~mask] = (255, 0, 0)
        tile = np.concatenate([rgb, marked], axis=1)
        cv2.putText(
            tile, f"{row.image_id} {row.coverage_student:.3f}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1
        )
        tiles.append(tile)
    columns = 4
    while len(tiles) % columns:
        tiles.append(np.full_like(tiles[0], 255) if tiles else np.full((224, 448, 3), 255, np.uint8))
    rows = [np.concatenate(tiles[i : i + columns], axis=1) for i in range(0, len(tiles), columns)]
    Image.fromarray(np.concatenate(rows, axis=0) if rows else np.full((224, 448, 3), 255, np.uint8)).save(path)
