"""Conley–Taber inference: closed forms on tiny panels, the control residuals against a
statsmodels TWFE fit, and size under H0 by simulation (1–3 treated of 50 groups)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.inference.conley_taber import conley_taber

EXACT = 1e-10  # the same least squares computed two ways: rounding only


def grid(n_units, n_periods):
    return np.repeat(np.arange(n_units), n_periods), np.tile(np.arange(n_periods), n_units)


def test_two_period_closed_form():
    """Two periods, one treated group: α̂ = Δy_1 − mean Δy_C, the draws are
    Δy_ℓ − mean Δy_C, so the interval runs over Δy_1 − Δy_ℓ."""
    units, periods = grid(5, 2)
    y = np.array([1.0, 3.5, 0.0, 1.0, 2.0, 2.5, -1.0, 1.0, 0.5, 0.0])
    d = ((units == 0) & (periods == 1)).astype(float)
    res = conley_taber(y, d, units, periods)
    dy = y[1::2] - y[0::2]  # [2.5, 1, 0.5, 2, -0.5]
    assert res.estimate == pytest.approx(dy[0] - dy[1:].mean(), abs=EXACT)
    np.testing.assert_allclose(res.null, np.sort(dy[1:] - dy[1:].mean()), atol=EXACT)
    assert res.enumerated and res.draws == 4
    # four draws cannot reject at 5% (p ≥ 2/5), so there is no bounded 95% interval
    assert np.isnan(res.ci_lower) and np.isnan(res.ci_upper)
    wide = conley_taber(y, d, units, periods, level=0.5)  # r = ⌊0.5 · 5 / 2⌋ = 1
    assert wide.ci_lower == pytest.approx(np.min(dy[0] - dy[1:]), abs=EXACT)
    assert wide.ci_upper == pytest.approx(np.max(dy[0] - dy[1:]), abs=EXACT)
    # α̂ = 1.75 exceeds every draw: no draw at or above it, so the upper tail is (0 + 1)/(4 + 1)
    # and p = 0.4 (it was 0: four controls cannot reject anything)
    assert res.p_value == pytest.approx(0.4, abs=1e-15)


def test_enumerated_tuples_from_statsmodels_residuals():
    rng = np.random.default_rng(8)
    units, periods = grid(8, 4)
    start = {0: 2, 1: 3}
    d = np.array(
        [u in start and t >= start[u] for u, t in zip(units, periods, strict=True)], dtype=float
    )
    y = rng.normal(size=8)[units] + 0.4 * periods + 0.5 * d + rng.normal(size=len(d))
    frame = pd.DataFrame({"y": y, "d": d, "unit": units, "period": periods})
    fit = smf.ols("y ~ d + C(unit) + C(period)", frame).fit()
    res = conley_taber(y, d, units, periods, draws=999)
    assert res.estimate == pytest.approx(fit.params["d"], abs=EXACT)
    resid = fit.resid.to_numpy().reshape(8, 4)
    w = d.reshape(8, 4)[:2] - d.reshape(8, 4)[:2].mean(axis=1, keepdims=True)
    draws = [
        (w[0] @ resid[a] + w[1] @ resid[b]) / np.sum(w * w)
        for a, b in itertools.product(range(2, 8), repeat=2)
    ]
    assert res.enumerated and res.draws == 36 and (res.n_treated, res.n_controls) == (2, 6)
    np.testing.assert_allclose(res.null, np.sort(draws), atol=EXACT)
    m = 36  # ⌊0.05 · 37 / 2⌋ = 0: no draw count can reject at 5%, so no bounded interval
    assert np.isnan(res.ci_lower) and np.isnan(res.ci_upper)
    share_le = (np.sum(np.array(draws) <= res.estimate) + 1) / (m + 1)
    share_ge = (np.sum(np.array(draws) >= res.estimate) + 1) / (m + 1)
    assert res.p_value == pytest.approx(min(1, 2 * min(share_le, share_ge)), abs=1e-12)


def simulate(rng, n_treated, n_units=50, n_periods=10, rho=0.5, scale=None):
    units, periods = grid(n_units, n_periods)
    starts = [5, 7, 6][:n_treated]
    d = np.zeros(len(units))
    for j, s in enumerate(starts):
        d[(units == j) & (periods >= s)] = 1.0
    e = np.zeros((n_units, n_periods))
    shocks = rng.normal(size=(n_units, n_periods))
    for t in range(n_periods):
        e[:, t] = (rho * e[:, t - 1] if t else 0.0) + shocks[:, t]
    if scale is not None:
        e *= scale[:, None]
    y = rng.normal(size=n_units)[units] + rng.normal(size=n_periods)[periods] + e.ravel()
    return y, d, units, periods


# Monte Carlo tolerance: 3 binomial standard errors of the rejection rate at 5%.
SIMS = 400


def _mc_tol(sims):
    return 3 * np.sqrt(0.05 * 0.95 / sims)


@pytest.mark.parametrize("n_treated", [1, 2, 3])
def test_size_near_nominal_under_h0(n_treated):
    rng = np.random.default_rng(100 + n_treated)
    rejections = 0
    for _ in range(SIMS):
        res = conley_taber(*simulate(rng, n_treated), draws=999, seed=int(rng.integers(1 << 31)))
        rejections += res.p_value <= 0.05
        assert res.ci_lower <= res.estimate <= res.ci_upper
    assert abs(rejections / SIMS - 0.05) < _mc_tol(SIMS), rejections / SIMS


def test_ferman_pinto_correction_restores_size_with_unequal_group_sizes():
    """Group-mean outcomes: error s.d. ∝ 1/√M, sizes log-uniform on [20, 2000], the treated
    group small (M = 50), so plain Conley–Taber under-states its noise and over-rejects; the
    correction brings size to nominal. It estimates the variance function from the controls,
    so it needs many of them: 200 groups here (with 50 it only halves the excess, 0.20 → 0.10
    in a 400-replication run)."""
    rng = np.random.default_rng(2019)
    n_units = 200
    sizes = np.concatenate([[50.0], np.exp(rng.uniform(np.log(20), np.log(2000), n_units - 1))])
    plain = fixed = 0
    for _ in range(SIMS):
        y, d, units, periods = simulate(rng, 1, n_units=n_units, scale=np.sqrt(200 / sizes))
        plain += conley_taber(y, d, units, periods).p_value <= 0.05
        fixed += conley_taber(y, d, units, periods, sizes=sizes).p_value <= 0.05
    assert plain / SIMS > 0.05 + _mc_tol(SIMS), plain / SIMS
    assert abs(fixed / SIMS - 0.05) < _mc_tol(SIMS), fixed / SIMS


def test_errors():
    units, periods = grid(5, 3)
    d = ((units == 0) & (periods == 2)).astype(float)
    y = np.arange(15.0)
    with pytest.raises(EstimationError, match="balanced"):
        conley_taber(y[1:], d[1:], units[1:], periods[1:])
    with pytest.raises(EstimationError, match="never-treated"):
        conley_taber(y, (units < 4) & (periods == 2), units, periods)
    with pytest.raises(EstimationError, match="positive"):
        conley_taber(y, d, units, periods, sizes=np.zeros(5))


def test_the_interval_inverts_the_p_value():
    """{α0 : p(α0) > 1 − level}: with 19 controls a finite 95% interval excluding 0 stood beside
    p = 0.10 (the interval inverted count/M, the p-value (count + 1)/(M + 1); found in
    review). With 59 controls, just inside each end p exceeds 0.05 and just outside it does
    not; with 19 there is no bounded interval."""
    rng = np.random.default_rng(4)
    for n_units, bounded in ((60, True), (20, False)):
        units, periods = grid(n_units, 6)
        d = ((units == 0) & (periods >= 3)).astype(float)
        y = rng.normal(size=n_units)[units] + 3.0 * d + rng.normal(size=len(d))
        res = conley_taber(y, d, units, periods)
        assert res.enumerated and res.draws == n_units - 1
        if not bounded:
            assert np.isnan(res.ci_lower) and res.p_value >= 2 / n_units
            continue

        for end, inside in ((res.ci_lower, 1e-9), (res.ci_upper, -1e-9)):
            assert _p(res, end + inside) > 0.05 >= _p(res, end - inside)


def _p(res, alpha0: float) -> float:
    """The p-value of H0: α = α0 from the draws, (count + 1)/(M + 1) in each tail."""
    w = res.estimate - alpha0
    below = (np.sum(res.null <= w) + 1) / (res.draws + 1)
    above = (np.sum(res.null >= w) + 1) / (res.draws + 1)
    return min(1.0, 2 * min(below, above))
