"""Seeded stepped-wedge trials whose clusters have their own intervention effects, for the lme4
random-slope reference (run once; CSVs committed).

sim_slope.csv: 15 clusters in 5 sequences of 3, 6 periods, 10-30 individuals per cell;
cluster intercept SD 0.25, intervention-effect SD 0.2 (correlation 0.4 with the intercept),
cluster-period SD 0.12, residual SD 1, mean effect 0.3.
sim_slope_small.csv: 8 clusters in 4 sequences of 2, 5 periods, 6-15 per cell, one cell
missing; intercept SD 0.3, effect SD 0.25 (correlation -0.3), cluster-period SD 0.1.
"""

import numpy as np
import pandas as pd


def trial(rng, clusters, periods, per_seq, sd, corr, gamma_sd, sizes, skip=()):
    cov = np.array([[sd[0] ** 2, corr * sd[0] * sd[1]], [corr * sd[0] * sd[1], sd[1] ** 2]])
    rows = []
    for i in range(clusters):
        start = 2 + i // per_seq
        u, v = rng.multivariate_normal(np.zeros(2), cov)
        for j in range(1, periods + 1):
            x = int(j >= start)
            mu = 0.1 * j + (0.3 + v) * x + u + rng.normal(0.0, gamma_sd)
            n = int(rng.integers(*sizes))
            if (i, j) in skip:
                continue
            for y in rng.normal(mu, 1.0, n):
                rows.append({"cluster": f"c{i + 1:02d}", "period": j, "trt": x, "y": y})
    return pd.DataFrame(rows)


def main() -> None:
    rng = np.random.default_rng(20261203)
    trial(rng, 15, 6, 3, (0.25, 0.2), 0.4, 0.12, (10, 31)).to_csv(
        "sim_slope.csv", index=False, float_format="%.10f"
    )
    trial(rng, 8, 5, 2, (0.3, 0.25), -0.3, 0.1, (6, 16), skip={(3, 4)}).to_csv(
        "sim_slope_small.csv", index=False, float_format="%.10f"
    )


if __name__ == "__main__":
    main()
