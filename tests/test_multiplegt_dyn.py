"""de Chaisemartin & D'Haultfœuille's DID_ℓ (estimators/did/multiplegt_dyn.py): the authors'
own Python port of did_multiplegt_dyn on four panels (tests/reference/dcdh_multiplegt_dyn,
script beside the values), the closed form of DID_ℓ, treatments that pause or stop through the
Python API and a design file, and the default inference."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import pathfinder_eval as pe
from pathfinder_eval.errors import DataError, DesignError, EstimationError
from pathfinder_eval.estimators.did.multiplegt_bootstrap import cluster_multiplicities
from pathfinder_eval.estimators.did.multiplegt_dyn import multiplegt_dyn
from pathfinder_eval.inference.cluster import equal_test
from pathfinder_eval.settings import Inference

REF = Path(__file__).parent / "reference" / "dcdh_multiplegt_dyn"
COLUMNS = dict(outcome="y", unit="unit", time="period", treatment="treatment")  # panels.csv's
# The same sums in another order (numpy arrays, not polars columns): rounding only.
TOL = 1e-10
# case → (panel, effects asked for, placebos asked for, normalized, clustered[, trends_lin])
CASES = {
    "switch_on_off_pause": ("switch_on_off_pause", 3, 2, False, False),
    "missing_outcomes": ("missing_outcomes", 3, 2, False, False),
    "no_never_switchers": ("no_never_switchers", 3, 2, False, False),
    "la_absorbing": ("la_absorbing", 3, 2, False, False),
    "la_absorbing_all": ("la_absorbing", 9, 9, False, False),  # the data hold 4 and 3
    "intensity": ("intensity", 3, 2, False, False),  # levels 0, 1, 2 up, down and across
    "intensity_normalized": ("intensity", 3, 2, True, False),
    # treatments missing in some periods, rows gone, a unit without treatment or outcome
    "missing_treatment": ("missing_treatment", 3, 2, False, False),
    "intensity_gaps": ("intensity_gaps", 3, 2, False, False),
    "intensity_gaps_normalized": ("intensity_gaps", 3, 2, True, False),
    # the authors' `cluster` option: units nested in coarser clusters (panels' cluster column)
    "switch_on_off_pause_cluster": ("switch_on_off_pause", 3, 2, False, True),
    "missing_outcomes_cluster": ("missing_outcomes", 3, 2, False, True),
    "la_absorbing_cluster": ("la_absorbing", 3, 2, False, True),  # 7 treated in one region
    "intensity_cluster": ("intensity", 3, 2, False, True),
    # trends_lin: a linear trend for each unit (no average total effect)
    "switch_on_off_pause_trends": ("switch_on_off_pause", 3, 2, False, False, True),
    "no_never_switchers_trends": ("no_never_switchers", 3, 2, False, False, True),
    "la_absorbing_trends": ("la_absorbing", 3, 2, False, False, True),
    "intensity_trends": ("intensity", 3, 2, False, False, True),
    "missing_treatment_trends": ("missing_treatment", 3, 2, False, False, True),
    # control variables x1, x2 (the panels `_x`: the outcome gains 0.7·x1 − 0.4·x2)
    "switch_on_off_pause_controls": ("switch_on_off_pause_x", 3, 2, False, False),
    "la_absorbing_controls": ("la_absorbing_x", 3, 2, False, False),
    "la_absorbing_controls_cluster": ("la_absorbing_x", 3, 2, False, True),
    "intensity_controls": ("intensity_x", 3, 2, False, False),
    "intensity_controls_normalized": ("intensity_x", 3, 2, True, False),
    "missing_treatment_controls": ("missing_treatment_x", 3, 2, False, False),  # 3% x1 missing
    "switch_on_off_pause_controls_trends": ("switch_on_off_pause_x", 3, 2, False, False, True),
    "la_absorbing_controls_trends": ("la_absorbing_x", 3, 2, False, False, True),
    "intensity_controls_trends": ("intensity_x", 3, 2, False, False, True),
    # starting treatments from U(0.5, 2.5), all different: the authors' `continuous` (degree)
    "continuous_1": ("continuous_start_x", 3, 2, False, False),
    "continuous_2_normalized": ("continuous_start_x", 3, 2, True, False),
    "continuous_1_controls": ("continuous_start_x", 3, 2, False, False),
    "continuous_1_cluster": ("continuous_start_x", 3, 2, False, True),
    "continuous_1_trends": ("continuous_start_x", 3, 2, False, False, True),
    "continuous_2_controls_trends": ("continuous_start_x", 3, 2, False, False, True),
    # weighted by the cells' w (child populations; the authors' `weight`)
    "la_absorbing_w": ("la_absorbing", 3, 2, False, False),
    "switch_on_off_pause_w": ("switch_on_off_pause", 3, 2, False, False),
    "intensity_w_normalized": ("intensity", 3, 2, True, False),
    "la_absorbing_w_cluster": ("la_absorbing", 3, 2, False, True),
    "missing_treatment_w": ("missing_treatment", 3, 2, False, False),
    "switch_on_off_pause_w_trends": ("switch_on_off_pause", 3, 2, False, False, True),
    "la_absorbing_w_controls": ("la_absorbing_x", 3, 2, False, False),
    "switch_on_off_pause_w_controls_cluster": ("switch_on_off_pause_x", 3, 2, False, True),
    "intensity_w_controls_normalized": ("intensity_x", 3, 2, True, False),
    "missing_treatment_w_controls": ("missing_treatment_x", 3, 2, False, False),
    "switch_on_off_pause_w_controls_trends": ("switch_on_off_pause_x", 3, 2, False, False, True),
    "continuous_1_w": ("continuous_start_x", 3, 2, False, False),
    "continuous_1_w_controls": ("continuous_start_x", 3, 2, False, False),
}
# the authors' options choosing the switchers and comparisons used
OPTIONS = {
    "never": {"only_never_switchers": True},
    "same": {"same_switchers": True},
    "same_pl": {"same_switchers": True, "same_switchers_pl": True},
    "in": {"switchers": "in"},
    "out": {"switchers": "out"},
}
CHOSEN = {}
for panel in ("la_absorbing", "switch_on_off_pause", "intensity", "missing_treatment"):
    for name, chosen in OPTIONS.items():
        if (panel, name) != ("la_absorbing", "out"):  # no LA switches off there
            CHOSEN[f"{panel}_{name}"] = chosen
            CASES[f"{panel}_{name}"] = (panel, 3, 2, False, False)
CHOSEN["switch_on_off_pause_out_trends"] = OPTIONS["out"]
CASES["switch_on_off_pause_out_trends"] = ("switch_on_off_pause", 3, 2, False, False, True)
CHOSEN["intensity_in_w_controls"] = OPTIONS["in"]
CASES["intensity_in_w_controls"] = ("intensity_x", 3, 2, False, False)
CHOSEN["missing_treatment_never_cluster"] = OPTIONS["never"]
CASES["missing_treatment_never_cluster"] = ("missing_treatment", 3, 2, False, True)
# comparisons within strata (trends_nonparam): the LA panel's regions, else thirds of units
STRATA = {
    "la_absorbing_np": "cluster",
    "la_absorbing_np_w": "cluster",
    "switch_on_off_pause_np": "stratum",
    "intensity_np": "stratum",
    "intensity_np_normalized": "stratum",
    "intensity_np_cluster": "stratum",
    "missing_treatment_np": "stratum",
    "la_absorbing_np_controls": "cluster",
    "intensity_np_controls": "stratum",
    "intensity_np_w_controls_cluster": "stratum",
    "continuous_1_np": "stratum",
}
# x1 missing where u022 pauses: the treatment it received there still counts when normalised
CASES["switch_on_off_pause_controls_gap_normalized"] = (
    "switch_on_off_pause_gap_x",
    6,
    1,
    True,
    False,
)
# the authors' less_conservative_se: switchers' cohorts by their treatment paths
LCS = {
    "intensity_lcs": ("intensity", 3, 2, False, False),
    "intensity_gaps_lcs": ("intensity_gaps", 3, 2, False, False),
    "switch_on_off_pause_lcs": ("switch_on_off_pause", 3, 2, False, False),
    "la_absorbing_lcs": ("la_absorbing", 3, 2, False, False),
    "missing_treatment_lcs": ("missing_treatment", 3, 2, False, False),
    "intensity_lcs_normalized": ("intensity", 3, 2, True, False),
    "intensity_lcs_w": ("intensity", 3, 2, False, False),
    "intensity_lcs_trends": ("intensity", 3, 2, False, False, True),
    "intensity_lcs_controls": ("intensity_x", 3, 2, False, False),
    "continuous_1_lcs": ("continuous_start_x", 3, 2, False, False),
    # starts that differ, changing twice: the paths are of the direction of change (the
    # authors' binarised treatment), so the same SEs as without the option
    "continuous_1_twice_lcs": ("continuous_twice", 3, 2, False, False),
    # … and returning to their start: the direction holds from the switch on, whatever the
    # treatment does later (sign(D − D_1) gave other SEs), so again the SEs without the option
    "continuous_1_back_lcs": ("continuous_back", 3, 2, False, False),
    "continuous_1_back_lcs_trends": ("continuous_back", 3, 2, False, False, True),
}
CASES["continuous_1_twice"] = ("continuous_twice", 3, 2, False, False)
CASES["continuous_1_back"] = ("continuous_back", 3, 2, False, False)
CASES.update(LCS)
# (intensity_lcs_cluster is in values.csv but checked apart: the port counts one cluster too
# many in every path there; test_less_conservative_se_with_clusters)
STRATA["intensity_np_lcs"] = "stratum"
for case in (*LCS, "intensity_np_lcs"):
    CHOSEN[case] = {"less_conservative_se": True}
for case in STRATA:
    panel = case.split("_np")[0] + ("_x" if "_controls" in case else "")
    panel = "continuous_start_x" if case.startswith("continuous") else panel
    CASES[case] = (panel, 3, 2, case.endswith("normalized"), case.endswith("cluster"))
WEIGHTED = {case for case in CASES if "_w" in case}
CONTINUOUS = {case: int(case.split("_")[1]) for case in CASES if case.startswith("continuous")}
CONTROLS = {case: ["x1", "x2"] for case in CASES if "_controls" in case}
CONTROLS["la_absorbing_controls"] = CONTROLS["la_absorbing_controls_trends"] = ["x1"]
CONTROLS["continuous_2_controls_trends"] = CONTROLS["la_absorbing_w_controls"] = ["x1"]
CONTROLS["la_absorbing_np_controls"] = ["x1"]
# With controls and clusters the port counts each period's clusters in θ_d's regression with
# polars' n_unique, which counts the missing value of the rows outside the regression as one
# more cluster (its Stata code counts the clusters present): SEs 7e-5 and 8e-4 apart
# (relative); with that count imitated, 4e-15 and 4e-16 (weighted: 1.8e-2 and 1.4e-15).
SE_TOL = {
    "la_absorbing_controls_cluster": 1e-4,
    "continuous_1_cluster": 1e-3,
    "switch_on_off_pause_w_controls_cluster": 2e-2,
    "intensity_np_w_controls_cluster": 3e-2,  # imitated: 8e-16
}


def _panel(case: str) -> pd.DataFrame:
    d = pd.read_csv(REF / "panels.csv")
    return d[d["case"] == case].drop(columns="case").reset_index(drop=True)


def _reference(case: str) -> tuple[pd.DataFrame, float]:
    v = pd.read_csv(REF / "values.csv")
    v = v[v["case"] == case]
    joint = float(v.loc[v["row"] == "p_jointplacebo", "estimate"].iloc[0])
    rows = v[~v["row"].isin(["p_jointplacebo", "p_equality_effects"])]
    return rows.reset_index(drop=True), joint


def _equal_effects_p(case: str) -> float:
    """The port's p-value of its test that the effects are equal (effects_equal)."""
    v = pd.read_csv(REF / "values.csv")
    return float(
        v.loc[(v["case"] == case) & (v["row"] == "p_equality_effects"), "estimate"].iloc[0]
    )


def _fit(case: str):
    data, effects, placebo, normalized, clustered, *trends = CASES[case]
    d = _panel(data)
    cluster = d["cluster"].to_numpy() if clustered else None
    return multiplegt_dyn(
        d["y"],
        d["unit"],
        d["period"],
        d["treatment"],
        effects,
        placebo,
        normalized,
        cluster,
        trends_lin=bool(trends),
        controls=d[CONTROLS[case]].to_numpy() if case in CONTROLS else None,
        continuous=CONTINUOUS.get(case, 0),
        weights=d["w"] if case in WEIGHTED else None,
        **CHOSEN.get(case, {}),
        strata=d[STRATA[case]].to_numpy() if case in STRATA else None,
    )


@pytest.mark.parametrize("case", CASES)
def test_matches_the_authors_python_port(case):
    """Average total effect, effects and placebos (those asked for, or as many as the data
    hold): estimates and analytic standard errors to 1e-10, switcher counts exactly, and the
    joint placebo test's p-value (the covariance between placebos) to 1e-10 — with switches
    off, pauses, missing outcomes, a baseline without never-switchers, and treatment levels
    0, 1, 2 changing in both directions, per unit of treatment received or not, and clustered
    above the unit (a cohort's degrees of freedom counting its clusters), with a linear
    trend for each unit, net of control variables (SE_TOL: the runs where the port counts
    clusters differently), and weighted by the cells' weights. The switchers counted are those
    behind each estimate (the package's "Switchers.w" unweighted, its "Switchers" weighted;
    with trends_lin its "Switchers" can differ, e.g. 12 against the 13 switchers averaged in
    switch_on_off_pause's first effect); their total weight is its "Switchers.w". The test that
    the effects are equal (the port's effects_equal) from the same covariance, to 1e-10."""
    ref, joint = _reference(case)
    fit = _fit(case)
    names = [r.replace("Average_Total_Effect", "average total effect") for r in ref["row"]]
    assert list(fit.labels) == [n.lower().replace("_", " ") for n in names]
    np.testing.assert_allclose(fit.estimate, ref["estimate"], rtol=TOL, atol=TOL)
    se_tol = SE_TOL.get(case, TOL)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.vcov)), ref["std_error"], rtol=se_tol)
    np.testing.assert_allclose(fit.switcher_weight, ref["switchers_w"], rtol=1e-12)
    if case not in WEIGHTED:
        np.testing.assert_array_equal(fit.n_switchers, ref["switchers_w"])
    elif "trends" not in case:
        np.testing.assert_array_equal(fit.n_switchers, ref["switchers"])
    pl = fit.lag < 0
    b, v = fit.estimate[pl], fit.vcov[np.ix_(pl, pl)]
    p = stats.chi2.sf(b @ np.linalg.solve(v, b), int(pl.sum()))
    assert p == pytest.approx(joint, rel=se_tol) if pl.sum() > 1 else np.isnan(joint)
    effects = np.flatnonzero(fit.lag > 0)
    equal = equal_test(fit.estimate, fit.vcov, np.full(fit.lag.size, np.inf), effects)
    # a small p-value moves ten times as much as the SEs that differ (SE_TOL's runs)
    p_tol = TOL if case not in SE_TOL else 10 * se_tol
    assert equal["p_value"] == pytest.approx(_equal_effects_p(case), rel=p_tol, abs=1e-12)


@pytest.mark.parametrize("case", ("switch_on_off_pause", "la_absorbing_all"))
def test_effects_and_placebos_closed_form(case):
    """DID_ℓ is the mean over switchers g of S_g·[(Y_g,F−1+ℓ − Y_g,F−1) − the mean change of
    the groups of g's baseline not switched by F − 1 + ℓ] (S_g = +1 switching on, −1 off),
    and placebo ℓ the same with Y_g,F−1−ℓ − Y_g,F−1, over the groups and controls of effect ℓ;
    the weights reproduce every row."""
    d = _panel(CASES[case][0])
    fit = _fit(case)
    y = d.pivot(index="unit", columns="period", values="y").to_numpy()
    dm = d.pivot(index="unit", columns="period", values="treatment").to_numpy()
    n_t = y.shape[1]
    base = dm[:, 0]
    moved = dm != base[:, None]
    first = np.where(moved.any(axis=1), moved.argmax(axis=1), n_t)  # 0-based, n_t: never
    for lag, est in zip(fit.lag[1:], fit.estimate[1:], strict=True):
        ell = int(abs(lag))
        terms = []
        for g in np.flatnonzero(first < n_t):
            t_at = first[g] - 1 + ell  # F − 1 + ℓ, 0-based
            ctrl = (base == base[g]) & (first > t_at)
            if t_at >= n_t or not ctrl.any():
                continue
            ref_t = first[g] - 1
            other = first[g] - 1 - ell if lag < 0 else t_at
            if other < 0:
                continue
            change = y[:, other] - y[:, ref_t]
            sign = 1.0 if base[g] == 0 else -1.0
            terms.append(sign * (change[g] - change[ctrl].mean()))
        assert est == pytest.approx(np.mean(terms), abs=1e-12)
    np.testing.assert_allclose(fit.weights @ d["y"].to_numpy(), fit.estimate, atol=1e-12)


def test_average_total_effect_with_an_absorbing_treatment():
    """With a treatment that never stops, the average total effect is the switcher-weighted
    mean of the effects."""
    fit = _fit("la_absorbing_all")
    eff = fit.lag > 0
    expected = fit.n_switchers[eff] @ fit.estimate[eff] / fit.n_switchers[eff].sum()
    assert fit.estimate[0] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    "case",
    (
        "switch_on_off_pause",
        "missing_outcomes",
        "la_absorbing",
        "intensity_normalized",
        "la_absorbing_cluster",
        "intensity_cluster",
        "missing_treatment",
        "intensity_gaps_normalized",
    ),
)
def test_python_api_runs_the_same_engine(case):
    """`pe.did_multiplegt_dyn` on the long frame, with the treatment column (which may switch
    off, pause or change level), reproduces the authors' rows with
    inference="cluster_robust", clustered by region where the authors' run clustered."""
    ref, joint = _reference(case)
    data, effects, placebo, normalized, clustered = CASES[case]
    res = pe.did_multiplegt_dyn(
        _panel(data),
        outcome="y",
        unit="unit",
        time="period",
        treatment="treatment",
        region="cluster",
        inference=Inference(method="cluster_robust", cluster="region" if clustered else "unit"),
        effects=effects,
        placebo=placebo,
        normalized=normalized,
    )
    assert res.inference.key == "influence_function"
    assert ("clustered by region" in res.inference.label) == clustered
    gaps = data in ("missing_treatment", "intensity_gaps")
    # u001 has no outcome, so no cell (the panel counts it); u000 has no treatment
    left_out = "1 unit(s) left out: no treatment or no outcome known (u000)."
    assert (left_out in res.warnings) == gaps
    assert any("have no known treatment" in w for w in res.warnings) == gaps
    np.testing.assert_allclose(res.table["estimate"], ref["estimate"], rtol=TOL, atol=TOL)
    np.testing.assert_allclose(res.table["std_error"], ref["std_error"], rtol=TOL)
    np.testing.assert_array_equal(res.table["n_units"], ref["switchers"])
    np.testing.assert_array_equal(res.table["event_time"].iloc[1:], [0, 1, 2, -2, -3])
    assert res.facts.placebo_test["p_value"] == pytest.approx(joint, rel=TOL)


def test_linear_trends_through_the_api_and_report(tmp_path):
    """`trends_lin=True` from the Python API gives the authors' rows (no average total
    effect), says so in the report, and names the units it leaves out. On an absorbing
    rollout effect ℓ is Σ_{i ≤ ℓ} of the switchers' change in first differences from F − 1 to
    F − 1 + i less that of the groups not yet switched at F − 1 + i (closed form, 1e-12)."""
    ref, _ = _reference("switch_on_off_pause_trends")
    d = _panel("switch_on_off_pause")
    res = pe.did_multiplegt_dyn(
        d,
        outcome="y",
        unit="unit",
        time="period",
        treatment="treatment",
        inference="cluster_robust",
        trends_lin=True,
    )
    np.testing.assert_allclose(res.table["estimate"], ref["estimate"], rtol=TOL, atol=TOL)
    np.testing.assert_allclose(res.table["std_error"], ref["std_error"], rtol=TOL)
    assert list(res.table["term"]) == [r.lower().replace("_", " ") for r in ref["row"]]
    assert any("4 unit(s) switching in the second period left out" in w for w in res.warnings)
    assert res.facts.linear_trends
    la = _panel("la_absorbing")
    y = la.pivot(index="unit", columns="period", values="y").to_numpy()
    dy = np.diff(y, axis=1)  # column c: y[c + 1] − y[c]
    first = la.pivot(index="unit", columns="period", values="treatment").to_numpy().argmax(1)
    first = np.where(first > 0, first, 99)  # 0-based switch column, 99 never
    fit = multiplegt_dyn(la["y"], la["unit"], la["period"], la["treatment"], 3, 0, trends_lin=True)
    switchers = np.flatnonzero(first < 99)
    for ell in (1, 2, 3):
        total = 0.0
        for i in range(1, ell + 1):
            gaps = []
            for g in switchers:
                f = first[g]
                later = np.flatnonzero(first > f - 1 + i)
                own = dy[g, f - 2 + i] - dy[g, f - 2]
                gaps.append(own - (dy[later, f - 2 + i] - dy[later, f - 2]).mean())
            total += np.mean(gaps)
        assert fit.estimate[ell - 1] == pytest.approx(total, rel=1e-12)


def test_default_inference_with_seven_treated_las():
    """7 of 150 LAs treated: the default is the comparison-pooled variance, with t
    Satterthwaite df, and the placebo test uses it."""
    res = pe.did_multiplegt_dyn(
        _panel("la_absorbing"), outcome="y", unit="unit", time="period", treatment="treatment"
    )
    assert res.inference.key == "pooled_panel"
    assert res.inference.chosen_by_default
    assert res.n_treated == 7 and res.n_units == 150
    assert (res.table["df"] > 100).all()
    assert res.facts.placebo_test["df_denom"] == res.table["df"].iloc[-1]
    # the placebos move by −s·ℓ under a linear trend s: the pre-test power of an event study
    # whose leads are at event times −2, −3 (reference −1)
    power = res.facts.pretest_power
    assert power["first_post_event_time"] == 0 and 0 < power["slope_50"] < power["slope_80"]
    ref, _ = _reference("la_absorbing")
    np.testing.assert_allclose(res.table["estimate"], ref["estimate"], rtol=TOL, atol=TOL)


def test_cohort_stratified_by_treatment_path():
    """Below 20 treated on a balanced panel the cohort-stratified variance strata are the
    units' treatment paths: 17 switchers with pauses."""
    res = pe.did_multiplegt_dyn(
        _panel("switch_on_off_pause"),
        outcome="y",
        unit="unit",
        time="period",
        treatment="treatment",
        inference="cohort_stratified",
    )
    assert res.inference.key == "cohort_stratified"
    assert res.n_treated == 17
    assert np.isfinite(res.table["std_error"]).all() and (res.table["df"] > 1).all()


def test_switching_off_is_refused_for_staggered_estimators(tmp_path):
    """A treatment column that switches off is accepted for did_multiplegt_dyn alone; with
    another estimator in the design it is a data error naming the file, row and estimator."""
    d = _panel("switch_on_off_pause")
    with pytest.raises(DataError) as err:
        pe.callaway_santanna(d, outcome="y", unit="unit", time="period", treatment="treatment")
    msg = str(err.value)
    assert "switches off" in msg and "callaway_santanna" in msg and "row" in msg


def test_bad_treatment_values_and_gaps():
    d = _panel("la_absorbing")
    bad = d.assign(treatment=d["treatment"].astype(float))
    bad.loc[5, "treatment"] = -1.0
    with pytest.raises(DataError, match="not a number of 0 or more"):
        pe.did_multiplegt_dyn(bad, outcome="y", unit="unit", time="period", treatment="treatment")
    # a unit-period without a row is one whose treatment and outcome are not known: la000
    # (starting in year 5) then switches at an unknown date and is a comparison to year 3
    gap = d.drop(index=3)
    unknown = d.assign(treatment=d["treatment"].astype(float))
    unknown.loc[3, ["treatment", "y"]] = np.nan
    a = multiplegt_dyn(gap["y"], gap["unit"], gap["period"], gap["treatment"], 3, 2)
    b = multiplegt_dyn(unknown["y"], unknown["unit"], unknown["period"], unknown["treatment"], 3, 2)
    np.testing.assert_allclose(a.estimate, b.estimate, rtol=1e-14)
    np.testing.assert_allclose(a.vcov, b.vcov, rtol=1e-14)
    assert a.unsure == ("la000",) and a.unknown_cells == 1
    assert a.n_switchers[1] == 6  # effect 1: the 3 + 4 starters less la000
    same = d.assign(treatment=(d["period"] >= 5).astype(int))
    with pytest.raises(EstimationError, match="same date"):
        multiplegt_dyn(same["y"], same["unit"], same["period"], same["treatment"])
    crossing = d["cluster"].to_numpy().copy()
    crossing[9] = "c08"  # la001's second year in another region
    with pytest.raises(EstimationError, match="la001 lies in more than one cluster"):
        multiplegt_dyn(d["y"], d["unit"], d["period"], d["treatment"], cluster=crossing)
    for name, message in (
        ("county", "'county' is not a column of the unit table"),
        ("region", "'region' is missing for every unit"),
    ):
        with pytest.raises(EstimationError, match=message):
            pe.did_multiplegt_dyn(
                d,
                outcome="y",
                unit="unit",
                time="period",
                treatment="treatment",
                inference=Inference(method="cluster_robust", cluster=name),
            )


DESIGN = """
name: pauses
title: A pilot whose LAs pause
pilot: custom
unit_level: cluster
time: {{axis: period}}
rollout:
{waves}
comparison: {{pool: never_treated, min_units: 2}}
outcomes: [{{column: y}}]
analyses:
  - id: dcdh
    estimator: did_multiplegt_dyn
    options: {{effects: 3, placebo: 2}}
{extra}
data: {{source: tidy, columns: {{unit: unit, period: period, treatment: treatment}}}}
"""


def _pausing_design(
    tmp_path, extra: str = "", panel: str = "switch_on_off_pause"
) -> tuple[Path, pd.DataFrame]:
    """The switch_on_off_pause panel without its units treated from the first period, as a
    design file: the rollout gives each unit's first switch, the treatment column its pauses."""
    d = _panel(panel)
    first_period = d[d["period"] == 1].set_index("unit")["treatment"]
    d = d[d["unit"].map(first_period) == 0].reset_index(drop=True)
    starts = d[d["treatment"] == 1].groupby("unit")["period"].min()
    waves = "\n".join(
        f"  - {{wave: s{s}, start: {s}, units: [{', '.join(sorted(g.index))}]}}"
        for s, g in starts.groupby(starts)
    )
    path = tmp_path / "pauses.yaml"
    path.write_text(DESIGN.format(waves=waves, extra=extra))
    return path, d


def test_design_file_with_pauses_runs_and_reports(tmp_path):
    """A design file whose treatment column pauses: the pipeline's rows equal the engine's on
    the same data, and the report shows the section with the placebo test."""
    path, d = _pausing_design(tmp_path)
    ev = pe.evaluate(path, d)
    (run,) = ev.runs
    fit = multiplegt_dyn(d["y"], d["unit"], d["period"], d["treatment"], 3, 2)
    np.testing.assert_allclose(run.result.table["estimate"], fit.estimate, atol=1e-12)
    assert run.result.n_treated == d.loc[d["treatment"] == 1, "unit"].nunique() == 14
    assert run.result.inference.key == "cohort_stratified"  # above 9 treated, regions unknown
    api = pe.did_multiplegt_dyn(d, outcome="y", unit="unit", time="period", treatment="treatment")
    np.testing.assert_array_equal(api.table["estimate"], run.result.table["estimate"])
    np.testing.assert_array_equal(api.table["std_error"], run.result.table["std_error"])
    files = pe.report(ev, tmp_path / "out")
    html = next(p for p in files if p.suffix == ".html").read_text()
    assert "de Chaisemartin" in html and "Joint test that the placebos are zero" in html
    paths = run.result.facts.treatment_paths
    assert f"followed that long): {paths[0]['path']} {paths[0]['units']} LAs" in html
    eq = run.result.facts.effects_equal
    assert eq["df_num"] == 2 and "Test that the 3 effects are equal" in html
    assert "Power of the pre-test" in html


def test_design_file_with_unknown_treatments_runs_and_says_so(tmp_path):
    """Treatments left empty in a design file's data are unknown: the pipeline equals the
    engine on the same data and the report says how many cells and which units it affects."""
    path, d = _pausing_design(tmp_path)
    d = d.assign(treatment=d["treatment"].astype(float))
    d.loc[np.random.default_rng(3).random(len(d)) < 0.1, "treatment"] = np.nan
    ev = pe.evaluate(path, d)
    (run,) = ev.runs
    fit = multiplegt_dyn(d["y"], d["unit"], d["period"], d["treatment"], 3, 2)
    np.testing.assert_allclose(run.result.table["estimate"], fit.estimate, atol=1e-12)
    note = next(w for w in run.result.warnings if "have no known treatment" in w)
    assert note.startswith(f"{fit.unknown_cells} unit-period(s)") and fit.unknown_cells > 0
    unsure = next(w for w in run.result.warnings if "switch at an unknown date" in w)
    assert fit.unsure == ("u000",) and unsure.endswith("(u000).") and "(u000)" not in note
    html = next(p for p in pe.report(ev, tmp_path / "out") if p.suffix == ".html").read_text()
    assert "have no known treatment" in html


def test_design_file_with_linear_trends(tmp_path):
    """`trends_lin: true` in a design file's options: the engine's rows, and the report says
    each LA has its own trend and there is no average total effect."""
    path, d = _pausing_design(tmp_path)
    text = path.read_text().replace("placebo: 2}", "placebo: 2, trends_lin: true}")
    path.write_text(text)
    (run,) = (ev := pe.evaluate(path, d)).runs
    fit = multiplegt_dyn(d["y"], d["unit"], d["period"], d["treatment"], 3, 2, trends_lin=True)
    np.testing.assert_allclose(run.result.table["estimate"], fit.estimate, atol=1e-12)
    assert run.result.table["term"].iloc[0] == "effect 1"
    html = next(p for p in pe.report(ev, tmp_path / "out") if p.suffix == ".html").read_text()
    assert "each LA has its own linear trend" in html


@pytest.mark.parametrize(
    "case",
    ("switch_on_off_pause_controls", "intensity_controls_normalized", "la_absorbing_controls"),
)
def test_controls_through_the_api(case):
    """`covariates` (the authors' `controls`) from the Python API gives the authors' rows with
    inference="cluster_robust"; each row is the linear combination of the outcomes its
    weights say (θ_d's estimation included), so the default few-treated variance applies."""
    ref, joint = _reference(case)
    data, effects, placebo, normalized, _ = CASES[case]
    d = _panel(data)
    kwargs = dict(
        outcome="y",
        unit="unit",
        time="period",
        treatment="treatment",
        effects=effects,
        placebo=placebo,
        normalized=normalized,
        covariates=tuple(CONTROLS[case]),
    )
    res = pe.did_multiplegt_dyn(d, **kwargs, inference="cluster_robust")
    np.testing.assert_allclose(res.table["estimate"], ref["estimate"], rtol=TOL, atol=TOL)
    np.testing.assert_allclose(res.table["std_error"], ref["std_error"], rtol=TOL)
    np.testing.assert_array_equal(res.table["n_units"], ref["switchers"])
    assert res.facts.placebo_test["p_value"] == pytest.approx(joint, rel=TOL)
    assert res.facts.covariates == CONTROLS[case]
    fit = _fit(case)
    np.testing.assert_allclose(fit.weights @ d["y"].to_numpy(), fit.estimate, atol=1e-12)
    default = pe.did_multiplegt_dyn(d, **kwargs)
    np.testing.assert_allclose(default.table["estimate"], ref["estimate"], rtol=TOL, atol=TOL)
    assert default.inference.chosen_by_default
    # the linear DiD rule: the analytic variance from 20 treated units (intensity: 26)
    assert (default.inference.key == "influence_function") == (default.n_treated >= 20)
    assert np.isfinite(default.table["std_error"]).all()


def test_controls_closed_form_and_missing_values():
    """On the LA-shaped panel with one control, effect ℓ is DID_ℓ on Y − θ·X with θ the slope
    of ΔY on ΔX net of period means among LA-years not yet treated (closed form, 1e-12). A
    unit-period missing a control is not used, and counted."""
    d = _panel("la_absorbing_x")
    y = d.pivot(index="unit", columns="period", values="y")
    x = d.pivot(index="unit", columns="period", values="x1")
    start = d[d["treatment"] == 1].groupby("unit")["period"].min().reindex(y.index).fillna(99)
    dy, dx = y.diff(axis=1).iloc[:, 1:], x.diff(axis=1).iloc[:, 1:]
    before = dy.columns.to_numpy()[None, :] < start.to_numpy()[:, None]
    dyb, dxb = dy.where(before), dx.where(before)
    xd = dxb - dxb.mean()
    theta = float((xd * dyb).sum().sum() / (xd**2).sum().sum())
    plain = multiplegt_dyn(d["y"] - theta * d["x1"], d["unit"], d["period"], d["treatment"], 3, 2)
    fit = _fit("la_absorbing_controls")
    np.testing.assert_allclose(fit.estimate, plain.estimate, atol=1e-12)
    gaps = _panel("missing_treatment_x")
    missing = gaps["x1"].isna() & ~(gaps["y"].isna() & gaps["treatment"].isna())
    out = _fit("missing_treatment_controls")
    assert out.no_controls == int(missing.sum()) > 0
    # those unit-periods are counted once: not also as unknown treatments
    plain = multiplegt_dyn(gaps["y"], gaps["unit"], gaps["period"], gaps["treatment"], 3, 2)
    assert out.unknown_cells == plain.unknown_cells == 41


def test_collinear_controls_are_judged_whatever_their_units():
    """The collinearity warning reads the controls' correlations: a control in units a
    billion times smaller or larger gives the same rows and no warning, two controls one a
    multiple of the other are flagged at any scale, and the column `continuous` generates
    that never varies with trends_lin is not counted."""
    d = _panel("la_absorbing_x")
    x = d[["x1"]].to_numpy()
    args = (d["y"], d["unit"], d["period"], d["treatment"], 3, 2)
    base = multiplegt_dyn(*args, controls=x)
    for scale in (1e-9, 1e9):
        fit = multiplegt_dyn(*args, controls=x * scale)
        assert fit.singular == ()
        np.testing.assert_allclose(fit.estimate, base.estimate, rtol=1e-9)
        pair = multiplegt_dyn(*args, controls=np.column_stack([x, 2e6 * x]) * scale)
        assert pair.singular == (0.0,)
    c = _panel("continuous_start_x")
    fit = multiplegt_dyn(
        c["y"], c["unit"], c["period"], c["treatment"], 3, 2, continuous=1, trends_lin=True
    )
    assert fit.singular == ()


def test_weighted_through_the_api_and_the_report(tmp_path):
    """`weighted=True` with counts and child populations: the rows are the authors' `weight`
    run on the rate (run la_absorbing_w_controls: x1, weights w; the rate is y + 20, which no
    difference sees), estimates and SEs to 1e-10; each row stays its weights times the
    outcomes; the report says the effects are per child; a weight of 0 where an outcome is
    known is refused, naming the row."""
    d = _panel("la_absorbing_x")
    d["n"] = (d["y"] + 20) * d["w"] / 1e4
    kwargs = dict(outcome="rate", unit="unit", time="period", treatment="treatment")
    kwargs |= dict(counts="n", population="w", covariates=("x1",))
    res = pe.did_multiplegt_dyn(d, **kwargs, weighted=True, inference="cluster_robust")
    ref, _ = _reference("la_absorbing_w_controls")
    np.testing.assert_allclose(res.table["estimate"], ref["estimate"], rtol=TOL, atol=TOL)
    np.testing.assert_allclose(res.table["std_error"], ref["std_error"], rtol=TOL)
    np.testing.assert_array_equal(res.table["n_units"], ref["switchers"])
    assert res.facts.weighted
    fit = _fit("la_absorbing_w")
    y = _panel("la_absorbing")["y"].to_numpy()
    np.testing.assert_allclose(fit.weights @ y, fit.estimate, atol=1e-12)
    bad = _panel("la_absorbing").assign(w=lambda f: f["w"].where(f.index != 7, 0.0))
    with pytest.raises(EstimationError, match=r"weight 0\.0 is not a number above 0") as err:
        multiplegt_dyn(bad["y"], bad["unit"], bad["period"], bad["treatment"], weights=bad["w"])
    assert "row 8" in str(err.value)
    path = tmp_path / "weighted.yaml"
    starts = d[d["treatment"] == 1].groupby("unit")["period"].min()
    waves = "\n".join(
        f"  - {{wave: s{s}, start: {s}, units: [{', '.join(sorted(g.index))}]}}"
        for s, g in starts.groupby(starts)
    )
    text = DESIGN.format(waves=waves, extra="").replace(
        "[{column: y}]",
        "[{column: rate, numerator: n, denominator: w, scale: per_10000}, {column: x1}]",
    )
    text = text.replace(
        "    options: {effects: 3, placebo: 2}",
        "    outcomes: [rate]\n    options: {effects: 3, placebo: 2, weighted: true}",
    )
    path.write_text(text)
    (run,) = (ev := pe.evaluate(path, d)).runs
    plain = pe.did_multiplegt_dyn(
        d, **{**kwargs, "covariates": ()}, weighted=True, inference="cluster_robust"
    )
    np.testing.assert_allclose(run.result.table["estimate"], plain.table["estimate"], atol=1e-12)
    html = next(p for p in pe.report(ev, tmp_path / "out") if p.suffix == ".html").read_text()
    assert "counts by its denominator" in html


def test_switcher_and_comparison_options_through_the_api_and_the_report(tmp_path):
    """`switchers`, `only_never_switchers` and `same_switchers(_pl)` from the Python API give
    the authors' rows (cluster_robust, to 1e-10), the facts carry them and the report says
    which LAs are in; same_switchers_pl alone is refused with what to do."""
    d = _panel("switch_on_off_pause")
    kwargs = dict(outcome="y", unit="unit", time="period", treatment="treatment")
    for case, options in (
        ("switch_on_off_pause_out", {"switchers": "out"}),
        ("switch_on_off_pause_never", {"only_never_switchers": True}),
        ("switch_on_off_pause_same_pl", {"same_switchers": True, "same_switchers_pl": True}),
    ):
        res = pe.did_multiplegt_dyn(d, **kwargs, **options, inference="cluster_robust")
        ref, joint = _reference(case)
        np.testing.assert_allclose(res.table["estimate"], ref["estimate"], rtol=TOL, atol=TOL)
        np.testing.assert_allclose(res.table["std_error"], ref["std_error"], rtol=TOL)
        assert res.facts.placebo_test["p_value"] == pytest.approx(joint, rel=TOL)
    assert res.facts.same_switchers == 2 and not res.facts.only_never_switchers
    with pytest.raises(DesignError, match="same_switchers_pl needs same_switchers"):
        pe.did_multiplegt_dyn(d, **kwargs, same_switchers_pl=True)
    path, data = _pausing_design(tmp_path)
    text = path.read_text().replace(
        "options: {effects: 3, placebo: 2}",
        "options: {effects: 3, placebo: 2, switchers: in, only_never_switchers: true, "
        "same_switchers: true}",
    )
    path.write_text(text)
    ev = pe.evaluate(path, data)
    (run,) = ev.runs
    fit = multiplegt_dyn(
        data["y"],
        data["unit"],
        data["period"],
        data["treatment"],
        3,
        2,
        switchers="in",
        only_never_switchers=True,
        same_switchers=True,
    )
    np.testing.assert_allclose(run.result.table["estimate"], fit.estimate, atol=1e-12)
    html = next(p for p in pe.report(ev, tmp_path / "out") if p.suffix == ".html").read_text()
    assert "Only LAs whose treatment first rises are analysed." in html
    assert "only LAs whose treatment never changes" in html
    assert "Every effect is over the same LAs" in html


def test_comparisons_within_regions_through_the_api_and_the_report(tmp_path):
    """`trends_nonparam: region` compares each LA only with LAs of its region: from the Python
    API (the region column) the authors' rows with trends_nonparam (run la_absorbing_np, the
    7 treated LAs all in one region), and the report says a regional shock cannot read as an
    effect; with covariates too (run la_absorbing_np_controls); with trends_lin it is refused,
    saying what to drop."""
    d = _panel("la_absorbing")
    kwargs = dict(outcome="y", unit="unit", time="period", treatment="treatment")
    res = pe.did_multiplegt_dyn(
        d, **kwargs, region="cluster", trends_nonparam="region", inference="cluster_robust"
    )
    ref, joint = _reference("la_absorbing_np")
    np.testing.assert_allclose(res.table["estimate"], ref["estimate"], rtol=TOL, atol=TOL)
    np.testing.assert_allclose(res.table["std_error"], ref["std_error"], rtol=TOL)
    assert res.facts.placebo_test["p_value"] == pytest.approx(joint, rel=TOL)
    assert res.facts.trends_nonparam == "region"
    with pytest.raises(EstimationError, match="'region' is missing for every unit"):
        pe.did_multiplegt_dyn(d, **kwargs, trends_nonparam="region")
    x = _panel("la_absorbing_x")
    res = pe.did_multiplegt_dyn(
        x,
        **kwargs,
        region="cluster",
        trends_nonparam="region",
        covariates=("x1",),
        inference="cluster_robust",
    )
    ref, _ = _reference("la_absorbing_np_controls")
    np.testing.assert_allclose(res.table["estimate"], ref["estimate"], rtol=TOL, atol=TOL)
    np.testing.assert_allclose(res.table["std_error"], ref["std_error"], rtol=TOL)
    with pytest.raises(EstimationError, match="cannot yet be combined with trends_lin"):
        pe.did_multiplegt_dyn(
            x, **kwargs, region="cluster", trends_nonparam="region", trends_lin=True
        )
    path, data = _pausing_design(tmp_path)
    data["region"] = data["unit"].map(lambda u: f"r{int(u[1:]) % 3}")
    text = path.read_text().replace(
        "options: {effects: 3, placebo: 2}",
        "options: {effects: 3, placebo: 2, trends_nonparam: region}",
    )
    path.write_text(text.replace("period: period,", "period: period, region: region,"))
    ev = pe.evaluate(path, data)
    (run,) = ev.runs
    fit = multiplegt_dyn(
        data["y"], data["unit"], data["period"], data["treatment"], 3, 2, strata=data["region"]
    )
    np.testing.assert_allclose(run.result.table["estimate"], fit.estimate, atol=1e-12)
    html = next(p for p in pe.report(ev, tmp_path / "out") if p.suffix == ".html").read_text()
    assert "compared only with LAs of the same region" in html


def test_options_that_leave_nothing_or_hide_the_noise_are_refused():
    """Each says why: no LA switching off for switchers: out; no LA that never changes for
    only_never_switchers; strata inside one cluster (their influence functions cancel there,
    so the clustered SEs would be 0); a weight missing where an outcome is known, even with
    the treatment unknown; engine arguments the settings layer would refuse. A Wald test
    with no variance returns no p-value rather than 1."""
    d = _panel("la_absorbing")
    args = (d["y"], d["unit"], d["period"], d["treatment"], 3, 2)
    with pytest.raises(EstimationError, match="no unit's treatment first falls"):
        multiplegt_dyn(*args, switchers="out")
    n = _panel("no_never_switchers")
    with pytest.raises(EstimationError, match="no unit's treatment never changes"):
        multiplegt_dyn(
            n["y"], n["unit"], n["period"], n["treatment"], 3, 2, only_never_switchers=True
        )
    c = d["cluster"].to_numpy()
    with pytest.raises(EstimationError, match="all lie in one cluster"):
        multiplegt_dyn(*args, cluster=c, strata=c)
    m = _panel("missing_treatment")
    w = m["w"].where(m["treatment"].notna())
    assert (m["treatment"].isna() & m["y"].notna()).any()
    with pytest.raises(EstimationError, match="is not a number above 0"):
        multiplegt_dyn(m["y"], m["unit"], m["period"], m["treatment"], weights=w)
    with pytest.raises(EstimationError, match="switchers 'both' is not one of"):
        multiplegt_dyn(*args, switchers="both")
    with pytest.raises(EstimationError, match="same_switchers_pl needs same_switchers"):
        multiplegt_dyn(*args, same_switchers_pl=True)
    kwargs = dict(outcome="y", unit="unit", time="period", treatment="treatment")
    res = pe.did_multiplegt_dyn(d, **kwargs, trends_lin=True, same_switchers=True)
    assert res.facts.same_switchers == 0
    assert any("same_switchers changes nothing with trends_lin" in w for w in res.warnings)
    test = equal_test(np.array([1.0, 2.0]), np.zeros((2, 2)), np.full(2, np.inf), [0, 1])
    assert np.isnan(test["p_value"]) and test["df_num"] == 1


def test_no_effect_once_missing_controls_are_left_out():
    """Covariates missing from period 3 for the never-treated and in period 3 for B leave
    switcher A (starting in 3) no comparison, and B (starting in 4) none either: no effect
    can be formed, with or without trends, and the error says why instead of dividing by
    zero. Without the covariate the same panel gives effects."""
    units = np.repeat(list("ABCDE"), 4)
    period = np.tile([1, 2, 3, 4], 5)
    start = {"A": 3, "B": 4}
    treat = np.array([int(p >= start.get(u, 99)) for u, p in zip(units, period, strict=True)])
    rng = np.random.default_rng(1)
    y, x = rng.normal(size=20), rng.normal(size=(20, 1))
    x[(np.isin(units, ["C", "D", "E"]) & (period >= 3)) | ((units == "B") & (period == 3)), 0] = (
        np.nan
    )
    for kwargs in ({}, {"trends_lin": True}):
        assert len(multiplegt_dyn(y, units, period, treat, 2, 1, **kwargs).estimate) >= 2
        with pytest.raises(EstimationError, match="missing an outcome or a covariate") as err:
            multiplegt_dyn(y, units, period, treat, 2, 1, controls=x, **kwargs)
        assert "leave out the covariates" in str(err.value)


def test_design_file_with_controls(tmp_path):
    """`covariates: [x1, x2]` in a design file's options (other outcomes of the design): the
    engine's rows on the same data, and the report names what the estimates are net of."""
    analysis = (
        "    options: {effects: 3, placebo: 2}",
        "    outcomes: [y]\n    options: {effects: 3, placebo: 2, covariates: [x1, x2]}",
    )
    path, d = _pausing_design(tmp_path, panel="switch_on_off_pause_x")
    text = path.read_text().replace(*analysis)
    path.write_text(text.replace("[{column: y}]", "[{column: y}, {column: x1}, {column: x2}]"))
    (run,) = (ev := pe.evaluate(path, d)).runs
    x = d[["x1", "x2"]].to_numpy()
    fit = multiplegt_dyn(d["y"], d["unit"], d["period"], d["treatment"], 3, 2, controls=x)
    np.testing.assert_allclose(run.result.table["estimate"], fit.estimate, atol=1e-12)
    html = next(p for p in pe.report(ev, tmp_path / "out") if p.suffix == ".html").read_text()
    assert "Net of x1, x2" in html


def test_continuous_start_through_the_api_and_a_design_file(tmp_path):
    """`continuous` (starting treatments that all differ) from the Python API gives the
    authors' rows, with covariates too; from a design file the engine's rows, and the report
    says LAs are compared whatever their start. Without it, no two LAs share a start, so no
    effect can be estimated."""
    d = _panel("continuous_start_x")
    kwargs = dict(outcome="y", unit="unit", time="period", treatment="treatment")
    for case, extra in (
        ("continuous_2_normalized", dict(continuous=2, normalized=True)),
        ("continuous_1_controls", dict(continuous=1, covariates=("x1", "x2"))),
    ):
        ref, joint = _reference(case)
        res = pe.did_multiplegt_dyn(d, **kwargs, **extra, inference="cluster_robust")
        np.testing.assert_allclose(res.table["estimate"], ref["estimate"], rtol=TOL, atol=TOL)
        np.testing.assert_allclose(res.table["std_error"], ref["std_error"], rtol=TOL)
        assert res.facts.placebo_test["p_value"] == pytest.approx(joint, rel=TOL)
        assert res.facts.continuous == extra["continuous"]
    with pytest.raises(EstimationError, match="no effect can be estimated"):
        pe.did_multiplegt_dyn(d, **kwargs)
    starts = d[d["treatment"] != d.groupby("unit")["treatment"].transform("first")]
    starts = starts.groupby("unit")["period"].min()
    waves = "\n".join(
        f"  - {{wave: s{s}, start: {s}, units: [{', '.join(sorted(g.index))}]}}"
        for s, g in starts.groupby(starts)
    )
    path = tmp_path / "continuous.yaml"
    text = DESIGN.format(waves=waves, extra="")
    path.write_text(text.replace("placebo: 2}", "placebo: 2, continuous: 1}"))
    (run,) = (ev := pe.evaluate(path, d)).runs
    fit = multiplegt_dyn(d["y"], d["unit"], d["period"], d["treatment"], 3, 2, continuous=1)
    np.testing.assert_allclose(run.result.table["estimate"], fit.estimate, atol=1e-12)
    html = next(p for p in pe.report(ev, tmp_path / "out") if p.suffix == ".html").read_text()
    assert "compared whatever their starting treatment" in html


def test_design_with_pauses_and_a_staggered_estimator_is_refused(tmp_path):
    path, d = _pausing_design(tmp_path, "  - {id: cs, estimator: callaway_santanna}")
    with pytest.raises(DataError) as err:
        pe.evaluate(path, d)
    assert "switches off" in str(err.value) and "callaway_santanna" in str(err.value)


def test_less_conservative_se_with_clusters():
    """less_conservative_se with the authors' `cluster`: with each unit its own cluster the
    rows equal the unclustered ones (to 1e-12), which match the port (intensity_lcs); with
    LAs in clusters of four, each path's degrees of freedom count its clusters. The port's run
    (intensity_lcs_cluster) is not the reference: it counts a path's clusters with polars'
    n_unique over all the path's rows, whose empty value (rows outside the effect) counts as
    one more, so every path has a cluster too many, a switcher is centred on its whole path's
    mean, and one alone on its path is not centred at all (imitating that count reproduced
    its SEs to 1e-10 while developing this; its effect 2 SE is then 0.150 where the clusters
    present give 0.372). The point estimates agree."""
    d = _panel("intensity")
    args = (d["y"], d["unit"], d["period"], d["treatment"], 3, 2)
    plain = multiplegt_dyn(*args, less_conservative_se=True)
    own = multiplegt_dyn(*args, cluster=d["unit"].to_numpy(), less_conservative_se=True)
    np.testing.assert_allclose(own.estimate, plain.estimate, atol=1e-12)
    np.testing.assert_allclose(own.vcov, plain.vcov, atol=1e-12)
    ref, _ = _reference("intensity_lcs")
    np.testing.assert_allclose(np.sqrt(np.diag(own.vcov)), ref["std_error"], rtol=TOL)
    fours = multiplegt_dyn(*args, cluster=d["cluster"].to_numpy(), less_conservative_se=True)
    port, _ = _reference("intensity_lcs_cluster")
    np.testing.assert_allclose(fours.estimate, port["estimate"], rtol=TOL, atol=TOL)
    se = np.sqrt(np.diag(fours.vcov))
    assert se[2] == pytest.approx(0.3717613149452554, rel=1e-10)  # regression pin (ours)
    # placebos keep the baseline × switch date × new level cohorts: as the conservative run
    conservative = multiplegt_dyn(*args, cluster=d["cluster"].to_numpy())
    placebos = fours.lag < 0
    np.testing.assert_allclose(se[placebos], np.sqrt(np.diag(conservative.vcov))[placebos])
    assert not np.allclose(se[~placebos], np.sqrt(np.diag(conservative.vcov))[~placebos])


def test_less_conservative_se_through_the_api_and_a_design(tmp_path):
    """`less_conservative_se=True` from the Python API with the analytic variance (asked for,
    or the default with 26 switching LAs) gives the port's rows (intensity_lcs, to 1e-10) and
    says so in the inference label; where the default is the comparison-pooled variance (7
    treated LAs) the SEs are unchanged and a warning says the option changes nothing there; a
    design file takes it as an option."""
    d = _panel("intensity")
    kwargs = dict(outcome="y", unit="unit", time="period", treatment="treatment")
    res = pe.did_multiplegt_dyn(d, **kwargs, less_conservative_se=True, inference="cluster_robust")
    ref, joint = _reference("intensity_lcs")
    np.testing.assert_allclose(res.table["estimate"], ref["estimate"], rtol=TOL, atol=TOL)
    np.testing.assert_allclose(res.table["std_error"], ref["std_error"], rtol=TOL)
    assert res.facts.placebo_test["p_value"] == pytest.approx(joint, rel=TOL)
    assert "less_conservative_se" in res.inference.label
    assert res.inference.chosen_by_default is False
    # 26 LAs switch: the default is the analytic variance, so the option applies
    default = pe.did_multiplegt_dyn(d, **kwargs, less_conservative_se=True)
    np.testing.assert_allclose(default.table["std_error"], ref["std_error"], rtol=TOL)
    # 7 treated LAs: the default is the comparison-pooled variance, which it does not change
    d = _panel("la_absorbing")
    default = pe.did_multiplegt_dyn(d, **kwargs, less_conservative_se=True)
    plain = pe.did_multiplegt_dyn(d, **kwargs)
    assert default.inference.key == "pooled_panel"
    np.testing.assert_array_equal(default.table["std_error"], plain.table["std_error"])
    assert any("less_conservative_se changes only the analytic" in w for w in default.warnings)
    assert not any("less_conservative_se" in w for w in plain.warnings + res.warnings)
    path, data = _pausing_design(tmp_path)
    text = path.read_text().replace(
        "options: {effects: 3, placebo: 2}",
        "options: {effects: 3, placebo: 2, less_conservative_se: true}\n"
        "    inference: {method: cluster_robust}",
    )
    assert text != path.read_text()
    path.write_text(text)
    (run,) = pe.evaluate(path, data).runs
    fit = multiplegt_dyn(
        data["y"],
        data["unit"],
        data["period"],
        data["treatment"],
        3,
        2,
        less_conservative_se=True,
    )
    assert "less_conservative_se" in run.result.inference.label
    np.testing.assert_allclose(run.result.table["estimate"], fit.estimate, atol=1e-12)
    # the option reaches the engine: the SEs are the option's, not the default cohorts'
    se = np.sqrt(np.diag(fit.vcov))
    np.testing.assert_allclose(run.result.table["std_error"], se, rtol=1e-12)


BY_PATH = {  # run → (panel, effects, placebos, by_path, clustered by region, other options)
    "switch_on_off_pause_paths": ("switch_on_off_pause", 2, 1, "all", False, {}),
    "missing_outcomes_paths": ("missing_outcomes", 3, 2, 2, False, {}),
    "no_never_switchers_paths": ("no_never_switchers", 2, 1, "all", False, {}),
    "intensity_paths": ("intensity", 2, 1, "all", False, {}),
    "la_absorbing_paths": ("la_absorbing", 3, 2, 1, False, {}),
    "switch_on_off_pause_paths_cluster": ("switch_on_off_pause", 2, 1, "all", True, {}),
    "intensity_paths_normalized": ("intensity", 2, 1, "all", False, {"normalized": True}),
    "switch_on_off_pause_paths_trends": (
        "switch_on_off_pause",
        2,
        1,
        "all",
        False,
        {"trends_lin": True},
    ),
    "switch_on_off_pause_paths_w": ("switch_on_off_pause", 2, 1, "all", False, {"weighted": True}),
    "switch_on_off_pause_x_paths_controls": (
        "switch_on_off_pause_x",
        2,
        1,
        "all",
        False,
        {"covariates": ("x1", "x2")},
    ),
    "switch_on_off_pause_paths_regions": (
        "switch_on_off_pause",
        2,
        1,
        "all",
        False,
        {"trends_nonparam": "region"},
    ),
}


def _port_term(row: str) -> str:
    """The port's row name as this table's term: Effect_2 → effect 2."""
    if row == "Average_Total_Effect":
        return "average total effect"
    kind, number = row.split("_")
    return f"{kind.lower()} {number}"


@pytest.mark.parametrize("run", sorted(BY_PATH))
def test_by_path_reproduces_the_authors_paths(run):
    """by_path: every path the authors' port estimates (make_by_path_values.py), in its
    order, with its estimates, analytic SEs and switchers (TOL), after the overall rows,
    which stay as without by_path; a path the port cannot estimate (its design restriction
    fails) is listed with the reason and has no rows. Also per unit of treatment, with a
    linear trend for each LA, weighted, net of covariates and within regions."""
    data, effects, placebo, by_path, clustered, extra = BY_PATH[run]
    ref = pd.read_csv(REF / "by_path_values.csv")
    ref = ref[ref["run"] == run]
    d = _panel(data)
    kwargs = dict(COLUMNS, region="cluster")
    if "trends_nonparam" in extra:
        kwargs["region"] = "stratum"
    if "weighted" in extra:  # the port's weight w on y: the rate (y + 20) per 10,000 of w
        d["n"] = (d["y"] + 20) * d["w"] / 1e4
        kwargs |= dict(outcome="rate", counts="n", population="w")
    inference = Inference(method="cluster_robust", cluster="region" if clustered else "unit")
    opts = dict(effects=effects, placebo=placebo, inference=inference, **extra)
    res = pe.did_multiplegt_dyn(d, **kwargs, **opts, by_path=by_path)
    plain = pe.did_multiplegt_dyn(d, **kwargs, **opts)
    table = res.table.set_index("term")
    overall = table.iloc[: len(plain.table)]
    np.testing.assert_array_equal(overall.index, plain.table["term"])
    np.testing.assert_allclose(overall["estimate"], plain.table["estimate"], rtol=1e-14)
    np.testing.assert_allclose(overall["std_error"], plain.table["std_error"], rtol=1e-12)
    terms = [f"path {p}: {_port_term(r)}" for p, r in zip(ref["path"], ref["row"], strict=True)]
    assert list(table.index[len(plain.table) :]) == terms
    got = table.loc[terms]
    np.testing.assert_allclose(got["estimate"], ref["estimate"], rtol=TOL, atol=TOL)
    np.testing.assert_allclose(got["std_error"], ref["std_error"], rtol=TOL)
    np.testing.assert_array_equal(got["n_units"], ref["switchers"])
    assert got["event_time"].isna().all()  # not event-study rows
    estimated = ref.groupby("path", sort=False)["groups"].first()
    facts = {p["path"]: p for p in res.facts.paths}
    for path, groups in estimated.items():
        assert facts[path]["units"] == groups and facts[path]["note"] == ""
    for path in set(facts) - set(estimated.index):
        assert facts[path]["rows"] == 0 and "no effect can be estimated" in facts[path]["note"]


def test_by_path_in_a_design_file_and_its_report(tmp_path):
    """by_path from a design file: the default variance (cohort-stratified here) covers the
    paths' rows as the overall ones (the same as the Python API), the event-study chart keeps
    the overall rows, and the report names each path with its LAs."""
    path, d = _pausing_design(tmp_path)
    path.write_text(
        path.read_text().replace("{effects: 3, placebo: 2}", "{effects: 2, placebo: 1, by_path: 2}")
    )
    ev = pe.evaluate(path, d)
    (run,) = ev.runs
    res = run.result
    assert res.inference.key == "cohort_stratified"
    terms = list(res.table["term"])
    assert terms[:4] == ["average total effect", "effect 1", "effect 2", "placebo 1"]
    paths = [p["path"] for p in res.facts.paths]
    assert len(paths) == 2 and terms[4] == f"path {paths[0]}: average total effect"
    assert np.isfinite(res.table["std_error"]).all() and res.vcov.shape == (len(terms),) * 2
    api = pe.did_multiplegt_dyn(
        d,
        **COLUMNS,
        effects=2,
        placebo=1,
        by_path=2,
    )
    np.testing.assert_array_equal(api.table["estimate"], res.table["estimate"])
    np.testing.assert_array_equal(api.table["std_error"], res.table["std_error"])
    html = next(p for p in pe.report(ev, tmp_path / "out") if p.suffix == ".html").read_text()
    first = res.facts.paths[0]
    assert f"Path {first['path']} ({first['units']} LAs): 4 rows." in html
    assert f"path {first['path']}: effect 1" in html


HET = {  # run → (panel, effects, placebos, covariates, compared within regions)
    "missing_outcomes_het": ("missing_outcomes", 3, 2, ("het_a", "het_b"), False),
    "la_absorbing_het": ("la_absorbing", 3, 2, ("het_a", "het_b"), False),
    "missing_treatment_het": ("missing_treatment", 3, 2, ("het_a", "het_b"), False),
    "missing_treatment_het_regions": ("missing_treatment", 3, 2, ("het_a",), True),
}


def _with_het(d: pd.DataFrame) -> pd.DataFrame:
    """make_predict_het_values.py's covariates: het_a = sin(k), het_b = k mod 3."""
    k = d["unit"].str.extract(r"(\d+)$")[0].astype(int)
    return d.assign(het_a=np.sin(k), het_b=(k % 3).astype(float))


def _het(res) -> pd.DataFrame:
    """predict_het's rows keyed as the port's: effect ℓ, placebo ℓ as −ℓ."""
    got = pd.DataFrame(res.facts.heterogeneity)
    sign = np.where(got["row"].str.startswith("effect"), 1, -1)
    return got.assign(effect=sign * got["row"].str.split().str[1].astype(int))


@pytest.mark.parametrize("run", sorted(HET))
def test_predict_het_reproduces_the_authors_regressions(run):
    """predict_het: each effect's and placebo's coefficients, HC2 SEs, LAs and joint F test
    equal the authors' port (make_predict_het_values.py) to 1e-10 (SEs and p-values 1e-9:
    measured 6.9e-15 and 1.2e-12), NaN where it has no residual df as theirs; with regions
    (trends_nonparam) the port gives no placebo rows (its F test fails silently on a cell of
    one LA), which are here, finite."""
    data, effects, placebo, covariates, regions = HET[run]
    ref = pd.read_csv(REF / "predict_het_values.csv")
    ref = ref[ref["run"] == run]
    extra = dict(region="stratum", trends_nonparam="region") if regions else {}
    res = pe.did_multiplegt_dyn(
        _with_het(_panel(data)),
        **COLUMNS,
        inference=Inference(method="cluster_robust"),
        effects=effects,
        placebo=placebo,
        predict_het=covariates,
        **extra,
    )
    got = _het(res)
    both = ref.merge(got, on=["effect", "covariate"], suffixes=("_ref", ""), validate="1:1")
    assert len(both) == len(ref)
    np.testing.assert_allclose(both["estimate"], both["estimate_ref"], rtol=TOL, atol=TOL)
    np.testing.assert_allclose(both["std_error"], both["std_error_ref"], rtol=1e-9)
    np.testing.assert_allclose(both["p_joint"], both["p_joint_ref"], rtol=1e-9)
    np.testing.assert_array_equal(both["n"], both["n_ref"])
    extra_rows = got[
        ~got.set_index(["effect", "covariate"]).index.isin(
            ref.set_index(["effect", "covariate"]).index
        )
    ]
    assert (extra_rows["effect"] < 0).all() and (len(extra_rows) > 0) == regions
    assert np.isfinite(extra_rows[["std_error", "p_joint"]].to_numpy()).all()
    lo, hi = both["conf_low"], both["conf_high"]
    half = stats.t.ppf(0.975, both["df"]) * both["std_error"]
    np.testing.assert_allclose(hi - lo, 2 * half, rtol=1e-12)


def test_predict_het_leaves_an_la_alone_in_its_cell_out_of_the_variance_only():
    """On the pauses panel the port stops (an LA alone in its switch-date cell has HC2
    leverage 1 and residual 0). Here the coefficients are the regression's with every LA, the
    residual df the same, and the SE HC2's limit, from the LAs that share a cell."""
    import statsmodels.api as sm

    d = _with_het(_panel("switch_on_off_pause"))
    res = pe.did_multiplegt_dyn(
        d,
        **COLUMNS,
        effects=2,
        placebo=1,
        predict_het=("het_a",),
    )
    row = _het(res).set_index("effect").loc[1]
    fit = multiplegt_dyn(d["y"], d["unit"], d["period"], d["treatment"], 2, 1)
    assert row["n"] == fit.n_switchers[1]  # every LA counted in effect 1
    # the regression with every LA (statsmodels' pseudo-inverse): the same coefficient
    units = d.pivot(index="unit", columns="period", values="treatment")
    y = d.pivot(index="unit", columns="period", values="y")
    changes = units.ne(units.iloc[:, 0], axis=0)
    f = changes.to_numpy().argmax(axis=1)  # 0-based F_g
    moved = changes.any(axis=1).to_numpy() & (f >= 1)
    idx = np.flatnonzero(moved)
    base = units.to_numpy()[idx, f[idx] - 1]
    up = units.to_numpy()[idx, f[idx]] > base
    change = y.to_numpy()[idx, f[idx]] - y.to_numpy()[idx, f[idx] - 1]
    het_a = np.sin(np.arange(len(units)))[idx]
    cells = pd.factorize(pd.Series(list(zip(f[idx], base, up, strict=True))))[0]
    x = np.column_stack([het_a, cells[:, None] == np.unique(cells)[None, :]]).astype(float)
    ok = ~np.isnan(change)
    full = sm.OLS(np.where(up, 1, -1)[ok] * change[ok], x[ok]).fit()
    assert int(ok.sum()) == row["n"]
    assert row["estimate"] == pytest.approx(full.params[0], rel=1e-10)
    assert row["df"] == full.df_resid and np.isfinite(row["std_error"])
    assert (np.bincount(cells[ok]) == 1).sum() == 6  # six LAs alone in their cell
    # with them, HC2 is 0/0 for each: here its limit (statsmodels' pseudo-inverse leverage
    # stops just short of 1 on this design; the port's formula reaches 1 and stops on NaN)
    hc2 = full.get_robustcov_results("HC2").bse[0]
    assert row["std_error"] == pytest.approx(hc2, rel=1e-10)


def test_predict_het_refuses_a_covariate_that_changes_and_unchecked_combinations():
    d = _with_het(_panel("switch_on_off_pause"))
    kwargs = dict(COLUMNS)
    moving = d.assign(het_a=d["het_a"] + d["period"])
    with pytest.raises(EstimationError, match="'het_a' changes over time in u000"):
        pe.did_multiplegt_dyn(moving, **kwargs, predict_het=("het_a",))
    with pytest.raises(EstimationError, match="predict_het cannot yet be combined"):
        pe.did_multiplegt_dyn(d, **kwargs, predict_het=("het_a",), trends_lin=True)


def test_predict_het_in_a_design_file_and_its_report(tmp_path):
    """predict_het from a design file (another outcome of the design, as covariates): the
    pipeline equals the Python API, the JSON carries the rows and the report says what they
    are."""
    path, d = _pausing_design(tmp_path)
    d = _with_het(d)
    both = "outcomes: [{column: y}, {column: het_a}]"
    text = path.read_text().replace("outcomes: [{column: y}]", both)
    path.write_text(
        text.replace("{effects: 3, placebo: 2}", "{effects: 2, placebo: 1, predict_het: [het_a]}")
    )
    ev = pe.evaluate(path, d)
    run = next(r for r in ev.runs if r.outcome == "y")
    api = pe.did_multiplegt_dyn(
        d,
        **COLUMNS,
        effects=2,
        placebo=1,
        predict_het=("het_a",),
    )
    assert run.result.facts.heterogeneity == api.facts.heterogeneity
    assert [h["row"] for h in api.facts.heterogeneity] == ["effect 1", "effect 2", "placebo 1"]
    files = pe.report(ev, tmp_path / "out")
    html = next(p for p in files if p.suffix == ".html").read_text()
    assert "How the effects vary with het_a among the LAs that changed" in html
    assert "Effect 1, het_a: " in html and "an association, not the covariate" in html
    data = json.loads(next(p for p in files if p.suffix == ".json").read_text())
    (rows,) = [a["diagnostics"]["heterogeneity"] for a in data["analyses"] if a["outcome"] == "y"]
    assert [r["covariate"] for r in rows] == ["het_a"] * 3


BY = {  # run → (panel, effects, placebos)
    "switch_on_off_pause_by": ("switch_on_off_pause", 3, 2),
    "intensity_by": ("intensity", 2, 1),
    "la_absorbing_by": ("la_absorbing", 3, 2),
    "missing_outcomes_by": ("missing_outcomes", 2, 1),
}


@pytest.mark.parametrize("run", sorted(BY))
def test_by_reproduces_the_authors_subgroups(run):
    """by: each value of the unit-table column (the panels' stratum, as region) estimated on
    its LAs alone equals the authors' port (make_by_values.py) to TOL, rows after the overall
    ones, which stay as without by; a value without switchers is named not estimable."""
    data, effects, placebo = BY[run]
    ref = pd.read_csv(REF / "by_values.csv")
    ref = ref[ref["run"] == run]
    kwargs = dict(COLUMNS, region="stratum")
    opts = dict(effects=effects, placebo=placebo, inference=Inference(method="cluster_robust"))
    res = pe.did_multiplegt_dyn(_panel(data), **kwargs, **opts, by="region")
    plain = pe.did_multiplegt_dyn(_panel(data), **kwargs, **opts)
    n = len(plain.table)
    np.testing.assert_array_equal(res.table["estimate"].iloc[:n], plain.table["estimate"])
    terms = [f"region {v}: {_port_term(r)}" for v, r in zip(ref["value"], ref["row"], strict=True)]
    got = res.table.set_index("term").iloc[n:]
    assert list(got.index) == terms
    np.testing.assert_allclose(got["estimate"], ref["estimate"], rtol=TOL, atol=TOL)
    np.testing.assert_allclose(got["std_error"], ref["std_error"], rtol=TOL)
    np.testing.assert_array_equal(got["n_units"], ref["switchers"])
    facts = {s["region"]: s for s in res.facts.subgroups}
    assert set(facts) == {"s0", "s1", "s2"}
    for value, part in facts.items():
        assert (part["rows"] > 0) == (value in set(ref["value"]))
    assert sum(p["units"] for p in facts.values()) == _panel(data)["unit"].nunique()


def test_by_and_by_path_together_are_refused():
    with pytest.raises(DesignError, match="by_path and by cannot be combined"):
        pe.did_multiplegt_dyn(
            _panel("switch_on_off_pause"),
            **COLUMNS,
            region="stratum",
            by="region",
            by_path=2,
        )


def test_by_in_a_design_file_and_its_report(tmp_path):
    """by: region from a design file (the data's region column): the pipeline equals the
    Python API and the report names each region with its LAs."""
    path, d = _pausing_design(tmp_path)
    regions = "treatment: treatment, region: stratum}"
    text = path.read_text().replace("treatment: treatment}", regions)
    path.write_text(
        text.replace("{effects: 3, placebo: 2}", "{effects: 2, placebo: 1, by: region}")
    )
    ev = pe.evaluate(path, d)
    (run,) = ev.runs
    api = pe.did_multiplegt_dyn(
        d,
        **COLUMNS,
        region="stratum",
        effects=2,
        placebo=1,
        by="region",
    )
    np.testing.assert_array_equal(api.table["estimate"], run.result.table["estimate"])
    np.testing.assert_array_equal(api.table["std_error"], run.result.table["std_error"])
    html = next(p for p in pe.report(ev, tmp_path / "out") if p.suffix == ".html").read_text()
    assert "By region (de Chaisemartin" in html
    for part in run.result.facts.subgroups:
        assert f"region {part['region']} ({part['units']} LAs): " in html


def test_predict_het_says_what_it_cannot_estimate_and_whom_it_leaves_out():
    """A covariate fixed within each switch date (a wave's attribute) is absorbed by the
    cells: not estimable, with the reason (the port's pseudo-inverse printed a coefficient
    with p = 0.047); LAs without a value are left out by name; one column name is a list."""
    d = _with_het(_panel("missing_outcomes"))
    on = d["treatment"].ne(d.groupby("unit")["treatment"].transform("first"))
    first = d[on].groupby("unit")["period"].min()
    kwargs = dict(COLUMNS)
    wave = d.assign(wave=d["unit"].map(first).fillna(0.0))
    res = pe.did_multiplegt_dyn(wave, **kwargs, effects=3, placebo=2, predict_het="wave")
    rows = res.facts.heterogeneity
    assert {r["covariate"] for r in rows} == {"wave"} and len(rows) == 5
    assert all(np.isnan(r["std_error"]) and "do not vary within" in r["note"] for r in rows)
    gone = d.assign(het_a=d["het_a"].where(~d["unit"].isin(["u003", "u007"])))
    res = pe.did_multiplegt_dyn(gone, **kwargs, effects=3, placebo=2, predict_het=("het_a",))
    (line,) = [w for w in res.warnings if "left out of predict_het" in w]
    named = line[line.rindex("(") + 1 : -2].split(", ")
    assert named and set(named) <= {"u003", "u007"}
    assert line.startswith(f"{len(named)} switching unit(s)")
    full = _het(pe.did_multiplegt_dyn(d, **kwargs, effects=3, placebo=2, predict_het="het_a"))
    assert (_het(res)["n"].to_numpy() <= full["n"].to_numpy()).all()


def test_by_path_without_every_treatment_keeps_the_overall_rows():
    """A treatment missing in one LA-period: the paths cannot be formed, the overall rows
    stay and a warning says why."""
    d = _panel("switch_on_off_pause")
    d = d[~((d["unit"] == "u003") & (d["period"] == 8))]
    kwargs = dict(COLUMNS)
    res = pe.did_multiplegt_dyn(d, **kwargs, by_path="all")
    plain = pe.did_multiplegt_dyn(d, **kwargs)
    np.testing.assert_array_equal(res.table["estimate"], plain.table["estimate"])
    assert res.facts.paths == []
    assert any(w.startswith("No rows by treatment path: ") for w in res.warnings)


def test_a_path_with_the_overall_switchers_has_their_covariance():
    """The LA panel has one path; with same_switchers the path's rows are the overall rows,
    so the joint analytic covariance repeats the overall block across them (the influences
    summed in the same clusters, here the units)."""
    d = _panel("la_absorbing")
    res = pe.did_multiplegt_dyn(
        d,
        **COLUMNS,
        inference="cluster_robust",
        same_switchers=True,
        by_path=1,
    )
    k = len(res.table) // 2
    np.testing.assert_allclose(res.table["estimate"].iloc[k:], res.table["estimate"].iloc[:k])
    v = res.vcov
    np.testing.assert_allclose(v[:k, k:], v[:k, :k], rtol=1e-12)
    np.testing.assert_allclose(v[k:, k:], v[:k, :k], rtol=1e-12)


def test_a_design_of_dcdh_analyses_needs_no_never_treated_las(tmp_path):
    """Every LA changes at some date: a design whose analyses are all did_multiplegt_dyn
    runs (its comparisons are the LAs not yet changed) and equals the Python API."""
    d = _panel("no_never_switchers")
    first_period = d[d["period"] == 1].set_index("unit")["treatment"]
    d = d[d["unit"].map(first_period) == 0].reset_index(drop=True)
    starts = d[d["treatment"] == 1].groupby("unit")["period"].min()
    assert starts.size == d["unit"].nunique()  # no never-treated LA
    waves = "\n".join(
        f"  - {{wave: s{s}, start: {s}, units: [{', '.join(sorted(g.index))}]}}"
        for s, g in starts.groupby(starts)
    )
    path = tmp_path / "all_change.yaml"
    text = DESIGN.format(waves=waves, extra="").replace("min_units: 2", "min_units: 1")
    path.write_text(text.replace("{effects: 3, placebo: 2}", "{effects: 2, placebo: 1}"))
    (run,) = pe.evaluate(path, d).runs
    assert run.status == "ok"
    api = pe.did_multiplegt_dyn(
        d, outcome="y", unit="unit", time="period", treatment="treatment", effects=2, placebo=1
    )
    np.testing.assert_array_equal(run.result.table["estimate"], api.table["estimate"])


DESIGN_RUNS = {  # run → (panel, effects, other options): make_design_values.py
    "switch_on_off_pause_design": ("switch_on_off_pause", 2, {}),
    "intensity_design": ("intensity", 2, {}),
    "no_never_switchers_design": ("no_never_switchers", 3, {}),
    "la_absorbing_design": ("la_absorbing", 3, {}),
    "missing_treatment_design": ("missing_treatment", 2, {}),
    "intensity_gaps_design": ("intensity_gaps", 2, {}),
    "continuous_back_design": ("continuous_back", 2, {"continuous": 1}),
    "intensity_design_regions": (
        "intensity",
        2,
        {"region": "stratum", "trends_nonparam": "region"},
    ),
}


@pytest.mark.parametrize("run", sorted(DESIGN_RUNS))
def test_treatment_paths_are_the_authors_design(run):
    """Every dCDH result lists the switchers' treatment paths over the effects estimated: the
    paths and their LAs equal the authors' `design` table (make_design_values.py), most
    common first (ties here in label order, the port's in its own), over the LAs followed
    that long while an LA of their start is unchanged; the others are counted apart. With
    missing treatments, the authors' rules for them; with continuous, the binarised paths;
    with trends_nonparam, comparisons within regions."""
    data, effects, extra = DESIGN_RUNS[run]
    ref = pd.read_csv(REF / "design_values.csv")
    ref = ref[ref["run"] == run]
    d = _panel(data)
    kwargs = dict(COLUMNS, **extra)
    res = pe.did_multiplegt_dyn(d, **kwargs, effects=effects, placebo=1)
    got = res.facts.treatment_paths
    # the port prints a switch-off's binarised start as -0
    expected = dict(zip(ref["path"].str.replace("-0,", "0,"), ref["groups"], strict=True))
    assert {p["path"]: p["units"] for p in got} == expected
    counts = [p["units"] for p in got]
    order = [(-p["units"], p["path"]) for p in got]  # most common first, ties by label
    assert order == sorted(order)
    # the first effect's switchers: at least those followed, at most all switchers
    first = pe.did_multiplegt_dyn(d, **kwargs, effects=1, placebo=0).table["n_units"].iloc[1]
    assert sum(counts) <= first <= sum(counts) + res.facts.late_switchers
    if run == "no_never_switchers_design":  # u007, u009, u010 change in period 5 or 6; the
        assert res.facts.late_switchers == 3  # last LA of their start unchanged: period 6


BOOT_CASES = {  # bootstrap_values.csv's cases: (panel, weighted, drawn column)
    "switch_on_off_pause": ("switch_on_off_pause", False, "unit"),
    "switch_on_off_pause_cluster": ("switch_on_off_pause", False, "cluster"),
    "intensity_weighted": ("intensity", True, "unit"),
    "la_absorbing_region": ("la_absorbing", False, "cluster"),
}


@pytest.mark.parametrize("case", BOOT_CASES)
def test_a_bootstrap_draw_is_the_authors_estimator_on_the_stacked_clusters(case):
    """R's bootstrap stacks a cluster drawn m times m times under its own labels and collapses
    the repeated unit-periods into one cell of m times the weight; ours multiplies each cell's
    weight by m. Against the authors' port on the stacked rows (make_bootstrap_values.py),
    every row of every draw to 1e-10, and the draws the port cannot estimate (no switcher
    drawn) are the ones ours cannot either."""
    name, weighted, by = BOOT_CASES[case]
    data = _panel(name)
    draws = pd.read_csv(REF / "bootstrap_draws.csv")
    ref = pd.read_csv(REF / "bootstrap_values.csv")
    labels = sorted(data[by].unique())
    for b, drawn in draws[draws["case"] == case].groupby("draw"):
        times = np.asarray(drawn["times"])  # in the clusters' sorted order
        per_row = data[by].map(dict(zip(labels, times, strict=True))).to_numpy()
        rows = per_row > 0
        base = data["w"].to_numpy() if weighted else 1.0
        expected = ref[(ref["case"] == case) & (ref["draw"] == b)]
        try:
            fit = multiplegt_dyn(
                data["y"].to_numpy()[rows],
                data["unit"].to_numpy()[rows],
                data["period"].to_numpy()[rows],
                data["treatment"].to_numpy()[rows],
                3,
                2,
                weights=(base * per_row)[rows],
            )
        except EstimationError:
            assert expected.empty, (case, b)
            continue
        got = dict(zip(map(_port_term, expected["row"]), expected["estimate"], strict=True))
        assert fit.labels == tuple(got), (case, b)
        np.testing.assert_allclose(fit.estimate, list(got.values()), rtol=TOL, atol=TOL)
    assert ref[ref["case"] == case]["draw"].nunique() == (5 if case == "la_absorbing_region" else 8)


def test_cluster_bootstrap_through_the_api():
    """inference {"method": "cluster_bootstrap", "draws": B}: each row's standard error is the
    standard deviation (ddof 1) of B refits on units drawn with replacement from the run's
    seed, with a normal interval, as did_multiplegt_dyn's; the same seed gives the same
    numbers; with region clusters the label counts them and says what was drawn; the
    bootstrap with by or by_path is refused."""
    d = _panel("switch_on_off_pause")
    kwargs = dict(outcome="y", unit="unit", time="period", treatment="treatment")
    boot = {"method": "cluster_bootstrap", "draws": 120}
    res = pe.did_multiplegt_dyn(d, **kwargs, inference=boot, seed=11)
    analytic = pe.did_multiplegt_dyn(d, **kwargs, inference="cluster_robust")
    np.testing.assert_allclose(res.table["estimate"], analytic.table["estimate"], atol=1e-12)
    units = sorted(d["unit"].unique())
    estimates = []
    for times in cluster_multiplicities(len(units), 120, 11):
        per_row = d["unit"].map(dict(zip(units, times, strict=True))).to_numpy()
        rows = per_row > 0
        fit = multiplegt_dyn(
            d["y"].to_numpy()[rows],
            d["unit"].to_numpy()[rows],
            d["period"].to_numpy()[rows],
            d["treatment"].to_numpy()[rows],
            3,
            2,
            weights=per_row[rows].astype(float),
        )
        assert fit.labels == tuple(res.table["term"])
        estimates.append(fit.estimate)
    sd = np.std(estimates, axis=0, ddof=1)
    np.testing.assert_allclose(res.table["std_error"], sd, rtol=1e-12)
    z = stats.norm.ppf(0.975)
    np.testing.assert_allclose(res.table["ci_upper"], res.table["estimate"] + z * sd, rtol=1e-12)
    assert np.isinf(res.table["df"]).all() and res.inference.key == "cluster_bootstrap"
    assert not res.inference.chosen_by_default
    assert res.inference.label.startswith(
        "cluster bootstrap: 30 units drawn with replacement 120 times (seed 11)"
    )
    again = pe.did_multiplegt_dyn(d, **kwargs, inference=boot, seed=11)
    np.testing.assert_array_equal(again.table["std_error"], res.table["std_error"])
    # the SE is within sampling error of the analytic one on this panel (30 units)
    ratio = res.table["std_error"] / analytic.table["std_error"]
    assert ((ratio > 0.7) & (ratio < 1.5)).all(), ratio
    regional = pe.did_multiplegt_dyn(
        d, **kwargs, region="cluster", cluster="region", inference=boot, seed=11
    )
    assert regional.inference.label.startswith(
        "cluster bootstrap: 10 region clusters drawn with replacement 120 times"
    )
    assert any("only 10 clusters" in w for w in regional.warnings)
    with pytest.raises(DesignError, match="re-estimates the overall rows only"):
        pe.did_multiplegt_dyn(d, **kwargs, inference=boot, by_path=2)
    with pytest.raises(DesignError, match="argument inference: draws: Input should be greater"):
        pe.did_multiplegt_dyn(d, **kwargs, inference={"method": "cluster_bootstrap", "draws": 5})
    with pytest.raises(DesignError, match="'multiplier_bootstrap' is not available for did_mu"):
        pe.did_multiplegt_dyn(d, **kwargs, inference={"method": "multiplier_bootstrap"})


def test_cluster_bootstrap_from_a_design_file_and_its_report(tmp_path):
    """A design's inference block asks for the bootstrap: the pipeline equals the API with the
    design's seed, the report names the method and its validity, and the same seed writes the
    same report byte for byte."""
    extra = "    inference: {method: cluster_bootstrap, draws: 99}"
    path, d = _pausing_design(tmp_path, extra)
    text = path.read_text().replace("pilot: custom", "pilot: custom\nseed: 5")
    path.write_text(text)
    ev = pe.evaluate(path, d)
    (run,) = ev.runs
    api = pe.did_multiplegt_dyn(
        d,
        outcome="y",
        unit="unit",
        time="period",
        treatment="treatment",
        inference={"method": "cluster_bootstrap", "draws": 99},
        seed=5,
    )
    np.testing.assert_array_equal(run.result.table["std_error"], api.table["std_error"])
    assert run.result.inference.key == "cluster_bootstrap"
    first = [p.read_bytes() for p in pe.report(ev, tmp_path / "a")]
    html = next(p for p in pe.report(pe.evaluate(path, d), tmp_path / "b") if p.suffix == ".html")
    assert html.read_text().count("cluster bootstrap: 25 units drawn with replacement 99") >= 1
    assert "The cluster bootstrap redraws whole clusters" in html.read_text()
    assert sorted(first) == sorted(p.read_bytes() for p in (tmp_path / "b").iterdir())
