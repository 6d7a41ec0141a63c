"""Cluster-robust LMM variances (inference cr2 and mancl_derouen) against nlme + clubSandwich's
vcovCR CR2/CR3 and coef_test Satterthwaite (tests/reference/r_clubsandwich_lmm): the nested
exchangeable LMM on its own truth and on trials whose clusters have their own effects, and the
random-slope LMM; and through the estimator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pathfinder_eval as pe
from pathfinder_eval.estimators.stepped_wedge.lmm import fit_reml, fixed_effects, summarise_records
from pathfinder_eval.estimators.stepped_wedge.lmm_estimator import robust_variance

HERE = Path(__file__).resolve().parent / "reference"
REF = pd.read_csv(HERE / "r_clubsandwich_lmm" / "values.csv")
REF = REF.set_index(["dataset", "model", "quantity"]).sort_index()["value"]
FILES = {
    "sim_ne": HERE / "r_lme4_stepped_wedge" / "sim_ne.csv",
    "sim_slope": HERE / "r_lme4_random_slope" / "sim_slope.csv",
}
EST_TOL = 1e-6  # both at the REML optimum (nlme by nlminb, tolerance 1e-10): observed 1.4e-7
SE_TOL = 1e-6
DF_TOL = 1e-4
FITS = [
    ("sim_ne", "nested_exchangeable"),
    ("sim_slope", "nested_exchangeable"),
    ("sim_slope", "random_slope"),
]


@pytest.mark.parametrize(("dataset", "model"), FITS)
def test_matches_clubsandwich(dataset, model):
    raw = pd.read_csv(FILES[dataset])
    ci, clusters = pd.factorize(raw["cluster"], sort=True)
    pi, periods = pd.factorize(raw["period"], sort=True)
    cells = summarise_records(ci, pi, raw["y"].to_numpy(float), (len(clusters), len(periods)))
    start = raw[raw["trt"] == 1].groupby("cluster")["period"].min().reindex(clusters)
    start = start.to_numpy(int) - 1
    fe = fixed_effects(cells.observed, start, "immediate")
    slope = None
    if model == "random_slope":
        slope = ((np.arange(len(periods))[None, :] >= start[:, None]) & cells.observed) * 1.0
    fit = fit_reml(cells, fe.X, model, slope=slope)
    ref = REF.loc[(dataset, model)]
    lvec = np.eye(fe.X.shape[2])[-1]
    assert fit.beta[-1] == pytest.approx(ref["trt:estimate"], abs=EST_TOL)
    assert -0.5 * fit.deviance >= ref["reml_loglik"] - 1e-8
    cr2 = robust_variance(fit, cells, fe.X, "cr2")
    assert np.sqrt(lvec @ cr2.vcov @ lvec) == pytest.approx(ref["trt:cr2_se"], abs=SE_TOL)
    assert cr2.df(lvec) == pytest.approx(ref["trt:cr2_df"], abs=DF_TOL)
    md = robust_variance(fit, cells, fe.X, "mancl_derouen")
    assert np.sqrt(lvec @ md.vcov @ lvec) == pytest.approx(ref["trt:cr3_se"], abs=SE_TOL)
    assert md.df(lvec) == len(clusters) - 1


@pytest.mark.parametrize("method", ["mancl_derouen", "cr2"])
def test_estimator_reports_the_robust_row(method):
    raw = pd.read_csv(FILES["sim_slope"])
    res = pe.stepped_wedge(
        raw,
        outcome="y",
        cluster="cluster",
        period="period",
        treatment="trt",
        effect="immediate",
        inference=method,
    )
    row = res.table.iloc[0]
    ref = REF.loc[("sim_slope", "nested_exchangeable")]
    se = ref["trt:cr3_se"] if method == "mancl_derouen" else ref["trt:cr2_se"]
    df = 14.0 if method == "mancl_derouen" else ref["trt:cr2_df"]
    assert row["std_error"] == pytest.approx(se, abs=SE_TOL)
    assert row["df"] == pytest.approx(df, abs=DF_TOL)
    assert res.inference.key == f"lmm_{method}"
