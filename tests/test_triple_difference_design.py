"""A design's `triple_difference` (data.source: records with columns individual and eligible):
the design-file route to pe.triple_difference. Reference: moderndid's `ddd` on the same
children (tests/reference/moderndid_ddd, script beside the values); the API on the same
records with cluster=<the LA> gives the same result exactly."""

from __future__ import annotations

import json
from html import unescape
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pathfinder_eval as pe
from pathfinder_eval.cli import main
from pathfinder_eval.errors import DataError, DesignError

REF = Path(__file__).parent / "reference" / "moderndid_ddd"
PANEL = REF / "panel.csv"
TOL = 1e-8  # as test_triple_difference_units: the logits converge to within 1e-12

DESIGN = """
name: ddd_children
title: Children's triple difference
pilot: family_help
unit_level: cluster
time: {{axis: period{window}}}
rollout:
{waves}
comparison: {{pool: never_treated, min_units: 1}}
outcomes: [{{column: y}}]
analyses:
  - id: ddd
    estimator: triple_difference
    options: {options}
    inference: {{method: {inference}}}
data:
  source: records
  columns: {{unit: la, period: year, individual: child, eligible: eligible{columns}}}
"""


@pytest.fixture(scope="module")
def children() -> pd.DataFrame:
    return pd.read_csv(PANEL)


def _design(
    tmp_path: Path,
    children: pd.DataFrame,
    options: str = "{}",
    inference: str = "default",
    columns: str = ", covariates: [age, need]",
    window: str = "",
) -> Path:
    starts = children.groupby("la")["start"].first()
    waves = "\n".join(
        f"  - {{wave: w{s}, start: {s}, units: [{', '.join(g.index)}]}}"
        for s, g in starts[starts > 0].groupby(starts[starts > 0])
    )
    path = tmp_path / "ddd_children.yaml"
    path.write_text(
        DESIGN.format(
            waves=waves, options=options, inference=inference, columns=columns, window=window
        )
    )
    return path


def _written(path: Path, waves: str, axis: str = "period") -> Path:
    """DESIGN with these rollout lines and time axis and the default options, at `path`."""
    text = DESIGN.format(waves=waves, options="{}", inference="default", columns="", window="")
    path.write_text(text.replace("axis: period", f"axis: {axis}"))
    return path


def _run(design: Path, data: Path, out: Path) -> dict:
    assert main(["run", str(design), "--data", str(data), "--out", str(out)]) == 0
    (run,) = json.loads((out / "ddd_children.json").read_text())["analyses"]
    return run


def test_the_cli_reproduces_moderndid_and_the_api(tmp_path, children):
    """Every ATT(g,t) of moderndid's ddd (dr, varying base, covariates age and need) through
    `pathfinder-eval run`, and the API's estimates, SEs and df with cluster="la"."""
    design = _design(tmp_path, children, "{covariates: [age, need], base_period: varying}")
    run = _run(design, PANEL, tmp_path / "o")
    ref = pd.read_csv(REF / "values.csv")
    ref = ref[(ref["fit"] == "dr_varying") & (ref["kind"] == "cell")]
    cells = {(c["cohort"], c["period"]): c for c in run["diagnostics"]["att_gt"]}
    assert len(cells) == len(ref) == 14
    for r in ref.itertuples():
        assert cells[(r.cohort, float(r.year))]["estimate"] == pytest.approx(
            r.estimate, rel=TOL, abs=1e-10
        )
    api = pe.triple_difference(
        children,
        outcome="y",
        unit="child",
        time="year",
        first_treated="start",
        eligible="eligible",
        covariates=["age", "need"],
        base_period="varying",
        cluster="la",
    )
    ours = pd.DataFrame(run["estimates"])
    assert list(ours["term"]) == list(api.table["term"])
    for col in ("estimate", "std_error", "df", "ci_lower", "ci_upper"):
        np.testing.assert_allclose(ours[col], api.table[col], rtol=1e-12)
    assert run["inference_used"]["key"] == "ddd_cr2"
    assert run["inference_used"]["chosen_by_default"] is True
    assert (run["n_units"], run["n_treated"], run["n_obs"]) == (24, 17, 24 * 8)
    html = (tmp_path / "o" / "ddd_children.html").read_text()
    assert "Triple differences on unit-level records" in html
    assert "CR2 by LA with Bell-McCaffrey df" in html  # the headline's short name
    # the analysis section: event chart, pre-test, and the people by group, rounded to 5
    text = unescape(html)
    groups = api.facts.units_by_subgroup
    people = "; ".join(f"{k} {5 * round(v / 5):,}" for k, v in groups.items())
    assert f"People by group: {people} (in 24 LAs, 17 with" in text
    assert "Event-study chart for y" in text
    pre = api.facts.pretest
    assert (
        "before the start is zero (Wald, with the standard errors' covariance): "
        f"χ²({pre['df']}) = {pre['statistic']:.2f}"
    ) in text


def test_not_yet_treated_and_cluster_robust_from_python(tmp_path, children):
    """pe.evaluate on a data frame, not-yet-treated comparisons and the influence-function
    variance summed by LA: the API's numbers with inference="influence_function"."""
    design = _design(
        tmp_path, children, "{control_group: not_yet_treated}", "cluster_robust", columns=""
    )
    ev = pe.evaluate(design, children)
    (run,) = ev.runs
    res = run.result
    api = pe.triple_difference(
        children,
        outcome="y",
        unit="child",
        time="year",
        first_treated="start",
        eligible="eligible",
        control_group="not_yet_treated",
        cluster="la",
        inference="influence_function",
    )
    for col in ("estimate", "std_error", "df"):
        np.testing.assert_allclose(res.table[col], api.table[col], rtol=1e-12)
    assert res.inference.key == "ddd_clustered" and not res.inference.chosen_by_default
    assert res.table["df"].iloc[0] == 23  # t(G − 1) with 24 LAs
    assert any(c.get("comparison_weights") for c in res.facts.att_gt)


def test_the_time_window_applies_as_to_every_analysis(tmp_path, children):
    """time.first drops 2018's records in the panel (counted there); the triple difference
    then equals the API on the records from 2019."""
    design = _design(tmp_path, children, columns="", window=", first: 2019")
    (run,) = pe.evaluate(design, children).runs
    later = children[children["year"] >= 2019]
    api = pe.triple_difference(
        later,
        outcome="y",
        unit="child",
        time="year",
        first_treated="start",
        eligible="eligible",
        cluster="la",
    )
    np.testing.assert_allclose(run.result.table["estimate"], api.table["estimate"], rtol=1e-12)
    periods = [c["period"] for c in run.result.facts.att_gt]
    assert min(periods) == 2019 and len(periods) == 14 - 2  # 2018's cell of each cohort gone


def test_counts_of_people_are_disclosure_controlled(tmp_path, children):
    """The counts of children in the JSON are rounded to 5 (the default); they are one linked
    set (a cell's other children are three subgroups' children), so a count below 10
    suppresses them all: 6 never-treated eligible children would otherwise come back as a
    cell's other children less the two ineligible subgroups."""
    design = _design(tmp_path, children, inference="cluster_robust", columns="")
    run = _run(design, PANEL, tmp_path / "all")
    raw = pe.evaluate(design, children).runs[0].result.facts
    shown = run["diagnostics"]
    for k, v in raw.units_by_subgroup.items():
        assert shown["units_by_subgroup"][k] == 5 * round(v / 5)
    for ours, theirs in zip(shown["att_gt"], raw.att_gt, strict=True):
        assert ours["treated_eligible_units"] == 5 * round(theirs["treated_eligible_units"] / 5)
        assert ours["other_units"] == 5 * round(theirs["other_units"] / 5)
    never_eligible = children[(children["start"] == 0) & (children["eligible"] == 1)]
    kept = never_eligible.loc[never_eligible["la"] == "la10", "child"].unique()[:6]
    few = children[~children["child"].isin(set(never_eligible["child"]) - set(kept))]
    data = tmp_path / "few.csv"
    few.to_csv(data, index=False)
    run = _run(design, data, tmp_path / "few")
    raw = pe.evaluate(design, few).runs[0].result.facts
    assert raw.units_by_subgroup["never-treated eligible"] == 6
    shown = run["diagnostics"]
    assert set(shown["units_by_subgroup"].values()) == {None}
    assert {c[k] for c in shown["att_gt"] for k in ("treated_eligible_units", "other_units")} == {
        None
    }
    text = unescape((tmp_path / "few" / "ddd_children.html").read_text())
    assert "People by group: treated eligible a suppressed number of;" in text


def test_designs_it_cannot_run_on_are_refused_at_load(tmp_path, children):
    design = _design(tmp_path, children, columns="")
    text = design.read_text()
    design.write_text(text.replace(", eligible: eligible", ""))
    with pytest.raises(DesignError, match=r"data\.columns\.eligible not given") as info:
        pe.evaluate(design, children)
    assert info.value.where == "analyses[0].estimator" and "contrast" in info.value.fix
    design.write_text(text.replace("options: {}", "options: {covariates: [age]}"))
    with pytest.raises(DesignError, match="'age' is not one of the records' covariates") as info:
        pe.evaluate(design, children)
    assert info.value.where == "analyses[0].options.covariates[0]"
    design.write_text(text.replace("source: records", "source: tidy"))
    with pytest.raises(DesignError, match=r"columns\.eligible need individual records"):
        pe.evaluate(design, children)


def test_bad_records_name_file_column_and_row(tmp_path, children, capsys):
    """Exit code 2, no traceback, no report; the error names the file, its column and row."""
    design = _design(tmp_path, children, columns="")
    bad = children.copy()
    bad.loc[40, "eligible"] = 2
    data = tmp_path / "bad.csv"
    bad.to_csv(data, index=False)
    out = tmp_path / "o"
    assert main(["run", str(design), "--data", str(data), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "bad.csv" in err and "column eligible" in err and "row 41" in err
    assert "Traceback" not in err and not out.exists()
    moved = children.copy()
    child = moved.loc[100, "child"]
    rows = moved.index[moved["child"] == child]
    moved.loc[rows[-1], "la"] = "la00" if moved.loc[100, "la"] != "la00" else "la08"
    with pytest.raises(DataError, match="changes its cluster over time") as info:
        pe.evaluate(design, moved)
    assert info.value.where == "column la" and info.value.row == rows[0] + 1  # its first


def test_starts_after_an_outcomes_records_are_counted_in_las(tmp_path, children):
    """y ends in 2022 while y2 runs on: for y the 2023 LAs are compared as never treated, and
    the note counts LAs, not children (a count of children outside disclosure control)."""
    kids = children.assign(y2=children["y"] + 1.0)
    kids.loc[kids["year"] >= 2023, "y"] = np.nan
    design = _design(tmp_path, children, columns="")
    design.write_text(
        design.read_text().replace(
            "outcomes: [{column: y}]", "outcomes: [{column: y}, {column: y2}]"
        )
    )
    runs = {r.outcome: r for r in pe.evaluate(design, kids).runs}
    late = [w for w in runs["y"].result.warnings if "start after" in w]
    assert late == [
        "10 LAs start after the last period of y's records (2022): compared as never treated, "
        "as R's did does"
    ]
    assert not any("start after" in w for w in runs["y2"].result.warnings)


def test_a_start_period_without_records_fails_this_analysis_only(tmp_path, children):
    """No records in 2021, when an LA wave starts: the triple difference is not estimable and
    says why; Callaway & Sant'Anna in the same design still runs."""
    design = _design(tmp_path, children, columns="")
    design.write_text(
        design.read_text().replace(
            "analyses:\n", "analyses:\n  - {id: cs, estimator: callaway_santanna}\n"
        )
    )
    runs = {r.analysis.id: r for r in pe.evaluate(design, children[children["year"] != 2021]).runs}
    assert runs["cs"].status == "ok"
    assert runs["ddd"].status == "not_estimable"
    assert "LAs start in 2021, a period with no records of y" in runs["ddd"].note


@pytest.mark.parametrize("store", ["parquet", "object frame"])
def test_float_la_ids_match_the_kept_records(tmp_path, children, store):
    """LA ids stored as floats (Parquet, Stata, or Python floats in an object column) read
    value by value as the integers they are ("3", as the tidy reader reads 838.0) in the cell
    summaries and in the kept records alike (once the summaries said "3.0" and the records
    "3", so no record matched), as the chunked and Dask routes read them; the rollout names
    them so."""
    floats = children.assign(la=children["la"].str[2:].astype(float))
    if store == "object frame":
        floats["la"] = floats["la"].astype(object)
    starts = floats.groupby("la")["start"].first()
    quoted = {u: f'"{int(u)}"' for u in starts.index}  # YAML text, not numbers
    waves = "\n".join(
        f"  - {{wave: w{s}, start: {s}, units: [{', '.join(quoted[u] for u in g.index)}]}}"
        for s, g in starts[starts > 0].groupby(starts[starts > 0])
    )
    design = _written(tmp_path / "float.yaml", waves)
    (tmp_path / "names").mkdir()
    (named,) = pe.evaluate(_design(tmp_path / "names", children, columns=""), children).runs
    if store == "parquet":
        floats.to_parquet(tmp_path / "floats.parquet")
        run = _run(design, tmp_path / "floats.parquet", tmp_path / "o")
        estimate, n_units = run["estimates"][0]["estimate"], run["n_units"]
    else:
        (ours,) = pe.evaluate(design, floats).runs
        estimate, n_units = ours.result.table["estimate"][0], ours.result.n_units
    assert estimate == pytest.approx(named.result.table["estimate"][0], rel=1e-12)
    assert n_units == 24


def test_a_person_moving_la_names_the_la_column(tmp_path, children):
    moved = children.copy()
    rows = moved.index[moved["child"] == "la03c00"]
    moved.loc[rows[-1], "la"] = "la00"  # never treated
    with pytest.raises(DataError, match="person 'la03c00' changes its cluster over time") as info:
        pe.evaluate(_design(tmp_path, children, columns=""), moved)
    assert info.value.where == "column la" and info.value.row == rows[0] + 1


def test_groups_of_las_are_refused(tmp_path, children):
    """unit_level: region (a group of LAs treated together): the records name LAs, the panel
    groups, so the children would fall outside every cell; refused at load."""
    design = _written(tmp_path / "region.yaml", "  - {wave: w1, start: 2021, units: [G1]}")
    design.write_text(
        design.read_text()
        .replace("unit_level: cluster", "unit_level: region\ngroups:\n  G1: {members: [E06000001]}")
        .replace("unit: la,", "unit: la_code,")
    )
    with pytest.raises(DesignError, match="units are groups of LAs") as info:
        pe.evaluate(design, children)
    assert info.value.where == "analyses[0].estimator"


def test_eligible_alone_does_not_keep_the_records(tmp_path):
    """data.columns.eligible without individual (no triple difference) leaves the other
    analyses as they were: the records are not kept, so a stepped-wedge LMM stays on its
    cell summaries."""
    from test_stepped_wedge_input_edges import trial_design, trial_records

    records = trial_records().assign(e=lambda f: np.arange(len(f)) % 2)
    path = tmp_path / "d.yaml"
    results = []
    for cols in ("{unit: cl, period: per}", "{unit: cl, period: per, eligible: e}"):
        path.write_text(trial_design().replace("{unit: cl, period: per}", cols))
        ev = pe.evaluate(path, records)
        assert ev.panel.data.records is None
        results.append(ev.runs[0].result.table)
    pd.testing.assert_frame_equal(*results)


def test_warnings_name_periods_as_the_report_does(tmp_path, children):
    """On financial years the engine's notes name periods by their labels (2020-21), not the
    axis's ordinals (2021): here the lone-cluster note of one treated LA per start date."""
    fy = children[(children["start"] == 0) | children["la"].isin(["la03", "la01"])].copy()
    fy["year"] = [f"{y - 1}{y % 100:02d}" for y in fy["year"]]  # EES labels: 202021
    design = _written(
        tmp_path / "fy.yaml",
        "  - {wave: a, start: 2020-04-01, units: [la03]}\n"
        "  - {wave: b, start: 2022-04-01, units: [la01]}",
        "financial_year",
    )
    (run,) = pe.evaluate(design, fy).runs
    (lone,) = [w for w in run.result.warnings if w.startswith("One cluster holds")]
    assert "(ATT(2020-21, 2017-18): the eligible;" in lone
    assert np.isnan(run.result.table["std_error"].iloc[0])  # CR2 has no variance here
    design.write_text(
        design.read_text().replace("options: {}", "options: {control_group: not_yet_treated}")
    )
    (run,) = pe.evaluate(design, fy).runs
    (lone,) = [w for w in run.result.warnings if w.startswith("One cluster holds")]
    assert "ATT(2020-21, 2017-18): the cohort 2022-23 eligible" in lone  # a comparison cohort


def test_an_unreadable_period_label_shows_the_axis_example(tmp_path, children):
    """Records on financial years with a label of another axis: the error names the row and
    shows the axis's own label (202324), not the trial periods' (1, 2, …)."""
    design = _written(
        tmp_path / "fy.yaml", "  - {wave: a, start: 2020-04-01, units: [la03]}", "financial_year"
    )
    fy = children.assign(year=[f"{y - 1}{y % 100:02d}" for y in children["year"]])
    fy.loc[5, "year"] = "2020-21"
    for data in (fy, tmp_path / "fy.csv"):
        fy.to_csv(tmp_path / "fy.csv", index=False)
        with pytest.raises(DataError, match="202324 for 'financial_year'") as info:
            pe.evaluate(design, data)
        assert info.value.row == 6


def _named_las(tmp_path: Path, children: pd.DataFrame) -> tuple[Path, pd.DataFrame]:
    """The children's LAs renamed to the first 24 LAs of the lookup, and an LA-level design on
    reporting years naming them."""
    from pathfinder_eval.data.la_lookup import la_table

    names = dict(zip(sorted(children["la"].unique()), la_table()["la_name"][:24], strict=True))
    kids = children.assign(la=children["la"].map(names))
    starts = kids.groupby("la")["start"].first()
    waves = "\n".join(
        f"  - {{wave: w{s}, start: {s - 1}-04-01, units: [{', '.join(g.index)}]}}"
        for s, g in starts[starts > 0].groupby(starts[starts > 0])
    )
    design = _written(tmp_path / "las.yaml", waves, "reporting_year")
    design.write_text(
        design.read_text().replace("unit_level: cluster", "unit_level: local_authority")
    )
    return design, kids


def test_records_may_name_las_by_name(tmp_path, children):
    """LA-level records naming LAs (Bromley) take their codes, names and regions as tidy data
    do, in the kept records and the chunked summaries alike: before, every treated LA 'had no
    rows'. A misspelt LA, or one LA under two labels, is an error naming the column."""
    design, kids = _named_las(tmp_path, children)
    kids.to_csv(tmp_path / "k.csv", index=False)
    (tmp_path / "ref").mkdir()
    (ref,) = pe.evaluate(_design(tmp_path / "ref", children, columns=""), children).runs
    for data in (kids, tmp_path / "k.csv"):
        ev = pe.evaluate(design, data)
        assert ev.runs[0].result.table["estimate"][0] == pytest.approx(
            ref.result.table["estimate"][0], rel=1e-12
        )
        units = ev.panel.units.set_index("name")
        assert units.loc["Bromley", "unit"] == "305" and units.loc["Bromley", "region"] == "London"
    summaries = design.read_text().replace(", individual: child, eligible: eligible", "")
    summaries = summaries.replace("estimator: triple_difference", "estimator: descriptive")
    (tmp_path / "cells.yaml").write_text(summaries)
    ev = pe.evaluate(tmp_path / "cells.yaml", tmp_path / "k.csv")  # the chunked reader
    assert ev.panel.data.records is None and "305" in set(ev.panel.units["unit"])
    typo = kids.copy()
    typo.loc[3, "la"] = "Bromly"
    with pytest.raises(
        DataError, match=r"'Bromly' is not a local authority \(did you mean 'Bromley'"
    ):
        pe.evaluate(design, typo)
    twice = kids.copy()
    twice.loc[twice.index[:3], "la"] = "306"  # Croydon's code beside its name
    with pytest.raises(DataError, match="LA 306 is named '306' and 'Croydon'"):
        pe.evaluate(design, twice)


def test_a_name_two_las_have_had(tmp_path, children):
    """'Dorset' is the county (835) up to 2019 and the unitary (838) from 2020: its cells take
    each by year; an exclusion, whose year the ledger does not keep, names both; records that
    follow people across the change are refused (each person would move LA), and an LA whose
    records were all left out stays in the unit table."""
    design, kids = _named_las(tmp_path, children)
    never = sorted(kids.loc[kids["start"] == 0, "la"].unique())
    dorset = kids.assign(la=kids["la"].replace({never[0]: "Dorset"}))
    dorset.loc[dorset["la"] == "Dorset", "y"] = np.where(
        dorset.loc[dorset["la"] == "Dorset", "year"] == 2019, np.nan, 1.0
    )
    with pytest.raises(DataError, match=r"'Dorset' names 2 LAs by year \(835, 838\)"):
        pe.evaluate(design, dorset)
    cells = design.read_text().replace(", individual: child, eligible: eligible", "")
    cells = cells.replace("estimator: triple_difference", "estimator: descriptive")
    (tmp_path / "cells.yaml").write_text(cells)
    gone = dorset.copy()
    gone.loc[gone["la"] == never[1], "y"] = np.nan  # every record of this LA left out
    for data in (gone, tmp_path / "gone.csv"):
        gone.to_csv(tmp_path / "gone.csv", index=False)
        ev = pe.evaluate(tmp_path / "cells.yaml", data)
        by_year = ev.panel.data.frame.query("outcome == 'y'").groupby("unit")["period"].agg(set)
        assert by_year["835"] == {2018} and by_year["838"] >= {2020, 2021}
        (missing,) = [e for e in ev.panel.data.exclusions if "835" in e.units]
        assert {"835", "838"} <= set(missing.units)
        assert {"835", "838", _code(never[1])} <= set(ev.panel.data.units["unit"])


def _code(name: str) -> str:
    from pathfinder_eval.data.la_lookup import resolve_la

    return resolve_la(name).la_code


def test_two_outcomes_counts_are_linked_when_unrounded(tmp_path, children):
    """Two triple differences on the same children, one outcome missing for 3 of them: with
    round_to 1 each analysis's counts passed alone, and their difference gave the 3 back; now
    both are suppressed, also rounded to 2 (100 and 97 showed as 100 and 96 or 98). Rounded to
    5 (the default, DfE's base) they are published."""
    d = children.assign(y2=children["y"])
    treated = d.loc[(d["start"] > 0) & (d["eligible"] == 1), "child"].unique()[:3]
    d.loc[d["child"].isin(treated), "y2"] = np.nan
    data = tmp_path / "two.csv"
    d.to_csv(data, index=False)
    design = _design(tmp_path, children, inference="cluster_robust", columns="")
    text = design.read_text().replace(
        "outcomes: [{column: y}]", "outcomes: [{column: y}, {column: y2}]"
    )
    design.write_text(text)
    raw = {r.outcome: r.result.facts for r in pe.evaluate(design, d).runs}
    gap = (
        raw["y"].units_by_subgroup["treated eligible"]
        - raw["y2"].units_by_subgroup["treated eligible"]
    )
    assert gap == 3
    for round_to, hidden in ((5, False), (2, True), (1, True)):
        design.write_text(text + f"report: {{disclosure: {{round_to: {round_to}}}}}\n")
        out = tmp_path / f"r{round_to}"
        assert main(["run", str(design), "--data", str(data), "--out", str(out)]) == 0
        shown = json.loads((out / "ddd_children.json").read_text())
        for a in shown["analyses"]:
            values = set(a["diagnostics"]["units_by_subgroup"].values())
            assert (values == {None}) is hidden, (round_to, a["outcome"])
