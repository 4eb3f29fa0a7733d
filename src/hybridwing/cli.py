"""The ``hybridwing`` command: tools that work without Snakemake."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hybridwing.data.tables import TableError, Taxa, normalise_table, read_csv_text, table_format

DEFAULT_TAXA = Path("config/heliconius_taxa.csv")


def check_table(table: Path, taxa_path: Path) -> int:
    """Validate a challenge table and print what it holds; exit status 1 when it has problems."""
    try:
        taxa = Taxa.read(taxa_path)
        frame = read_csv_text(table.read_text(encoding="utf-8-sig"), str(table))
        normalised = normalise_table(frame, table.stem, str(table), taxa)
    except (TableError, OSError) as error:
        print(error, file=sys.stderr)
        return 1
    print(f"{table}: {table_format(frame)} table, {len(normalised)} images, {normalised['is_hybrid'].sum()} hybrids")
    labels = normalised["subspecies"].where(~normalised["is_hybrid"], "hybrid")
    print(labels.value_counts().rename("images").to_string())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hybridwing", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check-table", help="validate a training or reference table")
    check.add_argument("table", type=Path)
    check.add_argument("--taxa", type=Path, default=DEFAULT_TAXA, help="code,subspecies,species table")
    arguments = parser.parse_args(argv)
    return check_table(arguments.table, arguments.taxa)


if __name__ == "__main__":
    sys.exit(main())
