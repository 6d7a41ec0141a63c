"""Callaway, Goodman-Bacon & Sant'Anna's DiD with a continuous dose
(estimators/did/continuous.py): two independent ports of R contdid (moderndid, diff-diff) on
three panels (tests/reference/cgbs_continuous_did, script beside the values), closed forms,
Callaway & Sant'Anna's aggregations, the design-file path and the errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import pathfinder_eval as pe
from pathfinder_eval.errors import DataError, EstimationError
from pathfinder_eval.estimators.did.continuous import continuous_did

REF = Path(__file__).parent / "reference" / "cgbs_continuous_did"
# Least squares by QR here, by lstsq or normal equations there: rounding only.
TOL = 1e-10
_VALUES = pd.read_csv(REF / "values.csv")
# the lowest-dose comparison is the estimator's option (not the engine's): tested on its own
LOWEST = sorted(_VALUES.loc[_VALUES["control"] == "lowestdose", "run"].unique())
RUNS = sorted(set(_VALUES["run"]) - set(LOWEST))


def _panel(name: str) -> pd.DataFrame:
    d = pd.read_csv(REF / "panels.csv")
    return d[d["panel"] == name].drop(columns="panel").reset_index(drop=True)


def _engine(
    d: pd.DataFrame, doses, degree: int, knots: int, control: str, covariates=(), method="dr"
):
    """The engine on a reference panel: the outcome matrix, starts as period indices, the
    covariates (units × periods × covariates)."""
    y = d.pivot(index="id", columns="t", values="y").to_numpy()
    unit = d.groupby("id").first()
    start = np.where(unit["G"] > 0, unit["G"] - 1, np.inf)
    x = [d.pivot(index="id", columns="t", values=c).to_numpy() for c in covariates]
    return continuous_did(
        y,
        start,
        unit["D"].to_numpy(),
        np.asarray(doses),
        degree,
        knots,
        control,
        x=np.stack(x, axis=2) if x else None,
        method=method,
    )


def _pick(fit, kind: str, dose: float, event_time: float) -> int:
    hit = fit.kind == kind
    if kind in ("att_d", "acrt_d"):
        hit &= np.isclose(fit.dose, dose)
    if kind in ("event", "acrt_event"):
        hit &= fit.event_time == event_time
    (j,) = np.flatnonzero(hit)
    return int(j)


@pytest.mark.parametrize("run", RUNS)
def test_matches_two_ports_of_contdid(run):
    """ATT^o, ACRT^o, the curves ATT(d), ACRT(d) and ACRT^o by event time from moderndid
    (cubic and quadratic B-splines with 0 to 2 interior knots, not-yet- and never-treated
    comparisons) and, where diff-diff's knot rule agrees (no interior knots), its estimates,
    analytic standard errors and event-study ATTs, all to 1e-10; with covariates (runs 5–7:
    diff-diff's outcome regression on the comparison units' base-period values, runs 8–10 its
    doubly robust estimator; contdid has none) diff-diff's alone. diff-diff's ACRT^o SE treats
    the doses as fixed, so it is compared only where the curve is a straight line (its slope
    does not vary over the doses); the closed-form test below checks ours."""
    v = pd.read_csv(REF / "values.csv")
    v = v[v["run"] == run]
    first = v.iloc[0]
    control = "not_yet_treated" if first["control"] == "notyettreated" else "never_treated"
    doses = np.sort(v.loc[v["kind"] == "att_d", "dose"].unique())
    covariates = str(first["covariates"]).split() if pd.notna(first["covariates"]) else []
    method = first["method"] if pd.notna(first["method"]) else "dr"
    fit = _engine(
        _panel(first["panel"]), doses, first["degree"], first["knots"], control, covariates, method
    )
    se = np.sqrt(np.diag(fit.vcov))
    checked = 0
    for _, r in v.iterrows():
        kind = r["kind"].removesuffix("_se")
        if r["kind"] == "acrt_se" and first["degree"] > 1:
            continue
        j = _pick(fit, kind, r["dose"], r["event_time"])
        mine = se[j] if r["kind"].endswith("_se") else fit.estimate[j]
        assert mine == pytest.approx(r["value"], rel=TOL, abs=TOL), (r["source"], r["kind"])
        checked += 1
    assert checked >= 8


@pytest.mark.parametrize("run", LOWEST)
def test_lowest_dose_comparison_matches_diff_diff(run):
    """control_group: lowest_dose (every LA treated at one date, a quarter at the lowest dose
    0.5): the estimates, analytic SEs (ACRT^o's only for a straight line, as above) and the
    event study equal diff-diff 3.13.0's lowest_dose to 1e-10; the LAs at the lowest dose are
    the comparison, not counted as treated."""
    v = _VALUES[_VALUES["run"] == run]
    first = v.iloc[0]
    doses = tuple(np.sort(v.loc[v["kind"] == "att_d", "dose"].unique()))
    res = pe.continuous_did(
        _panel(first["panel"]),
        outcome="y",
        unit="id",
        time="t",
        first_treated="G",
        dose="D",
        degree=int(first["degree"]),
        doses=doses,
        control_group="lowest_dose",
        inference="cluster_robust",
    )
    table = res.table.set_index("term")
    for _, r in v.iterrows():
        kind = r["kind"].removesuffix("_se")
        if r["kind"] == "acrt_se" and first["degree"] > 1:
            continue
        term = {
            "att": "ATT (average over the treated doses)",
            "acrt": "ACRT (average causal response per unit of dose)",
            "event": f"event time {r['event_time']:.0f}",
        }.get(kind, f"{'ATT' if kind == 'att_d' else 'ACRT'} at dose {r['dose']:.4g}")
        mine = table.loc[term, "std_error" if r["kind"].endswith("_se") else "estimate"]
        assert mine == pytest.approx(r["value"], rel=TOL, abs=TOL), (r["kind"], term)
    low = _panel(first["panel"]).groupby("id")["D"].first()
    assert res.n_treated == int((low > 0.5).sum()) and res.facts.reference_dose == 0.5


def test_lowest_dose_through_a_design_file_and_the_report(tmp_path):
    """A design whose LAs are all treated at one date, with control_group: lowest_dose: no
    comparison pool is needed, the rows equal the API's, and the report says each effect is
    relative to the lowest dose."""
    e = _panel("E").assign(id=lambda f: "LA" + f["id"].astype(str))
    units = ", ".join(sorted(e["id"].unique()))
    path = tmp_path / "lowest.yaml"
    text = DESIGN.format(waves=f"  - {{wave: s4, start: 4, units: [{units}]}}")
    path.write_text(
        text.replace("{doses: [1.0, 2.0]}", "{doses: [1.0, 2.0], control_group: lowest_dose}")
    )
    ev = pe.evaluate(path, e.drop(columns="G"))
    (run,) = ev.runs
    api = pe.continuous_did(
        e,
        outcome="y",
        unit="id",
        time="t",
        first_treated="G",
        dose="D",
        doses=(1.0, 2.0),
        control_group="lowest_dose",
    )
    np.testing.assert_array_equal(run.result.table["estimate"], api.table["estimate"])
    html = next(p for p in pe.report(ev, tmp_path / "out") if p.suffix == ".html").read_text()
    assert "each effect is relative to the lowest dose" in html
    assert "compared with the LAs given the lowest dose, 0.5" in html


def test_lowest_dose_is_refused_where_it_does_not_apply():
    """lowest_dose needs every LA treated, one start date, two LAs or more at the lowest dose,
    doses above it and no covariates: each breach says what to do."""
    e = _panel("E")
    kwargs = dict(outcome="y", unit="id", time="t", first_treated="G", dose="D")
    kwargs |= dict(control_group="lowest_dose", doses=(1.0, 2.0))
    cases = (
        (_panel("A"), "LA\\(s\\) are never treated"),
        (e.assign(G=np.where(e["id"] % 2 == 0, 4, 5)), "needs one start date"),
        (e.assign(D=np.where(e["D"] == 0.5, e["D"] + e["id"] / 1e4, e["D"])), "two LAs or more"),
    )
    for data, message in cases:
        with pytest.raises(EstimationError, match=message):
            pe.continuous_did(data, **kwargs)
    with pytest.raises(EstimationError, match=r"not above the lowest dose 0\.5"):
        pe.continuous_did(e, **{**kwargs, "doses": (0.5, 2.0)})
    with pytest.raises(EstimationError, match="cannot yet be combined with covariates"):
        pe.continuous_did(e.assign(x=1.0), **kwargs, covariates=("x",))


def test_acrt_standard_error_closed_form():
    """One start date and one post period: ACRT^o's influence function is the spread of the
    fitted slope over the treated doses plus the fit's error, (s_i − s̄)/n + m̄ᵀ(XᵀX)⁻¹x_i e_i,
    so its variance is statsmodels' HC0 variance of m̄ᵀβ plus the spread and cross terms; for
    degree 1 the slope is the least-squares slope and its SE the HC0 SE."""
    d = _panel("C")
    d = d[d["t"].isin([2, 3])]
    wide = d.pivot(index="id", columns="t", values="y")
    unit = d.groupby("id").first()
    dy = (wide[3] - wide[2]).to_numpy()
    treated = unit["G"].to_numpy() > 0
    x = unit["D"].to_numpy()[treated]
    for degree in (1, 3):
        shifted = d.assign(t=d["t"] - 1, G=np.where(d["G"] > 0, d["G"] - 1, 0))
        fit = _engine(shifted, [1.0], degree, 0, "not_yet_treated")
        powers = np.vander(x, degree + 1, increasing=True)
        ols = sm.OLS(dy[treated], powers).fit(cov_type="HC0")
        slope_basis = np.column_stack(
            [np.zeros_like(x)] + [k * x ** (k - 1) for k in range(1, degree + 1)]
        )
        slopes = slope_basis @ ols.params
        m = slope_basis.mean(axis=0)
        n = x.size
        bread = np.linalg.inv(powers.T @ powers)
        fitted_part = (powers @ bread @ m) * ols.resid
        spread = (slopes - slopes.mean()) / n
        var = m @ ols.cov_params() @ m + spread @ spread + 2 * spread @ fitted_part
        j = _pick(fit, "acrt", np.nan, np.nan)
        assert fit.estimate[j] == pytest.approx(slopes.mean(), rel=1e-12)
        assert fit.vcov[j, j] == pytest.approx(var, rel=1e-10)
        if degree == 1:
            assert np.sqrt(fit.vcov[j, j]) == pytest.approx(ols.bse[1], rel=1e-10)


def test_att_and_event_study_equal_callaway_santanna():
    """Without the dose, ATT^o is Callaway & Sant'Anna's group aggregation (the cohorts'
    ATTs weighted by their sizes) and the event-time rows its dynamic aggregation (did's
    varying base, not-yet-treated comparisons): the same 2×2 comparisons weighted the same
    way. Standard errors agree where one start date makes up the event time; where two do,
    did adds the variance of estimating their shares, which contdid's ports (and ours) hold
    fixed, as the pooled variance does."""
    d = _panel("A")
    kw = dict(outcome="y", unit="id", time="t", first_treated="G", inference="cluster_robust")
    dose = pe.continuous_did(d, dose="D", **kw)
    cs = dict(control_group="not_yet_treated", base_period="varying", **kw)
    group = pe.callaway_santanna(d, aggregation="group", **cs).table.set_index("term")
    sizes = d[d["G"] > 0].groupby("G")["id"].nunique()
    by_cohort = group.loc[[f"cohort {g}" for g in sizes.index], "estimate"].to_numpy()
    assert dose.table["estimate"].iloc[0] == pytest.approx(
        by_cohort @ (sizes / sizes.sum()), rel=1e-10
    )
    dynamic = pe.callaway_santanna(d, aggregation="dynamic", **cs).table
    ref = dynamic[dynamic["event_time"].notna()]
    rows = dose.table[dose.table["term"].str.startswith("event time")]
    np.testing.assert_array_equal(rows["event_time"], ref["event_time"])
    np.testing.assert_allclose(rows["estimate"], ref["estimate"], rtol=1e-10)
    single = rows["event_time"].isin([-2, 2]).to_numpy()  # cohort 3 alone, cohort 4 alone
    np.testing.assert_allclose(rows["std_error"][single], ref["std_error"][single], rtol=1e-10)
    assert (rows["std_error"][~single].to_numpy() < ref["std_error"][~single].to_numpy()).all()


def test_linear_dose_response_is_recovered_without_noise():
    """y = unit + period effects + 0.5·d·1(t ≥ start), no noise: ATT(d) = 0.5 d and
    ACRT = 0.5 exactly at every dose, and the pre-start rows are 0."""
    rng = np.random.default_rng(5)
    n, periods = 40, 6
    start = rng.choice([3, 4, 99], n)
    dose = np.where(start < 99, rng.uniform(1, 4, n), 0.0)
    y = rng.normal(size=(n, 1)) + np.arange(periods)
    y = y + 0.5 * dose[:, None] * (np.arange(1, periods + 1)[None, :] >= start[:, None])
    s = np.where(start < 99, start - 1, np.inf)
    fit = continuous_did(y, s, dose, np.array([1.5, 3.0]), 2, 0)
    for kind, expect in (("att", 0.5 * dose[start < 99].mean()), ("acrt", 0.5)):
        assert fit.estimate[fit.kind == kind][0] == pytest.approx(expect, abs=1e-12)
    np.testing.assert_allclose(fit.estimate[fit.kind == "att_d"], [0.75, 1.5], atol=1e-12)
    np.testing.assert_allclose(fit.estimate[fit.kind == "acrt_d"], 0.5, atol=1e-12)
    np.testing.assert_allclose(fit.estimate[fit.event_time < 0], 0, atol=1e-12)


def test_a_single_la_start_date_counts_in_att_only():
    """A start date of one LA cannot fit a dose curve: it stays in ATT^o and its event times
    and leaves the dose rows (named in a warning); ATT^o equals the binary group aggregation's
    estimate with that LA."""
    d = _panel("B").query("G != 6")
    lone = d[d["G"] == 5]["id"].unique()[1:]
    d = d[~d["id"].isin(lone)]  # the start date of period 5 keeps one LA
    kw = dict(outcome="y", unit="id", time="t", first_treated="G", inference="cluster_robust")
    res = pe.continuous_did(d, dose="D", doses=(1.0, 2.0), **kw)
    assert any("leave out the LAs starting in 5" in w for w in res.warnings)
    assert res.table["n_units"][0] == 8 and res.table["n_units"][1] == 7
    cs = pe.callaway_santanna(d, control_group="not_yet_treated", aggregation="group", **kw)
    by_term = cs.table.set_index("term")["estimate"]
    sizes = d[d["G"] > 0].groupby("G")["id"].nunique()
    by_cohort = by_term[[f"cohort {g}" for g in sizes.index]].to_numpy()
    assert res.table["estimate"][0] == pytest.approx(by_cohort @ (sizes / sizes.sum()))


def test_a_start_date_without_comparisons_after_it_drops_out():
    """No never-treated units and not-yet-treated comparisons: the last start date has no
    comparison unit once it starts, so its cells drop out and the other start dates' shares
    are renormalised (as contdid). With y = unit + period effects + d·1(started) and no
    noise, ATT^o is then the earlier start dates' mean dose, weighted by their sizes."""
    rng = np.random.default_rng(8)
    n, periods = 60, 6
    start = rng.choice([2, 3, 4], n).astype(float)
    dose = rng.uniform(1, 3, n)
    on = np.arange(periods)[None, :] >= start[:, None]
    y = rng.normal(size=(n, 1)) + 0.3 * np.arange(periods) + dose[:, None] * on
    fit = continuous_did(y, start, dose, np.array([2.0]), 1, 0, "not_yet_treated")
    early = start < 4
    assert fit.estimate[fit.kind == "att"][0] == pytest.approx(dose[early].mean(), abs=1e-12)
    assert fit.estimate[fit.kind == "acrt"][0] == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(fit.weights[0].sum(), 0.0, atol=1e-12)


def test_every_row_is_its_weights_times_the_outcomes():
    """The weights the pooled variance uses reproduce every estimate."""
    d = _panel("B")
    y = d.pivot(index="id", columns="t", values="y").to_numpy()
    fit = _engine(d, [1.0, 2.0], 1, 0, "not_yet_treated")
    np.testing.assert_allclose(
        np.einsum("knt,nt->k", fit.weights, y), fit.estimate, rtol=1e-12, atol=1e-12
    )


def test_default_inference_with_few_treated_las():
    """Panel B has 20 treated of 150 units: the default is the influence-function variance.
    Without its last start date (13 treated) the default is the comparison-pooled variance
    (t, Satterthwaite df) with unchanged estimates."""
    kw = dict(outcome="y", unit="id", time="t", first_treated="G", dose="D", doses=(1.0, 2.0))
    full = pe.continuous_did(_panel("B"), **kw)
    assert full.n_treated == 20 and full.inference.key == "influence_function"
    d = _panel("B").query("G != 6")
    res = pe.continuous_did(d, **kw)
    assert res.inference.key == "pooled_panel" and res.inference.chosen_by_default
    assert res.n_treated == int((d.groupby("id")["G"].first() > 0).sum())
    assert (res.table["df"] > 10).all() and np.isfinite(res.table["std_error"]).all()
    fit = _engine(d, [1.0, 2.0], 1, 0, "not_yet_treated")
    np.testing.assert_allclose(res.table["estimate"], fit.estimate, rtol=1e-12, atol=1e-12)
    pre = res.table["term"].str.startswith("event time -")
    assert res.facts.pretrend_test["df_denom"] == pytest.approx(res.table["df"][pre].min())
    slopes = res.table["term"].str.startswith("ACRT, event time -")
    assert slopes.sum() == pre.sum() == 3
    assert res.facts.dose_pretrend_test["df_num"] == 3
    analytic = pe.continuous_did(d, inference="cluster_robust", **kw)
    assert analytic.inference.key == "influence_function"
    np.testing.assert_allclose(analytic.table["std_error"], np.sqrt(np.diag(fit.vcov)), rtol=1e-12)


DESIGN = """
name: dose
title: A pilot whose LAs get different funding
pilot: custom
unit_level: cluster
time: {{axis: period}}
rollout:
{waves}
comparison: {{pool: never_treated, min_units: 2}}
outcomes: [{{column: y}}]
analyses:
  - id: dose
    estimator: continuous_did
    options: {{doses: [1.0, 2.0]}}
data: {{source: tidy, columns: {{unit: id, period: t, dose: D}}}}
"""


def test_design_file_runs_and_reports(tmp_path):
    """A design file with a dose column: the pipeline's rows equal the API's exactly, and the
    report shows the dose curve and the pre-trend test."""
    d = _panel("B").query("G != 6").assign(id=lambda f: "LA" + f["id"].astype(str))
    starts = d[d["G"] > 0].groupby("id")["G"].first()
    waves = "\n".join(
        f"  - {{wave: s{s}, start: {s}, units: [{', '.join(sorted(g.index))}]}}"
        for s, g in starts.groupby(starts)
    )
    path = tmp_path / "dose.yaml"
    path.write_text(DESIGN.format(waves=waves))
    ev = pe.evaluate(path, d.drop(columns="G"))
    (run,) = ev.runs
    api = pe.continuous_did(
        d, outcome="y", unit="id", time="t", first_treated="G", dose="D", doses=(1.0, 2.0)
    )
    np.testing.assert_array_equal(api.table["estimate"], run.result.table["estimate"])
    np.testing.assert_array_equal(api.table["std_error"], run.result.table["std_error"])
    files = pe.report(ev, tmp_path / "out")
    html = next(p for p in files if p.suffix == ".html").read_text()
    assert "Goodman-Bacon" in html and "ACRT at dose 2" in html
    assert "Power of the pre-test" in html
    assert "the pre-start event-time ACRTs (trends that differ with the dose) are zero" in html


def test_bad_doses_are_refused():
    d = _panel("B")
    kw = dict(outcome="y", unit="id", time="t", first_treated="G")
    with pytest.raises(EstimationError, match="no dose column"):
        pe.continuous_did(d, **kw)
    zero = d.assign(D=np.where(d["id"] == d.loc[d["G"] > 0, "id"].iloc[0], 0.0, d["D"]))
    with pytest.raises(EstimationError, match="has no dose above 0"):
        pe.continuous_did(zero, dose="D", **kw)
    varies = d.assign(D=d["D"] + (d["t"] == 3) * (d["G"] > 0))
    with pytest.raises(DataError, match="more than one dose") as err:
        pe.continuous_did(varies, dose="D", **kw)
    assert "did_multiplegt_dyn" in str(err.value)
    with pytest.raises(DataError, match="not a number of 0 or more"):
        pe.continuous_did(d.assign(D=-d["D"]), dose="D", **kw)
    with pytest.raises(EstimationError, match="no start date has the 8 treated LAs"):
        pe.continuous_did(d, dose="D", degree=3, knots=4, **kw)


def test_a_comparison_whose_propensity_score_cannot_be_fitted_is_left_out():
    """A covariate that separates the LAs starting in 4 from every never-treated LA leaves
    their doubly robust cells without a propensity score: those comparisons are left out and
    named, and every row then equals the analysis without those LAs (never-treated
    comparisons: they are no one's comparison), estimates and standard errors to 1e-12.
    When every comparison fails the analysis says so; method: reg still runs."""
    d = _panel("D")
    start = d.groupby("id")["G"].first()
    z = pd.Series(np.random.default_rng(3).normal(size=start.size), index=start.index)
    d["z"] = d["id"].map(z + np.where(start == 4, 100.0, 0.0))
    kwargs = dict(outcome="y", unit="id", time="t", first_treated="G", dose="D")
    kwargs |= dict(control_group="never_treated", covariates=("x", "z"), doses=(0.8, 1.6, 2.4))
    out = pe.continuous_did(d, **kwargs, inference="cluster_robust")
    alone = pe.continuous_did(d[d["G"] != 4], **kwargs, inference="cluster_robust")
    (warning,) = [w for w in out.warnings if "not compared" in w]
    assert warning.startswith("The LAs starting in 4 are not compared in period(s) 2, 3, 4, 5, 6")
    a, b = out.table.set_index("term"), alone.table.set_index("term")
    assert a.index.equals(b.index) and len(a) == 18
    np.testing.assert_allclose(a["estimate"], b["estimate"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(a["std_error"], b["std_error"], rtol=1e-12)
    only = d[d["G"] != 3].assign(z=lambda f: f["z"] + np.where(f["G"] == 0, 0.0, 100.0))
    with pytest.raises(EstimationError, match="failed in every one") as err:
        pe.continuous_did(only, **kwargs)
    assert "method: reg" in str(err.value)
    reg = pe.continuous_did(only, **kwargs, method="reg")
    assert np.isfinite(reg.table["estimate"]).all()


def test_covariates_through_the_api_a_design_file_and_the_report(tmp_path):
    """`covariates` from the Python API gives diff-diff's covariate-adjusted rows (run 6: x and
    x1, a cubic curve, method="reg") with inference="cluster_robust", and by default its doubly
    robust ATT (run 9); every row stays its weights times the outcomes, both ways; a unit
    missing a covariate is left out and named; from a design file the report says what the
    comparison is net of."""
    v = pd.read_csv(REF / "values.csv")
    v = v[(v["run"] == 6) & (v["source"] == "diff-diff")]
    d = _panel("D")
    kwargs = dict(outcome="y", unit="id", time="t", first_treated="G", dose="D")
    res = pe.continuous_did(
        d,
        **kwargs,
        degree=3,
        doses=(0.8, 1.6, 2.4),
        covariates=("x", "x1"),
        method="reg",
        inference="cluster_robust",
    )
    assert res.facts.covariates == ["x", "x1"]
    for _, r in v[v["kind"].isin(["att", "att_d", "acrt_d", "event"])].iterrows():
        if r["kind"] == "att":
            term = "ATT (average over the treated doses)"
        elif r["kind"] == "event":
            term = f"event time {int(r['event_time'])}"
        else:
            term = f"{'ATT' if r['kind'] == 'att_d' else 'ACRT'} at dose {r['dose']:.4g}"
        row = res.table.set_index("term").loc[term]
        assert row["estimate"] == pytest.approx(r["value"], rel=TOL, abs=TOL), term
    y = d.pivot(index="id", columns="t", values="y").to_numpy()
    for method in ("reg", "dr"):  # the doubly robust rows are linear in the outcomes too
        fit = _engine(d, [0.8, 1.6, 2.4], 3, 0, "not_yet_treated", ["x", "x1"], method)
        np.testing.assert_allclose(np.einsum("knt,nt->k", fit.weights, y), fit.estimate, atol=1e-10)
    # run 9: the same with diff-diff's default, doubly robust (also the option's default here)
    all_values = pd.read_csv(REF / "values.csv")
    dr = all_values[(all_values["run"] == 9) & (all_values["kind"] == "att")]
    default = pe.continuous_did(
        d, **kwargs, degree=3, doses=(0.8, 1.6, 2.4), covariates=("x", "x1")
    )
    att = default.table.set_index("term").loc["ATT (average over the treated doses)", "estimate"]
    assert att == pytest.approx(float(dr["value"].iloc[0]), rel=TOL)
    gap = d.copy()
    gap.loc[(gap["id"] == 5) & (gap["t"] == 2), "x"] = np.nan
    out = pe.continuous_did(gap, **kwargs, covariates=("x",))
    assert "1 unit(s) left out: a covariate (x) is missing in some period (5)." in out.warnings
    assert out.n_units == d["id"].nunique() - 1
    ds = d.assign(id=lambda f: "LA" + f["id"].astype(str))
    starts = ds[ds["G"] > 0].groupby("id")["G"].first()
    waves = "\n".join(
        f"  - {{wave: s{s}, start: {s}, units: [{', '.join(sorted(g.index))}]}}"
        for s, g in starts.groupby(starts)
    )
    text = DESIGN.format(waves=waves).replace(
        "outcomes: [{column: y}]", "outcomes: [{column: y}, {column: x1}]"
    )
    text = text.replace(
        "    options: {doses: [1.0, 2.0]}", "    outcomes: [y]\n    options: {covariates: [x1]}"
    )
    path = tmp_path / "dose.yaml"
    path.write_text(text)
    ev = pe.evaluate(path, ds.drop(columns="G"))
    (run,) = ev.runs
    api = pe.continuous_did(ds, **{**kwargs, "unit": "id"}, covariates=("x1",))
    np.testing.assert_allclose(run.result.table["estimate"], api.table["estimate"], atol=1e-12)
    html = next(p for p in pe.report(ev, tmp_path / "out") if p.suffix == ".html").read_text()
    assert "Parallel trends given x1" in html
