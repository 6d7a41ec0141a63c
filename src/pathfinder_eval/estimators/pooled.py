"""What the comparison-pooled variance (inference/panel_variance.py) needs from a panel, and
the default-inference decision the linear DiD estimators and synthetic DiD make with it: the
outcomes by unit and period, which units are comparisons, their regions and sizes, where the
treated units are, and the estimate's unit weights."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from pathfinder_eval.data.lookup import positions
from pathfinder_eval.errors import EstimationError
from pathfinder_eval.inference.cluster import rescale_covariance
from pathfinder_eval.inference.cohort_stratified import stratified_cells
from pathfinder_eval.inference.panel_variance import (
    MIN_COMPARISON,
    NoiseModel,
    PanelVariance,
    noise_model,
    panel_variance,
)
from pathfinder_eval.inference.policy import Choice, Geography, because, did_default
from pathfinder_eval.panel import ValidatedPanel
from pathfinder_eval.results import InferenceKey, RegionalDependence

UNKNOWN_REGION = ""


@dataclass(frozen=True)
class PanelLayout:
    """One outcome's panel by unit: units (n,) codes in sorted order, periods (T,), y (n, T)
    with NaN where a cell is missing, comparison (n,) units never treated, region (n,) codes
    of region_names, size (n,) mean denominator (all 1 where any is unknown), treated (n,);
    model: the noise model learned from the comparison units with complete series (None when
    there are too few)."""

    units: np.ndarray
    periods: np.ndarray
    y: np.ndarray
    comparison: np.ndarray
    region: np.ndarray
    region_names: tuple[str, ...]
    size: np.ndarray
    treated: np.ndarray
    model: NoiseModel | None

    def dependence(self) -> RegionalDependence:
        names = np.array(self.region_names, dtype=object)[self.region[self.treated]]
        counts = pd.Series(names, dtype=object).value_counts()
        ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        m, nan = self.model, float("nan")
        return RegionalDependence(
            rho=m.rho if m else nan,
            rho_se=m.rho_se if m else nan,
            change_rho=m.change_rho if m else nan,
            change_rho_se=m.change_rho_se if m else nan,
            n_regions=m.n_regions if m else 0,
            n_comparison=m.n_comparison if m else int(self.complete_comparison.sum()),
            treated_regions=tuple((str(r), int(k)) for r, k in ordered),
        )

    @property
    def complete_comparison(self) -> np.ndarray:
        """(n,) comparison units observed in every period: those the noise model learns from
        (the message counted every comparison unit: '84 comparison units give 0 regions enough
        of them' where 6 had complete series; found in review)."""
        return self.comparison & np.isfinite(self.y).all(axis=1)

    def cell_weights(self, unit: np.ndarray, period: np.ndarray, w: np.ndarray) -> np.ndarray:
        """(m, n, T) unit weights from weights w (m, k) on k cells labelled unit, period."""
        out = np.zeros((w.shape[0], len(self.units), len(self.periods)))
        u = np.searchsorted(self.units, unit)
        t = np.searchsorted(self.periods, period)
        np.add.at(out, (slice(None), u, t), w)
        return out

    def unit_weights(self, units: np.ndarray, periods: np.ndarray, w: np.ndarray) -> np.ndarray:
        """(m, n, T) unit weights from w (m, len(units), len(periods)) on a sub-panel."""
        out = np.zeros((w.shape[0], len(self.units), len(self.periods)))
        u = np.searchsorted(self.units, units)
        t = np.searchsorted(self.periods, periods)
        out[:, u[:, None], t[None, :]] = w
        return out

    def variance(self, unit_weights: np.ndarray) -> PanelVariance:
        if self.model is None:
            raise EstimationError(
                f"fewer than {MIN_COMPARISON} comparison units have a complete series: the "
                "pooled variance cannot be learned",
                where="inference.method",
                fix="choose cr2 or cluster_robust",
            )
        return panel_variance(unit_weights, self.model, self.region, self.size)


def panel_layout(
    panel: ValidatedPanel, outcome: str, comparison: tuple[str, ...] | None = None
) -> PanelLayout:
    """The outcome's cells by unit and period, with the comparison units' noise model: built
    once per panel and outcome (and set of comparison units, when an analysis names its own,
    as a continuous dose compared with its lowest-dose LAs), and shared by every analysis of
    that outcome."""
    key = ("layout", outcome) if comparison is None else ("layout", outcome, comparison)
    return panel.derived(key, lambda: _layout(panel, outcome, comparison))


def _layout(
    panel: ValidatedPanel, outcome: str, chosen: tuple[str, ...] | None = None
) -> PanelLayout:
    cells = panel.outcome_cells(outcome)
    codes, unit_index = panel.unit_codes(outcome)
    units = np.asarray(unit_index, dtype=object)
    t_codes, period_index = pd.factorize(cells["period"], sort=True)
    periods = np.asarray(period_index)
    y = np.full((units.size, periods.size), np.nan)
    y[codes, t_codes] = cells["y"].to_numpy(float)  # one cell per unit and period
    table = panel.units.set_index("unit")[["role", "region"]]
    row = positions(unit_index, table.index)  # (Arrow's lookup: pandas' is slow for 10⁵ ids)
    info = table.iloc[row] if (row >= 0).all() else table.reindex(units)
    role = info["role"].to_numpy()
    comparison = role == "comparison" if chosen is None else np.isin(units, chosen)
    regions = info["region"].fillna(UNKNOWN_REGION).astype(str)
    region, region_names = pd.factorize(regions, sort=True)  # as np.unique: sorted names
    given = cells["denominator"].to_numpy(float)
    seen = ~np.isnan(given)
    with np.errstate(invalid="ignore", divide="ignore"):  # NaN: no denominator given
        den = np.bincount(codes[seen], given[seen], units.size) / np.bincount(
            codes[seen], minlength=units.size
        )
    known = np.isfinite(den) & (den > 0)
    size = den if known.all() else np.ones(len(units))  # sizes only when every unit has one
    complete = comparison & np.isfinite(y).all(axis=1)
    model = None
    if complete.sum() >= MIN_COMPARISON:
        model = noise_model(np.where(np.isfinite(y), y, 0.0), complete, region, size)
    return PanelLayout(
        units,
        periods,
        y,
        comparison,
        region,
        tuple(str(r) for r in region_names),
        size,
        (role == "treated") & ~comparison,
        model,
    )


@dataclass(frozen=True)
class Decision:
    """The default-inference decision of a linear DiD estimator: the `choice`, the panel's
    `dependence` for the report, and `pooled`, the pooled variance of its rows when the
    decision computed it (None when the panel or estimate does not allow it, or another
    method was asked for)."""

    choice: Choice
    dependence: RegionalDependence
    pooled: PanelVariance | None

    @property
    def variance(self) -> PanelVariance | None:
        """The pooled variance when the choice is "pooled", else None."""
        return self.pooled if self.choice.method == "pooled" else None


def decide(
    requested: str,
    applicable: bool,
    layout: PanelLayout,
    unit_weights: Callable[[], np.ndarray],
    rule: Callable[[Geography], Choice],
) -> Decision:
    """Apply the estimator's default-inference `rule` (inference/policy.py) to the panel's
    geography, computing the pooled variance of the rows whose (m, n, T) unit weights
    `unit_weights` gives when the choice may use it (the regional share the rule reads is
    the largest of any row). `applicable`: the estimate is linear in the outcomes (or
    linearised: synthetic DiD's first-order weights) and unweighted; `requested`: the method
    the design asked for."""
    dependence = layout.dependence()
    pv = None
    if requested in ("default", "pooled") and layout.model is not None and applicable:
        pv = layout.variance(unit_weights())
    if requested == "pooled" and pv is None:
        if not applicable:
            raise EstimationError(
                "the pooled variance needs an estimate linear in the outcomes: no weights, "
                "covariates, other clustering or synthetic-control weights without time "
                "weights",
                where="inference.method",
                fix="drop the weights or covariates, or choose another method",
            )
        layout.variance(np.zeros((1, 0, 0)))  # raises: too few comparison units
    share = float(np.nanmax(pv.regional_share, initial=0.0)) if pv is not None else float("nan")
    choice = rule(Geography(dependence, pv is not None, share, bool(np.ptp(layout.size) > 0)))
    return Decision(choice, dependence, pv)


def did_decision(
    estimator: str,
    requested: str,
    n_treated: int,
    applicable: bool,
    layout: PanelLayout,
    unit_weights: Callable[[], np.ndarray],
    compared_within: str | None = None,
) -> Decision:
    """`decide` with the linear DiD estimators' rule (inference/policy.did_default)."""
    return decide(
        requested,
        applicable,
        layout,
        unit_weights,
        lambda geo: did_default(estimator, requested, n_treated, applicable, geo, compared_within),
    )


@dataclass(frozen=True)
class PooledRows:
    """t inference for estimates (m,) with the pooled variance: each array (m,)."""

    std_error: np.ndarray
    statistic: np.ndarray
    p_value: np.ndarray
    ci_lower: np.ndarray
    ci_upper: np.ndarray
    df: np.ndarray


def pooled_rows(estimate: np.ndarray, pv: PanelVariance, level: float) -> PooledRows:
    """Standard errors, t statistics, p-values and intervals with the pooled variance's df."""
    se, df = pv.std_error, pv.df
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = np.where(se > 0, estimate / se, np.nan)
    crit = stats.t.ppf(0.5 + level / 2.0, df)
    return PooledRows(
        se, stat, 2.0 * stats.t.sf(np.abs(stat), df), estimate - crit * se, estimate + crit * se, df
    )


def pooled_label(layout: PanelLayout, reason: str) -> str:
    """The inference label of the pooled variance on this panel."""
    m = layout.model
    assert m is not None
    dep = layout.dependence()
    regional = (
        f"; shocks shared within regions learned from {m.n_regions} regions (within-region "
        f"residual correlation {m.rho:.3f}, SE {m.rho_se:.3f})"
        if dep.regions_known
        else "; regions unknown, so shocks shared by a region's units are not modelled"
    )
    sized = (
        "scaled by unit size"
        if np.ptp(layout.size) > 0
        else "units of unknown size, so each is given the same noise and a small treated "
        "unit's is understated; each unit's population (an outcome's denominator, or "
        "population= in Python) would scale it"
    )
    label = (
        f"comparison-pooled variance: the treated units' noise learned from {m.n_comparison} "
        f"comparison units ({sized}){regional}; t reference with Satterthwaite df"
    )
    return label + because(reason)


@dataclass(frozen=True)
class SmallSampleVariance:
    """A variance chosen for few treated units: vcov (m, m), df, its key and label."""

    vcov: np.ndarray
    df: np.ndarray
    key: InferenceKey
    label: str


def stratified_or_pooled(
    weights: np.ndarray,
    y: np.ndarray,
    unit: np.ndarray,
    period: np.ndarray,
    unit_strata: np.ndarray,
    vcov: np.ndarray,
    layout: PanelLayout,
    pooled: PanelVariance | None,
    reason: str,
    rows: str,
    stratum: str,
) -> SmallSampleVariance | None:
    """The cohort-stratified variance of rows linear in the outcomes (`weights` (m, n) on the
    cells labelled unit, period, with outcomes y), its standard errors put on `vcov`'s
    correlations; where units of a stratum (`unit_strata`, one per unit in sorted order, NaN
    for never treated) are observed in different periods, the comparison-pooled variance of
    the same rows (`pooled` when already computed); None when neither can be learned. `rows`
    and `stratum` name them in the label."""
    codes = pd.factorize(unit, sort=True)[0]
    strat = stratified_cells(weights, y, codes, pd.factorize(period, sort=True)[0], unit_strata)
    if strat is not None:
        return SmallSampleVariance(
            rescale_covariance(vcov, strat.std_error),
            strat.df,
            "cohort_stratified",
            f"cohort-stratified variance of the {rows} (each {stratum}'s variance within it), "
            "Bell-McCaffrey df" + because(reason),
        )
    if pooled is None and layout.model is not None:
        pooled = layout.variance(layout.cell_weights(unit, period, weights))
    if pooled is None:
        return None
    unbalanced = (
        f"; units of a {stratum} are observed in different periods, so the cohort-stratified "
        "variance does not apply and the comparison-pooled variance is used"
    )
    return SmallSampleVariance(
        pooled.vcov, pooled.df, "pooled_panel", pooled_label(layout, reason + unbalanced)
    )


def pooled_unlearnable(fallback: str) -> str:
    """The warning when the default chose the pooled variance but too few comparison units
    have complete series to learn it; `fallback` names the variance used instead."""
    return (
        "Too few comparison units have complete series for the comparison-pooled variance; "
        f"{fallback} is used, which over-rejects with few treated units."
    )


def unlearnable(stratum: str, fallback: str) -> str:
    """The warning when neither small-sample variance can be learned."""
    return (
        f"The cohort-stratified variance needs every unit of a {stratum} observed in the same "
        "periods, and too few comparison units have complete series for the pooled variance; "
        f"{fallback} is used, which over-rejects with few treated units."
    )
