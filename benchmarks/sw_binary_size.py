"""Size of the default GEE and GLMM inference for binary stepped-wedge outcomes with few clusters.

Run on demand (not a test): python benchmarks/sw_binary_size.py [REPLICATES] [WORKERS]
Trials with 6, 10 and 15 clusters (2, 2 and 3 per sequence, one more period than sequences,
the first all-control), 25 individuals per cluster-period, binary outcomes from a random
intercept logistic model (control risk 20% in period 1 rising 0.1 on the logit scale per
period, cluster intercept variance 0.1 on the logit scale) with no intervention effect. Each
trial is analysed as the toolkit's defaults do: GEE (binomial/logit, nested-exchangeable working
correlation by MAEE, Kauermann-Carroll sandwich, t(I − p)) and the GLMM (binomial/logit, nested
exchangeable, Laplace, Wald with t(I − 2)), beside alternatives (the GLMM's Hussey & Hughes
model, with t(I − 2) and z; the GEE's KC sandwich with
t(I − 2), its uncorrected sandwich with z, the GEE on cluster-period proportions (CP-GEE, Li et
al. 2022) with nested-exchangeable and exponential-decay (ED) working correlations by MAEE, KC
and t(I − p)), and the rejection rate of the true
null at 5% is printed with its Monte-Carlo SE (under no effect the marginal and conditional nulls
coincide). Fits that fail are counted, never dropped silently. Replicate r of a design uses
SeedSequence([clusters, r]); results do not depend on WORKERS.
"""

from __future__ import annotations

import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from scipy import special, stats

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.estimators.stepped_wedge.cluster_period_gee import fit_cluster_period_gee
from pathfinder_eval.estimators.stepped_wedge.gee import fit_gee, gee_data
from pathfinder_eval.estimators.stepped_wedge.glmm import CountCells, FitError, fit_glmm
from pathfinder_eval.estimators.stepped_wedge.lmm import CellSummaries, fixed_effects

DESIGNS = {6: 2, 10: 2, 15: 3}  # clusters → clusters per sequence
CELL, BASE, TREND, TAU2 = 25, special.logit(0.2), 0.1, 0.1
METHODS = (
    "GEE KC t(I-p)",
    "GEE KC t(I-2)",
    "GEE sandwich z",
    "CP-GEE KC t(I-p)",
    "CP-GEE ED KC",
    "GLMM HH t(I-2)",
    "GLMM HH z",
    "GLMM NE t(I-2)",
)


def one(args: tuple[int, int, int]) -> dict[str, float]:
    """Each method's rejection (1/0) of the true null in replicate r; NaN when a fit fails."""
    clusters, per_seq, r = args
    rng = np.random.default_rng(np.random.SeedSequence([clusters, r]))
    periods = clusters // per_seq + 1
    start = np.repeat(np.arange(1, periods), per_seq)
    eta = BASE + TREND * np.arange(periods)[None, :] + rng.normal(0, np.sqrt(TAU2), (clusters, 1))
    n = np.full((clusters, periods), float(CELL))
    events = rng.binomial(CELL, special.expit(eta)).astype(float)
    observed = np.ones((clusters, periods), dtype=bool)
    fe = fixed_effects(observed, start, "immediate")
    k = fe.effect[0]
    z = stats.norm.ppf(0.975)
    t_gee = stats.t.ppf(0.975, clusters - fe.X.shape[2])
    t_glmm = stats.t.ppf(0.975, clusters - 2)
    out = dict.fromkeys(METHODS, np.nan)
    cells = CellSummaries(events / n, n, events - events**2 / n, observed)
    try:
        gee = fit_gee(gee_data(cells, fe.X), "binomial", "nested_exchangeable", "maee")
        p = len(gee.beta)
        for name, kind, c in (
            ("GEE KC t(I-p)", "BC1", t_gee),
            ("GEE KC t(I-2)", "BC1", t_glmm),
            ("GEE sandwich z", "BC0", z),
        ):
            se = np.sqrt(gee.vcov[kind][:p, :p][k, k])
            out[name] = float(abs(gee.beta[k]) / se > c)
    except EstimationError:
        pass
    for name, correlation in (
        ("CP-GEE KC t(I-p)", "nested_exchangeable"),
        ("CP-GEE ED KC", "exponential_decay"),
    ):
        try:
            cp = fit_cluster_period_gee(cells, fe.X, correlation, "maee")
            se = np.sqrt(cp.vcov["BC1"][k, k])
            out[name] = float(abs(cp.beta[k]) / se > t_gee)
        except EstimationError:
            pass
    try:
        glmm = fit_glmm(CountCells(events, n, observed), fe.X, "hussey_hughes", "binomial")
        if glmm.converged:
            stat = abs(glmm.beta[k]) / np.sqrt(glmm.vcov[k, k])
            out["GLMM HH t(I-2)"] = float(stat > t_glmm)
            out["GLMM HH z"] = float(stat > z)
    except FitError:
        pass
    try:
        glmm = fit_glmm(CountCells(events, n, observed), fe.X, "nested_exchangeable", "binomial")
        if glmm.converged:
            out["GLMM NE t(I-2)"] = float(abs(glmm.beta[k]) / np.sqrt(glmm.vcov[k, k]) > t_glmm)
    except FitError:
        pass
    return out


def main(reps: int, workers: int) -> None:
    print(
        f"Binary stepped wedge, no effect, {reps} trials per design ({CELL} per cluster-period, "
        f"control risk 20%, logit-scale cluster variance {TAU2}); size at α = 5%"
    )
    print(f"{'clusters':>8} {'method':16} {'size %':>7} {'MC SE':>6} {'failed':>7}")
    with ProcessPoolExecutor(workers) as pool:
        for clusters, per_seq in DESIGNS.items():
            res = list(pool.map(one, [(clusters, per_seq, r) for r in range(reps)], chunksize=20))
            for m in METHODS:
                vals = np.array([x[m] for x in res])
                ok = vals[~np.isnan(vals)]
                size = ok.mean()
                print(
                    f"{clusters:8d} {m:16} {100 * size:7.2f} "
                    f"{100 * np.sqrt(size * (1 - size) / len(ok)):6.2f} {len(vals) - len(ok):7d}"
                )


if __name__ == "__main__":
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 2000,
        int(sys.argv[2]) if len(sys.argv) > 2 else 2,
    )
