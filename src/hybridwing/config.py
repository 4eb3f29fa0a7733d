"""Checks on a validated config that its JSON schema cannot express."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hybridwing.data.fetch import is_url

TRAIN_TABLE = "train"


def dataset_tables(config: dict[str, Any]) -> dict[str, str]:
    """Every table of the dataset by name: ``train`` first, then the evaluation tables."""
    dataset = config["dataset"]
    return {TRAIN_TABLE: dataset["train_table"], **dataset.get("eval_tables", {})}


def check_dataset_files(config: dict[str, Any]) -> None:
    """Stop before any job when a local table named in the config does not exist."""
    dataset = config["dataset"]
    named = {"dataset.train_table": dataset["train_table"], "dataset.taxa": dataset["taxa"]}
    named |= {f"dataset.eval_tables.{name}": path for name, path in dataset.get("eval_tables", {}).items()}
    missing = [f"{key}: file not found: {path}" for key, path in named.items() if not is_url(path) and not Path(path).is_file()]
    if missing:
        raise ValueError("config names files that do not exist (paths are relative to the working directory):\n  " + "\n  ".join(missing))
