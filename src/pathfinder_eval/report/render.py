"""jinja2 rendering (autoescape on, StrictUndefined) and the run's JSON document."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from importlib.resources import files
from pathlib import Path
from typing import Any

from pathfinder_eval.errors import PathfinderError
from pathfinder_eval.pipeline import Evaluation
from pathfinder_eval.report.context import build_context
from pathfinder_eval.report.disclosure import DisclosureLog, exclusion_rows, published
from pathfinder_eval.report.sandbox import render, render_confined
from pathfinder_eval.robustness import placebo_document
from pathfinder_eval.spec import STANDARD_TEMPLATES

REPORT_TEMPLATE = "report.html.j2"


def default_templates() -> Path:
    """The packaged templates (wheel), else reports/templates in a source checkout."""
    packaged = Path(str(files("pathfinder_eval"))) / "templates"
    if (packaged / REPORT_TEMPLATE).is_file():
        return packaged
    return Path(__file__).resolve().parents[3] / "reports" / "templates"


def render_html(
    context: dict[str, Any], templates: Path | None = None, template: str = REPORT_TEMPLATE
) -> str:
    """Render `template` in the sandbox. A `templates` folder overrides any template it holds,
    by relative path (e.g. only base.html.j2 to restyle, sections/cover.html.j2 for one section
    or sections/order.j2 to reorder); the rest come from the packaged templates. A pack renders
    in a child process with bounded memory and CPU time (`sandbox.render_confined`)."""
    folders = [default_templates()]
    if templates is None:
        return render(template, folders, context)
    if not templates.is_dir():
        raise PathfinderError(
            "templates folder not found",
            file=str(templates),
            where="--templates",
            fix="point --templates at a folder of .html.j2 files (see reports/examples/)",
        )
    return render_confined(template, [templates, *folders], context)


def results_document(ev: Evaluation) -> dict[str, Any]:
    """The results JSON (schema in README, 'Results JSON')."""
    spec = ev.panel.spec
    disclosure = spec.report.disclosure
    log = DisclosureLog(disclosure.min_count, disclosure.round_to)
    ev = published(ev, log)
    analyses = []
    for run in ev.runs:
        entry = (
            run.result.to_dict()
            if run.result is not None
            else {
                "id": run.analysis.id,
                "outcome": run.outcome,
                "estimator": run.analysis.estimator.value,
                "inference": None,
                "inference_used": None,
                "estimates": [],
                "diagnostics": {},
                "warnings": [],
            }
        )
        entry["status"] = run.status
        entry["note"] = run.note
        entry["detectable"] = run.detectable.to_dict() if run.detectable else None
        analyses.append(entry)
    return {
        "schema_version": 1,
        "design": {
            "name": spec.name,
            "title": spec.title,
            "pilot": spec.pilot.value,
            "path": spec.path,
            "unit_level": spec.unit_level.value,
            "time_axis": spec.time.axis.value,
            "partial_period_rule": spec.time.partial_period_rule.value,
            "data_kind": ev.panel.data.kind,
            "notes": list(ev.panel.data.notes),
            "comparison_pool": spec.comparison.pool,
            "statistical_neighbours": {
                s.unit: [code for code, _ in s.neighbours] for s in spec.comparison.neighbour_sets
            },
        },
        "provenance": ev.provenance.to_dict(),
        "analysis_plan": ev.plan.to_dict() if ev.plan is not None else None,
        "analyses": analyses,
        "exclusions": [
            {
                "reason": e.reason,
                "outcome": e.outcome,
                "count": e.count,
                "units": list(e.units),
                "stage": e.stage,
                "analysis": e.analysis,
            }
            for e in exclusion_rows(ev, log)
        ],
        "robustness": {
            "placebo_in_time": [placebo_document(r, ev.panel.period_label) for r in ev.placebo]
        },
    }


def to_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def pack_hashes(folder: Path) -> tuple[tuple[str, str], ...]:
    """(path within the pack, sha256) of every file of a template pack, sorted: the report
    records what shaped its HTML, as it records the data it read."""
    return tuple(
        (f.relative_to(folder).as_posix(), hashlib.sha256(f.read_bytes()).hexdigest())
        for f in sorted(folder.rglob("*"))
        if f.is_file()
    )


def report_files(
    ev: Evaluation, templates: Path | None = None, workers: int | None = None
) -> dict[str, str]:
    """The evaluation report's files by name: `<design>.html` and `<design>.json`; the
    analyses' views drawn in up to `workers` local processes (default: the available cores)."""
    if templates is None and ev.panel.spec.report.template != STANDARD_TEMPLATES:
        templates = Path(ev.panel.spec.report.template)  # the design's pack (run --templates wins)
    if templates is not None and templates.is_dir():
        ev = replace(ev, provenance=replace(ev.provenance, templates=pack_hashes(templates)))
    name = ev.panel.spec.name
    return {
        f"{name}.html": render_html(build_context(ev, workers), templates),
        f"{name}.json": to_json(results_document(ev)),
    }
