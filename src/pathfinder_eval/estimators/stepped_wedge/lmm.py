"""Linear mixed models for stepped-wedge trials, fitted by exact REML on cluster-period summaries.

Individuals k in cluster i and period j: Y_ijk = x_ijᵀβ + C_ij + ε_ijk with ε ~ N(0, σ²) and
the cluster-period effects C_i = (C_i1, …, C_iT) ~ N(0, Σ). The covariance structures are

- Hussey & Hughes (2007, Contemp. Clin. Trials 28:182–191): Σ = τ²J (a cluster intercept);
- nested exchangeable (Hooper et al. 2016, Stat. Med. 35:4718–4728; Girling & Hemming 2016):
  Σ = τ²J + γ²I (cluster and cluster-period intercepts);
- exponential decay (Kasza et al. 2019, SMMR 28:703–716): Σ_jl = τ²·r^|j−l|;
- a cluster intercept plus decaying cluster-period effects: Σ_jl = τ² + γ²·r^|j−l| (block
  exchangeable with decay; glmmTMB's (1 | cluster) + ar1(period + 0 | cluster));
- random slope: nested exchangeable plus each cluster's own intervention effect, correlated
  with its intercept: Σ_i = Z_i G Z_iᵀ + γ²I with Z_i = [1, x_i], x_i the cluster's
  intervention indicator and G = [[τ², κ], [κ, ω²]] (lme4's (1 + trt | cluster) +
  (1 | cluster:period); Hughes et al. 2015). Σ_i then differs between clusters; the optimiser
  works on the Cholesky factor of G/σ² so that G stays positive semi-definite.

When every fixed-effect covariate is constant within a cell (period effects, treatment), the
likelihood of the individual records depends on them only through each cell's mean ȳ_ij, size
n_ij and within-cell sum of squares W_ij: the cell means of cluster i are N(X_iβ, Σ + σ²N_i⁻¹)
and the within-cell deviations contribute (n_ij − 1)·log σ² + W_ij/σ². This is exact (not an
approximation), so a trial with a million records fits as fast as its cells. All KR and
Satterthwaite quantities reduce to the same cell space (the σ² derivative of the cell
covariance is N⁻¹, plus within-cell terms), as the functions below spell out.

Cells that are not observed (incomplete designs, transition periods) carry a zero mask: their
rows of every cluster matrix are replaced by the identity, which leaves determinants, solves
and traces over the observed cells unchanged.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np
from scipy import optimize, stats

from pathfinder_eval.estimators.stepped_wedge.optimise import (
    gradient_hessian,
    newton_polish,
    projected_gradient,
)
from pathfinder_eval.estimators.stepped_wedge.random_slope import (
    CholeskyCoordinates,
    cholesky_coordinates,
    cholesky_of,
    slope_sigma,
)
from pathfinder_eval.jit import cached_njit
from pathfinder_eval.settings import SPLINE_KNOTS, PeriodEffects, Shape, Structure

STRUCTURES: tuple[Structure, ...] = (
    "hussey_hughes",
    "nested_exchangeable",
    "exponential_decay",
    "cluster_plus_decay",
    "random_slope",
)
LOG_2PI = float(np.log(2.0 * np.pi))
# Largest acceptable Newton decrement gᵀH⁻¹g of the REML deviance at the optimum: the most the
# deviance could still fall, far below anything that moves an estimate at reported precision.
DECREMENT_TOL = 1e-8
# Each start's L-BFGS-B run only has to find its basin (the best is then polished by Newton
# steps to DECREMENT_TOL): relative deviance change 1e-10; starts whose deviance is within
# AGREE_TOL of the best reached the same optimum.
START_FTOL = 1e-10
AGREE_TOL = 1e-5
# The Newton polish (optimise.py): stop below this decrement; the Hessian's difference step
# rel·max(|φ|, floor); a deviance within ROUNDING_REL (relative) has not risen.
POLISH_TOL = 1e-20
HESSIAN_STEP = (1e-6, 1e-4)
ROUNDING_REL = 1e-14


@dataclass(frozen=True)
class CellSummaries:
    """Cluster-period summaries of one outcome. All arrays have shape (I clusters, T periods);
    unobserved cells have mean 0, n 0, ssw 0 and observed False."""

    mean: np.ndarray
    n: np.ndarray
    ssw: np.ndarray
    observed: np.ndarray

    @property
    def n_records(self) -> int:
        return int(self.n.sum())


def summarise_records(
    cluster: np.ndarray, period: np.ndarray, y: np.ndarray, shape: tuple[int, int]
) -> CellSummaries:
    """Cell means, sizes and within-cell sums of squares from individual records.

    cluster, period: (N,) integer codes in [0, I) and [0, T); y: (N,) outcomes. Two passes
    (mean, then squared deviations) keep the sums of squares accurate for large cells."""
    flat = cluster * shape[1] + period
    size = shape[0] * shape[1]
    n = np.bincount(flat, minlength=size).astype(float)
    total = np.bincount(flat, weights=y, minlength=size)
    mean = np.divide(total, n, out=np.zeros(size), where=n > 0)
    dev = y - mean[flat]
    ssw = np.bincount(flat, weights=dev * dev, minlength=size)
    return CellSummaries(
        mean.reshape(shape), n.reshape(shape), ssw.reshape(shape), n.reshape(shape) > 0
    )


# Knots of the natural cubic spline exposure curve, boundary knots included (steppedwedge's
# default n_knots_exp).


@dataclass(frozen=True)
class FixedEffects:
    """Cell-level fixed effects. X: (I, T, p): the secular-trend columns (one indicator per
    period with data, at period indices `periods`, for categorical period effects; intercept
    and slope for linear; a natural cubic spline basis for spline), then the treatment
    columns; names: (p,);
    effect: indices of the treatment columns in X; exposure: (E,) the exposure times the effect
    curve is reported at (1 = first intervention period; (0,) for the one immediate effect);
    curve: (E, len(effect)) the effect at each of those exposure times as a linear map of the
    treatment coefficients (the identity for exposure-time indicators, the spline basis for a
    spline); knots: the spline's knots on the exposure-time axis, period_knots those on the
    period-index axis (empty when not a spline)."""

    X: np.ndarray
    names: tuple[str, ...]
    effect: tuple[int, ...]
    exposure: tuple[int, ...]
    periods: tuple[int, ...]
    curve: np.ndarray
    knots: tuple[float, ...] = ()
    period_effects: PeriodEffects = "categorical"
    period_knots: tuple[float, ...] = ()


def spline_basis(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """(len(x), K) basis of the natural cubic splines with these K knots (cubic between knots,
    linear beyond the boundary knots, intercept included): column k is the natural cubic
    interpolant of the k-th unit vector at the knots (scipy's CubicSpline, bc_type natural).
    It spans the same functions as R's splines::ns(x, knots = interior, Boundary.knots =
    boundary, intercept = TRUE), so fitted curves agree whatever the basis."""
    from scipy.interpolate import CubicSpline  # local: only the spline shape needs it

    eye = np.eye(len(knots))
    return np.column_stack([CubicSpline(knots, e, bc_type="natural")(x) for e in eye])


def fixed_effects(
    observed: np.ndarray,
    start: np.ndarray,
    shape: Shape,
    like: FixedEffects | None = None,
    period_effects: PeriodEffects = "categorical",
    exposure_knots: int = SPLINE_KNOTS,
    period_knots: int = SPLINE_KNOTS,
) -> FixedEffects:
    """Period indicators plus an immediate effect (IT), exposure-time indicators (ETI) or a
    natural cubic spline in exposure time (NCS; Kenny et al. 2022, Stat. Med. 41:4311–4339:
    `exposure_knots` equally spaced knots from exposure time 0 to the longest exposure S, the
    basis times the intervention indicator). Columns with no observed cell are dropped, or,
    with `like`, the columns (and knots) of that design are used (re-randomised allocations).
    The secular trend is categorical (Hussey & Hughes), linear in the period index, or a
    natural cubic spline with `period_knots` knots equally spaced over the observed periods.

    observed: (I, T) bool; start: (I,) index of each cluster's first intervention period
    (T or more: never treated)."""
    n_clusters, n_periods = observed.shape
    t_idx = np.arange(n_periods)[None, :]
    exposure = np.where(t_idx >= start[:, None], t_idx - start[:, None] + 1, 0)
    exposure = np.where(observed, exposure, 0)
    if like is None:
        keep = [t for t in range(n_periods) if observed[:, t].any()]
        times = [0] if shape == "immediate" else sorted({int(e) for e in exposure[exposure > 0]})
        knots = _knots(0.0, max(times), exposure_knots) if shape == "spline" else ()
        p_knots = _knots(keep[0], keep[-1], period_knots) if period_effects == "spline" else ()
    else:
        keep, times, knots = list(like.periods), list(like.exposure), like.knots
        period_effects, p_knots = like.period_effects, like.period_knots
    full = (n_clusters, n_periods)
    if period_effects == "categorical":
        cols = [np.broadcast_to(t_idx == t, full) for t in keep]
        names = [f"period[{t}]" for t in keep]
    elif period_effects == "linear":
        cols = [np.ones(full), np.broadcast_to(t_idx, full).astype(float)]
        names = ["intercept", "period (linear)"]
    else:
        basis = spline_basis(np.arange(n_periods, dtype=float), np.asarray(p_knots))
        cols = [np.broadcast_to(basis[:, j], full) for j in range(len(p_knots))]
        names = [f"period spline[{j + 1}]" for j in range(len(p_knots))]
    n_time = len(cols)
    if shape == "immediate":
        cols.append(exposure > 0)
        names.append("treatment")
        curve = np.ones((1, 1))
    elif shape == "exposure_time":
        cols += [exposure == e for e in times]
        names += [f"exposure[{e}]" for e in times]
        curve = np.eye(len(times))
    else:
        k = np.asarray(knots)
        basis = spline_basis(exposure.ravel().astype(float), k).reshape(*exposure.shape, -1)
        cols += [basis[:, :, j] * (exposure > 0) for j in range(len(k))]
        names += [f"spline[{j + 1}]" for j in range(len(k))]
        curve = spline_basis(np.asarray(times, dtype=float), k)
    X = np.stack(cols, axis=2).astype(float)
    effect = tuple(range(n_time, X.shape[2]))
    return FixedEffects(
        X, tuple(names), effect, tuple(times), tuple(keep), curve, knots, period_effects, p_knots
    )


def _knots(lo: float, hi: float, count: int) -> tuple[float, ...]:
    return tuple(np.linspace(float(lo), float(hi), count).tolist())


@dataclass(frozen=True)
class _Cells:
    """Masked arrays the REML functions share. y: (I, T); X: (I, T, p); ninv: (I, T) with 0
    for unobserved cells; mask2: (I, T, T) 1 where both cells are observed; fill: (I, T, T)
    identity on unobserved cells."""

    y: np.ndarray
    X: np.ndarray
    ninv: np.ndarray
    mask2: np.ndarray
    fill: np.ndarray
    ssw: float
    n_records: int
    n_cells: int
    lag: np.ndarray
    log_n: float
    slope: np.ndarray


def _cells(cells: CellSummaries, X: np.ndarray, slope: np.ndarray | None = None) -> _Cells:
    """slope: (I, T) the intervention indicator the random_slope structure loads on."""
    obs = cells.observed.astype(float)
    n_periods = obs.shape[1]
    eye = np.eye(n_periods)
    ninv = np.divide(1.0, cells.n, out=np.zeros_like(cells.n), where=cells.observed)
    return _Cells(
        y=cells.mean * obs,
        X=X * obs[:, :, None],
        ninv=ninv,
        mask2=obs[:, :, None] * obs[:, None, :],
        fill=eye[None] * (1.0 - obs)[:, :, None],
        ssw=float(cells.ssw.sum()),
        n_records=cells.n_records,
        n_cells=int(cells.observed.sum()),
        lag=np.abs(np.subtract.outer(np.arange(n_periods), np.arange(n_periods))).astype(float),
        log_n=float(np.log(cells.n[cells.observed]).sum()),
        slope=np.zeros_like(obs) if slope is None else np.asarray(slope, float) * obs,
    )


def _cluster_psi(structure: Structure, x: np.ndarray, c: _Cells):
    """Σ_i/σ² at the optimiser's parameters x and its derivatives in x: (1, T, T) and
    (k, 1, T, T) for the structures whose Ψ every cluster shares (no copy per cluster), or
    random_slope's per-cluster (I, T, T) and (k, I, T, T) with the chain rule through the
    Cholesky factor."""
    if structure != "random_slope":
        psi, dpsi = _psi_arrays(structure, np.asarray(x, dtype=float), c.lag)
        return psi[None], dpsi[:, None]
    a, b, d, g = x
    phi = np.array([a * a, a * b, b * b + d * d, g])
    psi, first = slope_sigma(phi, c.slope)
    ones, cross, outer, eye = first
    dpsi = np.stack([2 * a * ones + b * cross, a * cross + 2 * b * outer, 2 * d * outer, eye])
    return psi, np.ascontiguousarray(dpsi)


def _psi(structure: Structure, phi: np.ndarray, lag: np.ndarray):
    """Σ/σ² as a function of the relative parameters φ, and its derivatives (each (T, T)).

    hussey_hughes φ = (τ²/σ²); nested_exchangeable φ = (τ²/σ², γ²/σ²);
    exponential_decay φ = (τ²/σ², r); cluster_plus_decay φ = (τ²/σ², γ²/σ², r). Linear in the
    variances, so the same function of the natural parameters gives Σ and ∂Σ/∂θ."""
    psi, dpsi = _psi_arrays(structure, np.asarray(phi, dtype=float), lag)
    return psi, list(dpsi)


@cached_njit()
def _psi_arrays(structure: str, phi: np.ndarray, lag: np.ndarray):
    """`_psi` with the derivatives stacked, (k, T, T) (compiled: called once per deviance)."""
    n = lag.shape[0]
    ones, eye = np.ones((n, n)), np.eye(n)
    if structure == "hussey_hughes":
        return phi[0] * ones, ones.reshape(1, n, n)
    if structure == "nested_exchangeable":
        dpsi = np.empty((2, n, n))
        dpsi[0], dpsi[1] = ones, eye
        return phi[0] * ones + phi[1] * eye, dpsi
    r = phi[-1]
    decay = r**lag
    d_r = np.where(lag > 0, lag * r ** np.maximum(lag - 1.0, 0.0), 0.0)
    if structure == "cluster_plus_decay":
        dpsi = np.empty((3, n, n))
        dpsi[0], dpsi[1], dpsi[2] = ones, decay, phi[1] * d_r
        return phi[0] * ones + phi[1] * decay, dpsi
    dpsi = np.empty((2, n, n))
    dpsi[0], dpsi[1] = decay, phi[0] * d_r
    return phi[0] * decay, dpsi


def sigma_second(
    structure: Structure, theta: np.ndarray, lag: np.ndarray
) -> dict[tuple[int, int], np.ndarray]:
    """Non-zero second derivatives of Σ in its natural parameters θ (variances then r),
    {(k, l): (T, T)}: only the decay r enters non-linearly."""
    if structure not in ("exponential_decay", "cluster_plus_decay"):
        return {}
    scale, r = theta[-2], theta[-1]  # the decaying variance and r
    k = len(theta) - 1
    d_r = np.where(lag > 0, lag * r ** np.maximum(lag - 1.0, 0.0), 0.0)
    d_rr = np.where(lag > 1, lag * (lag - 1.0) * r ** np.maximum(lag - 2.0, 0.0), 0.0)
    return {(k - 1, k): d_r, (k, k - 1): d_r, (k, k): scale * d_rr}


def _inverse(h: np.ndarray) -> tuple[np.ndarray, float]:
    """Inverse and log-determinant of a stack of SPD matrices (I, T, T)."""
    chol = np.linalg.cholesky(h)
    logdet = 2.0 * float(np.log(np.diagonal(chol, axis1=1, axis2=2)).sum())
    inv = np.linalg.inv(h)
    return 0.5 * (inv + np.swapaxes(inv, 1, 2)), logdet


def _profiled(phi: np.ndarray, structure: Structure, c: _Cells):
    """REML deviance (−2 log restricted likelihood, all constants) with σ² profiled out, its
    gradient in φ, and the GLS pieces at φ (compiled: the optimiser calls this ~100 times a
    fit, and numpy's per-call overhead on T × T matrices dominated)."""
    psi, dpsi = _cluster_psi(structure, phi, c)
    return _profiled_core(psi, dpsi, c.y, c.X, c.ninv, c.mask2, c.fill, c.ssw, c.n_records, c.log_n)


@cached_njit()
def _chol_inverse(a: np.ndarray, out: np.ndarray) -> float:
    """Writes the inverse (exactly symmetric) of a small SPD matrix to `out` by Cholesky and
    returns its log-determinant (scalar loops: no temporaries on matrices this small)."""
    n = a.shape[0]
    low = np.zeros((n, n))
    logdet = 0.0
    for j in range(n):
        d = a[j, j]
        for k in range(j):
            d -= low[j, k] * low[j, k]
        if d <= 0.0:
            raise np.linalg.LinAlgError("Matrix is not positive definite")
        low[j, j] = np.sqrt(d)
        logdet += 2.0 * np.log(low[j, j])
        for i in range(j + 1, n):
            e = a[i, j]
            for k in range(j):
                e -= low[i, k] * low[j, k]
            low[i, j] = e / low[j, j]
    linv = np.zeros((n, n))  # L⁻¹ by forward substitution, then A⁻¹ = L⁻ᵀL⁻¹
    for j in range(n):
        linv[j, j] = 1.0 / low[j, j]
        for i in range(j + 1, n):
            e = 0.0
            for k in range(j, i):
                e -= low[i, k] * linv[k, j]
            linv[i, j] = e / low[i, i]
    for i in range(n):
        for j in range(i + 1):
            e = 0.0
            for k in range(i, n):
                e += linv[k, i] * linv[k, j]
            out[i, j] = e
            out[j, i] = e
    return logdet


@cached_njit()
def _profiled_core(psi, dpsi, y, X, ninv, mask2, fill, ssw, n_records, log_n):
    """`_profiled` on arrays: psi (I, T, T) = Ψ_i, dpsi (k, I, T, T) its derivatives (a leading
    1 instead of I: shared by every cluster), the rest the fields of `_Cells`. Returns
    (deviance, gradient (k,), β̂ (p,), σ̂²)."""
    n_clusters, n_periods, p = X.shape
    hinv = np.empty((n_clusters, n_periods, n_periods))
    hx = np.zeros((n_clusters, n_periods, p))
    h = np.empty((n_periods, n_periods))
    m = np.zeros((p, p))
    rhs = np.zeros(p)
    logdet_h = 0.0
    shared = psi.shape[0] == 1
    for i in range(n_clusters):
        own = 0 if shared else i
        for s in range(n_periods):
            for t in range(n_periods):
                h[s, t] = mask2[i, s, t] * psi[own, s, t] + fill[i, s, t]
            h[s, s] += ninv[i, s]
        logdet_h += _chol_inverse(h, hinv[i])
        for s in range(n_periods):
            for t in range(n_periods):
                for a in range(p):
                    hx[i, s, a] += hinv[i, s, t] * X[i, t, a]
        for t in range(n_periods):
            for a in range(p):
                rhs[a] += hx[i, t, a] * y[i, t]
                for b in range(p):
                    m[a, b] += X[i, t, a] * hx[i, t, b]
    minv = np.empty((p, p))
    logdet_m = _chol_inverse(m, minv)
    beta = minv @ rhs
    resid = np.empty((n_clusters, n_periods))
    h_r = np.zeros((n_clusters, n_periods))
    q = ssw
    for i in range(n_clusters):
        for t in range(n_periods):
            e = y[i, t]
            for a in range(p):
                e -= X[i, t, a] * beta[a]
            resid[i, t] = e
        for s in range(n_periods):
            for t in range(n_periods):
                h_r[i, s] += hinv[i, s, t] * resid[i, t]
            q += resid[i, s] * h_r[i, s]
    dof = n_records - p
    sigma2 = q / dof
    dev = dof * (1.0 + LOG_2PI + np.log(sigma2)) + logdet_h + logdet_m + log_n
    # ∂dev/∂φ_k = Σ_i ⟨H_i⁻¹ − H_i⁻¹X_iM⁻¹X_iᵀH_i⁻¹ − (dof/q)·rr_iᵀ, Ψ_ik⟩ over observed
    # cell pairs: a shared Ψ_k takes one (T, T) sum over clusters, then k inner products; a
    # per-cluster Ψ_ik takes the k inner products cluster by cluster.
    grad = np.zeros(dpsi.shape[0])
    total = np.zeros((n_periods, n_periods))
    hxm = np.empty((n_periods, p))
    for i in range(n_clusters):
        if not shared:
            total[:, :] = 0.0
        for s in range(n_periods):
            for b in range(p):
                e = 0.0
                for a in range(p):
                    e += hx[i, s, a] * minv[a, b]
                hxm[s, b] = e
        for s in range(n_periods):
            for t in range(n_periods):
                if mask2[i, s, t] == 0.0:
                    continue
                e = 0.0
                for b in range(p):
                    e += hxm[s, b] * hx[i, t, b]
                total[s, t] += hinv[i, s, t] - e - (dof / q) * h_r[i, s] * h_r[i, t]
        if not shared or i == n_clusters - 1:
            own = 0 if shared else i
            for k in range(dpsi.shape[0]):
                for s in range(n_periods):
                    for t in range(n_periods):
                        grad[k] += total[s, t] * dpsi[k, own, s, t]
    return dev, grad, beta, sigma2


def _bounds(structure: Structure) -> list[tuple[float, float | None]]:
    if structure == "hussey_hughes":
        return [(0.0, None)]
    if structure == "nested_exchangeable":
        return [(0.0, None), (0.0, None)]
    if structure == "cluster_plus_decay":
        return [(0.0, None), (0.0, None), (0.0, 1.0)]
    if structure == "random_slope":  # Cholesky (a, b, d) of G/σ², then γ²/σ²
        return [(0.0, None), (None, None), (0.0, None), (0.0, None)]
    return [(0.0, None), (0.0, 1.0)]


def _limits(structure: Structure) -> tuple[np.ndarray, np.ndarray]:
    """The bounds as arrays, ±inf where unbounded."""
    lo, hi = np.array(_bounds(structure), dtype=float).T
    return np.nan_to_num(lo, nan=-np.inf), np.nan_to_num(hi, nan=np.inf)


def _starts(structure: Structure) -> list[np.ndarray]:
    """Several starting points for the relative variance parameters (issue: never trust one)."""
    scales = (0.01, 0.1, 1.0)
    if structure == "hussey_hughes":
        return [np.array([s]) for s in scales]
    if structure == "nested_exchangeable":  # the corners and centre of the plausible box
        return [
            np.array(v) for v in ((0.01, 0.01), (0.01, 1.0), (1.0, 0.01), (1.0, 1.0), (0.1, 0.1))
        ]
    if structure == "cluster_plus_decay":
        return [np.array(v) for v in itertools.product((0.01, 1.0), (0.01, 1.0), (0.2, 0.8))]
    if structure == "random_slope":
        grid = itertools.product((0.1, 0.5), (0.0,), (0.1, 0.4), (0.01, 0.2))
        return [np.array(v) for v in grid]
    return [np.array(v) for v in itertools.product((0.01, 1.0), (0.2, 0.5, 0.9))]


def _searched(phi: np.ndarray, structure: Structure, c: _Cells) -> tuple[float, np.ndarray]:
    """The profiled deviance and gradient for the optimiser: where a trial point's covariance
    is numerically not positive definite (variances ~1e20 that a line search can try), +inf,
    which makes the search step back."""
    try:
        dev, grad = _profiled(phi, structure, c)[:2]
    except np.linalg.LinAlgError:
        return float("inf"), np.zeros(len(phi))
    return dev, grad


def _polish(phi: np.ndarray, structure: Structure, c: _Cells) -> tuple[np.ndarray, float]:
    """Newton steps on the parameters off their bounds (optimise.newton_polish): L-BFGS-B
    stops early where the likelihood is flat, e.g. in the decay. A step that keeps the
    deviance within 1e-14 (relative: below rounding it cannot fall) and shrinks the gradient
    still moves towards the optimum. Returns the parameters and the Newton decrement."""
    lo, hi = _limits(structure)

    def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        dev, grad = _searched(x, structure, c)
        return dev, grad

    def hessian(x: np.ndarray, free: np.ndarray) -> np.ndarray:
        return gradient_hessian(
            lambda p: _profiled(p, structure, c)[1], x, free, lo, hi, HESSIAN_STEP, False
        )

    def flat(trial, t_dev, t_grad, x, dev, grad, free) -> bool:
        shrinks = np.abs(t_grad[free]).max() < np.abs(grad[free]).max()
        return t_dev <= dev + ROUNDING_REL * abs(dev) and shrinks

    done = newton_polish(phi, objective, lo, hi, hessian, POLISH_TOL, flat)
    return done.x, done.decrement


@dataclass(frozen=True)
class RemlFit:
    """A REML fit of one covariance structure.

    beta: (p,) fixed effects; vcov: (p, p) model-based covariance (XᵀV⁻¹X)⁻¹;
    theta: (k,) variance parameters in the Kenward-Roger parameterisation, named by
    theta_names: hussey_hughes (tau2, sigma2), nested_exchangeable (tau2, gamma2, sigma2),
    exponential_decay (tau2, decay, sigma2), cluster_plus_decay (tau2, gamma2, decay, sigma2).
    deviance: REML criterion (−2 log restricted
    likelihood with all constants, as lme4's REMLcrit). gradient: (k−1,) projected gradient of
    the profiled deviance in the relative parameters at the optimum; decrement: Newton
    decrement there (inf if the Hessian is not positive definite); converged: decrement at most
    DECREMENT_TOL. starts: optimiser starts;
    agreeing: how many reached the best deviance (within AGREE_TOL). boundary: names of parameters
    estimated on the boundary of the parameter space. slope: (I, T) the intervention indicator
    of a random_slope fit, else None."""

    structure: Structure
    beta: np.ndarray
    vcov: np.ndarray
    theta: np.ndarray
    theta_names: tuple[str, ...]
    deviance: float
    gradient: np.ndarray
    decrement: float
    converged: bool
    starts: int
    agreeing: int
    boundary: tuple[str, ...]
    slope: np.ndarray | None = None

    @property
    def components(self) -> dict[str, float]:
        return dict(zip(self.theta_names, self.theta.tolist(), strict=True))


def fit_reml(
    cells: CellSummaries,
    X: np.ndarray,
    structure: Structure,
    warm: RemlFit | np.ndarray | None = None,
    slope: np.ndarray | None = None,
) -> RemlFit:
    """Exact REML for the structure, on cell summaries; X: (I, T, p) cell-level covariates.

    The deviance is profiled over σ² and minimised over the relative parameters from several
    starts (L-BFGS-B with the analytic gradient, bounds τ², γ² ≥ 0 and 0 ≤ r ≤ 1), then
    polished by Newton steps; `warm` replaces the starts by one start: a fit's optimum
    (refits of nearby data) or natural variance parameters θ (e.g. a simulation's true
    values). The fit is flagged as not converged when the Newton decrement exceeds
    DECREMENT_TOL or the Hessian is not positive definite. `slope` (I, T): the intervention
    indicator the random_slope structure needs."""
    if (structure == "random_slope") != (slope is not None):
        raise ValueError("the random_slope structure (and only it) needs the slope indicator")
    c = _cells(cells, X, slope)
    if c.n_records - X.shape[2] <= 0:
        raise ValueError("fewer records than fixed effects")
    if warm is None:
        starts = _starts(structure)
    elif isinstance(warm, RemlFit):
        starts = [_relative(warm)]
    else:
        starts = [_relative_of(structure, np.asarray(warm, dtype=float))]
    results = []
    for start in starts:
        res = optimize.minimize(
            lambda phi: _searched(phi, structure, c),
            start,
            jac=True,
            method="L-BFGS-B",
            bounds=_bounds(structure),
            options={"ftol": START_FTOL, "gtol": 1e-7, "maxiter": 2000},
        )
        results.append((float(res.fun), np.clip(res.x, *_limits(structure))))
    best_dev, phi = min(results, key=lambda t: t[0])
    agreeing = sum(abs(dev - best_dev) <= AGREE_TOL for dev, _ in results)
    phi, decrement = _polish(phi, structure, c)
    dev, grad, beta, sigma2 = _profiled(phi, structure, c)
    proj = projected_gradient(phi, grad, *_limits(structure))
    names = _relative_names(structure)
    lo, hi = _limits(structure)
    boundary = tuple(names[k] for k in range(len(phi)) if phi[k] <= lo[k] or phi[k] >= hi[k])
    theta = _natural(structure, phi, sigma2)
    vcov = sigma2 * np.linalg.inv(np.einsum("itp,itq->pq", c.X, _hinv(phi, structure, c) @ c.X))
    return RemlFit(
        structure,
        beta,
        vcov,
        theta,
        THETA_NAMES[structure],
        float(dev),
        proj,
        decrement,
        bool(decrement <= DECREMENT_TOL),
        len(results),
        agreeing,
        boundary,
        None if slope is None else c.slope,
    )


THETA_NAMES: dict[str, tuple[str, ...]] = {
    "hussey_hughes": ("tau2", "sigma2"),
    "nested_exchangeable": ("tau2", "gamma2", "sigma2"),
    "exponential_decay": ("tau2", "decay", "sigma2"),
    "cluster_plus_decay": ("tau2", "gamma2", "decay", "sigma2"),
    "random_slope": ("tau2", "tau_slope_cov", "slope2", "gamma2", "sigma2"),
}


# What a random_slope optimiser parameter on its bound means (for `RemlFit.boundary`).
SLOPE_BOUNDS = ("tau2", "tau_slope_cov", "slope_correlation_at_pm1", "gamma2")


def _relative_names(structure: Structure) -> tuple[str, ...]:
    return SLOPE_BOUNDS if structure == "random_slope" else THETA_NAMES[structure][:-1]


def _relative(fit: RemlFit) -> np.ndarray:
    return _relative_of(fit.structure, fit.theta)


def _relative_of(structure: Structure, theta: np.ndarray) -> np.ndarray:
    """The relative parameters φ of natural parameters θ (inverse of `_natural`)."""
    phi = np.asarray(theta[:-1], dtype=float).copy()
    if structure == "random_slope":
        return cholesky_of(phi / theta[-1])
    phi[0] /= theta[-1]
    if structure in ("nested_exchangeable", "cluster_plus_decay"):
        phi[1] /= theta[-1]
    return phi


def _natural(structure: Structure, phi: np.ndarray, sigma2: float) -> np.ndarray:
    if structure == "hussey_hughes":
        return np.array([phi[0] * sigma2, sigma2])
    if structure == "nested_exchangeable":
        return np.array([phi[0] * sigma2, phi[1] * sigma2, sigma2])
    if structure == "cluster_plus_decay":
        return np.array([phi[0] * sigma2, phi[1] * sigma2, phi[2], sigma2])
    if structure == "random_slope":
        a, b, d, g = phi
        return np.array([a * a, a * b, b * b + d * d, g, 1.0]) * sigma2
    return np.array([phi[0] * sigma2, phi[1], sigma2])


def _hinv(phi: np.ndarray, structure: Structure, c: _Cells) -> np.ndarray:
    psi, _ = _cluster_psi(structure, phi, c)
    h = c.mask2 * psi + c.fill
    h[:, np.arange(h.shape[1]), np.arange(h.shape[1])] += c.ninv
    return _inverse(h)[0]


@dataclass(frozen=True)
class SmallSample:
    """Quantities for Kenward-Roger and Satterthwaite inference at a REML fit (θ as in
    `RemlFit.theta`, k parameters, p fixed effects).

    p_mats: (k, p, p) P_k = −XᵀV⁻¹V_kV⁻¹X; q_mats: (k, k, p, p) Q_kl = XᵀV⁻¹V_kV⁻¹V_lV⁻¹X;
    r_mats: (k, k, p, p) R_kl = XᵀV⁻¹V_klV⁻¹X (zero for linear structures); w: (k, k) inverse
    expected REML information of θ; hessian: (k, k) observed Hessian of the REML deviance in θ;
    vcov_kr: (p, p) the adjusted covariance Φ_A = Φ + 2Φ[Σ W_kl(Q_kl − P_kΦP_l − R_kl/4)]Φ
    (Kenward & Roger 1997, Biometrics 53:983–997, eq. 4–5); free: (k,) False for parameters
    estimated on the boundary of their space."""

    p_mats: np.ndarray
    q_mats: np.ndarray
    r_mats: np.ndarray
    w: np.ndarray
    hessian: np.ndarray
    vcov_kr: np.ndarray
    free: np.ndarray
    cholesky: CholeskyCoordinates | None = None


def _derivatives(structure: Structure, theta: np.ndarray, c: _Cells):
    """Cell covariance V (I, T, T) and its first and second derivatives in θ: lists of
    (I, T, T) arrays, the second as a dict {(k, l): array} of the non-zero ones."""
    n_clusters, n_periods = c.y.shape
    diag_ninv = np.zeros((n_clusters, n_periods, n_periods))
    diag_ninv[:, np.arange(n_periods), np.arange(n_periods)] = c.ninv
    sigma2 = theta[-1]
    sigma, first = _cell_sigma(structure, theta, c)
    second = {kl: c.mask2 * d[None] for kl, d in sigma_second(structure, theta[:-1], c.lag).items()}
    v = sigma + c.fill + sigma2 * diag_ninv
    derivs = [c.mask2 * d for d in first] + [diag_ninv]
    return v, derivs, second


def _cell_sigma(structure: Structure, theta: np.ndarray, c: _Cells):
    """The cell means' shared covariance Σ_i (I, T, T; zero on unobserved cells) at natural θ,
    and its first derivatives in the Σ parameters (unmasked)."""
    if structure == "random_slope":
        sigma, first = slope_sigma(theta[:-1], c.slope)
    else:
        sigma, first = _psi(structure, theta[:-1], c.lag)
    return c.mask2 * sigma, first


def small_sample(fit: RemlFit, cells: CellSummaries, X: np.ndarray) -> SmallSample:
    """Kenward-Roger and Satterthwaite ingredients for a fit, computed in cell space.

    Traces over individuals equal cell-space traces plus, for σ² with σ², the within-cell
    part (N − C)/σ⁴; quadratic forms in V⁻¹(y − Xβ̂) add W/σ⁶ likewise."""
    c = _cells(cells, X, fit.slope)
    theta, k = fit.theta, len(fit.theta)
    v, derivs, second = _derivatives(fit.structure, theta, c)
    vinv, _ = _inverse(v)
    phi = fit.vcov
    vx = vinv @ c.X  # (I, T, p)
    s = np.einsum("ist,it->is", vinv, c.y - c.X @ fit.beta)  # V⁻¹(ȳ − Xβ̂) per cell
    sigma2 = theta[-1]
    within_trace = (c.n_records - c.n_cells) / sigma2**2
    within_quad = c.ssw / sigma2**3
    dvx = [d @ vx for d in derivs]  # V_k V⁻¹X
    ds = [np.einsum("ist,it->is", d, s) for d in derivs]  # V_k s
    p_mats = np.stack([-np.einsum("itp,itq->pq", vx, dv) for dv in dvx])
    q_mats = np.empty((k, k, *phi.shape))
    r_mats = np.zeros((k, k, *phi.shape))
    ktrace = np.empty((k, k))
    hessian = np.empty((k, k))
    xvds = [np.einsum("itp,it->p", vx, d) for d in ds]  # XᵀV⁻¹V_k s
    vd = [vinv @ d for d in derivs]
    for a, b in itertools.product(range(k), repeat=2):
        q_mats[a, b] = np.einsum("itp,itu,iuq->pq", dvx[a], vinv, dvx[b])
    for a, b in itertools.product(range(k), repeat=2):
        ktrace[a, b] = float(np.einsum("ist,its->", vd[a], vd[b]))
        quad = float(np.einsum("is,ist,it->", ds[a], vinv, ds[b]))
        if a == b == k - 1:
            ktrace[a, b] += within_trace
            quad += within_quad
        tr_vkl = 0.0
        s_kl_s = 0.0
        if (a, b) in second:
            r_mats[a, b] = np.einsum("itp,itu,iuq->pq", vx, second[(a, b)], vx)
            tr_vkl = float(np.einsum("ist,its->", vinv, second[(a, b)]))
            s_kl_s = float(np.einsum("is,ist,it->", s, second[(a, b)], s))
        hessian[a, b] = (
            tr_vkl
            - ktrace[a, b]
            - np.trace(phi @ p_mats[b] @ phi @ p_mats[a])
            + np.trace(phi @ (q_mats[a, b] + q_mats[b, a] - r_mats[a, b]))
            + 2.0 * (quad - xvds[b] @ phi @ xvds[a])
            - s_kl_s
        )
    ss = kenward_roger_adjustment(fit, phi, ktrace, p_mats, q_mats, r_mats, hessian)
    if fit.structure != "random_slope":
        return ss
    # the REML deviance's gradient in θ: tr(V⁻¹V_k) + tr(ΦP_k) − sᵀV_k s (+ within-cell terms)
    grad = np.array(
        [
            float(np.einsum("ist,its->", vinv, derivs[a]))
            + float(np.trace(phi @ p_mats[a]))
            - float(np.einsum("is,ist,it->", s, derivs[a], s))
            for a in range(k)
        ]
    )
    grad[-1] += (c.n_records - c.n_cells) / sigma2 - c.ssw / sigma2**2
    return replace(ss, cholesky=cholesky_coordinates(theta, ss.hessian, grad))


def kenward_roger_adjustment(
    fit: RemlFit,
    phi: np.ndarray,
    ktrace: np.ndarray,
    p_mats: np.ndarray,
    q_mats: np.ndarray,
    r_mats: np.ndarray,
    hessian: np.ndarray,
) -> SmallSample:
    """The Kenward-Roger pieces from the trace and matrix ingredients, whichever path computed
    them (cell summaries here, records in sw_lmm_records). phi: (p, p) model-based covariance;
    ktrace: (k, k) tr(V⁻¹V_kV⁻¹V_l); p_mats, q_mats, r_mats as `SmallSample`; hessian: (k, k)
    observed Hessian of the REML deviance."""
    k = len(fit.theta)
    info2 = np.empty((k, k))  # twice the expected information, as pbkrtest's IE2
    for a, b in itertools.product(range(k), repeat=2):
        info2[a, b] = (
            ktrace[a, b]
            - 2.0 * np.sum(phi * q_mats[a, b])
            + np.trace(phi @ p_mats[a] @ phi @ p_mats[b])
        )
    w = 2.0 * np.linalg.pinv(info2)
    u = np.zeros_like(phi)
    for a, b in itertools.product(range(k), repeat=2):
        u += w[a, b] * (q_mats[a, b] - p_mats[a] @ phi @ p_mats[b] - 0.25 * r_mats[a, b])
    vcov_kr = phi + 2.0 * phi @ u @ phi
    free = np.array([name not in fit.boundary for name in fit.theta_names])
    return SmallSample(
        p_mats,
        q_mats,
        r_mats,
        w,
        0.5 * (hessian + hessian.T),
        0.5 * (vcov_kr + vcov_kr.T),
        free,
    )


def _kenward_roger_moments(
    ss: SmallSample, vcov: np.ndarray, lmat: np.ndarray
) -> tuple[float, float]:
    """Kenward & Roger's (1997, section 4) denominator df m and E* for the contrasts `lmat`
    (q, p), by matching moments; Θ uses the unadjusted covariance, as in the paper and pbkrtest."""
    q = lmat.shape[0]
    theta_m = lmat.T @ np.linalg.solve(lmat @ vcov @ lmat.T, lmat)
    k = ss.w.shape[0]
    u = [theta_m @ vcov @ ss.p_mats[a] @ vcov for a in range(k)]
    a1 = sum(ss.w[a, b] * np.trace(u[a]) * np.trace(u[b]) for a in range(k) for b in range(k))
    a2 = sum(ss.w[a, b] * np.trace(u[a] @ u[b]) for a in range(k) for b in range(k))
    big_b = (a1 + 6.0 * a2) / (2.0 * q)
    g = ((q + 1) * a1 - (q + 4) * a2) / ((q + 2) * a2)
    denom = 3.0 * q + 2.0 * (1.0 - g)
    c1, c2, c3 = g / denom, (q - g) / denom, (q + 2 - g) / denom
    rho = (1.0 / q) * ((1.0 - a2 / q) / (1.0 - c2 * big_b)) ** 2 * (1.0 + c1 * big_b)
    rho /= 1.0 - c3 * big_b
    return float(4.0 + (q + 2.0) / (q * rho - 1.0)), float(1.0 / (1.0 - a2 / q))


def kenward_roger_df(ss: SmallSample, vcov: np.ndarray, contrast: np.ndarray) -> float:
    """Denominator df of the Kenward-Roger F test of one or more contrasts (rows of
    `contrast`, (q, p))."""
    return _kenward_roger_moments(ss, vcov, np.atleast_2d(contrast))[0]


@dataclass(frozen=True)
class FTest:
    """An F test of q linear restrictions: the (scaled) statistic, its df, p-value and the
    scaling applied to the Wald statistic (1 when none)."""

    statistic: float
    df_num: int
    df_den: float
    p_value: float
    scaling: float = 1.0


def kenward_roger_f(
    ss: SmallSample, vcov: np.ndarray, contrast: np.ndarray, beta: np.ndarray
) -> FTest:
    """Kenward & Roger's F test of H0: Lβ = 0 (L = `contrast`, (q, p)): F = λ·(Lβ)ᵀ(LΦ_A Lᵀ)⁻¹
    (Lβ)/q with the adjusted covariance Φ_A and the scaling λ = m/(E*(m − 2)), referred to
    F(q, m) (pbkrtest's KRmodcomp)."""
    lmat = np.atleast_2d(contrast)
    q = lmat.shape[0]
    m, e_star = _kenward_roger_moments(ss, vcov, lmat)
    lb = lmat @ beta
    wald = float(lb @ np.linalg.solve(lmat @ ss.vcov_kr @ lmat.T, lb)) / q
    scaling = m / (e_star * (m - 2.0))
    return FTest(scaling * wald, q, m, float(stats.f.sf(scaling * wald, q, m)), scaling)


def satterthwaite_df(ss: SmallSample, vcov: np.ndarray, contrast: np.ndarray) -> float:
    """Satterthwaite df of one contrast (p,): 2·(lᵀΦl)² / (gᵀAg) with g the gradient of lᵀΦl
    in θ and A = 2·H⁻¹ the inverse observed information of θ (H: Hessian of the REML deviance),
    as lmerTest computes it (Kuznetsova et al. 2017, J. Stat. Softw. 82(13)). A variance
    estimated on the boundary (e.g. γ² = 0) is held there, as lmerTest's standard-deviation
    parametrisation does implicitly (the variance's derivative in its SD vanishes at 0). A
    random_slope fit uses lmerTest's own coordinates, the Cholesky factor (`CholeskyCoordinates`),
    where a correlation estimated at ±1 is a boundary too."""
    l_vec = np.asarray(contrast, dtype=float)
    var = float(l_vec @ vcov @ l_vec)
    grad = np.array([-(l_vec @ vcov @ p @ vcov @ l_vec) for p in ss.p_mats])
    free, hessian = ss.free, ss.hessian
    if ss.cholesky is not None:
        grad = ss.cholesky.jacobian.T @ grad
        free, hessian = ss.cholesky.free, ss.cholesky.hessian
    grad = grad[free]
    a_mat = 2.0 * np.linalg.pinv(hessian[np.ix_(free, free)])
    return float(2.0 * var**2 / (grad @ a_mat @ grad))


def profiled_criterion(
    cells: CellSummaries,
    X: np.ndarray,
    structure: Structure,
    theta: np.ndarray,
    slope: np.ndarray | None = None,
) -> float:
    """REML criterion at the relative parameters of θ (σ² profiled): for checking that a fit
    elsewhere (another package's estimates) is no better than ours."""
    c = _cells(cells, X, slope)
    return float(_profiled(_relative_of(structure, theta), structure, c)[0])


def lmm_cell_covariance(
    fit: RemlFit, cells: CellSummaries, X: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A fit's pieces for a sandwich on cell means (cell_sandwich.cell_basis): cell sizes (0
    where unobserved), the cells' shared covariance Σ_i (I, T, T; zero on unobserved cells), the
    individual variance σ² on within-cell deviations, the design and the residuals ȳ − Xβ̂."""
    c = _cells(cells, X, fit.slope)
    shared = _cell_sigma(fit.structure, fit.theta, c)[0]
    sigma2 = fit.theta[-1]
    n = np.where(cells.observed, cells.n, 0.0)
    return n, shared, np.full(n.shape, sigma2), c.X, c.y - c.X @ fit.beta


def cluster_precisions(cells: CellSummaries, structure: Structure, theta: np.ndarray) -> np.ndarray:
    """(I, T, T) inverse covariance of each cluster's cell means at θ (zero on unobserved
    cells), for GLS with fixed variance parameters (not random_slope, whose covariance moves
    with the allocation)."""
    if structure == "random_slope":
        raise ValueError("random_slope has no allocation-free null covariance")
    c = _cells(cells, np.zeros((*cells.mean.shape, 1)))
    v, _, _ = _derivatives(structure, np.asarray(theta, dtype=float), c)
    return _inverse(v)[0] * c.mask2


@dataclass(frozen=True)
class Correlations:
    """Within-period ICC (τ² + γ²)/(τ² + γ² + ψ² + σ²) between two different people (ψ²: the
    individual variance of a closed cohort, else 0) and cluster autocorrelation (CAC:
    τ²/(τ² + γ²) for nested exchangeable, r for exponential decay, (τ² + γ²r)/(τ² + γ²) one
    period apart for cluster_plus_decay, 1 for Hussey & Hughes), each
    with a Wald interval on the logit scale from the inverse observed information 2H⁻¹ by the
    delta method (NaN where the estimate is 0 or 1, e.g. a zero variance component)."""

    icc: float
    icc_ci: tuple[float, float]
    cac: float
    cac_ci: tuple[float, float]


def correlations(fit: RemlFit, hessian: np.ndarray, level: float) -> Correlations:
    """ICC and CAC of a fit with intervals; hessian: (k, k) as `SmallSample.hessian`."""
    from scipy import stats  # local: the optimiser module needs only scipy.optimize

    cov = 2.0 * np.linalg.pinv(hessian)
    th = dict(zip(fit.theta_names, fit.theta, strict=True))
    tau2, gamma2, sigma2 = th["tau2"], th.get("gamma2", 0.0), th["sigma2"]
    psi2 = th.get("psi2", 0.0)  # closed cohort: the individual variance is within-cluster too
    between = tau2 + gamma2
    total = between + psi2 + sigma2
    icc = between / total
    grad_icc = {
        "tau2": (psi2 + sigma2) / total**2,
        "gamma2": (psi2 + sigma2) / total**2,
        "psi2": -between / total**2,
        "sigma2": -between / total**2,
    }
    if fit.structure in ("nested_exchangeable", "random_slope"):  # slope: control periods
        cac = tau2 / between if between > 0 else float("nan")
        grad_cac = (
            {"tau2": gamma2 / between**2, "gamma2": -tau2 / between**2} if between > 0 else {}
        )
    elif fit.structure == "exponential_decay":
        cac, grad_cac = th["decay"], {"decay": 1.0}
    elif fit.structure == "cluster_plus_decay":
        r = th["decay"]
        cac = (tau2 + gamma2 * r) / between if between > 0 else float("nan")
        grad_cac = (
            {
                "tau2": gamma2 * (1.0 - r) / between**2,
                "gamma2": tau2 * (r - 1.0) / between**2,
                "decay": gamma2 / between,
            }
            if between > 0
            else {}
        )
    else:
        cac, grad_cac = 1.0, {}
    z = stats.norm.ppf(0.5 + level / 2.0)

    def interval(value: float, grad: dict[str, float]) -> tuple[float, float]:
        if not grad or not 0.0 < value < 1.0:
            return (float("nan"), float("nan"))
        g = np.array([grad.get(n, 0.0) for n in fit.theta_names]) / (value * (1.0 - value))
        half = z * float(np.sqrt(max(g @ cov @ g, 0.0)))
        logit = np.log(value / (1.0 - value))
        with np.errstate(over="ignore"):  # an unbounded half-width: the interval is (0, 1)
            return (
                float(1 / (1 + np.exp(-(logit - half)))),
                float(1 / (1 + np.exp(-(logit + half)))),
            )

    return Correlations(float(icc), interval(icc, grad_icc), float(cac), interval(cac, grad_cac))
