"""Inference for group-time ATTs and their aggregations: influence-function standard errors
(clustered), did's multiplier bootstrap with sup-t bands, Gaussian sup-t critical values, the
pre-test of parallel trends, and the cohort-stratified variance of aggregations with few
treated units (arrays from inference/cohort_stratified.py)."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from scipy import stats

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.estimators.did.group_time import ZERO_SE, GroupTimeATT
from pathfinder_eval.inference.cohort_stratified import CohortStratified, stratified_linear

IQR_NORMAL = stats.norm.ppf(0.75) - stats.norm.ppf(0.25)


BAND_DRAWS = 9999  # Gaussian draws for the sup-t critical value when inference is analytic


def cluster_sums(influence: np.ndarray, cluster: np.ndarray | None) -> np.ndarray:
    """Influence functions summed within clusters: (G, m); unchanged (n, m) when cluster is
    None (each unit its own cluster). cluster: (n,) integer codes 0..G−1."""
    if cluster is None:
        return influence
    codes = np.asarray(cluster)
    n_cl = int(codes.max()) + 1
    out = np.zeros((n_cl, influence.shape[1]))
    np.add.at(out, codes, influence)
    return out


def analytic_se(
    influence: np.ndarray, cluster: np.ndarray | None = None, zero: float = ZERO_SE
) -> np.ndarray:
    """Standard errors (m,) from influence functions (n, m): sqrt(Σ_c S_c²)/n with S_c the
    cluster sums (Callaway & Sant'Anna 2021, Theorem 2 and Remark 10). At or below `zero`
    (group_time.zero_se of the outcomes) → NaN."""
    n = influence.shape[0]
    s = cluster_sums(influence, cluster)
    se = np.sqrt(np.einsum("ij,ij->j", s, s)) / n
    return np.where(se <= zero, np.nan, se)


def influence_vcov(influence: np.ndarray, cluster: np.ndarray | None = None) -> np.ndarray:
    """Covariance (m, m) of the estimates: SᵀS / n² with S the cluster sums of (n, m)."""
    s = cluster_sums(influence, cluster)
    return (s.T @ s) / influence.shape[0] ** 2


@dataclass(frozen=True)
class Bootstrap:
    """Multiplier bootstrap. deviations: (B, m) draws of estimate − estimate*; std_error: (m,)
    IQR-based (NaN for degenerate columns); crit_value: sup-t critical value at `level` over
    the non-degenerate columns; draws, weights: what was drawn; n_clusters: G."""

    deviations: np.ndarray
    std_error: np.ndarray
    crit_value: float
    draws: int
    weights: str
    n_clusters: int
    level: float

    def sup_t(self, columns: slice | np.ndarray) -> float:
        """Sup-t critical value over a subset of the columns, from the same draws."""
        return sup_t_critical(self.deviations[:, columns], self.std_error[columns], self.level)


def sup_t_critical(deviations: np.ndarray, se: np.ndarray, level: float) -> float:
    """`level` quantile (type 1, as R) of max_j |δ_bj| / se_j over columns with se > 0
    (those at did's zero line are NaN already). deviations: (B, m); se: (m,)."""
    ok = np.isfinite(se) & (se > 0)
    if not ok.any():
        return float("nan")
    tmax = np.sort(np.max(np.abs(deviations[:, ok]) / se[ok], axis=1))
    return float(tmax[int(np.ceil(level * len(tmax))) - 1])


_SIGNS = (np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1) * 2.0 - 1.0).astype(
    np.float32
)


def _multipliers(rng: np.random.Generator, size: tuple[int, int], kind: str) -> np.ndarray:
    """Mean-zero, unit-variance multipliers: Rademacher, Mammen's two-point or Webb's six-point."""
    if kind == "rademacher":  # eight signs per random byte, through a 256 × 8 sign table
        n_bytes = (size[1] + 7) // 8
        raw = rng.integers(0, 256, size=(size[0], n_bytes), dtype=np.uint8)
        return np.take(_SIGNS, raw, axis=0).reshape(size[0], n_bytes * 8)[:, : size[1]]
    if kind == "mammen":
        s5 = np.sqrt(5.0)
        p = (s5 + 1.0) / (2.0 * s5)
        return np.where(rng.random(size) < p, (1.0 - s5) / 2.0, (1.0 + s5) / 2.0).astype(np.float32)
    if kind == "webb":
        vals = np.array([-np.sqrt(1.5), -1.0, -np.sqrt(0.5), np.sqrt(0.5), 1.0, np.sqrt(1.5)])
        return vals.astype(np.float32)[rng.integers(0, 6, size=size)]
    raise EstimationError(
        f"unknown bootstrap weights {kind!r}",
        where="inference.weights",
        fix="use rademacher, mammen or webb",
    )


def multiplier_bootstrap(
    influence: np.ndarray,
    draws: int,
    seed: int,
    *,
    weights: str = "rademacher",
    cluster: np.ndarray | None = None,
    level: float = 0.95,
    chunk: int = 64,
    zero: float = ZERO_SE,
) -> Bootstrap:
    """Multiplier bootstrap of Callaway & Sant'Anna (2021, Algorithm 1 and Remark 10).

    Each draw b perturbs the cluster sums S (G, m) of the influence functions (n, m) by
    i.i.d. multipliers v_bc: δ_b = Σ_c v_bc S_c / n. Standard errors are did's
    IQR(δ)/(Φ⁻¹(.75) − Φ⁻¹(.25)); the uniform band's critical value is the `level` quantile
    (type 1, as R) of max_j |δ_bj| / se_j. Draws come in chunks so memory stays O(chunk·G);
    multipliers and cluster sums enter the products in single precision (relative rounding
    ~1e−6, far below the Monte Carlo error of a few per cent), accumulated in double.
    """
    n = influence.shape[0]
    s = cluster_sums(influence, cluster)
    n_cl, m = s.shape
    # Rows sharing a pattern of non-zero columns form a block (for the unit-level bootstrap
    # there is one block per cohort: a unit enters only its cohort's cells and the cells it
    # is a comparison for), so each draw costs Σ_blocks rows × non-zero columns.
    # Multipliers are drawn for the rows in block order (i.i.d., so any fixed order is valid;
    # this one is a function of the data only), making each block a contiguous slice.
    nonzero = s != 0
    packed = np.packbits(nonzero, axis=1)
    order = np.lexsort(packed.T[::-1]) if m else np.arange(n_cl)
    srt = packed[order]
    starts = np.flatnonzero(np.r_[True, np.any(srt[1:] != srt[:-1], axis=1)]) if n_cl else []
    bounds = np.r_[starts, n_cl].astype(np.int64)
    blocks = []
    for lo, hi in pairwise(bounds):
        rows = order[lo:hi]
        cols = np.flatnonzero(nonzero[rows[0]])
        if len(cols):
            sub = np.ascontiguousarray(s[np.ix_(rows, cols)], dtype=np.float32)
            blocks.append((lo, hi, cols, sub))
    rng = np.random.default_rng(seed)
    delta = np.zeros((draws, m))
    for start in range(0, draws, chunk):
        b = min(chunk, draws - start)
        v = _multipliers(rng, (b, n_cl), weights)
        for lo, hi, cols, sub in blocks:
            delta[start : start + b, cols] += v[:, lo:hi] @ sub
    delta /= n
    srt = np.sort(delta, axis=0)
    lo, hi = int(np.ceil(0.25 * draws)) - 1, int(np.ceil(0.75 * draws)) - 1
    se = (srt[hi] - srt[lo]) / IQR_NORMAL
    se = np.where(se > zero, se, np.nan)
    return Bootstrap(delta, se, sup_t_critical(delta, se, level), draws, weights, n_cl, level)


def gaussian_sup_t(vcov: np.ndarray, level: float, seed: int, draws: int = BAND_DRAWS) -> float:
    """Sup-t critical value for a uniform band from N(0, R), R the correlation of `vcov`
    (m, m): the `level` quantile of max_j |Z_j| (Montiel Olea & Plagborg-Møller 2019)."""
    sd = np.sqrt(np.clip(np.diag(vcov), 0.0, None))
    ok = sd > 0
    if not ok.any():
        return float("nan")
    r = vcov[np.ix_(ok, ok)] / np.outer(sd[ok], sd[ok])
    vals, vecs = np.linalg.eigh(r)
    root = vecs * np.sqrt(np.clip(vals, 0.0, None))
    z = np.random.default_rng(seed).standard_normal((draws, ok.sum())) @ root.T
    return float(np.quantile(np.max(np.abs(z), axis=1), level))


def pretest(
    gt: GroupTimeATT,
    cluster: np.ndarray | None = None,
    zero: float = ZERO_SE,
    vcov: np.ndarray | None = None,
) -> dict[str, float | int] | None:
    """Wald pre-test of parallel trends: all pre-treatment ATT(g,t) (g > t) are zero,
    W = aᵀ V⁻¹ a against χ²(q) with V the influence-function covariance (did's summary), or
    `vcov` (K, K), the cells' covariance under another variance (CR2), where it is finite.
    None when there are no pre-treatment cells or V is singular."""
    if vcov is None:
        pre = (gt.group > gt.time) & ~np.isnan(analytic_se(gt.influence, cluster, zero))
        v = influence_vcov(gt.influence[:, pre], cluster)
    else:
        pre = (gt.group > gt.time) & np.isfinite(np.diag(vcov))
        v = vcov[np.ix_(pre, pre)]
    if not pre.any():
        return None
    a = gt.att[pre]
    if np.linalg.cond(v) > 1.0 / np.finfo(float).eps:
        return None
    w = float(a @ np.linalg.solve(v, a))
    q = int(pre.sum())
    return {"statistic": w, "df": q, "p_value": float(stats.chi2.sf(w, q))}


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
    weights @ gt.att; y: (n, T) the outcomes the cells were estimated from, balanced but for
    periods the design left out (NaN; no cell uses them, so their weights are 0)."""
    a = stratum_weights(gt, weights)
    return stratified_linear(y, np.isfinite(y), unit_strata(gt), a)
