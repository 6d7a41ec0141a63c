"""Two-way fixed-effects regressions shared by the DiD estimators: the linearmodels fit with
CR1 by unit, exact two-way absorption, leave-one-treated-out refits and few-cluster warnings."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from linearmodels import PanelOLS
from linearmodels.panel.utility import AbsorbingEffectError

from pathfinder_eval.errors import EstimationError

INFERENCE_LABEL = "cluster-robust by unit (CR1), t(G−1) reference"
# How CR1's small-sample factor counted the absorbed effects (settings.Inference).
ABSORBED = {
    "nested": "unit effects nested in the clusters not counted, as fixest and Stata",
    "counted": "every absorbed effect counted, as R lm with vcovCL",
}


def cr1_label(absorbed: str) -> str:
    """The CR1 label with how its small-sample factor counted the absorbed effects."""
    return f"{INFERENCE_LABEL} ({ABSORBED[absorbed]})"


@dataclass(frozen=True)
class PanelFit:
    """A fixed-effects regression. params: (k,); vcov: (k, k); names: k term names."""

    names: tuple[str, ...]
    params: np.ndarray
    vcov: np.ndarray
    n_obs: int
    n_clusters: int


def fit_twfe(
    cells: pd.DataFrame, regressors: list[str], weighted: bool = False, nested: bool = True
) -> PanelFit:
    """OLS of y on regressors with unit and period effects; CR1 covariance clustered by unit.

    CR1 is G/(G−1)·(N−1)/(N−K)·sandwich. With `nested` (the default, as fixest's
    `fixef.K = "nested"`, Stata's `xtreg, fe vce(cluster)` and `reghdfe`) the unit effects,
    nested in the unit clusters, are left out of K: K = regressors + periods. Otherwise every
    absorbed effect counts, as linearmodels computes it with `debiased=True,
    group_debias=True` (identical to R lm with sandwich::vcovCL; checked in tests).
    """
    data = cells.set_index(["unit", "period"])
    model = PanelOLS(
        data["y"],
        data[regressors],
        entity_effects=True,
        time_effects=True,
        weights=data["weight"] if weighted else None,
        check_rank=False,
    )
    try:
        res = model.fit(cov_type="clustered", cluster_entity=True, debiased=True, group_debias=True)
    except AbsorbingEffectError:
        raise EstimationError(
            f"{', '.join(regressors)} cannot be told apart from the unit and period effects "
            "(no treated cell varies apart from them in these data)",
            where="data",
            fix="check that the panel has periods before and after the starts, and comparison "
            "units observed in them",
        ) from None
    except ValueError as err:  # linearmodels' refusal when no residual is left
        if "no residual degrees of freedom" not in str(err):
            raise
        raise EstimationError(
            f"{len(data)} cells are fully used by {len(regressors)} regressor(s) and the unit and "
            "period effects: no residual is left to estimate a variance from",
            where="data",
            fix="include more comparison units or periods, or fewer leads and lags",
        ) from None
    vcov = res.cov.to_numpy()
    if nested:  # (N − K_all)/(N − K_nested) turns linearmodels' factor into fixest's
        k_nested = len(regressors) + cells["period"].nunique()
        vcov = vcov * float(res.df_resid) / (int(res.nobs) - k_nested)
    return PanelFit(
        tuple(regressors),
        res.params.to_numpy(),
        vcov,
        int(res.nobs),
        int(cells["unit"].nunique()),
    )


def leave_one_treated_out(cells: pd.DataFrame, weighted: bool) -> dict[str, float]:
    """The TWFE estimate re-fitted without each treated unit in turn (robustness: is one LA
    driving the result?). Empty when there are fewer than two treated units; a refit whose
    treatment dummy the unit and period effects absorb (the units left have no untreated
    cell) is not estimable and left out. Only the point estimate is needed, so each refit is
    the exact two-way absorption (Frisch–Waugh–Lovell) of y and the treatment dummy, not a
    full regression with its covariance."""
    treated = sorted(set(cells.loc[cells["role"] == "treated", "unit"]))
    if len(treated) < 2:
        return {}
    unit, period = cells["unit"].to_numpy(), cells["period"].to_numpy()
    ydx = cells[["y", "treated"]].to_numpy(float)
    weights = cells["weight"].to_numpy(float) if weighted else np.ones(len(cells))
    out = {}
    for u in treated:
        keep = unit != u
        w = weights[keep]
        codes = (pd.factorize(unit[keep])[0], pd.factorize(period[keep])[0])
        r = absorb_two_way(ydx[keep], *codes, w)
        spread = (w * r[:, 1] ** 2).sum()
        if spread > 1e-10 * (w * ydx[keep, 1] ** 2).sum():
            out[u] = float((w * r[:, 0] * r[:, 1]).sum() / spread)
    return out


def absorb_two_way(
    m: np.ndarray, unit: np.ndarray, period: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """Residuals of the columns of m (n, p) on unit and period dummies, exactly, for any
    (unbalanced) panel: demean within unit, then project on the unit-demeaned period dummies
    (Frisch–Waugh–Lovell). unit, period: (n,) integer codes 0..U−1, 0..T−1. With `weights`,
    the weighted least-squares residuals (weighted unit means, weighted projection)."""
    m = np.asarray(m, dtype=float).reshape(len(unit), -1)
    n_units = int(unit.max()) + 1
    w = np.ones(len(unit)) if weights is None else np.asarray(weights, dtype=float)
    totals = np.bincount(unit, weights=w, minlength=n_units)

    def within(a: np.ndarray) -> np.ndarray:
        sums = np.zeros((n_units, a.shape[1]))
        np.add.at(sums, unit, a * w[:, None])
        return a - (sums / totals[:, None])[unit]

    mu = within(m)
    dummies = np.zeros((len(unit), int(period.max()) + 1))
    dummies[np.arange(len(unit)), period] = 1.0
    pu = within(dummies)
    root = np.sqrt(w)[:, None]
    coef, *_ = np.linalg.lstsq(pu * root, mu * root, rcond=None)
    return mu - pu @ coef
