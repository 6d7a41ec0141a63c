"""Small-sample variance of Callaway & Sant'Anna aggregates with few treated units.

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

did's influence-function standard error divides by n_s instead of n_s − 1 and uses a normal
reference; with three treated LAs its test rejects a true null about a third of the time
(benchmarks/did_size.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pathfinder_eval.errors import EstimationError

if TYPE_CHECKING:  # the estimator imports this module
    from pathfinder_eval.estimators.callaway_santanna import GroupTimeATT


@dataclass(frozen=True)
class CohortStratified:
    """std_error, df: (m,) per aggregate row; singletons: cohorts of one unit (they borrow the
    pooled covariance)."""

    std_error: np.ndarray
    df: np.ndarray
    singletons: int


def unit_strata(gt: GroupTimeATT) -> np.ndarray:
    """(n,) stratum code of each unit: its cohort's index in gt.cohorts, never treated last."""
    never = np.isnan(gt.unit_cohort)
    codes = np.searchsorted(gt.cohorts, np.nan_to_num(gt.unit_cohort))
    return np.where(never, len(gt.cohorts), codes).astype(np.int64)


def stratum_weights(gt: GroupTimeATT, weights: np.ndarray) -> np.ndarray:
    """(m, S, T) a_s of each aggregate row (weights (m, k) on the cells), so that row r equals
    Σ_i a[r, s(i)] · y_i."""
    sizes = np.bincount(unit_strata(gt), minlength=len(gt.cohorts) + 1).astype(float)
    cell_code = np.searchsorted(gt.cohorts, gt.group)
    treated = cell_code[:, None] == np.arange(len(sizes))[None, :]  # (k, S)
    n_comp = gt.comparison @ sizes
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(treated, 1.0 / sizes[None, :], 0.0) - np.where(
            gt.comparison, 1.0 / n_comp[:, None], 0.0
        )  # (k, S): each stratum's weight on the cell's long difference
    cells = np.arange(len(gt.att))
    diff = np.zeros((len(gt.att), len(gt.periods)))
    diff[cells, np.searchsorted(gt.periods, gt.time)] += 1.0
    diff[cells, np.searchsorted(gt.periods, gt.base)] -= 1.0
    return np.einsum("rk,ks,kt->rst", weights, share, diff)


def cohort_stratified(y: np.ndarray, gt: GroupTimeATT, weights: np.ndarray) -> CohortStratified:
    """Stratified variance and Bell-McCaffrey df (module docstring) of the aggregates
    weights @ gt.att; y: (n, T) the balanced outcomes the cells were estimated from."""
    strata = unit_strata(gt)
    a = stratum_weights(gt, weights)
    sizes = np.bincount(strata, minlength=a.shape[1])
    multi = np.flatnonzero(sizes >= 2)
    df_pool = int((sizes[multi] - 1).sum())
    if df_pool == 0:
        raise EstimationError(
            "every cohort has a single unit and there are no never-treated units, so no "
            "within-cohort variance can be estimated",
            where="inference.method",
            fix="use inference method cluster_robust or multiplier_bootstrap",
        )
    means = np.zeros((a.shape[1], y.shape[1]))
    np.add.at(means, strata, y)
    resid = y - (means / np.maximum(sizes, 1)[:, None])[strata]
    pooled = resid.T @ resid / df_pool
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
