"""Conformal inference for synthetic control (Chernozhukov, Wüthrich & Zhu 2021, JASA
116:1849–1864): test a constant post-period effect θ₀ by re-fitting the synthetic control on
all periods with the treated unit's post outcomes reduced by θ₀, then comparing the post-period
residuals with their moving-block (cyclic) permutations; the confidence set collects the θ₀
not rejected."""

from __future__ import annotations

import numpy as np

from pathfinder_eval.estimators.synthetic.core import noise_level, simplex_weights


def conformal_pvalue(y: np.ndarray, n0: int, t0: int, theta0: float) -> float:
    """p-value of H0: effect = θ₀ in every post period, for the last row of y (one treated
    unit; donors in rows 0..n0−1). Statistic: mean |residual| over post periods (q = 1);
    permutations: the T cyclic shifts of the residual series, so p ≥ 1/T."""
    donors, target = y[:n0], y[-1].astype(float).copy()
    t = y.shape[1]
    target[t0:] -= theta0
    sigma = noise_level(np.vstack([donors, target]), n0, t)
    start = np.full(n0, 1.0 / n0)
    omega, _ = simplex_weights(
        np.column_stack([donors.T, target]), 1e-6 * sigma, False, start, 1e-5 * sigma
    )
    resid = target - omega @ donors
    post = np.arange(t0, t)
    observed = np.abs(resid[post]).mean()
    shifted = [np.abs(np.roll(resid, -j)[post]).mean() for j in range(t)]
    return float(np.mean(np.asarray(shifted) >= observed - 1e-12))


def conformal_interval(
    y: np.ndarray, n0: int, t0: int, centre: float, alpha: float, grid: int = 41
) -> tuple[float, float]:
    """Hull of {θ₀ : p(θ₀) > α}: a grid centred on `centre` spanning ±10 pre-period SDs of the
    treated unit (plus |centre|), each finite end refined by bisection; an end still accepted
    at the grid's edge is ∓∞. With T periods p ≥ 1/T, so when 1/T > α nothing is ever
    rejected and the set is the whole line (returned without computing)."""
    if 1.0 / y.shape[1] > alpha:
        return -np.inf, np.inf
    width = 10.0 * (float(np.std(y[-1, :t0])) + abs(centre)) or 1.0
    thetas = np.linspace(centre - width, centre + width, grid)
    accepted = np.array([conformal_pvalue(y, n0, t0, th) > alpha for th in thetas])
    if not accepted.any():
        return float("nan"), float("nan")
    first, last = np.flatnonzero(accepted)[[0, -1]]
    lo = -np.inf if first == 0 else _edge(y, n0, t0, alpha, thetas[first - 1], thetas[first])
    hi = np.inf if last == grid - 1 else _edge(y, n0, t0, alpha, thetas[last + 1], thetas[last])
    return lo, hi


def _edge(
    y: np.ndarray, n0: int, t0: int, alpha: float, rejected: float, accepted: float, steps: int = 20
) -> float:
    """Bisection between a rejected and an accepted θ₀; returns the accepted end."""
    for _ in range(steps):
        mid = 0.5 * (rejected + accepted)
        if conformal_pvalue(y, n0, t0, mid) > alpha:
            accepted = mid
        else:
            rejected = mid
    return float(accepted)
