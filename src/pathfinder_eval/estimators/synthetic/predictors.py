"""Synthetic control weights from predictors with a data-driven predictor weighting V
(Abadie, Diamond & Hainmueller 2010, JASA 105:493–505, section 2.3; Abadie & Gardeazabal 2003).

W*(V) = argmin_W (X₁ − X₀W)ᵀ V (X₁ − X₀W) over the simplex, with predictors standardised by
their SD across units; V (diagonal, summing to one) minimises the pre-period outcome MSPE of
W*(V). V is searched by Nelder–Mead on a softmax parameterisation starting from equal weights,
so the chosen V never fits the pre-period worse than equal weighting.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

from pathfinder_eval.estimators.synthetic.core import simplex_weights


@dataclass(frozen=True)
class PredictorFit:
    """omega: (N0,) donor weights; v: (k,) predictor weights; pre_mspe: outcome MSPE before
    the start with these weights; equal_v_mspe: the same with equal predictor weights."""

    omega: np.ndarray
    v: np.ndarray
    pre_mspe: float
    equal_v_mspe: float


def fixed_v_weights(xs: np.ndarray, x1s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """W*(V) for standardised predictors xs (k, N0) and target x1s (k,)."""
    root = np.sqrt(v)[:, None]
    y = np.column_stack([root * xs, root[:, 0] * x1s])
    scale = float(np.std(xs)) or 1.0
    start = np.full(xs.shape[1], 1.0 / xs.shape[1])
    omega, _ = simplex_weights(y, 1e-6 * scale, False, start, 1e-5 * scale)
    return omega


def predictor_weights(
    x1: np.ndarray,
    x0: np.ndarray,
    y1_pre: np.ndarray,
    y0_pre: np.ndarray,
    max_evaluations: int = 400,
) -> PredictorFit:
    """x1: (k,) treated predictors; x0: (k, N0) donors'; y1_pre: (T0,); y0_pre: (N0, T0)."""
    sd = np.concatenate([x0, x1[:, None]], axis=1).std(axis=1)
    sd[sd == 0] = 1.0
    xs, x1s = x0 / sd[:, None], x1 / sd

    def mspe_of(v: np.ndarray) -> tuple[float, np.ndarray]:
        omega = fixed_v_weights(xs, x1s, v)
        gap = y1_pre - omega @ y0_pre
        return float(gap @ gap / len(gap)), omega

    def softmax(theta: np.ndarray) -> np.ndarray:
        e = np.exp(theta - theta.max())
        return e / e.sum()

    k = len(x1)
    equal = np.full(k, 1.0 / k)
    equal_mspe, equal_omega = mspe_of(equal)
    if k == 1:
        return PredictorFit(equal_omega, equal, equal_mspe, equal_mspe)
    res = optimize.minimize(
        lambda th: mspe_of(softmax(th))[0],
        np.zeros(k),
        method="Nelder-Mead",
        options={"maxfev": max_evaluations, "xatol": 1e-4, "fatol": 1e-10},
    )
    v = softmax(res.x)
    mspe, omega = mspe_of(v)
    if mspe > equal_mspe:  # the search never does worse than its starting point
        v, mspe, omega = equal, equal_mspe, equal_omega
    return PredictorFit(omega, v, mspe, equal_mspe)
