"""Stepped-wedge trials: marginal models by GEE with matrix-adjusted estimating equations (MAEE)
for the correlation parameters and bias-corrected sandwich variances, on cluster-period cells.

Individuals k in cluster i, period j have mean μ_ij = h(x_ijᵀβ) (gaussian/identity,
binomial/logit, poisson/log: counts over a population, i.e. a log(n_ij) offset on the cell
total) and a working correlation that depends on the two individuals' periods only: a within
the period and b_jl between periods j ≠ l (independence; exchangeable a = b = α; nested
exchangeable a = α0, b = α1, Li, Turner & Preisser 2018, Biometrics 74:1450–1458; exponential
decay a = α0, b_jl = α0·ρ^|j−l|, Li 2020, Stat. Methods Med. Res. 29:2686–2706).

Because every covariate is constant within a cell, each cluster's individual-level working
covariance is V = diag(v_j(1 − a)) ⊗ I + E Qv Eᵀ (E the individual-to-cell indicator, Qv the
T×T cell block), so V⁻¹, the GEE scores, the hat matrices H_i = D_i(ΣDᵀV⁻¹D)⁻¹D_iᵀV_i⁻¹ and
(I − H_i)⁻¹ all reduce to T×T matrices (Woodbury). The correlation estimating equations sum
pairwise standardised residual products over pair classes (same cell; cells j < l), which need
only each cell's residual sum and sum of squares. The estimating equations, the MAEE correction
(Preisser, Lu & Qaqish 2008, Stat. Med. 27:5041–5051), the Fisher-scoring path and the
corrections BC0 (Liang & Zeger 1986), BC1 (Kauermann & Carroll 2001), BC2 (Mancl & DeRouen
2001) and BC3 (Fay & Graubard 2001) follow the R package geeCRT (geemaee, version 1.1.4); CR2
(Bell & McCaffrey 2002) follows clubSandwich (cell_sandwich.py).
`correlation_method="moment"` is instead geepack's geeglm estimator (unit-weight correlation
equations over all within-cluster pairs, φ = Σ Pearson residual²/N in every family; checked
against geepack 1.3.9 in tests/reference/r_geepack_stepped_wedge). For Poisson counts per
person (records whose individuals count more than 1) φ is estimated as for continuous outcomes,
from Pearson residuals, where geeCRT holds it at 1 for counts.

Two pieces of geeCRT's algorithm depend on individual values beyond the cell summaries; they
are exact when `Records` are supplied and otherwise replaced as stated:
- MAEE uses the upper triangle of the non-symmetric matrix (I − H_i)⁻¹ r rᵀ, so a within-cell
  pair's term depends on which individual comes first in the data. Without records we use the
  average over orderings (order-invariant, as an estimator of a cluster's correlation should
  be); with records, the data order, reproducing geeCRT exactly.
- geeCRT's derivative of the correlation equations in β (only the correlation parameters'
  sandwich uses it) involves Σ_k 1/(y_k − μ_ij) per cell: computable from event counts for
  0/1 outcomes; for continuous outcomes and counts per person without records the correlation
  SEs are not reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.estimators.stepped_wedge.cell_sandwich import Cr2, cell_basis, cr2_on_cells
from pathfinder_eval.estimators.stepped_wedge.lmm import CellSummaries
from pathfinder_eval.settings import Correlation
from pathfinder_eval.settings import CorrelationMethod as Method
from pathfinder_eval.settings import GeeFamily as Family

VARIANCES = ("MB", "BC0", "BC1", "BC2", "BC3", "CR2")


# The sandwiches that also cover the correlation parameters α.
ALPHA_SANDWICHES = ("BC0", "BC1", "BC2", "BC3")


LINK = {"gaussian": "identity", "binomial": "logit", "poisson": "log"}


PARAMETERS = {
    "independence": (),
    "exchangeable": ("alpha",),
    "nested_exchangeable": ("alpha0", "alpha1"),
    "exponential_decay": ("alpha0", "rho"),
}


# Fisher scoring stops when no parameter moves by more than this (geeCRT's `epsilon`; its
# vignette uses 1e-3, which leaves estimates ~1e-5 from the root; the estimator iterates on).
TOL = 1e-10


MAX_ITER = 500


# Shrink steps of the correlation parameters back into the admissible range (geeCRT: 20).
MAX_SHRINK = 20


# Exponential decay: start values of ρ searched on this grid; a Fisher step that takes (α0, ρ)
# out of the admissible set (ρ ∈ [0, 1], correlations in range, positive definite working
# covariance) is halved up to MAX_HALVING times before the fit fails as having no admissible root.
DECAY_GRID = np.linspace(0.02, 0.98, 49)


MAX_HALVING = 30


# geeCRT caps each cluster's leverage at 0.75 in the Fay-Graubard correction.
FG_CAP = 0.75


@dataclass(frozen=True)
class Records:
    """Individual outcomes in data order, for the two pieces of the MAEE that depend on them
    (see the module docstring). cell: (N,) flat cell index i·T + j; y: (N,) outcomes."""

    cell: np.ndarray
    y: np.ndarray

    def order_sums(self, shape: tuple[int, int]) -> np.ndarray:
        """(I, T) Σ_k (position of k in its cell − 1)·y_k, positions in data order."""
        order = np.argsort(self.cell, kind="stable")
        cell = self.cell[order]
        starts = np.searchsorted(cell, cell, side="left")
        pos = np.arange(len(cell)) - starts
        return np.bincount(cell, pos * self.y[order], shape[0] * shape[1]).reshape(shape)

    def reciprocal_sums(self, mu: np.ndarray) -> np.ndarray:
        """(I, T) Σ_k 1/(y_k − μ_ij) at cell means mu (I, T)."""
        resid = self.y - mu.ravel()[self.cell]
        return np.bincount(self.cell, 1.0 / resid, mu.size).reshape(mu.shape)


@dataclass(frozen=True)
class GeeData:
    """What the GEE needs of a trial. cells: cell summaries (mean ȳ_ij, n_ij, within-cell sum of
    squares, observed), (I, T) each; X: (I, T, p) cell design; order: (I, T) the within-cell
    order statistic Σ_k (pos_k − 1)·y_k (order-averaged when no records); records: the
    individual outcomes, or None."""

    cells: CellSummaries
    X: np.ndarray
    order: np.ndarray
    records: Records | None


def gee_data(cells: CellSummaries, X: np.ndarray, records: Records | None = None) -> GeeData:
    """Bundle cell summaries and design; the order statistic from records or its average."""
    n = cells.n
    order = records.order_sums(n.shape) if records is not None else n * (n - 1) * cells.mean / 2.0
    return GeeData(cells, X, order, records)


@dataclass(frozen=True)
class GeeFit:
    """A GEE/MAEE fit. beta: (p,); alpha: (q,) correlation parameters (names in `alpha_names`);
    phi: dispersion (1 for binomial, and for poisson on 0/1 individuals, unless `moment`);
    vcov: name → (p+q, p+q) covariance of (β, α) for BC0–BC3 and (p, p) for MB and CR2; cr2:
    the CR2 pieces its Satterthwaite degrees of freedom need (cell_sandwich.py);
    alpha_se_available: whether the α rows of the sandwich are computable (see the module
    docstring); iterations: Fisher-scoring updates (geeCRT prints this plus one); max_step: the
    last update's largest change; shrinks: geeCRT's correlation shrink steps, or the
    exponential-decay step halvings (on cluster-period proportions: the steps whose decay
    estimate was on the boundary ρ ∈ {0, 1})."""

    beta: np.ndarray
    alpha: np.ndarray
    alpha_names: tuple[str, ...]
    phi: float
    vcov: MappingProxyType
    cr2: Cr2
    alpha_se_available: bool
    iterations: int
    max_step: float
    shrinks: int


def _mean(family: Family, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """μ, dμ/dη and the variance function v(μ) (without φ), each (I, T)."""
    if family == "gaussian":
        return eta, np.ones_like(eta), np.ones_like(eta)
    if family == "binomial":
        mu = 1.0 / (1.0 + np.exp(-eta))
        return mu, mu * (1.0 - mu), mu * (1.0 - mu)
    mu = np.exp(eta)
    return mu, mu, mu


def _individual_variance(family: Family, v: np.ndarray, phi: float) -> np.ndarray:
    """(I, T) the diagonal of V: φ·v(μ) (geeCRT 1.1.4's count model puts φ here instead, so its
    Poisson tables are not reproduced; tests/test_reference_geecrt.py shows that is the only
    difference)."""
    return v


def working_structure(correlation: Correlation, alpha: np.ndarray, T: int):
    """Within-cell correlation a, between-cell matrix B (T, T), and their derivatives in α:
    da (q,), dB (q, T, T)."""
    lag = np.abs(np.subtract.outer(np.arange(T), np.arange(T))).astype(float)
    if correlation == "independence":
        return 0.0, np.zeros((T, T)), np.zeros(0), np.zeros((0, T, T))
    if correlation == "exchangeable":
        return alpha[0], np.full((T, T), alpha[0]), np.ones(1), np.ones((1, T, T))
    if correlation == "nested_exchangeable":
        dB = np.stack([np.zeros((T, T)), np.ones((T, T))])
        return alpha[0], np.full((T, T), alpha[1]), np.array([1.0, 0.0]), dB
    a0, rho = alpha
    power = rho**lag
    d_rho = np.where(lag > 0, lag * rho ** np.maximum(lag - 1, 0), 0.0)
    return a0, a0 * power, np.array([1.0, 0.0]), np.stack([power, a0 * d_rho])


def _alpha_variance(family: Family, mu_j, mu_l, gamma) -> np.ndarray:
    """geeCRT's working variance of a standardised residual product with correlation gamma:
    gaussian 1 + γ²; binomial from the Bernoulli moments; poisson from the fourth moments of a
    shared-component (trivariate reduction) Poisson pair with dispersion 1. These are weights
    of the correlation equations, which stay unbiased whatever they are; geeCRT's formula with
    the dispersion φ estimated for counts per person falls to zero or below at low means (φ 2,
    μ 0.2), and the fits failed (found in review)."""
    if family == "gaussian":
        return 1.0 + gamma**2
    if family == "binomial":
        v = np.sqrt(mu_j * (1 - mu_j) * mu_l * (1 - mu_l))
        return 1.0 + (1 - 2 * mu_j) * (1 - 2 * mu_l) * gamma / v - gamma**2
    lam1 = np.sqrt(mu_j * mu_l) * gamma
    lam2, lam3 = mu_j - lam1, mu_l - lam1
    m2 = lam1**2 + lam1
    m3 = lam1**3 + 3 * lam1**2 + lam1
    m4 = lam1**4 + 6 * lam1**3 + 7 * lam1**2 + lam1
    s_j, s_l = mu_j + mu_j**2, mu_l + mu_l**2
    e_jjll = s_j * s_l + (m4 - m2**2) + 2 * (lam2 + lam3) * (m3 - lam1 * m2)
    e_jjll = e_jjll + 4 * lam1 * lam2 * lam3
    e_jll = mu_j * s_l + 2 * lam1**2 + lam1 + 2 * lam1 * lam3
    e_jjl = mu_l * s_j + 2 * lam1**2 + lam1 + 2 * lam1 * lam2
    e_jl = mu_j * mu_l + lam1
    num = (
        e_jjll
        - 2 * mu_l * e_jjl
        + mu_l**2 * s_j
        - 2 * mu_j * e_jll
        + 4 * mu_j * mu_l * e_jl
        - 3 * mu_j**2 * mu_l**2
        + mu_j**2 * s_l
    )
    return num / (mu_j * mu_l) - gamma**2


def _in_range(family: Family, mu: np.ndarray, a, B: np.ndarray, cells: CellSummaries) -> bool:
    """Whether every pair's working correlation is admissible (|γ| ≤ 1; for binary outcomes
    Prentice's 1988 bounds given the two means)."""
    n, obs = cells.n, cells.observed
    within = n >= 2
    both = obs[:, :, None] & obs[:, None, :] & ~np.eye(obs.shape[1], dtype=bool)
    if family != "binomial":
        return bool(
            (abs(a) <= 1 or not within.any())
            and np.broadcast_to(np.abs(B) <= 1, both.shape)[both].all()
        )
    mj, ml = mu[:, :, None], mu[:, None, :]
    odds_j, odds_l = mj / (1 - mj), ml / (1 - ml)
    hi = np.minimum(np.sqrt(odds_j / odds_l), np.sqrt(odds_l / odds_j))
    lo = np.maximum(-np.sqrt(odds_j * odds_l), -1.0 / np.sqrt(odds_j * odds_l))
    g = np.broadcast_to(B, hi.shape).copy()
    diag = np.arange(obs.shape[1])
    g[:, diag, diag] = a
    ok = (g <= hi) & (g >= lo)
    keep = both | (within[:, :, None] & np.eye(obs.shape[1], dtype=bool)[None])
    return bool(ok[keep].all())


@dataclass(frozen=True)
class _Score:
    """Per-cluster pieces at one (β, α, φ). Ub: (I, p); F: (I, p, p) DᵀV⁻¹D; Ua: (I, q);
    A: (I, q, q); trace: (I,) Σ_k (C e)_k e_k for the dispersion (MAEE's); c: (I, T) the MAEE shift;
    mu, g, sd, M: (I, T), (I, T), (I, T), (I, T, T)."""

    Ub: np.ndarray
    F: np.ndarray
    Ua: np.ndarray
    A: np.ndarray
    trace: np.ndarray
    mu: np.ndarray
    g: np.ndarray
    M: np.ndarray
    gamma_w: float
    B: np.ndarray
    W_w: np.ndarray
    W_b: np.ndarray
    z_w: np.ndarray
    dB: np.ndarray


def _chol_check(matrix: np.ndarray, what: str, maee: bool = False) -> None:
    if np.any(np.linalg.eigvalsh(matrix)[:, 0] <= 1e-13):
        raise EstimationError(
            f"the {what} is not positive definite at the current correlation parameters",
            where="options.correlation_method" if maee else "options.correlation",
            fix="estimate the correlation with correlation_method: moment (geepack's) or gee, "
            "which do not need it, or use independence"
            if maee
            else "use a simpler working correlation (exchangeable or independence)",
        )


def _score(
    data: GeeData,
    family: Family,
    correlation: Correlation,
    method: Method,
    beta: np.ndarray,
    alpha: np.ndarray,
    phi: float,
    naive: np.ndarray,
) -> _Score:
    """Cluster scores and information for β and α (geeCRT's score function in cell space);
    `naive` (p, p) is the model-based covariance the MAEE hat matrices use."""
    cells, X = data.cells, data.X
    n, obs, T = cells.n, cells.observed, cells.n.shape[1]
    mu, g, v0 = _mean(family, X @ beta)
    v = v0 * phi
    sd = np.sqrt(v)
    a, B, da, dB = working_structure(correlation, alpha, T)
    Q = B.copy()
    np.fill_diagonal(Q, a)
    Qv = sd[:, :, None] * Q[None] * sd[:, None, :]
    L = np.sqrt(n / (_individual_variance(family, v, phi) - v * a))
    eye = np.eye(T)
    mid = eye + L[:, :, None] * Qv * L[:, None, :]
    _chol_check(mid, "working covariance of a cluster")
    M = L[:, :, None] * np.linalg.inv(mid) * L[:, None, :]
    D = g[:, :, None] * X
    rbar = np.where(obs, cells.mean - mu, 0.0)
    Mr = np.einsum("itu,iu->it", M, rbar)
    Ub = np.einsum("itp,it->ip", D, Mr)
    F = np.einsum("itp,itu,iuq->ipq", D, M, D)
    c = np.zeros_like(rbar)
    if method == "maee":  # (I − H)⁻¹ adds a per-cell constant c_j to each standardised residual
        Wom = np.einsum("itp,pq,iuq->itu", D, naive, D)
        _chol_check(eye + L[:, :, None] * (Qv - Wom) * L[:, None, :], "matrix V − Ω (MAEE)", True)
        K = Wom @ np.linalg.inv(eye - M @ Wom)
        if family == "poisson":
            c = np.einsum("itu,iu->it", K @ M, rbar / sd)
        else:
            c = np.einsum("itu,iu->it", K, Mr) / sd
    E = n * rbar / sd
    SS = (cells.ssw + n * rbar**2) / v
    trace = (SS + c * E).sum(axis=1)
    q = len(alpha)
    if q == 0:
        return _Score(
            Ub, F, np.zeros((len(n), 0)), np.zeros((len(n), 0, 0)), trace,
            mu, g, M, a, B, np.ones_like(n), np.ones((len(n), T, T)), da, dB,
        )  # fmt: skip
    order = (data.order - mu * n * (n - 1) / 2.0) / sd
    S_w = (E**2 - SS) / 2.0 + c * order
    S_b = np.triu((E + n * c)[:, :, None] * E[:, None, :], 1)
    cnt_w = n * (n - 1) / 2.0
    cnt_b = np.triu(n[:, :, None] * n[:, None, :], 1)
    if method == "moment":
        W_w, W_b = np.ones_like(n), np.ones((len(n), T, T))
    else:
        W_w = np.broadcast_to(_alpha_variance(family, mu, mu, a), n.shape)
        W_b = np.broadcast_to(
            _alpha_variance(family, mu[:, :, None], mu[:, None, :], B[None]), cnt_b.shape
        )
    Ua = np.einsum("k,it->ik", da, (S_w - cnt_w * a) / W_w) + np.einsum(
        "ktu,itu->ik", dB, (S_b - cnt_b * B) / W_b
    )
    A = np.einsum("k,l,it->ikl", da, da, cnt_w / W_w) + np.einsum(
        "ktu,ltu,itu->ikl", dB, dB, cnt_b / W_b
    )
    return _Score(Ub, F, Ua, A, trace, mu, g, M, a, B, W_w, W_b, da, dB)


def _initial(data: GeeData, family: Family) -> tuple[np.ndarray, np.ndarray, float]:
    """geeCRT's starting values: least squares (on 2y − 1 for binary), then two Newton steps
    of the independence GLM for binomial and poisson; returns β, the information and φ."""
    cells, X = data.cells, data.X
    n, N, p = cells.n, cells.n_records, X.shape[2]
    XtX = np.einsum("it,itp,itq->pq", n, X, X)
    ybar = np.where(cells.observed, cells.mean, 0.0)
    shift = 2.0 * ybar - 1.0 if family == "binomial" else ybar
    beta = np.linalg.solve(XtX, np.einsum("it,itp,it->p", n, X, shift))
    if family == "gaussian":
        rss = cells.ssw.sum() + (n * (ybar - X @ beta) ** 2).sum()
        phi = float(rss / (N - p))
        return beta, XtX / phi, phi
    for _ in range(2):
        mu, g, _ = _mean(family, X @ beta)
        info = np.einsum("it,itp,itq->pq", n * g, X, X)
        beta = beta + np.linalg.solve(info, np.einsum("it,itp,it->p", n, X, ybar - mu))
    return beta, info, 1.0


def _start_alpha(
    data: GeeData, family: Family, correlation: Correlation, beta: np.ndarray, phi: float
) -> np.ndarray:
    """geeCRT's start α = 0.01 (each parameter). For exponential decay, whose ρ equation is
    nearly flat when α0 is small, the least-squares fit of α0·ρ^|j−l| to the standardised
    residual products at the starting β: for each ρ on the grid DECAY_GRID the best α0 is
    closed-form, and the ρ with the smallest residual sum of squares starts the iteration."""
    if correlation != "exponential_decay":
        return np.full(len(PARAMETERS[correlation]), 0.01)
    cells, T = data.cells, data.X.shape[1]
    mu, _, v0 = _mean(family, data.X @ beta)
    sd = np.sqrt(v0 * phi)
    n, rbar = cells.n, np.where(cells.observed, cells.mean - mu, 0.0)
    E, SS = n * rbar / sd, (cells.ssw + n * rbar**2) / sd**2
    lag = np.abs(np.subtract.outer(np.arange(T), np.arange(T)))
    upper = np.triu(np.ones((T, T), dtype=bool), 1)
    # pair sums and counts by lag: lag 0 within cells, lags 1..T−1 across them
    S = np.zeros(T)
    cnt = np.zeros(T)
    S[0], cnt[0] = ((E**2 - SS) / 2.0).sum(), (n * (n - 1) / 2.0).sum()
    prod, npair = E[:, :, None] * E[:, None, :], n[:, :, None] * n[:, None, :]
    for d in range(1, T):
        S[d], cnt[d] = prod[:, upper & (lag == d)].sum(), npair[:, upper & (lag == d)].sum()
    powers = DECAY_GRID[:, None] ** np.arange(T)[None, :]
    fit = (powers @ S) ** 2 / (powers**2 @ cnt)  # explained sum of squares at the best α0
    best = int(np.argmax(fit))
    rho = DECAY_GRID[best]
    return np.array([powers[best] @ S / (powers[best] ** 2 @ cnt), rho])


def _step_alpha(score: _Score) -> np.ndarray:
    A = score.A.sum(axis=0)
    return np.linalg.solve(A, score.Ua.sum(axis=0)) if A.size else np.zeros(0)


def fit_gee(
    data: GeeData,
    family: Family,
    correlation: Correlation = "nested_exchangeable",
    method: Method = "maee",
    tol: float = TOL,
    max_iter: int = MAX_ITER,
) -> GeeFit:
    """Fisher scoring for (β, α) with a moment update of φ between steps, as geeCRT's geemaee:
    α starts at 0.01, the MAEE hat matrices use the previous step's information, and φ (gaussian)
    is Σ tr((I − H)⁻¹ r rᵀ)/(N − p). `method`: maee (bias-corrected correlation equations,
    Preisser et al. 2008), gee (uncorrected) or moment (geepack's geeglm: unit weights, so the
    exchangeable α is the mean of e_k·e_m over all pairs of individuals in a cluster, within and
    across periods, e = (y − μ)/√(φ·v(μ)); φ = Σ (y − μ)²/v(μ) / N in every family).
    Exponential decay: least-squares start on a ρ grid and a damped correlation step
    (`_halve_decay`). Raises EstimationError when it does not converge or, for exponential
    decay, when the correlation equations have no admissible root."""
    p, q = data.X.shape[2], len(PARAMETERS[correlation])
    N = data.cells.n_records
    # φ is estimated for continuous outcomes, by geepack's moment method, and for counts per
    # person, which are overdispersed as a rule: with φ held at 1 their correlation estimates
    # absorb the excess variance and the working covariance left its admissible range in 61%
    # of 6-cluster trials (benchmarks/sw_count_size.py)
    estimate_phi = family == "gaussian" or method == "moment"
    estimate_phi |= family == "poisson" and not _zero_one(data.cells)
    beta, info, phi = _initial(data, family)
    alpha = _start_alpha(data, family, correlation, beta, phi)
    step, it, shrinks = np.inf, 0, 0
    while it < max_iter and step > tol:
        naive = np.linalg.inv(info)
        for k in range(MAX_SHRINK + 2):
            mu = _mean(family, data.X @ beta)[0]
            a, B = working_structure(correlation, alpha, data.X.shape[1])[:2]
            decay_ok = correlation != "exponential_decay" or 0.0 <= alpha[1] <= 1.0
            if q == 0 or (decay_ok and _in_range(family, mu, a, B, data.cells)):
                break
            if k > MAX_SHRINK:
                raise EstimationError(
                    f"the working correlation left its admissible range and {MAX_SHRINK} "
                    "shrink steps did not bring it back",
                    where="options.correlation",
                    fix="use a simpler working correlation (exchangeable or independence)",
                )
            alpha = np.zeros(q) if it == 0 else 0.95 * alpha
            shrinks += 1
        score = _score(data, family, correlation, method, beta, alpha, phi, naive)
        F = score.F.sum(axis=0)
        d_beta = np.linalg.solve(F, score.Ub.sum(axis=0))
        d_alpha = _step_alpha(score)
        step = float(np.abs(np.concatenate([d_beta, d_alpha])).max())  # the full Fisher step
        beta = beta + d_beta
        if correlation == "exponential_decay":
            d_alpha, halved = _halve_decay(data, family, method, beta, alpha, d_alpha, phi, F, tol)
            shrinks += halved
        alpha = alpha + d_alpha
        info = F
        if estimate_phi:
            phi = _dispersion(data, family, correlation, method, beta, alpha, phi, F, N, p)
        it += 1
    if step > tol:
        raise EstimationError(
            f"GEE Fisher scoring did not converge in {max_iter} iterations (last step "
            f"{step:.2g} > tolerance {tol:.0e})",
            where="options.correlation",
            fix="use a simpler working correlation or check the data for separation",
        )
    return _variance(data, family, correlation, method, beta, alpha, phi, info, it, step, shrinks)


def _decay_merit(data, family, method, beta, alpha, phi, info) -> float | None:
    """The correlation equations' squared Fisher-step length Uᵀ A⁻¹ U at (β, α0, ρ), or None
    when (α0, ρ) is not admissible there: ρ outside [0, 1], a working correlation out of range,
    or the working covariance or V − Ω (MAEE) not positive definite."""
    if not 0.0 <= alpha[1] <= 1.0:
        return None
    mu = _mean(family, data.X @ beta)[0]
    a, B = working_structure("exponential_decay", alpha, data.X.shape[1])[:2]
    if not _in_range(family, mu, a, B, data.cells):
        return None
    try:
        s = _score(data, family, "exponential_decay", method, beta, alpha, phi, np.linalg.inv(info))
    except EstimationError:
        return None
    U = s.Ua.sum(axis=0)
    return float(U @ np.linalg.solve(s.A.sum(axis=0), U))


def _halve_decay(data, family, method, beta, alpha, d_alpha, phi, info, tol):
    """The exponential-decay correlation step at the new β: the largest of d, d/2, d/4, …
    that keeps (α0, ρ) admissible and shortens the next Fisher step (Uᵀ A⁻¹ U), so that the
    scoring step, which ignores the curvature of α0·ρ^lag in ρ and can overshoot into a
    growing oscillation, is damped; a step within the tolerance is taken as it is. When no
    halving shortens the step, the largest admissible one is taken (non-convergence then
    fails loudly at max_iter). Returns the step and the number of halvings. Raises
    EstimationError when no admissible step is found within MAX_HALVING halvings: the Fisher
    step keeps pointing out of the admissible set, so the correlation equations have no root
    in it (typically ρ → 1 or ρ → 0)."""
    m0 = _decay_merit(data, family, method, beta, alpha, phi, info)
    full, fallback = d_alpha, None
    for k in range(MAX_HALVING + 1):
        m = _decay_merit(data, family, method, beta, alpha + d_alpha, phi, info)
        if m is not None:
            if np.abs(full).max() <= tol or m0 is None or m < m0:
                return d_alpha, k
            if fallback is None:
                fallback = (d_alpha, k)
        d_alpha = d_alpha / 2.0
    if fallback is not None:
        return fallback
    rho = alpha[1] + full[1]
    side = (
        "ρ > 1: the between-period correlations do not fall with lag"
        if rho > 1
        else "ρ < 0: the between-period correlations are negative or vanish"
        if rho < 0
        else "the working covariance is not positive definite there"
    )
    raise EstimationError(
        f"exponential decay: the correlation equations have no admissible root ({side}; ρ "
        f"reached {alpha[1]:.6g}, and {MAX_HALVING} halvings of the Fisher step did not keep "
        "it in the admissible range)",
        where="options.correlation",
        fix="use nested_exchangeable (or exchangeable when ρ → 1), which these data support",
    )


def _dispersion(data, family, correlation, method, beta, alpha, phi, info, N, p) -> float:
    """The next φ: geeCRT's Σ_i tr((I − H_i)⁻¹ r_i r_iᵀ)/(N − p) (gaussian; for poisson counts
    per person the same trace of Pearson residuals r/√v(μ)), or for `moment`
    geepack's Σ_k (y_k − μ_k)²/v(μ_k) / N over all N individuals, no df correction, in every
    family (geeglm estimates the scale unless scale.fix = TRUE)."""
    if method == "moment":
        mu, _, v0 = _mean(family, data.X @ beta)
        r = np.where(data.cells.observed, data.cells.mean - mu, 0.0)
        return float(((data.cells.ssw + data.cells.n * r**2) / v0).sum() / N)
    a, B = working_structure(correlation, alpha, data.X.shape[1])[:2]
    if not _in_range(family, _mean(family, data.X @ beta)[0], a, B, data.cells):
        return phi  # the next step's shrink brings α back first
    naive = np.linalg.inv(info)
    # continuous outcomes: geeCRT's MAEE trace whatever the method; counts per person: the
    # method's own (`gee` failed on MAEE's V − Ω check, telling the user to use gee)
    trace_method = "maee" if family == "gaussian" else method
    score = _score(data, family, correlation, trace_method, beta, alpha, phi, naive)
    return float(phi * score.trace.sum() / (N - p))


def _reciprocal_sums(data: GeeData, family: Family, mu: np.ndarray) -> np.ndarray | None:
    """(I, T) Σ_k 1/(y_k − μ_ij): from records, else from event counts for 0/1 outcomes
    (binomial, and poisson whose individuals count 0 or 1: each cell's sum of squares is then
    events − events²/n), else None (continuous outcomes, counts per person above 1)."""
    if data.records is not None:
        return data.records.reciprocal_sums(mu)
    if family == "gaussian":
        return None
    if not _zero_one(data.cells):
        return None
    n, events = data.cells.n, data.cells.n * data.cells.mean
    return np.where(data.cells.observed, events / (1.0 - mu) - (n - events) / mu, 0.0)


def _zero_one(cells: CellSummaries) -> bool:
    """Whether every observed cell's individuals count 0 or 1: its within-cell sum of squares
    is then events − events²/n (records of counts per person have more)."""
    events = cells.n * cells.mean
    gap = np.abs(cells.ssw - (events - events**2 / np.maximum(cells.n, 1.0)))
    return bool((gap <= 1e-9 * (1.0 + cells.n))[cells.observed].all())


def _alpha_beta(score: _Score, data: GeeData, family: Family, rho: np.ndarray) -> np.ndarray:
    """(I, q, p) geeCRT's derivative of the correlation equations in β: each pair (k, m)
    contributes γ/2·(b(μ_k)D_k + b(μ_m)D_m + 2D_k/r_k + 2D_m/r_m), b = 0 (gaussian),
    1/μ − 1/(1 − μ) (binomial), 1/μ (poisson)."""
    n, mu = data.cells.n, score.mu
    b = {"gaussian": 0.0 * mu, "binomial": 1 / mu - 1 / (1 - mu), "poisson": 1 / mu}[family]
    D = score.g[:, :, None] * data.X
    t = (n * b + 2.0 * rho)[:, :, None] * D
    within = (score.gamma_w / 2.0) * (n - 1)[:, :, None] * t / score.W_w[:, :, None]
    pair = (n[:, None, :, None] * t[:, :, None, :] + n[:, :, None, None] * t[:, None, :, :]) * (
        score.B / 2.0
    )[None, :, :, None]
    pair = np.triu(np.ones(score.B.shape), 1)[None, :, :, None] * pair / score.W_b[..., None]
    return np.einsum("k,itp->ikp", score.z_w, within) + np.einsum("ktu,itup->ikp", score.dB, pair)


def _variance(
    data: GeeData,
    family: Family,
    correlation: Correlation,
    method: Method,
    beta: np.ndarray,
    alpha: np.ndarray,
    phi: float,
    info: np.ndarray,
    iterations: int,
    step: float,
    shrinks: int,
) -> GeeFit:
    """Model-based and sandwich covariances at the estimates (geeCRT's variance estimator):
    with the cluster leverages H_i = F_i·N (F_i = D_iᵀV_i⁻¹D_i, N = (ΣF_i)⁻¹, and likewise for
    α), the corrected scores are (I − H_i)⁻¹U_i; BC1 averages U_c·U_iᵀ and its transpose, BC2
    uses U_c·U_cᵀ, BC3 scales U_i by 1/√(1 − min(0.75, diag H_i)). The (β, α) bread is the
    inverse of the block-triangular information. CR2 (β only) is clubSandwich's
    (cell_sandwich.py)."""
    first = _score(data, family, correlation, method, beta, alpha, phi, np.linalg.inv(info))
    Nb = np.linalg.inv(first.F.sum(axis=0))
    s = _score(data, family, correlation, method, beta, alpha, phi, Nb)
    p, q = len(beta), len(alpha)
    Na = np.linalg.inv(s.A.sum(axis=0)) if q else np.zeros((0, 0))
    Ui = np.concatenate([s.Ub, s.Ua], axis=1)
    eye_p, eye_q = np.eye(p), np.eye(q)
    Uc = np.concatenate(
        [
            np.linalg.solve(eye_p - s.F @ Nb, s.Ub[:, :, None])[:, :, 0],
            np.linalg.solve(eye_q - s.A @ Na, s.Ua[:, :, None])[:, :, 0] if q else s.Ua,
        ],
        axis=1,
    )
    lev = np.concatenate(
        [np.einsum("ipq,qp->ip", s.F, Nb), np.einsum("ipq,qp->ip", s.A, Na)], axis=1
    )
    Uh = Ui / np.sqrt(1.0 - np.minimum(FG_CAP, lev))
    rho = _reciprocal_sums(data, family, s.mu) if q else np.zeros_like(s.mu)
    bread = np.zeros((p + q, p + q))
    bread[:p, :p], bread[p:, p:] = Nb, Na
    if q and rho is not None:
        bread[p:, :p] = -Na @ _alpha_beta(s, data, family, rho).sum(axis=0) @ Nb
    meats = {
        "BC0": Ui.T @ Ui,
        "BC1": (Uc.T @ Ui + Ui.T @ Uc) / 2.0,
        "BC2": Uc.T @ Uc,
        "BC3": Uh.T @ Uh,
    }
    cells = data.cells
    v = _mean(family, data.X @ beta)[2] * phi
    corr = s.B.copy()
    np.fill_diagonal(corr, s.gamma_w)
    sd = np.sqrt(v)
    bias_reduced = cr2_on_cells(
        *cell_basis(
            np.where(cells.observed, cells.n, 0.0),
            sd[:, :, None] * corr[None] * sd[:, None, :],
            v * (1.0 - float(s.gamma_w)),
            s.g[:, :, None] * data.X,
            np.where(cells.observed, cells.mean - s.mu, 0.0),
        )
    )
    vcov = {"MB": Nb} | {k: bread @ m @ bread.T for k, m in meats.items()}
    vcov["CR2"] = bias_reduced.vcov
    if q and rho is None:
        for k in meats:
            vcov[k][p:, :] = np.nan
            vcov[k][:, p:] = np.nan
    return GeeFit(
        beta,
        alpha,
        PARAMETERS[correlation],
        phi,
        MappingProxyType(vcov),
        bias_reduced,
        q == 0 or rho is not None,
        iterations,
        step,
        shrinks,
    )
