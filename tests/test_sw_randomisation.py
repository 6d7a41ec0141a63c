"""Randomisation inference for stepped wedges: the vectorised enumeration against a brute-force
loop over permutations with dense individual-level GLS, on a tiny design (6 clusters, 3
sequences: 90 allocations)."""

from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np
import pandas as pd
import pytest

from pathfinder_eval.estimators.stepped_wedge.lmm import (
    CellSummaries,
    fit_reml,
    fixed_effects,
    summarise_records,
)
from pathfinder_eval.estimators.stepped_wedge.randomisation import randomisation_test
from pathfinder_eval.inference.permutation import allocations
from sw_helpers import REF

# Same arithmetic by two routes (cell-space GLS vs N × N solves): rounding only.
STAT_TOL = 1e-9
LEVEL = 0.8  # with 90 allocations a 95% interval would rest on 4 allocations; 80% on 18


class Tiny(NamedTuple):
    ci: np.ndarray
    pi: np.ndarray
    y: np.ndarray
    cells: CellSummaries
    start: np.ndarray


@pytest.fixture(scope="module")
def tiny() -> Tiny:
    raw = pd.read_csv(REF / "sim_ne.csv")
    raw = raw[raw["cluster"].isin([f"k{i:02d}" for i in range(1, 7)])].reset_index(drop=True)
    ci, clusters = pd.factorize(raw["cluster"], sort=True)
    pi, periods = pd.factorize(raw["period"], sort=True)
    y = raw["y"].to_numpy(float)
    cells = summarise_records(ci, pi, y, (len(clusters), len(periods)))
    first = raw[raw["trt"] == 1].groupby("cluster")["period"].min()
    start = np.array([int(first[c]) - 1 for c in clusters])
    return Tiny(ci, pi, y, cells, start)


def _brute_allocations(start):
    """Distinct allocations by brute force: every permutation of the clusters, deduplicated."""
    return sorted({tuple(start[list(p)]) for p in itertools.permutations(range(len(start)))})


def _dense_gls(ci, pi, y, start_alloc, theta, n_periods):
    """GLS treatment estimate on individuals with V = τ²J + γ²(same cell) + σ²I."""
    tau2, gamma2, sigma2 = theta
    same = ci[:, None] == ci[None, :]
    v = tau2 * same + gamma2 * (same & (pi[:, None] == pi[None, :])) + sigma2 * np.eye(len(y))
    x = np.column_stack([np.eye(n_periods)[pi], (pi >= start_alloc[ci]).astype(float)])
    vinv_x = np.linalg.solve(v, x)
    return np.linalg.solve(x.T @ vinv_x, vinv_x.T @ y)[-1]


def _brute_p(raw_stats):
    stats = np.asarray(raw_stats)
    return np.mean(np.abs(stats) >= np.abs(stats[0]) - 1e-10)


def _brute_model_based(tiny, b):
    ci, pi, y, cells, start = tiny
    y_b = y - b * (pi >= start[ci])
    shifted = summarise_records(ci, pi, y_b, cells.mean.shape)
    periods_only = fixed_effects(cells.observed, start, "immediate").X[:, :, :-1]
    theta = fit_reml(shifted, periods_only, "nested_exchangeable").theta
    allocs = [tuple(start)] + [a for a in _brute_allocations(start) if a != tuple(start)]
    return [_dense_gls(ci, pi, y_b, np.array(a), theta, cells.mean.shape[1]) for a in allocs]


def _brute_npwp(cells: CellSummaries, allocs, variance: bool = False):
    """Count weights (1/n₁ + 1/n₀)⁻¹, or with `variance` the two-sample 1/SE² (pooled)."""
    out = []
    for a in allocs:
        num = den = 0.0
        for t in range(cells.mean.shape[1]):
            treated = [i for i in range(len(a)) if t >= a[i]]
            control = [i for i in range(len(a)) if t < a[i]]
            if treated and control:
                w = 1.0 / (1.0 / len(treated) + 1.0 / len(control))
                if variance:
                    y1, y0 = cells.mean[treated, t], cells.mean[control, t]
                    dof = len(y1) + len(y0) - 2
                    if dof == 0:
                        continue
                    w /= (((y1 - y1.mean()) ** 2).sum() + ((y0 - y0.mean()) ** 2).sum()) / dof
                diff = np.mean(cells.mean[treated, t]) - np.mean(cells.mean[control, t])
                num, den = num + w * diff, den + w
        out.append(num / den)
    return out


def test_enumeration_matches_brute_force_permutations(tiny):
    start = tiny.start
    alloc = allocations(start, 9999, seed=0)
    assert alloc.exact and alloc.total == 90 and len(alloc.starts) == 90
    assert tuple(alloc.starts[0]) == tuple(start)
    assert sorted(map(tuple, alloc.starts)) == _brute_allocations(start)


def test_model_based_p_value_and_statistics_match_brute_force(tiny):
    cells, start = tiny.cells, tiny.start
    fe = fixed_effects(cells.observed, start, "immediate")
    contrast = np.eye(fe.X.shape[2])[-1]
    res = randomisation_test(
        cells,
        start,
        fe,
        "immediate",
        contrast,
        "nested_exchangeable",
        "model_based",
        9999,
        0,
        LEVEL,
    )
    brute = _brute_model_based(tiny, 0.0)
    assert res.exact and res.allocations == 90
    assert np.sort(res.null) == pytest.approx(np.sort(brute), abs=STAT_TOL)
    assert res.estimate == pytest.approx(brute[0], abs=STAT_TOL)
    assert res.p_value == _brute_p(brute)  # an exact fraction k/90 by both routes
    # the interval ends are where the brute-force test switches from accept to reject
    for end, inward in ((res.ci_lower, 1.0), (res.ci_upper, -1.0)):
        assert _brute_p(_brute_model_based(tiny, end - inward * 1e-4)) <= 1 - LEVEL
        assert _brute_p(_brute_model_based(tiny, end + inward * 1e-4)) > 1 - LEVEL


@pytest.mark.parametrize("statistic", ["within_period", "npwp"])
def test_within_period_statistic_matches_brute_force(tiny, statistic):
    cells, start = tiny.cells, tiny.start
    fe = fixed_effects(cells.observed, start, "immediate")
    res = randomisation_test(
        cells,
        start,
        fe,
        "immediate",
        np.eye(fe.X.shape[2])[-1],
        "nested_exchangeable",
        statistic,
        9999,
        0,
        LEVEL,
    )
    allocs = [tuple(start)] + [a for a in _brute_allocations(start) if a != tuple(start)]
    brute = _brute_npwp(cells, allocs, variance=statistic == "npwp")
    assert np.sort(res.null) == pytest.approx(np.sort(brute), abs=STAT_TOL)
    assert res.p_value == _brute_p(brute)
    # the interval ends are checked against base R in test_reference_npwp.py
    assert res.ci_lower < res.estimate < res.ci_upper


def test_monte_carlo_is_seeded_and_counts_the_observed_allocation(tiny):
    cells, start = tiny.cells, tiny.start
    fe = fixed_effects(cells.observed, start, "immediate")
    args = (cells, start, fe, "immediate", np.eye(fe.X.shape[2])[-1], "nested_exchangeable")
    a = randomisation_test(*args, "within_period", 60, 7, LEVEL)
    b = randomisation_test(*args, "within_period", 60, 7, LEVEL)
    c = randomisation_test(*args, "within_period", 60, 8, LEVEL)
    assert not a.exact and a.allocations == 61 and a.p_value >= 1 / 61
    # same seed, same code, same process: identical bits is the reproducibility contract
    assert a.p_value == b.p_value and a.ci_lower == b.ci_lower
    assert not np.array_equal(a.null, c.null)
