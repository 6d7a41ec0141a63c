"""Roth (2022): the power of He & Wang's (2017) pre-test and what passing it does to their event
study (the R pretrends README).

The README prints the slope of the linear trend its pre-test detects half the time, the power,
Bayes factor and likelihood ratio against that trend and against a quadratic one, and the
coefficients' mean after pre-testing. Its inputs are an event study's coefficients and their
covariance (the package's HeAndWangResults), which are not shipped (fetched data): write them
with scripts/he_wang_event_study.R and put the CSV under the reference folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pathfinder_eval.inference.pretrends_power import (
    pass_probability,
    pretrend_power,
    slope_for_power,
)
from pathfinder_eval.replications.registry import (
    ApiExample,
    Entry,
    Published,
    Reproduced,
    register,
)

README = "R pretrends README (github jonathandroth/pretrends at 122731d), He & Wang example"
REFERENCE = -1.0  # the omitted event time
CRITICAL = 1.96  # pretrends' thresholdTstat.Pretest
SLOPE50 = 0.05205871  # the README's slope for 50% power, as printed: the trend it then analyses
ABSEPS = 1e-3  # mvtnorm's pmvnorm default (GenzBretz abseps): R's probabilities carry this error
UNIROOT_TOL = np.finfo(float).eps ** 0.25  # R uniroot's default tol: where its slope search stops
_MEANS = (-0.09230764, -0.05555285, -0.02790950, 0.06490184, 0.12084694, 0.16946498, 0.22453827)
PMVNORM = "R computes it with pmvnorm, whose default absolute error bound is 1e-3"
LR_WHY = "a closed form printed to 7 significant digits: half a unit in the last"


def event_study(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Event times, coefficients and covariance, as scripts/he_wang_event_study.R writes them."""
    d = pd.read_csv(path)
    t = d["t"].to_numpy(float)
    return t, d["beta"].to_numpy(float), d[[f"cov_{int(x)}" for x in t]].to_numpy(float)


def he_wang(path: Path) -> dict[str, Reproduced]:
    """The README's calls: slope_for_power(target 0.5), pretrends() against SLOPE50·(t + 1) and
    against 0.024·(t + 1)², each at |t| > 1.96 on the leads. Tolerances that rest on R's
    pmvnorm are worked out here, where the probabilities and their slopes are known."""
    t, beta, cov = event_study(path)
    lead = t < REFERENCE
    cov_pre = cov[np.ix_(lead, lead)]
    rel = t[lead] - REFERENCE

    def power(s: float) -> float:
        return 1.0 - pass_probability(s * rel, cov_pre, CRITICAL)

    slope = slope_for_power(cov_pre, t[lead], REFERENCE, 0.5, CRITICAL)
    step = 1e-4 * slope
    rate = (power(slope + step) - power(slope - step)) / (2 * step)
    at_zero = pass_probability(np.zeros(lead.sum()), cov_pre, CRITICAL)
    out = {"slope for 50% power": Reproduced(slope, max(ABSEPS / rate, UNIROOT_TOL))}
    trends = {"linear": SLOPE50 * (t - REFERENCE), "quadratic": 0.024 * (t - REFERENCE) ** 2}
    for name, delta in trends.items():
        fit = pretrend_power(beta, cov, lead, delta, CRITICAL)
        # a ratio of two probabilities each within ABSEPS
        bf_tol = ABSEPS * (1.0 + fit.bayes_factor) / at_zero
        out[f"{name} trend: power"] = Reproduced(fit.power)
        out[f"{name} trend: Bayes factor"] = Reproduced(fit.bayes_factor, bf_tol)
        out[f"{name} trend: likelihood ratio"] = Reproduced(fit.likelihood_ratio)
        if name == "linear":
            se = np.sqrt(np.diag(cov))
            for e, m, s in zip(t, fit.mean_after_pretest, se, strict=True):
                # Tallis's moments divide by the pass probability R integrates to ABSEPS
                tol = ABSEPS * s / (1.0 - fit.power)
                out[f"mean after pre-testing, t = {int(e)}"] = Reproduced(float(m), tol)
    return out


def _published() -> tuple[Published, ...]:
    rows = [
        Published(
            "slope for 50% power",
            SLOPE50,
            None,
            f"{PMVNORM}, that error over the power's rate of change in the slope (8e-5), "
            "and R's uniroot stops within its default tolerance ε^¼ (1.2e-4): the larger",
            README,
        )
    ]
    printed = {
        "linear": (0.4999776, 0.56901, 0.1057627),
        "quadratic": (0.6624282, 0.3841516, 0.4332635),
    }
    for name, (pw, bf, lr) in printed.items():
        rows += [
            Published(f"{name} trend: power", pw, ABSEPS, PMVNORM, README),
            Published(
                f"{name} trend: Bayes factor",
                bf,
                None,
                f"{PMVNORM}: a ratio of two such probabilities",
                README,
            ),
            Published(
                f"{name} trend: likelihood ratio",
                lr,
                0.5 * 10.0 ** (np.floor(np.log10(lr)) - 6),
                LR_WHY,
                README,
            ),
        ]
    for e, m in zip((-4, -3, -2, 0, 1, 2, 3), _MEANS, strict=True):
        rows.append(
            Published(
                f"mean after pre-testing, t = {e}",
                m,
                None,
                "tmvtnorm's truncated mean divides by a pass probability from pmvnorm "
                "(error 1e-3): that error times the coefficient's SE over the probability",
                README,
            )
        )
    return tuple(rows)


register(
    Entry(
        name="he_wang_pretrends",
        title="Power of a pre-trend test and the bias after passing it (He & Wang 2017)",
        citation=(
            "Roth (2022), 'Pretest with Caution: Event-Study Estimates after Testing for "
            "Parallel Trends', AER: Insights 4(3):305–322; R package pretrends; He & Wang "
            "(2017), AEJ: Applied 9(3):1–38"
        ),
        data="did/he_wang_2017_event_study.csv",
        bundled=False,
        download=(
            "github.com/jonathandroth/pretrends (data/HeAndWangResults.rda; not shipped: "
            "fetched data), converted with Rscript scripts/he_wang_event_study.R,"
        ),
        published=_published(),
        compute=he_wang,
        lesson=(
            "Design: He & Wang's event study of college graduates appointed as village "
            "officials in China (their Figure 2C): three leads (event times −4 to −2), the "
            "reference period −1 and four lags, with the covariance of the seven coefficients.",
            "Method: the pre-test rejects when any lead is individually significant at "
            "|t| > 1.96. Its power against a hypothesised trend δ is the probability that the "
            "leads, normal around δ with the event study's covariance, leave that rectangle; "
            "the Bayes factor compares passing under δ with passing under parallel trends; the "
            "mean after pre-testing is the leads' mean truncated to the rectangle, carried to "
            "the lags through their covariance with the leads (Tallis's moments).",
            "Why the numbers match: the probabilities are the same integrals; R estimates them "
            "with pmvnorm's randomised Genz–Bretz rule (absolute error up to 1e-3), we with a "
            "fixed quasi-Monte Carlo rule accurate to about 1e-5 here, so each tolerance is "
            "pmvnorm's error carried through to the number. The likelihood ratio is a closed "
            "form and matches to the printed digits. The linear trend is the README's printed "
            "slope, 0.05205871, so the rows after the slope do not inherit its error.",
        ),
        api=ApiExample(
            "d = pd.read_csv(path)\n"
            't = d["t"].to_numpy(float)\n'
            'cov = d[[f"cov_{int(e)}" for e in t]]\n'
            'fit = pe.pretrends(beta=d["beta"], sigma=cov, event_times=t, critical=1.96)\n'
            "value = fit.slope",
            "slope for 50% power",
            float(UNIROOT_TOL),
            "the entry's own tolerance for the slope: R's uniroot tolerance (ε^¼ = 1.2e-4), "
            "larger than pmvnorm's 1e-3 over the power's rate of change (8.2e-5)",
        ),
    )
)
