"""GEE with correlation_method="moment" against R geepack::geeglm
(tests/reference/r_geepack_stepped_wedge): exchangeable and independence working correlations,
gaussian/identity and binomial/logit, on geeCRT's two sample trials and a seeded trial with
cells of 40-80; β̂, robust sandwich SEs (san.se = our BC0), α and the scale φ."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pathfinder_eval as pe
from pathfinder_eval.errors import EstimationError
from pathfinder_eval.estimators.stepped_wedge.gee import fit_gee, gee_data
from pathfinder_eval.estimators.stepped_wedge.gee_estimator import SteppedWedgeGEE
from pathfinder_eval.estimators.stepped_wedge.lmm import fixed_effects, summarise_records
from pathfinder_eval.settings import Inference
from sw_helpers import SHARED_SW, panel_from_records

HERE = Path(__file__).resolve().parent / "reference" / "r_geepack_stepped_wedge"
REF = pd.read_csv(HERE / "values.csv")
# Both sides solve the same estimating equations to their root (geeglm run with epsilon 1e-12,
# ours with TOL 1e-10), so only convergence and rounding separate them (observed ≤ 1e-11).
BETA_TOL = 1e-6  # β̂: same root of the same β equations
SE_TOL = 1e-6  # san.se: the same sandwich at the same root
ALPHA_TOL = 1e-6  # α: mean standardised residual product over all within-cluster pairs
PHI_TOL = 1e-6  # φ: Σ Pearson residual² / N, no df correction, both sides
TOL = {"beta": {"estimate": BETA_TOL, "san.se": SE_TOL}, "alpha": ALPHA_TOL, "phi": PHI_TOL}

# dataset → (file, cluster column, treatment column)
DATASETS = {
    "geecrt_small": (SHARED_SW / "geeCRT_sampleSWCRTSmall.csv", "id", "treatment"),
    "geecrt_large": (SHARED_SW / "geeCRT_sampleSWCRTLarge.csv", "id", "treatment"),
    "sim_large": (HERE / "sim_large.csv", "cluster", "trt"),
    "sim_small_cells": (HERE / "sim_small_cells.csv", "cluster", "trt"),
    "sim_counts": (HERE / "sim_counts.csv", "cluster", "trt"),
}
OUTCOME = {"gaussian": "y_con", "binomial": "y_bin", "poisson": "y_cnt"}
FITS = sorted(set(REF[["dataset", "family", "correlation"]].itertuples(index=False, name=None)))


def _raw(dataset: str) -> tuple[pd.DataFrame, str, str]:
    path, cluster, trt = DATASETS[dataset]
    if not path.is_file():
        pytest.skip(f"{path.name} absent: expected in ../shared/data/reference/stepped_wedge")
    return pd.read_csv(path), cluster, trt


def moment_fit(
    dataset: str, family: str, correlation: str, method: str = "moment", outcome: str = ""
):
    """geeglm's fit (correlation_method="moment", or `method`) of a reference dataset,
    immediate effect, on the family's outcome column (or `outcome`)."""
    raw, cluster, trt = _raw(dataset)
    cl, pe = raw[cluster].to_numpy() - 1, raw["period"].to_numpy() - 1
    y = raw[outcome or OUTCOME[family]].to_numpy(float)
    shape = (cl.max() + 1, pe.max() + 1)
    cells = summarise_records(cl, pe, y, shape)
    start = raw[raw[trt] == 1].groupby(cluster)["period"].min().reindex(range(1, shape[0] + 1))
    X = fixed_effects(cells.observed, start.fillna(shape[1] + 1).to_numpy(int) - 1, "immediate").X
    return fit_gee(gee_data(cells, X), family, correlation, method)


@pytest.mark.parametrize(("dataset", "family", "correlation"), FITS)
def test_matches_geepack(dataset, family, correlation):
    fit = moment_fit(dataset, family, correlation)
    p = len(fit.beta)
    se = np.sqrt(np.diag(fit.vcov["BC0"])[:p])
    ref = REF[(REF.dataset == dataset) & (REF.family == family) & (REF.correlation == correlation)]
    assert len(ref) == 2 * p + 1 + (correlation == "exchangeable")
    for row in ref.itertuples():
        if row.parameter.startswith("beta"):
            k = int(row.parameter[4:])
            got = fit.beta[k] if row.quantity == "estimate" else se[k]
            tol = TOL["beta"][row.quantity]
        else:
            got = fit.alpha[0] if row.parameter == "alpha" else fit.phi
            tol = TOL[row.parameter]
        assert abs(got - row.value) <= tol, (row.parameter, row.quantity, got, row.value)


def test_estimator_moment_sandwich_is_geeglm(tmp_path):
    """Through the panel: SteppedWedgeGEE(correlation_method="moment", exchangeable) with the
    plain sandwich reports geeglm's treatment coefficient and san.se."""
    raw, cluster, trt = _raw("geecrt_small")
    panel = panel_from_records(raw, cluster, trt, "y_con", tmp_path)
    est = SteppedWedgeGEE(
        correlation="exchangeable",
        correlation_method="moment",
        inference=Inference(method="sandwich"),
    )
    res = est.fit(panel, "y", "a")
    ref = REF[(REF.dataset == "geecrt_small") & (REF.family == "gaussian")]
    ref = ref[ref.correlation == "exchangeable"].set_index(["parameter", "quantity"])["value"]
    row = res.table.iloc[0]
    assert row["estimate"] == pytest.approx(ref[("beta4", "estimate")], abs=BETA_TOL)
    assert row["std_error"] == pytest.approx(ref[("beta4", "san.se")], abs=SE_TOL)
    assert res.diagnostics["correlation_parameters"]["alpha"] == pytest.approx(
        ref[("alpha", "estimate")], abs=ALPHA_TOL
    )
    assert res.diagnostics["dispersion"] == pytest.approx(ref[("phi", "estimate")], abs=PHI_TOL)


def test_moment_fits_where_maee_has_no_positive_definite_v_minus_omega(tmp_path):
    """Small cells with a slightly negative correlation: MAEE's V − Ω is not positive definite
    and MAEE is refused, naming correlation_method and what fits; the moment and gee methods,
    which never use V − Ω, fit (they were refused by MAEE's check, whatever the method; found
    in review), the moment fit with geeglm's β̂ and san.se (test_matches_geepack checks the
    rest of sim_small_cells)."""
    raw, cluster, trt = _raw("sim_small_cells")
    panel = panel_from_records(raw, cluster, trt, "y_bin", tmp_path)
    kwargs = dict(family="binomial", correlation="exchangeable")
    with pytest.raises(EstimationError) as err:
        SteppedWedgeGEE(**kwargs, correlation_method="maee").fit(panel, "y", "a")
    assert err.value.one_line() == (
        "options.correlation_method: the matrix V − Ω (MAEE) is not positive definite at the "
        "current correlation parameters. Fix: estimate the correlation with "
        "correlation_method: moment (geepack's) or gee, which do not need it, or use "
        "independence"
    )
    plain = Inference(method="sandwich")
    res = SteppedWedgeGEE(**kwargs, correlation_method="moment", inference=plain)
    row = res.fit(panel, "y", "a").table.iloc[0]
    ref = REF[(REF.dataset == "sim_small_cells") & (REF.family == "binomial")]
    ref = ref[ref.correlation == "exchangeable"].set_index(["parameter", "quantity"])["value"]
    assert row["estimate"] == pytest.approx(ref[("beta4", "estimate")], abs=BETA_TOL)
    assert row["std_error"] == pytest.approx(ref[("beta4", "san.se")], abs=SE_TOL)
    assert ref[("alpha", "estimate")] < 0
    gee = SteppedWedgeGEE(**kwargs, correlation_method="gee").fit(panel, "y", "a")
    assert np.isfinite(gee.table["std_error"]).all()


def test_poisson_counts_per_person_through_the_api_are_geeglm():
    """Each person's count of events (0 to 11), which the GEE refused ('not all 0 or 1': its
    Poisson read individuals as 0/1): the public API with the moment method and the plain
    sandwich reports geeglm's treatment coefficient, san.se, α and φ; the correlation's SE,
    which needs Σ 1/(y − μ) over the records, is not reported; binomial still refuses them.
    A −1 code among the counts (accepted: the cells' sums were whole and at least 0; found in
    review) is refused naming the cell, as are counts that are not whole."""
    raw, cluster, trt = _raw("sim_counts")
    kw = dict(outcome="y_cnt", cluster=cluster, period="period", treatment=trt)
    res = pe.stepped_wedge_gee(
        raw,
        **kw,
        family="poisson",
        correlation="exchangeable",
        correlation_method="moment",
        inference="sandwich",
    )
    ref = REF[(REF.dataset == "sim_counts") & (REF.correlation == "exchangeable")]
    ref = ref.set_index(["parameter", "quantity"])["value"]
    row = res.table.iloc[0]
    assert row["estimate"] == pytest.approx(ref[("beta5", "estimate")], abs=BETA_TOL)
    assert row["std_error"] == pytest.approx(ref[("beta5", "san.se")], abs=SE_TOL)
    assert res.diagnostics["correlation_parameters"]["alpha"] == pytest.approx(
        ref[("alpha", "estimate")], abs=ALPHA_TOL
    )
    assert res.diagnostics["dispersion"] == pytest.approx(ref[("phi", "estimate")], abs=PHI_TOL)
    assert res.diagnostics["correlation_parameter_se"]["alpha"]["BC0"] is None
    assert "counts per person" in res.diagnostics["correlation_se_note"]
    with pytest.raises(EstimationError, match="not all 0 or 1"):
        pe.stepped_wedge_gee(raw, **kw, family="binomial")
    half = raw.assign(y_cnt=np.where(raw.index == 0, 0.5, raw["y_cnt"]))
    with pytest.raises(EstimationError) as err:  # it was told to code 0/1 or use poisson
        pe.stepped_wedge_gee(half, **kw, family="poisson")
    assert "whole number of events (0, 1, 2, ...)" in err.value.one_line()
    coded = raw.assign(y_cnt=np.where(raw.index % 80 == 0, -1, raw["y_cnt"]))  # 23 records
    for fit in (pe.stepped_wedge_gee, pe.stepped_wedge_glmm):  # the sums still look whole
        with pytest.raises(EstimationError) as err:
            fit(coded, **kw, family="poisson")
        assert err.value.one_line().startswith(
            "the outcome column of the records: cluster 1, period 1: 1 of the records' outcome "
            "values are below 0, not a number of events"
        )


def test_maee_estimates_the_dispersion_of_counts_per_person():
    """MAEE held φ at 1 for counts (geeCRT's convention, exact for 0/1 individuals), so counts
    per person, overdispersed as a rule, put their excess variance into the correlations
    (α0 0.466 here with φ = 1) and the working covariance left its admissible range in 61% of
    6-cluster trials (benchmarks/sw_count_size.py; 16% now). φ is now estimated from their
    Pearson residuals: within 5% of geeglm's moment φ (which divides by N, without MAEE's
    correction), the correlations on the scale of φ, the effect within a tenth of its SE of the
    moment fit's; 0/1 individuals keep φ = 1. With low means and strong overdispersion the
    correlation equations' weights, geeCRT's Poisson moments, fell below 0 at the estimated φ
    and MAEE failed in 22 of 60 trials (found in review): they are taken at φ = 1, and every
    method fits them."""
    moment = moment_fit("sim_counts", "poisson", "nested_exchangeable")
    for method in ("maee", "gee"):
        fit = moment_fit("sim_counts", "poisson", "nested_exchangeable", method)
        assert fit.phi == pytest.approx(moment.phi, rel=0.05) and fit.phi > 1.3
        # MAEE's bias correction raises the correlations a little (0.329 against 0.307)
        assert fit.alpha[0] == pytest.approx(moment.alpha[0], abs=0.03)
        se = np.sqrt(moment.vcov["BC0"][len(moment.beta) - 1, len(moment.beta) - 1])
        assert abs(fit.beta[-1] - moment.beta[-1]) < 0.1 * se
    zero_one = moment_fit("sim_large", "poisson", "nested_exchangeable", "maee", "y_bin")
    assert zero_one.phi == 1.0
    # a low mean (0.25 events per person) with strong overdispersion (frailty shape 0.6)
    rng = np.random.default_rng(7)
    clusters, periods, people = 10, 5, 30
    start = np.repeat(np.arange(1, 6), 2)
    log_mean = (
        np.log(0.25) + rng.normal(0, 0.5, (clusters, 1)) + rng.normal(0, 0.4, (clusters, periods))
    )
    counts = rng.poisson(
        np.exp(log_mean)[:, :, None] * rng.gamma(0.6, 1 / 0.6, (clusters, periods, people))
    )
    cl, pe_ = np.indices(counts.shape)[:2]
    cells = summarise_records(
        cl.ravel(), pe_.ravel(), counts.ravel().astype(float), (clusters, periods)
    )
    X = fixed_effects(cells.observed, start, "immediate").X
    for method in ("maee", "gee", "moment"):
        fit = fit_gee(gee_data(cells, X), "poisson", "nested_exchangeable", method)
        p = len(fit.beta)
        assert fit.phi > 1.3 and np.isfinite(fit.vcov["BC1"][:p, :p]).all()


def test_the_gee_method_estimates_the_dispersion_without_maee():
    """correlation_method: gee estimated φ of counts per person from MAEE's trace, ran MAEE's
    V − Ω check and failed telling the user to use gee (found in review): on this 6-cluster
    trial of overdispersed counts (0.25 events per person) it now fits, its φ from its own
    trace, while MAEE refuses V − Ω as before."""
    rng = np.random.default_rng(158)
    clusters, periods, people = 6, 5, 30
    starts = np.repeat(np.arange(2, periods + 1), 2)[:clusters]
    cluster = rng.normal(0, 0.5, clusters)
    rows = []
    for i in range(clusters):
        for t in range(1, periods + 1):
            mean = np.exp(np.log(0.25) + 0.05 * t + cluster[i] + rng.normal(0, 0.4))
            for y in rng.poisson(rng.gamma(0.6, mean / 0.6, people)):
                rows.append((i, t - 1, y))
    cl, pe_, y = (np.array(c, dtype=float) for c in zip(*rows, strict=True))
    cells = summarise_records(cl.astype(int), pe_.astype(int), y, (clusters, periods))
    X = fixed_effects(cells.observed, starts - 1, "immediate").X
    fit = fit_gee(gee_data(cells, X), "poisson", "nested_exchangeable", "gee")
    moment = fit_gee(gee_data(cells, X), "poisson", "nested_exchangeable", "moment")
    assert fit.phi == pytest.approx(moment.phi, rel=0.05) and np.isfinite(fit.beta).all()
    with pytest.raises(EstimationError, match="V − Ω"):
        fit_gee(gee_data(cells, X), "poisson", "nested_exchangeable", "maee")
