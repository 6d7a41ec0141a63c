"""Published extended-TWFE analyses: etwfe's README example on mpdta, linear with the `lpop`
covariate, and the package's pinned Poisson event study."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pathfinder_eval.estimators.did.etwfe import etwfe, etwfe_effects
from pathfinder_eval.replications.registry import ApiExample, Entry, Published, Reproduced, register

README = "R etwfe 0.6.2 README, emfx(mod, type = 'event') (github grantmcdermott/etwfe at 2b47cfd)"
PINNED = "etwfe 0.6.2 inst/tinytest/test_emfx.R, the maintainers' pinned emfx() output"
PRINTED = "printed to 4 decimals: half a unit in the last place"
FULL = "pinned to full precision; 1e-6 relative allows marginaleffects' numerical derivatives"


def mpdta(path: Path) -> dict[str, Reproduced]:
    d = pd.read_csv(path)
    cohort = d["first.treat"].where(d["first.treat"] > 0).to_numpy(float)
    args = (d["countyreal"].to_numpy(), d["year"].to_numpy(float), cohort, d[["lpop"]].to_numpy())
    out: dict[str, Reproduced] = {}
    linear = etwfe(d["lemp"].to_numpy(float), *args)
    poisson = etwfe(np.exp(d["lemp"].to_numpy(float)), *args, family="poisson")
    for prefix, fit in (("", linear), ("Poisson ", poisson)):
        for kind in ("simple", "event"):
            eff = etwfe_effects(fit, kind)
            se = np.sqrt(np.diag(eff.vcov))
            for label, est, s in zip(eff.labels, eff.estimate, se, strict=True):
                name = f"{prefix}{'ATT' if kind == 'simple' else f'event {label}'}"
                out[name] = Reproduced(float(est))
                out[f"{name} SE"] = Reproduced(float(s))
    return out


_EVENT = {0: (-0.0332, 0.0134), 1: (-0.0573, 0.0171), 2: (-0.1379, 0.0308), 3: (-0.1095, 0.0323)}
_POISSON = {
    0: (-25.3497484355494, 15.8862762958862),
    1: (1.09175116997388, 40.2952222352926),
    2: (-75.1246321552693, 23.1541376499351),
    3: (-101.823979344829, 27.0877431076141),
}


def _rel(value: float, rel: float) -> float:
    return abs(value) * rel


register(
    Entry(
        name="mpdta_etwfe",
        title="Extended TWFE on county teen employment (mpdta), linear and Poisson",
        citation="Wooldridge (2021, SSRN 3906345; 2023, Econometrics J. 26:C31–C66); R etwfe",
        data="mpdta.csv",
        bundled=True,
        published=(
            *(
                p
                for e, (est, se) in _EVENT.items()
                for p in (
                    Published(f"event {e}", est, 5e-5, PRINTED, README),
                    Published(f"event {e} SE", se, 5e-5, PRINTED, README),
                )
            ),
            Published("ATT", -0.0506270331228907, _rel(0.0506, 1e-6), FULL, PINNED),
            Published("ATT SE", 0.0124972546529842, _rel(0.0125, 1e-6), FULL, PINNED),
            *(
                p
                for e, (est, se) in _POISSON.items()
                for p in (
                    Published(f"Poisson event {e}", est, _rel(est, 1e-6), FULL, PINNED),
                    Published(f"Poisson event {e} SE", se, _rel(se, 1e-5), FULL, PINNED),
                )
            ),
        ),
        compute=mpdta,
        lesson=(
            "Design: 500 US counties, 2003–2007, minimum-wage rises in 2004, 2006 or 2007; log "
            "teen employment, with log population as a covariate.",
            "Estimator: one regression with cohort and year effects and a separate treatment "
            "effect for every cohort × year after the start (each with its own slope on the "
            "covariate, centred within the cohort), so not-yet-treated county-years are the "
            "comparisons; the cell effects are then averaged over treated county-years, by "
            "years since the start. The Poisson version does the same for employment counts on "
            "the log scale and averages the differences in predicted counts.",
            "Why the numbers match: the fit is ordinary least squares (or Poisson maximum "
            "likelihood) with the same terms as R's fixest, and the averages are linear (or "
            "smooth) in the coefficients, so the delta-method standard errors with fixest's "
            "cluster-robust covariance agree to the last pinned digit apart from the numerical "
            "derivatives R's marginaleffects takes.",
        ),
        api=ApiExample(
            "d = pd.read_csv(path)\n"
            'fit = pe.etwfe(d, outcome="lemp", unit="countyreal", time="year",\n'
            '               first_treated="first.treat", covariates=("lpop",))\n'
            'value = fit.table.set_index("event_time").loc[2, "estimate"]',
            "event 2",
        ),
    )
)
