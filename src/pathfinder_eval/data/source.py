"""What every outcome-data reader hands to the panel: a long frame plus its provenance."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

LONG_COLUMNS: tuple[str, ...] = (
    "unit",
    "period",
    "outcome",
    "numerator",
    "denominator",
    "value",
    "status",
    "source",
)
# Optional columns a reader may add after LONG_COLUMNS; the panel carries them into its cells.
# ssw: within-cell sum of squared deviations of the individual outcomes (trial cell summaries);
# negative: how many of the cell's records are below 0 (a count model refuses them; NaN where
# there are no records to tell).
CELL_COLUMNS: tuple[str, ...] = ("ssw", "negative")
# Optional: for a row a reader marked unusable, where and what (file, row, column, value);
# the exclusions ledger quotes the first (data/plausibility.py).
DETAIL = "detail"
# Official statistics also carry DfE's own published figure, to check the recomputation.
OFFICIAL_COLUMNS: tuple[str, ...] = (*LONG_COLUMNS[:6], "published", *LONG_COLUMNS[6:], DETAIL)


@dataclass(frozen=True)
class Exclusion:
    """Rows left out, for one reason: the ledger entry the report shows."""

    reason: str
    count: int
    units: tuple[str, ...] = ()
    outcome: str = ""
    stage: str = "data"


@dataclass(frozen=True)
class OutcomeData:
    """Outcome data in long form, whatever the reader.

    frame: one row per unit × period × outcome with `LONG_COLUMNS`; `value` is NaN and `status`
    non-empty when the cell is unusable (suppressed, not available ...).
    units: unit, name, region (one row per unit seen), and dose (NaN where not given) when
    tidy data name a dose column, and the design's unit_columns (missing where not given).
    files: (name, sha256) of each file read; notes: facts the report must state up front
    (simulated data); reorganisations: one line per LA reorganisation and the rule applied.
    records: individual records (unit, period, one column per outcome id with NaN where
    missing, the covariates, and `individual` for a cohort) when a model needs more than the
    cell summaries; None otherwise.
    treatment: unit, period, treatment (0/1) from tidy data's treatment column, kept for
    estimators of treatments that may switch off (did_multiplegt_dyn); None without one.
    """

    frame: pd.DataFrame
    units: pd.DataFrame
    kind: str
    files: tuple[tuple[str, str], ...] = ()
    exclusions: tuple[Exclusion, ...] = ()
    notes: tuple[str, ...] = ()
    reorganisations: tuple[str, ...] = ()
    records: pd.DataFrame | None = None
    treatment: pd.DataFrame | None = None
