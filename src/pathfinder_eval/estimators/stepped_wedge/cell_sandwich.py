"""Bias-corrected sandwich variances of a stepped-wedge GEE or LMM computed on each cluster's
cell means: CR2 with its Satterthwaite degrees of freedom, as R's clubSandwich computes them with
the working (GEE) or fitted (LMM) covariance as target (vcovCR type "CR2"; coef_test's
"Satterthwaite"; Bell & McCaffrey 2002; Pustejovsky & Tipton 2018, J. Business & Economic
Statistics 36:672–683), and Mancl & DeRouen's (2001) correction, clubSandwich's "CR3".

On individuals, with covariance Θ_i (a constant factor such as φ cancels), W_i = Θ_i⁻¹, D_i the
derivative matrix, N = (Σ D_iᵀW_iD_i)⁻¹ and S_i = Θ_i^{1/2}:
CR2: A_i = S_i (S_i (Θ_i − D_i N D_iᵀ) S_i)^{−1/2} S_i; CR3: A_i = (I − D_i N D_iᵀ W_i)⁻¹;
e_i = D_iᵀ W_i A_i r_i, V = N (Σ e_i e_iᵀ) N. (clubSandwich uses the Cholesky factor where we use
S_i; A_i is the same for any factor.)

Every covariate is constant within a cell, and Θ_i is a multiple of the identity on the
individuals' deviations from their cell means (v_j(1 − a) for the GEE, σ² for the LMM), which
D_iᵀW_i annihilates and on which A_i is the identity. So everything happens on each cluster's
cell means, written in the orthonormal basis 1/√n_ij of each cell: Θ̃ = that multiple plus
√n Σ_i √n (Σ_i the cells' shared covariance), D̃ = √n·D, r̃ = √n·(ȳ − μ); T × T matrices per
cluster.
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


def cell_basis(
    n: np.ndarray, shared: np.ndarray, within: np.ndarray, design: np.ndarray, resid: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Θ̃ (I, T, T), D̃ (I, T, p) and r̃ (I, T) from cell sizes n (I, T; 0 where unobserved),
    the cells' shared covariance (I, T, T), the per-individual variance on within-cell
    deviations (I, T), the cell design D (I, T, p) and residuals ȳ − μ (I, T; 0 unobserved)."""
    root_n = np.sqrt(n)
    theta = root_n[:, :, None] * shared * root_n[:, None, :]
    idx = np.arange(n.shape[1])
    theta[:, idx, idx] += within
    return theta, root_n[:, :, None] * design, root_n * resid


def cr2_on_cells(theta: np.ndarray, d: np.ndarray, r: np.ndarray) -> Cr2:
    """CR2 from Θ̃, D̃ and r̃ (`cell_basis`)."""
    w = np.linalg.inv(theta)
    bread = np.linalg.inv(np.einsum("itp,itu,iuq->pq", d, w, d))
    s = _sym_power(theta, 0.5)
    g = s @ (theta - d @ bread @ np.swapaxes(d, 1, 2)) @ s
    adjust = s @ _sym_power((g + np.swapaxes(g, 1, 2)) / 2.0, -0.5) @ s
    est = bread @ np.einsum("itp,itu->ipu", d, w @ adjust)  # (I, p, T)
    u = np.einsum("ipt,it->ip", est, r)
    return Cr2(u.T @ u, est, theta, d, bread)


def mancl_derouen_on_cells(theta: np.ndarray, d: np.ndarray, r: np.ndarray) -> np.ndarray:
    """(p, p) the Mancl-DeRouen (clubSandwich CR3) covariance from Θ̃, D̃ and r̃: B times the
    scores (I − F_iB)⁻¹D̃ᵢᵀW̃ᵢr̃ᵢ with F_i = D̃ᵢᵀW̃ᵢD̃ᵢ and B = (Σ F_i)⁻¹ (the same as
    (I − H_ii)⁻¹ on individuals), each (F − F_i)⁻¹D̃ᵢᵀW̃ᵢr̃ᵢ."""
    w = np.linalg.inv(theta)
    f = np.einsum("itp,itu,iuq->ipq", d, w, d)
    return mancl_derouen(f, np.einsum("itp,itu,iu->ip", d, w, r))


def mancl_derouen(f: np.ndarray, score: np.ndarray) -> np.ndarray:
    """(p, p) Σᵢ (F − Fᵢ)⁻¹ gᵢ gᵢᵀ (F − Fᵢ)⁻¹ from each cluster's information Fᵢ (I, p, p) and
    score gᵢ (I, p), F = Σ Fᵢ: Mancl-DeRouen's B(I − FᵢB)⁻¹gᵢ, on cell summaries and on
    records alike. F − Fᵢ is singular where cluster i alone identifies a coefficient (a
    sequence of one cluster, at its longest exposure time), but gᵢ has no part along it (that
    coefficient's normal equation is cluster i's alone), so the least-norm solution."""
    rest = f.sum(axis=0)[None] - f
    pairs = zip(rest, score, strict=True)
    left = np.stack([np.linalg.lstsq(a, b, rcond=None)[0] for a, b in pairs])
    return left.T @ left
