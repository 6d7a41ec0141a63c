"""Randomisation inference for difference-in-differences: re-assign treatment timing across units.

The vector of first treated periods (never-treated units included, as +∞) is permuted across
units; under the sharp null that treatment shifts every treated outcome by exactly b, the
outcomes y − b·D_obs are what any assignment would have shown, so the statistic recomputed on
every re-assignment gives its exact null distribution when timing is as-if randomly assigned
across units (Fisher 1935; for DiD, MacKinnon & Webb 2020, J. Econometrics 218:435–450, and
Roth & Sant'Anna 2023, J. Political Economy Microeconomics 1:669–709, on random timing).
All distinct assignments are enumerated when there are at most `draws`, otherwise `draws`
random permutations (seeded) are used with the observed assignment counted among them. The
two-sided p-value is the share of assignments with |statistic| at least the observed one; the
interval is the set of b the test does not reject at 1 − level (test inversion; its two ends
are found by bisection from the estimate).

Validity: exchangeability of timing across units is a design assumption, not a property of
the data. If treated units differ systematically (size, variance) from the rest, the test can
over- or under-reject (MacKinnon & Webb 2020); with very few treated units the attainable
p-values are coarse (at best 1 / number of distinct assignments).

Fast TWFE statistic: the TWFE coefficient for an assignment with indicator D is
β = DᵀM_F y / DᵀM_F D (Frisch–Waugh–Lovell; M_F the residual maker of the unit and period
dummies, symmetric idempotent). D is a sum of per-unit columns d_{u,k} = 1[unit u, period ≥
s_k] over the distinct start dates s_k, so with r_{uk} = d_{uk}ᵀM_F y, o_{uk} = d_{uk}ᵀM_F D_obs
and Q = [d_{uk}ᵀM_F d_{vl}] precomputed once (from `cr2.two_way_projection`), each assignment
costs a few sums over its treated units, and β(b) = (Σ r − b Σ o)/ΣΣ Q is linear in b.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.inference.cr2 import two_way_projection
from pathfinder_eval.inference.permutation import allocations, invert_test

# Statistics this close to the observed one count as at least as extreme (ties in exact
# enumeration must not depend on rounding); relative to the largest |statistic|.
TIE_TOL = 1e-10
_CHUNK = 4096

TimingStatistic = Callable[[np.ndarray, np.ndarray], float]
"""statistic(start, y) -> float: start (U,) first treated period of each unit (+∞ never),
y (n,) outcomes (already shifted by −b·D_obs under the null being tested)."""


@dataclass(frozen=True)
class TwfeTimingDesign:
    """Precomputed pieces of the TWFE coefficient over timing re-assignments.

    values: (K,) distinct finite start dates; r, o: (U, K) d_{uk}ᵀM_F y and d_{uk}ᵀM_F D_obs;
    q: (U·K, U·K) d_{uk}ᵀM_F d_{vl}, flattened unit-major."""

    values: np.ndarray
    r: np.ndarray
    o: np.ndarray
    q: np.ndarray


def twfe_timing_design(
    y: np.ndarray, units: np.ndarray, periods: np.ndarray, start: np.ndarray
) -> TwfeTimingDesign:
    """Precompute the TWFE statistic (module docstring) for a panel.

    y: (n,); units: (n,) integer codes 0..U−1; periods: (n,) period values on the same scale
    as `start`; start: (U,) observed first treated period of each unit, +∞ if never treated."""
    y = np.asarray(y, dtype=float)
    units = np.asarray(units, dtype=np.int64)
    periods = np.asarray(periods, dtype=float)
    start = np.asarray(start, dtype=float)
    period_codes = np.unique(periods, return_inverse=True)[1].ravel()
    proj = two_way_projection(units, period_codes)
    d_obs = (periods >= start[units]).astype(float)
    yt, xt = proj.residuals(np.column_stack([y, d_obs])).T
    values = np.unique(start[np.isfinite(start)])
    n_u, k = len(start), len(values)
    on = (periods[:, None] >= values[None, :]).astype(float)  # (n, K): period ≥ s_k
    r = np.zeros((n_u, k))
    o = np.zeros((n_u, k))
    counts = np.zeros((n_u, k))
    a = np.zeros((n_u, k, proj.dt.shape[1]))
    np.add.at(r, units, on * yt[:, None])
    np.add.at(o, units, on * xt[:, None])
    np.add.at(counts, units, on)
    np.add.at(a, units, on[:, :, None] * proj.dt[:, None, :])
    # d_uk'd_ul = count at the later start; d_uk'H_u d_ul = c_uk c_ul / T_u; d'H_t̃ d = a S a'
    later = np.maximum.outer(np.arange(k), np.arange(k))
    block = counts[:, later] - counts[:, :, None] * counts[:, None, :] / proj.n_u[:, None, None]
    flat = a.reshape(n_u * k, -1)
    q = -(flat @ proj.s @ flat.T)
    for u in range(n_u):
        q[u * k : (u + 1) * k, u * k : (u + 1) * k] += block[u]
    return TwfeTimingDesign(values, r, o, q)


def twfe_statistics(
    design: TwfeTimingDesign, assignments: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For assignments (M, U) of start dates: (M,) numerators Σr, shift slopes Σo and
    denominators ΣΣQ, so that the TWFE coefficient at null b is (num − b·slope) / den."""
    k = len(design.values)
    num = np.empty(len(assignments))
    slope = np.empty(len(assignments))
    den = np.empty(len(assignments))
    r, o = design.r.ravel(), design.o.ravel()
    for lo in range(0, len(assignments), _CHUNK):
        block = assignments[lo : lo + _CHUNK]
        treated = np.isfinite(block)
        n_tr = int(treated[0].sum())
        cols = np.nonzero(treated)[1].reshape(len(block), n_tr)  # treated units per draw
        kk = np.searchsorted(design.values, block[treated]).reshape(len(block), n_tr)
        idx = cols * k + kk  # (D, n_tr) flattened (unit, start) positions
        num[lo : lo + _CHUNK] = r[idx].sum(axis=1)
        slope[lo : lo + _CHUNK] = o[idx].sum(axis=1)
        den[lo : lo + _CHUNK] = design.q[idx[:, :, None], idx[:, None, :]].sum(axis=(1, 2))
    return num, slope, den


@dataclass(frozen=True)
class TimingRandomisation:
    """Randomisation test of a constant additive effect by re-assigning timing.

    estimate: the statistic on the observed assignment at b = 0; null: (M,) the statistic
    over assignments at b = 0 (row 0 the observed one); p_value: two-sided share at least as
    extreme; ci_lower, ci_upper: test-inversion interval (NaN on a side never rejected);
    assignments: M used; exact: all distinct assignments enumerated; total: how many distinct
    assignments the design has."""

    estimate: float
    null: np.ndarray
    p_value: float
    ci_lower: float
    ci_upper: float
    assignments: int
    exact: bool
    total: int


def timing_randomisation(
    y: np.ndarray,
    units: np.ndarray,
    periods: np.ndarray,
    start: np.ndarray,
    draws: int = 9999,
    seed: int = 0,
    level: float = 0.95,
    statistic: TimingStatistic | None = None,
) -> TimingRandomisation:
    """Randomisation inference re-assigning start dates across units (module docstring).

    y: (n,); units: (n,) integer codes 0..U−1; periods: (n,) period values; start: (U,)
    first treated period of each unit, +∞ (or NaN) if never treated. statistic: None for the
    fast TWFE coefficient, or a `TimingStatistic` (then every null b costs M evaluations)."""
    y = np.asarray(y, dtype=float)
    units = np.asarray(units, dtype=np.int64)
    periods = np.asarray(periods, dtype=float)
    start = np.where(np.isnan(np.asarray(start, dtype=float)), np.inf, start)
    if len(start) != units.max() + 1:
        raise EstimationError(
            f"{len(start)} start dates for {units.max() + 1} units",
            where="randomisation inference",
            fix="give one start date per unit code (+inf for never treated)",
        )
    if len(np.unique(start)) == 1:
        raise EstimationError(
            "treatment timing does not vary across units, so there is nothing to re-assign",
            where="rollout",
            fix="randomisation inference needs treated and comparison units",
        )
    alloc = allocations(start, draws, seed)
    d_obs = (periods >= start[units]).astype(float)

    if statistic is None:
        design = twfe_timing_design(y, units, periods, start)
        num, slope, den = twfe_statistics(design, alloc.starts)
        if np.any(den <= 1e-12 * max(float(np.max(np.abs(den))), 1e-300)):
            raise EstimationError(
                "under some re-assignment the treatment indicator is collinear with the unit "
                "and period effects",
                where="randomisation inference",
                fix="use the wild bootstrap or CR2 (unbalanced panel with sparse periods)",
            )

        def null_stats(b: float) -> np.ndarray:
            return (num - b * slope) / den
    else:

        def null_stats(b: float) -> np.ndarray:
            shifted = y - b * d_obs
            return np.array([statistic(s, shifted) for s in alloc.starts], dtype=float)

    def p_value(b: float) -> float:
        s = null_stats(b)
        scale = max(float(np.max(np.abs(s))), 1e-300)
        return float(np.mean(np.abs(s) >= np.abs(s[0]) - TIE_TOL * scale))

    null = null_stats(0.0)
    estimate = float(null[0])
    alpha = 1.0 - level
    spread = float(np.std(null)) or 1.0
    return TimingRandomisation(
        estimate,
        null,
        p_value(0.0),
        invert_test(p_value, estimate, -spread, alpha, rtol=1e-9),
        invert_test(p_value, estimate, spread, alpha, rtol=1e-9),
        len(alloc.starts),
        alloc.exact,
        alloc.total,
    )
