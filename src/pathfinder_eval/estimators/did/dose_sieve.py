"""Chen, Christensen & Kankanala's (2024, "Adaptive estimation and uniform confidence bands for
nonparametric structural functions and elasticities", Review of Economic Studies) data-driven
sieve for a dose curve, the `cck` dose estimator of Callaway, Goodman-Bacon & Sant'Anna (R
contdid's `dose_est_method = "cck"`): the number of cubic B-spline segments is chosen from the
data by a bootstrap Lepski rule, and the uniform bands allow for that choice.

Here the dose is its own instrument (no endogeneity), so each sieve is the least-squares fit of
the treated units' outcome change on a cubic B-spline of their dose with knots at equally spaced
quantiles of the doses (the IV fit with a finer instrument spline equals it). Standard errors
and multiplier draws use leverage-adjusted residuals (`leverage_adjusted`): by default HC3's
below 400 treated units and HC2's from 400 (`residuals_for`); contdid's raw residuals (HC0)
on request.

1. Grid: 1, 2, 4, ... segments up to 2^L, L = max(⌊log₂ n⌋, 3), cut at the last dimension J
   (segments + 3) with J·√(log J)·max((0.1 log n)⁴, 1) ≤ 10√n (the regression case's rule,
   as moderndid's npiv_jhat_max), then where tied doses would repeat a quantile knot or
   outnumber the distinct doses; α̂ = min(0.5, √(log J_max / J_max)).
2. For each pair J < J′ on the grid, the largest studentized gap |ĥ_J(x) − ĥ_J′(x)| / σ̂_JJ′(x)
   over 50 doses spread over the treated range, σ̂_JJ′ from the two fits' joint
   heteroskedasticity-robust influence; θ* is the 1 − α̂ quantile (lower) of the same maximum
   over Gaussian multiplier draws of the two fits' errors.
3. Ĵ is the smallest J whose gaps to every larger J are at most 1.1 θ* (the largest when none
   is); the choice is J̃ = min(Ĵ, the grid's second largest).
4. Uniform band: estimate ± (z* + max(0, log log J̃)·θ*)·σ̂(x), z* the 1 − α quantile (lower)
   of the multiplier draws' largest studentized deviation over the doses and the sieves up to
   max(J̃, the grid's third largest), for the curve and for its slope alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import BSpline

from pathfinder_eval.errors import EstimationError

DEGREE = 3
GRID_POINTS = 50
FEWEST_TREATED = 50
"""The fewest treated units the sieve choice accepts (contdid warns below 50)."""


@dataclass(frozen=True)
class SieveChoice:
    """The chosen sieve and its uniform band. grid: segments tried; segments: J̃'s segments;
    lepski: Ĵ's segments before J̃ caps it; alpha: α̂; theta: θ*; band, band_slope: the
    critical values for the dose curve and its slope; sup_gaps: each pair's studentized gap;
    none_agreed: no sieve agreed with every larger one (Ĵ is then the largest); tied: tied
    doses cut the grid short."""

    grid: tuple[int, ...]
    segments: int
    lepski: int
    alpha: float
    theta: float
    band: float
    band_slope: float
    sup_gaps: dict[tuple[int, int], float]
    none_agreed: bool
    tied: bool

    def interior_knots(self, dose: np.ndarray) -> np.ndarray:
        """The chosen sieve's interior knots: equally spaced quantiles of the doses."""
        return _interior(dose, self.segments)


@dataclass(frozen=True)
class _Sieve:
    """One sieve's fit on the grid: estimates (g,), its slope (g,), the influence of each
    unit's error on them, (g, n) each (the rows of ψ(x)ᵀ(ΨᵀΨ)⁺Ψᵀ scaled by the residuals), and
    the raw residuals' root mean square."""

    curve: np.ndarray
    slope: np.ndarray
    influence: np.ndarray
    influence_slope: np.ndarray
    noise: float


CHUNK = 100
"""Multiplier draws made and used at a time (the same stream as one (draws, n) matrix)."""


def choose_segments(
    dose: np.ndarray,
    change: np.ndarray,
    draws: int,
    seed: int,
    level: float = 0.95,
    variance: str = "hc2",
) -> SieveChoice:
    """Chen, Christensen & Kankanala's sieve for the curve of `change` (the treated units'
    outcome change, net of the comparison) against `dose`, with its uniform band at `level`
    from `draws` Gaussian multiplier draws (default_rng(seed), drawn as one (draws, n) matrix
    would be). variance: the residuals in the standard errors and the draws, "hc2" each
    divided by √(1 − its leverage), "hc3" by 1 − its leverage, "hc0" raw (contdid's)."""
    n = dose.size
    fix = "use dose_method: parametric with degree 1 (a straight line), which suits few LAs"
    if n < FEWEST_TREATED:
        raise EstimationError(
            f"the cck dose curve chooses its sieve from the treated units observed in both "
            f"periods and needs {FEWEST_TREATED} or more; there are {n}",
            where="options dose_method",
            fix=fix,
        )
    grid, tied = _grid(dose)
    if len(grid) < 2:
        raise EstimationError(
            f"the cck dose curve compares sieves of 1, 2, 4, ... segments with knots at distinct "
            f"quantiles of the treated doses, and their {np.unique(dose).size} distinct values "
            f"(many tied) allow only {', '.join(map(str, grid)) or 'none'}",
            where="options dose_method",
            fix=fix,
        )
    j_max = grid[-1] + DEGREE
    alpha = min(0.5, float(np.sqrt(np.log(j_max) / j_max)))
    points = np.linspace(dose.min(), dose.max(), GRID_POINTS)
    sieves = [_fit(dose, change, points, s, variance) for s in grid]
    scale = max(float(np.std(change)), float(np.abs(change).max()))
    if sieves[0].noise <= 1e-9 * scale:
        raise EstimationError(
            "the treated units' change is an exact cubic in the dose (no noise about it), so "
            "no sieve can be told from another",
            where="options dose_method",
            fix="check the outcome; use dose_method: parametric with degree 3",
        )
    pairs = [(i, j) for i in range(len(grid)) for j in range(i + 1, len(grid))]
    gaps, pair_se = {}, {}
    for i, j in pairs:
        se = np.sqrt(((sieves[i].influence - sieves[j].influence) ** 2).sum(axis=1))
        gaps[(int(grid[i]), int(grid[j]))] = float(
            np.max(np.abs(sieves[i].curve - sieves[j].curve) / se)
        )
        pair_se[(i, j)] = se
    curve_se = [np.sqrt((s.influence**2).sum(axis=1))[:, None] for s in sieves]
    slope_se = [np.sqrt((s.influence_slope**2).sum(axis=1))[:, None] for s in sieves]
    boot = np.zeros(draws)
    sup_curve, sup_slope = np.zeros((len(grid), draws)), np.zeros((len(grid), draws))
    rng = np.random.default_rng(seed)
    for first in range(0, draws, CHUNK):
        block = slice(first, min(first + CHUNK, draws))
        m = rng.normal(0.0, 1.0, (block.stop - block.start, n))
        curve = [s.influence @ m.T for s in sieves]
        for (i, j), se in pair_se.items():
            gap = np.max(np.abs(curve[i] - curve[j]) / se[:, None], axis=0)
            boot[block] = np.maximum(boot[block], gap)
        for k, s in enumerate(sieves):
            sup_curve[k, block] = np.max(np.abs(curve[k]) / curve_se[k], axis=0)
            sup_slope[k, block] = np.max(np.abs(s.influence_slope @ m.T) / slope_se[k], axis=0)
    theta = float(np.quantile(boot, 1 - alpha, method="lower"))
    passing = [
        s
        for i, s in enumerate(grid[:-1])
        if all(gaps[(int(s), int(t))] <= 1.1 * theta for t in grid[i + 1 :])
    ]
    lepski = int(passing[0]) if passing else int(grid[-1])
    segments = min(lepski, int(grid[-2]))
    upto = grid <= (max(segments, int(grid[-3])) if len(grid) > 2 else int(grid[-1]))
    widen = max(0.0, float(np.log(np.log(segments + DEGREE)))) * theta
    return SieveChoice(
        grid=tuple(int(s) for s in grid),
        segments=segments,
        lepski=lepski,
        alpha=alpha,
        theta=theta,
        band=float(np.quantile(sup_curve[upto].max(axis=0), level, method="lower")) + widen,
        band_slope=float(np.quantile(sup_slope[upto].max(axis=0), level, method="lower")) + widen,
        sup_gaps=gaps,
        none_agreed=not passing,
        tied=tied,
    )


def _grid(dose: np.ndarray) -> tuple[np.ndarray, bool]:
    """Segments 1, 2, 4, ..., cut after the last J = segments + 3 with
    J√(log J)·max((0.1 log n)⁴, 1) ≤ 10√n (the regression case's rule), then after the last
    whose quantile knots are distinct and inside the dose range, with a distinct dose for each
    of its J functions (tied doses; True when they cut the grid)."""
    n = dose.size
    top = max(int(np.floor(np.log2(n))), 3)
    segments = 2 ** np.arange(top + 1)
    dim = segments + DEGREE
    size = dim * np.sqrt(np.log(dim)) * max((0.1 * np.log(n)) ** 4, 1.0)
    bound = 10 * np.sqrt(n)
    cross = np.flatnonzero((size[:-1] <= bound) & (bound < size[1:]))
    grid = segments[: cross[0] + 1 if cross.size else top]
    lo, hi, values = float(dose.min()), float(dose.max()), np.unique(dose).size
    distinct = [
        values >= s + DEGREE and bool(np.all(np.diff(np.r_[lo, _interior(dose, s), hi]) > 0))
        for s in grid
    ]
    if False in distinct:
        return grid[: distinct.index(False)], True
    return grid, False


def _interior(dose: np.ndarray, segments: int) -> np.ndarray:
    return np.quantile(dose, np.linspace(0, 1, segments + 1))[1:-1]


def _fit(
    dose: np.ndarray, change: np.ndarray, points: np.ndarray, segments: int, variance: str
) -> _Sieve:
    """Least squares on the cubic B-spline with `segments` quantile segments, evaluated at
    `points`: the sparse design's Gram matrix, equilibrated and pseudo-inverted (thin segments
    leave the fit defined), and each unit's leverage from its four basis values."""
    lo, hi = float(dose.min()), float(dose.max())
    knots = np.r_[[lo] * (DEGREE + 1), _interior(dose, segments), [hi] * (DEGREE + 1)]
    x = BSpline.design_matrix(dose, knots, DEGREE).tocsr()
    spline = BSpline(knots, np.eye(x.shape[1]), DEGREE)
    at, slope_at = spline(points), spline.derivative()(points)
    gram = (x.T @ x).toarray()
    scale = np.zeros(len(gram))
    np.divide(1.0, np.sqrt(np.diag(gram)), out=scale, where=np.diag(gram) > 0)
    # equilibrated before the pseudo-inverse: a far-out dose otherwise costs the Gram matrix
    # (the design's condition number squared) a direction
    gram_inv = scale[:, None] * np.linalg.pinv(gram * np.outer(scale, scale), hermitian=True)
    gram_inv *= scale[None, :]
    beta = gram_inv @ (x.T @ change)
    resid = change - x @ beta
    noise = float(np.sqrt(np.mean(resid**2)))
    if variance != "hc0":
        cols = x.indices.reshape(dose.size, DEGREE + 1)
        vals = x.data.reshape(dose.size, DEGREE + 1)
        h = np.einsum("ia,ib,iab->i", vals, vals, gram_inv[cols[:, :, None], cols[:, None, :]])
        resid = _by_leverage(resid, h, variance)
    on_curve = np.asarray(x @ (at @ gram_inv).T).T  # (g, n): ψ(x)ᵀ(ΨᵀΨ)⁺ψ_i
    on_slope = np.asarray(x @ (slope_at @ gram_inv).T).T
    return _Sieve(at @ beta, slope_at @ beta, on_curve * resid, on_slope * resid, noise)


POWER = {"hc0": 0.0, "hc2": 0.5, "hc3": 1.0}
"""Each residual is divided by (1 − its leverage) to this power."""

HC3_BELOW = 400
"""sieve_variance auto: HC3's residuals below this many treated units, HC2's from it (the
coverage measured in benchmarks/cck_band_coverage.py: settings.ContinuousDidOptions)."""


def residuals_for(variance: str, treated: int) -> str:
    """The residuals `variance` names, "auto" resolved by the number of treated units."""
    if variance != "auto":
        return variance
    return "hc3" if treated < HC3_BELOW else "hc2"


def leverage_adjusted(
    x: np.ndarray, hat: np.ndarray, resid: np.ndarray, variance: str
) -> np.ndarray:
    """HC2's residuals e_i / √(1 − h_ii) (HC3's: e_i / (1 − h_ii); HC0's: e_i), h_ii the leverage
    of unit i in the fit β = hat @ y on x: with many segments a unit alone near a knot has
    leverage near 1 and a residual near 0, which HC0 reads as no noise (on a right-skewed dose
    with 180 treated units the HC0 band covered the curve in 65–65.5% of replications, HC2's in
    90–91.5%: benchmarks/cck_band_coverage.py)."""
    return _by_leverage(resid, np.einsum("ij,ji->i", x, hat), variance)


def _by_leverage(resid: np.ndarray, h: np.ndarray, variance: str) -> np.ndarray:
    """Each residual divided by (1 − its leverage h) to `variance`'s power (POWER)."""
    return resid / np.clip(1.0 - h, 1e-12, None) ** POWER[variance]
