"""Power for binary (and Gaussian) cluster-period outcomes on the identity, log or logit scale.

Two models, because they estimate different effects:

* `gee_variance` — the marginal (population-averaged) effect estimated by GEE with the true
  correlation as working correlation: model-based variance (Σ_i D_i' V_i⁻¹ D_i)⁻¹ of Li, Turner &
  Preisser (2018, Biometrics 74:1450–1458). Within-period ICC α0, between-period ICC α1 and, in a
  closed cohort, the within-individual correlation α2, all on the outcome (proportion) scale.
* `glmm_logit_variance` — the conditional (cluster-specific) log odds ratio of a random-intercept
  logistic GLMM, to first order: the cell's empirical logit has variance 1/(m μ(1 − μ)) plus the
  random effects, μ being the risk at random effect 0. It ignores the curvature of the link
  across the random-effect distribution, so it is an approximation checked by simulation.

With exchangeable individuals a cell-constant design lies in an invariant subspace of V_i, so
GLS on cell means with their covariance gives the same information as the individual-level
formula; both functions work on the cell means.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import special

from pathfinder_eval.power.analytic import VarianceModel, cell_covariance

Link = Literal["identity", "log", "logit"]


def link_function(mu: float, link: Link) -> float:
    """g(μ) on the chosen scale."""
    if link == "identity":
        return mu
    if link == "log":
        return float(np.log(mu))
    return float(special.logit(mu))


def mean_and_slope(eta: np.ndarray, link: Link) -> tuple[np.ndarray, np.ndarray]:
    """μ = g⁻¹(η) and dμ/dη."""
    if link == "identity":
        return eta, np.ones_like(eta)
    if link == "log":
        mu = np.exp(eta)
        return mu, mu
    mu = special.expit(eta)
    return mu, mu * (1 - mu)


def linear_period_effects(start: float, end: float, periods: int, link: Link) -> np.ndarray:
    """Control-arm linear predictor per period, moving in equal steps on the link scale from
    g(start) to g(end) (how swdpwr turns its start/end control means into period effects)."""
    g0, g1 = link_function(start, link), link_function(end, link)
    return g0 + (g1 - g0) * np.arange(periods) / (periods - 1)


@dataclass(frozen=True)
class MarginalCorrelation:
    """Correlations of two individual outcomes in one cluster: alpha0 within a period, alpha1
    between periods (different individuals), alpha2 the same individual in different periods
    (closed cohort; None = cross-sectional)."""

    alpha0: float
    alpha1: float
    alpha2: float | None = None


def marginal_cell_covariance(
    variances: np.ndarray, cell_size: float, corr: MarginalCorrelation
) -> np.ndarray:
    """(T, T) covariance of a cluster's cell means with individual variances v_j."""
    m = cell_size
    between = corr.alpha1 if corr.alpha2 is None else (corr.alpha2 + (m - 1) * corr.alpha1) / m
    sd = np.sqrt(variances)
    cov = between * np.outer(sd, sd)
    cov[np.diag_indices(len(variances))] = variances * (1 + (m - 1) * corr.alpha0) / m
    return cov


def _regressors(treated: np.ndarray, period_effects: bool) -> np.ndarray:
    periods = len(treated)
    base = np.eye(periods) if period_effects else np.ones((periods, 1))
    return np.column_stack([base, treated])


def gee_variance(
    design: np.ndarray,
    control_eta: np.ndarray,
    effect: float,
    link: Link,
    cell_size: float,
    corr: MarginalCorrelation,
    sigma2: float | None = None,
    period_effects: bool = True,
) -> float:
    """Model-based GEE variance of the marginal effect θ on the link scale.

    design: (I, T) 0/1, complete; control_eta: (T,) linear predictor under control;
    sigma2: individual variance for a Gaussian outcome (None = binary, v = μ(1 − μ));
    period_effects: False fits one intercept (swdpwr's model when start = end)."""
    info = 0.0
    for row in np.asarray(design, dtype=float):
        z = _regressors(row, period_effects)
        eta = (control_eta if period_effects else control_eta[0]) + effect * row
        mu, slope = mean_and_slope(np.asarray(eta, dtype=float), link)
        v = np.full_like(mu, sigma2) if sigma2 is not None else mu * (1 - mu)
        d = slope[:, None] * z
        info = info + d.T @ np.linalg.solve(marginal_cell_covariance(v, cell_size, corr), d)
    return float(np.linalg.inv(info)[-1, -1])


def glmm_logit_variance(
    design: np.ndarray,
    control_eta: np.ndarray,
    effect: float,
    cell_size: float,
    tau2: float,
    gamma2: float = 0.0,
) -> float:
    """First-order variance of the conditional log odds ratio in a random-intercept logistic
    GLMM with categorical periods: GLS on cell logits whose covariance is τ² (cluster) +
    γ² (cluster-period) + 1/(m μ(1 − μ)), μ the cell risk at random effect 0."""
    design = np.asarray(design, dtype=float)
    periods = design.shape[1]
    shared = cell_covariance(
        VarianceModel(tau2=tau2, gamma2=gamma2, sigma2=0.0), periods, np.ones(periods)
    )
    info = np.zeros((periods + 1, periods + 1))
    for row in design:
        mu = special.expit(control_eta + effect * row)
        cov = shared + np.diag(1 / (cell_size * mu * (1 - mu)))
        z = _regressors(row, True)
        info += z.T @ np.linalg.solve(cov, z)
    return float(np.linalg.inv(info)[-1, -1])
