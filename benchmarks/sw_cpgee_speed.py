"""Benchmark: GEE with an exponential-decay working correlation on a large binary stepped-wedge
trial, on cluster-period proportions (ours and R's geeCRT::cpgeeSWD) and on individuals (ours).

Run on demand (not a test): python benchmarks/sw_cpgee_speed.py [CELL_SIZE]
A trial of 24 clusters × 7 periods (sequences of 4 clusters) × CELL_SIZE (default 2,000)
individuals per cell is simulated (seed 1): logit-scale cluster-period effects with AR(1)
correlation 0.6 across periods, binomial counts per cell. Then, MAEE with exponential decay and
an immediate effect:
- pathfinder-eval `equations: cluster_period` (fit_cluster_period_gee) from cell proportions;
- pathfinder-eval `equations: individual` (fit_gee: geemaee's pairwise equations, computed on
  cell summaries);
- R geeCRT 1.1.4 cpgeeSWD on the same proportions, when `Rscript` can load geeCRT (set R_LIBS),
  timed inside R.
Ours best of REPEATS after a warm-up; R's best of 3 timed inside R. Ratios are peer / ours
(cluster-period); then the largest absolute differences from our cluster-period β̂ and α̂,
and the memory each fit needed above its data: ours, the peak of what one call allocates
(tracemalloc); R's, gc()'s "max used" during the fits less the heap in use before them.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from measure import best_of, traced_peak_mib  # benchmarks/ is on the path
from scipy.special import expit

from pathfinder_eval.estimators.stepped_wedge.cluster_period_gee import fit_cluster_period_gee
from pathfinder_eval.estimators.stepped_wedge.gee import fit_gee, gee_data
from pathfinder_eval.estimators.stepped_wedge.lmm import CellSummaries, fixed_effects

CLUSTERS, PERIODS, PER_SEQUENCE, REPEATS = 24, 7, 4, 5

R_SCRIPT = r"""
suppressPackageStartupMessages(library(geeCRT))
d <- read.csv(commandArgs(TRUE)[1])
d <- d[order(d$id, d$period), ]
t <- max(d$period)
X <- cbind(kronecker(rep(1, length(unique(d$id))), diag(t)), d$trt)
best <- Inf
before <- sum(gc(reset = TRUE)[, 2L])  # MiB in use (Ncells + Vcells); the peak reset
for (k in 1:3) {
  s <- system.time(fit <- cpgeeSWD(y = d$y, X = X, id = d$id, m = d$m, corstr = "exp_decay",
                                   alpadj = TRUE, epsilon = 1e-10, printrange = FALSE))
  best <- min(best, s[["elapsed"]])
}
g <- gc()
peak <- sum(g[, which(colnames(g) == "max used") + 1L]) - before  # MiB, above the start
cat(best, peak, sprintf("%.12g", c(fit$beta, fit$alpha)), "\n")
"""


def simulate(cell_size: int, seed: int = 1) -> tuple[CellSummaries, np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    start = np.repeat(np.arange(1, PERIODS), PER_SEQUENCE)[:CLUSTERS]
    trt = (np.arange(PERIODS)[None, :] >= start[:, None]).astype(float)
    r, sd = 0.6, 0.3
    b = np.empty((CLUSTERS, PERIODS))
    b[:, 0] = rng.normal(0, sd, CLUSTERS)
    for j in range(1, PERIODS):
        b[:, j] = r * b[:, j - 1] + rng.normal(0, sd * np.sqrt(1 - r**2), CLUSTERS)
    eta = -0.8 + 0.05 * np.arange(PERIODS)[None, :] - 0.3 * trt + b
    n = np.full((CLUSTERS, PERIODS), float(cell_size))
    events = rng.binomial(cell_size, expit(eta)).astype(float)
    mean = events / n
    cells = CellSummaries(mean, n, events - events**2 / n, np.ones_like(n, dtype=bool))
    X = fixed_effects(cells.observed, start, "immediate").X
    frame = pd.DataFrame(
        {
            "id": np.repeat(np.arange(1, CLUSTERS + 1), PERIODS),
            "period": np.tile(np.arange(1, PERIODS + 1), CLUSTERS),
            "y": mean.ravel(),
            "m": n.ravel().astype(int),
            "trt": trt.ravel(),
        }
    )
    return cells, X, frame


def main(cell_size: int) -> None:
    cells, X, frame = simulate(cell_size)
    print(
        f"{CLUSTERS} clusters × {PERIODS} periods × {cell_size:,} individuals "
        f"({int(cells.n.sum()):,} records), exponential decay, MAEE"
    )
    ours_t, ours = best_of(
        lambda: fit_cluster_period_gee(cells, X, "exponential_decay", "maee"), REPEATS
    )
    ind_t, ind = best_of(
        lambda: fit_gee(gee_data(cells, X), "binomial", "exponential_decay", "maee"), REPEATS
    )
    ref = np.concatenate([ours.beta, ours.alpha])
    ours_peak = traced_peak_mib(
        lambda: fit_cluster_period_gee(cells, X, "exponential_decay", "maee")
    )
    ind_peak = traced_peak_mib(
        lambda: fit_gee(gee_data(cells, X), "binomial", "exponential_decay", "maee")
    )
    rows = [
        ("pathfinder-eval cluster_period", ours_t, ref, ours_peak),
        ("pathfinder-eval individual", ind_t, np.concatenate([ind.beta, ind.alpha]), ind_peak),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        csv, script = Path(tmp) / "cells.csv", Path(tmp) / "cpgee.R"
        frame.to_csv(csv, index=False)
        script.write_text(R_SCRIPT)
        try:
            out = subprocess.run(
                ["Rscript", str(script), str(csv)], capture_output=True, text=True, check=True
            ).stdout.split()
            estimates = np.array(out[2:], dtype=float)
            rows.append(("R geeCRT cpgeeSWD", float(out[0]), estimates, float(out[1])))
        except (OSError, subprocess.CalledProcessError) as err:
            print(f"R geeCRT skipped: {getattr(err, 'stderr', err)!s:.200}")
    p = len(ours.beta)
    print(
        f"{'analysis':34s} {'seconds':>9s} {'ratio':>7s} {'max|Δβ|':>9s} {'max|Δα|':>9s} "
        f"{'peak MiB':>9s}"
    )
    for name, sec, est, peak in rows:
        print(
            f"{name:34s} {sec:9.4f} {sec / ours_t:7.1f} {np.abs(est[:p] - ref[:p]).max():9.2e} "
            f"{np.abs(est[p:] - ref[p:]).max():9.2e} {peak:9.2f}"
        )
    print(
        f"treatment effect (log OR): cluster_period {ours.beta[-1]:.5f} "
        f"(BC1 SE {np.sqrt(ours.vcov['BC1'][p - 1, p - 1]):.5f}), individual "
        f"{ind.beta[-1]:.5f} (BC1 SE {np.sqrt(ind.vcov['BC1'][p - 1, p - 1]):.5f}); "
        f"α0, ρ: {ours.alpha.round(5).tolist()} vs {ind.alpha.round(5).tolist()}"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
