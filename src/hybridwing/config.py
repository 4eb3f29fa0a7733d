"""Checks on a validated config that its JSON schema cannot express, and the dataset it names."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import yaml

from hybridwing.data.fetch import is_url
from hybridwing.data.reviews import EXTRA_LABELS, TRAIN_TABLE
from hybridwing.data.split import SPLITS
from hybridwing.data.tables import TableError, Taxa, normalise_table, read_csv_table
from hybridwing.digest import file_digest
from hybridwing.pretrained import TrunkWeightsError, resolve_trunk_weights

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
        digest.update(
            b"\0" + (Path(location).read_bytes() if location and not is_url(location) else (location or "").encode())
        )
    return f"round-{digest.hexdigest()[:10]}"


def scored_tables(config: dict[str, Any]) -> list[str]:
    """What the score rule evaluates: the training table's val and test splits, then every
    evaluation table (by name)."""
    return [
        *(split for split in SPLITS if split != TRAIN_TABLE),
        *(name for name in dataset_tables(config) if name != TRAIN_TABLE),
    ]


def from_checkout(path: str, checkout: Path) -> str:
    """A relative path missing from the working directory but shipped in the checkout (the taxa
    table, when another workflow imports this one as a module and runs elsewhere) names the shipped
    file; anything else is left as it is."""
    if is_url(path) or Path(path).is_absolute() or Path(path).exists() or not (checkout / path).is_file():
        return path
    return str(checkout / path)


def dataset_taxa(config: dict[str, Any]) -> str:
    """The code,subspecies,species table: the generated one for the synthetic collection."""
    return f"{SYNTHETIC_DIR}/taxa.csv" if is_synthetic(config) else config["dataset"]["taxa"]


def check_dataset(config: dict[str, Any]) -> None:
    """Stop before any job when the dataset is incomplete or a local table does not exist."""
    dataset = config["dataset"]
    named = {f"dataset.{key}": dataset[key] for key in (EXTRA_LABELS, "exclude") if key in dataset}
    if is_synthetic(config):
        if dataset.get("eval_tables"):
            raise ValueError(
                "config key dataset.eval_tables needs dataset.train_table (the synthetic collection brings its own)"
            )
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


class DuplicateKeyLoader(yaml.SafeLoader):
    """A YAML loader for which a key given twice in one mapping is an error (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise ValueError(
                    f"{self.name}: line {key_node.start_mark.line + 1}: key {key!r} is given twice in one block "
                    f"(first on line {seen[key]}); YAML would silently drop the first"
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def check_config_files(paths: list[str]) -> None:
    """Stop when a config file gives a key twice in one block."""
    for path in paths:
        with open(path, encoding="utf-8") as stream:
            yaml.load(stream, Loader=DuplicateKeyLoader)  # noqa: S506 - a SafeLoader subclass


def non_finite(value: Any, key: str) -> list[str]:
    """Keys whose value is NaN or infinite (``.nan``, ``.inf`` in YAML), which JSON Schema's bounds
    let through."""
    if isinstance(value, float) and not math.isfinite(value):
        return [f"config key {key}: {value!r} is not a finite number"]
    if isinstance(value, dict):
        return [
            problem for name, item in value.items() for problem in non_finite(item, f"{key}.{name}" if key else name)
        ]
    if isinstance(value, list):
        return [problem for k, item in enumerate(value) for problem in non_finite(item, f"{key}[{k}]")]
    return []


def float_where_integer(schema: dict[str, Any], value: Any, key: str) -> list[str]:
    """Keys whose schema asks for an integer and whose value is a float such as ``2.0`` (which JSON
    Schema lets through as an integer, and the code then uses as a float)."""
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else types
    options = [option.get("type") for option in schema.get("oneOf", [])]
    if (
        isinstance(value, float)
        and math.isfinite(value)
        and ("integer" in types or "integer" in options)
        and "number" not in types + options
    ):
        return [f"config key {key}: {value!r} must be a whole number written without a decimal point ({int(value)})"]
    found = []
    if isinstance(value, dict):
        for name, item in value.items():
            found += float_where_integer(
                schema.get("properties", {}).get(name, {}), item, f"{key}.{name}" if key else name
            )
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        found += [
            problem
            for k, item in enumerate(value)
            for problem in float_where_integer(schema["items"], item, f"{key}[{k}]")
        ]
    return found


def image_count(config: dict[str, Any]) -> int | None:
    """How many images the dataset names, when that is known before any job (synthetic, or local
    tables): data rows of the tables, else None."""
    dataset = config["dataset"]
    if is_synthetic(config):
        synthetic = dataset["synthetic"]
        return synthetic["train_images"] + sum(
            part["non_hybrid"] + part["hybrid"] for part in synthetic["eval"].values()
        )
    tables = list(dataset_tables(config).values())
    if any(is_url(location) for location in tables):
        return None
    return sum(
        max(0, sum(1 for line in Path(location).read_bytes().splitlines() if line.strip()) - 1) for location in tables
    )


def schema_problems(config: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Every way `config` breaks `schema`, one line each: a key the block does not have lists the
    keys it does."""
    import jsonschema  # noqa: PLC0415 - the workflow's own dependency, needed only here

    problems = []
    for error in jsonschema.Draft202012Validator(schema).iter_errors(config):
        block = ".".join(map(str, error.absolute_path))
        if error.validator == "additionalProperties":
            allowed = list(error.schema.get("properties", {}))
            for name in sorted(set(error.instance) - set(allowed)):
                problems.append(
                    f"config key {block + '.' if block else ''}{name}: not a setting"
                    f"{' of ' + block if block else ''}; the keys allowed there are {', '.join(allowed)}"
                )
        elif error.validator == "not" and "enum" in error.validator_value:
            reserved = ", ".join(error.validator_value["enum"])
            problems.append(f"config key {block}: {error.instance!r} is a reserved name (reserved: {reserved})")
        else:
            message = " ".join(error.message.split())
            problems.append(f"config key {block or '(the whole config)'}: {message[:200]}")
    return sorted(problems)


def check_schema(config: dict[str, Any], schema_path: str | Path) -> None:
    """Stop on a config the schema refuses, one line per problem (Snakemake's own check names the
    first and prints the whole schema)."""
    problems = schema_problems(config, yaml.safe_load(Path(schema_path).read_text()))
    if problems:
        raise ValueError("config settings the schema refuses:\n  " + "\n  ".join(problems))


def check_settings(config: dict[str, Any], schema_path: str | Path) -> None:
    """Stop before any job on settings the schema lets through but that fail late or blow up,
    naming every key at fault."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    problems = non_finite(config, "") + float_where_integer(schema, config, "")
    fractions = config["split"]["fractions"]
    total = sum(value for value in fractions.values() if isinstance(value, int | float) and math.isfinite(value))
    if abs(total - 1) > 1e-6:
        problems.append(f"config key split.fractions: train + val + test = {total:g}; they must add up to 1")
    augment = config["balance"]["augment"]
    for name in ("scale", "gamma"):
        low, high = augment[name]
        if low > high:
            problems.append(f"config key balance.augment.{name}: {[low, high]} is reversed; give [low, high]")
    unet = config["unet"]
    if len(unet["decoder_channels"]) != unet["encoder_depth"]:
        problems.append(
            f"config key unet.decoder_channels: {len(unet['decoder_channels'])} values for unet.encoder_depth "
            f"{unet['encoder_depth']} "
            "(give one decoder width per encoder stage)"
        )
    images = image_count(config)
    if images is not None and config["shards"] > max(images, 1):
        problems.append(f"config key shards: {config['shards']} shards for {images} images (use at most {images})")
    if problems:
        raise ValueError("config settings that cannot work:\n  " + "\n  ".join(problems))


def check_trunk_weights(finetune: dict[str, Any], checked: Path) -> None:
    """Stop before any job when finetune.trunk_weights cannot fill the trunk of finetune.model (a
    missing, unreadable or empty file, a file of no tensors, another architecture's weights), by
    building the backbone as the fine-tune will. Loading takes seconds, so each architecture and
    file contents is checked once (a marker in `checked`); where this process has no torch (a
    workflow whose jobs run in their own environments), the fine-tune's own load is the check."""
    weights = finetune.get("trunk_weights")
    if not weights:
        return
    try:
        path = resolve_trunk_weights(weights["path"])
    except TrunkWeightsError as error:
        raise ValueError(f"config key finetune.trunk_weights.path: {error}") from None
    identity = json.dumps([finetune["model"], file_digest(path), weights["mean"], weights["std"]])
    marker = checked / hashlib.sha256(identity.encode()).hexdigest()[:16]
    if marker.is_file():
        return
    try:
        from hybridwing.model.backbone import BackboneUnavailable, load_backbone  # noqa: PLC0415 - torch, when named
    except ImportError:
        return
    try:
        load_backbone(finetune["model"], True, weights)
    except BackboneUnavailable as error:
        raise ValueError(f"config key finetune.trunk_weights: {error}") from None
    checked.mkdir(parents=True, exist_ok=True)
    marker.touch()


def check_tables(tables: dict[str, str], taxa_path: str) -> None:
    """Stop before any job on a local table that `hybridwing check-table` would refuse (a missing
    column, an unknown subspecies, a bad cell), naming the file, row and column. Tables behind a
    URL are checked when fetched; tables a rule writes (the synthetic collection and its taxa)
    when they exist."""
    if not Path(taxa_path).is_file():
        return
    taxa = Taxa.read(taxa_path)
    problems = []
    for name, location in tables.items():
        if is_url(location) or not Path(location).is_file():
            continue
        try:
            normalise_table(read_csv_table(Path(location).read_bytes(), location), name, location, taxa)
        except (TableError, OSError) as error:
            problems.append(f"table {name}: {error}")
    if problems:
        raise ValueError("\n".join(problems))
