"""jinja2 rendering (autoescape on, StrictUndefined) and the run's JSON document."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import replace
from importlib.resources import files
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from pathfinder_eval.errors import PathfinderError
from pathfinder_eval.pipeline import Evaluation
from pathfinder_eval.report.context import build_context
from pathfinder_eval.report.disclosure import DisclosureLog, exclusion_rows, published
from pathfinder_eval.robustness import placebo_document
from pathfinder_eval.spec import STANDARD_TEMPLATES

REPORT_TEMPLATE = "report.html.j2"


def default_templates() -> Path:
    """The packaged templates (wheel), else reports/templates in a source checkout."""
    packaged = Path(str(files("pathfinder_eval"))) / "templates"
    if (packaged / REPORT_TEMPLATE).is_file():
        return packaged
    return Path(__file__).resolve().parents[3] / "reports" / "templates"


class OutsideTemplateFolders(jinja2.TemplateNotFound):
    """A template asked for a file that is not inside the template folders."""


class ConfinedLoader(jinja2.FileSystemLoader):
    """A FileSystemLoader that refuses any template whose real path (symlinks resolved) lies
    outside its folders, so a shared template pack cannot read other files."""

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        if template.startswith("/") or ".." in template.replace("\\", "/").split("/"):
            raise OutsideTemplateFolders(template)
        try:
            source, filename, uptodate = super().get_source(environment, template)
        except UnicodeDecodeError:
            raise PathfinderError(
                f"template {template!r} is not UTF-8 text",
                file=template,
                fix="save the template as UTF-8",
            ) from None
        real = Path(filename).resolve()
        if not any(real.is_relative_to(Path(root).resolve()) for root in self.searchpath):
            raise OutsideTemplateFolders(template)
        return source, filename, uptodate


def template_environment(folders: list[Path]) -> jinja2.Environment:
    """The sandbox templates render in: no access to Python internals (attributes starting
    with `_`, function globals, unsafe methods), no mutation of the view data, no files
    outside `folders`, and only display helpers among the globals."""
    env = BoundedSandbox(
        loader=ConfinedLoader(folders),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.pop("lipsum", None)
    return env


# Longest string or list a template may build with `*`, and largest power with `**`: a pack's
# `'a' * 10**11` exhausted memory instead of failing as a template error.
MAX_REPEAT = 1_000_000
MAX_EXPONENT = 1_000


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The sandbox with `*` and `**` bounded, so a template cannot exhaust memory or time."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                repeats = isinstance(seq, str | list | tuple) and isinstance(times, int)
                if repeats and len(seq) * times > MAX_REPEAT:
                    raise SecurityError(f"'*' would build more than {MAX_REPEAT:,} items")
        elif isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"'**' with an exponent above {MAX_EXPONENT:,}")
        return super().call_binop(context, operator, left, right)


def render_html(
    context: dict[str, Any], templates: Path | None = None, template: str = REPORT_TEMPLATE
) -> str:
    """Render `template` in the sandbox. A `templates` folder overrides any template it holds,
    by relative path (e.g. only base.html.j2 to restyle, sections/cover.html.j2 for one section
    or sections/order.j2 to reorder); the rest come from the packaged templates."""
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
    env = template_environment(folders)
    try:
        return env.get_template(template).render(**context)
    except PathfinderError:
        raise
    except jinja2.TemplateError as exc:
        raise _template_error(exc, folders[0]) from None
    except (
        ArithmeticError,
        AssertionError,
        LookupError,
        MemoryError,
        TypeError,
        ValueError,
        RecursionError,
    ) as exc:
        # template code is the pack author's: its runtime failures are theirs to fix
        file, line = _template_frame(exc)
        raise PathfinderError(
            f"template failed while rendering ({type(exc).__name__}: {exc})",
            file=file or str(folders[0]),
            where=f"line {line}" if line else None,
            fix="correct the template",
        ) from None


def _template_error(exc: jinja2.TemplateError, folder: Path) -> PathfinderError:
    """One located error for a template failure: the template file and line that asked."""
    file, line = _template_frame(exc)
    where = f"line {line}" if line else None
    file = file or str(folder)
    if isinstance(exc, OutsideTemplateFolders):
        return PathfinderError(
            f"template asks for {exc.name!r}, which is not inside the template folders",
            file=file,
            where=where,
            fix="include, extend or import only templates inside the --templates folder or "
            "the packaged ones, by a relative path without '..'",
        )
    if isinstance(exc, SecurityError):
        return PathfinderError(
            f"unsafe template code refused ({(exc.message or '').rstrip('.')})",
            file=file,
            where=where,
            fix="templates may only display the report's view data (README, 'Templates and "
            "branding'); remove the access to Python internals",
        )
    if isinstance(exc, jinja2.TemplateNotFound):
        return PathfinderError(
            f"template {exc.name!r} not found",
            file=file,
            where=where,
            fix="check the name against the packaged templates (README, 'Templates and branding')",
        )
    return PathfinderError(
        f"template error: {exc.message}", file=file, where=where, fix="correct the template"
    )


def _template_frame(exc: Exception) -> tuple[str | None, int | None]:
    """The template file and line where `exc` arose: from a syntax error itself, else from
    the innermost template frame jinja2 writes into the traceback."""
    if isinstance(exc, jinja2.TemplateSyntaxError) and exc.filename:
        return exc.filename, exc.lineno
    found: tuple[str | None, int | None] = (None, None)
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        name = frame.f_code.co_filename
        if name.endswith(".j2"):
            found = (name, tb.tb_lineno)
        elif frame.f_code.co_name in ("compile", "_generate", "generate") and frame.f_locals.get(
            "filename"
        ):
            found = (str(frame.f_locals["filename"]), None)  # failed while being compiled
        tb = tb.tb_next
    return found


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
