"""continuous_did's data-driven dose curve (dose_method "cck", Chen, Christensen & Kankanala's
sieve choice and uniform bands) against moderndid 0.2.0's `cont_did(dose_est_method="cck")`
and the `npiv` functions it calls (tests/reference/moderndid_cck: script, panels, values)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy.interpolate import BSpline

import pathfinder_eval as pe
from pathfinder_eval.errors import EstimationError, PathfinderError
from pathfinder_eval.estimators.did.dose_sieve import _fit as sieve_fit
from pathfinder_eval.estimators.did.dose_sieve import _grid, choose_segments, residuals_for
from test_continuous_did import DESIGN

REF = Path(__file__).parent / "reference" / "moderndid_cck"
PANELS = pd.read_csv(REF / "panels.csv")
VALUES = pd.read_csv(REF / "values.csv")
NAMES = ("guide", "wave", "step", "small")
SEED, DRAWS = 11, 999


def _ref(name: str, quantity: str) -> pd.Series:
    v = VALUES[(VALUES["panel"] == name) & (VALUES["quantity"] == quantity)]
    return pd.Series(v["value"].to_numpy(), index=v["key"].to_numpy())


def _treated(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The treated units' doses and changes net of the never-treated mean change (ordered by
    id, as the reference script), and the never-treated changes."""
    p = PANELS[PANELS["panel"] == name]
    wide = p.pivot(index="id", columns="t", values="y")
    units = p.groupby("id")[["D", "G"]].first().loc[wide.index]
    change = (wide[2] - wide[1]).to_numpy()
    treated = units["G"].to_numpy() > 0
    return units["D"].to_numpy()[treated], change[treated], change[~treated]


COLUMNS = dict(outcome="y", unit="id", time="t", first_treated="G", dose="D")


def _fit(name: str, **options) -> pe.EffectEstimates:
    return pe.continuous_did(
        PANELS[PANELS["panel"] == name], **COLUMNS, dose_method="cck", seed=SEED, **options
    )


@pytest.mark.parametrize("name", NAMES)
def test_sieve_choice_equals_moderndid(name):
    """Grid, α̂ and the choice exactly; each pair's studentized gap within 1e-7 (moderndid
    nudges its quantile knots by 1e-10 of the range and fits by IV with a finer instrument
    spline: measured 3e-8); θ* from the same Gaussian draws within 1e-8 (measured 5.3e-9)."""
    dose, change, never = _treated(name)
    choice = choose_segments(dose, change - never.mean(), DRAWS, SEED, variance="hc0")
    assert list(choice.grid) == _ref(name, "grid").astype(int).tolist()
    assert choice.alpha == pytest.approx(_ref(name, "alpha").iloc[0], rel=1e-12)
    gaps = _ref(name, "gap")
    ours = [choice.sup_gaps[tuple(int(s) for s in key.split("-"))] for key in gaps.index]
    np.testing.assert_allclose(ours, gaps.to_numpy(), rtol=1e-7)
    assert choice.theta == pytest.approx(_ref(name, "theta").iloc[0], rel=1e-8)
    assert choice.segments == int(_ref(name, "segments").iloc[0])


@pytest.mark.parametrize("name", NAMES)
def test_curve_and_averages_equal_contdid(name):
    """At the chosen sieve, on moderndid's 50 doses: ATT(d) and ACRT(d) within 1e-7 of its
    curve and slope; ACRT(d)'s standard error equals its (heteroskedasticity-robust) one and
    ATT(d)'s adds the comparison mean's variance, which moderndid leaves out; ATT, ACRT and
    ACRT's standard error within 1e-7 of cont_did's (its knots' 1e-10 nudge: measured 2e-8)."""
    dose, _, never = _treated(name)
    grid = np.linspace(dose.min(), dose.max(), 50)
    res = _fit(name, doses=tuple(grid), sieve_variance="hc0")
    table = res.table.set_index("term")
    att_d = table[table.index.str.startswith("ATT at dose")]
    acrt_d = table[table.index.str.startswith("ACRT at dose")]
    np.testing.assert_allclose(att_d["estimate"], _ref(name, "curve"), rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(acrt_d["estimate"], _ref(name, "slope"), rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(acrt_d["std_error"], _ref(name, "slope_se"), rtol=1e-7)
    mean_var = ((never - never.mean()) ** 2).sum() / never.size**2
    np.testing.assert_allclose(att_d["std_error"] ** 2, _ref(name, "se") ** 2 + mean_var, rtol=1e-7)
    assert res.inference.key == "influence_function"
    assert table.iloc[0]["estimate"] == pytest.approx(_ref(name, "att").iloc[0], rel=1e-7)
    assert table.iloc[1]["estimate"] == pytest.approx(_ref(name, "acrt").iloc[0], rel=1e-7)
    assert table.iloc[1]["std_error"] == pytest.approx(_ref(name, "acrt_se").iloc[0], rel=1e-7)
    assert res.facts.degree == 3
    assert res.facts.knots == int(_ref(name, "segments").iloc[0]) - 1


def _direct(dose, change, segments, points, draws, cov_type):
    """One sieve from scipy's full B-spline design matrix and statsmodels' HC0 or HC2
    covariance (not the engine's basis or influence code): the slope's standard errors at
    `points` and each draw's largest studentized deviation of the curve."""
    inner = np.quantile(dose, np.linspace(0, 1, segments + 1))
    knots = np.concatenate([np.repeat(inner[0], 3), inner, np.repeat(inner[-1], 3)])
    x = BSpline.design_matrix(dose, knots, 3).toarray()
    fit = sm.OLS(change, x).fit(cov_type=cov_type)
    at = BSpline.design_matrix(np.clip(points, inner[0], inner[-1]), knots, 3).toarray()
    slope = np.column_stack(
        [BSpline(knots, np.eye(x.shape[1])[j], 3).derivative()(points) for j in range(x.shape[1])]
    )
    cov = fit.cov_params()
    se = np.sqrt(np.einsum("ij,jk,ik->i", at, cov, at))
    slope_se = np.sqrt(np.einsum("ij,jk,ik->i", slope, cov, slope))
    noise = fit.resid
    if cov_type != "HC0":
        power = 0.5 if cov_type == "HC2" else 1.0
        noise = noise / (1 - fit.get_influence().hat_matrix_diag) ** power
    deviation = at @ np.linalg.solve(x.T @ x, x.T @ (noise[:, None] * draws.T))
    return slope_se, np.max(np.abs(deviation) / se[:, None], axis=0)


@pytest.mark.parametrize("cov_type", ["HC2", "HC3", "HC0"])
def test_band_critical_value_from_direct_computation(cov_type):
    """The curve's band: the 95% quantile of the draws' largest studentized deviation over the
    sieves up to max(J̃, the grid's third largest), plus log log J̃ · θ* (CCK's Procedure 2),
    recomputed from scipy and statsmodels to 1e-8, with HC2 residuals (the default), HC3 and
    HC0."""
    dose, change, never = _treated("wave")
    y = change - never.mean()
    choice = choose_segments(dose, y, DRAWS, SEED, variance=cov_type.lower())
    draws = np.random.default_rng(SEED).normal(0.0, 1.0, (DRAWS, dose.size))
    points = np.linspace(dose.min(), dose.max(), 50)
    upto = max(choice.segments, choice.grid[-3])
    sup = np.max(
        [_direct(dose, y, s, points, draws, cov_type)[1] for s in choice.grid if s <= upto],
        axis=0,
    )
    expected = (
        np.quantile(sup, 0.95, method="lower") + np.log(np.log(choice.segments + 3)) * choice.theta
    )
    assert choice.band == pytest.approx(expected, rel=1e-8)
    assert choice.band_slope > 1.96


@pytest.mark.parametrize("variance", ["hc2", "hc3"])
def test_slope_standard_errors_are_statsmodels_hc(variance):
    """By default (hc2), and with hc3, ACRT(d)'s standard errors are statsmodels' HC2 / HC3
    ones of the chosen sieve's slope (1e-8), larger than contdid's HC0 ones."""
    dose, change, never = _treated("wave")
    grid = np.linspace(dose.min(), dose.max(), 50)
    options = {} if variance == "hc2" else {"sieve_variance": variance}
    res = _fit("wave", doses=tuple(grid), **options)
    segments = res.facts.sieve.segments
    draws = np.zeros((1, dose.size))
    slope_se, _ = _direct(dose, change - never.mean(), segments, grid, draws, variance.upper())
    table = res.table
    acrt_d = table[table["term"].str.startswith("ACRT at dose")]
    np.testing.assert_allclose(acrt_d["std_error"], slope_se, rtol=1e-8)
    assert res.facts.sieve.variance == variance
    assert (acrt_d["std_error"].to_numpy() > _ref("wave", "slope_se").to_numpy()).all()


def test_uniform_band_in_facts_and_report_line():
    res = _fit("guide")
    sieve = res.facts.sieve
    assert sieve.segments == 1 and sieve.segments_tried == [1, 2, 4, 8, 16, 32, 64, 128]
    table = res.table.set_index("term")
    first = sieve.uniform_band[0]
    row = table.loc[first["term"]]
    assert first["upper"] - row["estimate"] == pytest.approx(
        sieve.critical_value * row["std_error"], rel=1e-12
    )
    assert first["upper"] > row["ci_upper"]  # wider than the pointwise interval
    assert res.to_dict()["diagnostics"]["sieve"]["draws"] == DRAWS


def test_same_seed_same_band_other_seed_other_draws():
    a, b, c = _fit("wave"), _fit("wave"), _fit("wave", sieve_draws=499)
    assert a.facts.sieve.critical_value == b.facts.sieve.critical_value
    assert c.facts.sieve.critical_value != a.facts.sieve.critical_value


def test_refuses_more_than_two_periods():
    p = PANELS[PANELS["panel"] == "guide"]
    third = p[p["t"] == 2].assign(t=3)
    with pytest.raises(EstimationError, match=r"two periods.*has 3") as err:
        pe.continuous_did(
            pd.concat([p, third]),
            **COLUMNS,
            dose_method="cck",
        )
    assert "average each LA's periods" in err.value.fix


def test_refuses_few_treated_units():
    p = PANELS[PANELS["panel"] == "small"]
    keep = p["id"].isin(p.loc[p["G"] == 2, "id"].unique()[:40]) | (p["G"] == 0)
    with pytest.raises(
        EstimationError, match="observed in both periods and needs 50 or more; there are 40"
    ):
        pe.continuous_did(
            p[keep],
            **COLUMNS,
            dose_method="cck",
        )


def test_refuses_parametric_options():
    with pytest.raises(PathfinderError, match="no degree, covariates") as err:
        pe.continuous_did(
            PANELS[PANELS["panel"] == "guide"].assign(x=1.0),
            **COLUMNS,
            dose_method="cck",
            degree=2,
            covariates=("x",),
        )
    assert "dose_method: parametric" in str(err.value)


def test_design_file_runs_and_reports(tmp_path):
    """dose_method: cck in a design file: the same rows as the API with the run's seed, and the
    report names the chosen sieve and the uniform bands."""
    p = PANELS[PANELS["panel"] == "wave"].assign(id=lambda f: "LA" + f["id"].astype(str))
    treated = ", ".join(sorted(p.loc[p["G"] == 2, "id"].unique()))
    path = tmp_path / "cck.yaml"
    path.write_text(
        DESIGN.format(waves=f"  - {{wave: s2, start: 2, units: [{treated}]}}").replace(
            "{doses: [1.0, 2.0]}", "{doses: [1.0, 2.0], dose_method: cck}"
        )
    )
    ev = pe.evaluate(path, p.drop(columns=["G", "panel"]), seed=5)
    (run,) = ev.runs
    api = pe.continuous_did(
        p,
        **COLUMNS,
        doses=(1.0, 2.0),
        dose_method="cck",
        seed=5,
    )
    np.testing.assert_array_equal(run.result.table["estimate"], api.table["estimate"])
    assert run.result.facts.sieve == api.facts.sieve
    html = next(f for f in pe.report(ev, tmp_path / "out") if f.suffix == ".html").read_text()
    assert "a cubic B-spline with 2 segment(s), a number chosen from the data" in html
    assert "Uniform 95% bands" in html and "999 multiplier draws, seed 5" in html
    assert "use HC2 residuals, each divided by √(1 − its leverage) (chosen for 400 or more" in html


@pytest.mark.parametrize(("name", "expected"), [("small", "hc3"), ("wave", "hc2")])
def test_auto_residuals_follow_the_number_of_treated_units(name, expected):
    """sieve_variance auto (the default): HC3's residuals below 400 treated units (the small
    panel's 73), HC2's from 400 (the wave panel's 900), each the same fit as asking for it."""
    auto, named = _fit(name), _fit(name, sieve_variance=expected)
    assert (auto.facts.sieve.variance, auto.facts.sieve.variance_asked) == (expected, "auto")
    assert named.facts.sieve.variance_asked == expected
    pd.testing.assert_frame_equal(auto.table, named.table)
    assert residuals_for("auto", 399) == "hc3" and residuals_for("auto", 400) == "hc2"
    assert residuals_for("hc0", 50) == "hc0"


def _two_periods(dose: np.ndarray, change: np.ndarray) -> pd.DataFrame:
    """Treated units with these doses and outcome changes, and as many never-treated units
    with changes N(0, 1) (seeded)."""
    n = dose.size
    rest = np.random.default_rng(3).normal(size=n)
    ids = np.arange(2 * n)
    return pd.DataFrame(
        {
            "id": np.r_[ids, ids],
            "t": np.repeat([1, 2], 2 * n),
            "y": np.r_[np.zeros(2 * n), change, rest],
            "D": np.r_[dose, np.zeros(n), dose, np.zeros(n)],
            "G": np.r_[np.full(n, 2), np.zeros(n), np.full(n, 2), np.zeros(n)],
        }
    )


def test_tied_doses_limit_the_sieves_or_are_refused():
    """Whole-number doses: the sieves stop where quantile knots would repeat (20 values: up to
    4 segments here); 3 values or one leave fewer than two sieves, refused with a way out."""
    rng = np.random.default_rng(8)
    dose = rng.integers(1, 21, 300).astype(float)
    res = pe.continuous_did(
        _two_periods(dose, 0.3 * dose + rng.normal(size=300)), **COLUMNS, dose_method="cck"
    )
    grid = res.facts.sieve.segments_tried
    assert grid[0] == 1 and len(grid) >= 2
    knots = np.quantile(dose, np.linspace(0, 1, grid[-1] + 1))
    assert np.all(np.diff(knots) > 0)
    for values in (np.array([1.0, 2.0, 3.0]), np.array([2.0])):
        few = rng.choice(values, 300)
        with pytest.raises(EstimationError, match="distinct values") as err:
            pe.continuous_did(
                _two_periods(few, few + rng.normal(size=300)), **COLUMNS, dose_method="cck"
            )
        assert "dose_method: parametric" in err.value.fix


def test_band_is_the_sieves_own_whatever_the_rows_inference():
    """With inference pooled the rows' SEs change but the uniform band does not: it is the
    critical value times the influence-function SE the critical value was calibrated on."""
    default, pooled = _fit("wave"), _fit("wave", inference="pooled")
    assert pooled.inference.key == "pooled_panel"
    assert not np.allclose(default.table["std_error"], pooled.table["std_error"])
    assert pooled.facts.sieve.uniform_band == default.facts.sieve.uniform_band
    assert default.inference.key == "influence_function"


def test_doses_outside_the_treated_range_have_no_band():
    dose, _, _ = _treated("wave")
    res = _fit("wave", doses=(1.0, float(dose.max()) + 1.0))
    bands = {b["term"]: b for b in res.facts.sieve.uniform_band}
    outside = [b for b in bands.values() if b["lower"] is None]
    assert len(outside) == 2 and all(b["upper"] is None for b in outside)
    assert any("outside the doses of the treated units observed" in w for w in res.warnings)


def test_grid_for_large_samples_uses_the_ill_posedness_floor():
    """Above e¹⁰ treated units CCK's rule multiplies J√(log J) by (0.1 log n)⁴ > 1 (as
    moderndid's npiv_jhat_max): 100,000 units stop at 512 segments, not 1,024."""
    dose = np.random.default_rng(1).lognormal(0.0, 0.5, 100_000)
    assert _grid(dose)[0][-1] == 512
    assert _grid(dose[:20_000])[0][-1] == 512


def test_an_exact_curve_is_refused():
    dose = np.linspace(0.2, 3.0, 200)
    with pytest.raises(EstimationError, match="exact cubic"):
        choose_segments(dose, 0.1 + 2 * dose, DRAWS, SEED)


def test_a_far_out_dose_does_not_cost_the_fit_a_direction():
    """One dose a thousand times the others: the sieve fits stay least squares (the one-segment
    cubic's leverages sum to its 4 functions; statsmodels' OLS residuals) and the choice equals
    the one made from the dense design's SVD."""
    rng = np.random.default_rng(2)
    dose = np.r_[rng.uniform(0, 1, 199), 1000.0]
    change = 0.5 * dose / (1 + dose) + rng.normal(0, 0.3, 200)
    inner = np.r_[[dose.min()] * 4, [dose.max()] * 4]
    x = BSpline.design_matrix(dose, inner, 3).toarray()
    ols = sm.OLS(change, x).fit()
    sieve = sieve_fit(dose, change, np.linspace(dose.min(), dose.max(), 50), 1, "hc0")
    assert sieve.noise == pytest.approx(np.sqrt(np.mean(ols.resid**2)), rel=1e-8)
    hc0 = sm.OLS(change, x).fit(cov_type="HC0")
    at = BSpline.design_matrix(np.linspace(dose.min(), dose.max(), 50), inner, 3).toarray()
    se = np.sqrt(np.einsum("ij,jk,ik->i", at, hc0.cov_params(), at))
    np.testing.assert_allclose(np.sqrt((sieve.influence**2).sum(axis=1)), se, rtol=1e-6, atol=1e-8)


def test_tied_doses_are_said():
    rng = np.random.default_rng(4)
    dose = np.where(rng.uniform(size=200) < 0.4, 3.0, rng.uniform(0.2, 3.0, 200).round(3))
    res = pe.continuous_did(
        _two_periods(dose, dose + rng.normal(size=200)), **COLUMNS, dose_method="cck"
    )
    assert res.facts.sieve.segments_tried == [1, 2]
    assert any("forced to one segment" in w for w in res.warnings)
