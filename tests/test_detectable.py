"""What an analysis could detect (inference/detectable.py): the noncentral-t MDES matches
statsmodels' power solver, and on the real DfE panel the simulation that resamples real LA
trajectories has about 80% power at the MDES the report states."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from scipy import integrate, stats
from statsmodels.stats.power import NormalIndPower, TTestPower

from _data_paths import PUBLIC_DATA, needs_public_data
from pathfinder_eval.estimators.did.twfe import TwoWayFixedEffects
from pathfinder_eval.inference.detectable import detectable_multiple, minimum_detectable
from pathfinder_eval.panel import build_panel
from pathfinder_eval.pipeline import describe_outcome, detectable
from pathfinder_eval.power.panel_simulation import panel_resampler, simulate_panel_power
from pathfinder_eval.report.summary import evidence_statement
from pathfinder_eval.spec import load_design

DESIGNS = Path(__file__).resolve().parents[1] / "designs"


@pytest.mark.parametrize("df", [2.0, 5.5, 12.0, 60.0])
def test_t_multiple_matches_statsmodels(df):
    """statsmodels' one-sample t power: noncentrality d·√n with n − 1 df (fractional df through
    n = df + 1). Tolerance 1e-6: both solve the same equation with root finders."""
    n = df + 1
    d = TTestPower().solve_power(nobs=n, alpha=0.05, power=0.8, alternative="two-sided")
    assert detectable_multiple(df) == pytest.approx(d * math.sqrt(n), rel=1e-5)


@pytest.mark.parametrize("df", [0.6, 1.0, 1.3806951099892604, 2.0])
def test_t_multiple_for_few_degrees_of_freedom_by_quadrature(df):
    """Satterthwaite df near 1 (2 treated LAs): scipy's noncentral-t left tail is NaN near
    nc = 9 for df 1.38 (a 2-treated event study stopped the run there, and statsmodels'
    solver returns 7.87 for it). The power at the MDES, integrated over the chi-square
    directly, is 80% (quad's error below 1e-8)."""
    nc, crit = detectable_multiple(df), stats.t.ppf(0.975, df)

    def rejects(v: float) -> float:
        scaled = crit * math.sqrt(v / df)
        return (stats.norm.sf(scaled - nc) + stats.norm.cdf(-scaled - nc)) * stats.chi2.pdf(v, df)

    power, err = integrate.quad(rejects, 0, math.inf, limit=200)
    assert err < 1e-8 and power == pytest.approx(0.8, abs=1e-7)


def test_normal_multiple_is_the_textbook_2_80():
    d = NormalIndPower().solve_power(nobs1=1, ratio=0, alpha=0.05, power=0.8)
    assert detectable_multiple(math.inf) == pytest.approx(d, rel=1e-6)
    # z_.975 + z_.80 = 2.8016 ignores the far rejection tail, which is negligible here
    assert detectable_multiple(math.nan) == pytest.approx(
        stats.norm.ppf(0.975) + stats.norm.ppf(0.8), abs=1e-4
    )


def test_fewer_degrees_of_freedom_need_a_larger_effect():
    assert detectable_multiple(3) > detectable_multiple(10) > detectable_multiple(math.inf)
    assert detectable_multiple(3) == pytest.approx(4.0, abs=0.5)  # t(3): far above 2.8


def test_no_standard_error_no_mdes():
    assert minimum_detectable(math.nan, 10) is None
    assert minimum_detectable(0.0, 10) is None


def test_wording_separates_no_change_from_could_not_detect():
    small = minimum_detectable(1.0, 20, baseline=10.0, expected=-0.10, expected_source="design")
    big = minimum_detectable(0.1, 20, baseline=10.0, expected=-0.10, expected_source="design")
    assert small.mdes_relative == pytest.approx(detectable_multiple(20) / 10)
    assert small.could_detect_expected is False and big.could_detect_expected is True
    low = evidence_statement(0.2, 0.8, -1.8, 2.2, "lower_is_better", small)
    assert "could not have detected a change of the expected size (−10%)" in low
    assert "may still have made a difference" in low
    high = evidence_statement(0.02, 0.8, -0.18, 0.22, "lower_is_better", big)
    assert "at least 80% power for a change of the expected size" in high
    for text in (low, high, evidence_statement(0.2, 0.8, -1.8, 2.2, "neutral", None)):
        assert "no effect" not in text and "no difference" not in text.replace(
            "made no difference", ""
        )
    assert evidence_statement(3.0, 0.001, 1.0, 5.0, "neutral", small).startswith("Strong")


@needs_public_data
def test_mdes_agrees_with_the_real_panel_simulation():
    """family_network (7 treated LAs, the comparison-pooled default) on the real looked-after
    rate: inject the MDES the report states for TWFE into 200 panels resampled from the real
    LA trajectories. The resampled panels are a model of the real one, not the real one: the
    estimate's spread there is within 15% of the real panel's SE, and the power at the stated
    MDES is 0.8 up to that model difference and Monte Carlo error (measured 0.665; the resampled
    panels' pooled SEs average about 15% above the real panel's, so the simulation is the more
    pessimistic of the two)."""
    spec = load_design(DESIGNS / "family_network.yaml")
    r = panel_resampler(spec, PUBLIC_DATA, "cla_rate")
    panel = build_panel(r.spec, r.data, describe_outcome(r.spec))
    res = TwoWayFixedEffects().fit(panel, "cla_rate", "twfe")
    assert res.inference.key == "pooled_panel"
    d = detectable(panel, res)
    assert d is not None and d.expected == -0.10 and d.expected_source == "design"
    assert 0.03 < d.mdes_relative < 0.3
    n = 200
    sim = simulate_panel_power(
        spec, PUBLIC_DATA, n, 11, -d.mdes_relative, "twfe", "cla_rate", workers=2, progress=False
    )
    se = float(res.table["std_error"].iloc[0])
    assert sim.estimates.std(ddof=1) == pytest.approx(se, rel=0.15)
    assert 0.6 <= sim.power <= 0.9, sim.power


def test_log_rate_ratio_rows_are_read_on_the_log_scale():
    """A Poisson fit's headline row is a log rate ratio: its MDES is a log ratio, the relative
    MDES the smallest detectable fall 1 − exp(−mdes), and an expected change e is detectable
    when |log(1 + e)| reaches it; the sentence gives the rate ratios, not outcome units."""
    from pathfinder_eval.report.summary import _power_clause, detectable_sentence, detectable_text

    se = 0.2 / detectable_multiple(40)  # an MDES of exactly 0.2 on the log scale
    d = minimum_detectable(se, 40, baseline=24.5, expected=-0.10, scale="log_rate_ratio")
    assert d.mdes == pytest.approx(0.2)
    assert d.mdes_relative == pytest.approx(1 - math.exp(-0.2))
    assert d.could_detect_expected is False  # |log 0.9| = 0.105 < 0.2
    bigger = minimum_detectable(se, 40, expected=-0.25, scale="log_rate_ratio")
    assert bigger.could_detect_expected is True  # |log 0.75| = 0.288
    assert minimum_detectable(se, 40, expected=-1.0, scale="log_rate_ratio").could_detect_expected
    text = detectable_sentence(d, "per 10,000 children")
    assert "±0.20 on the log scale: a rate ratio below 0.82 or above 1.22" in text
    assert "(a fall of 18% or a rise of 22%)" in text and "per 10,000" not in text
    assert d.to_dict()["scale"] == "log rate ratio"
    assert detectable_text(d) == "±0.20 on the log scale (a fall of 18% or a rise of 22%)"
    clause = _power_clause(d)
    assert "could not have detected a change of the expected size (−10%)" in clause
    assert "only for changes of about −18% or +22%" in clause


def test_log_odds_ratio_rows_are_read_against_the_baseline_proportion():
    """A logit fit's headline row is a log odds ratio: the detectable falls and rises are those
    of the pre-start proportion p when its odds move by exp(∓mdes), p·OR / (1 − p + p·OR), and
    an expected change e is detectable when logit(p(1 + e)) − logit(p) reaches the MDES."""
    from pathfinder_eval.report.summary import _power_clause, detectable_sentence, detectable_text

    se = 0.5 / detectable_multiple(10)  # an MDES of exactly 0.5 on the log-odds scale
    d = minimum_detectable(se, 10, baseline=0.2, expected=-0.10, scale="log_odds_ratio")

    def moved(odds_ratio: float) -> float:
        return 0.2 * odds_ratio / (1 - 0.2 + 0.2 * odds_ratio)

    assert d.fall == pytest.approx(1 - moved(math.exp(-0.5)) / 0.2, rel=1e-12)  # 34.2%
    assert d.rise == pytest.approx(moved(math.exp(0.5)) / 0.2 - 1, rel=1e-12)  # 45.9%
    assert d.mdes_relative == d.fall
    # 20% → 18%: log OR = log(0.18/0.82) − log(0.2/0.8) = −0.128 < 0.5
    assert d.could_detect_expected is False
    # 20% → 10%: log OR = −0.811
    assert minimum_detectable(se, 10, 0.2, -0.5, scale="log_odds_ratio").could_detect_expected
    # a rise to every child is as large as a change gets; beyond it no such change exists
    assert minimum_detectable(se, 10, 0.2, 4.0, scale="log_odds_ratio").could_detect_expected
    assert (
        minimum_detectable(se, 10, 0.2, 5.0, scale="log_odds_ratio").could_detect_expected is None
    )
    # without a baseline proportion the relative change is unknown, the ratio is not
    unknown = minimum_detectable(se, 10, expected=-0.10, scale="log_odds_ratio")
    assert unknown.could_detect_expected is None
    assert (
        detectable_text(unknown)
        == "±0.50 on the log scale (an odds ratio below 0.61 or above 1.65)"
    )
    text = detectable_sentence(d, "%")
    assert (
        "±0.50 on the log scale: an odds ratio below 0.61 or above 1.65 "
        "(from a proportion of 20.0% to 13.2% or 29.2%: a fall of 34% or a rise of 46%)" in text
    )
    assert d.to_dict()["scale"] == "log odds ratio"
    assert "only for changes of about −34% or +46% of the 20.0% pre-start proportion" in (
        _power_clause(d)
    )
    assert "the pre-start proportion it applies to is unknown" in detectable_sentence(unknown, "%")
    assert "of 0.0012%" in detectable_text(
        minimum_detectable(se, 10, 1.2e-5, scale="log_odds_ratio")
    )


def test_a_score_with_negative_values_gets_no_share_of_its_mean():
    """The example trial's wellbeing score (SD units, values either side of 0) read its MDES
    of about ±0.36 as '338% of the pre-start mean': a share of a mean near 0 means nothing."""
    from pathfinder_eval.data.load import load_outcomes
    from pathfinder_eval.estimators.stepped_wedge.lmm_estimator import SteppedWedge

    spec = load_design(DESIGNS / "examples" / "stepped_wedge_trial.yaml")
    panel = build_panel(spec, load_outcomes(spec, None, spec.seed), describe_outcome(spec))
    cells = panel.outcome_cells("score")
    before = cells[(cells["role"] == "treated") & (cells["treated"] == 0)]  # what it reads
    assert (before["y"] < 0).any()
    d = detectable(panel, SteppedWedge().fit(panel, "score", "sw"))
    assert d is not None and d.mdes > 0 and math.isnan(d.mdes_relative)
