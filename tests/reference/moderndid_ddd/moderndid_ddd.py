"""Reference values for the unit-level triple difference (pe.triple_difference): moderndid's
`ddd`, a port of Ortiz-Villavicencio & Sant'Anna's (2025) R package triplediff, on a simulated
unbalanced panel of children in LAs. LAs start in 2021 or 2023 or never; within each LA some
children are eligible (the targeted age band); the outcome drifts differently by eligibility
and LA; age and a need score are covariates, age changing over time.

Run from the project root with moderndid installed (checked with 0.2.0):
    python tests/reference/moderndid_ddd/moderndid_ddd.py
It writes panel.csv (the data, seeded) and values.csv beside this file: every ATT(g,t) with its
analytic standard error, for the doubly robust, IPW and regression estimators and varying and
universal base periods (covariates taken at period t, as moderndid does), and the event-time
aggregation's estimates (its standard errors are bootstrapped there, so not recorded).
"""

import warnings
from pathlib import Path

import moderndid as did
import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
warnings.simplefilter("ignore")
rng = np.random.default_rng(20261207)
n_la, per_la, years = 24, 40, np.arange(2018, 2026)
start = rng.choice([2021, 2023, 0], n_la, p=[0.3, 0.3, 0.4])
rows = []
for la in range(n_la):
    la_level, la_trend = rng.normal(0, 1.5), rng.normal(0, 0.2)
    for c in range(per_la):
        eligible = int(rng.random() < 0.5)
        age0, need = rng.integers(0, 12), rng.normal()
        level = la_level + rng.normal(0, 1) + 0.3 * need
        first = rng.integers(0, 3) * (rng.random() < 0.2)  # a late entry for some
        for t in years[first:]:
            age = age0 + (t - years[0])
            on = start[la] and t >= start[la] and eligible
            effect = (0.5 + 0.1 * (t - start[la])) if on else 0.0
            y = level + la_trend * (t - 2018) + 0.1 * (t - 2018) * eligible + 0.05 * age
            y += 0.2 * need * (t - 2018) / 8 + effect + rng.normal(0, 0.7)
            rows.append(
                (
                    f"la{la:02d}",
                    f"la{la:02d}c{c:02d}",
                    t,
                    start[la],
                    eligible,
                    age,
                    round(need, 6),
                    round(y, 6),
                )
            )
panel = pd.DataFrame(rows, columns=["la", "child", "year", "start", "eligible", "age", "need", "y"])
panel = panel.drop(panel.sample(frac=0.03, random_state=7).index)  # scattered missing years
panel.to_csv(HERE / "panel.csv", index=False)
data = panel.assign(id=panel["child"].str.replace(r"\D", "", regex=True).astype(int))
out = []
for method in ("dr", "ipw", "reg"):
    for base in ("varying", "universal"):
        fit = f"{method}_{base}"
        res = did.ddd(
            data=data,
            yname="y",
            tname="year",
            idname="id",
            gname="start",
            pname="eligible",
            xformla="~ age + need",
            control_group="nevertreated",
            base_period=base,
            est_method=method,
            allow_unbalanced_panel=True,
        )
        for g, t, a, s in zip(res.groups, res.times, res.att, res.se, strict=True):
            if base == "universal" and t == g - 1:
                continue  # the reference cell
            out.append(
                {"fit": fit, "kind": "cell", "cohort": g, "year": t, "estimate": a, "std_error": s}
            )
        es = did.agg_ddd(res, type="eventstudy", boot=True, biters=10, cband=False, random_state=1)
        out.append(
            {
                "fit": fit,
                "kind": "overall",
                "cohort": "",
                "year": "",
                "estimate": es.overall_att,
                "std_error": "",
            }
        )
        for e, a in zip(es.egt, es.att_egt, strict=True):
            if base == "universal" and e == -1:
                continue
            out.append(
                {
                    "fit": fit,
                    "kind": "event",
                    "cohort": "",
                    "year": e,
                    "estimate": a,
                    "std_error": "",
                }
            )
pd.DataFrame(out).to_csv(HERE / "values.csv", index=False, float_format="%.12g")
