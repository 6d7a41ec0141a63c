"""A replication's HTML (learner-facing, base layout) and JSON."""

from __future__ import annotations

import json

from pathfinder_eval import __version__
from pathfinder_eval.replications.registry import Entry
from pathfinder_eval.replications.run import SHARED_REFERENCE, ReplicationResult
from pathfinder_eval.report.render import render_html


def _verdict(result: ReplicationResult) -> str:
    if result.entry.compute is None:
        return f"Pending: {result.entry.pending}."
    bad = [r.label for r in result.rows if not r.passed]
    if not bad:
        return f"All {len(result.rows)} published numbers reproduced within tolerance."
    return f"Mismatch in {len(bad)} of {len(result.rows)} numbers: {', '.join(bad)}."


def api_code(result: ReplicationResult) -> str:
    """The public-API call reproducing one of the entry's numbers, runnable as shown ("" when
    the entry has none)."""
    api = result.entry.api
    if api is None:
        return ""
    return (
        "import pandas as pd\nimport pathfinder_eval as pe\n\n"
        f"{api_data_line(result.entry)}{api.code}\nprint(value)  # {api.label}"
    )


def api_data_line(entry: Entry) -> str:
    """The snippet's `path`: the bundled copy, or the reference data folder read in place."""
    if not entry.data:
        return ""
    if entry.bundled:
        return (
            "from importlib.resources import files\n"
            f'path = files("pathfinder_eval.replications") / "data" / "{entry.data}"\n'
        )
    return f'path = "{SHARED_REFERENCE.as_posix()}/{entry.data}"  # the --data folder\n'


def replication_outputs(result: ReplicationResult) -> dict[str, str]:
    """{NAME.html, NAME.json} for `write_atomically`."""
    e = result.entry
    doc = {
        "name": e.name,
        "title": e.title,
        "citation": e.citation,
        "data": e.data,
        "status": "pending" if e.compute is None else ("pass" if result.passed else "mismatch"),
        "pending": e.pending,
        "package_version": __version__,
        "numbers": [
            {
                "label": r.label,
                "published": r.published,
                "reproduced": r.reproduced,
                "difference": r.difference,
                "tolerance": r.tolerance,
                "passed": r.passed,
                "tolerance_reason": r.why,
                "source": r.source,
            }
            for r in result.rows
        ],
    }
    context = {
        "name": e.name,
        "title": e.title,
        "citation": e.citation,
        "version": __version__,
        "passed": result.passed,
        "verdict": _verdict(result),
        "lesson": list(e.lesson),
        "data": e.data or "none (a calculation from published inputs)",
        "api": api_code(result),
        "rows": [
            {
                "label": r.label,
                "published": f"{r.published:.10g}",
                "reproduced": f"{r.reproduced:.10g}",
                "difference": f"{r.difference:.3g}",
                "tolerance": f"{r.tolerance:.3g}",
                "passed": r.passed,
                "why": r.why,
                "source": r.source,
            }
            for r in result.rows
        ],
    }
    html = render_html(context, None, "replication.html.j2")
    return {f"{e.name}.html": html, f"{e.name}.json": json.dumps(doc, indent=2) + "\n"}
