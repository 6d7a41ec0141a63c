"""Bad input: each case exits 2 with one clear line (file, key or column, row, fix) and writes
nothing."""

from __future__ import annotations

import html
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from cli_helpers import LAS, TIDY_DESIGN, check_error, run, tidy_csv
from pathfinder_eval.cli import main
from pathfinder_eval.panel import CHECKS


def test_valid_tidy_run_writes_both_files(tmp_path, capsys):
    code, out = run(tmp_path, data=tidy_csv())
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["tidy_pilot.html", "tidy_pilot.json"]


def test_malformed_yaml(tmp_path, capsys):
    code, out = run(tmp_path, design=TIDY_DESIGN.replace("title: Tidy pilot", "title: [Tidy"))
    check_error(capsys, code, out, "design.yaml", "malformed YAML", "line", "Fix:")


def test_unknown_top_level_key_suggests_the_right_one(tmp_path, capsys):
    code, out = run(tmp_path, design=TIDY_DESIGN.replace("outcomes:", "outcome:"))
    check_error(capsys, code, out, "unknown key 'outcome'", "did you mean 'outcomes'")


def test_unknown_nested_key(tmp_path, capsys):
    code, out = run(tmp_path, design=TIDY_DESIGN.replace("estimator: twfe", "estimatr: twfe"))
    check_error(capsys, code, out, "analyses[0]", "unknown key 'estimatr'", "estimator")


def test_missing_required_key(tmp_path, capsys):
    code, out = run(tmp_path, design=TIDY_DESIGN.replace("title: Tidy pilot\n", ""))
    check_error(capsys, code, out, "title", "required key is missing")


def test_bad_enum_value(tmp_path, capsys):
    code, out = run(tmp_path, design=TIDY_DESIGN.replace("pilot: custom", "pilot: pathfinder"))
    check_error(capsys, code, out, "pilot", "'pathfinder'", "family_help")


def test_unknown_estimator(tmp_path, capsys):
    code, out = run(tmp_path, design=TIDY_DESIGN.replace("estimator: twfe", "estimator: ols"))
    check_error(capsys, code, out, "analyses[0].estimator", "'ols'")


def test_unknown_la_suggests_close_names(tmp_path, capsys):
    code, out = run(tmp_path, design=TIDY_DESIGN.replace("Lincolnshire]", "Lincolnshir]"))
    check_error(
        capsys, code, out, "rollout[0].units[1]", "unknown local authority", "'Lincolnshire'"
    )


def test_start_is_not_a_date(tmp_path, capsys):
    code, out = run(tmp_path, design=TIDY_DESIGN.replace("2023-07-01", "July 2023"))
    check_error(capsys, code, out, "rollout[0].start")


def test_an_impossible_date_is_a_design_error_at_its_line(tmp_path, capsys):
    """PyYAML raised a bare ValueError ("day is out of range"): exit 1, 'internal error'."""
    code, out = run(tmp_path, design=TIDY_DESIGN.replace("2023-07-01", "2023-02-30"))
    check_error(capsys, code, out, "line", "'2023-02-30' is not a date", "YYYY-MM-DD")


def test_a_key_given_twice_is_refused(tmp_path, capsys):
    """PyYAML keeps the last of two equal keys without a word."""
    code, out = run(
        tmp_path, design=TIDY_DESIGN.replace("title: Tidy pilot\n", "title: A\ntitle: B\n")
    )
    check_error(capsys, code, out, "key 'title' is given twice", "give each key once")


@pytest.mark.parametrize("where", ["design", "command line"])
def test_a_negative_seed_is_refused(tmp_path, capsys, where):
    """numpy refuses negative seeds: it was an internal error, exit 1."""
    if where == "design":
        code, out = run(tmp_path, design=TIDY_DESIGN + "seed: -5\n", data=tidy_csv())
        check_error(capsys, code, out, "seed", "greater than or equal to 0")
    else:
        code, out = run(tmp_path, data=tidy_csv(), extra=["--seed", "-1"])
        check_error(capsys, code, out, "--seed", "'-1' is not a seed")


@pytest.mark.parametrize(
    ("effect", "message"),
    [
        (
            "{rte: -0.1}",
            "injected effect for 'rte', which is not an outcome (did you mean 'rate'?)",
        ),
        ("{rate: -5}", "injected effect -5 for 'rate' is a fall of 100% or more"),
    ],
)
def test_an_injected_effect_must_name_an_outcome_and_leave_a_rate(
    tmp_path, capsys, effect, message
):
    """A misspelt outcome was ignored while the report said the effect was injected."""
    design = TIDY_DESIGN.replace(
        "  source: tidy\n", f"  source: tidy\n  injected_effect: {effect}\n"
    )
    code, out = run(tmp_path, design=design, data=tidy_csv())
    check_error(capsys, code, out, "data.injected_effect", message)


def test_a_misspelt_la_in_tidy_data_is_refused_with_suggestions(tmp_path, capsys):
    """'Wigann' joined the comparisons as a unit of its own with no region, and the real
    Wigan was missing, with 'valid: 0 rows excluded'."""
    data = tidy_csv().replace("Wigan,2023", "Wigann,2023")
    code, out = run(tmp_path, data=data)
    check_error(capsys, code, out, "column la, row 23", "'Wigann' is not a local authority",
                "did you mean 'Wigan'", "unit_level: cluster")  # fmt: skip


def test_two_waves_with_one_name_are_refused(tmp_path, capsys):
    design = TIDY_DESIGN.replace(
        "  - {wave: W1, start: 2023-07-01, units: [Dorset, Lincolnshire]}",
        "  - {wave: W1, start: 2023-07-01, units: [Dorset]}\n"
        "  - {wave: W1, start: 2024-07-01, units: [Lincolnshire]}",
    )
    code, out = run(tmp_path, design=design, data=tidy_csv())
    check_error(capsys, code, out, "rollout[1].wave", "wave name 'W1' is also rollout[0]'s")


def test_analysis_names_unknown_outcome(tmp_path, capsys):
    design = TIDY_DESIGN.replace(
        "{id: twfe, estimator: twfe}", "{id: twfe, estimator: twfe, outcomes: [rates]}"
    )
    check_error(capsys, *run(tmp_path, design=design), "analyses[0].outcomes[0]", "'rates'")


def test_design_file_not_found(tmp_path, capsys):
    code = main(["run", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "out")])
    check_error(capsys, code, tmp_path / "out", "nope.yaml", "not found")


def test_data_file_not_found(tmp_path, capsys):
    d = tmp_path / "design.yaml"
    d.write_text(TIDY_DESIGN)
    code = main(
        ["run", str(d), "--data", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "out")]
    )
    check_error(capsys, code, tmp_path / "out", "missing.csv", "not found")


def test_missing_column(tmp_path, capsys):
    data = tidy_csv().replace("la,year,rate", "la,yr,rate")
    code, out = run(tmp_path, data=data)
    check_error(capsys, code, out, "d.csv", "column year", "missing", "yr")


def test_column_case_mismatch_is_named(tmp_path, capsys):
    data = tidy_csv().replace("la,year,rate", "la,Year,rate")
    code, out = run(tmp_path, data=data)
    check_error(capsys, code, out, "found 'Year'")


def test_duplicate_unit_period(tmp_path, capsys):
    """The unit and period as the file writes them and both rows (it said the LA's code, the
    period's ordinal and the first row only: 'unit 838, period 8092' for Dorset, 2023Q1)."""
    data = tidy_csv() + "Leeds,2024,12.0\n"
    code, out = run(tmp_path, data=data)
    rows = data.splitlines()[1:]  # data rows count from 1 after the header
    first = next(i for i, r in enumerate(rows, 1) if r.startswith("Leeds,2024,"))
    line = check_error(
        capsys, code, out, "repeat a unit-period", "first: Leeds, 2024", "columns la, year"
    )
    assert f"on rows {first} and {len(rows)})" in line


def test_treatment_that_switches_off(tmp_path, capsys):
    design = TIDY_DESIGN.replace(
        "columns: {unit: la, period: year}", "columns: {unit: la, period: year, treatment: d}"
    )
    rows = []
    for i, la in enumerate(LAS):
        for y in range(2021, 2026):
            d = int(la in ("Dorset", "Lincolnshire") and y >= 2024)
            if la == "Dorset" and y == 2025:
                d = 0
            rows.append(f"{la},{y},{10 + i},{d}")
    data = "la,year,rate,d\n" + "\n".join(rows) + "\n"
    code, out = run(tmp_path, design=design, data=data)
    check_error(capsys, code, out, "switches off", "838", "2025", "row 5", "column d")


def test_text_in_numeric_column(tmp_path, capsys):
    data = tidy_csv().replace("Bury,2023,14.5", "Bury,2023,fourteen")
    assert ",fourteen\n" in data
    code, out = run(tmp_path, data=data)
    line = check_error(capsys, code, out, "non-numeric value 'fourteen'", "column rate", "row 18")
    assert "or use a DfE symbol (c, x, z, u, low, k, :, ~)" in line


@pytest.mark.parametrize("symbol", ["c", "x", "z", "u", "low", "k", ":", "C"])
def test_dfe_symbols_in_tidy_data_are_counted_as_excluded(tmp_path, symbol):
    data = tidy_csv().replace("Bury,2023,14.5", f"Bury,2023,{symbol}")
    data = data.replace("Leeds,2021,15.5", "Leeds,2021,")
    code, out = run(tmp_path, data=data)
    assert code == 0
    doc = json.loads((out / "tidy_pilot.json").read_text(encoding="utf-8"))
    excluded = {e["reason"]: (e["count"], e["units"]) for e in doc["exclusions"]}
    meaning = {
        "c": "suppressed to protect confidentiality",
        "x": "not available",
        "z": "not applicable",
        "u": "low reliability",
        "low": "rounds to zero",
        "k": "percentage below 0.5",
        ":": "not available (symbol used before 2021)",
    }[symbol.lower()]
    hit = [v for r, v in excluded.items() if r.startswith(meaning) and f"({symbol.lower()})" in r]
    assert hit == [(1, ["351"])]  # Bury's DfE code
    assert excluded["empty cell or no value (missing)"] == (1, ["383"])  # Leeds


def test_bom_is_stripped_from_column_names(tmp_path, capsys):
    data = tidy_csv().replace("la,year,rate", "lad,year,rate")
    code, out = run(tmp_path, data_bytes=b"\xef\xbb\xbf" + data.encode())
    line = check_error(capsys, code, out, "'la' is missing", "columns present: lad,")
    assert "\ufeff" not in line


def test_bom_file_is_read(tmp_path, capsys):
    code, out = run(tmp_path, data_bytes=b"\xef\xbb\xbf" + tidy_csv().encode())
    assert code == 0, capsys.readouterr().err
    assert (out / "tidy_pilot.json").is_file()


def test_empty_file(tmp_path, capsys):
    code, out = run(tmp_path, data="")
    check_error(capsys, code, out, "d.csv", "empty")


def test_wrong_period_format(tmp_path, capsys):
    data = tidy_csv().replace("Wigan,2022,", "Wigan,2021/22,")
    assert "2021/22" in data
    code, out = run(tmp_path, data=data)
    check_error(capsys, code, out, "'2021/22'", "reporting_year", "column year", "row 22", "'2024'")


def test_start_date_outside_the_data(tmp_path, capsys):
    code, out = run(
        tmp_path, design=TIDY_DESIGN.replace("2023-07-01", "2026-07-01"), data=tidy_csv()
    )
    check_error(capsys, code, out, "outside the data", "rollout", "2027")


def test_too_few_comparison_units(tmp_path, capsys):
    design = TIDY_DESIGN.replace("min_units: 2", "min_units: 10")
    code, out = run(tmp_path, design=design, data=tidy_csv())
    check_error(capsys, code, out, "4 comparison units", "comparison.min_units")


def test_treated_unit_absent_from_data(tmp_path, capsys):
    data = "\n".join(ln for ln in tidy_csv().splitlines() if not ln.startswith("Dorset")) + "\n"
    code, out = run(tmp_path, data=data)
    check_error(capsys, code, out, "Dorset (838)", "no rows")


def test_templates_folder_that_does_not_exist(tmp_path, capsys):
    code, out = run(tmp_path, data=tidy_csv(), extra=["--templates", str(tmp_path / "tpl")])
    check_error(capsys, code, out, "tpl", "--templates", "not found")


def test_unknown_extension(tmp_path, capsys):
    code, out = run(tmp_path, data=tidy_csv(), data_name="d.xlsx")
    check_error(capsys, code, out, "d.xlsx")


def test_console_script_prints_no_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        textwrap.dedent("""\
        name: x
        title: [
    """)
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pathfinder_eval.cli",
            "run",
            str(bad),
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("argv", "what"),
    [
        (["run"], "pathfinder-eval run: the following arguments are required: design"),
        (["frobnicate"], "error: argument command: invalid choice: 'frobnicate'"),
        (["power", "d.yaml", "--simulate", "1e3"], "--simulate: invalid int value: '1e3'"),
    ],
)
def test_usage_errors_are_one_line_with_exit_2(argv, what, tmp_path, capsys):
    line = check_error(capsys, main(argv), tmp_path / "o", what)
    assert line.endswith("for the arguments") and "Fix: see `pathfinder-eval" in line


def test_unknown_estimator_option(tmp_path, capsys):
    design = TIDY_DESIGN.replace(
        "{id: twfe, estimator: twfe}", "{id: es, estimator: event_study, options: {min_leads: -3}}"
    )
    code, out = run(tmp_path, design=design, data=tidy_csv())
    check_error(capsys, code, out, "analyses[0].options", "min_leads", "min_lead")


def test_validate_reports_without_writing(tmp_path, capsys):
    d = tmp_path / "design.yaml"
    d.write_text(TIDY_DESIGN)
    f = tmp_path / "d.csv"
    f.write_text(tidy_csv())
    assert main(["validate", str(d), "--data", str(f)]) == 0
    out = capsys.readouterr().out
    assert "valid: 6 units, 30 unit-period cells, 0 rows excluded" in out, out
    assert f"checks passed: {', '.join(c.name for c in CHECKS)}" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv", "design.yaml"]


def test_indicators_and_las_listings(capsys):
    assert main(["indicators"]) == 0
    listing = capsys.readouterr().out
    for ident in (
        "repeat_referrals",
        "entering_care_rate",
        "cla_rate",
        "s47_rate",
        "icpc_rate",
        "placement_stability_3plus",
        "care_leavers_unsuitable_17_18",
        "care_leavers_unsuitable_19_21",
        "sw_turnover",
        "agency_rate",
        "caseload",
        "cpp_rate",
    ):
        assert ident in listing
    assert main(["las"]) == 0
    las = capsys.readouterr().out.splitlines()
    assert len(las) == 153
    assert any(line.startswith("838  E06000059  Dorset") for line in las)


@pytest.mark.parametrize("suffix", ["parquet", "dta"])
def test_parquet_and_stata_tidy_inputs_give_the_csv_result(tmp_path, suffix):
    csv = tmp_path / "d.csv"
    csv.write_text(tidy_csv())
    frame = pd.read_csv(csv)
    other = tmp_path / f"d.{suffix}"
    if suffix == "parquet":
        frame.to_parquet(other)
    else:
        frame.to_stata(other, write_index=False)
    design = tmp_path / "design.yaml"
    design.write_text(TIDY_DESIGN)
    results = []
    for f in (csv, other):
        out = tmp_path / f.suffix
        assert main(["run", str(design), "--data", str(f), "--out", str(out)]) == 0
        doc = json.loads((out / "tidy_pilot.json").read_text())
        results.append(doc["analyses"][0]["estimates"])
    assert results[0] == results[1]


def test_inference_method_the_estimator_lacks(tmp_path, capsys):
    design = TIDY_DESIGN.replace(
        "{id: twfe, estimator: twfe}",
        "{id: twfe, estimator: twfe, inference: {method: kenward_roger}}",
    )
    code, out = run(tmp_path, design=design, data=tidy_csv())
    check_error(
        capsys, code, out, "analyses[0].inference.method", "'kenward_roger'", "cluster_robust"
    )


def test_option_value_no_data_could_fit_is_a_design_error(tmp_path, capsys):
    design = TIDY_DESIGN.replace(
        "{id: twfe, estimator: twfe}",
        "{id: g, estimator: stepped_wedge_glmm, options: {model: nested_exchangeable, "
        "quadrature_points: 10}}",
    )
    code, out = run(tmp_path, design=design, data=tidy_csv())
    check_error(
        capsys, code, out, "design.yaml: analyses[0].options.quadrature_points", "hussey_hughes"
    )


# Each named panel check (panel.CHECKS) and a case that trips it: the one error line it gives,
# or the exclusion it counts; checks that only assemble the panel are listed as such.
_NO_CASE = {"units_and_groups", "cells"}


def _drop_dorset() -> str:
    return "\n".join(ln for ln in tidy_csv().splitlines() if not ln.startswith("Dorset")) + "\n"


CHECK_CASES = {
    "unique_unit_period": ({}, tidy_csv() + "Leeds,2024,12.0\n", "repeat a unit-period"),
    "design_window": (
        {"time: {axis: reporting_year}": "time: {axis: reporting_year, first: 2022}"},
        tidy_csv(),
        "outside the design's time window (2022–end)",
    ),
    "design_units_present": ({}, _drop_dorset(), "Dorset (838) named in the design has no rows"),
    "start_within_data": ({"2023-07-01": "2026-07-01"}, tidy_csv(), "outside the data"),
    "transition_periods": (
        {"units: [Dorset, Lincolnshire]}": "units: [Dorset, Lincolnshire], transition_periods: 1}"},
        tidy_csv(),
        "transition period excluded by design",
    ),
    "comparison_pool": (
        {"min_units: 2}": "min_units: 2, exclude: [Leeds]}"},
        tidy_csv(),
        "excluded from the comparison pool by the design",
    ),
    "usable_values": ({}, tidy_csv().replace("Bury,2023,14.5", "Bury,2023,c"), "(c)"),
    "outcomes_supported": ({"min_units: 2": "min_units: 10"}, tidy_csv(), "comparison.min_units"),
    "contrasts": (
        {
            "  - {column: rate, scale: per_10000}\n": "  - {column: rate, scale: per_10000}\n"
            "  - {column: other}\ncontrasts: [{id: gap, outcome: rate, minus: other}]\n"
        },
        "\n".join(
            ln + (",other" if i == 0 else ",5.0") for i, ln in enumerate(tidy_csv().splitlines())
        )
        + "\n",
        "'rate' is on the per_10000 scale and 'other' on the level scale",
    ),
}


def test_every_panel_check_has_a_case():
    assert {c.name for c in CHECKS} == set(CHECK_CASES) | _NO_CASE


@pytest.mark.parametrize("check", sorted(CHECK_CASES))
def test_panel_check_case(check, tmp_path, capsys):
    edits, data, needle = CHECK_CASES[check]
    design = TIDY_DESIGN
    for old, new in edits.items():
        assert old in design
        design = design.replace(old, new)
    code, out = run(tmp_path, design=design, data=data)
    if code == 2:
        check_error(capsys, code, out, needle)
        return
    assert code == 0
    doc = json.loads((out / "tidy_pilot.json").read_text(encoding="utf-8"))
    assert any(needle in e["reason"] for e in doc["exclusions"]), doc["exclusions"]


def test_a_treated_la_with_no_period_before_its_start_is_counted_not_treated(tmp_path, capsys):
    """Dorset's rows all from its start on: it counted among the treated LAs (n_treated 2) and
    in the leave-one-out, though no estimator could compare it with itself before."""
    rows = [
        r
        for r in tidy_csv().splitlines()[1:]
        if not r.startswith(("Dorset,2021", "Dorset,2022", "Dorset,2023"))
    ]
    code, out = run(tmp_path, data=tidy_csv(rows))
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "tidy_pilot.json").read_text())
    assert report["analyses"][0]["n_treated"] == 1
    assert {"reason": "treated unit with no usable period before its start", "outcome": "rate",
            "count": 2, "units": ["838"], "stage": "panel", "analysis": None} in report[
                "exclusions"]  # fmt: skip


def test_a_wave_started_before_the_data_is_left_out_and_counted(tmp_path, capsys):
    """Dorset started before the data's first year (nothing to compare its treated years
    with): its rows are left out and counted, as when its earlier values are unusable, and
    Lincolnshire is analysed; were every treated LA so, the run stops with exit 2."""
    design = TIDY_DESIGN.replace(
        "  - {wave: W1, start: 2023-07-01, units: [Dorset, Lincolnshire]}",
        "  - {wave: W0, start: 2019-07-01, units: [Dorset]}\n"
        "  - {wave: W1, start: 2023-07-01, units: [Lincolnshire]}",
    )
    code, out = run(tmp_path, design=design, data=tidy_csv())
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "tidy_pilot.json").read_text())
    assert report["analyses"][0]["n_treated"] == 1
    assert {"reason": "treated unit with no usable period before its start", "outcome": "rate",
            "count": 5, "units": ["838"], "stage": "panel", "analysis": None} in report[
                "exclusions"]  # fmt: skip
    every = TIDY_DESIGN.replace("start: 2023-07-01", "start: 2019-07-01")
    (tmp_path / "all").mkdir()
    code, out = run(tmp_path / "all", design=every, data=tidy_csv())
    check_error(capsys, code, out, "outside the data: no period before it", "rollout")


def test_units_an_analysis_drops_to_balance_its_panel_are_in_the_ledger(tmp_path, capsys):
    """Callaway & Sant'Anna drops units missing a period: it said only '1 units missing a
    period ... were dropped', while the exclusions table and JSON had no entry and the report
    did not say a treated LA was among them."""
    design = TIDY_DESIGN.replace("estimator: twfe", "estimator: callaway_santanna")
    rows = [r for r in tidy_csv().splitlines()[1:] if not r.startswith("Dorset,2022")]
    code, out = run(tmp_path, design=design, data=tidy_csv(rows))
    assert code == 0, capsys.readouterr().err
    doc = json.loads((out / "tidy_pilot.json").read_text())
    assert doc["analyses"][0]["n_treated"] == 1
    assert {"reason": "unit missing a period of rate, dropped to balance the panel",
            "outcome": "rate", "count": 4, "units": ["838"], "stage": "analysis",
            "analysis": "twfe"} in doc["exclusions"]  # fmt: skip
    html = (out / "tidy_pilot.html").read_text()
    assert "Treated Dorset is left out of twfe for 1 outcome (rate)" in html


@pytest.mark.parametrize("out", ["data/out", "data", "data/sub/../out"])
def test_the_report_is_not_written_into_the_data_folder(tmp_path, capsys, out):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "d.csv").write_text(tidy_csv())
    (tmp_path / "design.yaml").write_text(
        TIDY_DESIGN.replace("source: tidy", "source: tidy\n  path: d.csv")
    )
    argv = ["run", str(tmp_path / "design.yaml"), "--data", str(tmp_path / "data"),
            "--out", str(tmp_path / out)]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "inside the data folder" in err
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["d.csv"]


@pytest.mark.parametrize("alpha", ["2", "0", "nan", "five"])
def test_a_power_level_outside_0_1_is_a_user_error(tmp_path, capsys, alpha):
    """--alpha 2 or 0 reached scipy's root finder: 'internal error: f(a) and f(b) must have
    different signs', exit 1."""
    design = str(Path(__file__).resolve().parents[1] / "designs/examples/stepped_wedge_trial.yaml")
    code = main(["power", design, "--alpha", alpha])
    check_error(capsys, code, tmp_path / "none", "--alpha", "is not a level between 0 and 1")


def test_power_names_the_argument_the_variance_model_lacks():
    import pathfinder_eval as pe
    from pathfinder_eval.errors import DesignError

    with pytest.raises(DesignError) as info:
        pe.power([3, 3, 3, 3], 0.3, cell_size=30)
    assert info.value.where == "argument tau2" and str(info.value).count("Fix:") == 1


@pytest.mark.parametrize("option", [["--la", "Dorset"], ["--year", "2025"]])
def test_indicator_selections_without_data_are_refused(tmp_path, capsys, option):
    """`indicators --la Dorset` without --data printed the catalogue, ignoring the LA."""
    code = main(["indicators", *option])
    check_error(capsys, code, tmp_path / "none", f"{option[0]} only apply with --data")


def test_a_weight_column_is_an_unknown_key_not_silently_ignored(tmp_path, capsys):
    """data.columns.weight was accepted and never read: analyses ran unweighted."""
    design = TIDY_DESIGN.replace("{unit: la, period: year}", "{unit: la, period: year, weight: w}")
    code, out = run(tmp_path, design=design, data=tidy_csv())
    check_error(capsys, code, out, "data.columns", "unknown key 'weight'")


@pytest.mark.parametrize("mark,called", [(";", "semicolons"), ("\t", "tabs")])
def test_a_file_not_separated_by_commas_says_so(tmp_path, capsys, mark, called):
    """It was read as one column: 'required column la is missing', or with decimal commas
    'line 2 has 2 fields … remove the extra field' (found in review)."""
    code, out = run(tmp_path, data=tidy_csv().replace(",", mark))
    check_error(capsys, code, out, f"separated by {called}", "comma-separated CSV")
    code, out = run(tmp_path, data=tidy_csv().replace(",", ";").replace(".", ","))
    check_error(capsys, code, out, "separated by semicolons")


def test_a_column_named_twice_is_refused(tmp_path, capsys):
    """pandas read the second 'la' as 'la.1' and the run ignored it (found in review)."""
    lines = tidy_csv().splitlines()
    data = "\n".join([lines[0] + ",la", *(r + ",Kent" for r in lines[1:])]) + "\n"
    code, out = run(tmp_path, data=data)
    check_error(capsys, code, out, "names column 'la' twice (columns 1 and 4)")


def test_a_truncated_row_is_refused_not_read_as_empty_cells(tmp_path, capsys):
    data = tidy_csv() + "Bury,2020\n"
    code, out = run(tmp_path, data=data)
    rows = len(data.splitlines())
    check_error(capsys, code, out, f"line {rows} has 2 of the header's 3 fields", "truncated")


def test_a_listed_comparison_unit_without_rows_is_refused(tmp_path, capsys):
    """Rutland, listed by hand and absent from the data, was passed over without a word."""
    design = TIDY_DESIGN.replace(
        "comparison: {pool: never_treated, min_units: 2}",
        "comparison: {pool: list, units: [Bolton, Bury, Rutland], min_units: 2}",
    )
    code, out = run(tmp_path, design=design, data=tidy_csv())
    check_error(capsys, code, out, "comparison unit Rutland (857)", "no rows in the data")


def test_a_treated_la_whose_values_are_all_suppressed_is_said_up_front(tmp_path, capsys):
    """Every Lincolnshire value 'c': the run goes on with the other treated LA, as R's did
    leaves such a unit out, and the report now says so up front (the table of treated units
    still listed Lincolnshire, and only the exclusions table said why; found in review)."""
    rows = tidy_csv().splitlines()
    data = "\n".join(
        r.rsplit(",", 1)[0] + ",c" if r.startswith("Lincolnshire,") else r for r in rows
    )
    code, out = run(tmp_path, data=data + "\n")
    assert code == 0
    doc = json.loads((out / "tidy_pilot.json").read_text())
    note = "Treated unit Lincolnshire (925) has no usable values (left out as suppressed"
    assert any(n.startswith(note) for n in doc["design"]["notes"])
    assert note in html.unescape((out / "tidy_pilot.html").read_text())


def test_the_note_on_a_treated_la_without_values_holds_when_a_plan_withholds_the_rest(tmp_path):
    """A plan blanks every value from the first start on (its own status): a treated LA whose
    earlier values are all 'c' still has no usable value, and the note says so (the plan's
    withheld rows hid it: found in review)."""
    from pathfinder_eval.data.load import load_outcomes
    from pathfinder_eval.panel import build_panel
    from pathfinder_eval.pipeline import describe_outcome
    from pathfinder_eval.planning import withhold_after
    from pathfinder_eval.spec import load_design

    rows = tidy_csv().splitlines()
    data = tmp_path / "d.csv"
    data.write_text(
        "\n".join(r.rsplit(",", 1)[0] + ",c" if r.startswith("Lincolnshire,") else r for r in rows)
    )
    design = tmp_path / "design.yaml"
    design.write_text(TIDY_DESIGN)
    spec = load_design(design)
    held, _ = withhold_after(load_outcomes(spec, data, 0), 2024)
    panel = build_panel(spec, held, describe_outcome(spec))
    assert any(
        n.startswith("Treated unit Lincolnshire (925) has no usable") for n in panel.data.notes
    )
    assert not any("Dorset" in n for n in panel.data.notes)  # withheld from 2024, usable before
