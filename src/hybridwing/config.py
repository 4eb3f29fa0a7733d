"""Checks on a validated config that its JSON schema cannot express, and the dataset it names."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from hybridwing.data.fetch import is_url
from hybridwing.data.reviews import EXTRA_LABELS, TRAIN_TABLE
from hybridwing.data.split import SPLITS

SYNTHETIC_DIR = "resources/synthetic"
SYNTHETIC_EVAL_TABLE = "dev"


def is_synthetic(config: dict[str, Any]) -> bool:
    """The synthetic collection is the dataset unless a training table is given.

    `--configfile` extends config/config.yaml (whose dataset is synthetic) instead of replacing it, so
    a config that names a training table must win over the default's synthetic block.
    """
    dataset = config["dataset"]
    return "train_table" not in dataset and "synthetic" in dataset


def dataset_tables(config: dict[str, Any]) -> dict[str, str]:
    """Every table of the dataset by name: ``train`` first, then the evaluation tables."""
    dataset = config["dataset"]
    if is_synthetic(config):
        return {TRAIN_TABLE: f"{SYNTHETIC_DIR}/train.csv", SYNTHETIC_EVAL_TABLE: f"{SYNTHETIC_DIR}/dev.csv"}
    return {TRAIN_TABLE: dataset["train_table"], **dataset.get("eval_tables", {})}


def fetched_tables(config: dict[str, Any]) -> dict[str, str]:
    """`dataset_tables`, and the reviewed labels of an active-learning round when there are any."""
    extra = config["dataset"].get(EXTRA_LABELS)
    return dataset_tables(config) | ({EXTRA_LABELS: extra} if extra else {})


def review_round(config: dict[str, Any]) -> str:
    """The active-learning round a config describes: ``round-0`` without reviewed labels or
    exclusions, else a name from the contents of those tables (so each set of reviews is a round of its own)."""
    named = [config["dataset"].get(key) for key in (EXTRA_LABELS, "exclude")]
    if not any(named):
        return "round-0"
    digest = hashlib.sha256()
    for location in named:
        digest.update(b"\0" + (Path(location).read_bytes() if location and not is_url(location) else (location or "").encode()))
    return f"round-{digest.hexdigest()[:10]}"


def scored_tables(config: dict[str, Any]) -> list[str]:
    """What the score rule evaluates: the training table's val and test splits, then every
    evaluation table (by name)."""
    return [*(split for split in SPLITS if split != TRAIN_TABLE), *(name for name in dataset_tables(config) if name != TRAIN_TABLE)]


def dataset_taxa(config: dict[str, Any]) -> str:
    """The code,subspecies,species table: the generated one for the synthetic collection."""
    return f"{SYNTHETIC_DIR}/taxa.csv" if is_synthetic(config) else config["dataset"]["taxa"]


def check_dataset(config: dict[str, Any]) -> None:
    """Stop before any job when the dataset is incomplete or a local table does not exist."""
    dataset = config["dataset"]
    named = {f"dataset.{key}": dataset[key] for key in (EXTRA_LABELS, "exclude") if key in dataset}
    if is_synthetic(config):
        if dataset.get("eval_tables"):
            raise ValueError("config key dataset.eval_tables needs dataset.train_table (the synthetic collection brings its own)")
    elif "train_table" not in dataset:
        raise ValueError("config key dataset.train_table is missing (or give dataset.synthetic)")
    else:
        named |= {"dataset.train_table": dataset["train_table"], "dataset.taxa": dataset["taxa"]}
        named |= {f"dataset.eval_tables.{name}": path for name, path in dataset.get("eval_tables", {}).items()}
    missing = [
        f"{key}: file not found: {path}" for key, path in named.items() if not is_url(path) and not Path(path).is_file()
    ]
    if missing:
        raise ValueError(
            "config names files that do not exist (paths are relative to the working directory):\n  "
            + "\n  ".join(missing)
        )
