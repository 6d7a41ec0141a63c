"""Variances of rounding: rows whose every cell is fitted exactly have no standard error, and
ordinary rows keep theirs whatever the fixed effects absorb (found in review of 3bcb66e)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import pathfinder_eval as pe
from did_helpers import wide_frame
from pathfinder_eval.errors import EstimationError
from pathfinder_eval.inference.cluster import wald_test
from pathfinder_eval.settings import Inference

KW = {"outcome": "y", "unit": "unit", "time": "year", "first_treated": "first"}


def staggered(seed: int = 0, level_sd: float = 0.0) -> pd.DataFrame:
    """12 units × 6 years, cohorts 2014 and 2015 of two units each, N(0, 1) noise, plus a
    constant per unit of sd `level_sd` (absorbed exactly by the unit effects)."""
    rng = np.random.default_rng(seed)
    first = {"u00": 2014, "u01": 2014, "u02": 2015, "u03": 2015}
    levels = np.random.default_rng(99).normal(0, level_sd, 12) if level_sd else np.zeros(12)
    rows = [
        {"unit": f"u{i:02d}", "year": 2010 + t, "first": first.get(f"u{i:02d}", 0)}
        | {"y": levels[i] + 0.2 * t + rng.normal()}
        for i in range(12)
        for t in range(1, 7)
    ]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("estimator", ["event_study", "sun_abraham", "etwfe", "two_stage"])
def test_unit_levels_the_effects_absorb_leave_every_standard_error(estimator):
    """A constant of sd 1e5 per unit changes no estimate or variance, but on the outcomes'
    variance the vacant-row line rose with it and blanked 1–4 ordinary rows per estimator."""
    fit = getattr(pe, estimator)
    base = fit(staggered(), **KW, inference="cluster_robust")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        shifted = fit(staggered(level_sd=1e5), **KW, inference="cluster_robust")
    se = shifted.table["std_error"].to_numpy(float)
    assert np.isfinite(se).all() and (se > 0.1).all()
    np.testing.assert_allclose(se, base.table["std_error"], rtol=1e-6)


def test_poisson_rows_of_small_and_large_units_keep_their_standard_errors():
    """Counts near 1e3 in the treated LAs and 1e7 in the comparisons: the counts' variance is
    about population, not noise, and blanked every row of this ordinary panel; the residual
    scale keeps them (CR1 SEs 0.005–0.022 against a spread of 0.012–0.023 over redraws)."""
    pops = {"a1": 1e4, "a2": 1.5e4, "b1": 1.2e4, "b2": 0.8e4, "c1": 1e8, "c2": 6e7, "c3": 8e7}
    first = {"a1": 2014, "a2": 2014, "b1": 2015, "b2": 2015}
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        [
            {"unit": u, "year": 2010 + p, "pop": pops[u], "first": first.get(u, 0)}
            | {"n": float(rng.poisson(pops[u] * 0.1 * np.exp(0.02 * p)))}
            for u in pops
            for p in range(1, 7)
        ]
    )
    res = pe.etwfe(
        frame,
        **{**KW, "outcome": "rate"},
        counts="n",
        population="pop",
        family="poisson",
        inference="cluster_robust",
    )
    se = res.table["std_error"].to_numpy(float)
    assert np.isfinite(se).all() and (se > 1e-3).all()
    assert not [w for w in res.warnings if "no standard error" in w]


def test_a_fit_exact_everywhere_has_no_standard_errors():
    """Three units, three years, every cell fitted exactly: the residuals themselves are
    rounding (mean square 4e-34), so a line relative to them alone let SEs of 3e-17 through;
    the floor at rounding of the outcomes' size blanks them (found by fuzzing, seed 11)."""
    nan = np.nan
    frame = wide_frame(
        {"u0": [nan, -1.75, 0.21], "u1": [-0.46, nan, 0.90], "u2": [0.62, 0.10, 1.56]},
        {"u2": 2012},
    )
    for estimator in ("two_stage", "etwfe"):
        res = getattr(pe, estimator)(frame, **KW, inference="cluster_robust")
        assert res.table["std_error"].isna().all(), estimator


def test_static_twfe_on_cells_fitted_exactly_has_no_standard_error():
    """u2 is the only treated unit and u1 misses 2011: TWFE's ATT rests on cells the unit and
    period effects fit exactly. CR1 read SE 5e-16, p = 2e-31 (whatever u2's outcomes), the
    wild bootstrap studentized by it, and the default CR2 blanked it without a word."""
    nan = np.nan
    frame = wide_frame(
        {"u0": [-1.72, 1.13, -0.26], "u1": [nan, -0.45, 0.74], "u2": [-0.58, 0.94, -0.01]},
        {"u2": 2012},
    )
    for method, key in (
        ("default", "cr2"),
        ("cluster_robust", "cr1"),
        ("wild_bootstrap", "wild_bootstrap"),
    ):
        res = pe.twfe(frame, **KW, inference=Inference(method=method, draws=99))
        assert res.inference.key == key
        row = res.table.iloc[0]
        assert np.isnan([row["std_error"], row["p_value"], row["ci_lower"]]).all(), method
        assert res.warnings[-1].startswith("ATT (TWFE): no standard error or interval.")


def test_a_dose_line_through_two_treated_units_has_no_acrt_standard_error():
    """Two treated LAs at doses 1 and 2 and a degree-1 curve: the line passes through both, so
    the ACRT rows' influence functions are rounding (SE 5e-16, p = 0, and the dose pre-trend
    F = 3e32); ATT rows, which rest on the comparisons too, keep theirs."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(22):
        first, dose = (2014, [1.0, 2.0][i - 20]) if i >= 20 else (0, 0.0)
        a = rng.normal()
        for p in range(1, 7):
            rows.append(
                {"unit": f"u{i}", "year": 2010 + p, "first": first, "dose": dose}
                | {"y": a + 0.2 * p + rng.normal()}
            )
    res = pe.continuous_did(
        pd.DataFrame(rows), **KW, dose="dose", degree=1, inference="cluster_robust"
    )
    table = res.table.set_index("term")
    acrt = table.index.str.startswith("ACRT")
    assert acrt.sum() >= 2 and table.loc[acrt, "std_error"].isna().all()
    assert (table.loc[table.index.str.startswith("event time"), "std_error"] > 0.1).all()
    assert res.facts.dose_pretrend_test is None and res.facts.pretrend_test is not None
    assert any("no standard error or interval" in w for w in res.warnings)


def test_wald_test_on_a_singular_covariance_counts_its_rank():
    """A lead covariance of rank 1 in 2 dimensions up to rounding (one lead fitted exactly):
    the test is on the direction with variance, q = 1; pinv kept the rounding direction and
    read F ≈ 1e15. A regular covariance gives bᵀV⁻¹b / q as before."""
    rotation = np.array([[0.6, -0.8], [0.8, 0.6]])
    vcov = rotation @ np.diag([0.26, 5e-17]) @ rotation.T
    b = np.array([2.0, -1.0])
    test = wald_test(b, vcov, 2.0)
    assert test["df_num"] == 1.0
    assert test["statistic"] == pytest.approx((rotation[:, 0] @ b) ** 2 / 0.26, rel=1e-9)
    regular = np.array([[1.0, 0.3], [0.3, 2.0]])
    test = wald_test(b, regular, np.inf)
    assert test["df_num"] == 2.0
    assert test["statistic"] == pytest.approx(b @ np.linalg.solve(regular, b) / 2, rel=1e-12)


def test_tiny_panels_without_a_residual_or_an_event_time_are_refused():
    """ETWFE with as many coefficients as cells divided by zero for CR1's factor, and an event
    study whose only treated unit is seen at the reference period alone reduced an empty
    array (found in review by fuzzing tiny panels): both now refuse with what to do."""
    nan = np.nan
    saturated = wide_frame(
        {"u0": [nan, nan, 0.57], "u1": [nan, -1.85, -0.10], "u2": [-0.14, nan, 0.83]},
        {"u1": 2012, "u2": 2012},
    )
    with pytest.raises(EstimationError, match="no residual variation"):
        pe.etwfe(saturated, **KW, inference="cluster_robust")
    reference_only = wide_frame(
        {"u0": [0.17, -1.30, 1.24], "u1": [-0.32, -0.84, 0.78], "u2": [1.60, nan, nan]},
        {"u2": 2012},
    )
    with pytest.raises(EstimationError, match="other than the reference"):
        pe.event_study(reference_only, **KW)
