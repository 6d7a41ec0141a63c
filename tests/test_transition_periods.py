"""Transition periods in a trial's power and plan: the cells the analysis leaves out are left out
of the GLS variance too, and exposure times count from the start as the LMM counts them."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import pathfinder_eval as pe
from cli_helpers import SHIPPED_DESIGNS
from pathfinder_eval.cli import main
from pathfinder_eval.estimators.stepped_wedge.lmm import fixed_effects
from pathfinder_eval.power.analytic import VarianceModel, cell_covariance, gls_precision, mdes
from pathfinder_eval.power.design import trial_matrix, trial_starts
from pathfinder_eval.spec import load_design

TRIAL = SHIPPED_DESIGNS["stepped_wedge_trial"]
BASE_WAVES = (
    ("Sequence 1, start: 2", "C03, C07, C11"),
    ("Sequence 2, start: 3", "C01, C05, C12"),
    ("Sequence 3, start: 4", "C02, C08, C10"),
    ("Sequence 4, start: 5", "C04, C06, C09"),
)


def trial_with_transitions(tmp_path, transitions, periods=6, window=None):
    """The example trial over `periods` periods, wave w with transitions[w] transition periods
    (and the primary analysis's tate_window when given)."""
    text = TRIAL.read_text(encoding="utf-8").replace("periods: 5,", f"periods: {periods},")
    for (head, units), k in zip(BASE_WAVES, transitions, strict=True):
        text = text.replace(
            f"{{wave: {head}, units: [{units}]}}",
            f"{{wave: {head}, transition_periods: {k}, units: [{units}]}}",
        )
    if window is not None:
        text = text.replace(
            "options: {model: nested_exchangeable}\n",
            f"options: {{model: nested_exchangeable, tate_window: {window}}}\n",
            1,
        )
    path = tmp_path / "stepped_wedge_trial.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def lmm_gls_vcov(design, starts, model, cell_size):
    """The effects' GLS covariance built from the LMM's own fixed effects (exposure time =
    periods since the start, transition cells unobserved): an independent path to the same
    numbers as power.analytic.gls_precision."""
    observed = ~np.isnan(design)
    fe = fixed_effects(observed, starts, "exposure_time")
    p = fe.X.shape[2]
    info = np.zeros((p, p))
    for i in range(design.shape[0]):
        seen = observed[i]
        x = fe.X[i][seen]
        v = cell_covariance(model, design.shape[1], np.full(design.shape[1], cell_size))
        info += x.T @ np.linalg.solve(v[np.ix_(seen, seen)], x)
    effect = list(fe.effect)
    return np.linalg.inv(info)[np.ix_(effect, effect)], fe.exposure


def test_the_trial_matrix_leaves_each_waves_transition_periods_unmeasured(tmp_path):
    spec = load_design(trial_with_transitions(tmp_path, (1, 0, 2, 0)))
    design = trial_matrix(spec)
    assert design.shape == (12, 6)
    expected = np.array(
        [
            [0, np.nan, 1, 1, 1, 1],  # starts in period 2, one transition period
            [0, 0, 1, 1, 1, 1],
            [0, 0, 0, np.nan, np.nan, 1],  # period 4, two
            [0, 0, 0, 0, 1, 1],
        ]
    )
    np.testing.assert_array_equal(design, np.repeat(expected, 3, axis=0))
    np.testing.assert_array_equal(trial_starts(spec), np.repeat([1, 2, 3, 4], 3))


def test_gls_power_counts_exposure_times_from_the_start_as_the_lmm_does(tmp_path):
    spec = load_design(trial_with_transitions(tmp_path, (1, 0, 2, 0)))
    design, starts = trial_matrix(spec), trial_starts(spec)
    model = VarianceModel.from_icc(0.05, cac=0.8)
    precision = gls_precision(design, model, 30, "exposure_time", starts=starts)
    reference, exposure = lmm_gls_vcov(design, starts, model, 30)
    assert precision.exposure == tuple(exposure) == (1, 2, 3, 4, 5)
    np.testing.assert_allclose(precision.vcov, reference, rtol=1e-10)
    # counting exposure from the first measured cell instead (the old rule) puts a wave's
    # third period since its start beside another's first: a different, wrong variance
    misaligned = gls_precision(design, model, 30, "exposure_time")
    assert misaligned.variance != pytest.approx(precision.variance, rel=1e-3)


def test_a_trial_plan_leaves_out_transition_periods(tmp_path):
    """The plan's MDES ignored transition_periods: 0.2655 for the first exposure time, which
    a trial with one transition period never measures."""
    path = trial_with_transitions(tmp_path, (1, 1, 1, 1), periods=6)
    assert main(["plan", str(path), "--out", str(tmp_path / "plan")]) == 0
    doc = json.loads((tmp_path / "plan" / "stepped_wedge_trial_plan.json").read_text("utf-8"))
    spec = load_design(path)
    design, starts = trial_matrix(spec), trial_starts(spec)
    assert np.isnan(design).sum() == 12
    vcov, exposure = lmm_gls_vcov(design, starts, VarianceModel.from_icc(0.05), 30)
    assert tuple(exposure) == (2, 3, 4, 5)
    tate = np.full(4, 0.25) @ vcov @ np.full(4, 0.25)
    (row,) = doc["detectable"]
    assert row["mdes"] == pytest.approx(mdes(tate, df=11), rel=1e-9)
    assert "exposure times 2–5 (TATE)" in row["basis"]
    without = gls_precision(
        np.nan_to_num(design, nan=1.0), VarianceModel.from_icc(0.05), 30, "exposure_time"
    )
    assert row["mdes"] > mdes(without.variance, df=11)  # the cells it used to count


def test_a_tate_window_before_the_first_measured_exposure_time_is_refused(tmp_path, capsys):
    path = trial_with_transitions(tmp_path, (1, 1, 1, 1), window=1)
    assert main(["plan", str(path), "--out", str(tmp_path / "plan")]) == 2
    err = capsys.readouterr().err
    assert "analyses[0].options.tate_window: tate_window 1 is outside the exposure times 2–5" in err
    assert "Fix: use a whole number from 2 to 5" in err
    assert not (tmp_path / "plan").exists()


def test_the_lmm_labels_the_exposure_times_it_averages(tmp_path):
    """With one transition period the TATE averages exposure times 2–5; it said '1–5'."""
    path = trial_with_transitions(tmp_path, (1, 1, 1, 1), window=3)
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 0
    doc = json.loads((tmp_path / "out" / "stepped_wedge_trial.json").read_text("utf-8"))
    (primary,) = [a for a in doc["analyses"] if a["id"] == "stepped_wedge"]
    terms = [e["term"] for e in primary["estimates"]]
    assert terms[0] == "Time-averaged effect (TATE, exposure times 2–3)"
    points = {e["event_time"]: e["estimate"] for e in primary["estimates"][1:]}
    assert sorted(points) == [2, 3, 4, 5]
    assert primary["estimates"][0]["estimate"] == pytest.approx((points[2] + points[3]) / 2)


def test_the_power_command_leaves_out_transition_periods(tmp_path, capsys):
    path = trial_with_transitions(tmp_path, (1, 1, 1, 1))
    assert main(["power", str(path)]) == 0
    out = capsys.readouterr().out
    assert "12 cluster-periods in transition, not measured" in out
    spec = load_design(path)
    model, starts = VarianceModel.from_icc(0.05), trial_starts(spec)
    # the primary analysis's time-averaged effect, exposure times counted through transitions
    measured = gls_precision(trial_matrix(spec), model, 30, "exposure_time", None, starts)
    assert f"Var(effect)          {measured.variance:.6g}" in out
    everything = gls_precision(
        np.nan_to_num(trial_matrix(spec), nan=1.0), model, 30, "exposure_time", None, starts
    )
    measured, everything = measured.variance, everything.variance
    # the time-averaged effect: 0.0249, where counting the transition cells would give 0.0179
    assert measured > 1.3 * everything


def gap_records(transition_start: dict[str, int], effect, seed: int = 2) -> pd.DataFrame:
    """Records of 8 clusters over periods 1, 2, 4, 5, 6, 7 (period 3 never collected), 20 a
    cell, little noise; `effect(e)` at exposure time e = period − start + 1."""
    rng = np.random.default_rng(seed)
    rows = []
    for c, s in transition_start.items():
        u = rng.normal(0, 0.3)
        for t in (1, 2, 4, 5, 6, 7):
            mean = u + 0.05 * t + (effect(t - s + 1) if t >= s else 0.0)
            y = mean + rng.normal(0, 0.01, size=20)
            rows.append(pd.DataFrame({"cl": c, "per": t, "start": s, "y": y}))
    return pd.concat(rows, ignore_index=True)


STARTS = {"A1": 2, "A2": 2, "B1": 4, "B2": 4, "C1": 5, "C2": 5, "D1": 6, "D2": 6}


def test_exposure_times_count_calendar_periods_when_a_period_has_no_data():
    """With period 3 never collected, exposure time was counted among the periods with data:
    'exposure times 1–5', each past the gap mixing two true exposure times (0.245 for 0.2)."""
    data = gap_records(STARTS, lambda e: 0.1 * e)
    res = pe.stepped_wedge(
        data, outcome="y", cluster="cl", period="per", start="start", inference="model_based"
    )
    table = res.table.set_index("term")["estimate"]
    assert table.index[0] == "Time-averaged effect (TATE, exposure times 1–6)"
    for e in range(1, 7):
        assert table[f"Point effect at exposure time {e} (PTE)"] == pytest.approx(0.1 * e, abs=0.01)


def test_transition_periods_are_calendar_periods_when_a_period_has_no_data(tmp_path):
    """start 2 with two transition periods: periods 2 and 3 (3 has no data); period 4, fully
    analysable, was dropped in 3's place."""
    data = gap_records(STARTS, lambda e: 0.1 * e)
    design = trial_design_text(transition={"A": 2})
    (tmp_path / "d.csv").write_text(data.to_csv(index=False))
    (tmp_path / "d.yaml").write_text(design)
    out = tmp_path / "out"
    assert (
        main(
            ["run", str(tmp_path / "d.yaml"), "--data", str(tmp_path / "d.csv"), "--out", str(out)]
        )
        == 0
    )
    doc = json.loads((out / "gap.json").read_text("utf-8"))
    left = [(e["reason"], e["count"], e["units"]) for e in doc["exclusions"]]
    assert left == [("transition period excluded by design", 40, ["A1", "A2"])]  # records
    assert doc["analyses"][0]["n_obs"] == 8 * 6 - 2


def trial_design_text(transition: dict[str, int]) -> str:
    """A records design for `gap_records` (waves A–D), `transition` periods by wave letter."""
    waves = "".join(
        f"  - {{wave: {w}, start: {s}, transition_periods: {transition.get(w, 0)}, "
        f"units: [{w}1, {w}2]}}\n"
        for w, s in (("A", 2), ("B", 4), ("C", 5), ("D", 6))
    )
    return (
        "name: gap\ntitle: Gap\npilot: trial\nunit_level: cluster\ntime: {axis: period}\n"
        f"rollout:\n{waves}"
        "comparison: {pool: not_yet_treated, min_units: 1}\noutcomes:\n  - {column: y}\n"
        "analyses:\n  - {id: sw, estimator: stepped_wedge}\n"
        "data:\n  source: records\n  columns: {unit: cl, period: per}\n"
    )


def test_partly_exposed_periods_are_one_row_of_the_ledger(tmp_path):
    """Under the transition rule each cluster's partly exposed quarter was a ledger row of
    its own (four rows of 15 records); they are one reason, so one row."""
    rng = np.random.default_rng(4)
    quarters = ["2023Q1", "2023Q2", "2023Q3", "2023Q4", "2024Q1", "2024Q2"]
    frames = [
        pd.DataFrame({"cl": f"C{i}", "q": q, "y": rng.normal(size=15)})
        for i in range(8)
        for q in quarters
    ]
    (tmp_path / "d.csv").write_text(pd.concat(frames).to_csv(index=False))
    waves = (("2023-05-10", "C0, C1"), ("2023-07-01", "C2, C3"), ("2023-11-20", "C4, C5"))
    rollout = "".join(
        f"  - {{wave: S{i}, start: {s}, units: [{u}]}}\n" for i, (s, u) in enumerate(waves)
    )
    (tmp_path / "d.yaml").write_text(
        "name: q\ntitle: Q\npilot: trial\nunit_level: cluster\n"
        "time: {axis: quarter, partial_period_rule: transition}\n"
        f"rollout:\n{rollout}  - {{wave: S4, start: 2024-01-01, units: [C6, C7]}}\n"
        "comparison: {pool: not_yet_treated, min_units: 1}\noutcomes: [{column: y}]\n"
        "analyses:\n  - {id: sw, estimator: stepped_wedge}\n"
        "data: {source: records, columns: {unit: cl, period: q}}\n"
    )
    args = ["run", str(tmp_path / "d.yaml"), "--data", str(tmp_path / "d.csv")]
    assert main([*args, "--out", str(tmp_path / "out")]) == 0
    doc = json.loads((tmp_path / "out" / "q.json").read_text("utf-8"))
    left = [(e["reason"], e["count"], e["units"]) for e in doc["exclusions"]]
    assert left == [
        ("partly exposed period dropped (transition rule)", 60, ["C0", "C1", "C4", "C5"])
    ]
