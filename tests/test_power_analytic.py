"""Analytic SW power: published package outputs, closed forms and simulation."""

from __future__ import annotations

import numpy as np
import pytest

from pathfinder_eval.power.analytic import (
    VarianceModel,
    clusters_needed,
    gls_precision,
    hussey_hughes_variance,
    mdes,
    power,
    stepped_wedge,
)

# Published values carry 10 significant digits; same closed-form algebra.
PUBLISHED = 1e-9


def binomial_model(p0: float, p1: float, tau: float) -> VarianceModel:
    pbar = (p0 + p1) / 2
    return VarianceModel(tau2=tau**2, sigma2=pbar * (1 - pbar))


def test_swcrtdesign_example_1():
    design = stepped_wedge([6, 6, 6, 6])
    v = gls_precision(design, binomial_model(0.05, 0.035, 0.01), 120).variance
    assert power(0.015, v) == pytest.approx(0.7861895925, rel=PUBLISHED)


def test_steppedpower_hussey_hughes():
    design = stepped_wedge([6, 6, 6, 6])
    v = gls_precision(design, binomial_model(0.05, 0.032, 0.025), 100).variance
    assert v == pytest.approx(4.065847294e-05, rel=PUBLISHED)
    assert power(0.018, v) == pytest.approx(0.8059171845, rel=PUBLISHED)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_gls_equals_hussey_hughes_closed_form(seed):
    rng = np.random.default_rng(seed)
    starts = rng.integers(1, 6, size=14)
    design = (np.arange(7)[None, :] >= starts[:, None]).astype(float)
    tau2, sigma2, m = rng.uniform(0.01, 0.2), 1.0, 25
    gls = gls_precision(design, VarianceModel(tau2=tau2, sigma2=sigma2), m).variance
    assert gls == pytest.approx(hussey_hughes_variance(design, tau2, sigma2 / m), rel=1e-10)


def test_nested_and_decay_models_reduce_to_hussey_hughes():
    design = stepped_wedge([3, 3, 3])
    hh = gls_precision(design, VarianceModel.from_icc(0.05), 20).variance
    ne = gls_precision(design, VarianceModel.from_icc(0.05, cac=1.0), 20).variance
    ed = gls_precision(design, VarianceModel.from_icc(0.05, decay=1.0), 20).variance
    assert ne == pytest.approx(hh, rel=1e-12) and ed == pytest.approx(hh, rel=1e-12)
    # less cluster autocorrelation or faster decay weakens the within-cluster comparison
    assert gls_precision(design, VarianceModel.from_icc(0.05, cac=0.5), 20).variance > hh
    assert gls_precision(design, VarianceModel.from_icc(0.05, decay=0.6), 20).variance > hh


def test_incomplete_designs_and_transition_periods_cost_precision():
    full = stepped_wedge([4, 4, 4])
    model = VarianceModel.from_icc(0.05, cac=0.8)
    base = gls_precision(full, model, 30).variance
    with_transition = gls_precision(
        stepped_wedge([4, 4, 4], periods=5, transition=1), model, 30
    ).variance
    assert np.isnan(stepped_wedge([4, 4, 4], periods=5, transition=1)).sum() == 12
    assert with_transition > base
    incomplete = full.copy()
    incomplete[:4, 3] = np.nan
    assert gls_precision(incomplete, model, 30).variance > base


def test_exposure_time_effects():
    design = stepped_wedge([5, 5, 5, 5])
    model = VarianceModel.from_icc(0.05)
    eti = gls_precision(design, model, 30, shape="exposure_time")
    assert eti.vcov.shape == (4, 4)
    assert eti.variance > gls_precision(design, model, 30).variance
    point = gls_precision(design, model, 30, shape="exposure_time", weights=[1, 0, 0, 0])
    assert point.variance == pytest.approx(eti.vcov[0, 0])


def test_closed_cohort_individual_effect_adds_precision_for_within_comparisons():
    design = stepped_wedge([4, 4, 4])
    cross = gls_precision(design, VarianceModel(tau2=0.05, sigma2=0.95), 20).variance
    cohort = gls_precision(
        design, VarianceModel(tau2=0.05, sigma2=0.55, cohort_eta2=0.4), 20
    ).variance
    assert cohort < cross  # same total variance, more of it shared within cluster over time


def test_mdes_inverts_power_and_sample_size_search():
    design = stepped_wedge([6, 6, 6, 6])
    v = gls_precision(design, binomial_model(0.05, 0.035, 0.01), 120).variance
    d = mdes(v, 0.9)
    assert power(d, v) == pytest.approx(0.9, abs=1e-10)
    model = binomial_model(0.05, 0.035, 0.01)
    n = clusters_needed(0.9, 0.015, 4, model, 120)
    assert power(0.015, gls_precision(stepped_wedge([n] * 4), model, 120).variance) >= 0.9
    assert power(0.015, gls_precision(stepped_wedge([n - 1] * 4), model, 120).variance) < 0.9


def test_analytic_power_matches_simulated_gls_power():
    """Simulate cell means from the nested-exchangeable model and test with the GLS estimator
    (known variances): rejection rate within 3 Monte Carlo SEs of the analytic power."""
    rng = np.random.default_rng(2024)
    design = stepped_wedge([3, 3, 3, 3])
    model = VarianceModel.from_icc(0.05, cac=0.7)
    m, effect, sims = 25, 0.25, 2000
    prec = gls_precision(design, model, m)
    expected = power(effect, prec.variance)
    i, t = design.shape
    cov = np.array(
        [
            [model.tau2 + (model.gamma2 + model.sigma2 / m) * (j == k) for k in range(t)]
            for j in range(t)
        ]
    )
    chol = np.linalg.cholesky(cov)
    vinv = np.linalg.inv(cov)
    rejections = 0
    for _ in range(sims):
        y = 0.1 * np.arange(t) + effect * design + rng.normal(size=(i, t)) @ chol.T
        info = np.zeros((t + 1, t + 1))
        score = np.zeros(t + 1)
        for c in range(i):
            z = np.column_stack([np.eye(t), design[c]])
            info += z.T @ vinv @ z
            score += z.T @ vinv @ y[c]
        theta = np.linalg.solve(info, score)[-1]
        rejections += abs(theta) / np.sqrt(prec.variance) > 1.959963984540054
    mc = np.sqrt(expected * (1 - expected) / sims)
    assert rejections / sims == pytest.approx(expected, abs=3 * mc)


def test_power_cli_prints_and_writes(tmp_path, capsys):
    import json
    from pathlib import Path

    from pathfinder_eval.cli import main

    design = Path(__file__).resolve().parents[1] / "designs/examples/stepped_wedge_trial.yaml"
    assert main(["power", str(design), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    # the primary analysis's time-averaged effect with its t(11) reference (the immediate
    # effect's 0.2267 with a normal reference before; found in review)
    assert "MDES at 80% power    0.3701" in out and "reference            t(11)" in out
    doc = json.loads((tmp_path / "stepped_wedge_trial_power.json").read_text())
    summary = doc["summary"]
    expected = gls_precision(
        stepped_wedge([3, 3, 3, 3]), VarianceModel.from_icc(0.05), 30, "exposure_time"
    ).variance
    assert summary["variance"] == pytest.approx(expected, rel=1e-12)
    assert doc["curve"][0]["power"] == pytest.approx(0.05, abs=1e-12)
    html = (tmp_path / "stepped_wedge_trial_power.html").read_text()
    assert "<svg" in html and 'role="img"' in html


def test_power_cli_rejects_a_non_trial_design(capsys):
    from pathlib import Path

    from pathfinder_eval.cli import main

    design = Path(__file__).resolve().parents[1] / "designs/family_help.yaml"
    assert main(["power", str(design)]) == 2
    assert "data.trial" in capsys.readouterr().err


def test_t_reference_with_clusters_minus_two_df_lowers_power():
    from pathlib import Path

    from pathfinder_eval.power.design import design_power
    from pathfinder_eval.spec import load_design

    spec = load_design(
        Path(__file__).resolve().parents[1] / "designs/examples/stepped_wedge_trial.yaml"
    )
    z, t = design_power(spec, reference="z"), design_power(spec, reference="t")
    own = design_power(spec)  # the primary analysis's reference: Mancl-DeRouen's t(I − 1)
    assert t.df == 10 and t.reference == "t(10)" and z.reference == "z" and own.df == 11
    assert t.power == pytest.approx(power(0.3, z.variance, 0.05, 10.0), rel=1e-12)
    assert own.power == pytest.approx(power(0.3, z.variance, 0.05, 11.0), rel=1e-12)
    assert t.power < own.power < z.power and t.mdes_80 > own.mdes_80 > z.mdes_80


def test_cell_size_and_steps_searches_stop_at_the_first_size_reaching_the_target():
    from pathfinder_eval.power.analytic import cell_size_needed, steps_needed

    design = stepped_wedge([3, 3, 3, 3])
    hh = VarianceModel.from_icc(0.05)
    m = cell_size_needed(0.8, 0.25, design, hh)
    assert m > 1
    assert power(0.25, gls_precision(design, hh, m).variance) >= 0.8
    assert power(0.25, gls_precision(design, hh, m - 1).variance) < 0.8
    # A cluster-period variance puts a floor under the variance: no cell size gets there.
    ne = VarianceModel.from_icc(0.05, cac=0.5)
    floor = gls_precision(design, ne, 1e12).variance
    assert power(0.1, floor) < 0.8 and cell_size_needed(0.8, 0.1, design, ne) == 0
    s = steps_needed(0.8, 0.3, 2, hh, 20)
    assert s > 1
    assert power(0.3, gls_precision(stepped_wedge([2] * s), hh, 20).variance) >= 0.8
    assert power(0.3, gls_precision(stepped_wedge([2] * (s - 1)), hh, 20).variance) < 0.8


def test_design_power_takes_the_primary_analysiss_own_reference():
    """The GEE's t(I − p) (t(6) with 12 clusters and 6 mean parameters), not t(I − 2) nor the
    LMM's t(I − 1); the primary flag picks the analysis; with no t reference left (an
    analysis whose df would be below 1) the normal, where the report raised '--reference t'
    for a two-cluster trial (found in review)."""
    from pathlib import Path

    from pathfinder_eval.power.design import design_power, primary_estimand
    from pathfinder_eval.spec import load_design

    spec = load_design(
        Path(__file__).resolve().parents[1] / "designs/examples/stepped_wedge_trial.yaml"
    )
    gee = next(a for a in spec.analyses if a.id == "stepped_wedge_gee")
    flagged = spec.model_copy(
        update={
            "analyses": tuple(
                a.model_copy(update={"primary": True}) if a is gee else a for a in spec.analyses
            )
        }
    )
    estimand = primary_estimand(flagged)
    assert estimand.df == 6 and estimand.shape == "immediate"
    assert (
        estimand.text
        == "the immediate effect, as the primary analysis (stepped_wedge_gee) estimates it"
    )
    assert design_power(flagged).reference == "t(6)"
    two = spec.model_copy(update={"rollout": spec.rollout[:2]})  # 6 clusters
    kr = two.analyses[1].model_copy(update={"primary": True})
    two = two.model_copy(update={"analyses": (two.analyses[0], kr)})
    # Kenward-Roger's df at the trial's variances (test_power_expected_df checks them against
    # the fits), where t(I − 2) said 4
    assert primary_estimand(two).df == pytest.approx(20.03, abs=0.01)
    wave = spec.rollout[0].model_copy(update={"units": spec.rollout[0].units[:2]})
    tiny = spec.model_copy(update={"rollout": (wave,), "analyses": (kr,)})
    # t(0) does not exist: the most conservative t(1), not the normal (found in review)
    assert primary_estimand(tiny).df == 1
