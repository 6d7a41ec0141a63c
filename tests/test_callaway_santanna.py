"""Callaway & Sant'Anna (2021) group-time ATTs: R did's published mpdta numbers
(tests/reference/did_mpdta), csdid's analytic values, closed forms, invariances, the influence
function against numerical derivatives, and peers (diff-diff, csdid) when installed."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from did_helpers import make_panel
from pathfinder_eval.errors import DesignError, EstimationError
from pathfinder_eval.estimators.did.callaway_santanna import CallawaySantAnna
from pathfinder_eval.estimators.did.group_time import aggregate, group_time_att, prepare_cohorts
from pathfinder_eval.estimators.did.group_time_inference import (
    IQR_NORMAL,
    analytic_se,
    multiplier_bootstrap,
    pretest,
)
from pathfinder_eval.settings import Inference

REF = Path(__file__).resolve().parent / "reference" / "did_mpdta"
MPDTA = Path(__file__).resolve().parents[1] / "src/pathfinder_eval/replications/data/mpdta.csv"

# Same algebra as csdid (a port of R did): only floating-point rounding differs.
EXACT = 1e-10
# Relative Monte Carlo sd of an IQR-based SE from B = 1000 normal draws (did's default biters):
# sqrt(2·0.1875/φ(z.75)² − 2·0.0625/φ(z.75)²)/sqrt(B) / IQR = 3.7 %.
MC_REL_SD_PUBLISHED = 0.037
# Our own bootstrap for the comparison uses 20,000 draws: 0.83 % relative Monte Carlo sd.
OUR_DRAWS = 20_000
# 3 Monte Carlo sds of the difference between the published draw and ours.
BOOT_REL_TOL = 3 * np.hypot(MC_REL_SD_PUBLISHED, 0.037 * np.sqrt(1000 / OUR_DRAWS))
# Analytic SE vs the published bootstrap SE: equal in the limit, but with 20 units in cohort
# 2004 the bootstrap distribution's IQR-based scale differs from its SD by up to ~10 %;
# together with 3.7 % Monte Carlo error we only check agreement within 20 %.
ANALYTIC_VS_BOOT_REL_TOL = 0.20
# Numerical derivative (central difference, step 1e-6) vs the analytic influence function.
DERIVATIVE_TOL = 1e-6


def half_unit(printed: str) -> float:
    """Half a unit in the last printed digit of a number as R printed it."""
    decimals = len(printed.split(".")[1]) if "." in printed else 0
    return 0.5 * 10.0**-decimals


@pytest.fixture(scope="module")
def published() -> pd.DataFrame:
    return pd.read_csv(REF / "values.csv", dtype=str)


@pytest.fixture(scope="module")
def mpdta_wide():
    data = pd.read_csv(MPDTA)
    y = data.pivot(index="countyreal", columns="year", values="lemp")
    x = data.pivot(index="countyreal", columns="year", values="lpop")
    cohort = data.groupby("countyreal")["first.treat"].first().reindex(y.index).to_numpy(float)
    periods = np.array(y.columns, dtype=float)
    cohort, keep = prepare_cohorts(cohort, periods)
    assert keep.all()
    return y.to_numpy(), cohort, periods, x.to_numpy()[:, :, None]


def mpdta_panel(tmp_path, frame: pd.DataFrame | None = None):
    data = pd.read_csv(MPDTA) if frame is None else frame
    unit = "c" + data["countyreal"].astype(str)
    long = pd.DataFrame({"unit": unit, "period": data["year"], "y": data["lemp"]})
    starts: dict[int, list[str]] = {}
    for u, g in sorted(set(zip(unit, data["first.treat"], strict=True))):
        if g > 0:
            starts.setdefault(int(g), []).append(u)
    return make_panel(tmp_path, long, starts)


def rows_of(table: pd.DataFrame, aggregation: str) -> pd.DataFrame:
    return table[table["aggregation"] == aggregation]


# ------------------------------------------------------------------------------------------
# Published numbers: R did README (reg) and the did-basics vignette (dr)
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("source,method", [("readme", "reg"), ("vignette", "dr")])
def test_estimates_match_published(mpdta_wide, published, source, method):
    y, cohort, periods, _ = mpdta_wide
    pub = published[published["source"] == source]
    gt = group_time_att(y, cohort, periods, method=method)
    for _, r in rows_of(pub, "att_gt").iterrows():
        j = np.flatnonzero((gt.group == float(r.cohort)) & (gt.time == float(r.period)))[0]
        assert abs(gt.att[j] - float(r.estimate)) <= half_unit(r.estimate)
    p = rows_of(pub, "pretest_p_value").iloc[0]
    assert abs(pretest(gt)["p_value"] - float(p.estimate)) <= half_unit(p.estimate)
    dyn = aggregate(gt, "dynamic")
    for _, r in rows_of(pub, "dynamic").iterrows():
        j = np.flatnonzero(dyn.labels == float(r.event_time))[0]
        assert abs(dyn.estimate[j] - float(r.estimate)) <= half_unit(r.estimate)
    r = rows_of(pub, "dynamic_overall").iloc[0]
    assert abs(dyn.overall - float(r.estimate)) <= half_unit(r.estimate)
    if source == "readme":
        grp = aggregate(gt, "group")
        for _, r in rows_of(pub, "group").iterrows():
            j = np.flatnonzero(grp.labels == float(r.cohort))[0]
            assert abs(grp.estimate[j] - float(r.estimate)) <= half_unit(r.estimate)
        r = rows_of(pub, "group_overall").iloc[0]
        assert abs(grp.overall - float(r.estimate)) <= half_unit(r.estimate)
    else:
        bal = aggregate(gt, "dynamic", balance_e=1)
        got = dict(zip(bal.labels, bal.estimate, strict=True))
        expected = rows_of(pub, "dynamic_balance_e1")
        assert sorted(got) == sorted(float(e) for e in expected.event_time)
        for _, r in expected.iterrows():
            assert abs(got[float(r.event_time)] - float(r.estimate)) <= half_unit(r.estimate)
        r = rows_of(pub, "dynamic_balance_e1_overall").iloc[0]
        assert abs(bal.overall - float(r.estimate)) <= half_unit(r.estimate)


def _published_se_pairs(gt, pub):
    """(published bootstrap SE, column of our influence matrix) for every printed SE."""
    dyn = aggregate(gt, "dynamic")
    grp = aggregate(gt, "group")
    cols, se_pub = [], []
    for _, r in pub.dropna(subset=["std_error"]).iterrows():
        if r.aggregation == "att_gt":
            j = np.flatnonzero((gt.group == float(r.cohort)) & (gt.time == float(r.period)))[0]
            cols.append(gt.influence[:, j])
        elif r.aggregation == "dynamic":
            cols.append(dyn.influence[:, np.flatnonzero(dyn.labels == float(r.event_time))[0]])
        elif r.aggregation == "dynamic_overall":
            cols.append(dyn.overall_influence)
        elif r.aggregation == "group":
            cols.append(grp.influence[:, np.flatnonzero(grp.labels == float(r.cohort))[0]])
        elif r.aggregation == "group_overall":
            cols.append(grp.overall_influence)
        else:
            continue
        se_pub.append(float(r.std_error))
    return np.array(se_pub), np.column_stack(cols)


@pytest.mark.parametrize("source,method", [("readme", "reg"), ("vignette", "dr")])
def test_bootstrap_se_match_published_within_monte_carlo_error(
    mpdta_wide, published, source, method
):
    y, cohort, periods, _ = mpdta_wide
    gt = group_time_att(y, cohort, periods, method=method)
    se_pub, infl = _published_se_pairs(gt, published[published["source"] == source])
    boot = multiplier_bootstrap(infl, OUR_DRAWS, seed=2021)
    rel = np.abs(boot.std_error / se_pub - 1.0)
    assert rel.max() <= BOOT_REL_TOL, rel
    rel_an = np.abs(analytic_se(infl) / se_pub - 1.0)
    assert rel_an.max() <= ANALYTIC_VS_BOOT_REL_TOL, rel_an


# ------------------------------------------------------------------------------------------
# csdid (Python port of R did) analytic values, all methods, with and without lpop
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("covariates", ["none", "lpop"])
@pytest.mark.parametrize("method", ["reg", "dr", "ipw"])
def test_analytic_values_match_csdid(mpdta_wide, covariates, method):
    ref = pd.read_csv(REF / "csdid_analytic.csv")
    ref = ref[(ref.covariates == covariates) & (ref.est_method == method)]
    y, cohort, periods, lpop = mpdta_wide
    gt = group_time_att(
        y, cohort, periods, method=method, covariates=lpop if covariates == "lpop" else None
    )
    cells = ref[ref.aggregation == "att_gt"]
    # exact: cohort and period labels are whole numbers
    np.testing.assert_allclose(gt.group, cells.label, atol=0)
    np.testing.assert_allclose(gt.time, cells.period, atol=0)
    np.testing.assert_allclose(gt.att, cells.estimate, atol=EXACT, rtol=0)
    np.testing.assert_allclose(analytic_se(gt.influence), cells.std_error, atol=EXACT, rtol=0)
    for kind in ("simple", "dynamic", "group", "calendar"):
        agg = aggregate(gt, kind)
        over = ref[ref.aggregation == f"{kind}_overall"].iloc[0]
        assert agg.overall == pytest.approx(over.estimate, abs=EXACT)
        se = analytic_se(agg.overall_influence[:, None])[0]
        assert se == pytest.approx(over.std_error, abs=EXACT)
        if kind != "simple":
            rows = ref[ref.aggregation == kind]
            np.testing.assert_allclose(agg.labels, rows.label, atol=0)
            np.testing.assert_allclose(agg.estimate, rows.estimate, atol=EXACT, rtol=0)
            np.testing.assert_allclose(
                analytic_se(agg.influence), rows.std_error, atol=EXACT, rtol=0
            )


# ------------------------------------------------------------------------------------------
# Closed forms and internal consistency
# ------------------------------------------------------------------------------------------


def simulated(seed=5, n=60, t_n=5, cohorts=(3.0, 4.0), p_never=0.4, covariate=False):
    rng = np.random.default_rng(seed)
    periods = np.arange(1, t_n + 1, dtype=float)
    cohort = np.where(rng.random(n) < p_never, np.nan, rng.choice(np.array(cohorts), n))
    x = rng.normal(size=n)
    exposure = np.where(np.isnan(cohort)[:, None], -1, periods[None, :] - cohort[:, None])
    y = (
        rng.normal(size=(n, 1))
        + 0.3 * periods[None, :]
        + (0.5 * x[:, None] * periods[None, :] if covariate else 0.0)
        + np.where(exposure >= 0, 1.0 + 0.2 * exposure, 0.0)
        + rng.normal(size=(n, t_n))
    )
    return y, cohort, periods, x[:, None]


def test_one_cohort_never_treated_equals_2x2_closed_form():
    y, cohort, periods, _ = simulated(cohorts=(3.0,))
    gt = group_time_att(y, cohort, periods, method="reg")
    treated, never = cohort == 3.0, np.isnan(cohort)
    for j, t in enumerate(gt.time):
        base = 1 if t >= 3 else int(t) - 2  # post: g − 1 = period 2 (column 1); pre: t − 1
        col = int(t) - 1
        change = y[:, col] - y[:, base]
        closed = change[treated].mean() - change[never].mean()
        assert gt.att[j] == pytest.approx(closed, abs=EXACT)
    for m in ("dr", "ipw"):  # without covariates all three estimators coincide
        np.testing.assert_allclose(
            group_time_att(y, cohort, periods, method=m).att, gt.att, atol=EXACT
        )


def test_not_yet_treated_differs_only_where_later_cohorts_are_controls():
    y, cohort, periods, _ = simulated(cohorts=(3.0, 5.0))
    never = group_time_att(y, cohort, periods, control_group="never_treated")
    nyt = group_time_att(y, cohort, periods, control_group="not_yet_treated")
    # exact: cohort and period labels are whole numbers
    assert np.array_equal(never.group, nyt.group) and np.array_equal(never.time, nyt.time)
    for j in range(len(never.att)):
        g, t, b = never.group[j], never.time[j], never.base[j]
        later_usable = g == 3.0 and max(t, b) < 5.0  # cohort 5 is not yet treated
        if later_usable:
            assert abs(nyt.att[j] - never.att[j]) > 1e-6
            assert nyt.n_control[j] > never.n_control[j]
        elif g == 3.0:
            assert nyt.att[j] == pytest.approx(never.att[j], abs=EXACT)


def test_universal_base_period_reference_cell_is_zero_and_post_cells_agree():
    y, cohort, periods, _ = simulated()
    var = group_time_att(y, cohort, periods)
    uni = group_time_att(y, cohort, periods, base_period="universal")
    ref = uni.time == uni.group - 1
    assert np.all(uni.att[ref] == 0) and np.all(uni.influence[:, ref] == 0)
    for j in np.flatnonzero(uni.post):
        k = np.flatnonzero((var.group == uni.group[j]) & (var.time == uni.time[j]))[0]
        assert uni.att[j] == pytest.approx(var.att[k], abs=EXACT)
    # a universal pre-period cell is the long difference against g − 1
    g, t = 4.0, 1.0
    j = np.flatnonzero((uni.group == g) & (uni.time == t))[0]
    d = y[:, 0] - y[:, 2]
    closed = d[cohort == g].mean() - d[np.isnan(cohort)].mean()
    assert uni.att[j] == pytest.approx(closed, abs=EXACT)
    assert np.isnan(analytic_se(uni.influence[:, ref])).all()


def test_anticipation_moves_the_base_period():
    y, cohort, periods, _ = simulated(t_n=6, cohorts=(4.0,))
    gt = group_time_att(y, cohort, periods, anticipation=1)
    post = gt.post
    assert np.all(gt.base[post] == 2.0)  # g − δ − 1


@pytest.mark.parametrize("method", ["reg", "ipw", "dr"])
@pytest.mark.parametrize("kind", ["simple", "dynamic", "group", "calendar"])
def test_influence_function_is_the_derivative_in_unit_weights(method, kind):
    """ψ_i / n = d estimate / d w_i: the influence function, with the nuisance-estimation and
    estimated-share terms, against a central difference in unit i's weight."""
    y, cohort, periods, x = simulated(n=40, covariate=True)

    def fit(weights):
        gt = group_time_att(y, cohort, periods, covariates=x, weights=weights, method=method)
        agg = aggregate(gt, kind)
        return np.concatenate([gt.att, agg.estimate, [agg.overall]]), gt, agg

    _, gt, agg = fit(None)
    psi = np.column_stack([gt.influence, agg.influence, agg.overall_influence])
    n, h = len(cohort), 1e-6
    for i in (0, 7, 19, 33):
        w_up, w_dn = np.ones(n), np.ones(n)
        w_up[i] += h
        w_dn[i] -= h
        deriv = (fit(w_up)[0] - fit(w_dn)[0]) / (2 * h)
        np.testing.assert_allclose(deriv, psi[i] / n, atol=DERIVATIVE_TOL)


def test_analytic_se_equals_brute_force_variance_of_the_influence_function():
    y, cohort, periods, x = simulated(n=80, covariate=True)
    gt = group_time_att(y, cohort, periods, covariates=x)
    psi = gt.influence
    assert np.abs(psi.mean(axis=0)).max() < 1e-12  # centred: variance = mean square
    brute = np.array([np.sqrt(np.var(psi[:, j]) / len(psi)) for j in range(psi.shape[1])])
    np.testing.assert_allclose(analytic_se(psi), brute, rtol=1e-12)
    clusters = np.arange(len(psi)) // 4
    sums = pd.DataFrame(psi).groupby(clusters).sum().to_numpy()
    brute_cl = np.sqrt((sums**2).sum(axis=0)) / len(psi)
    np.testing.assert_allclose(analytic_se(psi, clusters), brute_cl, rtol=1e-12)


def test_bootstrap_reproducible_and_close_to_analytic():
    y, cohort, periods, _ = simulated(n=400)
    gt = group_time_att(y, cohort, periods)
    a = multiplier_bootstrap(gt.influence, 999, seed=11)
    b = multiplier_bootstrap(gt.influence, 999, seed=11)
    c = multiplier_bootstrap(gt.influence, 999, seed=12)
    # same seed, same code, same process: identical bits is the reproducibility contract
    assert np.array_equal(a.std_error, b.std_error) and a.crit_value == b.crit_value
    assert not np.array_equal(a.std_error, c.std_error)
    big = multiplier_bootstrap(gt.influence, 20_000, seed=3, weights="mammen")
    np.testing.assert_allclose(big.std_error, analytic_se(gt.influence), rtol=0.06)
    assert big.crit_value > 1.96
    # the IQR-based SE of a known sample
    d = np.sort(a.deviations[:, 0])
    iqr = d[int(np.ceil(0.75 * 999)) - 1] - d[int(np.ceil(0.25 * 999)) - 1]
    assert a.std_error[0] == pytest.approx(iqr / IQR_NORMAL)


# ------------------------------------------------------------------------------------------
# The estimator on a ValidatedPanel
# ------------------------------------------------------------------------------------------


def test_fit_table_and_diagnostics(tmp_path):
    panel = mpdta_panel(tmp_path)
    before = panel.cells.copy()
    res = CallawaySantAnna(method="reg", inference=Inference(method="cluster_robust")).fit(
        panel, "y", "cs"
    )
    # exact: the caller's frame must be untouched, not merely close
    pd.testing.assert_frame_equal(panel.cells, before)
    t = res.table
    assert t.loc[0, "term"] == "ATT (simple)"
    assert t.loc[0, "estimate"] == pytest.approx(-0.0399512751551763, abs=EXACT)
    assert list(t["event_time"].iloc[1:]) == [-3, -2, -1, 0, 1, 2, 3]
    d = res.diagnostics
    assert len(d["att_gt"]) == 12 and d["units_per_cohort"] == {"2004": 20, "2006": 40, "2007": 131}
    assert d["pretest"]["p_value"] == pytest.approx(0.16812, abs=5e-6)
    assert d["aggregation_overall"]["estimate"] == pytest.approx(-0.0772398214573149, abs=EXACT)
    assert d["uniform_band_critical_value"]["aggregation"] > 1.96
    assert res.vcov.shape == (len(t), len(t))
    np.testing.assert_allclose(np.sqrt(np.diag(res.vcov)), t["std_error"], rtol=1e-12)
    json.dumps(res.to_dict())
    for kind, col in (("group", "cohort"), ("calendar", "period")):
        r = CallawaySantAnna(method="reg", aggregation=kind).fit(panel, "y", "cs")
        assert r.table[col].iloc[1:].notna().all()


def test_pretest_power_on_the_event_time_estimates(tmp_path):
    """Dynamic aggregation: Roth's pre-test power on the event-time rows with the covariance
    the result reports (the same numbers as pretest_summary on res.table and res.vcov), the
    leads read as one-period changes under the varying base and as changes from e = −1 under
    the universal base; none for other aggregations."""
    from pathfinder_eval.inference.pretrends_power import pretest_summary

    panel = mpdta_panel(tmp_path)
    for base in ("varying", "universal"):
        res = CallawaySantAnna(
            method="reg", base_period=base, inference=Inference(method="cluster_robust")
        ).fit(panel, "y", "cs")
        rows = res.table["event_time"].notna().to_numpy() & (res.table["std_error"] > 0)
        idx = np.flatnonzero(rows)
        want = pretest_summary(
            res.table["estimate"].to_numpy()[idx],
            res.vcov[np.ix_(idx, idx)],
            res.table["event_time"].to_numpy()[idx],
            -1.0,
            short_leads=base == "varying",
        )
        got = res.diagnostics["pretest_power"]
        assert got == pytest.approx(want, rel=1e-12) and 0 < got["slope_50"] < got["slope_80"]
    simple = CallawaySantAnna(method="reg", aggregation="group").fit(panel, "y", "cs")
    assert simple.diagnostics["pretest_power"] is None


def test_fit_invariant_to_row_order_and_unit_labels(tmp_path):
    data = pd.read_csv(MPDTA)
    (tmp_path / "a").mkdir()
    base = CallawaySantAnna().fit(mpdta_panel(tmp_path / "a"), "y", "cs")
    rng = np.random.default_rng(0)
    shuffled = data.sample(frac=1.0, random_state=3).copy()
    relabel = dict(
        zip(
            data["countyreal"].unique(),
            rng.permutation(len(data["countyreal"].unique())) + 10,
            strict=True,
        )
    )
    shuffled["countyreal"] = shuffled["countyreal"].map(relabel)
    (tmp_path / "b").mkdir()
    other = CallawaySantAnna().fit(mpdta_panel(tmp_path / "b", shuffled), "y", "cs")
    cols = ["estimate", "std_error", "ci_lower", "ci_upper"]
    np.testing.assert_allclose(other.table[cols], base.table[cols], atol=EXACT)


def test_bootstrap_fit_reproducible(tmp_path):
    panel = mpdta_panel(tmp_path)
    est = CallawaySantAnna(bootstrap_draws=499, seed=4)
    # same seed, same code, same process: identical bits is the reproducibility contract
    a, b = est.fit(panel, "y", "cs"), est.fit(panel, "y", "cs")
    pd.testing.assert_frame_equal(a.table, b.table)
    assert "multiplier bootstrap" in a.inference.label
    assert a.diagnostics["bootstrap"] == {"draws": 499, "weights": "rademacher", "seed": 4}


def test_cluster_by_unit_table_column(tmp_path):
    panel = mpdta_panel(tmp_path)
    units = panel.units.copy()
    units["region"] = [f"r{i % 25}" for i in range(len(units))]
    panel = dataclasses.replace(panel, units=units)
    est = CallawaySantAnna(inference=Inference(method="cluster_robust", cluster="region"))
    res = est.fit(panel, "y", "cs")
    assert res.diagnostics["n_clusters"] == 25
    with pytest.raises(EstimationError, match=r"inference\.cluster"):
        CallawaySantAnna(inference=Inference(cluster="nope")).fit(panel, "y", "cs")


def test_unbalanced_units_dropped_and_counted(tmp_path):
    data = pd.read_csv(MPDTA)
    drop_unit = data.loc[data["first.treat"] == 0, "countyreal"].iloc[0]
    holey = data[~((data.countyreal == drop_unit) & (data.year == 2005))]
    res = CallawaySantAnna().fit(mpdta_panel(tmp_path, holey), "y", "cs")
    assert res.diagnostics["units_dropped_unbalanced"] == 1
    assert any("balance the panel" in w for w in res.warnings)
    (tmp_path / "b").mkdir()
    ref = CallawaySantAnna().fit(
        mpdta_panel(tmp_path / "b", data[data.countyreal != drop_unit]), "y", "cs"
    )
    np.testing.assert_allclose(res.table["estimate"], ref.table["estimate"], atol=EXACT)


def test_a_cohort_losing_all_units_is_left_out_and_said_as_r_did_does(tmp_path):
    """Every 2004 county misses 2006: balancing drops the whole cohort. R's did estimates the
    other cohorts (with a warning); so does this, naming the cohort and its units, and the
    numbers are those of the data without the 2004 counties."""
    data = pd.read_csv(MPDTA)
    g04 = data.loc[data["first.treat"] == 2004, "countyreal"].unique()
    holey = data[~(data.countyreal.isin(g04) & (data.year == 2006))]
    res = CallawaySantAnna().fit(mpdta_panel(tmp_path, holey), "y", "cs")
    assert any(w.startswith("Cohort(s) 2004 lost all their units") for w in res.warnings)
    assert {f"c{u}" for u in g04} <= set(res.dropped[0].units)
    (tmp_path / "b").mkdir()
    ref = CallawaySantAnna().fit(
        mpdta_panel(tmp_path / "b", data[~data.countyreal.isin(g04)]), "y", "cs"
    )
    np.testing.assert_allclose(res.table["estimate"], ref.table["estimate"], atol=EXACT)
    np.testing.assert_allclose(res.table["std_error"], ref.table["std_error"], atol=EXACT)


def test_no_cohort_left_after_balancing_is_an_error_naming_them(tmp_path):
    """Every treated county misses 2003: balancing drops cohorts 2006 and 2007. Cohort 2004
    has no period before its start left, so the panel left it out before (its own ledger
    reason), and balancing is not blamed for it."""
    data = pd.read_csv(MPDTA)
    treated = data.loc[data["first.treat"] > 0, "countyreal"].unique()
    holey = data[~(data.countyreal.isin(treated) & (data.year == 2003))]
    panel = mpdta_panel(tmp_path, holey)
    with pytest.raises(
        EstimationError, match=r"no treated cohort.*\(cohort\(s\) 2006, 2007 lose all"
    ):
        CallawaySantAnna().fit(panel, "y", "cs")
    assert any("no usable period before its start" in e.reason for e in panel.exclusions)


def test_an_anticipation_that_leaves_no_base_period_is_named_as_the_cause(tmp_path):
    """mpdta (2003–2007, cohorts 2004, 2006, 2007) with anticipation 4 on a complete panel:
    the refusal blamed balancing and asked for complete series, which they were."""
    with pytest.raises(EstimationError) as err:
        CallawaySantAnna(anticipation=4).fit(mpdta_panel(tmp_path), "y", "cs")
    text = err.value.one_line()
    assert "cohort(s) 2004, 2006, 2007 have no base period before the data's first period " in text
    assert "2003 with anticipation 4" in text and "balance" not in text
    assert text.endswith("Fix: lower options.anticipation")


def test_bad_options_are_design_errors_and_bad_data_estimation_errors(tmp_path):
    panel = mpdta_panel(tmp_path)
    with pytest.raises(DesignError, match=r"options\.method: bad value 'gmm'; allowed: one of"):
        CallawaySantAnna(method="gmm")
    with pytest.raises(DesignError, match=r"inference\.method: inference method 'cr2'"):
        CallawaySantAnna(inference=Inference(method="cr2"))
    with pytest.raises(EstimationError, match=r"options\.covariates"):
        CallawaySantAnna(covariates=("lpop",)).fit(panel, "y", "cs")


# ------------------------------------------------------------------------------------------
# Peers (skipped when not installed)
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["reg", "dr", "ipw"])
def test_matches_diff_diff(mpdta_wide, method):
    dd = pytest.importorskip("diff_diff")
    y, cohort, periods, _ = mpdta_wide
    data = pd.read_csv(MPDTA)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = dd.CallawaySantAnna(estimation_method=method).fit(
            data, "lemp", "countyreal", "year", "first.treat"
        )
    gt = group_time_att(y, cohort, periods, method=method)
    se = analytic_se(gt.influence)
    for j in range(len(gt.att)):
        peer = res.group_time_effects[(int(gt.group[j]), int(gt.time[j]))]
        assert gt.att[j] == pytest.approx(peer["effect"], abs=EXACT)
        assert se[j] == pytest.approx(peer["se"], abs=1e-8)


@pytest.mark.parametrize(
    "options",
    [
        {"control_group": "not_yet_treated"},
        {"base_period": "universal"},
        {"anticipation": 1},
        {"control_group": "not_yet_treated", "base_period": "universal", "method": "ipw"},
    ],
)
def test_matches_csdid_options(mpdta_wide, options):
    pytest.importorskip("csdid")
    from csdid.att_gt import ATTgt

    y, cohort, periods, lpop = mpdta_wide
    data = pd.read_csv(MPDTA)
    method = options.get("method", "dr")
    control = {"never_treated": "nevertreated", "not_yet_treated": "notyettreated"}
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        fit = ATTgt(
            yname="lemp",
            gname="first.treat",
            idname="countyreal",
            tname="year",
            data=data,
            xformla="lemp~lpop",
            anticipation=options.get("anticipation", 0),
            control_group=control[options.get("control_group", "never_treated")],
        ).fit(est_method=method, base_period=options.get("base_period", "varying"), bstrap=False)
        dyn = fit.aggte(typec="dynamic", bstrap=False).atte
    c, _ = prepare_cohorts(cohort, periods, options.get("anticipation", 0))
    gt = group_time_att(
        y,
        c,
        periods,
        covariates=lpop,
        method=method,
        control_group=options.get("control_group", "never_treated"),
        anticipation=options.get("anticipation", 0),
        base_period=options.get("base_period", "varying"),
    )
    r = fit.results
    np.testing.assert_allclose(gt.att, r["att"], atol=EXACT)
    se = np.nan_to_num(analytic_se(gt.influence))
    np.testing.assert_allclose(se, np.nan_to_num(np.asarray(r["se"], float)), atol=1e-9)
    agg = aggregate(gt, "dynamic")
    np.testing.assert_allclose(agg.estimate, dyn["att_egt"], atol=EXACT)
    assert agg.overall == pytest.approx(dyn["overall_att"], abs=EXACT)


@pytest.mark.parametrize("method", ["reg", "ipw", "dr"])
def test_unconditional_kernel_equals_general_2x2(method):
    """The no-covariate kernel against the general estimator with an intercept-only design
    (kept as the test oracle), including unit weights."""
    from pathfinder_eval.estimators.did.group_time import did_panel_2x2

    y, cohort, periods, _ = simulated(n=90, cohorts=(3.0, 4.0))
    w = np.random.default_rng(1).uniform(0.5, 2.0, len(cohort))
    gt = group_time_att(
        y, cohort, periods, weights=w, method=method, control_group="not_yet_treated"
    )
    for j in range(len(gt.att)):
        g, t, b = gt.group[j], int(gt.time[j]) - 1, int(gt.base[j]) - 1
        ctrl = np.isnan(cohort) | ((cohort > max(gt.time[j], gt.base[j])) & (cohort != g))
        idx = np.flatnonzero((cohort == g) | ctrl)
        cell = did_panel_2x2(
            y[idx, t] - y[idx, b],
            (cohort[idx] == g).astype(float),
            np.ones((len(idx), 1)),
            w[idx],
            method,
        )
        assert gt.att[j] == pytest.approx(cell.att, abs=EXACT)
        np.testing.assert_allclose(
            gt.influence[idx, j], cell.influence * len(cohort) / len(idx), atol=EXACT
        )


def test_pretest_with_fewer_treated_units_than_pre_cells_warns(tmp_path):
    from did_helpers import make_panel, simulated

    frame = simulated(n=20, t=8, treated=("u00", "u01"), start=7)
    res = CallawaySantAnna().fit(make_panel(tmp_path, frame, {7: ["u00", "u01"]}), "y", "a")
    pre = res.diagnostics["pretest"]
    assert pre is not None and pre["df"] == 5  # periods 2..6 before the start in period 7
    assert any("pre-test compares 5 pre-start cells using only 2" in w for w in res.warnings)


@pytest.mark.parametrize(
    "inference",
    [
        Inference(method="cluster_robust"),
        Inference(method="multiplier_bootstrap", draws=199),
        Inference(),
    ],
    ids=["analytic", "bootstrap", "default"],
)
def test_outcomes_on_a_tiny_scale_keep_their_standard_errors(tmp_path, inference):
    """did's absolute zero-SE line (1.5e-7) is a line in the outcome's units: mpdta's log
    employment times 1e-8 gave every SE ≤ 1.5e-7 and all of them were blanked, with the
    pre-test. The line now scales with the outcome's spread below 1, so estimates, SEs,
    bands and the pre-test scale exactly; at sd(y) ≥ 1 (mpdta: 1.5) it is did's own."""
    data = pd.read_csv(MPDTA)
    tiny = data.assign(lemp=data["lemp"] * 1e-8)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    est = CallawaySantAnna(method="reg", inference=inference, seed=3)
    base = est.fit(mpdta_panel(tmp_path / "a", data), "y", "cs")
    small = est.fit(mpdta_panel(tmp_path / "b", tiny), "y", "cs")
    assert base.table["std_error"].notna().sum() >= 7
    # the multiplier bootstrap's products are single precision (relative rounding ~1e-6)
    rtol = 1e-5 if inference.method == "multiplier_bootstrap" else 1e-9
    for col in ("estimate", "std_error", "ci_lower", "ci_upper"):
        np.testing.assert_allclose(small.table[col] * 1e8, base.table[col], rtol=rtol)
    assert small.diagnostics["pretest"]["statistic"] == pytest.approx(
        base.diagnostics["pretest"]["statistic"], rel=1e-6
    )
