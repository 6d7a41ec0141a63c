"""Weighted stacked DiD on the authors' own example: the ACA Medicaid expansion and the
uninsurance rate of adults aged 18–60 (American Community Survey, 51 states × 2008–2021).

The tutorial prints the event-study coefficients with their state-clustered SEs (R's fixest
to four decimals, Stata's reghdfe to three significant digits), the 600 stacked rows, and
the average of the three post-start effects with its SE. The data are not shipped (the
authors' repository states no licence): put the CSV under the reference folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pathfinder_eval.estimators.did.stacked import stacked_did
from pathfinder_eval.replications.registry import ApiExample, Entry, Published, Reproduced, register

TUTORIAL = (
    "Wing, Hollingsworth & Freedman, 'Getting Started With Stacked DID' "
    "(github hollina/stacked-did-weights, commit b1bad75): reghdfe table"
)
AVERAGE = "the same tutorial, 'Compute the average post-treatment effect' (R hypotheses())"
DIGITS = "printed to three significant digits: half a unit in the last"

# (event time, estimate, SE) as Stata's esttab prints them (R's etable agrees to 4 decimals)
_EVENTS = (
    (-3, -0.00102, 0.00368),
    (-2, -0.00303, 0.00299),
    (0, -0.0163, 0.00393),
    (1, -0.0239, 0.00645),
    (2, -0.0255, 0.00707),
)


def _half_unit(value: float) -> float:
    """Half a unit in the third significant digit of `value`."""
    return 0.5 * 10.0 ** (np.floor(np.log10(abs(value))) - 2)


def aca(path: Path) -> dict[str, Reproduced]:
    """κ_pre = 3, κ_post = 2, clean controls never treated or first treated after the window,
    the 2020 and 2021 cohorts trimmed (their windows leave the data), CR1 by state."""
    d = pd.read_csv(path)
    fit = stacked_did(
        d["unins"].to_numpy(float),
        d["st"].to_numpy(),
        d["year"].to_numpy(float),
        d["adopt_year"].to_numpy(float),  # NaN: never adopted by 2021
        kappa_pre=3,
        kappa_post=2,
    )
    se = np.sqrt(np.diag(fit.vcov))
    out = {"stacked rows": Reproduced(float(fit.n_stacked))}
    out["average of event times 0–2"] = Reproduced(float(fit.estimate[0]))
    out["average of event times 0–2 SE"] = Reproduced(float(se[0]))
    for e, est, s in zip(fit.event_time[1:], fit.estimate[1:], se[1:], strict=True):
        out[f"event time {int(e)}"] = Reproduced(float(est))
        out[f"event time {int(e)} SE"] = Reproduced(float(s))
    return out


def _published() -> tuple[Published, ...]:
    rows = [
        Published("stacked rows", 600, 0.0, "a count: exact", TUTORIAL),
        Published("average of event times 0–2", -0.0219, 5e-5, DIGITS, AVERAGE),
        Published("average of event times 0–2 SE", 0.00563, 5e-6, DIGITS, AVERAGE),
    ]
    for e, est, se in _EVENTS:
        rows.append(Published(f"event time {e}", est, _half_unit(est), DIGITS, TUTORIAL))
        rows.append(Published(f"event time {e} SE", se, _half_unit(se), DIGITS, TUTORIAL))
    return tuple(rows)


register(
    Entry(
        name="aca_stacked",
        title="Weighted stacked DiD: Medicaid expansion and uninsurance (the authors' example)",
        citation=(
            "Wing, Freedman & Hollingsworth (2024), 'Stacked Difference-in-Differences', "
            "NBER Working Paper 32054; data and tutorial: github hollina/stacked-did-weights"
        ),
        data="did/acs1860_unins_2008_2021.csv",
        bundled=False,
        download=(
            "github.com/hollina/stacked-did-weights (data/acs1860_unins_2008_2021.csv; not "
            "shipped: no licence stated)"
        ),
        published=_published(),
        compute=aca,
        lesson=(
            "Design: 51 states observed 2008–2021; 28 expanded Medicaid in 2014 and 12 later "
            "(3 in 2015, 2 in 2016, 2 in 2019, 3 in 2020, 2 in 2021); 11 had not by 2021. The "
            "outcome is the share of adults aged 18–60 without health insurance.",
            "Estimator: one sub-experiment per adoption year, each its treated states and the "
            "clean controls (never treated, or first treated after the window) over event "
            "times −3 to 2; the 2020 and 2021 sub-experiments are trimmed because their "
            "windows run past 2021. The stack is one regression of the outcome on event-time "
            "× treated indicators with treated-group and event-time effects, the control rows "
            "weighted so that each sub-experiment's controls count as much as its treated "
            "states do (the corrective weights), clustered by state.",
            "Why the numbers match: the stack, its weights and the regression are closed "
            "forms of the data, so the same data give the tutorial's table to its printed "
            "digits, with fixest's and reghdfe's small-sample factor and G − 1 = 50 degrees of "
            "freedom for the average's t.",
        ),
        api=ApiExample(
            "d = pd.read_csv(path)\n"
            'd["first"] = d["adopt_year"]  # missing: never treated\n'
            'fit = pe.stacked(d, outcome="unins", unit="st", time="year", first_treated="first",\n'
            '                 kappa_pre=3, kappa_post=2, inference="cluster_robust")\n'
            'value = fit.table.loc[0, "std_error"]',
            "average of event times 0–2 SE",
        ),
    )
)
