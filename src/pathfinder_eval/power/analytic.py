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
    cohort = model.cohort_eta2 * model.cohort_decay**lag / np.sqrt(np.outer(sizes, sizes))
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
    """vcov: covariance of the effect parameters (k × k); variance: of the chosen contrast."""

    vcov: np.ndarray
    variance: float


def effect_columns(design: np.ndarray, shape: Literal["immediate", "exposure_time"]):
    """(I, T, k) effect regressors: one column (immediate effect) or one per exposure time
    (ETI: periods since the cluster started, Kenny et al. 2022)."""
    x = np.nan_to_num(design)
    if shape == "immediate":
        return x[:, :, None]
    exposure = np.cumsum(x, axis=1) * x  # 1, 2, ... in treated cells
    k = int(exposure.max())
    return np.stack([(exposure == e).astype(float) for e in range(1, k + 1)], axis=2)


def gls_precision(
    design: np.ndarray,
    model: VarianceModel,
    cell_size: float | np.ndarray,
    shape: Literal["immediate", "exposure_time"] = "immediate",
    weights: np.ndarray | None = None,
) -> Precision:
    """GLS covariance of the effect(s) with categorical period effects, summed over clusters.

    design: (I, T) with NaN for cells not measured; cell_size: scalar or (I, T);
    weights: contrast of the effect parameters (default: the single effect, or for ETI the
    time-averaged effect over all exposure times, TATE)."""
    n_clusters, periods = design.shape
    sizes = np.broadcast_to(np.asarray(cell_size, dtype=float), design.shape)
    effects = effect_columns(design, shape)
    k = effects.shape[2]
    info = np.zeros((periods + k, periods + k))
    for i in range(n_clusters):
        seen = ~np.isnan(design[i])
        z = np.column_stack([np.eye(periods), effects[i]])[seen]
        v = cell_covariance(model, periods, sizes[i], design[i])[np.ix_(seen, seen)]
        info += z.T @ np.linalg.solve(v, z)
    vcov = np.linalg.inv(info)[periods:, periods:]
    w = np.full(k, 1.0 / k) if weights is None else np.asarray(weights, dtype=float)
    return Precision(vcov, float(w @ vcov @ w))


def power(effect: float, variance: float, alpha: float = 0.05, df: float | None = None) -> float:
    """Two-sided power of a Wald test: both rejection tails, z reference or t(df)."""
    dist = stats.norm if df is None else stats.t(df)
    crit = dist.ppf(1 - alpha / 2)
    shift = abs(effect) / np.sqrt(variance)
    return float(dist.cdf(shift - crit) + dist.cdf(-shift - crit))


def mdes(
    variance: float, target: float = 0.8, alpha: float = 0.05, df: float | None = None
) -> float:
    """Smallest |effect| with the target two-sided power."""
    se = np.sqrt(variance)
    return float(
        optimize.brentq(
            lambda d: power(d, variance, alpha, df) - target, 1e-12 * se, 100 * se, xtol=1e-14 * se
        )
    )


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
