"""Reference values for triple differences (a design's `contrasts`, or `minus=` in the API):
diff-diff's TripleDifference, a port of Ortiz-Villavicencio & Sant'Anna's (2025) DDD
estimators, on a simulated panel of LAs each observed in two partitions (the targeted group
and an untargeted one).

Run from the project root with diff-diff installed (checked with 3.13.0):
    python tests/reference/diff_diff_triple/diff_diff_triple.py
It writes panel.csv (the data, seeded) and values.csv beside this file: the staggered DDD's
group-time effects and overall ATT (regression adjustment, never-treated comparisons, no
covariates; varying and universal base periods), and the 2 × 2 × 2 DDD of periods 5 and 6
with cohort-6 LAs as the treated group and never-treated LAs as controls. Each LA is
one unit per partition; diff-diff's standard errors treat the two partitions of an LA as
separate units, so only estimates are compared.
"""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from diff_diff import TripleDifference

HERE = Path(__file__).resolve().parent
warnings.simplefilter("ignore")
rng = np.random.default_rng(20261203)
n, t_n = 80, 8
cohort = np.where(rng.random(n) < 0.45, 0, rng.choice([4, 6], n))
rows = []
for i in range(n):
    la_level, la_trend = rng.normal(0, 2), rng.normal(0, 0.3)
    for part in (0, 1):
        gap = rng.normal()
        for t in range(1, t_n + 1):
            effect = 1.0 + 0.2 * (t - cohort[i]) if part and cohort[i] and t >= cohort[i] else 0
            y = la_level + la_trend * t + gap + 0.15 * t * part + effect + rng.normal(0, 0.8)
            rows.append((f"la{i:02d}", part, t, cohort[i], round(y, 6)))
panel = pd.DataFrame(rows, columns=["la", "targeted", "year", "cohort", "y"])
panel.to_csv(HERE / "panel.csv", index=False)
data = panel.assign(unit=panel["la"] + "_" + panel["targeted"].astype(str))
out = []
for base in ("varying", "universal"):
    res = TripleDifference(
        estimation_method="reg", control_group="never_treated", base_period=base
    ).fit(data, outcome="y", unit="unit", time="year", first_treat="cohort", partition="targeted")
    out.append({"fit": f"staggered_{base}", "cohort": "", "year": "", "estimate": res.overall_att})
    for (g, t), eff in sorted(res.group_time_effects.items()):
        out.append({"fit": f"staggered_{base}", "cohort": g, "year": t, "estimate": eff["effect"]})
two = data[data["year"].isin([5, 6]) & data["cohort"].isin([0, 6])]
res = TripleDifference(estimation_method="reg").fit(
    two.assign(group=(two["cohort"] == 6).astype(int), post=(two["year"] == 6).astype(int)),
    outcome="y",
    group="group",
    partition="targeted",
    time="post",
)
out.append({"fit": "two_by_two_by_two", "cohort": 6, "year": 6, "estimate": res.att})
values = pd.DataFrame(out)
values["estimate"] = values["estimate"].map(lambda v: f"{v:.15g}")
values.to_csv(HERE / "values.csv", index=False)
