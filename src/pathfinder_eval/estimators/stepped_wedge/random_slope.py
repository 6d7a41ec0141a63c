"""The random_slope structure's pieces (lmm.py): each cluster's covariance Σ_i = Z_iGZ_iᵀ + γ²I
with Z_i = [1, x_i] and G = [[τ², κ], [κ, ω²]], and lme4/lmerTest's Cholesky coordinates of G, in
which the optimiser keeps G positive semi-definite and lmerTest computes Satterthwaite df."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def slope_sigma(theta: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """random_slope: Σ_i (I, T, T) at natural θ = (τ², κ, ω², γ²) and its derivatives, each
    (I, T, T): J, x1ᵀ + 1xᵀ, xxᵀ, I (linear in θ)."""
    n_periods = x.shape[1]
    ones = np.ones((x.shape[0], n_periods, n_periods))
    cross = x[:, :, None] + x[:, None, :]
    outer = x[:, :, None] * x[:, None, :]
    eye = np.broadcast_to(np.eye(n_periods), ones.shape)
    first = [ones, cross, outer, eye]
    return sum(t * d for t, d in zip(theta, first, strict=True)), first


def cholesky_of(phi: np.ndarray) -> np.ndarray:
    """random_slope: the optimiser's (a, b, d, g) with G/σ² = [[a², ab], [ab, b² + d²]] from
    relative (τ², κ, ω², γ²)/σ² (G projected on the PSD cone)."""
    a = np.sqrt(max(phi[0], 0.0))
    b = phi[1] / a if a > 0 else 0.0
    return np.array([a, b, np.sqrt(max(phi[2] - b * b, 0.0)), phi[3]])


@dataclass(frozen=True)
class CholeskyCoordinates:
    """random_slope's variance parameters in lme4/lmerTest's coordinates u = (l11, l21, l22,
    l_γ, σ²): G/σ² = LLᵀ, γ²/σ² = l_γ². jacobian: (k, k) ∂θ/∂u; hessian: (k, k) the REML
    deviance's Hessian in u, Jᵀ H_θ J + Σ_m (∂D/∂θ_m) ∂²θ_m/∂u² (the second term is not zero
    where the optimum is constrained); free: (k,) False where u is on its bound (l11, l22 or
    l_γ at 0: a zero intercept variance, a correlation of ±1, a zero cluster-period variance),
    where ∂θ/∂u vanishes and lmerTest's Hessian has a null direction."""

    jacobian: np.ndarray
    hessian: np.ndarray
    free: np.ndarray


def cholesky_coordinates(
    theta: np.ndarray, hessian: np.ndarray, grad: np.ndarray
) -> CholeskyCoordinates:
    """`CholeskyCoordinates` at natural θ = (τ², κ, ω², γ², σ²) from the deviance's Hessian and
    gradient in θ."""
    s = theta[-1]
    a, b, d, g = cholesky_of(theta[:-1] / s)
    g = np.sqrt(g)
    jac = np.array(
        [
            [2 * s * a, 0, 0, 0, a * a],
            [s * b, s * a, 0, 0, a * b],
            [0, 2 * s * b, 2 * s * d, 0, b * b + d * d],
            [0, 0, 0, 2 * s * g, g * g],
            [0, 0, 0, 0, 1.0],
        ]
    )
    curv = np.zeros((5, 5, 5))  # ∂²θ_m/∂u_i∂u_j, u = (a, b, d, g, s)
    curv[0][0, 0], curv[0][0, 4] = 2 * s, 2 * a
    curv[1][0, 1], curv[1][0, 4], curv[1][1, 4] = s, b, a
    curv[2][1, 1], curv[2][2, 2], curv[2][1, 4], curv[2][2, 4] = 2 * s, 2 * s, 2 * b, 2 * d
    curv[3][3, 3], curv[3][3, 4] = 2 * s, 2 * g
    curv = curv + np.swapaxes(curv, 1, 2) * (1 - np.eye(5))  # fill the symmetric halves
    h_u = jac.T @ hessian @ jac + np.einsum("m,mij->ij", grad, curv)
    free = np.array([a > 0, True, d > 0, g > 0, True])
    return CholeskyCoordinates(jac, 0.5 * (h_u + h_u.T), free)
