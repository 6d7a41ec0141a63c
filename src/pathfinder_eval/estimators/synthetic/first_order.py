"""The first-order weights of a synthetic DiD estimate on every outcome, weight estimation
included: ∂θ̂/∂Y, for the delta-method (linearised) variance.

θ̂ = (treated − ω-weighted donors) × (post mean − λ-weighted pre periods) holds the data twice:
as the outcomes it contrasts and through the weights ω and λ, which are fitted to the same
outcomes (and ζ_ω to their noise level σ̂). Holding ω and λ fixed gives the bilinear weights
outer(unit contrast, time contrast); a variance built on them leaves out the noise the weights
pick up from the pre-period data, which matters when the donors that get weight share shocks
with the treated units (one region). Here each weight vector is the exact minimiser of its
penalised least-squares problem over the simplex, so on its support it solves the linear KKT
system of an equality-constrained problem and moves smoothly with the data; the implicit
function theorem gives its derivative, and the chain rule the total derivative of θ̂:

    ∂θ̂/∂Y = outer(u, τ) + (∂θ̂/∂ω)·∂ω/∂Y + (∂θ̂/∂λ)·∂λ/∂Y + (∂θ̂/∂σ̂²)·∂σ̂²/∂Y,

each product formed by one adjoint solve. θ̂ is homogeneous of degree one in Y and unchanged by
unit effects, so the weights reproduce it (Σ W·Y = θ̂) and sum to zero over each unit
(tests/test_synthdid.py checks both and finite differences). Over each period they sum to zero
up to the term through σ̂, whose pooled first differences period effects do move. The
estimate itself keeps synthdid's Frank–Wolfe weights; the derivative is taken at the exact
optimum on their support, which they approximate to the solver's tolerance.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.estimators.synthetic.core import TINY_ZETA, SDIDFit

_MAX_SWEEPS = 200  # active-set changes; the Frank–Wolfe support is nearly right
_MAX_CONDITION = 1e10  # beyond, the derivative is rounding noise (it grows as 1/η)


def first_order_weights(y: np.ndarray, n0: int, t0: int, fit: SDIDFit) -> np.ndarray:
    """(N, T) ∂θ̂/∂Y of a synthetic DiD or DiD `fit` on the block `y` (controls in rows
    0..n0−1, pre periods in columns 0..t0−1), at the exact optimum of its weight problems (see
    module doc). DiD's fixed uniform weights are their own derivative; synthetic control's
    unregularised weights are not a smooth function of the data (its default inference does
    not use them)."""
    if fit.method == "did":
        return fixed_weights(y, n0, t0, fit)
    n, periods = y.shape
    n1, t1 = n - n0, periods - t0
    if fit.method != "sdid":
        raise ValueError(f"first-order weights are defined for sdid and did, not {fit.method}")
    # θ̂ is homogeneous of degree one, so its derivative is unit-free: work in units of σ̂,
    # where the KKT systems are well scaled whatever the outcome's magnitude
    # (σ̂ = 1 from here on)
    y = y / fit.noise_level
    # time weights: the donors' post means on their pre periods, across donors; ζ = 10⁻⁶σ̂
    lam_problem = _SimplexProblem(
        y[:n0, :t0], y[:n0, t0:].mean(axis=1), n0 * TINY_ZETA**2, fit.lambda_
    )
    # unit weights: the treated mean on the donors, across pre periods; ζ² = √(N₁T₁)·σ̂²
    zeta2_per_sigma2 = np.sqrt(n1 * t1)
    omega_problem = _SimplexProblem(
        y[:n0, :t0].T, y[n0:, :t0].mean(axis=0), t0 * zeta2_per_sigma2, fit.omega
    )
    unit = _unit_contrast(omega_problem.x, n1)
    time = _time_contrast(lam_problem.x, t1)
    grad = np.outer(unit, time)
    # through ω: ∂θ̂/∂ω_i = −(donor i's outcomes · time contrast)
    d_a, d_b, d_eta = omega_problem.adjoint(-(y[:n0] @ time))
    grad[:n0, :t0] += d_a.T
    grad[n0:, :t0] += d_b / n1
    d_sigma2 = d_eta * t0 * zeta2_per_sigma2
    # through λ: ∂θ̂/∂λ_t = −(unit contrast · period t's outcomes)
    d_a, d_b, d_eta = lam_problem.adjoint(-(unit @ y[:, :t0]))
    grad[:n0, :t0] += d_a
    grad[:n0, t0:] += d_b[:, None] / t1
    d_sigma2 += d_eta * n0 * TINY_ZETA**2
    # through σ̂²: the sample variance of the donors' pre-period first differences
    diffs = np.diff(y[:n0, :t0], axis=1)
    if diffs.size > 1:
        g = d_sigma2 * 2.0 * (diffs - diffs.mean()) / (diffs.size - 1)
        grad[:n0, 1:t0] += g
        grad[:n0, : t0 - 1] -= g
    return grad


def variance_weights(y: np.ndarray, n0: int, t0: int, fit: SDIDFit) -> tuple[np.ndarray, str]:
    """The weights a pooled variance should use, and why they are held fixed ("" when not):
    the first-order weights, or the fixed-weight contrast where a weight problem is too near
    singular to differentiate."""
    try:
        return first_order_weights(y, n0, t0, fit), ""
    except EstimationError as exc:
        return fixed_weights(y, n0, t0, fit), exc.what


def fixed_weights(y: np.ndarray, n0: int, t0: int, fit: SDIDFit) -> np.ndarray:
    """(N, T) the estimate's weights with ω and λ held fixed: outer(unit contrast, time
    contrast)."""
    n1, t1 = y.shape[0] - n0, y.shape[1] - t0
    return np.outer(_unit_contrast(fit.omega, n1), _time_contrast(fit.lambda_, t1))


def _unit_contrast(omega: np.ndarray, n1: int) -> np.ndarray:
    return np.append(-omega, np.full(n1, 1.0 / n1))


def _time_contrast(lam: np.ndarray, t1: int) -> np.ndarray:
    return np.append(-lam, np.full(t1, 1.0 / t1))


class _SimplexProblem:
    """min over the simplex of ‖Ã x − b̃‖² + η‖x‖², Ã and b̃ centred over rows (which
    profiles out synthdid's free intercept), solved exactly by active-set steps from the
    support of `start`."""

    def __init__(self, a: np.ndarray, b: np.ndarray, eta: float, start: np.ndarray) -> None:
        self.a, self.b = a - a.mean(axis=0), b - b.mean()
        self.support, self.x, self._hessian = _solve(self.a, self.b, eta, start > 0)

    def adjoint(self, da_dx: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """For a function f of x with gradient `da_dx`: ∂f/∂A (rows × columns), ∂f/∂b and
        ∂f/∂η through x(A, b, η); zero on columns outside the support."""
        s = self.support
        v = _kkt_solve(self._hessian, da_dx[s], 0.0)[0]
        a_s = self.a[:, s]
        resid = self.b - a_s @ self.x[s]
        av = a_s @ v
        d_a = np.zeros_like(self.a)
        d_a[:, s] = np.outer(resid, v) - np.outer(av, self.x[s])
        return d_a, av, float(-v @ self.x[s])


def _kkt_solve(hessian: np.ndarray, rhs: np.ndarray, total: float) -> tuple[np.ndarray, float]:
    """x and μ with hessian·x + μ·1 = rhs and 1ᵀx = total (hessian positive definite), by
    the Schur complement on a Cholesky factor."""
    factor = linalg.cho_factor(hessian)
    h_rhs = linalg.cho_solve(factor, rhs)
    h_one = linalg.cho_solve(factor, np.ones(len(rhs)))
    mu = (h_rhs.sum() - total) / h_one.sum()
    return h_rhs - mu * h_one, float(mu)


def _solve(
    a: np.ndarray, b: np.ndarray, eta: float, support: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The exact simplex-constrained minimiser: solve the KKT system on the support, drop a
    column whose weight goes negative, add the column that most violates optimality, repeat.
    Returns the support, the weights and the Hessian on the support; refuses a problem whose
    Hessian is too near singular for a derivative to mean anything."""
    support = support.copy()
    if not support.any():
        support[0] = True
    gram, cross = a.T @ a, a.T @ b
    k = a.shape[1]
    for _ in range(_MAX_SWEEPS):
        s = np.flatnonzero(support)
        hessian = gram[np.ix_(s, s)] + eta * np.eye(len(s))
        try:
            xs, mu = _kkt_solve(hessian, cross[s], 1.0)
        except linalg.LinAlgError:
            break
        if (xs < 0).any():
            support[s[np.argmin(xs)]] = False
            continue
        x = np.zeros(k)
        x[s] = xs
        # optimality off the support: Ãⱼᵀ(Ãx − b̃) + μ ≥ 0
        slack = gram @ x - cross + mu
        slack[support] = np.inf
        j = int(np.argmin(slack))
        if slack[j] >= -1e-10 * float(np.abs(cross).max(initial=1e-300)):
            if abs(xs.sum() - 1.0) > 1e-8 or np.linalg.cond(hessian) > _MAX_CONDITION:
                break
            return s, x, hessian
        support[j] = True
    raise EstimationError(
        "synthetic DiD's weights could not be differentiated: their least-squares problem is "
        "too near singular (e.g. donors whose pre-period series differ only by constants)",
        where="inference",
    )
