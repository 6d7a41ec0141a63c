"""What each estimator adds to its analysis section, chosen by the type of its facts
(results.Facts): charts, comparator tables and plain-language facts. One function per facts
type; an estimator without one adds nothing beyond the estimates table."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import singledispatch
from typing import Any

from pathfinder_eval.estimators.did.dose_sieve import HC3_BELOW
from pathfinder_eval.estimators.did.facts import (
    BaconFacts,
    ContinuousDidFacts,
    EventStudyFacts,
    GroupTimeFacts,
    ImputationFacts,
    MultiplegtDynFacts,
    StackedFacts,
    SunAbrahamFacts,
    TripleDifferenceFacts,
)
from pathfinder_eval.estimators.stepped_wedge.facts import GeeFacts, GlmmFacts, LmmFacts
from pathfinder_eval.estimators.synthetic.facts import SyntheticControlFacts, SyntheticDidFacts
from pathfinder_eval.panel import OutcomeInfo
from pathfinder_eval.report.format import ci_text, fmt, fmt_p, lower_first
from pathfinder_eval.report.plots import plot_dose_response, plot_event_study, to_svg
from pathfinder_eval.report.synthetic_view import gap_chart, sdid_donors
from pathfinder_eval.results import OMITTED, EffectEstimates

PeriodLabel = Callable[[int], str]


@singledispatch
def estimator_view(
    facts: object,
    res: EffectEstimates,
    info: OutcomeInfo,
    label: PeriodLabel,
    names: dict[str, str],
) -> dict[str, Any]:
    """The section's extra view data for these facts ({} when the estimator adds none)."""
    return {}


@estimator_view.register
def _synthetic_control(
    facts: SyntheticControlFacts,
    res: EffectEstimates,
    info: OutcomeInfo,
    label: PeriodLabel,
    names: dict[str, str],
) -> dict[str, Any]:
    comparators = [
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
        for unit, d in facts.units.items()
    ]
    return {"comparators": comparators, "gap": gap_chart(res, facts, info, label)}


@estimator_view.register
def _synthetic_did(
    facts: SyntheticDidFacts,
    res: EffectEstimates,
    info: OutcomeInfo,
    label: PeriodLabel,
    names: dict[str, str],
) -> dict[str, Any]:
    return {"gap": gap_chart(res, facts, info, label), "donors": sdid_donors(facts, names)}


@estimator_view.register
def _lmm(
    facts: LmmFacts,
    res: EffectEstimates,
    info: OutcomeInfo,
    label: PeriodLabel,
    names: dict[str, str],
) -> dict[str, Any]:
    return {"facts": lmm_lines(facts, res)}


@estimator_view.register
def _gee(
    facts: GeeFacts,
    res: EffectEstimates,
    info: OutcomeInfo,
    label: PeriodLabel,
    names: dict[str, str],
) -> dict[str, Any]:
    return {"facts": gee_lines(facts, res)}


@estimator_view.register
def _glmm(
    facts: GlmmFacts,
    res: EffectEstimates,
    info: OutcomeInfo,
    label: PeriodLabel,
    names: dict[str, str],
) -> dict[str, Any]:
    return {"facts": glmm_lines(facts)}


@estimator_view.register
def _bacon(
    facts: BaconFacts,
    res: EffectEstimates,
    info: OutcomeInfo,
    label: PeriodLabel,
    names: dict[str, str],
) -> dict[str, Any]:
    line = (
        "Goodman-Bacon decomposition of the TWFE estimate: "
        + "; ".join(
            f"{kind.lower()} weight {w:.1%}, average 2×2 estimate "
            f"{fmt(facts.average_by_type[kind], 2)}"
            for kind, w in facts.weights_by_type.items()
        )
        + f". {facts.already_treated_control_weight:.1%} of the weight rests on comparisons "
        "that use already-treated units as controls (biased when effects change over time)."
    )
    return {"facts": [line]}


@estimator_view.register
def _event_study(
    facts: EventStudyFacts,
    res: EffectEstimates,
    info: OutcomeInfo,
    label: PeriodLabel,
    names: dict[str, str],
) -> dict[str, Any]:
    out: dict[str, Any] = event_chart(res, info)
    if facts.sensitivity is not OMITTED and facts.sensitivity:
        out["facts"] = sensitivity_lines(facts.sensitivity, res.level)
    pt = facts.pretrend_test
    if pt:
        out["pretrend"] = pretrend_line(pt, facts.pretest_power)
    return out


@estimator_view.register
def _stacked(
    facts: StackedFacts,
    res: EffectEstimates,
    info: OutcomeInfo,
    label: PeriodLabel,
    names: dict[str, str],
) -> dict[str, Any]:
    out = event_chart(res, info)
    comparison = (
        "LAs not started before the window ends"
        if facts.control_group == "not_yet_treated"
        else "never-treated LAs"
    )
    subs = "; ".join(
        f"starting {label(int(s['cohort']))}: {s['n_treated']:.0f} treated and "
        f"{s['n_control']:.0f} comparison LAs, comparison weight {fmt(s['control_weight'], 3)}"
        for s in facts.sub_experiments
    )
    lines = [
        f"Stacked sub-experiments over event times {-facts.kappa_pre} to {facts.kappa_post} "
        f"(comparisons: {comparison}): {subs}."
    ]
    lines += [f"Starting {label(int(t['cohort']))} left out: {t['reason']}." for t in facts.trimmed]
    out["facts"] = lines
    pt = facts.pretrend_test
    if pt:
        out["pretrend"] = pretrend_line(pt, facts.pretest_power)
    return out


@estimator_view.register
def _multiplegt_dyn(
    facts: MultiplegtDynFacts,
    res: EffectEstimates,
    info: OutcomeInfo,
    label: PeriodLabel,
    names: dict[str, str],
) -> dict[str, Any]:
    out = event_chart(res, info)
    lines = [
        f"{facts.effects} effect(s) after the first change of treatment and {facts.placebos} "
        f"placebo(s) before it, from {facts.groups} LAs; "
        + (
            "each LA has its own linear trend (effect ℓ sums the first ℓ effects on first "
            "differences), so there is no average total effect."
            if facts.linear_trends
            else "the average total effect is per period of treatment received."
        )
    ]
    if facts.continuous:
        lines.append(
            "LAs are compared whatever their starting treatment, with each period's change "
            f"allowed a polynomial of degree {facts.continuous} in it (de Chaisemartin & "
            "D'Haultfœuille's continuous option)."
        )
    chosen = {
        "in": "Only LAs whose treatment first rises are analysed.",
        "out": "Only LAs whose treatment first falls are analysed.",
    }.get(facts.switchers)
    if chosen:
        lines.append(chosen)
    if facts.trends_nonparam:
        lines.append(
            f"Each LA is compared only with LAs of the same {facts.trends_nonparam} (de "
            "Chaisemartin & D'Haultfœuille's trends_nonparam): a shock shared by the LAs of one "
            f"{facts.trends_nonparam} cannot read as an effect."
        )
    if facts.only_never_switchers:
        lines.append(
            "Comparisons are only LAs whose treatment never changes (not LAs yet to change)."
        )
    if facts.same_switchers:
        lines.append(
            "Every effect is over the same LAs, those seen in all of them"
            + (" and in all the placebos" if facts.same_switchers > 1 else "")
            + ", so the effects differ by time since the change, not by which LAs are in them."
        )
    if facts.weighted:
        lines.append(
            "Each LA-period counts by its denominator (de Chaisemartin & D'Haultfœuille's "
            "weight): the effects are per child, not per LA; the LAs behind each row are "
            "still counted as LAs."
        )
    if facts.covariates:
        lines.append(
            f"Net of {', '.join(facts.covariates)}: within each starting treatment the "
            "outcome's changes less the covariates' changes times their coefficients among the "
            "LAs not yet changed (de Chaisemartin & D'Haultfœuille's controls)."
        )
    if facts.left_out:
        lines.append(
            f"Left out: {', '.join(names.get(u, u) for u in facts.left_out)} (every LA of "
            "their starting treatment changes at the same date, so none is a comparison)."
        )
    if facts.treatment_paths:
        total = sum(p["units"] for p in facts.treatment_paths)
        shown = ", ".join(
            f"{p['path']} {p['units']} LA{'s' if p['units'] != 1 else ''} "
            f"({p['units'] / total:.0%})"
            for p in facts.treatment_paths
        )
        late = (
            f"; {facts.late_switchers} more are not followed that long (a late change, or a "
            "gap in their treatment)"
            if facts.late_switchers
            else ""
        )
        lines.append(
            f"Treatment of the LAs that change, in the period before the change and the "
            f"{facts.effects} period(s) from it (share of the LAs followed that long): "
            f"{shown}{late}."
        )
    if facts.paths:
        lines.append(
            "By treatment path (de Chaisemartin & D'Haultfœuille's by_path), the LAs' treatment "
            "from the period before their first change on: the rows named 'path' are the "
            "effects for the LAs on that path alone, against the LAs with the same starting "
            "treatment before they change, every effect over the same LAs."
        )
        lines.extend(_part_line(f"Path {p['path']}", p) for p in facts.paths)
    if facts.subgroups:
        (by,) = {k for k in facts.subgroups[0] if k not in ("units", "rows", "note")}
        lines.append(
            f"By {by} (de Chaisemartin & D'Haultfœuille's by): the rows named '{by} …' are the "
            f"effects for the LAs of that {by} alone, compared only with LAs of the same {by}."
        )
        lines.extend(_part_line(f"{by} {p[by]}", p) for p in facts.subgroups)
    if facts.heterogeneity:
        lines.append(
            "How the effects vary with "
            + ", ".join(dict.fromkeys(h["covariate"] for h in facts.heterogeneity))
            + " among the LAs that changed (de Chaisemartin & D'Haultfœuille's predict_het: "
            "each LA's change regressed on them within its switch date, starting treatment and "
            "direction, HC2 standard errors; an association, not the covariate's effect):"
        )
        lines.extend(_het_line(h, res.level) for h in facts.heterogeneity)
    out["facts"] = lines
    if facts.effects_equal:
        lines.append(
            f"Test that the {facts.effects} effects are equal (whether the effect changes with "
            f"time since the change): {wald_text(facts.effects_equal)}."
        )
    pt = facts.placebo_test
    if pt:
        out["pretrend"] = pretrend_line(pt, facts.pretest_power, "the placebos")
    return out


def _het_line(h: dict[str, Any], level: float) -> str:
    """One predict_het row: the coefficient with its interval and the joint test, or why none."""
    head = f"{h['row'][:1].upper() + h['row'][1:]}, {h['covariate']}"
    if h["note"] and not math.isfinite(h["std_error"]):
        return f"{head}: not estimable ({h['note']}), {h['n']} LAs."
    return (
        f"{head}: {fmt(h['estimate'], 3)} per unit{ci_text([h['conf_low'], h['conf_high']], level)}"
        f", {h['n']} LAs, F test that every covariate's coefficient is zero "
        f"{_p_phrase(h['p_joint'])}."
    )


def _part_line(name: str, part: dict[str, Any]) -> str:
    """One by_path or by part: its LAs and rows, or why it has none."""
    las = f"{part['units']} LA{'s' if part['units'] != 1 else ''}"
    if part["note"]:
        return f"{name} ({las}): not estimable: {part['note']}"
    return f"{name} ({las}): {part['rows']} rows."


@estimator_view.register
def _continuous(
    facts: ContinuousDidFacts,
    res: EffectEstimates,
    info: OutcomeInfo,
    label: PeriodLabel,
    names: dict[str, str],
) -> dict[str, Any]:
    curve = res.table[res.table["term"].str.startswith("ATT at dose")]
    doses = curve["term"].str.removeprefix("ATT at dose ").astype(float)
    lo, mid, hi = facts.dose_range
    comparison = {
        "not_yet_treated": "LAs not yet treated",
        "never_treated": "never-treated LAs",
        "lowest_dose": f"the LAs given the lowest dose, {fmt(facts.reference_dose or 0.0, 3)}",
    }[facts.control_group]
    shape = (
        "a straight line"
        if facts.degree == 1 and not facts.knots
        else (f"a degree-{facts.degree} B-spline with {facts.knots} interior knot(s)")
    )
    sieve = None if facts.sieve is OMITTED else facts.sieve
    if sieve:
        shape = (
            f"a cubic B-spline with {sieve.segments} segment(s), a number chosen from the data "
            "(Chen, Christensen & Kankanala's bootstrap Lepski rule over "
            f"{', '.join(map(str, sieve.segments_tried))} segments)"
        )
    lines = [
        f"{facts.treated} treated LAs over {facts.cohorts} start date(s), doses {fmt(lo, 3)} to "
        f"{fmt(hi, 3)} (median {fmt(mid, 3)}), compared with {comparison}; the dose curve is "
        f"{shape} in the dose, fitted for each start date and period.",
        "ATT is the average effect over the treated doses and ACRT the average change in the "
        "effect per unit of dose; reading differences between doses as causal needs parallel "
        "trends in the dose-response as well as in the untreated outcome.",
    ]
    if facts.reference_dose is not None:
        lines.append(
            "Every LA gets some dose, so each effect is relative to the lowest dose: ATT(d) is "
            f"the effect of dose d less that of dose {fmt(facts.reference_dose, 3)}, and ATT the "
            "average of that over the other LAs (Callaway, Goodman-Bacon & Sant'Anna's Remark "
            "3.1); it says nothing about what the lowest dose itself did."
        )
    if facts.covariates:
        lines.append(
            f"Parallel trends given {', '.join(facts.covariates)}: the comparison LAs' change "
            "is regressed on them (their values in the period before the start) and each "
            "treated LA's change taken net of its prediction"
            + (
                "; doubly robust: the comparison LAs' prediction errors, weighted by their odds "
                "of being treated given the covariates, correct ATT and the dose curve's level."
                if facts.method == "dr"
                else "."
            )
        )
    if sieve:
        lines.append(
            f"Uniform {res.level:.0%} bands, which allow for the choice of segments and hold over "
            f"the whole range of treated doses at once: estimate ± "
            f"{fmt(sieve.critical_value, 3)} influence-function standard errors for ATT(d), ± "
            f"{fmt(sieve.critical_value_slope, 3)} for ACRT(d) ({sieve.draws} multiplier draws, "
            f"seed {sieve.seed}; diagnostics' sieve.uniform_band). "
            + RESIDUALS[sieve.variance]
            + (AUTO_RESIDUALS[sieve.variance] if sieve.variance_asked == "auto" else "")
            + "."
        )
    if facts.left_out:
        lines.append(
            f"Left out: {', '.join(names.get(u, u) for u in facts.left_out)} (treated from "
            "the first period, so no period before their start)."
        )
    out: dict[str, Any] = {
        "svg": to_svg(
            plot_dose_response(curve.assign(dose=doses.to_numpy())),
            f"Dose response: {info.name}",
        ),
        "alt": (
            f"Dose-response chart for {info.name}: the estimated effect at each dose with "
            f"{res.level:.0%} confidence intervals; the table gives the values."
        ),
        "facts": lines,
    }
    pt, dose_pt = facts.pretrend_test, facts.dose_pretrend_test
    lines = []
    if pt:
        lines.append(pretrend_line(pt, facts.pretest_power, "the pre-start event-time ATTs"))
    if dose_pt:
        lines.append(
            pretrend_line(
                dose_pt, None, "the pre-start event-time ACRTs (trends that differ with the dose)"
            )
        )
    if lines:
        out["pretrend"] = " ".join(lines)
    return out


@estimator_view.register
def _imputation(
    facts: ImputationFacts,
    res: EffectEstimates,
    info: OutcomeInfo,
    label: PeriodLabel,
    names: dict[str, str],
) -> dict[str, Any]:
    pt = facts.pretrend_test
    if not pt:
        return {}
    line = pretrend_line(
        pt,
        None,
        f"the {int(pt['leads'])} lead coefficients (BJS's test: untreated cells only, unit and "
        "period effects, CR1 by LA)",
    )
    power = facts.pretest_power
    return {"pretrend": line + (" " + pretest_power_line(power, "overall ATT") if power else "")}


@estimator_view.register
def _sun_abraham(
    facts: SunAbrahamFacts,
    res: EffectEstimates,
    info: OutcomeInfo,
    label: PeriodLabel,
    names: dict[str, str],
) -> dict[str, Any]:
    pt = facts.pretrend_test
    if not pt:
        return {}
    line = pretrend_line(pt, None, "the cohort × lead interactions (CR1 by LA)")
    power = facts.pretest_power
    if power:  # a different test: the event-time leads with the inference used above
        line += " For the event-time leads with the inference above: " + lower_first(
            pretest_power_line(power)
        )
    return {"pretrend": line}


@estimator_view.register
def _group_time(
    facts: GroupTimeFacts,
    res: EffectEstimates,
    info: OutcomeInfo,
    label: PeriodLabel,
    names: dict[str, str],
) -> dict[str, Any]:
    pt = facts.pretest
    if not pt:
        return {}
    line = (
        f"Pre-test that every ATT(g,t) before the start is zero (Wald, influence-function "
        f"covariance, as did): χ²({pt['df']}) = {pt['statistic']:.2f}, "
        f"{_p_phrase(pt['p_value'])}."
    )
    power = facts.pretest_power
    return {"pretrend": line + (" " + pretest_power_line(power) if power else "")}


@estimator_view.register
def _triple_difference(
    facts: TripleDifferenceFacts,
    res: EffectEstimates,
    info: OutcomeInfo,
    label: PeriodLabel,
    names: dict[str, str],
) -> dict[str, Any]:
    out: dict[str, Any] = event_chart(res, info)
    comparison = (
        "never-treated LAs"
        if facts.control_group == "never_treated"
        else "LAs never treated or not yet started (one comparison per start date, combined "
        "by GMM weights)"
    )
    net = f", net of {', '.join(facts.covariates)}" if facts.covariates else ""
    people = "; ".join(f"{k} {_people(v)}" for k, v in facts.units_by_subgroup.items())
    lines = [
        "Each estimate is the change for the people the reform targets in the starting LAs "
        "minus that of the same LAs' untargeted people, net of the same gap in the "
        f"{comparison}: shocks shared by an LA's two groups cancel. Each comparison is a "
        f"{facts.method_label} DiD on the people observed in both of its periods{net}.",
        f"People by group: {people} (in {facts.n_clusters} LAs, "
        f"{facts.treated_clusters} with targeted people in a starting LA).",
    ]
    lines += [
        f"ATT({label(int(c['cohort']))}, {label(int(c['period']))}) not estimated: {c['reason']}."
        for c in facts.dropped_cells
    ]
    out["facts"] = lines
    pt = facts.pretest
    if pt:
        out["pretrend"] = (
            "Pre-test that every ATT(g,t) before the start is zero (Wald, with the standard "
            f"errors' covariance): χ²({pt['df']}) = {pt['statistic']:.2f}, "
            f"{_p_phrase(pt['p_value'])}."
        )
    return out


# The dose sieve's residuals (sieve_variance), as the report names them.
RESIDUALS = {
    "hc3": "Standard errors and bands use HC3 residuals, each divided by 1 − its leverage",
    "hc2": "Standard errors and bands use HC2 residuals, each divided by √(1 − its leverage)",
    "hc0": "Standard errors and bands use contdid's raw (HC0) residuals",
}
AUTO_RESIDUALS = {
    "hc3": f" (chosen for fewer than {HC3_BELOW} treated units, where HC2's bands fell short "
    "of their level in simulation)",
    "hc2": f" (chosen for {HC3_BELOW} or more treated units; with fewer, HC3's, as HC2's bands "
    "fell short of their level in simulation)",
}


def event_chart(res: EffectEstimates, info: OutcomeInfo) -> dict[str, str]:
    """The event-study chart of the rows with event times, and its alternative text."""
    rows = res.table[res.table["event_time"].notna()]
    return {
        "svg": to_svg(plot_event_study(rows), f"Event study: {info.name}"),
        "alt": (
            f"Event-study chart for {info.name}: estimates and {res.level:.0%} "
            "confidence intervals by periods since start; the table gives the values."
        ),
    }


def pretrend_line(
    pt: dict[str, float],
    power: dict[str, float] | None,
    subject: str = "all pre-period coefficients",
) -> str:
    """The joint pre-trend test of `subject` (χ² with a normal reference), and what it could
    see when known."""
    line = f"Joint test that {subject} are zero: {wald_text(pt)}."
    return line + (" " + pretest_power_line(power) if power else "")


def wald_text(test: dict[str, float]) -> str:
    """A Wald test's statistic and p-value: F with finite denominator degrees of freedom, else
    χ² (a normal reference)."""
    stat = (
        f"F({test['df_num']:.0f}, {test['df_denom']:.0f}) = {test['statistic']:.2f}"
        if math.isfinite(test["df_denom"])
        else f"χ²({test['df_num']:.0f}) = {test['statistic'] * test['df_num']:.2f}"
    )
    return f"{stat}, {_p_phrase(test['p_value'])}"


def pretest_power_line(pw: dict[str, float], estimate: str | None = None) -> str:
    """What the pre-test could see (Roth 2022), in outcome units per period; the bias is that
    of the first post-period event time, or of `estimate` when named (a pre-test whose joint
    covariance with it is unknown: no bias after pre-testing)."""
    head = (
        "Power of the pre-test (any lead significant at 5%): a linear pre-trend of "
        f"{fmt(pw['slope_50'], 3)} per period would be detected only half the time, and one of "
        f"{fmt(pw['slope_80'], 3)} per period 80% of the time. Under the first such trend the "
    )
    if estimate is not None:
        return head + (
            f"{estimate} would be biased by {fmt(pw['bias'], 3)}: passing the pre-test does not "
            "rule out trends of these sizes."
        )
    e = int(pw["first_post_event_time"])
    return head + (
        f"event time {e} estimate would be biased by {fmt(pw['bias'], 3)}, and by "
        f"{fmt(pw['bias_after_pretest'], 3)} in analyses that pass the pre-test: passing it "
        "does not rule out trends of these sizes."
    )


def lmm_lines(facts: LmmFacts, res: EffectEstimates) -> list[str]:
    """Model, df, variance components, ICC/CAC and convergence of a stepped-wedge fit (CONSORT
    extension for stepped-wedge trials, item 17a)."""
    design, conv, comp = facts.design, facts.convergence, facts.variance_components
    names = {
        "tau2": "cluster τ²",
        "gamma2": "cluster-period γ²",
        "decay": "decay r (per period)",
        "tau_slope_cov": "intercept–effect covariance κ",
        "slope2": "clusters' own intervention effects ω²",
        "psi2": "person (closed cohort) ψ²",
        "sigma2": "residual σ²",
    }
    lines = [
        _design_line(design, "Fitted by REML"),
        "Variance components: "
        + ", ".join(f"{names[k]} = {fmt(v, 4)}" for k, v in comp.items())
        + ".",
        f"Within-period ICC {fmt(facts.icc, 3)}{ci_text(facts.icc_ci, res.level)}; cluster "
        f"autocorrelation (CAC) {fmt(facts.cac, 3)}{ci_text(facts.cac_ci, res.level)}.",
        f"Convergence: the same optimum from {conv['starts_at_optimum']} of {conv['starts']} "
        f"starting values; largest gradient {conv['max_abs_gradient']:.1g}.",
    ]
    df = res.table["df"].iloc[0] if "df" in res.table else math.nan
    if math.isfinite(df):
        label = {
            "kenward_roger": "Kenward-Roger",
            "satterthwaite": "Satterthwaite",
            "cr2": "Satterthwaite (CR2)",
            "mancl_derouen": "clusters-minus-one (I − 1)",
        }
        lines.insert(
            1,
            f"t reference with {label.get(facts.df_method, facts.df_method)} degrees of freedom "
            f"{fmt(df, 1)} for {lower_first(res.table['term'].iloc[0])}.",
        )
    people = facts.individual_level
    if people is not OMITTED:
        cohort = (
            f" of {_people(people['individuals'])} people followed over time (closed cohort)"
            if "individuals" in people
            else ""
        )
        lines.append(
            f"Fitted on {_people(people['records'])} individual records{cohort}. Adjusted for "
            "individual covariates: "
            + "; ".join(
                f"{name} {fmt(c['estimate'], 3)} (SE {fmt(c['std_error'], 3)})"
                for name, c in people["covariates"].items()
            )
            + "."
        )
    if facts.effect_shape_choice is not OMITTED:
        lines.insert(0, f"Chosen by default: {facts.effect_shape_choice}.")
    if facts.immediate_effect is not OMITTED:
        i = facts.immediate_effect
        ci = ci_text([i["ci_lower"], i["ci_upper"]], res.level)
        lines.append(
            f"Beside it, the immediate-effect model (one effect from the first intervention "
            f"period on): {fmt(i['estimate'], 3)}{ci}."
        )
    if facts.effect_constancy is not OMITTED:
        c = facts.effect_constancy
        lines.append(
            f"Does the effect change with exposure time? Test that {c['hypothesis']} "
            f"({c['method']}): F = {fmt(c['statistic'], 3)} on {c['df'][0]} and "
            f"{fmt(c['df'][1], 1)} df, {_p_phrase(c['p_value'])}."
        )
    if facts.randomisation is not OMITTED:
        r = facts.randomisation
        how = "exact enumeration of" if r["exact"] else "Monte-Carlo sample of"
        lines.append(
            f"Randomisation test: {_p_phrase(r['p_value'])} "
            f"({how} {r['allocations']:,} "
            f"allocations of clusters to sequences; {r['statistic']})."
        )
    return lines


def _p_phrase(p_value: float) -> str:
    """'p = 0.27' or 'p < 0.001'."""
    text = fmt_p(p_value)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def _people(count: float | None) -> str:
    """A count of people as disclosure control left it (None: suppressed)."""
    return "a suppressed number of" if count is None else f"{count:,.0f}"


def _design_line(design: dict[str, Any], how: str) -> str:
    size = next(
        f"{_people(design[k])} {k}"
        for k in ("individuals", "records", "trials", "population")
        if k in design
    )
    return (
        f"{how} on {design['cells_observed']} cluster-period cells "
        f"({size}; {design['clusters']} clusters in "
        f"{len(design['sequences'])} sequences over {len(design['periods'])} periods)."
    )


def gee_lines(facts: GeeFacts, res: EffectEstimates) -> list[str]:
    """Working correlation, the standard errors side by side and convergence of a GEE fit."""
    alpha = ", ".join(f"{k} = {fmt(v, 3)}" for k, v in facts.correlation_parameters.items())
    ses = facts.standard_errors[res.table["term"].iloc[0]]
    conv = facts.convergence
    return [
        _design_line(facts.design, f"GEE ({facts.family}, {facts.link} link) fitted"),
        f"Working correlation {facts.working_correlation.replace('_', ' ')}: {alpha}"
        + (
            ", estimated from the cluster-period proportions (Li et al. 2022)."
            if facts.equations == "cluster_period"
            else "."
        ),
        "Standard errors of the first estimate: "
        + ", ".join(f"{k} {fmt(v, 4)}" for k, v in ses.items())
        + f"; used: {facts.se_used}, {facts.df_rule}.",
        f"Converged in {conv['iterations']} iterations (last step {conv['last_step']:.1g}).",
    ]


def glmm_lines(facts: GlmmFacts) -> list[str]:
    """Variance components, latent-scale ICC, ratio scale and convergence of a GLMM fit."""
    conv = facts.convergence
    comp = ", ".join(f"{k} = {fmt(v, 4)}" for k, v in facts.variance_components.items())
    lines = [
        _design_line(facts.design, f"Fitted by {facts.estimation}"),
        f"Variance components (latent scale): {comp}.",
    ]
    if facts.icc_latent is not None:
        lines.append(
            f"ICC on the latent scale {fmt(facts.icc_latent, 3)}; CAC {fmt(facts.cac, 3)}."
        )
    kind = facts.ratio_key
    for term, r in facts.ratios.items():
        lines.append(
            f"{term.rsplit(', ', 1)[0]} as {'an' if kind[0] == 'o' else 'a'} "
            f"{kind.replace('_', ' ')}: {fmt(r['estimate'], 3)} "
            f"({r['level']:.0%} CI {fmt(r['ci'][0], 3)} to {fmt(r['ci'][1], 3)})."
        )
        break
    lines.append(
        f"Convergence: the same optimum from {conv['starts_at_optimum']} of {conv['starts']} "
        f"starting values; largest gradient {conv['max_abs_gradient']:.1g}."
    )
    return lines


def sensitivity_lines(sens: dict[str, Any], level: float) -> list[str]:
    """Rambachan & Roth robust intervals for the first post-period effect, in words."""
    times = sens["event_times"]
    lines = [
        "Sensitivity to violations of parallel trends (Rambachan & Roth 2023), for the "
        "first post-period effect"
        + (f", using event times {times[0]} to {times[-1]}:" if times else ":")
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
            lines.append(f"{name}: not computed ({part.get('note', 'no pre-periods')}).")
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
        lines.append(f"{name}, {part['method']}: {cis}; {verdict}.")
    return lines
