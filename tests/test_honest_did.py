"""Rambachan-Roth sensitivity analysis against the HonestDiD README's Medicaid example.

Reference: tests/reference/honestdid_ehec/ (README.md there says where each number comes from).
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import ndtri

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.inference import honest_did as hd
from pathfinder_eval.results import EffectEstimates, InferenceUsed, estimates_table

REF = Path(__file__).parent / "reference" / "honestdid_ehec"
N_PRE, N_POST = 5, 2
# Our event-study regression (statsmodels) beside fixest's stored β̂ and Σ (17 significant
# digits): the same least squares by different factorisations, so they agree to rounding,
# which moves with numpy/BLAS releases (2.5e-12 relative seen with numpy 2.4.6).
REGRESSION_REL_TOL = 1e-10
# R's qnorm (AS 241) and scipy's ndtri each invert to about 1e-16 relative; R prints 17 digits.
RNG_REL_TOL = 1e-13


def _load_event_study_module():
    spec = importlib.util.spec_from_file_location("honestdid_es", REF / "event_study.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@lru_cache(maxsize=1)
def inputs() -> tuple[np.ndarray, np.ndarray]:
    frame = pd.read_csv(REF / "betahat_sigma.csv")
    return frame["betahat"].to_numpy(), frame.filter(like="sigma_").to_numpy()


def ref(table: str) -> pd.DataFrame:
    v = pd.read_csv(REF / "values.csv", dtype={"lb": str, "ub": str})
    return v[v["table"] == table].reset_index(drop=True)


def r_rnorm(n: int, seed: int = 0) -> np.ndarray:
    """R's set.seed(seed); rnorm(n): Mersenne-Twister seeded by R's LCG scrambling, normals by
    inversion of 2^27-resolution uniforms built from two draws."""
    s = seed & 0xFFFFFFFF
    for _ in range(50):
        s = (69069 * s + 1) & 0xFFFFFFFF
    words = []
    for _ in range(625):
        s = (69069 * s + 1) & 0xFFFFFFFF
        words.append(s)
    gen = np.random.MT19937()
    gen.state = {
        "bit_generator": "MT19937",
        "state": {"key": np.array(words[1:], dtype=np.uint32), "pos": 624},
    }
    u = gen.random_raw(2 * n).astype(np.float64) * 2.3283064365386963e-10
    big = 134217728.0
    return ndtri((np.floor(big * u[0::2]) + u[1::2]) / big)


def r_normal_draws(n: int, k: int) -> np.ndarray:
    """mvtnorm::rmvnorm's standard normals after set.seed(0): filled by row."""
    return r_rnorm(n * k).reshape(n, k)


@lru_cache(maxsize=1)
def _r_folded_draws() -> np.ndarray:
    return r_rnorm(10**6)


def r_folded_quantile(p: float, mu: float) -> float:
    """HonestDiD's simulated |N(mu, 1)| quantile (10^6 draws after set.seed(0), type 7)."""
    return float(np.quantile(np.abs(_r_folded_draws() + mu), p))


def sig_digits(text: str) -> int:
    digits = text.lstrip("-").replace(".", "").lstrip("0")
    return len(digits)


def test_r_rng_emulation_matches_r() -> None:
    # R 4.x: set.seed(0); rnorm(3) -> 1.26295428488079331 -0.32623336070564940 1.32979926292250061
    np.testing.assert_allclose(
        r_rnorm(3),
        [1.26295428488079331, -0.32623336070564940, 1.32979926292250061],
        rtol=RNG_REL_TOL,
    )


# ------------------------------------------------------------------ event-study inputs


def test_event_study_inputs_reproduced_and_match_r_covariance() -> None:
    beta, sigma = inputs()
    b2, s2 = _load_event_study_module().event_study()
    np.testing.assert_allclose(b2, beta, rtol=REGRESSION_REL_TOL)
    np.testing.assert_allclose(s2, sigma, rtol=REGRESSION_REL_TOL)
    # The README's cached constructOriginalCS for l = (0.5, 0.5) pins down the post-period block
    # of sigma (fixest small-sample factor with K = 15) and the post coefficients.
    orig = ref("cache_original_avg").iloc[0]
    ci = hd.original_ci(beta, sigma, N_PRE, N_POST, [0.5, 0.5])
    assert ci.lower == pytest.approx(float(orig.lb), rel=REGRESSION_REL_TOL)
    assert ci.upper == pytest.approx(float(orig.ub), rel=REGRESSION_REL_TOL)


# ------------------------------------------------------------------ smoothness, FLCI


def test_flci_matches_readme_exact_quantile() -> None:
    """Exact folded-normal quantile: within 5e-5 of HonestDiD's full-precision values (it
    simulates the quantile from 10^6 draws; observed max abs diff 3.0e-5)."""
    beta, sigma = inputs()
    r = ref("cache_readme_sd")
    res = hd.sensitivity_sd(beta, sigma, N_PRE, N_POST, r["m"].to_numpy())
    np.testing.assert_allclose(res.lower, r["lb"].astype(float), rtol=0, atol=5e-5)
    np.testing.assert_allclose(res.upper, r["ub"].astype(float), rtol=0, atol=5e-5)


def test_flci_matches_readme_with_r_simulated_quantile() -> None:
    """With R's simulated quantile the FLCI equals HonestDiD's to 1e-9 for M >= 0.02; for
    M <= 0.01 both end points move together by <= 1e-5 (HonestDiD's ECOS/bisection lands on a
    slightly different centre: observed 9.8e-6 at M = 0, 4.2e-6 at M = 0.01)."""
    beta, sigma = inputs()
    r = ref("cache_readme_sd")
    res = hd.sensitivity_sd(
        beta, sigma, N_PRE, N_POST, r["m"].to_numpy(), folded_quantile=r_folded_quantile
    )
    lb, ub = r["lb"].astype(float).to_numpy(), r["ub"].astype(float).to_numpy()
    big = r["m"].to_numpy() >= 0.02
    np.testing.assert_allclose(res.lower[big], lb[big], rtol=0, atol=1e-9)
    np.testing.assert_allclose(res.upper[big], ub[big], rtol=0, atol=1e-9)
    np.testing.assert_allclose(res.lower[~big], lb[~big], rtol=0, atol=1.5e-5)
    np.testing.assert_allclose(res.upper[~big], ub[~big], rtol=0, atol=1.5e-5)
    # half-lengths agree more tightly than centres
    np.testing.assert_allclose(res.upper - res.lower, ub - lb, rtol=0, atol=5e-7)
    # printed README table: within half a unit of the last printed digit (+1e-5 for the
    # centre difference above)
    printed = ref("readme_sd")
    for i, row in printed.iterrows():
        for col, ours in (("lb", res.lower[i]), ("ub", res.upper[i])):
            text = row[col]
            unit = 10.0 ** (np.floor(np.log10(abs(float(text)))) - sig_digits(text) + 1)
            assert abs(ours - float(text)) <= unit / 2 + 1e-5, (row.m, col, ours, text)
    assert res.breakdown == pytest.approx(0.02)


def test_flci_m0_one_post_period_is_linear_extrapolation_gls() -> None:
    beta, sigma = inputs()
    b, s = beta[:6], sigma[:6, :6]  # 5 pre periods, first post period only
    ci = hd.flci_sd(b, s, 5, 1, 0.0)
    # GLS of beta on (slope * t, tau * 1[post]) with t = -5..-1, 1
    t = np.array([-5.0, -4, -3, -2, -1, 1])
    x = np.column_stack([t, (t > 0).astype(float)])
    si = np.linalg.inv(s)
    cov = np.linalg.inv(x.T @ si @ x)
    coef = cov @ x.T @ si @ b
    z = stats.norm.ppf(0.975)
    assert ci.estimate == pytest.approx(coef[1], abs=1e-12)
    assert ci.std_error == pytest.approx(np.sqrt(cov[1, 1]), rel=1e-8)
    assert ci.lower == pytest.approx(coef[1] - z * np.sqrt(cov[1, 1]), abs=1e-10)
    assert ci.upper == pytest.approx(coef[1] + z * np.sqrt(cov[1, 1]), abs=1e-10)
    assert ci.max_bias == 0


@pytest.mark.parametrize("n_pre, n_post", [(2, 1), (3, 2), (4, 2), (5, 3)])
def test_flci_bias_program_certified_optimum_is_feasible_and_agrees_with_slsqp(
    n_pre, n_post
) -> None:
    """The worst-case-bias program for each sd bound h: the certified cone route's weights
    satisfy the trend and variance constraints to rounding (SLSQP's overshoot the variance
    bound by up to about 1e-7 relative, which lets their bias fall below the true minimum),
    their bias is SLSQP's to 1e-6 and never above a feasible SLSQP point's, and the route
    certifies most h of the grid."""
    rng = np.random.default_rng(n_pre * 10 + n_post)
    k = n_pre + n_post
    root = rng.normal(size=(k, k))
    sigma = root @ root.T / k + 0.2 * np.eye(k)
    problem = hd._Flci(rng.normal(size=k), sigma, n_pre, n_post, None, 0.95, None)
    certified = 0
    for h in np.linspace(problem.h_min, problem.h_max, 41)[1:]:
        w = problem._certified(h)
        slsqp = problem._slsqp(h)
        if w is None:
            continue
        certified += 1
        assert problem.a_vec @ w == pytest.approx(problem.a0, abs=1e-12)
        assert problem.var(w) <= h * h * (1 + 1e-12)
        assert problem.bias_l1(w) == pytest.approx(problem.bias_l1(slsqp), abs=1e-6)
        if problem.var(slsqp) <= h * h:  # a feasible point cannot do better than the optimum
            assert problem.bias_l1(w) <= problem.bias_l1(slsqp) + 1e-12
    assert certified >= 36


def test_flci_same_interval_when_every_h_falls_back_to_slsqp(monkeypatch) -> None:
    """The certificate is only a shortcut: with the SLSQP route alone the README's FLCIs move
    by less than 1e-6 (the SLSQP points' overshoot of the variance bound)."""
    beta, sigma = inputs()
    m = ref("cache_readme_sd")["m"].to_numpy()
    fast = hd.sensitivity_sd(beta, sigma, N_PRE, N_POST, m)
    monkeypatch.setattr(hd._Flci, "_certified", lambda self, h: None)
    slow = hd.sensitivity_sd(beta, sigma, N_PRE, N_POST, m)
    np.testing.assert_allclose(fast.lower, slow.lower, rtol=0, atol=1e-6)
    np.testing.assert_allclose(fast.upper, slow.upper, rtol=0, atol=1e-6)


def test_flci_widens_monotonically_in_m() -> None:
    beta, sigma = inputs()
    for lv in ([1.0, 0.0], [0.5, 0.5], [0.0, 1.0]):
        res = hd.sensitivity_sd(beta, sigma, N_PRE, N_POST, np.linspace(0, 0.06, 7), lv)
        assert np.all(np.diff(res.lower) <= 1e-12)
        assert np.all(np.diff(res.upper) >= -1e-12)


def test_breakdown_sd_by_bisection() -> None:
    beta, sigma = inputs()
    m_star = hd.breakdown_value(beta, sigma, N_PRE, N_POST, "SD", tol=1e-6)
    assert 0.02 < m_star < 0.03  # README: "breakdown value ... M ~ 0.03" (grid 0.01)
    assert hd.flci_sd(beta, sigma, N_PRE, N_POST, m_star).lower > 0
    assert hd.flci_sd(beta, sigma, N_PRE, N_POST, m_star + 2e-6).lower < 0


# ------------------------------------------------------------------ relative magnitudes, C-LF


@pytest.mark.parametrize(
    ("table", "grid", "lv"),
    [
        ("cache_readme_rm", "identified_set", [1.0, 0.0]),
        ("cache_rm_zero_grid", "zero", [1.0, 0.0]),
        ("cache_rm_avg", "identified_set", [0.5, 0.5]),
    ],
)
def test_rm_matches_honestdid_exactly_with_r_draws(table, grid, lv) -> None:
    """Same theta grid and R's least-favourable draws: every end point is the same grid point
    as HonestDiD's (differences are floating-point only)."""
    beta, sigma = inputs()
    r = ref(table)
    res = hd.sensitivity_rm(
        beta,
        sigma,
        N_PRE,
        N_POST,
        r["m"].to_numpy(),
        lv,
        grid=grid,
        normal_draws=r_normal_draws,
    )
    np.testing.assert_allclose(res.lower, r["lb"].astype(float), rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.upper, r["ub"].astype(float), rtol=0, atol=1e-12)


def test_rm_printed_readme_table() -> None:
    beta, sigma = inputs()
    printed = ref("readme_rm")
    res = hd.sensitivity_rm(
        beta,
        sigma,
        N_PRE,
        N_POST,
        printed["m"].to_numpy(),
        grid="identified_set",
        normal_draws=r_normal_draws,
    )
    for i, row in printed.iterrows():
        for col, ours in (("lb", res.lower[i]), ("ub", res.upper[i])):
            n = sig_digits(row[col])
            assert float(f"{ours:.{n}g}") == float(row[col]), (row.m, col, ours, row[col])
    assert res.breakdown == 1.5  # README: significant up to Mbar between 1.5 and 2


def test_rm_numpy_draws_within_monte_carlo_of_readme() -> None:
    """Own (numpy) draws: the least-favourable critical value differs by Monte Carlo error,
    which moves end points by at most ~1 grid step (observed <= 1.1 steps)."""
    beta, sigma = inputs()
    r = ref("cache_readme_rm")
    res = hd.sensitivity_rm(beta, sigma, N_PRE, N_POST, r["m"].to_numpy(), grid="identified_set")
    step = 40 * np.sqrt(sigma[5, 5]) / 999
    assert np.max(np.abs(res.lower - r["lb"].astype(float))) <= 1.5 * step
    assert np.max(np.abs(res.upper - r["ub"].astype(float))) <= 1.5 * step


def test_rm_mbar0_is_parallel_trends_interval() -> None:
    """Delta^RM(0) forces delta_post = 0, so theta = beta_post1 is point identified and the test
    is two-sided on (beta_1 - theta)/se: the C-LF interval is beta_1 +/- c se, c the
    1 - (alpha-kappa)/(1-kappa) quantile of N(0,1) truncated to [0, cv_LF / se], cv_LF ~
    the 1 - kappa quantile of |N(0, se^2)| (up to Monte Carlo and one grid step)."""
    beta, sigma = inputs()
    res = hd.sensitivity_rm(beta, sigma, N_PRE, N_POST, [0.0])
    se = np.sqrt(sigma[5, 5])
    alpha, kappa = 0.05, 0.005
    u = stats.norm.ppf(1 - kappa / 2)
    mod = (alpha - kappa) / (1 - kappa)
    c = stats.norm.ppf(0.5 + (1 - mod) * (stats.norm.cdf(u) - 0.5))
    step = 40 * se / 999
    assert res.lower[0] == pytest.approx(beta[5] - c * se, abs=1.5 * step)
    assert res.upper[0] == pytest.approx(beta[5] + c * se, abs=1.5 * step)
    orig = res.original
    assert orig.lower < res.lower[0] < res.upper[0] < orig.upper + step  # c ~ 1.92 < 1.96


def test_rm_widens_in_mbar_and_breakdown() -> None:
    beta, sigma = inputs()
    mbars = [0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0]
    res = hd.sensitivity_rm(beta, sigma, N_PRE, N_POST, mbars, normal_draws=r_normal_draws)
    assert np.all(np.diff(res.lower) <= 1e-12)
    assert np.all(np.diff(res.upper) >= -1e-12)
    m_star = hd.breakdown_value(
        beta, sigma, N_PRE, N_POST, "RM", tol=1e-3, normal_draws=r_normal_draws
    )
    assert 1.5 < m_star < 2.0


def test_rm_single_post_period_runs_and_covers_estimate() -> None:
    beta, sigma = inputs()
    res = hd.sensitivity_rm(beta[:6], sigma[:6, :6], 5, 1, [0.0, 1.0])
    assert res.lower[0] < beta[5] < res.upper[0]
    assert res.lower[1] <= res.lower[0] and res.upper[1] >= res.upper[0]


# ------------------------------------------------------------------ wiring and errors


def _fake_event_study() -> EffectEstimates:
    beta, sigma = inputs()
    times = [-6, -5, -4, -3, -2, 1, 2]  # reference -1; listed out of order below
    order = [5, 0, 6, 1, 2, 3, 4]
    rows = [
        {
            "term": f"event time {times[j]}",
            "estimate": beta[j],
            "std_error": np.sqrt(sigma[j, j]),
            "statistic": 0.0,
            "p_value": 1.0,
            "ci_lower": 0.0,
            "ci_upper": 0.0,
            "event_time": times[j],
        }
        for j in order
    ]
    return EffectEstimates(
        analysis_id="a",
        outcome="dins",
        estimator="event_study",
        inference=InferenceUsed(key="cr1", label="cluster"),
        table=estimates_table(rows),
        level=0.95,
        vcov=sigma[np.ix_(order, order)],
    )


def test_sensitivity_from_event_study_matches_arrays() -> None:
    beta, sigma = inputs()
    est = _fake_event_study()
    b2, s2, n_pre, n_post = hd.event_study_inputs(est)
    assert (n_pre, n_post) == (5, 2)
    # exact: event_study_inputs copies the table's estimates and vcov, it computes nothing
    np.testing.assert_array_equal(b2, beta)
    np.testing.assert_array_equal(s2, sigma)
    sd = hd.sensitivity_from_event_study(est, "SD", [0.0, 0.02])
    direct = hd.sensitivity_sd(beta, sigma, 5, 2, [0.0, 0.02])
    np.testing.assert_allclose(sd.lower, direct.lower, atol=1e-12)
    rm = hd.sensitivity_from_event_study(est, "RM", [1.0])
    assert rm.rows()[0]["Mbar"] == 1.0 and rm.method == "C-LF"


def test_bad_inputs_raise_estimation_error() -> None:
    beta, sigma = inputs()
    with pytest.raises(EstimationError, match="expected 6"):
        hd.sensitivity_sd(beta, sigma, 4, 2, [0.0])
    with pytest.raises(EstimationError, match="l_vec"):
        hd.sensitivity_sd(beta, sigma, 5, 2, [0.0], l_vec=[1.0])
    with pytest.raises(EstimationError, match="M = -1"):
        hd.flci_sd(beta, sigma, 5, 2, -1.0)
    with pytest.raises(EstimationError, match="Mbar"):
        hd.sensitivity_rm(beta, sigma, 5, 2, [-0.5])
    with pytest.raises(EstimationError):
        hd.sensitivity_from_event_study(_fake_event_study(), "XX")
