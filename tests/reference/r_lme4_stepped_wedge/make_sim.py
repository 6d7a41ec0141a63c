"""Seeded individual-level stepped-wedge trials for the R reference (run once; CSVs committed).

sim_ne.csv: 10 clusters in 5 sequences of 2, 6 periods, 4-14 individuals per cell, nested
exchangeable (tau2 0.06, gamma2 0.03, sigma2 1), effect growing with exposure time.
sim_incomplete.csv: the same trial with each cluster's first intervention period removed
(transition periods) and two further cells missing.
sim_decay.csv: 8 clusters in 4 sequences, 5 periods, exponential decay (tau2 0.1, r 0.6).
"""

import numpy as np
import pandas as pd


def trial(rng, clusters, periods, per_seq, cov, effects):
    rows = []
    for i in range(clusters):
        start = 2 + i // per_seq
        cp = rng.multivariate_normal(np.zeros(periods), cov)
        for j in range(1, periods + 1):
            e = j - start + 1 if j >= start else 0
            mu = 0.15 * j + (effects[e - 1] if e > 0 else 0.0) + cp[j - 1]
            n = int(rng.integers(4, 15))
            for y in rng.normal(mu, 1.0, n):
                rows.append({"cluster": f"k{i + 1:02d}", "period": j, "trt": int(e > 0), "y": y})
    return pd.DataFrame(rows)


def main() -> None:
    rng = np.random.default_rng(20240603)
    t = 6
    ne = 0.06 * np.ones((t, t)) + 0.03 * np.eye(t)
    d = trial(rng, 10, t, 2, ne, [0.1, 0.25, 0.35, 0.4, 0.45])
    d.to_csv("sim_ne.csv", index=False, float_format="%.10f")
    start = 2 + (d["cluster"].str[1:].astype(int) - 1) // 2
    keep = (d["period"] != start) & ~(
        ((d["cluster"] == "k03") & (d["period"] == 1))
        | ((d["cluster"] == "k08") & (d["period"] == 6))
    )
    d[keep].to_csv("sim_incomplete.csv", index=False, float_format="%.10f")
    t = 5
    lag = np.abs(np.subtract.outer(np.arange(t), np.arange(t)))
    d = trial(rng, 8, t, 2, 0.1 * 0.6**lag, [0.3] * 4)
    d.to_csv("sim_decay.csv", index=False, float_format="%.10f")


if __name__ == "__main__":
    main()
