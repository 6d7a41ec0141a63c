"""Chen, Christensen & Kankanala's (2024, "Adaptive estimation and uniform confidence bands for
nonparametric structural functions and elasticities", Review of Economic Studies) data-driven
sieve for a dose curve, the `cck` dose estimator of Callaway, Goodman-Bacon & Sant'Anna (R
contdid's `dose_est_method = "cck"`): the number of cubic B-spline segments is chosen from the
data by a bootstrap Lepski rule, and the uniform bands allow for that choice.

Here the dose is its own instrument (no endogeneity), so each sieve is the least-squares fit of
the treated units' outcome change on a cubic B-spline of their dose with knots at equally spaced
quantiles of the doses (the IV fit with a finer instrument spline equals it). Standard errors
and multiplier draws use HC2's leverage-adjusted residuals by default (`leverage_adjusted`);
contdid's raw residuals (HC0) on request.

1. Grid: 1, 2, 4, ... segments up to 2^L, L = max(⌊log₂ n⌋, 3), cut at the last dimension J
   (segments + 3) with J·√(log J) ≤ 10√n (the regression case's ill-posedness is 1); α̂ =
   min(0.5, √(log J_max / J_max)).
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

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.estimators.did.dose_basis import dose_basis

DEGREE = 3
GRID_POINTS = 50
FEWEST_TREATED = 50
"""The fewest treated units the sieve choice accepts (contdid warns below 50)."""


@dataclass(frozen=True)
class SieveChoice:
    """The chosen sieve and its uniform band. grid: segments tried; segments: J̃'s segments;
    lepski: Ĵ's segments before J̃ caps it; alpha: α̂; theta: θ*; band, band_slope: the
    critical values for the dose curve and its slope; sup_gaps: each pair's studentized gap;
    none_agreed: no sieve agreed with every larger one (Ĵ is then the largest)."""

    grid: tuple[int, ...]
    segments: int
    lepski: int
    alpha: float
    theta: float
    band: float
    band_slope: float
    sup_gaps: dict[tuple[int, int], float]
    none_agreed: bool

    def interior_knots(self, dose: np.ndarray) -> np.ndarray:
        """The chosen sieve's interior knots: equally spaced quantiles of the doses."""
        return _interior(dose, self.segments)


@dataclass(frozen=True)
class _Sieve:
    """One sieve's fit on the grid: estimates (g,), its slope (g,), and the influence of each
    unit's error on them, (g, n) each (the rows of ψ(x)ᵀ(ΨᵀΨ)⁺Ψᵀ scaled by the residuals)."""

    curve: np.ndarray
    slope: np.ndarray
    influence: np.ndarray
    influence_slope: np.ndarray


def choose_segments(
    dose: np.ndarray,
    change: np.ndarray,
    draws: int,
    seed: int,
    level: float = 0.95,
    leverage: bool = True,
) -> SieveChoice:
    """Chen, Christensen & Kankanala's sieve for the curve of `change` (the treated units'
    outcome change, net of the comparison) against `dose`, with its uniform band at `level`
    from `draws` Gaussian multiplier draws (default_rng(seed), one (draws, n) matrix).
    leverage: each residual divided by √(1 − its leverage) (HC2) in the standard errors and
    the draws; False: the raw residuals (HC0), as contdid."""
    n = dose.size
    if n < FEWEST_TREATED:
        raise EstimationError(
            f"the cck dose curve chooses its sieve from the treated units and needs "
            f"{FEWEST_TREATED} or more; there are {n}",
            where="options dose_method",
            fix="use dose_method: parametric with degree 1 (a straight line), which suits few LAs",
        )
    grid = _grid(n)
    j_max = grid[-1] + DEGREE
    alpha = min(0.5, float(np.sqrt(np.log(j_max) / j_max)))
    points = np.linspace(dose.min(), dose.max(), GRID_POINTS)
    sieves = [_fit(dose, change, points, s, leverage) for s in grid]
    multipliers = np.random.default_rng(seed).normal(0.0, 1.0, (draws, n))
    gaps, boot = {}, np.zeros(draws)
    for i, a in enumerate(sieves):
        for j in range(i + 1, len(grid)):
            b = sieves[j]
            spread = a.influence - b.influence
            se = np.sqrt((spread**2).sum(axis=1))
            gaps[(int(grid[i]), int(grid[j]))] = float(np.max(np.abs(a.curve - b.curve) / se))
            boot = np.maximum(boot, np.max(np.abs(spread @ multipliers.T) / se[:, None], axis=0))
    theta = float(np.quantile(boot, 1 - alpha, method="lower"))
    passing = [
        s
        for i, s in enumerate(grid[:-1])
        if all(gaps[(int(s), int(t))] <= 1.1 * theta for t in grid[i + 1 :])
    ]
    lepski = int(passing[0]) if passing else int(grid[-1])
    segments = min(lepski, int(grid[-2]))
    j_tilde = segments + DEGREE
    upto = max(segments, int(grid[-3])) if len(grid) > 2 else int(grid[-1])
    z = np.zeros(draws)
    z_slope = np.zeros(draws)
    for s, sieve in zip(grid, sieves, strict=True):
        if s > upto:
            break
        z = np.maximum(z, _sup_t(sieve.influence, multipliers))
        z_slope = np.maximum(z_slope, _sup_t(sieve.influence_slope, multipliers))
    widen = max(0.0, float(np.log(np.log(j_tilde)))) * theta
    return SieveChoice(
        grid=tuple(int(s) for s in grid),
        segments=segments,
        lepski=lepski,
        alpha=alpha,
        theta=theta,
        band=float(np.quantile(z, level, method="lower")) + widen,
        band_slope=float(np.quantile(z_slope, level, method="lower")) + widen,
        sup_gaps=gaps,
        none_agreed=not passing,
    )


def _grid(n: int) -> np.ndarray:
    """Segments 1, 2, 4, ..., cut after the last J = segments + 3 with J√(log J) ≤ 10√n."""
    top = max(int(np.floor(np.log2(n))), 3)
    segments = 2 ** np.arange(top + 1)
    dim = segments + DEGREE
    size = dim * np.sqrt(np.log(dim))
    bound = 10 * np.sqrt(n)
    cross = np.flatnonzero((size[:-1] <= bound) & (bound < size[1:]))
    return segments[: cross[0] + 1 if cross.size else top]


def _interior(dose: np.ndarray, segments: int) -> np.ndarray:
    return np.quantile(dose, np.linspace(0, 1, segments + 1))[1:-1]


def _fit(
    dose: np.ndarray, change: np.ndarray, points: np.ndarray, segments: int, leverage: bool
) -> _Sieve:
    """Least squares on the cubic B-spline with `segments` quantile segments (pseudo-inverse:
    thin segments leave the fit defined), evaluated at `points`."""
    lo, hi = float(dose.min()), float(dose.max())
    knots = _interior(dose, segments)
    x, _ = dose_basis(dose, lo, hi, knots, DEGREE)
    at, slope_at = dose_basis(points, lo, hi, knots, DEGREE)
    hat = np.linalg.pinv(x)
    beta = hat @ change
    resid = change - x @ beta
    if leverage:
        resid = leverage_adjusted(x, hat, resid)
    return _Sieve(at @ beta, slope_at @ beta, (at @ hat) * resid, (slope_at @ hat) * resid)


def leverage_adjusted(x: np.ndarray, hat: np.ndarray, resid: np.ndarray) -> np.ndarray:
    """HC2's residuals e_i / √(1 − h_ii), h_ii the leverage of unit i in the fit β = hat @ y on
    x: with many segments a unit alone near a knot has leverage near 1 and a residual near 0,
    which HC0 reads as no noise (on a right-skewed dose with 180 treated units the HC0 band
    covered the curve in 65% of replications, HC2's in 95%: benchmarks/cck_band_coverage.py)."""
    h = np.einsum("ij,ji->i", x, hat)
    return resid / np.sqrt(np.clip(1.0 - h, 1e-12, None))


def _sup_t(influence: np.ndarray, multipliers: np.ndarray) -> np.ndarray:
    """Each draw's largest |deviation| / SE over the grid (SE from the influence)."""
    se = np.sqrt((influence**2).sum(axis=1))
    return np.max(np.abs(influence @ multipliers.T) / se[:, None], axis=0)
