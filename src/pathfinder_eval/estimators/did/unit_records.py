"""Unit-level records (children followed over periods, in LAs that start the reform or
not, eligible for it or not) as the UnitPanel the triple difference fits. Every value is
checked; rows that cannot be used are counted; anything else is a DataError naming the
column and row. Shared by `pe.triple_difference` (a data frame, its arguments named) and a
design's `triple_difference` (the records the reader kept, their file's columns named)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pathfinder_eval.data.tidy import id_text
from pathfinder_eval.errors import DataError, cell
from pathfinder_eval.estimators.did.triple_difference import UnitPanel
from pathfinder_eval.results import Dropped


@dataclass(frozen=True)
class RecordNames:
    """How errors name the data: `where(role, column)` places a column of the given role
    (outcome, time, eligible, ...); `file` the file read; `rows` each frame position's row
    number in that file (None: position + 1)."""

    where: Callable[[str, str], str]
    file: str | None = None
    rows: np.ndarray | None = None
    unit: str = "unit"
    """What a unit is, in messages (a person's records: "person")."""

    def row(self, position: int) -> int:
        return position + 1 if self.rows is None else int(self.rows[position])


ARGUMENTS = RecordNames(
    lambda role, column: f"argument {role}" + (f" (column {column})" if column else "")
)
"""As the Python API's arguments name them."""


def refuse_row(
    bad: Any, message: str | Callable[[int], str], where: str, fix: str, names: RecordNames
) -> None:
    """A DataError on the first row where `bad` (n,) holds, if any; `message` may be a function
    of that row's position."""
    rows = np.flatnonzero(np.asarray(bad, dtype=bool))
    if len(rows):
        row = int(rows[0])
        text = message(row) if callable(message) else message
        raise DataError(text, file=names.file, where=where, row=names.row(row), fix=fix)


def check_numbers(frame: pd.DataFrame, column: str, role: str, names: RecordNames) -> None:
    """A column read as numbers holds numbers (or empty cells): text is a DataError naming
    the row and the value, not a bare ValueError from the fit."""
    values = frame[column]
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return
    text = pd.to_numeric(values, errors="coerce").isna() & values.notna()
    refuse_row(
        text,
        lambda row: f"value {cell(values.iloc[row])} is not a number",
        names.where(role, column),
        NUMBERS_FIX.get(role, "code the column as numbers"),
        names,
    )


# What each numeric column of unit records should hold, for the fix of a text value in it.
NUMBERS_FIX = {
    "time": "give periods as whole numbers (a year, or a period index)",
    "first_treated": "give the first treated period as a number, and 0 (or leave it empty) "
    "for a group never treated",
    "eligible": "code eligibility 1 (targeted by the reform) or 0",
    "outcome": "give the outcome as a number, or leave the cell empty",
}


def unit_panel(
    frame: pd.DataFrame,
    outcome: str,
    unit: str,
    time: str,
    first_treated: str,
    eligible: str,
    covariates: tuple[str, ...],
    cluster: str | None,
    names: RecordNames = ARGUMENTS,
) -> tuple[UnitPanel, np.ndarray | None, tuple[Dropped, ...], tuple[str, ...]]:
    """The records as a UnitPanel, with the cluster codes, the rows left out (units whose
    group starts in or before the first period; rows without an outcome) and a note on groups
    starting after the last period (compared as never treated, as R's did). Anything else
    that cannot be used is a DataError naming the column (as `names` says) and row."""
    if frame.empty:
        raise DataError(
            "the data have no rows",
            file=names.file,
            where=names.where("data", ""),
            fix="pass the records",
        )
    numeric = (
        ("outcome", outcome),
        ("time", time),
        ("first_treated", first_treated),
        ("eligible", eligible),
        *((f"covariates[{i}]", c) for i, c in enumerate(covariates)),
    )
    for arg, column in numeric:
        check_numbers(frame, column, arg, names)
    values = {c: pd.to_numeric(frame[c]).astype(float) for _, c in numeric}
    y = values[outcome]
    for arg, column, bad, what, fix in (
        ("time", time, values[time].isna(), "a period is missing", "give every row its period"),
        ("outcome", outcome, np.isinf(y), "the outcome is infinite", "fix or drop the row"),
        *(
            (
                arg,
                c,
                y.notna() & ~np.isfinite(values[c]),
                "a covariate is missing or infinite where the outcome is observed",
                "fill it, or drop the row (a unit's covariates are read in each cell)",
            )
            for arg, c in numeric[4:]
        ),
        *(
            (("cluster", cluster, frame[cluster].isna(), "the cluster is missing", "fill it"),)
            if cluster
            else ()
        ),
    ):
        refuse_row(bad, what, names.where(arg, column), fix, names)
    ids = id_text(frame[unit])
    uid = pd.factorize(ids)[0]  # integer codes: hashing 2 million ids, not sorting them
    repeated = pd.DataFrame({"u": uid, "t": values[time]}).duplicated()
    refuse_row(
        repeated,
        lambda row: f"{names.unit} {ids.iloc[row]!r} has two rows for one period",
        names.where("unit", unit),
        f"keep one row per {names.unit} and period"
        + (" (ids unique across clusters, not only within one)" if cluster else ""),
        names,
    )
    elig = values[eligible]
    refuse_row(
        ~elig.isin([0, 1]),
        lambda row: f"eligible is {cell(frame[eligible].iloc[row])}, not 0 or 1",
        names.where("eligible", eligible),
        "code eligibility 1 for targeted units, 0 for the others",
        names,
    )
    periods = np.sort(values[time].unique())
    start = values[first_treated].replace([0, np.inf], np.nan)  # never treated, as R's did
    labels = frame[cluster].astype(str) if cluster else None
    for arg, column, v in (  # the cluster first: a unit moving clusters may change start
        *((("cluster", cluster, labels),) if cluster else ()),
        ("first_treated", first_treated, start.fillna(0)),
        ("eligible", eligible, elig),
    ):
        varies = v.groupby(uid).transform("nunique") > 1
        refuse_row(
            varies,
            lambda row, arg=arg: f"{names.unit} {ids.iloc[row]!r} changes its {arg} over time",
            names.where(arg, column),
            f"give each {names.unit} one {arg} in every row",
            names,
        )
    inside = start.notna() & (start > periods[0]) & (start <= periods[-1])
    refuse_row(
        inside & ~start.isin(periods),
        lambda row: f"first treated period {start.iloc[row]:g} is not one of the data's periods",
        names.where("first_treated", first_treated),
        "give the first period the group is treated in, as the time column counts periods "
        f"({', '.join(f'{p:g}' for p in periods[:4])}, …)",
        names,
    )
    late = start > periods[-1]
    notes = ()
    if late.any():
        notes = (
            f"{ids[late.to_numpy()].nunique()} units' groups start after the data's last period:"
            " they are compared as never treated, as R's did does",
        )
        start = start.mask(late)
    early = start.notna() & (start <= periods[0])
    dropped = tuple(
        Dropped(reason, int(mask.sum()), tuple(sorted(set(ids[mask.to_numpy()]))))
        for mask, reason in (
            (
                early,
                "units whose group starts in or before the data's first period: no period "
                "before it",
            ),
            (y.isna() & ~early, "rows with no outcome value"),
        )
        if mask.any()
    )
    keep = (~early).to_numpy()
    start, elig = start[keep], elig[keep]
    ui, units = pd.factorize(uid[keep])
    ti = np.searchsorted(periods, values[time][keep].to_numpy())
    wide = np.full((len(units), len(periods)), np.nan)
    wide[ui, ti] = y[keep].to_numpy()
    x = np.full((len(units), len(periods), 1 + len(covariates)), np.nan)
    x[ui, ti, 0] = 1.0
    for j, c in enumerate(covariates, start=1):
        x[ui, ti, j] = values[c][keep].to_numpy()
    first_row = np.flatnonzero(~pd.Series(ui).duplicated().to_numpy())  # in code order
    codes = None
    if labels is not None:
        codes = np.unique(labels[keep].to_numpy()[first_row], return_inverse=True)[1]
    cohort, eligible_units = start.to_numpy()[first_row], elig.to_numpy(int)[first_row]
    return UnitPanel(wide, x, cohort, eligible_units, periods), codes, dropped, notes
