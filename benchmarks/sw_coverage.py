"""Size and coverage of stepped-wedge LMM inference with few clusters, by simulation.

Run on demand (not a test): python benchmarks/sw_coverage.py [REPLICATES] [WORKERS] [CLUSTERS…]
Trials with 6, 10 and 15 clusters (2, 2 and 3 clusters per sequence; one more period than
sequences, the first all-control) are simulated from a nested-exchangeable model (ICC 0.05,
CAC 0.8, 25 individuals per cell; cell means and within-cell sums of squares drawn exactly)
and analysed with the nested-exchangeable LMM (REML, categorical periods, immediate effect).
For each inference method: size = rejection rate of H0: θ = 0 at 5% when θ = 0, and coverage
of the 95% interval when θ = 0.3. The default (Kenward-Roger) should keep size ≤ 5.5% and
coverage within 94–96%; the normal reference with the model-based SE is shown beside it.
Monte-Carlo standard errors are printed. Seeds: replicate r of design d uses
SeedSequence([d, r, effect index]); results do not depend on WORKERS.
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
from pathfinder_eval.estimators.stepped_wedge.randomisation import NullDistribution
from pathfinder_eval.inference.policy import default_lmm_method

DESIGNS = {6: 2, 8: 2, 10: 2, 15: 3}  # clusters → clusters per sequence
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
    out["default"] = out[default_lmm_method(clusters, dist.alloc.total)]
    return out


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


if __name__ == "__main__":
    chosen = [int(c) for c in sys.argv[3:]] or list(DESIGNS)  # optional: cluster counts
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 2000,
        int(sys.argv[2]) if len(sys.argv) > 2 else 2,
        {c: DESIGNS[c] for c in chosen},
    )
