"""Stepped-wedge designs shared by the three models (LMM, GEE, GLMM): the trial's arrays from
the panel cells, the design checks, the effect contrasts (immediate, TATE, point effects), one
Wald row builder and the design summary the report shows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from pathfinder_eval.errors import EstimationError, cell
from pathfinder_eval.estimators.stepped_wedge.lmm import (
    CellSummaries,
    FixedEffects,
)
from pathfinder_eval.panel import ValidatedPanel, cell_events
from pathfinder_eval.settings import Shape
from pathfinder_eval.spec import TidyColumns

MODEL_LABEL = {
    "hussey_hughes": "Hussey & Hughes (random cluster intercept)",
    "nested_exchangeable": "nested exchangeable (cluster and cluster-period random intercepts)",
    "exponential_decay": "exponential decay of the between-period correlation (Kasza et al.)",
    "cluster_plus_decay": "cluster random intercept plus AR(1) cluster-period effects",
    "random_slope": "nested exchangeable plus each cluster's own intervention effect (random "
    "slope correlated with the cluster intercept)",
}


def intervention_cells(observed: np.ndarray, start: np.ndarray) -> np.ndarray:
    """(…, I, T) 0/1 intervention indicator of the observed cells for each cluster's first
    intervention period index `start` (…, I)."""
    t_idx = np.arange(observed.shape[1])
    return (t_idx >= start[..., None]).astype(float) * observed


@dataclass(frozen=True)
class Contrast:
    """A reported linear combination of the fixed effects: vector (p,) and the exposure time
    it refers to (None for the immediate effect and the TATE)."""

    vector: np.ndarray
    event_time: int | None = None


def exposure_span(first: int, last: int) -> str:
    """'exposure times 2–5', or 'exposure time 2' when the span is one exposure time."""
    return f"exposure time {first}" if first == last else f"exposure times {first}–{last}"


def effect_contrasts(fe: FixedEffects, shape: Shape, window: int | None) -> dict[str, Contrast]:
    """Named contrasts to report: the immediate effect, or the TATE over the exposure times
    observed up to `window` (default all; Kenny et al. 2022) followed by each point effect (PTE),
    read off the effect curve. Exposure times count periods since the start, so with transition
    periods the first observed one is later than 1, and the label says which times are averaged."""
    p = fe.X.shape[2]
    effect = list(fe.effect)

    def on_effects(weights: np.ndarray) -> np.ndarray:
        out = np.zeros(p)
        out[effect] = weights
        return out

    if shape == "immediate":
        return {
            "Intervention effect (immediate, period-adjusted)": Contrast(on_effects(fe.curve[0]))
        }
    first, longest = min(fe.exposure), max(fe.exposure)
    window = longest if window is None else window
    if not first <= window <= longest:
        verb = "is a transition period" if first == 2 else "are transition periods"
        skipped = f" ({exposure_span(1, first - 1)} {verb}, not analysed)" if first > 1 else ""
        raise EstimationError(
            f"tate_window {window} is outside the {exposure_span(first, longest)} the data "
            f"contain{skipped}",
            where="options.tate_window",
            fix=f"use a whole number from {first} to {longest}",
        )
    rows = [i for i, e in enumerate(fe.exposure) if e <= window]
    label = "; natural cubic spline" if shape == "spline" else ""
    out = {
        f"Time-averaged effect (TATE, {exposure_span(first, window)}{label})": Contrast(
            on_effects(fe.curve[rows].mean(axis=0))
        )
    }
    for e, weights in zip(fe.exposure, fe.curve, strict=True):
        out[f"Point effect at exposure time {e} (PTE)"] = Contrast(on_effects(weights), e)
    return out


@dataclass(frozen=True)
class TrialArrays:
    """A trial's cell summaries on the clusters × periods grid. start: (I,) index of each
    cluster's first intervention period (T when never treated); clusters: (I,) unit codes;
    periods: (T,) period ordinals."""

    cells: CellSummaries
    start: np.ndarray
    clusters: tuple[str, ...]
    periods: tuple[int, ...]


def period_grid(periods: tuple[int, ...]) -> tuple[int, ...]:
    """Every period from the data's first to its last: a period no cluster has data for is a
    column with no observed cell, so exposure times (periods since the start) and the decay
    structures' lags count calendar periods, not the periods that happen to have data."""
    return tuple(range(int(periods[0]), int(periods[-1]) + 1)) if len(periods) else ()


def trial_arrays(cells: pd.DataFrame, periods: tuple[int, ...]) -> TrialArrays:
    """Cell summaries of one outcome from panel cells (y = cell mean, denominator = n, ssw),
    on the `period_grid` of the data's periods."""
    periods = period_grid(periods)
    if "ssw" not in cells.columns or cells["ssw"].isna().any():
        raise EstimationError(
            "the stepped-wedge model needs each cell's within-cell sum of squares (ssw) "
            "besides its mean and size",
            where="column ssw",
            fix="supply individual records (data.source: records), which give each cell's "
            "mean, size and sum of squares, or use stepped_wedge_gee on cell means",
        )
    if (cells["denominator"].isna() | (cells["denominator"] < 1)).any():
        bad = cells[cells["denominator"].isna() | (cells["denominator"] < 1)].iloc[0]
        raise EstimationError(
            f"cell {bad['unit']}, period {bad['period']} has no individuals (n < 1)",
            where="column denominator",
            fix="drop empty cells from the data",
        )
    clusters = tuple(sorted(set(cells["unit"])))
    row = pd.Index(clusters).get_indexer(cells["unit"])
    col = pd.Index(periods).get_indexer(cells["period"])
    shape = (len(clusters), len(periods))
    mean, n, ssw = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    mean[row, col] = cells["y"].to_numpy(float)
    n[row, col] = cells["denominator"].to_numpy(float)
    ssw[row, col] = cells["ssw"].to_numpy(float)
    observed = n > 0
    grand = float((mean * n).sum() / n.sum())
    spread = float(ssw.sum() + (n * (mean - grand) ** 2)[observed].sum())
    if spread <= 1e-12 * max(1.0, grand**2) * n.sum():
        raise EstimationError(
            f"the outcome is the same ({grand:g}) in every record: there is no variation to "
            "estimate an effect or its variance from",
            where="outcome",
            fix="check the outcome column (a rare event may not occur in a small trial)",
        )
    cohort = cells.groupby("unit")["cohort"].first().reindex(list(clusters))
    start = np.array(
        [
            len(periods) if np.isnan(c) else int(np.searchsorted(periods, c))
            for c in cohort.to_numpy(float)
        ]
    )
    return TrialArrays(CellSummaries(mean, n, ssw, n > 0), start, clusters, tuple(periods))


def refuse_individual_columns(columns: TidyColumns, estimator: str) -> None:
    """Only the LMM on individual records adjusts for individual covariates and models a
    person followed over periods (a closed cohort's `individual`): the cell-level GEE and
    GLMM would silently leave them out (the GLMM's SE on a cohort with a person effect of SD
    1.5 was 0.27 where glmer with the person's term gives 0.31), so they refuse them."""
    if columns.covariates:
        raise EstimationError(
            f"{estimator} does not adjust for individual covariates "
            f"({', '.join(columns.covariates)}): its estimate would leave them out",
            where="data.columns.covariates",
            fix="use stepped_wedge (the LMM on individual records) for covariate adjustment, "
            "or drop the covariates",
        )
    if columns.individual:
        raise EstimationError(
            f"{estimator} works on cluster-period summaries and has no term for a person seen "
            f"in several periods (individual: {columns.individual}): its standard errors "
            "would leave out the correlation within each person",
            where="data.columns.individual",
            fix="use stepped_wedge (the LMM on individual records) for a closed cohort, or "
            "drop individual if each person is seen once",
        )


def check_design(trial: TrialArrays, fe: FixedEffects) -> None:
    """Checks before fitting, each naming what is wrong and the fix."""
    treated = fe.X[:, :, list(fe.effect)].sum(axis=2) > 0
    obs = trial.cells.observed
    mixed = [
        (treated[:, t] & obs[:, t]).any() and (~treated[:, t] & obs[:, t]).any()
        for t in range(obs.shape[1])
    ]
    if not any(mixed):
        raise EstimationError(
            "no period has both intervention and control clusters with data, so the effect "
            "is confounded with the period effects",
            where="rollout",
            fix="check the start periods: a stepped wedge needs periods where some clusters "
            "have started and others not",
        )
    p = fe.X.shape[2]
    if trial.cells.n_records <= p + 1:
        raise EstimationError(
            f"only {trial.cells.n_records} individuals for {p} fixed effects",
            where="data",
            fix="supply more data",
        )
    x2 = fe.X.reshape(-1, p)[obs.ravel()]
    if np.linalg.matrix_rank(x2) < p:
        raise EstimationError(
            "the period and intervention effects are not all estimable from the observed cells",
            where="options.effect",
            fix="use effect: immediate, or supply cells that separate exposure time from period",
        )


def wald_row(
    term: str, est: float, se: float, df: float, level: float, contrast: Contrast
) -> dict[str, Any]:
    """A table row with a t(df) reference (df = inf: normal), shared by the SW models."""
    crit = stats.t.ppf(0.5 + level / 2.0, df)
    stat = est / se
    return {
        "term": term,
        "estimate": est,
        "std_error": se,
        "statistic": stat,
        "p_value": float(2.0 * stats.t.sf(abs(stat), df)),
        "ci_lower": est - crit * se,
        "ci_upper": est + crit * se,
        "df": df,
        "event_time": np.nan if contrast.event_time is None else contrast.event_time,
    }


def design_summary(trial: TrialArrays, panel: ValidatedPanel) -> dict[str, Any]:
    """The trial's layout for the report (CONSORT-SW): sequences with their clusters, periods,
    observed and missing cells, and cell sizes."""
    n_periods = len(trial.periods)
    sequences: dict[str, list[str]] = {}
    for s, cluster in sorted(zip(trial.start, trial.clusters, strict=True)):
        label = "never" if s >= n_periods else panel.period_label(trial.periods[s])
        sequences.setdefault(label, []).append(cluster)
    sizes = trial.cells.n[trial.cells.observed]
    with_data = trial.cells.observed.any(axis=0)  # the grid's periods the data hold
    return {
        "sequences": [{"start": k, "clusters": len(v), "units": v} for k, v in sequences.items()],
        "clusters": len(trial.clusters),
        "periods": [
            panel.period_label(p) for p, d in zip(trial.periods, with_data, strict=True) if d
        ],
        "cells_observed": int(trial.cells.observed.sum()),
        "cells_missing": int((~trial.cells.observed[:, with_data]).sum()),
        "cell_size": {
            "min": float(sizes.min()),
            "median": float(np.median(sizes)),
            "max": float(sizes.max()),
        },
    }


def trial_size(trial: TrialArrays, panel: ValidatedPanel) -> dict[str, int]:
    """The trial's size for the design summary: its individuals, or its records when the data
    follow a closed cohort (the same person has a record in several periods)."""
    key = "records" if panel.spec.data.columns.individual else "individuals"
    return {key: trial.cells.n_records}


def never_started(trial: TrialArrays) -> list[str]:
    """A warning naming clusters with data but no start: they stay controls in every period,
    which a stepped wedge rarely intends (a typo in the rollout, or a cluster outside the
    trial), so they are said rather than silently used."""
    never = [c for c, s in zip(trial.clusters, trial.start, strict=True) if s >= len(trial.periods)]
    if not never:
        return []
    shown = ", ".join(never[:10]) + (f" and {len(never) - 10} more" if len(never) > 10 else "")
    return [
        f"{len(never)} cluster(s) in the data have no start ({shown}): they are analysed as "
        "controls in every period. If they cross over, give them a start (a wave in the "
        "design's rollout, or the data's start column); if they are not in the trial, remove "
        "their rows."
    ]


def contrast_weights(fe: FixedEffects, contrasts: dict[str, Contrast]) -> dict[str, list[float]]:
    """Each reported contrast's weights on the intervention coefficients."""
    return {k: c.vector[list(fe.effect)].tolist() for k, c in contrasts.items()}


# A stored count further than this (relative to max(1, |count|)) from a whole number is not one.
WHOLE_TOL = 1e-6


BINARY_FIX = (
    "code each record's outcome 0 or 1 and leave missing values empty (a missing-value code "
    "such as −1 or 9 is read as a value); for counts per person use family: poisson "
    "(stepped_wedge_gee or stepped_wedge_glmm), or family: gaussian"
)


COUNT_FIX = (
    "code each record's outcome as its whole number of events (0, 1, 2, ...) and leave missing "
    "values empty (a missing-value code such as −1 or 9 is read as a value), or use family: "
    "gaussian for a measure that is not a count"
)


def event_counts(
    cells: pd.DataFrame, whole_denominator: bool, capped: bool
) -> tuple[pd.Series, pd.Series]:
    """(events, denominators) of each cell for the count models (GEE, GLMM): denominators
    must be positive (and whole when `whole_denominator`: binomial trials); events come from
    `numerator`, else y × denominator, and must be whole numbers of at least 0 (and at most
    the denominator when `capped`). Events are returned rounded."""
    den = cells["denominator"]
    if (den.isna() | (den <= 0)).any():
        bad = cells[den.isna() | (den <= 0)].iloc[0]
        raise EstimationError(
            f"cell {bad['unit']}, period {bad['period']} has no trials or population "
            "(denominator missing or not positive)",
            where="column denominator",
            fix="supply each cell's number of individuals (binomial) or population (poisson), "
            "and drop empty cells",
        )
    records = "ssw" in cells and bool(cells["ssw"].notna().all())  # individual records' cells
    if "negative" in cells and (cells["negative"] > 0).any():  # a −1 code among counts per
        bad = cells[cells["negative"] > 0].iloc[0]  # person: their sums still look whole
        raise EstimationError(
            f"cluster {bad['unit']}, period {bad['period']}: {int(bad['negative'])} of the "
            "records' outcome values are below 0, not a number of events",
            where="the outcome column of the records",
            fix=BINARY_FIX if capped else COUNT_FIX,
        )
    events = cell_events(cells)
    column = "numerator" if "numerator" in cells and cells["numerator"].notna().all() else "y"
    checks = [(events, column)] + ([(den, "denominator")] if whole_denominator else [])
    for values, col in checks:
        frac = (values - values.round()).abs() > WHOLE_TOL * np.maximum(1.0, values.abs())
        wrong = frac | (values < 0) | values.isna()
        if wrong.any():
            bad = cells[wrong].iloc[0]
            given = cell(values[wrong].iloc[0])
            if records:  # the cell's numerator is the sum of its records' outcome
                raise EstimationError(
                    f"cluster {bad['unit']}, period {bad['period']}: the records' outcome values "
                    f"sum to {given}, not a whole number of events at least 0",
                    where="the outcome column of the records",
                    fix=BINARY_FIX if capped else COUNT_FIX,
                )
            raise EstimationError(
                f"cell {bad['unit']}, period {bad['period']}: {col} gives "
                f"{given}, not a whole number of "
                f"{'events' if col != 'denominator' else 'trials'} at least 0",
                where=f"column {col}",
                fix="supply event counts in the numerator column (these models count events, "
                "not rates or percentages)",
            )
    events = events.round()
    if records and capped:
        # Σ y(1 − y) over a cell's records is n·p(1 − p) − ssw: 0 exactly when every record
        # is 0 or 1 (whole values other than 0 and 1 make it negative, e.g. a −1 or 9 code)
        p = events / den
        gap = den * p * (1.0 - p) - cells["ssw"]
        odd = gap.abs() > 1e-9 * np.maximum(1.0, den)
        if odd.any():
            bad = cells[odd].iloc[0]
            raise EstimationError(
                f"cluster {bad['unit']}, period {bad['period']}: the records' outcome values "
                f"are not all 0 or 1 (their mean {p[odd].iloc[0]:.4g} and spread cannot come "
                "from 0/1 values), and this model of individuals counts 0/1 outcomes",
                where="the outcome column of the records",
                fix=BINARY_FIX,
            )
    if capped and (events > den.round()).any():
        bad = cells[events > den.round()].iloc[0]
        raise EstimationError(
            f"cell {bad['unit']}, period {bad['period']} has more events than individuals",
            where=f"column {column}",
            fix="check the numerator and denominator columns; for events in a population use "
            "stepped_wedge_glmm with family: poisson, or give the GEE individual records (on "
            "counts over a population it counts 0/1 individuals, whatever its family)",
        )
    return events, den
