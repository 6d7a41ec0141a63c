"""Triple differences (a design's `contrasts`, `minus=` in the API): every DiD estimator on
the within-LA contrast of a targeted and an untargeted group. diff-diff's TripleDifference (a
port of Ortiz-Villavicencio & Sant'Anna 2025) on a simulated panel
(tests/reference/diff_diff_triple, script beside the values), linearity, and the design
file's checks, ledger and report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pathfinder_eval as pe
from pathfinder_eval.errors import DesignError, PanelError
from pathfinder_eval.spec import load_design

REF = Path(__file__).parent / "reference" / "diff_diff_triple"
# The same group-time means in a different order of summation: rounding only.
TOL = 1e-10
COLS = dict(unit="la", time="year", first_treated="cohort")


@pytest.fixture(scope="module")
def wide() -> pd.DataFrame:
    long = pd.read_csv(REF / "panel.csv")
    out = long.pivot_table(index=["la", "year", "cohort"], columns="targeted", values="y")
    return out.reset_index().rename(columns={0: "y0", 1: "y1"})


def test_matches_diff_diff_triple_difference(wide):
    """Staggered DDD with never-treated comparisons, varying and universal base periods:
    the overall ATT and the 14 group-time effects of each to 1e-10; the 2 × 2 × 2 DDD as TWFE
    on the contrast of two periods."""
    ref = pd.read_csv(REF / "values.csv")
    for base in ("varying", "universal"):
        rows = ref[ref["fit"] == f"staggered_{base}"]
        res = pe.callaway_santanna(
            wide,
            outcome="y1",
            minus="y0",
            control_group="never_treated",
            method="reg",
            aggregation="simple",
            base_period=base,
            **COLS,
        )
        assert res.outcome == "y1_minus_y0"
        assert res.table["estimate"].iloc[0] == pytest.approx(rows["estimate"].iloc[0], rel=TOL)
        ours = {(g["cohort"], g["period"]): g["estimate"] for g in res.facts.att_gt}
        theirs = rows.iloc[1:]
        assert len(theirs) == 14
        for r in theirs.itertuples():
            assert ours.pop((r.cohort, r.year)) == pytest.approx(r.estimate, rel=TOL, abs=1e-12)
        # with a universal base period R's did (and we) also list the reference cells, at 0
        assert ours == ({} if base == "varying" else {(4.0, 3.0): 0.0, (6.0, 5.0): 0.0})
    two = wide[wide["year"].isin([5, 6]) & wide["cohort"].isin([0, 6])]
    ddd = pe.twfe(two, outcome="y1", minus="y0", inference="cluster_robust", **COLS)
    expected = ref.loc[ref["fit"] == "two_by_two_by_two", "estimate"].iloc[0]
    assert ddd.table["estimate"].iloc[0] == pytest.approx(expected, rel=TOL)


def test_contrast_estimate_is_the_difference_of_the_two_dids(wide):
    """Each estimator is linear in the outcomes over the same cells, so its DDD equals its
    estimate for the targeted group minus that for the untargeted group (every row)."""
    for fit in (pe.imputation, pe.stacked, pe.sun_abraham):
        ddd = fit(wide, outcome="y1", minus="y0", **COLS).table["estimate"].to_numpy()
        one = fit(wide, outcome="y1", **COLS).table["estimate"].to_numpy()
        zero = fit(wide, outcome="y0", **COLS).table["estimate"].to_numpy()
        np.testing.assert_allclose(ddd, one - zero, atol=1e-10)


def test_api_rejects_minus_with_counts(wide):
    with pytest.raises(DesignError, match="minus contrasts two outcome columns"):
        pe.twfe(wide, outcome="y1", minus="y0", counts="y1", population="y0", **COLS)


DESIGN = """
name: ddd
title: triple difference
pilot: custom
unit_level: cluster
time: {{axis: period}}
rollout:
  - {{wave: w4, start: 4, units: [{w4}]}}
  - {{wave: w6, start: 6, units: [{w6}]}}
comparison: {{pool: never_treated, min_units: 2}}
outcomes: [{{column: y1{scale}}}, {{column: y0}}]
contrasts: [{{id: gap, outcome: y1, minus: {minus}, name: Targeted minus untargeted}}]
analyses:
  - id: cs
    estimator: callaway_santanna
    outcomes: [gap]
    options: {{control_group: never_treated, method: reg, aggregation: simple}}
  - {{id: twfe, estimator: twfe}}
data: {{source: tidy, columns: {{unit: la, period: year}}}}
"""


def _design(tmp_path, wide, minus="y0", scale=""):
    first = wide.groupby("la")["cohort"].first()
    path = tmp_path / "ddd.yaml"
    path.write_text(
        DESIGN.format(
            w4=", ".join(first.index[first == 4]),
            w6=", ".join(first.index[first == 6]),
            minus=minus,
            scale=scale,
        )
    )
    return path


def test_design_file_contrast_ledger_and_report(tmp_path, wide):
    """Through a design file: the contrast is an outcome of its own (analysed by the
    analyses that name it or `all`), a cell without the untargeted value is counted in the
    ledger against the contrast, and the report names the contrast."""
    # levels above 0, as rates are (a measure with negative values gets no relative MDES)
    data = wide.drop(columns="cohort").assign(y1=wide["y1"] + 10, y0=wide["y0"] + 10)
    data.loc[(data["la"] == "la00") & (data["year"] == 2), "y0"] = np.nan
    data.loc[(data["la"] == "la01") & (data["year"] == 3), ["y0", "y1"]] = np.nan
    ev = pe.evaluate(_design(tmp_path, wide), data=data)
    runs = {(r.analysis.id, r.outcome): r for r in ev.runs}
    assert set(runs) == {("cs", "gap"), ("twfe", "y1"), ("twfe", "y0"), ("twfe", "gap")}
    assert all(r.status == "ok" for r in runs.values())
    gap = ev.panel.outcome_cells("gap")
    assert len(gap) == len(wide) - 2
    y1 = ev.panel.outcome_cells("y1").set_index(["unit", "period"])["y"]
    y0 = ev.panel.outcome_cells("y0").set_index(["unit", "period"])["y"]
    got = gap.set_index(["unit", "period"])["y"]
    np.testing.assert_allclose(got, (y1 - y0).dropna().loc[got.index], atol=1e-12)
    entry = [e for e in ev.panel.exclusions if e.outcome == "gap"]
    assert [(e.reason, e.count, e.units) for e in entry] == [
        ("y1 without a usable y0 value in the same unit and period", 1, ("la00",)),
        # a row with neither was counted against each outcome but not against the contrast
        ("neither y1 nor y0 usable in the same unit and period", 1, ("la01",)),
    ]
    # what the contrast could detect is read against the targeted group's level
    y1_cells = ev.panel.outcome_cells("y1")
    before = y1_cells.loc[(y1_cells["role"] == "treated") & (y1_cells["treated"] == 0), "y"]
    assert runs[("cs", "gap")].detectable.baseline == pytest.approx(before.mean(), rel=1e-12)
    paths = pe.report(ev, tmp_path / "out")
    html = next(p for p in paths if p.suffix == ".html").read_text()
    assert "Targeted minus untargeted" in html
    assert "y1 without a usable y0 value in the same unit and period" in html


def test_design_file_contrast_errors(tmp_path, wide):
    with pytest.raises(DesignError, match="not an outcome of the design") as err:
        load_design(_design(tmp_path, wide, minus="y9"))
    assert err.value.where == "contrasts[0].minus"
    data = wide.drop(columns="cohort")
    with pytest.raises(PanelError, match="on the percent scale"):
        pe.evaluate(_design(tmp_path, wide, scale=", scale: percent"), data=data)


def test_contrast_size_is_the_effective_size_of_a_difference_of_rates(tmp_path, wide):
    """Outcomes recomputed from counts: the contrast's denominator is 1/(1/d₁ + 1/d₀), which
    the pooled variance reads as the unit's size; its value is the difference of the rates."""
    rng = np.random.default_rng(4)
    d1 = rng.integers(5_000, 50_000, len(wide)).astype(float)
    d0 = rng.integers(5_000, 50_000, len(wide)).astype(float)
    data = wide.drop(columns=["cohort", "y0", "y1"]).assign(
        n1=rng.poisson(300, len(wide)).astype(float), d1=d1, n0=rng.poisson(200, len(wide)), d0=d0
    )
    design = _design(tmp_path, wide).read_text()
    design = design.replace(
        "outcomes: [{column: y1}, {column: y0}]",
        "outcomes: [{column: y1, numerator: n1, denominator: d1, scale: per_10000}, "
        "{column: y0, numerator: n0, denominator: d0, scale: per_10000}]",
    )
    path = tmp_path / "rates.yaml"
    path.write_text(design)
    ev = pe.evaluate(path, data=data)
    gap = ev.panel.outcome_cells("gap").sort_values(["unit", "period"])
    np.testing.assert_allclose(gap["denominator"], 1 / (1 / d1 + 1 / d0), rtol=1e-12)
    rates = data["n1"] / d1 * 10_000 - data["n0"] / d0 * 10_000
    np.testing.assert_allclose(gap["y"], rates, rtol=1e-9)


def test_plan_records_contrasts(tmp_path, wide):
    """A registered plan holds the contrasts (and a design without any keeps its old hash);
    changing what a contrast subtracts is a deviation."""
    from pathfinder_eval.analysis_plan import decisions, deviations

    spec = load_design(_design(tmp_path, wide))
    planned = decisions(spec)
    assert planned["contrasts"]["gap"]["minus"] == "y0"
    assert "contrasts" not in decisions(spec.model_copy(update={"contrasts": ()}))
    changed = spec.model_copy(
        update={"contrasts": (spec.contrasts[0].model_copy(update={"minus": "y1"}),)}
    )
    found = [d.what for d in deviations(planned, decisions(changed))]
    assert found == ["contrast gap: minus changed from y0 to y1"]
