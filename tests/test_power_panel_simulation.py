"""Simulation power on the real DfE panel (family_help): null panels resampled from the real LA
residual trajectories keep the size of the default inference near α, their serial correlation
and missingness match the real panel, power rises with the effect, and seeds reproduce."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from _data_paths import PUBLIC_DATA, needs_public_data
from cli_helpers import check_error
from pathfinder_eval.cli import main
from pathfinder_eval.data.families import FAMILIES
from pathfinder_eval.panel import build_panel
from pathfinder_eval.pipeline import describe_outcome
from pathfinder_eval.power.panel_simulation import (
    lag1_autocorrelation,
    panel_resampler,
    simulate_panel_power,
)
from pathfinder_eval.spec import load_design

DESIGN = Path(__file__).resolve().parents[1] / "designs" / "family_help.yaml"
OUTCOME = "repeat_referrals"  # 2017–2025: the longest series, so the most serial correlation
NULL_REPS = 150
ALPHA = 0.05

pytestmark = needs_public_data


@pytest.fixture(scope="module")
def spec():
    return load_design(DESIGN)


@pytest.fixture(scope="module")
def resampler(spec):
    return panel_resampler(spec, PUBLIC_DATA, OUTCOME)


@pytest.fixture(scope="module")
def null(spec):
    return simulate_panel_power(
        spec,
        PUBLIC_DATA,
        NULL_REPS,
        7,
        0.0,
        analysis="twfe",  # not the design's primary (callaway_santanna), the default since ab8894e
        outcome=OUTCOME,
        workers=2,
        progress=False,
    )


def _panel(resampler, data):
    return build_panel(resampler.spec, data, describe_outcome(resampler.spec))


def test_size_of_the_default_inference_is_near_alpha(null):
    # twfe's default inference here is CR2 with Bell–McCaffrey df (10 treated LAs)
    bound = 3 * np.sqrt(ALPHA * (1 - ALPHA) / NULL_REPS)  # 3 Monte Carlo SEs: 0.053
    assert null.analysis == "twfe" and len(null.p_values) == NULL_REPS
    assert abs(null.power - ALPHA) <= bound, null.power
    assert abs(np.mean(null.estimates)) < 3 * np.std(null.estimates) / np.sqrt(NULL_REPS)


def test_power_rises_with_the_effect(spec, resampler, null):
    big = simulate_panel_power(
        spec, PUBLIC_DATA, 40, 7, -0.2, "twfe", outcome=OUTCOME, workers=2, progress=False
    )
    assert big.power >= 0.75 and big.power > null.power + 0.5
    # the relative effect moves the level by about 20% of the treated cells' mean
    level = -0.2 * resampler.fitted[resampler.treated == 1].mean()
    assert abs(np.mean(big.estimates) - level) < 0.15 * abs(level)


def test_same_seed_same_results_in_process_and_across_workers(spec):
    runs = [
        simulate_panel_power(
            spec, PUBLIC_DATA, 6, 3, -0.1, outcome=OUTCOME, workers=w, progress=False
        )
        for w in (1, 2)
    ]
    # exact: a seed gives identical bits however the replicates are split across processes
    np.testing.assert_array_equal(runs[0].estimates, runs[1].estimates)
    np.testing.assert_array_equal(runs[0].p_values, runs[1].p_values)


@pytest.mark.parametrize("outcome", [OUTCOME, "entering_care_rate"])
def test_resampled_panels_keep_the_real_lag1_autocorrelation(spec, outcome):
    r = panel_resampler(spec, PUBLIC_DATA, outcome)
    # r.lag1: the real residuals net of the pilots' own effect, which the null panels carry
    assert abs(lag1_autocorrelation(_panel(r, r.data), outcome) - r.lag1) < 0.02
    sims = [lag1_autocorrelation(_panel(r, r.replicate(0.0, s)), outcome) for s in range(20)]
    assert abs(np.mean(sims) - r.lag1) < 0.03, (r.lag1, np.mean(sims))


def test_missingness_pattern_and_exclusions_are_kept(resampler):
    real = _panel(resampler, resampler.data)
    sim = _panel(resampler, resampler.replicate(-0.1, 11))
    key = ["unit", "period"]
    # exact: unit codes and whole-number periods
    assert real.cells[key].equals(sim.cells[key])
    assert sim.exclusions == real.exclusions
    missing = len(resampler.units) * len(resampler.periods) - len(real.cells)
    assert missing > 0 and sum(e.count for e in resampler.exclusions) > 0
    assert f"{missing} missing cells kept missing" in resampler.summary()
    assert not np.allclose(real.cells["y"], sim.cells["y"])


def test_effect_moves_only_the_chosen_las_from_their_start(spec):
    chosen = {"Leeds": dt.date(2023, 4, 1), "Kent": dt.date(2024, 4, 1)}
    r = panel_resampler(spec, PUBLIC_DATA, OUTCOME, treated=chosen)
    assert {u for w in r.spec.rollout for u in w.units} == {"383", "886"}
    base, moved = (_panel(r, r.replicate(e, 5)).cells for e in (0.0, -0.1))
    zero = base["y"] == 0  # kept at 0, where the resampled rate fell below it
    ratio = (moved["y"] / base["y"])[~zero]
    on = (base["unit"].isin(["383", "886"]) & (base["period"] >= base["cohort"]))[~zero]
    assert set(base.loc[on[on].index, "period"]) == {2024, 2025}
    np.testing.assert_allclose(ratio[on], 0.9)
    np.testing.assert_allclose(ratio[~on], 1.0)
    assert (moved["y"][zero] == 0).all()


def test_cli_power_on_the_real_panel(tmp_path, capsys):
    code = main(
        [
            "power",
            str(DESIGN),
            "--data",
            str(PUBLIC_DATA),
            "--simulate",
            "10",
            "--workers",
            "1",
            "--out",
            str(tmp_path),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "resampled real panel: 146 LAs × 9 periods" in out and "replicates        10" in out
    assert (tmp_path / "family_help_simulated_power.json").is_file()


def test_cli_data_folder_not_found_is_one_line(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["power", str(DESIGN), "--simulate", "10", "--out", str(out)]
    code = main([*argv, "--data", str(tmp_path / "missing")])
    check_error(capsys, code, out, "missing", "data path not found")


def test_cli_data_without_simulate_is_one_line(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["power", str(DESIGN), "--data", str(PUBLIC_DATA), "--out", str(out)])
    check_error(capsys, code, out, "--data", "--simulate")


def test_outcome_missing_from_the_data_is_a_data_error(spec, tmp_path):
    """A folder without the child-protection-plan file, built here (the shared one has it)."""
    from pathfinder_eval.errors import DataError

    cpp = FAMILIES["cin_cpp"]
    for path in PUBLIC_DATA.glob("*.csv"):
        if not cpp.matches_name(path.name):
            (tmp_path / path.name).symlink_to(path)
    assert not any(cpp.matches_name(p.name) for p in tmp_path.iterdir())
    with pytest.raises(DataError, match="cpp_rate"):
        panel_resampler(spec, tmp_path, "cpp_rate")


@needs_public_data
def test_resampled_panels_keep_rates_within_what_they_can_be():
    """Residuals moved between LAs gave child protection rates down to −46 per 10,000 in
    every replicate, and the Poisson analyses refused the replicates."""
    from pathfinder_eval.power.panel_simulation import _bounds

    network = load_design(DESIGN.parent / "family_network.yaml")
    resampler = panel_resampler(network, PUBLIC_DATA, "cpp_rate")
    assert resampler.bounds == (0.0, np.inf)
    values = np.concatenate(
        [resampler.replicate(0.0, s).frame["value"].to_numpy()[resampler.rows] for s in range(20)]
    )
    assert values.min() == 0.0  # clipped, not shifted: real zeros stay zeros
    assert _bounds(np.array([0.0, 55.0, 100.0]), "percent") == (0.0, 100.0)
    assert _bounds(np.array([-0.5, 1.0]), "score") == (-np.inf, np.inf)
