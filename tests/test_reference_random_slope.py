"""The random_slope LMM (nested exchangeable plus clusters' own intervention effects, correlated
with the intercept) against lme4 with pbkrtest and lmerTest (tests/reference/r_lme4_random_slope):
a regular fit, one with a zero cluster-period variance and one with the correlation at −1 (where
the Satterthwaite df needs lmerTest's Cholesky coordinates); and through the estimator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pathfinder_eval as pe
from pathfinder_eval.errors import EstimationError
from pathfinder_eval.estimators.stepped_wedge.lmm import (
    fit_reml,
    fixed_effects,
    kenward_roger_df,
    satterthwaite_df,
    small_sample,
    summarise_records,
)

HERE = Path(__file__).resolve().parent / "reference" / "r_lme4_random_slope"
REF = pd.read_csv(HERE / "values.csv").set_index(["dataset", "quantity"]).sort_index()["value"]
COMPONENT_TOL = 1e-6  # both at the REML optimum (lme4 by bobyqa, rhoend 1e-12)
BETA_TOL = 1e-6
SE_TOL = 1e-6
DF_TOL = 1e-3  # df are ratios of small quantities: the tolerance the lme4 references use
CRITERION_TOL = 1e-8
COMPONENTS = ("tau2", "tau_slope_cov", "slope2", "gamma2", "sigma2")


FILES = {
    "sim_slope": HERE / "sim_slope.csv",
    "sim_slope_small": HERE / "sim_slope_small.csv",
    "sim_incomplete": HERE.parent / "r_lme4_stepped_wedge" / "sim_incomplete.csv",
}


def _trial(name: str):
    raw = pd.read_csv(FILES[name])
    ci, clusters = pd.factorize(raw["cluster"], sort=True)
    pi, periods = pd.factorize(raw["period"], sort=True)
    cells = summarise_records(ci, pi, raw["y"].to_numpy(float), (len(clusters), len(periods)))
    start = raw[raw["trt"] == 1].groupby("cluster")["period"].min().reindex(clusters)
    start = start.fillna(len(periods) + 1).to_numpy(int) - 1  # never treated: past the end
    slope = (np.arange(len(periods))[None, :] >= start[:, None]) & cells.observed
    return raw, cells, fixed_effects(cells.observed, start, "immediate"), slope.astype(float)


@pytest.mark.parametrize("name", sorted(FILES))
def test_matches_lme4_pbkrtest_lmertest(name):
    _, cells, fe, slope = _trial(name)
    ref = REF.loc[name]
    fit = fit_reml(cells, fe.X, "random_slope", slope=slope)
    assert fit.converged
    assert bool(fit.boundary) == bool(ref["singular"])  # γ² = 0 (small), correlation −1
    if ref["correlation"] == -1:
        assert fit.boundary == ("slope_correlation_at_pm1",)
    for k in COMPONENTS:
        assert fit.components[k] == pytest.approx(ref[k], abs=COMPONENT_TOL), k
    assert fit.deviance <= ref["reml_criterion"] + CRITERION_TOL
    lvec = np.eye(fe.X.shape[2])[-1]
    assert fit.beta[-1] == pytest.approx(ref["trt:estimate"], abs=BETA_TOL)
    assert np.sqrt(fit.vcov[-1, -1]) == pytest.approx(ref["trt:model_se"], abs=SE_TOL)
    ss = small_sample(fit, cells, fe.X)
    assert np.sqrt(ss.vcov_kr[-1, -1]) == pytest.approx(ref["trt:kr_se"], abs=SE_TOL)
    assert kenward_roger_df(ss, fit.vcov, lvec) == pytest.approx(ref["trt:kr_df"], abs=DF_TOL)
    satt = satterthwaite_df(ss, fit.vcov, lvec)
    assert satt == pytest.approx(ref["trt:satterthwaite_df"], abs=DF_TOL)


def test_estimator_reports_kr_and_refuses_randomisation():
    raw, *_ = _trial("sim_slope")
    kw = {"outcome": "y", "cluster": "cluster", "period": "period", "treatment": "trt"}
    res = pe.stepped_wedge(
        raw, model="random_slope", effect="immediate", inference="kenward_roger", **kw
    )
    row = res.table.iloc[0]
    assert row["estimate"] == pytest.approx(REF[("sim_slope", "trt:estimate")], abs=BETA_TOL)
    assert row["std_error"] == pytest.approx(REF[("sim_slope", "trt:kr_se")], abs=SE_TOL)
    assert row["df"] == pytest.approx(REF[("sim_slope", "trt:kr_df")], abs=DF_TOL)
    assert "own intervention effect" in res.inference.label
    assert res.diagnostics["variance_components"]["slope2"] == pytest.approx(
        REF[("sim_slope", "slope2")], abs=COMPONENT_TOL
    )
    with pytest.raises(EstimationError, match="null covariance"):
        pe.stepped_wedge(raw, model="random_slope", inference="randomisation", **kw)
    few = raw[raw["cluster"].isin(sorted(raw["cluster"].unique())[:6])]
    small = pe.stepped_wedge(few, model="random_slope", **kw)  # the default's robust variance
    assert small.inference.key == "lmm_mancl_derouen" and small.inference.chosen_by_default
    assert small.table["df"].iloc[0] == 6 - 1


def test_search_steps_back_from_numerically_singular_covariances():
    """A line search can try G/σ² ~ 1e20 (seen with 6 clusters and 100 per cell): there the
    cell covariance is not positive definite in floating point, and the optimiser's objective is
    +inf (it steps back) instead of an exception that ends the fit."""
    from pathfinder_eval.estimators.stepped_wedge import lmm

    _, cells, fe, slope = _trial("sim_slope")
    c = lmm._cells(cells, fe.X, slope)
    with pytest.raises(np.linalg.LinAlgError):
        lmm._profiled(np.array([0.0, 1e10, 0.0, 0.0]), "random_slope", c)
    assert lmm._searched(np.array([0.0, 1e10, 0.0, 0.0]), "random_slope", c)[0] == np.inf
    fit = fit_reml(cells, fe.X, "random_slope", slope=slope)
    x = lmm._relative_of("random_slope", fit.theta)
    assert lmm._searched(x, "random_slope", c)[0] == pytest.approx(fit.deviance, abs=1e-9)
