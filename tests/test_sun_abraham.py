"""Sun–Abraham: Callaway–Sant'Anna closed form, dummy-variable OLS, pyfixest and diff-diff;
the small-sample default against CR2 computed from scratch."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

import pathfinder_eval as pe
from did_helpers import MPDTA, balanced, make_panel, mpdta, single_unit_cohorts, wide_frame
from pathfinder_eval.errors import EstimationError
from pathfinder_eval.estimators.did.sun_abraham import SunAbraham, sun_abraham
from pathfinder_eval.estimators.did.two_way import ABSORBED
from pathfinder_eval.inference.cr2 import cr2_inference
from pathfinder_eval.settings import Inference

ROOT = Path(__file__).resolve().parents[1]
# Same least-squares algebra computed two ways: floating-point rounding only.
EXACT = 1e-8


@pytest.fixture(scope="module")
def mpdta_fit(tmp_path_factory):
    frame, starts = mpdta()
    panel = make_panel(tmp_path_factory.mktemp("sa"), frame, starts)
    return frame, starts, panel, SunAbraham().fit(panel, "y", "sa")


def interactions(res) -> pd.DataFrame:
    return pd.DataFrame(res.diagnostics["interactions"]).set_index(["cohort", "event_time"])


def test_interactions_equal_callaway_santanna_att_gt(mpdta_fit):
    """Never-treated controls, no covariates, balanced: δ_{g,e} = ATT(g, g+e), base g−1."""
    frame, starts, _, res = mpdta_fit
    wide = frame.pivot(index="unit", columns="period", values="y")
    cohort = pd.Series(np.nan, index=wide.index)
    for g, units in starts.items():
        cohort[units] = g
    never = wide[cohort.isna()]
    got = interactions(res)
    assert len(got) == 3 * 4
    for (g, e), row in got.iterrows():
        t, base, treated = int(g + e), int(g - 1), wide[cohort == g]
        att_gt = (treated[t] - treated[base]).mean() - (never[t] - never[base]).mean()
        assert row["estimate"] == pytest.approx(att_gt, abs=EXACT)


def test_event_time_is_cohort_share_weighted(mpdta_fit):
    _, starts, _, res = mpdta_fit
    got = interactions(res)
    table = res.table.set_index("event_time")
    size = {g: len(u) for g, u in starts.items()}
    for e in (-3, 0, 1):
        cells = got.xs(e, level="event_time")
        w = np.array([size[int(g)] for g in cells.index], dtype=float)
        assert table.loc[e, "estimate"] == pytest.approx(
            (w @ cells["estimate"]) / w.sum(), abs=EXACT
        )
    # mpdta's event-study numbers as the literature reports them (universal base period)
    assert table.loc[0, "estimate"] == pytest.approx(-0.0199, abs=5e-5)
    assert table.loc[3, "estimate"] == pytest.approx(-0.1008, abs=5e-5)


def simulated_unbalanced(seed=5):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(30):
        g = [3, 5, np.nan][i % 3]
        a = rng.normal()
        for t in range(1, 8):
            eff = 0.0 if np.isnan(g) or t < g else 0.3 + 0.1 * (t - g) + 0.2 * (g == 5)
            rows.append({"unit": f"u{i:02d}", "period": t, "cohort": g, "y": a + 0.1 * t + eff})
    d = pd.DataFrame(rows)
    d["y"] += rng.normal(scale=0.5, size=len(d))
    return d.drop(index=rng.choice(len(d), 25, replace=False)).reset_index(drop=True)


def test_matches_dummy_variable_ols_on_unbalanced_panel():
    """statsmodels' dummy-variable OLS counts every dummy in CR1's K (nested=False); the
    default leaves out the G − 1 unit dummies nested in the unit clusters, fixest's K."""
    d = simulated_unbalanced()
    res = sun_abraham(d["y"], d["unit"], d["period"], d["cohort"], nested=False)
    rel = d["period"] - d["cohort"]
    d["cell"] = np.where(
        d["cohort"].notna() & (rel != -1), d["cohort"].astype(str) + "_" + rel.astype(str), "ref"
    )
    ols = smf.ols("y ~ C(cell, Treatment('ref')) + C(unit) + C(period)", d).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(d["unit"])[0]}
    )
    names = [
        f"C(cell, Treatment('ref'))[T.{g}_{float(e)}]"
        for g, e in zip(res.cohort, res.rel, strict=True)
    ]
    np.testing.assert_allclose(res.coef, ols.params[names].to_numpy(), atol=EXACT)
    np.testing.assert_allclose(res.vcov, ols.cov_params().loc[names, names].to_numpy(), atol=EXACT)
    nested = sun_abraham(d["y"], d["unit"], d["period"], d["cohort"])
    n, k_all, g = len(d), len(ols.params), d["unit"].nunique()
    factor = (n - k_all) / (n - (k_all - (g - 1)))
    np.testing.assert_allclose(nested.vcov, res.vcov * factor, rtol=1e-12)
    np.testing.assert_allclose(nested.coef, res.coef, rtol=1e-12)


def test_last_treated_controls_drop_periods_from_last_start():
    d = simulated_unbalanced()
    d = d[d["cohort"].notna()].reset_index(drop=True)  # no never-treated units
    res = sun_abraham(d["y"], d["unit"], d["period"], d["cohort"], control="last_treated")
    sub = d[d["period"] < 5].copy()
    rel = sub["period"] - sub["cohort"]
    early = (sub["cohort"] == 3) & (rel != -1)
    sub["cell"] = np.where(early, "3_" + rel.astype(str), "ref")
    ols = smf.ols("y ~ C(cell, Treatment('ref')) + C(unit) + C(period)", sub).fit()
    names = [f"C(cell, Treatment('ref'))[T.3_{float(e)}]" for e in res.rel]
    assert set(res.cohort) == {3.0}
    np.testing.assert_allclose(res.coef, ols.params[names].to_numpy(), atol=EXACT)


@pytest.mark.parametrize(("absorbed", "k_fixef"), [("nested", "nested"), ("counted", "full")])
def test_pyfixest_interaction_regression(mpdta_fit, absorbed, k_fixef):
    """CR1's K leaves out the unit effects nested in the unit clusters, as fixest and Stata
    (and the package's TWFE); it counted them, so its SEs were wider (sqrt((N−K)/(N−K−G+1)));
    absorbed_effects: counted keeps that convention, R lm with vcovCL's."""
    pf = pytest.importorskip("pyfixest")
    frame, starts, panel, res = mpdta_fit
    if absorbed == "counted":
        inference = Inference(method="cluster_robust", absorbed_effects="counted")
        res = SunAbraham(inference=inference).fit(panel, "y", "sa")
    assert "CR1" in res.inference.label and ABSORBED[absorbed] in res.inference.label
    d = frame.copy()
    g = pd.Series({u: s for s, us in starts.items() for u in us})
    d["cohort"] = d["unit"].map(g)
    rel = d["period"] - d["cohort"]
    d["cell"] = np.where(
        d["cohort"].notna() & (rel != -1),
        d["cohort"].fillna(0).astype(int).astype(str) + "_" + rel.fillna(0).astype(int).astype(str),
        "ref",
    )
    fit = pf.feols(
        "y ~ i(cell, ref='ref') | unit + period",
        data=d,
        vcov={"CRV1": "unit"},
        ssc=pf.ssc(k_fixef=k_fixef),
    )
    got = interactions(res)
    for (gg, e), row in got.iterrows():
        name = f"cell::{int(gg)}_{int(e)}"
        assert row["estimate"] == pytest.approx(fit.coef()[name], abs=EXACT)
        assert row["std_error"] == pytest.approx(fit.se()[name], abs=EXACT)


def test_diff_diff_sun_abraham(mpdta_fit):
    dd = pytest.importorskip("diff_diff")
    d = pd.read_csv(MPDTA)
    ref = dd.SunAbraham(cluster="countyreal").fit(
        d, outcome="lemp", unit="countyreal", time="year", first_treat="first.treat"
    )
    table = mpdta_fit[3].table.set_index("event_time")
    ratios = []
    for e, v in ref.event_study_effects.items():
        assert table.loc[int(e), "estimate"] == pytest.approx(v["effect"], abs=EXACT)
        ratios.append(table.loc[int(e), "std_error"] / v["se"])
    att = mpdta_fit[3].table.iloc[0]
    assert att["estimate"] == pytest.approx(ref.overall_att, abs=EXACT)
    ratios.append(att["std_error"] / ref.overall_se)
    # the same small-sample factor (unit effects nested in the clusters not counted): equal
    np.testing.assert_allclose(ratios, 1.0, rtol=1e-8)


def test_share_uncertainty_only_changes_pooled_event_times(mpdta_fit):
    _, _, panel, fixed = mpdta_fit
    shares = SunAbraham(share_uncertainty=True).fit(panel, "y", "sa")
    a, b = fixed.table.set_index("term"), shares.table.set_index("term")
    np.testing.assert_allclose(a["estimate"], b["estimate"], atol=1e-12)
    for e in (-4, 2, 3):  # one cohort only: the share is 1 and carries no uncertainty
        assert a.loc[f"event time {e}", "std_error"] == pytest.approx(
            b.loc[f"event time {e}", "std_error"], rel=1e-10
        )
    assert not np.isclose(a.loc["event time 0", "std_error"], b.loc["event time 0", "std_error"])


def test_invariant_to_row_order_and_unit_labels(tmp_path, mpdta_fit):
    frame, starts, _, base = mpdta_fit
    rng = np.random.default_rng(3)
    names = {u: f"z{i:03d}" for i, u in enumerate(rng.permutation(frame["unit"].unique()))}
    shuffled = frame.sample(frac=1.0, random_state=2).assign(unit=lambda f: f["unit"].map(names))
    before = shuffled.copy()
    new = {s: [names[u] for u in us] for s, us in starts.items()}
    other = SunAbraham().fit(make_panel(tmp_path, shuffled, new), "y", "sa")
    pd.testing.assert_frame_equal(base.table, other.table, check_exact=False, atol=1e-10, rtol=0)
    # exact: the caller's frame must be untouched, not merely close
    pd.testing.assert_frame_equal(shuffled, before)


def few_treated(seed=7):
    """30 units, periods 1–7, cohorts 3 (4 units) and 5 (3 units), 23 never treated, 20 cells
    dropped: 7 treated units, so the default is the small-sample one."""
    rng = np.random.default_rng(seed)
    starts = {3: [f"u{i:02d}" for i in range(4)], 5: [f"u{i:02d}" for i in range(4, 7)]}
    start = {u: g for g, us in starts.items() for u in us}
    rows = []
    for i in range(30):
        u, a = f"u{i:02d}", rng.normal()
        for t in range(1, 8):
            eff = 0.4 if u in start and t >= start[u] else 0.0
            rows.append({"unit": u, "period": t, "y": a + 0.1 * t + eff + rng.normal(scale=0.6)})
    frame = pd.DataFrame(rows)
    return frame.drop(index=rng.choice(len(frame), 20, replace=False)), starts


def independent_cr2(frame, starts, control):
    """CR2 for the SA rows built from scratch: the interaction dummies of the regression SA
    runs (rows, sample and absorbed effects), cohort-share and cell-count weights as
    contrasts, then `cr2_inference` (checked against clubSandwich in test_cr2.py)."""
    d = frame.copy()
    d["cohort"] = d["unit"].map({u: float(g) for g, us in starts.items() for u in us})
    if control == "last_treated":
        last = max(starts)
        d = d[d["period"] < last]
        d.loc[d["cohort"] == last, "cohort"] = np.nan
    rel = d["period"] - d["cohort"]
    key = [(g, int(e)) for g, e in zip(d["cohort"], rel.fillna(-1), strict=True)]
    cols = sorted({k for k in key if not np.isnan(k[0]) and k[1] != -1})
    x = np.array([[float(k == c) for c in cols] for k in key])
    count = x.sum(axis=0)
    e_of = np.array([e for _, e in cols])
    rows = [np.where(e_of >= 0, count, 0.0) / count[e_of >= 0].sum()]
    rows += [np.where(e_of == e, count, 0.0) / count[e_of == e].sum() for e in np.unique(e_of)]
    return cr2_inference(
        d["y"].to_numpy(),
        x,
        pd.factorize(d["unit"])[0],
        pd.factorize(d["period"])[0],
        contrasts=np.vstack(rows),
    )


@pytest.mark.parametrize("control", ["never_treated", "last_treated"])
def test_cr2_on_the_interaction_regression(tmp_path, control):
    frame, starts = few_treated()
    cr2 = Inference(method="cr2")
    res = SunAbraham(control=control, inference=cr2).fit(
        make_panel(tmp_path, frame, starts), "y", "sa"
    )
    ref = independent_cr2(frame, starts, control)
    table = res.table
    np.testing.assert_allclose(table["estimate"], ref.estimate, atol=EXACT)
    for col in ("std_error", "df", "p_value", "ci_lower", "ci_upper"):
        np.testing.assert_allclose(table[col], getattr(ref, col), rtol=1e-9, err_msg=col)
    assert res.inference.label.startswith("CR2 cluster-robust by unit")
    assert not any("over-reject" in w for w in res.warnings)
    se = interactions(res)["std_error"].to_numpy()
    np.testing.assert_allclose(se, np.sqrt(np.diag(ref.vcov)), rtol=1e-9)
    # last-treated controls leave out every row from the last start: counted (review: they
    # were not, 22 of 77 rows gone from the exclusions table)
    gone = frame["period"] >= max(starts)
    expected = (
        [(int(gone.sum()), tuple(sorted(set(frame.loc[gone, "unit"]))))]
        if control == "last_treated"
        else []
    )
    assert [(d.rows, d.units) for d in res.dropped] == expected
    assert res.n_obs == len(frame) - sum(n for n, _ in expected)


def test_cluster_robust_or_share_uncertainty_keep_cr1_with_few_treated(tmp_path):
    frame, starts = few_treated()
    panel = make_panel(tmp_path, frame, starts)
    base = sun_abraham(*_arrays(panel))
    cr1 = SunAbraham(inference=Inference(method="cluster_robust")).fit(panel, "y", "sa")
    assert cr1.inference.label.startswith("cluster-robust by unit (CR1)")
    assert "chosen" not in cr1.inference.label
    assert (cr1.table["df"] == base.n_clusters - 1).all()
    assert cr1.table.loc[0, "std_error"] == pytest.approx(np.sqrt(base.att_var), rel=1e-12)
    assert any("over-reject" in w for w in cr1.warnings)
    shares = SunAbraham(share_uncertainty=True).fit(panel, "y", "sa")
    assert shares.inference.label.startswith("cluster-robust by unit (CR1)")
    assert "kept although only 7 units are treated" in shares.inference.label


def _arrays(panel):
    cells = panel.outcome_cells("y")
    return (
        cells["y"].to_numpy(float),
        cells["unit"].to_numpy(),
        cells["period"].to_numpy(),
        cells["cohort"].to_numpy(float),
    )


def test_twenty_or_more_treated_keep_cr1(mpdta_fit):
    _, _, _, res = mpdta_fit
    assert res.n_treated >= 20
    assert res.inference.label.startswith("cluster-robust by unit (CR1), t(G−1) reference")
    assert (res.table["df"] == res.n_units - 1).all()


def test_single_unit_cohort_is_warned_about(tmp_path):
    frame, starts = few_treated()
    starts = {3: starts[3], 5: starts[5][:1]}
    stratified = SunAbraham(inference=Inference(method="cohort_stratified"))
    res = stratified.fit(make_panel(tmp_path, frame, starts), "y", "sa")
    assert any("starting in 5 have a single unit" in w for w in res.warnings)


@pytest.mark.parametrize("n_treated", [4, 1])
def test_balanced_cohort_stratified_variance_is_welch(tmp_path, n_treated):
    """One cohort against never-treated units: each event-time row is a two-sample comparison
    of y_{g+e} − y_{g−1}, so its SE is Welch's (4 treated) or, for a single treated unit,
    the comparison units' SD times √(1 + 1/n₀), the prediction error of one new unit."""
    from scipy import stats

    treated = [f"u{i:02d}" for i in range(n_treated)]
    frame = balanced(treated)
    stratified = SunAbraham(inference=Inference(method="cohort_stratified"))
    res = stratified.fit(make_panel(tmp_path, frame, {5: treated}), "y", "sa")
    assert res.inference.label.startswith("cohort-stratified variance")
    wide = frame.pivot(index="unit", columns="period", values="y")
    is_t = wide.index.isin(treated)
    for _, row in res.table.iloc[1:].iterrows():
        change = wide[5 + int(row["event_time"])] - wide[4]
        if n_treated > 1:
            welch = stats.ttest_ind(change[is_t], change[~is_t], equal_var=False)
            assert row["statistic"] == pytest.approx(welch.statistic, rel=1e-9)
        else:
            se = change[~is_t].std(ddof=1) * np.sqrt(1 + 1 / (~is_t).sum())
            assert row["std_error"] == pytest.approx(se, rel=1e-9)
    assert not res.warnings


def test_a_saturated_fit_without_residual_df_is_refused():
    """15 cells, 15 effects: the CR1 factor divided by n − k = 0 (found by fuzzing); now a
    clear refusal naming the counts."""
    nan = np.nan
    frame = wide_frame(
        {
            "u0": [1.54, 1.66, 1.33, 0.92, 0.85, 0.91],
            "u1": [2.03, nan, -0.21, -0.33, nan, 0.73],
            "u2": [1.46, 0.72, 1.48, 4.15, 2.88, nan],
        },
        {"u1": 2014, "u2": 2012},
    )
    with pytest.raises(EstimationError, match="15 cells for 15 unit, period and cohort"):
        pe.sun_abraham(frame, outcome="y", unit="unit", time="year", first_treated="first")


def test_no_treated_cell_from_the_start_on_is_refused():
    """u1 starts in 2013 and has no 2013 row: no cell at event time ≥ 0, and the post-treatment
    average of no cells read 0 ± 0 (found by fuzzing)."""
    nan = np.nan
    frame = wide_frame(
        {"u0": [1.04, 1.66, 1.13], "u1": [-0.89, 0.72, nan], "u2": [-0.09, nan, 1.38]},
        {"u1": 2013},
    )
    with pytest.raises(EstimationError, match="no treated unit is observed from its start on"):
        pe.sun_abraham(frame, outcome="y", unit="unit", time="year", first_treated="first")


def test_rows_resting_on_exactly_fitted_cells_have_no_cr2_standard_error():
    """Single-unit cohorts 2012 and 2013 and one never-treated unit: the CR2 variance of the
    overall average and of event times −3, −2 and 2 is rounding (SE 0 and 9e-17 with df 1, so
    p ≈ 0; found by fuzzing), so those rows get no SE, df or interval. Event times 0 and 1
    have residuals, but they rest partly on the one-unit cohorts' cells, fitted exactly, whose
    noise CR2 cannot see: they have none either (CR1 keeps them, with the singleton warning)."""
    frame = single_unit_cohorts()
    kw = {"outcome": "y", "unit": "unit", "time": "year", "first_treated": "first"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = pe.sun_abraham(frame, **kw)
        cr1 = pe.sun_abraham(frame, **kw, inference="cluster_robust").table.set_index("term")
    assert res.inference.key == "cr2"
    table = res.table.set_index("term")
    assert table[["std_error", "df", "ci_lower"]].isna().all().all()
    assert "rows using it have no standard error" in res.warnings[0]
    empty = ["ATT (post-treatment average)", "event time -3", "event time -2", "event time 2"]
    assert cr1.loc[empty, ["std_error", "df", "ci_lower"]].isna().all().all()
    assert np.isfinite(cr1.drop(index=empty)["std_error"]).all()


def test_leads_fitted_exactly_are_neither_tested_nor_given_a_standard_error():
    """Cohorts 2014 and 2015 have one unit each, so their lead interactions fit that unit's
    cells exactly and their CR1 variance is rounding (SE 3e-16 to 2e-14). The default's
    pre-trend Wald test on them read F = 2.6e28, p = 6e-71: a false alarm of a pre-trend in
    the default analysis, and `cluster_robust` reported those event times with SE 1e-14 and
    p ≈ 1e-71 (found by fuzzing, seed 46). Now those interactions, rows and leads have no
    variance and the test is not run, with warnings saying why; the other rows keep CR1's
    (CR2 gives them none: they rest partly on the one-unit cohorts' cells, fitted exactly)."""
    nan = np.nan
    frame = wide_frame(
        {
            "u0": [-2.16, nan, 0.89, -1.82, nan, -0.04, -0.02],
            "u1": [1.01, -0.04, 2.51, -0.32, 0.54, 0.84, 3.07],
            "u2": [0.61, nan, 1.0, 1.03, -0.56, 1.09, nan],
            "u3": [0.25, -0.17, 0.44, -0.25, 1.86, 2.31, 1.49],
            "u4": [-0.87, 0.65, 1.75, 1.07, 0.62, 0.01, 2.91],
            "u5": [-0.49, 1.02, -0.25, 1.42, nan, 2.13, 1.58],
        },
        {"u0": 2012, "u2": 2014, "u3": 2012, "u4": 2012, "u5": 2015},
    )
    kw = {"outcome": "y", "unit": "unit", "time": "year", "first_treated": "first"}
    for inference, key in (("default", "cr2"), ("cluster_robust", "cr1")):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            res = pe.sun_abraham(frame, **kw, inference=inference)
        assert res.inference.key == key
        table = res.table.set_index("term")
        leads = ["event time -4", "event time -3", "event time -2"]
        assert table.loc[leads, ["std_error", "df", "ci_lower"]].isna().all().all()
        post = table.drop(index=leads)["std_error"]
        assert (post > 0.3).all() if key == "cr1" else post.isna().all()
        lead_se = [i["std_error"] for i in res.facts.interactions if i["event_time"] < -1]
        assert len(lead_se) == 4 and np.isnan(lead_se).all()
        assert res.facts.pretrend_test is None and res.facts.pretest_power is None
        assert res.warnings[-1].startswith("Pre-trend test without the cohort 2014 lead at -3, ")
        assert res.warnings[-1].endswith("(the test is not run).")


def test_absorbed_effects_is_refused_where_no_cr1_reads_it():
    """`absorbed_effects: counted` was accepted by every estimator and read by four."""
    from pathfinder_eval.errors import DesignError
    from pathfinder_eval.settings import CallawaySantAnnaOptions, SunAbrahamOptions

    counted = Inference(method="cluster_robust", absorbed_effects="counted")
    assert SunAbrahamOptions(inference=counted).inference.absorbed_effects == "counted"
    with pytest.raises(DesignError, match="absorbed_effects sets the CR1 factor of twfe"):
        CallawaySantAnnaOptions(inference=Inference(absorbed_effects="counted"))
