"""Fast simulation power and MDES for stepped-wedge trial designs analysed by the LMM on cells.

A replicate draws each cluster's cell means exactly, N(δ·X_i, V_i) with V_i the
`VarianceModel`'s covariance of cell means, and each cell's within-cell sum of squares
σ²·χ²(m − 1), then fits the real REML estimator (estimators.sw_lmm.fit_reml, as SteppedWedge
does) with Kenward-Roger, Satterthwaite or model-based inference. No data frame or panel is
built, so a 10-cluster replicate costs a few milliseconds. Period effects are zero in the
simulated data: with categorical period effects the analysis is invariant to them. Each REML
fit starts from the data-generating variance parameters instead of the estimator's five default
starts: one optimiser run instead of five, and in 4,000 replicates of four designs it never
ended at a worse deviance than the five starts and gave the same estimates to 1e-11
(tests/test_power_simulation.py checks a sample of replicates).

Replicate r draws from SeedSequence(seed, spawn_key=(r,)) (the r-th child of the run's seed)
and replicates run in chunks, one task per chunk, so results are identical in this process,
on local processes or on Dask, for any chunk size. A fit that does not converge gives NaN
(estimate, p-value): it counts as not rejecting and is reported in `SimulatedPower.failed`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats
from tqdm import tqdm

from pathfinder_eval.estimators.stepped_wedge.design import (
    TrialArrays,
    check_design,
    effect_contrasts,
)
from pathfinder_eval.estimators.stepped_wedge.lmm import (
    CellSummaries,
    FixedEffects,
    fit_reml,
    fixed_effects,
    kenward_roger_df,
    satterthwaite_df,
    small_sample,
)
from pathfinder_eval.estimators.stepped_wedge.lmm_estimator import SteppedWedge
from pathfinder_eval.inference.policy import default_lmm_method
from pathfinder_eval.pipeline import build_estimator
from pathfinder_eval.power.analytic import VarianceModel, cell_covariance, gls_precision, mdes
from pathfinder_eval.power.design import trial_matrix, trial_model
from pathfinder_eval.power.expected_df import true_parameters
from pathfinder_eval.power.simulate import SimulatedPower, _analysis_index
from pathfinder_eval.settings import Structure
from pathfinder_eval.spec import DesignSpec
from pathfinder_eval.workers import available_workers

Method = Literal["kenward_roger", "satterthwaite", "model_based"]
METHODS: tuple[Method, ...] = ("kenward_roger", "satterthwaite", "model_based")


@dataclass(frozen=True)
class TrialModel:
    """A trial to simulate and its analysis.

    design: (I, T) 1 = intervention, 0 = control, NaN = not measured (power.analytic); each
    cluster's measured cells must be control up to its start and intervention from it.
    model: the data-generating variance components (cohort_eta2 must be 0: cross-sectional
    sampling, for which cell summaries are exact); cell_size: individuals per cell, scalar or
    (I, T); structure: the LMM's covariance; inference: the effect's SE and df; analysis,
    outcome: labels for the results."""

    design: np.ndarray
    model: VarianceModel
    cell_size: float | np.ndarray
    structure: Structure = "nested_exchangeable"
    inference: Method = "kenward_roger"
    analysis: str = "stepped_wedge"
    outcome: str = "y"


@dataclass(frozen=True)
class _Prepared:
    """What every replicate of a design shares: the analysis's fixed effects and contrast,
    the Cholesky factors of the cell-mean covariances (zero on unmeasured cells)."""

    trial: TrialModel
    observed: np.ndarray
    n: np.ndarray
    treated: np.ndarray
    chol: np.ndarray
    fe: FixedEffects
    contrast: np.ndarray
    start: np.ndarray


def _prepare(trial: TrialModel) -> _Prepared:
    """Check the design and factor its covariances (once per task, not per replicate)."""
    design = np.asarray(trial.design, dtype=float)
    if trial.model.cohort_eta2 != 0.0:
        raise ValueError("closed cohorts (cohort_eta2 > 0) are not simulated on cell summaries")
    if trial.inference not in METHODS:
        raise ValueError(f"inference must be one of {METHODS}, not {trial.inference!r}")
    observed = ~np.isnan(design)
    n = np.where(observed, np.broadcast_to(np.asarray(trial.cell_size, float), design.shape), 0)
    if (n[observed] < 1).any():
        raise ValueError("every measured cell needs at least one individual")
    n_clusters, n_periods = design.shape
    treated = np.nan_to_num(design) == 1.0
    start = np.array([np.argmax(row) if row.any() else n_periods for row in treated])
    after = np.arange(n_periods)[None, :] >= start[:, None]
    if (treated != (after & observed)).any():
        raise ValueError("each cluster must stay in the intervention from its first treated cell")
    cells = CellSummaries(np.zeros(design.shape), n, np.zeros(design.shape), observed)
    fe = fixed_effects(observed, start, "immediate")
    check_design(TrialArrays(cells, start, tuple(map(str, range(n_clusters))), ()), fe)
    chol = np.zeros((n_clusters, n_periods, n_periods))
    for i in range(n_clusters):
        seen = np.flatnonzero(observed[i])
        cov = cell_covariance(trial.model, n_periods, np.where(observed[i], n[i], 1.0), treated[i])
        chol[i][np.ix_(seen, seen)] = np.linalg.cholesky(cov[np.ix_(seen, seen)])
    contrast = next(iter(effect_contrasts(fe, "immediate", None).values())).vector
    start = true_parameters(trial.model, trial.structure)
    return _Prepared(trial, observed, n, treated.astype(float), chol, fe, contrast, start)


def _draw(prep: _Prepared, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One replicate's random part: cell-mean deviations (I, T) and within-cell sums of
    squares (I, T); unmeasured cells are drawn too (then zeroed) so streams never shift."""
    z = rng.standard_normal(prep.n.shape)
    chi = rng.chisquare(np.maximum(prep.n - 1.0, 1.0))
    noise = np.einsum("itu,iu->it", prep.chol, z)
    ssw = np.where(prep.observed & (prep.n > 1), prep.trial.model.sigma2 * chi, 0.0)
    return noise, ssw


def _analyse(prep: _Prepared, cells: CellSummaries) -> tuple[float, float, float]:
    """(estimate, SE, df) of the effect as SteppedWedge reports it (df inf: normal reference);
    all NaN when the REML fit did not converge (SteppedWedge would stop with an error)."""
    slope = prep.treated if prep.trial.structure == "random_slope" else None
    fit = fit_reml(cells, prep.fe.X, prep.trial.structure, prep.start, slope=slope)
    if not fit.converged:
        return np.nan, np.nan, np.nan
    lvec = prep.contrast
    est = float(lvec @ fit.beta)
    method = prep.trial.inference
    if method == "model_based":
        return est, float(np.sqrt(lvec @ fit.vcov @ lvec)), np.inf
    ss = small_sample(fit, cells, prep.fe.X)
    if method == "kenward_roger":
        se = float(np.sqrt(lvec @ ss.vcov_kr @ lvec))
        return est, se, kenward_roger_df(ss, fit.vcov, lvec)
    return est, float(np.sqrt(lvec @ fit.vcov @ lvec)), satterthwaite_df(ss, fit.vcov, lvec)


@dataclass(frozen=True)
class Chunk:
    """One task: replicates start..stop − 1 of a run, at each effect (picklable, small)."""

    trial: TrialModel
    effects: tuple[float, ...]
    seed: int
    start: int
    stop: int


def run_chunk(chunk: Chunk) -> np.ndarray:
    """(effects, 3, replicates) estimate, SE and df; the same draws at every effect (common
    random numbers)."""
    prep = _prepare(chunk.trial)
    out = np.empty((len(chunk.effects), 3, chunk.stop - chunk.start))
    for j, r in enumerate(range(chunk.start, chunk.stop)):
        noise, ssw = _draw(
            prep, np.random.default_rng(np.random.SeedSequence(chunk.seed, spawn_key=(r,)))
        )
        for e, effect in enumerate(chunk.effects):
            mean = np.where(prep.observed, effect * prep.treated + noise, 0.0)
            cells = CellSummaries(mean, prep.n, ssw, prep.observed)
            out[e, :, j] = _analyse(prep, cells)
    return out


def p_values(est: np.ndarray, se: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Two-sided Wald p-values with a t(df) reference (df inf: normal), as stepped_wedge's
    wald_row; NaN stays NaN."""
    return 2.0 * stats.t.sf(np.abs(est) / se, df)


def simulate_replicates(
    trial: TrialModel,
    n_sims: int,
    seed: int,
    effects: Iterable[float],
    workers: int | None = None,
    scheduler: str | None = None,
    chunk_size: int | None = None,
    progress: bool = True,
) -> np.ndarray:
    """(effects, 3, n_sims) estimate, SE, df of every replicate at every effect. workers:
    local processes (1: this process; default: all cores); scheduler: a Dask address instead;
    chunk_size: replicates per task (default: about four tasks per worker, at most 250)."""
    effects = tuple(float(e) for e in effects)
    _prepare(trial)  # design errors here, not in a worker
    n_workers = workers or available_workers()
    size = chunk_size or max(1, min(250, -(-n_sims // (4 * n_workers))))
    chunks = [Chunk(trial, effects, seed, a, min(a + size, n_sims)) for a in range(0, n_sims, size)]
    show = progress and sys.stderr.isatty()
    if scheduler is not None:
        parts = _on_dask(chunks, scheduler, show)
    elif n_workers == 1:
        parts = list(tqdm(map(run_chunk, chunks), total=len(chunks), disable=not show))
    else:
        with ProcessPoolExecutor(max_workers=n_workers) as pool:
            parts = list(tqdm(pool.map(run_chunk, chunks), total=len(chunks), disable=not show))
    return np.concatenate(parts, axis=2)


def _on_dask(chunks: list[Chunk], scheduler: str, show: bool) -> list[np.ndarray]:
    from distributed import Client, as_completed

    with Client(scheduler) as client:
        futures = client.map(run_chunk, chunks, pure=False)
        for _ in tqdm(as_completed(futures), total=len(futures), disable=not show):
            pass
        return client.gather(futures)


def _power_result(
    trial: TrialModel, effect: float, alpha: float, reps: np.ndarray
) -> SimulatedPower:
    est, se, df = reps
    return SimulatedPower(
        trial.analysis,
        trial.outcome,
        effect,
        alpha,
        est,
        p_values(est, se, df),
        failed=int(np.isnan(est).sum()),
    )


def simulate_trial_power(
    trial: TrialModel,
    n_sims: int,
    seed: int,
    effect: float,
    alpha: float = 0.05,
    workers: int | None = None,
    scheduler: str | None = None,
    chunk_size: int | None = None,
    progress: bool = True,
) -> SimulatedPower:
    """Power of the trial's analysis at `effect` from `n_sims` simulated trials."""
    reps = simulate_replicates(
        trial, n_sims, seed, (effect,), workers, scheduler, chunk_size, progress
    )
    return _power_result(trial, effect, alpha, reps[0])


@dataclass(frozen=True)
class SimulatedMdes:
    """Minimum detectable effect by simulation.

    mdes: the smallest effect whose simulated power reaches `target` (midpoint of the first
    step of the common-random-numbers power curve that does); interval: Monte-Carlo interval at
    `level` (the effects whose simulated power is within z·√(target(1 − target)/n) of the
    target); analytic: GLS MDES with the true variances and a z reference; null: the
    replicates at effect 0 (size); check: the same seeds refitted at the MDES (their power is
    the curve's there); curve: (effect, power) points from 0 to twice the MDES."""

    mdes: float
    interval: tuple[float, float]
    target: float
    level: float
    analytic: float
    null: SimulatedPower
    check: SimulatedPower
    curve: tuple[tuple[float, float], ...]


def power_curve(est0: np.ndarray, se: np.ndarray, df: np.ndarray, alpha: float):
    """The simulated power as a function of the effect δ from replicates fitted at δ = 0.

    Adding δ·x to the data, x a column of the LMM's X, leaves the REML fit's variance
    parameters, SE and df unchanged and moves the estimate by exactly δ (the restricted
    likelihood depends on the data only through residuals orthogonal to X), so replicate r
    rejects at δ iff |est0_r + δ| > c_r·se_r, c_r the t(df_r) critical value. Returns
    power(δ) for an array of δ (non-converged replicates never reject) and the sorted effects
    where it steps."""
    ok = ~np.isnan(est0)
    crit = stats.t.ppf(1.0 - alpha / 2.0, df[ok]) * se[ok]
    upper = np.sort(crit - est0[ok])  # rejects above: δ > upper_r
    lower = np.sort(-crit - est0[ok])  # rejects below: δ < lower_r
    n = len(est0)

    def power(delta: np.ndarray) -> np.ndarray:
        d = np.asarray(delta, dtype=float)
        above = np.searchsorted(upper, d, side="left")
        below = len(lower) - np.searchsorted(lower, d, side="right")
        return (above + below) / n

    return power, np.sort(np.concatenate([upper, lower]))


def _first_reaching(power, steps: np.ndarray, level: float) -> float:
    """Midpoint of the first step (effect ≥ 0) of the curve whose power reaches `level`
    (inf if none)."""
    steps = np.concatenate([[0.0], steps[steps > 0.0]])
    ends = np.append(steps, np.inf)
    mids = 0.5 * (ends[:-1] + ends[1:])
    reached = np.flatnonzero(power(mids) >= level)
    if reached.size == 0:
        return float("inf")
    k = reached[0]
    return float(mids[k]) if np.isfinite(ends[k + 1]) else float(steps[k])


def simulated_mdes(
    trial: TrialModel,
    n_sims: int,
    seed: int,
    target: float = 0.8,
    alpha: float = 0.05,
    level: float = 0.95,
    workers: int | None = None,
    scheduler: str | None = None,
    chunk_size: int | None = None,
    progress: bool = True,
) -> SimulatedMdes:
    """Smallest effect with `target` power by simulation, with its Monte-Carlo interval.

    One run at effect 0 gives every replicate's fit; by `power_curve` the common-random-numbers
    power curve is then exact at every effect, and the MDES is where it first reaches the
    target. A second run refits the same seeds at the MDES (`check`): its power is the
    curve's, which confirms the shift on the real estimator. The interval inverts the
    binomial error of the power: the curve rises with the effect (but for the vanishing
    wrong-sign rejections), so the true MDES lies where the simulated curve is within z·SE of
    the target with probability ≈ `level`."""
    reps = simulate_replicates(
        trial, n_sims, seed, (0.0,), workers, scheduler, chunk_size, progress
    )
    est0, se, df = reps[0]
    power, steps = power_curve(est0, se, df, alpha)
    half = stats.norm.ppf(0.5 + level / 2.0) * np.sqrt(target * (1.0 - target) / n_sims)
    found = _first_reaching(power, steps, target)
    if not np.isfinite(found):
        raise ValueError(f"the simulated power never reaches {target:g}")
    interval = (
        _first_reaching(power, steps, target - half),
        _first_reaching(power, steps, target + half),
    )
    check = simulate_trial_power(
        trial, n_sims, seed, found, alpha, workers, scheduler, chunk_size, progress
    )
    grid = np.linspace(0.0, 2.0 * found, 21)
    design = np.asarray(trial.design, dtype=float)
    analytic = mdes(gls_precision(design, trial.model, trial.cell_size).variance, target, alpha)
    return SimulatedMdes(
        found,
        interval,
        target,
        level,
        analytic,
        _power_result(trial, 0.0, alpha, reps[0]),
        check,
        tuple(zip(grid.tolist(), power(grid).tolist(), strict=True)),
    )


def design_trial(
    spec: DesignSpec, analysis: str | None = None, outcome: str | None = None
) -> TrialModel | None:
    """The design's simulated trial and analysis as a `TrialModel` when this fast path applies:
    data.trial settings and a stepped_wedge analysis with an immediate effect, categorical
    periods and Kenward-Roger, Satterthwaite or model-based inference (after resolving
    "default"); None otherwise (simulate.simulate_power runs the full pipeline)."""
    trial = spec.data.trial
    if trial is None:
        return None
    index = _analysis_index(spec, analysis, outcome)
    estimator = build_estimator(spec, index, spec.seed)
    if not (
        isinstance(estimator, SteppedWedge)
        and estimator.effect == "immediate"
        and estimator.period_effects == "categorical"
    ):
        return None
    design = trial_matrix(spec)
    method = estimator.inference.method
    if method == "default":
        method = default_lmm_method()
    if method not in METHODS:
        return None
    return TrialModel(
        design,
        trial_model(trial),
        trial.cell_size,
        estimator.model,
        method,
        spec.analyses[index].id,
        outcome or spec.outcomes[0].id,
    )
