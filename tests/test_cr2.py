"""CR2 with Satterthwaite degrees of freedom against R clubSandwich
(tests/reference/r_clubsandwich_twfe) and against a dense full-dummy-design oracle."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import linalg

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.inference.cr2 import cr2_inference, two_way_projection
from pathfinder_eval.inference.wild_bootstrap import two_way_demean

REF = Path(__file__).resolve().parent / "reference"
# Same algebra as clubSandwich, computed in factored form: only floating-point rounding differs
# (R's values are written with 15 significant digits).
SE_REL_TOL = 1e-8
DF_REL_TOL = 1e-6
# Factored versus dense computation of the same matrices in double precision.
ORACLE_REL_TOL = 1e-9


@pytest.fixture(scope="module")
def reference():
    return pd.read_csv(REF / "r_clubsandwich_twfe" / "values.csv").set_index(["data", "term"])


def _codes(d):
    return pd.factorize(d["unit"])[0], pd.factorize(d["period"])[0]


def _with_treated(d):
    return d.assign(treated=((d["cohort"] > 0) & (d["period"] >= d["cohort"])).astype(float))


def _check(res, ref, j=0):
    assert res.estimate[j] == pytest.approx(ref["estimate"], rel=SE_REL_TOL)
    assert res.std_error[j] == pytest.approx(ref["std_error"], rel=SE_REL_TOL)
    assert res.df[j] == pytest.approx(ref["df"], rel=DF_REL_TOL)
    assert res.p_value[j] == pytest.approx(ref["p_value"], rel=DF_REL_TOL)


def test_twfe_matches_clubsandwich_on_the_sandwich_panel(reference):
    d = _with_treated(pd.read_csv(REF / "r_sandwich_twfe" / "panel.csv"))
    res = cr2_inference(d["y"], d["treated"], *_codes(d))
    _check(res, reference.loc[("sandwich_panel", "treated")])


def test_event_study_and_contrast_match_clubsandwich(reference):
    d = pd.read_csv(REF / "r_sandwich_twfe" / "panel.csv")
    rel = np.where(d["cohort"] > 0, np.clip(d["period"] - d["cohort"], -3, 2), np.nan)
    events = (-3, -2, 0, 1, 2)
    x = np.column_stack([(rel == e).astype(float) for e in events])
    contrasts = np.vstack([np.eye(5), [0, 0, 1 / 3, 1 / 3, 1 / 3]])
    res = cr2_inference(d["y"], x, *_codes(d), contrasts=contrasts)
    for j, e in enumerate(events):
        _check(res, reference.loc[("sandwich_panel_es", f"e{e + 10}")], j)
    _check(res, reference.loc[("sandwich_panel_es", "mean_post")], 5)


@pytest.mark.parametrize("data", ["3of30", "3of30_unbalanced"])
def test_three_treated_of_thirty_matches_clubsandwich(reference, data):
    d = _with_treated(pd.read_csv(REF / "r_clubsandwich_twfe" / "panel_3of30.csv"))
    if data.endswith("unbalanced"):
        d = d[d["keep"] == 1]
    res = cr2_inference(d["y"], d["treated"], *_codes(d))
    _check(res, reference.loc[(data, "treated")])


def dense_cr2(y, x, units, periods, clusters, c):
    """Oracle: the full dummy design, n × n hat matrix, CR2 and Satterthwaite df by definition
    (Bell & McCaffrey 2002; Pustejovsky & Tipton 2018 with Φ = I)."""
    z = np.column_stack([x, np.eye(units.max() + 1)[units], np.eye(periods.max() + 1)[periods]])
    zinv = np.linalg.pinv(z.T @ z)
    m = np.eye(len(y)) - z @ zinv @ z.T
    e = m @ y
    bread = (zinv @ z.T)[: x.shape[1]]  # rows of (ZᵀZ)⁺Zᵀ for β
    meat_rows, u = [], []
    for g in range(clusters.max() + 1):
        r = np.flatnonzero(clusters == g)
        val, vec = np.linalg.eigh(m[np.ix_(r, r)])
        a = vec @ np.diag(np.where(val > 1e-12, 1 / np.sqrt(np.abs(val)), 0.0)) @ vec.T
        meat_rows.append(bread[:, r] @ a @ e[r])
        pg = a @ bread[:, r].T @ c
        ug = np.zeros(len(y))
        ug[r] = pg
        u.append(m @ ug)
    s = np.array(meat_rows)
    vcov = s.T @ s
    u = np.array(u)
    omega = u @ u.T
    return vcov, np.trace(omega) ** 2 / np.sum(omega**2)


def test_factored_algebra_equals_dense_oracle_unbalanced_with_region_clusters():
    rng = np.random.default_rng(11)
    n_u, n_t = 14, 6
    units = np.repeat(np.arange(n_u), n_t)
    periods = np.tile(np.arange(n_t), n_u)
    keep = np.ones(len(units), bool)
    keep[rng.choice(len(units), 9, replace=False)] = False
    units, periods = units[keep], periods[keep]
    x = np.column_stack([(units < 4) & (periods >= 3), rng.normal(size=len(units))]).astype(float)
    y = rng.normal(size=n_u)[units] + rng.normal(size=n_t)[periods] + rng.normal(size=len(units))
    regions = units // 2  # clusters of two units
    c = np.array([0.7, -0.4])
    res = cr2_inference(y, x, units, periods, clusters=regions, contrasts=c[None, :])
    vcov, df = dense_cr2(y, x, units, periods, regions, c)
    scale = np.abs(vcov).max()  # an absolute floor at the matrix's scale for near-zero covariances
    np.testing.assert_allclose(res.vcov, vcov, rtol=ORACLE_REL_TOL, atol=ORACLE_REL_TOL * scale)
    assert res.df[0] == pytest.approx(df, rel=ORACLE_REL_TOL)
    assert res.n_clusters == 7


def test_dropping_period_effects_from_the_adjustment_would_be_wrong():
    """CR2 from the two-way demeaned design alone (adjustments from Ẍ only) differs from the
    full-design CR2: period effects are not nested in unit clusters."""
    d = _with_treated(pd.read_csv(REF / "r_clubsandwich_twfe" / "panel_3of30.csv"))
    units, periods = _codes(d)
    res = cr2_inference(d["y"], d["treated"], units, periods)
    xy = two_way_projection(units, periods).residuals(d[["treated", "y"]].to_numpy())
    xt, yt = xy[:, 0], xy[:, 1]
    b = 1 / (xt @ xt)
    e = yt - xt * (b * (xt @ yt))
    naive = 0.0
    for g in range(units.max() + 1):
        r = units == g
        h = np.eye(r.sum()) - b * np.outer(xt[r], xt[r])
        naive += (xt[r] @ linalg.sqrtm(np.linalg.inv(h)).real @ e[r]) ** 2
    assert abs(np.sqrt(naive) * b / res.std_error[0] - 1) > 1e-3


def test_errors_are_user_facing():
    units = np.repeat(np.arange(4), 3)
    periods = np.tile(np.arange(3), 4)
    collinear = (periods >= 1).astype(float)  # everyone treated at once: no comparison
    with pytest.raises(EstimationError, match="collinear"):
        cr2_inference(np.arange(12.0), collinear, units, periods)
    x = ((units == 0) & (periods >= 1)).astype(float)
    with pytest.raises(EstimationError, match="inside one cluster"):
        cr2_inference(np.arange(12.0), x, units, periods, clusters=periods)
    with pytest.raises(EstimationError, match="columns"):
        cr2_inference(np.arange(12.0), x, units, periods, contrasts=np.ones((1, 2)))


@pytest.mark.parametrize("drop", [0, 40])
def test_projection_is_exact_on_a_pilot_sized_panel(drop):
    """Regression test: the pseudo-inverse of D̃ᵀD̃ must drop its rounding-level null
    eigenvalue (150 × 13 is where the default cut-off failed)."""
    rng = np.random.default_rng(drop)
    units = np.repeat(np.arange(150), 13)
    periods = np.tile(np.arange(13), 150)
    keep = np.ones(len(units), bool)
    keep[rng.choice(len(units), drop, replace=False)] = False
    units, periods = units[keep], periods[keep]
    v = rng.normal(size=(len(units), 2))
    proj = two_way_projection(units, periods)
    r = proj.residuals(v)
    np.testing.assert_allclose(proj.residuals(r), r, atol=1e-10)
    np.testing.assert_allclose(r, two_way_demean(v, units, periods), atol=1e-9)


def test_pilot_sized_panel_is_fast():
    rng = np.random.default_rng(5)
    units = np.repeat(np.arange(150), 13)
    periods = np.tile(np.arange(13), 150)
    x = ((units < 7) & (periods >= 8)).astype(float)
    y = rng.normal(size=len(units))
    tic = time.perf_counter()
    res = cr2_inference(y, x, units, periods)
    assert time.perf_counter() - tic < 2.0
    assert 1.0 < res.df[0] < 20.0


def test_a_contrast_with_no_variance_has_no_df():
    """A zero contrast beside a real one: its Ω is 0, and (tr Ω)² / ‖Ω‖²_F divided 0 by 0
    with a RuntimeWarning (found by fuzzing Sun & Abraham); now NaN, the real row untouched."""
    rng = np.random.default_rng(3)
    units, periods = np.repeat(np.arange(6), 4), np.tile(np.arange(4), 6)
    x = ((units < 2) & (periods >= 2)).astype(float)[:, None]
    y = rng.normal(size=24) + x[:, 0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = cr2_inference(y, x, units, periods, contrasts=np.array([[1.0], [0.0]]))
    alone = cr2_inference(y, x, units, periods)
    assert np.isnan(res.df[1]) and res.df[0] == pytest.approx(alone.df[0], rel=1e-12)


def _one_treated_null(seed: int, treated: int) -> tuple[np.ndarray, ...]:
    """30 units × 10 periods, `treated` units treated from period 5, no effect."""
    rng = np.random.default_rng(seed)
    units, periods = np.repeat(np.arange(30), 10), np.tile(np.arange(10), 30)
    d = ((units < treated) & (periods >= 5)).astype(float)
    y = rng.normal(size=30)[units] + 0.3 * periods + rng.normal(scale=0.5, size=300)
    return y, d, units, periods


def test_one_treated_unit_has_no_cr2_variance():
    """With one treated unit its treated cells are fitted exactly (M_gg's second zero
    eigenvalue), so CR2's pseudo-inverse dropped its noise: SE 0.060 against the 0.29 the
    pooled variance gives, 'df 28', and a true null rejected 68% of the time at 5% (found in
    review). Now no SE, df or p; with two treated units the noise is measured and the test is
    conservative (df about 1)."""
    rejected = 0
    for seed in range(40):
        one = cr2_inference(*_one_treated_null(seed, 1))
        assert np.isnan(one.std_error[0]) and np.isnan(one.df[0]) and np.isnan(one.p_value[0])
        two = cr2_inference(*_one_treated_null(seed, 2))
        assert two.std_error[0] > 0 and 0.9 < two.df[0] < 1.6
        rejected += two.p_value[0] < 0.05
    assert rejected <= 2  # 40 nulls: about 1% rejected (review: 0.7% of 200)
