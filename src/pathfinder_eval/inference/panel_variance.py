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
pilot with k treated LAs in one region multiplies by k²), and a row's regional term is taken
as zero where the estimate is negative.

This is the few-treated approach of Conley & Taber (2011, REStat 93:113–125) and Ferman &
Pinto (2019, REStat 101:452–467): the treated LAs' errors come from the distribution the
comparison LAs show, here after allowing for size (Ferman & Pinto's heteroskedasticity
correction) and for shocks shared within regions. The regional term is what a pilot
concentrated in one region needs: its LAs share their region's shock, which does not average
out over them, and the comparison LAs of the other regions show how large such shocks are.

Reference: t with Satterthwaite degrees of freedom, the regional part counting R − 1 (R
regions with at least two comparison LAs), the LA part the comparison LAs less two. The
within-region residual correlation ρ = tr V / mean tr Cov(u_i), and the same for
period-to-period changes, are reported as diagnostics with jackknife-over-regions standard
errors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.inference.cluster import rescale_covariance

# Fewer comparison LAs than this cannot teach the noise model.
MIN_COMPARISON = 10
# Regions with at least this many comparison LAs inform the regional covariance.
MIN_REGION_LAS = 2


@dataclass(frozen=True)
class NoiseModel:
    """What the comparison LAs teach: the covariance of shocks shared by a region's LAs
    `regional` (T, T); an LA's own covariance `structural` + `sampling` / size (T, T each);
    the within-region residual correlation `rho` and that of period-to-period changes
    `change_rho`, each with a jackknife-over-regions SE; and the counts behind them."""

    regional: np.ndarray
    structural: np.ndarray
    sampling: np.ndarray
    rho: float
    rho_se: float
    change_rho: float
    change_rho_se: float
    n_comparison: int
    n_regions: int


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
    yc = y[idx]
    e = yc - yc.mean(axis=1, keepdims=True) - yc.mean(axis=0) + yc.mean()
    reg = region[idx]
    regional, per_region = _regional(e, reg)
    structural, sampling = _own(e, 1.0 / size[idx], regional)
    spread = per_region if jackknife else 0
    rho, rho_se = _correlation(e, reg, spread)
    change_rho, change_rho_se = _correlation(np.diff(e, axis=1), reg, spread)
    return NoiseModel(
        regional,
        structural,
        sampling,
        rho,
        rho_se,
        change_rho,
        change_rho_se,
        len(idx),
        per_region,
    )


def panel_variance(
    weights: np.ndarray, model: NoiseModel, region: np.ndarray, size: np.ndarray
) -> PanelVariance:
    """Variance of θ̂_r = Σ_i weights[r, i]ᵀ y_i under the noise model (module docstring).

    weights: (m, n, T); region, size: (n,) as for `noise_model`."""
    own_cov = np.einsum("rit,tu,qiu->rq", weights, model.structural, weights) + np.einsum(
        "rit,tu,qiu,i->rq", weights, model.sampling, weights, 1.0 / size
    )
    codes = np.unique(region)
    summed = np.stack([weights[:, region == c, :].sum(axis=1) for c in codes], axis=1)
    shared_cov = np.einsum("rct,tu,qcu->rq", summed, model.regional, summed)
    own = np.diag(own_cov)
    shared = np.maximum(np.diag(shared_cov), 0.0)  # V is unbiased, so a share may be < 0
    var = own + shared
    df_own = max(model.n_comparison - 2, 1)
    df_reg = max(model.n_regions - 1, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = np.where(var > 0, var**2 / (own**2 / df_own + shared**2 / df_reg), np.nan)
        share = np.where(var > 0, shared / var, 0.0)
    se = np.sqrt(np.maximum(var, 0.0))
    vcov = rescale_covariance(_psd(own_cov + shared_cov), se)
    return PanelVariance(se, df, share, vcov, model)


def _own(e: np.ndarray, inv_size: np.ndarray, regional: np.ndarray) -> tuple[np.ndarray, ...]:
    """An LA's own covariance as structural + sampling / size: least squares of the residual
    outer products, less the regional part, on (1, 1 / size), each part made PSD. Without
    size differences the sampling part is zero."""
    T = e.shape[1]
    outer = np.einsum("it,iu->itu", e, e).reshape(len(e), T * T)
    if np.ptp(inv_size) <= 1e-12 * np.max(inv_size):
        return _psd(outer.mean(axis=0).reshape(T, T) - regional), np.zeros((T, T))
    design = np.column_stack([np.ones_like(inv_size), inv_size])
    coef = np.linalg.lstsq(design, outer, rcond=None)[0]
    return _psd(coef[0].reshape(T, T) - regional), _psd(coef[1].reshape(T, T))


def _regional(e: np.ndarray, region: np.ndarray) -> tuple[np.ndarray, int]:
    """Cov(ν) as the mean product of residuals of two LAs in the same region less that of
    two LAs in different regions, unbiased and so not always positive semi-definite; and how
    many regions informed it."""
    codes, counts = np.unique(region, return_counts=True)
    usable = codes[counts >= MIN_REGION_LAS]
    T = e.shape[1]
    if usable.size < 2:
        return np.zeros((T, T)), int(usable.size)
    sums = np.stack([e[region == c].sum(axis=0) for c in codes])
    sq = np.stack([e[region == c].T @ e[region == c] for c in codes])
    total = e.sum(axis=0)
    within = sum(np.outer(sums[k], sums[k]) - sq[k] for k in range(len(codes)))
    n_within = float(sum(c * (c - 1) for c in counts))
    all_pairs = np.outer(total, total) - e.T @ e
    n_all = float(len(e) * (len(e) - 1))
    between = (all_pairs - within) / max(n_all - n_within, 1.0)
    same = within / max(n_within, 1.0)
    return 0.5 * ((same - between) + (same - between).T), int(usable.size)


def _rho(e: np.ndarray, region: np.ndarray) -> float:
    """tr V over the mean residual variance: the correlation of two LAs in one region."""
    total = np.mean((e**2).sum(axis=1))
    return float(np.trace(_regional(e, region)[0]) / total) if total > 0 else 0.0


def _correlation(e: np.ndarray, region: np.ndarray, n_regions: int) -> tuple[float, float]:
    """The within-region correlation of residuals e and its jackknife-over-regions SE (NaN
    with fewer than three informative regions)."""
    rho = _rho(e, region)
    if n_regions < 3:
        return rho, float("nan")
    v = np.array([_rho(e[region != c], region[region != c]) for c in np.unique(region)])
    return rho, float(np.sqrt((len(v) - 1) / len(v) * ((v - v.mean()) ** 2).sum()))


def _psd(m: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh(0.5 * (m + m.T))
    return (vecs * np.clip(vals, 0.0, None)) @ vecs.T
