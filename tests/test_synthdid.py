"""Synthetic DiD / SC / DiD core against the authors' R package on Prop 99 (tests/reference)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import pathfinder_eval as pe
from pathfinder_eval.estimators.synthetic.core import (
    bootstrap_se,
    jackknife_se,
    placebo_draws,
    synthdid,
)

ROOT = Path(__file__).resolve().parents[1]
REF = ROOT / "tests" / "reference" / "synthdid_prop99"
PROP99 = ROOT.parent / "shared" / "data" / "reference" / "synth" / "california_prop99.csv"
# Same deterministic Frank–Wolfe iterations as R: only floating-point rounding differs.
EXACT = 1e-8


@pytest.fixture(scope="module")
def prop99() -> tuple[np.ndarray, int, int, list[str]]:
    if not PROP99.is_file():
        pytest.skip("../shared/data/reference/synth/california_prop99.csv is absent")
    d = pd.read_csv(PROP99)
    wide = d.pivot(index="State", columns="Year", values="PacksPerCapita")
    ever = d.groupby("State")["treated"].max()
    controls = sorted(ever[ever == 0].index)
    treated = sorted(ever[ever == 1].index)
    t0 = int(d.loc[d["treated"] == 1, "Year"].min() - d["Year"].min())
    return wide.loc[controls + treated].to_numpy(), len(controls), t0, controls


@pytest.fixture(scope="module")
def reference() -> dict[str, pd.DataFrame]:
    return {
        name: pd.read_csv(REF / f"{name}.csv") for name in ("values", "weights", "effect_curve")
    }


@pytest.mark.parametrize("method", ["sdid", "sc", "did"])
def test_table_1_point_estimates_match_r(prop99, reference, method):
    y, n0, t0, _ = prop99
    ref = reference["values"].set_index("estimator")
    fit = synthdid(y, n0, t0, method)
    assert fit.estimate == pytest.approx(ref.loc[method, "estimate"], abs=EXACT)
    assert fit.noise_level == pytest.approx(ref.loc[method, "noise_level"], abs=EXACT)
    # and the paper's one-decimal Table 1 values
    assert round(fit.estimate, 1) == {"sdid": -15.6, "sc": -19.6, "did": -27.3}[method]


def test_weights_and_effect_curve_match_r(prop99, reference):
    y, n0, t0, controls = prop99
    w = reference["weights"]
    sdid = synthdid(y, n0, t0, "sdid")
    sc = synthdid(y, n0, t0, "sc")
    for est, kind, got, names in (
        ("sdid", "omega", sdid.omega, controls),
        ("sdid", "lambda", sdid.lambda_, None),
        ("sc", "omega", sc.omega, controls),
    ):
        ref = w[(w["estimator"] == est) & (w["kind"] == kind)]
        np.testing.assert_allclose(got, ref["weight"].to_numpy(), atol=EXACT)
        if names is not None:
            assert list(ref["name"]) == names
    np.testing.assert_allclose(sdid.curve, reference["effect_curve"]["effect"], atol=EXACT)
    assert sdid.curve.mean() == pytest.approx(sdid.estimate, abs=EXACT)


@pytest.mark.parametrize("method", ["sdid", "sc", "did"])
def test_placebo_se_within_monte_carlo_error_of_r(prop99, reference, method):
    y, n0, t0, _ = prop99
    draws = placebo_draws(
        y, n0, t0, synthdid(y, n0, t0, method), 1000, np.random.default_rng(20211)
    )
    b = len(draws)
    se = float(np.sqrt((b - 1) / b) * draws.std(ddof=1))
    kurt = float(((draws - draws.mean()) ** 4).mean() / draws.var() ** 2)
    mc = se * np.sqrt((kurt - 1) / (4 * b))
    r_se = reference["values"].set_index("estimator").loc[method, "placebo_se_1000"]
    assert abs(se - r_se) <= 3 * np.sqrt(2) * mc, (se, r_se, mc)


def test_did_placebo_converges_to_the_exact_permutation_sd(prop99):
    """With one placebo unit, DID's placebo distribution has 38 equally likely values."""
    y, n0, t0, _ = prop99
    exact = []
    for j in range(n0):
        order = [i for i in range(n0) if i != j] + [j]
        exact.append(synthdid(y[order], n0 - 1, t0, "did").estimate)
    draws = placebo_draws(y, n0, t0, synthdid(y, n0, t0, "did"), 2000, np.random.default_rng(7))
    assert set(np.round(draws, 9)) <= set(np.round(exact, 9))
    assert draws.std() == pytest.approx(np.std(exact), rel=0.06)  # MC: ~3% at B = 2000


def test_placebo_is_reproducible_and_thread_independent(prop99):
    y, n0, t0, _ = prop99
    fit = synthdid(y, n0, t0, "sdid")
    a = placebo_draws(y, n0, t0, fit, 20, np.random.default_rng(3))
    b = placebo_draws(y, n0, t0, fit, 20, np.random.default_rng(3))
    # same seed, same code, same process: identical bits is the reproducibility contract
    np.testing.assert_array_equal(a, b)


def test_jackknife_se_matches_r_with_two_treated_units(prop99):
    """California and Nevada treated from 1989 (two_treated.csv, from prop99.R)."""
    y, n0, t0, controls = prop99
    nevada = controls.index("Nevada")
    order = [i for i in range(n0) if i != nevada] + [n0, nevada]  # California, Nevada
    y2 = y[order]
    ref = pd.read_csv(REF / "two_treated.csv").iloc[0]
    fit = synthdid(y2, n0 - 1, t0, "sdid")
    assert fit.estimate == pytest.approx(ref["estimate"], abs=EXACT)
    assert jackknife_se(y2, n0 - 1, t0, fit) == pytest.approx(ref["jackknife_se"], abs=EXACT)
    assert np.isnan(jackknife_se(y, n0, t0, synthdid(y, n0, t0, "sdid")))  # one treated unit


def test_bootstrap_se_is_reproducible_and_near_the_jackknife(prop99):
    y, n0, t0, controls = prop99
    nevada = controls.index("Nevada")
    y2 = y[[i for i in range(n0) if i != nevada] + [n0, nevada]]
    fit = synthdid(y2, n0 - 1, t0, "sdid")
    a = bootstrap_se(y2, n0 - 1, t0, fit, 50, np.random.default_rng(4))
    assert a == bootstrap_se(y2, n0 - 1, t0, fit, 50, np.random.default_rng(4))
    # two different variance estimators of one quantity: same order of magnitude
    assert 0.3 < a / jackknife_se(y2, n0 - 1, t0, fit) < 3.0


def _regional_block(seed: int) -> tuple[np.ndarray, int, int]:
    """30 donors and 4 treated units in 3 regions with shared shocks, 10 periods, 6 before."""
    rng = np.random.default_rng(seed)
    n0, n1, periods = 30, 4, 10
    region = np.append(rng.integers(0, 3, n0), np.zeros(n1, int))
    shocks = rng.normal(size=(3, periods))
    y = (
        3 * rng.normal(size=(n0 + n1, 1))
        + np.cumsum(rng.normal(size=periods))
        + shocks[region]
        + 0.7 * rng.normal(size=(n0 + n1, periods))
    )
    return y, n0, 6


def _exact_estimate(y: np.ndarray, n0: int, t0: int, fit) -> float:
    """SDID at the exact optimum of its two weight problems (first_order's active-set solve
    from the support of `fit`), with σ̂ and ζ recomputed from `y`."""
    from pathfinder_eval.estimators.synthetic.core import TINY_ZETA, noise_level
    from pathfinder_eval.estimators.synthetic.first_order import _SimplexProblem

    n1, t1 = y.shape[0] - n0, y.shape[1] - t0
    s2 = noise_level(y, n0, t0) ** 2
    lam = _SimplexProblem(
        y[:n0, :t0], y[:n0, t0:].mean(axis=1), n0 * TINY_ZETA**2 * s2, fit.lambda_
    ).x
    eta = t0 * np.sqrt(n1 * t1) * s2
    omega = _SimplexProblem(y[:n0, :t0].T, y[n0:, :t0].mean(axis=0), eta, fit.omega).x
    unit = np.append(-omega, np.full(n1, 1.0 / n1))
    return float(unit @ y @ np.append(-lam, np.full(t1, 1.0 / t1)))


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_first_order_weights_are_the_derivative_of_the_estimate(seed):
    """∂θ̂/∂Y with the weights' estimation included: central differences of the exact-optimum
    estimate agree to 1e-7 (h = 1e-6); θ̂ is homogeneous of degree one in Y, so the weights
    reproduce it (Euler, 1e-12), and unit effects cancel, so each unit's weights sum to zero;
    the exact optimum is within Frank–Wolfe's tolerance of synthdid's estimate."""
    from pathfinder_eval.estimators.synthetic.first_order import first_order_weights

    y, n0, t0 = _regional_block(seed)
    fit = synthdid(y, n0, t0)
    w = first_order_weights(y, n0, t0, fit)
    exact = _exact_estimate(y, n0, t0, fit)
    assert abs(exact - fit.estimate) < 5e-3 * y.std()
    assert (w * y).sum() == pytest.approx(exact, abs=1e-12)
    np.testing.assert_allclose(w.sum(axis=1), 0.0, atol=1e-12)
    # the weights differ from the fixed-weight contrast: the weights' own noise counts
    n1, t1 = y.shape[0] - n0, y.shape[1] - t0
    fixed = np.outer(
        np.append(-fit.omega, np.full(n1, 1.0 / n1)), np.append(-fit.lambda_, np.full(t1, 1 / t1))
    )
    assert np.abs(w - fixed).max() > 1e-3
    h, rng = 1e-6, np.random.default_rng(seed)
    cells = [(0, 0), (n0, 2), (n0 + 1, 7), (5, 5), (2, 9)]
    cells += [tuple(c) for c in rng.integers(0, y.shape, (8, 2))]
    for i, t in cells:
        up, down = y.copy(), y.copy()
        up[i, t] += h
        down[i, t] -= h
        slope = (_exact_estimate(up, n0, t0, fit) - _exact_estimate(down, n0, t0, fit)) / (2 * h)
        assert slope == pytest.approx(w[i, t], abs=1e-7), (i, t)


def test_first_order_weights_of_did_are_its_fixed_contrast():
    from pathfinder_eval.estimators.synthetic.first_order import first_order_weights

    y, n0, t0 = _regional_block(3)
    fit = synthdid(y, n0, t0, "did")
    w = first_order_weights(y, n0, t0, fit)
    assert (w * y).sum() == pytest.approx(fit.estimate, abs=1e-12)
    n1, t1 = y.shape[0] - n0, y.shape[1] - t0
    unit = np.append(np.full(n0, -1.0 / n0), np.full(n1, 1.0 / n1))
    np.testing.assert_allclose(
        w, np.outer(unit, np.append(np.full(t0, -1 / t0), np.full(t1, 1 / t1)))
    )
    with pytest.raises(ValueError, match="sdid and did"):
        first_order_weights(y, n0, t0, synthdid(y, n0, t0, "sc"))


def test_first_order_weights_do_not_depend_on_the_outcome_units():
    """θ̂ is homogeneous of degree one, so ∂θ̂/∂Y is unit-free: outcomes in thousands or in
    millionths give the same weights (1e-12; the KKT systems are solved in units of σ̂)."""
    from pathfinder_eval.estimators.synthetic.first_order import first_order_weights

    y, n0, t0 = _regional_block(3)
    w = first_order_weights(y, n0, t0, synthdid(y, n0, t0))
    for c in (1e3, 1e6, 1e-4):
        scaled = first_order_weights(y * c, n0, t0, synthdid(y * c, n0, t0))
        np.testing.assert_allclose(scaled, w, rtol=0, atol=1e-12)


def test_a_near_singular_weight_problem_is_not_differentiated():
    """Donors whose two pre-period values differ by the same constant make the time weights'
    problem singular (its ridge is 1e-12 σ̂²): the derivative would be rounding noise (weights
    of 3e9 before this check), so first_order_weights refuses (test_panel_variance: the
    estimator then holds those weights fixed and says so)."""
    from pathfinder_eval.errors import EstimationError
    from pathfinder_eval.estimators.synthetic.first_order import first_order_weights

    y, n0, t0 = _regional_block(3)
    y[:n0, 3] = y[:n0, 2] + 0.5
    with pytest.raises(EstimationError, match="too near singular"):
        first_order_weights(y, n0, t0, synthdid(y, n0, t0))


def test_noise_free_comparison_series_are_refused_with_a_reason():
    """σ̂ = 0 (every donor changes by the same amount each period) leaves nothing to scale the
    regularisation by: a clear EstimationError, not a division by zero."""
    from pathfinder_eval.errors import EstimationError

    y = np.tile(np.arange(8.0), (12, 1))
    y[10:, 5:] += 1.0
    with pytest.raises(EstimationError, match="change by the same amount"):
        synthdid(y, 10, 5)
    assert synthdid(y, 10, 5, "did").estimate == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("donors", [6, 14])
def test_the_placebo_variance_has_a_t_reference_on_its_donors(donors):
    """The placebo variance is the spread of n0 placebo estimates: its reference is t(n0 − 1),
    and below 10 donors a warning says how unreliable it is (with one treated unit and 6
    donors the normal reference rejected 17% of true nulls at 5%; found in review)."""
    rng = np.random.default_rng(donors)
    n, years = donors + 1, np.arange(2019, 2025)
    y = rng.normal(10, 2, n)[:, None] + 0.2 * np.arange(6) + rng.normal(size=(n, 6))
    first = np.where(np.arange(n) == 0, 2024, 0)
    frame = pd.DataFrame(
        {
            "la": np.repeat([f"u{i}" for i in range(n)], 6),
            "year": np.tile(years, n),
            "y": y.ravel(),
            "first": np.repeat(first, 6),
        }
    )
    kw = dict(outcome="y", unit="la", time="year", first_treated="first", seed=1)
    res = pe.synthetic_did(frame, **kw, inference="randomisation")
    row = res.table.iloc[0]
    assert row["df"] == donors - 1
    t = row["estimate"] / row["std_error"]
    assert row["p_value"] == pytest.approx(2 * stats.t.sf(abs(t), donors - 1), rel=1e-12)
    half = stats.t.ppf(0.975, donors - 1) * row["std_error"]
    assert row["ci_upper"] - row["estimate"] == pytest.approx(half, rel=1e-12)
    assert f"t({donors - 1}) reference" in res.inference.label
    # with one treated unit there are only n0 placebo assignments (the label said 200)
    drawn = f"drawn from the {donors} possible" if donors < 200 else ""
    assert drawn in res.inference.label
    few = [w for w in res.warnings if w.startswith(f"Only {donors} donors: the placebo")]
    assert len(few) == (donors < 10)


def test_the_pooled_variance_says_what_it_does_without_sizes_or_regions():
    """On Prop 99 (no populations, no regions) the default's reason said the pooled variance
    'scales the noise by unit size and adds the shocks shared within the treated units'
    regions', and its label said 'units of unknown size' (found in review)."""
    if not PROP99.is_file():
        pytest.skip("california_prop99.csv absent: expected in ../shared/data/reference/synth")
    frame = pd.read_csv(PROP99)
    kw = dict(outcome="PacksPerCapita", unit="State", time="Year", treatment="treated")
    res = pe.synthetic_did(frame, **kw)
    assert res.inference.key == "pooled_panel" and res.inference.chosen_by_default
    assert res.inference.reason.endswith(
        "whatever its size and region; the pooled variance learns the noise from every "
        "comparison unit"
    )
    assert "units of unknown size, so each is given the same noise and a small treated " in (
        res.inference.label
    )
