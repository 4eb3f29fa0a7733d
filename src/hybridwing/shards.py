"""Per-image work split into shards so a cluster runs them side by side.

A shard is named as Snakemake's scatter/gather names it, ``i-of-n`` (1-based). Shard i takes the
i-th of n contiguous, nearly equal blocks of rows, so gathering the shards in order gives the rows in
their original order, and the union of any number of shards equals the unsharded work.
"""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

SHARD_NAME = re.compile(r"^(\d+)-of-(\d+)$")


def parse_shard(name: str) -> tuple[int, int]:
    """``"3-of-8"`` -> (3, 8)."""
    match = SHARD_NAME.match(name)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise ValueError(f"not a shard name: {name!r} (expected i-of-n with 1 <= i <= n)")
    return int(match[1]), int(match[2])


def shard_rows(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """The rows of `frame` that shard `name` works on."""
    index, count = parse_shard(name)
    bounds = np.linspace(0, len(frame), count + 1).round().astype(int)
    return frame.iloc[bounds[index - 1] : bounds[index]]


def gather_tables(paths: list[str]) -> pd.DataFrame:
    """The shards' tables, concatenated in shard order."""
    return pd.concat([pd.read_csv(path, keep_default_na=False) for path in paths], ignore_index=True)


def gather_step(shard_paths: list[str], out_path: str) -> None:
    """One table from the shards' tables, in shard order (the unsharded order)."""
    table = gather_tables(shard_paths)
    table.to_csv(out_path, index=False)
    log.info("gathered %d rows from %d shards into %s", len(table), len(shard_paths), out_path)
