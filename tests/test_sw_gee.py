"""GEE/MAEE for stepped-wedge trials (estimators/sw_gee.py): the cell-space algebra against a
dense individual-level oracle, the estimator on panels, and bad input."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from pathfinder_eval.errors import DesignError, EstimationError
from pathfinder_eval.estimators.stepped_wedge.gee import Records, _score, fit_gee, gee_data
from pathfinder_eval.estimators.stepped_wedge.gee_estimator import SteppedWedgeGEE
from pathfinder_eval.estimators.stepped_wedge.lmm import (
    CellSummaries,
    fixed_effects,
    summarise_records,
)
from pathfinder_eval.settings import Inference
from sw_gee_oracle import oracle_fit
from sw_helpers import dataset_panel, panel_from_records

# Cell space and the dense oracle are the same algebra in different order: agreement to
# rounding error (the acceptance target).
ORACLE_TOL = 1e-10


def tiny(family: str, seed: int = 2):
    """8 clusters × 3 periods, 3–6 individuals per cell, one cell missing (incomplete design)."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(8):
        u = rng.normal(0, 0.3)
        for t in range(3):
            if (c, t) == (7, 0):
                continue
            trt = float(t > c % 2)
            for _ in range(rng.integers(3, 7)):
                eta = -0.4 + 0.2 * t + 0.5 * trt + u + rng.normal(0, 0.3)
                y = (
                    eta + rng.normal()
                    if family == "gaussian"
                    else float(rng.random() < 1 / (1 + np.exp(-eta)))
                )
                rows.append((c, t, trt, y))
    return pd.DataFrame(rows, columns=["cluster", "period", "trt", "y"])


def _arrays(raw: pd.DataFrame):
    cl, pe, y = raw["cluster"].to_numpy(), raw["period"].to_numpy(), raw["y"].to_numpy(float)
    shape = (cl.max() + 1, pe.max() + 1)
    cells = summarise_records(cl, pe, y, shape)
    start = raw[raw.trt == 1].groupby("cluster")["period"].min().reindex(range(shape[0]))
    start = start.fillna(shape[1]).to_numpy(int)
    X = fixed_effects(cells.observed, start, "immediate").X
    return cl, pe, y, cells, X, shape


CASES = [
    (fam, corr, meth)
    for fam in ("gaussian", "binomial", "poisson")
    for corr in ("independence", "exchangeable", "nested_exchangeable", "exponential_decay")
    for meth in ("maee", "gee", "moment")
    if not (corr == "independence" and meth != "gee")
]
# On this 3-period dataset the binomial and poisson gee/moment decay fits have no root with
# ρ in [0, 1] (their between-period correlation exceeds the within-period one): those must
# raise, and `_no_decay_root` confirms the failure is genuine.
DECAY_ERROR = "exponential decay: the correlation equations have no admissible root \\(ρ > 1"
DECAY_FAILS = {(f, m) for f in ("binomial", "poisson") for m in ("gee", "moment")}


def _no_decay_root(data, family, method) -> bool:
    """At the exchangeable fit (decay with ρ = 1), the ρ equation, with α0 re-solved for each
    ρ on a grid of [0, 1], is positive throughout: it points past ρ = 1, no root inside."""
    ex = fit_gee(data, family, "exchangeable", method)
    a0, u_rho = ex.alpha[0], []
    for rho in np.linspace(0.0, 1.0, 21):
        for _ in range(30):
            s = _score(data, family, "exponential_decay", method, ex.beta, np.array([a0, rho]),
                       ex.phi, ex.vcov["MB"])  # fmt: skip
            a0 = a0 + s.Ua.sum(axis=0)[0] / s.A.sum(axis=0)[0, 0]
        u_rho.append(s.Ua.sum(axis=0)[1])
    return bool(np.all(np.array(u_rho) > 0))


@pytest.mark.parametrize(("family", "correlation", "method"), CASES)
@pytest.mark.parametrize("ordered", [True, False])
def test_cell_space_equals_individual_level(family, correlation, method, ordered):
    raw = tiny(family)
    cl, pe, y, cells, X, shape = _arrays(raw)
    records = Records(cl * shape[1] + pe, y) if ordered else None
    data = gee_data(cells, X, records)
    if correlation == "exponential_decay" and (family, method) in DECAY_FAILS:
        with pytest.raises(EstimationError, match=DECAY_ERROR) as err:
            fit_gee(data, family, correlation, method, tol=1e-12)
        assert err.value.where == "options.correlation"
        assert _no_decay_root(data, family, method)
        return
    fit = fit_gee(data, family, correlation, method, tol=1e-12)
    Xi = X[cl, pe]
    beta, alpha, phi, vcov = oracle_fit(
        cl, pe, y, Xi, family, correlation, method, 1e-12, symmetric=not ordered
    )
    assert np.abs(fit.beta - beta).max() < ORACLE_TOL
    assert np.allclose(fit.alpha, alpha, rtol=0, atol=ORACLE_TOL)
    assert fit.phi == pytest.approx(phi, abs=ORACLE_TOL)
    p = len(beta)
    for k, ref in vcov.items():
        got = fit.vcov[k]
        if not fit.alpha_se_available:
            got, ref = got[:p, :p], ref[:p, :p]
        assert np.abs(got - ref).max() < ORACLE_TOL, k


def _binary_panel(tmp_path, numerator: bool = True):
    raw, cluster, trt, _ = __import__("sw_helpers").records("geecrt_small")
    panel = panel_from_records(raw, cluster, trt, "y_bin", tmp_path)
    if not numerator:
        cells = panel.cells.assign(numerator=np.nan)
        panel = dataclasses.replace(panel, cells=cells)
    return panel


def test_estimator_gaussian_ne(tmp_path):
    """Converged MAEE (tolerance 1e-10, within-cell order averaged) on sampleSWCRTSmall: within
    1e-4 of the vignette's estimate that stopped at epsilon 1e-3; KC SE with t(12 − 5)."""
    res = SteppedWedgeGEE().fit(dataset_panel("geecrt_small", tmp_path), "y", "a")
    row = res.table.iloc[0]
    assert row["term"] == "Intervention effect (immediate, period-adjusted)"
    assert row["estimate"] == pytest.approx(-0.1846654, abs=1e-4)  # vignette
    assert row["std_error"] == pytest.approx(0.1592412, abs=1e-4)  # vignette BC1
    assert row["estimate"] == pytest.approx(-0.18460499, abs=1e-7)
    assert row["std_error"] == pytest.approx(0.15933194, abs=1e-7)
    assert row["df"] == 7.0
    diag = res.diagnostics
    assert diag["se_used"] == "BC1"
    # averaging over within-cell orders moves α0 from geeCRT's 0.07335831 (data order) to
    # 0.0722738; β and its SEs barely move
    assert diag["correlation_parameters"]["alpha0"] == pytest.approx(0.0722738, abs=1e-6)
    assert diag["correlation_parameters"]["alpha1"] == pytest.approx(0.0320961, abs=1e-6)
    assert diag["correlation_parameter_se"]["alpha0"]["BC0"] is None  # needs individuals
    assert set(diag["standard_errors"][row["term"]]) == {"MB", "BC0", "BC1", "BC2", "BC3", "CR2"}
    assert "Kauermann-Carroll" in res.inference.label


def test_estimator_binary_log_odds(tmp_path):
    panel = _binary_panel(tmp_path)
    res = SteppedWedgeGEE(family="binomial").fit(panel, "y", "a")
    row = res.table.iloc[0]
    assert row["term"].endswith(", log odds ratio")
    assert row["estimate"] == pytest.approx(-0.9959081, abs=2e-3)
    alpha_se = res.diagnostics["correlation_parameter_se"]["alpha0"]["BC0"]
    assert alpha_se == pytest.approx(0.03212815, abs=2e-3)
    md = SteppedWedgeGEE(family="binomial", inference=Inference(method="mancl_derouen"))
    assert md.fit(panel, "y", "a").table.iloc[0]["std_error"] == pytest.approx(
        res.diagnostics["standard_errors"][row["term"]]["BC2"]
    )


def test_events_from_y_times_denominator(tmp_path):
    panel = _binary_panel(tmp_path)
    fit = SteppedWedgeGEE(family="poisson").fit(panel, "y", "a")
    a = fit.table
    b = SteppedWedgeGEE(family="poisson").fit(_binary_panel(tmp_path, False), "y", "a").table
    assert a["term"].iloc[0].endswith(", log rate ratio") and fit.scale == "log_rate_ratio"
    assert SteppedWedgeGEE(family="binomial").fit(panel, "y", "a").scale == "log_odds_ratio"
    assert SteppedWedgeGEE().fit(panel, "y", "a").scale == "difference"
    assert np.allclose(a["estimate"], b["estimate"], atol=1e-12)


def test_fractional_events_rejected(tmp_path):
    panel = _binary_panel(tmp_path, False)
    cells = panel.cells.assign(y=panel.cells["y"] + 0.013)
    panel = dataclasses.replace(panel, cells=cells)
    with pytest.raises(EstimationError, match="whole number of events") as err:
        SteppedWedgeGEE(family="binomial").fit(panel, "y", "a")
    assert err.value.where == "the outcome column of the records"  # a cell's sum of records


def test_bad_options(tmp_path):
    panel = dataset_panel("geecrt_small", tmp_path)
    with pytest.raises(DesignError, match="inference method 'kenward_roger' is not available"):
        SteppedWedgeGEE(inference=Inference(method="kenward_roger"))
    with pytest.raises(EstimationError, match="tate_window"):
        SteppedWedgeGEE(effect="exposure_time", tate_window=9).fit(panel, "y", "a")


def test_non_convergence_raises():
    *_, cells, X, _ = _arrays(tiny("gaussian"))
    with pytest.raises(EstimationError, match="did not converge in 2 iterations"):
        fit_gee(gee_data(cells, X), "gaussian", "nested_exchangeable", max_iter=2)


def test_non_positive_definite_working_correlation():
    *_, cells, X, _ = _arrays(tiny("gaussian"))
    data = gee_data(cells, X)
    with pytest.raises(EstimationError, match="not positive definite"):
        _score(data, "gaussian", "nested_exchangeable", "gee", np.zeros(X.shape[2]),
               np.array([0.2, -0.9]), 1.0, np.eye(X.shape[2]))  # fmt: skip


def test_large_cells_cost_cells_not_individuals():
    """5,000+ individuals per cell: the fit works on the 8 × 3 cells (no n × n matrices)."""
    raw = tiny("gaussian")
    *_, cells, X, _ = _arrays(raw)
    big = type(cells)(cells.mean, cells.n * 1000 + 5000, cells.ssw * 1000, cells.observed)
    fit = fit_gee(gee_data(big, X), "gaussian", "nested_exchangeable")
    assert np.isfinite(fit.vcov["BC1"][: X.shape[2], : X.shape[2]]).all()


def _decay_trial(seed: int, clusters=12, periods=6, m=50, alpha0=0.1, rho=0.6):
    """Cell summaries of a continuous stepped-wedge trial with exponential-decay correlation:
    cluster-period effects ~ N(0, α0·ρ^|j−l|), individual variance 1 − α0 (total 1), m per cell;
    clusters start in turn over periods 2..T; period trend 0.1, effect 0.3."""
    rng = np.random.default_rng(seed)
    lag = np.abs(np.subtract.outer(np.arange(periods), np.arange(periods)))
    cp = rng.multivariate_normal(np.zeros(periods), alpha0 * rho**lag, clusters)
    start = 1 + np.arange(clusters) * (periods - 1) // clusters
    trt = np.arange(periods)[None, :] >= start[:, None]
    s2 = 1.0 - alpha0
    mean = 0.1 * np.arange(periods)[None] + 0.3 * trt + cp
    mean = mean + rng.normal(0.0, np.sqrt(s2 / m), mean.shape)
    n = np.full(mean.shape, float(m))
    cells = CellSummaries(mean, n, s2 * rng.chisquare(m - 1, mean.shape), np.ones_like(trt))
    return gee_data(cells, fixed_effects(cells.observed, start, "immediate").X)


@pytest.mark.parametrize("method", ["maee", "gee", "moment"])
def test_decay_trial_converges_and_recovers_rho(method):
    """12 clusters × 6 periods, α0 0.1, ρ 0.6: every one of 20 seeded trials converges, and the
    estimates centre on the truth (seed-to-seed SD of ρ̂ ≈ 0.16, so the mean's ≈ 0.04)."""
    fits = [
        fit_gee(_decay_trial(seed), "gaussian", "exponential_decay", method) for seed in range(20)
    ]
    alpha = np.array([f.alpha for f in fits])
    assert abs(alpha[:, 1].mean() - 0.6) < 0.1
    assert abs(alpha[:, 0].mean() - 0.1) < 0.03
    assert np.all((alpha[:, 1] > 0.0) & (alpha[:, 1] < 1.0))
