"""Evaluation → plain view data for the template. Numbers are formatted and disclosure-controlled
here, so templates hold display logic only."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pandas as pd

from pathfinder_eval.data.catalogue import load_catalogue
from pathfinder_eval.data.ees import SYMBOLS
from pathfinder_eval.evaluate import Evaluation
from pathfinder_eval.panel import OutcomeInfo, ValidatedPanel
from pathfinder_eval.power.design import design_power
from pathfinder_eval.registry import REGISTRY, entry
from pathfinder_eval.report.consort import checklist
from pathfinder_eval.report.disclosure import DisclosureLog
from pathfinder_eval.report.plots import plot_event_study, plot_trends, to_svg
from pathfinder_eval.report.schematic import plot_schematic
from pathfinder_eval.report.summary import headline, key_findings, robustness
from pathfinder_eval.report.synthetic_view import gap_chart, sdid_donors
from pathfinder_eval.report.validity import validity

LICENCE = (
    "Contains public sector information licensed under the Open Government Licence v3.0. "
    "Source: Department for Education, Explore Education Statistics."
)
LABELS = {k.value: row.label for k, row in REGISTRY.items()}
PILOT_LABEL = {
    "family_help": "Families First for Children pathfinder (family help)",
    "family_network": "Family network pilot",
    "rcc": "Regional Care Co-operative pathfinder",
    "trial": "Stepped-wedge cluster randomised trial",
    "custom": "Custom design",
}
SECTIONS = (
    "summary",
    "design",
    "data",
    "methods",
    "results",
    "robustness",
    "limitations",
    "consort",
    "appendix",
)


def report_sections(ev: Evaluation) -> list[str]:
    """The sections that apply, in order (partials sections/<id>.html.j2): the CONSORT
    checklist for trials only, robustness only when the design estimates something."""
    pilot = ev.panel.spec.pilot.value
    estimates = any(r.analysis.estimator.value != "descriptive" for r in ev.runs)
    skip = {"consort"} if pilot != "trial" else set()
    if not estimates:
        skip.add("robustness")
    return [s for s in SECTIONS if s not in skip]


def fmt(x: float | None, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    text = f"{x:,.{digits}f}"
    if text.startswith("-") and not any(c in "123456789" for c in text):
        text = text[1:]  # no "−0.00" for a value that rounds to zero
    return text.replace("-", "−")


def fmt_p(p: float | None) -> str:
    if p is None or math.isnan(p):
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def build_context(ev: Evaluation) -> dict[str, Any]:
    """Everything the template shows, already formatted."""
    panel, spec = ev.panel, ev.panel.spec
    log = DisclosureLog(spec.report.disclosure.min_count, spec.report.disclosure.round_to)
    infos = {o.id: o for o in panel.outcomes}
    units = panel.units
    treated = units[units["role"] == "treated"].sort_values(["cohort", "name"])
    trends = [_trend(panel, info, log) for info in panel.outcomes if info.available]
    head = headline(ev, infos, fmt, fmt_p, LABELS)
    names = dict(zip(units["unit"], units["name"], strict=True))
    analyses = [_analysis(run, infos[run.outcome], panel.period_label, names) for run in ev.runs]
    return {
        "sections": report_sections(ev),
        "title": spec.title,
        "name": spec.name,
        "pilot": PILOT_LABEL[spec.pilot.value],
        "programme": spec.programme,
        "description": spec.description,
        "evaluator": spec.evaluator,
        "funder": spec.funder,
        "sources": list(spec.sources),
        "report_date": spec.report.date.isoformat() if spec.report.date else "",
        "data_kind": panel.data.kind,
        "data_notes": list(panel.data.notes),
        "licence": LICENCE if panel.data.kind == "official" else "",
        "time_rule": spec.time.partial_period_rule.value,
        "treated_units": [
            {
                "name": r["name"],
                "unit": r["unit"],
                "wave": r["wave"],
                "start": r["start"],
                "first_period": panel.period_label(int(r["cohort"])),
                "exposure": f"{r['exposure_fraction']:.0%}",
            }
            for _, r in treated.iterrows()
        ],
        "n_comparison": int((units["role"] == "comparison").sum()),
        "periods": [panel.period_label(p) for p in panel.periods],
        "outcomes": [
            {
                "id": o.id,
                "name": o.name,
                "unit_label": o.unit_label,
                "polarity": o.polarity.replace("_", " "),
                "available": o.available,
                "note": o.note,
            }
            for o in panel.outcomes
        ],
        "trends": trends,
        "analyses": analyses,
        "data_files": ev.provenance.to_dict()["data_files"],
        "indicators": _indicators(spec),
        "reorganisations": list(panel.data.reorganisations),
        "symbols": [{"symbol": k, "meaning": v} for k, v in SYMBOLS.items()],
        "limitations": limitations(panel),
        "design_power": _design_power(spec),
        "headline": [{k: v for k, v in r.items() if k != "_p"} for r in head],
        "findings": key_findings(head, panel.data.kind == "synthetic"),
        "robustness": robustness(ev, infos, fmt, fmt_p, LABELS),
        "schematic": to_svg(plot_schematic(panel), "Design schematic"),
        "schematic_alt": (
            f"Grid of units by period showing when each treated unit "
            f"switched from control to intervention, {len(treated)} treated "
            "units and one row for all comparison units; the treatment timing "
            "table gives the same information."
        ),
        "consort": checklist() if spec.pilot.value == "trial" else [],
        "participants": _participants(panel, log) if spec.pilot.value == "trial" else None,
        "model_output": [
            {
                "id": r.analysis.id,
                "outcome": infos[r.outcome].name,
                "text": json.dumps(r.result.to_dict(), indent=2, allow_nan=False),
            }
            for r in ev.runs
            if r.result is not None
        ],
        "methods": [
            {"label": entry(k).label, "text": entry(k).method_text}
            for k in dict.fromkeys(r.analysis.estimator for r in ev.runs)
            if entry(k).method_text
        ],
        "inference": inference_rows(ev),
        "exclusions": [
            {
                "reason": e.reason,
                "outcome": e.outcome or "all",
                "count": e.count,
                "units": len(e.units),
                "stage": e.stage,
            }
            for e in panel.exclusions
        ],
        "disclosure": log.rows(),
        "disclosure_rule": (
            f"Counts of children below {log.min_count} are suppressed; other "
            f"counts are rounded to the nearest {log.round_to}."
        ),
        "provenance": ev.provenance.to_dict(),
    }


def inference_rows(ev: Evaluation) -> list[dict[str, str]]:
    """For each analysis that produced a result: the inference it used (as the estimator
    states it, with the reason for a default's choice) and when that inference is valid."""
    rows: dict[str, dict[str, str]] = {}
    for r in ev.runs:
        if r.result is None or r.analysis.id in rows:
            continue
        rows[r.analysis.id] = {
            "analysis": r.analysis.id,
            "estimator": entry(r.result.estimator).label,
            "inference": r.result.inference.label,
            "validity": validity(r.result.inference),
        }
    return list(rows.values())


def _participants(panel: ValidatedPanel, log: DisclosureLog) -> dict[str, Any]:
    """Participants (cell sizes) by sequence and period with row totals, disclosure-controlled
    with secondary suppression (CONSORT-SW items 13a and 16)."""
    cells = panel.cells[panel.cells["outcome"] == panel.outcomes[0].id]
    waves = panel.units.set_index("unit")["wave"]
    table = cells.assign(wave=cells["unit"].map(waves)).pivot_table(
        index="wave", columns="period", values="denominator", aggfunc="sum", fill_value=0
    )
    rows = []
    for wave, values in table.iterrows():
        shown, total = log.counts_with_total([float(v) for v in values], "participants")
        rows.append({"wave": str(wave), "cells": shown, "total": total})
    return {"periods": [panel.period_label(int(p)) for p in table.columns], "rows": rows}


def _design_power(spec) -> str:
    """For trial designs: the analytic MDES the design supports (CONSORT-SW item 7a)."""
    if spec.data.trial is None:
        return ""
    s = design_power(spec)
    return (
        f"Design power (Hussey & Hughes model, ICC {s.icc:g}, {s.cell_size} per "
        f"cluster-period, two-sided α {s.alpha:g}): minimum detectable effect "
        f"{s.mdes_80:.3f} SD at 80% power ({s.mdes_90:.3f} at 90%); power "
        f"{s.power:.1%} for the design's effect of {s.effect:g} SD."
    )


def limitations(panel: ValidatedPanel) -> list[str]:
    """Plain statements of what limits the conclusions, generated from design and data."""
    spec, units = panel.spec, panel.units
    treated = units[units["role"] == "treated"]
    out = []
    if spec.pilot.value != "trial":
        out.append(
            "Pilot areas were not chosen at random: differences between treated and "
            "comparison units that change over time can bias every estimate here."
        )
    if len(treated) < 20:
        out.append(
            f"Only {len(treated)} treated units: conventional cluster-robust inference "
            "is unreliable with so few treated clusters, so the default inference uses "
            "small-sample methods (see Methods: the inference used and when it is valid); "
            "their wide intervals are the honest price of few pilot areas."
        )
    last = max(panel.periods)
    for cohort, group in treated.groupby("cohort"):
        n_post = int(last - cohort + 1)
        if n_post < 2:
            names = ", ".join(group["name"])
            out.append(
                f"{names}: only {n_post} period of data after the start "
                f"({panel.period_label(int(cohort))}), too short to judge an effect "
                "that takes time to appear."
            )
    if spec.pilot.value in ("family_help", "family_network"):
        out.append(
            "Every English LA began the national Families First Partnership from April "
            "2025, so reporting years from 2026 have no untreated comparison group; "
            f"this analysis ends with {panel.period_label(max(panel.periods))}."
        )
    if panel.data.reorganisations:
        out.append(
            f"{len(panel.data.reorganisations)} LA reorganisations in the series were "
            "handled by stated rules (see Data and indicators); boundary breaks "
            "shorten some LAs' series."
        )
    if panel.data.kind == "official":
        out.append(
            "Official statistics are revised between releases; the files and their "
            "hashes are listed so the analysis can be repeated on the same release."
        )
    n_excluded = sum(e.count for e in panel.exclusions if e.stage == "panel")
    if n_excluded:
        out.append(
            f"{n_excluded:,} rows were excluded (suppressed, not available, outside the "
            "window or outside the comparison pool); see the exclusions table."
        )
    return out


def _indicators(spec) -> list[dict[str, str]]:
    """Definitions of the catalogue indicators a design uses (numerator / denominator)."""
    catalogue = load_catalogue()
    out = []
    for o in spec.outcomes:
        if o.indicator is None:
            continue
        ind = catalogue[o.indicator]
        out.append(
            {
                "name": ind.name,
                "framework": ind.framework,
                "source": ind.source,
                "definition": f"{_measure(ind.numerator)} ÷ {_measure(ind.denominator)}"
                f" × {ind.multiplier:,.0f}",
                "polarity": ind.polarity.replace("_", " "),
            }
        )
    return out


def _measure(m) -> str:
    cols = " + ".join(m.columns)
    rows = "; ".join(f"{k} = {v}" for k, v in m.filters)
    return f"{cols} [{m.family}{': ' + rows if rows else ''}]"


def _trend(panel: ValidatedPanel, info: OutcomeInfo, log: DisclosureLog) -> dict[str, Any]:
    cells = panel.outcome_cells(info.id)
    by = cells.groupby(["period", "role"])
    mean = by["y"].mean().unstack("role")
    n_units = by["unit"].nunique().unstack("role")
    events = cells[cells["role"] == "treated"].groupby("period")["numerator"].sum(min_count=1)
    frame = pd.DataFrame(
        {"period": mean.index, "treated": mean.get("treated"), "comparison": mean.get("comparison")}
    )
    frame["period_label"] = [panel.period_label(int(p)) for p in frame["period"]]
    frame["position"] = range(len(frame))
    starts = []
    for cohort in sorted(panel.units["cohort"].dropna().unique()):
        pos = frame.index.get_indexer([cohort])[0]
        if pos >= 0:
            starts.append((pos - 0.5, f"start {panel.period_label(int(cohort))}"))
    ylabel = f"{info.name} ({info.unit_label})" if info.unit_label else info.name
    svg = to_svg(
        plot_trends(frame.reset_index(drop=True), _wrap(ylabel), starts), f"Trends: {info.name}"
    )
    rows = [
        {
            "period": lab,
            "treated": fmt(t),
            "comparison": fmt(c),
            "n_treated": int(n_units.get("treated", pd.Series()).get(p, 0)),
            "n_comparison": int(n_units.get("comparison", pd.Series()).get(p, 0)),
            "events": log.count(float(events.get(p, float("nan"))), f"trends: {info.name}"),
        }
        for p, lab, t, c in zip(
            frame["period"],
            frame["period_label"],
            frame["treated"],
            frame["comparison"],
            strict=True,
        )
    ]
    alt = (
        f"Line chart of the mean {info.name} by period for treated and comparison LAs, "
        f"{frame['period_label'].iloc[0]} to {frame['period_label'].iloc[-1]}; "
        "the table beside it gives the values."
    )
    return {
        "id": info.id,
        "name": info.name,
        "svg": svg,
        "alt": alt,
        "rows": rows,
        "unit_label": info.unit_label,
    }


def _analysis(
    run, info: OutcomeInfo, label: Callable[[int], str], names: dict[str, str]
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": run.analysis.id,
        "outcome": info.name,
        "unit_label": info.unit_label,
        "estimator": entry(run.analysis.estimator).label,
        "status": run.status,
        "note": run.note,
        "rows": [],
        "warnings": [],
        "svg": "",
        "pretrend": "",
        "comparators": [],
        "gap": None,
        "donors": [],
        "facts": [],
        "level": f"{run.analysis.level:.0%}",
    }
    res = run.result
    if res is None:
        return out
    out["inference"] = res.inference.label
    out["n"] = f"{res.n_units} units ({res.n_treated} treated), {res.n_obs} unit-periods"
    out["warnings"] = list(res.warnings)
    out["rows"] = [
        {
            "term": r.term,
            "estimate": fmt(r.estimate),
            "std_error": fmt(r.std_error),
            "ci": f"{fmt(r.ci_lower)} to {fmt(r.ci_upper)}",
            "p_value": fmt_p(r.p_value),
        }
        for r in res.table.itertuples()
    ]
    if res.estimator == "synthetic_control":
        out["comparators"] = [
            {
                "unit": unit,
                "pre_rmspe": fmt(d["pre_rmspe"], 3),
                "post_rmspe": fmt(d["post_rmspe"], 3),
                "ratio": fmt(d["rmspe_ratio"]),
                "p_value": fmt_p(d["permutation_p_value"]),
                "donors": ", ".join(
                    f"{k} {v:.2f}"
                    for k, v in sorted(d["donor_weights"].items(), key=lambda kv: -kv[1])[:8]
                ),
            }
            for unit, d in res.diagnostics["units"].items()
        ]
    if res.estimator in ("synthetic_control", "synthetic_did"):
        out["gap"] = gap_chart(res, info, label, fmt)
    if res.estimator == "synthetic_did":
        out["donors"] = sdid_donors(res, names, fmt)
    if res.estimator == "stepped_wedge":
        out["facts"] = stepped_wedge_facts(res)
    elif res.estimator == "stepped_wedge_gee":
        out["facts"] = gee_facts(res)
    elif res.estimator == "stepped_wedge_glmm":
        out["facts"] = glmm_facts(res)
    if res.estimator == "bacon":
        d = res.diagnostics
        out["facts"] = [
            "Goodman-Bacon decomposition of the TWFE estimate: "
            + "; ".join(
                f"{kind.lower()} weight {w:.1%}, average 2×2 estimate "
                f"{fmt(d['average_by_type'][kind], 2)}"
                for kind, w in d["weights_by_type"].items()
            )
            + f". {d['already_treated_control_weight']:.1%} of the weight rests on comparisons "
            "that use already-treated units as controls (biased when effects change over time)."
        ]
    if res.estimator == "event_study" and res.diagnostics.get("sensitivity"):
        out["facts"] = sensitivity_facts(res.diagnostics["sensitivity"], res.level)
    if res.estimator == "event_study":
        out["svg"] = to_svg(plot_event_study(res.table), f"Event study: {info.name}")
        out["alt"] = (
            f"Event-study chart for {info.name}: estimates and {out['level']} "
            "confidence intervals by periods since start; the table gives the values."
        )
        pt = res.diagnostics.get("pretrend_test")
        if pt:
            out["pretrend"] = (
                f"Joint test that all pre-period coefficients are zero: "
                f"F({pt['df_num']:.0f}, {pt['df_denom']:.0f}) = "
                f"{pt['statistic']:.2f}, p = {fmt_p(pt['p_value'])}."
            )
    return out


def stepped_wedge_facts(res) -> list[str]:
    """Model, df, variance components, ICC/CAC and convergence of a stepped-wedge fit (CONSORT
    extension for stepped-wedge trials, item 17a)."""
    d = res.diagnostics
    design, conv, comp = d["design"], d["convergence"], d["variance_components"]
    names = {
        "tau2": "cluster τ²",
        "gamma2": "cluster-period γ²",
        "decay": "decay r (per period)",
        "psi2": "person (closed cohort) ψ²",
        "sigma2": "residual σ²",
    }
    facts = [
        _design_fact(design, "Fitted by REML"),
        "Variance components: "
        + ", ".join(f"{names[k]} = {fmt(v, 4)}" for k, v in comp.items())
        + ".",
        f"Within-period ICC {fmt(d['icc'], 3)}{_ci_text(d['icc_ci'], res.level)}; cluster "
        f"autocorrelation (CAC) {fmt(d['cac'], 3)}{_ci_text(d['cac_ci'], res.level)}.",
        f"Convergence: the same optimum from {conv['starts_at_optimum']} of {conv['starts']} "
        f"starting values; largest gradient {conv['max_abs_gradient']:.1g}.",
    ]
    df = res.table["df"].iloc[0] if "df" in res.table else math.nan
    if math.isfinite(df):
        label = {"kenward_roger": "Kenward-Roger", "satterthwaite": "Satterthwaite"}
        facts.insert(
            1,
            f"t reference with {label.get(d['df_method'], d['df_method'])} degrees of freedom "
            f"{fmt(df, 1)} for {_lower_first(res.table['term'].iloc[0])}.",
        )
    people = d.get("individual_level")
    if people:
        cohort = (
            f" of {people['individuals']:,} people followed over time (closed cohort)"
            if "individuals" in people
            else ""
        )
        facts.append(
            f"Fitted on {people['records']:,} individual records{cohort}. Adjusted for "
            "individual covariates: "
            + "; ".join(
                f"{name} {fmt(c['estimate'], 3)} (SE {fmt(c['std_error'], 3)})"
                for name, c in people["covariates"].items()
            )
            + "."
        )
    if "randomisation" in d:
        r = d["randomisation"]
        how = "exact enumeration of" if r["exact"] else "Monte-Carlo sample of"
        p_text = fmt_p(r["p_value"])
        facts.append(
            f"Randomisation test: p {p_text if p_text.startswith('<') else '= ' + p_text} "
            f"({how} {r['allocations']:,} "
            f"allocations of clusters to sequences; {r['statistic']})."
        )
    return facts


def _design_fact(design: dict, how: str) -> str:
    size = next(
        f"{design[k]:,.0f} {k}" for k in ("individuals", "trials", "population") if k in design
    )
    return (
        f"{how} on {design['cells_observed']} cluster-period cells "
        f"({size}; {design['clusters']} clusters in "
        f"{len(design['sequences'])} sequences over {len(design['periods'])} periods)."
    )


def gee_facts(res) -> list[str]:
    """Working correlation, the standard errors side by side and convergence of a GEE fit."""
    d = res.diagnostics
    alpha = ", ".join(f"{k} = {fmt(v, 3)}" for k, v in d["correlation_parameters"].items())
    term = res.table["term"].iloc[0]
    ses = d["standard_errors"][term]
    conv = d["convergence"]
    return [
        _design_fact(d["design"], f"GEE ({d['family']}, {d['link']} link) fitted"),
        f"Working correlation {d['working_correlation'].replace('_', ' ')}: {alpha}.",
        "Standard errors of the first estimate: "
        + ", ".join(f"{k} {fmt(v, 4)}" for k, v in ses.items())
        + f"; used: {d['se_used']}, {d['df_rule']}.",
        f"Converged in {conv['iterations']} iterations (last step {conv['last_step']:.1g}).",
    ]


def glmm_facts(res) -> list[str]:
    """Variance components, latent-scale ICC, ratio scale and convergence of a GLMM fit."""
    d = res.diagnostics
    conv = d["convergence"]
    comp = ", ".join(f"{k} = {fmt(v, 4)}" for k, v in d["variance_components"].items())
    facts = [
        _design_fact(d["design"], f"Fitted by {d['estimation']}"),
        f"Variance components (latent scale): {comp}.",
    ]
    if d.get("icc_latent") is not None:
        facts.append(f"ICC on the latent scale {fmt(d['icc_latent'], 3)}; CAC {fmt(d['cac'], 3)}.")
    for kind in ("odds_ratio", "rate_ratio"):
        for term, r in d.get(kind, {}).items():
            facts.append(
                f"{term.rsplit(', ', 1)[0]} as {'an' if kind[0] == 'o' else 'a'} "
                f"{kind.replace('_', ' ')}: {fmt(r['estimate'], 3)} "
                f"({r['level']:.0%} CI {fmt(r['ci'][0], 3)} to {fmt(r['ci'][1], 3)})."
            )
            break
    facts.append(
        f"Convergence: the same optimum from {conv['starts_at_optimum']} of {conv['starts']} "
        f"starting values; largest gradient {conv['max_abs_gradient']:.1g}."
    )
    return facts


def sensitivity_facts(sens: dict, level: float) -> list[str]:
    """Rambachan & Roth robust intervals for the first post-period effect, in words."""
    facts = [
        "Sensitivity to violations of parallel trends (Rambachan & Roth 2023), for the "
        f"first post-period effect, using event times {sens['event_times'][0]} to "
        f"{sens['event_times'][-1]}:"
    ]
    for key, name, symbol in (
        ("smoothness", "smoothness (the trend's slope may change by up to M per period)", "M"),
        (
            "relative_magnitudes",
            "relative magnitudes (post-period violations up to M̄ times the largest pre-period one)",
            "M̄",
        ),
    ):
        part = sens.get(key) or {}
        if "rows" not in part:
            facts.append(f"{name}: not computed ({part.get('note', 'no pre-periods')}).")
            continue
        m_key = "M" if key == "smoothness" else "Mbar"
        cis = "; ".join(
            f"{symbol} = {fmt(r[m_key], 3)}: {fmt(r['lb'], 2)} to {fmt(r['ub'], 2)}"
            for r in part["rows"]
        )
        brk = part["breakdown"]
        verdict = (
            f"the {level:.0%} interval excludes zero up to {symbol} = {fmt(brk, 3)}"
            if brk is not None
            else f"the {level:.0%} interval includes zero even with parallel trends"
        )
        facts.append(f"{name}, {part['method']}: {cis}; {verdict}.")
    return facts


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _ci_text(ci: list[float | None], level: float) -> str:
    """' (95% CI a to b)', or nothing when the interval is undefined."""
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in ci):
        return ""
    return f" ({level:.0%} CI {fmt(ci[0], 3)} to {fmt(ci[1], 3)})"


def _wrap(text: str, width: int = 40) -> str:
    words, lines, line = text.split(), [], ""
    for w in words:
        if len(line) + len(w) + 1 > width and line:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    lines.append(line)
    return "\n".join(lines)
