"""Which LAs' effects are larger: de Chaisemartin & D'Haultfœuille's `predict_het`.

For effect ℓ, each switching LA counted in it gives S_g·(Y_{g,F_g−1+ℓ} − Y_{g,F_g−1}) (S_g = +1
for a rise, −1 for a fall), regressed on LA-level covariates with a fixed effect for each
switch date × starting treatment × direction (× stratum with trends_nonparam), weighted by the
LA-period's weight, with HC2 standard errors and a t reference on the residual degrees of
freedom, and an F test that every covariate's coefficient is zero; placebo ℓ the same with
Y_{g,F_g−1−ℓ} − Y_{g,F_g−1} over effect ℓ's LAs (the authors' rules, their Python port 0.1.9
checked in tests/reference/dcdh_multiplegt_dyn). A coefficient says how the effect moves with
the covariate among switchers; it is not a causal effect of the covariate.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from pathfinder_eval.errors import EstimationError


def group_covariates(
    x: np.ndarray, g_code: np.ndarray, names: tuple[str, ...], units: np.ndarray
) -> np.ndarray:
    """(G, k) each LA's covariate values from the rows' (n, k) and their LAs' codes (into
    `units`), which must not change within an LA (NaN where an LA has none)."""
    out = np.full((len(units), x.shape[1]), np.nan)
    for j, name in enumerate(names):
        column = pd.Series(x[:, j]).groupby(g_code)
        lo, hi = column.min(), column.max()
        varies = (lo != hi) & lo.notna()
        if varies.any():
            unit = units[int(varies.index[varies.to_numpy()][0])]
            raise EstimationError(
                f"predict_het covariate {name!r} changes over time in {unit}",
                where="options predict_het",
                fix="give covariates fixed for each LA (e.g. its size or deprivation before the "
                "pilot)",
            )
        out[lo.index.to_numpy(), j] = lo.to_numpy()
    return out


def heterogeneity(
    ymat: np.ndarray,
    f: np.ndarray,
    cells: np.ndarray,
    sign: np.ndarray,
    weight: np.ndarray,
    x: np.ndarray,
    names: tuple[str, ...],
    switchers: dict[int, np.ndarray],
    placebos: int,
) -> tuple[list[dict[str, Any]], np.ndarray]:
    """One row per (effect or placebo, covariate): ymat (G, T) outcomes, f (G,) switch dates
    (1-based), cells (G,) the fixed effects' cell codes, sign (G,) S_g, weight (G, T), x (G, k),
    switchers: effect ℓ → the LAs counted in it (G,). Intervals are the caller's: t(df).
    Also (G,) the switching LAs left out for a missing covariate, to be named."""
    out: list[dict[str, Any]] = []
    counted = np.logical_or.reduce(list(switchers.values()))
    missing = counted & np.isnan(x).any(axis=1)
    rows = np.arange(len(f))
    before = ymat[rows, np.clip(f.astype(int) - 2, 0, None)]  # Y at F_g − 1
    for lag in [*sorted(switchers), *(-i for i in range(1, placebos + 1) if i in switchers)]:
        ell = abs(lag)
        at = f.astype(int) - 2 + lag  # 0-based period F_g − 1 ± ℓ
        on = switchers[ell] & ~np.isnan(before) & (at >= 0)
        if lag > 0:
            on &= at < ymat.shape[1]
        idx = rows[on]
        y = sign[idx] * (ymat[idx, at[on]] - before[idx])
        w = weight[idx, f[idx].astype(int) - 2 + ell]  # the weight of effect ℓ's period
        keep = ~np.isnan(y) & ~np.isnan(x[idx]).any(axis=1)
        if not keep.any():
            continue
        out.extend(_regression(y[keep], x[idx][keep], cells[idx][keep], w[keep], names, lag))
    return out, missing


def _regression(
    y: np.ndarray,
    x: np.ndarray,
    cells: np.ndarray,
    w: np.ndarray,
    names: tuple[str, ...],
    lag: int,
) -> list[dict[str, Any]]:
    """WLS of y on the covariates and a dummy for each cell, HC2; the covariates' rows. An LA
    alone in its cell is fitted exactly by its dummy and says nothing about the covariates:
    residual 0 at leverage 1, whose HC2 term is 0/0 in floating point (NaN, on which the
    authors' port stops, or noise). It is left out of the fit, which gives HC2's limit (the
    coefficients and residual df do not change); `n` still counts it. A covariate that does
    not vary within the cells (a wave's attribute, or collinear with another) is not
    estimable: the rows say so (the port's pseudo-inverse reports a number); so is a row
    without residual df."""
    from statsmodels.regression.linear_model import WLS  # only when predict_het is asked for

    code = np.unique(cells, return_inverse=True)[1]
    shared = np.bincount(code)[code] > 1
    k = x.shape[1]
    est, se = np.full(k, np.nan), np.full(k, np.nan)
    df = p_joint = np.nan
    note = "no two LAs share a switch date, starting treatment and direction"
    if shared.any():
        dummies = code[shared, None] == np.unique(code[shared])[None, :]
        design = np.column_stack([x[shared], dummies.astype(float)])
        note = "the covariates do not vary within the switch-date cells (or are collinear)"
        if np.linalg.matrix_rank(design) == design.shape[1]:
            fit = WLS(y[shared], design, weights=w[shared]).fit(cov_type="HC2")
            est, df, note = fit.params[:k], float(fit.df_resid), ""
            cov = fit.cov_params()[:k, :k]
            if df > 0 and np.isfinite(cov).all():
                se = np.sqrt(np.diag(cov))
                wald = est @ np.linalg.solve(cov, est) / k
                p_joint = float(stats.f.sf(wald, k, df))
            else:
                note = "no residual degrees of freedom"
    return [
        {
            "row": f"effect {lag}" if lag > 0 else f"placebo {-lag}",
            "covariate": name,
            "estimate": float(est[j]),
            "std_error": float(se[j]),
            "df": df,
            "n": len(y),
            "p_joint": p_joint,
            "note": note,
        }
        for j, name in enumerate(names)
    ]
