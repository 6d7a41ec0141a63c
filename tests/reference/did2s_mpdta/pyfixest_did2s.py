"""Reference values for two-stage DiD (Gardner 2022) on mpdta, from pyfixest's did2s.

Run with pyfixest installed (checked with 0.60.0), from the project root:
    python tests/reference/did2s_mpdta/pyfixest_did2s.py
It writes values.csv beside this file: the static ATT and the event-time effects with did2s's
GMM standard errors clustered by county. mpdta without its 2004 cohort: those counties have
one untreated year, a singleton fixed effect pyfixest's did2s cannot handle. pyfixest recovers
the first stage's fixed effects iteratively (lsqr, atol = btol = 1e-6 by default, which moves
the estimates by about 6e-6); this script asks for 1e-12 so the values are exact to ~1e-10.
"""

from functools import partialmethod
from pathlib import Path

import numpy as np
import pandas as pd
import pyfixest as pf
from pyfixest.estimation.models.feols_ import Feols

Feols.fixef = partialmethod(Feols.fixef, atol=1e-12, btol=1e-12)
HERE = Path(__file__).resolve().parent
data = pd.read_csv(HERE.parents[2] / "src/pathfinder_eval/replications/data/mpdta.csv")
data = data[data["first.treat"] != 2004].copy()
data["treat"] = ((data["first.treat"] > 0) & (data["year"] >= data["first.treat"])).astype(int)
data["rel"] = np.where(data["treat"] == 1, data["year"] - data["first.treat"], -1000)
rows = []
for second, term in (("~ i(treat, ref=0)", "static"), ("~ i(rel, ref=-1000)", "event")):
    fit = pf.did2s(
        data,
        yname="lemp",
        first_stage="~ 0 | countyreal + year",
        second_stage=second,
        treatment="treat",
        cluster="countyreal",
    )
    tidy = fit.tidy()
    for name, r in tidy.iterrows():
        label = "ATT" if term == "static" else f"event {name.split('::')[1]}"
        rows.append({"term": label, "estimate": r["Estimate"], "std_error": r["Std. Error"]})
out = pd.DataFrame(rows)
out.to_csv(HERE / "values.csv", index=False, float_format="%.12g")
print(out)
