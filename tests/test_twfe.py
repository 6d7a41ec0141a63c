"""TWFE and event study: checked against closed forms and statsmodels' dummy-variable OLS."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

import pathfinder_eval as pe
from did_helpers import make_panel, simulated, wide_frame
from pathfinder_eval.errors import EstimationError
from pathfinder_eval.estimators.did.twfe import EventStudy, TwoWayFixedEffects
from pathfinder_eval.settings import Inference

CR1 = Inference(method="cluster_robust")  # analytic inference: no bootstrap draws
LM_CR1 = Inference(method="cluster_robust", absorbed_effects="counted")  # as statsmodels dummy OLS
# Two implementations of the same linear algebra agree to floating-point noise.
EXACT = 1e-9


def test_twfe_2x2_equals_difference_of_mean_changes(tmp_path):
    frame = simulated(t=2, start=2)
    panel = make_panel(tmp_path, frame, {2: ["u00", "u01", "u02", "u03", "u04"]})
    res = TwoWayFixedEffects().fit(panel, "y", "a")
    wide = frame.pivot(index="unit", columns="period", values="y")
    change = wide[2] - wide[1]
    treated = change.index.isin(["u00", "u01", "u02", "u03", "u04"])
    closed_form = change[treated].mean() - change[~treated].mean()
    assert res.table.loc[0, "estimate"] == pytest.approx(closed_form, abs=EXACT)


def test_twfe_matches_statsmodels_dummy_ols_with_cluster_se(tmp_path):
    frame = simulated()
    panel = make_panel(tmp_path, frame, {4: ["u00", "u01", "u02", "u03", "u04"]})
    # statsmodels' dummy OLS counts every dummy in K: the lm + vcovCL convention
    lm_cr1 = Inference(method="cluster_robust", absorbed_effects="counted")
    res = TwoWayFixedEffects(inference=lm_cr1).fit(panel, "y", "a")
    d = panel.outcome_cells("y")
    ref = smf.ols("y ~ treated + C(unit) + C(period)", d).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(d["unit"])[0]}
    )
    row = res.table.iloc[0]
    assert row["estimate"] == pytest.approx(ref.params["treated"], abs=EXACT)
    assert row["std_error"] == pytest.approx(ref.bse["treated"], rel=1e-9)
    # t reference with G-1 = 23 df
    assert row["df"] == 23
    from scipy import stats

    t = ref.params["treated"] / ref.bse["treated"]
    assert row["p_value"] == pytest.approx(2 * stats.t.sf(abs(t), 23), rel=1e-9)
    assert res.n_units == 24 and res.n_treated == 5 and res.n_obs == 144


def test_event_study_matches_statsmodels_and_bins_endpoints(tmp_path):
    frame = simulated(t=8, start=5)
    panel = make_panel(tmp_path, frame, {5: ["u00", "u01", "u02", "u03", "u04"]})
    res = EventStudy(min_lead=-3, max_lag=2, inference=LM_CR1).fit(panel, "y", "es")
    d = panel.outcome_cells("y").copy()
    rel = (d["period"] - d["cohort"]).clip(-3, 2)
    for e in (-3, -2, 0, 1, 2):
        d[f"e{e + 10}"] = (rel == e).astype(float)
    ref = smf.ols("y ~ e7 + e8 + e10 + e11 + e12 + C(unit) + C(period)", d).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(d["unit"])[0]}
    )
    got = res.table.set_index("event_time")
    for e in (-3, -2, 0, 1, 2):
        assert got.loc[e, "estimate"] == pytest.approx(ref.params[f"e{e + 10}"], abs=EXACT)
        assert got.loc[e, "std_error"] == pytest.approx(ref.bse[f"e{e + 10}"], rel=1e-9)
    assert list(got.index) == [-3, -2, 0, 1, 2]
    assert got.loc[-3, "n_units"] == 5
    # true dynamic effect is 0.5 from start: lags should be near it, leads near zero
    assert got.loc[[0, 1, 2], "estimate"].mean() == pytest.approx(0.5, abs=0.35)
    pre = res.diagnostics["pretrend_test"]
    assert pre["df_num"] == 2 and pre["df_denom"] == 23


def test_fit_leaves_panel_and_estimator_unchanged(tmp_path):
    frame = simulated()
    panel = make_panel(tmp_path, frame, {4: ["u00", "u01", "u02", "u03", "u04"]})
    before = panel.cells.copy()
    est = EventStudy()
    a = est.fit(panel, "y", "es")
    b = est.fit(panel, "y", "es")
    # exact: the caller's frame is untouched, and two fits are the same computation
    pd.testing.assert_frame_equal(panel.cells, before)
    pd.testing.assert_frame_equal(a.table, b.table)


def test_row_order_and_relabelling_do_not_change_estimates(tmp_path):
    frame = simulated()
    base = TwoWayFixedEffects(inference=CR1).fit(
        make_panel(tmp_path, frame, {4: ["u00", "u01", "u02", "u03", "u04"]}), "y", "a"
    )
    shuffled = frame.sample(frac=1.0, random_state=1)
    relabel = {f"u{i:02d}": f"z{23 - i:02d}" for i in range(24)}
    shuffled = shuffled.assign(unit=shuffled["unit"].map(relabel))
    treated = [relabel[f"u0{i}"] for i in range(5)]
    other = TwoWayFixedEffects(inference=CR1).fit(
        make_panel(tmp_path, shuffled, {4: treated}), "y", "a"
    )
    cols = ["estimate", "std_error", "p_value"]
    np.testing.assert_allclose(
        base.table[cols].to_numpy(), other.table[cols].to_numpy(), rtol=1e-10
    )


def test_leave_one_treated_out_refits_without_each_treated_unit(tmp_path):
    frame = simulated()
    treated = ["u00", "u01", "u02", "u03", "u04"]
    res = TwoWayFixedEffects().fit(make_panel(tmp_path, frame, {4: treated}), "y", "a")
    drops = res.diagnostics["leave_one_treated_out"]
    assert sorted(drops) == treated
    without = frame[frame["unit"] != "u02"]
    direct = TwoWayFixedEffects().fit(
        make_panel(tmp_path, without, {4: [u for u in treated if u != "u02"]}), "y", "a"
    )
    assert drops["u02"] == pytest.approx(direct.table.loc[0, "estimate"], abs=EXACT)


def test_cr2_on_request_with_few_treated_units(tmp_path):
    """CR2 (the default before issue 16) matches the direct CR2 computation."""
    from pathfinder_eval.inference.cr2 import cr2_inference

    frame = simulated()
    panel = make_panel(tmp_path, frame, {4: ["u00", "u01", "u02", "u03", "u04"]})
    res = TwoWayFixedEffects(seed=3, inference=Inference(method="cr2")).fit(panel, "y", "a")
    assert res.inference.label.startswith("CR2 cluster-robust by unit") and res.warnings == ()
    d = panel.outcome_cells("y")
    c2 = cr2_inference(
        d["y"].to_numpy(float),
        d["treated"].to_numpy(float)[:, None],
        pd.factorize(d["unit"])[0],
        pd.factorize(d["period"])[0],
    )
    row = res.table.iloc[0]
    assert (row["std_error"], row["df"], row["p_value"]) == pytest.approx(
        (c2.std_error[0], c2.df[0], c2.p_value[0]), rel=1e-12
    )


def test_wild_bootstrap_on_request(tmp_path):
    from pathfinder_eval.inference.wild_bootstrap import wild_cluster_bootstrap

    frame = simulated()
    panel = make_panel(tmp_path, frame, {4: ["u00", "u01", "u02", "u03", "u04"]})
    res = TwoWayFixedEffects(seed=3, inference=Inference(method="wild_bootstrap")).fit(
        panel, "y", "a"
    )
    assert res.inference.label.startswith("wild cluster restricted bootstrap")
    d = panel.outcome_cells("y")
    wb = wild_cluster_bootstrap(
        d["y"].to_numpy(float),
        d["treated"].to_numpy(float),
        pd.factorize(d["unit"])[0],
        pd.factorize(d["period"])[0],
        pd.factorize(d["unit"])[0],
        9999,
        "webb",
        0.95,
        3,
    )
    row = res.table.iloc[0]
    assert (row["p_value"], row["ci_lower"], row["ci_upper"]) == (
        wb.p_value,
        wb.ci_lower,
        wb.ci_upper,
    )
    cr1 = TwoWayFixedEffects(inference=Inference(method="cluster_robust")).fit(panel, "y", "a")
    assert row["std_error"] == cr1.table.iloc[0]["std_error"]


def test_weighted_leave_one_treated_out_matches_linearmodels_weighted_refits():
    """The leave-one-out refits are exact weighted two-way absorptions: each equals
    linearmodels' weighted PanelOLS on the panel without that unit (to 1e-9), on an unbalanced
    panel, and the weights matter (the unweighted refits differ)."""
    from pathfinder_eval.estimators.did.two_way import fit_twfe, leave_one_treated_out

    frame = simulated(seed=5)
    frame = frame.drop(index=[3, 40, 77]).reset_index(drop=True)  # unbalanced
    treated = ["u00", "u01", "u02", "u03", "u04"]
    cells = frame.assign(
        treated=(frame["unit"].isin(treated) & (frame["period"] >= 4)).astype(float),
        role=np.where(frame["unit"].isin(treated), "treated", "comparison"),
        weight=np.random.default_rng(1).uniform(0.2, 25.0, len(frame)),
    )
    drops = leave_one_treated_out(cells, weighted=True)
    assert sorted(drops) == treated
    for u in treated:
        direct = fit_twfe(cells[cells["unit"] != u], ["treated"], weighted=True).params[0]
        assert drops[u] == pytest.approx(direct, abs=EXACT)
    plain = leave_one_treated_out(cells, weighted=False)
    assert all(abs(plain[u] - drops[u]) > 1e-3 for u in treated)


def test_a_leave_one_out_refit_that_cannot_be_estimated_is_left_out():
    """Two treated units, one observed only from its start: without the other, its treatment
    dummy is its unit effect, so that refit is not estimable and is left out (not a number
    made of rounding error); the other refit is linearmodels' estimate."""
    from pathfinder_eval.estimators.did.two_way import fit_twfe, leave_one_treated_out

    frame = simulated(seed=7)
    frame = frame[~((frame["unit"] == "u00") & (frame["period"] < 4))].reset_index(drop=True)
    treated = ["u00", "u01"]
    cells = frame.assign(
        treated=(frame["unit"].isin(treated) & (frame["period"] >= 4)).astype(float),
        role=np.where(frame["unit"].isin(treated), "treated", "comparison"),
        weight=1.0,
    )
    drops = leave_one_treated_out(cells, weighted=False)
    assert list(drops) == ["u00"]
    direct = fit_twfe(cells[cells["unit"] != "u00"], ["treated"]).params[0]
    assert drops["u00"] == pytest.approx(direct, abs=EXACT)


def test_leave_one_out_from_one_absorption_matches_each_refit_with_many_treated_units(
    monkeypatch,
):
    """The refits come from one absorption (the panel's cross-products less each unit's own,
    in batches: 6 units here): each equals linearmodels' weighted PanelOLS without that unit
    (to 1e-9) with 16 of 24 units treated in two cohorts, units observed for 5 to 6 periods,
    and one period seen only in a treated unit, which its own refit loses."""
    from pathfinder_eval.estimators.did import two_way
    from pathfinder_eval.estimators.did.two_way import fit_twfe, leave_one_treated_out

    monkeypatch.setattr(two_way, "_BATCH_CELLS", 6 * 9**2)  # 7 periods: (T + 2)² = 9²

    frame = simulated(seed=11)
    frame = frame.drop(index=[2, 9, 30, 55, 101, 140]).reset_index(drop=True)  # unbalanced
    extra = frame[frame["unit"] == "u06"].iloc[[0]].assign(period=frame["period"].max() + 1)
    frame = pd.concat([frame, extra], ignore_index=True)
    early, late = [f"u{i:02d}" for i in range(8)], [f"u{i:02d}" for i in range(8, 16)]
    start = np.where(frame["unit"].isin(early), 3, np.where(frame["unit"].isin(late), 5, 99))
    cells = frame.assign(
        treated=(frame["period"] >= start).astype(float),
        role=np.where(start < 99, "treated", "comparison"),
        weight=np.random.default_rng(2).uniform(0.5, 40.0, len(frame)),
    )
    drops = leave_one_treated_out(cells, weighted=True)
    assert list(drops) == sorted(early + late)
    for u in early + late:
        direct = fit_twfe(cells[cells["unit"] != u], ["treated"], weighted=True).params[0]
        assert drops[u] == pytest.approx(direct, abs=EXACT)


def test_a_refit_without_any_treated_cell_is_left_out():
    """A is treated from period 3 but observed only before it (its later values suppressed),
    so without B no cell is treated: that refit is left out, as linearmodels refuses it, not
    reported from the rounding error of a downdate (found in review)."""
    from pathfinder_eval.estimators.did.two_way import fit_twfe, leave_one_treated_out

    rows = [("A", t) for t in range(2)] + [(u, t) for u in "BCD" for t in range(7)]
    cells = pd.DataFrame(rows, columns=["unit", "period"])
    start = cells["unit"].map({"A": 3, "B": 5}).fillna(99)
    cells = cells.assign(
        treated=(cells["period"] >= start).astype(float),
        role=np.where(start < 99, "treated", "comparison"),
        y=np.random.default_rng(705).normal(size=len(cells)),
        weight=1.0,
    )
    drops = leave_one_treated_out(cells, weighted=False)
    assert list(drops) == ["A"]
    assert drops["A"] == pytest.approx(fit_twfe(cells[cells["unit"] != "A"], ["treated"]).params[0])
    with pytest.raises(EstimationError):
        fit_twfe(cells[cells["unit"] != "B"], ["treated"])


@pytest.mark.parametrize("heavy", [1e6, 1e8])
def test_a_refit_the_downdate_cannot_vouch_for_is_absorbed_exactly(heavy):
    """A treated unit weighted `heavy` times the others dominates the cross-products, so
    subtracting its own loses digits (2e-7 relative at 1e6 before this check, found in
    review): that refit is absorbed again and equals linearmodels' to 1e-9."""
    from pathfinder_eval.estimators.did.two_way import fit_twfe, leave_one_treated_out

    frame = simulated(seed=0, n=10, start=3, treated=("u00", "u01", "u02"))
    cells = frame.assign(
        treated=(frame["unit"].isin(["u00", "u01", "u02"]) & (frame["period"] >= 3)).astype(float),
        role=np.where(frame["unit"].isin(["u00", "u01", "u02"]), "treated", "comparison"),
        weight=np.where(frame["unit"] == "u00", heavy, 1.0),
    )
    drops = leave_one_treated_out(cells, weighted=True)
    assert sorted(drops) == ["u00", "u01", "u02"]
    for u in drops:
        direct = fit_twfe(cells[cells["unit"] != u], ["treated"], weighted=True).params[0]
        assert drops[u] == pytest.approx(direct, rel=1e-9, abs=EXACT)


def test_panel_cells_keep_an_object_unit_column_and_the_same_estimates(tmp_path):
    """Units given as Python objects (as a regional design's own rows leave them) stay object
    in the cells, with the same cells and TWFE estimate as string units: the cells' text is
    rebuilt from codes, and pandas re-typed an inserted object array as str (found in
    review)."""
    frame = simulated()
    treated = ["u00", "u01", "u02", "u03", "u04"]
    as_text = make_panel(tmp_path, frame, {4: treated})
    as_objects = make_panel(tmp_path, frame.astype({"unit": object}), {4: treated})
    assert as_objects.cells["unit"].dtype == object
    assert as_text.cells["unit"].dtype != object
    pd.testing.assert_frame_equal(
        as_objects.cells.astype({"unit": str}), as_text.cells, check_exact=True
    )
    fits = [TwoWayFixedEffects(inference=CR1).fit(p, "y", "a") for p in (as_text, as_objects)]
    assert fits[0].table.loc[0, "estimate"] == fits[1].table.loc[0, "estimate"]


def test_an_event_study_without_residual_df_is_refused_clearly():
    """Three units, three years, seven cells: the leads, lags and effects use them all, and
    linearmodels' ValueError reached the user as a traceback (found by fuzzing)."""
    nan = np.nan
    frame = wide_frame(
        {"u0": [nan, -1.75, 0.21], "u1": [-0.46, nan, 0.90], "u2": [0.62, 0.10, 1.56]},
        {"u2": 2012},
    )
    with pytest.raises(EstimationError, match="7 cells are fully used by 2 regressor"):
        pe.event_study(frame, outcome="y", unit="unit", time="year", first_treated="first")


def test_a_lead_fitted_exactly_is_neither_reported_with_a_standard_error_nor_tested():
    """u0 (from 2013) is the only unit with event time −2 (2011), and its 2011 cell is fitted
    exactly by that indicator and the unit and period effects. Its CR2 variance is rounding:
    the default reported it with SE 1e-15 (df NaN) and its pre-trend F test read 4.8e29,
    p = 0, a certain false alarm; CR1 gave SE 0 and F = −2.2e15 (found by fuzzing, seed
    85). Now the lead has no SE or df, the test is not run and the warnings say why; the
    post rows keep CR1's. Under CR2 they have none either: u6, the only never-treated unit,
    is fitted exactly too (it alone gives the period effects), so 83% of event time 0's
    weight is noise no residual measures (CR2's pseudo-inverse left it out)."""
    nan = np.nan
    frame = wide_frame(
        {
            "u0": [0.18, -0.02, nan],
            "u1": [0.69, -0.74, 1.04],
            "u2": [-1.2, -1.17, nan],
            "u3": [0.43, 0.56, -0.15],
            "u4": [0.45, 0.58, nan],
            "u5": [0.56, 2.37, -1.13],
            "u6": [-1.3, -0.67, -0.24],
        },
        {"u0": 2013, "u1": 2012, "u2": 2012, "u3": 2012, "u4": 2012, "u5": 2012},
    )
    kw = {"outcome": "y", "unit": "unit", "time": "year", "first_treated": "first"}
    for inference, key in (("default", "cr2"), ("cluster_robust", "cr1")):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            res = pe.event_study(frame, **kw, inference=inference)
        assert res.inference.key == key
        table = res.table.set_index("term")
        assert table.loc["event time -2", ["std_error", "df", "ci_lower"]].isna().all()
        assert np.isnan(res.vcov[0]).all() and np.isnan(res.vcov[:, 0]).all()
        post = table.loc[["event time 0", "event time 1"], "std_error"]
        if key == "cr1":
            assert (post > 0.5).all()
            assert res.warnings[-2].startswith("event time -2: no standard error or interval.")
        else:
            assert post.isna().all()
            assert res.warnings[-2].startswith(
                "event time -2, event time 0, event time 1: no standard error or interval. Its "
                "variance cannot be estimated: the model fits exactly cells the row rests on"
            )
        assert res.facts.pretrend_test is None and res.facts.pretest_power is None
        assert res.warnings[-1] == (
            "Pre-trend test without event time -2: every cell they rest on is fitted exactly, "
            "so they have no variance to test against (the test is not run)."
        )
