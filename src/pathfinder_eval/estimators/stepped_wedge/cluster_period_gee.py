"""Stepped-wedge trials with a binary outcome: GEE on cluster-period means (Li, Yu, Rathouz,
Turner & Preisser 2022, Biostatistics 23:772–788; the R package geeCRT's `cpgeeSWD`).

Each cluster i contributes the vector of its cell proportions ȳ_ij (sizes m_ij) with mean
μ_ij = expit(x_ijᵀβ), v = μ(1 − μ), and the covariance that the individual-level working
correlation implies for means: B_jj = v_j/m_j·(1 + (m_j − 1)a), B_jl = √(v_j v_l)·b_jl
(a within the period, b_jl between periods: exchangeable a = b = α; nested exchangeable a = α0,
b = α1; exponential decay a = α0, b_jl = α0·ρ^|j−l|). β solves Σ CᵢᵀBᵢ⁻¹(ȳᵢ − μᵢ) = 0 with
Cᵢ = dμᵢ/dβ, the same equations as the individual-level GEE. The correlation parameters solve
Σ Dᵢᵀ(sᵢ − γᵢ(α)) = 0 on the T(T + 1)/2 distinct elements of the cluster's residual
cross-product sᵢ = upper(rᵢrᵢᵀ) (γ the matching elements of Bᵢ, D = dγ/dα), optionally with the
matrix adjustment (MAEE) rᵢrᵢᵀ → Bᵢ(Bᵢ − CᵢNCᵢᵀ)⁻¹rᵢrᵢᵀ that removes their small-sample bias.
Everything is T × T per cluster whatever the cluster sizes, so large trials are fast.

The algorithm follows geeCRT 1.1.4 step for step (starting values from the independence
logistic GLM, the MAEE adjustment with the previous step's information, simultaneous updates of
β and α, closed-form α for the linear structures and Newton's method for (α0, ρ)), as do its
variance estimators: model-based, BC0 (Liang & Zeger 1986), BC1 (Kauermann & Carroll 2001),
BC2 (Mancl & DeRouen 2001) and BC3 (Fay & Graubard 2001) for (β, α), with geeCRT's bread
for the α rows. CR2 (β only) is clubSandwich's bias-reduced linearisation with the same working
model (cell_sandwich.py). Unobserved cells are left out of their cluster; the decay lag is the
distance between periods.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
from scipy.optimize import brentq
from scipy.special import expit

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.estimators.stepped_wedge.cell_sandwich import cell_basis, cr2_on_cells
from pathfinder_eval.estimators.stepped_wedge.gee import (
    FG_CAP,
    MAX_ITER,
    PARAMETERS,
    TOL,
    GeeFit,
    working_structure,
)
from pathfinder_eval.estimators.stepped_wedge.lmm import CellSummaries
from pathfinder_eval.settings import Correlation
from pathfinder_eval.settings import CorrelationMethod as Method

# R's glm.fit: IRLS stops when the relative change in deviance is below this.
GLM_EPSILON = 1e-8


GLM_MAX_ITER = 25  # glm.control's maxit


# Newton's method for the decay parameters stops at this step length.
NEWTON_TOL = 1e-13


@dataclass(frozen=True)
class _Pieces:
    """One cluster-period evaluation at (β, α). mu, v, resid: (I, T); C: (I, T, p);
    B: (I, T, T) working covariance of the means (identity on unobserved cells); s: (I, P) the
    (adjusted) residual cross-products on the upper triangle (P = T(T + 1)/2 pairs j ≤ l);
    gamma: (I, P) their working expectations, base: (I, P) the same at α = 0 (v/m on the
    diagonal); D: (I, P, q) dγ/dα; F: (I, p, p) CᵀB⁻¹C; U: (I, p) CᵀB⁻¹r."""

    mu: np.ndarray
    v: np.ndarray
    resid: np.ndarray
    C: np.ndarray
    B: np.ndarray
    s: np.ndarray
    gamma: np.ndarray
    base: np.ndarray
    D: np.ndarray
    F: np.ndarray
    U: np.ndarray


def _pieces(
    cells: CellSummaries,
    X: np.ndarray,
    correlation: Correlation,
    beta: np.ndarray,
    alpha: np.ndarray,
    adjust_with: np.ndarray | None,
) -> _Pieces:
    """The per-cluster pieces; adjust_with: the bread N for the MAEE adjustment, or None."""
    obs = cells.observed
    T = obs.shape[1]
    m = np.where(obs, cells.n, 1.0)
    mu = expit(X @ beta)
    v = np.where(obs, mu * (1.0 - mu), 0.0)
    resid = np.where(obs, cells.mean - mu, 0.0)
    a, between, da, dB = working_structure(correlation, alpha, T)
    sv = np.sqrt(v)
    root = sv[:, :, None] * sv[:, None, :]
    diag = np.arange(T)
    B = root * between
    B[:, diag, diag] = np.where(obs, v / m * (1.0 + (m - 1.0) * a), 1.0)
    within = v * (m - 1.0) / m  # d B_jj / d a
    dfull = root[:, None] * dB[None]  # (I, q, T, T)
    dfull[:, :, diag, diag] = within[:, None, :] * da[None, :, None]
    if np.linalg.eigvalsh(B).min() <= 0:
        raise EstimationError(
            "the working covariance of a cluster's period means is not positive definite at "
            f"the correlation parameters {np.round(alpha, 4).tolist()}",
            where="options.correlation",
            fix="use a simpler working correlation (exchangeable)",
        )
    C = X * v[:, :, None]
    Binv_C = np.linalg.solve(B, C)
    F = np.einsum("itp,itq->ipq", C, Binv_C)
    U = np.einsum("itp,it->ip", Binv_C, resid)
    G = resid[:, :, None] * resid[:, None, :]
    if adjust_with is not None:
        omega = C @ adjust_with @ np.swapaxes(C, 1, 2)
        left = B - omega
        if np.linalg.eigvalsh(left).min() <= 1e-13:
            raise EstimationError(
                "the matrix adjustment of the correlation equations (MAEE) needs V − Ω "
                "positive definite in every cluster, and it is not",
                where="options.correlation_method",
                fix="use correlation_method: gee (no adjustment)",
            )
        G = B @ np.linalg.solve(left, G)
    upper = np.triu_indices(T)
    pair_obs = (obs[:, :, None] & obs[:, None, :])[:, upper[0], upper[1]]
    gamma = np.where(pair_obs, B[:, upper[0], upper[1]], 0.0)
    s = np.where(pair_obs, G[:, upper[0], upper[1]], 0.0)
    on = upper[0] == upper[1]
    base = np.where(pair_obs & on, (v / m)[:, upper[0]], 0.0)
    D = np.moveaxis(dfull[:, :, upper[0], upper[1]], 1, 2)
    return _Pieces(mu, v, resid, C, B, s, gamma, base, D, F, U)


def _glm_start(cells: CellSummaries, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """β of the independence logistic GLM on the cell proportions with weights m, by IRLS as
    R's glm.fit runs it (start μ = (m·ȳ + ½)/(m + 1), stop at a relative deviance change below
    1e-8), and its information Xᵀ diag(m·v) X at the fitted means (geeCRT's INITBETA)."""
    obs = cells.observed
    w = np.where(obs, cells.n, 0.0)
    y = np.where(obs, cells.mean, 0.0)
    Xo, wo, yo = X[obs], w[obs], y[obs]

    def deviance(mu: np.ndarray) -> float:
        with np.errstate(divide="ignore", invalid="ignore"):
            t1 = np.where(yo > 0, yo * np.log(yo / mu), 0.0)
            t0 = np.where(yo < 1, (1 - yo) * np.log((1 - yo) / (1 - mu)), 0.0)
        return float(2.0 * (wo * (t1 + t0)).sum())

    mu = (wo * yo + 0.5) / (wo + 1.0)
    eta = np.log(mu / (1 - mu))
    dev_old = deviance(mu)
    beta = np.zeros(X.shape[2])
    for _ in range(GLM_MAX_ITER):
        g = mu * (1 - mu)
        z = eta + (yo - mu) / g
        ww = wo * g
        beta = np.linalg.solve(Xo.T @ (Xo * ww[:, None]), Xo.T @ (ww * z))
        eta = Xo @ beta
        mu = expit(eta)
        dev = deviance(mu)
        if abs(dev - dev_old) / (abs(dev) + 0.1) < GLM_EPSILON:
            break
        dev_old = dev
    v = mu * (1 - mu)
    return beta, Xo.T @ (Xo * (v * wo)[:, None])


def _linear_alpha(p: _Pieces) -> np.ndarray:
    """α of the exchangeable and nested exchangeable structures, linear in α (γ = base + Dα):
    (ΣDᵀD)⁻¹ΣDᵀ(s − base), geeCRT's closed forms."""
    return np.linalg.solve(
        np.einsum("iPq,iPr->qr", p.D, p.D), np.einsum("iPq,iP->q", p.D, p.s - p.base)
    )


@dataclass(frozen=True)
class _DecaySums:
    """The decay equations' sufficient sums: over diagonal pairs Wd = Σ w(s − v/m) and
    Ww = Σ w² (w = v(m − 1)/m); over off-diagonal pairs by lag d: S[d] = Σ √(v_j v_l)·s_jl and
    Q[d] = Σ v_j v_l (index 0 unused)."""

    Wd: float
    Ww: float
    S: np.ndarray
    Q: np.ndarray

    def alpha0_at(self, rho: float) -> float:
        """α0 solving the first equation at a given ρ (it is linear in α0)."""
        pw = rho ** np.arange(1, len(self.S), dtype=float)
        return float((self.Wd + pw @ self.S[1:]) / (self.Ww + pw**2 @ self.Q[1:]))

    def equations(self, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """geeCRT's two equations in (α0, ρ) (the ρ equation divided by α0) and their
        Jacobian."""
        a0, rho = alpha
        d = np.arange(1, len(self.S), dtype=float)
        S, Q = self.S[1:], self.Q[1:]
        pw = rho**d
        dpw = d * rho ** (d - 1)
        ddpw = d * (d - 1) * rho ** np.maximum(d - 2, 0)
        resid = S - a0 * pw * Q
        f = np.array([self.Wd - a0 * self.Ww + pw @ resid, dpw @ resid])
        jac = np.array(
            [
                [-self.Ww - (pw**2) @ Q, dpw @ S - 2 * a0 * (pw * dpw) @ Q],
                [-(dpw * pw) @ Q, ddpw @ resid - a0 * (dpw**2) @ Q],
            ]
        )
        return f, jac


def _decay_sums(p: _Pieces) -> _DecaySums:
    T = p.v.shape[1]
    upper = np.triu_indices(T)
    lag = upper[1] - upper[0]
    on = lag == 0
    w = p.D[:, on, 0]
    root = np.sqrt(p.v[:, upper[0]] * p.v[:, upper[1]])[:, ~on]
    return _DecaySums(
        Wd=float((w * (p.s - p.base)[:, on]).sum()),
        Ww=float((w**2).sum()),
        S=np.bincount(lag[~on], (root * p.s[:, ~on]).sum(axis=0), T),
        Q=np.bincount(lag[~on], (root**2).sum(axis=0), T),
    )


def _decay_alpha(sums: _DecaySums, start: np.ndarray) -> np.ndarray:
    """(α0, ρ) solving the decay equations by Newton's method from the previous values. When
    the root has ρ outside [0, 1] (or Newton's method fails), the estimate is on the boundary:
    ρ at the nearer end and α0 solving its equation there (ρ = 1 is the exchangeable
    structure, which a trial without decay tends to reach)."""
    alpha = start.astype(float).copy()
    with np.errstate(all="ignore"):
        for _ in range(100):
            f, jac = sums.equations(alpha)
            try:
                step = np.linalg.solve(jac, f)
            except np.linalg.LinAlgError:  # a flat equation (e.g. α0 = 0): no Newton step
                alpha[:] = np.nan
                break
            alpha = alpha - step
            if not np.isfinite(alpha).all() or np.abs(step).max() < NEWTON_TOL:
                break
    if np.isfinite(alpha).all() and 0.0 <= alpha[1] <= 1.0:
        return alpha
    rho = 1.0 if not np.isfinite(alpha[1]) or alpha[1] > 1.0 else 0.0
    return np.array([sums.alpha0_at(rho), rho])


def _start_alpha(p: _Pieces, correlation: Correlation) -> np.ndarray:
    """geeCRT's starting α from the unadjusted residual products at the GLM's β: the closed
    forms for the linear structures; for exponential decay α0 from the diagonal pairs alone and
    ρ the root in (0, 1) of the ρ equation at that α0 (the end of [0, 1] it points to when it
    has none)."""
    if correlation != "exponential_decay":
        return _linear_alpha(p)
    sums = _decay_sums(p)
    a0 = sums.Wd / sums.Ww

    def rho_equation(rho: float) -> float:
        return float(sums.equations(np.array([a0, rho]))[0][1])

    lo, hi = rho_equation(0.0), rho_equation(1.0)
    if lo * hi > 0:
        return np.array([a0, 1.0 if lo > 0 else 0.0])
    return np.array([a0, brentq(rho_equation, 0.0, 1.0, xtol=1e-14)])


def _alpha(p: _Pieces, correlation: Correlation, previous: np.ndarray) -> np.ndarray:
    if correlation == "exponential_decay":
        return _decay_alpha(_decay_sums(p), previous)
    return _linear_alpha(p)


def fit_cluster_period_gee(
    cells: CellSummaries,
    X: np.ndarray,
    correlation: Correlation = "nested_exchangeable",
    method: Method = "maee",
    tol: float = TOL,
    max_iter: int = MAX_ITER,
) -> GeeFit:
    """Fisher scoring for (β, α) on cluster-period proportions as geeCRT's cpgeeSWD.
    cells: event proportions and cell sizes (I, T); X: (I, T, p) cell design; correlation:
    exchangeable, nested_exchangeable or exponential_decay; method: maee (adjusted correlation
    equations) or gee. Stops when no parameter moves by more than `tol` (geeCRT's `epsilon`)."""
    if correlation == "independence" or method == "moment":
        raise EstimationError(
            "GEE on cluster-period means estimates a working correlation by MAEE or GEE: "
            f"correlation {correlation!r} with method {method!r} is not one of them",
            where="options",
            fix="use equations: individual, or a correlated structure with maee or gee",
        )
    beta, info = _glm_start(cells, X)
    zero = np.zeros(len(PARAMETERS[correlation]))
    alpha = _start_alpha(_pieces(cells, X, correlation, beta, zero, None), correlation)
    step, it, boundary = np.inf, 0, 0
    while it < max_iter and step > tol:
        adjust = np.linalg.inv(info) if method == "maee" else None
        p = _pieces(cells, X, correlation, beta, alpha, adjust)
        new_alpha = _alpha(p, correlation, alpha)
        boundary += correlation == "exponential_decay" and new_alpha[1] in (0.0, 1.0)
        info = p.F.sum(axis=0)
        d_beta = np.linalg.solve(info, p.U.sum(axis=0))
        step = float(np.abs(np.concatenate([d_beta, new_alpha - alpha])).max())
        beta, alpha = beta + d_beta, new_alpha
        it += 1
    if step > tol:
        raise EstimationError(
            f"cluster-period GEE did not converge in {max_iter} iterations (last step "
            f"{step:.2g} > tolerance {tol:.0e})",
            where="options.correlation",
            fix="use a simpler working correlation or check the data for separation",
        )
    return _variance(cells, X, correlation, method, beta, alpha, it, step, boundary)


def _variance(
    cells: CellSummaries,
    X: np.ndarray,
    correlation: Correlation,
    method: Method,
    beta: np.ndarray,
    alpha: np.ndarray,
    iterations: int,
    step: float,
    boundary: int,
) -> GeeFit:
    """geeCRT's variances at the estimates: with N = (ΣCᵀB⁻¹C)⁻¹ and M = (ΣDᵀD)⁻¹, the scores
    Uᵢ = (CᵀB⁻¹r, Dᵀ(s − γ)) and their corrections (Cᵀ(B − CNCᵀ)⁻¹r, Dᵀ(I − DMDᵀ)⁻¹(s − γ));
    BC1 averages U_c·U_iᵀ with its transpose, BC2 uses U_c·U_cᵀ, BC3 scales Uᵢ by
    1/√(1 − min(0.75, leverage)). The bread is geeCRT's: [[N, 0], [M·E·N, M]] with
    E = ΣDᵀ·(rows −r_j·v_j·x_j − r_l·v_l·x_l per pair)."""
    T = X.shape[1]
    p = _pieces(cells, X, correlation, beta, alpha, None)
    Nb = np.linalg.inv(p.F.sum(axis=0))
    if method == "maee":  # the adjustment with the information at the estimates
        p = _pieces(cells, X, correlation, beta, alpha, Nb)
    n_beta, q = len(beta), len(alpha)
    R = p.s - p.gamma
    A = np.einsum("iPq,iPr->iqr", p.D, p.D)
    Na = np.linalg.inv(A.sum(axis=0))
    Ub = p.U
    Ua = np.einsum("iPq,iP->iq", p.D, R)
    Ui = np.concatenate([Ub, Ua], axis=1)
    hat_b = p.B - p.C @ Nb @ np.swapaxes(p.C, 1, 2)
    corrected_b = np.einsum("itp,it->ip", p.C, np.linalg.solve(hat_b, p.resid[..., None])[..., 0])
    hat_a = np.eye(R.shape[1]) - p.D @ Na @ np.swapaxes(p.D, 1, 2)
    corrected_a = np.einsum("iPq,iP->iq", p.D, np.linalg.solve(hat_a, R[..., None])[..., 0])
    Uc = np.concatenate([corrected_b, corrected_a], axis=1)
    lev = np.concatenate([np.einsum("ipq,qp->ip", p.F, Nb), np.einsum("ipq,qp->ip", A, Na)], axis=1)
    Uh = Ui / np.sqrt(1.0 - np.minimum(FG_CAP, lev))
    upper = np.triu_indices(T)
    g = (p.resid * p.v)[:, :, None] * X  # r_j·v_j·x_j
    DB = -(g[:, upper[0]] + g[:, upper[1]])  # (I, P, p)
    bread = np.zeros((n_beta + q, n_beta + q))
    bread[:n_beta, :n_beta], bread[n_beta:, n_beta:] = Nb, Na
    bread[n_beta:, :n_beta] = Na @ np.einsum("iPq,iPp->qp", p.D, DB) @ Nb
    meats = {
        "BC0": Ui.T @ Ui,
        "BC1": (Uc.T @ Ui + Ui.T @ Uc) / 2.0,
        "BC2": Uc.T @ Uc,
        "BC3": Uh.T @ Uh,
    }
    a, between = working_structure(correlation, alpha, T)[:2]
    corr = np.array(between, dtype=float)
    np.fill_diagonal(corr, a)
    v = p.mu * (1.0 - p.mu)  # also on unobserved cells, whose basis rows cell_basis zeroes
    sd = np.sqrt(v)
    bias_reduced = cr2_on_cells(
        *cell_basis(
            np.where(cells.observed, cells.n, 0.0),
            sd[:, :, None] * corr[None] * sd[:, None, :],
            v * (1.0 - float(a)),
            p.C,
            p.resid,
        )
    )
    vcov = {"MB": Nb} | {k: bread @ m @ bread.T for k, m in meats.items()}
    vcov["CR2"] = bias_reduced.vcov
    return GeeFit(
        beta,
        alpha,
        PARAMETERS[correlation],
        1.0,
        MappingProxyType(vcov),
        bias_reduced,
        True,
        iterations,
        step,
        boundary,
    )
