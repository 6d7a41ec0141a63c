"""Evaluation → plain view data for the template. Numbers are formatted and disclosure-controlled
here, so templates hold display logic only."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pathfinder_eval.data.catalogue import load_catalogue
from pathfinder_eval.data.ees import SYMBOLS
from pathfinder_eval.data.la_lookup import la_table
from pathfinder_eval.panel import OutcomeInfo, ValidatedPanel
from pathfinder_eval.pipeline import AnalysisRun, Evaluation
from pathfinder_eval.power.design import design_power, primary_estimand
from pathfinder_eval.registry import REGISTRY, entry
from pathfinder_eval.report.consort import checklist
from pathfinder_eval.report.disclosure import (
    DisclosureLog,
    ExclusionRow,
    exclusion_rows,
    participant_counts,
    published,
)
from pathfinder_eval.report.format import fmt, fmt_p, wrap
from pathfinder_eval.report.plots import plot_trends, to_svg
from pathfinder_eval.report.schematic import plot_schematic
from pathfinder_eval.report.summary import (
    detectable_sentence,
    headline,
    key_findings,
    robustness,
)
from pathfinder_eval.report.validity import dependence_statement, validity
from pathfinder_eval.report.views import estimator_view
from pathfinder_eval.workers import ordered_map

LICENCE = (
    "Contains public sector information licensed under the Open Government Licence v3.0. "
    "Source: Department for Education, Explore Education Statistics."
)
LABELS = {k.value: row.label for k, row in REGISTRY.items()}
PILOT_LABEL = {
    "family_help": "Families First for Children pathfinder (family help)",
    "family_network": "Family network pilot",
    "rcc": "Regional Care Co-operative pathfinder",
    "trial": "Stepped-wedge cluster randomised trial",
    "custom": "Custom design",
}
SECTIONS = (
    "deviations",
    "summary",
    "design",
    "data",
    "methods",
    "results",
    "robustness",
    "limitations",
    "consort",
    "appendix",
)


def report_sections(ev: Evaluation) -> list[str]:
    """The sections that apply, in order (partials sections/<id>.html.j2): the CONSORT
    checklist for trials only, robustness only when the design estimates something."""
    pilot = ev.panel.spec.pilot.value
    estimates = any(r.analysis.estimator.value != "descriptive" for r in ev.runs)
    skip = {"consort"} if pilot != "trial" else set()
    if ev.plan is None:
        skip.add("deviations")
    if not estimates:
        skip.add("robustness")
    return [s for s in SECTIONS if s not in skip]


# What the tables call the design's treated and comparison units, by unit_level (a region's
# comparisons are the LAs outside it).
UNITS_WORD = {
    "local_authority": ("LAs", "LAs"),
    "region": ("regions", "LAs"),
    "cluster": ("clusters", "clusters"),
}


def build_context(ev: Evaluation, workers: int | None = None) -> dict[str, Any]:
    """Everything the template shows, already formatted; each analysis's view (its tables
    and chart) drawn in up to `workers` local processes (default: the available cores)."""
    panel, spec = ev.panel, ev.panel.spec
    log = DisclosureLog(spec.report.disclosure.min_count, spec.report.disclosure.round_to)
    ev = published(ev, log)
    infos = {o.id: o for o in panel.outcomes}
    units = panel.units
    treated = units[units["role"] == "treated"].sort_values(["cohort", "name"])
    names = dict(zip(units["unit"], units["name"], strict=True))
    shown = [info for info in panel.outcomes if info.available]
    tasks = [("trend", info.id) for info in shown] + [("analysis", i) for i in range(len(ev.runs))]
    drawn = ordered_map(_draw, (ev, infos, names), tasks, workers)
    trends = [_trend(panel, info, log, *d) for info, d in zip(shown, drawn, strict=False)]
    analyses = drawn[len(shown) :]
    head = headline(ev, infos)
    return {
        "sections": report_sections(ev),
        "plan": ev.plan.to_dict() if ev.plan is not None else None,
        "title": spec.title,
        "name": spec.name,
        "pilot": PILOT_LABEL[spec.pilot.value],
        "programme": spec.programme,
        "description": spec.description,
        "evaluator": spec.evaluator,
        "funder": spec.funder,
        "sources": list(spec.sources),
        "report_date": spec.report.date.isoformat() if spec.report.date else "",
        "data_kind": panel.data.kind,
        "data_notes": list(panel.data.notes),
        "licence": LICENCE if panel.data.kind == "official" else "",
        "time_rule": spec.time.partial_period_rule.value,
        "treated_units": [
            {
                "name": r["name"],
                "unit": r["unit"],
                "wave": r["wave"],
                "start": r["start"],
                "first_period": panel.period_label(int(r["cohort"])),
                "exposure": f"{r['exposure_fraction']:.0%}",
            }
            for _, r in treated.iterrows()
        ],
        "n_comparison": int((units["role"] == "comparison").sum()),
        "units_word": UNITS_WORD[spec.unit_level.value],
        "not_yet_treated": spec.comparison.pool == "not_yet_treated",
        "neighbour_sets": neighbour_sets(spec),
        "periods": [panel.period_label(p) for p in panel.periods],
        "outcomes": [
            {
                "id": o.id,
                "name": o.name,
                "unit_label": o.unit_label,
                "polarity": o.polarity.replace("_", " "),
                "available": o.available,
                "note": o.note,
            }
            for o in panel.outcomes
        ],
        "trends": trends,
        "trends_heading": TREND_GROUPS[trend_grouping(panel)].heading.format(
            units=UNITS_WORD[spec.unit_level.value][0]
        ),
        "analyses": analyses,
        "data_files": ev.provenance.to_dict()["data_files"],
        "indicators": indicator_definitions(spec),
        "reorganisations": list(panel.data.reorganisations),
        "symbols": [{"symbol": k, "meaning": v} for k, v in SYMBOLS.items()],
        "limitations": limitations(panel, ev.runs),
        "design_power": _design_power(spec),
        "headline": [{k: v for k, v in r.items() if k != "_p"} for r in head],
        "findings": key_findings(head, panel.data.kind == "synthetic"),
        "robustness": robustness(ev, infos),
        "schematic": to_svg(plot_schematic(panel), "Design schematic"),
        "schematic_alt": (
            f"Grid of units by period showing when each treated unit "
            f"switched from control to intervention, {len(treated)} treated "
            "units and one row for all comparison units; the treatment timing "
            "table gives the same information."
        ),
        "consort": checklist() if spec.pilot.value == "trial" else [],
        "participants": _participants(panel, log) if spec.pilot.value == "trial" else None,
        "model_output": [
            {
                "id": r.analysis.id,
                "outcome": infos[r.outcome].name,
                "text": json.dumps(r.result.to_dict(), indent=2, allow_nan=False),
            }
            for r in ev.runs
            if r.result is not None
        ],
        "methods": [
            {"label": entry(k).label, "text": entry(k).method_text}
            for k in dict.fromkeys(r.analysis.estimator for r in ev.runs)
            if entry(k).method_text
        ],
        "inference": inference_rows(ev),
        "exclusions": [
            {
                "reason": e.reason,
                "outcome": _excluded_outcome(e, infos),
                "count": f"<{log.min_count}" if e.count is None else e.count,
                "units": len(e.units),
                "stage": e.stage if e.analysis is None else f"analysis {e.analysis}",
            }
            for e in exclusion_rows(ev, log)
        ],
        "disclosure": log.rows(),
        "disclosure_rule": (
            f"Counts of children below {log.min_count} are suppressed; other "
            f"counts are rounded to the nearest {log.round_to}."
        ),
        "provenance": ev.provenance.to_dict(),
    }


def _excluded_outcome(row: ExclusionRow, infos: dict[str, OutcomeInfo]) -> str:
    """The exclusions table's outcome: the data's and panel's by id ("all" when every
    outcome), an analysis's by its name."""
    if row.analysis is None:
        return row.outcome or "all"
    return infos[row.outcome].name if row.outcome in infos else row.outcome


def inference_rows(ev: Evaluation) -> list[dict[str, str]]:
    """For each analysis that produced a result: the inference it used (as the estimator
    states it, with the reason for a default's choice) and when that inference is valid; one
    row per inference an analysis used, naming its outcomes when the analysis used another
    for some (the default chooses per outcome: 9 treated LAs with data for one, 10 for
    another)."""
    infos = {o.id: o.name for o in ev.panel.outcomes}
    rows: dict[tuple[str, str], dict[str, str]] = {}
    outcomes: dict[tuple[str, str], list[str]] = {}
    for r in ev.runs:
        if r.result is None:
            continue
        key = (r.analysis.id, r.result.inference.label)
        outcomes.setdefault(key, []).append(infos.get(r.outcome, r.outcome))
        rows.setdefault(
            key,
            {
                "analysis": r.analysis.id,
                "estimator": entry(r.result.estimator).label,
                "inference": r.result.inference.label,
                "validity": validity(r.result.inference),
                "dependence": dependence_statement(r.result.inference.dependence),
            },
        )
    used = {}
    for aid, _ in rows:
        used[aid] = used.get(aid, 0) + 1
    for key, row in rows.items():
        if used[key[0]] > 1:  # the analysis used more than one inference: say where each
            row["analysis"] = f"{key[0]} ({'; '.join(outcomes[key])})"
    return list(rows.values())


def neighbour_sets(spec) -> dict[str, Any] | None:
    """Each treated unit's statistical neighbours by name and closeness, and how many share
    the treated unit's region (a regional shock then reaches both sides), for the design
    section; None when the pool is not statistical neighbours."""
    comp = spec.comparison
    if comp.pool != "statistical_neighbours":
        return None
    table = la_table().drop_duplicates("la_code", keep="last").set_index("la_code")
    name, region = table["la_name"].to_dict(), table["region_name"].to_dict()
    members = {g: grp.members for g, grp in spec.groups.items()}
    rows = []
    for s in comp.neighbour_sets:
        own = {region.get(m, "") for m in members.get(s.unit, (s.unit,))}
        rows.append(
            {
                "unit": name.get(s.unit, s.unit),
                "neighbours": [
                    f"{name.get(c, c)} ({closeness.lower()}{_neighbour_note(c, spec)})"
                    for c, closeness in s.neighbours
                ],
                "same_region": sum(region.get(c, "") in own for c, _ in s.neighbours),
                "n": len(s.neighbours),
            }
        )
    labels = ", ".join(c.lower() for c in comp.closeness) or "any"
    return {
        "rows": rows,
        "rule": f"the {comp.neighbours} nearest LAs in DfE's statistical neighbour model "
        f"({comp.neighbour_source[0] if comp.neighbour_source else ''}), closeness: {labels}",
    }


def _neighbour_note(code: str, spec) -> str:
    """Why a neighbour is not in the pool: treated itself, or excluded by the design."""
    if code in spec.start_of():
        return "; treated, so not a comparison"
    return "; excluded by the design" if code in spec.comparison.exclude else ""


def _participants(panel: ValidatedPanel, log: DisclosureLog) -> dict[str, Any]:
    """Participants (cell sizes) by sequence and period with row totals, disclosure-controlled
    with secondary suppression (CONSORT-SW items 13a and 16)."""
    table = participant_counts(panel)
    rows = []
    for wave, values in table.iterrows():
        shown, total = log.counts_with_total([float(v) for v in values], "participants")
        rows.append({"wave": str(wave), "cells": shown, "total": total})
    return {"periods": [panel.period_label(int(p)) for p in table.columns], "rows": rows}


def _design_power(spec) -> str:
    """For trial designs: the analytic MDES the design supports (CONSORT-SW item 7a)."""
    if spec.data.trial is None:
        return ""
    estimand = primary_estimand(spec)
    s = design_power(spec, estimand=estimand)
    return (
        f"Design power (Hussey & Hughes model, ICC {s.icc:g}, {s.cell_size} per "
        f"cluster-period, two-sided α {s.alpha:g}; for {estimand.text}, "
        f"{s.reference} reference): "
        f"minimum detectable effect {s.mdes_80:.3f} SD at 80% power ({s.mdes_90:.3f} at "
        f"90%); power {s.power:.1%} for the design's effect of {s.effect:g} SD."
    )


def limitations(panel: ValidatedPanel, runs: tuple[AnalysisRun, ...]) -> list[str]:
    """Plain statements of what limits the conclusions, generated from design and data (and
    the rows the analyses left out themselves, naming the treated units among them); on
    child-level records the rows are not totalled (`_rows`)."""
    spec, units = panel.spec, panel.units
    treated = units[units["role"] == "treated"]
    out = []
    if spec.pilot.value != "trial":
        out.append(
            "Pilot areas were not chosen at random: differences between treated and "
            "comparison units that change over time can bias every estimate here."
        )
    if spec.pilot.value != "trial" and len(treated) < 20:
        out.append(
            f"Only {len(treated)} treated unit{'s' if len(treated) != 1 else ''}: conventional "
            "cluster-robust inference "
            "is unreliable with so few treated clusters, so the default inference learns the "
            "treated units' noise from the comparison units or uses small-sample methods (see "
            "Methods: the inference used, why, and when it is valid). Even so, few pilot areas "
            "can only detect large changes: each headline with a standard error states the "
            "smallest change its analysis could detect, and a change smaller than that may "
            "have gone unseen; a headline without one cannot say what it could detect."
        )
    last = max(panel.periods)
    for cohort, group in treated.groupby("cohort"):
        n_post = int(last - cohort + 1)
        if n_post < 2:
            names = ", ".join(group["name"])
            out.append(
                f"{names}: only {n_post} period of data after the start "
                f"({panel.period_label(int(cohort))}), too short to judge an effect "
                "that takes time to appear."
            )
    if spec.pilot.value in ("family_help", "family_network"):
        out.append(
            "Every English LA began the national Families First Partnership from April "
            "2025, so reporting years from 2026 have no untreated comparison group; "
            f"this analysis ends with {panel.period_label(max(panel.periods))}."
        )
    if panel.data.reorganisations:
        out.append(
            f"{len(panel.data.reorganisations)} LA reorganisations in the series were "
            "handled by stated rules (see Data and indicators); boundary breaks "
            "shorten some LAs' series."
        )
    if panel.data.kind == "official":
        out.append(
            "Official statistics are revised between releases; the files and their "
            "hashes are listed so the analysis can be repeated on the same release."
        )
    n_excluded = sum(e.count for e in panel.exclusions if e.stage == "panel")
    if n_excluded:
        out.append(
            f"{_rows(n_excluded, panel)} rows were excluded (suppressed, not available, "
            "outside the window or outside the comparison pool); see the exclusions table."
        )
    out += _analyses_left_out(panel, runs)
    return out


def _rows(count: int, panel: ValidatedPanel) -> str:
    """A number of rows for the text, or on child-level records none: a total beside
    controlled parts would give back a suppressed one by subtraction."""
    return "Some" if panel.data.kind == "records" else f"{count:,}"


def _analyses_left_out(panel: ValidatedPanel, runs: tuple[AnalysisRun, ...]) -> list[str]:
    """The rows analyses left out themselves, in one sentence, and each treated unit among
    them by name: an estimate that rests on fewer pilot LAs than the design lists says so."""
    dropped = [(r, d) for r in runs for d in r.left_out]
    if not dropped:
        return []
    role = dict(zip(panel.units["unit"], panel.units["role"], strict=True))
    names = dict(zip(panel.units["unit"], panel.units["name"], strict=True))
    out = [
        f"{_rows(sum(d.rows or 0 for _, d in dropped), panel)} more rows were left out by "
        "analyses themselves "
        "(for example to balance a panel); the exclusions table lists them by analysis."
    ]
    by_units: dict[tuple[str, ...], tuple[set[str], set[str]]] = {}
    for r, d in dropped:
        who = tuple(sorted({names.get(u, u) for u in d.units if role.get(u) == "treated"}))
        if who:
            aids, outcomes = by_units.setdefault(who, (set(), set()))
            aids.add(r.analysis.id)
            outcomes.add(r.outcome)
    for who, (aids, outcomes) in by_units.items():
        out.append(
            f"Treated {', '.join(who)} {'is' if len(who) == 1 else 'are'} left out of "
            f"{', '.join(sorted(aids))} for {len(outcomes)} outcome"
            f"{'' if len(outcomes) == 1 else 's'} ({', '.join(sorted(outcomes))}): those "
            "estimates rest on the other treated units."
        )
    return out


def indicator_definitions(spec) -> list[dict[str, str]]:
    """Definitions of the catalogue indicators a design uses (numerator / denominator)."""
    catalogue = load_catalogue()
    out = []
    for o in spec.outcomes:
        if o.indicator is None:
            continue
        ind = catalogue[o.indicator]
        out.append(
            {
                "name": ind.name,
                "framework": ind.framework,
                "source": ind.source,
                "definition": f"{_measure(ind.numerator)} ÷ {_measure(ind.denominator)}"
                f" × {ind.multiplier:,.0f}",
                "polarity": ind.polarity.replace("_", " "),
            }
        )
    return out


def _measure(m) -> str:
    cols = " + ".join(m.columns)
    rows = "; ".join(f"{k} = {v if isinstance(v, str) else ' or '.join(v)}" for k, v in m.filters)
    return f"{cols} [{m.family}{': ' + rows if rows else ''}]"


@dataclass(frozen=True)
class TrendGroups:
    """How the trends table and chart name their two groups."""

    heading: str
    columns: tuple[str, str]
    legend: tuple[str, str]
    numerator: str


TREND_GROUPS = {
    "role": TrendGroups(
        "Raw trends: treated and comparison units",
        ("Treated", "Comparison"),
        ("Treated units", "Comparison units"),
        "Treated numerator",
    ),
    "condition": TrendGroups(
        "Raw trends: {units} in intervention and not yet started",
        ("Intervention", "Control (not yet started)"),
        ("Intervention cells", "Cells not yet started"),
        "Intervention numerator",
    ),
}


def trend_grouping(panel: ValidatedPanel) -> str:
    """How the trends split the cells: by unit role (treated and comparison units), or by
    condition (in intervention, not yet started) in a trial or when no unit is a comparison
    throughout; a trial's clusters with no start are then control cells in every period."""
    trial = panel.spec.pilot.value == "trial"
    return "condition" if trial or not (panel.units["role"] == "comparison").any() else "role"


def _trend_frame(panel: ValidatedPanel, info: OutcomeInfo) -> tuple[pd.DataFrame, Any, Any, str]:
    """Mean outcome by period and group (`frame`: period, treated, comparison, period_label,
    position, hidden, comparison_hidden), the units counted in each, the first group's
    events by period, and the grouping (a TREND_GROUPS key).

    The groups are the treated and comparison units, or, when no unit is a comparison
    throughout (a stepped-wedge trial), the cells in intervention and those not yet started:
    every unit is treated in the end, so a split by role would put them all on one side.
    Events are shown only when the numerators are counts (whole and not negative: a score's
    sum is not a number of children). Where a side's events are small enough to suppress,
    its mean is left out too (`hidden`, `comparison_hidden`): with few units behind it, the
    mean times their (published or shown) size would give the count back."""
    grouping = trend_grouping(panel)
    cells = _grouped(panel.outcome_cells(info.id), grouping)
    by = cells.groupby(["period", "role"])
    mean = by["y"].mean().unstack("role")
    n_units = by["unit"].nunique().unstack("role").fillna(0)
    counts = cells["numerator"].dropna().to_numpy(float)
    are_counts = bool(((counts >= 0) & (counts == np.floor(counts))).all())
    events = {
        role: part.groupby("period")["numerator"].sum(min_count=1) * (1.0 if are_counts else np.nan)
        for role, part in cells.groupby("role")
    }
    empty = pd.Series(dtype=float)
    min_count = panel.spec.report.disclosure.min_count

    def small(role: str) -> np.ndarray:
        e = events.get(role, empty)
        return ((e > 0) & (e < min_count)).reindex(mean.index, fill_value=False).to_numpy(bool)

    hidden, comparison_hidden = small("treated"), small("comparison")
    if panel.data.kind != "official":  # DfE's published counts are public
        for source in _count_sources(panel, info.id):
            part = _grouped(panel.outcome_cells(source), grouping)
            hidden = hidden | _discloses(part, "treated", min_count, mean.index)
            comparison_hidden = comparison_hidden | _discloses(
                part, "comparison", min_count, mean.index
            )
        # secondary suppression: beside the estimates (treated less comparison, period by
        # period in an event study) one side's shown means give its hidden one back (4
        # children, found in review), so a side with a hidden period shows none
        hidden, comparison_hidden = _all_if_any(hidden), _all_if_any(comparison_hidden)

    def kept(role: str, hide: np.ndarray) -> Any:
        shown = mean.get(role)
        return shown.where(~hide) if shown is not None else None

    frame = pd.DataFrame(
        {
            "period": mean.index,
            "treated": kept("treated", hidden),
            "comparison": kept("comparison", comparison_hidden),
            "hidden": hidden,
            "comparison_hidden": comparison_hidden,
        }
    )
    frame["period_label"] = [panel.period_label(int(p)) for p in frame["period"]]
    frame["position"] = range(len(frame))
    return frame, n_units, events.get("treated", empty), grouping


def _grouped(cells: pd.DataFrame, grouping: str) -> pd.DataFrame:
    """Cells with `role` the trends table's side: by condition (in intervention or not yet
    started) for a trial, else the unit's role."""
    if grouping != "condition":
        return cells
    return cells.assign(role=np.where(cells["treated"] == 1, "treated", "comparison"))


def _count_sources(panel: ValidatedPanel, outcome: str) -> list[str]:
    """The outcomes whose counts a trends table of `outcome` stands on: itself, or for a
    triple difference its targeted and untargeted outcomes (the contrast has no counts of its
    own, and its means beside the untargeted outcome's give the targeted one's back)."""
    for c in panel.spec.contrasts:
        if c.id == outcome:
            return [c.outcome, c.minus]
    return [outcome]


def _discloses(cells: pd.DataFrame, role: str, min_count: int, periods: pd.Index) -> np.ndarray:
    """Periods whose `role` side would give a count of 1 to min_count − 1 back: its total is
    that small, or it has two units and one of them is (their mean rate and summed count, with
    their published populations, are two equations in the two counts: found in review)."""
    side = cells[cells["role"] == role]
    counts = side["numerator"].dropna().to_numpy(float)
    if not counts.size or not ((counts >= 0) & (counts == np.floor(counts))).all():
        return np.zeros(len(periods), bool)
    by = side.groupby("period")["numerator"]
    total = by.sum(min_count=1)
    low = side["numerator"].where((side["numerator"] > 0) & (side["numerator"] < min_count))
    one_small = low.groupby(side["period"]).count() > 0
    pair = side.groupby("period")["unit"].nunique() == 2
    found = ((total > 0) & (total < min_count)) | (pair & one_small)
    return found.reindex(periods, fill_value=False).to_numpy(bool)


def _all_if_any(hide: np.ndarray) -> np.ndarray:
    """Every period hidden when one is (the trends table's secondary suppression)."""
    return np.full(hide.shape, bool(hide.any()))


def _trend_chart(panel: ValidatedPanel, info: OutcomeInfo) -> tuple[str, tuple[Any, ...]]:
    """The trends chart of one outcome, as inline SVG, and the frame it is drawn from
    (_trend_frame's four parts, for the table beside it)."""
    parts = _trend_frame(panel, info)
    frame = parts[0]
    starts = []
    for cohort in sorted(panel.units["cohort"].dropna().unique()):
        pos = frame.index.get_indexer([cohort])[0]
        if pos >= 0:
            starts.append((pos - 0.5, f"start {panel.period_label(int(cohort))}"))
    ylabel = f"{info.name} ({info.unit_label})" if info.unit_label else info.name
    legend = TREND_GROUPS[parts[3]].legend
    drawn = plot_trends(frame.reset_index(drop=True), wrap(ylabel), starts, legend)
    svg = to_svg(drawn, f"Trends: {info.name}")
    return svg, parts


def _trend(
    panel: ValidatedPanel,
    info: OutcomeInfo,
    log: DisclosureLog,
    svg: str,
    parts: tuple[Any, ...],
) -> dict:
    """One outcome's trends: its chart `svg` and the table beside it from `parts`
    (_trend_frame's), counts made safe."""
    frame, n_units, events, grouping = parts
    # the treated side hidden in every period (secondary suppression): its counts go too
    hidden_all = bool(frame["hidden"].all()) and panel.data.kind != "official"
    rows = [
        {
            "period": lab,
            "treated": "c" if hidden else fmt(t),
            "comparison": "c" if comparison_hidden else fmt(c),
            "n_treated": int(n_units.get("treated", pd.Series()).get(p, 0)),
            "n_comparison": int(n_units.get("comparison", pd.Series()).get(p, 0)),
            "events": _events(log, float(events.get(p, float("nan"))), hidden_all, info.name),
        }
        for p, lab, t, c, hidden, comparison_hidden in zip(
            frame["period"],
            frame["period_label"],
            frame["treated"],
            frame["comparison"],
            frame["hidden"],
            frame["comparison_hidden"],
            strict=True,
        )
    ]
    treated, compared = UNITS_WORD[panel.spec.unit_level.value]
    if grouping == "condition":
        groups = f"{treated} in intervention and {treated} not yet started"
        counts = (f"{treated} in intervention", f"{treated} not yet started")
    else:
        groups = f"treated {treated} and comparison {compared}"
        counts = (f"Treated {treated}", f"Comparison {compared}")
    if treated == compared:
        groups = groups.replace(f"treated {treated} and", "treated and")
    alt = (
        f"Line chart of the mean {info.name} by period for {groups}, "
        f"{frame['period_label'].iloc[0]} to {frame['period_label'].iloc[-1]}; "
        "the table beside it gives the values."
    )
    return {
        "id": info.id,
        "name": info.name,
        "svg": svg,
        "alt": alt,
        "rows": rows,
        "unit_label": info.unit_label,
        "groups": TREND_GROUPS[grouping].columns,
        "counts": tuple(c[0].upper() + c[1:] for c in counts),
        "numerator": TREND_GROUPS[grouping].numerator,
    }


def _events(log: DisclosureLog, count: float, hidden: bool, outcome: str) -> str:
    """A period's count of the first group's events, or "c" when that side is hidden."""
    if hidden and count == count and count > 0:
        log.suppress(f"trends: {outcome}")
        return "c"
    return log.count(count, f"trends: {outcome}")


def _draw(
    shared: tuple[Evaluation, dict[str, OutcomeInfo], dict[str, str]], task: tuple[str, Any]
) -> Any:
    """One drawing task for ordered_map: ("trend", outcome id) → its chart's SVG;
    ("analysis", i) → the view of run i (tables and chart); a trend's also its frame."""
    ev, infos, names = shared
    kind, key = task
    if kind == "trend":
        return _trend_chart(ev.panel, infos[key])
    run = ev.runs[key]
    return _analysis(run, infos[run.outcome], ev.panel.period_label, names)


def _analysis(
    run: AnalysisRun, info: OutcomeInfo, label: Callable[[int], str], names: dict[str, str]
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": run.analysis.id,
        "outcome": info.name,
        "unit_label": info.unit_label,
        "estimator": entry(run.analysis.estimator).label,
        "status": run.status,
        "note": run.note,
        "rows": [],
        "warnings": [],
        "svg": "",
        "pretrend": "",
        "comparators": [],
        "gap": None,
        "donors": [],
        "facts": [],
        "level": f"{run.analysis.level:.0%}",
    }
    res = run.result
    if res is None:
        return out
    out["inference"] = res.inference.label
    out["dependence"] = dependence_statement(res.inference.dependence)
    overall = res.overall()
    if overall is None:
        out["detectable"] = (
            "No minimum detectable effect: the rows are effects per event time, with no "
            "overall effect to detect."
        )
    else:
        tested = math.isfinite(float(overall["p_value"]))
        out["detectable"] = detectable_sentence(run.detectable, info.unit_label, tested)
    out["n"] = f"{res.n_units} units ({res.n_treated} treated), {res.n_obs} unit-periods"
    out["warnings"] = list(res.warnings)
    out["rows"] = [
        {
            "term": r.term,
            "estimate": fmt(r.estimate),
            "std_error": fmt(r.std_error),
            "ci": f"{fmt(r.ci_lower)} to {fmt(r.ci_upper)}",
            "p_value": fmt_p(r.p_value),
        }
        for r in res.table.itertuples()
    ]
    out.update(estimator_view(res.facts, res, info, label, names))
    return out
