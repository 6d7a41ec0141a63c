"""Reference values for ETWFE with unit fixed effects (etwfe's `ivar`) on mpdta, from pyfixest.

Run with pyfixest installed (checked with 0.60.0), from the project root:
    python tests/reference/etwfe_mpdta/pyfixest_unit_effects.py
It writes unit_effects.csv beside this file: each treated cohort × year cell's coefficient and
CR1 standard error (fixest's convention: unit effects nested in the county clusters are not
counted) in lemp ~ D_gt + D_gt·(lpop − mean lpop of the cohort) + year·lpop | county + year,
not-yet-treated controls, as etwfe(..., ivar = countyreal) fits it (`model` linear), and the
same terms in a Poisson fit of emp = exp(lemp) (`model` poisson).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pyfixest as pf

HERE = Path(__file__).resolve().parent
data = pd.read_csv(HERE.parents[2] / "src/pathfinder_eval/replications/data/mpdta.csv")
g = data["first.treat"]
data["lpop_dm"] = data["lpop"] - data.groupby("first.treat")["lpop"].transform("mean")
terms = []
for cohort in sorted(g[g > 0].unique()):
    for year in sorted(data["year"].unique()):
        if year >= cohort:
            name = f"D_{cohort}_{year}"
            data[name] = ((g == cohort) & (data["year"] == year)).astype(float)
            data[name + "_x"] = data[name] * data["lpop_dm"]
            terms += [name, name + "_x"]
for year in sorted(data["year"].unique())[1:]:
    data[f"y{year}_x"] = (data["year"] == year) * data["lpop"]
    terms.append(f"y{year}_x")
data["emp"] = np.exp(data["lemp"])
rhs = f"{' + '.join(terms)} | countyreal + year"
cells = [t for t in terms if t.startswith("D_") and not t.endswith("_x")]
frames = []
for model, fit in (
    ("linear", pf.feols(f"lemp ~ {rhs}", data, vcov={"CRV1": "countyreal"})),
    ("poisson", pf.fepois(f"emp ~ {rhs}", data, vcov={"CRV1": "countyreal"}, fixef_tol=1e-12)),
):
    frames.append(
        pd.DataFrame(
            {
                "model": model,
                "term": cells,
                "estimate": fit.coef()[cells].to_numpy(),
                "std_error": fit.se()[cells].to_numpy(),
            }
        )
    )
out = pd.concat(frames)
out.to_csv(HERE / "unit_effects.csv", index=False, float_format="%.12g")
print(out)
