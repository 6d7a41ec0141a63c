"""jinja2 rendering (autoescape on, StrictUndefined) and the run's JSON document."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

import jinja2

from pathfinder_eval.errors import PathfinderError
from pathfinder_eval.evaluate import Evaluation
from pathfinder_eval.robustness import placebo_document

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
    """Render `template`. A `templates` folder overrides any template it holds, by relative
    path (e.g. only base.html.j2 to restyle, sections/cover.html.j2 for one section or
    sections/order.j2 to reorder); the rest come from the packaged templates."""
    folders = [default_templates()]
    if templates is not None:
        if not templates.is_dir():
            raise PathfinderError(
                "templates folder not found",
                file=str(templates),
                where="--templates",
                fix="point --templates at a folder of .html.j2 files (see reports/examples/)",
            )
        folders.insert(0, templates)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folders),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    try:
        return env.get_template(template).render(**context)
    except jinja2.TemplateError as exc:
        where = f"line {exc.lineno}" if getattr(exc, "lineno", None) else None
        raise PathfinderError(
            f"template error: {exc.message}",
            file=getattr(exc, "filename", None) or str(folders[0]),
            where=where,
            fix="correct the template",
        ) from None


def results_document(ev: Evaluation) -> dict[str, Any]:
    """The results JSON (schema in README, 'Results JSON')."""
    spec = ev.panel.spec
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
                "estimates": [],
                "diagnostics": {},
                "warnings": [],
            }
        )
        entry["status"] = run.status
        entry["note"] = run.note
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
        },
        "provenance": ev.provenance.to_dict(),
        "analyses": analyses,
        "exclusions": [
            {
                "reason": e.reason,
                "outcome": e.outcome,
                "count": e.count,
                "units": list(e.units),
                "stage": e.stage,
            }
            for e in ev.panel.exclusions
        ],
        "robustness": {
            "placebo_in_time": [placebo_document(r, ev.panel.period_label) for r in ev.placebo]
        },
    }


def to_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
