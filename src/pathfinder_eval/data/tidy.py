"""Readers for tidy outcome files (one row per unit x period): CSV, Parquet and Stata .dta.

Each returns a DataFrame as stored (the panel checks columns and types) or a DataError that
names the file and says how to fix it.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pathfinder_eval.data.ees import MISSING, SYMBOLS, csv_frame
from pathfinder_eval.errors import DataError


def _read_csv(path: Path, text: tuple[str, ...] = ()) -> pd.DataFrame:
    frame = csv_frame(
        path,
        fix="remove the extra field (often a comma at the end of the line)",
        dtype=dict.fromkeys(text, str),
    )
    if len(frame) and frame.iloc[:, -1].isna().any():  # pandas pads a short row with NaN
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh)
            width = len(next(reader))
            for row in _rows(reader):
                if any(f.strip() for f in row) and len(row) < width:  # pandas skips blank ones
                    raise DataError(
                        f"line {reader.line_num} has {len(row)} of the header's {width} fields "
                        "(a truncated or damaged row; it was read as empty cells)",
                        file=path.name,
                        row=reader.line_num - 1,
                        fix="write every field of the row, leaving a field empty (,,) where "
                        "there is no value",
                    )
    return frame


def _rows(reader: Any) -> Iterator[list[str]]:
    """The csv reader's rows, stopping quietly at what pandas read and it cannot (a field over
    its 131,072-character limit): the check for short rows then ends there."""
    while True:
        try:
            yield next(reader)
        except (StopIteration, csv.Error):
            return


def _read_parquet(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path)


def _read_dta(path: Path) -> pd.DataFrame:
    import pyreadstat  # here: 0.1 s of imports (narwhals too) that only Stata files need

    frame, _meta = pyreadstat.read_dta(str(path))
    return frame


READERS: dict[str, Callable[[Path], pd.DataFrame]] = {
    ".csv": _read_csv,
    ".parquet": _read_parquet,
    ".pq": _read_parquet,
    ".dta": _read_dta,
}


def file_type(path: Path) -> str:
    """The suffix of a readable, non-empty data file (.csv, .parquet, .pq or .dta), or a
    DataError saying what is wrong with it."""
    suffix = path.suffix.lower()
    if suffix not in READERS:
        raise DataError(
            f"unknown file type {suffix or '(no extension)'!r}",
            file=path.name,
            fix=f"save the data as one of {', '.join(READERS)}",
        )
    if not path.is_file():
        raise DataError("file not found", file=str(path), fix="check the path")
    if path.stat().st_size == 0:
        raise DataError("file is empty", file=path.name, fix="export the data again")
    return suffix


def unreadable(path: Path, suffix: str, exc: Exception) -> DataError:
    """The error for a file its reader cannot parse (each backend raises its own types)."""
    if isinstance(exc, pd.errors.EmptyDataError):
        return DataError("file is empty", file=path.name, fix="export the data again")
    if isinstance(exc, UnicodeDecodeError):
        return DataError(
            f"is not UTF-8 text (byte {exc.object[exc.start : exc.start + 1]!r} at byte "
            f"{exc.start:,})",
            file=path.name,
            fix="save it as 'CSV UTF-8' (a spreadsheet's plain 'CSV' may use another encoding)",
        )
    return DataError(
        f"cannot be read as {suffix[1:]} ({type(exc).__name__}: {exc})",
        file=path.name,
        fix=f"check that the file really is {suffix[1:]} (not renamed) and export it again",
    )


def read_tidy(path: Path | str, text: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read a tidy CSV (UTF-8, BOM tolerated), Parquet or Stata file chosen by its extension;
    a CSV's `text` columns as written (ids: '01' stays '01', not the number 1)."""
    path = Path(path)
    suffix = file_type(path)
    try:
        frame = _read_csv(path, text) if suffix == ".csv" else READERS[suffix](path)
    except DataError:
        raise
    except Exception as exc:  # each backend raises its own types: report them all the same way
        raise unreadable(path, suffix, exc) from exc
    if frame.empty:
        raise DataError(
            "has no data rows",
            file=path.name,
            fix="export the data again with its rows",
        )
    return frame


# Period ordinals beyond this are not periods (years, quarters and months stay far below).
MAX_ORDINAL = 2**31


UNIT_FIX = "give every row its unit (LA name or code, or cluster id), or remove the row"


def unit_ids(raw: pd.DataFrame, column: str, file: str, first_row: int = 1) -> pd.Series:
    """The unit identifiers of `column` as stripped text; a missing one is an error naming
    its row (a unit id cannot be guessed; `first_row`: the file row of raw's first row)."""
    return identifiers(raw, column, file, "unit", UNIT_FIX, first_row)


def unit_codes(raw: pd.DataFrame, column: str, file: str) -> tuple[np.ndarray, list[str]]:
    """`unit_ids` as each row's code into the distinct identifiers (identifier_codes)."""
    return identifier_codes(raw, column, file, "unit", UNIT_FIX)


def identifiers(
    raw: pd.DataFrame, column: str, file: str, what: str, fix: str, first_row: int = 1
) -> pd.Series:
    """The `what` identifiers of `column` as stripped text (Python strings, one per row); a
    missing one is an error naming its row, since rows with no id would otherwise share one
    ('nan') or be dropped. Whole numbers stored as floats (Stata, Parquet: 838.0) are read as
    the integers they are."""
    codes, labels = identifier_codes(raw, column, file, what, fix, first_row)
    text = np.array(labels, dtype=object)[codes]
    return pd.Series(text, index=raw.index, dtype=object, name=column)


def identifier_codes(
    raw: pd.DataFrame, column: str, file: str, what: str, fix: str, first_row: int = 1
) -> tuple[np.ndarray, list[str]]:
    """`identifiers` as each row's code into the distinct identifiers, in the order they
    first appear: the text is made once per distinct value, not per row of a long file."""
    codes, labels = id_codes(raw[column])
    blank = np.flatnonzero(labels == "")  # (a missing id has code −1: not among them)
    missing = (codes < 0) | np.isin(codes, blank)
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise DataError(
            f"{what} identifier is missing",
            file=file,
            where=f"column {column}",
            row=row + first_row,
            fix=fix,
        )
    return codes, labels.tolist()


def numbers(values: pd.Series) -> pd.Series:
    """A column as float numbers, NaN where it gives none: text that is not a number, and
    missing values (a pandas nullable boolean's True and False read as 1 and 0)."""
    out = pd.to_numeric(values, errors="coerce")
    if pd.api.types.is_bool_dtype(out) or isinstance(out.dtype, pd.api.extensions.ExtensionDtype):
        out = pd.Series(out.to_numpy(dtype=float, na_value=np.nan), index=values.index)
    return out


def id_text(values: pd.Series) -> pd.Series:
    """Identifiers as stripped text, whole numbers stored as floats (Stata, Parquet: 838.0)
    read as the integers they are ('838', not '838.0')."""
    if pd.api.types.is_float_dtype(values) and (values.dropna() % 1 == 0).all():
        values = values.astype("Int64")
    return values.astype("string").str.strip()


def id_codes(values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Each row's code (−1: missing) into the distinct identifiers as `id_text` reads them
    ('838', not '838.0'), read once per distinct value: a long frame repeats each unit on
    every row, and text per row was most of a large frame's wait."""
    if values.dtype == object:  # Python objects: 3 and 3.0 are one key, yet '3' and '3.0'
        codes, labels = pd.factorize(id_text(values))
        return codes, pd.Index(labels)
    raw, uniques = pd.factorize(values)
    text = id_text(pd.Series(uniques, dtype=values.dtype))
    merged, labels = pd.factorize(text)  # two spellings read as one ('3' and 3.0)
    codes = np.full(len(raw), -1, dtype=np.intp)  # all missing: no distinct value at all
    codes[raw >= 0] = merged[raw[raw >= 0]]
    return codes, pd.Index(labels)


def text_column(values: pd.Series) -> pd.Series:
    """Text `values` (one per row) as the string column pandas reads from a file, built from
    the distinct values: long data repeat each unit on every row, and a column of Python
    string objects makes every later copy, sort and lookup of millions of rows slow."""
    codes, uniques = pd.factorize(values)
    return pd.Series(text_by_code(list(uniques), codes), index=values.index)


def key_codes(*columns: pd.Series | np.ndarray) -> np.ndarray:
    """Each row's code for its combination of values in `columns` (missing values match one
    another): a multi-column key as one integer array, below four times the number of rows
    (recoded by pd.factorize only when the combinations could reach beyond that)."""
    n = len(columns[0])
    key, bound = np.zeros(n, dtype=np.int64), 1
    for column in columns:
        codes, uniques = pd.factorize(column, use_na_sentinel=False)
        key, bound = key * len(uniques) + codes, bound * max(len(uniques), 1)
        if bound > 4 * n:
            key, distinct = pd.factorize(key)
            bound = len(distinct)
    return key


def repeated(key: np.ndarray) -> np.ndarray:
    """Rows whose key (key_codes) another row has too: DataFrame.duplicated(keep=False)."""
    return np.bincount(key)[key] > 1 if len(key) else np.zeros(0, dtype=bool)


def text_array(values: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """An array of Python strings, most of them empty (a status per row), as text_column's
    string array, made from its distinct values: faster than pandas converting each row's."""
    if not len(values):  # pandas types an empty column by its values: it has none
        return pd.array(values, dtype=object)
    codes = np.zeros(len(values), dtype=np.intp)
    other = values != ""
    some, uniques = pd.factorize(values[other], use_na_sentinel=False)
    codes[other] = some + 1
    return text_by_code(["", *uniques], codes)


def repeated_text(value: str, n: int) -> pd.api.extensions.ExtensionArray:
    """`value` on each of `n` rows, as text_column's string array."""
    return text_by_code([value], np.zeros(n, dtype=np.intp))


def text_by_code(
    distinct: list[object] | pd.Index, codes: np.ndarray
) -> pd.api.extensions.ExtensionArray:
    """Each row's text from the `distinct` values and the rows' codes into them (−1: missing),
    typed as pandas types a column of that text (a string array since pandas 3), or as the
    Index of them is typed."""
    text = pd.Series(distinct, dtype=None if len(distinct) else object).array
    return text.take(codes, allow_fill=True)


def map_distinct(values: pd.Series, fn: Callable[[object], object]) -> pd.Series:
    """`fn` of each value, called once per distinct value (labels repeat on every row of a
    long file); missing values map to None."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped = np.array([fn(u) for u in uniques] + [None], dtype=object)
    return pd.Series(mapped[codes], index=values.index, dtype=object)


def period_ordinals(
    raw: pd.DataFrame,
    column: str,
    parse: Callable[[object], int | None],
    file: str,
    expected: str,
    example: str,
    first_row: int = 1,
) -> pd.Series:
    """The periods of `column` as integer ordinals (`parse` turns a label into one, None when
    it is not one); an empty, unreadable or out-of-range period is an error naming its row."""
    cells = raw[column]
    codes, labels = pd.factorize(cells, use_na_sentinel=True)  # each label parsed once
    parsed = [parse(label) for label in labels]
    fine = np.array([p is not None and abs(p) < MAX_ORDINAL for p in parsed] + [False])
    if not fine[codes].all():  # (a missing label's code −1 is the last: not fine)
        row = int(np.flatnonzero(~fine[codes])[0])
        value = cells.iloc[row]
        what = (
            "period is empty"
            if pd.isna(value) or not str(value).strip()
            else f"period {str(value)!r} is not {expected}"
        )
        raise DataError(
            what,
            file=file,
            where=f"column {column}",
            row=row + first_row,
            fix=f"write periods like {example!r} (or change the design's time.axis)",
        )
    ordinals = np.array([p if p is not None else 0 for p in parsed], dtype=np.int64)
    return pd.Series(ordinals[codes], index=cells.index)


def numeric_cells(
    raw: pd.DataFrame, column: str, file: str, first_row: int = 1
) -> tuple[pd.Series, np.ndarray]:
    """A numeric column and each cell's status: "" for a number, the DfE symbol for a symbol
    (c, x, z ... as in EES files), `missing` for an empty cell; other text is an error."""
    cells = raw[column]
    if pd.api.types.is_bool_dtype(cells):  # true/false (a Parquet boolean): 1/0
        cells = cells.astype("Float64")
    if pd.api.types.is_numeric_dtype(cells):
        values = pd.Series(
            cells.to_numpy(dtype="float64", na_value=np.nan), index=cells.index, name=cells.name
        )
        return values, np.where(values.isna(), MISSING, "")
    text = cells.astype("string").str.strip()
    lowered = text.str.lower()
    symbol = lowered.isin(set(SYMBOLS) - {MISSING}).fillna(False).to_numpy(dtype=bool)
    blank = (text.isna() | (text == "")).fillna(True).to_numpy(dtype=bool)
    values = pd.to_numeric(text.where(~symbol & ~blank), errors="coerce").astype("float64")
    bad = values.isna().to_numpy() & ~blank & ~symbol
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        symbols = ", ".join(s for s in SYMBOLS if s != MISSING)
        raise DataError(
            f"non-numeric value {str(cells.iloc[row])!r} in an outcome column",
            file=file,
            where=f"column {column}",
            row=row + first_row,
            fix=f"write a number, leave the cell empty, or use a DfE symbol ({symbols}); "
            "empty cells and symbols are counted as excluded rows",
        )
    status = np.where(symbol, lowered.fillna("").to_numpy(dtype=object), "")
    return values, np.where(blank, MISSING, status).astype(object)
