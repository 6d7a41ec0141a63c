"""Simulation power: reproducible for a seed however the replicates are split (one process,
local workers, a Dask LocalCluster), and the real estimator is what is run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pathfinder_eval.power.analytic import VarianceModel, gls_precision, mdes, power, stepped_wedge
from pathfinder_eval.power.simulate import (
    DesignGenerator,
    Task,
    only_outcome,
    replicate_seeds,
    run_task,
    simulate_power,
)
from pathfinder_eval.power.trial_simulation import (
    TrialModel,
    design_trial,
    p_values,
    simulate_replicates,
    simulate_trial_power,
    simulated_mdes,
)
from pathfinder_eval.spec import load_design

DESIGNS = Path(__file__).resolve().parents[1] / "designs"


@pytest.fixture(scope="module")
def trial():
    return load_design(DESIGNS / "examples" / "stepped_wedge_trial.yaml")


def test_same_seed_same_results_in_process_local_workers_and_dask(trial):
    distributed = pytest.importorskip("distributed")
    one = simulate_power(trial, 12, 5, 0.3, workers=1, progress=False)
    two = simulate_power(trial, 12, 5, 0.3, workers=2, progress=False)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        dask = simulate_power(
            trial, 12, 5, 0.3, scheduler=cluster.scheduler_address, progress=False
        )
    # exact: a seed gives identical bits however the replicates are split across processes
    np.testing.assert_array_equal(one.p_values, two.p_values)
    np.testing.assert_array_equal(one.p_values, dask.p_values)
    np.testing.assert_array_equal(one.estimates, dask.estimates)


def test_each_replicate_is_the_real_analysis_on_its_own_seed(trial):
    seeds = replicate_seeds(5, 3)
    assert len(set(seeds)) == 3 and seeds == replicate_seeds(5, 3)
    source = DesignGenerator(only_outcome(trial, "score"), "score")
    est, p = run_task(Task(trial, 0, "score", 0.3, seeds[1], source))
    r = simulate_power(trial, 3, 5, 0.3, workers=1, progress=False)
    assert (r.estimates[1], r.p_values[1]) == (est, p)


def test_power_rises_with_the_effect(trial):
    none = simulate_power(trial, 40, 9, 0.0, workers=2, progress=False)
    big = simulate_power(trial, 40, 9, 0.6, workers=2, progress=False)
    assert big.power == 1.0 and none.power <= 0.25
    assert abs(np.mean(big.estimates) - 0.6) < 0.1


def test_la_panel_power_simulates_the_synthetic_panel(tmp_path, capsys):
    from pathfinder_eval.cli import main

    code = main(
        [
            "power",
            str(DESIGNS / "family_network.yaml"),
            "--simulate",
            "10",
            "--outcome",
            "cla_rate",
            "--effect",
            "-0.2",
            "--workers",
            "2",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    # the design's primary analysis, not the first in the file (twfe; found in review)
    assert "callaway_santanna on cla_rate" in out and "replicates        10" in out
    assert (tmp_path / "family_network_simulated_power.json").is_file()


def test_simulated_power_defaults_to_the_primary_analysis():
    """`power --simulate` took the first estimable analysis (twfe) where family_network marks
    callaway_santanna primary, so it simulated another analysis than the plan and the report
    use; an analysis that cannot be simulated still falls to the first that can."""
    from pathfinder_eval.power.simulate import _analysis_index

    spec = load_design(DESIGNS / "family_network.yaml")
    ids = [a.id for a in spec.analyses]
    assert ids[0] == "twfe" and spec.primary_analysis.id == "callaway_santanna"
    assert ids[_analysis_index(spec, None)] == "callaway_santanna"
    assert ids[_analysis_index(spec, "twfe")] == "twfe"
    study = next(a for a in spec.analyses if a.estimator.value == "event_study")
    flags = [a.model_copy(update={"primary": a is study}) for a in spec.analyses]
    spec = spec.model_copy(update={"analyses": tuple(flags)})
    assert ids[_analysis_index(spec, None)] == "twfe"  # event studies have no overall effect
    # a primary that does not analyse the outcome asked for is passed over (found in review)
    outcomes = [o.id for o in spec.outcomes]
    narrow = [
        a.model_copy(
            update={"primary": a.id == "callaway_santanna", "outcomes": (outcomes[0],)}
            if a.id == "callaway_santanna"
            else {"primary": False}
        )
        for a in spec.analyses
    ]
    spec = spec.model_copy(update={"analyses": tuple(narrow)})
    assert ids[_analysis_index(spec, None, outcomes[0])] == "callaway_santanna"
    assert ids[_analysis_index(spec, None, outcomes[1])] == "twfe"


def test_an_event_study_has_no_overall_effect_to_simulate_or_detect(tmp_path, capsys):
    """Its first row is a lead ('event time -3 or earlier'): power --analysis event_study
    simulated that lead (power 0.000 with a 50% fall injected), and the report's robustness
    table, MDES and 'could detect' read it as the overall effect."""
    import pandas as pd

    import pathfinder_eval as pe
    from pathfinder_eval.cli import main
    from pathfinder_eval.pipeline import evaluate

    args = ["power", str(DESIGNS / "family_help.yaml"), "--simulate", "10"]
    assert main([*args, "--analysis", "event_study"]) == 2
    err = capsys.readouterr().err
    assert "analysis 'event_study' is an event study: it reports an effect per event time" in err
    mpdta = pd.read_csv(Path(pe.__file__).parent / "replications" / "data" / "mpdta.csv")
    mpdta["g"] = mpdta["first.treat"].where(mpdta["first.treat"] > 0)
    cols = dict(outcome="lemp", unit="countyreal", time="year", first_treated="g")
    assert pe.event_study(mpdta, **cols).overall() is None
    assert pe.twfe(mpdta, **cols).overall()["term"] == "ATT (TWFE)"
    ev = evaluate(load_design(DESIGNS / "family_help.yaml"))
    study = [r for r in ev.runs if r.analysis.estimator.value == "event_study"]
    assert study and all(r.status == "ok" and r.detectable is None for r in study)
    assert all(r.detectable is not None for r in ev.runs if r.analysis.id == "twfe")
    html = next(p for p in pe.report(ev, tmp_path / "out") if p.suffix == ".html").read_text()
    assert html.count("No minimum detectable effect: the rows are effects per event time") == 12
    robustness = html[html.index('<h2 id="robustness"') :]
    robustness = robustness[: robustness.index("</table>")]
    assert "<code>twfe</code>" in robustness and "<code>event_study</code>" not in robustness


# --- the fast trial path (power/trial_simulation.py) ------------------------------------------

NE_TRIAL = TrialModel(stepped_wedge([2] * 5), VarianceModel.from_icc(0.05, 0.8), 25)


def test_fast_path_identical_in_process_local_workers_dask_and_any_chunking():
    distributed = pytest.importorskip("distributed")
    one = simulate_replicates(NE_TRIAL, 12, 3, (0.0, 0.3), workers=1, progress=False)
    for chunk in (1, 5):
        two = simulate_replicates(
            NE_TRIAL, 12, 3, (0.0, 0.3), workers=2, chunk_size=chunk, progress=False
        )
        # exact: a seed gives identical bits however the replicates are split across processes
        np.testing.assert_array_equal(one, two)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        dask = simulate_replicates(
            NE_TRIAL, 12, 3, (0.0, 0.3), scheduler=cluster.scheduler_address, chunk_size=4
        )
    np.testing.assert_array_equal(one, dask)
    # common random numbers: the effect moves each estimate by exactly itself (REML is
    # invariant to adding a column of X), SE and df unchanged
    np.testing.assert_allclose(one[1, 0] - one[0, 0], 0.3, atol=1e-7)
    np.testing.assert_allclose(one[1, 1:], one[0, 1:], rtol=1e-6)


def test_fast_path_replicate_is_what_stepped_wedge_reports_on_the_same_cells(trial):
    import pandas as pd

    from pathfinder_eval.data.source import CELL_COLUMNS, LONG_COLUMNS, OutcomeData
    from pathfinder_eval.estimators.stepped_wedge.lmm_estimator import SteppedWedge
    from pathfinder_eval.panel import build_panel
    from pathfinder_eval.pipeline import describe_outcome
    from pathfinder_eval.power.trial_simulation import _draw, _prepare

    fast = design_trial(trial, "stepped_wedge_immediate")  # the immediate-effect KR analysis
    prep = _prepare(fast)
    noise, ssw = _draw(prep, np.random.default_rng(np.random.SeedSequence(11, spawn_key=(0,))))
    mean = 0.3 * prep.treated + noise
    clusters = [f"K{i:02d}" for i in range(len(mean))]
    frame = pd.DataFrame(
        [
            {
                "unit": c,
                "period": j + 1,
                "outcome": "score",
                "numerator": np.nan,
                "denominator": 30.0,
                "value": mean[i, j],
                "status": "",
                "source": "test",
                "ssw": ssw[i, j],
                "negative": np.nan,
            }
            for i, c in enumerate(clusters)
            for j in range(mean.shape[1])
        ]
    )[list(LONG_COLUMNS) + list(CELL_COLUMNS)]
    starts = {c: int(s) for c, s in zip(clusters, (fast.design == 0).sum(axis=1) + 1, strict=True)}
    rollout = [
        {"wave": f"S{s}", "start": s, "units": [c for c in clusters if starts[c] == s]}
        for s in sorted(set(starts.values()))
    ]
    spec = trial.model_copy(
        update={
            "rollout": type(trial.rollout)(
                type(trial.rollout[0]).model_validate(w) for w in rollout
            )
        }
    )
    data = OutcomeData(
        frame,
        pd.DataFrame({"unit": clusters, "name": clusters, "region": ""}),
        "synthetic",
        (),
        (),
        (),
    )
    panel = build_panel(spec, data, describe_outcome(spec))
    row = (
        SteppedWedge(effect="immediate", inference=trial.analyses[1].inference)
        .fit(panel, "score", "stepped_wedge")
        .table.iloc[0]
    )
    est, se, df = simulate_replicates(fast, 1, 11, (0.3,), workers=1, progress=False)[0, :, 0]
    assert est == pytest.approx(row["estimate"], abs=1e-10)
    assert se == pytest.approx(row["std_error"], abs=1e-10)
    assert df == pytest.approx(row["df"], abs=1e-8)
    assert p_values(est, se, df) == pytest.approx(row["p_value"], abs=1e-10)


@pytest.mark.parametrize(
    ("design", "model", "structure"),
    [
        (stepped_wedge([4] * 5), VarianceModel.from_icc(0.05), "hussey_hughes"),
        (stepped_wedge([4] * 5), VarianceModel.from_icc(0.05, 0.8), "nested_exchangeable"),
    ],
)
def test_fast_path_power_agrees_with_analytic_gls_power(design, model, structure):
    fast = TrialModel(design, model, 20, structure, "model_based")
    variance = gls_precision(design, model, 20).variance
    effect = mdes(variance, 0.6)  # analytic power 60%: where the MC error is largest
    sim = simulate_trial_power(fast, 400, 21, effect, workers=2, progress=False)
    assert sim.failed == 0
    assert abs(sim.power - power(effect, variance)) < 3.5 * sim.monte_carlo_se


def test_simulated_mdes_brackets_the_analytic_mdes():
    fast = TrialModel(
        stepped_wedge([4] * 5), VarianceModel.from_icc(0.05, 0.8), 20, inference="model_based"
    )
    m = simulated_mdes(fast, 300, 5, 0.8, workers=2, progress=False)
    lo, hi = m.interval
    assert lo < m.mdes < hi
    assert lo - 0.01 * m.analytic <= m.analytic <= hi + 0.01 * m.analytic
    # the refit at the MDES with the same seeds has the power of the shifted curve's first
    # step at or above the target (steps of 1/n)
    assert 0.8 <= m.check.power <= 0.8 + 2 / 300
    assert m.null.power < 0.1 and m.null.failed == 0


def test_cli_mdes_by_simulation(trial, tmp_path, capsys):
    from pathfinder_eval.cli import main

    path = DESIGNS / "examples" / "stepped_wedge_trial.yaml"
    code = main(
        ["power", str(path), "--simulate", "20", "--mdes", "--workers", "1", "--out", str(tmp_path)]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "MDES at 80% power" in out and "Monte-Carlo interval" in out
    assert (tmp_path / "stepped_wedge_trial_simulated_mdes.json").is_file()


@pytest.mark.parametrize(
    ("model", "structure"),
    [
        (VarianceModel.from_icc(0.05), "hussey_hughes"),
        (VarianceModel.from_icc(0.05, 0.8), "nested_exchangeable"),
        (VarianceModel.from_icc(0.1, decay=0.7), "exponential_decay"),
    ],
)
def test_fast_path_single_start_reaches_the_five_start_optimum(model, structure):
    """Starting REML at the true parameters (one optimiser run) ends where the estimator's
    default five starts do."""
    from pathfinder_eval.estimators.stepped_wedge.lmm import CellSummaries, fit_reml
    from pathfinder_eval.power.trial_simulation import _draw, _prepare

    prep = _prepare(TrialModel(stepped_wedge([2] * 5), model, 25, structure))
    for r in range(40):
        noise, ssw = _draw(prep, np.random.default_rng(np.random.SeedSequence(5, spawn_key=(r,))))
        cells = CellSummaries(noise * prep.observed, prep.n, ssw, prep.observed)
        multi = fit_reml(cells, prep.fe.X, structure)
        single = fit_reml(cells, prep.fe.X, structure, prep.start)
        assert single.converged == multi.converged
        assert single.deviance <= multi.deviance + 1e-9
        np.testing.assert_allclose(single.beta, multi.beta, rtol=0, atol=1e-8)


@pytest.mark.parametrize("shape", ["immediate", "exposure_time"])
def test_incomplete_and_exposure_time_power_agree_with_analytic_gls(shape):
    """The real LMM (nested exchangeable REML, model-based z) fitted to trials drawn exactly
    from the model: an incomplete design (each sequence's first intervention period left out,
    a transition period), and the exposure-time model's TATE; simulated power within 3.5 Monte
    Carlo SEs of the analytic GLS power."""
    from scipy import stats

    from pathfinder_eval.estimators.stepped_wedge.design import effect_contrasts
    from pathfinder_eval.estimators.stepped_wedge.lmm import CellSummaries, fit_reml, fixed_effects
    from pathfinder_eval.power.trial_simulation import _draw, _prepare

    design = stepped_wedge([4] * 4, transition=1 if shape == "immediate" else 0)
    model = VarianceModel.from_icc(0.05, 0.8)
    variance = gls_precision(design, model, 20, shape=shape).variance
    effect = mdes(variance, 0.6)
    prep = _prepare(TrialModel(design, model, 20))
    start = np.nan_to_num(design, nan=1.0).argmax(axis=1)
    fe = fixed_effects(prep.observed, start, shape)
    contrast = next(iter(effect_contrasts(fe, shape, None).values())).vector
    reps, rejected = 300, 0
    for r in range(reps):
        noise, ssw = _draw(prep, np.random.default_rng(np.random.SeedSequence(3, spawn_key=(r,))))
        mean = np.where(prep.observed, effect * prep.treated + noise, 0.0)
        fit = fit_reml(CellSummaries(mean, prep.n, ssw, prep.observed), fe.X, "nested_exchangeable")
        assert fit.converged
        z = contrast @ fit.beta / np.sqrt(contrast @ fit.vcov @ contrast)
        rejected += abs(z) > stats.norm.ppf(0.975)
    simulated = rejected / reps
    assert abs(simulated - power(effect, variance)) < 3.5 * np.sqrt(0.6 * 0.4 / reps)


def test_mdes_search_for_analyses_without_the_fast_path(trial):
    """TWFE on the trial example has no shift shortcut: the search's MDES is an evaluated
    effect whose simulated power reaches the target, and every smaller evaluated effect's
    power falls short of it (common random numbers: the same seeds at every effect)."""
    from pathfinder_eval.power.mdes_search import search_mdes

    found = search_mdes(trial, 20, 5, 0.8, +1.0, analysis="twfe", workers=1)
    curve = dict(found.curve)
    assert found.mdes in curve and curve[found.mdes] >= 0.8
    assert all(p < 0.8 for e, p in curve.items() if e < found.mdes)
    assert found.check.effect == found.mdes and found.null.effect == 0.0
    assert found.interval[0] <= found.mdes <= found.interval[1]


def test_an_unknown_outcome_is_named_with_or_without_data(capsys):
    """Without --data it ended in 'internal error: ValueError: No objects to concatenate'."""
    from pathfinder_eval.cli import main

    args = ["power", str(DESIGNS / "family_help.yaml"), "--simulate", "10", "--outcome", "bogus"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--outcome: no outcome 'bogus' in the design. Fix: name one of: repeat_referrals" in err


def test_without_an_effect_power_is_simulated_at_the_designs_expected_effect():
    """rcc expects −10% on every outcome but simulated 0 (the test's size, said nowhere),
    and on panels resampled from real data the synthetic panel's injected effect was used."""
    from pathfinder_eval.power.simulate import default_effect

    rcc = load_design(DESIGNS / "rcc.yaml")
    assert default_effect(rcc, rcc.outcomes[0].id) == -0.10
    network = load_design(DESIGNS / "family_network.yaml")
    assert default_effect(network, "cla_rate") == -0.03  # injected into the synthetic panel
    assert default_effect(network, "cla_rate", resampled=True) == -0.10  # the design's
    assert default_effect(network.model_copy(update={"outcomes": ()}), "cla_rate", True) == 0.0


def test_a_subgroups_row_is_never_the_overall_effect():
    """dCDH with trends_lin has no average total effect; with by_path its path rows, which
    carry no event time, were taken for the overall effect (the headline showed path
    (0, 1, 1)'s first effect, 1.20, for the pooled 1.13)."""
    import pandas as pd

    import pathfinder_eval as pe

    rng = np.random.default_rng(1)
    rows = []
    for u in range(40):
        start = [3, 4, 5, None][u % 4]
        level, slope = rng.normal(0, 1), rng.normal(0, 0.1)
        for t in range(1, 9):
            d = int(start is not None and t >= start and not (u % 8 == 1 and t == start + 1))
            y = level + (slope + 0.2) * t + d + rng.normal(0, 0.3)
            rows.append({"unit": f"U{u:02d}", "time": t, "d": d, "y": y})
    data = pd.DataFrame(rows)
    cols = dict(outcome="y", unit="unit", time="time", treatment="d", effects=2, placebo=1)
    pooled = pe.did_multiplegt_dyn(data, **cols)
    assert pooled.overall()["term"] == "average total effect"
    paths = pe.did_multiplegt_dyn(data, **cols, trends_lin=True, by_path=2)
    assert paths.table["event_time"].isna().any()  # the path rows
    assert paths.overall() is None
