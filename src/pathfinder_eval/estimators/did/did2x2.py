"""The canonical 2×2 difference-in-differences regression, for repeated cross-sections or panels.

y = β₀ + δ₀·post + β₁·group + δ₁·(group × post) [+ x′γ] + u, by OLS (WLS with weights).
δ̂₁ is the difference-in-differences estimate; without covariates (and with any weights) it is
exactly (ȳ₁₁ − ȳ₁₀) − (ȳ₀₁ − ȳ₀₀), the difference of the four cell means (group, post).
Wooldridge, Introductory Econometrics: A Modern Approach, §13-2 (eq. 13.10–13.11 and
Example 13.3, the kielmc incinerator data); Wooldridge (2010), Econometric Analysis of Cross
Section and Panel Data, 2nd ed., §6.5.

The fit is statsmodels OLS/WLS. Covariance: "nonrobust" (the usual OLS formula), "HC1"
(White's heteroskedasticity-robust with the n/(n−k) factor, R's sandwich::vcovHC(type = "HC1"))
or "cluster" (CR1: G/(G−1)·(n−1)/(n−k), R's sandwich::vcovCL(type = "HC1")). The reference
distribution is t(n−k), or t(G−1) when clustered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.regression.linear_model import OLS, WLS

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.estimators.did.facts import Did2x2Facts
from pathfinder_eval.inference.policy import few_cluster_warnings
from pathfinder_eval.results import EffectEstimates, InferenceKey, InferenceUsed, estimates_table

CovType = Literal["HC1", "cluster", "nonrobust"]
COV_KEY: dict[str, InferenceKey] = {"HC1": "hc1", "cluster": "cr1", "nonrobust": "ols"}
COV_TYPES: tuple[str, ...] = ("HC1", "cluster", "nonrobust")
DID_TERM = "group×post"
BASE_TERMS: tuple[str, ...] = ("const", "post", "group", DID_TERM)


@dataclass(frozen=True)
class CellSummary:
    """The four cells of the design. means, counts: (2, 2) indexed [group, post] (0 = comparison
    group / pre period, 1 = treated group / post period); means are weighted when the fit is."""

    means: np.ndarray
    counts: np.ndarray

    @property
    def difference_in_differences(self) -> float:
        """(ȳ₁₁ − ȳ₁₀) − (ȳ₀₁ − ȳ₀₀): the closed-form 2×2 estimate without covariates."""
        m = self.means
        return float((m[1, 1] - m[1, 0]) - (m[0, 1] - m[0, 0]))


@dataclass(frozen=True)
class Did2x2Result:
    """A fitted 2×2 DiD. estimate/std_error/statistic/p_value/ci_*: the group×post coefficient
    δ̂₁ and its inference (t reference with `df`); names: k terms (const, post, group, group×post,
    then covariates); params: (k,); vcov: (k, k) under `cov_type`; cells: the four cell means and
    counts; n_clusters and n_treated_clusters (those with a treated-group observation) are 0
    unless cov_type == "cluster"."""

    estimate: float
    std_error: float
    statistic: float
    p_value: float
    ci_lower: float
    ci_upper: float
    df: float
    level: float
    cov_type: str
    n_obs: int
    n_clusters: int
    n_treated_clusters: int
    names: tuple[str, ...]
    params: np.ndarray
    vcov: np.ndarray
    cells: CellSummary

    def coefficient(self, name: str) -> tuple[float, float]:
        """(estimate, standard error) of one named term."""
        j = self.names.index(name)
        return float(self.params[j]), float(np.sqrt(self.vcov[j, j]))

    def to_estimates(self, analysis_id: str, outcome: str) -> EffectEstimates:
        """The one-row EffectEstimates form (term "DiD (2×2)") used by reports and JSON."""
        row = {
            "term": "DiD (2×2)",
            "estimate": self.estimate,
            "std_error": self.std_error,
            "statistic": self.statistic,
            "p_value": self.p_value,
            "ci_lower": self.ci_lower,
            "ci_upper": self.ci_upper,
            "df": self.df,
        }
        j = self.names.index(DID_TERM)
        clustered = self.cov_type == "cluster"
        return EffectEstimates(
            analysis_id=analysis_id,
            outcome=outcome,
            estimator="did_2x2",
            inference=InferenceUsed(
                key=COV_KEY[self.cov_type], label=inference_label(self.cov_type)
            ),
            table=estimates_table([row]),
            level=self.level,
            vcov=self.vcov[np.ix_([j], [j])],
            n_units=self.n_clusters,
            # clustered: treated clusters (it counted a treated LA once per period)
            n_treated=self.n_treated_clusters if clustered else int(self.cells.counts[1].sum()),
            n_obs=self.n_obs,
            facts=Did2x2Facts(
                cell_means=self.cells.means.tolist(),
                cell_counts=self.cells.counts.tolist(),
                terms=list(self.names),
            ),
            warnings=few_cluster_warnings(self.n_treated_clusters, self.n_clusters)
            if clustered
            else (),
        )


def inference_label(cov_type: str) -> str:
    return {
        "nonrobust": "usual OLS standard errors, t(n−k) reference",
        "HC1": "heteroskedasticity-robust (HC1), t(n−k) reference",
        "cluster": "cluster-robust (CR1), t(G−1) reference",
    }[cov_type]


def _vector(values: object, name: str, n: int | None) -> np.ndarray:
    arr = np.asarray(values, dtype=float).reshape(-1)
    if n is not None and arr.shape[0] != n:
        raise EstimationError(
            f"{name} has {arr.shape[0]} values but y has {n}",
            where=name,
            fix="pass one value per observation",
        )
    if not np.all(np.isfinite(arr)):
        raise EstimationError(
            f"{name} has missing or infinite values",
            where=name,
            fix="drop incomplete observations before fitting",
        )
    return arr


def _indicator(values: object, name: str, n: int) -> np.ndarray:
    arr = _vector(values, name, n)
    if not np.all(np.isin(arr, (0.0, 1.0))):
        raise EstimationError(
            f"{name} must be 0/1", where=name, fix="code the indicator as 0 and 1 (or False/True)"
        )
    return arr


def _covariates(covariates: object, n: int) -> tuple[np.ndarray, tuple[str, ...]]:
    if covariates is None:
        return np.empty((n, 0)), ()
    if isinstance(covariates, pd.Series):
        covariates = covariates.to_frame()
    if isinstance(covariates, pd.DataFrame):
        names = tuple(str(c) for c in covariates.columns)
        x = covariates.to_numpy(dtype=float)
    else:
        x = np.asarray(covariates, dtype=float)
        x = x.reshape(n, -1) if x.ndim == 1 else x
        names = tuple(f"x{j + 1}" for j in range(x.shape[1]))
    if x.shape[0] != n or not np.all(np.isfinite(x)):
        raise EstimationError(
            "covariates must have one complete row per observation",
            where="covariates",
            fix="align the covariates with y and drop incomplete rows",
        )
    return x, names


def did_2x2(
    y: Sequence[float] | np.ndarray | pd.Series,
    treated_group: Sequence[float] | np.ndarray | pd.Series,
    post: Sequence[float] | np.ndarray | pd.Series,
    covariates: pd.DataFrame | np.ndarray | None = None,
    weights: Sequence[float] | np.ndarray | pd.Series | None = None,
    cluster: Sequence[object] | np.ndarray | pd.Series | None = None,
    cov_type: CovType = "HC1",
    level: float = 0.95,
) -> Did2x2Result:
    """OLS (WLS with `weights`) of y on post, group and group×post (+ covariates).

    y, treated_group (0/1: ever in the treated group), post (0/1: after the change): (n,);
    covariates: (n, p) frame or array (frame column names become term names); weights: (n,)
    positive analytic weights; cluster: (n,) labels, required for cov_type="cluster". Each of
    the four group × period cells must be non-empty. Panels are handled the same way (pooled
    OLS on the two periods); cluster by unit for panel inference.
    """
    y_arr = _vector(y, "y", None)
    n = y_arr.shape[0]
    g = _indicator(treated_group, "treated_group", n)
    p = _indicator(post, "post", n)
    x, cov_names = _covariates(covariates, n)
    if cov_type not in COV_TYPES:
        raise EstimationError(
            f"unknown cov_type {cov_type!r}", where="cov_type", fix=f"use one of {COV_TYPES}"
        )
    w = None
    if weights is not None:
        w = _vector(weights, "weights", n)
        if np.any(w <= 0):
            row = int(np.flatnonzero(w <= 0)[0])
            raise EstimationError(
                f"weights must be positive; row {row + 1} has {w[row]:g}",
                where="weights",
                fix="drop the rows with zero weight, and correct negative weights",
            )
    counts = np.array([[np.sum((g == a) & (p == b)) for b in (0, 1)] for a in (0, 1)])
    if np.any(counts == 0):
        raise EstimationError(
            f"a group × period cell is empty (counts [group, post] = {counts.tolist()})",
            where="treated_group/post",
            fix="the 2×2 design needs observations in all four cells",
        )
    ww = np.ones(n) if w is None else w
    means = np.array(
        [
            [
                np.average(y_arr[(g == a) & (p == b)], weights=ww[(g == a) & (p == b)])
                for b in (0, 1)
            ]
            for a in (0, 1)
        ]
    )
    design = np.column_stack([np.ones(n), p, g, g * p, x])
    names = BASE_TERMS + cov_names
    if int(np.linalg.matrix_rank(design)) < design.shape[1]:
        raise EstimationError(
            "the design matrix is rank deficient (a covariate is collinear with the 2×2 terms)",
            where="covariates",
            fix="drop covariates that are constant within a cell or collinear with others",
        )
    model = OLS(y_arr, design) if w is None else WLS(y_arr, design, weights=w)
    n_clusters = n_treated_clusters = 0
    if cov_type == "cluster":
        if cluster is None:
            raise EstimationError(
                "cov_type='cluster' needs cluster labels",
                where="cluster",
                fix="pass one cluster label per observation, or use HC1",
            )
        labels = np.asarray(cluster).reshape(-1)
        if labels.shape[0] != n or pd.isna(labels).any():
            raise EstimationError(
                "cluster must have one non-missing label per observation",
                where="cluster",
                fix="align the cluster labels with y",
            )
        codes = pd.factorize(labels)[0]
        n_clusters = int(codes.max()) + 1
        if n_clusters < 2:
            raise EstimationError(
                "cluster-robust inference needs at least two clusters",
                where="cluster",
                fix="use HC1",
            )
        res = model.fit(cov_type="cluster", cov_kwds={"groups": codes})
        df = float(n_clusters - 1)
        n_treated_clusters = len(np.unique(codes[g == 1]))
    else:
        res = model.fit(cov_type=cov_type)
        df = float(res.df_resid)
    params = np.asarray(res.params, dtype=float)
    vcov = np.asarray(res.cov_params(), dtype=float)
    j = names.index(DID_TERM)
    est, se = float(params[j]), float(np.sqrt(vcov[j, j]))
    t = est / se
    crit = float(stats.t.ppf(0.5 + level / 2, df))
    return Did2x2Result(
        estimate=est,
        std_error=se,
        statistic=t,
        p_value=float(2 * stats.t.sf(abs(t), df)),
        ci_lower=est - crit * se,
        ci_upper=est + crit * se,
        df=df,
        level=level,
        cov_type=cov_type,
        n_obs=n,
        n_clusters=n_clusters,
        n_treated_clusters=n_treated_clusters,
        names=names,
        params=params,
        vcov=vcov,
        cells=CellSummary(means, counts),
    )
