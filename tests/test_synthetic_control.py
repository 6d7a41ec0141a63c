"""Synthetic control and SDID on panels with a known effect, and the tests' size by simulation."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

import pathfinder_eval as pe
from did_helpers import make_panel
from pathfinder_eval.errors import EstimationError
from pathfinder_eval.estimators.synthetic.conformal import conformal_interval, conformal_pvalue
from pathfinder_eval.estimators.synthetic.core import synthdid
from pathfinder_eval.estimators.synthetic.estimators import (
    SyntheticControl,
    SyntheticDiD,
    synthetic_control_unit,
)


def factor_panel(rng, n0=20, t=20, n1=1, phi=1.0):
    """Donors and treated units from two common AR(1) factors (φ = 1: random walks) plus
    noise (rows: units)."""
    shocks = rng.normal(size=(2, t))
    factors = np.empty((2, t))
    factors[:, 0] = shocks[:, 0]
    for j in range(1, t):
        factors[:, j] = phi * factors[:, j - 1] + shocks[:, j]
    load = rng.uniform(0.5, 1.5, size=(n0 + n1, 2))
    return 10 + load @ factors + rng.normal(scale=0.3, size=(n0 + n1, t))


def to_panel(tmp_path, y: np.ndarray, n0: int, starts: dict[int, list[int]]):
    rows = [
        {"unit": f"u{i:02d}", "period": p + 1, "y": float(y[i, p])}
        for i in range(y.shape[0])
        for p in range(y.shape[1])
    ]
    waves = {s: [f"u{i:02d}" for i in idx] for s, idx in starts.items()}
    return make_panel(tmp_path, pd.DataFrame(rows), waves)


def test_treated_unit_that_is_a_convex_combination_is_recovered_exactly(tmp_path):
    rng = np.random.default_rng(5)
    donors = factor_panel(rng, n0=20, t=20, n1=0)
    treated = 0.5 * donors[3] + 0.3 * donors[7] + 0.2 * donors[11]
    treated[15:] += 2.0
    y = np.vstack([donors, treated])
    res = SyntheticControl().fit(to_panel(tmp_path, y, 20, {16: [20]}), "y", "sc")
    row = res.table.iloc[0]
    # Frank–Wolfe stops at synthdid's tolerance, not at the exact optimum: 1% of the effect.
    assert row["estimate"] == pytest.approx(2.0, abs=0.02)
    unit = res.diagnostics["units"]["u20"]
    assert unit["pre_rmspe"] < 0.01
    weights = unit["donor_weights"]
    big = {k: v for k, v in weights.items() if v > 0.02}
    assert big == pytest.approx({"u03": 0.5, "u07": 0.3, "u11": 0.2}, abs=0.02)
    # the treated unit's ratio is the most extreme of 21: the smallest attainable p-value
    assert row["p_value"] == pytest.approx(1 / 21)
    assert set(unit["leave_one_donor_out"]) >= {"u03", "u07", "u11"}


def test_staggered_sdid_is_the_cell_weighted_average_of_cohort_estimates(tmp_path):
    rng = np.random.default_rng(11)
    y = factor_panel(rng, n0=25, t=12, n1=3)
    y[25, 8:] += 1.0
    y[26:, 10:] += 2.0
    panel = to_panel(tmp_path, y, 25, {9: [25], 11: [26, 27]})
    res = SyntheticDiD(replications=50, seed=1).fit(panel, "y", "sdid")
    first = synthdid(np.vstack([y[:25], y[25]]), 25, 8, "sdid").estimate
    second = synthdid(np.vstack([y[:25], y[26:]]), 25, 10, "sdid").estimate
    w1, w2 = 1 * 4, 2 * 2  # treated cells: N1 × T1 per cohort
    assert res.table.iloc[0]["estimate"] == pytest.approx((w1 * first + w2 * second) / 8, abs=1e-10)
    assert res.diagnostics["cohort_weights"] == {"9": 0.5, "11": 0.5}
    assert res.table.iloc[0]["std_error"] > 0


def test_a_donor_counts_once_in_the_cells_used(tmp_path):
    """SC counted each donor's periods once per treated unit: 104 units over 5 periods were
    reported as 1,030 unit-periods. SDID counted them once per cohort."""
    rng = np.random.default_rng(13)
    y = factor_panel(rng, n0=25, t=12, n1=3)
    panel = to_panel(tmp_path, y, 25, {9: [25], 11: [26, 27]})
    sc = SyntheticControl().fit(panel, "y", "sc")
    sdid = SyntheticDiD(replications=20, seed=1).fit(panel, "y", "sdid")
    for res in (sc, sdid):
        assert (res.n_units, res.n_treated, res.n_obs) == (28, 3, 28 * 12)


def test_sdid_recovers_a_known_effect(tmp_path):
    rng = np.random.default_rng(3)
    y = factor_panel(rng, n0=30, t=15, n1=2)
    y[30:, 10:] += 3.0
    res = SyntheticDiD(replications=100, seed=2).fit(
        to_panel(tmp_path, y, 30, {11: [30, 31]}), "y", "sdid"
    )
    row = res.table.iloc[0]
    assert row["estimate"] == pytest.approx(3.0, abs=0.5)
    assert row["ci_lower"] < 3.0 < row["ci_upper"]


def test_conformal_p_value_floor_and_unbounded_set():
    rng = np.random.default_rng(0)
    y = factor_panel(rng, n0=10, t=5)
    assert conformal_pvalue(y, 10, 4, 0.0) >= 1 / 5
    assert conformal_interval(y, 10, 4, 0.0, 0.05) == (-np.inf, np.inf)


def test_conformal_rejects_a_large_effect_and_covers_it():
    rng = np.random.default_rng(2)
    y = factor_panel(rng, n0=20, t=40)
    y[-1, 36:] += 5.0
    assert conformal_pvalue(y, 20, 36, 0.0) <= 0.05
    lo, hi = conformal_interval(y, 20, 36, 5.0, 0.1)
    assert lo < 5.0 < hi and np.isfinite(lo) and np.isfinite(hi)


@pytest.mark.slow
def test_size_of_permutation_and_conformal_tests_by_simulation():
    """No effect, one treated unit from the same stationary factor model (AR(1) factors, the
    setting in which Chernozhukov et al. prove validity): rejection rates at 10% stay at or
    below nominal plus Monte Carlo error (400 panels: 2 SE = 3 points)."""
    rng = np.random.default_rng(20210)
    n_sims, alpha = 400, 0.10
    perm = conf = 0
    for _ in range(n_sims):
        y = factor_panel(rng, n0=19, t=30, phi=0.5)
        perm += synthetic_control_unit(y, 19, 25).permutation_p_value <= alpha
        conf += conformal_pvalue(y, 19, 25, 0.0) <= alpha
    mc = 2 * np.sqrt(alpha * (1 - alpha) / n_sims)
    assert perm / n_sims <= alpha + mc, perm / n_sims
    assert conf / n_sims <= alpha + mc, conf / n_sims


def test_sdid_jackknife_option_equals_the_core_jackknife(tmp_path):
    from pathfinder_eval.estimators.synthetic.core import jackknife_se

    rng = np.random.default_rng(8)
    y = factor_panel(rng, n0=25, t=12, n1=3)
    panel = to_panel(tmp_path, y, 25, {9: [25, 26, 27]})
    res = SyntheticDiD(variance="jackknife").fit(panel, "y", "sdid")
    fit = synthdid(y, 25, 8, "sdid")
    assert res.table.iloc[0]["std_error"] == pytest.approx(jackknife_se(y, 25, 8, fit), rel=1e-12)
    assert "jackknife" in res.inference.label


def test_jackknife_with_one_treated_unit_is_not_estimable(tmp_path):
    y = factor_panel(np.random.default_rng(9), n0=10, t=8)
    with pytest.raises(EstimationError, match="at least two treated units"):
        SyntheticDiD(variance="jackknife").fit(to_panel(tmp_path, y, 10, {6: [10]}), "y", "s")


def test_predictor_weights_never_fit_worse_than_equal_weights():
    from pathfinder_eval.estimators.synthetic.predictors import predictor_weights

    rng = np.random.default_rng(4)
    y0 = rng.normal(size=(25, 8)).cumsum(axis=1)
    x0 = rng.normal(size=(2, 25))
    w = np.zeros(25)
    w[[3, 9]] = [0.7, 0.3]
    y1 = w @ y0 + rng.normal(scale=0.2, size=8)
    x1 = x0 @ w + rng.normal(scale=1.0, size=2)  # predictors only loosely informative
    fit = predictor_weights(np.concatenate([x1, y1]), np.vstack([x0, y0.T]), y1, y0)
    assert fit.v.sum() == pytest.approx(1.0) and (fit.v >= 0).all()
    assert fit.pre_mspe <= fit.equal_v_mspe
    assert fit.omega.sum() == pytest.approx(1.0) and (fit.omega >= -1e-12).all()


def test_synthetic_control_with_a_predictor_outcome(tmp_path):
    rng = np.random.default_rng(6)
    y = factor_panel(rng, n0=15, t=10)
    y[-1, 7:] += 1.5
    panel = to_panel(tmp_path, y, 15, {8: [15]})
    # a second outcome as predictor: reuse the same cells under another id
    cells = panel.cells.copy()
    other = cells.assign(outcome="x", y=cells["y"] * 0.5 + 1.0)
    panel = replace(panel, cells=pd.concat([cells, other], ignore_index=True))
    res = SyntheticControl(predictors=("x",)).fit(panel, "y", "sc")
    unit = res.diagnostics["units"]["u15"]
    assert set(unit["predictor_weights"]) == {"x", *(f"outcome {p}" for p in range(1, 8))}
    assert sum(unit["predictor_weights"].values()) == pytest.approx(1.0)
    assert res.table.iloc[0]["estimate"] == pytest.approx(1.5, abs=0.5)
    assert "data-driven" in res.diagnostics["v_matrix"]


def _gap_table(view: dict) -> dict[str, list[str]]:
    return {r["period"]: r["cells"] for r in view["rows"]}


def test_sc_gap_chart_table_is_the_estimators_gap_series(tmp_path):
    from pathfinder_eval.panel import OutcomeInfo
    from pathfinder_eval.report.format import fmt
    from pathfinder_eval.report.synthetic_view import gap_chart

    rng = np.random.default_rng(21)
    y = factor_panel(rng, n0=15, t=10, n1=2)
    y[15:, 7:] -= 1.5
    panel = to_panel(tmp_path, y, 15, {8: [15, 16]})
    res = SyntheticControl().fit(panel, "y", "sc")
    view = gap_chart(res, res.facts, OutcomeInfo("y", "Score", "count", "neutral", True), str)
    assert view["series"] == ["u15", "u16"]
    table = _gap_table(view)
    assert list(table) == [str(p) for p in range(1, 11)]
    for j, unit in enumerate(("u15", "u16")):
        w = res.diagnostics["units"][unit]["donor_weights"]
        donors = np.array([w.get(f"u{i:02d}", 0.0) for i in range(15)])
        gaps = y[15 + j] - donors @ y[:15]  # treated minus synthetic, from the weights
        assert [table[str(p + 1)][j] for p in range(10)] == [fmt(g) for g in gaps]
        post = res.table[res.table["term"].str.startswith(f"{unit}: gap")]["estimate"]
        assert [fmt(g) for g in post] == [table[str(p)][j] for p in (8, 9, 10)]
    svg = view["svg"]
    assert svg.startswith("<svg") and "start 8" in svg and "u16" in svg
    assert "the table beside it gives the values" in view["alt"]


def test_sdid_gap_series_minus_baseline_is_the_effect_curve(tmp_path):
    from pathfinder_eval.panel import OutcomeInfo
    from pathfinder_eval.report.format import fmt
    from pathfinder_eval.report.synthetic_view import BASELINE_ROW, gap_chart

    rng = np.random.default_rng(4)
    y = factor_panel(rng, n0=20, t=10, n1=2)
    y[20:, 7:] += 2.0
    res = SyntheticDiD(replications=20, seed=1).fit(
        to_panel(tmp_path, y, 20, {8: [20, 21]}), "y", "s"
    )
    d = res.diagnostics
    omega = np.array([d["unit_weights"]["8"].get(f"u{i:02d}", 0.0) for i in range(20)])
    gaps = y[20:].mean(axis=0) - omega @ y[:20]
    assert list(d["gaps"]["8"].values()) == pytest.approx(gaps, abs=1e-12)
    lam = np.array([d["time_weights"]["8"].get(str(p), 0.0) for p in range(1, 8)])
    assert d["gap_baseline"]["8"] == pytest.approx(gaps[:7] @ lam, abs=1e-12)
    curve = res.table[res.table["term"].str.startswith("cohort 8")]["estimate"].to_numpy()
    assert gaps[7:] - d["gap_baseline"]["8"] == pytest.approx(curve, abs=1e-10)
    assert res.table.iloc[0]["estimate"] == pytest.approx(curve.mean(), abs=1e-10)
    view = gap_chart(res, res.facts, OutcomeInfo("y", "Score", "count", "neutral", True), str)
    table = _gap_table(view)
    assert [table[str(p)][0] for p in range(1, 11)] == [fmt(g) for g in gaps]
    assert table[BASELINE_ROW] == [fmt(d["gap_baseline"]["8"])]


def test_two_donors_leave_one_out_is_the_other_donor():
    """Two donors, two pre-periods: leaving one out leaves the other as the synthetic control,
    so each leave-one-out ATT is the mean post gap against the other (closed form). The refit
    used to estimate the noise scale from one change, failing the whole analysis with a
    message about series that do not vary (found by fuzzing)."""
    y = {
        "d1": [1.0, 1.4, 1.1, 1.9, 1.6],
        "d2": [2.0, 2.1, 2.6, 2.2, 2.9],
        "t1": [1.5, 1.8, 2.9, 3.1, 3.3],
    }
    rows = [
        {"unit": u, "year": 2011 + j, "y": v, "first": 2013 if u == "t1" else 0}
        for u, series in y.items()
        for j, v in enumerate(series)
    ]
    res = pe.synthetic_control(
        pd.DataFrame(rows), outcome="y", unit="unit", time="year", first_treated="first"
    )
    loo = res.facts.units["t1"]["leave_one_donor_out"]
    post = np.array(y["t1"][2:])
    assert loo["d1"] == pytest.approx(np.mean(post - y["d2"][2:]), abs=1e-12)
    assert loo["d2"] == pytest.approx(np.mean(post - y["d1"][2:]), abs=1e-12)
    with pytest.raises(EstimationError, match="give 1 period-to-period change"):
        synthdid(np.array([y["d1"], y["t1"]])[:, :3], 1, 2, "sc")


@pytest.mark.parametrize("name", ["synthetic_did", "synthetic_control"])
def test_donors_with_a_missing_cell_are_counted_and_named(name):
    """A donor missing one year cannot enter a synthetic comparison: the estimate is the
    one without it, and the result says so in its warnings and counts its rows in `dropped`
    (it was only in a diagnostic, found by a review)."""
    rng = np.random.default_rng(5)
    rows = [
        {"unit": f"u{i}", "year": 2011 + t, "y": 10 + i % 3 + 0.3 * t + rng.normal(0, 0.2),
         "first": 2015 if i < 2 else 0}
        for i in range(12)
        for t in range(7)
    ]  # fmt: skip
    data = pd.DataFrame(rows)
    holey = data[~((data["unit"] == "u7") & (data["year"] == 2013))]
    fit = getattr(pe, name)
    kw = dict(outcome="y", unit="unit", time="year", first_treated="first")
    res = fit(holey, **kw)
    ref = fit(data[data["unit"] != "u7"], **kw)
    np.testing.assert_allclose(res.table["estimate"], ref.table["estimate"], atol=1e-12)
    assert any(w.startswith("1 comparison units were left out of the donor pool") for w in
               res.warnings)  # fmt: skip
    assert [(d.rows, d.units) for d in res.dropped] == [(6, ("u7",))]
