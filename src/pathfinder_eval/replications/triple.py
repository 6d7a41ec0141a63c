"""Ortiz-Villavicencio & Sant'Anna's (2025) triple difference on Cai's (2016) households: crop
insurance offered to tobacco farmers in one county of Jiangxi from 2003, and the share of
income households keep in flexible-term savings.

moderndid's user guide ("Triple Difference-in-Differences", the empirical application, which
replicates the paper's Figure 5) prints the doubly robust DDD's event-time estimates and their
average, with household size and age as covariates, never-treated comparisons and a universal
base period. Its standard errors come from a 999-draw multiplier bootstrap (random_state 7);
ours are the analytic influence-function standard errors that bootstrap estimates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pathfinder_eval.api import triple_difference
from pathfinder_eval.replications.registry import (
    ApiExample,
    Entry,
    Published,
    Reproduced,
    register,
)

GUIDE = (
    "moderndid user guide, 'Triple Difference-in-Differences', empirical application "
    "(github jordandeklerk/moderndid at ca8a9ee, docs/source/user_guide/example_triple_did.rst)"
)
DIGITS = "printed to 4 decimals: half a unit in the last"
DRAWS = 999
# An IQR-based bootstrap SE from B draws has a relative Monte Carlo SD of about
# sqrt(0.25)/(φ(z.75)·2·z.75·√B) = 1.166/√B for a normal statistic; 4 SDs either side.
BOOT_REL_SD = 0.5 / (0.3177766 * 1.3489795) / np.sqrt(DRAWS)
BOOT_WHY = (
    f"a {DRAWS}-draw bootstrap SE against the analytic SE it estimates: 4 Monte Carlo SDs "
    f"({4 * BOOT_REL_SD:.1%} of the SE)"
)
# (event time, estimate, bootstrap SE) as the guide prints them; −1 is the reference
_EVENTS = (
    (-3, -0.0545, 0.0197),
    (-2, -0.0321, 0.0203),
    (0, 0.0070, 0.0205),
    (1, 0.0317, 0.0199),
    (2, 0.0484, 0.0247),
    (3, 0.0422, 0.0205),
    (4, 0.0684, 0.0262),
    (5, 0.1309, 0.0234),
)
AVERAGE = ("average of event times 0–5", 0.0548, 0.0137)


def households(path: Path) -> pd.DataFrame:
    """The data with the county's start: 2003 for households in the treated county, 0 else."""
    d = pd.read_csv(path)
    return d.assign(start=d["treatment"] * 2003)


def cai(path: Path) -> dict[str, Reproduced]:
    """DR-DDD, covariates hhsize and age at each cell's period (as moderndid's `ddd`), every
    household observed in both of a cell's periods, standard errors with households
    independent (as the guide's)."""
    fit = triple_difference(
        households(path),
        outcome="checksaving_ratio",
        unit="hhno",
        time="year",
        first_treated="start",
        eligible="sector",
        covariates=("hhsize", "age"),
    )
    table = fit.table
    out = {}
    for i, row in table.iterrows():
        label = AVERAGE[0] if i == 0 else f"event time {int(row['event_time'])}"
        se = float(row["std_error"])
        out[label] = Reproduced(float(row["estimate"]))
        out[f"{label} SE"] = Reproduced(se, 4 * BOOT_REL_SD * se)
    return out


def _published() -> tuple[Published, ...]:
    rows = []
    for label, est, se in (AVERAGE, *((f"event time {e}", b, s) for e, b, s in _EVENTS)):
        rows.append(Published(label, est, 5e-5, DIGITS, GUIDE))
        rows.append(Published(f"{label} SE", se, None, BOOT_WHY, GUIDE))
    return tuple(rows)


register(
    Entry(
        name="cai_triple_difference",
        title="Triple differences: crop insurance and household saving (Cai 2016)",
        citation=(
            "Ortiz-Villavicencio & Sant'Anna (2025), 'Better Understanding Triple Differences "
            "Estimators', arXiv:2505.09942, Figure 5; Cai (2016), AEJ: Economic Policy "
            "8(2):44–88; data and numbers: Python package moderndid 0.2.0"
        ),
        data="cai2016.csv.gz",
        bundled=True,
        published=_published(),
        compute=cai,
        lesson=(
            "Design: 3,659 rural households in Jiangxi observed 2000–2008 (unbalanced: 361 miss "
            "a year or more). Insurance reached tobacco farmers in one county (the treated "
            "region) in 2003: 837 treated tobacco households; 161 households of that county grow "
            "no tobacco; elsewhere 1,271 tobacco and 1,390 other households. The outcome is the "
            "flexible-term saving ratio.",
            "Estimator: each ATT(2003, t) is three doubly robust DiDs of the treated tobacco "
            "households, against the county's other households, against tobacco households "
            "elsewhere and against other households elsewhere (the first two added, the third "
            "subtracted), each net of household size and age, on the households observed in t "
            "and 2002. With one start date the event-time effects are the ATT(2003, t) and "
            "their average over 2003–2008 is the simple ATT.",
            "Why the numbers match: the estimates are closed forms of the data (a logit and a "
            "least-squares fit per comparison), so they agree to the printed digits. The "
            "guide's standard errors are a bootstrap's estimates of the analytic ones we "
            "compute, so they agree within its Monte Carlo error. Both treat households as "
            "independent; the insurance was assigned to one county of 12, and clustering by "
            "county (cluster='county') leaves one treated cluster, which no standard error "
            "can rescue: the result says so.",
        ),
        api=ApiExample(
            "d = pd.read_csv(path)\n"
            'd["start"] = d["treatment"] * 2003  # the treated county starts in 2003; 0: never\n'
            'fit = pe.triple_difference(d, outcome="checksaving_ratio", unit="hhno", time="year",\n'
            '    first_treated="start", eligible="sector", covariates=["hhsize", "age"])\n'
            'value = fit.table.loc[0, "estimate"]',
            AVERAGE[0],
        ),
    )
)
