"""Simulation power: reproducible for a seed however the replicates are split (one process,
local workers, a Dask LocalCluster), and the real estimator is what is run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pathfinder_eval.power.simulate import Task, replicate_seeds, run_task, simulate_power
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
    np.testing.assert_array_equal(one.p_values, two.p_values)
    np.testing.assert_array_equal(one.p_values, dask.p_values)
    np.testing.assert_array_equal(one.estimates, dask.estimates)


def test_each_replicate_is_the_real_analysis_on_its_own_seed(trial):
    seeds = replicate_seeds(5, 3)
    assert len(set(seeds)) == 3 and seeds == replicate_seeds(5, 3)
    est, p = run_task(Task(trial, 0, "score", 0.3, seeds[1]))
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
    assert "twfe on cla_rate" in out and "replicates        10" in out
    assert (tmp_path / "family_network_simulated_power.json").is_file()
