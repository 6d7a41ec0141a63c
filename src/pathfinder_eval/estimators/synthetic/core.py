"""Synthetic DiD, synthetic control and DiD on a unit × period matrix (block treatment).

Arkhangelsky, Athey, Hirshberg, Imbens & Wager (2021), "Synthetic Difference-in-Differences",
American Economic Review 111(12):4088–4118, Algorithm 1 (estimate), Algorithm 4 (placebo
variance), Algorithm 3 (jackknife) and Algorithm 2 (bootstrap). Weights solve penalised
least-squares problems on the unit simplex by Frank–Wolfe with exact line search, with the
paper's regularisation (ζ_ω = (N₁T₁)^¼ σ̂, ζ_λ = 10⁻⁶ σ̂, σ̂ the SD of control units' first
differences before treatment), a first round of 100 iterations, sparsification (weights at or
below a quarter of the largest set to zero) and a second round to convergence — the settings of
the authors' R package `synthdid`, so estimates agree with it to optimiser precision.

Layout: Y has control units in rows 0..N0−1 and treated units below; pre periods in columns
0..T0−1 and post periods after.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.jit import cached_njit
from pathfinder_eval.workers import inner_threads

Method = Literal["sdid", "sc", "did"]
FIRST_ROUND_ITERATIONS = 100
TINY_ZETA = 1e-6  # ζ_λ, and SC's ζ_ω, in units of σ̂
MAX_ITERATIONS = 10_000


@dataclass(frozen=True)
class SDIDFit:
    """One estimate. omega: (N0,) control-unit weights; lambda_: (T0,) pre-period weights;
    curve: (T1,) effect by post period; noise_level: σ̂; iterations: Frank–Wolfe steps used."""

    method: str
    estimate: float
    omega: np.ndarray
    lambda_: np.ndarray
    curve: np.ndarray
    noise_level: float
    iterations: int


@cached_njit(nogil=True)
def _fw_solve(
    y: np.ndarray,
    zeta: float,
    intercept: bool,
    start: np.ndarray,
    min_decrease: float,
    max_iter: int,
) -> tuple[np.ndarray, int]:
    """Minimise ζ²‖x‖² + ‖A x − b‖²/n over the simplex, where y = [A | b] (n × (k+1)).

    Frank–Wolfe with exact line search for ‖Ax − b‖² + η‖x‖², η = nζ²; stops when the
    objective falls by less than min_decrease² between steps. With d = e_i − x the line search
    needs only g·d = g_i − g·x and ‖d‖² = 1 − 2x_i + ‖x‖², so each step is one pass over A.
    Compiled with numba: up to 10⁴ steps per fit and thousands of fits per placebo variance.
    """
    n, k = y.shape[0], y.shape[1] - 1
    a = np.empty((n, k))
    b = np.empty(n)
    for c in range(k + 1):
        shift = y[:, c].mean() if intercept else 0.0
        for r in range(n):
            if c < k:
                a[r, c] = y[r, c] - shift
            else:
                b[r] = y[r, c] - shift
    eta = n * zeta**2
    x = start.astype(np.float64).copy()
    resid = a @ x - b  # Ax − b, kept up to date
    grad = np.empty(k)
    previous = np.inf
    current = np.inf
    t = 0
    while t < max_iter and (t < 2 or previous - current > min_decrease**2):
        t += 1
        best, i = np.inf, 0
        gx = 0.0
        xx = 0.0
        for c in range(k):
            g = eta * x[c]
            for r in range(n):
                g += resid[r] * a[r, c]
            grad[c] = g
            gx += g * x[c]
            xx += x[c] * x[c]
            if g < best:
                best, i = g, c
        dd = 1.0 - 2.0 * x[i] + xx
        if dd > 0.0:
            ee = 0.0
            for r in range(n):
                e = a[r, i] - (resid[r] + b[r])
                ee += e * e
            step = -(grad[i] - gx) / (ee + eta * dd)
            step = min(1.0, max(0.0, step))
            for c in range(k):
                x[c] *= 1.0 - step
            x[i] += step
            for r in range(n):
                resid[r] += step * (a[r, i] - (resid[r] + b[r]))
        xx = 0.0
        for c in range(k):
            xx += x[c] * x[c]
        rr = 0.0
        for r in range(n):
            rr += resid[r] * resid[r]
        previous, current = current, zeta**2 * xx + rr / n
    return x, t


def _sparsify(v: np.ndarray) -> np.ndarray:
    out = np.where(v <= v.max() / 4.0, 0.0, v)
    return out / out.sum()


def simplex_weights(
    y: np.ndarray, zeta: float, intercept: bool, start: np.ndarray, min_decrease: float
) -> tuple[np.ndarray, int]:
    """Two rounds of Frank–Wolfe (100 steps, sparsify, then to convergence) as synthdid does.

    y: rows are observations, columns the candidate series then the target (see _fw_solve).
    """
    first, t1 = _fw_solve(y, zeta, intercept, start, min_decrease, FIRST_ROUND_ITERATIONS)
    final, t2 = _fw_solve(y, zeta, intercept, _sparsify(first), min_decrease, MAX_ITERATIONS)
    return final, t1 + t2


def noise_level(y: np.ndarray, n0: int, t0: int) -> float:
    """σ̂: sample SD of all first differences of control units over the pre period."""
    return float(np.std(np.diff(y[:n0, :t0], axis=1), ddof=1))


def collapsed(y: np.ndarray, n0: int, t0: int) -> np.ndarray:
    """(N0+1) × (T0+1): controls' pre outcomes and post means; treated means below."""
    top = np.column_stack([y[:n0, :t0], y[:n0, t0:].mean(axis=1)])
    bottom = np.append(y[n0:, :t0].mean(axis=0), y[n0:, t0:].mean())
    return np.vstack([top, bottom])


def synthdid(
    y: np.ndarray,
    n0: int,
    t0: int,
    method: Method = "sdid",
    omega_start: np.ndarray | None = None,
    lambda_start: np.ndarray | None = None,
) -> SDIDFit:
    """Estimate the average effect on the treated block by SDID, SC or DID (see module doc).

    SC uses no time weights, no intercept for unit weights and only infinitesimal
    regularisation (ζ_ω = 10⁻⁶ σ̂); DID uses uniform weights.
    """
    n1, t1 = y.shape[0] - n0, y.shape[1] - t0
    if method != "did" and n0 * (t0 - 1) < 2:
        raise EstimationError(
            f"{n0} comparison unit(s) over {t0} pre-start period(s) give {n0 * (t0 - 1)} "
            "period-to-period change(s); the weights' regularisation is scaled by their SD, "
            "which needs at least 2",
            fix="supply more comparison units or earlier periods",
        )
    sigma = noise_level(y, n0, t0)
    if method != "did" and not sigma > 0:
        raise EstimationError(
            "the comparison units' outcomes change by the same amount between every pair of "
            "pre-start periods (no noise to scale the weights' regularisation by)",
            fix="check the outcome column; synthetic weights need comparison series that vary",
        )
    min_decrease = 1e-5 * sigma
    yc = collapsed(y, n0, t0)
    iterations = 0
    if method == "did":
        omega, lam = np.full(n0, 1.0 / n0), np.full(t0, 1.0 / t0)
    else:
        if method == "sdid":
            start = lambda_start if lambda_start is not None else np.full(t0, 1.0 / t0)
            lam, it = simplex_weights(yc[:n0, :], TINY_ZETA * sigma, True, start, min_decrease)
            iterations += it
            zeta_omega, intercept = (n1 * t1) ** 0.25 * sigma, True
        else:
            lam, zeta_omega, intercept = np.zeros(t0), TINY_ZETA * sigma, False
        start = omega_start if omega_start is not None else np.full(n0, 1.0 / n0)
        omega, it = simplex_weights(yc[:, :t0].T, zeta_omega, intercept, start, min_decrease)
        iterations += it
    unit_contrast = np.append(-omega, np.full(n1, 1.0 / n1))
    path = unit_contrast @ y  # (T,) treated mean minus synthetic control
    curve = path[t0:] - path[:t0] @ lam
    estimate = float(unit_contrast @ y @ np.append(-lam, np.full(t1, 1.0 / t1)))
    return SDIDFit(method, estimate, omega, lam, curve, sigma, iterations)


def placebo_se(
    y: np.ndarray, n0: int, t0: int, fit: SDIDFit, replications: int, rng: np.random.Generator
) -> float:
    """Algorithm 4: re-estimate with N1 controls drawn at random as placebo-treated; SD of the
    placebo estimates (× √((B−1)/B)). Valid with a single treated unit; needs N0 > N1.

    The permutations are drawn first from `rng`, so the result does not depend on how the
    re-estimates are spread over threads (the compiled solver releases the GIL).
    """
    draws = placebo_draws(y, n0, t0, fit, replications, rng)
    return float(np.sqrt((replications - 1) / replications) * np.std(draws, ddof=1))


def placebo_draws(
    y: np.ndarray, n0: int, t0: int, fit: SDIDFit, replications: int, rng: np.random.Generator
) -> np.ndarray:
    """(replications,) placebo estimates; see `placebo_se`."""
    n1 = y.shape[0] - n0
    orders = [rng.permutation(n0) for _ in range(replications)]

    def one(order: np.ndarray) -> float:
        start = fit.omega[order[: n0 - n1]]
        total = start.sum()
        start = start / total if total > 0 else np.full(n0 - n1, 1.0 / (n0 - n1))
        return synthdid(y[order], n0 - n1, t0, fit.method, start, fit.lambda_).estimate

    with ThreadPoolExecutor(max_workers=inner_threads()) as pool:
        return np.array(list(pool.map(one, orders)))


def jackknife_se(y: np.ndarray, n0: int, t0: int, fit: SDIDFit) -> float:
    """Algorithm 3, fixed-weights jackknife: drop each unit in turn, keep λ and the remaining
    ω (renormalised), recompute; SE = √((n−1)/n · Σ(θ₍ᵢ₎ − θ̄)²). Needs N1 > 1 and more than
    one control with weight (NaN otherwise); not recommended for SC (paper, §5)."""
    n, n1 = y.shape[0], y.shape[0] - n0
    if n1 == 1 or np.count_nonzero(fit.omega) <= 1:
        return float("nan")
    t1 = y.shape[1] - t0
    time_contrast = np.append(-fit.lambda_, np.full(t1, 1.0 / t1))
    estimates = np.empty(n)
    for i in range(n):
        keep = np.delete(np.arange(n), i)
        k0 = n0 - (i < n0)
        omega = fit.omega[keep[:k0]]
        total = omega.sum()
        omega = omega / total if total > 0 else np.full(k0, 1.0 / k0)
        k1 = len(keep) - k0
        unit_contrast = np.append(-omega, np.full(k1, 1.0 / k1))
        estimates[i] = unit_contrast @ y[keep] @ time_contrast
    return float(np.sqrt((n - 1) / n * np.sum((estimates - estimates.mean()) ** 2)))


def bootstrap_se(
    y: np.ndarray, n0: int, t0: int, fit: SDIDFit, replications: int, rng: np.random.Generator
) -> float:
    """Algorithm 2: resample units with replacement (redrawing samples with no control or no
    treated unit), re-estimate starting from the fitted weights; SE = √((B−1)/B)·SD. Needs
    N1 > 1 (NaN otherwise)."""
    n = y.shape[0]
    if n - n0 == 1:
        return float("nan")
    draws = np.empty(replications)
    count = 0
    while count < replications:
        ind = np.sort(rng.integers(0, n, n))
        controls = ind[ind < n0]
        if len(controls) == 0 or len(controls) == n:
            continue
        start = fit.omega[controls]
        total = start.sum()
        start = start / total if total > 0 else np.full(len(controls), 1.0 / len(controls))
        draws[count] = synthdid(y[ind], len(controls), t0, fit.method, start, fit.lambda_).estimate
        count += 1
    return float(np.sqrt((replications - 1) / replications) * np.std(draws, ddof=1))
