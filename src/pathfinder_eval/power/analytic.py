"""Analytic variance and power of the treatment effect in cluster designs by generalised least
squares on cluster-period means (Hussey & Hughes 2007, Contemp. Clin. Trials 28:182–191;
Hooper et al. 2016, Stat. Med. 35:4718–4728 for nested exchangeable and closed cohorts; Kasza
et al. 2019, SMMR 28:703–716 for exponential decay).

A design is a clusters × periods matrix: 1 = intervention, 0 = control, NaN = no measurement
(incomplete designs, transition periods). Period effects are categorical. The covariance of a
cluster's cell means j, k is τ²·r^|j−k| + η²·q^|j−k|/m + [j = k](γ² + σ²/m)
+ ω²·x_j·x_k + ρτω·(x_j + x_k), x the cluster's intervention indicator, so Hussey & Hughes
(γ = η = ω = 0, r = 1), nested exchangeable (γ > 0), exponential decay (r < 1), closed cohorts
(η > 0: the same m individuals every period), open cohorts with an autoregressive individual
effect (q < 1, as SteppedPower's third AR element) and intervention effects that vary between
clusters (ω² > 0, correlated ρ with the cluster intercept: swCRTdesign's eta and rho; Hughes
et al. 2015, Stat. Methods Med. Res.) are each one `VarianceModel`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import optimize, stats

from pathfinder_eval.errors import DesignError


@dataclass(frozen=True)
class VarianceModel:
    """Variance components on the outcome scale.

    tau2: cluster (between-period shared) variance; gamma2: cluster-period variance
    (nested exchangeable); sigma2: individual residual variance; decay: r in τ²·r^|j−k|
    (exponential decay; 1 = no decay); cohort_eta2: individual random-effect variance in a
    closed cohort (the same m individuals measured every period); cohort_decay: q in
    η²·q^|j−k| (an individual effect that decays with the lag; 1 = constant);
    treatment_var: ω², the variance of the clusters' own intervention effects (a random slope
    on the intervention indicator; swCRTdesign's eta²); treatment_corr: ρ, their correlation
    with the cluster intercept (swCRTdesign's rho; needs decay = 1)."""

    tau2: float
    sigma2: float
    gamma2: float = 0.0
    decay: float = 1.0
    cohort_eta2: float = 0.0
    cohort_decay: float = 1.0
    treatment_var: float = 0.0
    treatment_corr: float = 0.0

    def __post_init__(self) -> None:
        if self.treatment_var < 0.0 or not -1.0 <= self.treatment_corr <= 1.0:
            raise ValueError("treatment_var must be ≥ 0 and treatment_corr in [−1, 1]")
        if self.treatment_corr != 0.0 and (self.decay != 1.0 or self.treatment_var == 0.0):
            raise ValueError(
                "treatment_corr correlates the intervention effect with a constant cluster "
                "intercept: it needs decay = 1 and treatment_var > 0"
            )

    @classmethod
    def from_icc(
        cls, icc: float, cac: float = 1.0, total: float = 1.0, decay: float = 1.0
    ) -> VarianceModel:
        """From the within-period ICC and the cluster autocorrelation (CAC = τ²/(τ² + γ²))."""
        between = icc * total
        return cls(
            tau2=between * cac, gamma2=between * (1.0 - cac), sigma2=total - between, decay=decay
        )


def cell_covariance(
    model: VarianceModel, periods: int, sizes: np.ndarray, treated: np.ndarray | None = None
) -> np.ndarray:
    """(T, T) covariance of one cluster's cell means; sizes: (T,) individuals per cell;
    treated: (T,) the cluster's intervention indicator (needed when treatment_var > 0)."""
    lag = np.abs(np.subtract.outer(np.arange(periods), np.arange(periods)))
    root = np.sqrt(sizes)  # √m_j·√m_k, not √(m_j·m_k): huge cells must not overflow
    cohort = model.cohort_eta2 * model.cohort_decay**lag / np.outer(root, root)
    cov = model.tau2 * model.decay**lag + cohort
    cov[np.diag_indices(periods)] += model.gamma2 + model.sigma2 / sizes
    if model.treatment_var > 0.0:
        if treated is None:
            raise ValueError("a model with treatment_var > 0 needs the intervention indicator")
        x = np.nan_to_num(np.asarray(treated, dtype=float))
        cross = model.treatment_corr * np.sqrt(model.tau2 * model.treatment_var)
        cov += model.treatment_var * np.outer(x, x) + cross * np.add.outer(x, x)
    return cov


@dataclass(frozen=True)
class Precision:
    """vcov: covariance of the effect parameters (k × k); variance: of the chosen contrast;
    exposure: the exposure time of each effect parameter (empty for the immediate effect)."""

    vcov: np.ndarray
    variance: float
    exposure: tuple[int, ...] = ()


def effect_columns(
    design: np.ndarray,
    shape: Literal["immediate", "exposure_time"],
    starts: np.ndarray | None = None,
) -> tuple[np.ndarray, tuple[int, ...]]:
    """(I, T, k) effect regressors and the exposure time of each: one column (immediate effect)
    or one per exposure time observed (ETI, Kenny et al. 2022). Exposure time counts periods
    since the cluster's start, as the stepped-wedge LMM counts it: `starts` (I,) gives each
    cluster's start index (T or more: never started), so transition periods left unmeasured
    (NaN) still count; by default a cluster starts at its first intervention cell."""
    x = np.nan_to_num(design)
    if shape == "immediate":
        return x[:, :, None], ()
    periods = design.shape[1]
    if starts is None:
        starts = np.array([np.argmax(row) if row.any() else periods for row in x == 1.0])
    exposure = (np.arange(periods)[None, :] - np.asarray(starts)[:, None] + 1) * (x == 1.0)
    times = tuple(sorted({int(e) for e in exposure[exposure > 0]}))
    return np.stack([(exposure == e).astype(float) for e in times], axis=2), times


def gls_precision(
    design: np.ndarray,
    model: VarianceModel,
    cell_size: float | np.ndarray,
    shape: Literal["immediate", "exposure_time"] = "immediate",
    weights: np.ndarray | None = None,
    starts: np.ndarray | None = None,
) -> Precision:
    """GLS covariance of the effect(s) with categorical period effects, summed over clusters.

    design: (I, T) with NaN for cells not measured; cell_size: scalar or (I, T);
    weights: contrast of the effect parameters (default: the single effect, or for ETI the
    time-averaged effect over all exposure times observed, TATE); starts: each cluster's start
    index, for exposure times counted through unmeasured transition periods (`effect_columns`)."""
    n_clusters, periods = design.shape
    sizes = np.broadcast_to(np.asarray(cell_size, dtype=float), design.shape)
    effects, times = effect_columns(design, shape, starts)
    k = effects.shape[2]
    info = np.zeros((periods + k, periods + k))
    for i in range(n_clusters):
        seen = ~np.isnan(design[i])
        z = np.column_stack([np.eye(periods), effects[i]])[seen]
        v = cell_covariance(model, periods, sizes[i], design[i])[np.ix_(seen, seen)]
        info += z.T @ np.linalg.solve(v, z)
    vcov = np.linalg.inv(info)[periods:, periods:]
    w = np.full(k, 1.0 / k) if weights is None else np.asarray(weights, dtype=float)
    return Precision(vcov, float(w @ vcov @ w), times)


def critical_value(alpha: float, df: float | None = None) -> float:
    """Two-sided critical value z_{1−α/2} (or t_{df, 1−α/2}) by the upper tail, so that a tiny
    α keeps its digits (1 − 1e-17 is 1.0 in floating point: ppf gave inf); α/2 below the
    smallest float is taken as that float."""
    dist = stats.norm if df is None else stats.t(df)
    return float(dist.isf(max(alpha / 2, np.finfo(float).smallest_subnormal)))


def power(effect: float, variance: float, alpha: float = 0.05, df: float | None = None) -> float:
    """Two-sided power of a Wald test: both rejection tails, z reference or t(df)."""
    dist = stats.norm if df is None else stats.t(df)
    crit = critical_value(alpha, df)
    shift = abs(effect) / np.sqrt(variance)
    return float(dist.cdf(shift - crit) + dist.cdf(-shift - crit))


def mdes(
    variance: float, target: float = 0.8, alpha: float = 0.05, df: float | None = None
) -> float:
    """Smallest |effect| with the target two-sided power (target above alpha: the power at
    effect 0). Power rises with |effect| from alpha, and reaches the target by
    se·(crit + q_target) (its upper tail alone does), so [0, that] brackets one root."""
    if not alpha < target < 1.0:
        raise ValueError(f"the target power {target:g} must lie between alpha {alpha:g} and 1")
    crit = critical_value(alpha, df)
    quantile = float(stats.norm.ppf(target) if df is None else stats.t(df).ppf(target))
    se = np.sqrt(variance)
    high = 1.01 * se * max(crit + quantile, 1.0)
    if not np.isfinite(high):
        raise ValueError(f"alpha {alpha:g} is too small: its critical value is not finite")
    return float(
        optimize.brentq(
            lambda d: power(d, variance, alpha, df) - target, 0.0, high, xtol=1e-14 * se
        )
    )


# A cluster's cell-mean covariance more ill-conditioned than this loses more than about 4 of
# float64's 16 digits in the GLS solve: the variances are refused as too extreme
CONDITION_LIMIT = 1e12


def effect_variance(
    design: np.ndarray,
    model: VarianceModel,
    cell_size: float | np.ndarray,
    *,
    file: str | None = None,
    design_at: str = "argument design",
    model_at: str = "the variance model",
) -> float:
    """Var(θ̂) of the immediate effect after the checks every caller (API and CLI) shares: a
    design that leaves a period unmeasured or does not separate the effect from the period
    effects (fixed-effect columns of less than full rank) and variances too extreme to solve
    with are DesignErrors located at `design_at` or `model_at` in `file`, not numpy's
    LinAlgError nor a meaningless number."""
    design = np.asarray(design, dtype=float)
    n_clusters, periods = design.shape
    seen = ~np.isnan(design)
    empty = np.flatnonzero(~seen.any(axis=0))
    if empty.size:
        raise DesignError(
            f"period {empty[0] + 1} has no measured cell",
            file=file,
            where=design_at,
            fix="drop the period, or measure some clusters in it",
        )
    fixed = np.column_stack([np.tile(np.eye(periods), (n_clusters, 1)), design.reshape(-1)])
    if np.linalg.matrix_rank(fixed[seen.reshape(-1)]) < periods + 1:
        raise DesignError(
            "the design does not separate the intervention effect from the period effects",
            file=file,
            where=design_at,
            fix="let the clusters start the intervention in two or more different periods, so "
            "that some period has both control and intervention clusters (a stepped wedge such "
            "as [6, 6, 6, 6])",
        )
    too_extreme = "the variances are too extreme to compute the effect's variance"
    fix = (
        f"keep the cluster variance (tau2, or icc) within about {CONDITION_LIMIT:.0e} times the "
        "within-cell variance (gamma2 + sigma2 / cell_size): e.g. a smaller cell_size, or an "
        "icc further from 1"
    )
    sizes = np.broadcast_to(np.asarray(cell_size, dtype=float), design.shape)
    for i in range(n_clusters):
        cov = cell_covariance(model, periods, sizes[i], design[i])[np.ix_(seen[i], seen[i])]
        if not np.isfinite(cov).all():
            raise DesignError(
                f"{too_extreme}: a cluster's cell-mean covariance overflows",
                file=file,
                where=model_at,
                fix=fix,
            )
        eig = np.linalg.eigvalsh(cov)
        if eig[0] <= 0 or eig[-1] / eig[0] > CONDITION_LIMIT:
            cond = f"{eig[-1] / eig[0]:.2g}" if eig[0] > 0 else "beyond float precision"
            raise DesignError(
                f"{too_extreme}: a cluster's cell-mean covariance has condition number "
                f"{cond} (at most {CONDITION_LIMIT:.0e} is computed)",
                file=file,
                where=model_at,
                fix=fix,
            )
    try:
        variance = gls_precision(design, model, cell_size).variance
    except np.linalg.LinAlgError:
        variance = np.nan
    if not (np.isfinite(variance) and variance > 0):
        raise DesignError(
            f"{too_extreme}: the information matrix is numerically singular",
            file=file,
            where=model_at,
            fix=fix,
        )
    return variance


def hussey_hughes_variance(design: np.ndarray, tau2: float, sigma2_cell: float) -> float:
    """Closed form of Var(θ̂) for a complete design under the HH model (Hussey & Hughes 2007,
    eq. 8), σ² being the variance of a cell mean: I σ²(σ² + Tτ²) / [(IU − W)σ² +
    (U² + ITU − TW − IV)τ²], U = ΣX, W = Σ_j(Σ_i X_ij)², V = Σ_i(Σ_j X_ij)²."""
    i, t = design.shape
    u = design.sum()
    w = (design.sum(axis=0) ** 2).sum()
    v = (design.sum(axis=1) ** 2).sum()
    num = i * sigma2_cell * (sigma2_cell + t * tau2)
    den = (i * u - w) * sigma2_cell + (u**2 + i * t * u - t * w - i * v) * tau2
    return float(num / den)


def stepped_wedge(
    clusters_per_sequence: list[int], periods: int | None = None, transition: int = 0
) -> np.ndarray:
    """Standard SW design: sequence s (0-based) starts in period s + 1 (+ transition periods
    left empty); periods default to sequences + 1."""
    seqs = len(clusters_per_sequence)
    periods = periods or seqs + 1
    rows = []
    for s, n in enumerate(clusters_per_sequence):
        row = np.array([1.0 if j >= s + 1 else 0.0 for j in range(periods)])
        row[s + 1 : s + 1 + transition] = np.nan
        rows += [row] * n
    return np.array(rows)


def clusters_needed(
    target: float,
    effect: float,
    sequences: int,
    model: VarianceModel,
    cell_size: float,
    alpha: float = 0.05,
    max_per_sequence: int = 200,
) -> int:
    """Smallest number of clusters per sequence reaching the target power (0 if none does)."""
    for n in range(1, max_per_sequence + 1):
        design = stepped_wedge([n] * sequences)
        if power(effect, gls_precision(design, model, cell_size).variance, alpha) >= target:
            return n
    return 0


def cell_size_needed(
    target: float,
    effect: float,
    design: np.ndarray,
    model: VarianceModel,
    alpha: float = 0.05,
    max_size: int = 1_000_000,
) -> int:
    """Smallest number of individuals per cluster-period reaching the target power for a
    design (0 if none up to max_size does: with a cluster-period variance γ² > 0 or decay
    the variance has a floor as cells grow, so power plateaus)."""

    def reaches(m: int) -> bool:
        return power(effect, gls_precision(design, model, m).variance, alpha) >= target

    if not reaches(max_size):
        return 0
    lo, hi = 0, 1  # reaches(hi) once the doubling stops; not reaches(lo)
    while not reaches(hi):
        lo, hi = hi, min(2 * hi, max_size)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if reaches(mid) else (mid, hi)
    return hi


def steps_needed(
    target: float,
    effect: float,
    clusters_per_step: int,
    model: VarianceModel,
    cell_size: float,
    alpha: float = 0.05,
    max_steps: int = 50,
) -> int:
    """Smallest number of steps (sequences of `clusters_per_step`, periods = steps + 1, the
    first all-control) of a standard stepped wedge reaching the target power (0 if none up to
    max_steps does). One step is not a stepped wedge: every cluster would switch in the same
    period, so the effect would be confounded with it; the search starts at two."""
    for s in range(2, max_steps + 1):
        design = stepped_wedge([clusters_per_step] * s)
        if power(effect, gls_precision(design, model, cell_size).variance, alpha) >= target:
            return s
    return 0
