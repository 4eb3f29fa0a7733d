"""The configuration reference page (docs/configuration.md), generated from the config schema: one
table per block with every key's type, default, allowed values and description.

Usage: python -m hybridwing.config_reference [--check]   (--check: exit 1 when the page is stale)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "workflow/schemas/config.schema.yaml"
PAGE = REPO / "docs/configuration.md"

HEADER = """\
# Configuration reference

Generated from `workflow/schemas/config.schema.yaml` by `python -m hybridwing.config_reference`; do
not edit by hand. A run's config is `config/config.yaml` with any `--configfile` on top of it
(`config/heliconius.yaml` for the real photographs); every key left out takes the default below, and
a key the schema does not know stops the run before any job.
"""


def cell(value: Any) -> str:
    """A value as a table cell: JSON, in code, with table pipes escaped."""
    return "`" + json.dumps(value).replace("|", "\\|") + "`"


def allowed(spec: dict[str, Any]) -> str:
    """The values a key takes: its enum, or its numeric bounds."""
    if "enum" in spec:
        return ", ".join(cell(value) for value in spec["enum"])
    bounds = [f"≥ {spec['minimum']}" if "minimum" in spec else "", f"≤ {spec['maximum']}" if "maximum" in spec else ""]
    return ", ".join(bound for bound in bounds if bound)


def kind(spec: dict[str, Any]) -> str:
    """A key's JSON type, or the name of the definition it refers to."""
    if "$ref" in spec:
        return spec["$ref"].rsplit("/", 1)[-1]
    if "type" not in spec:
        return ""
    return " or ".join(spec["type"]) if isinstance(spec["type"], list) else spec["type"]


def rows(properties: dict[str, Any], prefix: str) -> list[str]:
    """One table row per key under `prefix`, nested blocks flattened into dotted names."""
    out = []
    for name, spec in properties.items():
        key = f"{prefix}{name}"
        nested = spec.get("properties")
        if nested and spec.get("type") == "object":
            if spec.get("description"):
                out.append(f"| `{key}` | block | | | {spec['description']} |")
            out += rows(nested, f"{key}.")
            continue
        default = cell(spec["default"]) if "default" in spec else ""
        description = spec.get("description", "").replace("|", "\\|").replace("\n", " ")
        out.append(f"| `{key}` | {kind(spec)} | {default} | {allowed(spec)} | {description} |")
    return out


def reference(schema: dict[str, Any]) -> str:
    """The page: the header, then a section per top-level key (a block's keys in one table)."""
    sections = [HEADER]
    for name, spec in schema["properties"].items():
        sections.append(f"## `{name}`\n")
        nested = spec.get("properties")
        if nested and spec.get("description"):
            sections.append(spec["description"].strip() + "\n")
        table = ["| key | type | default | allowed | what it does |", "| --- | --- | --- | --- | --- |"]
        table += rows(nested, f"{name}.") if nested else rows({name: spec}, "")
        sections.append("\n".join(table) + "\n")
    return "\n".join(sections)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/configuration.md is stale")
    arguments = parser.parse_args()
    page = reference(yaml.safe_load(SCHEMA.read_text()))
    if arguments.check:
        if not PAGE.is_file() or PAGE.read_text() != page:
            print(f"{PAGE} is stale: run python -m hybridwing.config_reference", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
