"""Pattern coverage: how much of the colour pattern of real photographs a wing mask keeps."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from hybridwing.segment.classical import classical_mask
from hybridwing.segment.coverage import pattern_coverage, read_binary
from hybridwing.segment.steps import coverage_figures_step, qc_step


@pytest.fixture(scope="module")
def mapped(heliconius) -> pd.DataFrame:
    """48 real photographs of both tables that have a colour-pattern map (a fixed random sample)."""
    rows = []
    for table in ("train.csv", "dev.csv"):
        frame = pd.read_csv(heliconius / table, dtype=str, keep_default_na=False)
        for row in frame.itertuples():
            pattern = heliconius / "sst_masks" / f"{row.CAMID}.png"
            if pattern.is_file():
                rows.append(
                    {
                        "image_id": row.filename.rsplit(".", 1)[0],
                        "camid": row.CAMID,
                        "path": str(heliconius / row.file_url),
                        "pattern": str(pattern),
                    }
                )
    return pd.DataFrame(rows).sample(48, random_state=3).reset_index(drop=True)


def test_pattern_coverage_counts_pattern_pixels_inside_the_mask():
    pattern = np.zeros((10, 10), bool)
    pattern[2:4, 2:6] = True  # 8 pixels
    mask = np.zeros((10, 10), bool)
    mask[:3] = True  # keeps row 2: 4 of them
    assert pattern_coverage(mask, pattern) == 0.5
    assert np.isnan(pattern_coverage(mask, np.zeros_like(pattern)))


def test_classical_teacher_keeps_the_pattern_of_real_photographs(mapped):
    coverage, area = [], []
    for row in mapped.itertuples():
        mask = classical_mask(np.asarray(Image.open(row.path).convert("RGB"))).astype(bool)
        coverage.append(pattern_coverage(mask, read_binary(row.pattern, (mask.shape[1], mask.shape[0]))))
        area.append(mask.mean())
    coverage, area = np.array(coverage), np.array(area)
    assert coverage.mean() >= 0.99, sorted(coverage)[:5]
    assert (coverage < 0.95).sum() <= 1
    assert area.mean() <= 0.26 and area.max() < 0.40, (
        "board, ruler and label stay out (the largest specimens alone fill 35%)"
    )


def test_qc_measures_teacher_and_student_against_the_maps(mapped, heliconius, tmp_path):
    rows = mapped.head(6)
    teacher_rows, student_rows = [], []
    for row in rows.itertuples():
        mask = classical_mask(np.asarray(Image.open(row.path).convert("RGB")))
        Image.fromarray(mask * 255).save(tmp_path / f"{row.image_id}_teacher.png")
        Image.fromarray(cv2.erode(mask, np.ones((9, 9), np.uint8)) * 255).save(
            tmp_path / f"{row.image_id}_student.png"
        )  # loses the edges
        teacher_rows.append(
            {
                "image_id": row.image_id,
                "split": "train",
                "path": row.path,
                "mask": str(tmp_path / f"{row.image_id}_teacher.png"),
            }
        )
        student_rows.append(
            {
                "image_id": row.image_id,
                "split": "dev",
                "mask": str(tmp_path / f"{row.image_id}_student.png"),
                "wing_fraction": 0.0,
                "components": 4,
                "flag": "",
            }
        )
    pd.DataFrame(student_rows).to_csv(tmp_path / "shard.csv", index=False)
    pd.DataFrame(teacher_rows).to_csv(tmp_path / "teacher.csv", index=False)
    pd.DataFrame(
        {"image_id": rows["image_id"], "camid": rows["camid"], "path": rows["path"], "is_hybrid": "False"}
    ).to_csv(tmp_path / "metadata.csv", index=False)

    qc_step(
        [str(tmp_path / "shard.csv")],
        str(tmp_path / "teacher.csv"),
        str(tmp_path / "metadata.csv"),
        str(heliconius / "sst_masks"),
        str(tmp_path / "qc.csv"),
        str(tmp_path / "metrics.json"),
    )
    table = pd.read_csv(tmp_path / "qc.csv")
    assert len(table) == 6 and (table["pattern_pixels"] > 0).all()
    assert (table["coverage_student"] < table["coverage_teacher"]).all()
    assert (table["area_student"] < table["area_teacher"]).all()
    summary = json.loads((tmp_path / "metrics.json").read_text())
    assert summary["all"]["teacher"]["n_pattern_maps"] == 6
    assert summary["all"]["student"]["mean_coverage"] == pytest.approx(table["coverage_student"].mean(), abs=1e-4)
    assert "dev" in summary

    coverage_figures_step(
        str(tmp_path / "qc.csv"),
        str(tmp_path / "metadata.csv"),
        str(heliconius / "sst_masks"),
        str(tmp_path / "hist.png"),
        str(tmp_path / "worst.png"),
    )
    sheet = np.asarray(Image.open(tmp_path / "worst.png"))
    assert sheet.shape[0] >= 224 and (sheet == (255, 0, 0)).all(axis=2).any(), "lost pattern pixels are drawn in red"
    assert Image.open(tmp_path / "hist.png").size[0] > 500
