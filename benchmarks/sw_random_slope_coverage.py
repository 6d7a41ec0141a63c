"""Size and coverage of the random-slope stepped-wedge LMM when clusters have their own
intervention effects, by simulation.

Run on demand (not a test): python benchmarks/sw_random_slope_coverage.py [REPLICATES] [WORKERS]
Trials with 6, 10 and 15 clusters (2, 2 and 3 per sequence; one more period than sequences, the
first all-control) are simulated with a cluster intercept, a cluster-period effect and each
cluster's own intervention effect (ICC 0.05 and CAC 0.8 in control periods, effect SD 0.15
correlated 0.3 with the intercept; SD 1 individuals, 25 per cell; cell means and within-cell
sums of squares drawn exactly) and analysed by the random_slope LMM (REML, categorical periods,
immediate effect) with the Mancl-DeRouen cluster-robust variance and t(I − 1) (the default
inference since issue #19), Kenward-Roger and Satterthwaite, beside the nested-exchangeable LMM
that ignores the slope. The estimand is the mean intervention effect.
For each: size = rejection rate of H0: θ = 0 at 5% when θ = 0, coverage of the 95% interval when
θ = 0.3, and the mean interval width relative to the oracle (the GLS interval with the true
variance parameters and a normal reference). Monte-Carlo SEs are printed. Seeds: replicate r of
design d and effect e uses SeedSequence([d, r, e]); results do not depend on WORKERS.
"""

from __future__ import annotations

import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from scipy import stats

from pathfinder_eval.estimators.stepped_wedge.lmm import (
    CellSummaries,
    fit_reml,
    fixed_effects,
    kenward_roger_df,
    satterthwaite_df,
    small_sample,
)
from pathfinder_eval.estimators.stepped_wedge.lmm_estimator import robust_variance
from pathfinder_eval.power.analytic import VarianceModel, cell_covariance, gls_precision

DESIGNS = {6: 2, 10: 2, 15: 3}  # clusters → clusters per sequence
EFFECTS = (0.0, 0.3)
ICC, CAC, CELL, SLOPE_SD, SLOPE_CORR = 0.05, 0.8, 25, 0.15, 0.3
MODEL = VarianceModel(
    tau2=ICC * CAC,
    gamma2=ICC * (1 - CAC),
    sigma2=1 - ICC,
    treatment_var=SLOPE_SD**2,
    treatment_corr=SLOPE_CORR,
)
METHODS = ("slope_md", "slope_kr", "slope_satterthwaite", "ne_kr")


def design(clusters: int, per_seq: int) -> tuple[np.ndarray, np.ndarray]:
    n_seq = clusters // per_seq
    start = np.repeat(np.arange(1, n_seq + 1), per_seq)
    treated = (np.arange(n_seq + 1)[None, :] >= start[:, None]).astype(float)
    return treated, start


def simulate(treated: np.ndarray, effect: float, rng: np.random.Generator) -> CellSummaries:
    """Cell means drawn from the exact cell-mean covariance (with the clusters' own effects)."""
    n_clusters, periods = treated.shape
    sizes = np.full(periods, float(CELL))
    mean = np.empty(treated.shape)
    for i in range(n_clusters):
        cov = cell_covariance(MODEL, periods, sizes, treated[i])
        mean[i] = (
            0.1 * np.arange(periods)
            + effect * treated[i]
            + rng.multivariate_normal(np.zeros(periods), cov)
        )
    ssw = MODEL.sigma2 * rng.chisquare(CELL - 1, treated.shape)
    n = np.full(treated.shape, float(CELL))
    return CellSummaries(mean, n, ssw, np.ones(treated.shape, dtype=bool))


def one(args: tuple[int, int, int, int]) -> dict[str, tuple[bool, float]]:
    """(rejects the true effect, interval width) per method in replicate r."""
    clusters, per_seq, e_idx, r = args
    truth = EFFECTS[e_idx]
    rng = np.random.default_rng(np.random.SeedSequence([clusters, r, e_idx]))
    treated, start = design(clusters, per_seq)
    cells = simulate(treated, truth, rng)
    fe = fixed_effects(cells.observed, start, "immediate")
    lvec = np.eye(fe.X.shape[2])[fe.effect[0]]
    out = {}
    for model, slope in (("slope", treated), ("ne", None)):
        structure = "random_slope" if model == "slope" else "nested_exchangeable"
        fit = fit_reml(cells, fe.X, structure, slope=slope)
        if not fit.converged:
            return {}
        ss = small_sample(fit, cells, fe.X)
        est = float(lvec @ fit.beta)
        kr_se = float(np.sqrt(lvec @ ss.vcov_kr @ lvec))
        rules = {"kr": (kr_se, kenward_roger_df(ss, fit.vcov, lvec))}
        if model == "slope":
            se = float(np.sqrt(lvec @ fit.vcov @ lvec))
            rules["satterthwaite"] = (se, satterthwaite_df(ss, fit.vcov, lvec))
            md = robust_variance(fit, cells, fe.X, "mancl_derouen")
            rules["md"] = (float(np.sqrt(lvec @ md.vcov @ lvec)), md.df(lvec))
        for rule, (s, df) in rules.items():
            half = stats.t.ppf(0.975, df) * s
            out[f"{model}_{rule}"] = (abs(est - truth) > half, 2 * half)
    return out


def main(reps: int, workers: int) -> None:
    print(
        f"Clusters' own effects (SD {SLOPE_SD}, corr {SLOPE_CORR}); ICC {ICC}, CAC {CAC}, "
        f"{CELL} per cell; {reps} trials per cell; size at 5% (θ = 0), 95% coverage and width "
        "/ oracle (θ = 0.3)"
    )
    print(
        f"{'clusters':>8} {'method':20} {'size %':>7} {'MC SE':>6} {'cover %':>8} {'MC SE':>6}"
        f" {'width':>6}"
    )
    with ProcessPoolExecutor(workers) as pool:
        for clusters, per_seq in DESIGNS.items():
            treated, _ = design(clusters, per_seq)
            oracle = 2 * 1.959964 * np.sqrt(gls_precision(treated, MODEL, CELL).variance)
            res = {}
            for e_idx, effect in enumerate(EFFECTS):
                jobs = [(clusters, per_seq, e_idx, r) for r in range(reps)]
                res[effect] = [f for f in pool.map(one, jobs, chunksize=20) if f]
            for m in METHODS:
                size = np.mean([f[m][0] for f in res[EFFECTS[0]]])
                cover = 1 - np.mean([f[m][0] for f in res[EFFECTS[1]]])
                width = np.mean([f[m][1] for f in res[EFFECTS[1]]]) / oracle
                n0, n1 = len(res[EFFECTS[0]]), len(res[EFFECTS[1]])
                print(
                    f"{clusters:8d} {m:20} {100 * size:7.2f} "
                    f"{100 * np.sqrt(size * (1 - size) / n0):6.2f} {100 * cover:8.2f} "
                    f"{100 * np.sqrt(cover * (1 - cover) / n1):6.2f} {width:6.2f}"
                )
            failed = 2 * reps - len(res[EFFECTS[0]]) - len(res[EFFECTS[1]])
            if failed:
                print(f"{'':8} ({failed} replicates had a fit that did not converge: left out)")


if __name__ == "__main__":
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 1000,
        int(sys.argv[2]) if len(sys.argv) > 2 else 2,
    )
