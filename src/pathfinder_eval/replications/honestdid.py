"""Rambachan & Roth (2023): sensitivity of the Medicaid-expansion event study on ehec (the
HonestDiD README)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import statsmodels.api as sm

from pathfinder_eval.inference.honest_did import sensitivity_rm, sensitivity_sd
from pathfinder_eval.replications.registry import (
    ApiExample,
    Entry,
    Published,
    Reproduced,
    register,
)

README = "R HonestDiD README (github asheshrambachan/HonestDiD at 6813f02), Medicaid example"
EVENT_YEARS = (2008, 2009, 2010, 2011, 2012, 2014, 2015)  # 2013 is the reference year
N_PRE, N_POST = 5, 2
M_SD = (0.0, 0.01, 0.02, 0.03, 0.04, 0.05)
M_RM = (0.5, 1.0, 1.5, 2.0)
# fixest's small-sample factor counts the 7 event-time terms and 8 year effects (state effects
# are nested in the state clusters): K = 15.
FIXEST_K = 15
SD_WHY = (
    "printed to 3 significant digits: half a unit in the last digit, plus 3e-5 because R "
    "simulates the folded-normal quantile from 10⁶ draws where we use the exact one"
)
RM_WHY = (
    "printed to 3 significant digits: half a unit in the last digit, plus 1.5 steps of the θ "
    "grid (5.5e-4): the least-favourable critical value is simulated (1,000 draws)"
)


def event_study(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The README's event study: 2014 adopters vs never-treated states, years before 2016,
    dins on year × adopter indicators with state and year effects, clustered by state."""
    d = pd.read_csv(path)
    d = d[(d["year"] < 2016) & (d["yexp2"].isna() | (d["yexp2"] != 2015))]
    adopter = (d["yexp2"] == 2014).astype(float)
    x = pd.DataFrame({f"e{t}": (d["year"] == t) * adopter for t in EVENT_YEARS})
    x = pd.concat(
        [
            x,
            pd.get_dummies(d["stfips"], prefix="s", dtype=float),
            pd.get_dummies(d["year"], prefix="y", drop_first=True, dtype=float),
        ],
        axis=1,
    )
    fit = sm.OLS(d["dins"].to_numpy(float), x.to_numpy(float)).fit(
        cov_type="cluster", cov_kwds={"groups": d["stfips"].to_numpy()}
    )
    n, k = len(d), x.shape[1]
    vcov = fit.cov_params()[: len(EVENT_YEARS), : len(EVENT_YEARS)] * (n - k) / (n - FIXEST_K)
    return fit.params[: len(EVENT_YEARS)], vcov


def compute(path: Path) -> dict[str, Reproduced]:
    beta, sigma = event_study(path)
    out = {}
    sd = sensitivity_sd(beta, sigma, N_PRE, N_POST, np.array(M_SD))
    for m, lo, hi in zip(M_SD, sd.lower, sd.upper, strict=True):
        out[f"smoothness M={m:g}: lower"] = Reproduced(float(lo))
        out[f"smoothness M={m:g}: upper"] = Reproduced(float(hi))
    rm = sensitivity_rm(beta, sigma, N_PRE, N_POST, np.array(M_RM), grid="identified_set")
    for m, lo, hi in zip(M_RM, rm.lower, rm.upper, strict=True):
        out[f"relative magnitudes M̄={m:g}: lower"] = Reproduced(float(lo))
        out[f"relative magnitudes M̄={m:g}: upper"] = Reproduced(float(hi))
    return out


def _three_digits(value: float) -> float:
    """Half a unit in the third significant digit."""
    return 0.5 * 10 ** (np.floor(np.log10(abs(value))) - 2)


_SD_PRINTED = (
    (0.0259, 0.0607),
    (0.0132, 0.0787),
    (0.00286, 0.0907),
    (-0.00714, 0.101),
    (-0.0171, 0.111),
    (-0.0271, 0.121),
)
_RM_PRINTED = ((0.0241, 0.0673), (0.0171, 0.0720), (0.00859, 0.0796), (-0.00107, 0.0883))

register(
    Entry(
        name="ehec_honestdid",
        title="Sensitivity of a Medicaid event study to parallel-trends violations",
        citation="Rambachan & Roth (2023), Review of Economic Studies 90:2555–2591; R "
        "HonestDiD README",
        data="ehec.csv",
        bundled=True,
        published=(
            *(
                Published(f"smoothness M={m:g}: {side}", v, _three_digits(v) + 3e-5, SD_WHY, README)
                for m, pair in zip(M_SD, _SD_PRINTED, strict=True)
                for side, v in zip(("lower", "upper"), pair, strict=True)
            ),
            *(
                Published(
                    f"relative magnitudes M̄={m:g}: {side}",
                    v,
                    _three_digits(v) + 5.5e-4,
                    RM_WHY,
                    README,
                )
                for m, pair in zip(M_RM, _RM_PRINTED, strict=True)
                for side, v in zip(("lower", "upper"), pair, strict=True)
            ),
        ),
        compute=compute,
        lesson=(
            "Design: US states that expanded Medicaid in 2014 against states that never did, "
            "2008–2015; the outcome is the share of adults with health insurance. The event "
            "study estimates the gap in each year relative to 2013.",
            "Sensitivity: instead of assuming parallel trends exactly, Rambachan & Roth bound "
            "how far the post-2014 trend could deviate — by a change in slope of at most M per "
            "year (smoothness), or by at most M̄ times the largest pre-2014 deviation "
            "(relative magnitudes) — and give a confidence interval for the 2014 effect that "
            "is valid under that bound.",
            "Why the numbers match: the smoothness intervals solve the same fixed-length "
            "optimisation; the relative-magnitudes intervals invert the same conditional test "
            "with a simulated critical value, so they agree within its Monte Carlo error and "
            "the grid step.",
        ),
        api=ApiExample(
            'd = pd.read_csv(path).query("year < 2016 and yexp2 != 2015")\n'
            'd = d.assign(g=(d["yexp2"] == 2014) * 2014)\n'
            'es = pe.event_study(d, outcome="dins", unit="stfips", time="year",\n'
            '    first_treated="g", min_lead=-6, max_lag=1, inference="cluster_robust")\n'
            "value = pe.honest_did(es, [0.01]).lower[0]",
            "smoothness M=0.01: lower",
        ),
    )
)
