"""Reference CR1 standard errors with fixest's small-sample convention (fixed effects nested in
the clusters not counted), from pyfixest (a port of R fixest) with its default ssc().

Regenerate (in an environment with pyfixest; run from the repository root):
    python tests/reference/pyfixest_nested_cr1/make_values.py
It writes la_panel.csv (a simulated LA-shaped panel, seed 20261202) and values.csv.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pyfixest as pf

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[2] / "src" / "pathfinder_eval" / "replications" / "data"


def la_panel() -> pd.DataFrame:
    """150 LAs in 9 regions × 8 years; 4 LAs start in year 5 and 3 in year 6; rates per
    10,000 with LA levels, a national trend, regional shocks and AR(1) noise."""
    rng = np.random.default_rng(20261202)
    rows = []
    for i in range(150):
        level, e = rng.normal(50, 12), 0.0
        g = 5 if i < 4 else 6 if i < 7 else 0
        for t in range(1, 9):
            e = 0.5 * e + rng.normal(0, 3)
            y = level + 0.8 * t + e + (2.0 if g and t >= g else 0.0)
            rows.append({"la": f"la{i:03d}", "year": t, "g": g, "y": y})
    return pd.DataFrame(rows)


def event_dummies(d: pd.DataFrame, lo: int, hi: int, ref: int = -1) -> list[str]:
    rel = (d["year"] - d["g"]).where(d["g"] > 0).clip(lo, hi)
    names = []
    for e in range(lo, hi + 1):
        if e == ref:
            continue
        name = f"e_m{-e}" if e < 0 else f"e_{e}"
        d[name] = (rel == e).astype(float)
        names.append(name)
    return names


def main() -> None:
    rows = []

    def keep(dataset: str, fit) -> None:
        for term in fit.coef().index:
            rows.append(
                {
                    "data": dataset,
                    "term": term,
                    "estimate": repr(float(fit.coef()[term])),
                    "std_error": repr(float(fit.se()[term])),
                }
            )

    castle = pd.read_csv(DATA / "castle.csv")
    keep("castle_twfe", pf.feols("l_homicide ~ post | sid + year", castle, vcov={"CRV1": "sid"}))

    ehec = pd.read_csv(DATA / "ehec.csv").query("year < 2016 and yexp2 != 2015").copy()
    ehec["g"] = np.where(ehec["yexp2"] == 2014, 2014, 0)
    ehec_names = event_dummies(ehec, -6, 1)
    keep(
        "ehec_event_study",
        pf.feols(f"dins ~ {' + '.join(ehec_names)} | stfips + year", ehec, vcov={"CRV1": "stfips"}),
    )

    la = la_panel()
    la.to_csv(HERE / "la_panel.csv", index=False)
    la["d"] = ((la["g"] > 0) & (la["year"] >= la["g"])).astype(float)
    keep("la_twfe", pf.feols("y ~ d | la + year", la, vcov={"CRV1": "la"}))
    la_names = event_dummies(la, -3, 2)
    keep(
        "la_event_study",
        pf.feols(f"y ~ {' + '.join(la_names)} | la + year", la, vcov={"CRV1": "la"}),
    )
    pd.DataFrame(rows).to_csv(HERE / "values.csv", index=False)


if __name__ == "__main__":
    main()
