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
  of the AR(1) correlation r^|j−l| (glmmTMB's ar1(0 + period | cluster));
- a cluster intercept plus decaying cluster-period effects: Λ = [τ·1 | γ·L(r)] (q = T + 1;
  glmmTMB's (1 | cluster) + ar1(0 + period | cluster)).

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

import numpy as np
from scipy import optimize, special

from pathfinder_eval.estimators.stepped_wedge.optimise import (
    gradient_hessian,
    newton_polish,
    projected_gradient,
)
from pathfinder_eval.settings import GlmmFamily as Family
from pathfinder_eval.settings import GlmmStructure as Structure

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
# ... or the Newton step below this in every parameter (glmer's relative-gradient check, the
# same step, allows 2e-3).
NEWTON_STEP_TOL = 1e-5


# Inner Newton on the conditional modes: stop when the largest step is this small.
MODE_STEP_TOL = 1e-11
# The Newton polish (optimise.py): stop below this decrement; the Hessian's difference step
# rel·max(|x|, floor).
POLISH_TOL = 1e-14
HESSIAN_STEP = (1e-5, 0.1)


MODE_MAX_ITER = 100


THETA_NAMES: dict[str, tuple[str, ...]] = {
    "hussey_hughes": ("tau",),
    "nested_exchangeable": ("tau", "gamma"),
    "exponential_decay": ("tau", "decay"),
    "cluster_plus_decay": ("tau", "gamma", "decay"),
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
    θ: hussey_hughes (τ), nested_exchangeable (τ, γ), exponential_decay (τ, r),
    cluster_plus_decay (τ, γ, r); τ and γ are standard deviations (the likelihood is even in
    each)."""
    ones = np.ones((n_periods, 1))
    if structure == "hussey_hughes":
        return theta[0] * ones, [ones]
    if structure == "nested_exchangeable":
        eye = np.eye(n_periods)
        zero1, zero_t = np.zeros((n_periods, 1)), np.zeros((n_periods, n_periods))
        lam = np.hstack([theta[0] * ones, theta[1] * eye])
        return lam, [np.hstack([ones, zero_t]), np.hstack([zero1, eye])]
    if structure == "cluster_plus_decay":
        chol, d_chol = ar1_factor(float(theta[2]), n_periods)
        zero1, zero_t = np.zeros((n_periods, 1)), np.zeros((n_periods, n_periods))
        lam = np.hstack([theta[0] * ones, theta[1] * chol])
        derivs = [
            np.hstack([ones, zero_t]),
            np.hstack([zero1, chol]),
            np.hstack([zero1, theta[1] * d_chol]),
        ]
        return lam, derivs
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
    theta = [(0.0, R_MAX) if n == "decay" else (None, None) for n in THETA_NAMES[structure]]
    return theta + [(None, None)] * p


def _starts(structure: Structure) -> list[np.ndarray]:
    """Several starting values for θ (never trust one)."""
    if structure == "hussey_hughes":
        return [np.array([s]) for s in (0.1, 0.5, 1.0)]
    if structure == "cluster_plus_decay":
        return [np.array(v) for v in itertools.product((0.2, 0.6), (0.2, 0.6), (0.3, 0.8))]
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


@dataclass(frozen=True)
class GlmmFit:
    """A maximum-likelihood GLMM fit.

    beta: (p,) fixed effects; vcov: (p, p) the β block of 2H⁻¹, H the Hessian of the deviance
    in (θ, β) at the optimum (lme4's default use.hessian = TRUE; TMB's sdreport likewise);
    theta: (k,) as `random_factor` (τ, γ ≥ 0 reported), named by theta_names; deviance:
    −2 log L with all constants (Laplace or AGQ); gradient: (k + p,) projected gradient at the
    optimum; decrement: Newton decrement (inf when H is not positive definite); converged:
    decrement below DECREMENT_TOL, and the gradient below GRADIENT_TOL or its Newton step below
    NEWTON_STEP_TOL (`_converged`); starts / agreeing: optimiser
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
        try:  # a line-search step so long that the means overflow has no deviance: the
            # search steps back (it failed with 'Singular matrix' in the modes' Newton step)
            with np.errstate(over="ignore", invalid="ignore"):
                out = deviance(x, structure, family, cells, X, points, warm["u"])
        except np.linalg.LinAlgError:
            return Deviance(np.inf, np.zeros(x.size), warm["u"])
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
    proj = projected_gradient(x, final.gradient, *_limits(bounds))
    cov = np.full((x.size, x.size), np.nan)
    if np.isfinite(decrement):
        cov[np.ix_(free, free)] = 2.0 * np.linalg.inv(hess)
    theta = x[:k].copy()
    theta[0] = abs(theta[0])
    if structure in ("nested_exchangeable", "cluster_plus_decay"):
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
        _converged(proj, decrement, hess, free),
        len(results),
        agreeing,
        boundary,
        points,
    )


def _converged(proj: np.ndarray, decrement: float, hess: np.ndarray, free: np.ndarray) -> bool:
    """The Newton decrement below DECREMENT_TOL, and the projected gradient below GRADIENT_TOL
    or the Newton step it implies (H⁻¹g on the free parameters) below NEWTON_STEP_TOL in every
    parameter: a large cluster variance (clusters without events) leaves a direction so flat
    that a gradient of 3e-5 is a step of 1e-7 (glmer and glmmTMB agree with such fits; found in
    review)."""
    if not decrement <= DECREMENT_TOL:
        return False
    if np.abs(proj).max() <= GRADIENT_TOL:
        return True
    step = np.abs(proj)  # 0 at an active bound
    step[free] = np.abs(np.linalg.solve(hess, proj[free]))
    return bool(step.max() <= NEWTON_STEP_TOL)


def _polish(fun, x: np.ndarray, bounds):
    """Newton steps on the free parameters (off an active bound, or inside their bounds),
    accepted while they lower the deviance (optimise.newton_polish). Returns the parameters,
    the Newton decrement there (inf if the Hessian is not positive definite), that Hessian and
    the free indices."""
    lo, hi = _limits(bounds)

    def objective(p: np.ndarray) -> tuple[float, np.ndarray]:
        d = fun(p)
        return d.value, d.gradient

    def hessian(p: np.ndarray, free: np.ndarray) -> np.ndarray:
        return gradient_hessian(lambda q: fun(q).gradient, p, free, lo, hi, HESSIAN_STEP, True)

    done = newton_polish(x, objective, lo, hi, hessian, POLISH_TOL, interior_free=True)
    return done.x, done.decrement, done.hessian, done.free


def _limits(bounds) -> tuple[np.ndarray, np.ndarray]:
    """Bounds as arrays, None as ∓inf."""
    lo = np.array([-np.inf if b[0] is None else b[0] for b in bounds])
    hi = np.array([np.inf if b[1] is None else b[1] for b in bounds])
    return lo, hi


@dataclass(frozen=True)
class Correlations:
    """Latent-scale within-period ICC (τ² + γ²)/(τ² + γ² + π²/3) (logit link; NaN for the log
    link, which has no fixed latent residual variance) and the cluster autocorrelation (CAC:
    τ²/(τ² + γ²) nested exchangeable, r exponential decay, (τ² + γ²r)/(τ² + γ²) one period
    apart for cluster_plus_decay, 1 Hussey & Hughes); Eldridge et al.
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
    elif fit.structure == "cluster_plus_decay":
        r = comp["decay"]
        cac = (comp["tau2"] + comp["gamma2"] * r) / between if between > 0 else np.nan
    else:
        cac = 1.0
    return Correlations(float(icc), float(cac))
