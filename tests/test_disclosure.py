"""Disclosure control: thresholds, half-up rounding, secondary suppression, and reports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from pathfinder_eval.cli import main
from pathfinder_eval.report.disclosure import DisclosureLog, round_half_up


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [(2.5, 1, 3), (12.5, 5, 15), (17.5, 5, 20), (22.5, 5, 25), (7, 5, 5), (-2.5, 1, -3)],
)
def test_round_half_up_not_bankers(value, unit, expected):
    assert round_half_up(value, unit) == expected


def test_primary_suppression_threshold_is_configurable():
    dfe = DisclosureLog(min_count=6, round_to=1)
    assert [dfe.count(v, "t") for v in (0, 1, 5, 6)] == ["0", "<6", "<6", "6"]
    secure = DisclosureLog(min_count=10, round_to=5)
    assert [secure.count(v, "t") for v in (9, 10, 12, 13)] == ["<10", "10", "10", "15"]
    assert secure.rows() == [{"table": "t", "suppressed": 1, "rounded": 2}]


def test_secondary_suppression_protects_a_lone_small_cell_beside_a_total():
    log = DisclosureLog(min_count=6, round_to=1)
    cells, total = log.counts_with_total([3, 40, 12, 55], "t")
    assert cells == ["c", "40", "c", "55"]  # 12 is the smallest other cell
    assert total == "110"
    cells, _ = log.counts_with_total([3, 4, 40], "t")  # hidden 7 ≥ 6: no secondary
    assert cells == ["c", "c", "40"]
    # two hidden cells adding up to fewer than min_count: the total less the shown cells gave
    # their sum back (2 + 3 = 5 children; found in review), so the next smallest goes too
    cells, total = log.counts_with_total([2, 3, 40, 50], "t")
    assert cells == ["c", "c", "c", "50"] and total == "95"
    cells, _ = DisclosureLog(min_count=10, round_to=1).counts_with_total([3, 4, 40, 40], "t")
    assert cells == ["c", "c", "c", "40"]


DESIGN = """\
name: small_counts
title: Small counts
pilot: custom
unit_level: local_authority
time: {axis: reporting_year}
rollout:
  - {wave: W1, start: 2023-07-01, units: [Rutland]}
comparison: {pool: never_treated, min_units: 2}
outcomes:
  - {column: rate, numerator: events, denominator: children, scale: per_10000}
analyses:
  - {id: twfe, estimator: twfe}
data:
  source: tidy
  columns: {unit: la, period: year}
report:
  disclosure: {min_count: 10, round_to: 5}
"""
# comparison LAs: 10, as the pooled variance needs (CR2 has no variance with one treated LA)
TEN_LAS = [
    "Bolton",
    "Bury",
    "Wigan",
    "Leeds",
    "York",
    "Hull",
    "Derby",
    "Bath",
    "Oldham",
    "Stockport",
]


def test_no_small_count_reaches_the_report(tmp_path):
    rows = ["la,year,events,children"]
    small = {2021: 3, 2022: 7, 2023: 9, 2024: 4, 2025: 12}
    for y, n in small.items():
        rows.append(f"Rutland,{y},{n},8000")
        for k, la in enumerate(["Bolton", "Bury", "Wigan", "Leeds"]):
            rows.append(f"{la},{y},{200 + 10 * k + y % 7},60000")
    data = tmp_path / "d.csv"
    data.write_text("\n".join(rows) + "\n")
    design = tmp_path / "design.yaml"
    design.write_text(DESIGN)
    assert main(["run", str(design), "--data", str(data), "--out", str(tmp_path / "o")]) == 0
    html = (tmp_path / "o" / "small_counts.html").read_text()
    doc = (tmp_path / "o" / "small_counts.json").read_text()
    table = html[html.index("Treated numerator") :]
    table = table[: table.index("</table>")]
    shown = re.findall(r'<td class="num">([^<]*)</td>\s*</tr>', table)
    # 2025's 12 events and 15.00 per 10,000 are hidden too (secondary suppression): beside
    # the estimates (treated less comparison, per event time) a shown treated period gives
    # the hidden ones back (4 children, found in review)
    assert shown == ["c", "c", "c", "c", "c"]
    assert "Cells suppressed" in html
    assert "events" not in json.loads(doc)["analyses"][0]["diagnostics"]
    # Rutland's rate beside its suppressed events gave them back (rate × its population)
    treated = re.findall(r'<th scope="row">(\d{4})</th><td class="num">([^<]*)</td>', table)
    assert [v for _, v in treated] == ["c", "c", "c", "c", "c"]


TRIAL = """\
name: small_cells
title: Small cells
pilot: trial
unit_level: cluster
time: {axis: period}
rollout:
  - {wave: S1, start: 2, units: [A1, A2]}
  - {wave: S2, start: 3, units: [B1, B2]}
  - {wave: S3, start: 4, units: [C1, C2]}
comparison: {pool: not_yet_treated, min_units: 1}
outcomes: [{column: score, name: Score}]
analyses:
  - {id: eti, estimator: stepped_wedge, options: {effect: exposure_time}}
data: {source: records, columns: {unit: cluster, period: period}}
report:
  disclosure: DISCLOSURE
"""


def _small_cell_records(path) -> None:
    """6 clusters × 4 periods of 20 records, but A1 in period 1 has 1 record: 461 in all."""
    rng = np.random.default_rng(3)
    rows = ["cluster,period,score"]
    for c in ("A1", "A2", "B1", "B2", "C1", "C2"):
        for t in (1, 2, 3, 4):
            for _ in range(1 if (c, t) == ("A1", 1) else 20):
                rows.append(f"{c},{t},{rng.normal():.4f}")
    path.write_text("\n".join(rows) + "\n")


def test_counts_of_people_in_the_model_facts_are_controlled(tmp_path):
    """The participants table was controlled, but the model's design line, the appendix and
    the JSON printed the exact number of individuals (461) and a cluster-period of 1 child."""
    _small_cell_records(tmp_path / "d.csv")
    (tmp_path / "t.yaml").write_text(TRIAL.replace("DISCLOSURE", "{min_count: 10, round_to: 5}"))
    out = tmp_path / "o"
    argv = ["run", str(tmp_path / "t.yaml"), "--data", str(tmp_path / "d.csv"), "--out", str(out)]
    assert main(argv) == 0
    doc = json.loads((out / "small_cells.json").read_text())
    design = doc["analyses"][0]["diagnostics"]["design"]
    assert design["individuals"] == 460 and design["cell_size"] == {
        "min": None,
        "median": 20,
        "max": 20,
    }
    html = (out / "small_cells.html").read_text()
    assert not re.search(r"(?<![\w.])461(?![\w.])", html) and "(460 individuals;" in html
    assert "<td>model facts</td>" in html


@pytest.mark.parametrize(
    ("disclosure", "message"),
    [
        ("{min_count: yes, round_to: 5}", "valid integer"),
        ("{min_count: '10', round_to: 5}", "valid integer"),
        ("{min_count: 3, round_to: 10}", "would show a count of 3"),
    ],
)
def test_disclosure_settings_that_would_weaken_control_are_refused(
    tmp_path, capsys, disclosure, message
):
    """`yes` read as 1 switched suppression off; a string passed; rounding to 10 showed a
    3-child count (not suppressed at min_count 3) as 0."""
    _small_cell_records(tmp_path / "d.csv")
    (tmp_path / "t.yaml").write_text(TRIAL.replace("DISCLOSURE", disclosure))
    argv = [
        "run",
        str(tmp_path / "t.yaml"),
        "--data",
        str(tmp_path / "d.csv"),
        "--out",
        str(tmp_path / "o"),
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "report.disclosure" in err and message in err and not (tmp_path / "o").exists()


def _run_trial(
    tmp_path, records: str, design: str = TRIAL, disclosure: str = "{min_count: 10, round_to: 5}"
) -> tuple[dict, str]:
    """A trial `design` (TRIAL by default) with `disclosure` run on the file `records` in
    `tmp_path`: its JSON and HTML."""
    (tmp_path / "t.yaml").write_text(design.replace("DISCLOSURE", disclosure))
    out = tmp_path / "o"
    argv = ["run", str(tmp_path / "t.yaml"), "--data", str(tmp_path / records), "--out", str(out)]
    assert main(argv) == 0
    return (
        json.loads((out / "small_cells.json").read_text()),
        (out / "small_cells.html").read_text(),
    )


def test_records_left_out_are_counts_of_children(tmp_path):
    """The exclusions table showed 3 records with a missing outcome, and one child's row and
    value ('column score = 1e+20')."""
    _small_cell_records(tmp_path / "d.csv")
    lines = (tmp_path / "d.csv").read_text().splitlines()
    for i in (5, 6, 7):
        lines[i] = lines[i].rsplit(",", 1)[0] + ","
    lines[40] = lines[40].rsplit(",", 1)[0] + ",1e20"
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    doc, html = _run_trial(tmp_path, "d.csv")
    (missing, odd) = doc["exclusions"]
    assert (missing["reason"], missing["count"]) == (
        "individual record with a missing outcome",
        None,
    )
    assert odd["reason"].endswith("(first: d.csv row 40, column score)") and odd["count"] is None
    assert "1e+20" not in html and "1e20" not in html
    rows = re.findall(r'<td class="num">(&lt;10)</td><td class="num">1</td></tr>', html)
    assert len(rows) == 2


def test_a_sequence_total_suppressed_hides_the_trial_total(tmp_path):
    """Sequence S3's total was shown as <10 while the model facts gave the trial's total, so
    subtraction gave it back."""
    rng = np.random.default_rng(5)
    rows = ["cluster,period,score"]
    for c, n in (("A1", 20), ("A2", 20), ("B1", 20), ("B2", 20), ("C1", 2)):
        rows += [f"{c},{t},{rng.normal():.4f}" for t in (1, 2, 3, 4) for _ in range(n)]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    design = TRIAL.replace("units: [C1, C2]", "units: [C1]")
    doc, html = _run_trial(tmp_path, "d.csv", design, "{min_count: 10, round_to: 1}")
    assert doc["analyses"][0]["diagnostics"]["design"]["individuals"] is None
    assert "a suppressed number of individuals" in html
    assert not re.search(r"(?<![\w.])328(?![\w.])", html)


def test_a_binary_trial_controls_its_events(tmp_path):
    """The GLMM's design facts printed 'events': 7.0 while the trends table showed <10."""
    rng = np.random.default_rng(7)
    rows = ["cluster,period,placed"]
    for c in ("A1", "A2", "B1", "B2", "C1", "C2"):
        rows += [f"{c},{t},{int(rng.random() < 0.02)}" for t in (1, 2, 3, 4) for _ in range(20)]
    (tmp_path / "b.csv").write_text("\n".join(rows) + "\n")
    design = TRIAL.replace(
        "outcomes: [{column: score, name: Score}]", "outcomes: [{column: placed}]"
    )
    design = design.replace(
        "{id: eti, estimator: stepped_wedge, options: {effect: exposure_time}}",
        "{id: glmm, estimator: stepped_wedge_glmm}",
    )
    events = sum(int(r.rsplit(",", 1)[1]) for r in rows[1:])
    assert 0 < events < 10
    doc, _ = _run_trial(tmp_path, "b.csv", design)
    assert doc["analyses"][0]["diagnostics"]["design"]["events"] is None


def test_a_small_comparison_count_hides_the_comparison_mean(tmp_path):
    """A never-started cluster with 2 events of 20 each period: the trends table's comparison
    mean 0.10 beside its 20 participants gave the 2 back."""
    rows = ["cluster,period,placed"]
    for c in ("A1", "A2", "B1", "B2", "C1", "C2", "D1"):
        events = 2 if c == "D1" else 6
        rows += [f"{c},{t},{int(i < events)}" for t in (1, 2, 3, 4) for i in range(20)]
    (tmp_path / "b.csv").write_text("\n".join(rows) + "\n")
    design = TRIAL.replace("[{column: score, name: Score}]", "[{column: placed, name: Placed}]")
    _, html = _run_trial(tmp_path, "b.csv", design)
    table = html[html.index("Intervention numerator") :]
    table = table[: table.index("</table>")]
    cells = re.findall(r'<td class="num">([^<]*)</td>', table)
    # by condition (a trial): D1 is a control cell in every period, alone from period 4
    # the mean of k not-yet-started clusters' 6/20 and D1's 2/20: (0.3k + 0.1)/(k + 1)
    # and every other period's too (secondary suppression: beside the estimates a shown
    # period gives the hidden one back)
    assert cells[1::5] == ["c", "c", "c", "c"]
    assert cells[3::5] == ["7", "5", "3", "1"]
    assert "0.10" not in table


def test_rows_an_analysis_leaves_out_of_records_are_controlled_everywhere(tmp_path):
    """On child-level records an analysis's own exclusions (bacon balancing the panel) showed
    'count': 5 in the JSON's analyses and the appendix, and the limitations' total beside
    suppressed parts gave them back by subtraction."""
    rng = np.random.default_rng(1)
    rows = ["cluster,period,score"]
    for c in [f"T{i}" for i in range(3)] + [f"C{i}" for i in range(8)]:
        for t in range(1, 7):
            if (c, t) != ("C0", 6):
                rows += [f"{c},{t},{rng.normal():.3f}" for _ in range(13 if c == "C0" else 20)]
    (tmp_path / "r.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "d.yaml").write_text(
        "name: didrec\ntitle: t\npilot: custom\nunit_level: cluster\ntime: {axis: period}\n"
        "rollout:\n  - {wave: S1, start: 3, units: [T0]}\n"
        "  - {wave: S2, start: 4, units: [T1, T2]}\n"
        "comparison: {pool: never_treated, min_units: 1}\n"
        "outcomes: [{column: score, name: Score}]\nanalyses:\n  - {id: bacon, estimator: bacon}\n"
        "data: {source: records, columns: {unit: cluster, period: period}}\n"
        "report:\n  disclosure: {min_count: 10, round_to: 5}\n"
    )
    out = tmp_path / "o"
    argv = ["run", str(tmp_path / "d.yaml"), "--data", str(tmp_path / "r.csv"), "--out", str(out)]
    assert main(argv) == 0
    doc = json.loads((out / "didrec.json").read_text())
    (dropped,) = doc["analyses"][0]["dropped"]
    assert dropped["count"] is None and dropped["reason"].endswith("(counted in cluster-periods)")
    assert [e["count"] for e in doc["exclusions"]] == [None]
    html = (out / "didrec.html").read_text()
    assert "&#34;count&#34;: 5" not in html and "Some more rows were left out" in html


def _one_la_panel(tmp_path, rutland: dict[int, int]) -> Path:
    """Rutland treated from 2023-07 beside 10 comparison LAs (enough for the pooled variance:
    CR2 has none with one treated unit); Rutland's events by year."""
    rows = ["la,year,events,children"]
    others = TEN_LAS
    for y, n in rutland.items():
        rows.append(f"Rutland,{y},{n},8000")
        for k, la in enumerate(others):
            rows.append(f"{la},{y},{150 + 13 * k + (y * (k + 3)) % 11},60000")
    data = tmp_path / "d.csv"
    data.write_text("\n".join(rows) + "\n")
    return data


@pytest.mark.parametrize("estimator", ["synthetic_control", "synthetic_did"])
def test_a_synthetic_comparator_of_a_small_count_is_not_shown(tmp_path, estimator):
    """One treated LA with 4 children in 2022: its gap beside the donors' weights gave its
    rate, and so its count, back (HTML table and chart, JSON estimates and diagnostics)."""
    design = tmp_path / "design.yaml"
    analyses = f"  - {{id: sc, estimator: {estimator}}}\n  - {{id: twfe, estimator: twfe}}\n"
    design.write_text(DESIGN.replace("  - {id: twfe, estimator: twfe}\n", analyses))
    runs = {}
    for name, counts in {
        "small": {2020: 30, 2021: 25, 2022: 4, 2023: 28, 2024: 31, 2025: 27},
        "large": {2020: 30, 2021: 25, 2022: 24, 2023: 28, 2024: 31, 2025: 27},
    }.items():
        (tmp_path / name).mkdir()
        data = _one_la_panel(tmp_path / name, counts)
        text = data.read_text()  # a donor without 2021: the comparator leaves it out
        data.write_text(re.sub(r"\nBath,2021,\d+,", "\nBath,2021,,", text))
        out = tmp_path / name / "o"
        assert main(["run", str(design), "--data", str(data), "--out", str(out)]) == 0
        html = (out / "small_counts.html").read_text()
        doc = json.loads((out / "small_counts.json").read_text())
        runs[name] = html, {a["id"]: a for a in doc["analyses"]}, doc["exclusions"]
    html, analyses, _ = runs["small"]
    hidden = analyses["sc"]
    assert hidden["status"] == "suppressed" and hidden["estimates"] == []
    assert (
        "a treated unit's or sole donor's count of children is below 10 (Rutland in 2022"
        in hidden["note"]
    )
    assert "Not shown: disclosure control: a treated unit&#39;s or sole donor&#39;s count" in html
    assert analyses["twfe"]["status"] == "ok"  # an average over periods and LAs stays
    left_out = [e for e in runs["small"][2] if e["analysis"] == "sc"]
    assert [e["count"] for e in left_out] == [5]  # Bath's other 5 years: still counted
    assert "Synthetic comparator gap" not in html
    html, analyses, _ = runs["large"]
    assert analyses["sc"]["status"] == "ok" and analyses["sc"]["estimates"]
    assert "Synthetic comparator gap" in html


def test_a_baseline_that_gives_a_hidden_count_back_is_not_shown(tmp_path):
    """The TWFE MDES's baseline, the treated LA's pre-start mean (per 10,000 children), beside
    the trends table's other pre-start years gave its hidden 2022 back: 4 children."""
    design = tmp_path / "design.yaml"
    design.write_text(DESIGN)
    runs = {}
    for name, y2022 in (("small", 4), ("large", 24)):
        (tmp_path / name).mkdir()
        counts = {2020: 30, 2021: 25, 2022: y2022, 2023: 28, 2024: 31, 2025: 27}
        data = _one_la_panel(tmp_path / name, counts)
        out = tmp_path / name / "o"
        assert main(["run", str(design), "--data", str(data), "--out", str(out)]) == 0
        doc = json.loads((out / "small_counts.json").read_text())
        runs[name] = doc["analyses"][0]["detectable"], (out / "small_counts.html").read_text()
    (hidden, html), (shown, _) = runs["small"], runs["large"]
    assert hidden["baseline"] is None and hidden["mdes_relative"] is None
    assert "mean before they started" not in html
    assert shown["baseline"] == pytest.approx((30 + 25 + 24 + 28) / 4 / 8000 * 10000)


def test_a_small_treated_count_after_the_start_hides_the_treated_side_and_the_baseline(
    tmp_path,
):
    """4 children in 2024, after Rutland's start: the trends table hid 2024 only, and the
    TWFE estimate (and an event study's, period by period) less the shown treated and
    comparison means gave it back (found in review). Now no treated period's mean or count is
    shown, nor the MDES's baseline (the pre-start mean, beside the estimates' differences)."""
    design = tmp_path / "design.yaml"
    design.write_text(DESIGN)
    counts = {2020: 30, 2021: 25, 2022: 24, 2023: 28, 2024: 4, 2025: 27}
    data = _one_la_panel(tmp_path, counts)
    out = tmp_path / "o"
    assert main(["run", str(design), "--data", str(data), "--out", str(out)]) == 0
    html = (out / "small_counts.html").read_text()
    table = html[html.index("Treated numerator") :]
    table = table[: table.index("</table>")]
    treated = re.findall(r'<th scope="row">(\d{4})</th><td class="num">([^<]*)</td>', table)
    assert [v for _, v in treated] == ["c"] * 6
    assert re.findall(r'<td class="num">([^<]*)</td>\s*</tr>', table) == ["c"] * 6
    detectable = json.loads((out / "small_counts.json").read_text())["analyses"][0]["detectable"]
    assert detectable["mdes"] > 0 and detectable["baseline"] is None
    assert "mean before they started" not in html


def _tidy_run(
    tmp_path: Path,
    rows: list[str],
    rollout: str,
    analyses: str,
    header: str = "la,year,events,children",
    outcomes: str = "",
    round_to: int = 1,
) -> str:
    """Run a tidy design (counts of children per LA and year; `outcomes`: lines added after the
    first outcome) and return the HTML."""
    (tmp_path / "d.csv").write_text("\n".join([header, *rows]) + "\n")
    first = "  - {column: rate, numerator: events, denominator: children, scale: per_10000}"
    design = (
        DESIGN.replace("units: [Rutland]", f"units: [{rollout}]")
        .replace("  - {id: twfe, estimator: twfe}", analyses)
        .replace(first, first + outcomes)
        .replace("round_to: 5", f"round_to: {round_to}")
    )
    (tmp_path / "design.yaml").write_text(design)
    out = tmp_path / "o"
    argv = ["run", str(tmp_path / "design.yaml"), "--data", str(tmp_path / "d.csv")]
    assert main([*argv, "--out", str(out)]) == 0
    return (out / "small_counts.html").read_text()


def _treated_means(html: str, after: str) -> list[str]:
    table = html[html.index(after) :]
    table = table[: table.index("</table>")]
    return [
        v for _, v in re.findall(r'<th scope="row">(\d{4})</th><td class="num">([^<]*)</td>', table)
    ]


def test_a_pair_of_treated_las_with_one_small_count_is_hidden(tmp_path):
    """Rutland (8,000 children, 4 events in 2024) and Cornwall treated: the side's total (67)
    was shown with the mean of their two rates, and with their published populations the two
    equations gave Rutland's 4 back (found in review)."""
    others = TEN_LAS
    rows = []
    for y in range(2018, 2026):
        rows += [
            f"Rutland,{y},{4 if y == 2024 else 30 + y % 3},8000",
            f"Cornwall,{y},{60 + (y * 7) % 5},9000",
        ]
        rows += [
            f"{la},{y},{150 + 13 * k + (y * (k + 3)) % 11},60000" for k, la in enumerate(others)
        ]
    html = _tidy_run(tmp_path, rows, "Rutland, Cornwall", "  - {id: twfe, estimator: twfe}")
    assert _treated_means(html, "Treated numerator") == ["c"] * 8


def test_a_triple_difference_hides_what_its_targeted_outcome_hides(tmp_path):
    """The contrast's cells have no counts, so its trends table showed the treated mean in
    every year, and beside the untargeted outcome's it gave the targeted rate back: 4 children
    in 2024 that the targeted outcome's own table hid (found in review)."""
    others = TEN_LAS
    rows = []
    for y in range(2018, 2026):
        rows.append(f"Rutland,{y},{4 if y == 2024 else 30 + y % 3},8000,{40 + y % 5}")
        rows += [
            f"{la},{y},{150 + 13 * k + (y * (k + 3)) % 11},60000,{300 + k}"
            for k, la in enumerate(others)
        ]
    html = _tidy_run(
        tmp_path,
        rows,
        "Rutland",
        "  - {id: twfe, estimator: twfe, outcomes: [gap]}",
        header="la,year,events,children,events2",
        outcomes="\n  - {column: rate2, numerator: events2, denominator: children, "
        "scale: per_10000}\ncontrasts: [{id: gap, outcome: rate, minus: rate2}]",
        round_to=5,
    )
    sections = html.split("Treated numerator")
    assert len(sections) == 4  # rate, rate2 and the contrast
    hidden = [
        _treated_means("Treated numerator" + part, "Treated numerator") for part in sections[1:]
    ]
    assert hidden[0] == ["c"] * 8 and hidden[2] == ["c"] * 8  # rate and gap
    assert "c" not in hidden[1]  # rate2's counts are not small


def test_a_sole_donors_small_count_suppresses_the_synthetic_control(tmp_path):
    """Rutland, a comparison LA with 3 events in 2025, was Leeds's only donor (weight 1): the
    gaps beside Leeds's shown rate gave Rutland's 3 back (found in review)."""
    rows = []
    for y in range(2018, 2026):
        rows += [
            f"Leeds,{y},{225 + (y % 4) * 7},60000",
            f"Rutland,{y},{3 if y == 2025 else 30 + y % 4},8000",
            f"Bolton,{y},{400 + (y * 5) % 9},50000",
            f"Bury,{y},{420 + (y * 2) % 9},70000",
        ]
    html = _tidy_run(tmp_path, rows, "Leeds", "  - {id: sc, estimator: synthetic_control}")
    assert "sole donor&#39;s count of children is below 10 (Rutland in 2025)" in html
    doc = json.loads((tmp_path / "o" / "small_counts.json").read_text())
    assert doc["analyses"][0]["status"] == "suppressed" and not doc["analyses"][0]["estimates"]


def test_leave_one_donor_out_estimates_go_when_a_donors_count_is_small(tmp_path):
    """Leeds's synthetic control from Rutland (3 events in 2025) and Bolton, both weighted: the
    analysis is shown, but leaving Bolton out leaves Rutland alone, and that refit's estimate
    beside Leeds's shown 2025 rate gave Rutland's 3 back (found in review). The
    leave-one-donor-out estimates are not published when a donor has a small count; they stay
    when none has."""
    rows = []
    for y in range(2018, 2026):
        rut = 3 if y == 2025 else 30 + y % 4
        bol = 400 + (y * 5) % 9
        leeds = round(60000 * 0.5 * (rut / 8000 + bol / 50000)) if y < 2025 else 400 + y % 3
        rows += [f"Leeds,{y},{leeds},60000", f"Rutland,{y},{rut},8000", f"Bolton,{y},{bol},50000"]
    html = _tidy_run(tmp_path, rows, "Leeds", "  - {id: sc, estimator: synthetic_control}")
    doc = json.loads((tmp_path / "o" / "small_counts.json").read_text())
    (analysis,) = doc["analyses"]
    assert analysis["status"] == "ok" and analysis["estimates"]
    weights = analysis["diagnostics"]["units"]["Leeds"]["donor_weights"]
    assert sum(w > 0 for w in weights.values()) == 2  # no sole donor: the analysis is shown
    assert "leave_one_donor_out" not in analysis["diagnostics"]["units"]["Leeds"]
    assert "leave_one_donor_out" not in html.replace(str(tmp_path), "")
    bigger = [r.replace(",3,8000", ",30,8000") for r in rows]
    (tmp_path / "o").rename(tmp_path / "small")
    _tidy_run(tmp_path, bigger, "Leeds", "  - {id: sc, estimator: synthetic_control}")
    doc = json.loads((tmp_path / "o" / "small_counts.json").read_text())
    loo = doc["analyses"][0]["diagnostics"]["units"]["Leeds"]["leave_one_donor_out"]
    assert len(loo) == 2  # Rutland's and Bolton's codes
