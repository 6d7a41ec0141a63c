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
    treatment dummy the unit and period effects absorb (the units left have no treated cell,
    or no untreated one) is not estimable and left out.

    Only the point estimates are needed, and they come from one absorption: dropping a unit
    leaves the others' within-unit demeaning as it was, so each refit's cross-products of the
    unit-demeaned y, treatment dummy and period dummies are the panel's less that unit's own,
    and its estimate is the dummy's Frisch–Waugh–Lovell coefficient from them (the period
    block solved by a pseudo-inverse: the dummies sum to one, and a period seen only in the
    dropped unit is empty). That takes time linear in the cells, not cells × treated units.
    Cross-products lose accuracy where the dropped unit dominates them (a weight 10⁶ times
    the others') or the weights make the period block ill-conditioned: a refit whose error
    bound (`_downdated`) passes 1e-11 of its estimate is absorbed again exactly, as is one
    the bound cannot show estimable."""
    unit, names = pd.factorize(cells["unit"])
    treated = sorted(names[np.unique(unit[(cells["role"] == "treated").to_numpy()])])
    if len(treated) < 2:
        return {}
    period = pd.factorize(cells["period"])[0]
    w = cells["weight"].to_numpy(float) if weighted else np.ones(len(cells))
    ydx = cells[["y", "treated"]].to_numpy(float)
    m = np.zeros((len(cells), 2 + int(period.max()) + 1))  # y, dummy, period dummies
    m[:, :2] = ydx
    m[np.arange(len(cells)), 2 + period] = 1.0
    z = _within(m, unit, w)
    del m
    total = z.T @ (z * w[:, None])
    which = names.get_indexer(treated)
    # treated cells left without the unit: none, and the refit has nothing to estimate
    left = np.count_nonzero(ydx[:, 1]) - np.bincount(unit, weights=ydx[:, 1] != 0)[which]
    out = {}
    block = float(np.abs(np.linalg.eigvalsh(total[2:, 2:])).max(initial=0.0))
    batch = max(1, _BATCH_CELLS // z.shape[1] ** 2)
    for part in np.array_split(np.arange(len(which)), -(-len(which) // batch)):
        own = _own_cross_products(z, w, unit, which[part])
        estimate, sure = _downdated(total, block, own)
        for i, value, ok in zip(part, estimate, sure, strict=True):
            if left[i] < 0.5:
                continue
            refit = float(value) if ok else _refit_without(ydx, unit, period, w, which[i])
            if refit is not None:
                out[treated[i]] = refit
    return dict(sorted(out.items()))


# Treated units are downdated in batches of about this many (T + 2)² cross-product entries:
# 32 MB an array (a handful live at once), whatever the number of periods.
_BATCH_CELLS = 2**22
# Eigenvalues of a refit's period cross-products below this share of the largest are zero:
# the dummies' sum (exactly zero once demeaned) and periods seen only in the dropped unit.
_PERIOD_RTOL = 1e-11
_TRUST = 1e-11  # a downdated estimate's bounded relative error above which it is refitted


def _downdated(total: np.ndarray, block: float, own: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each refit's estimate from the panel's cross-products `total` (k, k) less a unit's own
    `own` (units, k, k), ordered y, treatment dummy, periods (`block`: the largest eigenvalue
    of total's period block), and whether it is sure: the dummy is not absorbed and its
    first-order error bound, from the perturbation eps·‖total‖ the subtraction leaves in the
    period block and the dummy's, amplified by the period block's smallest kept eigenvalue
    and by how much of the dummy the periods explain, is within _TRUST. An estimate that is
    not sure is decided by an exact refit."""
    rest = total[None] - own
    values, vectors = np.linalg.eigh(rest[:, 2:, 2:])
    top = values[:, -1:]
    kept = values > _PERIOD_RTOL * np.maximum(top, np.finfo(float).tiny)
    inverse = np.where(kept, 1.0 / np.where(kept, values, 1.0), 0.0)
    b = np.einsum("umk,umj->ukj", vectors, rest[:, 2:, :2])  # period block's eigenbasis
    resid = rest[:, :2, :2] - np.einsum("uki,uk,ukj->uij", b, inverse, b)
    spread, cross = resid[:, 1, 1], resid[:, 0, 1]
    smallest = np.where(kept, values, np.inf).min(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        cancel = np.maximum(total[0, 0] / rest[:, 0, 0], total[1, 1] / rest[:, 1, 1])
        bound = 10 * np.finfo(float).eps * (block / smallest + cancel) * rest[:, 1, 1] / spread
        estimate = cross / spread
    sure = (spread > 1e-10 * rest[:, 1, 1]) & (bound <= _TRUST)
    return estimate, sure


def _refit_without(
    ydx: np.ndarray, unit: np.ndarray, period: np.ndarray, w: np.ndarray, drop: int
) -> float | None:
    """The refit without unit code `drop`, absorbed exactly (the few the downdate cannot
    vouch for); None when its treatment dummy is absorbed."""
    keep = unit != drop
    codes = (pd.factorize(unit[keep])[0], pd.factorize(period[keep])[0])
    r = absorb_two_way(ydx[keep], *codes, w[keep])
    spread = (w[keep] * r[:, 1] ** 2).sum()
    if spread > 1e-10 * (w[keep] * ydx[keep, 1] ** 2).sum():
        return float((w[keep] * r[:, 0] * r[:, 1]).sum() / spread)
    return None


def _own_cross_products(
    z: np.ndarray, w: np.ndarray, unit: np.ndarray, which: np.ndarray
) -> np.ndarray:
    """Σ w·z zᵀ over the rows of each unit of `which` (codes into `unit`): (len(which), k, k),
    units with the same number of rows batched together."""
    order = np.argsort(unit, kind="stable")
    counts = np.bincount(unit)
    start = np.cumsum(counts) - counts
    out = np.empty((len(which), z.shape[1], z.shape[1]))
    of = counts[which]
    for c in np.unique(of):
        pick = np.flatnonzero(of == c)
        rows = order[start[which[pick]][:, None] + np.arange(c)]  # (units, c)
        block = z[rows]
        out[pick] = np.einsum("uck,ucl->ukl", block * w[rows][..., None], block)
    return out


def _within(a: np.ndarray, unit: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The columns of a (n, p) less their weighted means within each unit (codes 0..U−1)."""
    totals = np.bincount(unit, weights=w)
    sums = np.zeros((len(totals), a.shape[1]))
    for j in range(a.shape[1]):  # one pass over the rows per column (np.add.at is slower)
        sums[:, j] = np.bincount(unit, weights=a[:, j] * w, minlength=len(totals))
    return a - (sums / totals[:, None])[unit]


def absorb_two_way(
    m: np.ndarray, unit: np.ndarray, period: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """Residuals of the columns of m (n, p) on unit and period dummies, exactly, for any
    (unbalanced) panel: demean within unit, then project on the unit-demeaned period dummies
    (Frisch–Waugh–Lovell). unit, period: (n,) integer codes 0..U−1, 0..T−1. With `weights`,
    the weighted least-squares residuals (weighted unit means, weighted projection)."""
    m = np.asarray(m, dtype=float).reshape(len(unit), -1)
    w = np.ones(len(unit)) if weights is None else np.asarray(weights, dtype=float)
    mu = _within(m, unit, w)
    dummies = np.zeros((len(unit), int(period.max()) + 1))
    dummies[np.arange(len(unit)), period] = 1.0
    pu = _within(dummies, unit, w)
    root = np.sqrt(w)[:, None]
    coef, *_ = np.linalg.lstsq(pu * root, mu * root, rcond=None)
    return mu - pu @ coef
