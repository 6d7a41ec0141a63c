"""Regenerate csdid_analytic.csv: analytic (bstrap=False) values from csdid, the Python port of
R's did, on mpdta (lemp, first.treat; no covariates and xformla lemp ~ lpop).

    pip install csdid==0.4.3   # into a scratch venv; pathfinder-eval does not depend on it
    python tests/reference/did_mpdta/csdid_values.py
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import pandas as pd
from csdid.att_gt import ATTgt

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[2] / "src" / "pathfinder_eval" / "replications" / "data" / "mpdta.csv"


def main() -> None:
    warnings.filterwarnings("ignore")
    data = pd.read_csv(DATA)
    rows = []
    for covariates, xformla in (("none", None), ("lpop", "lemp~lpop")):
        for method in ("reg", "dr", "ipw"):
            with contextlib.redirect_stdout(io.StringIO()):
                fit = ATTgt(
                    yname="lemp",
                    gname="first.treat",
                    idname="countyreal",
                    tname="year",
                    data=data,
                    xformla=xformla,
                ).fit(est_method=method, bstrap=False)
            res = fit.results
            for g, t, a, s in zip(res["group"], res["year"], res["att"], res["se"], strict=True):
                rows.append((covariates, method, "att_gt", g, t, a, s))
            for kind in ("simple", "dynamic", "group", "calendar"):
                with contextlib.redirect_stdout(io.StringIO()):
                    agg = fit.aggte(typec=kind, bstrap=False).atte
                rows.append(
                    (
                        covariates,
                        method,
                        f"{kind}_overall",
                        "",
                        "",
                        agg["overall_att"],
                        agg["overall_se"],
                    )
                )
                if kind != "simple":
                    for lab, a, s in zip(agg["egt"], agg["att_egt"], agg["se_egt"], strict=True):
                        rows.append((covariates, method, kind, lab, "", a, s))
    out = pd.DataFrame(
        rows,
        columns=[
            "covariates",
            "est_method",
            "aggregation",
            "label",
            "period",
            "estimate",
            "std_error",
        ],
    )
    out.to_csv(HERE / "csdid_analytic.csv", index=False, float_format="%.15g")


if __name__ == "__main__":
    main()
