"""The statistical analysis plan: written before the data, registrable, and checked at run time."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _data_paths import C1, PUBLIC_DATA, needs_public_data
from cli_helpers import SHIPPED_DESIGNS
from pathfinder_eval.analysis_plan import decisions, deviations, document_hash
from pathfinder_eval.cli import main
from pathfinder_eval.data.official import load_official
from pathfinder_eval.spec import load_design

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DESIGNS = SHIPPED_DESIGNS
HEADINGS = (
    "1. Administrative information",
    "2. Background and objectives",
    "3. Design, units and comparison pool",
    "4. Outcomes",
    "5. Analysis methods",
    "6. What the design can detect",
    "7. Missing data, suppressed cells and LA reorganisations",
    "8. Statistical disclosure control",
    "9. What will be reported",
)


def write_plan(tmp_path: Path, design: Path, *extra: str) -> tuple[str, dict]:
    assert main(["plan", str(design), "--out", str(tmp_path), *extra]) == 0
    name = load_design(design).name
    html = (tmp_path / f"{name}_plan.html").read_text(encoding="utf-8")
    return html, json.loads((tmp_path / f"{name}_plan.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(DESIGNS))
def test_plan_of_each_shipped_design_is_complete(name, tmp_path):
    html, doc = write_plan(tmp_path, DESIGNS[name])
    spec = load_design(DESIGNS[name])
    for heading in HEADINGS:
        assert f">{heading}</h2>" in html, heading
    assert doc["sha256"] == document_hash(doc)  # the whole file, not the decisions only
    assert doc["decisions"] == json.loads(json.dumps(decisions(spec)))
    assert doc["decisions"]["primary"] == spec.primary_analysis.id
    assert doc["sha256"] in html and re.fullmatch(r"[0-9a-f]{64}", doc["sha256"])
    assert doc["data"]["post_start_values_read"] is False and doc["data"]["withheld_rows"] > 0
    assert [d["outcome"] for d in doc["detectable"]] == [o.id for o in spec.outcomes]
    primary = next((a for a in spec.analyses if a.primary), spec.analyses[0])
    assert f"<strong>{primary.id}</strong>" in html
    for analysis in spec.analyses:
        assert analysis.id in html
    if name == "stepped_wedge_trial":
        assert "CONSORT extension for stepped-wedge trials" in html
        # the primary analysis's estimand (TATE) and reference (t(11)), not the immediate
        # effect on z that HH's example reports (0.2267): the plan overstated what it detects
        from pathfinder_eval.power.analytic import VarianceModel, gls_precision, mdes

        starts = np.repeat([2, 3, 4, 5], 3)
        design = (np.arange(1, 6)[None, :] >= starts[:, None]).astype(float)
        tate = gls_precision(design, VarianceModel.from_icc(0.05), 30, "exposure_time")
        assert doc["detectable"][0]["mdes"] == pytest.approx(mdes(tate.variance, df=11), rel=1e-9)
        assert doc["detectable"][0]["mdes"] == pytest.approx(0.370, abs=0.001)
        assert "TATE" in doc["detectable"][0]["basis"] and "lower bound" in html
    elif name == "rcc":  # synthetic methods: stated, not computed before the data
        assert all(d["mdes"] is None and "not computed" in d["note"] for d in doc["detectable"])
    else:  # DiD: the primary analysis on pre-start data with the starts moved earlier
        assert all(d["analysis"] == "callaway_santanna" for d in doc["detectable"])
        assert all(d["mdes"] > 0 and 0 < d["mdes_relative"] < 1 for d in doc["detectable"])


@needs_public_data
def test_plan_reads_no_value_from_the_first_start_on(tmp_path):
    """Corrupting every referral count from the first exposed year (2024) on changes the data
    an evaluation reads but not the plan."""
    design = DESIGNS["family_help"]
    corrupted = tmp_path / "corrupted"
    corrupted.mkdir()
    for path in PUBLIC_DATA.glob("*.csv"):
        if path.name != C1:
            (corrupted / path.name).symlink_to(path)
    raw = pd.read_csv(PUBLIC_DATA / C1, dtype=str, keep_default_na=False)
    late = raw["time_period"].astype(int) >= 2024
    for column in ("referral_count", "rereferral_count"):
        numbers = pd.to_numeric(raw.loc[late, column], errors="coerce")
        raw.loc[late, column] = np.where(
            numbers.notna(),
            (numbers.fillna(0) * 3 + 7).astype(int).astype(str),
            raw.loc[late, column],
        )
    raw.to_csv(corrupted / C1, index=False)
    before = load_official(PUBLIC_DATA, ["repeat_referrals"]).frame
    after = load_official(corrupted, ["repeat_referrals"]).frame
    b, a = before["value"].to_numpy(), after["value"].to_numpy()
    changed = (b != a) & ~(np.isnan(b) & np.isnan(a))
    assert changed[before["period"].to_numpy() >= 2024].mean() > 0.9  # the data did change
    assert not changed[before["period"].to_numpy() < 2024].any()
    real_html, real = write_plan(tmp_path / "real", design, "--data", str(PUBLIC_DATA))
    bad_html, bad = write_plan(tmp_path / "bad", design, "--data", str(corrupted))
    assert real == bad and real_html == bad_html
    assert real["data"]["withheld_from"] == "2024" and real["data"]["kind"] == "official"


def test_run_lists_exactly_the_deviations_from_the_plan(tmp_path):
    design = DESIGNS["family_network"]
    _, plan = write_plan(tmp_path, design)
    plan_file = str(tmp_path / "family_network_plan.json")
    text = design.read_text()
    dropped = text.replace(
        "  - indicator: placement_stability_3plus\n    expected_effect: -0.10\n", ""
    )
    edited = dropped.replace(
        "    primary: true\n", "    primary: true\n    inference: {method: cluster_robust}\n", 1
    )
    assert edited.count("placement_stability_3plus") == 0 and "method: cluster_robust" in edited
    changed = tmp_path / "changed" / "family_network.yaml"
    changed.parent.mkdir()
    changed.write_text(edited)
    out = tmp_path / "changed_out"
    assert main(["run", str(changed), "--out", str(out), "--plan", plan_file]) == 0
    doc = json.loads((out / "family_network.json").read_text())
    listed = doc["analysis_plan"]["deviations"]
    assert [d["kind"] for d in listed] == ["outcome dropped", "inference changed"]
    assert listed[0]["what"] == "outcome placement_stability_3plus dropped"
    assert listed[1]["what"] == (
        "analysis callaway_santanna: inference.method changed from default to cluster_robust"
    )
    html = (out / "family_network.html").read_text()
    assert '<h2 id="deviations">Deviations from the analysis plan</h2>' in html
    assert html.index('id="deviations"') < html.index('id="summary"')
    assert "2 deviations from the registered plan" in html and plan["sha256"] in html
    # the unchanged design: followed, with the hash
    same = tmp_path / "same"
    pdf = ["--pdf"] if CHROMIUM else []
    assert main(["run", str(design), "--out", str(same), "--plan", plan_file, *pdf]) == 0
    doc = json.loads((same / "family_network.json").read_text())
    assert doc["analysis_plan"] == {
        "sha256": plan["sha256"],
        "file": "family_network_plan.json",
        "followed": True,
        "deviations": [],
    }
    assert (
        "The analysis followed the registered plan." in (same / "family_network.html").read_text()
    )
    if CHROMIUM:
        text = pdf_text(same / "family_network.pdf")
        for heading in ("Deviations from the analysis plan", "Summary", "Methods", "Results"):
            assert heading in text, heading
        assert "The analysis followed the registered plan." in text


def pdf_text(path: Path) -> str:
    """The PDF's text (pypdf), after checking it is tagged, outlined and page-numbered."""
    pypdf = pytest.importorskip("pypdf")
    reader = pypdf.PdfReader(path)
    assert reader.trailer["/Root"]["/MarkInfo"]["/Marked"]  # tagged PDF
    assert reader.outline  # bookmarks from the headings
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert f"Page 1 of {len(reader.pages)}" in text and len(reader.pages) > 1
    return " ".join(text.split())


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")
def test_plan_pdf_has_the_pages_headings_and_text(tmp_path):
    _, doc = write_plan(tmp_path, DESIGNS["family_network"], "--pdf")
    text = pdf_text(tmp_path / "family_network_plan.pdf")
    for heading in HEADINGS:
        assert heading in text, heading
    assert doc["sha256"] in text.replace(" ", "")


def test_without_chromium_the_html_is_written_and_the_fix_named(tmp_path, capsys, monkeypatch):
    from pathfinder_eval.report import pdf

    monkeypatch.setattr(pdf, "find_browser", lambda: None)
    assert main(["plan", str(DESIGNS["family_network"]), "--out", str(tmp_path), "--pdf"]) == 0
    err = capsys.readouterr().err
    assert "PDF not written" in err and "apt-get install chromium" in err
    assert len(err.strip().splitlines()) == 1
    assert (tmp_path / "family_network_plan.html").is_file()
    assert not list(tmp_path.glob("*.pdf"))


def test_deviations_name_each_kind_of_change():
    spec = load_design(DESIGNS["family_help"])
    planned = decisions(spec)
    now = json.loads(json.dumps(planned))
    now["analyses"]["sun_abraham"]["primary"] = True
    now["analyses"]["callaway_santanna"]["primary"] = False
    now["primary"] = "sun_abraham"
    now["time"]["first"] = 2018
    now["comparison"]["exclude"] = now["comparison"]["exclude"][1:]
    now["outcomes"]["new_outcome"] = {"indicator": "cin_rate"}
    del now["analyses"]["bacon"]
    kinds = [d.kind for d in deviations(planned, now)]
    assert kinds == [
        "outcome added",
        "primary analysis changed",
        "analysis dropped",
        "analysis window changed",
        "comparison pool changed",
    ]
    assert deviations(planned, planned) == []


def test_a_plan_edited_after_registration_is_refused(tmp_path, capsys):
    design = DESIGNS["family_network"]
    write_plan(tmp_path, design)
    path = tmp_path / "family_network_plan.json"
    doc = json.loads(path.read_text())
    doc["decisions"]["seed"] = 1
    path.write_text(json.dumps(doc))
    assert main(["run", str(design), "--out", str(tmp_path / "o"), "--plan", str(path)]) == 2
    err = capsys.readouterr().err
    assert "the plan's contents do not match its sha256" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_a_trial_plan_reads_the_primary_analysis_tate_window(tmp_path):
    """tate_window: 1 gave the full-window TATE's MDES (0.370) and said so."""
    from pathfinder_eval.power.analytic import VarianceModel, gls_precision, mdes

    text = DESIGNS["stepped_wedge_trial"].read_text(encoding="utf-8")
    text = text.replace(
        "options: {model: nested_exchangeable}\n",
        "options: {model: nested_exchangeable, tate_window: 1}\n",
        1,
    )
    design_file = tmp_path / "stepped_wedge_trial.yaml"
    design_file.write_text(text, encoding="utf-8")
    _, doc = write_plan(tmp_path, design_file)
    starts = np.repeat([2, 3, 4, 5], 3)
    design = (np.arange(1, 6)[None, :] >= starts[:, None]).astype(float)
    first = gls_precision(design, VarianceModel.from_icc(0.05), 30, "exposure_time").vcov[0, 0]
    assert doc["detectable"][0]["mdes"] == pytest.approx(mdes(first, df=11), rel=1e-9)
    assert doc["detectable"][0]["mdes"] == pytest.approx(0.2655, abs=1e-4)
    assert "exposure time 1 (TATE)" in doc["detectable"][0]["basis"]


def test_a_kenward_roger_primary_is_read_against_its_own_df_and_variance(tmp_path):
    """A Kenward-Roger primary was read against t(I − 1) (0.2489), then the normal (0.2267),
    then the power command's t(I − 2) stand-in (0.2514), where the analysis itself reaches
    0.2393 in simulation (2,000 trials, interval 0.2335–0.2435). The plan now reads the df and
    adjusted variance Kenward-Roger gives at the trial's variances (t(48.7), +3.0%): 0.2348,
    the figure `power` prints for the same design."""
    from pathfinder_eval.power.analytic import VarianceModel, gls_precision, mdes
    from pathfinder_eval.power.design import design_power

    text = (
        DESIGNS["stepped_wedge_trial"]
        .read_text(encoding="utf-8")
        .replace(
            "options: {model: nested_exchangeable}\n",
            "options: {model: nested_exchangeable, effect: immediate}\n"
            "    inference: {method: kenward_roger}\n",
            1,
        )
    )
    design_file = tmp_path / "stepped_wedge_trial.yaml"
    design_file.write_text(text, encoding="utf-8")
    _, doc = write_plan(tmp_path, design_file)
    starts = np.repeat([2, 3, 4, 5], 3)
    design = (np.arange(1, 6)[None, :] >= starts[:, None]).astype(float)
    variance = gls_precision(design, VarianceModel.from_icc(0.05), 30).variance
    (row,) = doc["detectable"]
    assert mdes(variance) < mdes(variance * 1.03, df=48.65) == pytest.approx(row["mdes"], abs=2e-4)
    assert 0.2335 <= row["mdes"] <= 0.2435 and row["mdes"] == pytest.approx(0.2348, abs=1e-4)
    assert row["mdes"] == design_power(load_design(design_file)).mdes_80
    assert "t(48.7) reference, Kenward-Roger's df and adjusted variance" in row["basis"]


def test_a_simulated_trial_starting_in_the_first_period_is_planned(tmp_path):
    """A wave starting in period 1 left no pre-start data, and the plan refused the trial
    ('outcome score has no usable rows'), though its MDES is analytic and `run`, `power` and
    `validate` accept it."""
    from pathfinder_eval.power.analytic import VarianceModel, gls_precision, mdes

    text = DESIGNS["stepped_wedge_trial"].read_text(encoding="utf-8")
    design_file = tmp_path / "stepped_wedge_trial.yaml"
    design_file.write_text(text.replace("Sequence 1, start: 2,", "Sequence 1, start: 1,"))
    _, doc = write_plan(tmp_path, design_file)
    starts = np.repeat([1, 3, 4, 5], 3)
    design = (np.arange(1, 6)[None, :] >= starts[:, None]).astype(float)
    tate = gls_precision(design, VarianceModel.from_icc(0.05), 30, "exposure_time").variance
    (row,) = doc["detectable"]
    assert row["mdes"] == pytest.approx(mdes(tate, df=11), rel=1e-9)


@needs_public_data
def test_a_short_placebo_window_is_said_to_overstate_the_mdes(tmp_path):
    """Looked-after rates run 2021–2025: with the starts moved two years earlier the first
    wave keeps one pre-start year, the df fall (25 to about 3) and the plan said a −10% change
    was undetectable (43.7%) where the analysis detects 7.45% and simulation gives 89% power."""
    _, doc = write_plan(tmp_path, DESIGNS["family_network"], "--data", str(PUBLIC_DATA))
    rows = {r["outcome"]: r for r in doc["detectable"]}
    note = "With the starts moved, the first wave has 1 period(s) before its start where the "
    assert rows["cla_rate"]["note"].startswith(note + "analysis will have 3")
    assert rows["cpp_rate"]["note"] == ""  # 2017–2023: enough periods before the moved starts


def _trial_plan(tmp_path: Path) -> tuple[Path, Path, dict]:
    """The example trial's design (copied) and its plan file."""
    design = tmp_path / "stepped_wedge_trial.yaml"
    design.write_text(DESIGNS["stepped_wedge_trial"].read_text(encoding="utf-8"))
    _, doc = write_plan(tmp_path / "plan", design)
    return design, tmp_path / "plan" / "stepped_wedge_trial_plan.json", doc


def _run(design: Path, plan: Path, out: Path, *extra: str) -> dict:
    argv = ["run", str(design), "--out", str(out), "--plan", str(plan), "--workers", "1", *extra]
    assert main(argv) == 0
    return json.loads((out / f"{load_design(design).name}.json").read_text())["analysis_plan"]


def test_a_run_seed_and_other_data_are_deviations(tmp_path):
    """`run --seed 5` over a plan registered with seed 2007 reported 'followed' (the check
    read the design's seed, not the run's); the simulated trial drawn with it differs before
    the first start too, and the plan's hash of the pre-start cells says so. The same run
    without --seed follows the plan."""
    design, plan, _ = _trial_plan(tmp_path)
    same = _run(design, plan, tmp_path / "same")
    assert same["followed"] and same["deviations"] == []
    seeded = _run(design, plan, tmp_path / "seeded", "--seed", "5")
    assert seeded["deviations"] == [
        {"kind": "seed changed", "what": "seed changed from 2007 to 5"},
        {
            "kind": "data changed",
            "what": "the data before period 2 differ from those the plan was written on for "
            "score: other or revised files, other exclusions, or simulated data drawn with "
            "another seed",
        },
    ]


def test_the_data_settings_primary_and_order_as_decisions():
    """Covariates added after registration moved the estimate (0.4088 to 0.4152) with the
    report saying the plan was followed; swapping the first two analyses (no primary flag)
    changed the primary silently, because the decisions key analyses by id; reordering waves,
    their units or a group's members was reported as a change."""
    spec = load_design(DESIGNS["stepped_wedge_trial"])
    planned = json.loads(json.dumps(decisions(spec)))
    columns = spec.data.columns.model_copy(update={"covariates": ("age", "sex")})
    with_covariates = spec.model_copy(
        update={"data": spec.data.model_copy(update={"columns": columns})}
    )
    assert [(d.kind, d.what) for d in deviations(planned, decisions(with_covariates))] == [
        (
            "data settings changed",
            'data settings (columns.covariates) changed from [] to ["age", "sex"]',
        )
    ]
    assert not any(a.primary for a in spec.analyses)  # the first analysis is the primary
    first, second, *rest = spec.analyses
    swapped = spec.model_copy(update={"analyses": (second, first, *rest)})
    assert [d.what for d in deviations(planned, decisions(swapped))] == [
        f"primary analysis changed from {spec.analyses[0].id} to {spec.analyses[1].id}"
    ]
    waves = tuple(
        w.model_copy(update={"units": tuple(reversed(w.units))}) for w in reversed(spec.rollout)
    )
    assert deviations(planned, decisions(spec.model_copy(update={"rollout": waves}))) == []
    moved = spec.rollout[0].model_copy(update={"start": 3})  # a real change is still one
    rollout = spec.model_copy(update={"rollout": (moved, *spec.rollout[1:])})
    assert [d.what for d in deviations(planned, decisions(rollout))] == [
        "rollout (Sequence 1.start) changed from 2 to 3"
    ]


def test_a_plan_of_the_first_schema_is_still_read(tmp_path):
    """Plans written before the hash covered the whole file (schema 1: decisions hashed, no
    primary or data settings recorded) are checked on their decisions as before."""
    from pathfinder_eval.analysis_plan import plan_hash

    design, plan, doc = _trial_plan(tmp_path)
    written = decisions(load_design(design), resolved=False)  # options as the design writes
    old = {k: v for k, v in written.items() if k not in ("primary", "data")}
    data = {
        k: v
        for k, v in doc["data"].items()
        if k not in ("withheld_from_period", "pre_start_sha256_by_outcome")
    }
    legacy = {**doc, "schema_version": 1, "decisions": old, "data": data, "sha256": plan_hash(old)}
    plan.write_text(json.dumps(legacy))
    assert _run(design, plan, tmp_path / "o") == {
        "sha256": plan_hash(old),
        "file": plan.name,
        "followed": True,
        "deviations": [],
    }


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["detectable"][0].update(mdes=0.05), "the plan's contents do not match"),
        (lambda d: d["data"].update(withheld_rows=0), "the plan's contents do not match"),
        (lambda d: d.update(decisions=[]), "decisions: not what"),
        (lambda d: d["decisions"].update(outcomes=[]), "decisions.outcomes: not what"),
        (lambda d: d["decisions"].update(analyses={"a": 1}), "decisions.analyses.a: not what"),
        (lambda d: d["decisions"].pop("primary"), "decisions.primary: not what"),
        (lambda d: d["decisions"].update(rollout=[1, 2]), "decisions.rollout.0: not what"),
        (lambda d: d["decisions"].update(seed=True), "decisions.seed: not what"),
        (lambda d: d["decisions"].update(groups={"g": 1}), "decisions.groups.g: not what"),
        (
            lambda d: d["decisions"]["analyses"]["stepped_wedge"].update(options=[1]),
            "decisions.analyses.stepped_wedge: not what",
        ),
        (
            lambda d: d["data"].update(withheld_from_period=10**30),
            "data.withheld_from_period: not what",
        ),
        (
            lambda d: d["data"].pop("pre_start_sha256_by_outcome"),
            "data.pre_start_sha256_by_outcome: not what",
        ),
        (lambda d: d.update(schema_version=5), "schema_version 5 is not one this version reads"),
        (lambda d: d.update(schema_version=True), "schema_version True is not one this version"),
    ],
)
def test_an_edited_or_malformed_plan_is_refused_before_the_run(tmp_path, capsys, edit, message):
    """The hash covered the decisions only, so the plan's MDES, withheld rows and pre-start
    hash could be edited unseen; a hand-made plan with a matching hash crashed with an
    internal error after the whole run. Each is now refused at once (exit 2, no files): the
    first two with the hash as written, the others rehashed so only the shape is wrong."""
    from pathfinder_eval.analysis_plan import document_hash as rehash

    design, plan, doc = _trial_plan(tmp_path)
    edit(doc)
    if "not what" in message:
        doc["sha256"] = rehash(doc)
    plan.write_text(json.dumps(doc))
    out = tmp_path / "o"
    assert main(["run", str(design), "--out", str(out), "--plan", str(plan)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and not out.exists()


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, '{"a": 1' + "0" * 5000 + "}"])
def test_a_plan_file_json_cannot_read_is_a_user_error(tmp_path, capsys, text):
    """JSON nested 100,000 deep or holding a 5,000-digit number was an internal error."""
    design, plan, _ = _trial_plan(tmp_path)
    plan.write_text(text)
    out = tmp_path / "o"
    assert main(["run", str(design), "--out", str(out), "--plan", str(plan)]) == 2
    err = capsys.readouterr().err
    assert "cannot read the analysis plan" in err and "Traceback" not in err


RECORDS = Path(__file__).resolve().parent / "reference/r_lme4_records/sim_cross.csv"
RECORDS_DESIGN = """name: sw_people
title: records checked against their plan
pilot: trial
unit_level: cluster
time: {axis: period}
rollout:
  - {wave: s2, start: 2, units: [c01, c02]}
  - {wave: s3, start: 3, units: [c03, c04]}
  - {wave: s4, start: 4, units: [c05, c06]}
  - {wave: s5, start: 5, units: [c07, c08]}
  - {wave: s6, start: 6, units: [c09, c10]}
  - {wave: s7, start: 7, units: [c11, c12]}
comparison: {pool: not_yet_treated, min_units: 1}
outcomes: [{column: y}]
analyses:
  - id: lmm
    estimator: stepped_wedge
    options: {model: nested_exchangeable, effect: immediate}
data: {source: records, columns: {unit: cluster, period: period}}
"""


def test_records_other_than_the_plans_before_the_first_start_are_a_deviation(tmp_path):
    """The plan recorded its data's file names only, so a run on other records followed the
    plan. A record before the first start changed is now listed; records from the first start
    on, which the plan never read, may differ (they are what the trial measures)."""
    design = tmp_path / "sw_people.yaml"
    design.write_text(RECORDS_DESIGN)
    html, doc = write_plan(tmp_path / "plan", design, "--data", str(RECORDS))
    assert "Data read as registered (a change is a deviation): source records; unit: cluster." in (
        html
    )
    plan = tmp_path / "plan" / "sw_people_plan.json"
    records = pd.read_csv(RECORDS)
    later, earlier = records.copy(), records.copy()
    later.loc[later["period"] >= 2, "y"] += 1.0
    earlier.loc[earlier.index[earlier["period"] == 1][0], "y"] += 0.5
    runs = {}
    for name, frame in (("same", records), ("later", later), ("earlier", earlier)):
        path = tmp_path / f"{name}.csv"
        frame.to_csv(path, index=False)
        runs[name] = _run(design, plan, tmp_path / name, "--data", str(path))
    assert runs["same"]["followed"] and runs["later"]["followed"]
    assert runs["earlier"]["deviations"] == [
        {
            "kind": "data changed",
            "what": "the data before period 2 differ from those the plan was written on for y: "
            "other or revised files, other exclusions, or simulated data drawn with another "
            "seed",
        }
    ]
    assert doc["data"]["pre_start_sha256_by_outcome"] == {
        "y": {"1": doc["data"]["pre_start_sha256"]}  # one outcome, one pre-start period
    }


def test_a_narrower_window_is_a_window_change_and_pool_order_none(tmp_path):
    """Moving time.first from 2017 to 2018 was reported twice, as a window change and as
    data that differ before the first start (the plan's 2017 cells are not in the run); the
    comparison pool's exclusions in another order were a deviation."""
    text = DESIGNS["family_help"].read_text(encoding="utf-8")
    design = tmp_path / "family_help.yaml"
    design.write_text(text)
    write_plan(tmp_path / "plan", design)
    plan = tmp_path / "plan" / "family_help_plan.json"
    line = "  exclude: [Brighton and Hove, Sunderland, Gateshead, Telford and Wrekin, "
    assert line in text
    shuffled = text.replace(
        line, "  exclude: [Sunderland, Brighton and Hove, Gateshead, Telford and Wrekin, "
    )
    design.write_text(shuffled.replace("  first: 2017", "  first: 2018"))
    assert _run(design, plan, tmp_path / "o")["deviations"] == [
        {
            "kind": "analysis window changed",
            "what": "analysis window (first) changed from 2017 to 2018",
        }
    ]


@needs_public_data
def test_a_statistical_neighbour_pool_follows_its_own_plan(tmp_path):
    """The plan records the pool resolved from the neighbour file (its comparison units); the
    run checked the unresolved design, so an unchanged design with statistical_neighbours
    listed 'comparison pool (units) changed from [...] to []' (found in review)."""
    design = DESIGNS["family_help"].parent / "examples/family_help_neighbours.yaml"
    write_plan(tmp_path / "plan", design, "--data", str(PUBLIC_DATA))
    plan = tmp_path / "plan" / f"{load_design(design).name}_plan.json"
    check = _run(design, plan, tmp_path / "o", "--data", str(PUBLIC_DATA))
    assert check["followed"] and check["deviations"] == []


def test_a_plan_written_before_the_post_start_data_exist(tmp_path):
    """The plan is written before the outcome data: on data ending the year before the start
    it refused 'start ... outside the data: after its last period' (found in review). It now
    gives the same plan as on the full data with those years withheld, and the run on the full
    data follows it."""
    rng = np.random.default_rng(3)
    units, years = [f"u{i:02d}" for i in range(30)], range(2016, 2026)
    frame = pd.DataFrame([(u, y) for u in units for y in years], columns=["unit", "year"])
    frame["y"] = rng.normal(50, 5, len(frame)) + frame["year"] - 2016
    design = tmp_path / "early.yaml"
    design.write_text(
        "name: early\ntitle: early\npilot: custom\nunit_level: cluster\n"
        "rollout: [{wave: w, start: 2024, units: [u00, u01, u02]}]\n"
        "comparison: {pool: never_treated}\ntime: {axis: period}\n"
        "outcomes: [{column: y}]\nanalyses: [{id: twfe, estimator: twfe}]\n"
        "data: {source: tidy, columns: {unit: unit, period: year}}\n"
    )
    full, early = tmp_path / "full.csv", tmp_path / "early.csv"
    frame.to_csv(full, index=False)
    frame[frame["year"] < 2024].to_csv(early, index=False)
    _, before = write_plan(tmp_path / "before", design, "--data", str(early))
    _, after = write_plan(tmp_path / "after", design, "--data", str(full))
    assert before["detectable"] == after["detectable"] and before["detectable"][0]["mdes"] > 0
    assert before["data"]["withheld_rows"] == 0 and after["data"]["withheld_rows"] == 60
    assert (
        before["data"]["pre_start_sha256_by_outcome"]
        == after["data"]["pre_start_sha256_by_outcome"]
    )
    check = _run(
        design, tmp_path / "before" / "early_plan.json", tmp_path / "o", "--data", str(full)
    )
    assert check["followed"] and check["deviations"] == []


def test_a_start_the_data_do_not_reach_is_padded_only_before_the_first(tmp_path, capsys):
    """Blank periods are added only when the data end before the first start: with data that
    reach the first wave, a second wave in 2204 (a typo) was planned where validate and run
    refuse it, and a start in 20240 spent minutes padding 18,000 blank years (found in
    review)."""
    units, years = [f"u{i:02d}" for i in range(12)], range(2014, 2027)
    frame = pd.DataFrame(
        [(u, y, 50.0 + i) for i, (u, y) in enumerate((u, y) for u in units for y in years)],
        columns=["unit", "year", "y"],
    )
    data = tmp_path / "panel.csv"
    frame.to_csv(data, index=False)
    head = (
        "name: late\ntitle: late\npilot: custom\nunit_level: cluster\n"
        "comparison: {pool: never_treated, min_units: 1}\ntime: {axis: period}\n"
        "outcomes: [{column: y}]\nanalyses: [{id: twfe, estimator: twfe}]\n"
        "data: {source: tidy, columns: {unit: unit, period: year}}\n"
    )
    design = tmp_path / "late.yaml"
    for rollout, message in (
        (
            "[{wave: a, start: 2022, units: [u00]}, {wave: b, start: 2204, units: [u01]}]",
            "start 2204 of u01 maps to period 2204, outside the data: after its last period",
        ),
        (
            "[{wave: a, start: 20240, units: [u00]}]",
            "the latest start is 18214 periods after the data's last",
        ),
    ):
        design.write_text(head + f"rollout: {rollout}\n")
        assert main(["plan", str(design), "--out", str(tmp_path / "p"), "--data", str(data)]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "p").exists()


def test_a_pre_start_year_gone_from_the_data_or_added_is_a_deviation(tmp_path):
    """The check compared only the periods the run's cells held, so data without their first
    or a middle pre-start year followed the plan (found in review); a year added before the
    first is a change too. A window set in the design to leave a year out is a window change
    only."""
    rng = np.random.default_rng(4)
    units, years = [f"u{i:02d}" for i in range(20)], range(2015, 2026)
    frame = pd.DataFrame([(u, y) for u in units for y in years], columns=["unit", "year"])
    frame["y"] = rng.normal(50, 5, len(frame)) + frame["year"] - 2015
    head = (
        "name: gaps\ntitle: gaps\npilot: custom\nunit_level: cluster\n"
        "rollout: [{wave: w, start: 2023, units: [u00, u01, u02]}]\n"
        "comparison: {pool: never_treated}\n"
        "outcomes: [{column: y}]\nanalyses: [{id: twfe, estimator: twfe}]\n"
        "data: {source: tidy, columns: {unit: unit, period: year}}\n"
    )
    design = tmp_path / "gaps.yaml"
    design.write_text(head + "time: {axis: period}\n")
    planned = tmp_path / "planned.csv"
    frame[frame["year"] > 2015].to_csv(planned, index=False)
    write_plan(tmp_path / "plan", design, "--data", str(planned))
    plan = tmp_path / "plan" / "gaps_plan.json"
    changed = {
        "kind": "data changed",
        "what": "the data before period 2023 differ from those the plan was written on for "
        "y: other or revised files, other exclusions, or simulated data drawn with another "
        "seed",
    }
    for name, rows in (
        ("same", frame["year"] > 2015),
        ("first_gone", frame["year"] > 2016),
        ("middle_gone", (frame["year"] > 2015) & (frame["year"] != 2019)),
        ("added", frame["year"] > 0),
    ):
        data = tmp_path / f"{name}.csv"
        frame[rows].to_csv(data, index=False)
        check = _run(design, plan, tmp_path / name, "--data", str(data))
        assert check["deviations"] == ([] if name == "same" else [changed]), name
    design.write_text(head + "time: {axis: period, first: 2017}\n")
    check = _run(design, plan, tmp_path / "window", "--data", str(tmp_path / "added.csv"))
    assert [d["kind"] for d in check["deviations"]] == ["analysis window changed"]


def test_a_default_that_changed_since_the_plan_is_a_deviation(tmp_path):
    """The plan recorded each analysis's options as written, so a default that changed
    between the version that wrote the plan and the one that ran it (the GLMM's model moved
    from hussey_hughes to nested_exchangeable) read 'followed' (found in review). Schema 4
    records them resolved: a plan whose resolved default differs (here as if written when the
    stepped-wedge GEE's default correlation was exchangeable) names it, and writing a default
    out in the design changes nothing."""
    design, plan, doc = _trial_plan(tmp_path)
    assert doc["schema_version"] == 4
    options = doc["decisions"]["analyses"]["stepped_wedge_gee"]["options"]
    assert options["correlation"] == "nested_exchangeable" and options["correlation_method"] == (
        "maee"
    )
    text = design.read_text(encoding="utf-8")
    written = "options: {family: gaussian, correlation: nested_exchangeable}"
    assert written in text
    design.write_text(text.replace(written, "options: {family: gaussian}"))
    assert _run(design, plan, tmp_path / "same")["deviations"] == []
    options["correlation"] = "exchangeable"
    doc["sha256"] = document_hash(doc)
    plan.write_text(json.dumps(doc))
    assert _run(design, plan, tmp_path / "moved")["deviations"] == [
        {
            "kind": "analysis changed",
            "what": "analysis stepped_wedge_gee: options.correlation changed from exchangeable to "
            "nested_exchangeable",
        }
    ]
