"""Stepped-wedge linear mixed models fitted by exact REML on individual records: the general path
for individual-level covariates and closed cohorts (estimators/sw_lmm.py covers cross-sectional
designs whose covariates are constant within a cell, on cell summaries).

Record k of cluster i in period j: Y = xᵀβ + C_ij + B_ik + ε with ε ~ N(0, σ²), the
cluster-period effects C_i ~ N(0, Σ) (Hussey & Hughes 2007; nested exchangeable, Hooper et al.
2016; exponential decay, Kasza et al. 2019; as in sw_lmm) and, for a closed cohort, an
individual random intercept B_ik ~ N(0, ψ²) (Hooper et al. 2016, Stat. Med. 35:4718–4728;
Kasza et al. 2019, SMMR 28:703–716; lme4: (1|cluster) + (1|cluster:period) + (1|id)). So
V_i = Z_i Σ Z_iᵀ + ψ² K_i K_iᵀ + σ² I with Z_i the period and K_i the individual membership.

Algebra (relative to σ², H_i = V_i/σ² = A_i + Z_i Ψ Z_iᵀ with A_i = I + ω K_i K_iᵀ): A_i is
block diagonal by individual, A⁻¹ = I − c_k 11ᵀ on individual k's n_k records with
c_k = ω/(1 + ω n_k), |A| = Π (1 + ω n_k); then Woodbury over the T period effects gives
H⁻¹ = A⁻¹ − A⁻¹Z C ZᵀA⁻¹ with C = L(I + LᵀZᵀA⁻¹Z L)⁻¹Lᵀ (Ψ = LLᵀ, singular Ψ allowed) and
|H| = |A|·|I + LᵀZᵀA⁻¹ZL|. With D = [Z X y] every REML quantity is a block of DᵀH⁻¹D, which
needs only each cluster's Gram matrix DᵀD (formed once) and each individual's column sums of
D: one deviance and gradient evaluation costs O(m·d² + I·T³) (m individuals, d = T + p + 1),
never an n_i × n_i matrix. σ² is profiled out as in sw_lmm.

Kenward-Roger and Satterthwaite ingredients are computed in the same structure: V⁻¹, ∂V/∂θ
applied to (N, p) arrays by sparse sums over cells and individuals, O(N·p·T) per product, and
the traces tr(V⁻¹V_aV⁻¹V_b) in closed form from per-cluster T × T and per-individual T-vector
pieces, O(N·T² + m·T²); memory O(N·(p + T)). The Mancl-DeRouen variance needs only each
cluster's XᵢᵀHᵢ⁻¹Xᵢ and XᵢᵀHᵢ⁻¹yᵢ, blocks of the same DᵀH⁻¹D (`_mancl_derouen`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy import optimize, sparse

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.estimators.stepped_wedge.cell_sandwich import mancl_derouen
from pathfinder_eval.estimators.stepped_wedge.lmm import (
    DECREMENT_TOL,
    HESSIAN_STEP,
    LOG_2PI,
    STRUCTURES,
    THETA_NAMES,
    RemlFit,
    SmallSample,
    _bounds,
    _psi,
    _starts,
    kenward_roger_adjustment,
    sigma_second,
)
from pathfinder_eval.estimators.stepped_wedge.optimise import (
    gradient_hessian,
    newton_polish,
    projected_gradient,
)
from pathfinder_eval.settings import Structure

# Starting values of ω = ψ²/σ² (each combined with sw_lmm's starts for Σ/σ²).
OMEGA_STARTS = (0.1, 1.0)
# Two starts whose deviances differ by at most this reached the same optimum.
AGREE_TOL = 1e-6
# Newton polishing stops once the decrement is below this (or a step no longer lowers the
# deviance): far inside DECREMENT_TOL, so θ is located to ~1e-10 even on flat profiles.
POLISH_TOL = 1e-20
# Relative rounding of the deviance: a Newton step that raises it by no more than this but
# shrinks the gradient is accepted (near the optimum the fall gᵀH⁻¹g/2 is below rounding).
ROUNDING_REL = 1e-14


@dataclass(frozen=True)
class _Records:
    """Records sorted by cluster, with what every evaluation needs. y: (N,); X: (N, p);
    period: (N,) period codes; cell: (N,) cluster·T + period; offsets: (I + 1,) record slices
    of the clusters; gram: (I, d, d) DᵀD per cluster, D = [Z X y]; z_t: sparse (I·T, N) cell
    membership transposed; lag: (T, T) |j − l|; cohort arrays (None without individuals):
    ind (N,) individual codes grouped by cluster, sums (m, d) each individual's column sums of
    D, n_ind (m,), ind_offsets (I + 1,), k_t sparse (m, N)."""

    y: np.ndarray
    X: np.ndarray
    period: np.ndarray
    cell: np.ndarray
    offsets: np.ndarray
    gram: np.ndarray
    z_t: sparse.csr_matrix
    lag: np.ndarray
    n_clusters: int
    n_periods: int
    ind: np.ndarray | None
    sums: np.ndarray | None
    n_ind: np.ndarray | None
    ind_offsets: np.ndarray | None
    k_t: sparse.csr_matrix | None

    @property
    def cohort(self) -> bool:
        return self.ind is not None


def _fail(what: str, where: str, fix: str) -> EstimationError:
    return EstimationError(what, where=where, fix=fix)


def _codes(values: np.ndarray, name: str, n: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.shape != (n,) or not np.issubdtype(arr.dtype, np.integer) or (arr < 0).any():
        raise _fail(
            f"{name} must be {n} non-negative integer codes, one per record",
            name,
            f"factorise the {name} column (e.g. pandas.factorize) before fitting",
        )
    return arr.astype(np.int64)


def _prepare(y, X, cluster, period, individual) -> _Records:
    """Validate the arrays and build the sufficient statistics (records sorted by cluster)."""
    y = np.asarray(y, dtype=float)
    X = np.asarray(X, dtype=float)
    n = y.shape[0] if y.ndim == 1 else -1
    if n < 1 or X.ndim != 2 or X.shape[0] != n:
        raise _fail(
            f"y must be (N,) and X (N, p) with the same N (got {y.shape} and {X.shape})",
            "X",
            "pass one row of X per record",
        )
    if not (np.isfinite(y).all() and np.isfinite(X).all()):
        raise _fail("y or X has missing or infinite values", "X", "drop incomplete records")
    cluster, period = _codes(cluster, "cluster", n), _codes(period, "period", n)
    counts = np.bincount(cluster)
    if (counts == 0).any():
        empty = int(np.flatnonzero(counts == 0)[0])
        raise _fail(
            f"cluster code {empty} has no records",
            "cluster",
            "number the clusters with records 0..I-1 without gaps",
        )
    p = X.shape[1]
    if n - p <= 0:
        raise _fail(f"only {n} records for {p} fixed effects", "X", "supply more data")
    if np.linalg.matrix_rank(X) < p:
        raise _fail(
            "the fixed-effects matrix X is singular (its columns are linearly dependent)",
            "X",
            "drop covariates that are constant or collinear with the period and treatment terms",
        )
    order = np.argsort(cluster, kind="stable")
    cluster, period, y, X = cluster[order], period[order], y[order], X[order]
    n_clusters, n_periods = len(counts), int(period.max()) + 1
    offsets = np.concatenate([[0], np.cumsum(counts)])
    d = np.column_stack([np.eye(n_periods)[period], X, y])
    gram = np.stack([d[a:b].T @ d[a:b] for a, b in itertools.pairwise(offsets)])
    cell = cluster * n_periods + period
    z_t = sparse.csr_matrix((np.ones(n), (cell, np.arange(n))), shape=(n_clusters * n_periods, n))
    lag = np.abs(np.subtract.outer(np.arange(n_periods), np.arange(n_periods))).astype(float)
    if individual is None:
        return _Records(
            y, X, period, cell, offsets, gram, z_t, lag, n_clusters, n_periods,
            None, None, None, None, None,
        )  # fmt: skip
    raw = _codes(individual, "individual", n)[order]
    uniq, inv = np.unique(raw, return_inverse=True)
    home = np.zeros(len(uniq), dtype=np.int64)
    home[inv] = cluster
    if (home[inv] != cluster).any():
        bad = int(uniq[inv[np.flatnonzero(home[inv] != cluster)[0]]])
        raise _fail(
            f"individual {bad} has records in more than one cluster",
            "individual",
            "individuals must be nested in clusters: give each cluster's individuals own codes",
        )
    rank = np.empty(len(uniq), dtype=np.int64)
    rank[np.argsort(home, kind="stable")] = np.arange(len(uniq))
    ind = rank[inv]
    m = len(uniq)
    k_t = sparse.csr_matrix((np.ones(n), (ind, np.arange(n))), shape=(m, n))
    ind_offsets = np.concatenate([[0], np.cumsum(np.bincount(home, minlength=n_clusters))])
    return _Records(
        y, X, period, cell, offsets, gram, z_t, lag, n_clusters, n_periods,
        ind, k_t @ d, np.bincount(ind).astype(float), ind_offsets, k_t,
    )  # fmt: skip


@dataclass(frozen=True)
class _Blocks:
    """Per-cluster pieces at relative parameters φ. m: (I, d, d) DᵀA⁻¹D; core: (I, T, T) the
    Woodbury core C; dhd: (I, d, d) DᵀH⁻¹D; logdet: log|H| summed over clusters; e, c: (m,)
    1/(1 + ωn_k) and ω/(1 + ωn_k) (None without a cohort); dpsi: ∂Ψ/∂φ_k, each (T, T)."""

    m: np.ndarray
    core: np.ndarray
    dhd: np.ndarray
    logdet: float
    e: np.ndarray | None
    c: np.ndarray | None
    dpsi: list[np.ndarray]


def _blocks(phi: np.ndarray, structure: Structure, r: _Records) -> _Blocks:
    t = r.n_periods
    n_sigma = len(_bounds(structure))
    psi, dpsi = _psi(structure, phi[:n_sigma], r.lag)
    m = r.gram.copy()
    logdet, e, c = 0.0, None, None
    if r.cohort:
        omega = phi[n_sigma]
        e = 1.0 / (1.0 + omega * r.n_ind)
        c = omega * e
        for i, (a, b) in enumerate(itertools.pairwise(r.ind_offsets)):
            s = r.sums[a:b]
            m[i] -= (s * c[a:b, None]).T @ s
        logdet = float(np.log1p(omega * r.n_ind).sum())
    lam, vec = np.linalg.eigh(psi)
    root = vec * np.sqrt(np.clip(lam, 0.0, None))
    inner = np.eye(t) + root.T @ m[:, :t, :t] @ root
    chol = np.linalg.cholesky(inner)
    logdet += 2.0 * float(np.log(np.diagonal(chol, axis1=1, axis2=2)).sum())
    core = root @ np.linalg.solve(inner, np.broadcast_to(root.T, inner.shape))
    core = 0.5 * (core + np.swapaxes(core, 1, 2))
    mz = m[:, :t, :]
    dhd = m - np.swapaxes(mz, 1, 2) @ core @ mz
    return _Blocks(m, core, dhd, logdet, e, c, dpsi)


def _profiled(phi: np.ndarray, structure: Structure, r: _Records):
    """REML deviance (−2 log restricted likelihood, all constants) with σ² profiled out, its
    gradient in φ, β̂, σ̂² and (XᵀH⁻¹X)⁻¹. The gradient is Σ_k-wise
    tr(P ∂H/∂φ_k) − (dof/q)·rᵀH⁻¹(∂H/∂φ_k)H⁻¹r with P = H⁻¹ − H⁻¹X(XᵀH⁻¹X)⁻¹XᵀH⁻¹."""
    blk = _blocks(phi, structure, r)
    t, p = r.n_periods, r.X.shape[1]
    xs = slice(t, t + p)
    xhx = blk.dhd[:, xs, xs].sum(axis=0)
    xhy = blk.dhd[:, xs, -1].sum(axis=0)
    chol_x = np.linalg.cholesky(xhx)
    xinv = np.linalg.inv(xhx)
    beta = xinv @ xhy
    q = float(blk.dhd[:, -1, -1].sum() - beta @ xhy)
    dof = len(r.y) - p
    sigma2 = q / dof
    dev = (
        dof * (1.0 + LOG_2PI + np.log(sigma2))
        + blk.logdet
        + 2.0 * float(np.log(np.diag(chol_x)).sum())
    )
    zhx = blk.dhd[:, :t, xs]
    zhr = blk.dhd[:, :t, -1] - zhx @ beta
    zpz = blk.dhd[:, :t, :t] - zhx @ xinv @ np.swapaxes(zhx, 1, 2)
    total = (zpz - (dof / q) * zhr[:, :, None] * zhr[:, None, :]).sum(axis=0)
    grad = [float((total * d).sum()) for d in blk.dpsi]
    if r.cohort:  # ∂H/∂ω = KKᵀ: KᵀH⁻¹D = E·S − E·S_Z C ZᵀA⁻¹D per cluster
        trace, quad = 0.0, 0.0
        for i, (a, b) in enumerate(itertools.pairwise(r.ind_offsets)):
            e, s = blk.e[a:b, None], r.sums[a:b]
            f = e * s[:, :t]
            khd = e * s - f @ (blk.core[i] @ blk.m[i, :t, :])
            khx, khr = khd[:, xs], khd[:, -1] - khd[:, xs] @ beta
            diag = blk.e[a:b] * r.n_ind[a:b] - ((f @ blk.core[i]) * f).sum(axis=1)
            trace += float(diag.sum() - ((khx @ xinv) * khx).sum())
            quad += float(khr @ khr)
        grad.append(trace - (dof / q) * quad)
    return dev, np.array(grad), beta, sigma2, xinv


def _limits(structure: Structure, cohort: bool) -> tuple[np.ndarray, np.ndarray]:
    bounds = _bounds(structure) + ([(0.0, None)] if cohort else [])
    lo, hi = np.array(bounds, dtype=float).T
    return lo, np.nan_to_num(hi, nan=np.inf)


def _polish(phi: np.ndarray, objective, lo: np.ndarray, hi: np.ndarray):
    """Newton steps on the free parameters (optimise.newton_polish), accepted while they lower
    the deviance, as the cell path does, or, once the fall is below the deviance's rounding,
    while they shrink the projected gradient. Returns φ and the Newton decrement gᵀH⁻¹g."""

    def hessian(x: np.ndarray, free: np.ndarray) -> np.ndarray:
        return gradient_hessian(lambda p: objective(p)[1], x, free, lo, hi, HESSIAN_STEP, False)

    def flat(trial, t_dev, t_grad, x, dev, grad, free) -> bool:
        shrinks = np.linalg.norm(projected_gradient(trial, t_grad, lo, hi)) < np.linalg.norm(
            projected_gradient(x, grad, lo, hi)
        )
        return t_dev <= dev + ROUNDING_REL * abs(dev) and shrinks

    done = newton_polish(phi, objective, lo, hi, hessian, POLISH_TOL, flat)
    return done.x, done.decrement


@dataclass(frozen=True)
class RecordsFit:
    """A REML fit on individual records and its small-sample ingredients.

    fit: sw_lmm.RemlFit (θ named by fit.theta_names: the structure's names, with psi2 before
    sigma2 for a closed cohort); small: sw_lmm.SmallSample in the same θ, for
    sw_lmm.kenward_roger_df / satterthwaite_df; mancl_derouen: (p, p) the Mancl-DeRouen
    (clubSandwich CR3) covariance of β̂ with the fitted covariance as working model (None
    unless asked for); n_records, n_individuals (None: cross-sectional)."""

    fit: RemlFit
    small: SmallSample
    mancl_derouen: np.ndarray | None
    n_records: int
    n_individuals: int | None


def fit_records(
    y: np.ndarray,
    X: np.ndarray,
    cluster: np.ndarray,
    period: np.ndarray,
    individual: np.ndarray | None,
    structure: Structure,
    robust: bool = False,
) -> RecordsFit:
    """Exact REML for a stepped-wedge LMM on individual records (module docstring), with
    Kenward-Roger (1997) and Satterthwaite ingredients, and with `robust` the Mancl-DeRouen
    covariance.

    y: (N,) outcomes; X: (N, p) fixed effects (period terms, treatment, individual covariates);
    cluster, period: (N,) integer codes (clusters 0..I-1, each with records); individual: (N,)
    codes nested in clusters for a closed cohort (adds ψ²), or None. The deviance is profiled
    over σ², minimised by L-BFGS-B with the analytic gradient from several starts and polished
    by Newton steps; raises EstimationError on bad input or when the optimum is not confirmed
    (Newton decrement above DECREMENT_TOL or a Hessian that is not positive definite)."""
    if structure == "random_slope":
        raise _fail(
            "the random_slope model is fitted on cluster-period summaries only",
            "options.model",
            "drop data.columns.covariates and individual, or use nested_exchangeable",
        )
    if structure not in STRUCTURES:
        raise _fail(
            f"unknown covariance structure {structure!r}",
            "options.model",
            f"use one of {', '.join(STRUCTURES)}",
        )
    r = _prepare(y, X, cluster, period, individual)
    lo, hi = _limits(structure, r.cohort)

    def objective(phi: np.ndarray):
        return _profiled(phi, structure, r)[:2]

    starts = _starts(structure)
    if r.cohort:
        starts = [np.append(s, w) for s in starts for w in OMEGA_STARTS]
    results = []
    for start in starts:
        res = optimize.minimize(
            objective,
            start,
            jac=True,
            method="L-BFGS-B",
            bounds=list(zip(lo, np.where(np.isinf(hi), None, hi), strict=True)),
            options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 2000, "maxcor": 20},
        )
        results.append((float(res.fun), np.clip(res.x, lo, hi)))
    best_dev, phi = min(results, key=lambda t: t[0])
    agreeing = sum(abs(dev - best_dev) <= AGREE_TOL for dev, _ in results)
    phi, decrement = _polish(phi, objective, lo, hi)
    if not decrement <= DECREMENT_TOL:
        raise _fail(
            f"the REML optimiser did not converge for the {structure} model on individual "
            f"records (Newton decrement {decrement:.2g})",
            "options.model",
            "try a simpler covariance structure (hussey_hughes) or check the data",
        )
    dev, grad, beta, sigma2, xinv = _profiled(phi, structure, r)
    names = THETA_NAMES[structure][:-1] + (("psi2",) if r.cohort else ()) + ("sigma2",)
    boundary = tuple(names[k] for k in range(len(phi)) if phi[k] <= lo[k] or phi[k] >= hi[k])
    theta = np.append(phi, sigma2)
    theta[0] *= sigma2  # τ²; γ² and ψ² are relative too, the decay r is not
    for k, name in enumerate(names[1:-1], start=1):
        if name in ("gamma2", "psi2"):
            theta[k] *= sigma2
    fit = RemlFit(
        structure,
        beta,
        sigma2 * xinv,
        theta,
        names,
        float(dev),
        projected_gradient(phi, grad, lo, hi),
        decrement,
        True,
        len(results),
        agreeing,
        boundary,
    )
    return RecordsFit(
        fit,
        _small_sample(fit, phi, r),
        _mancl_derouen(_blocks(phi, structure, r), beta, r.n_periods) if robust else None,
        len(r.y),
        None if r.ind is None else len(r.n_ind),
    )


def _mancl_derouen(blk: _Blocks, beta: np.ndarray, t: int) -> np.ndarray:
    """The Mancl-DeRouen covariance (cell_sandwich.mancl_derouen) from each cluster's
    Mᵢ = XᵢᵀHᵢ⁻¹Xᵢ and gᵢ = XᵢᵀHᵢ⁻¹(yᵢ − Xᵢβ̂), blocks of DᵀH⁻¹D: (I − Hᵢᵢ)⁻¹ on each cluster's
    records pushed through to p × p pieces (Xᵢᵀ Wᵢ (I − Xᵢ B XᵢᵀWᵢ)⁻¹ = (I − Mᵢ B)⁻¹ XᵢᵀWᵢ), so
    no nᵢ × nᵢ matrix is formed; σ² cancels, so H (V/σ²) serves."""
    xs = slice(t, t + len(beta))
    m = blk.dhd[:, xs, xs]
    return mancl_derouen(m, blk.dhd[:, xs, -1] - m @ beta)


def _small_sample(fit: RemlFit, phi: np.ndarray, r: _Records) -> SmallSample:
    """Kenward-Roger and Satterthwaite ingredients (sw_lmm.SmallSample; the same formulas as
    sw_lmm.small_sample) on individual records. θ = (Σ parameters, [ψ²], σ²) with
    ∂V/∂θ = ZΣ_kZᵀ, KKᵀ, I. Products with V⁻¹ and ∂V/∂θ act on (N, ·) arrays by sparse sums;
    the traces tr(V⁻¹V_aV⁻¹V_b) use the closed forms below (per cluster, H = V/σ²):
    ZᵀH⁻¹Z = M − MCM with M = ZᵀA⁻¹Z; H⁻¹Z = A⁻¹Z(I − CM); ZᵀH⁻¹K = (I − MC)Fᵀ and
    KᵀH⁻¹K = diag(e·n) − FCFᵀ with F = E·S_Z (S_Z: each individual's records per period);
    tr(H⁻²) = tr(A⁻²) − 2tr(C·ZᵀA⁻³Z) + tr(C·G₂·C·G₂) with G₂ = ZᵀA⁻²Z."""
    structure, theta = fit.structure, fit.theta
    sigma2, k = theta[-1], len(theta)
    blk = _blocks(phi, structure, r)
    n_sigma = len(_bounds(structure))
    sig_d = _psi(structure, theta[:n_sigma], r.lag)[1]
    second = sigma_second(structure, theta[:n_sigma], r.lag)
    n_cl, t = r.n_clusters, r.n_periods
    eye = np.eye(t)

    def ainv(a: np.ndarray) -> np.ndarray:
        return a if blk.c is None else a - blk.c[r.ind, None] * (r.k_t @ a)[r.ind]

    def by_cell(a: np.ndarray) -> np.ndarray:  # Zᵀa as (I, T, c)
        return (r.z_t @ a).reshape(n_cl, t, -1)

    def vinv(a: np.ndarray) -> np.ndarray:
        b = ainv(a)
        w = (blk.core @ by_cell(b)).reshape(n_cl * t, -1)
        return (b - ainv(w[r.cell])) / sigma2

    def deriv(j: int, a: np.ndarray) -> np.ndarray:  # (∂V/∂θ_j) a
        if j < n_sigma:
            return (sig_d[j] @ by_cell(a)).reshape(n_cl * t, -1)[r.cell]
        if j == k - 1:
            return a
        return (r.k_t @ a)[r.ind]

    mzz = blk.m[:, :t, :t]
    core = blk.core
    bz = mzz - mzz @ core @ mzz  # ZᵀH⁻¹Z
    imc = eye - core @ mzz
    az = eye[r.period]
    if r.cohort:
        az = az - blk.c[r.ind, None] * r.sums[r.ind, :t]
    aaz = ainv(az)
    g2 = np.stack([az[a:b].T @ az[a:b] for a, b in itertools.pairwise(r.offsets)])
    g3 = np.stack([az[a:b].T @ aaz[a:b] for a, b in itertools.pairwise(r.offsets)])
    imc_t = np.swapaxes(imc, 1, 2)
    # relative traces tr(H⁻¹U_aH⁻¹U_b) for U ∈ {Z·Z (per Σ parameter), KKᵀ, I}
    rel = np.empty((k, k))
    zvz = (imc_t @ g2 @ imc).sum(axis=0)  # ZᵀH⁻²Z
    if r.cohort:
        a_tr = r.n_ind - (2.0 * blk.c - blk.c**2 * r.n_ind) * r.n_ind
        trace_a2 = float(a_tr.sum())
    else:
        trace_a2 = float(len(r.y))
    rel[k - 1, k - 1] = (
        trace_a2
        - 2.0 * float(np.einsum("its,ist->", core, g3))
        + float(np.einsum("ist,itu,iuv,ivs->", core, g2, core, g2))
    )
    for a, b in itertools.product(range(n_sigma), repeat=2):
        rel[a, b] = float(np.einsum("st,itu,uv,ivs->", sig_d[a], bz, sig_d[b], bz))
    for a in range(n_sigma):
        rel[a, k - 1] = rel[k - 1, a] = float((sig_d[a] * zvz).sum())
    if r.cohort:
        j = n_sigma
        e, n_ind = blk.e, r.n_ind
        f = e[:, None] * r.sums[:, :t]
        pairs = list(itertools.pairwise(r.ind_offsets))
        ff = np.stack([f[a:b].T @ f[a:b] for a, b in pairs])
        fef = np.stack([f[a:b].T @ (e[a:b, None] * f[a:b]) for a, b in pairs])
        fcf = np.concatenate(
            [((f[a:b] @ core[i]) * f[a:b]).sum(axis=1) for i, (a, b) in enumerate(pairs)]
        )
        en = e * n_ind
        rel[j, j] = float(
            (en**2).sum()
            - 2.0 * (en * fcf).sum()
            + np.einsum("ist,itu,iuv,ivs->", core, ff, core, ff)
        )
        rel[j, k - 1] = rel[k - 1, j] = float(
            (e**2 * n_ind).sum()
            - 2.0 * np.einsum("ist,its->", core, fef)
            + np.einsum("ist,itu,iuv,ivs->", core, g2, core, ff)
        )
        zkkz = (imc_t @ ff @ imc).sum(axis=0)
        for a in range(n_sigma):
            rel[a, j] = rel[j, a] = float((sig_d[a] * zkkz).sum())
    ktrace = rel / sigma2**2

    vcov = fit.vcov
    vx = vinv(r.X)
    resid = (r.y - r.X @ fit.beta)[:, None]
    s = vinv(resid)
    dvx = [deriv(a, vx) for a in range(k)]
    vdvx = [vinv(w) for w in dvx]
    ds = [deriv(a, s) for a in range(k)]
    vds = [vinv(w) for w in ds]
    p_mats = np.stack([-(vx.T @ w) for w in dvx])
    q_mats = np.empty((k, k, *vcov.shape))
    r_mats = np.zeros((k, k, *vcov.shape))
    for a, b in itertools.product(range(k), repeat=2):
        q_mats[a, b] = dvx[a].T @ vdvx[b]
    zvx, zs = by_cell(vx), by_cell(s)[:, :, 0]
    bz_sum = bz.sum(axis=0) / sigma2  # ZᵀV⁻¹Z summed over clusters
    xvds = [(vx.T @ w)[:, 0] for w in ds]
    hessian = np.empty((k, k))
    for a, b in itertools.product(range(k), repeat=2):
        tr_vkl = s_kl_s = 0.0
        if (a, b) in second:
            d2 = second[(a, b)]
            r_mats[a, b] = np.einsum("itp,tu,iuq->pq", zvx, d2, zvx)
            tr_vkl = float((bz_sum * d2).sum())
            s_kl_s = float(np.einsum("it,tu,iu->", zs, d2, zs))
        hessian[a, b] = (
            tr_vkl
            - ktrace[a, b]
            - np.trace(vcov @ p_mats[b] @ vcov @ p_mats[a])
            + np.trace(vcov @ (q_mats[a, b] + q_mats[b, a] - r_mats[a, b]))
            + 2.0 * (float(ds[a][:, 0] @ vds[b][:, 0]) - xvds[b] @ vcov @ xvds[a])
            - s_kl_s
        )
    return kenward_roger_adjustment(fit, vcov, ktrace, p_mats, q_mats, r_mats, hessian)
