"""The bounded Newton polish shared by the three mixed-model fits (LMM on cells, LMM on records,
GLMM): after a quasi-Newton optimiser stops (it stops early where the likelihood is flat, e.g.
in a decay parameter), Newton steps on the parameters off their bounds, with the Hessian by
central differences of the analytic gradient, accepted while they lower the objective. The
Newton decrement gᵀH⁻¹g at the end certifies the optimum (inf: the Hessian on the free
parameters is not positive definite, so the point is not a minimum)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Objective = Callable[[np.ndarray], tuple[float, np.ndarray]]
# Accept a step that does not lower the objective? Called with the trial point, its value and
# gradient, the current point, its value and gradient, and the free indices.
FlatRule = Callable[
    [np.ndarray, float, np.ndarray, np.ndarray, float, np.ndarray, np.ndarray], bool
]

MAX_STEPS = 20
MAX_HALVINGS = 30


@dataclass(frozen=True)
class Polished:
    """x: (k,) the parameters; decrement: the Newton decrement there; hessian: (f, f) on the
    free parameters `free` (f,) of the last step."""

    x: np.ndarray
    decrement: float
    hessian: np.ndarray
    free: np.ndarray


def projected_gradient(
    x: np.ndarray, grad: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """The gradient with the components that push against an active bound set to zero."""
    out = grad.copy()
    out[((x <= lo) & (grad > 0)) | ((x >= hi) & (grad < 0))] = 0.0
    return out


def gradient_hessian(
    gradient: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    free: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    step: tuple[float, float],
    clip_upper: bool,
) -> np.ndarray:
    """Hessian on the free parameters by central differences of the analytic gradient, with
    step rel·max(|x|, floor) (`step` = (rel, floor)), one-sided at the lower bound (and at the
    upper one when `clip_upper`); symmetrised."""
    rel, floor = step
    hess = np.empty((free.size, free.size))
    for col, k in enumerate(free):
        h = rel * max(abs(x[k]), floor)
        up, dn = x.copy(), x.copy()
        up[k] = min(x[k] + h, hi[k]) if clip_upper else x[k] + h
        dn[k] = max(x[k] - h, lo[k])
        hess[:, col] = ((gradient(up) - gradient(dn)) / (up[k] - dn[k]))[free]
    return 0.5 * (hess + hess.T)


def newton_polish(
    x: np.ndarray,
    objective: Objective,
    lo: np.ndarray,
    hi: np.ndarray,
    hessian: Callable[[np.ndarray, np.ndarray], np.ndarray],
    tol: float,
    flat: FlatRule | None = None,
    interior_free: bool = False,
) -> Polished:
    """Newton steps from `x` on the free parameters (those whose projected gradient is not zero,
    and with `interior_free` also those strictly inside their bounds), halving each step until
    the objective falls (or `flat` accepts it: below rounding the objective cannot fall), until
    the decrement is below `tol`."""
    value, grad = objective(x)
    decrement = float("inf")
    hess, free = np.empty((0, 0)), np.empty(0, dtype=int)
    for _ in range(MAX_STEPS):
        free = np.flatnonzero(projected_gradient(x, grad, lo, hi) != 0.0)
        if interior_free:
            free = np.union1d(free, np.flatnonzero((x > lo) & (x < hi)))
        elif free.size == 0:
            return Polished(x, 0.0, hess, free)
        hess = hessian(x, free)
        if np.any(np.linalg.eigvalsh(hess) <= 0):
            return Polished(x, float("inf"), hess, free)
        step = np.zeros_like(x)
        step[free] = -np.linalg.solve(hess, grad[free])
        decrement = float(-grad[free] @ step[free])
        if decrement < tol:
            break
        for _ in range(MAX_HALVINGS):
            trial = np.clip(x + step, lo, hi)
            t_value, t_grad = objective(trial)
            if t_value < value or (
                flat is not None and flat(trial, t_value, t_grad, x, value, grad, free)
            ):
                break
            step /= 2.0
        else:
            break
        x, value, grad = trial, t_value, t_grad
    return Polished(x, decrement, hess, free)
