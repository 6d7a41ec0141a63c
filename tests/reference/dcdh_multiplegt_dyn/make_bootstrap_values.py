"""Reference values for the cluster bootstrap of DID_ℓ (inference.method: cluster_bootstrap):
each draw as the authors' R code makes it (did_multiplegt_bootstrap.R: the drawn clusters'
rows stacked, a cluster drawn m times m times over, under its own unit labels, so that their
did_multiplegt_main collapses the repeated unit-periods into one cell of m times the weight),
estimated by the authors' Python port on the stacked rows.

The port has a bootstrap option that its estimation never calls (0.1.9), so the draws are made
here: clusters drawn with replacement by numpy (seed 20261206), eight draws per case, each
draw's multiplicities written to bootstrap_draws.csv and the port's rows to
bootstrap_values.csv (a draw the port cannot estimate, "No treatment effect can be estimated",
has no rows there). Run in the environment make_values.py names:

    /tmp/dcdh-ref/bin/python tests/reference/dcdh_multiplegt_dyn/make_bootstrap_values.py
"""

import numpy as np
import pandas as pd
from authors_port import HERE, fit, panel, rows, write

DRAWS = 8
# case: (panel, port options, the column whose values are drawn: unit or cluster)
CASES = {
    "switch_on_off_pause": ("switch_on_off_pause", {}, "unit"),
    "switch_on_off_pause_cluster": ("switch_on_off_pause", {"cluster": "cluster"}, "cluster"),
    "intensity_weighted": ("intensity", {"weight": "w"}, "unit"),
    "la_absorbing_region": ("la_absorbing", {"cluster": "cluster"}, "cluster"),
}

rng = np.random.default_rng(20261206)
draws, values = [], []
for case, (name, options, by) in CASES.items():
    data = panel(name)[["unit", "period", "treatment", "y", "w", "cluster"]]
    # the port averages the cluster column over a collapsed cell's rows: codes, not text
    data = data.assign(cluster=pd.factorize(data["cluster"], sort=True)[0])
    clusters = np.sort(data[by].unique())
    for b in range(DRAWS):
        times = np.bincount(rng.integers(0, len(clusters), len(clusters)), minlength=len(clusters))
        draws += [
            {"case": case, "draw": b, "cluster": c, "times": int(k)}
            for c, k in zip(clusters, times, strict=True)
        ]
        stacked = pd.concat(
            [data[data[by] == c] for c, k in zip(clusters, times, strict=True) for _ in range(k)]
        ).sort_values(["unit", "period"], kind="stable")
        try:
            result, _ = fit(stacked, effects=3, placebo=2, **options)
        except ValueError:  # no switcher or no comparison drawn: a draw without rows
            continue
        values += [
            {"case": case, "draw": b, "row": r["row"], "estimate": r["estimate"]}
            for r in rows(result)
        ]
pd.DataFrame(draws).to_csv(HERE / "bootstrap_draws.csv", index=False)
write(values, "bootstrap_values.csv")
