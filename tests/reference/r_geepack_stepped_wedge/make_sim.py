"""Seeded individual-level stepped-wedge trials for the geepack reference (run once from this
folder; sim_large.csv and sim_small_cells.csv committed).

sim_large.csv: 12 clusters in 4 sequences of 3 (first treated period 2-5), 5 periods, 40-80
individuals per cell. y_con: nested exchangeable normal (cluster variance 0.05, cluster-period
0.02, residual 1), period trend 0.1 per period, effect 0.3. y_bin: logistic with cluster and
cluster-period normal effects (variances 0.2 and 0.05), baseline log odds -0.5, effect 0.4.

sim_small_cells.csv: 6 clusters in 3 sequences of 2 (first treated period 2-4), 4 periods, 8-30
individuals per cell and one cell of 3; y_bin logistic with a cluster effect (SD 0.2), y_con
normal. Seed 0 is one whose binomial exchangeable correlation comes out slightly negative, where
MAEE's bias-corrected equations have no positive definite V − Ω while geepack's moment
estimator fits.

sim_counts.csv: each person's count of events (not 0/1): 12 clusters in 4 sequences of 3
(first treated period 2-5), 5 periods, 20-40 individuals per cell; y_cnt Poisson with log mean
0.2 + 0.1·period + 0.3·treated + cluster (variance 0.1) + cluster-period (variance 0.03)
normal effects, so counts run from 0 to about 10.
"""

import numpy as np
import pandas as pd


def main() -> None:
    rng = np.random.default_rng(20250611)
    rows = []
    for i in range(12):
        start = 2 + i // 3
        u_con, u_bin = rng.normal(0, np.sqrt(0.05)), rng.normal(0, np.sqrt(0.2))
        for j in range(1, 6):
            trt = int(j >= start)
            n = int(rng.integers(40, 81))
            mu = 0.1 * j + 0.3 * trt + u_con + rng.normal(0, np.sqrt(0.02))
            eta = -0.5 + 0.1 * j + 0.4 * trt + u_bin + rng.normal(0, np.sqrt(0.05))
            y_con = rng.normal(mu, 1.0, n)
            y_bin = (rng.random(n) < 1.0 / (1.0 + np.exp(-eta))).astype(int)
            for a, b in zip(y_con, y_bin, strict=True):
                rows.append({"cluster": i + 1, "period": j, "trt": trt, "y_con": a, "y_bin": b})
    pd.DataFrame(rows).to_csv("sim_large.csv", index=False, float_format="%.10f")
    small_cells()
    counts()


def small_cells() -> None:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(6):
        start = 2 + i // 2
        u = rng.normal(0, 0.2)
        for j in range(1, 5):
            trt = int(j >= start)
            n = 3 if (i, j) == (0, 1) else int(rng.integers(8, 31))
            eta = -0.3 + 0.1 * j + 0.4 * trt + u
            y_bin = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
            y_con = rng.normal(0.1 * j + 0.3 * trt + u, 1.0, n)
            for a, b in zip(y_con, y_bin, strict=True):
                rows.append({"cluster": i + 1, "period": j, "trt": trt, "y_con": a, "y_bin": b})
    pd.DataFrame(rows).to_csv("sim_small_cells.csv", index=False, float_format="%.10f")


def counts() -> None:
    rng = np.random.default_rng(20261206)
    rows = []
    for i in range(12):
        start = 2 + i // 3
        u = rng.normal(0, np.sqrt(0.1))
        for j in range(1, 6):
            trt = int(j >= start)
            log_mean = 0.2 + 0.1 * j + 0.3 * trt + u + rng.normal(0, np.sqrt(0.03))
            for y in rng.poisson(np.exp(log_mean), int(rng.integers(20, 41))):
                rows.append({"cluster": i + 1, "period": j, "trt": trt, "y_cnt": int(y)})
    pd.DataFrame(rows).to_csv("sim_counts.csv", index=False)


if __name__ == "__main__":
    main()
