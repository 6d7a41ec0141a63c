"""Reference values for pe.triple_difference with not-yet-treated comparisons: moderndid's
`ddd(..., control_group="notyettreated")` on this folder's panel.csv (written by
moderndid_ddd.py). Where several comparison cohorts are available to a cell (never treated,
and groups starting after both of its periods) moderndid combines their DDDs with
Ortiz-Villavicencio & Sant'Anna's (2025) GMM weights (their eq. 4.11).

Run from the project root with moderndid installed (checked with 0.2.0):
    python tests/reference/moderndid_ddd/moderndid_ddd_not_yet.py
It writes values_not_yet.csv: every ATT(g,t) with moderndid's standard error (the analytic
one for cells with one comparison cohort; its GMM formula otherwise), for the doubly robust,
IPW and regression estimators with varying and universal base periods (covariates age and
need at period t), and the event-time aggregation's estimates.
"""

import warnings
from pathlib import Path

import moderndid as did
import pandas as pd

HERE = Path(__file__).resolve().parent
warnings.simplefilter("ignore")
panel = pd.read_csv(HERE / "panel.csv")
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
            control_group="notyettreated",
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
pd.DataFrame(out).to_csv(HERE / "values_not_yet.csv", index=False, float_format="%.12g")
