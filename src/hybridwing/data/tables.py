"""Read the HDR challenge's two table formats and normalise them to one row per image.

Training format (``butterfly_anomaly_train.csv``): ``CAMID, file_url, hybrid_stat`` (hybrid |
non-hybrid), numeric ``subspecies`` codes, ``parent_subspecies_1/2``, ``filename`` (``md5`` optional).
Reference format (``ref_val.csv``): ``CAMID, file_url, hybrid_stat`` (0 | 1), ``subspecies_ref``
names (``a x b`` for hybrids), ``ssp_indicator`` (major | minor | mimic), ``filename``.

Every problem is reported with the file, the line (the header is line 1) and the column.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pandera.pandas as pa

from hybridwing.classes import HYBRID_CLASS

NORMALISED_COLUMNS = [
    "image_id",
    "source",
    "camid",
    "filename",
    "file_url",
    "md5",
    "species",
    "subspecies",
    "is_hybrid",
    "parent_1",
    "parent_2",
    "ssp_indicator",
]
HYBRID_SEPARATOR = " x "
SSP_INDICATORS = ("major", "minor", "mimic")
_MD5 = re.compile(r"^[0-9a-fA-F]{32}$")
_CODE = re.compile(r"^(\d+)(?:\.0*)?$")


class TableError(ValueError):
    """A dataset table that cannot be used; the message lists every problem found."""

    def __init__(self, origin: str, problems: list[str]):
        self.origin = origin
        self.problems = problems
        shown = problems[:20]
        more = f"\n  ... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        super().__init__(f"{origin}: {len(problems)} problem(s)\n  " + "\n  ".join(shown) + more)


def line_of(index: int) -> int:
    """CSV line of a data row by its index in a `read_csv_table` frame (the header is line 1)."""
    return int(index) + 2


@dataclass(frozen=True)
class Taxa:
    """Subspecies names, their numeric codes in the training table, and their species."""

    name_by_code: dict[str, str]
    species_by_name: dict[str, str]

    @classmethod
    def read(cls, path: str | Path) -> Taxa:
        """Read a ``code,subspecies,species`` table (code may be empty for names without one)."""
        frame = read_csv_table(Path(path).read_bytes(), str(path))
        missing = {"code", "subspecies", "species"} - set(frame.columns)
        if missing:
            raise TableError(str(path), [f"missing column(s) {sorted(missing)}"])
        problems = []
        name_by_code: dict[str, str] = {}
        species_by_name: dict[str, str] = {}
        for index, row in frame.iterrows():
            name, species = row["subspecies"].strip(), row["species"].strip()
            if not name or not species:
                problems.append(f"line {line_of(index)}: empty subspecies or species")
                continue
            if name.lower() == HYBRID_CLASS or HYBRID_SEPARATOR in name:
                problems.append(
                    f"line {line_of(index)}, column 'subspecies': {name!r} is reserved for hybrids (the class "
                    "'hybrid', 'a x b')"
                )
                continue
            if name in species_by_name:
                problems.append(f"line {line_of(index)}, column 'subspecies': duplicate name {name!r}")
            species_by_name[name] = species
            if row["code"].strip():
                code = normalise_code(row["code"])
                if code is None or code in name_by_code:
                    problems.append(f"line {line_of(index)}, column 'code': bad or duplicate code {row['code']!r}")
                else:
                    name_by_code[code] = name
        if problems:
            raise TableError(str(path), problems)
        return cls(name_by_code, species_by_name)


def normalise_code(value: str) -> str | None:
    """``'8.0'`` and ``'8'`` -> ``'8'``; anything that is not written as a whole number (``'1e1'``,
    ``'-0'``, ``'8.5'``) -> None."""
    match = _CODE.match(value.strip()) if isinstance(value, str) else None
    return str(int(match.group(1))) if match else None


def _is_md5_or_empty(value: str) -> bool:
    return value == "" or bool(_MD5.match(value))


def _base_columns() -> dict[str, pa.Column]:
    text = {"dtype": str, "nullable": False}
    columns = {
        "CAMID": pa.Column(checks=pa.Check.str_length(min_value=1, error="empty CAMID"), **text),
        "file_url": pa.Column(checks=pa.Check.str_length(min_value=1, error="empty file_url"), **text),
        "filename": pa.Column(checks=pa.Check.str_length(min_value=1, error="empty filename"), unique=True, **text),
    }
    columns["md5"] = pa.Column(
        checks=pa.Check(_is_md5_or_empty, element_wise=True, error="not an md5 checksum (32 hex digits)"),
        required=False,
        **text,
    )
    return columns


def _training_schema(taxa: Taxa) -> pa.DataFrameSchema:
    def known_or_empty(value: str) -> bool:
        return value == "" or normalise_code(value) in taxa.name_by_code

    code_check = pa.Check(
        known_or_empty,
        element_wise=True,
        error="not a known subspecies code written as a whole number "
        f"(known: {', '.join(sorted(taxa.name_by_code, key=int))})",
    )
    columns = _base_columns()
    columns["hybrid_stat"] = pa.Column(
        str, pa.Check.isin(["hybrid", "non-hybrid"], error="hybrid_stat must be 'hybrid' or 'non-hybrid'")
    )
    for name in ("subspecies", "parent_subspecies_1", "parent_subspecies_2"):
        columns[name] = pa.Column(str, code_check, nullable=False)
    return pa.DataFrameSchema(columns, strict=False)


def _reference_schema(taxa: Taxa) -> pa.DataFrameSchema:
    def known_names(value: str) -> bool:
        parts = value.split(HYBRID_SEPARATOR)
        return len(parts) <= 2 and all(part.strip() in taxa.species_by_name for part in parts)

    columns = _base_columns()
    columns["hybrid_stat"] = pa.Column(str, pa.Check.isin(["0", "1"], error="hybrid_stat must be 0 or 1"))
    columns["subspecies_ref"] = pa.Column(
        str,
        [
            pa.Check.str_length(min_value=1, error="empty subspecies_ref"),
            pa.Check(known_names, element_wise=True, error="unknown subspecies name"),
        ],
    )
    columns["ssp_indicator"] = pa.Column(
        str, pa.Check.isin(list(SSP_INDICATORS), error="ssp_indicator must be major, minor or mimic")
    )
    return pa.DataFrameSchema(columns, strict=False)


def _describe_failures(error: pa.errors.SchemaErrors) -> list[str]:
    problems = []
    for case in error.failure_cases.itertuples(index=False):
        if case.check == "column_in_dataframe":
            problems.append(f"missing column {case.failure_case!r}")
            continue
        where = f"line {line_of(case.index)}" if pd.notna(case.index) else "table"
        check = "duplicate value" if case.check == "field_uniqueness" else case.check
        problems.append(f"{where}, column {case.column!r}: {check} (value {case.failure_case!r})")
    return problems


def decode_table(data: bytes, origin: str) -> str:
    """A table's bytes as UTF-8 text (a byte-order mark is dropped); a byte that is not UTF-8 is
    reported with its line and column."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise TableError(origin, ["line 1: the table is UTF-16 text; save it as UTF-8"])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line_start = data.rfind(b"\n", 0, error.start) + 1
        line = data.count(b"\n", 0, error.start) + 1
        byte = data[error.start]
        raise TableError(
            origin,
            [
                f"line {line}, character {error.start - line_start + 1}: byte 0x{byte:02x} is not UTF-8 (save the "
                "table as UTF-8)"
            ],
        ) from None


def csv_records(text: str) -> list[tuple[int, list[str]]]:
    """Each record of a CSV text with the line it starts on (blank lines skipped, as pandas does), so
    that a cell holding a quoted line break does not shift the lines named after it."""
    reader = csv.reader(io.StringIO(text))
    records, line = [], 1
    for record in reader:
        if record:
            records.append((line, record))
        line = reader.line_num + 1
    return records


def read_csv_table(data: bytes, origin: str) -> pd.DataFrame:
    """Parse a CSV table's bytes with every cell as a stripped string (empty for missing); a table
    with no rows, an HTML page in its place, or a row with more cells than the header is refused
    (empty trailing cells, as a trailing comma makes, are dropped). The index is the data row's
    position as `line_of` reads it (its line in the file, less 2)."""
    text = decode_table(data, origin)
    if text.lstrip()[:15].lower().startswith(("<!doctype html", "<html", "<?xml", "<head", "<body")):
        raise TableError(
            origin, ["not a CSV table: this is an HTML or XML page (a login page, an error page or a wrong URL?)"]
        )
    try:
        records = csv_records(text)
        width = len(records[0][1]) if records else 0
        extra = [
            f"line {line}: {len(cells) - width} cell(s) beyond the header's {width} columns "
            f"({', '.join(map(repr, cells[width:]))})"
            for line, cells in records[1:]
            if any(cell.strip() for cell in cells[width:])
        ]
        if extra:
            raise TableError(origin, extra)
        header = [name.strip() for name in records[0][1]] if records else []
        repeated = sorted({name for name in header if name and header.count(name) > 1})
        if repeated:
            raise TableError(
                origin,
                [
                    f"line {records[0][0]}: column {name!r} appears {header.count(name)} times; keep one"
                    for name in repeated
                ],
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pd.errors.ParserWarning)  # extra cells are checked below, by line
            # index_col=False: a trailing comma on every row must not turn the first column into the index
            frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, index_col=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error) as error:
        raise TableError(origin, [f"not a readable CSV table: {error}"]) from error
    if frame.empty:
        raise TableError(origin, ["the table has a header but no rows"])
    if len(records) - 1 == len(frame):
        frame.index = pd.Index([line - 2 for line, _ in records[1:]])
    return frame.apply(lambda column: column.str.strip())


#: The columns each format reads. Any other column of a table is the collection's own (locality,
#: sex, drawer...) and is carried through to the predictions under its name after `CARRIED_PREFIX`.
FORMAT_COLUMNS = {
    "training": {"CAMID", "file_url", "hybrid_stat", "subspecies", "parent_subspecies_1", "parent_subspecies_2"}
    | {"md5", "filename"},
    "reference": {"CAMID", "file_url", "hybrid_stat", "subspecies_ref", "ssp_indicator", "md5", "filename"},
}
#: Before the name of every carried column, so none meets a column of the pipeline's own tables.
CARRIED_PREFIX = "table_"


def carried_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """The columns of a raw table that its format does not read, renamed ``table_NAME``."""
    extra = [name for name in frame.columns if name not in FORMAT_COLUMNS[table_format(frame)]]
    return frame[extra].add_prefix(CARRIED_PREFIX)


def table_format(frame: pd.DataFrame) -> str:
    """``'reference'`` when the table has ``subspecies_ref``, else ``'training'``."""
    return "reference" if "subspecies_ref" in frame.columns else "training"


def normalise_table(frame: pd.DataFrame, source: str, origin: str, taxa: Taxa) -> pd.DataFrame:
    """Validate a raw challenge table and return one normalised row per image.

    `source` is the table's name in the config (``train``, ``dev``...), `origin` the file or URL
    named in error messages.
    """
    fmt = table_format(frame)
    schema = _training_schema(taxa) if fmt == "training" else _reference_schema(taxa)
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as error:
        raise TableError(origin, _describe_failures(error)) from None
    rows = _training_rows(frame, taxa) if fmt == "training" else _reference_rows(frame, taxa)
    problems = [problem for _, problem in rows if problem]
    if problems:
        raise TableError(origin, problems)
    table = pd.DataFrame([row for row, _ in rows], columns=NORMALISED_COLUMNS[2:], index=frame.index)
    table.insert(0, "source", source)
    table.insert(0, "image_id", [Path(name).stem for name in frame["filename"]])
    duplicated = table["image_id"].duplicated(keep=False)
    if duplicated.any():
        raise TableError(
            origin,
            [
                f"line {line_of(i)}, column 'filename': image id {table.at[i, 'image_id']!r} is not unique"
                for i in table.index[duplicated]
            ],
        )
    contradictions = contradictory_labels(table)
    if contradictions:
        raise TableError(origin, contradictions)
    return table[NORMALISED_COLUMNS].reset_index(drop=True)


def contradictory_labels(table: pd.DataFrame) -> list[str]:
    """Rows that give one photograph (same md5) or one specimen (same CAMID) different labels."""
    label = table["subspecies"].where(
        ~table["is_hybrid"],
        [f"hybrid {' x '.join(sorted(pair))}" for pair in zip(table["parent_1"], table["parent_2"])],
    )
    problems = []
    for column, what in (("md5", "photograph (md5)"), ("camid", "specimen (CAMID)")):
        rows = table[table[column] != ""].assign(label=label)
        for value, group in rows.groupby(column, sort=False):
            if group["label"].nunique() > 1:
                where = ", ".join(f"line {line_of(i)} {lab!r}" for i, lab in zip(group.index, group["label"]))
                problems.append(f"column {column!r}: one {what} {value!r} has different labels: {where}")
    return problems


def _species_of(names: list[str], taxa: Taxa, where: str) -> tuple[str, str]:
    species = {taxa.species_by_name[name] for name in names}
    if len(species) != 1:
        return "", f"{where}: parents belong to different species ({', '.join(sorted(species))})"
    return species.pop(), ""


def _training_rows(frame: pd.DataFrame, taxa: Taxa) -> list[tuple[dict, str]]:
    rows = []
    has_md5 = "md5" in frame.columns
    for index, raw in frame.iterrows():
        line = f"line {line_of(index)}"
        hybrid = raw["hybrid_stat"] == "hybrid"
        code = normalise_code(raw["subspecies"])
        parent_codes = [normalise_code(raw[f"parent_subspecies_{i}"]) for i in (1, 2)]
        parents = [taxa.name_by_code[c] for c in parent_codes if c]
        subspecies = "" if hybrid or code is None else taxa.name_by_code[code]
        species, problem = "", ""
        if hybrid and len(parents) != 2:
            problem = f"{line}, column 'parent_subspecies_1/2': a hybrid needs both parent codes"
        elif hybrid and parents[0] == parents[1]:
            problem = (
                f"{line}, column 'parent_subspecies_1/2': a hybrid needs two different parents (both {parents[0]})"
            )
        elif hybrid and raw["subspecies"]:
            named = raw["subspecies"]
            problem = f"{line}, column 'subspecies': a hybrid row must leave subspecies empty (it names {named!r})"
        elif not hybrid and code is None:
            problem = f"{line}, column 'subspecies': empty label for a non-hybrid"
        else:
            species, problem = _species_of(parents if hybrid else [subspecies], taxa, line)
        rows.append(
            (
                {
                    "camid": raw["CAMID"],
                    "filename": raw["filename"],
                    "file_url": raw["file_url"],
                    "md5": raw["md5"].lower() if has_md5 else "",
                    "species": species,
                    "subspecies": subspecies,
                    "is_hybrid": hybrid,
                    "parent_1": parents[0] if hybrid and parents else "",
                    "parent_2": parents[1] if hybrid and len(parents) == 2 else "",
                    "ssp_indicator": "",
                },
                problem,
            )
        )
    return rows


def _reference_rows(frame: pd.DataFrame, taxa: Taxa) -> list[tuple[dict, str]]:
    rows = []
    has_md5 = "md5" in frame.columns
    for index, raw in frame.iterrows():
        line = f"line {line_of(index)}"
        names = [part.strip() for part in raw["subspecies_ref"].split(HYBRID_SEPARATOR)]
        hybrid = raw["hybrid_stat"] == "1"
        problem = ""
        if hybrid != (len(names) == 2):
            problem = (
                f"{line}, column 'hybrid_stat': {raw['hybrid_stat']} disagrees with "
                f"subspecies_ref {raw['subspecies_ref']!r}"
            )
        elif hybrid and names[0] == names[1]:
            problem = (
                f"{line}, column 'subspecies_ref': a hybrid needs two different parents ({raw['subspecies_ref']!r})"
            )
        species, species_problem = _species_of(names, taxa, line)
        rows.append(
            (
                {
                    "camid": raw["CAMID"],
                    "filename": raw["filename"],
                    "file_url": raw["file_url"],
                    "md5": raw["md5"].lower() if has_md5 else "",
                    "species": species,
                    "subspecies": "" if hybrid else names[0],
                    "is_hybrid": hybrid,
                    "parent_1": names[0] if hybrid else "",
                    "parent_2": names[1] if hybrid and len(names) == 2 else "",
                    "ssp_indicator": raw["ssp_indicator"],
                },
                problem or species_problem,
            )
        )
    return rows


def carried_names(metadata: pd.DataFrame) -> list[str]:
    """The carried columns of a metadata table (or a part of one) that hold a value in any row."""
    return [
        name for name in metadata.columns if name.startswith(CARRIED_PREFIX) and metadata[name].astype(str).ne("").any()
    ]


def read_metadata(path: str | Path) -> pd.DataFrame:
    """A normalised table written by this package (a fetch manifest or ``metadata.csv``)."""
    metadata = pd.read_csv(path, dtype=str, keep_default_na=False)
    metadata["is_hybrid"] = metadata["is_hybrid"].map({"True": True, "False": False})
    return metadata
