"""The degrees of freedom a stepped-wedge LMM with Kenward-Roger or Satterthwaite inference
would report, computed at the trial's own variance components: analytic power's reference for
those analyses, whose df come from the data.

The df are Kenward & Roger's (1997) moment-matched df, or Satterthwaite's 2(lᵀΦl)²/(gᵀWg),
evaluated where the REML estimates would sit if they hit the truth: Φ = (XᵀV⁻¹X)⁻¹ and the
inverse expected information W of the variance parameters, for the analysis's covariance
structure at the parameters closest to the data-generating model
(`true_parameters`). Neither depends on outcome values. A common stand-in,
t(I − 2), gave 10 df on a 12-cluster trial whose fitted Kenward-Roger df are about 50, and
understated its power (0.915 against 0.948 simulated; found in review). Kenward-Roger's
adjusted variance is used with its df: it is what the analysis reports.

Where the truth puts a variance component at zero (a nested-exchangeable analysis of data
with no cluster-period variance), Kenward-Roger's fitted df centre on the value here, while
Satterthwaite's fits hold the component at the boundary about half the time and then report
far more df: the value here is the smaller, interior one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from pathfinder_eval.estimators.stepped_wedge.design import effect_contrasts
from pathfinder_eval.estimators.stepped_wedge.lmm import (
    THETA_NAMES,
    CellSummaries,
    RemlFit,
    cluster_precisions,
    fixed_effects,
    kenward_roger_df,
    small_sample,
)
from pathfinder_eval.power.analytic import VarianceModel
from pathfinder_eval.settings import Structure


def true_parameters(model: VarianceModel, structure: Structure) -> np.ndarray:
    """The natural variance parameters θ of the analysis structure closest to the
    data-generating model (the REML fit's start)."""
    if structure == "hussey_hughes":
        return np.array([model.tau2, model.sigma2])
    if structure == "nested_exchangeable":
        return np.array([model.tau2, model.gamma2, model.sigma2])
    decay = min(model.decay, 0.99)
    if structure == "random_slope":
        cov = model.treatment_corr * np.sqrt(model.tau2 * model.treatment_var)
        slope2 = max(model.treatment_var, 1e-4 * model.sigma2)  # off the boundary to start
        return np.array([model.tau2, cov, slope2, model.gamma2, model.sigma2])
    if structure == "cluster_plus_decay":  # τ² + γ²r^|j−l|: the decaying part is the model's τ²
        if model.decay < 1.0:
            return np.array([0.0, model.tau2 + model.gamma2, decay, model.sigma2])
        return np.array([model.tau2, model.gamma2, 0.0, model.sigma2])
    return np.array([model.tau2 + model.gamma2, decay, model.sigma2])


@dataclass(frozen=True)
class SmallSampleReference:
    """df: the analysis's df for the effect; inflation: its variance over the GLS variance
    (Kenward-Roger's adjusted Φ_A over Φ; 1 for Satterthwaite, which reports Φ)."""

    df: float
    inflation: float


def small_sample_reference(
    design: np.ndarray,
    model: VarianceModel,
    cell_size: float,
    structure: Structure,
    method: Literal["kenward_roger", "satterthwaite"],
    shape: Literal["immediate", "exposure_time"] = "immediate",
    starts: np.ndarray | None = None,
    window: int | None = None,
) -> SmallSampleReference:
    """The df and variance inflation of the effect (immediate, or the time-averaged effect
    over exposure times up to `window`) for a (clusters, periods) design (NaN: not measured)
    with `cell_size` people per measured cell; `starts`: each row's start index (default: its
    first intervention cell). random_slope has no allocation-free covariance: ValueError."""
    observed = ~np.isnan(design)
    treated = np.nan_to_num(design) == 1.0
    if starts is None:
        starts = np.array([np.argmax(row) if row.any() else len(row) for row in treated])
    n = np.where(observed, float(cell_size), 0.0)
    theta = true_parameters(model, structure)
    sigma2 = float(theta[-1])
    # within-cell sums of squares at their expectation σ²(n − 1): they enter only through
    # the observed Hessian, which neither df below uses
    cells = CellSummaries(np.zeros(design.shape), n, sigma2 * np.maximum(n - 1.0, 0.0), observed)
    fe = fixed_effects(observed, np.asarray(starts), shape)
    precision = cluster_precisions(cells, structure, theta)
    vcov = np.linalg.inv(np.einsum("itp,itu,iuq->pq", fe.X, precision, fe.X))
    fit = RemlFit(
        structure,
        np.zeros(fe.X.shape[2]),
        vcov,
        theta,
        THETA_NAMES[structure],
        np.nan,
        np.zeros(len(theta) - 1),
        0.0,
        True,
        1,
        1,
        (),
    )
    ss = small_sample(fit, cells, fe.X)
    contrast = next(iter(effect_contrasts(fe, shape, window).values())).vector
    variance = float(contrast @ vcov @ contrast)
    if method == "kenward_roger":
        adjusted = float(contrast @ ss.vcov_kr @ contrast)
        return SmallSampleReference(kenward_roger_df(ss, vcov, contrast), adjusted / variance)
    grad = np.array([-(contrast @ vcov @ p @ vcov @ contrast) for p in ss.p_mats])
    return SmallSampleReference(float(2.0 * variance**2 / (grad @ ss.w @ grad)), 1.0)
