"""Benchmark: stepped-wedge randomisation inference with 10,000 allocations, beside a refit loop.

Run on demand (not a test): python benchmarks/sw_randomisation_speed.py [DRAWS]
A 10-cluster trial (5 sequences of 2, 6 periods, 30 individuals per cell; seed 3) is analysed
by the nested-exchangeable LMM with randomisation inference: DRAWS (default 10,000) Monte-Carlo
re-allocations of clusters to sequences (113,400 possible), p-value and the 95% interval by
test inversion, for the model-based statistic (GLS effect with null-model REML variance
parameters) and the within-period NPWP statistic. No Python package offers this; the peer is
the direct approach — refit the REML model to every re-allocated trial — timed on
REFIT_SAMPLE allocations and scaled to DRAWS (p-value only: no interval).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from pathfinder_eval.estimators.stepped_wedge.lmm import CellSummaries, fit_reml, fixed_effects
from pathfinder_eval.estimators.stepped_wedge.randomisation import randomisation_test
from pathfinder_eval.inference.permutation import allocations

CLUSTERS, PER_SEQ, CELL, REFIT_SAMPLE = 10, 2, 30, 200


def trial() -> tuple[CellSummaries, np.ndarray]:
    rng = np.random.default_rng(3)
    periods = CLUSTERS // PER_SEQ + 1
    start = np.repeat(np.arange(1, periods), PER_SEQ)
    t = np.arange(periods)
    treated = t[None, :] >= start[:, None]
    mean = (
        0.1 * t[None, :]
        + 0.3 * treated
        + rng.normal(0, 0.2, (CLUSTERS, 1))
        + rng.normal(0, 0.1, (CLUSTERS, periods))
        + rng.normal(0, np.sqrt(0.95 / CELL), (CLUSTERS, periods))
    )
    ssw = 0.95 * rng.chisquare(CELL - 1, (CLUSTERS, periods))
    n = np.full((CLUSTERS, periods), float(CELL))
    return CellSummaries(mean, n, ssw, np.ones_like(n, dtype=bool)), start


def main(draws: int) -> None:
    cells, start = trial()
    fe = fixed_effects(cells.observed, start, "immediate")
    contrast = np.zeros(fe.X.shape[2])
    contrast[fe.effect[0]] = 1.0
    print(
        f"{CLUSTERS}-cluster stepped wedge, {draws:,} re-allocations (Monte Carlo), "
        "nested-exchangeable LMM"
    )
    print(f"{'method':44} {'seconds':>8} {'ratio':>7} {'p':>7} {'95% interval':>20}")
    rows = []
    for statistic in ("model_based", "npwp", "within_period"):
        t0 = time.perf_counter()
        r = randomisation_test(
            cells,
            start,
            fe,
            "immediate",
            contrast,
            "nested_exchangeable",
            statistic,
            draws,
            1,
            0.95,
        )
        rows.append((statistic, time.perf_counter() - t0, r))
    alloc = allocations(start, draws, 1).starts[:REFIT_SAMPLE]
    t0 = time.perf_counter()
    for s in alloc:
        x = fixed_effects(cells.observed, s, "immediate", like=fe).X
        fit_reml(cells, x, "nested_exchangeable")
    refit = (time.perf_counter() - t0) * draws / len(alloc)
    base = rows[0][1]
    for statistic, seconds, r in rows:
        print(
            f"{'pathfinder-eval, ' + statistic + ' (p and interval)':44} {seconds:8.2f} "
            f"{seconds / base:7.2f} {r.p_value:7.4f} {r.ci_lower:9.4f} to {r.ci_upper:7.4f}"
        )
    print(
        f"{'REML refit per allocation (p only, scaled)':44} {refit:8.1f} {refit / base:7.1f}"
        f"   (timed on {len(alloc)} allocations)"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
