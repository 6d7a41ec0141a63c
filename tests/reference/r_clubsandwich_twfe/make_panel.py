"""Seeded generator of panel_3of30.csv (run once from this folder: python make_panel.py).

30 units x 10 periods; 3 treated units starting in periods 5, 7 and 7; unit and period
effects, AR(1) errors (rho = 0.5) within unit, true effect 0.3. Column `keep` marks the cells
kept in the unbalanced variant (8 cells dropped at random, at most one per unit).
"""

import numpy as np
import pandas as pd

rng = np.random.default_rng(20240611)
n_units, n_periods = 30, 10
starts = {0: 5, 1: 7, 2: 7}
alpha = rng.normal(size=n_units)
lam = np.cumsum(rng.normal(scale=0.3, size=n_periods))
rows = []
for i in range(n_units):
    e = 0.0
    for t in range(1, n_periods + 1):
        e = 0.5 * e + rng.normal()
        cohort = starts.get(i, 0)
        d = cohort > 0 and t >= cohort
        rows.append((f"v{i:02d}", t, cohort, alpha[i] + lam[t - 1] + 0.3 * d + e))
frame = pd.DataFrame(rows, columns=["unit", "period", "cohort", "y"])
frame["keep"] = 1
for i in rng.choice(n_units, 8, replace=False):
    frame.loc[i * n_periods + int(rng.integers(n_periods)), "keep"] = 0
frame["y"] = frame["y"].round(6)
frame.to_csv("panel_3of30.csv", index=False)
