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

from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import pandas as pd
from scipy import linalg

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.estimators.sun_abraham import absorb_two_way
from pathfinder_eval.estimators.twfe import few_cluster_warnings
from pathfinder_eval.inference.cluster import t_summary, wald_test
from pathfinder_eval.panel import ValidatedPanel
from pathfinder_eval.results import EffectEstimates, estimates_table
from pathfinder_eval.spec import Inference


@dataclass(frozen=True)
class ImputationResult:
    """Imputation estimates for H estimands (row 0: overall ATT; then one per event time).

    event_time: (H−1,) event times K ≥ 0 of rows 1..H−1.
    estimate: (H,) Σ_it w_hit τ̂_it; vcov: (H, H) Theorem 3 conservative covariance, by unit.
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
    weights: np.ndarray
    tau: np.ndarray
    treated_rows: np.ndarray
    untreated_rows: np.ndarray
    v_untreated: np.ndarray
    n_dropped: int
    n_clusters: int


def _design(unit: np.ndarray, period: np.ndarray, n_units: int, n_periods: int) -> np.ndarray:
    """Unit dummies and period dummies without the first period: (n, U + T − 1)."""
    z = np.zeros((len(unit), n_units + n_periods - 1))
    z[np.arange(len(unit)), unit] = 1.0
    later = period > 0
    z[np.flatnonzero(later), n_units + period[later] - 1] = 1.0
    return z


def imputation(
    y: np.ndarray,
    unit: np.ndarray,
    period: np.ndarray,
    cohort: np.ndarray,
    leave_out: bool = False,
) -> ImputationResult:
    """BJS imputation estimator with their conservative variance (Theorem 3).

    y: (n,) outcomes; unit: (n,) labels; period: (n,) integer periods; cohort: (n,) first
    treated period of the row's unit (NaN: never treated). Unbalanced panels are fine; treated
    cells whose unit has no untreated cell, or whose period has none, cannot be imputed and
    are dropped (counted in n_dropped).

    Variance: V̂ = Σ_i (Σ_t v_it ε̃_it)², clustered by unit, with no small-sample factor (as in
    the paper and did_imputation). ε̃_it = Y_it − α̂_i − λ̂_t on untreated cells; on treated
    cells ε̃_it = τ̂_it − τ̄_gt, where τ̄_gt is the w-weighted average of τ̂ within the cell's
    cohort × period (did_imputation's default `avgeffectsby`). leave_out=True computes τ̄
    without unit i's own cells (BJS Appendix A.6 / did_imputation's `leaveout`), falling back
    to the full average for a unit alone in its cohort × period.
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
    z = _design(ucodes, pcodes, n_units, n_periods)
    z0, z1 = z[:n0], z[n0:]
    gram = z0.T @ z0
    try:
        chol = linalg.cho_factor(gram)
    except linalg.LinAlgError:
        chol = None
    if chol is None or np.linalg.matrix_rank(gram) < gram.shape[0]:
        raise EstimationError(
            "unit and period effects are not identified from the untreated cells (the "
            "untreated cells do not connect all units and periods)",
            where="rollout",
            fix="keep never-treated or not-yet-treated comparison units in every period",
        )
    y0, y1 = y[rows0], y[rows1]
    beta = linalg.cho_solve(chol, z0.T @ y0)
    tau = y1 - z1 @ beta
    resid0 = y0 - z0 @ beta

    g1 = cohort[rows1]
    rel = period[rows1] - g1
    event_time = np.unique(rel).astype(int)
    w = np.zeros((1 + event_time.size, rows1.size))
    w[0] = 1.0 / rows1.size
    for h, e in enumerate(event_time, start=1):
        sel = rel == e
        w[h, sel] = 1.0 / sel.sum()
    estimate = w @ tau
    v0 = -(z0 @ linalg.cho_solve(chol, z1.T @ w.T)).T  # (H, n0)

    u0, u1 = ucodes[:n0], ucodes[n0:]
    groups = pd.factorize(pd.Series(list(zip(g1, period[rows1], strict=True))))[0]
    n_groups = int(groups.max()) + 1
    psi = np.zeros((n_units, w.shape[0]))
    for h in range(w.shape[0]):
        wh = w[h]
        s_g = np.bincount(groups, weights=wh * tau, minlength=n_groups)
        w_g = np.bincount(groups, weights=wh, minlength=n_groups)
        tbar = np.divide(s_g, w_g, out=np.zeros_like(s_g), where=w_g > 0)[groups]
        if leave_out:
            key = groups * n_units + u1
            own_s = pd.Series(wh * tau).groupby(key).transform("sum").to_numpy()
            own_w = pd.Series(wh).groupby(key).transform("sum").to_numpy()
            rest = w_g[groups] - own_w
            alone = rest <= 1e-15 * np.maximum(w_g[groups], 1e-300)
            tbar = np.where(alone, tbar, (s_g[groups] - own_s) / np.where(alone, 1.0, rest))
        contrib1 = wh * (tau - tbar)
        psi[:, h] = np.bincount(u1, weights=contrib1, minlength=n_units) + np.bincount(
            u0, weights=v0[h] * resid0, minlength=n_units
        )
    vcov = psi.T @ psi
    return ImputationResult(
        event_time, estimate, vcov, w, tau, rows1, rows0, v0, n_dropped, n_units
    )


def pretrend_test(
    y: np.ndarray,
    unit: np.ndarray,
    period: np.ndarray,
    cohort: np.ndarray,
    leads: int,
) -> dict[str, float] | None:
    """BJS (2024, Section 4.4) test: on untreated cells only, OLS of Y on unit and period
    effects and indicators for event times −1..−leads of eventually treated units; joint F of
    the lead coefficients with CR1-by-unit covariance and G−1 denominator df. None when no
    lead cell exists."""
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
    r = absorb_two_way(np.column_stack([y0, x]), u0, pc)
    yt, xt = r[:, 0], r[:, 1:]
    bread = np.linalg.pinv(xt.T @ xt)
    b = bread @ xt.T @ yt
    e = yt - xt @ b
    g = int(u0.max()) + 1
    s = np.zeros((g, len(cols)))
    np.add.at(s, u0, xt * e[:, None])
    n, k = len(y0), len(cols) + g + int(pc.max())
    c = g / (g - 1) * (n - 1) / (n - k)
    vcov = c * bread @ s.T @ s @ bread
    out = wald_test(b, vcov, g - 1)
    out["leads"] = float(len(cols))
    return out


@dataclass(frozen=True)
class Imputation:
    """BJS imputation estimator: overall ATT (equal weights on treated cells) and one row per
    event time K ≥ 0; Theorem 3 conservative standard errors clustered by unit (t(G−1)
    reference for intervals). `leave_out` as in `imputation`; `pretrend_leads` > 0 adds the
    BJS pre-trend test on that many leads to `diagnostics`."""

    leave_out: bool = False
    pretrend_leads: int = 3
    inference: Inference = field(default_factory=Inference)

    name = "imputation"
    inference_methods = frozenset({"default", "cluster_robust"})

    def fit(
        self, panel: ValidatedPanel, outcome: str, analysis_id: str, level: float = 0.95
    ) -> EffectEstimates:
        self.inference.require(self.inference_methods, self.name)
        cells = panel.outcome_cells(outcome)
        args = (
            cells["y"].to_numpy(float),
            cells["unit"].to_numpy(),
            cells["period"].to_numpy(),
            cells["cohort"].to_numpy(float),
        )
        res = imputation(*args, leave_out=self.leave_out)
        df = res.n_clusters - 1
        summ = t_summary(res.estimate, res.vcov, df, level)
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
                    df=float(df),
                    event_time=np.nan if e is None else float(e),
                    n_units=len(set(treated_units[sel].tolist())),
                )
            )
        warns = list(few_cluster_warnings(len(set(treated_units.tolist())), res.n_clusters))
        if res.n_dropped:
            warns.append(
                f"{res.n_dropped} treated cells could not be imputed (their unit or period has "
                "no untreated cells) and are left out of every average."
            )
        return EffectEstimates(
            analysis_id,
            outcome,
            self.name,
            "BJS (2024) Theorem 3 conservative variance, clustered by unit, τ̄ averaged by "
            f"cohort × period{' leaving out own unit' if self.leave_out else ''}; "
            "t(G−1) reference",
            estimates_table(rows),
            level,
            res.vcov,
            res.n_clusters,
            len(set(treated_units.tolist())),
            int(res.treated_rows.size + res.untreated_rows.size),
            MappingProxyType(
                {
                    "leave_out": self.leave_out,
                    "treated_cells": int(res.treated_rows.size),
                    "untreated_cells": int(res.untreated_rows.size),
                    "dropped_treated_cells": res.n_dropped,
                    "weights": "equal weights on treated cells (overall) and on the cells "
                    "at each event time",
                    "pretrend_test": pretrend_test(*args, self.pretrend_leads)
                    if self.pretrend_leads > 0
                    else None,
                }
            ),
            tuple(warns),
        )
