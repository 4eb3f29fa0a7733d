"""The ``hybridwing`` command: tools that work without Snakemake."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from hybridwing.classes import HYBRID_CLASS
from hybridwing.data.tables import (
    CARRIED_PREFIX,
    TableError,
    Taxa,
    normalise_table,
    read_csv_table,
    table_format,
)
from hybridwing.text import printable, spreadsheet_safe

#: The Heliconius taxa of the challenge's tables, shipped with the package.
DEFAULT_TAXA = Path(__file__).parent / "data" / "heliconius_taxa.csv"


def check_table(table: Path, taxa_path: Path) -> int:
    """Validate a challenge table and print what it holds; exit status 1 when it has problems."""
    try:
        taxa = Taxa.read(taxa_path)
        frame = read_csv_table(table.read_bytes(), str(table))
        normalised = normalise_table(frame, table.stem, str(table), taxa)
    except (TableError, OSError) as error:
        print(error, file=sys.stderr)
        return 1
    print(f"{table}: {table_format(frame)} table, {len(normalised)} images, {normalised['is_hybrid'].sum()} hybrids")
    labels = normalised["subspecies"].where(~normalised["is_hybrid"], HYBRID_CLASS)
    print(labels.value_counts().rename("images").to_string())
    return 0


def table_by_file_name(path: Path) -> pd.DataFrame:
    """A user's table (any CSV with a ``filename`` column) indexed by file name, to join to
    photographs; its columns named ``table_NAME``."""
    table = read_csv_table(path.read_bytes(), str(path))
    if "filename" not in table.columns:
        raise TableError(str(path), ["no column 'filename' to join the photographs by"])
    repeated = table["filename"][table["filename"].duplicated()].unique()
    if len(repeated):
        raise TableError(str(path), [f"column 'filename': {name!r} is listed more than once" for name in repeated])
    return table.set_index("filename").add_prefix(CARRIED_PREFIX)


def explanation_file(folder: Path, path: Path, written: set[Path]) -> Path:
    """``STEM.png`` in `folder` for photograph `path`, numbered (``STEM_2.png``...) after a photograph
    of the same stem in this run."""
    out, number = folder / f"{path.stem}.png", 1
    while out in written:
        number += 1
        out = folder / f"{path.stem}_{number}.png"
    written.add(out)
    return out


def predict(
    model_dir: Path, inputs: list[str], batch_size: int, table_path: Path | None = None, explain_dir: Path | None = None
) -> int:
    """Print ``path,subspecies,...`` and every hybrid score for each image (the header always), and
    with `table_path` the columns of that table's row of the same file name; images that cannot be
    read or are no photograph are reported on stderr and skipped (exit status 2), and so is a folder
    with no image at all. With `explain_dir`, each photograph's explanation is drawn there."""
    import torch

    from hybridwing.data.fetch import FetchError, FetchSettings, read_regular_file
    from hybridwing.data.images import ImageDecodeError, check_proportions, decode_image
    from hybridwing.model.description import ModelFolderError
    from hybridwing.score.explain import explain
    from hybridwing.score.predictor import Predictor, image_files

    try:
        predictor = Predictor.load(model_dir)
    except (ModelFolderError, OSError) as error:
        print(error, file=sys.stderr)
        return 1
    try:
        carried = table_by_file_name(table_path) if table_path else pd.DataFrame()
    except (TableError, OSError) as error:
        print(error, file=sys.stderr)
        return 1
    files, problems = image_files(inputs)
    write = sys.stdout.write
    columns = ["path", *predictor.columns()]
    write(pd.DataFrame(columns=columns + list(carried.columns)).to_csv(index=False))
    for problem in problems:
        print(problem, file=sys.stderr)
    failed = len(problems)
    paths, batch, masks, written = [], [], [], set()
    if explain_dir:
        explain_dir.mkdir(parents=True, exist_ok=True)
    for number, path in enumerate(files, 1):
        try:
            photograph = decode_image(read_regular_file(path, FetchSettings.max_bytes), printable(path)).image
            check_proportions(photograph, printable(path))
        except (ImageDecodeError, FetchError) as error:
            print(error, file=sys.stderr)
            failed += 1
        else:
            wings, mask = predictor.model_input_and_mask(photograph, path.stem)  # one photograph in memory at a time
            batch.append(wings)
            masks.append(mask)
            paths.append(path)
        if paths and (len(paths) == batch_size or number == len(files)):
            table = predictor.ranked_table(torch.stack(batch))
            table.insert(0, "path", [printable(p) for p in paths])
            if len(carried.columns):
                rows = carried.reindex([printable(p.name) for p in paths]).fillna("")
                table = table.join(rows.reset_index(drop=True))
            write(spreadsheet_safe(table).to_csv(index=False, header=False, float_format="%.4f"))
            sys.stdout.flush()
            for wings, mask, path in zip(batch, masks, paths) if explain_dir else ():
                explain(predictor, wings, mask).picture().save(explanation_file(explain_dir, path, written))
            paths, batch, masks = [], [], []
    return 2 if failed else 0


def export_submission(model_dir: Path, out: Path) -> int:
    """Write the challenge's code-submission folder for a trained model."""
    from hybridwing.model.description import ModelFolderError
    from hybridwing.score.export import NotOnWhitelist
    from hybridwing.score.export import export_submission as export

    try:
        export(model_dir, out)
    except (ModelFolderError, FileExistsError, NotOnWhitelist) as error:
        print(error, file=sys.stderr)
        return 1
    print(f"{out}: model.py, the networks (torch.export programs) and the modules prediction needs; zip its contents")
    return 0


#: The columns `hybridwing scores` prints of results/score/summary.csv.
SUMMARY_COLUMNS = [
    "table",
    "score",
    "n_images",
    "n_hybrids",
    "challenge_score",
    "challenge_score_ci90",
    "major_recall",
    "minor_recall",
    "mimic_recall",
    "roc_auc",
]


#: The challenge's three parts, each a hybrid recall in the summary.
PARTS = ("major", "minor", "mimic")


def show_scores(summary: Path) -> int:
    """Print the challenge score of every scored table (of the hybrid score the model calls with)."""

    if not summary.is_file():
        print(f"{summary}: not found; run the pipeline first", file=sys.stderr)
        return 1
    try:
        table = pd.read_csv(summary, keep_default_na=False)
        # a summary from before score.method lists each table's pipeline score first
        main_rows = table[table["chosen"]] if "chosen" in table else table.drop_duplicates("table")
        main_rows = main_rows[SUMMARY_COLUMNS]
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, KeyError, OSError) as error:
        reason = " ".join(str(error).split())  # pandas' messages run over lines
        print(f"{summary}: not a score summary of hybridwing ({error.__class__.__name__}: {reason})", file=sys.stderr)
        return 1
    print("challenge score (of the score the model calls with, score.method) by table; intervals are bootstrap 90%:")
    print(main_rows.to_string(index=False))
    for row in main_rows.itertuples():
        zeroed = [part for part in PARTS if pd.to_numeric(getattr(row, f"{part}_recall"), errors="coerce") == 0]
        if zeroed:
            print(
                f"{row.table}: the {' and '.join(zeroed)} recall is 0 (no such hybrid scores above its part's "
                "threshold), and a harmonic mean with a 0 in it is 0: the challenge score says nothing of the "
                "other parts"
            )
    return 0


def describe(model_dir: Path) -> int:
    """Print the model card the fine-tune wrote into a model folder."""
    from hybridwing.model.card import MODEL_CARD

    card = model_dir / MODEL_CARD
    if not card.is_file():
        print(f"{model_dir}: no {MODEL_CARD} (not a model folder, or one written before model cards)", file=sys.stderr)
        return 1
    print(card.read_text(), end="")
    return 0


def next_free_name(path: Path) -> Path:
    """`path`, or the first of ``stem_2.suffix``, ``stem_3.suffix``... that does not exist."""
    candidate, number = path, 2
    while candidate.exists():
        candidate, number = path.with_name(f"{path.stem}_{number}{path.suffix}"), number + 1
    return candidate


def review(table: str, results: Path, taxa_path: Path, count: int, out: Path | None) -> int:
    """Write the next photographs of `table` to label (triage bands C, then B) as a CSV in the
    training table's format."""

    from hybridwing.data.tables import read_metadata
    from hybridwing.review.batch import review_batch

    if out is not None and not out.parent.is_dir():
        print(f"--out {out}: the folder {out.parent} does not exist", file=sys.stderr)
        return 1
    triage_path = results / "review" / table / "triage.csv"
    if not triage_path.is_file():
        print(f"{triage_path}: not found; run the pipeline (rule triage) first", file=sys.stderr)
        return 1
    try:
        taxa = Taxa.read(taxa_path)
    except (TableError, OSError) as error:
        print(error, file=sys.stderr)
        return 1
    if out is not None and out.exists():
        print(
            f"{out} exists already (it may hold a curator's labels): give --out a new file, or move it away first",
            file=sys.stderr,
        )
        return 1
    triage = pd.read_csv(triage_path, keep_default_na=False, dtype={"label": str})
    batch = review_batch(triage, read_metadata(results / "data" / "metadata.csv"), taxa, count, workdir=results.parent)
    out = out or next_free_name(Path(f"review_{table}.csv"))
    try:
        with open(out, "x", newline="") as stream:  # never replaces a file, even one written meanwhile
            spreadsheet_safe(batch).to_csv(stream, index=False)
    except FileExistsError:
        print(f"{out} appeared while the batch was made: nothing written; run again", file=sys.stderr)
        return 1
    bands = batch["band"].value_counts()
    print(
        f"{out}: {len(batch)} photographs to label "
        f"({', '.join(f'band {b}: {n}' for b, n in sorted(bands.items())) or 'none in bands B or C'})."
    )
    print("Correct hybrid_stat, subspecies and the parent codes, then set dataset.extra_labels to this file and rerun.")
    return 0


def at_least_one(text: str) -> int:
    """A whole number of 1 or more (argparse type)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hybridwing", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check-table", help="validate a training or reference table")
    check.add_argument("table", type=Path)
    check.add_argument("--taxa", type=Path, default=DEFAULT_TAXA, help="code,subspecies,species table")
    predict_parser = commands.add_parser("predict", help="subspecies and hybrid score of photographs, as CSV")
    predict_parser.add_argument("model_dir", type=Path, help="a trained model folder (results/finetune/model)")
    predict_parser.add_argument("images", nargs="+", help="image files or folders of images")
    predict_parser.add_argument("--batch-size", type=int, default=16)
    predict_parser.add_argument(
        "--table", type=Path, help="a CSV with a filename column: its columns are added to each photograph's row"
    )
    predict_parser.add_argument(
        "--explain",
        type=Path,
        metavar="DIR",
        help="draw each photograph's explanation into DIR as STEM.png: where on the wings its two likeliest "
        "subspecies are seen (cyan the first, magenta the second, grey off the wings)",
    )
    export = commands.add_parser("export-submission", help="write a folder for the HDR challenge's ingestion program")
    export.add_argument("model_dir", type=Path)
    export.add_argument("out", type=Path)
    describe_parser = commands.add_parser("describe", help="print a model folder's card (MODEL_CARD.md)")
    describe_parser.add_argument("model_dir", type=Path, help="a trained model folder (results/finetune/model)")
    scores = commands.add_parser("scores", help="print the challenge scores of a run")
    scores.add_argument("summary", type=Path, nargs="?", default=Path("results/score/summary.csv"))
    review_parser = commands.add_parser("review", help="the next photographs of a table to label, as a CSV to fill in")
    review_parser.add_argument("table", help="a scored table or split (train, val, test, dev...)")
    review_parser.add_argument("--results", type=Path, default=Path("results"), help="the run's results folder")
    review_parser.add_argument("--taxa", type=Path, default=DEFAULT_TAXA, help="code,subspecies,species table")
    review_parser.add_argument("--count", type=at_least_one, default=50, help="how many photographs (default 50)")
    review_parser.add_argument(
        "--out",
        type=Path,
        help="a new CSV to write (default review_TABLE.csv, or review_TABLE_2.csv... when that exists); "
        "never overwritten",
    )
    arguments = parser.parse_args(argv)
    try:
        return run(arguments)
    except OSError as error:  # a full disk, a file that vanished or cannot be read: one line, no traceback
        print(f"hybridwing {arguments.command}: {error}", file=sys.stderr)
        return 1


def run(arguments: argparse.Namespace) -> int:
    if arguments.command == "review":
        return review(arguments.table, arguments.results, arguments.taxa, arguments.count, arguments.out)
    if arguments.command == "scores":
        return show_scores(arguments.summary)
    if arguments.command == "predict":
        return predict(arguments.model_dir, arguments.images, arguments.batch_size, arguments.table, arguments.explain)
    if arguments.command == "export-submission":
        return export_submission(arguments.model_dir, arguments.out)
    if arguments.command == "describe":
        return describe(arguments.model_dir)
    return check_table(arguments.table, arguments.taxa)


if __name__ == "__main__":
    sys.exit(main())
