"""Shared fixtures: the real Heliconius photographs beside the project and small tables cut from them."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

REPO = Path(__file__).resolve().parents[1]
HELICONIUS = REPO.parent / "shared" / "data" / "heliconius"
TAXA = REPO / "config" / "heliconius_taxa.csv"


@pytest.fixture(scope="session")
def heliconius() -> Path:
    if not (HELICONIUS / "train.csv").is_file():
        pytest.skip(f"real images not found at {HELICONIUS}")
    return HELICONIUS


@pytest.fixture(scope="session")
def taxa():
    from hybridwing.data.tables import Taxa

    return Taxa.read(TAXA)


@pytest.fixture(scope="session")
def train_rows(heliconius) -> pd.DataFrame:
    """The real training table, every cell a string, as the loader reads it."""
    return pd.read_csv(heliconius / "train.csv", dtype=str, keep_default_na=False)


@pytest.fixture(scope="session")
def dev_rows(heliconius) -> pd.DataFrame:
    return pd.read_csv(heliconius / "dev.csv", dtype=str, keep_default_na=False)
