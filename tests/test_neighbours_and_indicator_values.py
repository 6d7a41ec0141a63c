"""Statistical-neighbour comparison pools, and indicators computed from the DfE files."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pandas as pd
import pytest

from _data_paths import NEIGHBOURS, NEIGHBOURS_SHA256, PUBLIC_DATA, REPO_ROOT, needs_public_data
from pathfinder_eval.cli import main
from pathfinder_eval.data.neighbours import read_neighbours, resolve_neighbour_pool
from pathfinder_eval.errors import DataError, DesignError
from pathfinder_eval.pipeline import evaluate
from pathfinder_eval.spec import load_design

EXAMPLE = REPO_ROOT / "designs" / "examples" / "family_help_neighbours.yaml"
WAVE_1 = {"838": "Dorset", "925": "Lincolnshire", "336": "Wolverhampton"}
KEPT = {"Extremely close", "Very close", "Close"}


def _from_file(code: str, n: int) -> list[tuple[str, str]]:
    """An LA's first n neighbours read straight from the wide SN file (not via the package)."""
    wide = pd.read_csv(PUBLIC_DATA / NEIGHBOURS, dtype=str, encoding="utf-8-sig")
    row = wide.loc[wide["old_la_code"] == code].iloc[0]
    return [(row[f"SN_{k}"], row[f"SN_{k}P"].strip()) for k in range(1, n + 1)]


@needs_public_data
def test_pool_is_each_treated_las_neighbours_from_the_sn_file():
    spec = resolve_neighbour_pool(load_design(EXAMPLE), PUBLIC_DATA)
    comp = spec.comparison
    assert comp.neighbour_source == (NEIGHBOURS, NEIGHBOURS_SHA256)
    sets = {s.unit: s.neighbours for s in comp.neighbour_sets}
    assert set(sets) == set(WAVE_1)
    for code in WAVE_1:
        expected = [(c, p) for c, p in _from_file(code, 10) if p in KEPT]
        assert list(sets[code]) == expected, code
    # Dorset's ten are all very close; Wolverhampton keeps Walsall (very close) in its set
    assert len(sets["838"]) == 10 and ("335", "Very close") in sets["336"]
    assert comp.units == tuple(sorted({c for s in sets.values() for c, _ in s}))


@needs_public_data
def test_closeness_filter_and_group_neighbours(tmp_path):
    text = EXAMPLE.read_text().replace(
        "closeness: [Extremely close, Very close, Close]", "closeness: [Close]"
    )
    design = tmp_path / "d.yaml"
    design.write_text(text)
    spec = resolve_neighbour_pool(load_design(design), PUBLIC_DATA)
    sets = {s.unit: s.neighbours for s in spec.comparison.neighbour_sets}
    assert sets["838"] == ()  # all of Dorset's neighbours are very close
    assert [c for c, _ in sets["336"]] == [c for c, p in _from_file("336", 10) if p == "Close"]


@needs_public_data
def test_design_with_a_neighbour_pool_runs_and_reports_each_set(tmp_path):
    ev = evaluate(resolve_neighbour_pool(load_design(EXAMPLE), PUBLIC_DATA), PUBLIC_DATA)
    comparison = set(ev.panel.units.loc[ev.panel.units["role"] == "comparison", "unit"])
    pool = set(ev.panel.spec.comparison.units) - set(ev.panel.spec.comparison.exclude)
    assert comparison == pool and "335" not in comparison  # Walsall: in FFC wave 2
    assert len(comparison) == 26
    assert (NEIGHBOURS, NEIGHBOURS_SHA256) in ev.provenance.data_files
    # synthetic control draws each LA's donors from its own neighbours only
    sc = [r for r in ev.runs if r.analysis.id == "synthetic_control" and r.status == "ok"]
    assert sc
    for run in sc:
        for name, unit in run.result.diagnostics["units"].items():
            code = next(c for c, n in WAVE_1.items() if n == name)
            own = {c for c, _ in _from_file(code, 10)}
            assert set(unit["donor_weights"]) <= own, (name, unit["donor_weights"])
    out = tmp_path / "out"
    assert main(["run", str(EXAMPLE), "--data", str(PUBLIC_DATA), "--out", str(out)]) == 0
    html = (out / "family_help_neighbours.html").read_text()
    assert "Statistical neighbours: each treated unit" in html
    assert "Somerset (very close), Devon (very close)" in html
    assert "Walsall (very close; excluded by the design)" in html
    doc = json.loads((out / "family_help_neighbours.json").read_text())
    assert doc["design"]["statistical_neighbours"]["838"][:2] == ["933", "878"]


@needs_public_data
def test_treated_neighbours_are_named_as_treated_not_comparisons(tmp_path):
    """Wolverhampton and Walsall are each other's very close neighbours: with both treated,
    neither is in the pool, and the report says why."""
    text = (
        EXAMPLE.read_text()
        .replace("units: [Dorset, Lincolnshire, Wolverhampton]", "units: [Wolverhampton, Walsall]")
        .replace(
            "exclude: [Luton, Redbridge, Lewisham, Walsall,",
            "exclude: [Luton, Redbridge, Lewisham,",
        )
    )
    design = tmp_path / "d.yaml"
    design.write_text(text)
    ev = evaluate(resolve_neighbour_pool(load_design(design), PUBLIC_DATA), PUBLIC_DATA)
    comparison = set(ev.panel.units.loc[ev.panel.units["role"] == "comparison", "unit"])
    assert not {"335", "336"} & comparison
    assert main(["run", str(design), "--data", str(PUBLIC_DATA), "--out", str(tmp_path)]) == 0
    html = (tmp_path / "family_help_neighbours.html").read_text()
    assert "Walsall (very close; treated, so not a comparison)" in html


def test_missing_sn_file_says_which_file_to_pass(tmp_path, capsys):
    (tmp_path / "c1_children_in_need_referrals_and_rereferrals_2013_to_2025.csv").write_text(
        "time_period\n"
    )
    with pytest.raises(DataError) as err:
        resolve_neighbour_pool(load_design(EXAMPLE), tmp_path)
    assert "sn_model_2025_wide.csv" in str(err.value) and str(tmp_path) in str(err.value)
    out = tmp_path.parent / f"{tmp_path.name}_out"  # a report is never written into the data
    assert main(["run", str(EXAMPLE), "--data", str(tmp_path), "--out", str(out)]) == 2
    err_text = capsys.readouterr().err
    assert "statistical neighbour" in err_text and "Traceback" not in err_text
    assert not any(tmp_path.glob("*.html"))


def test_neighbour_sets_cannot_be_written_in_a_design(tmp_path):
    text = EXAMPLE.read_text().replace("  min_units: 10", "  min_units: 10\n  units: [Somerset]")
    design = tmp_path / "d.yaml"
    design.write_text(text)
    with pytest.raises(DesignError, match=r"comparison\.units cannot be given"):
        load_design(design)


def test_malformed_sn_file_is_named(tmp_path):
    bad = tmp_path / "sn_model_2025_wide.csv"
    bad.write_text("old_la_code,SN_1\n838,933\n")
    with pytest.raises(DataError, match="no column"):
        read_neighbours(bad)


@needs_public_data
def test_indicators_command_prints_dorset_beside_published(capsys):
    argv = ["indicators", "--data", str(PUBLIC_DATA), "--la", "Dorset", "--year", "2025"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    dorset = {line.split()[3]: line.split() for line in lines if " Dorset " in line}
    # value, then DfE's published figure, then whether they agree
    assert dorset["repeat_referrals"][5:8] == ["14.7", "14.7", "yes"]
    assert dorset["repeat_cpp"][5:8] == ["27.5", "27.5", "yes"]
    assert dorset["cpp_rate"][5] == "41.4"
    assert dorset["new_placements_over_20_miles"][5:8] == ["44", "44", "yes"]
    assert any(line.split()[:2] == ["England", "England"] for line in lines)


@needs_public_data
def test_indicators_csv_every_published_figure_agrees_for_england_2025(capsys):
    argv = ["indicators", "--data", str(PUBLIC_DATA), "--year", "2025", "--format", "csv"]
    assert main(argv) == 0
    table = pd.read_csv(StringIO(capsys.readouterr().out), keep_default_na=False)
    england = table[table["area_type"] == "England"].set_index("indicator")
    compared = england[england["published"] != ""]
    assert len(compared) == 14
    assert set(compared["agrees"]) == {"yes"}
    assert england.loc["cpp_rate", "value"] == 40.6
    regions = table[table["area_type"] == "Region"]
    assert regions["area_code"].nunique() == 11  # 9 regions and London's two halves


def test_indicators_unknown_la_is_a_clean_error(capsys):
    assert main(["indicators", "--data", str(Path(".")), "--la", "Dorsett"]) == 2
    err = capsys.readouterr().err
    assert "Dorset" in err and "Traceback" not in err


@needs_public_data
def test_python_api_gives_the_commands_table(capsys, tmp_path):
    import pathfinder_eval as pe

    table = pe.indicators(PUBLIC_DATA, las=["Dorset"], year=2025)
    argv = ["indicators", "--data", str(PUBLIC_DATA), "--la", "Dorset", "--year", "2025"]
    assert main([*argv, "--format", "csv"]) == 0
    text = StringIO(capsys.readouterr().out)
    cli = pd.read_csv(text, dtype={"area_code": str, "agrees": str, "status": str})
    cli = cli.fillna({"agrees": "", "status": ""})
    pd.testing.assert_frame_equal(table, cli, check_dtype=False)
    dorset = table[table["area"] == "Dorset"].set_index("indicator")
    assert dorset.loc["repeat_cpp", ["value", "published"]].tolist() == [27.5, 27.5]
    # an indicator whose file is not in the folder: the error names the family to add
    for name in ("c1_children_in_need_referrals_and_rereferrals_2013_to_2025.csv",):
        (tmp_path / name).symlink_to(PUBLIC_DATA / name)
    with pytest.raises(DataError, match="cin_cpp"):
        pe.indicators(tmp_path, ids=["cpp_rate"])
