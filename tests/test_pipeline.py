"""End to end: the three pilot designs and the trial example through the CLI."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from pathfinder_eval.cli import main
from pathfinder_eval.results import COLUMNS

DESIGNS = Path(__file__).resolve().parents[1] / "designs"

ALL_DESIGNS = ["family_help", "family_network", "rcc"]
FAMILY_HELP_OUTCOMES = (
    "repeat_referrals",
    "entering_care_rate",
    "s47_rate",
    "icpc_rate",
    "cpp_rate",
    "repeat_cpp",
)


def run_design(tmp_path, name: str, *extra: str, design_dir=DESIGNS) -> tuple[str, dict]:
    design = design_dir / f"{name}.yaml"
    out = tmp_path / "out"
    assert main(["run", str(design), "--out", str(out), *extra]) == 0
    html = (out / f"{name}.html").read_text(encoding="utf-8")
    doc = json.loads((out / f"{name}.json").read_text(encoding="utf-8"))
    return html, doc


@pytest.fixture(scope="module")
def family_help(tmp_path_factory):
    return run_design(tmp_path_factory.mktemp("fh"), "family_help")


def check_schema(doc: dict) -> None:
    assert doc["schema_version"] == 1
    assert set(doc) == {
        "schema_version",
        "design",
        "provenance",
        "analysis_plan",
        "analyses",
        "exclusions",
        "robustness",
    }
    assert doc["analysis_plan"] is None  # no --plan given
    prov = doc["provenance"]
    assert set(prov) == {
        "package_version",
        "python",
        "dependencies",
        "data_files",
        "design_sha256",
        "seed",
        "command",
    }
    assert re.fullmatch(r"[0-9a-f]{64}", prov["design_sha256"])
    # every package that computes a reported number, with its installed version
    from importlib.metadata import version

    recorded = dict(prov["dependencies"])
    for name in ("numpy", "scipy", "statsmodels", "linearmodels", "pyarrow", "numba", "clarabel"):
        assert recorded[name] == version(name)
    for a in doc["analyses"]:
        assert {
            "id",
            "outcome",
            "estimator",
            "inference",
            "estimates",
            "diagnostics",
            "warnings",
            "status",
            "note",
        } <= set(a)
        for row in a["estimates"]:
            assert list(row)[: len(COLUMNS)] == list(COLUMNS)
    keys = {"reason", "outcome", "count", "units", "stage"}
    for e in doc["exclusions"]:  # the panel's, then the rows analyses left out themselves
        assert set(e) == keys | {"analysis"} and e["count"] > 0
        assert (e["stage"] == "analysis") == (e["analysis"] is not None)
    for e in [e for p in doc["robustness"]["placebo_in_time"] for e in p["exclusions"]]:
        assert set(e) == keys and e["count"] > 0


def test_family_help_default_run(family_help):
    html, doc = family_help
    check_schema(doc)
    assert "SIMULATED" in html
    assert "entering_care_rate -10%" in html
    twfe = {a["outcome"]: a for a in doc["analyses"] if a["id"] == "twfe"}
    assert set(twfe) == set(FAMILY_HELP_OUTCOMES)
    for outcome in ("entering_care_rate", "cpp_rate", "repeat_cpp"):
        ok = twfe[outcome]
        assert ok["status"] == "ok" and ok["n_treated"] == 10, outcome
    cs = {a["outcome"]: a for a in doc["analyses"] if a["id"] == "callaway_santanna"}
    assert cs["cpp_rate"]["status"] == cs["repeat_cpp"]["status"] == "ok"
    # the injected 10% fall in entering care shows in the heterogeneity-robust estimate too
    care = cs["entering_care_rate"]
    assert care["status"] == "ok" and care["estimates"][0]["term"] == "ATT (simple)"
    assert care["estimates"][0]["estimate"] < 0
    # the family network pilot LAs are excluded from the comparison pool and counted
    reasons = {e["reason"] for e in doc["exclusions"]}
    assert "LA in the family network pilot (treated by a related reform)" in reasons


def test_bjs_and_sun_abraham_pretests_and_their_power_are_reported(family_help):
    """Every imputation and Sun & Abraham analysis states its pre-trend test with what it
    could detect; the Poisson ETWFE's minimum detectable effect is a rate ratio."""
    html, doc = family_help
    bjs = [a for a in doc["analyses"] if a["estimator"] == "imputation" and a["status"] == "ok"]
    assert bjs and all(a["diagnostics"]["pretest_power"]["slope_50"] > 0 for a in bjs)
    assert html.count("lead coefficients (BJS&#39;s test") == len(bjs)
    assert html.count("the overall ATT would be biased by") == len(bjs)
    poisson = [
        a
        for a in doc["analyses"]
        if a["estimator"] == "etwfe"
        and a["status"] == "ok"
        and a["diagnostics"]["family"] == "poisson"
    ]
    assert poisson and all(a["detectable"]["scale"] == "log rate ratio" for a in poisson)
    assert html.count(" on the log scale: a rate ratio below ") == len(poisson)
    (dose,) = [a for a in doc["analyses"] if a["estimator"] == "continuous_did"]
    assert dose["status"] == "not_estimable" and "no dose column" in dose["note"]
    assert "Not estimated: data.columns.dose: continuous_did needs each treated" in html
    sa = [a for a in doc["analyses"] if a["estimator"] == "sun_abraham" and a["status"] == "ok"]
    assert sa and html.count("the cohort × lead interactions (CR1 by LA) are zero") == len(sa)
    assert html.count("For the event-time leads with the inference above: power of") == len(sa)


def test_report_is_self_contained_and_accessible(family_help):
    html, _ = family_help
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<script" not in html and "<link" not in html
    assert html.count("<svg") >= 4
    assert html.count('role="img" aria-label=') == html.count("<svg")
    assert '<html lang="en-GB">' in html


@pytest.mark.parametrize("name", ["family_network", "rcc"])
def test_other_designs_run(tmp_path, name):
    html, doc = run_design(tmp_path, name)
    check_schema(doc)
    if name == "rcc":
        assert {a["status"] for a in doc["analyses"]} == {"ok"}
        sc = [a for a in doc["analyses"] if a["id"] == "synthetic_control"]
        assert len(sc) == 6 and all(len(a["diagnostics"]["units"]) == 2 for a in sc)
        assert all("Only 1 post-period" in " ".join(a["warnings"]) for a in sc)
        assert "only 1 period of data after the start (2025)" in html
        check_gap_tables(html, doc)


def check_gap_tables(html: str, doc: dict) -> None:
    """Each synthetic analysis shows its gap series as a chart with a table of the same values."""
    from pathfinder_eval.report.format import fmt

    tables = re.findall(r"<caption>Gap in (.*?): treated.*?</caption>(.*?)</table>", html, re.S)
    synthetic = [a for a in doc["analyses"] if a["estimator"].startswith("synthetic")]
    assert len(tables) == len(synthetic) == 13
    for a, (_, body) in zip(synthetic, tables, strict=True):
        d = a["diagnostics"]
        if a["estimator"] == "synthetic_control":
            series = [u["gaps"] for u in d["units"].values()]
        else:
            series = list(d["gaps"].values())
        heads = re.findall(r'<th scope="col" class="num">(.*?)</th>', body)
        assert len(heads) == len(series)
        rows = dict(re.findall(r'<th scope="row">(\d{4})</th>(.*?)</tr>', body))
        for period, cells in rows.items():
            shown = re.findall(r'<td class="num">(.*?)</td>', cells)
            assert shown == [fmt(s[period]) for s in series]
        assert list(rows) == list(series[0])
    assert html.count("Donor (unit) weights, cohort 2025") == 6  # one per SDID outcome


def test_trial_example_runs(tmp_path):
    _, doc = run_design(tmp_path, "stepped_wedge_trial", design_dir=DESIGNS / "examples")
    twfe = next(a for a in doc["analyses"] if a["id"] == "twfe")
    est = twfe["estimates"][0]
    assert est["ci_lower"] < 0.3 < est["ci_upper"]  # true effect 0.3 SD
    html = (tmp_path / "out" / "stepped_wedge_trial.html").read_text(encoding="utf-8")
    # for the primary analysis's estimand and reference (it gave the immediate effect's 0.227
    # with a normal reference beside a time-averaged primary analysis; found in review)
    assert (
        "for the time-averaged effect over exposure times 1–4 (TATE), as the first stepped-wedge "
        "analysis (stepped_wedge) estimates it, t(11) reference): minimum detectable effect "
        "0.370 SD at "
        "80% power (0.429 at 90%); power 61.3% for the design&#39;s effect of 0.3 SD."
    ) in html


def test_same_inputs_give_identical_bytes(tmp_path):
    out = tmp_path / "out"
    argv = ["run", str(DESIGNS / "family_network.yaml"), "--out", str(out)]
    files = ("family_network.html", "family_network.json")
    assert main(argv) == 0
    first = [(out / f).read_bytes() for f in files]
    assert main(argv) == 0
    assert [(out / f).read_bytes() for f in files] == first


def test_seed_changes_synthetic_data(tmp_path):
    _, a = run_design(tmp_path / "a", "family_network", "--seed", "1")
    _, b = run_design(tmp_path / "b", "family_network", "--seed", "2")
    assert a["provenance"]["seed"] == 1 and b["provenance"]["seed"] == 2
    assert a["analyses"][0]["estimates"] != b["analyses"][0]["estimates"]


def test_autoescape_of_design_text(tmp_path):
    text = (DESIGNS / "family_network.yaml").read_text(encoding="utf-8")
    design = tmp_path / "family_network.yaml"
    design.write_text(
        text.replace("title: Family network pilot", "title: <script>alert(1)</script> pilot"),
        encoding="utf-8",
    )
    html, _ = run_design(tmp_path, "family_network", design_dir=tmp_path)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_templates_override(tmp_path):
    from pathfinder_eval.report.render import default_templates

    tpl = tmp_path / "tpl"
    shutil.copytree(default_templates(), tpl)
    page = tpl / "report.html.j2"
    page.write_text(
        page.read_text(encoding="utf-8").replace(
            '<main id="main">', '<main id="main"><p>Evidence body edition</p>'
        ),
        encoding="utf-8",
    )
    html, _ = run_design(tmp_path, "family_network", "--templates", str(tpl))
    assert "Evidence body edition" in html


def test_example_brand_override_restyles_the_frame_and_one_partial(tmp_path):
    brand = DESIGNS.parent / "reports" / "examples" / "evidence_body"
    html, _ = run_design(tmp_path, "family_network", "--templates", str(brand))
    assert "Example Evidence Centre" in html
    assert "Independently reviewed before publication" in html  # its sections/cover.html.j2
    assert html.count("<h1>") == 1
    assert 'id="summary"' in html and 'id="appendix"' in html  # sections kept


def test_a_design_names_its_template_pack_and_run_templates_overrides_it(tmp_path):
    """report.template was read and never used: a pack named in the design is now the
    report's (relative to the design file), and `--templates` still wins over it."""
    brand = DESIGNS.parent / "reports" / "examples" / "evidence_body"
    text = (DESIGNS / "family_network.yaml").read_text(encoding="utf-8")
    design = tmp_path / "branded.yaml"
    design.write_text(text + f"\nreport:\n  template: {brand}\n", encoding="utf-8")
    assert main(["run", str(design), "--out", str(tmp_path / "a")]) == 0
    assert "Example Evidence Centre" in next((tmp_path / "a").glob("*.html")).read_text()
    plain = DESIGNS.parent / "reports" / "templates"
    argv = ["run", str(design), "--out", str(tmp_path / "b"), "--templates", str(plain)]
    assert main(argv) == 0
    assert "Example Evidence Centre" not in next((tmp_path / "b").glob("*.html")).read_text()


def h2_ids(html: str) -> list[str]:
    return re.findall(r'<h2 id="([^"]+)"', html)


@pytest.fixture(scope="module")
def trial_context():
    from pathfinder_eval.pipeline import evaluate
    from pathfinder_eval.report.context import build_context
    from pathfinder_eval.spec import load_design

    ev = evaluate(load_design(DESIGNS / "examples" / "stepped_wedge_trial.yaml"))
    return build_context(ev)


def test_sections_are_chosen_by_pilot_and_rendered_in_order(trial_context):
    from pathfinder_eval.report.render import render_html

    html = render_html(trial_context)
    assert trial_context["sections"] == h2_ids(html)
    assert "consort" in trial_context["sections"]
    assert h2_ids(html)[:3] == ["summary", "design", "data"]


def test_one_partial_and_the_order_can_be_overridden(tmp_path, trial_context):
    from pathfinder_eval.report.render import render_html

    (tmp_path / "sections").mkdir()
    (tmp_path / "sections" / "limitations.html.j2").write_text(
        '<h2 id="limitations">Caveats</h2>\n<p>{{ limitations | length }} caveats.</p>\n'
    )
    html = render_html(trial_context, tmp_path)
    assert '<h2 id="limitations">Caveats</h2>' in html
    assert f"<p>{len(trial_context['limitations'])} caveats.</p>" in html
    assert h2_ids(html) == trial_context["sections"]  # the rest unchanged
    (tmp_path / "sections" / "order.j2").write_text(
        '{% set order = ["results"] + sections | reject("in", ["results", "consort"]) | list %}\n'
    )
    html = render_html(trial_context, tmp_path)
    expected = ["results"] + [
        s for s in trial_context["sections"] if s not in ("results", "consort")
    ]
    assert h2_ids(html) == expected


def test_placebo_in_time_is_the_estimator_on_the_truncated_panel(family_help):
    from dataclasses import replace

    from pathfinder_eval.estimators.did.callaway_santanna import CallawaySantAnna
    from pathfinder_eval.estimators.did.twfe import TwoWayFixedEffects
    from pathfinder_eval.pipeline import prepare
    from pathfinder_eval.report.format import fmt
    from pathfinder_eval.spec import load_design

    html, doc = family_help
    placebo = {(p["id"], p["outcome"]): p for p in doc["robustness"]["placebo_in_time"]}
    ids = ["twfe", "callaway_santanna", "callaway_santanna_nyt"]
    assert set(placebo) == {(i, o) for i in ids for o in FAMILY_HELP_OUTCOMES}
    # by hand: data before the first real start (2024), every start two years earlier
    panel = prepare(load_design(DESIGNS / "family_help.yaml"))
    cells = panel.cells[panel.cells["period"] < 2024].copy()
    cells["cohort"] -= 2
    cells["treated"] = (cells["period"] >= cells["cohort"]).astype("int64")
    units = panel.units.assign(cohort=panel.units["cohort"] - 2)
    manual = replace(panel, cells=cells, units=units, periods=tuple(range(2017, 2024)))
    estimators = {
        "twfe": TwoWayFixedEffects(leave_one_out=False, seed=panel.spec.seed),
        "callaway_santanna": CallawaySantAnna(seed=panel.spec.seed),
    }
    for outcome in ("entering_care_rate", "s47_rate"):
        late = int((panel.outcome_cells(outcome)["period"] >= 2024).sum())
        for aid, est in estimators.items():
            p = placebo[(aid, outcome)]
            assert p["status"] == "ok" and p["window"] == ["2017", "2023"] and p["shift"] == 2
            assert set(p["fake_starts"].values()) == {"2022", "2023"}
            assert [e["count"] for e in p["exclusions"]] == [late]
            fitted = est.fit(manual, outcome, aid)
            direct = fitted.table.iloc[0]
            if aid == "callaway_santanna":  # a re-fit's pre-test power is not computed
                assert fitted.facts.pretest_power["slope_80"] > 0
                assert p["diagnostics"]["pretest_power"] is None
            row = p["estimates"][0]
            assert row["estimate"] == pytest.approx(direct["estimate"], rel=1e-10)
            assert row["ci_lower"] == pytest.approx(direct["ci_lower"], rel=1e-10)
            cell = f"{fmt(row['estimate'])} ({fmt(row['ci_lower'])} to {fmt(row['ci_upper'])})"
            assert cell in html
    table = html[html.index('<h2 id="robustness">') : html.index('<h3 id="placebo">')]
    assert table.count("<em>placebo: starts moved 2 periods earlier</em>") == 6
    statements = html[html.index('<h3 id="placebo">') : html.index('<h2 id="limitations">')]
    assert statements.count("<li>") == 18
    assert "does not establish them" in statements or "excludes zero" in statements


@pytest.mark.parametrize("name", ALL_DESIGNS)
def test_real_statistics(tmp_path, public_data, name):
    html, doc = run_design(tmp_path, name, "--data", str(public_data))
    check_schema(doc)
    assert "SIMULATED" not in html
    assert "Open Government Licence" in html
    names = {f["path"] for f in doc["provenance"]["data_files"]}
    assert names and all(
        re.fullmatch(r"[0-9a-f]{64}", f["sha256"]) for f in doc["provenance"]["data_files"]
    )
    assert doc["design"]["data_kind"] == "official"
    assert any(a["status"] == "ok" for a in doc["analyses"])
    if name == "rcc":
        # Greater Manchester's totals include suppressed LA cells: flagged, not silently
        # understated, so the synthetic analyses of those outcomes estimate the South East
        # alone, from DfE's regional figures (which the report states up front), and say why.
        status = {(a["id"], a["outcome"]): a for a in doc["analyses"]}
        assert "South East: DfE's published regional figures" in doc["design"]["notes"][0]
        assert "DfE&#39;s published regional figures" in html
        for outcome in ("care_leavers_unsuitable_17_18", "new_placements_over_20_miles"):
            alone = status[("synthetic_control", outcome)]
            assert alone["status"] == "ok" and set(alone["diagnostics"]["units"]) == {"South East"}
            assert "Greater Manchester" in " ".join(alone["warnings"])
        assert status[("synthetic_did", "cla_rate")]["status"] == "ok"
        assert "New placements during the year more than 20 miles from home" in html
    if name == "family_help":
        # section 47 and ICPC rates divide by ONS estimates back to 2013: no year lost
        cells = {a["outcome"]: a["n_obs"] for a in doc["analyses"] if a["id"] == "twfe"}
        assert cells["s47_rate"] > 1000 and cells["cpp_rate"] > 1000


def test_headline_is_the_primary_analysis_and_methods_state_inference_validity(family_help):
    """family_help marks Callaway & Sant'Anna primary: the headline shows it, with the
    small-sample inference its default chose for 10 treated LAs; the Methods section lists
    every analysis's inference with its validity conditions."""
    import html as html_lib
    import re

    from pathfinder_eval.report.validity import VALIDITY

    html, doc = family_help
    summary = html[html.index('id="summary"') : html.index('id="design"')]
    assert "Callaway &amp; Sant&#39;Anna" in summary and "cohort-stratified variance" in summary
    assert "Two-way fixed-effects DiD" not in summary
    start = html.index('id="inference"')
    methods = html[start : html.index("<h2", start)]
    cells = re.findall(
        r'<tr><th scope="row">([^<]+)</th>.*?<td>([^<]*)</td><td>([^<]*)</td></tr>', methods
    )
    # one row per inference an analysis used: "id", or "id (outcomes)" when it used several
    rows: dict[str, str] = {}
    measured: dict[str, str] = {}
    for a, v, d in cells:
        aid = html_lib.unescape(a).split(" (")[0]
        rows.setdefault(aid, html_lib.unescape(v))
        measured.setdefault(aid, html_lib.unescape(d))
    ran = {a["id"] for a in doc["analyses"] if a["status"] == "ok"}
    assert ran <= set(rows)
    per_outcome = [html_lib.unescape(a) for a, _, _ in cells if " (" in a]
    labels = {(a["id"], a["inference"]) for a in doc["analyses"] if a["status"] == "ok"}
    assert len(cells) == len(labels) and all(")" in a for a in per_outcome)
    # the DiD analyses state the regional dependence measured on this panel and the geography
    assert measured["twfe"].startswith("Regional dependence measured on ")
    assert "Treated units by region: " in measured["twfe"]
    assert measured["bacon"].startswith("Not measured")
    assert rows["twfe"] == VALIDITY["cr2"] and rows["event_study"] == VALIDITY["cr2"]
    assert rows["callaway_santanna"] == VALIDITY["cohort_stratified"]
    assert (
        rows["sun_abraham"] == VALIDITY["cohort_stratified"]
        or rows["sun_abraham"] == (VALIDITY["cr2"])
    )


def test_report_wording_says_what_each_number_is(family_help):
    """A column of log rate ratios sat unlabelled beside per-10,000 differences; tests read
    'p = <0.001'; a dependence that could not be measured read 'correlate nan ... (not
    clearly above zero)'."""
    from pathfinder_eval.report.validity import dependence_statement
    from pathfinder_eval.results import RegionalDependence

    html, doc = family_help
    robustness = html[html.index('id="robustness"') :]
    robustness = robustness[: robustness.index("</table>")]
    poisson = [a for a in doc["analyses"] if a.get("scale") == "log_rate_ratio"]
    assert poisson and "(log rate ratio)" in robustness
    assert "p = &lt;" not in html and "p = <" not in html
    unmeasured = RegionalDependence(
        rho=float("nan"),
        rho_se=float("nan"),
        change_rho=float("nan"),
        change_rho_se=float("nan"),
        n_regions=0,
        n_comparison=84,
        treated_regions=(("North West", 1),),
    )
    text = dependence_statement(unmeasured)
    assert text.startswith("Regional dependence could not be measured") and "nan" not in text
