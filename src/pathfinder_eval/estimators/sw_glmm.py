"""Generalised linear mixed models for stepped-wedge trials, fitted by maximum likelihood on
cluster-period counts (Laplace approximation or adaptive Gauss-Hermite quadrature).

Cell (i, j) of cluster i and period j has y_ij events out of n_ij trials (binomial, logit link)
or in a population n_ij (Poisson, log link, offset log n_ij). With every covariate constant
within a cell, the aggregated binomial likelihood equals the individual Bernoulli likelihood
times the binomial coefficients C(n_ij, y_ij), a constant. The linear predictor is

    η_ij = x_ijᵀβ + b_ij,   b_i = Λ(θ) u_i,   u_i ~ N(0, I_q)   (spherical, as lme4),

with Λ one of
- Hussey & Hughes (2007, Contemp. Clin. Trials 28:182–191): Λ = τ·1 (q = 1, a cluster
  intercept);
- nested exchangeable (Hooper et al. 2016, Stat. Med. 35:4718–4728): Λ = [τ·1 | γ·I]
  (q = T + 1: cluster and cluster-period intercepts);
- exponential decay (Kasza et al. 2019, SMMR 28:703–716): Λ = τ·L(r), L the Cholesky factor
  of the AR(1) correlation r^|j−l| (glmmTMB's ar1(0 + period | cluster)).

Clusters are independent, so the marginal likelihood is a product of q-dimensional integrals.
The Laplace approximation (Tierney & Kadane 1986, JASA 81:82–86; as lme4, Bates et al. 2015,
J. Stat. Softw. 67(1), section 5) expands each around the conditional mode û_i (inner Newton):

    D(θ, β) = Σ_i [ −2 log p(y_i | û_i) + ‖û_i‖² + log det(I + ΛᵀW_iΛ) ],

W_i the binomial/Poisson weights at the mode. Adaptive Gauss-Hermite quadrature (Liu & Pierce
1994, Biometrika 81:624–629; Pinheiro & Bates 1995, JCGS 4:12–35) centres and scales a K-point
rule at û_i for the scalar Hussey & Hughes effect, as glmer's nAGQ > 1. The outer problem
minimises D over (θ, β) jointly from several starts with the analytic gradient below (implicit
differentiation of the modes), then Newton polishes and checks the gradient.

Unobserved cells carry weight zero: their random effects are integrated out exactly, which
leaves the approximation for the observed cells unchanged.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.estimators.stepped_wedge import (
    Contrast,
    TrialArrays,
    check_design,
    contrast_weights,
    design_summary,
    effect_contrasts,
    wald_row,
)
from pathfinder_eval.estimators.sw_lmm import (
    CellSummaries,
    FixedEffects,
    Shape,
    Structure,
    fixed_effects,
)
from pathfinder_eval.inference.policy import fixed_default
from pathfinder_eval.panel import ValidatedPanel
from pathfinder_eval.results import EffectEstimates, InferenceUsed, estimates_table
from pathfinder_eval.settings import GlmmFamily as Family
from pathfinder_eval.settings import SteppedWedgeGlmmOptions

FAMILIES: tuple[Family, ...] = ("binomial", "poisson")
# Upper bound of the decay r: the AR(1) factor's derivative grows like 1/√(1 − r²) at r = 1.
R_MAX = 1.0 - 1e-6
# Largest glmer allows for nAGQ; more points change nothing at reported precision.
# Latent residual variance of the logistic distribution, for ICCs on the latent scale.
LOGIT_LATENT_VARIANCE = float(np.pi**2 / 3.0)
# The outer fit has converged when the largest projected gradient of the deviance is below
# GRADIENT_TOL and the Newton decrement gᵀH⁻¹g (the most the deviance could still fall) below
# DECREMENT_TOL: far below anything that moves an estimate at reported precision.
GRADIENT_TOL = 1e-5
DECREMENT_TOL = 1e-8
# Inner Newton on the conditional modes: stop when the largest step is this small.
MODE_STEP_TOL = 1e-11
MODE_MAX_ITER = 100
THETA_NAMES: dict[str, tuple[str, ...]] = {
    "hussey_hughes": ("tau",),
    "nested_exchangeable": ("tau", "gamma"),
    "exponential_decay": ("tau", "decay"),
}


class FitError(RuntimeError):
    """The numerical fit failed (the estimator turns it into an EstimationError)."""


@dataclass(frozen=True)
class CountCells:
    """Cluster-period counts of one outcome, all (I clusters, T periods): events y, trials or
    population n (0 where unobserved), observed (bool)."""

    events: np.ndarray
    trials: np.ndarray
    observed: np.ndarray


def cell_loglik(family: Family, cells: CountCells, eta: np.ndarray) -> np.ndarray:
    """Log-likelihood of each cell at linear predictor eta (..., I, T) with all constants
    (binomial: log C(n, y); Poisson: −log y!, eta including the offset); 0 where unobserved."""
    y, n, obs = cells.events, cells.trials, cells.observed
    if family == "binomial":
        const = special.gammaln(n + 1) - special.gammaln(y + 1) - special.gammaln(n - y + 1)
        out = y * eta - n * np.logaddexp(0.0, eta) + const
    else:
        out = y * eta - np.exp(np.where(obs, eta, 0.0)) - special.gammaln(y + 1)
    return np.where(obs, out, 0.0)


def _moments(family: Family, cells: CountCells, eta: np.ndarray):
    """Mean, weight dμ/dη and its derivative d²μ/dη² of each cell (canonical links: the
    weight is the information), 0 where unobserved; eta (..., I, T)."""
    obs = cells.observed
    if family == "binomial":
        p = special.expit(eta)
        mean = cells.trials * p
        w = mean * (1.0 - p)
        return mean, w, w * (1.0 - 2.0 * p)
    mu = np.where(obs, np.exp(np.where(obs, eta, 0.0)), 0.0)
    return mu, mu, mu


def _offset(family: Family, cells: CountCells) -> np.ndarray:
    if family == "binomial":
        return np.zeros(cells.trials.shape)
    return np.log(np.where(cells.observed, cells.trials, 1.0))


def ar1_factor(r: float, n_periods: int) -> tuple[np.ndarray, np.ndarray]:
    """Lower Cholesky factor L of the AR(1) correlation r^|j−l| (T, T) in closed form
    (L_j0 = r^j, L_jk = r^(j−k)·√(1 − r²) for 1 ≤ k ≤ j) and its derivative in r."""
    j = np.arange(n_periods)[:, None]
    k = np.arange(n_periods)[None, :]
    lag = (j - k).astype(float)
    low = lag >= 0
    pw = np.where(low, r ** np.maximum(lag, 0.0), 0.0)
    dpw = np.where(low & (lag > 0), lag * r ** np.maximum(lag - 1.0, 0.0), 0.0)
    s = np.sqrt(1.0 - r * r)
    col = np.where(k == 0, 1.0, s)
    dcol = np.where(k == 0, 0.0, -r / s)
    return pw * col, dpw * col + pw * dcol


def random_factor(
    structure: Structure, theta: np.ndarray, n_periods: int
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Λ(θ) (T, q) with b_i = Λu_i, u_i ~ N(0, I), and its derivatives dΛ/dθ_k (each (T, q)).
    θ: hussey_hughes (τ), nested_exchangeable (τ, γ), exponential_decay (τ, r); τ and γ are
    standard deviations (the likelihood is even in each)."""
    ones = np.ones((n_periods, 1))
    if structure == "hussey_hughes":
        return theta[0] * ones, [ones]
    if structure == "nested_exchangeable":
        eye = np.eye(n_periods)
        zero1, zero_t = np.zeros((n_periods, 1)), np.zeros((n_periods, n_periods))
        lam = np.hstack([theta[0] * ones, theta[1] * eye])
        return lam, [np.hstack([ones, zero_t]), np.hstack([zero1, eye])]
    chol, d_chol = ar1_factor(float(theta[1]), n_periods)
    return theta[0] * chol, [chol, theta[0] * d_chol]


def _solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve a stack of SPD systems a (I, q, q) x = b (I, q) or (I, q, m)."""
    if b.ndim == 2:
        return np.linalg.solve(a, b[..., None])[..., 0]
    return np.linalg.solve(a, b)


def conditional_modes(
    family: Family, cells: CountCells, fixed: np.ndarray, lam: np.ndarray, u: np.ndarray
) -> np.ndarray:
    """Modes û_i (I, q) of the penalised log-likelihood log p(y_i | u) − ‖u‖²/2 of each
    cluster by Newton's method with step halving (the objective is strictly concave for the
    canonical links); fixed: (I, T) Xβ + offset; u: (I, q) starting values."""
    eye = np.eye(lam.shape[1])

    def objective(v: np.ndarray) -> np.ndarray:
        eta = fixed + v @ lam.T
        return -2.0 * cell_loglik(family, cells, eta).sum(axis=1) + (v * v).sum(axis=1)

    current = objective(u)
    for _ in range(MODE_MAX_ITER):
        eta = fixed + u @ lam.T
        mean, w, _ = _moments(family, cells, eta)
        grad = u - (cells.events - mean) @ lam
        hess = eye + np.einsum("tq,it,tr->iqr", lam, w, lam)
        step = _solve(hess, grad)
        if np.abs(step).max() < MODE_STEP_TOL:
            return u
        length = np.ones((u.shape[0], 1))
        for _ in range(60):
            trial = u - length * step
            value = objective(trial)
            worse = value > current + 1e-13 * np.abs(current)
            if not worse.any():
                break
            length[worse] /= 2.0
        u, current = trial, value
    raise FitError("the inner Newton iterations for the conditional modes did not converge")


@dataclass(frozen=True)
class Deviance:
    """The approximate deviance −2 log L (all constants) at (θ, β) and its gradient (k + p,);
    modes: (I, q) conditional modes (warm start for the next evaluation)."""

    value: float
    gradient: np.ndarray
    modes: np.ndarray


def gh_rule(points: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Hermite nodes z (K,) and log weights for the standard normal (weights sum to 1)."""
    z, w = np.polynomial.hermite_e.hermegauss(points)
    return z, np.log(w / np.sqrt(2.0 * np.pi))


def deviance(
    params: np.ndarray,
    structure: Structure,
    family: Family,
    cells: CountCells,
    X: np.ndarray,
    points: int = 1,
    u: np.ndarray | None = None,
) -> Deviance:
    """Laplace (points = 1) or adaptive Gauss-Hermite (points > 1, hussey_hughes only)
    deviance at params = (θ, β), θ as `random_factor`; X: (I, T, p) with zero rows on
    unobserved cells; u: (I, q) warm start for the modes.

    Gradient by implicit differentiation: with A_i = I + ΛᵀW_iΛ and P_i = ΛA_i⁻¹Λᵀ,
    dû/dψ = A⁻¹(dΛᵀe − ΛᵀW ∂η/∂ψ), dη̂/dψ = ∂η/∂ψ + Λ dû/dψ (e = y − μ at the mode, ∂η/∂ψ
    at fixed u: X for β, dΛu for θ), and
    dD/dψ = −2eᵀ∂η/∂ψ + 2 tr(A⁻¹ΛᵀW dΛ) + Σ_t W′_t P_tt dη̂_t/dψ."""
    k = len(THETA_NAMES[structure])
    theta, beta = params[:k], params[k:]
    n_periods = X.shape[1]
    lam, dlams = random_factor(structure, theta, n_periods)
    q = lam.shape[1]
    fixed = X @ beta + _offset(family, cells)
    u = conditional_modes(family, cells, fixed, lam, np.zeros((X.shape[0], q)) if u is None else u)
    eta = fixed + u @ lam.T
    mean, w, dw = _moments(family, cells, eta)
    e = cells.events - mean
    a_mat = np.eye(q) + np.einsum("tq,it,tr->iqr", lam, w, lam)
    a_inv = np.linalg.inv(a_mat)
    logdet = np.linalg.slogdet(a_mat)[1]
    loglik = cell_loglik(family, cells, eta).sum(axis=1)
    value = float((-2.0 * loglik + (u * u).sum(axis=1) + logdet).sum())
    h = np.einsum("tq,iqr,tr->it", lam, a_inv, lam)
    partial = np.concatenate([np.stack([u @ d.T for d in dlams], axis=2), X], axis=2)
    rhs = -np.einsum("tq,it,itm->iqm", lam, w, partial)
    for m, d in enumerate(dlams):
        rhs[:, :, m] += e @ d
    du = _solve(a_mat, rhs)  # (I, q, k + p)
    deta = partial + np.einsum("tq,iqm->itm", lam, du)
    grad = -2.0 * np.einsum("it,itm->m", e, partial) + np.einsum("it,itm->m", dw * h, deta)
    for m, d in enumerate(dlams):
        grad[m] += 2.0 * float(np.einsum("iqr,tr,it,tq->", a_inv, lam, w, d))
    if points == 1:
        return Deviance(value, grad, u)
    if structure != "hussey_hughes":
        raise ValueError("adaptive quadrature is implemented for a scalar random effect")
    return _agq(theta[0], family, cells, X, fixed, u[:, 0], w, dw, a_mat[:, 0, 0], du, deta, points)


def _agq(tau, family, cells, X, fixed, mode, w, dw, a, du, deta, points) -> Deviance:
    """Adaptive Gauss-Hermite deviance for the scalar cluster effect: nodes û + z_k/√a_i with
    log integrand S_k = log p(y | u_k) − u_k²/2 + z_k²/2, D = Σ_i [log a_i − 2 logΣ_k w_k e^S_k],
    and its gradient from the Laplace pieces (du, deta: (I, 1, m) and (I, T, m)). Node arrays
    are (K, I, ...)."""
    z, logw = gh_rule(points)
    s = a**-0.5  # (I,)
    u_k = mode[None, :] + z[:, None] * s[None, :]  # (K, I)
    eta_k = fixed[None] + tau * u_k[:, :, None]  # (K, I, T)
    big_s = cell_loglik(family, cells, eta_k).sum(axis=2) - 0.5 * u_k**2 + 0.5 * z[:, None] ** 2
    lse = special.logsumexp(logw[:, None] + big_s, axis=0)  # (I,)
    value = float((np.log(a) - 2.0 * lse).sum())
    weight = np.exp(logw[:, None] + big_s - lse[None, :])  # (K, I)
    e_k = cells.events[None] - _moments(family, cells, eta_k)[0]  # (K, I, T)
    da = tau**2 * np.einsum("it,itm->im", dw, deta)
    da[:, 0] += 2.0 * tau * w.sum(axis=1)
    du_k = du[None, :, 0, :] - 0.5 * (z[:, None, None] * s[None, :, None] ** 3) * da[None]
    partial_k = np.concatenate(
        [(u_k * e_k.sum(axis=2))[:, :, None], np.einsum("kit,itp->kip", e_k, X)], axis=2
    )
    resid = tau * e_k.sum(axis=2) - u_k  # d log-integrand / du at the nodes
    ds = partial_k + resid[:, :, None] * du_k
    grad = (da / a[:, None]).sum(axis=0) - 2.0 * np.einsum("ki,kim->m", weight, ds)
    return Deviance(value, grad, mode[:, None])


def _bounds(structure: Structure, p: int) -> list[tuple[float | None, float | None]]:
    """τ and γ are unbounded (the deviance is even in each: |τ| is reported); 0 ≤ r ≤ R_MAX."""
    theta: list[tuple[float | None, float | None]] = [(None, None)]
    theta.append((0.0, R_MAX) if structure == "exponential_decay" else (None, None))
    return theta[: len(THETA_NAMES[structure])] + [(None, None)] * p


def _starts(structure: Structure) -> list[np.ndarray]:
    """Several starting values for θ (never trust one)."""
    if structure == "hussey_hughes":
        return [np.array([s]) for s in (0.1, 0.5, 1.0)]
    second = (0.1, 0.5) if structure == "nested_exchangeable" else (0.3, 0.7, 0.95)
    return [np.array(v) for v in itertools.product((0.2, 0.6), second)]


def glm_start(family: Family, cells: CountCells, X: np.ndarray) -> np.ndarray:
    """Fixed effects of the model without random effects (Newton's method): the β start."""
    x2 = X[cells.observed]
    y, off = cells.events[cells.observed], _offset(family, cells)[cells.observed]
    sub = CountCells(y[None], cells.trials[cells.observed][None], np.ones((1, y.size), bool))
    beta = np.zeros(X.shape[2])
    for _ in range(100):
        mean, w, _ = _moments(family, sub, (x2 @ beta + off)[None])
        step = np.linalg.lstsq(x2.T @ (w[0][:, None] * x2), x2.T @ (y - mean[0]), rcond=None)[0]
        beta += step
        if np.abs(step).max() < 1e-12:
            return beta
    raise FitError("the fixed-effects-only start did not converge (separation?)")


def _projected(x: np.ndarray, grad: np.ndarray, bounds) -> np.ndarray:
    """The gradient with components pushing against an active bound set to zero."""
    out = grad.copy()
    for m, (lo, hi) in enumerate(bounds):
        if (lo is not None and x[m] <= lo and grad[m] > 0) or (
            hi is not None and x[m] >= hi and grad[m] < 0
        ):
            out[m] = 0.0
    return out


def _hessian(fun, x: np.ndarray, free: np.ndarray, bounds) -> np.ndarray:
    """Hessian of the deviance on the free parameters by central differences of the analytic
    gradient (one-sided at a bound)."""
    hess = np.empty((free.size, free.size))
    for col, m in enumerate(free):
        h = 1e-5 * max(abs(x[m]), 0.1)
        up, dn = x.copy(), x.copy()
        lo, hi = bounds[m]
        up[m] = min(x[m] + h, hi) if hi is not None else x[m] + h
        dn[m] = max(x[m] - h, lo) if lo is not None else x[m] - h
        hess[:, col] = ((fun(up).gradient - fun(dn).gradient) / (up[m] - dn[m]))[free]
    return 0.5 * (hess + hess.T)


@dataclass(frozen=True)
class GlmmFit:
    """A maximum-likelihood GLMM fit.

    beta: (p,) fixed effects; vcov: (p, p) the β block of 2H⁻¹, H the Hessian of the deviance
    in (θ, β) at the optimum (lme4's default use.hessian = TRUE; TMB's sdreport likewise);
    theta: (k,) as `random_factor` (τ, γ ≥ 0 reported), named by theta_names; deviance:
    −2 log L with all constants (Laplace or AGQ); gradient: (k + p,) projected gradient at the
    optimum; decrement: Newton decrement (inf when H is not positive definite); converged:
    gradient below GRADIENT_TOL and decrement below DECREMENT_TOL; starts / agreeing: optimiser
    starts and how many reached the best deviance (within 1e-6); boundary: parameters on a
    bound (a zero standard deviation, r = 0 or R_MAX); points: quadrature points."""

    structure: Structure
    family: Family
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
    points: int

    @property
    def components(self) -> dict[str, float]:
        """Variance components: tau2 (cluster), gamma2 (cluster-period) or decay."""
        th = dict(zip(self.theta_names, self.theta.tolist(), strict=True))
        out = {"tau2": th["tau"] ** 2}
        if "gamma" in th:
            out["gamma2"] = th["gamma"] ** 2
        if "decay" in th:
            out["decay"] = th["decay"]
        return out

    @property
    def loglik(self) -> float:
        return -0.5 * self.deviance


def fit_glmm(
    cells: CountCells, X: np.ndarray, structure: Structure, family: Family, points: int = 1
) -> GlmmFit:
    """Maximum likelihood by the Laplace approximation (points = 1) or adaptive Gauss-Hermite
    quadrature (points > 1, hussey_hughes only), on cell counts; X: (I, T, p).

    From each θ start (β from the fixed-effects-only fit) L-BFGS-B minimises the deviance with
    its analytic gradient; the best optimum is polished by Newton steps on a Hessian from
    differenced gradients, which also gives the covariance. Raises FitError when the inner or
    outer iterations fail; `converged` says whether the optimum passed the gradient check."""
    if points > 1 and structure != "hussey_hughes":
        raise ValueError("adaptive quadrature needs the scalar hussey_hughes random effect")
    X = X * cells.observed[:, :, None]
    p, k = X.shape[2], len(THETA_NAMES[structure])
    bounds = _bounds(structure, p)
    beta0 = glm_start(family, cells, X)
    warm: dict[str, np.ndarray | None] = {"u": None}

    def fun(x: np.ndarray) -> Deviance:
        out = deviance(x, structure, family, cells, X, points, warm["u"])
        warm["u"] = out.modes
        return out

    def value_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
        out = fun(x)
        return out.value, out.gradient

    results = []
    for start in _starts(structure):
        warm["u"] = None
        res = optimize.minimize(
            value_grad,
            np.concatenate([start, beta0]),
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 5000, "maxcor": 20},
        )
        if np.isfinite(res.fun):
            results.append((float(res.fun), res.x))
    if not results:
        raise FitError("no optimiser start reached a finite deviance")
    best, x = min(results, key=lambda t: t[0])
    agreeing = sum(abs(v - best) <= 1e-6 for v, _ in results)
    x, decrement, hess, free = _polish(fun, x, bounds)
    final = fun(x)
    proj = _projected(x, final.gradient, bounds)
    cov = np.full((x.size, x.size), np.nan)
    if np.isfinite(decrement):
        cov[np.ix_(free, free)] = 2.0 * np.linalg.inv(hess)
    theta = x[:k].copy()
    theta[0] = abs(theta[0])
    if structure == "nested_exchangeable":
        theta[1] = abs(theta[1])
    names = THETA_NAMES[structure]
    boundary = tuple(
        n
        for m, n in enumerate(names)
        if (n in ("tau", "gamma") and theta[m] < 1e-6)
        or (n == "decay" and (theta[m] <= 0.0 or theta[m] >= R_MAX))
    )
    return GlmmFit(
        structure,
        family,
        x[k:].copy(),
        cov[k:, k:],
        theta,
        names,
        final.value,
        proj,
        decrement,
        bool(np.abs(proj).max() <= GRADIENT_TOL and decrement <= DECREMENT_TOL),
        len(results),
        agreeing,
        boundary,
        points,
    )


def _polish(fun, x: np.ndarray, bounds):
    """Newton steps on the free parameters (off an active bound), accepted while they lower
    the deviance. Returns the parameters, the Newton decrement there (inf if the Hessian is
    not positive definite), that Hessian and the free indices."""
    lo = np.array([-np.inf if b[0] is None else b[0] for b in bounds])
    hi = np.array([np.inf if b[1] is None else b[1] for b in bounds])
    current = fun(x)
    decrement = float("inf")
    for _ in range(20):
        free = np.flatnonzero(_projected(x, current.gradient, bounds) != 0.0)
        free = np.union1d(free, np.flatnonzero((x > lo) & (x < hi)))
        hess = _hessian(fun, x, free, bounds)
        if np.any(np.linalg.eigvalsh(hess) <= 0):
            return x, float("inf"), hess, free
        step = np.zeros_like(x)
        step[free] = -np.linalg.solve(hess, current.gradient[free])
        decrement = float(-current.gradient[free] @ step[free])
        if decrement < 1e-14:
            break
        for _ in range(30):
            trial = np.clip(x + step, lo, hi)
            t_dev = fun(trial)
            if t_dev.value < current.value:
                break
            step /= 2.0
        else:
            break
        x, current = trial, t_dev
    return x, decrement, hess, free


@dataclass(frozen=True)
class Correlations:
    """Latent-scale within-period ICC (τ² + γ²)/(τ² + γ² + π²/3) (logit link; NaN for the log
    link, which has no fixed latent residual variance) and the cluster autocorrelation (CAC:
    τ²/(τ² + γ²) nested exchangeable, r exponential decay, 1 Hussey & Hughes); Eldridge et al.
    2009, Int. Stat. Rev. 77:378–394, for the latent-scale ICC of a binary outcome."""

    icc: float
    cac: float


def correlations(fit: GlmmFit) -> Correlations:
    comp = fit.components
    between = comp["tau2"] + comp.get("gamma2", 0.0)
    icc = between / (between + LOGIT_LATENT_VARIANCE) if fit.family == "binomial" else np.nan
    if fit.structure == "nested_exchangeable":
        cac = comp["tau2"] / between if between > 0 else np.nan
    elif fit.structure == "exponential_decay":
        cac = comp["decay"]
    else:
        cac = 1.0
    return Correlations(float(icc), float(cac))


# --- the estimator on a panel -------------------------------------------------------------

MODEL_LABEL = {
    "hussey_hughes": "Hussey & Hughes (random cluster intercept)",
    "nested_exchangeable": "nested exchangeable (cluster and cluster-period random intercepts)",
    "exponential_decay": "exponential decay of the between-period correlation (Kasza et al.)",
}
SCALE = {"binomial": ("log odds ratio", "odds_ratio"), "poisson": ("log rate ratio", "rate_ratio")}
FAMILY_LABEL = {"binomial": "binomial GLMM, logit link", "poisson": "Poisson GLMM, log link"}
# Default reference: t with I − 2 df, the between-cluster df of the between-within rule for a
# cluster-randomised comparison (Li & Redden 2015, BMC Med. Res. Methodol. 15:38).
DF_RULE = "clusters minus 2 (between-within rule; Li & Redden 2015)"
# A stored count differing from a whole number by more than this is not a count.
WHOLE_TOL = 1e-6


class SteppedWedgeGLMM(SteppedWedgeGlmmOptions):
    """Generalised linear mixed model for a stepped-wedge trial on cluster-period counts:
    `family` binomial (logit; events out of trials) or poisson (log; events in a population,
    offset log n); `model` hussey_hughes | nested_exchangeable | exponential_decay; `effect`
    immediate or exposure_time (headline: TATE over exposure times 1..`tate_window`).
    Estimates are log odds ratios or log rate ratios (the ratios are in the diagnostics).

    `quadrature_points`: 1 = Laplace; K > 1 adaptive Gauss-Hermite with K points
    (hussey_hughes only, as glmer's nAGQ). Inference: Wald with the model-based covariance
    (Hessian of the deviance in (θ, β), as lme4); "default" uses a t reference with I − 2 df
    (DF_RULE), "model_based" the normal reference."""

    def fit(
        self, panel: ValidatedPanel, outcome: str, analysis_id: str, level: float = 0.95
    ) -> EffectEstimates:
        counts = count_arrays(panel.outcome_cells(outcome), panel.periods, self.family)
        trial = counts.trial
        fe = fixed_effects(trial.cells.observed, trial.start, self.effect)
        check_design(trial, fe)
        contrasts = effect_contrasts(fe, self.effect, self.tate_window)
        try:
            fit = fit_glmm(counts.cells, fe.X, self.model, self.family, self.quadrature_points)
        except FitError as exc:
            raise EstimationError(
                f"the {self.family} {self.model} GLMM could not be fitted ({exc})",
                where="options.model",
                fix="try a simpler random-effects structure (hussey_hughes), or check for "
                "cells with all or no events throughout",
            ) from exc
        if not fit.converged:
            raise EstimationError(
                f"the maximum-likelihood fit of the {self.family} {self.model} GLMM did not "
                f"converge (largest projected gradient {np.abs(fit.gradient).max():.2g}, "
                f"Newton decrement {fit.decrement:.2g})",
                where="options.model",
                fix="try a simpler random-effects structure (hussey_hughes) or check the data",
            )
        choice = fixed_default(self.inference.method, "between_within_t")
        t_reference = choice.method == "between_within_t"
        df = float(len(trial.clusters) - 2) if t_reference else np.inf
        rows = wald_rows(fit, contrasts, df, level, SCALE[self.family][0])
        warns = []
        if fit.boundary:
            warns.append(
                f"Variance parameter(s) {', '.join(fit.boundary)} estimated on the boundary "
                "of the parameter space (e.g. a zero variance): the fit is singular."
            )
        diag = glmm_diagnostics(fit, counts, fe, panel, self.effect, contrasts, rows, df, level)
        return EffectEstimates(
            analysis_id=analysis_id,
            outcome=outcome,
            estimator=self.name,
            inference=InferenceUsed(
                key="glmm_t" if t_reference else "glmm_normal",
                label=f"{FAMILY_LABEL[self.family]}, {MODEL_LABEL[self.model]}; "
                f"{_method_label(fit, df)}",
                chosen_by_default=choice.chosen_by_default,
            ),
            table=estimates_table(rows),
            level=level,
            vcov=fit.vcov[np.ix_(fe.effect, fe.effect)],
            n_units=len(trial.clusters),
            n_treated=int((trial.start < len(panel.periods)).sum()),
            n_obs=int(trial.cells.observed.sum()),
            diagnostics=MappingProxyType(diag),
            warnings=tuple(warns),
        )


def _method_label(fit: GlmmFit, df: float) -> str:
    how = (
        "Laplace approximation"
        if fit.points == 1
        else f"adaptive Gauss-Hermite quadrature ({fit.points} points)"
    )
    ref = f"t reference, {DF_RULE}" if np.isfinite(df) else "normal reference"
    return f"maximum likelihood ({how}); Wald, model-based SE (Hessian in θ and β), {ref}"


@dataclass(frozen=True)
class TrialCounts:
    """A trial's counts on the clusters × periods grid: `cells` for the GLMM and `trial`
    (cell proportions as means, sizes, start periods) for the shared design checks."""

    cells: CountCells
    trial: TrialArrays


def count_arrays(cells: pd.DataFrame, periods: tuple[int, ...], family: Family) -> TrialCounts:
    """Events and trials (or population) of one outcome from panel cells: events from the
    `numerator` column where present, else y × denominator, which must be whole."""
    den = cells["denominator"]
    if (den.isna() | (den <= 0)).any():
        bad = cells[den.isna() | (den <= 0)].iloc[0]
        raise EstimationError(
            f"cell {bad['unit']}, period {bad['period']} has no trials or population "
            "(denominator missing or not positive)",
            where="column denominator",
            fix="supply each cell's number of individuals (binomial) or population (poisson), "
            "and drop empty cells",
        )
    events = cells["numerator"].where(cells["numerator"].notna(), cells["y"] * den)
    column = "numerator" if cells["numerator"].notna().all() else "y"
    checks = [(events, column)] + ([(den, "denominator")] if family == "binomial" else [])
    for values, col in checks:
        frac = (values - values.round()).abs() > WHOLE_TOL * np.maximum(1.0, values.abs())
        neg = values < 0
        if (frac | neg | values.isna()).any():
            bad = cells[frac | neg | values.isna()].iloc[0]
            raise EstimationError(
                f"cell {bad['unit']}, period {bad['period']}: {col} gives "
                f"{values[frac | neg | values.isna()].iloc[0]!r}, not a whole number of "
                f"{'events' if col != 'denominator' else 'trials'} at least 0",
                where=f"column {col}",
                fix="supply event counts in the numerator column (a GLMM models counts, not "
                "rates or percentages)",
            )
    events = events.round()
    if family == "binomial" and (events > den.round()).any():
        bad = cells[events > den.round()].iloc[0]
        raise EstimationError(
            f"cell {bad['unit']}, period {bad['period']} has more events than trials",
            where="column numerator",
            fix="check the numerator and denominator columns, or use family: poisson for "
            "events in a population",
        )
    clusters = tuple(sorted(set(cells["unit"])))
    row = pd.Index(clusters).get_indexer(cells["unit"])
    col = pd.Index(periods).get_indexer(cells["period"])
    shape = (len(clusters), len(periods))
    y, n = np.zeros(shape), np.zeros(shape)
    y[row, col] = events.to_numpy(float)
    n[row, col] = den.to_numpy(float)
    observed = n > 0
    cohort = cells.groupby("unit")["cohort"].first().reindex(list(clusters)).to_numpy(float)
    start = np.array(
        [len(periods) if np.isnan(c) else int(np.searchsorted(periods, c)) for c in cohort]
    )
    mean = np.divide(y, n, out=np.zeros(shape), where=observed)
    summaries = CellSummaries(mean, n, np.zeros(shape), observed)
    return TrialCounts(
        CountCells(y, n, observed), TrialArrays(summaries, start, clusters, tuple(periods))
    )


def wald_rows(
    fit: GlmmFit,
    contrasts: dict[str, Contrast],
    df: float,
    level: float,
    scale: str,
) -> list[dict[str, Any]]:
    """One row per contrast on the log scale (log odds or rate ratio): Wald statistic, t(df)
    or normal reference."""
    rows = []
    for term, contrast in contrasts.items():
        lvec = contrast.vector
        est = float(lvec @ fit.beta)
        se = float(np.sqrt(lvec @ fit.vcov @ lvec))
        rows.append(wald_row(f"{term}, {scale}", est, se, df, level, contrast))
    return rows


def glmm_diagnostics(
    fit: GlmmFit,
    counts: TrialCounts,
    fe: FixedEffects,
    panel: ValidatedPanel,
    shape: Shape,
    contrasts: dict[str, Contrast],
    rows: list[dict[str, Any]],
    df: float,
    level: float,
) -> dict[str, Any]:
    """JSON-ready facts: model, estimation, variance components, latent ICC/CAC, likelihood,
    convergence, the ratios with their intervals, and the design summary."""
    corr = correlations(fit)
    ratio = SCALE[fit.family][1]
    return {
        "model": fit.structure,
        "family": fit.family,
        "link": "logit" if fit.family == "binomial" else "log (offset log n)",
        "effect_shape": shape,
        "period_effects": "categorical",
        "estimation": "maximum likelihood, "
        + (
            "Laplace approximation"
            if fit.points == 1
            else f"adaptive Gauss-Hermite quadrature ({fit.points} points)"
        ),
        "quadrature_points": fit.points,
        "vcov_method": "fixed-effect block of 2H⁻¹, H the Hessian of the deviance in (θ, β) "
        "(lme4 use.hessian = TRUE)",
        "df_method": DF_RULE if np.isfinite(df) else "normal reference",
        "df": df,
        "variance_components": fit.components,
        "icc_latent": corr.icc,
        "icc_scale": "latent (logistic residual variance π²/3)"
        if fit.family == "binomial"
        else "not defined for the log link",
        "cac": corr.cac,
        "loglik": fit.loglik,
        "deviance": fit.deviance,
        "convergence": {
            "converged": fit.converged,
            "max_abs_gradient": float(np.abs(fit.gradient).max()),
            "newton_decrement": fit.decrement,
            "starts": fit.starts,
            "starts_at_optimum": fit.agreeing,
            "boundary": list(fit.boundary),
        },
        ratio: {
            row["term"]: {
                "estimate": float(np.exp(row["estimate"])),
                "ci": [float(np.exp(row["ci_lower"])), float(np.exp(row["ci_upper"]))],
                "level": level,
            }
            for row in rows
        },
        "design": design_summary(counts.trial, panel)
        | {
            "events": float(counts.cells.events.sum()),
            "trials" if fit.family == "binomial" else "population": float(
                counts.cells.trials.sum()
            ),
        },
        "contrasts": contrast_weights(fe, contrasts),
    }
