"""Size and coverage of the default GEE inference for counts per person in stepped-wedge trials
with few clusters (run on demand, not a test).

    python benchmarks/sw_count_size.py [REPLICATES] [WORKERS]

Trials with 6, 10 and 15 clusters (2, 2 and 3 per sequence, one more period than sequences,
the first all-control), 25 people per cluster-period, each person's count of events (placement
moves, say) negative binomial: Poisson with a person-level gamma frailty of shape 2 (variance
the mean plus half its square), log mean 0.3 + 0.05 per period + cluster (variance 0.1)
+ cluster-period (variance 0.02) normal effects, and a log rate ratio of 0 (size) or 0.2
(coverage). With a log link these effects leave the marginal log rate ratio at the conditional
one, so the GEE and the GLMM target the same 0.2. The process is not the GEE's working model
(overdispersed people, nested random effects on the log scale).

Each trial is analysed as `stepped_wedge_gee` with `family: poisson` on individual records does
by default (nested-exchangeable working correlation by MAEE, Kauermann-Carroll sandwich,
t(I − p)), beside Mancl-DeRouen with t(I − p), the uncorrected sandwich with z, geepack's
moment estimator of the correlations (KC, t(I − p)), and the Poisson GLMM (Hussey & Hughes, and
nested exchangeable with its cluster-period effect; Laplace, t(I − 2)) on the cells' event
counts. Printed: the rejection
rate at 5% under no effect and the 95% interval's coverage of 0.2, each with its Monte-Carlo SE;
fits that fail are counted, never dropped. Replicate r of a design uses
SeedSequence([clusters, effect index, r]); results do not depend on WORKERS.
"""

from __future__ import annotations

import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from scipy import stats

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.estimators.stepped_wedge.gee import fit_gee, gee_data
from pathfinder_eval.estimators.stepped_wedge.glmm import CountCells, FitError, fit_glmm
from pathfinder_eval.estimators.stepped_wedge.lmm import CellSummaries, fixed_effects

DESIGNS = {6: 2, 10: 2, 15: 3}  # clusters → clusters per sequence
EFFECTS = (0.0, 0.2)  # log rate ratio: size, then coverage
CELL, BASE, TREND, CLUSTER_VAR, CP_VAR, SHAPE = 25, 0.3, 0.05, 0.1, 0.02, 2.0
METHODS = (
    "GEE KC t(I-p)",
    "GEE MD t(I-p)",
    "GEE sandwich z",
    "GEE moment KC",
    "GLMM HH t(I-2)",
    "GLMM NE t(I-2)",
)
NESTED = "nested_exchangeable"


def trial_cells(clusters: int, per_seq: int, e: int, r: int) -> tuple[CellSummaries, np.ndarray]:
    """Replicate r's cell summaries (each cell's 25 people) and each cluster's start (period
    index)."""
    rng = np.random.default_rng(np.random.SeedSequence([clusters, e, r]))
    periods = clusters // per_seq + 1
    start = np.repeat(np.arange(1, periods), per_seq)
    treated = np.arange(periods)[None, :] >= start[:, None]
    log_mean = (
        BASE
        + TREND * np.arange(periods)[None, :]
        + EFFECTS[e] * treated
        + rng.normal(0, np.sqrt(CLUSTER_VAR), (clusters, 1))
        + rng.normal(0, np.sqrt(CP_VAR), (clusters, periods))
    )
    frailty = rng.gamma(SHAPE, 1.0 / SHAPE, (clusters, periods, CELL))
    y = rng.poisson(np.exp(log_mean)[:, :, None] * frailty).astype(float)
    n = np.full((clusters, periods), float(CELL))
    mean = y.mean(axis=2)
    return CellSummaries(mean, n, ((y - mean[:, :, None]) ** 2).sum(axis=2), n > 0), start


def one(args: tuple[int, int, int, int]) -> dict[str, float]:
    """Each method's 1/0 rejection of the effect's true value in replicate r (NaN: the fit
    failed)."""
    clusters, per_seq, e, r = args
    effect = EFFECTS[e]
    cells, start = trial_cells(clusters, per_seq, e, r)
    fe = fixed_effects(cells.observed, start, "immediate")
    k = fe.effect[0]
    t_gee = stats.t.ppf(0.975, clusters - fe.X.shape[2])
    out = dict.fromkeys(METHODS, np.nan)
    try:
        gee = fit_gee(gee_data(cells, fe.X), "poisson", "nested_exchangeable", "maee")
        p = len(gee.beta)
        for name, kind, c in (
            ("GEE KC t(I-p)", "BC1", t_gee),
            ("GEE MD t(I-p)", "BC2", t_gee),
            ("GEE sandwich z", "BC0", stats.norm.ppf(0.975)),
        ):
            se = np.sqrt(gee.vcov[kind][:p, :p][k, k])
            out[name] = float(abs(gee.beta[k] - effect) / se > c)
    except EstimationError:
        pass
    try:
        gee = fit_gee(gee_data(cells, fe.X), "poisson", "nested_exchangeable", "moment")
        se = np.sqrt(gee.vcov["BC1"][k, k])
        out["GEE moment KC"] = float(abs(gee.beta[k] - effect) / se > t_gee)
    except EstimationError:
        pass
    for name, model in (("GLMM HH t(I-2)", "hussey_hughes"), ("GLMM NE t(I-2)", NESTED)):
        try:
            events = np.round(cells.mean * cells.n)
            glmm = fit_glmm(CountCells(events, cells.n, cells.observed), fe.X, model, "poisson")
            if glmm.converged:
                stat = abs(glmm.beta[k] - effect) / np.sqrt(glmm.vcov[k, k])
                out[name] = float(stat > stats.t.ppf(0.975, clusters - 2))
        except (FitError, np.linalg.LinAlgError):  # the pipeline reports the latter too
            pass
    return out


def main(reps: int, workers: int) -> None:
    print(
        f"Counts per person in a stepped wedge: {reps} trials per design and effect, {CELL} "
        f"people per cluster-period, negative binomial (frailty shape {SHAPE}), log-scale "
        f"cluster variance {CLUSTER_VAR} and cluster-period variance {CP_VAR}"
    )
    print(f"{'clusters':>8} {'method':15} {'size %':>7} {'MC SE':>6} {'cover %':>8} {'MC SE':>6} "
          f"{'failed':>7}")  # fmt: skip
    with ProcessPoolExecutor(workers) as pool:
        for clusters, per_seq in DESIGNS.items():
            res = [
                list(pool.map(one, [(clusters, per_seq, e, r) for r in range(reps)], chunksize=20))
                for e in range(len(EFFECTS))
            ]
            for m in METHODS:
                size, cover = (np.array([x[m] for x in res[e]]) for e in range(len(EFFECTS)))
                failed = int(np.isnan(size).sum() + np.isnan(cover).sum())
                s, c = np.nanmean(size), 1.0 - np.nanmean(cover)
                print(
                    f"{clusters:8d} {m:15} {100 * s:7.2f} "
                    f"{100 * np.sqrt(s * (1 - s) / np.isfinite(size).sum()):6.2f} "
                    f"{100 * c:8.2f} {100 * np.sqrt(c * (1 - c) / np.isfinite(cover).sum()):6.2f} "
                    f"{failed:7d}"
                )


if __name__ == "__main__":
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 1000,
        int(sys.argv[2]) if len(sys.argv) > 2 else 2,
    )
