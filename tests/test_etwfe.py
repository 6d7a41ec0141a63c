"""Extended TWFE (estimators/did/etwfe.py): etwfe 0.6.2's own pinned `emfx` numbers on mpdta
(tests/reference/etwfe_mpdta: linear with not-yet- and never-treated controls, Poisson on the
response and link scales), pyfixest's unit-effects fit, and closed forms (the imputation
estimator's equivalence, invariances)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pathfinder_eval as pe
from did_helpers import MPDTA, regional_panel
from pathfinder_eval.errors import EstimationError, ExcludedRowsWarning
from pathfinder_eval.estimators.did.etwfe import etwfe, etwfe_effects, outcome_weights
from pathfinder_eval.estimators.did.etwfe_estimator import Etwfe
from pathfinder_eval.estimators.did.imputation import Imputation, imputation
from pathfinder_eval.settings import Inference

REF = Path(__file__).parent / "reference" / "etwfe_mpdta"


@pytest.fixture(scope="module")
def mpdta():
    data = pd.read_csv(MPDTA)
    cohort = data["first.treat"].where(data["first.treat"] > 0).to_numpy(float)
    args = (data["countyreal"].to_numpy(), data["year"].to_numpy(), cohort)
    return data, args, data[["lpop"]].to_numpy()


def _effects(fit, kind, **kw):
    e = etwfe_effects(fit, kind, **kw)
    return dict(zip(e.labels, zip(e.estimate, np.sqrt(np.diag(e.vcov)), strict=True), strict=True))


def test_linear_and_poisson_match_etwfe_emfx(mpdta):
    """Estimates within 1e-7 relative, linear SEs within 1e-6 and Poisson SEs within 2e-5
    (largest seen: 6e-7 and 1.0e-5; etwfe's own test tolerance is 5e-4). The SE differences
    are marginaleffects' numerical derivatives and fepois's convergence."""
    data, args, x = mpdta
    ref = pd.read_csv(REF / "values.csv", dtype={"label": str})
    fits = {
        "notyet": etwfe(data["lemp"], *args, x),
        "never": etwfe(data["lemp"], *args, x, control="never"),
        "poisson": etwfe(np.exp(data["lemp"]), *args, x, family="poisson"),
    }
    checked = 0
    for (model, kind), rows in ref.groupby(["model", "type"]):
        scale = "link" if kind == "event_link" else "response"
        got = _effects(fits[model], kind.removesuffix("_link"), scale=scale, post_only=False)
        for r in rows.itertuples():
            est, se = got[r.label]
            se_tol = 2e-5 if model == "poisson" else 1e-6
            assert est == pytest.approx(r.estimate, rel=1e-7), (model, kind, r.label)
            assert se == pytest.approx(r.std_error, rel=se_tol), (model, kind, r.label)
            checked += 1
    assert checked == 25


@pytest.mark.parametrize(("family", "tol"), [("linear", 1e-8), ("poisson", 1e-6)])
def test_unit_effects_match_pyfixest(mpdta, family, tol):
    """etwfe's `ivar`: unit effects absorb lpop's main and cohort terms; the cell coefficients
    and CR1 SEs (unit effects nested in clusters, not counted) equal pyfixest's feols to 1e-8
    and fepois to 1e-6 (its iterative fit's convergence)."""
    data, args, x = mpdta
    y = data["lemp"] if family == "linear" else np.exp(data["lemp"])
    fit = etwfe(y, *args, x, family=family, unit_effects=True)
    ref = pd.read_csv(REF / "unit_effects.csv").query("model == @family")
    assert len(ref) == 7
    for r in ref.itertuples():
        _, g, t = r.term.split("_")
        j = fit.names.index(f"D[{g},{t}]")
        assert fit.coef[j] == pytest.approx(r.estimate, rel=tol)
        assert np.sqrt(fit.vcov[j, j]) == pytest.approx(r.std_error, rel=tol)


def test_without_covariates_it_is_the_imputation_estimator(mpdta):
    """Wooldridge (2021): linear ETWFE with not-yet-treated controls equals Borusyak, Jaravel
    & Spiess's imputation estimator, here for the simple ATT and every event time."""
    data, args, _ = mpdta
    fit = etwfe_effects(etwfe(data["lemp"], *args), "event")
    simple = etwfe_effects(etwfe(data["lemp"], *args), "simple")
    bjs = imputation(data["lemp"].to_numpy(float), *args)
    assert simple.estimate[0] == pytest.approx(bjs.estimate[0], abs=1e-12)
    np.testing.assert_allclose(fit.estimate, bjs.estimate[1:], atol=1e-12)


def test_unit_weights_reproduce_the_estimate(mpdta):
    """The linear fit's coefficients as weights on the outcomes: the aggregated effect is the
    gradient times those weights times y (what the pooled variance reads)."""
    data, args, x = mpdta
    fit = etwfe(data["lemp"], *args, x)
    eff = etwfe_effects(fit, "event")
    np.testing.assert_allclose(
        outcome_weights(fit, eff.gradient) @ data["lemp"].to_numpy(), eff.estimate, atol=1e-12
    )


def test_poisson_invariances(mpdta):
    """Scaling the counts by c scales response-scale effects by c and leaves log ratios; with
    an offset log(c) as well (a population c times larger) the coefficients are unchanged."""
    data, args, x = mpdta
    y = np.exp(data["lemp"].to_numpy())
    base = etwfe(y, *args, x, family="poisson")
    scaled = etwfe(3.0 * y, *args, x, family="poisson")
    for scale, factor in (("response", 3.0), ("link", 1.0)):
        a = etwfe_effects(base, "event", scale=scale)
        b = etwfe_effects(scaled, "event", scale=scale)
        np.testing.assert_allclose(b.estimate, factor * a.estimate, rtol=1e-8)
        np.testing.assert_allclose(np.diag(b.vcov), factor**2 * np.diag(a.vcov), rtol=1e-6)
    offset = etwfe(3.0 * y, *args, x, family="poisson", offset=np.full(len(y), np.log(3.0)))
    np.testing.assert_allclose(offset.coef, base.coef, rtol=1e-7, atol=1e-9)


def test_never_treated_controls_give_placebo_rows(mpdta):
    """With never-treated controls the cells before treatment are estimated too (placebo
    event times), the period before each cohort's start is the reference, and the post rows
    differ from the not-yet-treated fit."""
    data, args, _ = mpdta
    fit = etwfe(data["lemp"], *args, control="never")
    e = etwfe_effects(fit, "event", post_only=False)
    assert e.labels == ("-4", "-3", "-2", "0", "1", "2", "3")
    post = etwfe_effects(fit, "event")
    assert post.labels == ("0", "1", "2", "3")
    assert not np.allclose(
        post.estimate, etwfe_effects(etwfe(data["lemp"], *args), "event").estimate
    )


def test_bad_designs_are_refused(mpdta):
    data, (unit, period, cohort), _ = mpdta
    with pytest.raises(EstimationError, match="no unit is ever treated"):
        etwfe(data["lemp"], unit, period, np.full(len(unit), np.nan))
    with pytest.raises(EstimationError, match="every unit is treated"):
        etwfe(data["lemp"], unit, period, np.nan_to_num(cohort, nan=2004.0), control="never")
    with pytest.raises(EstimationError, match="collinear"):
        etwfe(data["lemp"], unit, period, cohort, np.ones((len(unit), 1)))
    with pytest.raises(EstimationError, match="counts"):
        etwfe(-np.exp(data["lemp"]), unit, period, cohort, family="poisson")


def test_fit_is_a_frozen_record(mpdta):
    data, args, _ = mpdta
    fit = etwfe(data["lemp"], *args)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fit.coef = None  # type: ignore[misc]


# ------------------------------------------------------------------ on a pilot panel


def test_on_a_panel_it_is_the_imputation_estimator_with_the_same_inference(tmp_path):
    """5 treated LAs: both default to the pooled variance, and as the two estimators are the
    same linear function of the outcomes, estimates and standard errors agree to 1e-10."""
    panel = regional_panel(tmp_path, [0, 17, 33, 50, 71], shock_sd=0.5, seed=3)
    ours = Etwfe().fit(panel, "y", "a")
    bjs = Imputation().fit(panel, "y", "a")
    assert ours.inference.key == bjs.inference.key == "pooled_panel"
    np.testing.assert_allclose(ours.table["estimate"], bjs.table["estimate"], rtol=1e-10)
    np.testing.assert_allclose(ours.table["std_error"], bjs.table["std_error"], rtol=1e-10)
    assert list(ours.table["term"]) == [
        "ATT (all treated cells)",
        "event time 0",
        "event time 1",
        "event time 2",
    ]


def test_poisson_rows_are_log_rate_ratios(tmp_path):
    """Counts with a 20% higher rate in treated cells: the simple ATT's log rate ratio is
    within 2.5 SEs of log 1.2, its rate ratio and interval are the exponentials, and the
    inference is CR1 with t(G−1)."""
    panel = regional_panel(tmp_path, list(range(0, 120, 6)), shock_sd=0.0, seed=4)
    cells = panel.cells
    boost = (cells["treated"] == 1).to_numpy()
    cells.loc[boost, "numerator"] = np.round(cells.loc[boost, "numerator"] * 1.2)
    res = Etwfe(family="poisson").fit(panel, "y", "a")
    top = res.table.iloc[0]
    assert top["term"] == "log rate ratio (all treated cells)"
    assert abs(top["estimate"] - np.log(1.2)) < 2.5 * top["std_error"]
    assert top["df"] == res.n_units - 1 and res.inference.key == "cr1"
    ratio = res.facts.rate_ratios[0]
    assert ratio["rate_ratio"] == pytest.approx(np.exp(top["estimate"]))
    assert ratio["ci"][0] == pytest.approx(np.exp(top["ci_lower"]))


def test_never_treated_controls_add_placebo_rows(tmp_path):
    panel = regional_panel(tmp_path, [0, 17, 33, 50], shock_sd=0.0, seed=2)
    res = Etwfe(control_group="never_treated").fit(panel, "y", "a")
    events = res.table["event_time"].dropna().to_list()
    assert min(events) < -1 and -1 not in events and max(events) == 2


def test_panel_errors_name_the_option(tmp_path):
    panel = regional_panel(tmp_path, [0, 17, 33], shock_sd=0.0)
    with pytest.raises(EstimationError, match="neither a column") as err:
        Etwfe(covariates=("nope",)).fit(panel, "y", "a")
    assert err.value.where == "analyses[a].options.covariates"
    panel.cells["numerator"] = np.nan
    with pytest.raises(EstimationError, match="needs a count"):
        Etwfe(family="poisson").fit(panel, "y", "a")


def test_api_poisson_with_counts_and_population_is_the_core_fit(mpdta):
    """`pe.etwfe(..., counts=, population=, family="poisson")` is the core Poisson fit with
    unit effects and offset log(population): the same log rate ratio to 1e-10."""
    import pathfinder_eval as pe

    data, (unit, period, cohort), _ = mpdta
    frame = data.assign(
        ft=data["first.treat"].where(data["first.treat"] > 0),
        emp=np.round(np.exp(data["lemp"])),
        pop=np.round(np.exp(data["lpop"]) * 1000),
    )
    res = pe.etwfe(
        frame,
        outcome="rate",
        unit="countyreal",
        time="year",
        first_treated="ft",
        counts="emp",
        population="pop",
        family="poisson",
    )
    core = etwfe(
        frame["emp"],
        unit,
        period,
        cohort,
        family="poisson",
        offset=np.log(frame["pop"].to_numpy()),
        unit_effects=True,
    )
    simple = etwfe_effects(core, "simple", scale="link")
    assert res.table["estimate"].iloc[0] == pytest.approx(simple.estimate[0], rel=1e-10)
    assert res.table["std_error"].iloc[0] == pytest.approx(np.sqrt(simple.vcov[0, 0]), rel=1e-10)


def test_api_covariates_are_data_columns(mpdta):
    """Covariates named in the API call are read from the frame (as extra outcomes of the
    design); a missing one is a DataError naming the argument."""
    import pathfinder_eval as pe
    from pathfinder_eval.errors import DataError

    data, args, x = mpdta
    kw = dict(outcome="lemp", unit="countyreal", time="year", first_treated="first.treat")
    res = pe.etwfe(data, covariates=("lpop",), **kw)
    core = etwfe_effects(etwfe(data["lemp"], *args, x, unit_effects=True), "simple")
    assert res.table["estimate"].iloc[0] == pytest.approx(core.estimate[0], rel=1e-8)
    with pytest.raises(DataError) as err:
        pe.etwfe(data, covariates=("lpop", "nope"), **kw)
    assert err.value.where == "argument covariates[1]"


def test_poisson_first_order_weights_are_the_derivatives(tmp_path):
    """The Poisson fit's weights on the counts (what its pooled variance reads) are the
    derivatives of the log rate ratio in each count: a finite difference of the refitted
    estimate to 1e-4, for treated and comparison cells."""
    panel = regional_panel(tmp_path, [0, 17, 33, 50, 66], shock_sd=0.0, seed=6)
    cells = panel.cells.sort_values(["unit", "period"]).reset_index(drop=True)
    args = (
        cells["unit"].to_numpy(),
        cells["period"].to_numpy(float),
        cells["cohort"].to_numpy(float),
    )
    offset = np.log(cells["denominator"].to_numpy(float))
    counts = cells["numerator"].to_numpy(float)

    def att(y):
        fit = etwfe(y, *args, family="poisson", offset=offset, unit_effects=True)
        return fit, etwfe_effects(fit, "simple", scale="link")

    fit, simple = att(counts)
    w = outcome_weights(fit, simple.gradient)[0]
    treated = np.flatnonzero((cells["treated"] == 1).to_numpy())
    for j in (treated[0], treated[-1], 3, len(counts) - 2):
        step = 1e-3
        bumped = counts.copy()
        bumped[j] += step
        slope = (att(bumped)[1].estimate[0] - simple.estimate[0]) / step
        assert slope == pytest.approx(w[j], rel=1e-4, abs=1e-9)


def test_poisson_default_inference_with_few_treated_is_the_pooled_variance(tmp_path):
    """Five treated LAs: the Poisson fit's default is the comparison-pooled variance of its
    first-order weights on the rates (t, Satterthwaite df), not CR1; cluster_robust is CR1
    with t(G−1); CR2 and the cohort-stratified variance do not exist for it."""
    panel = regional_panel(tmp_path, [0, 17, 33, 50, 66], shock_sd=0.5, seed=6)
    res = Etwfe(family="poisson").fit(panel, "y", "a")
    assert res.inference.key == "pooled_panel" and res.inference.chosen_by_default
    assert "first-order weights" in res.inference.label
    assert "only 5 units are treated" in res.inference.reason
    cr1 = Etwfe(family="poisson", inference=Inference(method="cluster_robust")).fit(panel, "y", "a")
    assert cr1.inference.key == "cr1" and cr1.table["df"].iloc[0] == cr1.n_units - 1
    np.testing.assert_array_equal(res.table["estimate"], cr1.table["estimate"])
    for method in ("cr2", "cohort_stratified"):
        with pytest.raises(EstimationError, match="not available for the Poisson fit"):
            Etwfe(family="poisson", inference=Inference(method=method)).fit(panel, "y", "a")


def test_a_unit_never_untreated_is_left_out_so_etwfe_and_imputation_agree():
    """u1 (cohort 3) has no rows before its start. Imputation cannot impute its cells and
    ETWFE estimated them only through its cohort's shared effects, so the two differed (and
    ETWFE once borrowed imputation's variance beside its own estimates, found by fuzzing).
    The panel now leaves such a unit out of both, counted: they agree, on 3 treated units."""
    rng = np.random.default_rng(5)
    start = {"u0": 3, "u1": 3, "u2": 4, "u3": 4}
    rows = [
        {"unit": f"u{i}", "t": t, "y": 0.3 * i + 0.2 * t + rng.normal(), "g": start.get(f"u{i}", 0)}
        for i in range(8)
        for t in range(1, 7)
        if not (i == 1 and t < 3)
    ]
    kw = {"outcome": "y", "unit": "unit", "time": "t", "first_treated": "g"}
    with pytest.warns(ExcludedRowsWarning, match="4 treated unit with no usable period"):
        ours = pe.etwfe(pd.DataFrame(rows), **kw)
    with pytest.warns(ExcludedRowsWarning):
        bjs = pe.imputation(pd.DataFrame(rows), **kw)
    assert ours.n_treated == bjs.n_treated == 3 and bjs.facts.dropped_treated_cells == 0
    np.testing.assert_allclose(ours.table["estimate"].iloc[0], bjs.table["estimate"].iloc[0],
                               rtol=1e-10)  # fmt: skip


def test_a_one_unit_cohort_with_a_covariate_matches_diff_diff():
    """A cohort of one county: its covariate interactions are collinear (no deviation from
    the cohort mean), so they are left out as fixest and diff-diff's WooldridgeDiD drop them,
    and the overall ATT and SE equal diff-diff's (tests/reference/diff_diff_etwfe_one_unit_
    cohort, script beside the values) to rounding. Before, the whole fit was refused."""
    ref_dir = Path(__file__).parent / "reference" / "diff_diff_etwfe_one_unit_cohort"
    ref = pd.read_csv(ref_dir / "values.csv").iloc[0]
    data = pd.read_csv(MPDTA)
    g04 = sorted(data.loc[data["first.treat"] == 2004, "countyreal"].unique())
    data = data[(data["first.treat"] != 2004) | (data["countyreal"] == g04[0])]  # the script's
    res = pe.etwfe(
        data,
        outcome="lemp",
        unit="countyreal",
        time="year",
        first_treated="first.treat",
        covariates=("lpop",),
        inference="cluster_robust",
    )
    row = res.table.iloc[0]
    assert row["estimate"] == pytest.approx(ref["estimate"], abs=1e-12)
    assert row["std_error"] == pytest.approx(ref["std_error"], rel=1e-10)
