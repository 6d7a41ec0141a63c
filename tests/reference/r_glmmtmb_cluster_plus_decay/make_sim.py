"""Seeded stepped-wedge trials with a cluster intercept plus AR(1) cluster-period effects, for the
glmmTMB reference (run once; CSVs committed).

sim_gauss.csv: individuals; 12 clusters in 4 sequences of 3, 7 periods, 8-25 per cell,
tau2 0.04, gamma2 0.06, r 0.6, sigma2 1, effect 0.25.
sim_binom.csv: cell counts; 15 clusters in 5 sequences of 3, 6 periods, 40-120 trials per cell,
logit scale tau2 0.10, gamma2 0.15, r 0.5, effect log(1.4); one cell missing.
"""

import numpy as np
import pandas as pd


def effects(rng, periods: int, tau2: float, gamma2: float, r: float) -> np.ndarray:
    lag = np.abs(np.subtract.outer(np.arange(periods), np.arange(periods)))
    return rng.normal(0.0, np.sqrt(tau2)) + rng.multivariate_normal(
        np.zeros(periods), gamma2 * r**lag
    )


def main() -> None:
    rng = np.random.default_rng(20261202)
    rows = []
    for i in range(12):
        start = 2 + i // 3
        b = effects(rng, 7, 0.04, 0.06, 0.6)
        for j in range(1, 8):
            mu = 0.1 * j + 0.25 * (j >= start) + b[j - 1]
            for y in rng.normal(mu, 1.0, int(rng.integers(8, 26))):
                rows.append(
                    {"cluster": f"c{i + 1:02d}", "period": j, "trt": int(j >= start), "y": y}
                )
    pd.DataFrame(rows).to_csv("sim_gauss.csv", index=False, float_format="%.10f")
    rows = []
    for i in range(15):
        start = 2 + i // 3
        b = effects(rng, 6, 0.10, 0.15, 0.5)
        for j in range(1, 7):
            if (i, j) == (4, 6):
                continue
            eta = -1.0 + 0.05 * j + np.log(1.4) * (j >= start) + b[j - 1]
            n = int(rng.integers(40, 121))
            events = int(rng.binomial(n, 1.0 / (1.0 + np.exp(-eta))))
            rows.append({"cluster": f"c{i + 1:02d}", "period": j, "trt": int(j >= start),
                         "events": events, "n": n})  # fmt: skip
    pd.DataFrame(rows).to_csv("sim_binom.csv", index=False)


if __name__ == "__main__":
    main()
