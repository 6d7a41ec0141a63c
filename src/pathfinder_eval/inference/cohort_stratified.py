"""Small-sample variance of Callaway & Sant'Anna (and Sun & Abraham) aggregates with few
treated units.

Without covariates or unit weights every ATT(g,t) is a difference of two means of long
differences y_t − y_base, so any aggregate θ = Σ_j W_j ATT(g_j, t_j) is linear in the
outcomes with weights that depend only on a unit's cohort: θ = Σ_i a_{s(i)}ᵀ y_i, s(i) the
cohort (stratum) of unit i, never-treated units being one more stratum. Conditional on the
cohorts, with units independent,

    Var(θ) = Σ_s n_s · Var(a_sᵀ y_i : i in s).

Variance: each stratum's sample variance of a_sᵀ y_i (divisor n_s − 1), an unbiased estimator
that allows every cohort its own covariance; it is what HC2 gives for the saturated
cohort-means regression (leverage 1/n_s), Welch's two-sample variance generalised to many
strata. A cohort of a single unit has no within-cohort variance and borrows the within-stratum
covariance Σ_p pooled over the strata with two or more units (an assumption of common
covariance, stated in the label).

Degrees of freedom: Bell & McCaffrey's (2002) rule, as for CR2: the Satterthwaite df of the
variance estimator under a working model, here the common covariance Σ_p, so that each
stratum's share is n_s a_sᵀ Σ_p a_s with n_s − 1 df (the pooled part has the pooled df); this
avoids the noise of plugging the small strata's own variances into Welch's df.

The same holds for any estimator that is linear in the outcomes with weights constant within
cohorts, such as Sun & Abraham's interaction-weighted estimator on a balanced panel
(`stratified_linear`): there a cohort of one unit is fitted exactly by its own interactions, so
no cluster-robust variance of the regression sees its noise, while the pooled covariance does.

did's influence-function standard error divides by n_s instead of n_s − 1 and uses a normal
reference; with three treated LAs its test rejects a true null about a third of the time
(benchmarks/did_size.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pathfinder_eval.errors import EstimationError


@dataclass(frozen=True)
class CohortStratified:
    """std_error, df: (m,) per aggregate row; singletons: cohorts of one unit (they borrow the
    pooled covariance)."""

    std_error: np.ndarray
    df: np.ndarray
    singletons: int


def stratified_linear(
    y: np.ndarray, observed: np.ndarray, strata: np.ndarray, a: np.ndarray
) -> CohortStratified:
    """Stratified variance and Bell-McCaffrey df of θ_r = Σ_i a[r, s(i)] · y_i for any linear
    estimator whose weights depend only on a unit's stratum (module docstring).

    y: (n, T) outcomes (any value where not observed); observed: (n, T) bool, the same pattern
    for every unit of a stratum; strata: (n,) codes 0..S−1; a: (m, S, T) weights, zero on cells
    a stratum does not observe. The pooled covariance comes from strata with two or more units
    that observe every period."""
    y = np.where(observed, y, 0.0)
    sizes = np.bincount(strata, minlength=a.shape[1])
    multi = np.flatnonzero(sizes >= 2)
    complete = _pooling_strata(observed, strata, sizes)
    df_pool = int((sizes[complete] - 1).sum())
    if df_pool == 0:
        raise EstimationError(
            "no cohort (or never-treated group) has two or more units observed in every "
            "period, so no within-cohort covariance can be estimated",
            where="inference.method",
            fix="use inference method cluster_robust",
        )
    means = np.zeros((a.shape[1], y.shape[1]))
    np.add.at(means, strata, y)
    resid = y - (means / np.maximum(sizes, 1)[:, None])[strata]
    pool = np.isin(strata, complete)
    pooled = resid[pool].T @ resid[pool] / df_pool
    working = sizes * np.einsum("rst,tu,rsu->rs", a, pooled, a)  # (m, S) under Σ_p
    contrib = np.einsum("nt,rnt->rn", y, a[:, strata, :])  # (m, n) a_{s(i)}ᵀ y_i
    var = np.zeros(a.shape[0])
    for s in multi:
        var += sizes[s] * contrib[:, strata == s].var(axis=1, ddof=1)
    single = sizes == 1
    var += working[:, single].sum(axis=1)
    denom = (working[:, multi] ** 2 / (sizes[multi] - 1)).sum(axis=1)
    denom += working[:, single].sum(axis=1) ** 2 / df_pool
    with np.errstate(divide="ignore", invalid="ignore"):
        df = np.where(denom > 0, working.sum(axis=1) ** 2 / denom, np.nan)
    return CohortStratified(np.sqrt(var), df, int(single.sum()))


def stratified_cells(
    weights: np.ndarray,
    y: np.ndarray,
    units: np.ndarray,
    periods: np.ndarray,
    unit_cohort: np.ndarray,
) -> CohortStratified | None:
    """`stratified_linear` for estimates weights @ y on the cells of a long panel.

    weights: (m, n) each row's weight on the n cells; y, units, periods: (n,) outcomes and
    integer codes from 0; unit_cohort: (U,) each unit's cohort (NaN never treated), the
    strata. None when the weights or the observed cells differ between units of a stratum,
    where the stratified estimator does not apply, or when no stratum of two or more units
    observes every period, where its pooled covariance cannot be learned (the estimator then
    falls back to its next method instead of failing)."""
    n_units, n_periods = int(units.max()) + 1, int(periods.max()) + 1
    per_unit = np.zeros((len(weights), n_units, n_periods))
    per_unit[:, units, periods] = weights
    wide = np.zeros((n_units, n_periods))
    wide[units, periods] = y
    observed = np.zeros((n_units, n_periods), dtype=bool)
    observed[units, periods] = True
    key = np.where(np.isnan(unit_cohort), np.inf, unit_cohort)
    _, first, strata = np.unique(key, return_index=True, return_inverse=True)
    a = per_unit[:, first, :]
    scale = max(float(np.abs(weights).max()), 1e-300)
    if np.abs(per_unit - a[:, strata, :]).max() > 1e-9 * scale:
        return None
    if (observed != observed[first[strata]]).any():
        return None
    if not _pooling_strata(observed, strata, np.bincount(strata)):
        return None
    return stratified_linear(wide, observed, strata, a)


def _pooling_strata(observed: np.ndarray, strata: np.ndarray, sizes: np.ndarray) -> list[int]:
    """The strata the pooled covariance is learned from: two or more units, every period
    observed."""
    return [s for s in np.flatnonzero(sizes >= 2) if observed[strata == s].all()]
