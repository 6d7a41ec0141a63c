"""Reference values for the `df_het_two_stage` replication: the did2s README example (R
package did2s, github kylebutts/did2s README "Example") run by pyfixest's port of did2s on
the package's simulated df_het panel (1,500 units in 40 states, 1990–2020, cohorts 2000 and
2010 and never treated), to full precision. The README prints the static ATT only, to three
decimals; pyfixest's did2s is checked against R's did2s in pyfixest's own tests.

Run in a separate environment (a reference only, never a dependency of pathfinder-eval),
from the project root:

    python -m venv /tmp/pfvenv && /tmp/pfvenv/bin/pip install pyfixest==0.60.0
    /tmp/pfvenv/bin/python tests/reference/did2s_df_het/pyfixest_did2s.py

It writes values.csv beside this file. Runs: the README's first stage (state and year fixed
effects), and a first stage with unit and year effects; both clustered by state, each with
the static ATT and one effect per event time >= 0 (never-treated and not-yet-treated cells
the reference). pyfixest recovers the fixed effects iteratively (lsqr, atol = btol = 1e-6 by
default); 1e-12 is asked for here so the values are exact to ~1e-10.
"""

from functools import partialmethod
from pathlib import Path

import numpy as np
import pandas as pd
import pyfixest as pf
from pyfixest.estimation.models.feols_ import Feols

Feols.fixef = partialmethod(Feols.fixef, atol=1e-12, btol=1e-12)
HERE = Path(__file__).resolve().parent
DATA = HERE.parents[2] / "src/pathfinder_eval/replications/data/df_het.csv.gz"
data = pd.read_csv(DATA)
data["treat"] = data["treat"].astype(int)
data["rel"] = np.where(data["treat"] == 1, data["year"] - data["g"], -1000)
rows = []
for first in ("state", "unit"):
    for second, term in (("~ i(treat, ref=0)", "static"), ("~ i(rel, ref=-1000)", "event")):
        fit = pf.did2s(
            data,
            yname="dep_var",
            first_stage=f"~ 0 | {first} + year",
            second_stage=second,
            treatment="treat",
            cluster="state",
        )
        for name, r in fit.tidy().iterrows():
            label = "ATT" if term == "static" else f"event {int(float(name.split('::')[1]))}"
            rows.append(
                {
                    "first_stage": first,
                    "term": label,
                    "estimate": r["Estimate"],
                    "std_error": r["Std. Error"],
                }
            )
out = pd.DataFrame(rows)
out.to_csv(HERE / "values.csv", index=False, float_format="%.12g")
print(out.to_string())
