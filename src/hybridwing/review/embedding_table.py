"""The embed rule's table: one row per image, its ROW_COLUMNS, then one float32 column per
embedding dimension (e0, e1, ... for the fine-tuned model; p0, p1, ... for the frozen pretrained
backbone); and the review rules' outputs per table. Light on purpose (no torch), for the jobs that
only read it back."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

EMBEDDING_PREFIX = "e"
FROZEN_PREFIX = "p"
ROW_COLUMNS = ["image_id", "filename", "path", "label", "specimen", "species", "is_hybrid"]


def table_outputs(output: Any, tables: list[str], kinds: tuple[str, ...]) -> dict[str, list[str]]:
    """A rule's outputs per kind, in the order of `tables`: a named list (``expand``), or one name
    per table, ``{kind}_{table}`` (the report figures)."""
    named = dict(output.items())
    gathered = {
        kind: list(named[kind]) if kind in named else [named[f"{kind}_{table}"] for table in tables] for kind in kinds
    }
    return {"tables": list(tables), **gathered}


def embedding_frame(rows: pd.DataFrame, features: np.ndarray, prefix: str = EMBEDDING_PREFIX) -> pd.DataFrame:
    """`rows` (one per image) with one float32 column per embedding dimension (e0, e1, ... for the
    trained backbone; `prefix` p for the frozen pretrained one)."""
    columns = pd.DataFrame(features.astype(np.float32), columns=[f"{prefix}{i}" for i in range(features.shape[1])])
    return pd.concat([rows.reset_index(drop=True), columns], axis=1)


def embedding_matrix(frame: pd.DataFrame, prefix: str = EMBEDDING_PREFIX) -> np.ndarray:
    """The embedding columns with `prefix` of an `embedding_frame` as an (images, features) array."""
    columns = [c for c in frame.columns if c.startswith(prefix) and c[len(prefix) :].isdigit()]
    return frame[columns].to_numpy(np.float64)
