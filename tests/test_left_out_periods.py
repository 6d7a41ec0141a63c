"""Periods the design leaves out (the transition rule's partly exposed period, a wave's
transition periods) are not gaps in the data: Callaway & Sant'Anna keeps the units and
measures from the period before them, as R's did with anticipation = 1 does. Reference:
moderndid's att_gt (a port of did) with anticipation = 1 on mpdta
(tests/reference/did_mpdta/anticipation_values.csv, script beside the values)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pathfinder_eval as pe
from did_helpers import MPDTA
from pathfinder_eval.errors import DesignError
from pathfinder_eval.estimators.did.callaway_santanna import CallawaySantAnna
from pathfinder_eval.estimators.did.stacked import Stacked
from pathfinder_eval.pipeline import Evaluation
from pathfinder_eval.results import EffectEstimates
from pathfinder_eval.robustness import placebo_panel

REF = Path(__file__).parent / "reference" / "did_mpdta" / "anticipation_values.csv"
TOL = 1e-9  # analytic; the engines agree on mpdta's ATT(g,t) to about 1e-15

DESIGN = """
name: mpdta_transition
title: Minimum wage, starts in July
pilot: custom
unit_level: cluster
time: {{axis: {axis}, partial_period_rule: transition}}
rollout:
{waves}
comparison: {{pool: {pool}, min_units: 2}}
outcomes: [{{column: lemp}}]
analyses:
  - id: cs
    estimator: callaway_santanna
    options: {{control_group: {control}, method: dr}}
    inference: {{method: cluster_robust}}
  - id: bacon
    estimator: bacon
data:
  source: tidy
  path: mpdta.csv
  columns: {{unit: countyreal, period: year}}
"""


def _design(tmp_path: Path, control: str, axis: str = "calendar_year", skip: int = 0) -> Path:
    """mpdta's cohorts starting on 1 July of the year before their first treated year (a
    partly exposed year, left out by the transition rule), or on a period axis with `skip`
    transition periods."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    data = pd.read_csv(MPDTA)
    data.to_csv(tmp_path / "mpdta.csv", index=False)
    first = data.groupby("countyreal")["first.treat"].first()
    waves = []
    for g, units in first[first > 0].groupby(first[first > 0]):
        start = f"{g - 1}-07-01" if axis == "calendar_year" else str(g)
        extra = f", transition_periods: {skip}" if skip else ""
        names = ", ".join(repr(str(u)) for u in units.index)  # quoted: ids are text
        waves.append(f"  - {{wave: w{g}, start: {start}, units: [{names}]{extra}}}")
    path = tmp_path / "design.yaml"
    pool = "never_treated" if control == "never_treated" else "not_yet_treated"
    path.write_text(DESIGN.format(axis=axis, waves="\n".join(waves), pool=pool, control=control))
    return path


def _result(ev: Evaluation, analysis: str) -> EffectEstimates:
    run = next(r for r in ev.runs if r.analysis.id == analysis)
    assert run.status == "ok", run.note
    return run.result


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return pd.read_csv(REF)


@pytest.mark.parametrize(
    "control,theirs", [("never_treated", "nevertreated"), ("not_yet_treated", "notyettreated")]
)
def test_the_transition_rule_is_did_with_one_period_of_anticipation(
    tmp_path, reference, control, theirs
):
    ev = pe.evaluate(_design(tmp_path, control))
    cs = _result(ev, "cs")
    ref = reference[reference["control_group"] == theirs]
    cells = pd.DataFrame(cs.facts.att_gt).set_index(["cohort", "period"])
    want = ref[ref["aggregation"] == "att_gt"].set_index(["cohort", "period"])
    # every cell not needing a partly exposed year (2005 for 2006, 2006 for 2007) is did's
    kept = [k for k in want.index if k[1] != k[0] - 1]
    assert sorted(cells.index) == sorted(kept)
    np.testing.assert_allclose(cells.loc[kept, "estimate"], want.loc[kept, "estimate"], atol=TOL)
    np.testing.assert_allclose(
        cells.loc[kept, "analytic_std_error"], want.loc[kept, "std_error"], rtol=1e-7
    )
    table = cs.table.set_index("term")
    simple = ref[ref["aggregation"] == "simple"].iloc[0]
    assert table.at["ATT (simple)", "estimate"] == pytest.approx(simple["estimate"], abs=TOL)
    assert table.at["ATT (simple)", "std_error"] == pytest.approx(simple["std_error"], rel=1e-7)
    dynamic = ref[ref["aggregation"] == "dynamic"].set_index("event_time")
    for e in (-3, -2, 0, 1):  # −1 is the partly exposed year: not estimated
        row = table.loc[f"event time {e}"]
        assert row["estimate"] == pytest.approx(dynamic.at[e, "estimate"], abs=TOL)
        assert row["std_error"] == pytest.approx(dynamic.at[e, "std_error"], rel=1e-7)
    assert "event time -1" not in table.index
    # 2004's counties have no year before their partly exposed 2003: left out and counted,
    # as did drops a cohort with no base period
    assert cs.n_treated == int((pd.read_csv(MPDTA)["first.treat"].isin([2006, 2007])).sum() / 5)
    text = " ".join(cs.warnings)
    assert "leaves out the partly exposed period of" in text
    assert "ATT(g=2006, t=2005)" in text and "ATT(g=2007, t=2006)" in text
    assert "dropped to balance the panel" not in text


def test_bacon_names_the_rule_when_it_drops_units(tmp_path):
    """The decomposition needs every period of a unit: with every treated county's partly
    exposed year left out it is not estimable, and says why; with a complete cohort added
    (2007's counties starting on 1 January) it runs and counts the others in its warning."""
    ev = pe.evaluate(_design(tmp_path / "all", "never_treated"))
    run = next(r for r in ev.runs if r.analysis.id == "bacon")
    assert run.status == "not_estimable"
    assert "periods the design leaves out" in run.note and "partial_period_rule" in run.note
    path = _design(tmp_path / "some", "never_treated")
    path.write_text(path.read_text().replace("start: 2006-07-01", "start: 2007-01-01"))
    bacon = _result(pe.evaluate(path), "bacon")
    partly = int(pd.read_csv(MPDTA).query("`first.treat` == 2006")["countyreal"].nunique())
    text = " ".join(bacon.warnings)
    assert f"{partly} units missing a period of 'lemp' were dropped" in text
    assert f"{partly} of them miss only periods the design leaves out" in text


def test_transition_periods_leave_the_cells_after_them_as_on_full_data(tmp_path):
    """A wave's transition period (the first period from its start) is left out: the units
    stay, the cells after it equal the full panel's, and the cell in it is not estimated."""
    full = pe.evaluate(_design(tmp_path / "full", "never_treated", axis="period"))
    cut = pe.evaluate(_design(tmp_path / "cut", "never_treated", axis="period", skip=1))
    a = pd.DataFrame(_result(full, "cs").facts.att_gt).set_index(["cohort", "period"])
    b = pd.DataFrame(_result(cut, "cs").facts.att_gt).set_index(["cohort", "period"])
    in_transition = [k for k in a.index if k[1] == k[0]]
    assert len(in_transition) == 3 and not set(in_transition) & set(b.index)
    assert sorted(b.index) == sorted(set(a.index) - set(in_transition))
    np.testing.assert_allclose(b["estimate"], a.loc[b.index, "estimate"], atol=1e-12)
    np.testing.assert_allclose(
        b["analytic_std_error"], a.loc[b.index, "analytic_std_error"], rtol=1e-10
    )
    assert _result(cut, "cs").n_treated == _result(full, "cs").n_treated
    assert "ATT(g=2004, t=2004)" in " ".join(_result(cut, "cs").warnings)


def _with(path: Path, analyses: str) -> Path:
    """The design at `path` with these analyses in place of bacon's."""
    text = path.read_text().replace("  - id: bacon\n    estimator: bacon\n", analyses)
    path.write_text(text)
    return path


def test_event_time_estimators_take_the_period_before_the_left_out_one(tmp_path):
    """With every cohort's event time −1 left out, Sun & Abraham and the event study take −2 as
    the reference (their fits were 'not identified'). On a balanced panel with never-treated
    comparisons Sun & Abraham's effects are then Callaway & Sant'Anna's with base g − 2."""
    path = _with(
        _design(tmp_path, "never_treated"),
        "  - {id: sa, estimator: sun_abraham}\n"
        "  - {id: es, estimator: event_study, options: {sensitivity: true}}\n"
        "  - {id: es1, estimator: event_study, options: {reference: -1}}\n",
    )
    ev = pe.evaluate(path)
    cs, sa, es = (_result(ev, a) for a in ("cs", "sa", "es"))
    assert sa.facts.reference_event_time == -2 and es.facts.reference_event_time == -2
    for r in (sa, es):
        assert any("Event time -1 is left out by the design" in w for w in r.warnings)
    cs_rows, sa_rows = cs.table.set_index("term"), sa.table.set_index("term")
    for e in (0, 1):
        term = f"event time {e}"
        assert sa_rows.at[term, "estimate"] == pytest.approx(
            cs_rows.at[term, "estimate"], abs=1e-12
        )
    assert sa_rows.at["ATT (post-treatment average)", "estimate"] == pytest.approx(
        cs_rows.at["ATT (simple)", "estimate"], abs=1e-12
    )
    assert "event time -2" not in sa_rows.index and "event time -1" not in sa_rows.index
    assert "need event time −1 as the reference" in es.facts.sensitivity["smoothness"]["note"]
    named = next(r for r in ev.runs if r.analysis.id == "es1")
    assert named.status == "not_estimable"
    assert "options.reference" in named.note and "set options.reference to -2" in named.note


def test_estimators_that_need_the_left_out_period_say_so(tmp_path):
    path = _with(
        _design(tmp_path, "never_treated"),
        "  - {id: stacked, estimator: stacked}\n"
        "  - {id: dcdh, estimator: did_multiplegt_dyn}\n"
        "  - {id: sdid, estimator: synthetic_did}\n",
    )
    runs = {r.analysis.id: r for r in pe.evaluate(path).runs}
    for name in ("stacked", "dcdh", "sdid"):
        assert runs[name].status == "not_estimable"
        assert "partial_period_rule: transition" in runs[name].note, name
        assert "another rule" in runs[name].note, name


def test_a_placebo_in_time_measures_its_fake_starts_from_the_period_before_them(tmp_path):
    """The placebo moves each cohort's start 2 periods earlier; the real partly exposed period
    stays left out, but the fake cohorts are compared from their own period −1 (they were
    given one more period of anticipation, and a warning blamed the design)."""
    path = _design(tmp_path, "never_treated")  # without 2004's counties: 2003 is all before
    data = pd.read_csv(MPDTA)
    data[data["first.treat"] != 2004].to_csv(tmp_path / "mpdta.csv", index=False)
    path.write_text("\n".join(x for x in path.read_text().split("\n") if "w2004" not in x))
    ev = pe.evaluate(path)
    fake = placebo_panel(ev.panel).panel
    unit = str(data.loc[data["first.treat"] == 2006, "countyreal"].iloc[0])
    gap, partly = fake.left_out_by_design(np.array([unit], dtype=object), np.arange(2003, 2006))
    assert gap.tolist() == [[False, False, True]] and partly.tolist() == [0]  # 2005, real
    res = CallawaySantAnna().fit(fake, "lemp", "placebo")
    cells = pd.DataFrame(res.facts.att_gt)
    post = cells[cells["post"]]
    assert len(post) and (post["base_period"] == post["cohort"] - 1).all()
    assert not any("partly exposed period of" in w for w in res.warnings)
    assert any("need a period the design leaves out" in w for w in res.warnings)


def test_honest_did_refuses_results_not_measured_from_event_time_minus_one(tmp_path):
    """Rambachan & Roth's restrictions are written for a reference at event time −1: a Sun &
    Abraham result whose reference moved to −2, or a universal-base Callaway & Sant'Anna
    whose cohorts are measured from g − 2, is refused (the latter passed: its zero row sat at
    −1 for no cohort here, or for one cohort of a mixed design)."""
    path = _with(
        _design(tmp_path, "never_treated"),
        "  - {id: sa, estimator: sun_abraham}\n"
        "  - {id: csu, estimator: callaway_santanna, options: {base_period: universal}}\n",
    )
    ev = pe.evaluate(path)
    for name in ("sa", "csu"):
        with pytest.raises(DesignError, match="reference period is not event time −1"):
            pe.honest_did(_result(ev, name), [0.0, 0.01])


def test_stacked_leaves_out_only_the_cohorts_without_their_reference(tmp_path):
    """2007's counties starting on 1 January keep their event time −1: their sub-experiment
    is stacked, and 2006's (whose −1 is left out) is trimmed with the reason; before, one
    such cohort made the whole estimator not estimable."""
    path = _with(_design(tmp_path, "never_treated"), "  - {id: stacked, estimator: stacked}\n")
    path.write_text(path.read_text().replace("start: 2006-07-01", "start: 2007-01-01"))
    res = _result(pe.evaluate(path), "stacked")
    assert [s["cohort"] for s in res.facts.sub_experiments] == [2007.0]
    assert any(
        w.startswith("Cohort 2006 left out of the stack: its event time −1, the reference")
        for w in res.warnings
    )


def test_event_study_from_minus_two_is_the_regression_without_the_left_out_rows(tmp_path):
    """The moved reference checked against a regression written out in statsmodels: lemp on
    county and year dummies and the event-time indicators other than −2, without the rows the
    rule leaves out (each treated county's partly exposed year) and without 2004's counties
    (no year before their start); CR1 by county counting every dummy (lm + vcovCL's factor,
    absorbed_effects: counted). Estimates to 1e-10, standard errors to 1e-8 relative."""
    import statsmodels.api as sm

    path = _with(
        _design(tmp_path, "never_treated"),
        "  - {id: es, estimator: event_study,"
        " inference: {method: cluster_robust, absorbed_effects: counted}}\n",
    )
    res = _result(pe.evaluate(path), "es")
    assert res.facts.reference_event_time == -2
    d = pd.read_csv(MPDTA)
    g = d["first.treat"]
    d = d[(g != 2004) & ~((g > 0) & (d["year"] == g - 1))].reset_index(drop=True)
    rel = (d["year"] - d["first.treat"]).where(d["first.treat"] > 0).clip(-4, 3)
    times = sorted(int(e) for e in rel.dropna().unique() if e != -2)
    assert times == [-4, -3, 0, 1]
    x = pd.concat(
        [
            pd.DataFrame({f"e{e}": (rel == e).astype(float) for e in times}),
            pd.get_dummies(d["countyreal"], prefix="c", drop_first=True, dtype=float),
            pd.get_dummies(d["year"], prefix="y", drop_first=True, dtype=float),
        ],
        axis=1,
    )
    ols = sm.OLS(d["lemp"], sm.add_constant(x)).fit(
        cov_type="cluster", cov_kwds={"groups": d["countyreal"]}
    )
    table = res.table.set_index("term")
    for e in times:
        row = table.loc[f"event time {e}" + (" or earlier" if e == -4 else "")]
        assert row["estimate"] == pytest.approx(ols.params[f"e{e}"], abs=1e-10), e
        assert row["std_error"] == pytest.approx(ols.bse[f"e{e}"], rel=1e-8), e
    assert "event time -2" not in table.index and "event time -1" not in table.index


def test_stacked_without_the_trimmed_cohort_is_its_one_sub_experiment_regression(tmp_path):
    """The stack that keeps only 2007's sub-experiment, checked against the regression written
    out in statsmodels: its counties and the never-treated ones in 2003-2007 (the window the
    default takes once 2006, trimmed, no longer shortens it: κ_pre 4, where it was 3), lemp on
    D, the event-time dummies other than −1 and their products with D (one sub-experiment:
    every corrective weight is 1), CR1 by county. Estimates to 1e-10, SEs to 1e-8 relative."""
    import statsmodels.api as sm

    path = _with(
        _design(tmp_path, "never_treated"),
        "  - {id: stacked, estimator: stacked, inference: {method: cluster_robust}}\n",
    )
    path.write_text(path.read_text().replace("start: 2006-07-01", "start: 2007-01-01"))
    res = _result(pe.evaluate(path), "stacked")
    assert (res.facts.kappa_pre, res.facts.kappa_post) == (4, 0)
    d = pd.read_csv(MPDTA)
    d = d[d["first.treat"].isin([0, 2007])].reset_index(drop=True)
    treated = (d["first.treat"] == 2007).astype(float)
    e = d["year"] - 2007
    x = pd.DataFrame({"D": treated})
    for k in (-4, -3, -2, 0):
        x[f"l{k}"] = (e == k).astype(float)
        x[f"d{k}"] = treated * (e == k)
    ols = sm.OLS(d["lemp"], sm.add_constant(x)).fit(
        cov_type="cluster", cov_kwds={"groups": d["countyreal"]}
    )
    table = res.table.set_index("term")
    for k in (-4, -3, -2, 0):
        row = table.loc[f"event time {k}"]
        assert row["estimate"] == pytest.approx(ols.params[f"d{k}"], abs=1e-10), k
        assert row["std_error"] == pytest.approx(ols.bse[f"d{k}"], rel=1e-8), k
    mean = table.loc["ATT (mean of post-start event times)"]
    assert mean["estimate"] == pytest.approx(ols.params["d0"], abs=1e-10)


def _staggered(cohorts: dict[float, int], periods: int = 10) -> tuple[np.ndarray, ...]:
    """A small long panel: `cohorts` maps a first treated period (inf: never) to its units."""
    rng = np.random.default_rng(4)
    first = np.concatenate([np.full(k, g) for g, k in cohorts.items()])
    unit = np.repeat(np.arange(first.size), periods)
    period = np.tile(np.arange(periods, dtype=float), first.size)
    return rng.normal(size=unit.size), unit, period, first[unit]


def _partly(unit: np.ndarray, cohort: np.ndarray, which: np.ndarray) -> tuple[np.ndarray, ...]:
    """(units, periods) left out: the period before the start of the units in `which`."""
    first = pd.Series(cohort, index=unit).groupby(level=0).first()
    chosen = np.unique(unit[which])
    return chosen, first.loc[chosen].to_numpy() - 1.0


def test_stacked_default_window_with_cohorts_left_out_for_their_reference():
    """A cohort trimmed because the design leaves out its reference no longer shortens the
    kept cohorts' pre-window, but still bounds the post-window (a longer one would take the
    later cohorts out of the not-yet-treated controls); when every cohort inside the data is
    such a cohort, the error is the transition rule's, not a window's."""
    from pathfinder_eval.errors import EstimationError
    from pathfinder_eval.estimators.did.stacked import stacked_did

    args = _staggered({3.0: 3, 6.0: 3, np.inf: 4})
    early = stacked_did(*args, left_out=_partly(args[1], args[3], args[3] == 3.0))
    assert early.kappa == (6, 3) and [s.cohort for s in early.included] == [6.0]
    args = _staggered({5.0: 4, 8.0: 4})
    late = stacked_did(*args, left_out=_partly(args[1], args[3], args[3] == 8.0))
    assert late.kappa == (5, 1) and [s.cohort for s in late.included] == [5.0]
    with pytest.raises(EstimationError, match="every cohort was trimmed") as err:
        args = _staggered({5.0: 3, 12.0: 3, np.inf: 4})
        left = _partly(args[1], args[3], args[3] == 5.0)
        stacked_did(*args, left_out=left, label=lambda p: f"P{p}")
    assert err.value.where == "time.partial_period_rule"
    assert "P5: its event time −1" in str(err.value)  # periods as the axis labels them
    assert "P12: window [P7, P16] outside the data" in str(err.value)


def test_a_cohort_partly_exposed_inside_the_window_is_not_a_clean_control():
    """Cohort 7's period 6 is partly exposed (left out, with its reference): inside cohort 4's
    window [1, 6] it is not a clean (not-yet-treated) control there, so 4's stack is the one
    without cohort 7's units. Before, they were its controls but had no row at event time 2:
    the sub-experiment's control weight there was 0 and δ₂ borrowed other units."""
    from pathfinder_eval.estimators.did.stacked import stacked_did

    y, unit, period, cohort = _staggered({4.0: 3, 7.0: 3, np.inf: 4})
    seen = ~((cohort == 7.0) & (period == 6.0))  # the left-out partly exposed period
    fit = stacked_did(
        y[seen],
        unit[seen],
        period[seen],
        cohort[seen],
        3,
        2,
        left_out=_partly(unit, cohort, cohort == 7.0),
    )
    rest = cohort != 7.0
    alone = stacked_did(y[rest], unit[rest], period[rest], cohort[rest], 3, 2)
    assert [(s.cohort, s.n_control) for s in fit.included] == [(4.0, 4)]
    np.testing.assert_allclose(fit.estimate, alone.estimate, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fit.vcov, alone.vcov, rtol=1e-10)


def test_units_of_a_cohort_whose_reference_is_left_out_leave_its_sub_experiment():
    """A cohort mixing units that start on a period boundary and units partly exposed the
    period before (left out): the latter leave the sub-experiment and the stack equals the
    one without them. Before, they stayed, missing the reference row, so the cohort's treated
    mean at −1 and at the other event times were of different units."""
    from pathfinder_eval.estimators.did.stacked import stacked_did

    y, unit, period, cohort = _staggered({4.0: 5, np.inf: 4})
    partly = (unit >= 3) & (cohort == 4.0)  # units 3 and 4 started during period 3
    seen = ~(partly & (period == 3.0))
    fit = stacked_did(
        y[seen],
        unit[seen],
        period[seen],
        cohort[seen],
        2,
        2,
        left_out=_partly(unit, cohort, partly),
    )
    rest = ~partly
    alone = stacked_did(y[rest], unit[rest], period[rest], cohort[rest], 2, 2)
    assert [(s.cohort, s.n_treated) for s in fit.included] == [(4.0, 3)]
    assert fit.partly_left_out == ((4.0, 2),)
    np.testing.assert_allclose(fit.estimate, alone.estimate, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fit.vcov, alone.vcov, rtol=1e-10)


def _split_2007(path: Path) -> tuple[list[str], int]:
    """2007's counties in two waves: the first half starting on 1 January 2007, the rest on
    1 July 2006 (2006 partly exposed, left out). Returns the counties and the half."""
    lines = path.read_text().split("\n")
    i = next(k for k, x in enumerate(lines) if "wave: w2007" in x)
    units = lines[i].split("units: [")[1].rstrip("]}").split(", ")
    half = len(units) // 2
    lines[i : i + 1] = [
        f"  - {{wave: w2007a, start: 2007-01-01, units: [{', '.join(units[:half])}]}}",
        f"  - {{wave: w2007b, start: 2006-07-01, units: [{', '.join(units[half:])}]}}",
    ]
    path.write_text("\n".join(lines))
    return units, half


def test_stacked_keeps_the_units_of_a_mixed_cohort_that_have_their_reference(tmp_path):
    """2007's counties split into two waves, one starting on 1 January 2007 and one on 1 July
    2006 (its 2006 left out): one cohort, whose July units leave its sub-experiment, named in
    a warning, while the January units stay."""
    path = _with(
        _design(tmp_path, "never_treated"),
        "  - {id: stacked, estimator: stacked}\n"
        "  - {id: strata, estimator: stacked, inference: {method: cohort_stratified}}\n",
    )
    units, half = _split_2007(path)
    ev = pe.evaluate(path)
    res = _result(ev, "stacked")
    assert [(s["cohort"], s["n_treated"]) for s in res.facts.sub_experiments] == [(2007.0, half)]
    text = " ".join(res.warnings)
    assert f"{len(units) - half} unit(s) of cohort 2007 left out of its sub-experiment" in text
    # the units left out form their own stratum: the cohort-stratified variance applies
    assert _result(ev, "strata").inference.key == "cohort_stratified"


def test_a_placebo_stack_leaves_out_units_whose_real_partly_exposed_period_is_in_it(tmp_path):
    """2007's counties in two waves (1 January 2007; 1 July 2006, its 2006 left out), the
    placebo starting them in 2005: the July counties' real 2006 sits at the placebo's event
    time 1, so they leave the placebo's sub-experiment (before, they stayed without that row
    and event time 1 was the other half's mean against all of them at −1)."""
    path = _with(_design(tmp_path, "never_treated"), "  - {id: stacked, estimator: stacked}\n")
    data = pd.read_csv(MPDTA)
    data[data["first.treat"].isin([0, 2007])].to_csv(tmp_path / "mpdta.csv", index=False)
    lines = [x for x in path.read_text().split("\n") if "w2004" not in x and "w2006" not in x]
    path.write_text("\n".join(lines))
    units, half = _split_2007(path)
    fake = placebo_panel(pe.evaluate(path).panel).panel
    res = Stacked().fit(fake, "lemp", "placebo")
    assert [(s["cohort"], s["n_treated"]) for s in res.facts.sub_experiments] == [(2005.0, half)]
    text = " ".join(res.warnings)
    assert f"{len(units) - half} unit(s) of cohort 2005 left out of its sub-experiment" in text
    assert set(res.table["n_units"].dropna()) == {float(half)}


def test_the_boundary_units_of_a_mixed_cohort_stay_clean_controls():
    """Cohort 6 mixes units starting on a boundary and units partly exposed in period 5 (left
    out). In cohort 3's window [1, 5] the former are clean not-yet-treated controls and the
    latter are not; the whole stack equals the one without the latter."""
    from pathfinder_eval.estimators.did.stacked import stacked_did

    y, unit, period, cohort = _staggered({3.0: 3, 6.0: 4, np.inf: 3})
    partly = (cohort == 6.0) & (unit >= 5)  # units 5 and 6 started during period 5
    seen = ~(partly & (period == 5.0))
    args = (y[seen], unit[seen], period[seen], cohort[seen], 2, 2)
    fit = stacked_did(*args, left_out=_partly(unit, cohort, partly))
    rest = ~partly
    alone = stacked_did(y[rest], unit[rest], period[rest], cohort[rest], 2, 2)
    assert [(s.cohort, s.n_treated, s.n_control) for s in fit.included] == [
        (3.0, 3, 5),
        (6.0, 2, 3),
    ]
    np.testing.assert_allclose(fit.estimate, alone.estimate, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fit.vcov, alone.vcov, rtol=1e-10)


def test_stacked_refuses_waves_with_transition_periods_and_names_them(tmp_path):
    """Every wave's first period is a transition period (left out): stacked DiD needs event
    time 0 of each sub-experiment's units, so every cohort is trimmed, and the error names
    the waves' transition periods (it blamed the partial-period rule, found in review)."""
    path = _with(
        _design(tmp_path, "never_treated", axis="period", skip=1),
        "  - {id: stacked, estimator: stacked, options: {kappa_pre: 1, kappa_post: 1}}\n",
    )
    run = next(r for r in pe.evaluate(path).runs if r.analysis.id == "stacked")
    assert run.status == "not_estimable"
    assert "transition periods" in run.note and "rollout transition_periods" in run.note
    assert "read callaway_santanna, imputation or sun_abraham" in run.note


def test_stacked_refuses_left_out_cells_naming_no_unit_of_the_data():
    """Left-out cells whose labels are of another type than the units' ('3' for 3) would
    silently leave nothing out: a ValueError instead."""
    from pathfinder_eval.estimators.did.stacked import stacked_did

    y, unit, period, cohort = _staggered({4.0: 5, np.inf: 4})
    with pytest.raises(ValueError, match="names no unit of the data"):
        stacked_did(y, unit, period, cohort, left_out=(np.array(["3"]), np.array([3.0])))
