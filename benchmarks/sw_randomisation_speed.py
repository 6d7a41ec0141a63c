"""Benchmark: stepped-wedge randomisation inference with 10,000 allocations, beside a refit loop.

Run on demand (not a test): python benchmarks/sw_randomisation_speed.py [DRAWS]
A 10-cluster trial (5 sequences of 2, 6 periods, 30 individuals per cell; seed 3) is analysed
by the nested-exchangeable LMM with randomisation inference: DRAWS (default 10,000) Monte-Carlo
re-allocations of clusters to sequences (113,400 possible), p-value and the 95% interval by
test inversion, for the model-based statistic (GLS effect with null-model REML variance
parameters) and the within-period NPWP statistic. No Python package offers this; the peer is
the direct approach — refit the REML model to every re-allocated trial — timed on
REFIT_SAMPLE allocations and scaled to DRAWS (p-value only: no interval; its p-value on those
allocations, |REML effect| at least the observed one's, is printed beside ours, which differs by
Monte Carlo error and by its statistic). Ours: best of 3 after a warm-up. Peak memory: the most
one call allocates (tracemalloc; for the refit loop, one refit).
"""

from __future__ import annotations

import sys

import numpy as np
from measure import best_of, traced_peak_mib  # benchmarks/ is on the path

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
    print(
        f"{'method':48} {'seconds':>8} {'ratio':>7} {'p':>7} {'95% interval':>20} {'peak MiB':>9}"
    )
    rows = []
    for statistic in ("model_based", "npwp", "within_period"):

        def test(statistic: str = statistic):
            return randomisation_test(
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

        seconds, r = best_of(test, 3)
        rows.append((statistic, seconds, r, traced_peak_mib(test)))
    alloc = allocations(start, draws, 1).starts[:REFIT_SAMPLE]

    def effect(s: np.ndarray) -> float:
        x = fixed_effects(cells.observed, s, "immediate", like=fe).X
        return float(fit_reml(cells, x, "nested_exchangeable").beta @ contrast)

    observed = abs(effect(start))
    refit, effects = best_of(lambda: np.array([effect(s) for s in alloc]), 1)
    refit *= draws / len(alloc)
    refit_p = (1 + np.sum(np.abs(effects) >= observed)) / (1 + len(alloc))
    base = rows[0][1]
    for statistic, seconds, r, peak in rows:
        print(
            f"{'pathfinder-eval, ' + statistic + ' (p and interval)':48} {seconds:8.2f} "
            f"{seconds / base:7.2f} {r.p_value:7.4f} {r.ci_lower:9.4f} to {r.ci_upper:7.4f} "
            f"{peak:9.2f}"
        )
    print(
        f"{'REML refit per allocation (p only, scaled)':48} {refit:8.1f} {refit / base:7.1f} "
        f"{refit_p:7.4f} {'':20} {traced_peak_mib(lambda: effect(alloc[0])):9.2f}"
    )
    error = 2 * np.sqrt(refit_p * (1 - refit_p) / len(alloc))
    print(
        f"(the refit loop timed on {len(alloc)} allocations, after one warm-up pass; its p from "
        f"those {len(alloc)}: Monte Carlo error ±{error:.3f})"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
