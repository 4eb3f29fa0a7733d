"""The next batch for a person to label, as a table in the training table's format: fill in (or
correct) the label columns, then name the file in ``dataset.extra_labels`` for the next round."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from hybridwing.classes import HYBRID_CLASS
from hybridwing.data.fetch import md5_of
from hybridwing.data.tables import Taxa
from hybridwing.review.triage import next_batch

#: The training table's columns, then what the person labelling needs to see.
BATCH_COLUMNS = [
    "CAMID",
    "filename",
    "file_url",
    "md5",
    "hybrid_stat",
    "subspecies",
    "parent_subspecies_1",
    "parent_subspecies_2",
    "label_now",
    "predicted",
    "p_top",
    "band",
    "entropy",
    "mutual_information",
    "photograph",
]


def review_batch(
    triage: pd.DataFrame, metadata: pd.DataFrame, taxa: Taxa, count: int, workdir: Path = Path(".")
) -> pd.DataFrame:
    """The top `count` of band C (by entropy) then band B (by mutual information), with the label
    columns filled from the current label where there is one and from the prediction otherwise
    (a hybrid's parent codes are left for the person). ``file_url`` is the stored photograph's own
    file URL (its path is relative to the run's `workdir`) and ``md5`` that file's checksum (not the
    original's, which differs where fetch stored a converted copy), so the next fetch takes exactly
    this image."""
    code_by_name = {name: code for code, name in taxa.name_by_code.items()}
    raw = metadata[["image_id", "camid", "md5", "path", "parent_1", "parent_2"]].rename(columns={"path": "photo_path"})
    chosen = next_batch(triage, count).merge(raw, on="image_id")
    rows = []
    for row in chosen.itertuples():
        label = row.label or row.predicted
        hybrid = label == HYBRID_CLASS
        parents = [row.parent_1, row.parent_2] if hybrid and row.label == HYBRID_CLASS else ["", ""]
        rows.append(
            {
                "CAMID": row.camid,
                "filename": row.filename,
                "file_url": (workdir / row.photo_path).resolve().as_uri(),
                "md5": md5_of((workdir / row.photo_path).read_bytes()),  # of the stored file, converted or not
                "hybrid_stat": HYBRID_CLASS if hybrid else "non-hybrid",
                "subspecies": "" if hybrid else code_by_name.get(label, ""),
                "parent_subspecies_1": code_by_name.get(parents[0], ""),
                "parent_subspecies_2": code_by_name.get(parents[1], ""),
                "label_now": row.label,
                "predicted": row.predicted,
                "p_top": round(row.p_top, 4),
                "band": row.band,
                "entropy": round(row.entropy, 4),
                "mutual_information": round(row.mutual_information, 4),
                "photograph": str((workdir / row.photo_path).resolve()),
            }
        )
    return pd.DataFrame(rows, columns=BATCH_COLUMNS)
