"""Borusyak, Jaravel & Spiess (2024) imputation estimator for staggered adoption.

Unit and period fixed effects are fitted by OLS on the untreated cells only (never-treated
units and not-yet-treated periods), Y(0) is imputed for every treated cell, and the effects
τ̂_it = Y_it − α̂_i − λ̂_t are averaged with explicit weights: equally over all treated cells
(the overall ATT) and over the cells at each event time K = t − g. The estimator is linear in
Y, τ̂_w = Σ v_it Y_it, which gives the conservative variance of their Theorem 3.

Borusyak, K., Jaravel, X. & Spiess, J. (2024), "Revisiting event-study designs: robust and
efficient estimation", Review of Economic Studies 91:3253–3285 (Theorem 2: imputation
weights; Theorem 3 and Section 4.3: conservative variance; Section 4.4: pre-trend test).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import linalg

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.estimators.did.facts import ImputationFacts
from pathfinder_eval.estimators.did.two_way import absorb_two_way
from pathfinder_eval.estimators.pooled import did_decision, panel_layout, pooled_label
from pathfinder_eval.inference.cluster import (
    VACANT,
    rescale_covariance,
    t_summary,
    vacant_rows,
    wald_test,
)
from pathfinder_eval.inference.cohort_stratified import CohortStratified, stratified_cells
from pathfinder_eval.inference.policy import because, few_cluster_warnings
from pathfinder_eval.inference.pretrends_power import linear_trend_power
from pathfinder_eval.panel import ValidatedPanel
from pathfinder_eval.results import EffectEstimates, InferenceKey, InferenceUsed, estimates_table
from pathfinder_eval.settings import ImputationOptions

AVERAGE_BY = ("cohort_period", "row")


@dataclass(frozen=True)
class ImputationResult:
    """Imputation estimates for H estimands (row 0: overall ATT; then one per event time).

    event_time: (H−1,) event times K ≥ 0 of rows 1..H−1.
    estimate: (H,) Σ_it w_hit τ̂_it; vcov: (H, H) Theorem 3 conservative covariance, by unit;
    df: (H,) Satterthwaite degrees of freedom of each row's variance. A row whose variance is
        zero whatever the outcomes has NaN df and a NaN row and column in vcov.
    weights: (H, n1) estimand weights on the treated cells (each row sums to 1).
    tau: (n1,) τ̂_it; treated_rows: (n1,) row positions of the imputable treated cells in the
        input arrays; untreated_rows: (n0,) positions of the untreated cells used.
    v_untreated: (H, n0) implied weights on untreated outcomes (Theorem 2), so that
        estimate = weights @ y1 + v_untreated @ y0.
    n_dropped: treated cells that could not be imputed (unit or period without untreated data).
    n_clusters: units in the estimation sample.
    """

    event_time: np.ndarray
    estimate: np.ndarray
    vcov: np.ndarray
    df: np.ndarray
    weights: np.ndarray
    tau: np.ndarray
    treated_rows: np.ndarray
    untreated_rows: np.ndarray
    v_untreated: np.ndarray
    n_dropped: int
    n_clusters: int


@dataclass(frozen=True)
class _TwoWayInverse:
    """C = (Z0ᵀZ0)⁻¹ for unit dummies and period dummies (first period dropped) on the untreated
    cells, never formed: with D = diag(n) the units' untreated cell counts, N (G × T−1) their
    counts by period and S = diag(m) − Nᵀ D⁻¹ N the period block's Schur complement,
    C = blockdiag(D⁻¹, 0) + L S⁻¹ Lᵀ, L = [−D⁻¹N; I]. Memory O(G·T), not O((G + T)²)."""

    n: np.ndarray  # (G,)
    counts: np.ndarray  # N, (G, T−1)
    schur: np.ndarray  # S, (T−1, T−1)
    chol: tuple[np.ndarray, bool]

    @classmethod
    def of(cls, u0: np.ndarray, p0: np.ndarray, n_units: int, n_periods: int) -> _TwoWayInverse:
        n = np.bincount(u0, minlength=n_units).astype(float)
        counts = _by_unit_period(u0, p0, np.ones(u0.size), n_units, n_periods)
        schur = np.diag(np.bincount(p0, minlength=n_periods)[1:].astype(float))
        schur -= counts.T @ (counts / n[:, None])
        try:
            chol = linalg.cho_factor(schur)
        except linalg.LinAlgError:
            chol = None
        if chol is None or np.linalg.matrix_rank(schur) < schur.shape[0]:
            raise EstimationError(
                "unit and period effects are not identified from the untreated cells (the "
                "untreated cells do not connect all units and periods)",
                where="rollout",
                fix="keep never-treated or not-yet-treated comparison units in every period",
            )
        return cls(n, counts, schur, chol)

    def solve(self, r_unit: np.ndarray, r_period: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """C r for r = (unit part (G, k), period part (T−1, k)), as the same two parts."""
        s_unit = r_unit / self.n[:, None]
        x_period = linalg.cho_solve(self.chol, r_period - self.counts.T @ s_unit)
        return s_unit - (self.counts @ x_period) / self.n[:, None], x_period


def _by_unit_period(
    u: np.ndarray, p: np.ndarray, x: np.ndarray, n_units: int, n_periods: int
) -> np.ndarray:
    """(G, T−1) sums of x by unit and period, periods after the first (the dummies' columns)."""
    later = p > 0
    flat = u[later] * (n_periods - 1) + p[later] - 1
    return np.bincount(flat, weights=x[later], minlength=n_units * (n_periods - 1)).reshape(
        n_units, n_periods - 1
    )


def _at(effects: tuple[np.ndarray, np.ndarray], u: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Unit plus period effect of each cell (the first period's effect is 0): rows (n, k)."""
    unit_fx, period_fx = effects
    return unit_fx[u] + np.vstack([np.zeros((1, period_fx.shape[1])), period_fx])[p]


def imputation(
    y: np.ndarray,
    unit: np.ndarray,
    period: np.ndarray,
    cohort: np.ndarray,
    leave_out: bool = False,
    average_by: str = "cohort_period",
) -> ImputationResult:
    """BJS imputation estimator with their conservative variance (Theorem 3) and its
    Satterthwaite degrees of freedom.

    y: (n,) outcomes; unit: (n,) labels; period: (n,) integer periods; cohort: (n,) first
    treated period of the row's unit (NaN: never treated). Unbalanced panels are fine; treated
    cells whose unit has no untreated cell, or whose period has none, cannot be imputed and
    are dropped (counted in n_dropped).

    Variance: V̂ = Σ_i (Σ_t v_it ε̃_it)², clustered by unit, with no small-sample factor (as in
    the paper and did_imputation). ε̃_it = Y_it − α̂_i − λ̂_t on untreated cells; on treated
    cells ε̃_it = τ̂_it − τ̄_gt, where τ̄_gt is the w-weighted average of τ̂ within the cell's
    cohort × period (did_imputation's default `avgeffectsby`). leave_out=True computes τ̄
    without unit i's own cells (BJS Appendix A.6 / did_imputation's `leaveout`), falling back
    to the full average for a unit alone in its cohort × period. average_by="row" averages τ̄
    over all of a row's cells instead (the event time's cells, or every treated cell for the
    overall ATT): coarser than cohort × period, so still conservative under heterogeneous
    effects (Theorem 3 allows any averaging; the extra heterogeneity only adds variance), and
    unlike it defined when each cohort is a single unit.

    df: (H,) Satterthwaite df ν = (tr Ω)²/‖Ω‖²_F of each row's V̂ = ‖Q y‖² (ψ = Q y is linear
    in y: ε̃ on untreated cells is M0 y0 and τ̂ − τ̄ is linear in τ̂), Ω = QQᵀ, under the
    working model of independent homoskedastic errors — Bell & McCaffrey's (2002) rule, which
    Imbens & Kolesár (2016, Rev. Econ. Stat. 98:701–712) recommend for any variance estimator
    that is a quadratic form in the outcomes.
    """
    y = np.asarray(y, dtype=float)
    unit = np.asarray(unit)
    period = np.asarray(period).astype(np.int64)
    cohort = np.asarray(cohort, dtype=float)
    treated = ~np.isnan(cohort) & (period >= np.nan_to_num(cohort, nan=np.inf))
    rows0 = np.flatnonzero(~treated)
    rows1 = np.flatnonzero(treated)
    units0 = set(unit[rows0].tolist())
    periods0 = set(period[rows0].tolist())
    ok = np.array([unit[r] in units0 and period[r] in periods0 for r in rows1], dtype=bool).reshape(
        -1
    )
    n_dropped = int((~ok).sum())
    rows1 = rows1[ok]
    if rows1.size == 0:
        raise EstimationError(
            "no treated cell can be imputed: treated units need untreated periods and each "
            "treated period needs untreated units",
            where="rollout",
            fix="supply data from before each unit's start, and keep comparison units",
        )
    keep = np.concatenate([rows0, rows1])
    ucodes, _ = pd.factorize(pd.Series(unit[keep]), sort=True)
    pcodes, _ = pd.factorize(pd.Series(period[keep]), sort=True)
    n_units, n_periods = int(ucodes.max()) + 1, int(pcodes.max()) + 1
    n0 = rows0.size
    u0, p0, u1, p1 = ucodes[:n0], pcodes[:n0], ucodes[n0:], pcodes[n0:]
    inv = _TwoWayInverse.of(u0, p0, n_units, n_periods)
    y0, y1 = y[rows0], y[rows1]
    beta = inv.solve(
        np.bincount(u0, y0, n_units)[:, None], np.bincount(p0, y0, n_periods)[1:, None]
    )
    resid0 = y0 - _at(beta, u0, p0)[:, 0]
    tau = y1 - _at(beta, u1, p1)[:, 0]

    g1 = cohort[rows1]
    rel = period[rows1] - g1
    event_time = np.unique(rel).astype(int)
    w = np.zeros((1 + event_time.size, rows1.size))
    w[0] = 1.0 / rows1.size
    for h, e in enumerate(event_time, start=1):
        sel = rel == e
        w[h, sel] = 1.0 / sel.sum()
    estimate = w @ tau
    unit_w = np.column_stack([np.bincount(u1, wh, n_units) for wh in w])
    period_w = np.column_stack([np.bincount(p1, wh, n_periods)[1:] for wh in w])
    v0 = -_at(inv.solve(unit_w, period_w), u0, p0).T  # (H, n0), Theorem 2

    if average_by not in AVERAGE_BY:
        raise EstimationError(
            f"average_by {average_by!r} is not one of {AVERAGE_BY}",
            where="analyses.options.average_by",
            fix="use cohort_period or row",
        )
    if average_by == "row":
        groups = np.zeros(g1.size, np.int64)
    else:
        groups = pd.factorize(pd.factorize(g1)[0] * n_periods + p1)[0]
    psi = np.zeros((n_units, w.shape[0]))
    df = np.empty(w.shape[0])
    for h in range(w.shape[0]):
        psi[:, h], df[h] = _row_variance(
            inv, (u0, p0, v0[h], resid0), (u1, p1, w[h], tau, groups), leave_out
        )
    vcov = psi.T @ psi
    vacant = np.isnan(df)  # no variance to estimate: no standard error either
    vcov[vacant], vcov[:, vacant] = np.nan, np.nan
    return ImputationResult(
        event_time, estimate, vcov, df, w, tau, rows1, rows0, v0, n_dropped, n_units
    )


def _row_variance(
    inv: _TwoWayInverse,
    untreated: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    treated: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    leave_out: bool,
) -> tuple[np.ndarray, float]:
    """One row's unit scores ψ = Q y and Satterthwaite df (tr Ω)²/‖Ω‖²_F of Ω = QQᵀ, in
    O(G·r·min(G, r)) with r = T − 1 + the row's τ̄ groups (O(G²·r) when those sums cancel:
    _trace_and_frobenius), where Ω from the dense maps costs O(G³).

    untreated: units, periods, implied weights v and residuals ε̃ of the untreated cells;
    treated: units, periods, weights w, τ̂ and τ̄ groups of the treated cells.
    ψ = S0 diag(v) ε̃ + q1 τ̂ with q1 = S1 diag(w)(I − Ā) (τ̄ = Ā τ̂), and
    Q = [S0 diag(v) − B C Z0ᵀ | q1], B = S0 diag(v) Z0 + q1 Z1. Every part of Q is either
    row-disjoint (row i only on unit i's cells) or of low rank: q1 = Sp1 − Lq Rqᵀ (Rq the
    group indicator times w; with leave_out, the own unit's share of its group mean is
    row-disjoint), and C = blockdiag(D⁻¹, 0) + L S⁻¹ Lᵀ (_TwoWayInverse). So Q = Sp + Lf Rfᵀ
    and Ω = Δ + W M Wᵀ with Δ = Sp Spᵀ diagonal, W = [Lf, Sp Rf], M = [[RfᵀRf, I], [I, 0]];
    RfᵀRf = blockdiag(Xᵀ D⁻¹ X + diag(Σ_group w²), S) in closed form (X = S1 Rq)."""
    u0, p0, v, resid0 = untreated
    u1, p1, wh, tau, groups = treated
    n, counts = inv.n, inv.counts
    n_units, n_periods = counts.shape[0], counts.shape[1] + 1
    act = wh > 0  # zero-weight cells add nothing to ψ or Ω
    wa, ua, pa, ta = wh[act], u1[act], p1[act], tau[act]
    ga = pd.factorize(groups[act])[0]
    k = int(ga.max()) + 1
    cell = ua * k + ga  # unit × group
    tot = np.bincount(ga, wa, k)[ga]
    den = tot
    alone = np.ones(wa.size, bool)
    if leave_out:  # τ̄ without own unit, unless the unit is alone in its group
        pair = pd.factorize(cell)[0]
        pair_group = np.zeros(int(pair.max()) + 1, np.int64)
        pair_group[pair] = ga
        alone = (np.bincount(pair_group, minlength=k) == 1)[ga]  # one unit in the group
        den = np.where(alone, tot, tot - np.bincount(pair, wa)[pair])
    share = wa / den
    sums = np.bincount(cell, (~alone) * share, n_units * k)[cell] if leave_out else 0.0
    sp1 = wa * (1.0 + sums)  # S1 diag(w) plus own unit's share, row-disjoint
    lq = np.bincount(cell, share, n_units * k).reshape(n_units, k)
    x = np.bincount(cell, wa, n_units * k).reshape(n_units, k)  # X = S1 Rq
    bd = np.bincount(u0, v, n_units) + np.bincount(ua, sp1, n_units)
    sp0 = v - (bd / n)[u0]
    rq_t = _by_unit_period(ga, pa, wa, k, n_periods)  # Rqᵀ Z1 (period part)
    bl = (
        _by_unit_period(u0, p0, v, n_units, n_periods)
        + _by_unit_period(ua, pa, sp1, n_units, n_periods)
        - (bd / n)[:, None] * counts
        - lq @ (rq_t - x.T @ (counts / n[:, None]))
    )  # B L
    lf = np.hstack([lq, -linalg.cho_solve(inv.chol, bl.T).T])
    sp0_sum = np.bincount(u0, sp0, n_units)
    sp_rf = np.hstack(
        [
            (x / n[:, None]) * sp0_sum[:, None]
            - np.bincount(cell, sp1 * wa, n_units * k).reshape(n_units, k),
            _by_unit_period(u0, p0, sp0, n_units, n_periods)
            - (counts / n[:, None]) * sp0_sum[:, None],
        ]
    )
    rtr = linalg.block_diag(x.T @ (x / n[:, None]) + np.diag(np.bincount(ga, wa**2, k)), inv.schur)
    r = rtr.shape[0]
    m = np.block([[rtr, np.eye(r)], [np.eye(r), np.zeros((r, r))]])
    big_w = np.hstack([lf, sp_rf])
    delta = np.bincount(u0, sp0**2, n_units) + np.bincount(ua, sp1**2, n_units)
    trace, frob = _trace_and_frobenius(delta, big_w, m)
    if trace <= VACANT * (wa @ wa + v @ v):  # Q = 0 up to rounding: ψ = 0 whatever y
        return np.zeros(n_units), np.nan
    psi = (
        np.bincount(u0, v * resid0, n_units)
        + np.bincount(ua, sp1 * ta, n_units)
        - lq @ np.bincount(ga, wa * ta, k)
    )
    return psi, float(trace**2 / frob)


# The 2r × 2r sums are kept only when each is at least this fraction of its largest term: with
# one or two treated units among many, Δ's treated rows and the low-rank part nearly cancel
# (1,000 units: terms of 0.17 summing to 2e-10), and the sums keep ~1e-16 / fraction of it.
_KEPT_FRACTION = 1e-6


def _trace_and_frobenius(delta: np.ndarray, w: np.ndarray, m: np.ndarray) -> tuple[float, float]:
    """tr Ω and ‖Ω‖²_F of Ω = diag(delta) + W M Wᵀ (G × G): from 2r × 2r products when W has
    fewer columns than rows and the sums do not cancel, else from Ω itself, formed in row
    blocks of about 4M entries (each entry's rounding is relative to that entry)."""
    n = delta.size
    if w.shape[1] < n:
        gram = w.T @ w
        mg = m @ gram
        traces = (delta.sum(), np.sum(m * gram))
        squares = (delta @ delta, 2.0 * np.sum(m * (w.T @ (w * delta[:, None]))), np.sum(mg * mg.T))
        trace, frob = sum(traces), sum(squares)
        if abs(trace) > _KEPT_FRACTION * max(map(abs, traces)) and frob > _KEPT_FRACTION * max(
            map(abs, squares)
        ):
            return float(trace), float(frob)
    wm = w @ m
    step = max(1, 2**22 // n)
    trace = frob = 0.0
    for lo in range(0, n, step):
        block = wm[lo : lo + step] @ w.T
        rows = np.arange(block.shape[0])
        block[rows, lo + rows] += delta[lo : lo + step]
        trace += float(np.trace(block[:, lo : lo + step]))
        frob += float(np.sum(block * block))
    return trace, frob


@dataclass(frozen=True)
class Pretest:
    """BJS's pre-trend test: `test` the joint F (statistic, df_num, df_denom, p_value, leads),
    the lead coefficients `coef` (event times −1, −2, …) with their CR1 covariance `vcov`, and
    `loading` how a linear trend of slope 1 in the treated units' untreated outcomes (t − their
    start) moves each coefficient."""

    test: dict[str, float]
    coef: np.ndarray
    vcov: np.ndarray
    loading: np.ndarray


def pretrend_test(
    y: np.ndarray,
    unit: np.ndarray,
    period: np.ndarray,
    cohort: np.ndarray,
    leads: int,
) -> Pretest | None:
    """BJS (2024, Section 4.4) test: on untreated cells only, OLS of Y on unit and period
    effects and indicators for event times −1..−leads of eventually treated units; joint F of
    the lead coefficients with CR1-by-unit covariance and G−1 denominator df. None when no
    lead cell exists, or the untreated cells leave no residual variation to test the leads
    against (no residual degrees of freedom, or a lead's CR1 variance zero to rounding: its
    cells are fitted exactly). Leads the unit and period effects absorb are left out
    (`_identified`); `leads` counts those tested."""
    period = np.asarray(period).astype(np.int64)
    cohort = np.asarray(cohort, dtype=float)
    untreated = np.isnan(cohort) | (period < np.nan_to_num(cohort, nan=np.inf))
    y0, p0, c0 = np.asarray(y, float)[untreated], period[untreated], cohort[untreated]
    u0 = pd.factorize(pd.Series(np.asarray(unit)[untreated]), sort=True)[0]
    rel = p0 - c0
    cols = [k for k in range(1, leads + 1) if np.any(rel == -k)]
    if not cols:
        return None
    x = np.column_stack([(rel == -k).astype(float) for k in cols])
    pc = pd.factorize(p0, sort=True)[0]
    trend = np.nan_to_num(rel)  # t − start for eventually treated units, 0 for the others
    r = absorb_two_way(np.column_stack([y0, trend, x]), u0, pc)
    yt, vt, xt = r[:, 0], r[:, 1], r[:, 2:]
    kept = _identified(x, xt)  # leads the unit and period effects do not absorb
    if not kept.size:
        return None
    if kept.size < len(cols):
        cols, xt = [cols[j] for j in kept], xt[:, kept]
    bread = np.linalg.pinv(xt.T @ xt)
    b = bread @ xt.T @ yt
    e = yt - xt @ b
    g = int(u0.max()) + 1
    s = np.zeros((g, len(cols)))
    np.add.at(s, u0, xt * e[:, None])
    n, k = len(y0), len(cols) + g + int(pc.max())
    if n <= k:
        return None
    c = g / (g - 1) * (n - 1) / (n - k)
    vcov = c * bread @ s.T @ s @ bread
    if (np.diag(vcov) <= VACANT * np.diag(bread) * (yt @ yt) / n).any():
        return None
    out = wald_test(b, vcov, g - 1)
    out["leads"] = float(len(cols))
    return Pretest(out, b, vcov, bread @ xt.T @ vt)


def _identified(x: np.ndarray, absorbed: np.ndarray) -> np.ndarray:
    """Columns of `x` (sorted positions) that stay linearly independent after absorbing the
    unit and period effects (`absorbed`): pivoted QR, kept while a pivot is more than 1e-8 of
    its column's raw norm. A lead whose cells the effects fit exactly (a unit's only untreated
    cell, a cell alone in its period) is rounding after absorption, and inverting it gave
    standard errors of 1e14 and a test that always passed (found in review)."""
    _, r, piv = linalg.qr(absorbed, mode="economic", pivoting=True)
    ok = np.abs(np.diag(r)) > 1e-8 * np.linalg.norm(x[:, piv], axis=0)
    rank = int(np.cumprod(ok).sum())  # pivots come in decreasing size: the first failure ends it
    return np.sort(piv[:rank])


def _pretest_power(
    pretest: Pretest | None, res: ImputationResult, period: np.ndarray, cohort: np.ndarray
) -> dict[str, float] | None:
    """What BJS's pre-test can see (inference/pretrends_power.linear_trend_power): the lead
    coefficients move by s × their loading under a treated-unit trend of s per period, and the
    overall ATT by s × its weights on t − start (treated and untreated cells)."""
    if pretest is None:
        return None
    trend = np.nan_to_num(np.asarray(period, float) - cohort)
    bias = res.weights[0] @ trend[res.treated_rows] + res.v_untreated[0] @ trend[res.untreated_rows]
    return linear_trend_power(pretest.vcov, pretest.loading, float(bias))


def stratified_rows(
    res: ImputationResult,
    y: np.ndarray,
    unit: np.ndarray,
    period: np.ndarray,
    cohort: np.ndarray,
) -> CohortStratified | None:
    """The cohort-stratified variance with Bell-McCaffrey df (inference/cohort_stratified.py)
    of the rows, which are linear in the outcomes (Theorem 2's implied weights: `weights` on
    treated cells, `v_untreated` on untreated ones); None when the weights differ between
    units of a cohort (unbalanced panels)."""
    rows = np.concatenate([res.treated_rows, res.untreated_rows])
    w = np.column_stack([res.weights, res.v_untreated])  # (H, cells used)
    units = pd.factorize(unit[rows], sort=True)[0]
    own = pd.Series(cohort[rows]).groupby(units).first().to_numpy(float)
    return stratified_cells(w, y[rows], units, pd.factorize(period[rows], sort=True)[0], own)


def lone_rows(rows: list[dict[str, Any]]) -> list[str]:
    """The warning for rows with a standard error that rest on one treated unit, whose own
    noise the leave-out variance cannot see, if any."""
    lone = [r["term"] for r in rows if r["n_units"] == 1 and np.isfinite(r["std_error"])]
    if not lone:
        return []
    return [
        f"{', '.join(lone)}: one treated unit only, whose own noise no unit-clustered variance "
        "can see; its interval is too narrow."
    ]


@dataclass(frozen=True)
class SmallSampleRows:
    """The imputation estimator's small-sample variance of its rows (overall ATT, then each
    event time ≥ 0): `vcov`, `df`, the InferenceKey `key` and a `label` naming it;
    `n_dropped` its treated cells that could not be imputed (while there are any, the rows
    are not those of an estimator that kept them)."""

    vcov: np.ndarray
    df: np.ndarray
    key: InferenceKey
    label: str
    n_dropped: int


def small_sample_rows(
    y: np.ndarray, unit: np.ndarray, period: np.ndarray, cohort: np.ndarray, reason: str
) -> SmallSampleRows:
    """For estimators whose rows are the imputation estimator's (two-stage DiD; ETWFE without
    covariates and with not-yet-treated controls): the cohort-stratified variance with
    Bell-McCaffrey df on balanced panels, else the leave-out conservative variance averaged
    by row with Satterthwaite df. `reason`: why the default chose it ("" if asked for)."""
    args = (y, unit, period, cohort)
    small = imputation(*args, leave_out=True, average_by="row")
    strat = stratified_rows(small, *args)
    if strat is not None:
        return SmallSampleRows(
            rescale_covariance(small.vcov, strat.std_error),
            strat.df,
            "cohort_stratified",
            "cohort-stratified variance of the (identical) imputation estimates with "
            "Bell-McCaffrey degrees of freedom" + because(reason),
            small.n_dropped,
        )
    return SmallSampleRows(
        small.vcov,
        small.df,
        "bjs_leave_out",
        "BJS leave-out conservative variance of the (identical) imputation estimates, "
        "Satterthwaite degrees of freedom" + because(reason),
        small.n_dropped,
    )


class Imputation(ImputationOptions):
    """BJS imputation estimator: overall ATT (equal weights on treated cells) and one row per
    event time K ≥ 0, Theorem 3 conservative standard errors clustered by unit.
    `pretrend_leads` > 0 adds the BJS pre-trend test on that many leads to `diagnostics`.

    Inference: "cluster_robust" is τ̄ by cohort × period (`leave_out` as in `imputation`) with
    a t(G−1) reference, as the paper and did_imputation. "default" chooses, when fewer than 20
    units are treated, the leave-out variance with τ̄ averaged over each row's cells and a
    Satterthwaite t reference (`imputation`, average_by="row"): with cohorts of one LA the
    cohort × period τ̄ equals the LA's own τ̂ and its noise drops out of the variance
    (benchmarks/did_size.py, 150 LAs, T = 10, 300 draws: the t(G−1) test rejects a true null
    84%, 18% and 15% of the time with 3, 7 and 10 treated; the default 1.0%, 4.7% and 4.7%,
    coverage 99%, 95% and 95%). The coarser τ̄ and leave-out follow did_imputation's advice for
    small cohorts (avgeffectsby over treated cells, leaveout; BJS 2024 Appendix A.6).
    Otherwise it is "cluster_robust"."""

    def fit(
        self, panel: ValidatedPanel, outcome: str, analysis_id: str, level: float = 0.95
    ) -> EffectEstimates:
        cells = panel.outcome_cells(outcome)
        args = (
            cells["y"].to_numpy(float),
            cells["unit"].to_numpy(),
            cells["period"].to_numpy(),
            cells["cohort"].to_numpy(float),
        )
        n_treated = int(cells.loc[cells["role"] == "treated", "unit"].nunique())
        layout = panel_layout(panel, outcome)
        res = imputation(*args, leave_out=self.leave_out)

        def unit_weights() -> np.ndarray:
            w = np.zeros((res.estimate.size, len(cells)))
            w[:, res.treated_rows], w[:, res.untreated_rows] = res.weights, res.v_untreated
            return layout.cell_weights(args[1], args[2], w)

        decision = did_decision(
            self.name, self.inference.method, n_treated, True, layout, unit_weights
        )
        choice = decision.choice
        small = choice.method == "cohort_stratified"
        strat = None
        df = np.full(res.estimate.size, float(res.n_clusters - 1))
        if decision.variance is not None:
            df = decision.variance.df
            res = replace(res, vcov=decision.variance.vcov)
        elif small:
            res = imputation(*args, leave_out=True, average_by="row")
            df = res.df
            strat = stratified_rows(res, *args)
        if strat is not None:
            df = strat.df
            res = replace(res, vcov=rescale_covariance(res.vcov, strat.std_error))
        df = np.where(np.isnan(np.diag(res.vcov)), np.nan, df)  # no variance, no df
        summ = t_summary(res.estimate, res.vcov, df, level)
        pretest = pretrend_test(*args, self.pretrend_leads) if self.pretrend_leads > 0 else None
        treated_units = cells["unit"].to_numpy()[res.treated_rows]
        rel = (cells["period"] - cells["cohort"]).to_numpy(float)[res.treated_rows]
        rows = []
        for h in range(res.estimate.size):
            e = None if h == 0 else int(res.event_time[h - 1])
            sel = np.ones(rel.size, bool) if e is None else rel == e
            rows.append(
                summ.row(
                    h,
                    "ATT (all treated cells)" if e is None else f"event time {e}",
                    res.estimate[h],
                    df=float(df[h]),
                    event_time=np.nan if e is None else float(e),
                    n_units=len(set(treated_units[sel].tolist())),
                )
            )
        if decision.variance is not None:
            label, warns = pooled_label(layout, choice.reason), []
        elif strat is not None:
            borrowed = (
                f"; {strat.singletons} single-unit cohort(s) borrow the pooled within-cohort "
                "covariance"
                if strat.singletons
                else ""
            )
            label = (
                "cohort-stratified variance of the imputation estimates (linear in the "
                "outcomes with weights constant within cohorts; each cohort's variance "
                f"estimated within it, divisor n − 1{borrowed}) with Bell-McCaffrey degrees of "
                f"freedom{because(choice.reason_for('cohort_stratified'))}"
            )
            warns = []
        elif small:
            label = (
                "BJS (2024) Theorem 3 conservative variance, clustered by unit, τ̄ averaged over "
                "each row's cells leaving out own unit, Satterthwaite degrees of freedom "
                f"(Bell & McCaffrey 2002){because(choice.reason_for('leave_out'))}"
            )
            warns = lone_rows(rows)
        else:
            label = (
                "BJS (2024) Theorem 3 conservative variance, clustered by unit, τ̄ averaged by "
                f"cohort × period{' leaving out own unit' if self.leave_out else ''}; "
                "t(G−1) reference"
            )
            warns = list(few_cluster_warnings(n_treated, res.n_clusters))
        used: InferenceKey = "bjs_leave_out" if small else "bjs_conservative"
        if strat is not None:
            used = "cohort_stratified"
        if decision.variance is not None:
            used = "pooled_panel"
        warns += vacant_rows(rows, used)
        if self.pretrend_leads > 0 and pretest is None:
            before = (cells["cohort"] - cells["period"]).between(1, self.pretrend_leads)
            warns.append(
                "BJS's pre-trend test was not run: "
                + (
                    "unit, period and lead effects fit the untreated cells the leads rest on "
                    "exactly, leaving no residual variation to test them against."
                    if before.any()
                    else "no treated unit has untreated cells in the "
                    f"{self.pretrend_leads} periods before its start."
                )
            )
        if res.n_dropped:
            warns.append(
                f"{res.n_dropped} treated cells could not be imputed (their unit or period has "
                "no untreated cells) and are left out of every average."
            )
        return EffectEstimates(
            analysis_id=analysis_id,
            outcome=outcome,
            estimator=self.name,
            inference=InferenceUsed(
                key=used,
                label=label,
                chosen_by_default=choice.chosen_by_default,
                reason=choice.reason_for(
                    "pooled"
                    if decision.variance is not None
                    else "cohort_stratified"
                    if strat
                    else "leave_out"
                    if small
                    else "cluster_robust"
                ),
                dependence=decision.dependence,
            ),
            table=estimates_table(rows),
            level=level,
            vcov=res.vcov,
            n_units=res.n_clusters,
            n_treated=len(set(treated_units.tolist())),
            n_obs=int(res.treated_rows.size + res.untreated_rows.size),
            facts=ImputationFacts(
                inference_method=used
                if used in ("cohort_stratified", "pooled_panel")
                else "imputation",
                leave_out=small or self.leave_out,
                average_by="row" if small else "cohort_period",
                treated_cells=int(res.treated_rows.size),
                untreated_cells=int(res.untreated_rows.size),
                dropped_treated_cells=res.n_dropped,
                weights="equal weights on treated cells (overall) and on the cells "
                "at each event time",
                pretrend_test=pretest.test if pretest else None,
                pretest_power=None
                if self.refit
                else _pretest_power(pretest, res, args[2], args[3]),
            ),
            warnings=tuple(warns),
        )
