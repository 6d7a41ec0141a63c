"""What an outcome's counts and values can be, and the rows that break it.

Readers screen each outcome's rows on entry: a count or denominator must be a finite number
from zero to MAX_COUNT, a share's numerator cannot exceed its denominator, and a value must lie
in the outcome's plausible range (by default what its scale allows: 0–100 for a percentage,
0–10,000 per 10,000 children, and at most MAX_MAGNITUDE in size otherwise). A row that fails
is marked with a status (below) and a detail naming the file, row, column and value; the panel
excludes it and the report's exclusions table counts it with the first example. An impossible
number never reaches an estimator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

# No count an LA reports comes near this (England has about 12 million children).
MAX_COUNT = 100_000_000

# Statuses set here, with the reason the exclusions ledger gives.
STATUSES: Mapping[str, str] = {
    "not_finite": "implausible value: a count, denominator or value that is not a finite number",
    "impossible_count": "implausible value: a count or denominator below zero or above "
    f"{MAX_COUNT:,.0f}",
    "above_denominator": "implausible value: a share's numerator larger than its denominator",
    "out_of_range": "implausible value: outside the outcome's plausible range",
}

# Outcomes with no natural bound (a ratio, a score) are still not beyond this in magnitude: a
# larger value is a data error (1e308 would overflow every estimator); a design that really
# has such values states them with `plausible`.
MAX_MAGNITUDE = 1e9

# What each scale allows when neither the catalogue nor the design says otherwise.
SCALE_RANGE: Mapping[str, tuple[float, float]] = {
    "percent": (0.0, 100.0),
    "per_10000": (0.0, 10_000.0),
    "ratio": (0.0, MAX_MAGNITUDE),
    "level": (-MAX_MAGNITUDE, MAX_MAGNITUDE),
}


@dataclass(frozen=True)
class Plausible:
    """An outcome's plausible values: `low` ≤ value ≤ `high`, and numerator ≤ denominator
    when `share` (a proportion of the denominator's units)."""

    low: float = -np.inf
    high: float = np.inf
    share: bool = False

    @classmethod
    def for_scale(
        cls, scale: str, share: bool, bounds: tuple[float, float] | None = None
    ) -> Plausible:
        """The rule for an outcome on `scale`, with `bounds` overriding the scale's range."""
        low, high = bounds if bounds is not None else SCALE_RANGE.get(scale, SCALE_RANGE["level"])
        return cls(float(low), float(high), share)

    def describe(self) -> str:
        """The range in words, e.g. '0 to 100'."""
        return f"{_number(self.low)} to {_number(self.high)}"


@dataclass(frozen=True)
class RowLabels:
    """'file row N, column C' for the i-th value (N = i + first_row), made only for the rows
    a check flags: a long file would otherwise build a label for every row."""

    file: str
    column: str
    first_row: int = 1

    def __getitem__(self, i: int) -> str:
        return f"{self.file} row {int(i) + self.first_row}, column {self.column}"


@dataclass(frozen=True)
class Located:
    """Values with where each came from (e.g. 'c1.csv row 12, column referral_count')."""

    values: np.ndarray
    where: np.ndarray | RowLabels


def screen(
    value: Located,
    rule: Plausible,
    status: np.ndarray,
    numerator: Located | None = None,
    denominator: Located | None = None,
    values_shown: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """(status, detail) for each row: rows already unusable (status not "") keep their status;
    a usable row failing a check gets the first failing check's status (STATUSES) and a detail
    naming where and what: the values too when `values_shown` (published statistics; a
    report's exclusions table must not print an unpublished LA's count of children). Arrays
    are not modified."""
    status = np.asarray(status, dtype=object).copy()
    detail = np.full(len(status), "", dtype=object)

    def mark(bad: np.ndarray, kind: str, *said: Located, suffix: str = "") -> None:
        hit = np.flatnonzero(bad & (status == ""))
        status[hit] = kind
        for i in hit:
            detail[i] = " is above ".join(_said(x, i, values_shown) for x in said) + suffix

    with np.errstate(invalid="ignore"):
        for counts in (numerator, denominator):
            if counts is not None:
                v = np.asarray(counts.values, dtype=float)
                mark(np.isinf(v), "not_finite", counts)
                mark((v < 0) | (v > MAX_COUNT), "impossible_count", counts)
        if rule.share and numerator is not None and denominator is not None:
            n = np.asarray(numerator.values, dtype=float)
            d = np.asarray(denominator.values, dtype=float)
            mark(n > d, "above_denominator", numerator, denominator)
        v = np.asarray(value.values, dtype=float)
        mark(np.isinf(v), "not_finite", value)
        outside = (v < rule.low) | (v > rule.high)
        mark(outside, "out_of_range", value, suffix=f", outside {rule.describe()}")
    return status, detail


def _said(located: Located, i: int, value: bool = True) -> str:
    """'<where> = <value>' for row i (or '<where>' alone)."""
    where = str(located.where[i])
    return f"{where} = {_number(float(located.values[i]))}" if value else where


def _number(x: float) -> str:
    if np.isnan(x):
        return "NaN"
    if np.isinf(x):
        return "infinity" if x > 0 else "-infinity"
    return f"{x:.6g}"
