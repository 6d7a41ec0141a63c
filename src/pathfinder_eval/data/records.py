"""Individual-level trial records (one row per person: cluster, period, outcomes) → cell
summaries in the long form: per cluster × period the mean (`value`), the number of people
(`denominator`), the sum (`numerator`, the event count for a 0/1 outcome) and the within-cell
sum of squared deviations (`ssw`). A linear mixed model with cluster-period covariates depends
on the records only through these (estimators/sw_lmm.py), so nothing else is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from pathfinder_eval.data.ees import MISSING, SYMBOLS
from pathfinder_eval.data.plausibility import STATUSES, Located, Plausible, screen
from pathfinder_eval.data.source import CELL_COLUMNS, LONG_COLUMNS, Exclusion, OutcomeData
from pathfinder_eval.data.tidy import numeric_cells, period_ordinals, unit_ids
from pathfinder_eval.errors import DataError


def cell_summaries(
    units: pd.Series, periods: pd.Series, values: pd.Series, outcome: str, source: str
) -> pd.DataFrame:
    """Long-form rows (LONG_COLUMNS + CELL_COLUMNS), one per unit × period with records.

    values must be numeric with no missing entries (the caller excludes and counts those)."""
    frame = pd.DataFrame({"unit": units.to_numpy(), "period": periods.to_numpy(), "y": values})
    grouped = frame.groupby(["unit", "period"], sort=True)["y"]
    out = grouped.agg(["size", "sum", "mean"]).reset_index()
    frame = frame.merge(out[["unit", "period", "mean"]], on=["unit", "period"])
    frame["sq"] = (frame["y"] - frame["mean"]) ** 2  # two-pass: accurate for large cells
    ssw = frame.groupby(["unit", "period"], sort=True)["sq"].sum().to_numpy()
    return pd.DataFrame(
        {
            "unit": out["unit"].astype(str),
            "period": out["period"].astype("int64"),
            "outcome": outcome,
            "numerator": out["sum"].astype(float),
            "denominator": out["size"].astype(float),
            "value": out["mean"].astype(float),
            "status": "",
            "source": source,
            "ssw": ssw,
        }
    )[list(LONG_COLUMNS) + list(CELL_COLUMNS)]


def records_outcomes(
    raw: pd.DataFrame,
    unit: str,
    period: str,
    outcomes: dict[str, str],
    file: str,
    parse_period: Callable[[object], int | None] = int,
    covariates: tuple[str, ...] = (),
    individual: str | None = None,
) -> OutcomeData:
    """Summarise records into OutcomeData. outcomes: outcome id → column; parse_period turns a
    period label into its ordinal (None: not a period). Records with a missing outcome are left
    out and counted; non-numeric outcomes and unreadable periods are errors naming the row.
    With covariates or an individual column the records themselves are kept as well
    (OutcomeData.records); covariates must be numeric and complete."""
    extra = [*covariates, *([individual] if individual else [])]
    for c in [unit, period, *outcomes.values(), *extra]:
        if c not in raw.columns:
            raise DataError(
                f"required column {c!r} is missing",
                file=file,
                where=f"column {c}",
                fix=f"add it or map it in data.columns; columns present: "
                f"{', '.join(map(str, raw.columns))}",
            )
    units = unit_ids(raw, unit, file)
    ordinals = period_ordinals(
        raw,
        period,
        parse_period,
        file,
        "a period label of the design's time axis",
        "1, 2, … for 'period'",
    )
    frames, ledger, kept = [], [], {}
    rows = np.arange(1, len(raw) + 1).astype(str)
    for outcome, column in outcomes.items():
        values, status = numeric_cells(raw, column, file)
        status, detail = screen(
            Located(values.to_numpy(), f"{Path(file).name} row " + rows + f", column {column}"),
            Plausible.for_scale("level", share=False),
            status,
        )
        keep = status == ""
        kept[outcome] = values.where(keep)
        for code in sorted(set(status[~keep])):
            part = status == code
            ledger.append(
                Exclusion(
                    _reason(str(code), next((d for d in detail[part] if d), "")),
                    int(part.sum()),
                    tuple(sorted(set(units[part]))),
                    outcome,
                    "data",
                )
            )
        frames.append(
            cell_summaries(units[keep], ordinals[keep], values[keep], outcome, Path(file).name)
        )
    frame = pd.concat(frames, ignore_index=True)
    meta = pd.DataFrame({"unit": sorted(set(units))})
    meta["name"], meta["region"] = meta["unit"], ""
    kept_records = None
    if extra:
        kept_records = pd.DataFrame({"unit": units, "period": ordinals, **kept})
        for c in covariates:
            kept_records[c] = _numeric_column(raw[c], c, file)
        if individual:
            kept_records["individual"] = raw[individual].astype(str).str.strip()
    return OutcomeData(frame, meta, "records", exclusions=tuple(ledger), records=kept_records)


def _numeric_column(values: pd.Series, column: str, file: str) -> pd.Series:
    """A covariate as floats; a missing or non-numeric entry is an error naming its row."""
    out = pd.to_numeric(values, errors="coerce")
    bad = out.isna() | np.isinf(out)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"covariate value {values.iloc[row]!r} is missing or not a number",
            file=file,
            where=f"column {column}",
            row=row + 1,
            fix="covariates must be complete numbers (code categories as 0/1 columns)",
        )
    return out.astype(float)


def _reason(status: str, first: str) -> str:
    """The ledger's reason for individual records left out with `status`."""
    if status == MISSING:
        return "individual record with a missing outcome"
    if status in SYMBOLS:
        return f"individual record with an outcome withheld: {SYMBOLS[status]} ({status})"
    return f"individual record with an {STATUSES[status]} (first: {first})"
