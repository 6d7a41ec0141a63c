"""Power of the pre-trend test (inference/pretrends_power.py, Roth 2022): closed forms for one
lead and independent leads, Monte Carlo for correlated leads, and the truncated-normal mean
against its one-dimensional closed form and simulation."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

from pathfinder_eval.inference.pretrends_power import (
    CRITICAL,
    TooManyLeads,
    pass_probability,
    pretest_summary,
    pretrend_power,
    slope_for_power,
    truncated_mean,
)

# a correlated event study: leads −4..−2 (reference −1), lags 0..2
TIMES = np.array([-4.0, -3.0, -2.0, 0.0, 1.0, 2.0])
SD = np.array([0.09, 0.077, 0.055, 0.063, 0.09, 0.089])
CORR = 0.45 ** np.abs(np.subtract.outer(np.arange(6), np.arange(6)))
COV = CORR * np.outer(SD, SD)
LEADS = TIMES < -1


def _accept(delta: np.ndarray, sd: np.ndarray) -> np.ndarray:
    return stats.norm.cdf(CRITICAL - delta / sd) - stats.norm.cdf(-CRITICAL - delta / sd)


def test_one_lead_has_the_closed_form():
    """One lead: pass probability Φ(c − δ/σ) − Φ(−c − δ/σ); the 50%-power slope solves it."""
    for delta in (0.0, 0.03, -0.1):
        got = pass_probability(np.array([delta]), np.array([[0.05**2]]))
        assert got == pytest.approx(_accept(np.array([delta]), np.array([0.05]))[0], abs=1e-12)
    s = slope_for_power(np.array([[0.05**2]]), np.array([-2.0]), -1.0, 0.5)
    # the root is solved to 1e-6 of its bracket
    assert 1 - _accept(np.array([-s]), np.array([0.05]))[0] == pytest.approx(0.5, abs=1e-6)


def test_independent_leads_multiply():
    """Independent leads: P(pass) is the product of the one-lead probabilities (Genz's
    algorithm to 1e-6)."""
    sd = np.array([0.09, 0.077, 0.055])
    delta = np.array([-0.12, -0.08, -0.04])
    got = pass_probability(delta, np.diag(sd**2))
    assert got == pytest.approx(np.prod(_accept(delta, sd)), abs=1e-6)
    assert pass_probability(np.zeros(3), np.diag(sd**2)) == pytest.approx(0.95**3, abs=1e-6)


def _scipy_pass_probability(mean, cov, abseps: float, maxpts: int) -> float:
    """The pre-test's pass probability by scipy's adaptive Genz–Bretz, to `abseps`."""
    half = CRITICAL * np.sqrt(np.diag(cov))
    return stats.multivariate_normal.cdf(
        half - mean,
        cov=cov,
        lower_limit=-half - mean,
        maxpts=maxpts,
        abseps=abseps,
        releps=0.0,
        rng=np.random.default_rng(1),
    )


def test_rectangle_probabilities_match_scipys_adaptive_genz_bretz():
    """The fixed-Sobol rectangle probability against scipy's adaptive Genz–Bretz run to 1e-9
    (a million points) on 12 random correlated covariances of 2–7 leads with shifted means:
    within 1e-5 everywhere (about 1e-6 typically), and the same number on every call."""
    rng = np.random.default_rng(3)
    errors = []
    for _ in range(12):
        k = int(rng.integers(2, 8))
        a = rng.normal(size=(k, k + 2))
        cov = a @ a.T / (k + 2) + 0.1 * np.eye(k)
        sd = np.sqrt(np.diag(cov))
        mean = rng.normal(scale=1.5, size=k) * sd
        ref = _scipy_pass_probability(mean, cov, 1e-9, 1_000_000)
        got = pass_probability(mean, cov)
        assert pass_probability(mean, cov) == got
        errors.append(abs(got - ref))
    assert max(errors) < 1e-5
    assert np.median(errors) < 1e-6


def test_rectangle_error_for_event_study_leads_as_documented():
    """Event-study leads share the reference period's noise (correlations 0.75–0.92, 5–7 leads),
    where the fixed points err most: against scipy's adaptive Genz–Bretz to 1e-7, at the slope
    detected half the time, within 5e-5 everywhere (the module says 3e-6 to 3e-5); the
    weakly correlated test above stays within 1e-5."""
    rng = np.random.default_rng(5)
    errors = []
    for _ in range(8):
        k = int(rng.integers(5, 8))
        b = rng.normal(size=(k, k)) * 0.05
        cov = np.diag(rng.uniform(0.1, 0.3, k)) + rng.uniform(0.8, 2.0) + b @ b.T
        rel = np.arange(-k, 0.0)
        mean = slope_for_power(cov, rel - 1.0, -1.0, 0.5) * rel
        ref = _scipy_pass_probability(mean, cov, 1e-7, 2_000_000)
        errors.append(abs(pass_probability(mean, cov) - ref))
    assert max(errors) < 5e-5
    assert np.median(errors) < 1e-5


def test_perfectly_correlated_leads_reduce_to_one():
    """A singular covariance (two leads that are the same estimate) is the one-lead closed
    form: the rectangle of identical coordinates is their common interval."""
    sd = 0.05
    cov = np.full((2, 2), sd**2)
    for delta in (0.0, 0.04):
        got = pass_probability(np.array([delta, delta]), cov)
        assert got == pytest.approx(_accept(np.array([delta]), np.array([sd]))[0], abs=1e-5)
    # slightly indefinite (an eigenvalue of -1e-9, as a covariance from rounding): floored
    q = np.linalg.qr(np.random.default_rng(2).normal(size=(3, 3)))[0]
    shaky = (q * np.array([1.0, 0.5, -1e-9])) @ q.T * sd**2
    fixed = (q * np.array([1.0, 0.5, 1e-9])) @ q.T * sd**2
    mean = np.array([0.01, -0.02, 0.03])
    assert pass_probability(mean, shaky) == pytest.approx(pass_probability(mean, fixed), abs=1e-5)


def test_correlated_power_and_mean_after_pretest_match_simulation():
    """Correlated leads and lags, the trend the pre-test detects half the time: power 0.5 by
    construction, and the power, Bayes factor and mean after pre-testing within 4 Monte Carlo
    SEs of 400,000 simulated event studies."""
    s = slope_for_power(COV[np.ix_(LEADS, LEADS)], TIMES[LEADS], -1.0, 0.5)
    delta = s * (TIMES + 1.0)
    res = pretrend_power(np.zeros(6), COV, LEADS, delta)
    assert res.power == pytest.approx(0.5, abs=5e-6)  # the same points at every slope
    rng = np.random.default_rng(1)
    draws = rng.multivariate_normal(delta, COV, 400_000)
    passed = np.all(np.abs(draws[:, LEADS]) <= CRITICAL * SD[LEADS], axis=1)
    assert abs(passed.mean() - (1 - res.power)) < 4 * np.sqrt(0.25 / 400_000)
    sub = draws[passed]
    mc_se = sub.std(axis=0) / np.sqrt(len(sub))
    assert np.all(np.abs(sub.mean(axis=0) - res.mean_after_pretest) < 4 * mc_se)
    null = rng.multivariate_normal(np.zeros(6), COV, 400_000)
    at_zero = np.all(np.abs(null[:, LEADS]) <= CRITICAL * SD[LEADS], axis=1).mean()
    assert res.bayes_factor == pytest.approx(passed.mean() / at_zero, abs=0.01)


def test_truncated_mean_in_one_dimension():
    """μ + σ(φ(α) − φ(β)) / (Φ(β) − Φ(α)) with α, β the standardised bounds."""
    mu, sd = 0.07, 0.05
    a, b = (-CRITICAL * sd - mu) / sd, (CRITICAL * sd - mu) / sd
    expected = mu + sd * (stats.norm.pdf(a) - stats.norm.pdf(b)) / (
        stats.norm.cdf(b) - stats.norm.cdf(a)
    )
    assert truncated_mean(np.array([mu]), np.array([[sd**2]]))[0] == pytest.approx(expected)


def test_likelihood_ratio_is_the_normal_density_ratio():
    beta = np.array([0.067, -0.008, -0.031, 0.084, 0.24, 0.22])
    delta = 0.05 * (TIMES + 1.0)
    res = pretrend_power(beta, COV, LEADS, delta)
    pre = stats.multivariate_normal(np.zeros(3), COV[np.ix_(LEADS, LEADS)])
    expected = pre.pdf(beta[LEADS] - delta[LEADS]) / pre.pdf(beta[LEADS])
    assert res.likelihood_ratio == pytest.approx(expected, rel=1e-10)
    # far from the data: log ratio 872 (the densities' exp overflowed with a RuntimeWarning,
    # or both underflowed to NaN, found by fuzzing); now inf, silently, and exact in between
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert pretrend_power(beta * -1200, COV, LEADS, delta).likelihood_ratio == np.inf
        far = pretrend_power(beta * 20, COV, LEADS, delta).likelihood_ratio
    log_expected = pre.logpdf(20 * beta[LEADS] - delta[LEADS]) - pre.logpdf(20 * beta[LEADS])
    assert np.log(far) == pytest.approx(log_expected, rel=1e-10)


def test_summary_for_an_event_study():
    """The slopes rise with the power asked for; the unconditional bias of the first lag is
    the 50%-power trend at event time 0; pre-testing makes it worse here (Roth 2022's point):
    passing pulls the negative leads of an upward trend towards zero, and the lag, positively
    correlated with them, up with them."""
    out = pretest_summary(np.zeros(6), COV, TIMES, -1.0)
    assert 0 < out["slope_50"] < out["slope_80"]
    assert out["bias"] == pytest.approx(out["slope_50"])
    trend = out["slope_50"] * (TIMES + 1.0)
    after = pretrend_power(np.zeros(6), COV, LEADS, trend).mean_after_pretest[3]
    assert out["bias_after_pretest"] == pytest.approx(after) and after > out["bias"]
    assert pretest_summary(np.zeros(3), COV[3:, 3:], TIMES[3:], -1.0) is None


def test_short_leads_move_by_one_period_of_the_trend():
    """Callaway & Sant'Anna's varying base: leads −2 and −1 each compare a period with the one
    before, so a trend of slope s moves each by s. With independent leads of SEs 0.1 and 0.2 the
    pre-test passes with probability Π_j [Φ(c − s/σ_j) − Φ(−c − s/σ_j)]: the 50%-power slope
    solves that closed form (1e-5); the first lag (e = 0, against e = −1) carries s."""
    from scipy import optimize

    times = np.array([-2.0, -1.0, 0.0, 1.0])
    cov = np.diag([0.1**2, 0.2**2, 0.15**2, 0.15**2])
    out = pretest_summary(np.zeros(4), cov, times, -1.0, short_leads=True)

    def passing(s):
        return np.prod(
            [stats.norm.cdf(1.959964 - s / sd) - stats.norm.cdf(-1.959964 - s / sd)
             for sd in (0.1, 0.2)]
        )  # fmt: skip

    s50 = optimize.brentq(lambda s: 1 - passing(s) - 0.5, 0.0, 2.0, xtol=1e-12)
    assert out["slope_50"] == pytest.approx(s50, rel=1e-5)
    assert out["bias"] == pytest.approx(out["slope_50"])
    # universal base on the same numbers reads lead −2 as two periods of the trend
    assert pretest_summary(np.zeros(4), cov, times, -1.0)["slope_50"] != pytest.approx(s50)


def test_one_short_lead_has_the_closed_form():
    """One lead (varying base, e = −1) with SE σ: the 50%-power slope is σ·z with
    1 − [Φ(c − z) − Φ(−c − z)] = 0.5 (the one-lead bracket used to fail on rounding)."""
    from scipy import optimize

    sd = np.sqrt(4.5692)
    out = pretest_summary(
        np.array([1.08, -1.04, -0.15]), np.diag([sd**2, 2.2, 2.7]), np.array([-1.0, 0.0, 1.0]),
        -1.0, short_leads=True,
    )  # fmt: skip
    z = optimize.brentq(
        lambda z: 1 - (stats.norm.cdf(1.959964 - z) - stats.norm.cdf(-1.959964 - z)) - 0.5, 0, 10
    )
    assert out["slope_50"] == pytest.approx(sd * z, rel=1e-6)


@pytest.mark.parametrize("lead_variance", [np.nan, 0.0, -1e-6])
def test_no_power_without_a_lead_variance(lead_variance):
    """A lead with no variance (one switcher in a dCDH placebo gives NaN; a degenerate
    cluster sum gives 0): there is no pre-test to have power, so no summary (the root-finder
    stopped on a NaN before)."""
    from pathfinder_eval.inference.pretrends_power import linear_trend_power

    cov = COV.copy()
    cov[0, 0] = lead_variance
    assert pretest_summary(np.zeros(6), cov, TIMES, -1.0) is None
    assert linear_trend_power(cov[:3, :3], TIMES[:3] + 1.0, 1.0) is None
    # the other leads alone still have their test
    assert pretest_summary(np.zeros(5), COV[1:, 1:], TIMES[1:], -1.0)["slope_50"] > 0


def test_a_singular_lead_covariance_has_no_pretest_summary():
    """Cluster-robust covariance from two clusters (rank 2) for three leads: the joint test's
    power, likelihood ratio and truncated mean are undefined, so no summary (found by fuzzing
    Sun & Abraham on a 7-unit panel: a NaN likelihood ratio with a RuntimeWarning)."""
    scores = np.random.default_rng(1).normal(size=(2, 6)) * SD
    singular = scores.T @ scores
    beta = np.array([0.05, -0.02, 0.01, 0.1, 0.12, 0.15])
    assert pretest_summary(beta, singular, TIMES, -1.0) is None
    assert pretest_summary(beta, singular + np.diag(SD**2), TIMES, -1.0) is not None


def test_a_pretest_failing_half_the_time_without_a_trend_has_no_slope():
    """33 independent short leads (Callaway & Sant'Anna's varying base, 31 cohorts over 40
    periods) each tested at 5%: the test rejects 1 − 0.95³³ = 82% of the time with no trend,
    so no slope has power 50%. brentq's sign error reached the user as a traceback (found by
    a scaling sweep); now the slope search says why, and the report's summary is left out,
    while the 90% slope still exists."""
    k = 33
    cov, times = np.eye(k), -np.ones(k)  # a short lead moves by one period's change
    with pytest.raises(TooManyLeads, match=r"33 leads rejects 82% .* target power 50%"):
        slope_for_power(cov, times - 1.0, -1.0, 0.5)
    beta = np.zeros(k + 2)
    full = np.eye(k + 2)
    event_times = np.concatenate([np.arange(-k - 1, -1.0), [0.0, 1.0]])
    assert pretest_summary(beta, full, event_times, -1.0, short_leads=True) is None
    assert slope_for_power(cov, times - 1.0, -1.0, 0.9) > 0
    # the public function refuses that target up front, with the rate it must exceed
    import pathfinder_eval as pe
    from pathfinder_eval.errors import DesignError

    with pytest.raises(DesignError, match=r"ask for a power above 0\.816"):
        pe.pretrends(beta=beta, sigma=full, event_times=event_times)


def test_slope_for_power_scales_with_the_standard_errors_down_to_tiny_ones():
    """The slope is proportional to the leads' SD: at SD × 1e-15 the bracket rounds to 0,
    and the search used to double 0 for ever (found by fuzzing); now it finds 1e-15 × it."""
    cov = COV[np.ix_(LEADS, LEADS)]
    times = TIMES[LEADS]
    base = slope_for_power(cov, times, -1.0, 0.5)
    assert slope_for_power(cov * 1e-30, times, -1.0, 0.5) == pytest.approx(base * 1e-15, rel=1e-5)


def test_public_pretrends_on_an_event_study_is_the_reports_summary():
    """pe.pretrends on pe.event_study's result gives the slope, Bayes factor and bias after
    pre-testing that the result's facts (and so the report) carry, and R pretrends' table."""
    import sys
    from pathlib import Path

    import pathfinder_eval as pe

    sys.path.insert(0, str(Path(__file__).parent))
    from test_api import staggered

    res = pe.event_study(staggered(), outcome="y", unit="unit", time="period", first_treated="g")
    facts = res.diagnostics["pretest_power"]
    fit = pe.pretrends(res)
    assert fit.slope == pytest.approx(facts["slope_50"], rel=1e-12)
    assert fit.bayes_factor == pytest.approx(facts["bayes_factor"], rel=1e-12)
    first = fit.table.index[fit.table["event_time"] == 0][0]
    assert fit.table.loc[first, "mean_after_pretest"] == pytest.approx(
        facts["bias_after_pretest"], rel=1e-12
    )
    assert fit.power == pytest.approx(0.5, abs=1e-5)
    assert fit.table["event_time"].tolist() == [-4, -3, -2, 0, 1, 2, 3]  # no reference row
    faster = pe.pretrends(res, target_power=0.8)
    assert faster.slope == pytest.approx(facts["slope_80"], rel=1e-12)


def test_public_pretrends_from_arrays_against_a_given_trend_has_the_closed_forms():
    """A published event study given as arrays, with independent leads and a hypothesised
    trend: the power is one minus the product of the leads' acceptance probabilities, the
    likelihood ratio the ratio of normal densities, and a lag uncorrelated with the leads keeps
    its trend after pre-testing."""
    import pathfinder_eval as pe

    times = np.array([-3.0, -2.0, 0.0, 1.0])
    sd = np.array([0.08, 0.05, 0.06, 0.07])
    cov = np.diag(sd**2)
    beta = np.array([0.03, -0.02, 0.1, 0.2])
    delta = np.array([-0.1, -0.04, 0.02, 0.05])
    fit = pe.pretrends(beta=beta, sigma=cov, event_times=times, delta=delta)
    accept = _accept(delta[:2], sd[:2])
    assert fit.power == pytest.approx(1.0 - accept.prod(), abs=1e-6)
    assert fit.bayes_factor == pytest.approx(
        accept.prod() / _accept(np.zeros(2), sd[:2]).prod(), abs=1e-6
    )
    ratio = stats.multivariate_normal(delta[:2], cov[:2, :2]).pdf(beta[:2]) / (
        stats.multivariate_normal(np.zeros(2), cov[:2, :2]).pdf(beta[:2])
    )
    assert fit.likelihood_ratio == pytest.approx(ratio, rel=1e-12)
    assert fit.table["mean_after_pretest"].iloc[2:].tolist() == pytest.approx(delta[2:])
    assert fit.table["trend"].tolist() == pytest.approx(delta.tolist())


B2, S2 = [0.1, 0.2], np.eye(2) * 0.01


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"beta": B2}, "or beta, sigma and event_times"),  # sigma and event_times missing
        ({"beta": [0.1], "sigma": [[0.01]], "event_times": [-2], "critical": 0}, "critical 0"),
        ({"beta": B2, "sigma": np.eye(3), "event_times": [-2, 0]}, "sigma is 3 × 3"),
        ({"beta": B2, "sigma": S2, "event_times": [0, 1]}, "no lead before"),
        ({"beta": B2, "sigma": S2, "event_times": [-2, 0], "delta": [1]}, "delta has 1"),
        ({"beta": B2, "sigma": S2, "event_times": [-2, 0], "delta": [np.nan, 0]}, "delta is"),
        ({"beta": B2, "sigma": S2, "event_times": [-2, 0], "target_power": 0.01}, "rejection"),
        ({"beta": B2, "sigma": S2, "event_times": [-2, 0], "target_power": "x"}, "target_power"),
        ({"beta": B2, "sigma": S2, "event_times": [-2, -2]}, "repeat a time"),
        ({"beta": B2, "sigma": S2, "event_times": [-3, -1]}, "include the reference"),
        ({"beta": B2, "sigma": S2, "event_times": [np.nan, 0]}, "event_times is"),
        # asymmetric at a small scale: the check is relative to the covariance's size
        (
            {"beta": B2, "sigma": [[4e-9, 3e-9], [-3e-9, 4e-9]], "event_times": [-3, -2]},
            "not symmetric",
        ),
        ({"beta": B2, "sigma": np.diag([0.01, -0.01]), "event_times": [-2, 0]}, "not positive"),
    ],
)
def test_public_pretrends_refuses_what_it_cannot_test(kwargs, message):
    import pathfinder_eval as pe
    from pathfinder_eval.errors import DesignError

    with pytest.raises(DesignError) as err:
        pe.pretrends(**kwargs)
    assert message in str(err.value)


def test_public_pretrends_reads_only_results_measured_from_minus_one():
    """An event study whose reference is −2 is refused (its −1 row would be read as a lag and
    every lead's loading shifted; found in review), as is a reference argument beside a
    result; a lag without a variance does not stop the pre-test, which reads the leads."""
    import sys
    from dataclasses import replace
    from pathlib import Path

    import pathfinder_eval as pe
    from pathfinder_eval.errors import DesignError

    sys.path.insert(0, str(Path(__file__).parent))
    from test_api import staggered

    kw = {"outcome": "y", "unit": "unit", "time": "period", "first_treated": "g"}
    shifted = pe.event_study(staggered(), reference=-2, **kw)
    with pytest.raises(DesignError, match="reference period is not event time −1"):
        pe.pretrends(shifted)
    with pytest.raises(DesignError, match="reference period is not event time −1"):
        pe.honest_did(shifted, [0.0, 0.1])
    res = pe.event_study(staggered(), **kw)
    with pytest.raises(DesignError, match="measured from event time −1, not -2"):
        pe.pretrends(res, reference=-2)
    with pytest.raises(DesignError, match="takes a fitted result"):
        pe.pretrends(True)
    lag = int(np.flatnonzero(res.table["event_time"].to_numpy() == 3)[0])
    vcov = res.vcov.copy()
    vcov[lag, :] = vcov[:, lag] = np.nan
    vacant = pe.pretrends(replace(res, vcov=vcov))
    full = pe.pretrends(res)
    assert vacant.slope == full.slope and vacant.bayes_factor == full.bayes_factor
    after = vacant.table.set_index("event_time")["mean_after_pretest"]
    assert np.isnan(after[3.0]) and np.isfinite(after.drop(3.0)).all()


def test_public_pretrends_plots_r_pretrends_event_plot():
    """plot(): the estimates with 95% intervals, the hypothesised trend and the mean after
    pre-testing, each through the reference point (−1, 0), as R's event_plot_pretest."""
    import pathfinder_eval as pe

    times = np.array([-3.0, -2.0, 0.0, 1.0])
    sd = np.array([0.08, 0.05, 0.06, 0.07])
    fit = pe.pretrends(beta=[0.03, -0.02, 0.1, 0.2], sigma=np.diag(sd**2), event_times=times)
    ax = fit.plot().axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    trend = lines["hypothesised trend"]
    assert trend.get_xdata().tolist() == [-3.0, -2.0, -1.0, 0.0, 1.0]
    assert trend.get_ydata() == pytest.approx(fit.slope * np.array([-2, -1, 0, 1, 2]))
    after = lines["mean after passing the pre-test"].get_ydata()
    assert after[2] == 0.0 and after[[0, 1, 3, 4]] == pytest.approx(
        fit.table["mean_after_pretest"].to_numpy()
    )
    assert [t.get_text() for t in ax.get_legend().get_texts()][-1] == "estimate (95% CI)"
