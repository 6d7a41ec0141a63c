"""Entries whose estimators are not in the package yet: listed so students see what is coming."""

from __future__ import annotations

from pathfinder_eval.replications.registry import Entry, register

for name, title, citation, data, bundled, reason in (
    (
        "mpdta_callaway_santanna",
        "Group-time ATTs on county teen employment (mpdta)",
        "Callaway & Sant'Anna (2021), J. Econometrics 225:200–230; R did README",
        "mpdta.csv",
        True,
        "needs the Callaway & Sant'Anna estimator (issue 4)",
    ),
    (
        "ehec_honestdid",
        "Sensitivity of a Medicaid event study to parallel-trends violations",
        "Rambachan & Roth (2023), Review of Economic Studies; R HonestDiD README",
        "ehec.csv",
        True,
        "needs the Rambachan & Roth sensitivity analysis (issue 4)",
    ),
    (
        "castle_bacon",
        "Goodman-Bacon decomposition of castle-doctrine TWFE",
        "Cunningham, Causal Inference: The Mixtape, ch. 9; Goodman-Bacon (2021)",
        "castle.csv",
        True,
        "needs the Goodman-Bacon decomposition (issue 4)",
    ),
    (
        "kielmc_did",
        "2×2 DiD: house prices near a garbage incinerator",
        "Wooldridge, Introductory Econometrics, Example 13.3",
        "kielmc.csv",
        True,
        "needs the 2×2 DiD with repeated cross-sections (issue 4)",
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
