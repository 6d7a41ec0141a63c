"""Tidy readers: CSV / Parquet / Stata round trips and their errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import pathfinder_eval as pe
from pathfinder_eval.data.la_lookup import la_table
from pathfinder_eval.data.tidy import read_tidy
from pathfinder_eval.errors import DataError

FRAME = pd.DataFrame(
    {
        "unit": ["805", "806", "807"],
        "period": [2023, 2024, 2025],
        "outcome": ["repeat_referrals"] * 3,
        "value": [22.5, 18.0, 31.25],
    }
)


def _check(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == list(FRAME.columns)
    assert [str(u) for u in frame["unit"]] == ["805", "806", "807"]
    assert frame["period"].astype(int).tolist() == [2023, 2024, 2025]
    assert frame["value"].tolist() == [22.5, 18.0, 31.25]


def test_csv_with_bom_round_trip(tmp_path):
    path = tmp_path / "outcomes.csv"
    FRAME.to_csv(path, index=False, encoding="utf-8-sig")
    assert path.read_bytes()[:3] == b"\xef\xbb\xbf"
    frame = read_tidy(path)
    assert frame.columns[0] == "unit"
    _check(frame)


def test_parquet_round_trip(tmp_path):
    path = tmp_path / "outcomes.parquet"
    FRAME.to_parquet(path, index=False)
    _check(read_tidy(path))


def test_stata_round_trip(tmp_path):
    path = tmp_path / "outcomes.dta"
    FRAME.to_stata(path, write_index=False, version=118)
    _check(read_tidy(path))


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".dta"])
def test_empty_file(tmp_path, suffix):
    path = tmp_path / f"empty{suffix}"
    path.write_bytes(b"")
    with pytest.raises(DataError, match="file is empty"):
        read_tidy(path)


def test_header_only_csv_has_no_rows(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("unit,period,value\n", encoding="utf-8")
    with pytest.raises(DataError, match="no data rows"):
        read_tidy(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_tidy(tmp_path / "absent.parquet")


def test_unknown_extension_lists_the_known_ones(tmp_path):
    path = tmp_path / "outcomes.xlsx"
    path.write_bytes(b"PK")
    with pytest.raises(DataError) as err:
        read_tidy(path)
    assert "'.xlsx'" in str(err.value) and ".parquet" in str(err.value)


@pytest.mark.parametrize("suffix", [".parquet", ".dta"])
def test_unreadable_binary_names_the_format(tmp_path, suffix):
    path = tmp_path / f"renamed{suffix}"
    path.write_text("unit,period\n805,2024\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_tidy(path)
    assert f"cannot be read as {suffix[1:]}" in str(err.value)
    assert "renamed" in str(err.value) and "Fix:" in str(err.value)


def test_a_csv_that_is_not_utf8_says_so(tmp_path):
    """A UTF-16 export was 'cannot be read as csv (UnicodeDecodeError ...)', with the fix
    'check that the file really is csv (not renamed)'."""
    path = tmp_path / "d.csv"
    path.write_text("la,year,rate\nDorset,2019,9.5\n", encoding="utf-16")
    with pytest.raises(DataError) as err:
        read_tidy(path)
    text = err.value.one_line()
    assert text.startswith("d.csv: is not UTF-8 text (byte b'\\xff' at byte 0)")
    assert text.endswith(
        "Fix: save it as 'CSV UTF-8' (a spreadsheet's plain 'CSV' may use another encoding)"
    )


def test_a_csv_row_with_a_value_too_many_is_named(tmp_path):
    """Its first column became the index and every value moved one column left."""
    path = tmp_path / "d.csv"
    path.write_text("la,year,rate\nDorset,2019,9.5,1\nDorset,2020,10.0\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"line 2 has 4 fields, the header 3"):
        read_tidy(path)
    path.write_text("la,year,rate\nDorset,2019,9.5,\nDorset,2020,10.0,\n", encoding="utf-8")
    assert read_tidy(path)["rate"].tolist() == [9.5, 10.0]  # a comma ending every line


def test_a_name_two_las_have_had_is_the_la_of_the_rows_year(tmp_path):
    """'Dorset' is the county (835) to reporting year 2019 and the unitary (838, another
    boundary) from 2020: every Dorset row became 838, so a treated LA's pre-start series
    joined the old county's (family_help's TWFE −1.644 where the codes give 0.294). The
    county's rows are then left out and counted, as the official data's harmonisation leaves
    them out (they were kept as a comparison unit beside the treated unitary)."""
    from pathfinder_eval.data.load import load_outcomes
    from pathfinder_eval.spec import load_design

    design = tmp_path / "d.yaml"
    design.write_text(
        "name: d\ntitle: D\npilot: custom\nunit_level: local_authority\n"
        "time: {axis: reporting_year}\n"
        "rollout:\n  - {wave: W1, start: 2022-07-01, units: [Dorset]}\n"
        "comparison: {pool: never_treated, min_units: 1}\n"
        "outcomes:\n  - {column: rate}\nanalyses:\n  - {id: twfe, estimator: twfe}\n"
        "data:\n  source: tidy\n  columns: {unit: la, period: year}\n"
    )
    rows = [f"{la},{y},{10 + y % 7}" for la in ("Dorset", "Bolton") for y in range(2017, 2024)]
    data = tmp_path / "d.csv"
    data.write_text("la,year,rate\n" + "\n".join(rows) + "\n")
    loaded = load_outcomes(load_design(design), data, 0)
    dorset = loaded.frame[loaded.frame["unit"].isin(["835", "838"])]
    assert dict(zip(dorset["period"], dorset["unit"], strict=True)) == {
        y: "838" for y in range(2020, 2024)
    }
    (county,) = loaded.exclusions
    assert (county.count, county.units, county.outcome) == (3, ("835",), "rate")
    assert county.reason.endswith("(break): old unit not comparable with the new units")
    assert any("Dorset" in r for r in loaded.reorganisations)


def test_whole_number_ids_stored_as_floats_are_integers(tmp_path):
    """A Stata file's numeric LA codes came back as '838.0', 'not a local authority'."""
    from pathfinder_eval.data.tidy import unit_ids

    raw = pd.DataFrame({"la": [838.0, 925.0, float("nan")], "cl": [1.5, 2.0, 3.0]})
    assert unit_ids(raw.iloc[:2], "la", "d.dta").tolist() == ["838", "925"]
    assert unit_ids(raw, "cl", "d.dta").tolist() == ["1.5", "2.0", "3.0"]  # not all whole


def test_a_former_gss_code_is_its_la():
    """DfE's files give Buckinghamshire E10000002 to 2020, North Yorkshire E10000023 and
    Somerset E10000027 to 2023 (same boundary and three-digit code after): a tidy file keyed
    by them was refused ('is not a local authority')."""
    import re
    from importlib.resources import files

    from pathfinder_eval.data.la_lookup import resolve_la

    notes = (files("pathfinder_eval.data") / "reorganisations.yaml").read_text(encoding="utf-8")
    pattern = r'old_units: \["(\d{3})"\]\n.*\n  note: new_la_code (E\d{8})'
    former = dict(re.findall(pattern, notes))
    assert former == {"825": "E10000002", "815": "E10000023", "933": "E10000027"}
    for code, gss in former.items():
        assert resolve_la(gss).la_code == code


def test_a_former_la_can_be_excluded_from_the_comparisons(tmp_path):
    """Tidy data may hold abolished LAs (Northamptonshire, 928, to 2021); comparison.exclude
    refused them ('a former local authority ... name 940, 941 instead'), so they could not
    be left out."""
    from pathfinder_eval.spec import load_design

    design = tmp_path / "d.yaml"
    design.write_text(
        "name: d\ntitle: D\npilot: custom\nunit_level: local_authority\n"
        "time: {axis: reporting_year}\n"
        "rollout:\n  - {wave: W1, start: 2022-07-01, units: [Bolton]}\n"
        "comparison: {pool: never_treated, min_units: 1, exclude: [Northamptonshire, '909'],\n"
        "  exclude_reason: abolished}\n"
        "outcomes:\n  - {column: rate}\nanalyses:\n  - {id: twfe, estimator: twfe}\n"
        "data:\n  source: tidy\n  columns: {unit: la, period: year}\n"
    )
    assert load_design(design).comparison.exclude == ("928", "909")


REGION_DESIGN = """
name: rcc_tidy
title: A region-level pilot on tidy data
pilot: rcc
unit_level: region
time: {axis: reporting_year, first: 2021, last: 2025, partial_period_rule: any_exposure}
groups:
  Greater Manchester:
    members: [Bolton, Bury, Manchester, Oldham, Rochdale, Salford, Stockport, Tameside,
              Trafford, Wigan]
rollout:
  - {wave: RCC, start: 2024-04-01, units: [Greater Manchester]}
comparison: {pool: never_treated, exclude: [Dorset], exclude_reason: another pilot}
outcomes:
  - {column: rate, numerator: events, denominator: children, scale: per_10000}
analyses:
  - {id: sdid, estimator: synthetic_did, options: {replications: 50}}
data: {source: tidy, columns: {unit: la, period: year}}
seed: 3
"""


def test_a_region_level_design_reads_las_by_name_as_by_code(tmp_path):
    """Member LAs named in tidy data as the groups name them left the group without rows
    ('treated unit Greater Manchester has no rows in the data'; the same rows with DfE codes
    ran; found in review): named and coded rows give the same analysis."""
    table = la_table()
    table = table[table["last_year"] >= 2025]
    rng = np.random.default_rng(3)
    rows = []
    for _, la in table.iterrows():
        children, base = int(rng.uniform(2000, 40000)), rng.uniform(20, 120)
        for year in range(2021, 2026):
            events = int(rng.poisson(base * children / 1e5 + 1))
            rows.append((la["la_name"], la["la_code"], year, events, children))
    frame = pd.DataFrame(rows, columns=["name", "code", "year", "events", "children"])
    design = tmp_path / "d.yaml"
    design.write_text(REGION_DESIGN)
    by_name = pe.evaluate(design, frame.drop(columns="code").rename(columns={"name": "la"}))
    by_code = pe.evaluate(design, frame.drop(columns="name").rename(columns={"code": "la"}))
    (named,), (coded,) = by_name.runs, by_code.runs
    assert named.result is not None and named.result.n_treated == 1
    pd.testing.assert_frame_equal(named.result.table, coded.result.table)
    assert "Dorset" not in set(by_name.panel.units["name"])  # the exclusion matched by name


def test_a_groups_own_rows_keep_a_name_a_former_la_had(tmp_path):
    """A group named Cumbria, given by its own rows: the name resolved to the former LA 909
    and the group lost its rows ('treated unit Cumbria has no rows'; found in review)."""
    table = la_table()
    table = table[(table["last_year"] >= 2025)]
    members = ("Cumberland", "Westmorland and Furness")
    rng = np.random.default_rng(3)
    rows = []
    for name in [*table.loc[~table["la_name"].isin(members), "la_name"], "Cumbria"]:
        children, base = int(rng.uniform(2000, 40000)), rng.uniform(20, 120)
        for year in range(2021, 2026):
            rows.append((name, year, int(rng.poisson(base * children / 1e5 + 1)), children))
    frame = pd.DataFrame(rows, columns=["la", "year", "events", "children"])
    design = tmp_path / "d.yaml"
    design.write_text(
        REGION_DESIGN.replace("Greater Manchester", "Cumbria").replace(
            "members: [Bolton, Bury, Manchester, Oldham, Rochdale, Salford, Stockport, Tameside,\n"
            "              Trafford, Wigan]",
            "members: [Cumberland, Westmorland and Furness]",
        )
    )
    (run,) = pe.evaluate(design, frame).runs
    assert run.result is not None and run.result.n_treated == 1
