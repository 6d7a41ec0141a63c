"""Analytic power with clusters' own intervention effects against swCRTdesign's swPwr help-page
examples 1-7 (tests/reference/r_swcrtdesign_power): random intercepts, random intervention
effects (eta), their correlation with the intercept (rho), random cluster-period effects
(gamma), and cluster sizes varying by cluster and by cluster and period; plus the public API,
the design file and the simulated trial data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pathfinder_eval as pe
from pathfinder_eval.data.trial_sim import simulate_stepped_wedge
from pathfinder_eval.errors import DesignError
from pathfinder_eval.power.analytic import VarianceModel, gls_precision, power, stepped_wedge

HERE = Path(__file__).resolve().parent / "reference" / "r_swcrtdesign_power"
REF = pd.read_csv(HERE / "values.csv").set_index(["example", "quantity"])["value"]
VAR_REL = 1e-10  # the same GLS algebra (observed 2.1e-14)
POWER_ABS = 1e-10


def _binomial(mu0: float, mu1: float) -> float:
    p = (mu0 + mu1) / 2.0
    return p * (1.0 - p)


EX7_N = np.array(
    [26, 493, 64, 45, 48, 231, 117, 17, 49, 36, 19, 77, 67, 590, 261, 212, 67, 318, 132, 58, 44,
     57, 59, 78, 115, 532, 176, 199, 73, 293, 129, 79, 51, 62, 109, 94, 174, 785, 133, 79, 120,
     305, 224, 99, 83, 79, 122, 122, 94, 961, 90, 131, 166, 352, 316, 59, 54, 131, 101, 133],
    dtype=float,
).reshape((12, 5), order="F")  # fmt: skip
EX6_N = np.array(
    [35219, 53535, 63785, 456132, 128670, 96673, 51454, 156667, 127440, 68615, 56502, 17719,
     75931, 58655, 52874, 75936],
    dtype=float,
)  # fmt: skip
BIN = _binomial(0.05, 0.035)
SW = stepped_wedge([6, 6, 6, 6])
CASES = {
    "ex1": (SW, 120, VarianceModel(1e-4, BIN), -0.015),
    "ex2": (stepped_wedge([6, 6, 6, 6], periods=8), 120, VarianceModel(1e-4, BIN), -0.015),
    "ex3": (SW, 120, VarianceModel(1e-4, BIN, treatment_var=0.0045**2), -0.015),
    "ex4": (
        SW, 120, VarianceModel(1e-4, BIN, treatment_var=0.0045**2, treatment_corr=0.4), -0.015
    ),
    "ex5": (
        SW, 120,
        VarianceModel(1e-4, BIN, gamma2=0.01, treatment_var=0.0045**2, treatment_corr=0.4),
        -0.015,
    ),
    "ex6": (
        stepped_wedge([4, 3, 5, 4]), EX6_N[:, None] * np.ones((1, 5)),
        VarianceModel(0.31**2, 1 / 2.66, gamma2=0.15**2, treatment_var=0.2**2), 2.15 - 2.66,
    ),
    "ex7": (
        stepped_wedge([3, 3, 3, 3]), EX7_N,
        VarianceModel(
            0.017**2, _binomial(0.08, 0.06), treatment_var=0.006**2, treatment_corr=-0.5
        ),
        -0.02,
    ),
}  # fmt: skip


@pytest.mark.parametrize("example", sorted(CASES))
def test_matches_swcrtdesign(example):
    design, size, model, effect = CASES[example]
    variance = gls_precision(design, model, size).variance
    assert variance == pytest.approx(REF[(example, "variance")], rel=VAR_REL)
    assert power(effect, variance) == pytest.approx(REF[(example, "power")], abs=POWER_ABS)


def test_public_api_takes_the_random_slope():
    got = pe.power(
        [6, 6, 6, 6], -0.015, cell_size=120, tau2=1e-4, sigma2=BIN,
        treatment_var=0.0045**2, treatment_corr=0.4,
    )  # fmt: skip
    assert got == pytest.approx(REF[("ex4", "power")], abs=POWER_ABS)
    with pytest.raises(DesignError, match="needs decay = 1 and treatment_var > 0"):
        pe.power([6, 6], 0.1, cell_size=10, tau2=0.1, sigma2=1.0, treatment_corr=0.4)


def test_simulated_trial_draws_the_clusters_own_effects():
    """400 clusters, huge cells: each cluster's treated-minus-control shift is the effect plus
    its own deviation, whose SD and correlation with the intercept are as asked (within Monte
    Carlo error: SE of an SD ≈ 0.2/√800 ≈ 0.007, of a correlation ≈ 0.04); untreated cells are
    the same draws as without random effects."""
    starts = {f"c{i:03d}": 2 for i in range(400)}
    args = (starts, 2, "y", 0.3, 0.2, 10**8, 11)
    flat = simulate_stepped_wedge(*args).frame.pivot(index="unit", columns="period", values="value")
    vary = simulate_stepped_wedge(*args, effect_sd=0.2, effect_corr=0.5).frame.pivot(
        index="unit", columns="period", values="value"
    )
    np.testing.assert_array_equal(flat[1].to_numpy(), vary[1].to_numpy())
    own = (vary[2] - flat[2]).to_numpy()
    assert own.std() == pytest.approx(0.2, abs=0.03)
    assert np.corrcoef(own, flat[1].to_numpy())[0, 1] == pytest.approx(0.5, abs=0.15)


def test_design_file_random_slope_lowers_power(tmp_path):
    """data.trial.effect_sd and effect_corr reach analytic power (and its stated model); the
    power equals the GLS power of the same VarianceModel."""
    from pathfinder_eval.power.design import design_power, trial_matrix, trial_starts
    from pathfinder_eval.spec import load_design

    root = Path(__file__).resolve().parents[1] / "designs" / "examples"
    text = (root / "stepped_wedge_trial.yaml").read_text()
    old = "trial: {periods: 5, effect: 0.3, icc: 0.05, cell_size: 30}"
    assert old in text
    path = tmp_path / "slope.yaml"
    path.write_text(text.replace(old, old[:-1] + ", effect_sd: 0.15, effect_corr: 0.3}"))
    base = design_power(load_design(root / "stepped_wedge_trial.yaml"))
    spec = load_design(path)
    slope = design_power(spec)
    model = VarianceModel(0.05, 0.95, treatment_var=0.15**2, treatment_corr=0.3)
    # the primary analysis's time-averaged effect
    variance = gls_precision(
        trial_matrix(spec), model, 30, "exposure_time", None, trial_starts(spec)
    ).variance
    assert slope.variance == pytest.approx(variance, rel=1e-12)
    assert slope.power < base.power - 0.05
    assert "own intervention effects SD 0.15" in slope.model
