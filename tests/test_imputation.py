"""BJS imputation: closed forms, a dummy-regression oracle, diff-diff, invariances."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pathfinder_eval.estimators.imputation import Imputation, imputation
from test_sun_abraham import MPDTA, mpdta
from test_twfe import make_panel

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
    pd.testing.assert_frame_equal(shuffled, before)


def test_treated_cells_without_untreated_data_are_dropped_and_counted():
    d = staggered_unbalanced()
    d = d[~((d["unit"] == "u01") & (d["period"] < 4))]  # u01 (cohort 4) loses its pre-periods
    res = imputation(d["y"], d["unit"], d["period"], d["cohort"])
    assert res.n_dropped == int(((d["unit"] == "u01") & (d["period"] >= 4)).sum())
    assert np.isfinite(res.estimate).all()
