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
from pathfinder_eval.analysis_plan import decisions, deviations, plan_hash
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
    assert doc["sha256"] == plan_hash(doc["decisions"]) == plan_hash(decisions(spec))
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
    assert "do not match its registered hash" in err and "Traceback" not in err
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


def test_a_model_based_primary_analysis_is_read_against_the_normal_reference(tmp_path):
    """A Kenward-Roger primary was read against t(I − 1) and called a lower bound 'since the
    analysis's cluster-robust variance is less efficient': 0.2489, above the 0.2393 the
    analysis itself reaches in simulation (2,000 trials, interval 0.2335–0.2435)."""
    from pathfinder_eval.power.analytic import VarianceModel, gls_precision, mdes

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
    assert row["mdes"] == pytest.approx(mdes(variance), rel=1e-9)
    assert row["mdes"] == pytest.approx(0.2267, abs=1e-4)
    assert "normal reference; a lower bound for the analysis, since it estimates" in row["basis"]


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
