"""Regenerate anticipation_values.csv: moderndid's att_gt with anticipation = 1 (analytic
standard errors) on mpdta (lemp, first.treat, no covariates), dr, never- and not-yet-treated
comparisons, with the simple and event-time aggregations. moderndid is a port of R's did;
pathfinder-eval checks its transition rule against these numbers (the rule leaves out the
partly exposed period before the first treated period, which did's anticipation of one period
never uses after the start).

    pip install moderndid==0.2.0 "polars<1.32"   # into a scratch venv
    python tests/reference/did_mpdta/moderndid_anticipation.py
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from moderndid import aggte, att_gt

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[2] / "src" / "pathfinder_eval" / "replications" / "data" / "mpdta.csv"


def main() -> None:
    warnings.filterwarnings("ignore")
    data = pd.read_csv(DATA)
    rows = []
    for control in ("nevertreated", "notyettreated"):
        fit = att_gt(
            data,
            yname="lemp",
            tname="year",
            idname="countyreal",
            gname="first.treat",
            est_method="dr",
            control_group=control,
            anticipation=1,
            boot=False,
            cband=False,
        )
        for g, t, a, s in zip(fit.groups, fit.times, fit.att_gt, fit.se_gt, strict=True):
            rows.append((control, "att_gt", g, t, np.nan, a, s))
        simple = aggte(fit, type="simple", boot=False, cband=False)
        rows.append(
            (control, "simple", np.nan, np.nan, np.nan, simple.overall_att, simple.overall_se)
        )
        dyn = aggte(fit, type="dynamic", boot=False, cband=False)
        for e, a, s in zip(dyn.event_times, dyn.att_by_event, dyn.se_by_event, strict=True):
            rows.append((control, "dynamic", np.nan, np.nan, e, a, s))
    out = pd.DataFrame(
        rows,
        columns=[
            "control_group",
            "aggregation",
            "cohort",
            "period",
            "event_time",
            "estimate",
            "std_error",
        ],
    )
    out.to_csv(HERE / "anticipation_values.csv", index=False, float_format="%.12g")


if __name__ == "__main__":
    main()
