"""Stacked DiD (estimators/did/stacked.py): R (lm with the corrective weights, sandwich's
clustered HC1) on mpdta and an LA-shaped panel (tests/reference/r_stacked_did, script beside
the values), the closed form of the trimmed aggregate ATT, trimming, and the default
inference."""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pathfinder_eval as pe
from did_helpers import MPDTA, regional_panel, wide_frame
from pathfinder_eval.errors import EstimationError, PathfinderError
from pathfinder_eval.estimators.did.stacked import Stacked, stacked_did
from pathfinder_eval.settings import Inference

REF = Path(__file__).parent / "reference"
# Same algebra as R's lm + vcovCL (saturated cell means instead of QR): rounding only.
ESTIMATE_TOL, SE_TOL = 1e-10, 1e-9


def _arrays(name: str):
    if name == "mpdta":
        d = pd.read_csv(MPDTA)
        cohort = d["first.treat"].where(d["first.treat"] > 0)
        return d["lemp"], d["countyreal"], d["year"], cohort
    d = pd.read_csv(REF / "r_clubsandwich_twfe" / "panel_3of30.csv")
    if name.endswith("unbalanced"):
        d = d[d["keep"] == 1]
    return d["y"], d["unit"], d["period"], d["cohort"].where(d["cohort"] > 0)


def test_matches_r_lm_with_corrective_weights():
    """Seven windows and comparison rules on mpdta and on 3 of 30 LAs (balanced and with 8
    cells dropped): every row's estimate to 1e-10 and CR1 standard error to 1e-9 relative."""
    ref = pd.read_csv(REF / "r_stacked_did" / "values.csv")
    fits = ref.groupby(["data", "kappa_pre", "kappa_post", "control"], sort=False)
    assert fits.ngroups == 7
    for (data, k_pre, k_post, control), rows in fits:
        args = [np.asarray(a) for a in _arrays(data)]
        fit = stacked_did(*args, kappa_pre=k_pre, kappa_post=k_post, control_group=control)
        assert len(fit.estimate) == len(rows)
        np.testing.assert_allclose(fit.event_time, rows["event_time"], equal_nan=True)
        np.testing.assert_allclose(fit.estimate, rows["estimate"], rtol=ESTIMATE_TOL)
        np.testing.assert_allclose(np.sqrt(np.diag(fit.vcov)), rows["std_error"], rtol=SE_TOL)


def test_trimmed_aggregate_att_closed_form():
    """Wing et al. (2024): δ_e is the treated-share weighted mean over cohorts of each cohort's
    2×2 contrast of event time e against −1 with its clean controls (balanced panel: plain
    means)."""
    y, unit, period, cohort = (np.asarray(a) for a in _arrays("panel_3of30"))
    fit = stacked_did(y, unit, period, cohort, kappa_pre=3, kappa_post=2)
    c = np.where(np.isnan(cohort), np.inf, cohort)
    expected, shares = {}, {}
    for a in (5.0, 7.0):
        clean = c > a + 2

        def mean(sel, t, a=a):
            return y[sel & (period == a + t)].mean()

        treated = c == a
        shares[a] = np.unique(unit[treated]).size
        for e in (-3, -2, 0, 1, 2):
            dd = mean(treated, e) - mean(treated, -1) - (mean(clean, e) - mean(clean, -1))
            expected.setdefault(e, []).append(dd)
    w = np.array([shares[5.0], shares[7.0]], float) / 3
    for j, e in enumerate(fit.event_time[1:], start=1):
        assert fit.estimate[j] == pytest.approx(w @ expected[int(e)], abs=1e-12)
    assert fit.estimate[0] == pytest.approx(np.mean(fit.estimate[-3:]), abs=1e-14)
    # the rows are linear in the outcomes with the weights the fit reports
    np.testing.assert_allclose(fit.outcome_weights() @ y, fit.estimate, atol=1e-12)


def test_window_defaults_and_trimming():
    """No window given: the longest every cohort fits (mpdta: κ_pre 1 for the 2004 cohort,
    κ_post 0 for 2007). A window a cohort does not fit trims it, with the reason; when every
    cohort is trimmed the error says why and what to do."""
    args = [np.asarray(a) for a in _arrays("mpdta")]
    fit = stacked_did(*args)
    assert fit.kappa == (1, 0)
    assert [s.cohort for s in fit.included] == [2004.0, 2006.0, 2007.0]
    assert [s.n_treated for s in fit.included] == [20, 40, 131]
    trimmed = stacked_did(*args, kappa_pre=3, kappa_post=0)
    assert trimmed.trimmed == ((2004.0, "window [2001, 2004] outside the data"),)
    with pytest.raises(EstimationError, match="every cohort was trimmed") as err:
        stacked_did(*args, kappa_pre=4, kappa_post=1)
    assert "shorten kappa_pre" in str(err.value.fix)


def test_api_reports_trimmed_cohorts_and_rejects_bad_windows():
    data = pd.read_csv(MPDTA)
    cols = dict(outcome="lemp", unit="countyreal", time="year", first_treated="first.treat")
    res = pe.stacked(data, kappa_pre=3, kappa_post=0, inference="cluster_robust", **cols)
    why = "window [2001, 2004] outside the data"
    assert res.warnings == (f"Cohort 2004 left out of the stack: {why}.",)
    assert res.facts.trimmed == [{"cohort": 2004.0, "reason": why}]
    assert res.inference.key == "cr1"
    assert res.table["estimate"].iloc[1] == pytest.approx(0.0269565876588867, rel=1e-10)
    with pytest.raises(PathfinderError, match="kappa_pre"):
        pe.stacked(data, kappa_pre=0, **cols)


def test_default_inference_on_a_panel(tmp_path):
    """5 treated LAs: the comparison-pooled variance; 12 spread treated LAs without regional
    shocks: the cohort-stratified variance, equal to each cohort's sample variance of its
    units' weighted outcomes summed (no cohort of one here), with CR1 when asked."""
    panel = regional_panel(tmp_path, [0, 17, 33, 50, 71], shock_sd=0.5, seed=3)
    assert Stacked().fit(panel, "y", "a").inference.key == "pooled_panel"
    treated = [r * 15 + j for r in range(8) for j in range(2)][:12]
    spread = regional_panel(tmp_path, treated, shock_sd=0.0, seed=5)
    small = Stacked().fit(spread, "y", "a")
    assert small.inference.key == "cohort_stratified"
    cells = spread.outcome_cells("y")
    y, unit = cells["y"].to_numpy(float), cells["unit"].to_numpy()
    fit = stacked_did(y, unit, cells["period"].to_numpy(), cells["cohort"].to_numpy(float))
    w = fit.outcome_weights()
    per_unit = pd.DataFrame((w * y).T).groupby(unit).sum()
    cohort = cells.groupby("unit")["cohort"].first().reindex(per_unit.index).fillna(np.inf)
    var = sum(len(g) * g.var(ddof=1) for _, g in per_unit.groupby(cohort.to_numpy()))
    np.testing.assert_allclose(small.table["std_error"], np.sqrt(var), rtol=1e-10)
    cr1 = Stacked(inference=Inference(method="cluster_robust")).fit(spread, "y", "a")
    assert cr1.inference.key == "cr1"
    np.testing.assert_allclose(cr1.table["estimate"], small.table["estimate"])
    assert (cr1.table["df"] == cr1.n_units - 1).all()


def test_unbalanced_panel_falls_back_to_the_pooled_variance(tmp_path):
    """A comparison LA missing one period: the weights differ within its stratum, so the
    cohort-stratified variance does not apply; the default takes the comparison-pooled
    variance of the same rows and says why (not CR1, which over-rejects)."""
    treated = [r * 15 + j for r in range(8) for j in range(2)][:12]
    panel = regional_panel(tmp_path, treated, shock_sd=0.0, seed=5)
    cells = panel.cells
    gap = (cells["unit"] == "la014") & (cells["period"] == cells["period"].min() + 2)
    holed = replace(panel, cells=cells[~gap].reset_index(drop=True))
    res = Stacked().fit(holed, "y", "a")
    assert res.inference.key == "pooled_panel"
    assert "cohort-stratified variance does not apply" in res.inference.label
    assert res.n_obs == Stacked().fit(panel, "y", "a").n_obs - 1


def test_default_window_ignores_cohorts_starting_outside_the_data():
    """A cohort starting in the last period + 1 (never seen treated) or in the first period
    (never seen untreated) has no window: it is trimmed, and the default window is the one
    the other cohorts fit."""
    y, unit, year, cohort = (np.asarray(a, float) for a in _arrays("mpdta"))
    late = np.where(unit == unit[0], 2008.0, np.where(unit == unit[5], 2003.0, cohort))
    fit = stacked_did(y, unit, year, late)
    assert fit.kappa == (1, 0)
    assert [a for a, _ in fit.trimmed] == [2003.0, 2008.0]


def test_a_sub_experiment_without_comparisons_at_event_time_0_has_weight_0():
    """Cohort 2017's one comparison (u2, never treated) has no row in 2017: its control weight
    at event time 0 is 0, not the mean of nothing (found by fuzzing: a NaN and a
    RuntimeWarning)."""
    nan = np.nan
    frame = wide_frame(
        {
            "u0": [-0.00, nan, -1.89, nan, nan, 1.57, 0.29],
            "u1": [3.16, 1.98, 4.34, 1.81, 1.50, 1.42, 1.75],
            "u2": [-3.10, nan, nan, -0.95, -0.81, -0.82, nan],
            "u3": [-1.52, -1.75, -0.68, -0.44, -0.78, 1.20, nan],
            "u4": [0.43, -1.16, 0.70, -0.19, nan, 1.70, nan],
        },
        {"u0": 2017, "u1": 2013, "u3": 2015, "u4": 2015},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = pe.stacked(frame, outcome="y", unit="unit", time="year", first_treated="first")
    weights = {s["cohort"]: s["control_weight"] for s in res.facts.sub_experiments}
    assert weights[2017.0] == 0.0 and weights[2013.0] > 0 and weights[2015.0] > 0


def test_a_row_resting_on_single_cells_has_no_cr1_standard_error():
    """One treated unit (u2, from 2012) and one comparison at event time 0 (u0; u1 misses
    2012): the row's two cell means are single values, so its CR1 variance is exactly 0 and
    it read SE 0, an interval of no width (found by fuzzing, seed 11). Now no SE, df or
    interval and a warning; the row beside it keeps CR1 (two cells of two values each)."""
    nan = np.nan
    frame = wide_frame(
        {"u0": [nan, -1.75, 0.21], "u1": [-0.46, nan, 0.90], "u2": [0.62, 0.10, 1.56]},
        {"u2": 2012},
    )
    kw = {"outcome": "y", "unit": "unit", "time": "year", "first_treated": "first"}
    for inference in ("default", "cluster_robust"):  # default: CR1 (nothing to pool or stratify)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            res = pe.stacked(frame, **kw, inference=inference)
        assert res.inference.key == "cr1"
        table = res.table.set_index("term")
        assert table.loc["event time 0", ["std_error", "df", "ci_lower"]].isna().all()
        assert np.isnan(res.vcov[1]).all() and np.isnan(res.vcov[:, 1]).all()
        # event time 1 on cell means against 2011: u2's change less the comparisons' (both in
        # 2013, u1 alone in 2011); event time 0 likewise, each cell a single value
        assert table.loc["event time 1", "estimate"] == pytest.approx(
            (1.56 - 0.62) - ((0.21 + 0.90) / 2 + 0.46)
        )
        assert table.loc["event time 0", "estimate"] == pytest.approx(
            (0.10 - 0.62) - (-1.75 + 0.46)
        )
        assert table.loc["event time 1", "std_error"] > 0.1
        assert res.warnings[-1].startswith("event time 0: no standard error or interval.")
