"""Callaway, Goodman-Bacon & Sant'Anna's difference-in-differences with a continuous treatment
(2024, "Difference-in-differences with a continuous treatment", arXiv:2107.02637; R contdid's
`cont_did` with its parametric B-spline sieve): how the effect of a reform depends on its dose
(funding per child, team coverage) when every treated unit keeps one dose from its start.

For a cohort g (units starting in period g) and period t ≥ g, with ΔY_i = Y_it − Y_i,g−1 and
C_gt the comparison units (not yet treated in t, or never treated):

    ATT_gt(d)  = b(d)ᵀβ_gt − mean over C_gt of ΔY,    ACRT_gt(d) = b′(d)ᵀβ_gt,

β_gt the least-squares fit of ΔY on b(D) = (1, B-spline basis of the dose) over the cohort's
units (degree `degree`, `knots` interior knots at quantiles of the treated units' doses, as
contdid). The averages over the treated doses are ATT^o_gt = mean ΔY(treated) − mean ΔY(C_gt)
and ACRT^o_gt = mean over the treated of b′(D_i)ᵀβ_gt. Each is aggregated over the
post-treatment cells as contdid's dose aggregation: cohort g's share of the treated units,
split equally over its periods from g on. Event-time rows are ATT^o and ACRT^o by event time
(pre-periods against t − 1, as did's varying base), aggregated with the cohorts' shares, as
contdid's event study: pre-start ATT^o test parallel trends, pre-start ACRT^o trends that
differ with the dose.

With covariates X (their values in each comparison's base period; diff-diff's outcome
regression, `estimation_method="reg"`, as contdid has none) the comparison units' ΔY is
regressed on (1, X) in each cell, and the treated units' ΔY less its prediction, ΔỸ, replaces
ΔY in the dose fit and in ATT^o (without covariates the prediction is the comparison mean).
Doubly robust (`method="dr"`, diff-diff's default): ATT^o is Sant'Anna & Zhao's DR DiD of the
cell (a logit propensity score of being treated given X, as DRDID) and the curve ATT(d) moves
by the same level η = ATT^o(reg) − ATT^o(dr) (the comparison units' prediction errors weighted
by their odds p/(1 − p)); ACRT is the outcome regression's.

Every row is a fixed linear combination of the outcomes given the doses (`weights`), so the
toolkit's comparison-pooled variance applies. The analytic variance is the sum over units of
their squared influence functions (normal reference): the fit's residuals through the sieve
for dose-specific rows, and for ACRT^o also the spread of b′(D_i)ᵀβ over the treated doses.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from itertools import groupby

import numpy as np
import pandas as pd

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.estimators.did.dose_basis import dose_basis
from pathfinder_eval.estimators.did.dose_sieve import (
    DEGREE,
    SieveChoice,
    choose_segments,
    leverage_adjusted,
    residuals_for,
)
from pathfinder_eval.estimators.did.facts import ContinuousDidFacts, DoseSieveFacts
from pathfinder_eval.estimators.did.group_time import comparison_odds, did_panel_2x2, propensity
from pathfinder_eval.estimators.pooled import (
    did_decision,
    panel_layout,
    pooled_label,
    pooled_unlearnable,
)
from pathfinder_eval.inference.cluster import (
    blank_vacant,
    joint_zero_test,
    squared_norms,
    t_summary,
    vacant_rows,
)
from pathfinder_eval.inference.policy import because
from pathfinder_eval.inference.pretrends_power import pretest_summary
from pathfinder_eval.panel import ValidatedPanel
from pathfinder_eval.results import (
    OMITTED,
    EffectEstimates,
    InferenceKey,
    InferenceUsed,
    estimates_table,
)
from pathfinder_eval.settings import ContinuousDidOptions


@dataclass(frozen=True)
class DoseFit:
    """Rows: ATT^o, ACRT^o, ATT(d) at each dose, ACRT(d) at each dose, then ATT^o and ACRT^o by
    event time.

    kind: (k,) "att", "acrt", "att_d", "acrt_d", "event" or "acrt_event"; dose: (k,) the dose
    of dose-specific rows (NaN otherwise); event_time: (k,) (NaN except event rows);
    estimate: (k,); vcov: (k, k) the analytic variance; weights: (k, n, T) each row's
    weights on the outcome matrix; n_treated: (k,) treated units behind each row; left_out:
    indices of treated units left out (treated from the first period: no period before their
    start); thin: start dates (period labels) whose dose curve could not be fitted in some
    period (too few distinct doses), left out of the dose rows there but not of ATT^o;
    not_estimable: (start date, period, why) of the comparisons whose covariate adjustment
    could not be fitted (the propensity score of a doubly robust cell: a covariate constant or
    collinear among its LAs, or separating the starters from their comparison), left out of
    every row."""

    kind: np.ndarray
    dose: np.ndarray
    event_time: np.ndarray
    estimate: np.ndarray
    vcov: np.ndarray
    weights: np.ndarray
    n_treated: np.ndarray
    left_out: np.ndarray
    thin: tuple[str, ...] = ()
    not_estimable: tuple[tuple[str, str, str], ...] = ()


@dataclass
class _Rows:
    """Accumulates rows, the row last: weights on the outcomes (n, T, k) and influence
    functions (n, k)."""

    weights: np.ndarray
    influence: np.ndarray

    def add(
        self, rows: slice, cell: _Cell, on_dy: np.ndarray, psi: np.ndarray, share: float
    ) -> None:
        """Add `share` × a cell's estimates `rows` whose weights on its units' ΔY are `on_dy`
        and influence functions `psi` (both (rows, cell's units))."""
        add = share * on_dy.T
        at_t, at_base = self.weights[:, cell.t, rows], self.weights[:, cell.base, rows]  # views
        at_t[cell.units] += add
        at_base[cell.units] -= add
        self.influence[:, rows][cell.units] += share * psi.T


@dataclass(frozen=True)
class _Cell:
    """One cohort × period comparison: its units (treated first), periods t and base, ΔY;
    the comparison units' regression of ΔY on (1, X): the treated units' (1, X) `xt`, the
    fit's hat rows `hat_c` (γ = hat_c @ ΔY_comparison) and residuals; the treated units' ΔY
    less their prediction, `adjusted`; for the doubly robust estimator the level η it takes off
    ATT^o and ATT(d): its weights on the comparison units' ΔY `eta_c` and its influence
    function `eta_psi` (both 0 for the outcome regression)."""

    units: np.ndarray
    n_treated: int
    t: int
    base: int
    dy: np.ndarray
    xt: np.ndarray
    hat_c: np.ndarray
    resid_c: np.ndarray
    adjusted: np.ndarray
    eta_c: np.ndarray
    eta_psi: np.ndarray

    @property
    def eta(self) -> float:
        return float(self.eta_c @ self.dy[self.n_treated :])

    def mean_row(self) -> tuple[np.ndarray, np.ndarray, float]:
        """ATT^o of the cell: its weights on the cell's ΔY, influence function and value."""
        n_t = self.n_treated
        mean = np.full((1, n_t), 1.0 / n_t)
        on_c = self.comparison_weights(mean)[0]
        att = self.adjusted.mean()
        psi = np.concatenate([(self.adjusted - att) / n_t, on_c * self.resid_c])
        return np.concatenate([mean[0], on_c - self.eta_c]), psi - self.eta_psi, att - self.eta

    def comparison_weights(self, on_treated: np.ndarray) -> np.ndarray:
        """(r, n_c) weights on the comparison units' ΔY of rows weighing the treated units'
        ΔỸ by `on_treated` (r, n_t): through the prediction γ."""
        return -(on_treated @ self.xt) @ self.hat_c


def continuous_did(
    y: np.ndarray,
    start: np.ndarray,
    dose: np.ndarray,
    doses: np.ndarray,
    degree: int = 3,
    knots: int = 0,
    control: str = "not_yet_treated",
    labels: np.ndarray | None = None,
    x: np.ndarray | None = None,
    method: str = "dr",
    interior: np.ndarray | None = None,
    residuals: str = "hc0",
) -> DoseFit:
    """The estimator on an outcome matrix y (n, T) (NaN: missing), each unit's start as a
    period index (inf: never treated) and dose (used for treated units only), evaluated at
    `doses`. A cell uses the units observed in both of its periods; units starting after the
    last period are not yet treated throughout. `labels`: the periods' names (for `thin`);
    x (n, T, p): covariates, complete (None: none); method: "dr" or "reg" with covariates;
    interior: the B-spline's interior knots (None: `knots` quantiles of the treated doses);
    residuals: the dose fits' residuals in the influence functions, "hc0" raw, "hc2" or "hc3"
    leverage-adjusted (cck's sieve_variance)."""
    n, n_periods = y.shape
    names = np.arange(n_periods) if labels is None else np.asarray(labels)
    treated = np.isfinite(start)
    first = treated & (start <= 0)
    kept = treated & ~first & (start < n_periods)
    cohorts = np.unique(start[kept]).astype(int)
    if cohorts.size == 0:
        raise EstimationError(
            "no treated unit has a period before its start",
            where="rollout",
            fix="give the panel at least one period before the first start",
        )
    if not np.isfinite(dose[kept]).all() or (dose[kept] <= 0).any():
        raise EstimationError(
            "every treated unit needs a dose above 0",
            where="dose",
            fix="give each treated unit its dose (a number above 0)",
        )
    sizes = np.array([np.sum(start == g) for g in cohorts], float)
    share = sizes / sizes.sum()
    if interior is None:
        interior = _interior_knots(dose, start, kept, n_periods, knots)
    doses = np.asarray(doses, float)
    n_dose = doses.size
    events = np.arange(1 - cohorts.max(), n_periods - cohorts.min())  # those cells can have
    n_event = events.size
    head = 2 + 2 * n_dose  # ATT^o, ACRT^o, the curves; then ATT^o and ACRT^o by event time
    k = head + 2 * n_event
    rows = _Rows(np.zeros((n, n_periods, k)), np.zeros((n, k)))
    n_rows = np.zeros(k)
    estimate = np.zeros(k)
    att_share, acrt_share = np.zeros(n_event), np.zeros(n_event)
    event_cells = []  # (event index, cell, 2×2 weights, influence, ATT, the curve or None, share)
    post_cells = []  # (cohort, cell, 2×2 weights, influence, ATT, the curve or None)
    thin: set[int] = set()
    broken: list[tuple[str, str, str]] = []
    for g, pg in zip(cohorts, share, strict=True):
        for t in range(1, n_periods):
            try:
                cell = _cell(y, start, g, t, control, x, method)
            except np.linalg.LinAlgError as exc:
                broken.append((str(names[g]), str(names[t]), str(exc)))
                continue
            if cell is None:
                continue
            diff, psi, att = cell.mean_row()
            curve = _dose_cell(cell, dose, interior, degree, doses, residuals)
            if curve is None:
                thin.add(int(g))
            j = int(np.searchsorted(events, t - g))
            event_cells.append((j, cell, diff, psi, att, curve, pg))
            att_share[j] += pg
            acrt_share[j] += pg if curve is not None else 0.0
            if t >= g:
                post_cells.append((g, cell, diff, psi, att, curve))
    # each start date's share split over its estimable periods from the start, renormalised
    # over the start dates that have one (as contdid: a start date without comparison units
    # after it drops out); the dose rows over the cells whose dose curve could be fitted
    by_cohort = dict(zip(cohorts, share, strict=True))
    every = Counter(c[0] for c in post_cells)
    fitted = Counter(c[0] for c in post_cells if c[5] is not None)
    if broken and not every:
        raise EstimationError(
            "no start date's comparison after its start could be adjusted for the covariates: "
            f"the {method} fit failed in every one ({broken[0][2]})",
            where="options covariates",
            fix="leave out covariates that are constant or collinear among the LAs, or that "
            "separate the starters from their comparison LAs; or use method: reg",
        )
    if not fitted:
        raise EstimationError(
            f"no start date has the {degree + interior.size + 1} treated LAs with distinct "
            f"doses (spread across the knots) that a degree-{degree} dose curve with "
            f"{interior.size} interior knot(s) needs",
            where="options degree, knots",
            fix="lower `degree` or `knots`, or analyse the dose as bands with a binary estimator",
        )
    total_every = sum(by_cohort[g] for g in every)
    total_fitted = sum(by_cohort[g] for g in fitted)
    for g, cell, diff, psi, att, curve in post_cells:
        w = by_cohort[g] / every[g] / total_every
        rows.add(slice(0, 1), cell, diff[None], psi[None], w)
        estimate[0] += w * att
        if curve is not None:
            on_dy, psi_rows, values = curve
            w = by_cohort[g] / fitted[g] / total_fitted
            rows.add(slice(1, head), cell, on_dy, psi_rows, w)
            estimate[1:head] += w * values
    for j, cell, diff, psi, att, curve, pg in event_cells:
        row = head + j
        rows.add(slice(row, row + 1), cell, diff[None], psi[None], pg / att_share[j])
        estimate[row] += pg / att_share[j] * att
        n_rows[row] += cell.n_treated
        if curve is not None:
            row = head + n_event + j
            w = pg / acrt_share[j]
            rows.add(slice(row, row + 1), cell, curve[0][:1], curve[1][:1], w)
            estimate[row] += w * curve[2][0]
            n_rows[row] += cell.n_treated
    sizes_of = dict(zip(cohorts, sizes, strict=True))
    n_rows[0] = sum(sizes_of[g] for g in every)
    n_rows[1:head] = sum(sizes_of[g] for g in fitted)
    seen = np.concatenate([np.ones(head, bool), att_share > 0, acrt_share > 0])
    influence = rows.influence[:, seen].T
    kind = np.array(
        ["att", "acrt"]
        + ["att_d"] * n_dose
        + ["acrt_d"] * n_dose
        + ["event"] * n_event
        + ["acrt_event"] * n_event
    )
    return DoseFit(
        kind=kind[seen],
        dose=np.concatenate([[np.nan, np.nan], doses, doses, np.full(2 * n_event, np.nan)])[seen],
        event_time=np.concatenate([np.full(head, np.nan), events, events]).astype(float)[seen],
        estimate=estimate[seen],
        vcov=influence @ influence.T,
        weights=np.moveaxis(rows.weights[:, :, seen], -1, 0),
        n_treated=n_rows[seen],
        left_out=np.flatnonzero(first),
        thin=tuple(str(names[g]) for g in sorted(thin)),
        not_estimable=tuple(broken),
    )


def _cell(
    y: np.ndarray,
    start: np.ndarray,
    g: int,
    t: int,
    control: str,
    x: np.ndarray | None,
    method: str = "dr",
) -> _Cell | None:
    """Cohort g's comparison in period t: base g − 1 from g on, t − 1 before (None when the
    cohort or its comparison units have no unit observed in both periods); the comparison
    units' regression on (1, X) at the base period, and with covariates and method "dr" the
    doubly robust level η."""
    base = g - 1 if t >= g else t - 1
    ok = ~np.isnan(y[:, t]) & ~np.isnan(y[:, base])
    cohort = np.flatnonzero((start == g) & ok)
    if control == "never_treated":
        comparison = np.flatnonzero(np.isinf(start) & ok)
    else:
        comparison = np.flatnonzero((start > max(t, base)) & (start != g) & ok)
    if cohort.size == 0 or comparison.size == 0:
        return None
    units = np.concatenate([cohort, comparison])
    dy = y[units, t] - y[units, base]
    design = np.ones((units.size, 1))
    if x is not None:
        design = np.column_stack([design, x[units, base]])
    n_t = cohort.size
    hat_c = np.linalg.pinv(design[n_t:])  # (p, n_c): γ = hat_c @ ΔY_comparison
    gamma = hat_c @ dy[n_t:]
    resid_c = dy[n_t:] - design[n_t:] @ gamma
    adjusted = dy[:n_t] - design[:n_t] @ gamma
    none_c, none = np.zeros(units.size - n_t), np.zeros(units.size)
    cell = _Cell(units, n_t, t, base, dy, design[:n_t], hat_c, resid_c, adjusted, none_c, none)
    if x is None or method != "dr":
        return cell
    treated = (np.arange(units.size) < n_t).astype(float)
    ones = np.ones(units.size)
    ps = propensity(design, treated, ones)
    share = comparison_odds(ps, treated, ones)[n_t:]
    share /= share.sum()
    _, reg_psi, _ = cell.mean_row()  # the outcome regression's ATT^o (η = 0 so far)
    dr = did_panel_2x2(dy, treated, design, ones, "dr", ps)
    return replace(
        cell,
        eta_c=share - (share @ design[n_t:]) @ hat_c,
        eta_psi=reg_psi - dr.influence / units.size,
    )


def _interior_knots(
    dose: np.ndarray, start: np.ndarray, kept: np.ndarray, n_periods: int, knots: int
) -> np.ndarray:
    """Interior knots at equally spaced quantiles of the treated doses, each unit counted once
    per period from its start (as contdid)."""
    if knots == 0:
        return np.empty(0)
    repeats = np.where(kept, n_periods - np.where(kept, start, 0), 0).astype(int)
    values = np.repeat(dose, repeats)
    return np.quantile(values, np.linspace(0, 1, knots + 2))[1:-1]


def _dose_cell(
    cell: _Cell,
    dose: np.ndarray,
    interior: np.ndarray,
    degree: int,
    doses: np.ndarray,
    residuals: str = "hc0",
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """A cell's dose rows ACRT^o, ATT(d), ACRT(d): weights on the cell's ΔY (r, m), influence
    functions (r, m) and estimates (r,); None when its treated units have too few distinct
    doses (or none on each side of a knot) for the curve."""
    n_t = cell.n_treated
    d = dose[cell.units[:n_t]]
    lo, hi = float(d.min()), float(d.max())
    need = degree + interior.size + 1
    if np.unique(d).size < need or (
        interior.size and not (lo < interior.min() <= interior.max() < hi)
    ):
        return None
    x, dx = dose_basis(d, lo, hi, interior, degree)
    xg, dxg = dose_basis(doses, lo, hi, interior, degree)
    q, r = np.linalg.qr(x)
    hat = np.linalg.solve(r, q.T)  # β = hat @ ΔỸ_treated
    beta = hat @ cell.adjusted
    resid = cell.adjusted - x @ beta
    slope_i = dx @ beta
    acrt = slope_i.mean()
    lin = np.vstack([dx.mean(axis=0)[None, :], xg, dxg]) @ hat  # ACRT^o, ATT(d), ACRT(d)
    on_c = cell.comparison_weights(lin)  # through the comparison units' prediction
    on_dy = np.concatenate([lin, on_c], axis=1)
    noise = leverage_adjusted(x, hat, resid, residuals)
    psi = np.concatenate([lin * noise, on_c * cell.resid_c], axis=1)
    psi[0, :n_t] += (slope_i - acrt) / n_t  # the slope's spread over the treated doses
    values = np.concatenate([[acrt], xg @ beta, dxg @ beta])
    levels = slice(1, 1 + doses.size)  # ATT(d) moves by the doubly robust level
    on_dy[levels, n_t:] -= cell.eta_c
    psi[levels] -= cell.eta_psi
    values[levels] -= cell.eta
    return on_dy, psi, values


PERCENTILES = (10, 25, 50, 75, 90)


class ContinuousDid(ContinuousDidOptions):
    """Callaway, Goodman-Bacon & Sant'Anna's DiD with a continuous dose: ATT^o, ACRT^o, the
    curves ATT(d) and ACRT(d) at `doses`, then ATT^o and ACRT^o by event time (the pre-start
    rows test parallel trends, and trends that differ with the dose).

    Unbalanced panels: each cohort × period comparison uses every unit observed in both of
    its periods; no unit is dropped to balance the panel (callaway_santanna drops units
    missing a period, as R's did does, so on unbalanced data the two use different units).

    Inference: "cluster_robust" is the influence-function variance with a normal reference, as
    contdid. "default" follows the linear DiD rule (inference/policy.py): the comparison-pooled
    variance for fewer than 20 treated units or a regional concentration (the dose-specific
    rows weigh each treated unit by its dose, so no cohort-stratified variance applies); the
    influence-function variance above, or where the pooled variance cannot be learned."""

    def fit(
        self, panel: ValidatedPanel, outcome: str, analysis_id: str, level: float = 0.95
    ) -> EffectEstimates:
        cells = panel.outcome_cells(outcome)
        names = tuple(self.covariates)
        where = f"analyses[{analysis_id}].options.covariates"
        values = panel.covariate_values(cells, names, where)
        incomplete = sorted(set(cells.loc[values.isna().any(axis=1), "unit"]))
        keep = ~cells["unit"].isin(incomplete).to_numpy()
        cells, values = cells[keep].reset_index(drop=True), values[keep].reset_index(drop=True)
        units = np.array(sorted(set(cells["unit"])), dtype=object)
        periods = np.array(sorted(set(cells["period"])))
        row = pd.Index(units).get_indexer(cells["unit"])
        col = pd.Index(periods).get_indexer(cells["period"])
        ymat = np.full((units.size, periods.size), np.nan)
        ymat[row, col] = cells["y"].to_numpy(float)
        x = None
        if names:
            x = np.full((units.size, periods.size, len(names)), np.nan)
            x[row, col] = values.to_numpy(float)
        cohort = cells.groupby("unit")["cohort"].first().reindex(units).to_numpy(float)
        start = np.where(np.isnan(cohort), np.inf, np.searchsorted(periods, cohort))
        treated = np.isfinite(start) & (start > 0) & (start < periods.size)
        dose = _unit_doses(panel, units, treated)
        reference = None  # the lowest dose d_L when it is the comparison
        if self.control_group == "lowest_dose":
            if names:
                raise EstimationError(
                    "lowest_dose cannot yet be combined with covariates (parallel trends given "
                    "covariates relative to the lowest dose is another estimand; diff-diff "
                    "refuses it too)",
                    where=f"analyses[{analysis_id}].options",
                    fix="drop the covariates or use not_yet_treated",
                )
            reference = _lowest_dose(start, dose, treated, units)
            start = np.where(treated & (dose == reference), np.inf, start)
            treated &= dose > reference
        sieve = self._sieve(ymat, start, dose, treated, periods, level)
        fitted = dose[treated] if sieve is None else sieve[1]  # the doses the curve is fitted on
        doses = (
            np.asarray(self.doses, float)
            if self.doses
            else np.unique(np.percentile(fitted, PERCENTILES))
        )
        if reference is not None and (doses <= reference).any():
            raise EstimationError(
                f"doses {', '.join(f'{d:g}' for d in doses[doses <= reference])} are not above "
                f"the lowest dose {reference:g}, the comparison",
                where=f"analyses[{analysis_id}].options.doses",
                fix=f"ask for doses above {reference:g}",
            )
        res = continuous_did(
            ymat,
            start,
            dose,
            doses,
            self.degree if sieve is None else DEGREE,
            self.knots,
            "never_treated" if reference is not None else self.control_group,
            periods,
            x,
            self.method,
            None if sieve is None else sieve[0].interior_knots(sieve[1]),
            "hc0" if sieve is None else sieve[2],
        )
        weights = res.weights[:, row, col]
        unit = cells["unit"].to_numpy()
        period = cells["period"].to_numpy()
        n_treated = int(treated.sum())
        layout = panel_layout(
            panel, outcome, None if reference is None else tuple(units[np.isinf(start)])
        )
        decision = did_decision(
            self.name,
            self.inference.method,
            n_treated,
            True,
            layout,
            lambda: layout.cell_weights(unit, period, weights),
        )
        choice = decision.choice
        vcov, df = res.vcov, np.full(res.estimate.size, np.inf)
        key: InferenceKey = "influence_function"
        label = ANALYTIC_LABEL + because(choice.reason_for("cluster_robust"))
        warns = []
        if decision.variance is not None:
            vcov, df, key = decision.variance.vcov, decision.variance.df, "pooled_panel"
            label = pooled_label(layout, choice.reason) + (
                "; ACRT's variance holds the treated doses fixed (the influence-function "
                "variance adds the slope's spread over them)"
            )
        elif choice.method == "pooled":
            warns.append(pooled_unlearnable("the influence-function variance"))
        if key == "influence_function":  # rows on cells fitted exactly: no variance
            vcov, df = blank_vacant(
                vcov,
                df,
                squared_norms(weights),
                _change_noise(ymat),
                float(np.nanmax(np.abs(ymat))),
            )
        outside = doses[(doses < fitted.min()) | (doses > fitted.max())]
        if sieve is not None and outside.size:
            warns.append(
                f"Doses {', '.join(f'{d:g}' for d in outside)} lie outside the doses of the "
                f"treated units observed in both periods ({fitted.min():g} to "
                f"{fitted.max():g}): the cck curve there is its end polynomials extended, with "
                "no uniform band."
            )
        if sieve is not None and sieve[0].tied:
            tried = sieve[0].grid
            warns.append(
                f"Tied doses leave the cck sieve choice only {', '.join(map(str, tried))} "
                "segment(s): more would repeat a quantile knot or outnumber the distinct doses"
                + (
                    ", so the choice is forced to one segment (a cubic)."
                    if len(tried) == 2
                    else "."
                )
            )
        if sieve is not None and sieve[0].none_agreed:
            warns.append(
                f"The cck sieve choice found no number of segments that agreed with every "
                f"larger one (segments tried: {', '.join(map(str, sieve[0].grid))}), so it took "
                f"its cap, {sieve[0].segments}: the dose curve is as rough as the data allow and "
                "its band wide; with this few treated units a parametric curve may say more."
            )
        if res.thin:
            warns.append(
                f"The dose rows leave out the LAs starting in {', '.join(res.thin)} in periods "
                f"where they have fewer distinct doses than a degree-{self.degree} curve with "
                f"{self.knots} interior knot(s) needs: those LAs count in ATT and its event "
                "times, not in ACRT or the dose curves there."
            )
        for g, cells in groupby(res.not_estimable, key=lambda c: c[0]):
            cells = list(cells)
            why = "; ".join(dict.fromkeys(c[2] for c in cells))
            warns.append(
                f"The LAs starting in {g} are not compared in period(s) "
                f"{', '.join(c[1] for c in cells)}: their doubly robust covariate adjustment "
                f"cannot be fitted there ({why}: a covariate constant or collinear among them, "
                "or separating them from their comparison LAs); those comparisons are left out "
                "of every row."
            )
        if incomplete:
            warns.append(
                f"{len(incomplete)} unit(s) left out: a covariate ({', '.join(names)}) is "
                f"missing in some period ({', '.join(map(str, incomplete))})."
            )
        if res.left_out.size:
            warns.append(
                f"{res.left_out.size} treated unit(s) left out: treated from the first period, "
                f"so no period before their start ({', '.join(map(str, units[res.left_out]))})."
            )
        summ = t_summary(res.estimate, vcov, df, level)
        event = np.flatnonzero(res.kind == "event")
        pre = event[res.event_time[event] < 0]
        slopes = np.flatnonzero(res.kind == "acrt_event")
        slopes_pre = slopes[res.event_time[slopes] < 0]
        rows = [
            summ.row(
                j,
                _term(res.kind[j], res.dose[j], res.event_time[j]),
                res.estimate[j],
                df=float(df[j]),
                event_time=res.event_time[j],
                n_units=res.n_treated[j],
            )
            for j in range(res.estimate.size)
        ]
        warns += vacant_rows(rows, key)
        return EffectEstimates(
            analysis_id=analysis_id,
            outcome=outcome,
            estimator=self.name,
            inference=InferenceUsed(
                key=key,
                label=label,
                chosen_by_default=choice.chosen_by_default,
                reason=choice.reason,
                dependence=decision.dependence,
            ),
            table=estimates_table(rows),
            level=level,
            vcov=vcov,
            n_units=int(units.size),
            n_treated=n_treated,
            n_obs=int(np.count_nonzero(np.abs(weights).sum(axis=0))),
            facts=ContinuousDidFacts(
                inference_method=key,
                degree=self.degree if sieve is None else DEGREE,
                knots=self.knots if sieve is None else sieve[0].segments - 1,
                control_group=self.control_group,
                reference_dose=reference,
                covariates=list(names),
                method=self.method,
                treated=n_treated,
                cohorts=int(np.unique(start[treated]).size),
                dose_range=[float(v) for v in np.percentile(dose[treated], (0, 50, 100))],
                left_out=[str(u) for u in units[res.left_out]],
                pretrend_test=joint_zero_test(res.estimate, vcov, df, pre),
                dose_pretrend_test=joint_zero_test(res.estimate, vcov, df, slopes_pre),
                sieve=OMITTED if sieve is None else self._sieve_facts(*sieve, res),
                pretest_power=None
                if self.refit
                else pretest_summary(
                    res.estimate[event],
                    vcov[np.ix_(event, event)],
                    res.event_time[event],
                    -1.0,
                    short_leads=True,
                ),
            ),
            warnings=tuple(warns),
        )

    def _sieve(
        self,
        ymat: np.ndarray,
        start: np.ndarray,
        dose: np.ndarray,
        treated: np.ndarray,
        periods: np.ndarray,
        level: float,
    ) -> tuple[SieveChoice, np.ndarray, str] | None:
        """dose_method cck: the sieve chosen on the treated units observed in both periods (the
        only ones its curve uses), their doses and the residuals used (sieve_variance, auto
        resolved); None for the parametric curve."""
        if self.dose_method != "cck":
            return None
        if periods.size != 2:
            raise EstimationError(
                f"dose_method cck compares two periods (as contdid's), and the panel has "
                f"{periods.size}",
                where="options dose_method",
                fix="average each LA's periods before and after the start into one period each, "
                "or use dose_method: parametric",
            )
        seen = treated & ~np.isnan(ymat).any(axis=1)
        change = ymat[seen, 1] - ymat[seen, 0]
        variance = residuals_for(self.sieve_variance, int(seen.sum()))
        choice = choose_segments(dose[seen], change, self.sieve_draws, self.seed, level, variance)
        return choice, dose[seen], variance

    def _sieve_facts(
        self, choice: SieveChoice, treated_doses: np.ndarray, variance: str, res: DoseFit
    ) -> DoseSieveFacts:
        """The sieve's choice and each dose row's uniform band: estimate ± critical value × its
        influence-function standard error (the sieve's own, whatever variance the rows
        report, plus the comparison mean's for ATT(d)); None at doses outside the treated
        range, where the band's supremum was not taken."""
        band = []
        se = np.sqrt(np.diag(res.vcov))
        lo, hi = treated_doses.min(), treated_doses.max()
        for j in np.flatnonzero(np.isin(res.kind, ("att_d", "acrt_d"))):
            value = choice.band if res.kind[j] == "att_d" else choice.band_slope
            inside = lo <= res.dose[j] <= hi
            band.append(
                {
                    "term": _term(res.kind[j], res.dose[j], res.event_time[j]),
                    "lower": float(res.estimate[j] - value * se[j]) if inside else None,
                    "upper": float(res.estimate[j] + value * se[j]) if inside else None,
                }
            )
        return DoseSieveFacts(
            segments_tried=list(choice.grid),
            segments=choice.segments,
            lepski_segments=choice.lepski,
            alpha=choice.alpha,
            theta=choice.theta,
            critical_value=choice.band,
            critical_value_slope=choice.band_slope,
            variance=variance,
            variance_asked=self.sieve_variance,
            draws=self.sieve_draws,
            seed=self.seed,
            none_agreed=choice.none_agreed,
            uniform_band=band,
        )


ANALYTIC_LABEL = (
    "influence-function variance (contdid's analytic standard errors), normal reference"
)


def _change_noise(ymat: np.ndarray) -> float:
    """The mean square of the units' period-to-period changes about each period's mean change:
    the noise scale `blank_vacant` reads for the influence-function variance."""
    change = np.diff(ymat, axis=1)
    centred = change - np.nanmean(change, axis=0, keepdims=True)
    return float(np.nanmean(centred**2))


def _term(kind: str, dose: float, event_time: float) -> str:
    if kind == "att":
        return "ATT (average over the treated doses)"
    if kind == "acrt":
        return "ACRT (average causal response per unit of dose)"
    if kind == "event":
        return f"event time {int(event_time)}"
    if kind == "acrt_event":
        return f"ACRT, event time {int(event_time)}"
    return f"{'ATT' if kind == 'att_d' else 'ACRT'} at dose {dose:.4g}"


def _lowest_dose(
    start: np.ndarray, dose: np.ndarray, treated: np.ndarray, units: np.ndarray
) -> float:
    """The lowest treated dose d_L, checked to be a comparison group: no never-treated LA (they
    would be a comparison of their own), one start date, two LAs or more at d_L and some above
    it (diff-diff's conditions for Remark 3.1)."""
    where = "options control_group"
    never = units[np.isinf(start)]
    if never.size:
        raise EstimationError(
            f"lowest_dose is for pilots where every LA gets some dose, but {never.size} LA(s) "
            f"are never treated ({', '.join(map(str, never[:5]))})",
            where=where,
            fix="use never_treated or not_yet_treated, or leave out the LAs never treated",
        )
    if np.unique(start[treated]).size > 1:
        raise EstimationError(
            "lowest_dose needs one start date (Remark 3.1 is for a single start; with "
            "staggered starts the lowest-dose LAs of each date would need their own comparison)",
            where=where,
            fix="analyse each start date's LAs alone, or use not_yet_treated",
        )
    low = float(dose[treated].min())
    at_low = int((dose[treated] == low).sum())
    if at_low < 2 or not (dose[treated] > low).any():
        raise EstimationError(
            f"lowest_dose needs two LAs or more at the lowest dose {low:g} and some above it; "
            f"{at_low} LA(s) have it and {int((dose[treated] > low).sum())} more",
            where=where,
            fix="use lowest_dose only when a group of LAs shares the lowest dose",
        )
    return low


def _unit_doses(panel: ValidatedPanel, units: np.ndarray, treated: np.ndarray) -> np.ndarray:
    """The units' doses from the data's dose column: every treated unit needs one above 0;
    units never treated count as 0 whatever they give."""
    given = panel.data.units
    if "dose" not in given.columns:
        raise EstimationError(
            "continuous_did needs each treated unit's dose, and the data have no dose column",
            where="data.columns.dose",
            fix="name the dose column in the design's data.columns (dose: <column>) or pass "
            "dose='<column>' to pathfinder_eval.continuous_did",
        )
    dose = given.set_index("unit")["dose"].reindex(units).to_numpy(float)
    bad = treated & ~(dose > 0)
    if bad.any():
        raise EstimationError(
            f"treated unit {units[np.flatnonzero(bad)[0]]} has no dose above 0 "
            f"({int(bad.sum())} treated unit(s) in all)",
            where="data.columns.dose",
            fix="give every treated unit its dose (a number above 0)",
        )
    return np.where(treated, dose, 0.0)
