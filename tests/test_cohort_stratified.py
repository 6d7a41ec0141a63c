"""Cohort-stratified variance with Bell-McCaffrey df for Callaway & Sant'Anna with few treated
units: linearity of every aggregation in the outcomes, closed forms (Welch's two-sample
standard error; a single treated unit's prediction-error variance), the estimator's default
choice, and size by simulation against did's influence-function standard error."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from did_helpers import make_panel, simulated
from pathfinder_eval.estimators.did.callaway_santanna import CallawaySantAnna
from pathfinder_eval.estimators.did.group_time import aggregate, group_time_att, prepare_cohorts
from pathfinder_eval.estimators.did.group_time_inference import (
    cohort_stratified,
    stratum_weights,
    unit_strata,
)
from pathfinder_eval.settings import Inference

# Same sums in a different order: rounding only.
EXACT = 1e-12


def _panel(rng, n=60, t=8, cohorts=((4, 3), (6, 2), (7, 1), (8, 3))):
    """(n, t) outcomes with unit effects, and cohorts (start, size); the rest never treated."""
    cohort = np.full(n, np.nan)
    at = 0
    for start, size in cohorts:
        cohort[at : at + size] = start
        at += size
    y = rng.normal(size=(n, t)) + rng.normal(size=(n, 1)) + 0.3 * np.isfinite(cohort)[:, None]
    return y, cohort, np.arange(1, t + 1, dtype=float)


@pytest.mark.parametrize("control_group", ["never_treated", "not_yet_treated"])
@pytest.mark.parametrize("base_period", ["varying", "universal"])
@pytest.mark.parametrize("kind", ["simple", "dynamic", "group", "calendar"])
def test_every_aggregate_is_linear_in_the_outcomes_with_cohort_weights(
    control_group, base_period, kind
):
    y, cohort, periods = _panel(np.random.default_rng(1))
    gt = group_time_att(y, cohort, periods, control_group=control_group, base_period=base_period)
    agg = aggregate(gt, kind)
    w = np.vstack([agg.weights, agg.overall_weights])
    a = stratum_weights(gt, w)
    rebuilt = np.einsum("nt,rnt->r", y, a[:, unit_strata(gt), :])
    np.testing.assert_allclose(rebuilt, w @ gt.att, rtol=0, atol=EXACT)


def test_one_cohort_is_welch_two_sample_standard_error_with_bell_mccaffrey_df():
    rng = np.random.default_rng(2)
    y, cohort, periods = _panel(rng, n=40, t=2, cohorts=((2, 5),))
    gt = group_time_att(y, cohort, periods)
    res = cohort_stratified(y, gt, np.ones((1, 1)))
    change = y[:, 1] - y[:, 0]
    treated = np.isfinite(cohort)
    welch = stats.ttest_ind(change[treated], change[~treated], equal_var=False)
    assert gt.att[0] / res.std_error[0] == pytest.approx(welch.statistic, rel=EXACT)
    # Working model: one pooled variance, so the df depend on the group sizes only.
    n1, n0 = 5, 35
    bm = (1 / n1 + 1 / n0) ** 2 / (1 / (n1**2 * (n1 - 1)) + 1 / (n0**2 * (n0 - 1)))
    assert res.df[0] == pytest.approx(bm, rel=EXACT)
    assert res.singletons == 0


def test_single_treated_unit_borrows_the_comparison_variance():
    rng = np.random.default_rng(3)
    y, cohort, periods = _panel(rng, n=30, t=2, cohorts=((2, 1),))
    gt = group_time_att(y, cohort, periods)
    res = cohort_stratified(y, gt, np.ones((1, 1)))
    change = y[:, 1] - y[:, 0]
    controls = change[np.isnan(cohort)]
    # Var(Δy_treated − mean Δy_controls) = s²(1 + 1/n0): a new observation's prediction error.
    expected = np.sqrt(controls.var(ddof=1) * (1 + 1 / len(controls)))
    assert res.std_error[0] == pytest.approx(expected, rel=EXACT)
    assert res.singletons == 1 and len(controls) - 1 <= res.df[0] <= len(controls) + 2


def _staggered(tmp_path, treated: int, seed: int = 4):
    """40 units over 8 periods, the first `treated` starting in period 5 or 6 alternately;
    the panel and its wide outcomes and cohorts."""
    units = [f"u{i:02d}" for i in range(treated)]
    frame = simulated(seed=seed, n=40, t=8, treated=(), start=9)
    starts = {5: units[::2], 6: units[1::2]}
    panel = make_panel(tmp_path, frame, {s: u for s, u in starts.items() if u})
    wide = frame.pivot(index="unit", columns="period", values="y")
    cohort = np.array(
        [5.0 if u in starts[5] else 6.0 if u in starts[6] else np.nan for u in wide.index]
    )
    return panel, wide.to_numpy(), cohort


def test_stratified_variance_on_request_with_few_treated_units(tmp_path):
    """The default before issue 16 (now chosen by name; the default pools the comparison LAs'
    noise, tests/test_panel_variance.py)."""
    panel, y, cohort = _staggered(tmp_path, treated=5)
    assert CallawaySantAnna().fit(panel, "y", "cs").inference.key == "pooled_panel"
    default = CallawaySantAnna(inference=Inference(method="cohort_stratified")).fit(
        panel, "y", "cs"
    )
    analytic = CallawaySantAnna(inference=Inference(method="cluster_robust")).fit(panel, "y", "cs")
    t, ta = default.table, analytic.table
    np.testing.assert_allclose(t["estimate"], ta["estimate"], rtol=0, atol=EXACT)
    assert "cohort-stratified variance" in default.inference.label
    assert np.isfinite(t["df"]).all() and (t["df"] < 40).all()
    periods = np.arange(1, 9, dtype=float)
    gt = group_time_att(y, cohort, periods)
    direct = cohort_stratified(y, gt, aggregate(gt, "simple").weights)
    assert t["std_error"][0] == pytest.approx(direct.std_error[0], rel=EXACT)
    assert t["df"][0] == pytest.approx(direct.df[0], rel=EXACT)
    half = stats.t.ppf(0.975, t["df"]) * t["std_error"]
    np.testing.assert_allclose(t["ci_upper"] - t["estimate"], half, rtol=EXACT)
    assert not any("over-reject" in w for w in default.warnings)
    assert any("over-reject" in w for w in analytic.warnings)
    # The ATT(g,t) cells keep did's influence-function standard errors.
    assert default.diagnostics["att_gt"] == analytic.diagnostics["att_gt"]


def test_covariates_keep_influence_function_inference(tmp_path):
    panel, _, _ = _staggered(tmp_path, treated=5)
    res = CallawaySantAnna(covariates=("y",)).fit(panel, "y", "cs")
    assert "influence-function" in res.inference.label and res.table["df"].isna().all()


def test_size_by_simulation_with_three_treated_las():
    """150 LAs, 3 treated in three cohorts (benchmarks/did_size.py's design, 10 periods): the
    stratified test keeps its size where did's influence-function SE rejects far too often."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from did_size import simulate

    rng = np.random.default_rng(11)
    reps, periods = 400, np.arange(10, dtype=float)
    reject_strat = reject_if = 0
    for _ in range(reps):
        y, _, _, _, start = simulate(rng, 150, 10, 3)
        y = y.reshape(150, 10)
        gt = group_time_att(y, prepare_cohorts(start, periods)[0], periods)
        agg = aggregate(gt, "simple")
        res = cohort_stratified(y, gt, agg.weights)
        reject_strat += 2 * stats.t.sf(abs(agg.overall) / res.std_error[0], res.df[0]) <= 0.05
        if_se = np.sqrt(np.sum(agg.overall_influence**2)) / 150
        reject_if += 2 * stats.norm.sf(abs(agg.overall) / if_se) <= 0.05
    # Binomial(400, 0.05) exceeds 32 (8%) with probability < 0.1%; did's SE rejects ~30%.
    assert reject_strat <= 32
    assert reject_if >= 80
