"""Size and coverage of stepped-wedge LMM inference with few clusters, by simulation.

Run on demand (not a test): python benchmarks/sw_coverage.py [REPLICATES] [WORKERS] [CLUSTERS…]
Trials with 4 and 5 clusters (one per sequence: the policy's few-cluster warning quotes them),
6, 8, 10 and 15 clusters (2, 2, 2 and 3 per sequence; one more period than sequences, the first
all-control) are simulated from a nested-exchangeable model (ICC 0.05,
CAC 0.8, 25 individuals per cell; cell means and within-cell sums of squares drawn exactly)
and analysed with the nested-exchangeable LMM (REML, categorical periods, immediate effect).
For each inference method: size = rejection rate of H0: θ = 0 at 5% when θ = 0, and coverage
of the 95% interval when θ = 0.3 (the normal reference with the model-based SE beside them).
"default" is the default analysis: the time-averaged effect from exposure-time indicators with
the Mancl-DeRouen variance and t(I − 1); it should keep size ≤ 5.5% and coverage within 94–96%.
Monte-Carlo standard errors are printed. Seeds: replicate r of design d uses
SeedSequence([d, r, effect index]); results do not depend on WORKERS.

`python benchmarks/sw_coverage.py --processes [REPLICATES] [WORKERS]` runs trials from processes
the default model does not assume (an effect that builds with exposure, AR(1) cluster-period
effects, clusters' own intervention effects) through candidate analyses: see the section
"trials that are not the model" below.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ProcessPoolExecutor

# one process per core already: BLAS threads on top oversubscribe the cores
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
from scipy import stats

from pathfinder_eval.estimators.stepped_wedge.design import effect_contrasts
from pathfinder_eval.estimators.stepped_wedge.lmm import (
    CellSummaries,
    fit_reml,
    fixed_effects,
    kenward_roger_df,
    satterthwaite_df,
    small_sample,
)
from pathfinder_eval.estimators.stepped_wedge.lmm_estimator import robust_variance
from pathfinder_eval.estimators.stepped_wedge.randomisation import NullDistribution
from pathfinder_eval.inference.policy import default_lmm_method
from pathfinder_eval.power.analytic import VarianceModel, cell_covariance, gls_precision

DESIGNS = {4: 1, 5: 1, 6: 2, 8: 2, 10: 2, 15: 3}  # clusters → clusters per sequence
EFFECTS = (0.0, 0.3)
ICC, CAC, CELL = 0.05, 0.8, 25
METHODS = ("default", "kenward_roger", "satterthwaite", "model_based", "randomisation")
RI_DRAWS = 999  # Monte-Carlo allocations when the design has more


def simulate(clusters: int, per_seq: int, effect: float, rng: np.random.Generator):
    """Cell summaries of one NE trial and each cluster's first intervention period index."""
    n_seq = clusters // per_seq
    periods = n_seq + 1
    start = np.repeat(np.arange(1, periods), per_seq)
    between = ICC
    tau2, gamma2, sigma2 = CAC * between, (1 - CAC) * between, 1 - between
    t = np.arange(periods)
    treated = (t[None, :] >= start[:, None]).astype(float)
    mean = (
        0.1 * t[None, :]
        + effect * treated
        + rng.normal(0, np.sqrt(tau2), (clusters, 1))
        + rng.normal(0, np.sqrt(gamma2), (clusters, periods))
        + rng.normal(0, np.sqrt(sigma2 / CELL), (clusters, periods))
    )
    ssw = sigma2 * rng.chisquare(CELL - 1, (clusters, periods))
    n = np.full((clusters, periods), float(CELL))
    return CellSummaries(mean, n, ssw, np.ones_like(n, dtype=bool)), start


def one(args: tuple[int, int, int, int]) -> dict[str, bool]:
    """Whether each method rejects the true effect (at 5%) in replicate r of a design and
    effect: under θ = 0 that is the size, under θ = 0.3 one minus the interval's coverage (the
    randomisation interval is the set of effects its test does not reject)."""
    clusters, per_seq, e_idx, r = args
    truth = EFFECTS[e_idx]
    rng = np.random.default_rng(np.random.SeedSequence([clusters, r, e_idx]))
    cells, start = simulate(clusters, per_seq, truth, rng)
    fe = fixed_effects(cells.observed, start, "immediate")
    fit = fit_reml(cells, fe.X, "nested_exchangeable")
    if not fit.converged:
        return {}
    ss = small_sample(fit, cells, fe.X)
    lvec = np.zeros(fe.X.shape[2])
    lvec[fe.effect[0]] = 1.0
    est = float(lvec @ fit.beta)
    se = float(np.sqrt(lvec @ fit.vcov @ lvec))
    wald = {
        "kenward_roger": (
            float(np.sqrt(lvec @ ss.vcov_kr @ lvec)),
            kenward_roger_df(ss, fit.vcov, lvec),
        ),
        "satterthwaite": (se, satterthwaite_df(ss, fit.vcov, lvec)),
        "model_based": (se, np.inf),
    }
    out = {m: abs(est - truth) / s > stats.t.ppf(0.975, df) for m, (s, df) in wald.items()}
    dist = NullDistribution.build(
        cells, start, fe, "immediate", lvec, "nested_exchangeable", "model_based", RI_DRAWS, r
    )
    out["randomisation"] = dist.p_value(truth) <= 0.05
    out["default"] = _default_misses(cells, start, truth)
    return out


def _default_misses(cells: CellSummaries, start: np.ndarray, truth: float) -> bool:
    """Whether the default analysis (the TATE from exposure-time indicators, nested
    exchangeable, with the default variance) misses the true effect at 95%."""
    fe = fixed_effects(cells.observed, start, "exposure_time")
    fit = fit_reml(cells, fe.X, "nested_exchangeable")
    lvec = next(iter(effect_contrasts(fe, "exposure_time", None).values())).vector
    robust = robust_variance(fit, cells, fe.X, default_lmm_method())
    se = float(np.sqrt(lvec @ robust.vcov @ lvec))
    return abs(float(lvec @ fit.beta) - truth) / se > stats.t.ppf(0.975, robust.df(lvec))


def main(reps: int, workers: int, designs: dict[int, int] = DESIGNS) -> None:
    print(
        f"Nested-exchangeable LMM, {reps} trials per cell (ICC {ICC}, CAC {CAC}, {CELL} per "
        "cluster-period); size at α = 5% under θ = 0, 95% coverage under θ = 0.3"
    )
    print(f"{'clusters':>8} {'method':15} {'size %':>8} {'MC SE':>6} {'cover %':>8} {'MC SE':>6}")
    with ProcessPoolExecutor(workers) as pool:
        for clusters, per_seq in designs.items():
            out = {}
            for e_idx, effect in enumerate(EFFECTS):
                jobs = [(clusters, per_seq, e_idx, r) for r in range(reps)]
                fits = [f for f in pool.map(one, jobs, chunksize=20) if f]
                out[effect] = fits
            for m in METHODS:
                rej = [f[m] for f in out[EFFECTS[0]]]
                cov = [not f[m] for f in out[EFFECTS[1]]]
                size, cover = np.mean(rej), np.mean(cov)
                print(
                    f"{clusters:8d} {m:15} {100 * size:8.2f} "
                    f"{100 * np.sqrt(size * (1 - size) / len(rej)):6.2f} "
                    f"{100 * cover:8.2f} {100 * np.sqrt(cover * (1 - cover) / len(cov)):6.2f}"
                )
            failed = 2 * reps - len(out[EFFECTS[0]]) - len(out[EFFECTS[1]])
            if failed:
                print(f"{'':8} ({failed} fits did not converge and are left out)")


# ------------------------------------------------------------------ trials that are not the model
# `python benchmarks/sw_coverage.py --processes [REPLICATES] [WORKERS]`: trials simulated from
# processes the default model does not assume (6, 10, 15 clusters as above), each analysed by
# candidate LMMs with Kenward-Roger inference; coverage is of the process's own estimand.
#   ne:    the default model itself (nested exchangeable, immediate effect 0.3), for reference.
#   ramp:  the effect builds with exposure, 0 in a cluster's first intervention period to 0.3 at
#          the longest exposure (linear); estimand: the time-averaged effect over exposure times
#          (TATE, 0.15); NE variance as above.
#   ar1:   cluster-period effects AR(1) with r = 0.5 (no separate intercept; ICC 0.05), immediate
#          effect 0.3.
#   slope: clusters' own intervention effects (SD 0.15) around 0.3, NE variance, 100 per cell.
# Analyses: ne (nested exchangeable, immediate effect: the default until issue #19), ne_tate
# (nested exchangeable, exposure-time indicators, TATE), decay (exponential decay, immediate),
# slope (random_slope, immediate), slope_tate (random_slope, exposure-time indicators, TATE), all
# with Kenward-Roger; ne_md, ne_tate_md and ne_tate_cr2 the nested-exchangeable LMM with the
# Mancl-DeRouen (t(I − 1)) or CR2 (Satterthwaite) cluster-robust variance; ne_tate_md is the
# default analysis. Optional trailing arguments choose the analyses.
# Width is the mean interval width over the oracle's: the GLS interval with the true covariance
# and the right effect shape, normal reference. w/TATE (analyses of the TATE) is over the oracle
# that, like them, does not assume the effect's shape: the GLS TATE from exposure-time
# indicators under the true covariance.
PROC_EFFECT = 0.3
PROCESSES = {
    "ne": (VarianceModel.from_icc(ICC, CAC), CELL, "immediate"),
    "ramp": (VarianceModel.from_icc(ICC, CAC), CELL, "ramp"),
    "ar1": (VarianceModel(tau2=ICC, sigma2=1 - ICC, decay=0.5), CELL, "immediate"),
    "slope": (
        VarianceModel(
            tau2=ICC * CAC, gamma2=ICC * (1 - CAC), sigma2=1 - ICC, treatment_var=0.15**2
        ),
        100,
        "immediate",
    ),
}
ANALYSES = {  # label → (covariance structure, effect shape, inference)
    "ne": ("nested_exchangeable", "immediate", "kenward_roger"),
    "ne_tate": ("nested_exchangeable", "exposure_time", "kenward_roger"),
    "decay": ("exponential_decay", "immediate", "kenward_roger"),
    "slope": ("random_slope", "immediate", "kenward_roger"),
    "slope_tate": ("random_slope", "exposure_time", "kenward_roger"),
    "ne_md": ("nested_exchangeable", "immediate", "mancl_derouen"),
    "ne_tate_md": ("nested_exchangeable", "exposure_time", "mancl_derouen"),
    "ne_tate_cr2": ("nested_exchangeable", "exposure_time", "cr2"),
}


def _curve(shape: str, exposure: np.ndarray, longest: int, size: float) -> np.ndarray:
    """The true effect in each cell from its exposure time (0 = control)."""
    if shape == "immediate":
        return size * (exposure > 0)
    return np.where(exposure > 0, size * (exposure - 1) / max(longest - 1, 1), 0.0)


def process_trial(name: str, clusters: int, per_seq: int, size: float, rng):
    """Cell summaries, starts and the estimand of one trial from a process."""
    model, cell, shape = PROCESSES[name]
    n_seq = clusters // per_seq
    periods = n_seq + 1
    start = np.repeat(np.arange(1, periods), per_seq)
    t = np.arange(periods)
    exposure = np.where(t[None, :] >= start[:, None], t[None, :] - start[:, None] + 1, 0)
    curve = _curve(shape, exposure, n_seq, size)
    mean = np.empty((clusters, periods))
    sizes = np.full(periods, float(cell))
    for i in range(clusters):
        cov = cell_covariance(model, periods, sizes, (exposure[i] > 0).astype(float))
        mean[i] = 0.1 * t + curve[i] + rng.multivariate_normal(np.zeros(periods), cov)
    ssw = model.sigma2 * rng.chisquare(cell - 1, (clusters, periods))
    n = np.full((clusters, periods), float(cell))
    cells = CellSummaries(mean, n, ssw, np.ones_like(n, dtype=bool))
    estimand = _curve(shape, np.arange(1, n_seq + 1), n_seq, size).mean()
    return cells, start, float(estimand)


def process_one(args: tuple) -> dict[str, tuple[bool, float] | None]:
    """(misses the estimand at 95%, interval width) per analysis in one replicate; None for an
    analysis whose fit did not converge (the others keep the replicate)."""
    name, clusters, per_seq, e_idx, r, chosen = args
    rng = np.random.default_rng(np.random.SeedSequence([clusters, r, e_idx, len(name)]))
    size = (0.0, PROC_EFFECT)[e_idx]
    cells, start, truth = process_trial(name, clusters, per_seq, size, rng)
    treated = (np.arange(cells.mean.shape[1])[None, :] >= start[:, None]).astype(float)
    out = {}
    fits = {}
    for label in chosen:
        structure, shape, inference = ANALYSES[label]
        fe = fixed_effects(cells.observed, start, shape)
        contrast = next(iter(effect_contrasts(fe, shape, None).values())).vector
        if (structure, shape) not in fits:
            slope = treated if structure == "random_slope" else None
            fits[structure, shape] = fit_reml(cells, fe.X, structure, slope=slope)
        fit = fits[structure, shape]
        if not fit.converged:
            out[label] = None
            continue
        if inference == "kenward_roger":
            ss = small_sample(fit, cells, fe.X)
            se = float(np.sqrt(contrast @ ss.vcov_kr @ contrast))
            df = kenward_roger_df(ss, fit.vcov, contrast)
        else:
            robust = robust_variance(fit, cells, fe.X, inference)
            se, df = float(np.sqrt(contrast @ robust.vcov @ contrast)), robust.df(contrast)
        half = stats.t.ppf(0.975, df) * se
        out[label] = (abs(float(contrast @ fit.beta) - truth) > half, 2.0 * half)
    return out


def oracle_width(name: str, clusters: int, per_seq: int, kind: str | None = None) -> float:
    """2 × 1.96 × the GLS standard error under the true covariance: of the process's own
    effect shape (immediate, or exposure-time indicators for ramp), or of `kind`."""
    model, cell, shape = PROCESSES[name]
    n_seq = clusters // per_seq
    design = np.arange(n_seq + 1)[None, :] >= np.repeat(np.arange(1, n_seq + 1), per_seq)[:, None]
    kind = kind or ("exposure_time" if shape == "ramp" else "immediate")
    return (
        2
        * 1.959964
        * float(np.sqrt(gls_precision(design.astype(float), model, cell, kind).variance))
    )


def processes(reps: int, workers: int, chosen: tuple[str, ...] = tuple(ANALYSES)) -> None:
    print(
        f"Trials that are not the model, {reps} per cell; size at 5% (θ = 0), coverage of the "
        "estimand and width / oracle (θ = 0.3), each analysis over its own converged fits"
    )
    print(
        f"{'process':8} {'clusters':>8} {'analysis':11} {'size %':>7} {'cover %':>8} "
        f"{'width':>6} {'w/TATE':>6}"
    )
    with ProcessPoolExecutor(workers) as pool:
        for name in PROCESSES:
            for clusters, per_seq in {6: 2, 10: 2, 15: 3}.items():
                res = []
                for e_idx in (0, 1):
                    jobs = [(name, clusters, per_seq, e_idx, r, chosen) for r in range(reps)]
                    res.append(list(pool.map(process_one, jobs, chunksize=20)))
                oracle = oracle_width(name, clusters, per_seq)
                tate_oracle = oracle_width(name, clusters, per_seq, "exposure_time")
                for label in chosen:
                    null = [f[label] for f in res[0] if f[label] is not None]
                    alt = [f[label] for f in res[1] if f[label] is not None]
                    if not null or not alt:
                        print(f"{name:8} {clusters:8d} {label:11} no converged fits")
                        continue
                    size = np.mean([miss for miss, _ in null])
                    cover = 1 - np.mean([miss for miss, _ in alt])
                    mean_width = np.mean([width for _, width in alt])
                    tate = (
                        f"{mean_width / tate_oracle:6.2f}"
                        if ANALYSES[label][1] == "exposure_time"
                        else f"{'':6}"
                    )
                    failed = 2 * reps - len(null) - len(alt)
                    tate += f"  ({failed} fits did not converge)" if failed else ""
                    print(f"{name:8} {clusters:8d} {label:11} {100 * size:7.2f} "
                          f"{100 * cover:8.2f} {mean_width / oracle:6.2f} {tate}")  # fmt: skip
                mc = 100 * np.sqrt(0.05 * 0.95 / reps)
                print(f"{'':17} (Monte Carlo SE of a size or coverage near 5%/95%: {mc:.2f})")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--processes":
        processes(
            int(sys.argv[2]) if len(sys.argv) > 2 else 1000,
            int(sys.argv[3]) if len(sys.argv) > 3 else 2,
            tuple(sys.argv[4:]) or tuple(ANALYSES),
        )
        sys.exit(0)
    chosen = [int(c) for c in sys.argv[3:]] or list(DESIGNS)  # optional: cluster counts
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 2000,
        int(sys.argv[2]) if len(sys.argv) > 2 else 2,
        {c: DESIGNS[c] for c in chosen},
    )
