"""Stepped-wedge LMM on individual records (estimators/sw_lmm_records.py): lme4/lmerTest/pbkrtest
reference values with individual covariates and a closed cohort, agreement with the cell-summary
path where both apply, the dense N × N textbook formulas, and bad input."""

from __future__ import annotations

import itertools
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
from pathfinder_eval.estimators.stepped_wedge.lmm_records import fit_records
from sw_helpers import REF as CELL_REF
from sw_helpers import dense_deviance as _dense_deviance
from sw_helpers import dense_kr as _dense_kr

REF = Path(__file__).resolve().parent / "reference" / "r_lme4_records"
VALUES = pd.read_csv(REF / "values.csv")
# Against lme4 (tight nloptwrap tolerances), lmerTest and pbkrtest: the brief's tolerances;
# observed differences are ≤ 1e-8 (β̂, SE, variance components) and ≤ 7e-5 (df).
BETA_TOL = 1e-6
SE_TOL = 1e-5
VC_TOL = 1e-5
DF_TOL = 1e-3
CRIT_TOL = 1e-6
# The record and cell-summary paths are the same likelihood: agreement up to rounding.
PATH_TOL = 1e-8
# Structured vs dense (N × N) algebra at the same θ: rounding in N × N solves.
ALGEBRA_TOL = 1e-8
NUMERIC_HESSIAN_REL = 1e-4

# reference fit → (data file, covariates, structure, closed cohort)
FITS = {
    "cross_ne": ("sim_cross.csv", ["age", "sex"], "nested_exchangeable", False),
    "cross_hh": ("sim_cross.csv", ["age", "sex"], "hussey_hughes", False),
    "cohort_ne": ("sim_cohort.csv", ["sex", "score"], "nested_exchangeable", True),
    "cohort_hh": ("sim_cohort.csv", ["sex", "score"], "hussey_hughes", True),
}


def _arrays(data: pd.DataFrame, covariates: list[str], cohort: bool):
    """Record arrays with one indicator per period, the treatment, then the covariates."""
    ci = pd.factorize(data["cluster"], sort=True)[0]
    pi, periods = pd.factorize(data["period"], sort=True)
    x = np.column_stack(
        [np.eye(len(periods))[pi], data["trt"], *[data[c] for c in covariates]]
    ).astype(float)
    names = [f"period[{p}]" for p in periods] + ["trt", *covariates]
    ind = pd.factorize(data["id"], sort=True)[0] if cohort else None
    return data["y"].to_numpy(float), x, ci, pi, ind, names


@pytest.mark.parametrize("name", sorted(FITS))
def test_matches_lme4_lmertest_pbkrtest(name):
    file, covariates, structure, cohort = FITS[name]
    y, x, ci, pi, ind, names = _arrays(pd.read_csv(REF / file), covariates, cohort)
    res = fit_records(y, x, ci, pi, ind, structure)
    fit, ss = res.fit, res.small
    ref = VALUES[VALUES["fit"] == name].set_index("quantity")["value"]
    assert fit.converged and fit.agreeing == fit.starts
    assert fit.theta_names[-2:] == (
        ("psi2", "sigma2") if cohort else (fit.theta_names[-2], "sigma2")
    )
    for comp, value in fit.components.items():
        assert value == pytest.approx(ref[comp], abs=VC_TOL), comp
    assert fit.deviance == pytest.approx(ref["reml_criterion"], abs=CRIT_TOL)
    for term in ["trt", *covariates]:
        lvec = np.array([n == term for n in names], dtype=float)
        assert lvec @ fit.beta == pytest.approx(ref[f"{term}:estimate"], abs=BETA_TOL)
        se = np.sqrt(lvec @ fit.vcov @ lvec)
        assert se == pytest.approx(ref[f"{term}:std_error"], abs=SE_TOL)
        se_kr = np.sqrt(lvec @ ss.vcov_kr @ lvec)
        assert se_kr == pytest.approx(ref[f"{term}:std_error_kr"], abs=SE_TOL)
        df_s = satterthwaite_df(ss, fit.vcov, lvec)
        assert df_s == pytest.approx(ref[f"{term}:df_satterthwaite"], abs=DF_TOL)
        df_kr = kenward_roger_df(ss, fit.vcov, lvec)
        assert df_kr == pytest.approx(ref[f"{term}:df_kr"], abs=DF_TOL)
    assert res.n_records == len(y)
    assert res.n_individuals == (len(set(ind)) if cohort else None)


def test_trt_effect_values_are_pinned():
    """Headline numbers of the closed-cohort fit, written out (lme4 values to 6 digits)."""
    y, x, ci, pi, ind, names = _arrays(pd.read_csv(REF / "sim_cohort.csv"), ["sex", "score"], True)
    res = fit_records(y, x, ci, pi, ind, "nested_exchangeable")
    comp = res.fit.components
    assert comp["psi2"] == pytest.approx(0.343905, abs=1e-6)
    assert comp["sigma2"] == pytest.approx(0.630602, abs=1e-6)
    lvec = np.array([n == "trt" for n in names], dtype=float)
    assert lvec @ res.fit.beta == pytest.approx(0.343220, abs=1e-6)
    assert kenward_roger_df(res.small, res.fit.vcov, lvec) == pytest.approx(54.617, abs=1e-3)


@pytest.mark.parametrize(
    ("file", "structure"),
    [
        ("sim_ne.csv", "nested_exchangeable"),
        ("sim_ne.csv", "hussey_hughes"),
        ("sim_incomplete.csv", "nested_exchangeable"),
        ("sim_decay.csv", "exponential_decay"),
        ("sim_decay.csv", "cluster_plus_decay"),
    ],
)
def test_equals_cell_summary_path_with_cell_level_covariates(file, structure):
    records = pd.read_csv(CELL_REF / file)
    ci, clusters = pd.factorize(records["cluster"], sort=True)
    pi, periods = pd.factorize(records["period"], sort=True)
    y = records["y"].to_numpy(float)
    cells = summarise_records(ci, pi, y, (len(clusters), len(periods)))
    first = records[records["trt"] == 1].groupby("cluster")["period"].min()
    start = np.array([int(first.get(c, 99)) - 1 for c in clusters])
    fe = fixed_effects(cells.observed, start, "exposure_time")
    cell_fit = fit_reml(cells, fe.X, structure)
    cell_ss = small_sample(cell_fit, cells, fe.X)
    res = fit_records(y, fe.X[ci, pi], ci, pi, None, structure)
    fit, ss = res.fit, res.small
    assert fit.theta_names == cell_fit.theta_names
    assert np.abs(fit.beta - cell_fit.beta).max() < PATH_TOL
    assert np.abs(fit.theta - cell_fit.theta).max() < PATH_TOL
    assert np.abs(fit.vcov - cell_fit.vcov).max() < PATH_TOL
    assert fit.deviance == pytest.approx(cell_fit.deviance, abs=PATH_TOL)
    assert np.abs(ss.vcov_kr - cell_ss.vcov_kr).max() < PATH_TOL
    assert np.abs(ss.w - cell_ss.w).max() < PATH_TOL * max(1.0, np.abs(cell_ss.w).max())
    assert np.abs(ss.hessian - cell_ss.hessian).max() < 1e-6 * np.abs(cell_ss.hessian).max()
    lvec = np.zeros(fe.X.shape[2])
    lvec[list(fe.effect)] = 1.0 / len(fe.effect)
    # the KR df amplifies 1e-10 differences in θ (cancellation in its moment ratios)
    assert kenward_roger_df(ss, fit.vcov, lvec) == pytest.approx(
        kenward_roger_df(cell_ss, cell_fit.vcov, lvec), rel=1e-6
    )


def _dense_cohort(data: pd.DataFrame, structure: str, theta: np.ndarray, cohort: bool):
    """V (N × N) = ZΣZᵀ [+ ψ²KKᵀ] + σ²I and its derivatives in θ, from scratch."""
    c = data["cluster"].to_numpy()
    p = data["period"].to_numpy(float)
    same = (c[:, None] == c[None, :]).astype(float)
    lag = np.abs(p[:, None] - p[None, :])
    ident = (data["id"].to_numpy()[:, None] == data["id"].to_numpy()[None, :]).astype(float)
    if structure == "nested_exchangeable":
        cp = same * (lag == 0)
        derivs, second = [same, cp], {}
        v = theta[0] * same + theta[1] * cp
    else:
        tau2, r = theta[0], theta[1]
        dr = same * np.where(lag > 0, lag * r ** np.maximum(lag - 1, 0), 0.0)
        drr = same * np.where(lag > 1, lag * (lag - 1) * r ** np.maximum(lag - 2, 0), 0.0)
        derivs, second = [same * r**lag, tau2 * dr], {(0, 1): dr, (1, 0): dr, (1, 1): tau2 * drr}
        v = tau2 * same * r**lag
    if cohort:
        v, derivs = v + theta[2] * ident, [*derivs, ident]
    eye = np.eye(len(c))
    return v + theta[-1] * eye, [*derivs, eye], second


def _small_cohort(seed: int = 3) -> pd.DataFrame:
    """A small closed cohort (6 clusters, 5 periods, 8 children each, 10% of visits missing)
    whose REML estimates are interior for every model below, so a numerical Hessian of the
    dense deviance is well defined."""
    rng = np.random.default_rng(seed)
    lag = np.abs(np.subtract.outer(np.arange(5), np.arange(5)))
    rows = []
    for i in range(6):
        cp = rng.multivariate_normal(np.zeros(5), 0.3 * 0.5**lag + 0.1 * np.eye(5))
        for k in range(8):
            b, sex = rng.normal(0.0, 0.6), int(rng.integers(0, 2))
            for j in range(5):
                if rng.random() < 0.1:
                    continue
                score, trt = rng.normal(), int(j >= 1 + i // 2)
                mu = 0.1 * j + 0.3 * trt + 0.2 * sex + 0.1 * score + cp[j] + b
                rows.append(
                    {"cluster": f"k{i}", "id": f"{i}-{k}", "period": j, "trt": trt, "sex": sex,
                     "score": score, "y": mu + rng.normal()}
                )  # fmt: skip
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    ("structure", "cohort"),
    [("nested_exchangeable", True), ("exponential_decay", True), ("exponential_decay", False)],
)
def test_structured_algebra_equals_dense_formulas(structure, cohort):
    data = _small_cohort()
    y, x, ci, pi, ind, _ = _arrays(data, ["sex", "score"], cohort)
    res = fit_records(y, x, ci, pi, ind, structure)
    fit, ss = res.fit, res.small
    assert fit.boundary == ()

    def dense_dev(theta: np.ndarray) -> float:
        return _dense_deviance(y, x, _dense_cohort(data, structure, theta, cohort)[0])

    v, derivs, second = _dense_cohort(data, structure, fit.theta, cohort)
    assert fit.deviance == pytest.approx(_dense_deviance(y, x, v), abs=1e-8)
    for k, sign in itertools.product(range(len(fit.theta)), (-1, 1)):  # a minimum
        assert dense_dev(fit.theta + sign * 1e-3 * fit.theta[k] * np.eye(len(fit.theta))[k]) > (
            fit.deviance
        )
    phi, phi_a, p_mats, w = _dense_kr(x, v, derivs, second)
    assert np.abs(phi - fit.vcov).max() < ALGEBRA_TOL
    assert np.abs(phi_a - ss.vcov_kr).max() < ALGEBRA_TOL
    assert np.abs(np.stack(p_mats) - ss.p_mats).max() < ALGEBRA_TOL * np.abs(ss.p_mats).max()
    assert np.abs(w - ss.w).max() < ALGEBRA_TOL * np.abs(w).max()
    k = len(fit.theta)
    steps = 1e-3 * fit.theta
    num = np.empty((k, k))
    for a, b in itertools.product(range(k), repeat=2):
        ea, eb = np.eye(k)[a] * steps[a], np.eye(k)[b] * steps[b]
        f = [
            dense_dev(fit.theta + sa * ea + sb * eb)
            for sa, sb in itertools.product((1, -1), (1, -1))
        ]
        num[a, b] = (f[0] - f[1] - f[2] + f[3]) / (4 * steps[a] * steps[b])
    assert ss.hessian == pytest.approx(num, rel=NUMERIC_HESSIAN_REL)


def test_invariant_to_row_order_and_relabelling():
    data = pd.read_csv(REF / "sim_cohort.csv")
    y, x, ci, pi, ind, _ = _arrays(data, ["sex", "score"], True)
    base = fit_records(y, x, ci, pi, ind, "nested_exchangeable").fit
    perm = np.random.default_rng(3).permutation(len(y))
    relabel = np.random.default_rng(4).permutation(ci.max() + 1)
    other = fit_records(
        y[perm], x[perm], relabel[ci[perm]], pi[perm], 1000 - ind[perm], "nested_exchangeable"
    ).fit
    # the optimum is located to a Newton decrement of 1e-12: θ to ~1e-9 on this flat profile
    assert np.abs(other.beta - base.beta).max() < 1e-8
    assert np.abs(other.theta - base.theta).max() < 1e-7


def test_bad_input_is_an_estimation_error():
    y, x, ci, pi, ind, _ = _arrays(pd.read_csv(REF / "sim_cohort.csv"), ["sex", "score"], True)
    with pytest.raises(EstimationError, match="singular"):
        fit_records(y, np.column_stack([x, 2.0 * x[:, -1]]), ci, pi, ind, "hussey_hughes")
    gap = np.where(ci >= 3, ci + 1, ci)  # cluster code 3 has no records
    with pytest.raises(EstimationError, match="cluster code 3 has no records"):
        fit_records(y, x, gap, pi, ind, "hussey_hughes")
    shared = ind.copy()
    shared[ci == 1] = ind[ci == 0][0]  # one child's code reused in another cluster
    with pytest.raises(EstimationError, match="more than one cluster"):
        fit_records(y, x, ci, pi, shared, "hussey_hughes")
    with pytest.raises(EstimationError, match="integer codes"):
        fit_records(y, x, ci.astype(float), pi, ind, "hussey_hughes")
    with pytest.raises(EstimationError, match="missing or infinite"):
        fit_records(np.where(np.arange(len(y)) == 5, np.nan, y), x, ci, pi, ind, "hussey_hughes")
    with pytest.raises(EstimationError, match="unknown covariance structure"):
        fit_records(y, x, ci, pi, ind, "ar1")  # type: ignore[arg-type]


CR3_REF = Path(__file__).resolve().parent / "reference" / "r_lme4_records_cr3"


@pytest.mark.parametrize("fit", ["cross_sectional", "cohort"])
def test_mancl_derouen_on_records_matches_a_dense_sandwich_on_lme4s_fit(fit):
    """The Mancl-DeRouen (CR3) variance on individual records with a covariate, and with a
    closed cohort's person intercept: the effect and age's estimates and SEs equal lme4's REML
    fit with the sandwich formed densely, cluster by cluster, with (I − Hᵢᵢ)⁻¹ on each
    cluster's 48 records (cr3.R beside the values), to BETA_TOL and SE_TOL. It was refused on
    records, leaving only Kenward-Roger, which assumes the covariance model (found in
    review). The reference is t(I − 1)."""
    data = pd.read_csv(CR3_REF / "records.csv")
    ref = pd.read_csv(CR3_REF / "values.csv").query("fit == @fit").set_index("term")
    extra = {"individual": "person"} if fit == "cohort" else {}
    res = pe.stepped_wedge(
        data,
        outcome="y",
        cluster="cluster",
        period="period",
        start="start",
        covariates=("age",),
        effect="immediate",
        inference="mancl_derouen",
        **extra,
    )
    row = res.table.iloc[0]
    assert row["estimate"] == pytest.approx(ref.loc["trt", "estimate"], abs=BETA_TOL)
    assert row["std_error"] == pytest.approx(ref.loc["trt", "std_error"], rel=SE_TOL)
    assert row["df"] == 9 and res.inference.key == "lmm_mancl_derouen"
    age = res.diagnostics["individual_level"]["covariates"]["age"]
    assert age["estimate"] == pytest.approx(ref.loc["age", "estimate"], abs=BETA_TOL)
    assert age["std_error"] == pytest.approx(ref.loc["age", "std_error"], rel=SE_TOL)
    assert age["df"] == 9


def test_one_cluster_per_sequence_keeps_every_inference_on_records():
    """With one cluster in a sequence, that cluster alone identifies the longest exposure time:
    computing the Mancl-DeRouen variance for every records fit made Kenward-Roger fail too
    ('Singular matrix'; found in review). Kenward-Roger runs again, Mancl-DeRouen takes the
    least-norm solution along the direction the cluster alone identifies (its score is 0
    there), and on records without covariates it equals the cell-summary path's."""
    rng = np.random.default_rng(5)
    rows = []
    for c in range(4):
        u = rng.normal(0, 0.3)
        for t in range(1, 6):
            for _ in range(20):
                y = u + 0.1 * t + 0.3 * (t >= c + 2) + rng.normal()
                rows.append((f"C{c}", t, c + 2, y, rng.normal()))
    raw = pd.DataFrame(rows, columns=["cl", "period", "start", "y", "x"])
    kw = dict(outcome="y", cluster="cl", period="period", start="start", covariates=("x",))
    kr = pe.stepped_wedge(raw, **kw, inference="kenward_roger").table.iloc[0]
    md = pe.stepped_wedge(raw, **kw).table.iloc[0]
    assert np.isfinite([kr["std_error"], md["std_error"]]).all() and md["df"] == 3
    cells = pe.stepped_wedge(raw, **{k: v for k, v in kw.items() if k != "covariates"})
    cl, per = pd.factorize(raw["cl"], sort=True)[0], raw["period"].to_numpy() - 1
    summaries = summarise_records(cl, per, raw["y"].to_numpy(), (4, 5))
    fe = fixed_effects(summaries.observed, np.arange(1, 5), "exposure_time")
    y = raw["y"].to_numpy()
    res = fit_records(y, fe.X[cl, per], cl, per, None, "nested_exchangeable", robust=True)
    tate = np.zeros(len(res.fit.beta))
    tate[list(fe.effect)] = 1 / len(fe.effect)
    se = np.sqrt(tate @ res.mancl_derouen @ tate)
    assert se == pytest.approx(cells.table["std_error"].iloc[0], rel=1e-6)
