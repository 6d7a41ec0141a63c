"""The variance of a linear DiD estimate learned from the comparison LAs: for pilots with few
treated LAs, LAs that differ in size, and shocks shared by the LAs of a region.

Every DiD estimate of the toolkit's linear estimators is θ̂ = Σ_i w_iᵀ y_i, with unit
weights w_i (T,) that sum to zero over units in each period (period effects cancel) and, for
DiD, over periods (LA levels cancel). Under no effect θ̂ = Σ_i w_iᵀ u_i, u_i the LA's
deviations from its level and the national path. The model:

    u_i = ν_r(i) + ε_i,   Cov(ν_r) = V (T × T), shared by the LAs of region r;
                          Cov(ε_i) = A + B / n_i, n_i the LA's size (child population or
                          other denominator): A structural, B sampling noise;

regions and LAs independent. Then

    Var(θ̂) = Σ_i w_iᵀ (A + B / n_i) w_i + Σ_r (Σ_{i∈r} w_i)ᵀ V (Σ_{i∈r} w_i).

V, A and B are estimated from the comparison LAs' two-way residuals, so the estimate is
precise however few LAs are treated (a cluster-robust variance learns the treated LAs' noise
from the treated LAs alone: with 2 or 3 of them its intervals are several times too wide).
V: the mean product of residuals of two LAs in the same region less that of two LAs in
different regions (the centring on the national path shifts both alike). A and B: least
squares of each LA's residual outer product, less V, on (1, 1 / n_i): a rate from counts has
sampling variance falling with the LA's size, and the toolkit's treated LAs are often the
large ones. A and B are projected onto the positive semi-definite matrices; V is left
unbiased (projecting it would bias the regional term upwards by the estimation noise, which a
pilot with k treated LAs in one region multiplies by k²), and a row's regional term is counted
as estimated, negative or not, so that the row's variance is unbiased: as in the multiway
cluster variance of Cameron, Gelbach & Miller (2011, JBES 29:238–249), a component may be
negative and only the total must be positive (where it would not be, the term counts zero).

This is the few-treated approach of Conley & Taber (2011, REStat 93:113–125) and Ferman &
Pinto (2019, REStat 101:452–467): the treated LAs' errors come from the distribution the
comparison LAs show, here after allowing for size (Ferman & Pinto's heteroskedasticity
correction) and for shocks shared within regions. The regional term is what a pilot
concentrated in one region needs: its LAs share their region's shock, which does not average
out over them, and the comparison LAs of the other regions show how large such shocks are.

Reference: t with Satterthwaite degrees of freedom, 2 E[v̂]² / Var(v̂), where v̂ is the
estimated variance and its mean and variance are those of a parametric bootstrap: DRAWS sets
of comparison-LA residuals are simulated from the fitted model (Gaussian, regional shocks from
V projected onto the positive semi-definite matrices), the model is re-learned from each, and
each estimate's variance recomputed. A regional part learned from nine regions whose means
carry their LAs' own noise has far fewer degrees of freedom than its R − 1 regions suggest
(about 3 for a quadratic form counting 8), and the LA part's intercept, extrapolated to the
large LAs pilots pick, fewer than its n − 2 LAs: counting R − 1 and n − 2 put the size of a
pilot of 10 LAs in one region with strong regional shocks at 8% (benchmarks/did_validity.py).
This is Satterthwaite's (1946) approximation with the variance of the variance estimator
computed by simulation instead of asymptotically. The within-region residual correlation
ρ = tr V / mean tr Cov(u_i), and the same for period-to-period changes, are reported as
diagnostics with jackknife-over-regions standard errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.inference.cluster import rescale_covariance

# Fewer comparison LAs than this cannot teach the noise model.
MIN_COMPARISON = 10
# Regions with at least this many comparison LAs inform the regional covariance.
MIN_REGION_LAS = 2
# Parametric-bootstrap draws behind the degrees of freedom (relative SE of Var(v̂) ≈ 10%), and
# their fixed seed: the degrees of freedom are a property of the fitted model, and a report
# must not change between runs.
DRAWS = 200
DRAW_SEED = 20261202


@dataclass(frozen=True)
class NoiseModel:
    """What the comparison LAs teach: the covariance of shocks shared by a region's LAs
    `regional` (T, T); an LA's own covariance `structural` + `sampling` / size (T, T each);
    `draws`, the same three re-learned from DRAWS bootstrap panels simulated from the fitted
    model, (B, T, T) each, for the degrees of freedom (None: simulated on first use from the
    comparison LAs' `region` codes and `inv_size`, as only the pooled variance needs them);
    the within-region residual correlation `rho` and that of period-to-period changes
    `change_rho`, each with a jackknife-over-regions SE; and the counts behind them."""

    regional: np.ndarray
    structural: np.ndarray
    sampling: np.ndarray
    draws: tuple[np.ndarray, np.ndarray, np.ndarray] | None
    rho: float
    rho_se: float
    change_rho: float
    change_rho_se: float
    n_comparison: int
    n_regions: int
    region: np.ndarray | None = field(default=None, repr=False)
    inv_size: np.ndarray | None = field(default=None, repr=False)

    @cached_property
    def bootstrap(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`draws`, simulated (seeded) the first time they are needed when not given."""
        if self.draws is not None:
            return self.draws
        panels = _simulate(
            self.regional, self.structural, self.sampling, self.region, self.inv_size
        )
        return _fit(panels, self.region, self.inv_size)


@dataclass(frozen=True)
class PanelVariance:
    """std_error, df: (m,) per estimate; regional_share: (m,) the share of each variance that
    the shared regional shocks contribute; vcov: (m, m) the estimates' covariance."""

    std_error: np.ndarray
    df: np.ndarray
    regional_share: np.ndarray
    vcov: np.ndarray
    model: NoiseModel


def noise_model(
    y: np.ndarray,
    comparison: np.ndarray,
    region: np.ndarray,
    size: np.ndarray,
    jackknife: bool = True,
) -> NoiseModel:
    """Learn the noise model from the comparison LAs' two-way residuals.

    y: (n, T) outcomes of a balanced panel; comparison: (n,) bool, the LAs to learn from (no
    treated cell); region: (n,) integer codes (all equal when regions are unknown); size: (n,)
    each LA's size (mean denominator; all equal when unknown); jackknife: compute the
    diagnostics' standard errors (the variance does not use them)."""
    idx = np.flatnonzero(comparison)
    if idx.size < MIN_COMPARISON:
        raise EstimationError(
            f"only {idx.size} comparison LAs: too few to learn the noise the treated LAs' "
            "estimate is judged against",
            where="inference.method",
            fix="widen the comparison pool, or choose cr2 or cluster_robust",
        )
    reg = region[idx]
    inv_size = 1.0 / size[idx]
    e = _centre(y[idx][None])
    regional, structural, sampling = (part[0] for part in _fit(e, reg, inv_size))
    per_region = _usable_regions(reg)
    spread = per_region if jackknife else 0
    rho, rho_se = _correlation(e[0], reg, spread)
    change_rho, change_rho_se = _correlation(np.diff(e[0], axis=1), reg, spread)
    return NoiseModel(
        regional,
        structural,
        sampling,
        None,
        rho,
        rho_se,
        change_rho,
        change_rho_se,
        len(idx),
        per_region,
        region=reg,
        inv_size=inv_size,
    )


def panel_variance(
    weights: np.ndarray, model: NoiseModel, region: np.ndarray, size: np.ndarray
) -> PanelVariance:
    """Variance of θ̂_r = Σ_i weights[r, i]ᵀ y_i under the noise model (module docstring).

    weights: (m, n, T); region, size: (n,) as for `noise_model`."""
    own = weights @ model.structural  # (m, n, T), like weights: built in place, then freed
    sampled = weights @ model.sampling
    sampled /= size[:, None]
    own += sampled
    del sampled
    own_cov = _pairwise(own, weights)
    del own
    codes = np.unique(region)
    summed = np.stack([weights[:, region == c, :].sum(axis=1) for c in codes], axis=1)
    shared_cov = _pairwise(summed @ model.regional, summed)
    own_var = np.diag(own_cov)
    shared = _unbiased_shared(own_var, np.diag(shared_cov))
    var = own_var + shared
    df = _degrees_of_freedom(weights, summed, model, size)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(var > 0, np.maximum(shared, 0.0) / var, 0.0)
    se = np.sqrt(np.maximum(var, 0.0))
    vcov = rescale_covariance(_psd(own_cov + shared_cov), se)
    return PanelVariance(se, df, share, vcov, model)


def _degrees_of_freedom(
    weights: np.ndarray, summed: np.ndarray, model: NoiseModel, size: np.ndarray
) -> np.ndarray:
    """Satterthwaite's 2 E[v̂]² / Var(v̂) for each row's variance v̂, its mean and variance
    over the model's bootstrap draws; at most the comparison LAs less two."""
    regional, structural, sampling = model.bootstrap
    unit = weights.transpose(0, 2, 1) @ weights  # (m, T, T): Σ_i w_i w_iᵀ per row
    scaled = weights.transpose(0, 2, 1) @ (weights / size[:, None])
    grouped = summed.transpose(0, 2, 1) @ summed
    own = _pairwise(structural, unit) + _pairwise(sampling, scaled)  # (B, m)
    v = own + _unbiased_shared(own, _pairwise(regional, grouped))
    cap = max(model.n_comparison - 2, 1)
    mean, spread = v.mean(axis=0), v.var(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = np.where(spread > 0, 2.0 * mean**2 / spread, cap)
    return np.clip(df, 1.0, cap)


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)): the sum of the elementwise products of each a[r] with each b[q], as
    one matrix product (a 4-index einsum over rows, units and two periods made as many passes
    as rows squared: 2 minutes for 70 rows of 2,000 units × 40 periods)."""
    width = int(np.prod(a.shape[1:]))  # (not -1: no rows would leave it undetermined)
    return a.reshape(len(a), width) @ b.reshape(len(b), width).T


def _unbiased_shared(own: np.ndarray, shared: np.ndarray) -> np.ndarray:
    """The regional term as estimated, negative ones included, so that own + shared is
    unbiased; zero only where the total would not be positive. Counting the term only when
    positive (as until December 2026) biased the variance upwards wherever the regional
    shocks are small: by about 11% with 10 treated LAs in one region and none."""
    return np.where(own + shared > 0, shared, 0.0)


def _centre(y: np.ndarray) -> np.ndarray:
    """Two-way residuals of each (n, T) panel in a (B, n, T) stack."""
    return (
        y
        - y.mean(axis=2, keepdims=True)
        - y.mean(axis=1, keepdims=True)
        + y.mean(axis=(1, 2), keepdims=True)
    )


def _fit(
    e: np.ndarray, region: np.ndarray, inv_size: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(regional, structural, sampling), (B, T, T) each, from (B, n, T) residuals."""
    regional = _regional(e, region)
    return (regional, *_own(e, inv_size, regional))


def _simulate(
    regional: np.ndarray,
    structural: np.ndarray,
    sampling: np.ndarray,
    region: np.ndarray,
    inv_size: np.ndarray,
) -> np.ndarray:
    """DRAWS residual panels (B, n, T) from the fitted model: Gaussian regional shocks with
    covariance V made positive semi-definite, and each LA's own noise."""
    rng = np.random.default_rng(DRAW_SEED)
    n, T = len(region), regional.shape[0]
    codes = np.unique(region, return_inverse=True)[1]
    shocks = rng.standard_normal((DRAWS, codes.max() + 1, T)) @ _root(_psd(regional)).T
    own = structural[None] + sampling[None] * inv_size[:, None, None]
    noise = np.einsum("itk,bik->bit", _root(own), rng.standard_normal((DRAWS, n, T)))
    return _centre(shocks[:, codes] + noise)


def _own(
    e: np.ndarray, inv_size: np.ndarray, regional: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """An LA's own covariance as structural + sampling / size: least squares of the residual
    outer products, less the regional part, on (1, 1 / size), each part made PSD. Without
    size differences the sampling part is zero."""
    if np.ptp(inv_size) <= 1e-12 * np.max(inv_size):
        return _psd(_gram(e, np.full(len(inv_size), 1.0 / len(inv_size))) - regional), (
            np.zeros_like(regional)
        )
    weights = np.linalg.pinv(np.column_stack([np.ones_like(inv_size), inv_size]))
    return _psd(_gram(e, weights[0]) - regional), _psd(_gram(e, weights[1]))


def _gram(e: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Σ_i w_i e_i e_iᵀ for each panel of e (B, n, T): (B, T, T)."""
    return np.swapaxes(e * w[None, :, None], 1, 2) @ e


def _usable_regions(region: np.ndarray) -> int:
    """Regions with at least MIN_REGION_LAS LAs: those that inform the regional part."""
    return int((np.unique(region, return_counts=True)[1] >= MIN_REGION_LAS).sum())


def _regional(e: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Cov(ν) for each (n, T) residual panel in e (B, n, T): the mean product of residuals of
    two LAs in the same region less that of two LAs in different regions, unbiased and so not
    always positive semi-definite; zero with fewer than two informative regions."""
    B, n, T = e.shape
    if _usable_regions(region) < 2:
        return np.zeros((B, T, T))
    codes = np.unique(region, return_inverse=True)[1]
    counts = np.bincount(codes)
    onehot = (codes[None, :] == np.arange(len(counts))[:, None]).astype(float)
    sums = onehot @ e  # (B, R, T)
    squares = np.swapaxes(e, 1, 2) @ e
    within = np.swapaxes(sums, 1, 2) @ sums - squares
    total = e.sum(axis=1)
    all_pairs = total[:, :, None] * total[:, None, :] - squares
    n_within = float((counts * (counts - 1)).sum())
    n_all = float(n * (n - 1))
    diff = within / max(n_within, 1.0) - (all_pairs - within) / max(n_all - n_within, 1.0)
    return 0.5 * (diff + diff.transpose(0, 2, 1))


def _rho(e: np.ndarray, region: np.ndarray) -> float:
    """tr V over the mean residual variance: the correlation of two LAs in one region."""
    total = np.mean((e**2).sum(axis=1))
    return float(np.trace(_regional(e[None], region)[0]) / total) if total > 0 else 0.0


def _correlation(e: np.ndarray, region: np.ndarray, n_regions: int) -> tuple[float, float]:
    """The within-region correlation of residuals e and its jackknife-over-regions SE (NaN
    with fewer than three informative regions)."""
    rho = _rho(e, region)
    if n_regions < 3:
        return rho, float("nan")
    v = np.array([_rho(e[region != c], region[region != c]) for c in np.unique(region)])
    return rho, float(np.sqrt((len(v) - 1) / len(v) * ((v - v.mean()) ** 2).sum()))


def _root(m: np.ndarray) -> np.ndarray:
    """A square root R (R Rᵀ = m) of each positive semi-definite matrix in m (..., T, T)."""
    vals, vecs = np.linalg.eigh(m)
    return vecs * np.sqrt(np.clip(vals, 0.0, None))[..., None, :]


def _psd(m: np.ndarray) -> np.ndarray:
    """m (..., T, T) symmetrised and projected onto the positive semi-definite matrices."""
    vals, vecs = np.linalg.eigh(0.5 * (m + np.swapaxes(m, -1, -2)))
    return (vecs * np.clip(vals, 0.0, None)[..., None, :]) @ np.swapaxes(vecs, -1, -2)
