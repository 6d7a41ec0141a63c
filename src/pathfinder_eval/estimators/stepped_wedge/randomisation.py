"""Randomisation inference for stepped-wedge trials: re-allocate clusters to sequences.

Under the sharp null that the intervention changes every outcome by exactly b, the outcomes
with b removed from the intervention cells, y − b·X, are what any allocation would have shown;
re-randomising clusters to the trial's sequences (same number per sequence) gives the exact
null distribution of a statistic (Fisher 1935; for stepped wedges Ji et al. 2017, Stat. Med.
36:1839–1850; Thompson et al. 2018, Stat. Med. 37:2487–2500). All distinct allocations are
enumerated when there are at most `draws` of them, otherwise `draws` are sampled (seeded) and
the observed allocation is counted with them. The interval is every b the test does not reject
at 1 − level (test inversion, found by bisection on each side of the estimate).

Statistics: "model_based" — the GLS effect estimate with variance parameters fitted by REML
to the null model (period effects only) on y − b·X, so they do not depend on the allocation;
"npwp" — the non-parametric within-period statistic of Thompson et al. (2018, Stat. Med.
37:2487–2500) as their Stata swpermute runs it (`withinperiod weightperiod(variance
_se[arm]^2): regress summary arm`): in each period the difference between the mean cluster
means of intervention and control clusters, averaged over periods with weights 1/SE², the
two-sample SE² = s²(1/n_intervention + 1/n_control) with s² the period's pooled within-arm
variance of the cluster means (periods without a contrast or without residual degrees of
freedom are left out); "within_period" — the same average with swpermute's default weights
`weightperiod(N)`, (1/n_intervention + 1/n_control)⁻¹, which ignore how variable each period is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.estimators.stepped_wedge.design import intervention_cells
from pathfinder_eval.estimators.stepped_wedge.lmm import (
    CellSummaries,
    FixedEffects,
    RemlFit,
    cluster_precisions,
    fit_reml,
    fixed_effects,
)
from pathfinder_eval.inference.permutation import Allocations, allocations, invert_test
from pathfinder_eval.settings import Shape, Statistic, Structure

# Statistics this close to the observed one count as at least as extreme (ties in exact
# enumeration must not depend on rounding).
TIE_TOL = 1e-10


_CHUNK = 2048


@dataclass(frozen=True)
class RandomisationResult:
    """Randomisation test of a constant effect. estimate: the statistic at b = 0 for the
    observed allocation; null: (M,) the statistic over allocations at b = 0; p_value: share of
    allocations at least as extreme (two-sided); ci_lower, ci_upper: test-inversion interval;
    allocations, exact, total: as in `Allocations`."""

    statistic: Statistic
    estimate: float
    null: np.ndarray
    p_value: float
    ci_lower: float
    ci_upper: float
    allocations: int
    exact: bool
    total: int


def _shifted(cells: CellSummaries, treated: np.ndarray, b: float) -> CellSummaries:
    """The cell summaries with b removed from intervention cells (within-cell SS unchanged)."""
    return CellSummaries(cells.mean - b * treated, cells.n, cells.ssw, cells.observed)


def model_based_statistics(
    cells: CellSummaries,
    starts: np.ndarray,
    fe: FixedEffects,
    shape: Shape,
    contrast: np.ndarray,
    structure: Structure,
    warm: RemlFit | None = None,
) -> tuple[np.ndarray, RemlFit]:
    """(M,) GLS contrast estimates under each allocation in `starts` (M, I), with variance
    parameters from a REML fit of the period-only model to these cells (started from `warm`
    when given), and that fit."""
    periods_only = fe.X[:, :, : fe.effect[0]]
    null_fit = fit_reml(cells, periods_only, structure, warm)
    if not null_fit.converged:
        raise EstimationError(
            "the REML fit of the null model did not converge during randomisation inference",
            where="inference.method",
            fix="use kenward_roger inference or the within_period statistic",
        )
    prec = cluster_precisions(cells, structure, null_fit.theta)
    n_clusters = cells.mean.shape[0]
    seqs = np.unique(starts)
    a = np.empty((n_clusters, len(seqs), fe.X.shape[2], fe.X.shape[2]))
    b = np.empty((n_clusters, len(seqs), fe.X.shape[2]))
    for k, s in enumerate(seqs):
        x = fixed_effects(cells.observed, np.full(n_clusters, s), shape, like=fe).X
        px = prec @ x
        a[:, k] = np.einsum("itp,itq->ipq", x, px)
        b[:, k] = np.einsum("itp,it->ip", px, cells.mean * cells.observed)
    index = np.searchsorted(seqs, starts)
    out = np.empty(len(starts))
    rows = np.arange(n_clusters)
    for lo in range(0, len(starts), _CHUNK):
        idx = index[lo : lo + _CHUNK]
        m = a[rows, idx].sum(axis=1)
        rhs = b[rows, idx].sum(axis=1)
        out[lo : lo + _CHUNK] = np.linalg.solve(m, rhs[..., None])[..., 0] @ contrast
    return out, null_fit


def within_period_statistics(
    cells: CellSummaries, starts: np.ndarray, weights: str = "count"
) -> np.ndarray:
    """(M,) within-period statistics (module docstring) under each allocation in `starts`
    (M, I): weights "count" (swpermute's weightperiod(N)) or "variance" (NPWP)."""
    obs = cells.observed.astype(float)
    out = np.empty(len(starts))
    for lo in range(0, len(starts), _CHUNK):
        treated = intervention_cells(obs, starts[lo : lo + _CHUNK])  # (D, I, T)
        control = obs[None] - treated
        n_t, n_c = treated.sum(axis=1), control.sum(axis=1)  # (D, T)
        both = (n_t > 0) & (n_c > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean_t = (treated * cells.mean).sum(axis=1) / n_t
            mean_c = (control * cells.mean).sum(axis=1) / n_c
            diff = mean_t - mean_c
            weight = np.where(both, 1.0 / (1.0 / n_t + 1.0 / n_c), 0.0)
            if weights == "variance":
                dev_t = (cells.mean[None] - mean_t[:, None, :]) * treated
                dev_c = (cells.mean[None] - mean_c[:, None, :]) * control
                pooled = ((dev_t**2).sum(axis=1) + (dev_c**2).sum(axis=1)) / (n_t + n_c - 2.0)
                usable = both & (n_t + n_c > 2) & (pooled > 0)
                weight = np.where(usable, weight / pooled, 0.0)
        out[lo : lo + _CHUNK] = (np.where(both, diff, 0.0) * weight).sum(axis=1) / weight.sum(
            axis=1
        )
    return out


@dataclass
class NullDistribution:
    """The statistic over the allocations as a function of the hypothesised constant effect b:
    `statistics(b)` is (M,) with the observed allocation first, `p_value(b)` the two-sided
    share of allocations at least as extreme. The model-based statistic's REML null fit at the
    first b is the warm start of every later one."""

    cells: CellSummaries
    alloc: Allocations
    fe: FixedEffects
    shape: Shape
    contrast: np.ndarray
    structure: Structure
    statistic: Statistic
    warm: RemlFit | None = None

    @classmethod
    def build(
        cls,
        cells: CellSummaries,
        start: np.ndarray,
        fe: FixedEffects,
        shape: Shape,
        contrast: np.ndarray,
        structure: Structure,
        statistic: Statistic,
        draws: int,
        seed: int,
    ) -> NullDistribution:
        """start: (I,) observed first intervention period index of each cluster."""
        alloc = allocations(start, draws, seed)
        return cls(cells, alloc, fe, shape, contrast, structure, statistic)

    def statistics(self, b: float) -> np.ndarray:
        treated_obs = intervention_cells(self.cells.observed, self.alloc.starts[0])
        shifted = _shifted(self.cells, treated_obs, b)
        if self.statistic in ("within_period", "npwp"):
            weights = "variance" if self.statistic == "npwp" else "count"
            return within_period_statistics(shifted, self.alloc.starts, weights)
        stats, fit = model_based_statistics(
            shifted,
            self.alloc.starts,
            self.fe,
            self.shape,
            self.contrast,
            self.structure,
            self.warm,
        )
        self.warm = self.warm or fit
        return stats

    def p_value(self, b: float) -> float:
        stats = self.statistics(b)
        scale = max(float(np.abs(stats).max()), 1.0)
        return float(np.mean(np.abs(stats) >= np.abs(stats[0]) - TIE_TOL * scale))


def randomisation_test(
    cells: CellSummaries,
    start: np.ndarray,
    fe: FixedEffects,
    shape: Shape,
    contrast: np.ndarray,
    structure: Structure,
    statistic: Statistic,
    draws: int,
    seed: int,
    level: float,
) -> RandomisationResult:
    """Two-sided randomisation p-value for no effect and the interval by test inversion.

    start: (I,) observed first intervention period index of each cluster; fe, contrast: the
    design and the contrast the model-based statistic estimates."""
    dist = NullDistribution.build(
        cells, start, fe, shape, contrast, structure, statistic, draws, seed
    )
    null = dist.statistics(0.0)
    estimate = float(null[0])
    alpha = 1.0 - level
    spread = float(np.std(null)) or 1.0
    lower = invert_test(dist.p_value, estimate, -spread, alpha)
    upper = invert_test(dist.p_value, estimate, spread, alpha)
    return RandomisationResult(
        statistic,
        estimate,
        null,
        dist.p_value(0.0),
        lower,
        upper,
        len(dist.alloc.starts),
        dist.alloc.exact,
        dist.alloc.total,
    )
