"""Seeded cluster-period count data for the GLMM reference (run once; CSVs committed).

sim_binom.csv: 12 clusters in 4 sequences of 3, 5 periods, 15-60 trials per cell, logit model
with period trend, log odds ratio 0.4 and nested exchangeable effects (tau2 0.15, gamma2 0.05);
two cells are left out (an incomplete design).
sim_decay.csv: 10 clusters in 5 sequences of 2, 6 periods, 20-50 trials per cell, log odds
ratio 0.5 growing to 0.8 with exposure, exponential decay (tau2 0.2, r 0.5).
sim_pois.csv: 10 clusters in 5 sequences of 2, 6 periods, population 800-3000 per cell, event
rate 2% with log rate ratio -0.3 and nested exchangeable effects (tau2 0.1, gamma2 0.03).
sim_overflow.csv: the cell totals of benchmarks/sw_count_size.py's trial with 15 clusters, no
effect, replicate 6 (25 people per cell, each person's count negative binomial), on which the
nested-exchangeable Poisson GLMM's line search stepped to means that overflow (it failed with
'Singular matrix'); `python make_sim.py overflow` writes it alone.
sim_zero_clusters.csv: 8 clusters in 4 sequences of 2, 5 periods, the totals of 20 people's
negative-binomial counts (gamma shape 1.5, mean 0.8·e^(0.05·period) with cluster and
cluster-period normal effects, SD 0.3 and 0.2), two clusters without any events: the large
cluster variance leaves a flat direction on which the nested-exchangeable fit was called not
converged (found in review); `python make_sim.py zero_clusters` writes it alone.
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd


def trial(rng, clusters, periods, per_seq, cov, effects, size, intercept, draw):
    rows = []
    for i in range(clusters):
        start = 2 + i // per_seq
        cp = rng.multivariate_normal(np.zeros(periods), cov)
        for j in range(1, periods + 1):
            e = j - start + 1 if j >= start else 0
            eta = intercept + 0.1 * j + (effects[e - 1] if e > 0 else 0.0) + cp[j - 1]
            n = int(rng.integers(*size))
            rows.append(
                {
                    "cluster": f"c{i + 1:02d}",
                    "period": j,
                    "trt": int(e > 0),
                    "events": int(draw(n, eta)),
                    "n": n,
                }
            )
    return pd.DataFrame(rows)


def main() -> None:
    rng = np.random.default_rng(20240611)

    def binom(n, eta):
        return rng.binomial(n, 1.0 / (1.0 + np.exp(-eta)))

    def pois(n, eta):
        return rng.poisson(n * np.exp(eta))

    t = 5
    ne = 0.15 * np.ones((t, t)) + 0.05 * np.eye(t)
    d = trial(rng, 12, t, 3, ne, [0.4] * 4, (15, 61), -0.5, binom)
    drop = ((d["cluster"] == "c02") & (d["period"] == 3)) | (
        (d["cluster"] == "c11") & (d["period"] == 1)
    )
    d[~drop].to_csv("sim_binom.csv", index=False)
    t = 6
    lag = np.abs(np.subtract.outer(np.arange(t), np.arange(t)))
    d = trial(rng, 10, t, 2, 0.2 * 0.5**lag, [0.5, 0.6, 0.7, 0.8, 0.8], (20, 51), 0.0, binom)
    d.to_csv("sim_decay.csv", index=False)
    ne = 0.1 * np.ones((t, t)) + 0.03 * np.eye(t)
    d = trial(rng, 10, t, 2, ne, [-0.3] * 5, (800, 3001), np.log(0.02), pois)
    d.to_csv("sim_pois.csv", index=False)


def overflow() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
    from sw_count_size import trial_cells

    cells, start = trial_cells(15, 3, 0, 6)
    clusters, periods = cells.n.shape
    rows = [
        {
            "cluster": f"c{i + 1:02d}",
            "period": j + 1,
            "trt": int(j >= start[i]),
            "events": round(cells.mean[i, j] * cells.n[i, j]),
            "n": int(cells.n[i, j]),
        }
        for i in range(clusters)
        for j in range(periods)
    ]
    pd.DataFrame(rows).to_csv("sim_overflow.csv", index=False)


def zero_clusters() -> None:
    rng = np.random.default_rng(1)
    starts = np.repeat(np.arange(2, 6), 2)
    cluster = rng.normal(0, 0.3, 8)
    rows = []
    for i in range(8):
        for t in range(1, 6):
            mean = np.exp(np.log(0.8) + 0.05 * t + cluster[i] + rng.normal(0, 0.2))
            y = rng.poisson(rng.gamma(1.5, mean / 1.5, 20))
            rows.append(
                {
                    "cluster": f"c{i + 1:02d}",
                    "period": t,
                    "trt": int(t >= starts[i]),
                    "events": 0 if i in (0, 7) else int(y.sum()),
                    "n": 20,
                }
            )
    pd.DataFrame(rows).to_csv("sim_zero_clusters.csv", index=False)


if __name__ == "__main__":
    {"overflow": overflow, "zero_clusters": zero_clusters}.get(" ".join(sys.argv[1:]), main)()
