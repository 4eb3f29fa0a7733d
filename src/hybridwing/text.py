"""Text that is safe to show: file names with any bytes, and CSV cells a spreadsheet would run."""

from __future__ import annotations

import os

import pandas as pd

#: A cell starting with one of these is a formula (or becomes one) in Excel, LibreOffice and Sheets.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def printable(path: str | os.PathLike) -> str:
    """A path as text that any output can take: bytes that are not UTF-8 (kept by Python as lone
    surrogates) are written as ``\\xff`` escapes."""
    return os.fspath(path).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def safe_cell(value: object) -> object:
    """A text cell that a spreadsheet would read as a formula, quoted with a leading apostrophe
    (shown as text, never run); anything else as it is."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with every text cell passed through `safe_cell`, for a CSV that people open."""
    text = [
        name
        for name in frame.columns
        if not (pd.api.types.is_numeric_dtype(frame[name]) or pd.api.types.is_bool_dtype(frame[name]))
    ]
    return frame.assign(**{name: frame[name].map(safe_cell) for name in text})
