"""BJS imputation: closed forms, a dummy-regression oracle, diff-diff, invariances; the
small-sample default against a dense oracle."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import pathfinder_eval as pe
from did_helpers import MPDTA, make_panel, mpdta, wide_frame
from pathfinder_eval.estimators.did.etwfe_estimator import Etwfe
from pathfinder_eval.estimators.did.imputation import Imputation, imputation, pretrend_test
from pathfinder_eval.estimators.did.two_stage import TwoStage, two_stage
from pathfinder_eval.settings import Inference

# Same least-squares algebra computed two ways: floating-point rounding only.
EXACT = 1e-8


def test_two_period_imputation_is_the_2x2_did():
    rng = np.random.default_rng(1)
    y = rng.normal(size=(5, 2))  # units 0–1 treated in period 2; 2–4 never
    unit, period = np.repeat(np.arange(5), 2), np.tile([1, 2], 5)
    cohort = np.repeat([2, 2, np.nan, np.nan, np.nan], 2)
    res = imputation(y.ravel(), unit, period, cohort)
    did = (y[:2, 1] - y[:2, 0]).mean() - (y[2:, 1] - y[2:, 0]).mean()
    assert res.estimate[0] == pytest.approx(did, abs=EXACT)
    # each τ̂ is the unit's own change minus the comparison units' mean change
    own = y[:2, 1] - y[:2, 0] - (y[2:, 1] - y[2:, 0]).mean()
    np.testing.assert_allclose(res.tau, own, atol=EXACT)


def staggered_unbalanced(seed=2):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(12):
        g = [3, 4, np.nan][i % 3]
        for t in range(1, 6):
            eff = 0 if np.isnan(g) or t < g else 1.0 + 0.5 * (t - g) + 0.3 * i
            rows.append({"unit": f"u{i:02d}", "period": t, "cohort": g, "y": i * 0.2 + t + eff})
    d = pd.DataFrame(rows)
    d["y"] += rng.normal(scale=0.3, size=len(d))
    return d.drop(index=[0, 7, 21, 33, 50]).reset_index(drop=True)


def test_matches_fixed_effects_fitted_on_untreated_cells_only():
    d = staggered_unbalanced()
    res = imputation(d["y"], d["unit"], d["period"], d["cohort"])
    treated = d["cohort"].notna() & (d["period"] >= d["cohort"])
    dummies = pd.get_dummies(d[["unit"]].assign(period=d["period"].astype(str)), dtype=float)
    z = dummies.drop(columns="period_1").to_numpy()
    fe = np.linalg.lstsq(z[~treated], d.loc[~treated, "y"], rcond=None)[0]
    tau = d.loc[treated, "y"].to_numpy() - z[treated] @ fe
    np.testing.assert_allclose(res.tau, tau, atol=EXACT)
    assert res.estimate[0] == pytest.approx(tau.mean(), abs=EXACT)
    rel = (d["period"] - d["cohort"])[treated].to_numpy()
    for h, e in enumerate(res.event_time, start=1):
        assert res.estimate[h] == pytest.approx(tau[rel == e].mean(), abs=EXACT)
    # Theorem 2: the estimator is linear in Y with weights w on treated, v on untreated cells
    y = d["y"].to_numpy()
    lin = res.weights @ y[res.treated_rows] + res.v_untreated @ y[res.untreated_rows]
    np.testing.assert_allclose(lin, res.estimate, atol=EXACT)
    np.testing.assert_allclose(res.weights.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(res.v_untreated.sum(axis=1), -1.0, atol=EXACT)


@pytest.mark.parametrize("leave_out", [False, True])
def test_diff_diff_imputation(leave_out):
    dd = pytest.importorskip("diff_diff")
    d = pd.read_csv(MPDTA)
    ref = dd.ImputationDiD(cluster="countyreal", leave_one_out=leave_out).fit(
        d,
        outcome="lemp",
        unit="countyreal",
        time="year",
        first_treat="first.treat",
        aggregate="event_study",
    )
    cohort = d["first.treat"].replace(0, np.nan)
    res = imputation(d["lemp"], d["countyreal"], d["year"], cohort, leave_out=leave_out)
    se = np.sqrt(np.diag(res.vcov))
    assert res.estimate[0] == pytest.approx(ref.overall_att, abs=EXACT)
    assert se[0] == pytest.approx(ref.overall_se, abs=EXACT)
    for h, e in enumerate(res.event_time, start=1):
        v = ref.event_study_effects[e]
        assert res.estimate[h] == pytest.approx(v["effect"], abs=EXACT)
        assert se[h] == pytest.approx(v["se"], abs=EXACT)
    # BJS on mpdta as published in software examples: overall ATT ≈ −0.0477
    assert res.estimate[0] == pytest.approx(-0.0477, abs=5e-5)


@pytest.mark.parametrize("leave_out", [False, True])
def test_conservative_variance_equals_committed_diff_diff_values(leave_out):
    """BJS on mpdta, clustered by county, τ̄ by cohort × period: the overall ATT and every
    event time's effect and SE equal diff-diff 3.13.0's ImputationDiD to 1e-8 (values and the
    script that wrote them in tests/reference/bjs_diff_diff; runs without diff-diff)."""
    ref = pd.read_csv(Path(__file__).parent / "reference" / "bjs_diff_diff" / "values.csv")
    ref = ref[(ref["leave_out"] == leave_out) & (ref["std_error"] > 0)].set_index("row")
    d = pd.read_csv(MPDTA)
    cohort = d["first.treat"].replace(0, np.nan)
    res = imputation(d["lemp"], d["countyreal"], d["year"], cohort, leave_out=leave_out)
    se = np.sqrt(np.diag(res.vcov))
    labels = ["overall"] + [str(e) for e in res.event_time]
    assert sorted(labels) == sorted(ref.index)
    np.testing.assert_allclose(res.estimate, ref.loc[labels, "estimate"], rtol=0, atol=EXACT)
    np.testing.assert_allclose(se, ref.loc[labels, "std_error"], rtol=0, atol=EXACT)


def test_estimator_on_panel_and_invariances(tmp_path):
    frame, starts = mpdta()
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    base = Imputation().fit(make_panel(tmp_path / "a", frame, starts), "y", "bjs")
    assert base.table.loc[0, "term"] == "ATT (all treated cells)"
    assert base.diagnostics["pretrend_test"]["df_num"] == 3.0
    rng = np.random.default_rng(4)
    names = {u: f"k{i:03d}" for i, u in enumerate(rng.permutation(frame["unit"].unique()))}
    shuffled = frame.sample(frac=1.0, random_state=5).assign(unit=lambda f: f["unit"].map(names))
    before = shuffled.copy()
    new = {s: [names[u] for u in us] for s, us in starts.items()}
    other = Imputation().fit(make_panel(tmp_path / "b", shuffled, new), "y", "bjs")
    pd.testing.assert_frame_equal(base.table, other.table, check_exact=False, atol=1e-10, rtol=0)
    # exact: the caller's frame must be untouched, not merely close
    pd.testing.assert_frame_equal(shuffled, before)


def test_treated_cells_without_untreated_data_are_dropped_and_counted():
    d = staggered_unbalanced()
    d = d[~((d["unit"] == "u01") & (d["period"] < 4))]  # u01 (cohort 4) loses its pre-periods
    res = imputation(d["y"], d["unit"], d["period"], d["cohort"])
    assert res.n_dropped == int(((d["unit"] == "u01") & (d["period"] >= 4)).sum())
    assert np.isfinite(res.estimate).all()


def dense_bjs_variance(d, leave_out, by_cell=False):
    """Oracle (τ̄ over each row's cells, or by cohort × period if by_cell): ψ_i = Σ_t q_it y
    built from explicit linear maps (dummy design, pseudo-inverse, τ̄ by loops), V̂ = ‖Qy‖²
    and ν = (tr QQᵀ)²/‖QQᵀ‖²_F per row."""
    y = d["y"].to_numpy()
    treated = (d["cohort"].notna() & (d["period"] >= d["cohort"])).to_numpy()
    z = pd.get_dummies(d[["unit"]].assign(p=d["period"].astype(str)), dtype=float)
    z = z.drop(columns="p_1").to_numpy()
    sel0, sel1 = np.eye(len(y))[~treated], np.eye(len(y))[treated]
    to_beta = np.linalg.pinv(z[~treated]) @ sel0
    l_tau = sel1 - z[treated] @ to_beta
    l_eps0 = sel0 - z[~treated] @ to_beta
    units = pd.factorize(d["unit"])[0]
    u1, u0 = units[treated], units[~treated]
    rel = (d["period"] - d["cohort"]).to_numpy()[treated]
    cell = (d["cohort"] * 100 + d["period"]).to_numpy()[treated]
    rows = [np.full(len(u1), 1.0 / len(u1))]
    rows += [(rel == e) / (rel == e).sum() for e in np.unique(rel)]
    var, df = [], []
    for wh in rows:
        v0 = -(wh @ z[treated] @ np.linalg.pinv(z[~treated]))  # Theorem 2 weights
        q = np.zeros((units.max() + 1, len(y)))
        for c in np.flatnonzero(wh > 0):
            group = np.flatnonzero((wh > 0) & ((cell == cell[c]) | (not by_cell)))
            pool = [o for o in group if not leave_out or u1[o] != u1[c]] or list(group)
            tbar = sum(wh[o] * l_tau[o] for o in pool) / sum(wh[o] for o in pool)
            q[u1[c]] += wh[c] * (l_tau[c] - tbar)
        for r in range(len(u0)):
            q[u0[r]] += v0[r] * l_eps0[r]
        omega = q @ q.T
        var.append(float(np.sum((q @ y) ** 2)))
        df.append(np.trace(omega) ** 2 / np.sum(omega * omega))
    return np.array(var), np.array(df)


@pytest.mark.parametrize("lone", [(), ("u01", "u04", "u07")])
@pytest.mark.parametrize("average_by", ["row", "cohort_period"])
@pytest.mark.parametrize("leave_out", [False, True])
def test_variance_and_satterthwaite_df_match_dense_oracle(leave_out, average_by, lone):
    """The factored O(G·r²) algebra (diagonal plus low rank) equals explicit dense maps, on an
    unbalanced panel, and with cohort 4 left to one unit (u10), whose cohort × period cells
    then hold one unit each (leave-out falls back to the full cell mean)."""
    d = staggered_unbalanced()
    d = d[~d["unit"].isin(lone)].reset_index(drop=True)
    res = imputation(d["y"], d["unit"], d["period"], d["cohort"], leave_out, average_by)
    var, df = dense_bjs_variance(d, leave_out, average_by == "cohort_period")
    np.testing.assert_allclose(np.diag(res.vcov), var, rtol=1e-9)
    np.testing.assert_allclose(res.df, df, rtol=1e-9)


def test_default_with_few_treated_is_leave_out_row_average_with_satterthwaite_df(tmp_path):
    d = staggered_unbalanced()
    starts = {int(g): sorted(set(d.loc[d["cohort"] == g, "unit"])) for g in (3, 4)}
    panel = make_panel(tmp_path, d.drop(columns="cohort"), starts)
    res = Imputation().fit(panel, "y", "bjs")
    ref = imputation(d["y"], d["unit"], d["period"], d["cohort"], True, "row")
    np.testing.assert_allclose(res.table["std_error"], np.sqrt(np.diag(ref.vcov)), rtol=1e-9)
    np.testing.assert_allclose(res.table["df"], ref.df, rtol=1e-9)
    assert "Satterthwaite" in res.inference.label
    assert "chosen because only 8 units are treated" in res.inference.label
    assert not any("over-reject" in w for w in res.warnings)
    cr1 = Imputation(inference=Inference(method="cluster_robust")).fit(panel, "y", "bjs")
    assert cr1.inference.label.endswith("t(G−1) reference")
    assert (cr1.table["df"] == 11).all()
    assert any("over-reject" in w for w in cr1.warnings)


def test_twenty_or_more_treated_keep_the_t_reference(tmp_path):
    frame, starts = mpdta()
    res = Imputation().fit(make_panel(tmp_path, frame, starts), "y", "bjs")
    assert res.n_treated >= 20
    assert "chosen" not in res.inference.label
    assert (res.table["df"] == res.n_units - 1).all()


@pytest.mark.parametrize("n_treated", [4, 1])
def test_balanced_cohort_stratified_variance_is_welch(tmp_path, n_treated):
    """One cohort against never-treated units on a balanced panel: the overall ATT is the
    difference in mean (post − pre) changes, so its stratified SE is Welch's (4 treated) or,
    for one treated unit, the comparison units' SD × √(1 + 1/n₀)."""
    from scipy import stats

    from did_helpers import balanced, make_panel

    treated = [f"u{i:02d}" for i in range(n_treated)]
    frame = balanced(treated)
    stratified = Imputation(inference=Inference(method="cohort_stratified"))
    res = stratified.fit(make_panel(tmp_path, frame, {5: treated}), "y", "bjs")
    assert res.inference.label.startswith("cohort-stratified variance")
    assert res.diagnostics["inference_method"] == "cohort_stratified"
    wide = frame.pivot(index="unit", columns="period", values="y")
    change = wide.loc[:, 5:].mean(axis=1) - wide.loc[:, :4].mean(axis=1)
    is_t = wide.index.isin(treated)
    row = res.table.iloc[0]
    assert row["estimate"] == pytest.approx(change[is_t].mean() - change[~is_t].mean(), abs=1e-10)
    if n_treated > 1:
        welch = stats.ttest_ind(change[is_t], change[~is_t], equal_var=False)
        assert row["statistic"] == pytest.approx(welch.statistic, rel=1e-9)
    else:
        se = change[~is_t].std(ddof=1) * np.sqrt(1 + 1 / (~is_t).sum())
        assert row["std_error"] == pytest.approx(se, rel=1e-9)
    assert np.sqrt(res.vcov[0, 0]) == pytest.approx(row["std_error"], rel=1e-12)


def test_pretest_power_loadings_and_bias_in_closed_form(tmp_path):
    """Adding a linear trend s·(t − start) to the treated LAs' outcomes moves BJS's lead
    coefficients by s × their loading and the overall ATT by s × its bias loading (both
    linear in the outcomes), and at the slope detected half the time the pre-test passes with
    probability 0.5 (scipy's Genz-Bretz multivariate normal), the one-lead powers bracketing
    it; the report states the test and its power."""
    frame, starts = mpdta()
    cohort = frame["unit"].map({u: float(s) for s, us in starts.items() for u in us})
    trend = np.nan_to_num(frame["period"] - cohort)
    s = 0.7
    args = (frame["unit"].to_numpy(), frame["period"].to_numpy(), cohort.to_numpy())
    base = pretrend_test(frame["y"].to_numpy(), *args, 3)
    moved = pretrend_test(frame["y"].to_numpy() + s * trend, *args, 3)
    np.testing.assert_allclose(moved.coef - base.coef, s * base.loading, atol=1e-10)
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    fit = Imputation().fit(make_panel(tmp_path / "a", frame, starts), "y", "bjs")
    shifted = frame.assign(y=frame["y"] + s * trend)
    fit_s = Imputation().fit(make_panel(tmp_path / "b", shifted, starts), "y", "bjs")
    power = fit.facts.pretest_power
    bias_per_slope = power["bias"] / power["slope_50"]
    assert fit_s.table["estimate"][0] - fit.table["estimate"][0] == pytest.approx(
        s * bias_per_slope, abs=1e-10
    )
    sd = np.sqrt(np.diag(base.vcov))
    c = stats.norm.ppf(0.975)
    mvn = stats.multivariate_normal(power["slope_50"] * base.loading, base.vcov)
    passing = mvn.cdf(c * sd, lower_limit=-c * sd)
    assert passing == pytest.approx(0.5, abs=2e-4)
    assert power["slope_50"] < power["slope_80"]
    assert fit.diagnostics["pretrend_test"]["statistic"] == pytest.approx(
        base.test["statistic"], rel=1e-10
    )


def test_pretest_power_of_one_lead_is_the_normal_power(tmp_path):
    """With one lead the pre-test is a z test: its power at slope s is
    1 − Φ(c − s·L/se) + Φ(−c − s·L/se), 0.5 and 0.8 at the reported slopes."""
    frame, starts = mpdta()
    fit = Imputation(pretrend_leads=1).fit(make_panel(tmp_path, frame, starts), "y", "bjs")
    cohort = frame["unit"].map({u: float(s) for s, us in starts.items() for u in us})
    pre = pretrend_test(
        frame["y"].to_numpy(),
        frame["unit"].to_numpy(),
        frame["period"].to_numpy(),
        cohort.to_numpy(),
        1,
    )
    z = pre.loading[0] / np.sqrt(pre.vcov[0, 0])
    c = stats.norm.ppf(0.975)
    for key, target in (("slope_50", 0.5), ("slope_80", 0.8)):
        shift = fit.facts.pretest_power[key] * z
        power = 1 - stats.norm.cdf(c - shift) + stats.norm.cdf(-c - shift)
        assert power == pytest.approx(target, abs=1e-6)


def test_untreated_cells_that_do_not_connect_units_and_periods_are_refused():
    """Units 0 and 2 are seen in periods 1–2 and unit 1 only in 3–4: the untreated cells form
    two blocks, so the period effects (the Schur complement of the unit block) are singular."""
    from pathfinder_eval.errors import EstimationError

    unit = np.array([0, 0, 1, 1, 2, 2])
    period = np.array([1, 2, 3, 4, 1, 2])
    cohort = np.array([np.nan, np.nan, np.nan, np.nan, 2.0, 2.0])
    with pytest.raises(EstimationError, match="not identified"):
        imputation(np.arange(6.0), unit, period, cohort)
    linked = np.array([0, 0, 1, 1, 2, 2, 3, 3]), np.array([1, 2, 2, 3, 1, 2, 1, 2])  # 1 at 2
    res = imputation(np.arange(8.0) ** 2, *linked, np.r_[cohort[:4], 2.0, 2.0, np.nan, np.nan])
    assert np.isfinite(res.estimate).all() and np.isfinite(res.df).all()


def vacant_panel() -> pd.DataFrame:
    """Four units, five of seven periods: from period 3 on, one untreated unit (u00) only, so
    event times 2 and 4 rest on u02 alone with counterfactuals from cells the two-way model
    fits exactly (found in review: the df divided 0 by 0). u03 is never treated and observed
    in periods 1 and 2 only."""
    y = [-0.39, 2.75, 0.20, 2.10, -1.45, 1.25, 1.64, 3.49, 0.56, -0.92, 1.49, 1.43, 1.97, 0.59]
    y += [0.31, 1.18]
    unit = ["u00"] * 5 + ["u01"] * 4 + ["u02"] * 5 + ["u03"] * 2
    period = [1, 2, 3, 5, 7, 1, 2, 5, 7, 1, 2, 3, 5, 7, 1, 2]
    return pd.DataFrame({"unit": unit, "period": period, "y": y}).assign(
        cohort=lambda d: d["unit"].map({"u00": np.nan, "u01": 2.0, "u02": 3.0, "u03": np.nan})
    )


@pytest.mark.parametrize("padding", [0, 200])
@pytest.mark.parametrize("average_by", ["row", "cohort_period"])
@pytest.mark.parametrize("leave_out", [False, True])
def test_rows_without_variance_have_no_standard_error(leave_out, average_by, padding):
    """`padding` never-treated units seen in periods 1 and 2 only leave Q = 0 on the same
    rows, but tr Ω then rounds to about 1e-16 of the squared weights instead of 1e-35 (found
    in review: a 1e-20 threshold let those rows through with SE 1e-16 and p ≈ 0)."""
    d = vacant_panel()
    pad = pd.DataFrame(
        {
            "unit": np.repeat([f"x{i:03d}" for i in range(padding)], 2),
            "period": np.tile([1, 2], padding),
            "y": np.random.default_rng(0).normal(size=2 * padding),
            "cohort": np.nan,
        }
    )
    d = pd.concat([d, pad], ignore_index=True)
    res = imputation(d["y"], d["unit"], d["period"], d["cohort"], leave_out, average_by)
    var, df = dense_bjs_variance(d, leave_out, average_by == "cohort_period")
    vacant = var < 1e-25
    assert res.event_time[vacant[1:]].tolist() == [2, 4]
    assert np.isnan(res.df[vacant]).all() and np.isnan(res.vcov[vacant]).all()
    assert np.isnan(res.vcov[:, vacant]).all()
    np.testing.assert_allclose(np.diag(res.vcov)[~vacant], var[~vacant], rtol=1e-9)
    np.testing.assert_allclose(res.df[~vacant], df[~vacant], rtol=1e-9)


def test_fit_says_which_rows_have_no_interval(tmp_path):
    d = vacant_panel()
    starts = {2: ["u01"], 3: ["u02"]}
    res = Imputation().fit(make_panel(tmp_path, d.drop(columns="cohort"), starts), "y", "bjs")
    table = res.table.set_index("term")
    empty = ["event time 2", "event time 4"]
    assert table.loc[empty, ["std_error", "ci_lower", "ci_upper", "p_value"]].isna().all().all()
    assert np.isfinite(table.drop(index=empty)["std_error"]).all()
    assert res.warnings[0].startswith("event time 3, event time 5: one treated unit only")
    assert res.warnings[1].startswith("event time 2, event time 4: no standard error")
    robust = Imputation(inference=Inference(method="cluster_robust")).fit(
        make_panel(tmp_path, d.drop(columns="cohort"), starts), "y", "bjs"
    )
    assert robust.table.set_index("term").loc[empty, "df"].isna().all()
    # the pre-trend regression: 10 untreated cells, 4 unit and 4 period effects, and 1 of the
    # 2 leads (u01's lead −1 is its only untreated cell; u02's two leads sum to its unit
    # effect): counting both left no residual df, and the test was refused
    assert res.facts.pretrend_test["leads"] == res.facts.pretrend_test["df_num"] == 1.0
    assert len(res.warnings) == 2
    for other in (TwoStage(), Etwfe()):  # their small-sample rows are imputation's
        (tmp_path / other.name).mkdir()
        panel = make_panel(tmp_path / other.name, d.drop(columns="cohort"), starts)
        got = other.fit(panel, "y", "x")
        assert got.table["std_error"].isna().tolist() == table["std_error"].isna().tolist()
        assert got.warnings == res.warnings[:2]  # the same variance, the same caveats


@pytest.mark.parametrize(
    "estimator, options, key",
    [
        ("two_stage", {"inference": "cluster_robust"}, "two_stage_gmm"),
        ("etwfe", {"inference": "cluster_robust"}, "cr1"),
        ("etwfe", {"family": "poisson", "counts": "n", "population": "pop"}, "cr1"),
    ],
)
def test_sandwich_rows_resting_on_exactly_fitted_cells_have_no_standard_error(
    estimator, options, key
):
    """Two-stage GMM and ETWFE CR1 (linear, and the Poisson fit's default here: too few
    complete comparison series to pool) on the vacant panel: event times 2 and 4 rest on u02
    alone against cells the model fits exactly, so their scores are rounding; they read SE
    3e-16 to 3e-15, df 3 and p ≈ 1e-47 (found by review). Now no SE, df or interval, a
    warning that says why, and the other rows as before."""
    d = vacant_panel()
    d["first"] = d["cohort"].fillna(0).astype(int)
    d["n"], d["pop"] = np.round(np.exp(3 + d["y"])), 1000.0
    kw = {"outcome": "rate" if "counts" in options else "y", "unit": "unit", "time": "period"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = getattr(pe, estimator)(d, first_treated="first", **kw, **options)
    assert res.inference.key == key
    table = res.table.set_index("term")
    empty = table.index.str.fullmatch("event time [24]")
    assert empty.sum() == 2
    assert table.loc[empty, ["std_error", "df", "ci_lower", "p_value"]].isna().all().all()
    assert np.isnan(res.vcov[empty]).all() and np.isnan(res.vcov[:, empty]).all()
    rest = table.loc[~empty]
    assert (rest["std_error"] > 0.2).all() and (rest["df"] == 3).all()
    assert [w for w in res.warnings if "no standard error" in w] == [
        "event time 2, event time 4: no standard error or interval. Its variance is zero "
        "whatever the outcomes: the model fits every cell the row rests on exactly (one "
        "treated unit against comparisons it fits exactly)."
    ]
    if estimator == "two_stage":  # the other rows keep the GMM sandwich's variance
        raw = two_stage(d["y"], d["unit"], d["period"], d["cohort"])
        np.testing.assert_allclose(np.diag(res.vcov)[~empty], np.diag(raw.vcov)[~empty], rtol=1e-12)
        assert np.diag(raw.vcov)[empty].max() < 1e-30  # what was reported: rounding


@pytest.mark.parametrize("leave_out", [False, True])
def test_df_with_one_treated_unit_among_many_is_exact(leave_out):
    """One treated unit among 1,000 never-treated ones, balanced: Ω's trace and Frobenius sums
    from the 2r × 2r products cancel to 1e-9 of their terms (the treated unit's row-disjoint
    part against the low-rank part), so the df come from Ω itself: the never-treated units
    less one, 999, as the dense oracle gives at smaller G (the sums alone gave 999.00024, and
    at 20,000 units 20,385.8)."""
    rng = np.random.default_rng(0)
    units, periods = 1001, 10
    unit = np.repeat(np.arange(units), periods)
    period = np.tile(np.arange(1, periods + 1), units)
    cohort = np.where(unit == 0, 5.0, np.nan)
    res = imputation(rng.normal(size=unit.size), unit, period, cohort, leave_out, "row")
    np.testing.assert_allclose(res.df, units - 2, rtol=1e-10)  # never-treated − 1
    small = staggered_unbalanced().query("cohort != 4 or unit == 'u10'")  # one unit in cohort 4
    res = imputation(small["y"], small["unit"], small["period"], small["cohort"], leave_out, "row")
    np.testing.assert_allclose(res.df, dense_bjs_variance(small, leave_out)[1], rtol=1e-9)


def test_pretrend_test_with_leads_fitted_exactly_is_not_run():
    """Each lead rests on cells the unit, period and lead effects fit exactly, so its CR1
    variance is rounding (1e-30) and the F statistic 7e29 (p = 2e-74: a false alarm), and the
    pre-test power's slope search doubled 0 for ever (found by fuzzing): no test now."""
    nan = np.nan
    frame = wide_frame(
        {
            "u0": [1.42, 0.23, 1.54, 3.39, 0.41],
            "u1": [-0.48, nan, nan, -1.05, -0.17],
            "u2": [-3.16, -0.54, nan, -1.94, -1.07],
            "u3": [-2.24, -0.77, -2.08, -0.49, nan],
            "u4": [nan, nan, 0.67, 1.17, 0.68],
            "u5": [nan, 0.37, nan, nan, 1.98],
        },
        {"u1": 2015, "u2": 2012, "u3": 2012, "u4": 2015},
    )
    cohort = frame["first"].replace(0, np.nan).to_numpy(float)
    args = (frame["y"].to_numpy(), frame["unit"].to_numpy(), frame["year"].to_numpy(), cohort)
    assert pretrend_test(*args, 3) is None
    kw = {"outcome": "y", "unit": "unit", "time": "year", "first_treated": "first"}
    res = pe.imputation(frame, **kw)
    assert res.facts.pretrend_test is None and res.facts.pretest_power is None
    assert (
        "BJS's pre-trend test was not run: unit, period and lead effects fit the untreated "
        "cells the leads rest on exactly, leaving no residual variation to test them against."
    ) in res.warnings
    # the other reason, and only it: the treated units' untreated cells lie 5 years before
    # their start, outside the 3 leads tested
    late = wide_frame(
        {
            "u0": [0.3, 0.1, -0.4, 0.8, 0.2, 0.5],
            "u1": [-1.1, -0.6, -0.9, 0.1, -0.7, -0.2],
            "u2": [1.2, nan, nan, nan, nan, 2.0],
            "u3": [0.4, nan, nan, nan, nan, 0.9],
        },
        {"u2": 2016, "u3": 2016},
    )
    res = pe.imputation(late, **kw)
    assert res.facts.pretrend_test is None
    assert (
        "BJS's pre-trend test was not run: no treated unit has untreated cells in the 3 "
        "periods before its start."
    ) in res.warnings


def test_pretrend_test_leaves_out_leads_the_effects_absorb():
    """Found in review. (B) u1 (cohort 4) has untreated periods 1–3, all leads, which sum to
    its unit effect, and u0's lead −1 is its only untreated cell: 2 of the 3 leads are
    identified, and the test has 2 numerator df (pinv's minimum-norm fit claimed 3). (C) the
    one lead −1 cell is alone in its period and u0's other untreated cell is its lead −2:
    nothing is identified, so no test (it reported SEs of 1e14 and p = 1)."""
    y = np.random.default_rng(0).normal(size=30)
    units, period = np.repeat(np.arange(5), 6), np.tile(np.arange(1, 7), 5)
    cohort = np.array([2.0, 4.0, np.nan, np.nan, np.nan])[units]
    test = pretrend_test(y, units, period, cohort, 3)
    assert test.test["df_num"] == test.test["leads"] == 2.0 and test.coef.size == 2
    assert np.isfinite(test.test["p_value"]) and np.all(np.diag(test.vcov) < 10.0)
    keep = ~((units > 0) & (period == 2))
    lone = np.array([3.0, np.nan, np.nan, np.nan, np.nan])[units]
    assert pretrend_test(y[keep], units[keep], period[keep], lone[keep], 3) is None


def test_default_falls_back_when_no_cohort_is_complete(tmp_path):
    """Every comparison unit misses period 2 and u0 is alone in its cohort: no stratum of two
    or more units observes every period, so the stratified variance cannot be learned and
    the default takes its next method, BJS's leave-out variance, in imputation and two-stage
    alike (found in review: both raised, telling the user to ask for cluster_robust)."""
    rng = np.random.default_rng(0)
    d = pd.DataFrame(
        [{"unit": f"u{i}", "period": t, "y": rng.normal()} for i in range(5) for t in range(1, 7)]
    )
    d = d[~((d["unit"] != "u0") & (d["period"] == 2))]
    for est in (Imputation(), TwoStage()):
        (tmp_path / est.name).mkdir()
        res = est.fit(make_panel(tmp_path / est.name, d, {3: ["u0"]}), "y", "x")
        assert res.inference.key == "bjs_leave_out"
        assert np.isfinite(res.table["std_error"].iloc[0])
