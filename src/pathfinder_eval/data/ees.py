"""Explore Education Statistics (EES) CSV reader that keeps DfE's symbols instead of guessing.

EES cells hold either a number or a symbol (`c` suppressed, `x` not available ...). Files are
read entirely as strings so no symbol is silently turned into NaN or 0; `ees_value` then
splits a column into numbers and status symbols.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pathfinder_eval.data.families import canonicalise, detect_family
from pathfinder_eval.errors import DataError

MISSING = "missing"

SYMBOLS: Mapping[str, str] = {
    "c": "suppressed to protect confidentiality (1 to 5, or secondary suppression)",
    "x": "not available",
    "z": "not applicable",
    "u": "low reliability (value withheld)",
    "low": "rounds to zero, but is not zero",
    "k": "percentage below 0.5 (rounds to zero)",
    ":": "not available (symbol used before 2021)",
    "~": "rounds to zero (symbol used before 2021)",
    MISSING: "empty cell or no value",
}

# The status of the values an analysis plan withholds: those from the first start on.
WITHHELD = "after_first_start"

# Statuses the package derives (not DfE symbols); "" means the value is usable.
DERIVED_STATUSES: Mapping[str, str] = {
    "no_denominator": "no denominator row for this unit and year",
    "zero_denominator": "denominator is zero",
    "missing_denominator": "the denominator (the unit's size beside its value) is empty",
    "partial_aggregate": "summed LA rows do not cover the whole former LA",
    WITHHELD: "on or after the first start: withheld from the analysis plan",
    "incomplete_sum": "one of the rows the indicator adds up is missing for this area and year",
}

REQUIRED_COLUMNS = ("time_period", "geographic_level")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


@dataclass(frozen=True)
class EESTable:
    """One EES file as read.

    frame: every column as strings, in file order; the index is the 0-based data row, so
    `index + 1` is the row number in error messages. Columns of a recognised family carry
    their canonical names (see `families.py`).
    family: the recognised family name, or None for an EES file of no known family.
    sha256: hex digest of the file bytes, for provenance.
    """

    frame: pd.DataFrame
    family: str | None
    path: Path
    sha256: str


def read_ees_csv(path: Path | str) -> EESTable:
    """Read an EES CSV as strings (BOM tolerated), recognise its family, check its shape."""
    path = Path(path)
    if not path.is_file():
        raise DataError(
            "file not found",
            file=str(path),
            fix="check the path, or download the file from Explore Education Statistics",
        )
    raw = path.read_bytes()
    name = path.name
    empty = DataError(
        "file is empty", file=name, fix="download the file again from Explore Education Statistics"
    )
    if not raw.removeprefix(b"\xef\xbb\xbf").strip():
        raise empty
    try:
        frame = csv_frame(
            path,
            fix="download the file again from Explore Education Statistics; do not edit it by hand",
            dtype=str,
            keep_default_na=False,
        )
    except pd.errors.EmptyDataError as exc:
        raise empty from exc
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataError(
            f"cannot be read as a UTF-8 CSV ({exc})",
            file=name,
            fix="download the CSV again from Explore Education Statistics; do not re-save it "
            "from a spreadsheet",
        ) from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    short = _short_row(raw.decode("utf-8-sig"), frame)
    if short is not None:
        line, fields = short
        raise DataError(
            f"line {line} has {fields} of the header's {frame.shape[1]} fields (a truncated or "
            "damaged row)",
            file=name,
            row=line - 1,
            fix="download the file again from Explore Education Statistics; do not edit it by hand",
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(
            f"not an Explore Education Statistics file: no column(s) {', '.join(missing)}",
            file=name,
            fix="use the 'underlying data' CSV from the EES publication, or read a tidy file "
            "with pathfinder_eval.data.tidy",
        )
    if frame.empty:
        raise DataError(
            "has a header but no data rows",
            file=name,
            fix="download the full file from Explore Education Statistics",
        )
    family = detect_family(name, frame.columns)
    if family is not None:
        frame = canonicalise(frame, family, file=name)
    return EESTable(frame, family, path, hashlib.sha256(raw).hexdigest())


def csv_frame(path: Path, fix: str, **options: Any) -> pd.DataFrame:
    """pd.read_csv (UTF-8, BOM tolerated) that never takes a row's extra field for an index:
    pandas silently made the first column the index when the rows had one field more than the
    header (a trailing comma), and every column shifted by one. Such a row is a DataError
    naming its line."""
    check_header(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", pd.errors.ParserWarning)
        try:
            frame = pd.read_csv(path, encoding="utf-8-sig", index_col=False, **options)
        except pd.errors.ParserError as exc:  # a later row than the first with one too many
            raise extra_field(exc, path, fix) or exc from None
    if any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
        width = frame.shape[1]
        line, fields = next((line, n) for line, n in record_widths(path) if n > width)
        raise too_many_fields(path, line, fields, width, fix)
    return frame


def too_many_fields(path: Path, line: int, fields: int, width: int, fix: str) -> DataError:
    """The error for a row with more fields than the header's `width`, naming its line."""
    return DataError(
        f"line {line} has {fields} fields, the header {width} (a comma at the end of the "
        "line, or a field too many)",
        file=Path(path).name,
        row=line - 1,
        fix=fix,
    )


def extra_field(exc: pd.errors.ParserError, path: Path, fix: str) -> DataError | None:
    """`too_many_fields` for pandas' "Expected N fields in line L, saw M" (a row after the
    first with a field too many), None for any other parser error."""
    found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
    if found is None:
        return None
    width, line, fields = map(int, found.groups())
    return too_many_fields(path, line, fields, width, fix)


def record_widths(path: Path) -> Iterator[tuple[int, int]]:
    """(line, number of fields) of each non-blank row after the header, as csv reads them:
    pandas only warns, and drops the field, when the first row has one more than the header."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        next(reader, None)
        for row in reader:
            if row:  # (blank lines are skipped, as pandas skips them)
                yield reader.line_num, len(row)


def check_header(path: Path) -> None:
    """The header of a comma-separated file: a file separated by semicolons or tabs (a
    spreadsheet's export in some locales) read as one column, and the advice was about the
    missing column or a comma too many; a name given twice was read as 'rate' and 'rate.1',
    and the second silently unused. Both are DataErrors naming what to do."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            header = next(csv.reader(fh), [])
    except (UnicodeDecodeError, OSError, csv.Error):  # pandas' reading says what is wrong
        return
    names = [h.strip() for h in header]
    if len(names) == 1:
        for mark, called in ((";", "semicolons"), ("\t", "tabs")):
            if mark in names[0]:
                raise DataError(
                    f"the header is separated by {called}, not commas ({names[0][:60]!r})",
                    file=Path(path).name,
                    fix="save the file as comma-separated CSV (in a spreadsheet: CSV UTF-8, "
                    "comma delimited), with '.' as the decimal mark",
                )
    seen: dict[str, int] = {}
    for i, name in enumerate(names, start=1):
        if name in seen and name:
            raise DataError(
                f"the header names column {name!r} twice (columns {seen[name]} and {i})",
                file=Path(path).name,
                fix="give each column its own name, or remove the repeated column",
            )
        seen.setdefault(name, i)


def _short_row(text: str, frame: pd.DataFrame) -> tuple[int, int] | None:
    """The first row with fewer fields than the header, as (line, fields), or None. pandas
    pads such a row with empty cells, so only a frame whose last column has an empty cell
    can hold one, and only then is the text parsed again (EES files have no empty cells)."""
    if frame.empty or not (frame.iloc[:, -1].str.strip() == "").any():
        return None
    reader = csv.reader(io.StringIO(text))
    width = len(next(reader))
    for row in reader:
        if row and len(row) < width:
            return reader.line_num, len(row)
    return None


def ees_value(series: pd.Series, *, file: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Split EES cells into (float values, status strings), both shaped like `series`.

    A number gives its value and status ""; a symbol gives NaN and the symbol (see SYMBOLS);
    an empty cell gives NaN and `MISSING`. Symbols are never coerced to 0. Anything else is a
    DataError naming the file, the column, the row (from the index) and the value.
    """
    text = series.astype(str).str.strip()
    lowered = text.str.lower()
    is_symbol = lowered.isin(set(SYMBOLS) - {MISSING})
    is_empty = text == ""
    is_number = text.str.match(_NUMBER)
    bad = ~(is_symbol | is_empty | is_number)
    if bad.any():
        position = int(np.flatnonzero(bad.to_numpy())[0])
        label = series.index[position]
        raise DataError(
            f"value {text.iloc[position]!r} is neither a number nor an EES symbol "
            f"({', '.join(s for s in SYMBOLS if s != MISSING)})",
            file=file,
            where=str(series.name),
            row=int(label) + 1 if isinstance(label, (int, np.integer)) else None,
            fix="correct the cell, or download the file again from Explore Education Statistics",
        )
    values = pd.to_numeric(text.where(is_number), errors="coerce").to_numpy(dtype="float64")
    status = np.where(is_number, "", np.where(is_empty, MISSING, lowered)).astype(str)
    return values, status
