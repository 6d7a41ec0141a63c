"""Stepped-wedge LMM engine: the cell-space REML, Kenward-Roger and Satterthwaite algebra
against a dense individual-level implementation of the textbook formulas, design checks,
invariances and the example design end to end."""

from __future__ import annotations

import itertools
import json
import warnings

import numpy as np
import pandas as pd
import pytest

import pathfinder_eval as pe
from pathfinder_eval.cli import main
from pathfinder_eval.data.records import records_outcomes
from pathfinder_eval.errors import DataError, DesignError, EstimationError
from pathfinder_eval.estimators.stepped_wedge.design import trial_arrays
from pathfinder_eval.estimators.stepped_wedge.lmm import (
    fit_reml,
    fixed_effects,
    kenward_roger_df,
    satterthwaite_df,
    small_sample,
    summarise_records,
)
from pathfinder_eval.estimators.stepped_wedge.lmm_estimator import SteppedWedge
from pathfinder_eval.inference.policy import stepped_wedge_lmm
from pathfinder_eval.pipeline import build_estimator
from pathfinder_eval.settings import Inference
from pathfinder_eval.spec import load_design
from sw_helpers import DATASETS, REF, ROOT, dense_deviance, dense_kr, panel_from_records, records

# The cell-space formulas and the dense ones are algebraically identical: agreement is limited
# by floating-point rounding in (N × N) solves.
ALGEBRA_TOL = 1e-8
# Numerical second derivatives of the dense deviance (central differences at steps 2e-4 and
# 1e-4, Richardson-extrapolated).
NUMERIC_HESSIAN_REL = 1e-4


def _dense(records: pd.DataFrame, structure: str, theta: np.ndarray):
    """V (N × N), its first derivatives and non-zero second derivatives in θ, from scratch."""
    c = records["cluster"].to_numpy()
    p = records["period"].to_numpy(float)
    same = (c[:, None] == c[None, :]).astype(float)
    lag = np.abs(p[:, None] - p[None, :])
    eye = np.eye(len(c))
    if structure == "hussey_hughes":
        tau2, sigma2 = theta
        return tau2 * same + sigma2 * eye, [same, eye], {}
    if structure == "nested_exchangeable":
        tau2, gamma2, sigma2 = theta
        cp = same * (lag == 0)
        return tau2 * same + gamma2 * cp + sigma2 * eye, [same, cp, eye], {}
    if structure == "random_slope":
        tau2, kappa, omega2, gamma2, sigma2 = theta
        x = records["trt"].to_numpy(float)
        cross = same * (x[:, None] + x[None, :])
        outer = same * np.outer(x, x)
        cp = same * (lag == 0)
        v = tau2 * same + kappa * cross + omega2 * outer + gamma2 * cp + sigma2 * eye
        return v, [same, cross, outer, cp, eye], {}
    if structure == "cluster_plus_decay":
        tau2, gamma2, r, sigma2 = theta
    else:
        (tau2, r, sigma2), gamma2 = theta, None
    dr = same * np.where(lag > 0, lag * r ** np.maximum(lag - 1, 0), 0.0)
    drr = same * np.where(lag > 1, lag * (lag - 1) * r ** np.maximum(lag - 2, 0), 0.0)
    if gamma2 is None:
        v = tau2 * same * r**lag + sigma2 * eye
        return v, [same * r**lag, tau2 * dr, eye], {(0, 1): dr, (1, 0): dr, (1, 1): tau2 * drr}
    v = tau2 * same + gamma2 * same * r**lag + sigma2 * eye
    second = {(1, 2): dr, (2, 1): dr, (2, 2): gamma2 * drr}
    return v, [same, same * r**lag, gamma2 * dr, eye], second


@pytest.mark.parametrize(
    ("file", "structure"),
    [
        ("sim_decay.csv", "exponential_decay"),
        ("sim_incomplete.csv", "nested_exchangeable"),
        ("sim_incomplete.csv", "exponential_decay"),
        ("sim_ne.csv", "hussey_hughes"),
        ("sim_decay.csv", "cluster_plus_decay"),
        ("sim_incomplete.csv", "cluster_plus_decay"),
        ("sim_ne.csv", "random_slope"),
        ("sim_incomplete.csv", "random_slope"),
    ],
)
def test_cell_space_equals_dense_individual_formulas(file, structure):
    records = pd.read_csv(REF / file)
    ci, clusters = pd.factorize(records["cluster"], sort=True)
    pi, periods = pd.factorize(records["period"], sort=True)
    y = records["y"].to_numpy(float)
    cells = summarise_records(ci, pi, y, (len(clusters), len(periods)))
    first = records[records["trt"] == 1].groupby("cluster")["period"].min()
    start = np.array([int(first.get(c, 99)) - 1 for c in clusters])
    fe = fixed_effects(cells.observed, start, "immediate")
    slope = None
    if structure == "random_slope":
        slope = (np.arange(len(periods))[None, :] >= start[:, None]) & cells.observed
    fit = fit_reml(cells, fe.X, structure, slope=slope)
    assert fit.converged
    x = fe.X[ci, pi]
    v, derivs, second = _dense(records, structure, fit.theta)
    assert fit.deviance == pytest.approx(dense_deviance(y, x, v), abs=ALGEBRA_TOL * 1e3)
    # a minimum: every feasible perturbation of θ raises the dense deviance
    for k in range(len(fit.theta)):
        for sign in (-1, 1):
            th = fit.theta.copy()
            th[k] = th[k] + sign * 1e-3 * max(abs(th[k]), 1e-2)
            if fit.theta_names[k] != "tau_slope_cov":  # a covariance may be negative
                th[k] = max(th[k], 0.0)
            if fit.theta_names[k] == "decay":
                th[k] = min(th[k], 1.0)
            if structure == "random_slope" and th[0] * th[2] < th[1] ** 2:
                continue  # outside the positive semi-definite cone of G: not a feasible point
            assert dense_deviance(y, x, _dense(records, structure, th)[0]) >= fit.deviance - 1e-9
    ss = small_sample(fit, cells, fe.X)
    phi, phi_a, p, w = dense_kr(x, v, derivs, second)
    assert np.abs(np.stack(p) - ss.p_mats).max() < ALGEBRA_TOL * np.abs(ss.p_mats).max()
    assert np.abs(phi - fit.vcov).max() < ALGEBRA_TOL
    assert np.abs(phi_a - ss.vcov_kr).max() < ALGEBRA_TOL
    assert np.abs(w - ss.w).max() < ALGEBRA_TOL * np.abs(w).max()
    # observed Hessian of the deviance: analytic (cell space) vs numerical (dense; central
    # differences at steps 2h and h, Richardson-extrapolated to cancel the O(h²) error)
    k = len(fit.theta)

    def numeric(h: float) -> np.ndarray:
        out = np.empty((k, k))
        for a, b in itertools.product(range(k), repeat=2):
            ea, eb = np.eye(k)[a] * h, np.eye(k)[b] * h
            f = [
                dense_deviance(y, x, _dense(records, structure, fit.theta + sa * ea + sb * eb)[0])
                for sa, sb in ((1, 1), (1, -1), (-1, 1), (-1, -1))
            ]
            out[a, b] = (f[0] - f[1] - f[2] + f[3]) / (4 * h * h)
        return out

    num = (4.0 * numeric(1e-4) - numeric(2e-4)) / 3.0
    assert ss.hessian == pytest.approx(num, rel=NUMERIC_HESSIAN_REL, abs=1e-2)
    lvec = np.zeros(fe.X.shape[2])
    lvec[-1] = 1.0
    assert np.isfinite(kenward_roger_df(ss, fit.vcov, lvec))
    assert satterthwaite_df(ss, fit.vcov, lvec) > 1.0


def _sim_panel(tmp_path, file="sim_ne.csv"):
    return panel_from_records(pd.read_csv(REF / file), "cluster", "trt", "y", tmp_path)


def test_invariant_to_row_order_and_cluster_labels(tmp_path):
    raw = pd.read_csv(REF / "sim_ne.csv")
    base = SteppedWedge().fit(_sim_panel(tmp_path), "y", "a").table
    shuffled = raw.sample(frac=1.0, random_state=1)
    shuffled["cluster"] = "z" + shuffled["cluster"].str[::-1]
    (tmp_path / "b").mkdir()
    other = SteppedWedge().fit(
        panel_from_records(shuffled, "cluster", "trt", "y", tmp_path / "b"), "y", "a"
    )
    cols = ["estimate", "std_error", "df", "p_value"]
    assert np.allclose(other.table[cols].to_numpy(), base[cols].to_numpy(), rtol=1e-9)


def test_panel_cells_are_not_modified(tmp_path):
    panel = _sim_panel(tmp_path)
    before = panel.cells.copy()
    SteppedWedge(effect="exposure_time").fit(panel, "y", "a")
    # exact: the caller's frame must be untouched, not merely close
    pd.testing.assert_frame_equal(panel.cells, before)


def test_tate_window_averages_the_first_exposure_times(tmp_path):
    panel = _sim_panel(tmp_path)
    full = SteppedWedge(effect="exposure_time").fit(panel, "y", "a").table
    two = SteppedWedge(effect="exposure_time", tate_window=2).fit(panel, "y", "a").table
    pte = full.set_index("event_time")["estimate"]
    assert two["estimate"].iloc[0] == pytest.approx((pte[1] + pte[2]) / 2, abs=1e-12)
    assert full["estimate"].iloc[0] == pytest.approx(pte.mean(), abs=1e-12)
    with pytest.raises(EstimationError, match="tate_window 9"):
        SteppedWedge(effect="exposure_time", tate_window=9).fit(panel, "y", "a")


def test_cell_summaries_without_ssw_are_refused(tmp_path):
    panel = _sim_panel(tmp_path)
    cells = panel.cells.drop(columns="ssw")
    bare = type(panel)(
        *[
            cells if f == "cells" else getattr(panel, f)
            for f in ("spec", "cells", "units", "periods", "outcomes", "exclusions", "data")
        ]
    )
    with pytest.raises(EstimationError, match="within-cell sum of squares"):
        SteppedWedge().fit(bare, "y", "a")


def test_design_without_mixed_periods_is_refused(tmp_path):
    raw = pd.read_csv(REF / "sim_ne.csv")
    raw = raw[(raw["trt"] == 1) | (raw["period"] == 1)]  # control cells only in period 1
    panel = panel_from_records(raw, "cluster", "trt", "y", tmp_path)
    with pytest.raises(EstimationError, match="no period has both"):
        SteppedWedge().fit(panel, "y", "a")


def test_unavailable_inference_is_a_design_error(tmp_path):
    text = (ROOT / "designs" / "examples" / "stepped_wedge_trial.yaml").read_text()
    path = tmp_path / "d.yaml"
    path.write_text(text.replace("method: kenward_roger", "method: wild_bootstrap"))
    with pytest.raises(DesignError, match="not available for stepped_wedge"):
        build_estimator(load_design(path), 0)


def test_example_design_reports_model_kr_df_icc_and_cac(tmp_path):
    design = ROOT / "designs" / "examples" / "stepped_wedge_trial.yaml"
    assert main(["run", str(design), "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "stepped_wedge_trial.json").read_text())
    runs = {a["id"]: a for a in doc["analyses"]}
    sw = runs["stepped_wedge_immediate"]
    est = sw["estimates"][0]
    assert sw["status"] == "ok" and est["ci_lower"] < 0.3 < est["ci_upper"]  # true effect 0.3
    assert 12 < est["df"] < 60  # KR df: far below the 1,800 individuals
    diag = sw["diagnostics"]
    assert diag["df_method"] == "kenward_roger" and diag["convergence"]["converged"]
    assert 0.0 < diag["icc"] < 0.2 and 0.0 <= diag["cac"] <= 1.0
    assert [s["clusters"] for s in diag["design"]["sequences"]] == [3, 3, 3, 3]
    # the default analysis: the TATE with the Mancl-DeRouen variance, t(12 − 1), the immediate
    # effect beside it and the test that the effect is constant, each choice explained
    default = runs["stepped_wedge"]
    tate = default["estimates"][0]
    assert tate["term"].startswith("Time-averaged effect (TATE") and tate["df"] == 11
    assert tate["ci_lower"] < 0.3 < tate["ci_upper"]
    diag = default["diagnostics"]
    assert diag["df_method"] == "mancl_derouen" and diag["effect_constancy"]["df"] == [3, 11]
    assert diag["immediate_effect"]["ci_lower"] < 0.3 < diag["immediate_effect"]["ci_upper"]
    rnd = runs["stepped_wedge_randomisation"]
    r = rnd["diagnostics"]["randomisation"]
    assert not r["exact"] and r["allocations"] == 10_000 and r["possible_allocations"] == 369_600
    assert rnd["estimates"][0]["p_value"] == r["p_value"] < 0.05
    assert rnd["estimates"][0]["ci_lower"] < 0.3 < rnd["estimates"][0]["ci_upper"]
    html = (tmp_path / "stepped_wedge_trial.html").read_text(encoding="utf-8")
    assert "Kenward-Roger degrees of freedom" in html and "Within-period ICC" in html
    assert "nested exchangeable" in html and "Randomisation test: p" in html
    assert "Chosen by default: the estimand is the time-averaged effect" in html
    assert "Does the effect change with exposure time?" in html


def test_satterthwaite_and_model_based_inference(tmp_path):
    panel = _sim_panel(tmp_path)
    s = SteppedWedge(inference=Inference(method="satterthwaite")).fit(panel, "y", "a").table
    m = SteppedWedge(inference=Inference(method="model_based")).fit(panel, "y", "a").table
    assert s["std_error"].iloc[0] == pytest.approx(m["std_error"].iloc[0], rel=1e-12)
    assert np.isinf(m["df"].iloc[0]) and 5 < s["df"].iloc[0] < 200
    assert s["p_value"].iloc[0] > m["p_value"].iloc[0]


RECORDS_DESIGN = """
name: sw_records
title: steppedwedge example data (individual records)
pilot: trial
unit_level: cluster
time: {{axis: period}}
rollout:
{waves}
comparison: {{pool: not_yet_treated, min_units: 1}}
outcomes: [{{column: outcome_cont, name: Continuous outcome}}]
analyses:
  - id: eti
    estimator: stepped_wedge
    options: {{effect: exposure_time}}
data: {{source: records, columns: {{unit: cluster, period: period}}}}
"""


def test_individual_records_run_through_the_cli(tmp_path):
    raw, *_ = records("sw_example")
    first = raw[raw["trt"] == 1].groupby("cluster")["period"].min()
    waves = "\n".join(
        f"  - {{wave: s{s}, start: {s}, units: [{', '.join(repr(str(u)) for u in g.index)}]}}"
        for s, g in first.groupby(first)
    )
    design = tmp_path / "sw_records.yaml"
    design.write_text(RECORDS_DESIGN.format(waves=waves))
    data = DATASETS["sw_example"][0]
    assert main(["run", str(design), "--data", str(data), "--out", str(tmp_path / "o")]) == 0
    doc = json.loads((tmp_path / "o" / "sw_records.json").read_text())
    (run,) = doc["analyses"]
    ref = pd.read_csv(REF / "values.csv").set_index(["dataset", "model", "shape", "quantity"])
    tate = ref.loc[("sw_example", "ne", "eti", "tate:estimate"), "value"]
    assert run["estimates"][0]["estimate"] == pytest.approx(tate, abs=1e-6)
    assert [e["event_time"] for e in run["estimates"]] == [None, 1, 2, 3, 4, 5]
    # the records count is 2011, which the report publishes rounded to 5 (disclosure control)
    assert run["n_obs"] == 90 and run["diagnostics"]["design"]["individuals"] == 2010


def test_records_reader_errors_and_exclusions():
    raw = pd.DataFrame({"c": ["a", "a", "b", "b"], "p": [1, 1, 1, 2], "y": ["1.5", "", "2", "bad"]})
    with pytest.raises(
        DataError, match=r"r\.csv: column y, row 4: non-numeric value 'bad' in an outcome"
    ):
        records_outcomes(raw, "c", "p", {"y": "y"}, "r.csv")
    odd = records_outcomes(raw.assign(y=["1", "c", "inf", "2e9"]), "c", "p", {"y": "y"}, "r.csv")
    assert [(e.reason, e.count, e.units) for e in odd.exclusions] == [
        (
            "individual record with an outcome withheld: suppressed to protect confidentiality "
            "(1 to 5, or secondary suppression) (c)",
            1,
            ("a",),
        ),
        (
            "individual record with an implausible value: a count, denominator or value that is "
            "not a finite number (first: r.csv row 3, column y)",
            1,
            ("b",),
        ),
        (
            "individual record with an implausible value: outside the outcome's plausible range "
            "(first: r.csv row 4, column y)",
            1,
            ("b",),
        ),
    ]
    ok = records_outcomes(raw.iloc[:3], "c", "p", {"y": "y"}, "r.csv")
    (excl,) = ok.exclusions
    assert excl.count == 1 and excl.units == ("a",) and "missing outcome" in excl.reason
    cell = ok.frame.set_index(["unit", "period"])
    assert cell.loc[("a", 1), "denominator"] == 1 and cell.loc[("b", 1), "value"] == 2.0
    with pytest.raises(DataError, match="column p, row 2: period 'late'"):
        records_outcomes(
            raw.assign(p=["1", "late", "1", "1"]),
            "c",
            "p",
            {"y": "y"},
            "r.csv",
            lambda v: int(v) if str(v).isdigit() else None,
        )


def test_cell_summaries_are_exact_for_large_cells():
    rng = np.random.default_rng(5)
    y = 1e6 + rng.normal(size=200_000)  # a large mean: one-pass sums of squares lose digits
    cluster, period = rng.integers(0, 4, y.size), rng.integers(0, 3, y.size)
    cells = summarise_records(cluster, period, y, (4, 3))
    frame = pd.DataFrame({"c": cluster, "p": period, "y": y})
    ref = frame.groupby(["c", "p"])["y"].agg(lambda v: ((v - v.mean()) ** 2).sum())
    assert np.allclose(cells.ssw.ravel(), ref.to_numpy(), rtol=1e-10)


def test_icc_and_cac_intervals(tmp_path):
    ne = SteppedWedge(effect="immediate").fit(_sim_panel(tmp_path), "y", "a").diagnostics
    lo, hi = ne["icc_ci"]
    assert 0 < lo < ne["icc"] < hi < 1
    lo, hi = ne["cac_ci"]
    assert 0 < lo < ne["cac"] < hi <= 1
    comp = ne["variance_components"]
    between = comp["tau2"] + comp["gamma2"]
    assert ne["icc"] == pytest.approx(between / (between + comp["sigma2"]), rel=1e-12)
    assert ne["cac"] == pytest.approx(comp["tau2"] / between, rel=1e-12)
    # the interval again, by a numerical gradient of logit(ICC) and the observed information
    panel = _sim_panel(tmp_path)
    trial = trial_arrays(panel.outcome_cells("y"), panel.periods)
    fe = fixed_effects(trial.cells.observed, trial.start, "immediate")
    fit = fit_reml(trial.cells, fe.X, "nested_exchangeable")
    cov = 2 * np.linalg.inv(small_sample(fit, trial.cells, fe.X).hessian)

    def logit_icc(th):
        icc = (th[0] + th[1]) / th.sum()
        return np.log(icc / (1 - icc))

    grad = np.array(
        [
            (logit_icc(fit.theta + e * 1e-6) - logit_icc(fit.theta - e * 1e-6)) / 2e-6
            for e in np.eye(3)
        ]
    )
    half = 1.959963984540054 * np.sqrt(grad @ cov @ grad)
    expect = 1 / (1 + np.exp(-(logit_icc(fit.theta) + np.array([-half, half]))))
    assert ne["icc_ci"] == pytest.approx(expect, rel=1e-6)
    ed = SteppedWedge(model="exponential_decay").fit(_sim_panel(tmp_path), "y", "a").diagnostics
    assert ed["cac"] == ed["variance_components"]["decay"]
    hh = SteppedWedge(model="hussey_hughes").fit(_sim_panel(tmp_path), "y", "a").diagnostics
    assert hh["cac"] == 1.0 and np.isnan(hh["cac_ci"]).all()


def test_spline_shape_reports_tate_and_point_effects_and_refuses_one_knot(tmp_path):
    panel = _sim_panel(tmp_path)
    res = SteppedWedge(effect="spline").fit(panel, "y", "a")
    eti = SteppedWedge(effect="exposure_time").fit(panel, "y", "a")
    assert res.table["term"].iloc[0].startswith("Time-averaged effect (TATE, exposure times 1–5")
    assert res.table["event_time"].iloc[1:].tolist() == [1, 2, 3, 4, 5]
    # with as many knots as exposure times the spline interpolates any curve: it equals ETI
    full = SteppedWedge(effect="spline", exposure_knots=5).fit(panel, "y", "a")
    assert full.table["estimate"].to_numpy() == pytest.approx(eti.table["estimate"], abs=1e-8)
    assert full.table["std_error"].to_numpy() == pytest.approx(eti.table["std_error"], rel=1e-7)
    with pytest.raises(DesignError, match=r"options\.exposure_knots: bad value 1; allowed: a"):
        SteppedWedge(effect="spline", exposure_knots=1)


def test_transition_periods_are_excluded_by_design_and_counted(tmp_path):
    raw = pd.read_csv(REF / "sim_ne.csv").assign(cluster=lambda d: d["cluster"].astype(str))
    first = raw[raw["trt"] == 1].groupby("cluster")["period"].min()
    panel = panel_from_records(raw, "cluster", "trt", "y", tmp_path, transition_periods=1)
    (excl,) = [e for e in panel.exclusions if e.reason.startswith("transition period")]
    # one cell per treated cluster, counted as its records (the file's rows)
    in_transition = raw["period"] == raw["cluster"].map(first)
    assert (excl.count, len(excl.units)) == (int(in_transition.sum()), len(first))
    res = SteppedWedge(effect="exposure_time").fit(panel, "y", "a")
    # the same as dropping each cluster's first intervention period from the records
    kept = raw[raw["period"] != raw["cluster"].map(first)]
    direct = SteppedWedge(effect="exposure_time").fit(
        panel_from_records(kept, "cluster", "trt", "y", tmp_path, starts=first), "y", "a"
    )
    assert res.table["estimate"].to_numpy() == pytest.approx(direct.table["estimate"], abs=1e-10)
    assert res.table["event_time"].iloc[1:].tolist() == list(range(2, 6))
    assert res.table["estimate"].iloc[0] != pytest.approx(
        SteppedWedge(effect="exposure_time")
        .fit(_sim_panel(tmp_path), "y", "a")
        .table["estimate"]
        .iloc[0]
    )


def test_covariate_errors_name_the_row_and_covariates_need_records(tmp_path):
    raw = pd.DataFrame({"c": ["a", "b"], "p": [1, 1], "y": [1.0, 2.0], "age": ["9", "ten"]})
    with pytest.raises(DataError, match=r"r\.csv: column age, row 2: covariate value 'ten'"):
        records_outcomes(raw, "c", "p", {"y": "y"}, "r.csv", covariates=("age",))
    kept = records_outcomes(raw.iloc[:1], "c", "p", {"y": "y"}, "r.csv", covariates=("age",))
    assert kept.records["age"].tolist() == [9.0]
    assert records_outcomes(raw, "c", "p", {"y": "y"}, "r.csv").records is None
    design = tmp_path / "d.yaml"
    design.write_text(
        RECORDS_DESIGN.format(waves="  - {wave: a, start: 2, units: ['1']}")
        .replace("source: records", "source: tidy, path: x.csv")
        .replace("period: period}", "period: period, covariates: [age]}")
    )
    with pytest.raises(DesignError, match=r"data\.source: records"):
        load_design(design)


def _first_clusters(n: int, tmp_path):
    raw, cluster, trt, y = records("sim_ne")
    keep = raw[raw[cluster].isin([f"k{i:02d}" for i in range(1, n + 1)])]
    return panel_from_records(keep.reset_index(drop=True), cluster, trt, y, tmp_path)


def test_default_is_the_time_averaged_effect_with_a_cluster_robust_variance(tmp_path):
    """The default analysis: exposure-time indicators with the TATE as headline, the
    Mancl-DeRouen variance with t(I − 1), the immediate-effect model beside it and the test that
    the effect is the same at every exposure time; each choice says why. It is the very same
    computation as asking for those options."""
    raw, cluster, trt, y = records("sim_ne")  # 10 clusters
    panel = panel_from_records(raw, cluster, trt, y, tmp_path)
    default = SteppedWedge().fit(panel, "y", "a")
    asked = SteppedWedge(effect="exposure_time", inference=Inference(method="mancl_derouen")).fit(
        panel, "y", "a"
    )
    pd.testing.assert_frame_equal(default.table, asked.table)
    assert default.table["term"].iloc[0].startswith("Time-averaged effect (TATE")
    assert default.inference.key == asked.inference.key == "lmm_mancl_derouen"
    assert default.inference.chosen_by_default and not asked.inference.chosen_by_default
    assert "chosen because a cluster-robust variance stays valid" in default.inference.label
    facts = default.diagnostics
    assert facts["effect_shape_choice"].startswith("the estimand is the time-averaged effect")
    assert "effect_shape_choice" not in asked.diagnostics
    assert default.table["df"].iloc[0] == 10 - 1
    # the immediate-effect model beside it: the same numbers as fitting it with the same variance
    immediate = SteppedWedge(effect="immediate", inference=Inference(method="mancl_derouen")).fit(
        panel, "y", "a"
    )
    for col in ("estimate", "std_error", "ci_lower", "ci_upper", "df"):
        assert facts["immediate_effect"][col] == immediate.table[col].iloc[0], col
    test = facts["effect_constancy"]
    assert test["df"][0] == len(default.table) - 2 and test["df"][1] == 9
    assert 0 < test["p_value"] < 1


def test_default_on_individual_records_is_mancl_derouen():
    """Records with covariates or a cohort got Kenward-Roger by default, which assumes the
    covariance model (16.5% size with clusters' own effects; found in review)."""
    choice = stepped_wedge_lmm("default", clusters=8)
    assert choice.method == "mancl_derouen" and choice.chosen_by_default and not choice.warning


def test_constancy_test_only_with_exposure_time_indicators(tmp_path):
    """The test that the effect is the same at every exposure time compares exposure-time
    indicators; a spline's or the immediate model's coefficients have no such test."""
    panel = _sim_panel(tmp_path)
    for shape in ("spline", "immediate"):
        res = SteppedWedge(effect=shape).fit(panel, "y", "a")
        assert "effect_constancy" not in res.diagnostics
        assert "immediate_effect" not in res.diagnostics
    eti = SteppedWedge(effect="exposure_time", inference=Inference(method="kenward_roger"))
    test = eti.fit(panel, "y", "a").diagnostics["effect_constancy"]
    assert test["method"].startswith("Kenward-Roger F test") and test["df"][1] > 0


def test_an_icc_at_the_boundary_has_the_whole_unit_interval_silently():
    """Three clusters, one per cell, decay model: σ² → 0 so the ICC is 1 − 6e-10 and its logit
    interval's half-width overflowed exp (a RuntimeWarning, found by fuzzing); the interval
    is (0, 1) without one."""
    y = [-1.577, -2.213, -3.507, -3.402, 0.315, -0.526, -2.041, 1.880, 0.045, 0.800]
    y += [-1.407, -0.321, 0.431, 0.480, 1.665]
    frame = pd.DataFrame(
        {
            "cluster": np.repeat(["c0", "c1", "c2"], 5),
            "period": np.tile(np.arange(1, 6), 3),
            "y": y,
            "start": np.repeat([4, 3, 2], 5),
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = pe.stepped_wedge(
            frame,
            outcome="y",
            cluster="cluster",
            period="period",
            start="start",
            model="exponential_decay",
            effect="immediate",
        )
    assert res.facts.icc > 1 - 1e-6 and res.facts.icc_ci == [0.0, 1.0]
