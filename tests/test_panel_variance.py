"""The comparison-pooled variance (inference/panel_variance.py) and the default-inference
decision it drives (inference/policy.did_default): the variance is the model's closed form,
the model's parts are recovered from data with known covariances, its z scores are
calibrated on panels it was not tuned to, and the decision follows the measured dependence
and the treated units' geography."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import pathfinder_eval as pe
from did_helpers import REGIONS, regional_panel
from pathfinder_eval.errors import DesignError, EstimationError
from pathfinder_eval.estimators.did.callaway_santanna import CallawaySantAnna
from pathfinder_eval.estimators.did.etwfe_estimator import Etwfe
from pathfinder_eval.estimators.did.imputation import Imputation
from pathfinder_eval.estimators.did.multiplegt_dyn import MultiplegtDyn
from pathfinder_eval.estimators.did.sun_abraham import SunAbraham
from pathfinder_eval.estimators.did.twfe import EventStudy, TwoWayFixedEffects
from pathfinder_eval.estimators.did.two_way import absorb_two_way
from pathfinder_eval.inference.panel_variance import NoiseModel, noise_model, panel_variance
from pathfinder_eval.report.validity import dependence_statement
from pathfinder_eval.settings import Inference


def _psd(rng: np.random.Generator, t: int, scale: float) -> np.ndarray:
    m = rng.normal(size=(t, t))
    return scale * m @ m.T / t


def test_variance_is_the_models_closed_form():
    rng = np.random.default_rng(4)
    n, t, m = 30, 5, 3
    region = rng.integers(0, 4, n)
    size = rng.uniform(1.0, 50.0, n)
    draws = tuple(np.stack([_psd(rng, t, s) for _ in range(6)]) for s in (0.5, 2.0, 20.0))
    model = NoiseModel(
        regional=_psd(rng, t, 0.5),
        structural=_psd(rng, t, 2.0),
        sampling=_psd(rng, t, 20.0),
        draws=draws,
        rho=0.0,
        rho_se=0.0,
        change_rho=0.0,
        change_rho_se=0.0,
        n_comparison=25,
        n_regions=4,
    )
    w = rng.normal(size=(m, n, t))
    pv = panel_variance(w, model, region, size)
    expected = np.zeros((m, m))
    for a in range(m):
        for b in range(m):
            for i in range(n):
                own = model.structural + model.sampling / size[i]
                expected[a, b] += w[a, i] @ own @ w[b, i]
            for r in range(4):
                sa, sb = w[a, region == r].sum(axis=0), w[b, region == r].sum(axis=0)
                expected[a, b] += sa @ model.regional @ sb
    np.testing.assert_allclose(pv.std_error**2, np.diag(expected), rtol=1e-12)
    np.testing.assert_allclose(pv.vcov, expected, rtol=1e-10, atol=1e-12)
    own = np.array(
        [
            sum(w[a, i] @ (model.structural + model.sampling / size[i]) @ w[a, i] for i in range(n))
            for a in range(m)
        ]
    )
    np.testing.assert_allclose(pv.regional_share, 1 - own / np.diag(expected), rtol=1e-10)
    # Satterthwaite: 2 E[v̂]² / Var(v̂) over the draws, at most n_comparison − 2 = 23
    v = np.zeros((6, m))
    for b in range(6):
        for a in range(m):
            for i in range(n):
                own = draws[1][b] + draws[2][b] / size[i]
                v[b, a] += w[a, i] @ own @ w[a, i]
            v[b, a] += sum(
                w[a, region == r].sum(0) @ draws[0][b] @ w[a, region == r].sum(0) for r in range(4)
            )
    df = np.minimum(2 * v.mean(0) ** 2 / v.var(0, ddof=1), 23)
    np.testing.assert_allclose(pv.df, df, rtol=1e-10)


def test_degrees_of_freedom_are_satterthwaites_over_the_draws_below_the_cap():
    """The closed-form test above reaches the cap (n_comparison − 2) on every row, where a
    wrong df would pass unseen; with the cap out of reach each row's df is 2 E[v̂]² / Var(v̂)
    over the draws, v̂ each draw's variance by explicit loops over units and regions."""
    rng = np.random.default_rng(6)
    n, t, m, draws_n = 24, 4, 3, 8
    region = rng.integers(0, 3, n)
    size = rng.uniform(1.0, 50.0, n)
    draws = tuple(np.stack([_psd(rng, t, s) for _ in range(draws_n)]) for s in (0.5, 2.0, 20.0))
    model = NoiseModel(*(d[0] for d in draws), draws, 0.0, 0.0, 0.0, 0.0, 10**6, 3)
    w = rng.normal(size=(m, n, t))
    v = np.zeros((draws_n, m))
    for b in range(draws_n):
        for a in range(m):
            own = sum(w[a, i] @ (draws[1][b] + draws[2][b] / size[i]) @ w[a, i] for i in range(n))
            shared = sum(
                w[a, region == r].sum(0) @ draws[0][b] @ w[a, region == r].sum(0) for r in range(3)
            )
            v[b, a] = own + (shared if own + shared > 0 else 0.0)
    df = 2 * v.mean(0) ** 2 / v.var(0, ddof=1)
    got = panel_variance(w, model, region, size).df
    assert np.all(got < 1e4)  # the cap (10**6 − 2) is out of reach
    np.testing.assert_allclose(got, df, rtol=1e-10)


def test_a_negative_regional_term_counts_unless_the_total_would_not_be_positive():
    """V is estimated unbiased, so a row's regional term may be negative: it lowers the
    variance (and its share reads 0), and counts zero only where own + shared ≤ 0."""
    rng = np.random.default_rng(5)
    n, t = 12, 3
    region = np.repeat(np.arange(3), 4)
    size = np.full(n, 10.0)
    eye = np.eye(t)
    draws = tuple(np.stack([s * eye] * 3) for s in (-0.1, 1.0, 0.0))
    model = NoiseModel(-0.1 * eye, eye, 0.0 * eye, draws, 0.0, 0.0, 0.0, 0.0, 8, 3)
    w = np.zeros((2, n, t))
    w[0, :4, 0] = rng.normal(size=4)  # four LAs of one region: own Σ w², shared −0.1 (Σ w)²
    w[1, :4, 0] = 1.0  # own 4, shared −1.6: a positive total of 2.4
    w[1, 4, 1] = 0.1
    pv = panel_variance(w, model, region, size)
    own = (w**2).sum(axis=(1, 2))
    shared = -0.1 * (w.sum(axis=1) ** 2).sum(axis=1)
    np.testing.assert_allclose(pv.std_error**2, own + shared, rtol=1e-12)
    assert np.all(pv.std_error**2 < own) and np.all(pv.regional_share == 0.0)
    strong = NoiseModel(-eye, eye, 0.0 * eye, draws, 0.0, 0.0, 0.0, 0.0, 8, 3)
    # own 4.01 against shared −16.01: the total would be negative, so the term counts zero
    np.testing.assert_allclose(panel_variance(w, strong, region, size).std_error[1] ** 2, 4.01)


def test_the_variance_is_unbiased_without_regional_shocks():
    """10 treated LAs in one region, no regional shocks: over 300 panels the estimated
    variance of their DiD contrast averages within 4% of the closed form (2.4% here);
    counting the regional term only when positive, as until December 2026, gave 15% too high."""
    rng = np.random.default_rng(14)
    n, t, c = 150, 5, CONTRASTS[0]
    w = np.zeros((1, n, t))
    w[0, :10] = c / 10
    w[0, 10:] = -c / (n - 10)
    comparison = np.arange(n) >= 10
    got, truncated, truths = [], [], []
    for _ in range(300):
        y, region, size, parts = _known_noise(rng, n, 10, regional=0.0)
        model = noise_model(y, comparison, region, size, False)
        own = sum(
            w[0, i] @ (model.structural + model.sampling / size[i]) @ w[0, i] for i in range(n)
        )
        got.append(panel_variance(w, model, region, size).std_error[0] ** 2)
        truncated.append(own + max(got[-1] - own, 0.0))
        truths.append(
            sum(
                w[0, i] @ (parts["structural"] + parts["sampling"] / size[i]) @ w[0, i]
                for i in range(n)
            )
        )
    assert abs(np.mean(got) / np.mean(truths) - 1) < 0.04
    assert np.mean(truncated) / np.mean(truths) > 1.08


def _known_noise(
    rng: np.random.Generator, n: int, n_regions: int, t: int = 5, regional: float = 0.6
):
    """Residual trajectories with known parts: structural AR(1) 0.5 with variance 4,
    sampling variance 400 / size (sizes 20–500), regional shocks with variance `regional`."""
    region = np.repeat(np.arange(n_regions), n // n_regions)
    size = np.exp(rng.uniform(np.log(20.0), np.log(500.0), n))
    lag = np.abs(np.subtract.outer(np.arange(t), np.arange(t)))
    parts = {
        "structural": 4.0 * 0.5**lag,
        "sampling": 400.0 * np.eye(t),
        "regional": regional * np.eye(t),
    }
    e = rng.multivariate_normal(np.zeros(t), parts["structural"], n)
    e += rng.normal(size=(n, t)) * np.sqrt(400.0 / size)[:, None]
    e += rng.multivariate_normal(np.zeros(t), parts["regional"], n_regions)[region]
    y = 10.0 + rng.normal(size=n)[:, None] + np.arange(t) + e
    return y, region, size, parts


# DiD contrasts: three pre-periods against two post, and two against the last
CONTRASTS = (np.array([-1, -1, -1, 1.5, 1.5]) / 3, np.array([-0.5, -0.5, 0, 0, 1]))


def test_noise_model_recovers_an_las_own_variance():
    """3,000 comparison LAs: the variance of a DiD contrast of one LA's noise, small or
    large, within 15% of the truth (8 seeds gave at most 12%)."""
    y, region, size, parts = _known_noise(np.random.default_rng(11), 3000, 60)
    model = noise_model(y, np.ones(len(y), bool), region, size)
    for c in CONTRASTS:
        for n in (20.0, 500.0):
            truth = c @ (parts["structural"] + parts["sampling"] / n) @ c
            got = c @ (model.structural + model.sampling / n) @ c
            assert abs(got / truth - 1) < 0.15


def test_regional_part_and_diagnostic_are_unbiased():
    """Over 40 panels of 600 LAs in 30 regions the regional part of a DiD contrast averages
    within 10% of the truth (it is left unbiased, not projected), and the within-region
    correlation's jackknife SE matches its spread within 35%."""
    rng = np.random.default_rng(12)
    ratios, rhos, ses = [], [], []
    for _ in range(40):
        y, region, size, parts = _known_noise(rng, 600, 30)
        model = noise_model(y, np.ones(len(y), bool), region, size)
        c = CONTRASTS[0]
        ratios.append(c @ model.regional @ c / (c @ parts["regional"] @ c))
        rhos.append(model.rho)
        ses.append(model.rho_se)
    assert abs(np.mean(ratios) - 1) < 0.1
    assert model.n_regions == 30 and model.n_comparison == 600
    assert abs(np.mean(ses) / np.std(rhos, ddof=1) - 1) < 0.35


def test_degrees_of_freedom_are_those_of_the_variance_estimate():
    """150 LAs in 10 regions, 6 treated in one: over 300 panels from a known model the
    estimated variance of the treated LAs' DiD contrast has Satterthwaite degrees of freedom
    2 E[v̂]² / Var(v̂) of about 25; the bootstrap's median is within 35% of that, where
    counting R − 1 = 9 for the regional part and n − 2 for the LAs' (as before) gave about
    four times as many."""
    rng = np.random.default_rng(13)
    n, t = 150, 5
    w = np.zeros((1, n, t))
    w[0, :6] = CONTRASTS[0] / 6
    w[0, 6:] = -CONTRASTS[0] / (n - 6)
    comparison = np.arange(n) >= 6
    v, dfs, counted = [], [], []
    for _ in range(300):
        y, region, size, _ = _known_noise(rng, n, 10)
        pv = panel_variance(w, noise_model(y, comparison, region, size, False), region, size)
        var, share = pv.std_error[0] ** 2, pv.regional_share[0]
        v.append(var)
        dfs.append(pv.df[0])
        counted.append(1 / ((1 - share) ** 2 / (n - 8) + share**2 / 9))
    truth = 2 * np.mean(v) ** 2 / np.var(v, ddof=1)
    assert 15 < truth < 40
    assert abs(np.median(dfs) / truth - 1) < 0.35
    assert np.median(counted) > 3 * truth


def _twfe_z(rng: np.random.Generator, k_within: int, shock_sd: float) -> tuple[float, float]:
    """One replicate of a DGP unlike the benchmark's (binomial percentages, 10 regions of 10,
    uniform sizes, random-walk noise component): the TWFE estimate and its pooled SE and df,
    with `k_within` treated LAs in one region, chosen among its largest."""
    n, t = 100, 7
    region = np.repeat(np.arange(10), 10)
    size = rng.integers(200, 5000, n).astype(float)
    walk = np.cumsum(rng.normal(scale=0.8, size=(n, t)), axis=1)
    p = 0.3 + 0.03 * rng.normal(size=n)[:, None] + walk / 100
    p += rng.normal(scale=shock_sd / 100, size=(10, t))[region]
    y = rng.binomial(size.astype(int)[:, None], np.clip(p, 0.01, 0.99)) / size[:, None] * 100
    treated = np.argsort(-size[region == 3])[:k_within] + 30
    d = np.zeros((n, t))
    d[treated, 4:] = 1.0
    units, periods = np.repeat(np.arange(n), t), np.tile(np.arange(t), n)
    xt = absorb_two_way(d.ravel()[:, None], units, periods)[:, 0]
    w = xt / (xt @ xt)
    comparison = d.sum(axis=1) == 0
    model = noise_model(y, comparison, region, size, jackknife=False)
    pv = panel_variance(w.reshape(1, n, t), model, region, size)
    return float(w @ y.ravel()), float(pv.std_error[0]), float(pv.df[0])


@pytest.mark.parametrize(("k", "shock"), [(2, 0.0), (6, 1.5)])
def test_pooled_tests_hold_their_size_on_another_process(k, shock):
    """600 replicates: the t test's rejection rate at 5% is within Monte Carlo error
    (≤ 7.5%, 2.7 SEs) and the mean squared z score near its t-reference value."""
    from scipy import stats

    rng = np.random.default_rng(20 + k)
    draws = np.array([_twfe_z(rng, k, shock) for _ in range(600)])
    z = draws[:, 0] / draws[:, 1]
    reject = np.abs(z) > stats.t.ppf(0.975, draws[:, 2])
    assert reject.mean() <= 0.075
    assert 0.8 < np.mean(z**2) < 1.35


# ------------------------------------------------------------------- the decision path

ESTIMATORS = (TwoWayFixedEffects, EventStudy, CallawaySantAnna, SunAbraham, Imputation, Etwfe)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_strong_regional_shocks_with_treated_in_one_region_get_the_pooled_variance(tmp_path, cls):
    """7 treated LAs, all in Region C, with region × period shocks as large as the LAs' own
    noise: the default is the region-robust pooled variance, says why, and the measured
    within-region correlation is clearly above zero."""
    panel = regional_panel(tmp_path, list(range(30, 37)), shock_sd=2.5)
    res = cls().fit(panel, "y", "a")
    used = res.inference
    assert used.key == "pooled_panel" and used.chosen_by_default
    assert "7 of the 7 treated units are in Region C" in used.reason
    dep = used.dependence
    assert dep.treated_regions == (("Region C", 7),)
    assert dep.rho > 0.1 and dep.rho > 3 * dep.rho_se
    assert dep.n_regions == 8 and dep.n_comparison == 113
    assert "shocks shared within regions learned from 8 regions" in used.label


@pytest.mark.parametrize(
    ("cls", "today"),
    [
        (TwoWayFixedEffects, "cr2"),
        (EventStudy, "cr2"),
        (CallawaySantAnna, "cohort_stratified"),
        (SunAbraham, "cohort_stratified"),
        (Imputation, "cohort_stratified"),
        (Etwfe, "cohort_stratified"),
    ],
)
def test_spread_treated_without_regional_dependence_keep_todays_inference(tmp_path, cls, today):
    """12 treated LAs, at most two per region, no regional shocks: the default is the
    small-sample method it was before, with the same numbers as asking for it by name."""
    treated = [r * 15 + j for r in range(8) for j in range(2)][:12]
    panel = regional_panel(tmp_path, treated, shock_sd=0.0, seed=5)
    res = cls().fit(panel, "y", "a")
    assert res.inference.key == today and res.inference.chosen_by_default
    asked = "cr2" if today == "cr2" else "cohort_stratified"
    named = cls(inference=Inference(method=asked)).fit(panel, "y", "a")
    np.testing.assert_array_equal(res.table["std_error"], named.table["std_error"])  # exact
    assert abs(res.inference.dependence.rho) < 2 * res.inference.dependence.rho_se


def test_comparisons_within_regions_get_the_pooled_variance(tmp_path):
    """de Chaisemartin & D'Haultfœuille with trends_nonparam: region on 12 spread treated LAs
    and no regional dependence: plain, the default stays the cohort-stratified variance; each
    LA compared only within its region, the default is the pooled variance (the variance by
    treatment path pools comparison LAs the estimate keeps apart), with the reason."""
    treated = [r * 15 + j for r in range(8) for j in range(2)][:12]
    panel = regional_panel(tmp_path, treated, shock_sd=0.0, seed=5)
    plain = MultiplegtDyn().fit(panel, "y", "a")
    assert plain.inference.key == "cohort_stratified"
    within = MultiplegtDyn(trends_nonparam="region").fit(panel, "y", "a")
    assert within.inference.key == "pooled_panel" and within.inference.chosen_by_default
    assert "compared only with units of its region" in within.inference.reason


@pytest.mark.parametrize(
    ("cls", "small", "k", "narrower"),
    [
        (TwoWayFixedEffects, "cr2", 2, 0.75),
        (TwoWayFixedEffects, "cr2", 3, 0.75),
        (Imputation, "cohort_stratified", 3, 0.75),
        (Etwfe, "cohort_stratified", 3, 0.75),
        # with 2 treated LAs in 2 cohorts each stratum is one LA and the stratified variance
        # already borrows the comparison LAs' noise: the pooled one is no wider
        (Imputation, "cohort_stratified", 2, 1.0),
    ],
)
def test_two_or_three_treated_get_the_efficient_valid_method(tmp_path, cls, small, k, narrower):
    """With 2 or 3 treated LAs in different regions the default is the pooled variance; its
    interval is much narrower than the cluster-robust small-sample method's (which learns the
    treated LAs' noise from 2 or 3 LAs: 2–5 times the oracle width in
    benchmarks/did_validity.py)."""
    panel = regional_panel(tmp_path, [0, 20, 40][:k], shock_sd=0.5, seed=7)
    res = cls().fit(panel, "y", "a")
    assert res.inference.key == "pooled_panel"
    assert f"only {k} units are treated" in res.inference.reason
    other = cls(inference=Inference(method=small)).fit(panel, "y", "a")
    width = lambda r: float(r.table["ci_upper"].iloc[0] - r.table["ci_lower"].iloc[0])  # noqa: E731
    assert width(res) < narrower * width(other)


def test_a_region_nothing_can_calibrate_is_not_estimable(tmp_path):
    """All treated LAs in one region, comparisons from only two regions: no interval."""
    panel = regional_panel(tmp_path, [0, 1, 2, 3], shock_sd=1.0, regions=REGIONS[:2], per_region=20)
    for cls in ESTIMATORS:
        with pytest.raises(EstimationError, match="4 of the 4 treated units are in Region A"):
            cls().fit(panel, "y", "a")
    with pytest.raises(EstimationError, match="no interval here would be valid"):
        TwoWayFixedEffects(inference=Inference(method="cluster_robust")).fit(panel, "y", "a")


def test_unknown_regions_pool_without_a_regional_term(tmp_path):
    panel = regional_panel(tmp_path, [0, 20], shock_sd=0.0, region_known=False)
    res = TwoWayFixedEffects().fit(panel, "y", "a")
    assert res.inference.key == "pooled_panel"
    assert "regions unknown" in res.inference.label
    assert res.inference.dependence.treated_regions == (("", 2),)


def test_synthetic_did_pools_its_first_order_weights(tmp_path):
    """7 treated LAs in Region C with strong regional shocks: synthetic DiD takes the pooled
    variance of its first-order weights (∂θ̂/∂Y, the fitted ω and λ's own noise included),
    not of the fixed-weight contrast, which covered about 93% in benchmarks/did_validity.py
    there; no caveat is needed."""
    from pathfinder_eval.estimators import pooled
    from pathfinder_eval.estimators.synthetic.core import synthdid
    from pathfinder_eval.estimators.synthetic.estimators import SyntheticDiD, block_matrix
    from pathfinder_eval.estimators.synthetic.first_order import first_order_weights

    panel = regional_panel(tmp_path, list(range(30, 37)), shock_sd=2.5)
    res = SyntheticDiD().fit(panel, "y", "a")
    assert res.inference.key == "pooled_panel"
    assert "linearised in the outcomes" in res.inference.label
    assert not any("too narrow" in w for w in res.warnings)
    treated = panel.units[panel.units["role"] == "treated"]
    layout = pooled.panel_layout(panel, "y")
    first_order, fixed, att, total = 0.0, 0.0, 0.0, 0
    for _, group in treated.groupby("cohort"):  # cohorts weighted by their treated cells
        b = block_matrix(panel, "y", group["unit"].tolist())
        fit = synthdid(b.y, b.n0, b.t0)
        n1, t1 = b.y.shape[0] - b.n0, b.y.shape[1] - b.t0
        names = np.array(b.names, dtype=object)
        contrast = np.outer(
            np.append(-fit.omega, np.full(n1, 1 / n1)),
            np.append(-fit.lambda_, np.full(t1, 1 / t1)),
        )
        first = first_order_weights(b.y, b.n0, b.t0, fit)
        first_order = first_order + n1 * t1 * layout.unit_weights(names, b.periods, first[None])
        fixed = fixed + n1 * t1 * layout.unit_weights(names, b.periods, contrast[None])
        att, total = att + n1 * t1 * fit.estimate, total + n1 * t1

    def se(weights: np.ndarray) -> float:
        pv = layout.variance(weights / total)
        return float(pooled.pooled_rows(np.array([att / total]), pv, 0.95).std_error[0])

    assert res.table.iloc[0]["estimate"] == pytest.approx(att / total, rel=1e-12)
    assert res.table.iloc[0]["std_error"] == pytest.approx(se(first_order), rel=1e-12)
    assert abs(se(first_order) / se(fixed) - 1) > 1e-3


def test_synthetic_did_holds_weights_fixed_where_they_cannot_be_differentiated(
    tmp_path, monkeypatch
):
    """Where first_order_weights refuses (a near-singular weight problem), the pooled variance
    uses the fixed-weight contrast for that cohort, the label drops the linearisation and a
    warning names the cohort and the reason."""
    from pathfinder_eval.estimators.synthetic import first_order
    from pathfinder_eval.estimators.synthetic.estimators import SyntheticDiD

    panel = regional_panel(tmp_path, list(range(30, 37)), shock_sd=2.5)

    def refuse(*args):
        raise EstimationError("too near singular", where="inference")

    monkeypatch.setattr(first_order, "first_order_weights", refuse)
    res = SyntheticDiD().fit(panel, "y", "a")
    assert res.inference.key == "pooled_panel"
    assert "linearised" not in res.inference.label
    (warning,) = [w for w in res.warnings if "holds the unit and time weights fixed" in w]
    assert "cohort" in warning and "too near singular" in warning


def test_layout_is_shared_by_analyses_and_fresh_for_a_replaced_panel(tmp_path, monkeypatch):
    """The layout and noise model are built once per panel and outcome, whichever analyses ask
    (same numbers as building them anew); a panel made by `replace` starts afresh, so changed
    cells are never read through an old layout; the bootstrap draws behind the pooled
    variance's degrees of freedom are simulated only when an inference needs them."""
    import dataclasses

    from pathfinder_eval.estimators import pooled
    from pathfinder_eval.inference import panel_variance as pv

    panel = regional_panel(tmp_path, list(range(30, 37)), shock_sd=2.5)
    simulated = []
    real_simulate = pv._simulate
    monkeypatch.setattr(pv, "_simulate", lambda *a: simulated.append(1) or real_simulate(*a))
    first = pooled.panel_layout(panel, "y")
    assert pooled.panel_layout(panel, "y") is first
    fresh = pooled._layout(panel, "y")
    np.testing.assert_array_equal(first.y, fresh.y)
    assert (first.model.rho, first.model.rho_se) == (fresh.model.rho, fresh.model.rho_se)
    assert simulated == []  # the diagnostics do not need the draws
    TwoWayFixedEffects(inference=Inference(method="cr2")).fit(panel, "y", "a")
    assert simulated == []
    TwoWayFixedEffects().fit(panel, "y", "a")  # the pooled variance: draws, once
    EventStudy().fit(panel, "y", "a")
    assert simulated == [1]
    cells = panel.cells.assign(y=panel.cells["y"] * 2.0)
    doubled = pooled.panel_layout(dataclasses.replace(panel, cells=cells), "y")
    np.testing.assert_allclose(doubled.y, 2.0 * first.y)


def test_unmeasured_regional_dependence_counts_the_complete_series():
    """With too few complete comparison series for the noise model, the statement counted
    every comparison unit ('84 comparison units give 0 regions enough of them' where 6 had a
    complete series; found in review): it counts those the model could learn from."""
    rng = np.random.default_rng(1)
    rows = []
    for u in range(14):
        for t in range(2018, 2024):
            if 2 <= u < 10 and t == 2019:  # 8 of the 12 comparison units miss a year
                continue
            rows.append((f"L{u}", t, rng.normal() + 0.1 * u, 2022 if u < 2 else None, f"R{u % 3}"))
    frame = pd.DataFrame(rows, columns=["la", "year", "y", "cohort", "region"])
    kw = dict(outcome="y", unit="la", time="year", first_treated="cohort", region="region")
    dep = pe.twfe(frame, **kw, inference="cr2").inference.dependence
    assert dep.n_comparison == 4
    assert dependence_statement(dep).startswith(
        "Regional dependence could not be measured: the panel's 4 comparison units with a "
        "complete series give 0 regions enough of them"
    )


def _sized_panel(seed: int) -> pd.DataFrame:
    """150 LAs in 9 regions, populations 20,000–500,000, Poisson counts of rates near 50 per
    10,000 with regional shocks; the treated LA is one of the 20 smallest."""
    rng = np.random.default_rng(seed)
    sizes = (12, 15, 17, 18, 19, 20, 16, 14, 19)
    region = np.repeat(np.arange(9), sizes)
    n, years = region.size, np.arange(2021, 2026)
    pop = np.round(np.exp(rng.uniform(np.log(2e4), np.log(5e5), n)))
    level = rng.normal(50, 12, n)[:, None] + np.linspace(0, 5, 5)
    rate = level + rng.normal(0, 0.62, (9, 5))[region] + rng.normal(0, 3.0, (n, 5))
    counts = rng.poisson(np.clip(rate, 1, None) * pop[:, None] / 1e4)
    treated = rng.choice(np.argsort(pop)[:20])
    frame = pd.DataFrame(
        {
            "la": np.repeat([f"LA{i:03d}" for i in range(n)], 5),
            "year": np.tile(years, n),
            "count": counts.ravel(),
            "pop": np.repeat(pop, 5),
            "region": np.repeat([f"R{r}" for r in region], 5),
            "first": np.repeat(np.where(np.arange(n) == treated, 2025, 0), 5),
        }
    )
    frame["rate"] = frame["count"] / frame["pop"] * 1e4
    return frame


@pytest.mark.parametrize("fit", [pe.twfe, pe.synthetic_did])
def test_a_population_alone_gives_the_pooled_variance_its_sizes(fit):
    """Rates passed with their population and no counts: the API refused the population
    alone ('counts and population go together'), and the rate alone gives the pooled variance
    no sizes, so a small treated LA's noise was that of a typical one (size 15.5% for
    synthetic DiD, 17.0% for TWFE over 400 simulated panels like these). The population
    alone scales the noise exactly as counts and population do: 6.5% for both."""
    frame = _sized_panel(5003)
    kw = dict(outcome="rate", unit="la", time="year", first_treated="first", region="region")
    alone = fit(frame, **kw).table.iloc[0]
    sized = fit(frame, **kw, population="pop")
    counted = fit(frame, **kw, counts="count", population="pop").table.iloc[0]
    row = sized.table.iloc[0]
    assert row["estimate"] == pytest.approx(counted["estimate"], rel=1e-9)
    assert row["std_error"] == pytest.approx(counted["std_error"], rel=1e-9)
    assert row["std_error"] > 1.15 * alone["std_error"]  # the small LA's noise, not a typical one
    assert "scaled by unit size" in sized.inference.label
    with pytest.raises(DesignError, match="counts need the population they are of"):
        fit(frame, **kw, counts="count")


def test_a_design_files_denominator_alone_is_read_as_each_units_size(tmp_path):
    """`- column: rate` with `denominator: pop` and no numerator read the pop column and then
    ignored it; a numerator without a denominator was read and ignored too. The denominator
    now reaches the cells (and the pooled variance) beside the value as given; the numerator
    alone is refused."""
    from pathfinder_eval.pipeline import prepare
    from pathfinder_eval.spec import load_design

    frame = _sized_panel(5003)
    frame.loc[3, "pop"] = 0.0
    frame.loc[7, "pop"] = np.nan  # its reason names the denominator, not the value
    data = tmp_path / "panel.csv"
    frame.to_csv(data, index=False)
    treated = frame.loc[frame["first"] > 0, "la"].iloc[0]
    text = f"""name: sized
title: rates with their populations
pilot: custom
unit_level: cluster
rollout: [{{wave: w, start: 2025, units: [{treated}]}}]
comparison: {{pool: never_treated}}
time: {{axis: period}}
outcomes: [{{column: rate, denominator: pop}}]
analyses: [{{id: twfe, estimator: twfe}}]
data: {{source: tidy, columns: {{unit: la, period: year, region: region}}}}
"""
    design = tmp_path / "sized.yaml"
    design.write_text(text)
    panel = prepare(load_design(design), data)
    cells = panel.outcome_cells("rate").set_index(["unit", "period"])
    source = frame.set_index(["la", "year"])
    shared = source.index.intersection(cells.index)
    assert len(shared) == len(frame) - 2  # zero and empty populations: excluded, and counted
    np.testing.assert_array_equal(cells.loc[shared, "denominator"], source.loc[shared, "pop"])
    np.testing.assert_array_equal(cells.loc[shared, "y"], source.loc[shared, "rate"])
    assert cells["numerator"].isna().all()
    reasons = {e.reason: e.count for e in panel.exclusions}
    assert reasons["denominator is zero"] == 1
    assert reasons["the denominator (the unit's size beside its value) is empty"] == 1
    design.write_text(text.replace("denominator: pop", "numerator: count"))
    with pytest.raises(DesignError, match="numerator 'count' needs a denominator"):
        load_design(design)


def test_null_panels_resampled_from_rates_alone_invent_no_counts(tmp_path, capsys):
    """A rate given with its population and no count: each resampled null panel wrote counts
    (rate × population / 10,000), so `power --simulate --data` reported power 1.000 for a
    twfe_poisson that `run` refuses on the same data (found in review)."""
    from pathfinder_eval.cli import main
    from pathfinder_eval.power.panel_simulation import panel_resampler
    from pathfinder_eval.spec import load_design

    frame = _sized_panel(5003)
    data = tmp_path / "panel.csv"
    frame.to_csv(data, index=False)
    treated = frame.loc[frame["first"] > 0, "la"].iloc[0]
    design = tmp_path / "rates.yaml"
    design.write_text(
        "name: rates\ntitle: rates\npilot: custom\nunit_level: cluster\n"
        f"rollout: [{{wave: w, start: 2025, units: [{treated}]}}]\n"
        "comparison: {pool: never_treated}\ntime: {axis: period}\n"
        "outcomes: [{column: rate, denominator: pop, scale: per_10000}]\n"
        "analyses: [{id: poisson, estimator: twfe_poisson}, {id: twfe, estimator: twfe}]\n"
        "data: {source: tidy, columns: {unit: la, period: year, region: region}}\n"
    )
    resampler = panel_resampler(load_design(design), data, "rate")
    replicate = resampler.replicate(-0.1, 1).frame
    assert replicate["numerator"].isna().all() and replicate["denominator"].notna().any()
    argv = ["power", str(design), "--simulate", "10", "--data", str(data), "--workers", "1"]
    assert main([*argv, "--analysis", "poisson", "--effect", "-0.1"]) == 2
    assert "has no counts" in capsys.readouterr().err
