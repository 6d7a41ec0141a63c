"""Randomisation inference over treatment timing: the precomputed TWFE statistic against
brute-force statsmodels refits of every re-assignment, the generic-callable path, the
Monte Carlo path and the interval by inversion."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.inference.randomisation_did import timing_randomisation

# The fast statistic and a dummy-variable OLS refit are the same least squares: rounding only.
EXACT = 1e-10
INF = np.inf


def small_panel(seed=4, n_units=6, n_periods=5, start=(2, 4, INF, INF, INF, INF), drop=0):
    rng = np.random.default_rng(seed)
    units = np.repeat(np.arange(n_units), n_periods)
    periods = np.tile(np.arange(1, n_periods + 1), n_units).astype(float)
    start = np.array(start, dtype=float)
    d = (periods >= start[units]).astype(float)
    y = rng.normal(size=n_units)[units] + 0.2 * periods + 0.7 * d + rng.normal(size=len(units))
    keep = np.ones(len(y), bool)
    if drop:
        keep[rng.choice(len(y), drop, replace=False)] = False
    return y[keep], units[keep], periods[keep], start


def ols_beta(y, units, periods, start):
    frame = pd.DataFrame(
        {"y": y, "unit": units, "period": periods, "d": (periods >= start[units]).astype(float)}
    )
    return smf.ols("y ~ d + C(unit) + C(period)", frame).fit().params["d"]


def lstsq_beta(y, units, periods, start):
    """The same coefficient by dummy-variable least squares (cheaper than a formula refit)."""
    codes = np.unique(periods, return_inverse=True)[1].ravel()
    z = np.column_stack(
        [
            (periods >= start[units]).astype(float),
            np.eye(units.max() + 1)[units],
            np.eye(codes.max() + 1)[codes][:, 1:],
        ]
    )
    return np.linalg.lstsq(z, y, rcond=None)[0][0]


def distinct_assignments(start):
    return sorted(set(itertools.permutations(start.tolist())))


@pytest.mark.parametrize("drop", [0, 3])
def test_exact_null_distribution_equals_brute_force_refits(drop):
    y, units, periods, start = small_panel(drop=drop)
    res = timing_randomisation(y, units, periods, start, draws=999)
    perms = distinct_assignments(start)
    assert res.exact and res.assignments == res.total == len(perms) == 30
    brute = np.array([ols_beta(y, units, periods, np.array(p)) for p in perms])
    assert res.estimate == pytest.approx(ols_beta(y, units, periods, start), abs=EXACT)
    np.testing.assert_allclose(np.sort(res.null), np.sort(brute), rtol=0, atol=EXACT)
    p_brute = np.mean(np.abs(brute) >= abs(res.estimate) - 1e-9)
    assert res.p_value == pytest.approx(p_brute, abs=1e-12)


def test_interval_ends_are_where_brute_force_p_crosses_alpha():
    y, units, periods, start = small_panel(seed=9, n_units=7, start=(2, 3, 4, INF, INF, INF, INF))
    level = 0.9  # 7!/(4!) = 210 assignments: fine enough for a 10% test
    res = timing_randomisation(y, units, periods, start, draws=999, level=level)
    assert res.exact and res.assignments == 210
    d_obs = (periods >= start[units]).astype(float)
    perms = [np.array(p) for p in distinct_assignments(start)]

    def brute_p(b):
        shifted = y - b * d_obs
        stats = np.array([lstsq_beta(shifted, units, periods, p) for p in perms])
        return np.mean(np.abs(stats) >= abs(res.estimate - b) - 1e-9)

    eps = 1e-6
    assert res.ci_lower < res.estimate < res.ci_upper
    assert brute_p(res.ci_lower + eps) > 1 - level >= brute_p(res.ci_lower - eps)
    assert brute_p(res.ci_upper - eps) > 1 - level >= brute_p(res.ci_upper + eps)


def test_callable_statistic_path_agrees_with_fast_path():
    y, units, periods, start = small_panel(seed=2)
    fast = timing_randomisation(y, units, periods, start, draws=999, level=0.8)
    slow = timing_randomisation(
        y,
        units,
        periods,
        start,
        draws=999,
        level=0.8,
        statistic=lambda s, yy: lstsq_beta(yy, units, periods, s),
    )
    np.testing.assert_allclose(slow.null, fast.null, atol=EXACT)
    assert slow.p_value == fast.p_value
    assert slow.ci_lower == pytest.approx(fast.ci_lower, abs=1e-6)
    assert slow.ci_upper == pytest.approx(fast.ci_upper, abs=1e-6)


def test_monte_carlo_includes_observed_and_is_seeded():
    rng = np.random.default_rng(0)
    n_units, n_periods = 40, 8
    start = np.full(n_units, INF)
    start[:5] = [4, 4, 5, 6, 6]
    units = np.repeat(np.arange(n_units), n_periods)
    periods = np.tile(np.arange(1, n_periods + 1), n_units).astype(float)
    y = rng.normal(size=len(units))
    a = timing_randomisation(y, units, periods, start, draws=499, seed=3)
    b = timing_randomisation(y, units, periods, start, draws=499, seed=3)
    assert not a.exact and a.assignments == 500 and a.total > 10**6
    # same seed, same code, same process: identical bits is the reproducibility contract
    np.testing.assert_array_equal(a.null, b.null)
    assert a.p_value == b.p_value and a.ci_lower == b.ci_lower
    assert a.null[0] == a.estimate == pytest.approx(ols_beta(y, units, periods, start), abs=EXACT)
    # spot-check sampled assignments against refits: reproduce the permutations
    perms = np.random.default_rng(3)
    for j in range(1, 4):
        p = perms.permutation(start)
        assert a.null[j] == pytest.approx(ols_beta(y, units, periods, p), abs=EXACT)


def test_errors():
    y, units, periods, _ = small_panel()
    with pytest.raises(EstimationError, match="does not vary"):
        timing_randomisation(y, units, periods, np.full(6, INF))
    with pytest.raises(EstimationError, match="start dates for"):
        timing_randomisation(y, units, periods, np.full(5, INF))
