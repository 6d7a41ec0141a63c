"""Records for the Mancl-DeRouen reference (run once from this folder; records.csv committed):
10 clusters in 5 sequences of 2 (starts 2-6), 6 periods, a closed cohort of 8 people per
cluster seen in every period, with an individual covariate `age` that changes by period.
y = cluster effect (SD 0.5) + cluster-period effect (SD 0.3) + person effect (SD 0.6)
+ 0.1·period + 0.4·treated + 0.05·age + the cluster's own extra effect when treated (SD 0.3)
+ noise (SD 1). `person` identifies the cohort member; cross-sectional fits ignore it."""

import numpy as np
import pandas as pd

rng = np.random.default_rng(20261206)
rows = []
for c in range(10):
    start, u, own = 2 + c // 2, rng.normal(0, 0.5), rng.normal(0, 0.3)
    people = rng.normal(0, 0.6, 8)
    ages = rng.normal(40, 10, 8)
    for t in range(1, 7):
        cp = rng.normal(0, 0.3)
        for k in range(8):
            age = ages[k] + t + rng.normal(0, 2)
            trt = int(t >= start)
            y = u + cp + people[k] + 0.1 * t + (0.4 + own) * trt + 0.05 * age + rng.normal()
            rows.append((f"C{c:02d}", t, start, f"C{c:02d}P{k}", age, trt, y))
pd.DataFrame(rows, columns=["cluster", "period", "start", "person", "age", "trt", "y"]).to_csv(
    "records.csv", index=False, float_format="%.10f"
)
