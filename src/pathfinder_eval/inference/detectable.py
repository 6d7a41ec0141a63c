"""What an analysis could have detected: the minimum detectable effect (MDES) of its headline
estimate at 80% power and a 5% two-sided test, for the inference it used, on the panel it ran on.

The test rejects when |estimate / SE| exceeds the t(df) critical value; if the estimate is
unbiased with the standard error the analysis reports, estimate / SE follows a noncentral
t(df, δ / SE) under a true effect δ, so power(δ) = P(|T| > t_crit). The MDES is the δ at which
that power is 80% (scipy's noncentral t, solved by root finding; normal when the reference is
normal). It is the textbook formula (Bloom 1995) with the analysis's own SE and df, so it moves
with everything that moved them: the number of treated LAs, their sizes and the measured regional
dependence. With the comparison-pooled variance the SE comes from the comparison LAs' noise, not
from the treated LAs' outcomes, so the MDES does not depend on the effect the pilot had.

tests/test_detectable.py checks it against the simulation that resamples real LA trajectories
(power/panel_simulation.py): injecting the MDES gives about 80% power.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from scipy import optimize, special, stats

from pathfinder_eval.results import EffectScale

POWER = 0.8
ALPHA = 0.05

ExpectedSource = Literal["design", "injected", ""]


@dataclass(frozen=True)
class Detectable:
    """The MDES of one analysis's headline row. `mdes`: on the row's scale (`scale`: outcome
    units, or the log scale of a rate or odds ratio); `baseline`: the treated units' mean before
    they started (NaN when unknown; for log odds ratios their pooled proportion of events);
    `expected`: the relative change the design expects (or the effect injected into simulated
    data, `expected_source`), NaN when none is stated.

    `mdes_relative` is the MDES as a share of the baseline; for a log ratio the smallest
    detectable fall of the outcome (`fall`; `rise` the smallest rise): 1 − exp(−mdes) for a
    rate ratio, and for an odds ratio the fall of the baseline proportion p when its log odds
    fall by mdes. An expected relative change e is detectable when its log ratio (log(1 + e),
    or logit(p(1 + e)) − logit(p)) reaches the MDES."""

    mdes: float
    df: float
    baseline: float
    expected: float = math.nan
    expected_source: ExpectedSource = ""
    power: float = POWER
    alpha: float = ALPHA
    scale: EffectScale = "difference"

    @property
    def log_ratio(self) -> bool:
        """The row is a log rate or odds ratio."""
        return self.scale != "difference"

    @property
    def ratio_name(self) -> str:
        return {"log_rate_ratio": "rate ratio", "log_odds_ratio": "odds ratio"}.get(self.scale, "")

    def _relative_change(self, log_change: float) -> float:
        """The relative change of the outcome when the row's log ratio moves by `log_change`."""
        if self.scale == "log_rate_ratio":
            return math.expm1(log_change)
        p = self.baseline
        if not 0 < p < 1:
            return math.nan
        return special.expit(special.logit(p) + log_change) / p - 1

    @property
    def fall(self) -> float:
        """The smallest detectable fall as a share of the baseline (log ratios)."""
        return -self._relative_change(-self.mdes) if self.log_ratio else self.mdes_relative

    @property
    def rise(self) -> float:
        """The smallest detectable rise as a share of the baseline (log ratios)."""
        return self._relative_change(self.mdes) if self.log_ratio else self.mdes_relative

    @property
    def mdes_relative(self) -> float:
        if self.log_ratio:
            return self.fall
        if not math.isfinite(self.baseline) or self.baseline == 0:
            return math.nan
        return self.mdes / abs(self.baseline)

    @property
    def could_detect_expected(self) -> bool | None:
        """Whether an effect of the expected size would have been detected with at least the
        target power (None when no expected effect or no baseline, or when the expected change
        would take a proportion above 1)."""
        if not (math.isfinite(self.expected) and math.isfinite(self.mdes_relative)):
            return None
        if self.scale == "log_rate_ratio":
            # a fall of 100% (to no events) is as large as a change gets
            return self.expected <= -1 or abs(math.log1p(self.expected)) >= self.mdes
        if self.scale == "log_odds_ratio":
            moved = self.baseline * (1 + self.expected)
            if moved > 1:  # a proportion above 1: no such change exists
                return None
            if not 0 < moved < 1:  # to no events or all: as large as a change gets
                return True
            log_or = special.logit(moved) - special.logit(self.baseline)
            return bool(abs(log_or) >= self.mdes)
        return abs(self.expected) >= self.mdes_relative

    def to_dict(self) -> dict[str, Any]:
        def clean(x: float) -> float | None:
            return float(x) if math.isfinite(x) else None

        return {
            "mdes": clean(self.mdes),
            "mdes_relative": clean(self.mdes_relative),
            "baseline": clean(self.baseline),
            "expected_effect": clean(self.expected),
            "expected_source": self.expected_source or None,
            "could_detect_expected": self.could_detect_expected,
            "power": self.power,
            "alpha": self.alpha,
            "df": clean(self.df),
            "scale": {"log_rate_ratio": "log rate ratio", "log_odds_ratio": "log odds ratio"}.get(
                self.scale, "outcome"
            ),
            "basis": "noncentral t with the analysis's own standard error and df",
        }


def detectable_multiple(df: float, power: float = POWER, alpha: float = ALPHA) -> float:
    """The MDES in standard errors: the noncentrality at which a two-sided level-`alpha` t(df)
    test (normal when df is not finite) has the given power."""
    if math.isfinite(df) and df > 0:
        crit = stats.t.ppf(1 - alpha / 2, df)

        def power_at(nc: float) -> float:
            # P(T < −crit) needs Z + nc < 0, so it is at most Φ(−nc); the bound also stands
            # in for scipy's far left tail, NaN for small df and nc near 9 (scipy 1.17)
            lower, bound = stats.nct.cdf(-crit, df, nc), stats.norm.cdf(-nc)
            return stats.nct.sf(crit, df, nc) + (lower if lower <= bound else bound)
    else:
        crit = stats.norm.ppf(1 - alpha / 2)

        def power_at(nc: float) -> float:
            return stats.norm.sf(crit - nc) + stats.norm.cdf(-crit - nc)

    hi = crit + stats.norm.ppf(power) + 1.0
    while power_at(hi) < power:
        hi *= 2
    return float(optimize.brentq(lambda nc: power_at(nc) - power, 0.0, hi, xtol=1e-10))


def minimum_detectable(
    std_error: float,
    df: float,
    baseline: float = math.nan,
    expected: float = math.nan,
    expected_source: ExpectedSource = "",
    scale: EffectScale = "difference",
) -> Detectable | None:
    """The Detectable of a row with this SE and df (None when the row has no standard error:
    permutation and conformal inference) on the row's `scale`."""
    if not (math.isfinite(std_error) and std_error > 0):
        return None
    mdes = detectable_multiple(df) * std_error
    return Detectable(mdes, df, baseline, expected, expected_source, scale=scale)
