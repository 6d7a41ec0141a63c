"""Gardner's two-stage DiD on the did2s README example: a simulated staggered panel (df_het,
1,500 units in 40 states, 1990–2020; cohorts 2000 and 2010 and never treated) whose effects
grow with time since treatment.

The README prints the static ATT and its standard error to three significant digits; the
event-time effects (drawn, not printed) and a run with unit rather than state fixed effects
are pyfixest's port of did2s to full precision (tests/reference/did2s_df_het: the script
and its values)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pathfinder_eval.estimators.did.two_stage import two_stage
from pathfinder_eval.replications.registry import ApiExample, Entry, Published, Reproduced, register

README = "did2s README 'Example', static model (github kylebutts/did2s; R package did2s 1.0.2)"
PORT = "pyfixest 0.60.0's did2s on the same data (tests/reference/did2s_df_het)"
PORT_WHY = "pyfixest's iterative fixed effects (to 1e-12), values kept to 12 digits: 1e-9"
PORT_TOLERANCE = 1e-9

# (term, estimate, standard error) of pyfixest's did2s, first stage by state or by unit (the
# state run's ATT is the README's, to more digits)
_STATE = (
    ("ATT", 2.15221463241, 0.047606594973),
    ("event 0", 1.30446228476, 0.0560546401553),
    ("event 1", 1.53348604769, 0.0643884968642),
    ("event 2", 1.59710374844, 0.0566826231705),
    ("event 3", 1.71884730918, 0.0605696405275),
    ("event 4", 1.84629670661, 0.047692206631),
    ("event 5", 1.99058727789, 0.0563395874363),
    ("event 6", 2.07888290017, 0.0643298064794),
    ("event 7", 2.16539956614, 0.058449346864),
    ("event 8", 2.25895044801, 0.0579630344276),
    ("event 9", 2.27776307641, 0.0532970436573),
    ("event 10", 2.41476681939, 0.0600695380971),
    ("event 11", 2.45633521946, 0.0818642025848),
    ("event 12", 2.50729573449, 0.0797449773208),
    ("event 13", 2.48140151305, 0.0845629453899),
    ("event 14", 2.62632607071, 0.0697377450472),
    ("event 15", 2.81263195075, 0.0827224332527),
    ("event 16", 2.76268237986, 0.0824372436104),
    ("event 17", 2.81130039341, 0.0793692819747),
    ("event 18", 2.77703540439, 0.0817714650474),
    ("event 19", 2.78616447547, 0.0901759804731),
    ("event 20", 2.81485824322, 0.0830470479228),
)
_UNIT = (
    ("ATT", 2.23048161846, 0.0247086087189),
    ("event 0", 1.37307833628, 0.0395352646658),
    ("event 1", 1.60210209921, 0.0505111289736),
    ("event 2", 1.66571979996, 0.0452863224966),
    ("event 3", 1.7874633607, 0.0505346256088),
    ("event 4", 1.91491275813, 0.0385241593872),
    ("event 5", 2.05920332941, 0.0422566871775),
    ("event 6", 2.14749895169, 0.0481272254645),
    ("event 7", 2.23401561766, 0.0445481325824),
    ("event 8", 2.32756649953, 0.0421335540437),
    ("event 9", 2.34637912793, 0.0422430504434),
    ("event 10", 2.50133835365, 0.0428578222335),
    ("event 11", 2.55344244068, 0.0630410802816),
    ("event 12", 2.60440295572, 0.0707145824491),
    ("event 13", 2.57850873428, 0.0733153110162),
    ("event 14", 2.72343329194, 0.0638568806389),
    ("event 15", 2.90973917197, 0.0695956548099),
    ("event 16", 2.85978960109, 0.0666140865878),
    ("event 17", 2.90840761464, 0.0583883724364),
    ("event 18", 2.87414262562, 0.0789636752787),
    ("event 19", 2.8832716967, 0.0729700322624),
    ("event 20", 2.91196546445, 0.0689605032581),
)


def df_het(path: Path) -> dict[str, Reproduced]:
    """The README's model (state and year effects on the untreated cells, clustered by
    state), then unit and year effects, clustered by state: each the static ATT and one
    effect per event time from 0 to 20."""
    d = pd.read_csv(path)
    cohort = np.where(d["g"] > 0, d["g"], np.inf)
    out: dict[str, Reproduced] = {}
    for first, prefix in (("state", ""), ("unit", "unit effects: ")):
        fit = two_stage(
            d["dep_var"].to_numpy(float),
            d[first].to_numpy(),
            d["year"].to_numpy(float),
            cohort,
            cluster=d["state"].to_numpy(),
        )
        se = np.sqrt(np.diag(fit.vcov))
        for label, est, s in zip(fit.labels, fit.estimate, se, strict=True):
            name = "ATT" if label.startswith("ATT") else f"event {label.split()[-1]}"
            out[f"{prefix}{name}"] = Reproduced(float(est))
            out[f"{prefix}{name} SE"] = Reproduced(float(s))
    return out


def _published() -> tuple[Published, ...]:
    rows = [
        Published("ATT", 2.152, 5e-4, "printed to three decimals: half a unit", README),
        Published("ATT SE", 0.0476, 5e-5, "printed to three significant digits", README),
    ]
    rows += [
        Published(f"{prefix}{term}{suffix}", value, PORT_TOLERANCE, PORT_WHY, PORT)
        for prefix, table in (("", _STATE[1:]), ("unit effects: ", _UNIT))
        for term, est, s in table
        for suffix, value in (("", est), (" SE", s))
    ]
    return tuple(rows)


register(
    Entry(
        name="df_het_two_stage",
        title="Two-stage DiD on a staggered panel with growing effects (did2s's example)",
        citation=(
            "Gardner (2022), arXiv 2207.05943; Butts & Gardner (2022), R Journal 14:162–173 "
            "(R package did2s, its df_het data)"
        ),
        data="df_het.csv.gz",
        bundled=True,
        published=_published(),
        compute=df_het,
        lesson=(
            "Design: 1,500 simulated units in 40 states observed 1990–2020; a third start "
            "treatment in 2000, a third in 2010, a third never; the effect is about 2.23 on "
            "average and grows with time since the start, the case where a two-way fixed "
            "effects regression is biased.",
            "Estimator: the first stage fits state (or unit) and year effects on the untreated "
            "cells only; the second regresses the outcome less those effects on an indicator "
            "of treated cells (the static ATT) or on one indicator per event time. The "
            "standard errors are GMM ones that carry the first stage's estimation error into "
            "the second, summed within states.",
            "Why the numbers match: both stages are least squares, so the estimates and their "
            "clustered variance are closed forms of the data; the same data give the "
            "package's numbers to rounding error.",
        ),
        api=ApiExample(
            "d = pd.read_csv(path)\n"
            'd["first"] = d["g"].where(d["g"] > 0)  # 0: never treated\n'
            'fit = pe.two_stage(d, outcome="dep_var", unit="unit", time="year", '
            'first_treated="first",\n'
            '                   cluster="state", inference="cluster_robust")\n'
            'value = fit.table.loc[0, "std_error"]',
            "unit effects: ATT SE",
        ),
    )
)
