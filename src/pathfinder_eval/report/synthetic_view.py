"""View data for synthetic control and SDID: the gap chart with its table, and donor weights."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from pathfinder_eval.estimators.synthetic.facts import SyntheticControlFacts, SyntheticDidFacts
from pathfinder_eval.panel import OutcomeInfo
from pathfinder_eval.report.format import fmt
from pathfinder_eval.report.plots import plot_gaps, to_svg
from pathfinder_eval.results import EffectEstimates

MAX_DONORS = 10
BASELINE_ROW = "Pre-period baseline (time-weighted)"


def gap_series(
    facts: SyntheticControlFacts | SyntheticDidFacts,
) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Series name → {period label: treated minus synthetic}, and SDID/DID baselines."""
    if isinstance(facts, SyntheticControlFacts):
        return {unit: dict(u["gaps"]) for unit, u in facts.units.items()}, {}
    name = "Cohort {}".format
    series = {name(g): dict(v) for g, v in facts.gaps.items()}
    if facts.method == "sc":
        return series, {}
    return series, {name(g): float(v) for g, v in facts.gap_baseline.items()}


def gap_chart(
    res: EffectEstimates,
    facts: SyntheticControlFacts | SyntheticDidFacts,
    info: OutcomeInfo,
    label: Callable[[int], str],
) -> dict[str, Any]:
    """Inline SVG of the gap over time, its alt text and the table of the plotted values."""
    series, baselines = gap_series(facts)
    periods = list(next(iter(series.values())))
    frame = pd.DataFrame({"position": range(len(periods)), "period_label": periods})
    for name, gaps in series.items():
        frame[name] = [gaps[p] for p in periods]
    cohorts = sorted({label(int(c)) for c in res.table["cohort"].dropna()})
    starts = [(periods.index(c) - 0.5, f"start {c}") for c in cohorts if c in periods]
    ylabel = "Treated − synthetic" + (f" ({info.unit_label})" if info.unit_label else "")
    svg = to_svg(
        plot_gaps(frame, starts, ylabel, baselines), f"Synthetic comparator gap: {info.name}"
    )
    rows = [{"period": p, "cells": [fmt(series[s][p]) for s in series]} for p in periods]
    if baselines:
        rows.append({"period": BASELINE_ROW, "cells": [fmt(baselines.get(s)) for s in series]})
    who = (
        "each treated unit and its"
        if res.estimator == "synthetic_control"
        else "the treated units and their"
    )
    alt = (
        f"Line chart of the gap between {who} synthetic comparator in {info.name}, "
        f"{periods[0]} to {periods[-1]}; zero means no gap, the vertical line marks the start"
        + ("; dotted lines mark the time-weighted pre-period gap" if baselines else "")
        + "; the table beside it gives the values."
    )
    caption = (
        f"Gap in {info.name}: treated{' mean' if res.estimator == 'synthetic_did' else ''} "
        f"minus synthetic comparator ({info.unit_label or 'outcome units'})"
    )
    if baselines:
        caption += "; each post-period effect is its gap minus the pre-period baseline"
    return {"svg": svg, "alt": alt, "caption": caption, "series": list(series), "rows": rows}


def sdid_donors(facts: SyntheticDidFacts, names: dict[str, str]) -> list[dict]:
    """Per cohort: the largest unit weights (name, code, weight) and the rest summed."""
    out = []
    for cohort, weights in facts.unit_weights.items():
        ranked = sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))
        top, rest = ranked[:MAX_DONORS], ranked[MAX_DONORS:]
        out.append(
            {
                "cohort": cohort,
                "rows": [{"name": names.get(u, u), "unit": u, "weight": fmt(w, 3)} for u, w in top],
                "rest": (
                    f"{len(rest)} other donors with weight {fmt(sum(w for _, w in rest), 3)} in all"
                    if rest
                    else ""
                ),
                "n_donors": len(weights),
            }
        )
    return out
