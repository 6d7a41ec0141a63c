"""Published power outputs reproduced by power.analytic, power.binary and power.design_effect.
Sources, conversions and tolerances: tests/reference/power_published/README.md."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

from pathfinder_eval.power.analytic import (
    VarianceModel,
    cell_covariance,
    gls_precision,
    power,
    stepped_wedge,
)
from pathfinder_eval.power.binary import (
    MarginalCorrelation,
    gee_variance,
    glmm_logit_variance,
    linear_period_effects,
)
from pathfinder_eval.power.design_effect import (
    individual_total,
    woertman_design_effect,
    woertman_size,
)

# Half a unit in the last printed digit.
DIGITS_3, DIGITS_4, DIGITS_7 = 5e-4, 5e-5, 5e-8
HH_BINARY = 0.041 * 0.959  # SteppedPower's sigma² in its Hussey & Hughes examples
CHURN = 0.5


def observed_window(design: np.ndarray, before: int, after: int) -> np.ndarray:
    """SteppedPower's scalar `incomplete`: keep `before` periods before and `after` from the
    switch of each standard SW sequence (first treated period), NaN elsewhere."""
    out = design.copy()
    for row in out:
        start = int(np.argmax(np.nan_to_num(row, nan=1.0) > 0))
        row[: max(start - before, 0)] = np.nan
        row[start + after :] = np.nan
    return out


# SteppedPower 0.3.4, vignette Getting_Started (inst/doc/Getting_Started.html)


def test_steppedpower_sample_size_for_80_percent():
    design = stepped_wedge([3, 3, 3])
    at = {
        n: power(0.2, gls_precision(design, VarianceModel(0.0, 1.0), n).variance) for n in (49, 50)
    }
    assert at[50] == pytest.approx(0.8074, abs=DIGITS_4)
    assert at[49] < 0.8 <= at[50]  # "Needed N per cluster per period = 50"


def test_steppedpower_parallel_designs():
    two_groups = np.repeat([[0.0], [1.0]], 10, axis=0)
    z = gls_precision(two_groups, VarianceModel(0.0, 1.0), 1).variance
    assert power(1.2, z) == pytest.approx(0.7652593, abs=DIGITS_7)
    longitudinal = np.repeat([[0.0] * 5, [1.0] * 5], 10, axis=0)
    no_cluster = gls_precision(longitudinal, VarianceModel(0.0, 0.25), 1).variance
    with_cluster = gls_precision(longitudinal, VarianceModel(0.04, 0.25), 1).variance
    assert power(0.25, no_cluster) == pytest.approx(0.7054, abs=DIGITS_4)
    assert power(0.25, with_cluster) == pytest.approx(0.4616, abs=DIGITS_4)


def test_steppedpower_autoregressive_cell_covariance():
    sizes = np.full(5, 100.0)
    for ar, row in [
        (0.6, [1.01, 0.6, 0.36, 0.216, 0.1296]),
        (0.95, [1.01, 0.95, 0.9025, 0.857375, 0.8145062]),
    ]:
        cov = cell_covariance(VarianceModel(tau2=1.0, sigma2=1.0, decay=ar), 5, sizes)
        assert cov[0] == pytest.approx(row, abs=DIGITS_7)


def test_steppedpower_incomplete_design():
    design = observed_window(stepped_wedge([2, 2, 2, 2]), before=2, after=2)
    assert np.isnan(design).sum() == 12  # the vignette's 12 unobserved cells
    v = gls_precision(design, VarianceModel(tau2=0.36, sigma2=4.0), 80).variance
    assert power(0.5, v) == pytest.approx(0.8221, abs=DIGITS_4)


def test_steppedpower_incomplete_with_transition_period_layout():
    """Incomplete_Designs vignette, Dsn2 and Dsn3: trtDelay = NA is one transition period."""
    dsn2 = stepped_wedge([2, 2, 2, 2], transition=1)
    assert np.isnan(dsn2).sum() == 8 and np.isnan(dsn2[[0, 2, 4, 6], [1, 2, 3, 4]]).all()
    dsn3 = observed_window(dsn2, before=2, after=2)
    printed = np.array(
        [
            [0, np.nan, 1, np.nan, np.nan],
            [0, 0, np.nan, 1, np.nan],
            [np.nan, 0, 0, np.nan, 1],
            [np.nan, np.nan, 0, 0, np.nan],
        ]
    )
    # exact: a design matrix of 0, 1 and NaN
    np.testing.assert_array_equal(dsn3[::2], printed)


def test_steppedpower_closed_and_open_cohort():
    design = stepped_wedge([3, 3, 3])
    closed = VarianceModel(tau2=1.0, sigma2=25.0, cohort_eta2=9.0)
    open_ = VarianceModel(tau2=1.0, sigma2=25.0, cohort_eta2=9.0, cohort_decay=0.75)
    assert power(5.0, gls_precision(design, closed, 3).variance) == pytest.approx(
        0.8524223, abs=DIGITS_7
    )
    assert power(5.0, gls_precision(design, open_, 3).variance) == pytest.approx(
        0.8284796, abs=DIGITS_7
    )


def test_steppedpower_proportional_decay_li_2020():
    """VarClosed_Li / glsPower(AR = 0.5, sigma = 0, psi = 0.1): the scalar AR decays both the
    cluster and the individual effect."""
    model = VarianceModel(
        tau2=0.025**2, sigma2=0.0, decay=0.5, cohort_eta2=0.1**2, cohort_decay=0.5
    )
    v = gls_precision(stepped_wedge([6, 6, 6, 6]), model, 100).variance
    assert power(0.018, v) == pytest.approx(0.7870855, abs=DIGITS_7)


@pytest.mark.parametrize(
    ("gamma2", "eta2", "printed"),
    [
        (0.01**2, 0.1**2, 0.7145816),  # chi = 0: closed cohort with a cluster-period effect
        (0.01**2 + 0.1**2 / 100, 0.0, 0.6451082),  # chi = 1: nested exchangeable
        (0.01**2 + CHURN * 0.1**2 / 100, (1 - CHURN) * 0.1**2, 0.6778561),  # chi = 0.5
    ],
)
def test_steppedpower_kasza_open_cohort(gamma2, eta2, printed):
    model = VarianceModel(tau2=0.025**2, sigma2=HH_BINARY, gamma2=gamma2, cohort_eta2=eta2)
    v = gls_precision(stepped_wedge([6, 6, 6, 6]), model, 100).variance
    assert power(0.018, v) == pytest.approx(printed, abs=DIGITS_7)


# swdpwr 1.11 marginal (GEE) model, README of github.com/jiachenchen322/swdpwr_r_manual

TWO_SEQ_4 = np.array([[0, 1, 1, 1]] * 6 + [[0, 0, 1, 1]] * 6, dtype=float)
TWO_SEQ_3 = np.array([[0, 1, 1]] * 4 + [[0, 0, 1]] * 4, dtype=float)
COHORT = MarginalCorrelation(alpha0=0.03, alpha1=0.015, alpha2=0.2)


def test_swdpwr_example_2_marginal_log_link_cohort():
    eta = linear_period_effects(0.156, 0.1765, 4, "log")
    v = gee_variance(TWO_SEQ_4, eta, 0.75, "log", 100, COHORT)
    assert power(0.75, v) == pytest.approx(0.983, abs=DIGITS_3)


def test_swdpwr_example_3_marginal_identity_cross_sectional_without_periods():
    eta = linear_period_effects(0.15, 0.15, 4, "identity")
    corr = MarginalCorrelation(alpha0=0.02, alpha1=0.015)
    v = gee_variance(TWO_SEQ_4, eta, 0.05, "identity", 100, corr, period_effects=False)
    assert power(0.05, v) == pytest.approx(0.946, abs=DIGITS_3)
    # swdpwr drops period effects when start = end; with them the power is far lower
    with_periods = gee_variance(TWO_SEQ_4, eta, 0.05, "identity", 100, corr)
    assert power(0.05, with_periods) < 0.4


def test_swdpwr_example_4_gaussian_cohort():
    eta = linear_period_effects(0.1, 0.2, 3, "identity")
    v = gee_variance(TWO_SEQ_3, eta, 0.2, "identity", 24, COHORT, sigma2=0.095)
    assert power(0.2, v) == pytest.approx(0.965, abs=DIGITS_3)
    flat = gee_variance(
        TWO_SEQ_3, np.zeros(3), 0.2, "identity", 24, COHORT, sigma2=0.095, period_effects=False
    )
    assert power(0.2, flat) >= 1 - DIGITS_3  # printed "1"
    # Gaussian identity GEE = GLS with the alpha → random-effects conversion (SteppedPower)
    s2, a0, a1, a2 = 0.095, COHORT.alpha0, COHORT.alpha1, COHORT.alpha2
    model = VarianceModel(
        tau2=a1 * s2,
        gamma2=(a0 - a1) * s2,
        cohort_eta2=(a2 - a1) * s2,
        sigma2=(1 - a0 - a2 + a1) * s2,
    )
    assert gls_precision(TWO_SEQ_3, model, 24).variance == pytest.approx(v, rel=1e-12)


# Woertman et al. (2013) design effect


def test_woertman_design_effect_values():
    """Kristunas et al. (2017, Trials 18:109) Table 2, 'Woertman et al.' rows with no imbalance."""
    for n, k, printed in [(10, 4, 0.535), (20, 3, 0.767), (20, 4, 0.572)]:
        de = woertman_design_effect(icc=0.05, steps=k, baseline=1, per_step=1, n=n)
        assert de == pytest.approx(printed, abs=DIGITS_3)


@pytest.mark.parametrize(
    ("icc", "k", "t", "b", "n", "per_step"), [(0.05, 4, 1, 1, 10, 3), (0.1, 3, 2, 1, 20, 2)]
)
def test_woertman_is_hussey_hughes_with_equal_allocation(icc, k, t, b, n, per_step):
    """DE_sw · 4σ²/(I n) is the HH GLS variance exactly: N_sw counts I·n individuals."""
    periods = b + k * t
    starts = np.repeat(b + t * np.arange(k), per_step)
    design = (np.arange(periods)[None, :] >= starts[:, None]).astype(float)
    hh = gls_precision(design, VarianceModel.from_icc(icc), n).variance
    de = woertman_design_effect(icc, k, b, t, n)
    assert hh == pytest.approx(4 * de / (design.shape[0] * n), rel=1e-12)


def test_woertman_clusters_and_its_limits():
    n_u = individual_total(0.2)
    assert n_u == pytest.approx(4 * (1.959963984540054 + 0.8416212335729143) ** 2 / 0.04)
    size = woertman_size(n_u, icc=0.05, steps=4, baseline=1, per_step=1, n=10)
    assert size.clusters == pytest.approx(size.n_sw / 10)
    assert size.clusters_per_step == 11 and size.measured == 11 * 4 * 10 * 5
    design = stepped_wedge([size.clusters_per_step] * 4)
    model = VarianceModel.from_icc(0.05)
    equal = gls_precision(design, model, 10).variance
    assert power(0.2, equal) == pytest.approx(0.81795, abs=1e-5)  # rounding 10.5 up to 11
    # unequal allocation (Hemming 2016): the same 44 clusters, 4% less variance, which the
    # design effect cannot see
    unequal = gls_precision(stepped_wedge([14, 8, 8, 14]), model, 10).variance
    assert unequal / equal == pytest.approx(0.95821, abs=1e-5)
    # a cluster autocorrelation of 0.8 (nested exchangeable) adds 6% the design effect misses
    decayed = gls_precision(design, VarianceModel.from_icc(0.05, cac=0.8), 10).variance
    assert decayed / equal == pytest.approx(1.06397, abs=1e-5)


# Conditional logistic GLMM: first-order power against the project's GLMM estimator


@pytest.mark.slow
def test_glmm_logit_power_matches_simulated_glmm_wald_test():
    from pathfinder_eval.estimators.stepped_wedge.glmm import CountCells, fit_glmm

    rng = np.random.default_rng(7)
    design = stepped_wedge([4, 4, 4, 4])
    i, t = design.shape
    m, tau2, effect, sims = 40, 0.1, 0.4, 500
    eta0 = special.logit(0.3) + 0.05 * np.arange(t)
    x = np.concatenate([np.broadcast_to(np.eye(t), (i, t, t)), design[:, :, None]], axis=2)
    v = glmm_logit_variance(design, eta0, effect, m, tau2)
    expected = power(effect, v)
    rejections, ses = 0, []
    for _ in range(sims):
        b = rng.normal(0.0, np.sqrt(tau2), i)
        y = rng.binomial(m, special.expit(eta0 + effect * design + b[:, None])).astype(float)
        cells = CountCells(y, np.full((i, t), float(m)), np.ones((i, t), bool))
        fit = fit_glmm(cells, x, "hussey_hughes", "binomial")
        se = np.sqrt(fit.vcov[-1, -1])
        ses.append(se)
        rejections += abs(fit.beta[-1]) / se > 1.959963984540054
    mc = np.sqrt(expected * (1 - expected) / sims)
    assert rejections / sims == pytest.approx(expected, abs=3 * mc)
    assert np.mean(ses) == pytest.approx(np.sqrt(v), rel=0.02)
