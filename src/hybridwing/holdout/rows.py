"""The rows of the balanced set the held-out model never trains on (a light job: no torch)."""

from __future__ import annotations

import logging

import pandas as pd

from hybridwing.balance.crosses import pair_key
from hybridwing.classes import HYBRID_CLASS

log = logging.getLogger(__name__)


def held_out_hybrids(manifest: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """The rows of the balanced training set that are hybrids of the held-out pairs (the real crosses'
    photographs and their copies, and the composites of those pairs): the held-out model leaves them
    out. Columns: path, class, parent_1, parent_2."""
    held = {pair_key(a, b) for a, b in zip(pairs["parent_1"], pairs["parent_2"])}
    crossed = [pair_key(a, b) in held for a, b in zip(manifest["parent_1"], manifest["parent_2"])]
    rows = pd.Series(crossed, index=manifest.index, dtype=bool) & (manifest["class"] == HYBRID_CLASS)
    return manifest.loc[rows, ["path", "class", "parent_1", "parent_2"]].reset_index(drop=True)


def rows_step(manifest_path: str, pairs_path: str, held_out_path: str) -> None:
    """The holdout_rows rule: the rows of the balanced set that are hybrids of the held-out crosses."""
    manifest = pd.read_csv(manifest_path, keep_default_na=False)
    pairs = pd.read_csv(pairs_path, keep_default_na=False)
    held_out = held_out_hybrids(manifest, pairs)
    held_out.to_csv(held_out_path, index=False)
    log.info(
        "held-out model: %d of %d training images held out (every hybrid of %d crosses)",
        len(held_out),
        len(manifest),
        len(pairs),
    )
