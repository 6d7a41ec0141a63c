"""Seeded individual-level stepped-wedge trials for the R reference (run once; CSVs committed).

sim_cross.csv: cross-sectional, 12 clusters in 6 sequences of 2, 7 periods, 10-25 children per
cell, nested exchangeable (tau2 0.05, gamma2 0.02, sigma2 1), immediate effect 0.3, and two
individual-level covariates that vary within a cell: age (years; its cluster mean drifts with
the period) and sex (0/1).
sim_cohort.csv: closed cohort, 10 clusters in 5 sequences of 2, 6 periods, 12-20 children per
cluster measured every period with 8% of visits missing at random; cluster, cluster-period and
child random intercepts (tau2 0.05, gamma2 0.02, psi2 0.3, sigma2 0.7), effect 0.25, a
child-level covariate constant over visits (sex) and one that varies by visit (score).
"""

import numpy as np
import pandas as pd


def cross_sectional(rng: np.random.Generator) -> pd.DataFrame:
    periods, rows = 7, []
    sigma = 0.05 * np.ones((periods, periods)) + 0.02 * np.eye(periods)
    for i in range(12):
        start = 2 + i // 2
        cp = rng.multivariate_normal(np.zeros(periods), sigma)
        for j in range(1, periods + 1):
            n = int(rng.integers(10, 26))
            age = rng.normal(8.0 + 0.1 * j + 0.3 * (i % 3), 2.0, n)
            sex = rng.integers(0, 2, n)
            trt = int(j >= start)
            mu = 0.1 * j + 0.3 * trt + 0.08 * age + 0.2 * sex + cp[j - 1]
            y = rng.normal(mu, 1.0)
            for k in range(n):
                rows.append(
                    {
                        "cluster": f"c{i + 1:02d}",
                        "period": j,
                        "trt": trt,
                        "age": round(float(age[k]), 3),
                        "sex": int(sex[k]),
                        "y": y[k],
                    }
                )
    return pd.DataFrame(rows)


def closed_cohort(rng: np.random.Generator) -> pd.DataFrame:
    periods, rows = 6, []
    sigma = 0.05 * np.ones((periods, periods)) + 0.02 * np.eye(periods)
    child = 0
    for i in range(10):
        start = 2 + i // 2
        cp = rng.multivariate_normal(np.zeros(periods), sigma)
        for _ in range(int(rng.integers(12, 21))):
            child += 1
            b = rng.normal(0.0, np.sqrt(0.3))
            sex = int(rng.integers(0, 2))
            for j in range(1, periods + 1):
                if rng.random() < 0.08:
                    continue
                trt = int(j >= start)
                score = rng.normal(0.2 * j, 1.0)
                mu = 0.1 * j + 0.25 * trt + 0.15 * sex + 0.1 * score + cp[j - 1] + b
                rows.append(
                    {
                        "cluster": f"k{i + 1:02d}",
                        "id": f"p{child:03d}",
                        "period": j,
                        "trt": trt,
                        "sex": sex,
                        "score": round(float(score), 3),
                        "y": rng.normal(mu, np.sqrt(0.7)),
                    }
                )
    return pd.DataFrame(rows)


def main() -> None:
    rng = np.random.default_rng(20250611)
    cross_sectional(rng).to_csv("sim_cross.csv", index=False, float_format="%.10f")
    closed_cohort(rng).to_csv("sim_cohort.csv", index=False, float_format="%.10f")


if __name__ == "__main__":
    main()
