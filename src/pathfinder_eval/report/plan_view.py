"""The statistical analysis plan's page and JSON, from a design and its pre-start data.

Headings follow the guidance on the content of statistical analysis plans (Gamble et al. 2017,
JAMA 318:2337), with the CONSORT extension for stepped-wedge trials where the design is one;
difference-in-differences pilots use the same headings.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from pathfinder_eval import __version__
from pathfinder_eval.analysis_plan import (
    PLAN_KIND,
    PLAN_SCHEMA,
    decisions,
    document_hash,
    outcome_hashes,
)
from pathfinder_eval.data.ees import SYMBOLS
from pathfinder_eval.data.la_lookup import resolve_la
from pathfinder_eval.planning import PlanEvidence
from pathfinder_eval.registry import entry
from pathfinder_eval.report.consort import checklist
from pathfinder_eval.report.context import indicator_definitions, neighbour_sets
from pathfinder_eval.report.format import fmt
from pathfinder_eval.report.plots import to_svg
from pathfinder_eval.report.render import render_html, to_json
from pathfinder_eval.report.schematic import plot_schematic

PLAN_TEMPLATE = "plan.html.j2"
REPORTED = (
    "a summary with the headline estimate of each outcome from the primary analysis",
    "the design, its rollout and the comparison pool",
    "every analysis's estimates with intervals, the inference used and when it is valid",
    "what each analysis could detect beside the expected effect",
    "robustness: placebo-in-time, leave-one-treated-unit-out and sensitivity analyses",
    "every row excluded, counted by reason, and the LA reorganisations handled",
    "limitations, the data files with their sha256, package versions and the seed",
)


def plan_document(ev: PlanEvidence) -> dict[str, Any]:
    """The plan's JSON: the decisions, the design, the pre-start data used and what each
    outcome's analysis could detect, with the sha256 of all of it."""
    spec, panel = ev.spec, ev.panel
    planned = decisions(spec)
    doc = {
        "schema_version": PLAN_SCHEMA,
        "kind": PLAN_KIND,
        "design": {
            "name": spec.name,
            "title": spec.title,
            "pilot": spec.pilot.value,
            "path": spec.path,
            "design_sha256": spec.sha256,
        },
        "decisions": planned,
        "data": {
            "kind": panel.data.kind,
            "files": [name for name, _ in panel.data.files],
            "withheld_from": panel.period_label(ev.first_withheld),
            "withheld_from_period": ev.first_withheld,
            "withheld_rows": ev.withheld_rows,
            "pre_start_cells": len(panel.cells),
            "pre_start_sha256": ev.pre_start_sha256,
            "pre_start_sha256_by_outcome": outcome_hashes(panel.cells),
            "post_start_values_read": False,
        },
        "detectable": [_json_row(r) for r in ev.detectable],
        "package_version": __version__,
    }
    return {"sha256": document_hash(doc), **doc}


def plan_context(ev: PlanEvidence, doc: dict[str, Any]) -> dict[str, Any]:
    """The plan page's view data (sections in the SAP guidance's order)."""
    spec, panel = ev.spec, ev.panel
    primary = spec.primary_analysis
    units = panel.units.set_index("unit")
    rollout = [
        {
            "wave": w.wave,
            "start": str(w.start),
            "units": ", ".join(str(units["name"].get(u, u)) for u in w.units),
            "transition": w.transition_periods,
        }
        for w in spec.rollout
    ]
    full = replace(panel, periods=_design_periods(ev))
    schematic = to_svg(plot_schematic(full), "Design schematic")
    comp = spec.comparison
    return {
        "title": spec.title,
        "name": spec.name,
        "sha256": doc["sha256"],
        "design_path": spec.path,
        "design_sha256": spec.sha256,
        "programme": spec.programme,
        "funder": spec.funder,
        "evaluator": spec.evaluator,
        "description": spec.description,
        "sources": list(spec.sources),
        "seed": spec.seed,
        "version": __version__,
        "pilot": spec.pilot.value,
        "unit_level": spec.unit_level.value.replace("_", " "),
        "window": " to ".join(panel.period_label(p) for p in (full.periods[0], full.periods[-1])),
        "time_rule": spec.time.partial_period_rule.value,
        "rollout": rollout,
        "schematic": schematic,
        "schematic_alt": (
            f"Grid of units by period showing when each of the {len(spec.start_of())} treated "
            "units switches from control to intervention; the rollout table gives the same "
            "information."
        ),
        "pool": comp.pool.replace("_", " "),
        "excluded": [_la_name(u) for u in comp.exclude],
        "exclude_reason": comp.exclude_reason,
        "min_units": comp.min_units,
        "n_comparison": int((panel.units["role"] == "comparison").sum()),
        "neighbour_sets": neighbour_sets(spec),
        "outcomes": _outcomes(spec),
        "indicators": indicator_definitions(spec),
        "primary": _analysis_row(spec, primary),
        "data_settings": _data_settings(spec),
        "secondary": [_analysis_row(spec, a) for a in spec.analyses if a is not primary],
        "detectable": [_detectable_row(r) for r in ev.detectable],
        "data_kind": panel.data.kind,
        "data_files": doc["data"]["files"],
        "withheld_from": doc["data"]["withheld_from"],
        "withheld_rows": ev.withheld_rows,
        "pre_start_cells": len(panel.cells),
        "pre_start_sha256": ev.pre_start_sha256,
        "symbols": [{"symbol": k, "meaning": v} for k, v in SYMBOLS.items()],
        "reorganisations": list(panel.data.reorganisations),
        "disclosure": spec.report.disclosure.model_dump(),
        "reported": list(REPORTED),
        "consort": checklist() if spec.pilot.value == "trial" else [],
    }


def plan_files(ev: PlanEvidence, templates=None) -> dict[str, str]:
    """`<design>_plan.html` and `<design>_plan.json`."""
    doc = plan_document(ev)
    name = ev.spec.name
    return {
        f"{name}_plan.html": render_html(plan_context(ev, doc), templates, PLAN_TEMPLATE),
        f"{name}_plan.json": to_json(doc),
    }


def _design_periods(ev: PlanEvidence) -> tuple[int, ...]:
    """Every period of the design window in the data, post-start ones included (their
    values are withheld, their labels are not)."""
    lo, hi = ev.spec.time.first, ev.spec.time.last
    periods = {int(p) for p in ev.panel.data.frame["period"]}
    return tuple(sorted(p for p in periods if (lo is None or p >= lo) and (hi is None or p <= hi)))


def _la_name(code: str) -> str:
    """An LA's name from the shipped lookup (excluded LAs are not in the panel's units)."""
    la = resolve_la(code, current_only=False)
    return code if la is None else la.name


def _outcomes(spec) -> list[dict[str, str]]:
    out = []
    for o in spec.outcomes:
        expected = "" if o.expected_effect is None else f"{o.expected_effect:+.0%}"
        out.append(
            {
                "id": o.id,
                "required": "yes" if o.required else "no (analysed when its data are given)",
                "expected": expected or "not stated",
            }
        )
    for c in spec.contrasts:
        expected = "" if c.expected_effect is None else f"{c.expected_effect:+.0%}"
        out.append(
            {
                "id": f"{c.id} ({c.outcome} minus {c.minus}: triple difference)",
                "required": "as its two outcomes",
                "expected": expected or "not stated",
            }
        )
    return out


def _analysis_row(spec, analysis) -> dict[str, str]:
    e = entry(analysis.estimator)
    options = ", ".join(f"{k}: {v}" for k, v in sorted(analysis.options.items())) or "defaults"
    inference = analysis.inference.method
    if inference == "default":
        inference = (
            "default: chosen for the design by the rule in inference/policy.py (the number "
            "of treated units, their regions); the report names the method and why"
        )
    outcomes = "all" if "all" in analysis.outcomes else ", ".join(analysis.outcomes)
    return {
        "id": analysis.id,
        "estimator": e.label,
        "method": e.method_text,
        "options": options,
        "inference": inference,
        "level": f"{analysis.level:.0%}",
        "outcomes": outcomes,
    }


def _data_settings(spec) -> list[str]:
    """The registered data settings in words: the source and every column mapping or
    simulation setting that differs from the default (covariates, region, individual ...)."""
    data = spec.data
    said = [f"source {data.source}"]
    columns = data.columns.model_dump(exclude_defaults=True)
    said += [
        f"{k.replace('_', ' ')}: {', '.join(v) if isinstance(v, tuple | list) else v}"
        for k, v in columns.items()
    ]
    if data.trial is not None:
        said.append(
            "simulated trial: " + ", ".join(f"{k} {v}" for k, v in data.trial.model_dump().items())
        )
    if data.injected_effect:
        said.append(
            "injected effect: " + ", ".join(f"{k} {v:g}" for k, v in data.injected_effect.items())
        )
    return said


def _detectable_row(r: dict[str, Any]) -> dict[str, str]:
    mdes = r.get("mdes", math.nan)
    rel = r.get("mdes_relative", math.nan)
    expected = r.get("expected", math.nan)
    could = r.get("could_detect")
    return {
        "outcome": r["outcome"],
        "analysis": r["analysis"],
        "mdes": fmt(mdes) if math.isfinite(mdes) else "",
        "relative": f"{rel:.0%}" if math.isfinite(rel) else "",
        "expected": f"{expected:+.0%}" if math.isfinite(expected) else "",
        "verdict": "" if could is None else ("yes" if could else "no"),
        "basis": r["basis"],
        "inference": r.get("inference", ""),
        "note": r["note"],
    }


def _json_row(r: dict[str, Any]) -> dict[str, Any]:
    """NaN as null, as in the results JSON."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}
