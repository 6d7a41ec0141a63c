"""Time axes of the data and the rule that maps a rollout date onto a data period.

A period is a half-open date interval [start, end). Official statistics use the *reporting
year*: reporting year 2024 is April 2023 to March 2024 (the DfE `time_period` 2024). A unit
that starts part-way through a period is *partly exposed* in it; `PartialRule` says how such a
period is treated.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import StrEnum


class TimeAxis(StrEnum):
    REPORTING_YEAR = "reporting_year"  # year ending 31 March, labelled by the end year (2024)
    FINANCIAL_YEAR = "financial_year"  # April-March, labelled like EES: 202324
    ACADEMIC_YEAR = "academic_year"  # September-August, labelled like EES: 202324
    CALENDAR_YEAR = "calendar_year"
    QUARTER = "quarter"  # calendar quarter, labelled 2023Q3
    MONTH = "month"  # labelled 2023-07
    PERIOD = "period"  # integer index (trials); start dates are period numbers


class PartialRule(StrEnum):
    """How a period in which a unit is exposed for only part of the time is classed."""

    ANY_EXPOSURE = "any_exposure"  # treated from the first period with any exposure
    MAJORITY = "majority"  # treated from the first period exposed for at least half its length
    FULL = "full"  # treated from the first fully exposed period; a partial period counts as control
    TRANSITION = "transition"  # the partial period is dropped (counted in the ledger)


@dataclass(frozen=True)
class Onset:
    """Where a start date falls: the first treated period, and the partly exposed period if any."""

    first_treated: int
    transition: int | None
    exposure_fraction: float


_LABEL_PATTERNS = {
    TimeAxis.REPORTING_YEAR: re.compile(r"^\d{4}$"),
    TimeAxis.CALENDAR_YEAR: re.compile(r"^\d{4}$"),
    TimeAxis.FINANCIAL_YEAR: re.compile(r"^\d{6}$"),
    TimeAxis.ACADEMIC_YEAR: re.compile(r"^\d{6}$"),
    TimeAxis.QUARTER: re.compile(r"^\d{4}Q[1-4]$"),
    TimeAxis.MONTH: re.compile(r"^\d{4}-\d{2}$"),
    TimeAxis.PERIOD: re.compile(r"^-?\d+$"),
}

EXAMPLE_LABEL = {
    TimeAxis.REPORTING_YEAR: "2024",
    TimeAxis.CALENDAR_YEAR: "2024",
    TimeAxis.FINANCIAL_YEAR: "202324",
    TimeAxis.ACADEMIC_YEAR: "202324",
    TimeAxis.QUARTER: "2023Q3",
    TimeAxis.MONTH: "2023-07",
    TimeAxis.PERIOD: "3",
}


def parse_period(axis: TimeAxis, label: object) -> int | None:
    """Turn a period label into the axis's integer ordinal; None when it is not of the axis's form.

    Ordinals: years → the year (financial/academic years → their end year), quarters → 4*year+q-1,
    months → 12*year+m-1, period indices → themselves.
    """
    text = str(label).strip()
    if text.endswith(".0") and axis is not TimeAxis.MONTH:
        text = text[:-2]
    if not _LABEL_PATTERNS[axis].match(text):
        return None
    if axis in (TimeAxis.REPORTING_YEAR, TimeAxis.CALENDAR_YEAR, TimeAxis.PERIOD):
        return int(text)
    if axis in (TimeAxis.FINANCIAL_YEAR, TimeAxis.ACADEMIC_YEAR):
        first, second = int(text[:4]), int(text[4:])
        return first + 1 if second == (first + 1) % 100 else None
    if axis is TimeAxis.QUARTER:
        return 4 * int(text[:4]) + int(text[5]) - 1
    year, month = int(text[:4]), int(text[5:])
    return 12 * year + month - 1 if 1 <= month <= 12 else None


def period_label(axis: TimeAxis, ordinal: int) -> str:
    """The display label of an ordinal (inverse of `parse_period`)."""
    if axis in (TimeAxis.FINANCIAL_YEAR, TimeAxis.ACADEMIC_YEAR):
        return f"{ordinal - 1}-{ordinal % 100:02d}"
    if axis is TimeAxis.QUARTER:
        return f"{ordinal // 4}Q{ordinal % 4 + 1}"
    if axis is TimeAxis.MONTH:
        return f"{ordinal // 12}-{ordinal % 12 + 1:02d}"
    return str(ordinal)


def period_bounds(axis: TimeAxis, ordinal: int) -> tuple[dt.date, dt.date]:
    """The half-open date interval [start, end) a period covers (not defined for PERIOD)."""
    if axis in (TimeAxis.REPORTING_YEAR, TimeAxis.FINANCIAL_YEAR):
        return dt.date(ordinal - 1, 4, 1), dt.date(ordinal, 4, 1)
    if axis is TimeAxis.ACADEMIC_YEAR:
        return dt.date(ordinal - 1, 9, 1), dt.date(ordinal, 9, 1)
    if axis is TimeAxis.CALENDAR_YEAR:
        return dt.date(ordinal, 1, 1), dt.date(ordinal + 1, 1, 1)
    if axis is TimeAxis.QUARTER:
        year, q = divmod(ordinal, 4)
        end = dt.date(year + 1, 1, 1) if q == 3 else dt.date(year, 3 * q + 4, 1)
        return dt.date(year, 3 * q + 1, 1), end
    if axis is TimeAxis.MONTH:
        year, m = divmod(ordinal, 12)
        end = dt.date(year + 1, 1, 1) if m == 11 else dt.date(year, m + 2, 1)
        return dt.date(year, m + 1, 1), end
    raise ValueError("period indices have no calendar dates")


def containing_period(axis: TimeAxis, day: dt.date) -> int:
    """The ordinal of the period that contains a date."""
    if axis in (TimeAxis.REPORTING_YEAR, TimeAxis.FINANCIAL_YEAR):
        return day.year + 1 if day.month >= 4 else day.year
    if axis is TimeAxis.ACADEMIC_YEAR:
        return day.year + 1 if day.month >= 9 else day.year
    if axis is TimeAxis.CALENDAR_YEAR:
        return day.year
    if axis is TimeAxis.QUARTER:
        return 4 * day.year + (day.month - 1) // 3
    if axis is TimeAxis.MONTH:
        return 12 * day.year + day.month - 1
    raise ValueError("period indices have no calendar dates")


def onset(axis: TimeAxis, start: dt.date | int, rule: PartialRule) -> Onset:
    """Map a rollout start onto the first treated period under a partial-exposure rule."""
    if axis is TimeAxis.PERIOD:
        return Onset(int(start), None, 1.0)
    if not isinstance(start, dt.date):
        raise TypeError(f"a {axis.value} axis needs a calendar start date, not {start!r}")
    period = containing_period(axis, start)
    lo, hi = period_bounds(axis, period)
    fraction = (hi - start).days / (hi - lo).days
    if fraction >= 1.0:
        return Onset(period, None, 1.0)
    if rule is PartialRule.ANY_EXPOSURE or (rule is PartialRule.MAJORITY and fraction >= 0.5):
        return Onset(period, None, fraction)
    if rule is PartialRule.TRANSITION:
        return Onset(period + 1, period, fraction)
    return Onset(period + 1, None, fraction)
