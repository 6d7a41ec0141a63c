"""Readers for tidy outcome files (one row per unit x period): CSV, Parquet and Stata .dta.

Each returns a DataFrame as stored (the panel checks columns and types) or a DataError that
names the file and says how to fix it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyreadstat

from pathfinder_eval.errors import DataError


def _read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, encoding="utf-8-sig")


def _read_parquet(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path)


def _read_dta(path: Path) -> pd.DataFrame:
    frame, _meta = pyreadstat.read_dta(str(path))
    return frame


READERS: dict[str, Callable[[Path], pd.DataFrame]] = {
    ".csv": _read_csv,
    ".parquet": _read_parquet,
    ".pq": _read_parquet,
    ".dta": _read_dta,
}


def read_tidy(path: Path | str) -> pd.DataFrame:
    """Read a tidy CSV (UTF-8, BOM tolerated), Parquet or Stata file chosen by its extension."""
    path = Path(path)
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
    try:
        frame = READERS[suffix](path)
    except pd.errors.EmptyDataError as exc:
        raise DataError("file is empty", file=path.name, fix="export the data again") from exc
    except Exception as exc:  # each backend raises its own types: report them all the same way
        raise DataError(
            f"cannot be read as {suffix[1:]} ({type(exc).__name__}: {exc})",
            file=path.name,
            fix=f"check that the file really is {suffix[1:]} (not renamed) and export it again",
        ) from exc
    if frame.empty:
        raise DataError(
            "has no data rows",
            file=path.name,
            fix="export the data again with its rows",
        )
    return frame
