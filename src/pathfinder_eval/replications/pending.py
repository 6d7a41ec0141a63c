"""Entries whose estimators are not in the package yet: listed so students see what is coming."""

from __future__ import annotations

from pathfinder_eval.replications.registry import Entry, register

for name, title, citation, data, bundled, reason in (
    (
        "ehec_honestdid",
        "Sensitivity of a Medicaid event study to parallel-trends violations",
        "Rambachan & Roth (2023), Review of Economic Studies; R HonestDiD README",
        "ehec.csv",
        True,
        "needs the Rambachan & Roth sensitivity analysis (issue 4)",
    ),
):
    register(
        Entry(
            name=name,
            title=title,
            citation=citation,
            data=data,
            bundled=bundled,
            published=(),
            compute=None,
            lesson=(),
            pending=reason,
        )
    )
