"""Executive summary and robustness views: headline results, key findings, estimators side by
side. Wording never overstates: a result whose interval includes zero is described as such, with
what the analysis could have detected, and never as evidence that the pilot had no effect."""

from __future__ import annotations

import math
from typing import Any

from pathfinder_eval.estimators.did.facts import TwfeFacts
from pathfinder_eval.inference.detectable import Detectable
from pathfinder_eval.panel import OutcomeInfo
from pathfinder_eval.pipeline import AnalysisRun, Evaluation
from pathfinder_eval.registry import entry
from pathfinder_eval.report.format import fmt, fmt_p
from pathfinder_eval.report.placebo_view import (
    placebo_cell,
    placebo_intro,
    placebo_label,
    placebo_statement,
)
from pathfinder_eval.report.validity import short_inference

MAX_FINDINGS = 5


def evidence_statement(
    estimate: float,
    p: float,
    lo: float,
    hi: float,
    polarity: str,
    detectable: Detectable | None = None,
) -> str:
    """Plain words for the strength and direction of evidence (not a verdict on the pilot).
    Where the interval includes no change, what the analysis could have detected separates
    "no clear change" from "this design could not have seen a change of the expected size"."""
    if not math.isfinite(p) or not (math.isfinite(lo) and math.isfinite(hi)):
        return "Not enough information to judge (no usable interval)"
    if lo <= 0.0 <= hi:
        return "No clear evidence of a change: the interval includes no change" + _power_clause(
            detectable
        )
    strength = "Strong evidence" if p < 0.01 else "Evidence"
    direction = "a decrease" if estimate < 0 else "an increase"
    if polarity == "neutral":
        return f"{strength} of {direction}"
    good = (estimate < 0) == (polarity == "lower_is_better")
    return f"{strength} of {direction} ({'favourable' if good else 'unfavourable'})"


def detectable_text(d: Detectable | None) -> str:
    """The MDES as the headline table shows it: '±x (y% of the pre-start mean)'."""
    if d is None:
        return "not computed (no standard error)"
    if d.log_ratio:
        if not math.isfinite(d.fall):  # an odds ratio without the pre-start proportion
            return f"±{fmt(d.mdes)} on the log scale ({_ratio_bounds(d)})"
        return f"±{fmt(d.mdes)} on the log scale ({_ratio_change(d)})"
    rel = (
        f" ({d.mdes_relative:.0%} of the pre-start mean)" if math.isfinite(d.mdes_relative) else ""
    )
    return f"±{fmt(d.mdes)}{rel}"


def _ratio_change(d: Detectable) -> str:
    """A log-ratio MDES as the falls and rises of the outcome it detects (for an odds ratio,
    of the treated units' pre-start proportion, with the proportions it moves to)."""
    change = f"a fall of {d.fall:.0%} or a rise of {d.rise:.0%}"
    if d.scale != "log_odds_ratio":
        return change
    p = d.baseline
    return (
        f"from a proportion of {_share(p)} to {_share(p * (1 - d.fall))} or "
        f"{_share(p * (1 + d.rise))}: {change}"
    )


def _share(p: float) -> str:
    """A proportion as a percentage, with the digits a small one needs."""
    return f"{p:.1%}" if p >= 0.001 else f"{100 * p:.2g}%"


def _ratio_bounds(d: Detectable) -> str:
    return f"{_a(d.ratio_name)} below {math.exp(-d.mdes):.2f} or above {math.exp(d.mdes):.2f}"


def detectable_sentence(d: Detectable | None, unit_label: str, tested: bool = True) -> str:
    """The results section's line on what the headline row could have detected; `tested`:
    the row has a p-value (without a standard error: a randomisation or conformal test)."""
    if d is None and not tested:
        return (
            "Minimum detectable effect not computed: the first row has no standard error, "
            "interval or p-value (the warnings say why)."
        )
    if d is None:
        return (
            "Minimum detectable effect not computed: this inference gives no standard error "
            "(a randomisation or conformal test)."
        )
    unit = f" {unit_label}" if unit_label else ""
    rel = (
        f", {d.mdes_relative:.0%} of the treated units' mean before they started "
        f"({fmt(d.baseline)})"
        if math.isfinite(d.mdes_relative)
        else ""
    )
    if d.log_ratio:
        what = (
            _ratio_change(d)
            if math.isfinite(d.fall)
            else "the pre-start proportion it applies to is unknown"
        )
        unit, rel = " on the log scale", f": {_ratio_bounds(d)} ({what})"
    df = f"t({d.df:.1f})" if math.isfinite(d.df) else "normal"
    line = (
        f"Minimum detectable effect of the first row at 80% power (5% two-sided, {df} "
        f"reference): ±{fmt(d.mdes)}{unit}{rel}."
    )
    if d.could_detect_expected is not None:
        what = (
            "effect injected into the simulated data"
            if d.expected_source == "injected"
            else ("expected effect stated in the design")
        )
        verdict = (
            "detectable" if d.could_detect_expected else "smaller than this analysis can detect"
        )
        line += f" The {what} ({_signed(d.expected)}) is {verdict}."
    return line


def _a(noun: str) -> str:
    return ("an " if noun[:1] in "aeiou" else "a ") + noun


def _power_clause(d: Detectable | None) -> str:
    """Why "no clear evidence" is not "no effect": what the analysis could detect, against the
    expected effect when the design states one."""
    if d is None:
        return ". This is not evidence that the pilot made no difference"
    size = f"±{d.mdes_relative:.0%}" if math.isfinite(d.mdes_relative) else f"±{fmt(d.mdes)}"
    if d.log_ratio:
        size = (
            f"−{d.fall:.0%} or +{d.rise:.0%}"
            if math.isfinite(d.fall) and math.isfinite(d.rise)
            else f"a factor of {math.exp(d.mdes):.2f} in the {d.ratio_name}"
        )
        if d.scale == "log_odds_ratio" and math.isfinite(d.fall):
            size += f" of the {_share(d.baseline)} pre-start proportion"
    expected = _signed(d.expected) + (" injected" if d.expected_source == "injected" else "")
    if d.could_detect_expected is False:
        return (
            f", but this analysis could not have detected a change of the expected size "
            f"({expected}): it had 80% power only for changes of about {size}. The pilot may "
            "still have made a difference"
        )
    if d.could_detect_expected:
        return (
            f"; this analysis had at least 80% power for a change of the expected size "
            f"({expected}; detectable {size}), so the data do not support a change that "
            "large, though smaller changes cannot be ruled out"
        )
    return (
        f"; this analysis could detect changes of about {size} with 80% power, and smaller "
        "changes could go unseen. This is not evidence that the pilot made no difference"
    )


def main_row(run: AnalysisRun) -> Any | None:
    """The overall effect row of a result (`EffectEstimates.overall`), or None."""
    return None if run.result is None else run.result.overall()


def headline(ev: Evaluation, infos: dict[str, OutcomeInfo]) -> list[dict[str, str]]:
    """One row per outcome: the design's primary analysis where it produced an estimate,
    else the first analysis in design order that did."""
    rows, seen = [], set()
    for run in sorted(ev.runs, key=lambda r: not r.analysis.primary):  # stable: design order
        row = main_row(run)
        if run.outcome in seen or row is None or run.status != "ok":
            continue
        seen.add(run.outcome)
        info = infos[run.outcome]
        rows.append(
            {
                "outcome": info.name,
                "unit_label": info.unit_label,
                "estimate": fmt(row["estimate"]),
                "ci": f"{fmt(row['ci_lower'])} to {fmt(row['ci_upper'])}",
                "p_value": fmt_p(row["p_value"]),
                "units": f"{run.result.n_treated} treated of {run.result.n_units}",
                "method": entry(run.result.estimator).label,
                "inference": short_inference(run.result.inference),
                "detectable": detectable_text(run.detectable),
                "evidence": evidence_statement(
                    row["estimate"],
                    row["p_value"],
                    row["ci_lower"],
                    row["ci_upper"],
                    info.polarity,
                    run.detectable,
                ),
                "_p": float(row["p_value"]) if math.isfinite(row["p_value"]) else 1.0,
            }
        )
    return rows


def key_findings(rows: list[dict[str, str]], simulated: bool) -> list[str]:
    """At most five sentences, most precise evidence first."""
    out = []
    for r in sorted(rows, key=lambda r: r["_p"])[:MAX_FINDINGS]:
        unit = f" {r['unit_label']}" if r["unit_label"] else ""
        out.append(
            f"{r['outcome']}: estimated change {r['estimate']}{unit} "
            f"(95% CI {r['ci']}; {r['method']}). {r['evidence']}."
        )
    if simulated and out:
        out[-1] += " These figures come from simulated data."
    return out


SCALE_WORDS = {"log_rate_ratio": "log rate ratio", "log_odds_ratio": "log odds ratio"}


def robustness(ev: Evaluation, infos: dict[str, OutcomeInfo]) -> dict[str, Any]:
    """Outcomes × estimators: the overall estimate and interval of each analysis, each outcome
    followed by its placebo-in-time row; leave-one-out and placebo statements."""
    columns = [r.analysis.id for r in ev.runs if main_row(r) is not None]
    columns = list(dict.fromkeys(columns))
    by = {(r.outcome, r.analysis.id): main_row(r) for r in ev.runs}
    estimators = {r.analysis.id: entry(r.analysis.estimator).label for r in ev.runs}
    placebo = {(p.outcome, p.analysis.id): p for p in ev.placebo}
    rows = []
    for outcome in dict.fromkeys(r.outcome for r in ev.runs):
        cells = []
        for c in columns:
            row = by.get((outcome, c))
            cells.append(
                "–"
                if row is None
                else f"{fmt(row['estimate'])} ({fmt(row['ci_lower'])} to {fmt(row['ci_upper'])})"
            )
        rows.append({"outcome": infos[outcome].name, "placebo": "", "cells": cells})
        mine = [p for p in ev.placebo if p.outcome == outcome]
        if mine:
            rows.append(
                {
                    "outcome": infos[outcome].name,
                    "placebo": placebo_label(mine[0]),
                    "cells": [placebo_cell(placebo.get((outcome, c))) for c in columns],
                }
            )
    loo = []
    names = dict(zip(ev.panel.units["unit"], ev.panel.units["name"], strict=True))
    for r in ev.runs:
        facts = r.result.facts if r.result else None
        drops = facts.leave_one_treated_out if isinstance(facts, TwfeFacts) else None
        if drops:
            low, high = min(drops, key=drops.get), max(drops, key=drops.get)
            loo.append(
                f"{infos[r.outcome].name} ({entry(r.result.estimator).label}): dropping "
                f"one treated unit at a time gives {fmt(drops[low])} (without "
                f"{names.get(low, low)}) to {fmt(drops[high])} (without "
                f"{names.get(high, high)})."
            )
    # a column on a log ratio scale says so beside columns in the outcome's own units
    scale = {r.analysis.id: r.result.scale for r in ev.runs if r.result is not None}
    words = {c: SCALE_WORDS.get(scale.get(c, "difference")) for c in columns}
    return {
        "columns": [
            {"id": c, "label": estimators[c] + (f" ({words[c]})" if words[c] else "")}
            for c in columns
        ],
        "rows": rows,
        "leave_one_out": loo,
        "placebo_intro": placebo_intro(ev.placebo, ev.panel),
        "placebo": [
            placebo_statement(p, infos[p.outcome].name, estimators[p.analysis.id])
            for p in ev.placebo
        ],
    }


def _signed(share: float) -> str:
    """A relative change with a typographic minus: −10%, +5%."""
    return f"{share:+.0%}".replace("-", "−")
