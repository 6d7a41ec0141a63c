"""CR2 (bias-reduced linearisation) sandwich for the stepped-wedge GEE, with its Satterthwaite
degrees of freedom, as R's clubSandwich computes them for a geeglm fit (vcovCR type "CR2" with
the working covariance as target, and coef_test's "Satterthwaite"; Bell & McCaffrey 2002;
Pustejovsky & Tipton 2018, J. Business & Economic Statistics 36:672–683).

On individuals, with working covariance Θ_i (without φ, which cancels), W_i = Θ_i⁻¹, D_i the
derivative matrix, N = (Σ D_iᵀW_iD_i)⁻¹ and S_i = Θ_i^{1/2}:
A_i = S_i (S_i (Θ_i − D_i N D_iᵀ) S_i)^{−1/2} S_i, e_i = D_iᵀ W_i A_i r_i, V = N (Σ e_i e_iᵀ) N.
(clubSandwich uses the Cholesky factor where we use S_i; A_i is the same for any factor.)

Every covariate is constant within a cell, and Θ_i is v_j(1 − a) times the identity on the
individuals' deviations from their cell means, which D_iᵀW_i annihilates and on which A_i is the
identity. So everything happens on each cluster's cell means, written in the orthonormal basis
1/√n_ij of each cell: Θ̃ = diag(v(1 − a)) + √n Q_v √n (Q_v the cell block of correlations
scaled by √v), D̃ = √n·g·X, r̃ = √n·(ȳ − μ); T × T matrices per cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _sym_power(m: np.ndarray, power: float) -> np.ndarray:
    """(…, T, T) symmetric positive-definite matrices raised to `power`."""
    w, u = np.linalg.eigh(m)
    return (u * w[..., None, :] ** power) @ np.swapaxes(u, -1, -2)


@dataclass(frozen=True)
class Cr2:
    """The CR2 covariance of β and what its Satterthwaite degrees of freedom need.
    vcov: (p, p); est: (I, p, T) N·D̃ᵢᵀW̃ᵢAᵢ; theta: (I, T, T) Θ̃ᵢ; design: (I, T, p) D̃ᵢ;
    bread: (p, p) N."""

    vcov: np.ndarray
    est: np.ndarray
    theta: np.ndarray
    design: np.ndarray
    bread: np.ndarray

    def satterthwaite_df(self, contrast: np.ndarray) -> float:
        """Degrees of freedom of cᵀVc: 2E²/Var under the working model (clubSandwich's
        Satterthwaite), from P_ij = δ_ij·aᵢ − bᵢᵀN b_j with aᵢ = cᵀN EᵢΘ̃ᵢEᵢᵀN c and
        bᵢ = D̃ᵢᵀ EᵢᵀN c."""
        g = np.einsum("p,ipt->it", contrast, self.est)  # cᵀ N Eᵢ
        a = np.einsum("it,itu,iu->i", g, self.theta, g)
        b = np.einsum("it,itp->ip", g, self.design)
        p_mat = np.diag(a) - b @ self.bread @ b.T
        return float(np.trace(p_mat) ** 2 / (p_mat**2).sum())


def cr2(
    n: np.ndarray,
    resid: np.ndarray,
    design: np.ndarray,
    v: np.ndarray,
    within: float,
    between: np.ndarray,
) -> Cr2:
    """CR2 from the cells of a GEE fit. n: (I, T) cell sizes (0 where unobserved);
    resid: (I, T) ȳ − μ (0 where unobserved); design: (I, T, p) D = g·X; v: (I, T) working
    variances φ·v(μ); within: the within-cell correlation a; between: (T, T) the between-cell
    correlations (its diagonal unused)."""
    root_n = np.sqrt(n)
    sd = np.sqrt(v)
    q = between.copy()
    np.fill_diagonal(q, within)
    theta = (root_n * sd)[:, :, None] * q[None] * (root_n * sd)[:, None, :]
    idx = np.arange(n.shape[1])
    theta[:, idx, idx] += v * (1.0 - within)
    d = root_n[:, :, None] * design
    r = root_n * resid
    w = np.linalg.inv(theta)
    bread = np.linalg.inv(np.einsum("itp,itu,iuq->pq", d, w, d))
    s = _sym_power(theta, 0.5)
    g = s @ (theta - d @ bread @ np.swapaxes(d, 1, 2)) @ s
    adjust = s @ _sym_power((g + np.swapaxes(g, 1, 2)) / 2.0, -0.5) @ s
    est = bread @ np.einsum("itp,itu->ipu", d, w @ adjust)  # (I, p, T)
    u = np.einsum("ipt,it->ip", est, r)
    return Cr2(u.T @ u, est, theta, d, bread)
