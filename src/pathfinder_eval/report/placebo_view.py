"""View data for the placebo-in-time check: table cells and plain-words interpretation that
never reads a null placebo as proof of parallel trends."""

from __future__ import annotations

import math

from pathfinder_eval.panel import ValidatedPanel
from pathfinder_eval.report.format import fmt, fmt_p
from pathfinder_eval.robustness import PlaceboRun


def placebo_cell(run: PlaceboRun | None) -> str:
    """'estimate (lower to upper)' of the placebo's overall row, or why there is none."""
    if run is None:
        return "–"
    if run.result is None or run.result.table.empty:
        return "not estimable"
    row = run.result.table.iloc[0]
    return f"{fmt(row['estimate'])} ({fmt(row['ci_lower'])} to {fmt(row['ci_upper'])})"


def placebo_label(run: PlaceboRun) -> str:
    return f"placebo: starts moved {run.shift} periods earlier"


def placebo_intro(runs: tuple[PlaceboRun, ...], panel: ValidatedPanel) -> str:
    """What was done: the window, the fake starts and what was left out."""
    ran = next((r for r in runs if r.window is not None), None)
    if ran is None:
        return f"Placebo in time not estimated: {runs[0].note}." if runs else ""
    label = panel.period_label
    real = dict(zip(panel.units["unit"], panel.units["cohort"], strict=True))
    moves = sorted({(int(real[u]), p) for u, p in ran.fake_starts.items()})
    moved = "; ".join(f"{label(a)} becomes {label(b)}" for a, b in moves)
    excluded = {(e.reason, e.outcome): e.count for r in runs for e in r.exclusions}
    by_reason: dict[str, int] = {}
    for (reason, _), n in excluded.items():
        by_reason[reason] = by_reason.get(reason, 0) + n
    left_out = "; ".join(f"{n:,} unit-periods {reason}" for reason, n in by_reason.items())
    return (
        f"Placebo in time: each TWFE and Callaway & Sant'Anna analysis re-run on the data "
        f"before the first real start ({label(ran.window[0])} to {label(ran.window[1])}), with "
        f"every start moved {ran.shift} periods earlier (first treated period {moved}). No "
        "pilot acted in that window, so an interval that excludes zero points to trends that "
        "already differed before the start. Left out across outcomes: "
        f"{left_out or 'nothing'}."
    )


def placebo_statement(run: PlaceboRun, outcome: str, method: str) -> str:
    """One sentence per placebo run; a null placebo is not proof of parallel trends."""
    head = f"{outcome} ({method}, analysis {run.analysis.id})"
    if run.result is None or run.result.table.empty:
        return f"{head}: placebo not estimated: {run.note}."
    row = run.result.table.iloc[0]
    lo, hi = row["ci_lower"], row["ci_upper"]
    text = (
        f"{head}: placebo estimate {fmt(row['estimate'])} ({run.result.level:.0%} CI "
        f"{fmt(lo)} to {fmt(hi)}, p {_p_text(fmt_p(row['p_value']))})"
    )
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return text + ": no usable interval, so the check is not informative."
    if lo <= 0.0 <= hi:
        return text + (
            ": the interval includes zero, so no clear sign of trends diverging before the "
            "start; this is consistent with parallel trends but does not establish them."
        )
    return text + (
        ": the interval excludes zero, so treated and comparison units already differed in "
        "trend before the start and the main estimate may partly reflect that difference."
    )


def _p_text(p: str) -> str:
    return p if p.startswith("<") else f"= {p}"
