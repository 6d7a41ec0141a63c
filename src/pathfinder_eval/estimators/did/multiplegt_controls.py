"""Control variables in de Chaisemartin & D'Haultfœuille's DID_ℓ (the authors' `controls`
option; 2024 paper, section on covariates): within each baseline treatment d, θ_d is the
coefficient of a regression of the outcome's first difference on the controls' first
differences with period fixed effects, among the cells of groups that have not switched yet
(t < F_g); every long difference of the outcome of a group of baseline d then has θ_d times the
controls' long difference taken off, which is the estimator run on Y − X θ_d.

Each row stays a fixed linear combination of the outcomes (given the controls): θ_d is linear
in the first differences, so the toolkit's few-treated variances apply to the weights `terms`
adds. The authors' analytic variance adds to each group's influence function
the term for estimating θ_d, M_d,ℓ'(Den_d⁻¹ ρ Σ_t Ẍ_gt ε̂_gt / N_d − θ_d / G), as their Python
port (py-did-multiplegt-dyn 0.1.9) computes it: M_d,ℓ the row applied to the controls over the
groups of baseline d (zero when ℓ > T_d − 2), Ẍ the controls' differences less their period
mean, ε̂ the regression's residuals (each scaled by √(E_t/(E_t − 1)), E_t the groups or clusters
of that period's regression), ρ the cells of every baseline's regressions and N_d those of
baseline d; the θ_d / G term is taken from every group for effects and from baseline d's groups
for placebos, as that code does. With trends_lin the outcome and the controls enter in first
differences (θ_d then comes from their second differences), as the authors' code; their
`continuous` polynomial is added after that differencing, as their code adds it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ControlAdjustment:
    """theta (baselines, k): θ_d; lever (G, T, k): Den_d⁻¹ Ẍ_gt in the cells of the regressions
    (0 elsewhere), so θ_d = Σ lever · ΔY; psi (G, k): each group's Den_d⁻¹ ρ Σ_t Ẍ ε̂ / N_d;
    last (classes,): T_g of each class's groups; base_of (classes,): each class's baseline
    (classes are baselines, or baselines × strata with trends_nonparam); groups: G in
    θ_d / G (the authors' count: with trends_lin it still includes the groups switching in
    period 2 that it leaves out); singular: baselines whose varying controls are collinear
    (the pseudo-inverse is used, as the authors' code does)."""

    theta: np.ndarray
    lever: np.ndarray
    psi: np.ndarray
    last: np.ndarray
    base_of: np.ndarray
    groups: int
    singular: tuple[int, ...]

    def adjusted(self, ymat: np.ndarray, xmat: np.ndarray, cls: np.ndarray) -> np.ndarray:
        """(G, T) Y − X θ_d for each group's baseline d."""
        return ymat - np.einsum("gtk,gk->gt", xmat, self.theta[self.base_of[cls]])

    def terms(
        self, cell_weights: np.ndarray, xmat: np.ndarray, cls: np.ndarray, lag: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """For a row with `cell_weights` on Y − X θ_d (lag ℓ, negative for a placebo): (G,) the
        term each group's influence function loses for θ_d's estimation (module docstring),
        and (G, T) the weights θ_d's estimation adds on the outcomes, −M_d'θ_d written on the
        first differences in θ_d."""
        base = self.base_of[cls]
        m = _applied(cell_weights, xmat, cls, len(self.base_of))  # by class: (classes, k)
        on_diff = -np.einsum("gtk,gk->gt", self.lever, self._by_base(m)[base])  # on ΔY
        weights = on_diff.copy()
        weights[:, :-1] -= on_diff[:, 1:]
        m[self.last - 2 < abs(lag)] = 0.0  # the authors' code: no term when ℓ > T_g − 2
        m_d = self._by_base(m)  # M_d: (baselines, k)
        out = np.einsum("gk,gk->g", self.psi, m_d[base])
        per_base = np.einsum("dk,dk->d", m_d, self.theta) / self.groups  # M_d' θ_d / G
        return out - (per_base.sum() if lag > 0 else per_base[base]), weights

    def _by_base(self, by_class: np.ndarray) -> np.ndarray:
        """(baselines, k) sums of the classes' rows by baseline."""
        out = np.zeros((self.theta.shape[0], by_class.shape[1]))
        np.add.at(out, self.base_of, by_class)
        return out


def _applied(cell_weights: np.ndarray, xmat: np.ndarray, cls: np.ndarray, n_cls: int) -> np.ndarray:
    """(classes, k) Σ over each class's groups and periods of the weights times the controls:
    the row applied to the controls."""
    by_group = np.einsum("gt,gtk->gk", cell_weights, np.nan_to_num(xmat))
    out = np.zeros((n_cls, xmat.shape[2]))
    np.add.at(out, cls, by_group)
    return out


def residualise(
    ymat: np.ndarray,
    xmat: np.ndarray,
    cls: np.ndarray,
    base_of: np.ndarray,
    f: np.ndarray,
    last: np.ndarray,
    cluster: np.ndarray,
    groups: int,
    weight: np.ndarray,
) -> ControlAdjustment:
    """θ_d and the pieces of its variance term from the outcomes ymat (G, T), the controls
    xmat (G, T, k), the groups' classes and each class's baseline, switch dates F_g
    (1-based; T + 1 if never), T_g per class, clusters (the group's own code when
    unclustered), G for θ_d / G and the cells' weights N_gt (G, T): with weights the
    regression is weighted least squares and the cell counts ρ and N_d sums of weights, as
    the authors' code. With strata (classes finer than baselines) the controls' changes are
    taken net of each class's period means, θ_d pooled over the baseline's classes, and the
    residuals of the variance term are those of the baseline's regression with period effects
    only, as the authors' code."""
    n_g, n_t, k = xmat.shape
    n_base = int(base_of.max()) + 1
    period = np.arange(1, n_t + 1)[None, :]
    dy = np.full((n_g, n_t), np.nan)
    dy[:, 1:] = np.diff(ymat, axis=1)
    dx = np.full((n_g, n_t, k), np.nan)
    dx[:, 1:] = np.diff(xmat, axis=1)
    # the regressions' cells: not switched yet, outcome and controls differenced
    cells = (period < f[:, None]) & ~np.isnan(dy) & ~np.isnan(dx).any(axis=2)
    theta = np.zeros((n_base, k))
    lever = np.zeros((n_g, n_t, k))
    psi = np.zeros((n_g, k))
    singular = []
    rho = float(np.where(cells, weight, 0.0).sum())
    for d in range(n_base):
        mask = cells & (base_of[cls] == d)[:, None]
        if not mask.any():
            continue
        w = np.where(mask, weight, 0.0)
        xd = np.zeros_like(dx)  # Ẍ: less its class's period mean
        for c in np.flatnonzero(base_of == d):
            xd += _less_period_mean(dx, mask & (cls == c)[:, None], w)
        den, inv, theta[d] = _slope(xd, dy, mask, w)
        if _collinear(den):
            singular.append(d)
        lever += np.einsum("kj,gtj->gtk", inv, xd * w[..., None])
        # the residuals: the baseline's regression with period effects (θ_d itself unless
        # the classes are finer than the baseline)
        xd0, beta = xd, theta[d]
        if (base_of == d).sum() > 1:
            xd0 = _less_period_mean(dx, mask, w)
            beta = _slope(xd0, dy, mask, w)[2]
        dy0 = _less_period_mean(dy[..., None], mask, w)[..., 0]
        resid = np.where(mask, dy0 - xd0 @ beta, 0.0)
        e = np.array([np.unique(cluster[mask[:, t]]).size for t in range(n_t)], float)
        scale = np.where(e >= 2, np.sqrt(e / np.maximum(e - 1, 1)), 1.0)
        # N_d: the baseline's cells up to T_d, the last T_g of its classes
        t_d = np.nanmax(last[base_of == d])
        n_d = float(np.where(period <= t_d, w, 0.0).sum())
        wx = xd * (w * resid * scale)[..., None]
        psi += rho / n_d * np.einsum("kj,gj->gk", inv, wx.sum(axis=1))
    return ControlAdjustment(theta, lever, psi, last, base_of, groups, tuple(singular))


def _slope(
    xd: np.ndarray, dy: np.ndarray, mask: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Den = Σ w Ẍ Ẍ' over the `mask` cells, its pseudo-inverse and the weighted slope of ΔY on
    Ẍ there (Ẍ net of period means, so no period effects are needed)."""
    den = np.einsum("gt,gtk,gtj->kj", w, xd, xd)
    inv = np.linalg.pinv(den)
    return den, inv, inv @ np.einsum("gt,gtk,gt->k", w, xd, np.where(mask, dy, 0.0))


def _less_period_mean(dx: np.ndarray, mask: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(G, T, k) dx in the `mask` cells less their weighted period mean there (0 elsewhere)."""
    w = np.where(mask, w, 0.0)
    safe = np.where(w.sum(axis=0) > 0, w.sum(axis=0), 1.0)
    x_mean = np.einsum("gt,gtk->tk", w, np.where(mask[..., None], dx, 0.0)) / safe[:, None]
    return np.where(mask[..., None], dx - x_mean[None], 0.0)


def _collinear(den: np.ndarray) -> bool:
    """Whether the controls that vary among a baseline's not-yet-switchers are collinear there,
    judged on their correlation matrix (an eigenvalue under 1e-10) so that the controls'
    units do not matter. A control that does not vary adjusts nothing (its coefficient is 0)
    and is not counted: `continuous` with trends_lin generates one such column."""
    scale = np.sqrt(np.diag(den))
    on = scale > 0
    if not on.any():
        return False
    corr = den[np.ix_(on, on)] / np.outer(scale[on], scale[on])
    return bool(np.linalg.matrix_rank(corr, tol=1e-10) < on.sum())
