"""How much a pre-trend test can see: the power of an event study's pre-test against a
violation of parallel trends, and what passing it does to the estimates (Roth 2022, AER:
Insights 4:305–322; R package pretrends).

The pre-test is the one evaluators read off an event-study plot: it rejects when any lead
is individually significant (|β̂_j / se_j| > c, c = 1.96). With β̂ ~ N(β, Σ) over the leads,
its power against a hypothesised pre-trend δ is 1 − P(β̂_pre ∈ [−c·se, c·se] | β = δ), a
rectangle probability of a multivariate normal (Genz's 1992 separation of variables, on a fixed
scrambled Sobol point set, at a twentieth of the cost of scipy's adaptive Genz–Bretz, which the
slope search and the truncated moments call hundreds of times per report). Its absolute error
grows with the leads' correlation: about 1e-6 for weakly correlated leads, 3e-6 to 3e-5 for
event-study leads against one reference period (correlations 0.75–0.92), and at most 1.7e-4 on
the 1,661 rectangles of the family help and family network reports (against 2^19 points); the
reported slopes, Bayes factors and biases are then within 4e-4 of their value, relative to the
slope. Reported:
- the slope of a linear trend δ_t = s·(t − reference) that the pre-test detects 50% and 80%
  of the time (`slope_for_power`, solved for s);
- for a hypothesised δ: the power, the Bayes factor P(pass | δ) / P(pass | 0) and the
  likelihood ratio φ(β̂; δ, Σ) / φ(β̂; 0, Σ) of the observed leads;
- the mean of the event-study coefficients conditional on passing, E[β̂ | pass, δ]: the
  leads' mean truncated to the rectangle (Tallis 1961's moments, with (k − 1)-dimensional
  rectangle probabilities), carried to the lags through their covariance with the leads. Its
  gap to δ on the lags is the bias a pre-tested analysis keeps.

The normal approximation is the event study's own: Σ is the covariance its inference used.
The Sobol points are scrambled with a fixed seed, so the same inputs give the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import optimize, special, stats
from scipy.stats import qmc

from pathfinder_eval.errors import EstimationError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

CRITICAL = float(stats.norm.ppf(0.975))
_SEED = 20220601  # the Sobol scrambling: fixed, so reports are reproducible
_POINTS = 2**14  # quasi-Monte Carlo points per rectangle probability


@dataclass(frozen=True)
class PretrendPower:
    """For a hypothesised trend `delta` (all coefficients, leads and lags): `power` of the
    pre-test, `bayes_factor` P(pass | δ) / P(pass | 0), `likelihood_ratio` of the observed
    leads, and `mean_after_pretest` E[β̂ | pass, δ] for every coefficient."""

    delta: np.ndarray
    power: float
    bayes_factor: float
    likelihood_ratio: float
    mean_after_pretest: np.ndarray


def pass_probability(mean: np.ndarray, cov: np.ndarray, critical: float = CRITICAL) -> float:
    """P(every |β̂_j| ≤ c·se_j) for β̂ ~ N(mean, cov) (the leads only)."""
    mean, cov = np.atleast_1d(mean).astype(float), np.atleast_2d(cov).astype(float)
    bound = critical * np.sqrt(np.diag(cov))
    if mean.size == 1:
        s = bound[0] / critical
        return float(
            stats.norm.cdf((bound[0] - mean[0]) / s) - stats.norm.cdf((-bound[0] - mean[0]) / s)
        )
    return float(np.clip(_rectangle(-bound - mean, bound - mean, cov), 0.0, 1.0))


def slope_for_power(
    cov_leads: np.ndarray,
    lead_times: np.ndarray,
    reference: float,
    target: float,
    critical: float = CRITICAL,
) -> float:
    """The slope s > 0 of δ_t = s·(t − reference) against which the pre-test on the leads
    (times `lead_times`, covariance `cov_leads`) rejects with probability `target`."""
    rel = np.asarray(lead_times, float) - reference
    cov = np.atleast_2d(cov_leads)

    @cache  # brentq asks again for the ends already checked
    def gap(s: float) -> float:
        return 1.0 - pass_probability(s * rel, cov, critical) - target

    lower, upper = _slope_bracket(rel, np.sqrt(np.diag(cov)), target, critical)
    if gap(lower) > 0:  # the bounds hold exactly; the integration error can cross them
        lower = 0.0
        if gap(lower) > 0:  # many leads, each tested at 5%: no trend needed
            size = 1.0 - _two_sided(critical)
            raise TooManyLeads(
                f"the pre-test on {len(rel)} leads rejects {gap(lower) + target:.0%} of the "
                f"time with no trend at all (each lead is tested at {size:.0%}), above the "
                f"target power {target:.0%}, so no slope gives that power",
                where="pre-trend power",
                fix="ask for a higher target power, or test fewer leads (bin the event study's "
                "early leads)",
            )
    upper = max(upper, np.finfo(float).tiny)  # doubling 0 never ends
    while gap(upper) < 0 and np.isfinite(upper):
        upper *= 2.0
    return float(optimize.brentq(gap, lower, upper, xtol=1e-6 * upper))


class TooManyLeads(EstimationError):
    """The pre-test rejects at least the target share of the time under parallel trends."""


def _two_sided(critical: float) -> float:
    """P(|Z| ≤ critical) for a standard normal Z: the share of one lead's tests passing."""
    return float(special.ndtr(critical) - special.ndtr(-critical))


def _slope_bracket(
    rel: np.ndarray, sd: np.ndarray, target: float, critical: float
) -> tuple[float, float]:
    """Bounds on the slope with pre-test power `target`, from the leads' own one-lead powers
    p_j(s) (closed form): the joint test rejects at least as often as its most sensitive lead
    (upper bound: the smallest s with max_j p_j = target) and at most as often as the sum
    (lower bound: Σ_j p_j = target, Bonferroni). They are within a factor of the number of
    leads of each other, so the search needs a few integrations instead of a dozen."""
    scale = np.abs(rel) / sd

    def one_lead(s: float) -> np.ndarray:
        z = s * scale
        return 1.0 - (stats.norm.cdf(critical - z) - stats.norm.cdf(-critical - z))

    reach = 40.0 / float(scale.max())  # every one-lead power is 1 well before this slope
    upper = optimize.brentq(lambda s: one_lead(s).max() - target, 0.0, reach, xtol=1e-12)
    if one_lead(0.0).sum() >= target:  # many leads: the sum bound says nothing
        return 0.0, upper
    if one_lead(upper).sum() <= target:  # one lead: both bounds are its own power's slope
        return upper, upper
    lower = optimize.brentq(lambda s: one_lead(s).sum() - target, 0.0, upper, xtol=1e-12)
    return lower, upper


def pretrend_power(
    beta: np.ndarray,
    cov: np.ndarray,
    leads: np.ndarray,
    delta: np.ndarray,
    critical: float = CRITICAL,
) -> PretrendPower:
    """Power, Bayes factor, likelihood ratio and the mean after pre-testing against the
    hypothesised trend `delta` (one value per coefficient of `beta`); `leads`: boolean mask
    of the pre-period coefficients (the reference period is not among them)."""
    beta, delta = np.asarray(beta, float), np.asarray(delta, float)
    cov = np.asarray(cov, float)
    lead = np.asarray(leads, bool)
    cov_pre = cov[np.ix_(lead, lead)]
    passing = pass_probability(delta[lead], cov_pre, critical)
    at_zero = pass_probability(np.zeros(lead.sum()), cov_pre, critical)
    # log N(β; δ, Σ) − log N(β; 0, Σ) = zᵀβ − zᵀδ / 2 with z = Σ⁻¹δ: no densities that
    # underflow to −∞ (and NaN) far from the data; a ratio beyond e^709 is inf
    z = np.linalg.solve(cov_pre, delta[lead])
    with np.errstate(over="ignore"):
        ratio = float(np.exp(z @ beta[lead] - 0.5 * z @ delta[lead]))
    if passing > 0:
        shift = truncated_mean(delta[lead], cov_pre, critical, passing) - delta[lead]
        after = delta + cov[:, lead] @ np.linalg.solve(cov_pre, shift)
    else:  # a trend the pre-test always rejects: no analysis passes, so no mean after it
        after = np.full(delta.shape, np.nan)
    return PretrendPower(delta, 1.0 - passing, passing / at_zero, ratio, after)


@dataclass(frozen=True)
class PretrendsResult:
    """R pretrends' two answers for one event study: `slope`, the linear trend
    δ_t = slope·(t − reference) its pre-test detects with probability `target_power`; and
    against the hypothesised `trend` (that one unless another was given) the pre-test's
    `power`, `bayes_factor` and `likelihood_ratio`, with `table` (event_time, estimate,
    std_error, trend, mean_after_pretest: R's df_eventplot without the reference row)."""

    slope: float
    target_power: float
    power: float
    bayes_factor: float
    likelihood_ratio: float
    table: pd.DataFrame
    reference: float = -1.0

    def plot(self) -> Figure:
        """R pretrends' event_plot_pretest as a matplotlib figure (display.py)."""
        from pathfinder_eval.display import pretrends_plot

        return pretrends_plot(self)

    def __repr__(self) -> str:
        return (
            f"PretrendsResult(slope for {self.target_power:.0%} power={self.slope:.4g}; against "
            f"the trend: power={self.power:.3f}, Bayes factor={self.bayes_factor:.3f}, "
            f"likelihood ratio={self.likelihood_ratio:.3g})"
        )


def pretrends(
    beta: np.ndarray,
    cov: np.ndarray,
    event_times: np.ndarray,
    reference: float,
    delta: np.ndarray | None,
    target_power: float,
    critical: float = CRITICAL,
) -> PretrendsResult:
    """Roth's (2022) power analysis of the pre-test on the leads (event times before
    `reference`), as R pretrends' slope_for_power and pretrends together; inputs checked by
    the caller (`api.pretrends`)."""
    times = np.asarray(event_times, float)
    lead = times < reference
    slope = slope_for_power(cov[np.ix_(lead, lead)], times[lead], reference, target_power, critical)
    trend = slope * (times - reference) if delta is None else np.asarray(delta, float)
    fit = pretrend_power(beta, cov, lead, trend, critical)
    table = pd.DataFrame(
        {
            "event_time": times,
            "estimate": np.asarray(beta, float),
            "std_error": np.sqrt(np.diag(cov)),
            "trend": trend,
            "mean_after_pretest": fit.mean_after_pretest,
        }
    )
    return PretrendsResult(
        slope, target_power, fit.power, fit.bayes_factor, fit.likelihood_ratio, table, reference
    )


def truncated_mean(
    mean: np.ndarray, cov: np.ndarray, critical: float = CRITICAL, total: float | None = None
) -> np.ndarray:
    """E[X | every |X_j| ≤ c·se_j] for X ~ N(mean, cov): Tallis's (1961) first moments of a
    rectangle-truncated normal, E[X] = mean + Σ F with
    F_j = φ_j(a_j) P_{−j}(a_j) − φ_j(b_j) P_{−j}(b_j), over the pass probability (`total`, when
    the caller has it: pass_probability(mean, cov, critical)); P_{−j}(x) the probability of the
    other coordinates' rectangle given X_j = x."""
    mean, cov = np.atleast_1d(mean).astype(float), np.atleast_2d(cov).astype(float)
    k = mean.size
    half = critical * np.sqrt(np.diag(cov))
    lo, hi = -half - mean, half - mean  # the centred rectangle
    if total is None:
        total = pass_probability(mean, cov, critical)
    f = np.zeros(k)
    for j in range(k):
        sd = np.sqrt(cov[j, j])
        for x, sign in ((lo[j], 1.0), (hi[j], -1.0)):
            density = stats.norm.pdf(x / sd) / sd
            if k == 1:
                f[j] += sign * density
                continue
            rest = np.arange(k) != j
            cond_mean = cov[rest, j] / cov[j, j] * x
            cond_cov = cov[np.ix_(rest, rest)] - np.outer(cov[rest, j], cov[j, rest]) / cov[j, j]
            f[j] += (
                sign * density * _rectangle(lo[rest] - cond_mean, hi[rest] - cond_mean, cond_cov)
            )
    return mean + cov @ f / total


def _rectangle(lo: np.ndarray, hi: np.ndarray, cov: np.ndarray) -> float:
    """P(lo ≤ Y ≤ hi) for Y ~ N(0, cov): Genz's (1992) sequential conditioning on the Cholesky
    factor, averaged over the fixed Sobol points; coordinates ordered by their one-dimensional
    probability, smallest first (Genz & Bretz 2009, section 4.1.3), which cuts the error."""
    if lo.size == 1:
        s = np.sqrt(cov[0, 0])
        return float(stats.norm.cdf(hi[0] / s) - stats.norm.cdf(lo[0] / s))
    sd = np.sqrt(np.diag(cov))
    order = np.argsort(special.ndtr(hi / sd) - special.ndtr(lo / sd), kind="stable")
    lo, hi, cov = lo[order], hi[order], cov[np.ix_(order, order)]
    chol = _cholesky(cov)
    points = _sobol(lo.size - 1)
    y = np.empty_like(points)
    weight = np.ones(points.shape[0])
    for i in range(lo.size):
        # the first coordinate is not conditioned on anything: its bounds are two numbers
        shift = y[:, :i] @ chol[i, :i] if i else 0.0
        low = special.ndtr((lo[i] - shift) / chol[i, i])
        high = special.ndtr((hi[i] - shift) / chol[i, i])
        weight *= high - low
        if i < lo.size - 1:
            u = low + points[:, i] * (high - low)
            y[:, i] = special.ndtri(np.clip(u, 1e-300, 1.0 - 1e-16))
    return float(weight.mean())


def _cholesky(cov: np.ndarray) -> np.ndarray:
    """A lower Cholesky factor of cov, made positive definite when it is (numerically)
    singular, as perfectly correlated leads give: eigenvalues floored at 1e-12 of the largest."""
    try:
        return np.linalg.cholesky(cov + 1e-12 * np.diag(np.diag(cov)))
    except np.linalg.LinAlgError:
        values, vectors = np.linalg.eigh(cov)
        floor = 1e-12 * max(float(values.max()), np.finfo(float).tiny)
        return np.linalg.cholesky((vectors * np.maximum(values, floor)) @ vectors.T)


@lru_cache(maxsize=16)
def _sobol(dim: int) -> np.ndarray:
    """The fixed scrambled Sobol points in [0, 1)^dim (read-only: shared between calls)."""
    points = qmc.Sobol(d=dim, scramble=True, seed=_SEED).random(_POINTS)
    points.flags.writeable = False
    return points


def pretest_summary(
    beta: np.ndarray,
    cov: np.ndarray,
    event_times: np.ndarray,
    reference: float,
    short_leads: bool = False,
) -> dict[str, float] | None:
    """What an event study's pre-test can see, for its facts and the report: the linear-trend
    slopes detected 50% and 80% of the time (`slope_50`, `slope_80`, outcome units per
    period), and under the 50%-power trend the pre-test's Bayes factor and the first
    post-period coefficient's bias, unconditional (`bias`) and among analyses that pass the
    pre-test (`bias_after_pretest`). None without leads or without a post-period, and when
    a lead has no finite positive variance (one switcher in a placebo: there is no test),
    the leads' covariance is singular (`testable`), or the test rejects half the time with no
    trend at all (dozens of leads, each tested at 5%: TooManyLeads).

    Leads are the coefficients before `reference` (the omitted period), each comparing its
    period with the reference, so a trend δ_t = s·(t − reference) moves lead e by s·(e −
    reference). With `short_leads` (Callaway & Sant'Anna's varying base period) every
    coefficient before 0 is a lead comparing its period with the one before, which the trend
    moves by one period's change s; later coefficients compare with `reference` as before."""
    times = np.asarray(event_times, float)
    leads, post = times < (0.0 if short_leads else reference), times >= 0
    if not leads.any() or not post.any():
        return None
    loading = np.where(leads & short_leads, 1.0, times - reference)  # δ = s · loading
    cov_pre = np.asarray(cov, float)[np.ix_(leads, leads)]
    if not testable(cov_pre):
        return None
    # slope_for_power reads each lead's loading as its time less the reference
    try:
        s50 = slope_for_power(cov_pre, loading[leads] + reference, reference, 0.5)
    except TooManyLeads:  # the test fails half the analyses with no trend: no slope to show
        return None
    s80 = slope_for_power(cov_pre, loading[leads] + reference, reference, 0.8)
    trend = s50 * loading
    res = pretrend_power(beta, cov, leads, trend)
    first = int(np.flatnonzero(post)[0])
    return {
        "slope_50": s50,
        "slope_80": s80,
        "bayes_factor": res.bayes_factor,
        "bias": float(trend[first]),
        "bias_after_pretest": float(res.mean_after_pretest[first]),
        "first_post_event_time": float(times[first]),
    }


def testable(cov_leads: np.ndarray) -> bool:
    """A pre-test exists: the leads' covariance finite and positive definite (a cluster-robust
    covariance from fewer clusters than leads is singular, and the power of the joint test,
    its likelihood ratio and the mean after it are then undefined)."""
    if not (np.isfinite(cov_leads).all() and (np.diag(cov_leads) > 0).all()):
        return False
    sd = np.sqrt(np.diag(cov_leads))
    eig = np.linalg.eigvalsh(cov_leads / np.outer(sd, sd))  # the correlation matrix's
    return bool(eig[0] > 1e-10 * eig[-1])


def linear_trend_power(
    cov_leads: np.ndarray, lead_loading: np.ndarray, bias_loading: float
) -> dict[str, float] | None:
    """What a pre-test on lead coefficients can see when a linear trend of slope s (outcome
    units per period) moves their means by s·`lead_loading` and an estimate's by
    s·`bias_loading`, for tests whose leads are not event-study coefficients against one
    reference period (e.g. BJS's regression on untreated cells): `slope_50`, `slope_80`, and
    under the 50%-power trend the Bayes factor P(pass | δ) / P(pass | 0) and the estimate's
    bias (`bias`; its bias among analyses that pass needs the joint covariance of leads and
    estimate, which such tests do not give). None as pretest_summary's."""
    loading = np.asarray(lead_loading, float)
    cov = np.atleast_2d(np.asarray(cov_leads, float))
    if not testable(cov):
        return None
    # slope_for_power reads each lead's loading as its time less the reference (here 0)
    s50 = slope_for_power(cov, loading, 0.0, 0.5)
    s80 = slope_for_power(cov, loading, 0.0, 0.8)
    passing = pass_probability(s50 * loading, cov)
    return {
        "slope_50": s50,
        "slope_80": s80,
        "bayes_factor": passing / pass_probability(np.zeros(loading.size), cov),
        "bias": s50 * float(bias_loading),
    }
