"""The Callaway & Sant'Anna (2021) estimator on the panel: group-time ATTs (group_time.py),
their aggregations and inference (group_time_inference.py), with the default inference from
inference/policy.py.

`fit` runs named steps: the sample of units (`_sample`), the ATT(g,t)s (`_group_time`), every
reported quantity stacked as one linear map of the influence functions (`_stack`), their
inference (`_inference`), then the table, label, warnings and facts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.estimators.did.facts import GroupTimeFacts
from pathfinder_eval.estimators.did.group_time import (
    LEFT_OUT,
    METHOD_LABEL,
    Aggregation,
    GroupTimeATT,
    aggregate,
    group_time_att,
    prepare_cohorts,
    wide_panel,
    zero_se,
)
from pathfinder_eval.estimators.did.group_time_inference import (
    Bootstrap,
    analytic_se,
    cohort_stratified,
    gaussian_sup_t,
    influence_vcov,
    multiplier_bootstrap,
    pretest,
    stratum_weights,
    unit_strata,
)
from pathfinder_eval.estimators.pooled import PanelLayout, did_decision, panel_layout, pooled_label
from pathfinder_eval.inference.cluster import rescale_covariance
from pathfinder_eval.inference.cohort_stratified import CohortStratified
from pathfinder_eval.inference.policy import Choice, because, few_cluster_warnings
from pathfinder_eval.inference.pretrends_power import pretest_summary
from pathfinder_eval.panel import NO_PERIOD_BEFORE, ValidatedPanel
from pathfinder_eval.results import (
    Dropped,
    EffectEstimates,
    InferenceKey,
    InferenceUsed,
    RegionalDependence,
    estimates_table,
)
from pathfinder_eval.settings import CallawaySantAnnaOptions


@dataclass(frozen=True)
class Sample:
    """The units the ATT(g,t)s use: units (n,), y (n, T), cohort (n,) first treated period
    (NaN never treated), weight (n,), covariates (n, k) or None, periods (T,); lead: (n,)
    each unit's δ (the anticipation asked, one more where the design leaves out the partly
    exposed period); dropped_units: units missing a period; n_first: units treated by the
    first period (dropped); lost: cohorts none of whose units is left (R's did estimates the
    others, as here)."""

    units: np.ndarray
    y: np.ndarray
    cohort: np.ndarray
    weight: np.ndarray
    covariates: np.ndarray | None
    periods: np.ndarray
    lead: np.ndarray
    dropped_units: int
    n_first: int
    dropped: tuple[Dropped, ...] = ()
    lost: tuple[float, ...] = ()
    panel_first: int = 0  # treated units the panel left out with no period before the start

    @property
    def n_treated(self) -> int:
        return int(np.isfinite(self.cohort).sum())


@dataclass(frozen=True)
class Stacked:
    """Every reported quantity as one linear map: estimate (m,) and influence (n, m) in the
    order headline (simple ATT), the aggregation's rows, its overall, then every ATT(g,t);
    n_rows: the first three blocks (the rows that get the small-sample variance); agg and gt:
    the slices of the aggregation's rows and of the cells (for uniform bands)."""

    simple: Aggregation
    agg: Aggregation
    estimate: np.ndarray
    influence: np.ndarray
    n_rows: int
    agg_slice: slice
    gt_slice: slice


@dataclass(frozen=True)
class Inferred:
    """Standard errors and df of every stacked quantity (m,), the analytic (influence-function)
    SEs and covariance, the uniform bands' critical values, and what produced them."""

    std_error: np.ndarray
    df: np.ndarray
    analytic_se: np.ndarray
    vcov: np.ndarray
    crit_agg: float
    crit_gt: float
    choice: Choice
    boot: Bootstrap | None
    strat: CohortStratified | None
    pooled: bool
    dependence: RegionalDependence

    @property
    def key(self) -> InferenceKey:
        if self.boot is not None:
            return "multiplier_bootstrap"
        if self.pooled:
            return "pooled_panel"
        return "cohort_stratified" if self.strat is not None else "influence_function"


class CallawaySantAnna(CallawaySantAnnaOptions):
    """Callaway & Sant'Anna (2021) group-time ATTs, aggregated (default: event time).

    control_group: "never_treated" or "not_yet_treated"; method: "dr" (default), "ipw", "reg";
    anticipation: δ periods of anticipation; base_period: "varying" (default) or "universal";
    aggregation: rows reported after the simple-ATT headline; covariates: cell columns or other
    outcomes, taken at the base period; weighted: unit weights from the panel's weight column
    (first period); balance_e, min_e, max_e: event-time window of the dynamic aggregation.

    Inference: "default" with fewer than 20 treated units, no covariates, no weights and
    clustering by unit uses the cohort-stratified variance with Bell-McCaffrey df for the
    reported rows (inference/cohort_stratified.py; did's standard errors over-reject there:
    benchmarks/did_size.py); otherwise, and for "cluster_robust", analytic
    influence-function standard errors clustered by `inference.cluster` (the unit, or a column
    of the panel's unit table) with a normal reference and a Gaussian sup-t band;
    "multiplier_bootstrap" (or bootstrap_draws > 0) uses did's multiplier bootstrap with
    bootstrap_draws (or inference.draws) draws and Rademacher weights unless
    inference.weights is mammen.
    """

    def fit(
        self, panel: ValidatedPanel, outcome: str, analysis_id: str, level: float = 0.95
    ) -> EffectEstimates:
        sample = self._sample(panel, outcome)
        gt = self._group_time(sample, outcome)
        cluster = panel.cluster_codes(self.inference.cluster, sample.units)
        stack = self._stack(gt)
        layout = panel_layout(panel, outcome)
        inf = self._inference(sample, gt, stack, cluster, layout, level)
        rows = self._rows(stack, inf, gt, sample, panel, level)
        pre = pretest(gt, cluster, zero_se(sample.y))
        vcov = rescale_covariance(inf.vcov, inf.std_error)  # the SEs used, IF correlations
        n_clusters = len(sample.units) if cluster is None else int(cluster.max()) + 1
        return EffectEstimates(
            analysis_id=analysis_id,
            outcome=outcome,
            estimator=self.name,
            inference=InferenceUsed(
                key=inf.key,
                label=self._label(inf, cluster, layout),
                chosen_by_default=inf.choice.chosen_by_default,
                reason=inf.choice.reason if inf.strat is not None or inf.pooled else "",
                dependence=inf.dependence,
            ),
            table=estimates_table(rows),
            level=level,
            vcov=np.nan_to_num(vcov[np.ix_(range(len(rows)), range(len(rows)))]),
            n_units=len(sample.units),
            n_treated=sample.n_treated,
            n_obs=len(sample.units) * len(sample.periods),
            facts=self._facts(
                sample,
                gt,
                stack,
                inf,
                pre,
                self._pretest_power(stack, vcov, sample),
                n_clusters,
                level,
            ),
            warnings=self._warnings(sample, gt, inf, pre, n_clusters, outcome, panel),
            dropped=sample.dropped,
        )

    def _pretest_power(
        self, stack: Stacked, vcov: np.ndarray, sample: Sample
    ) -> dict[str, float] | None:
        """What the any-lead-significant pre-test on the event-time estimates can see (Roth
        2022; inference/pretrends_power.py), with `vcov`, their covariance as the result
        reports it. Under the varying base period each lead compares a period with the one
        before. None unless the aggregation is dynamic without anticipation (asked, or a
        left-out partly exposed period), and in a re-fit."""
        if self.refit or self.aggregation != "dynamic" or sample.lead.any():
            return None
        sl = stack.agg_slice
        cov = vcov[sl, sl]
        keep = np.isfinite(np.diag(cov)) & (np.diag(cov) > 0)
        return pretest_summary(
            stack.estimate[sl][keep],
            cov[np.ix_(keep, keep)],
            np.asarray(stack.agg.labels, float)[keep],
            -1.0,
            short_leads=self.base_period == "varying",
        )

    def _sample(self, panel: ValidatedPanel, outcome: str) -> Sample:
        """The balanced wide panel, cohorts shifted for anticipation, and the refusals: a
        cohort that loses all its units, no treated cohort, no never-treated comparison."""
        wp = wide_panel(panel, outcome, tuple(self.covariates), self.weighted)
        lead = self.anticipation + wp.partly
        cohort, keep = prepare_cohorts(wp.cohort, wp.periods, lead)
        cov = wp.covariates[keep] if wp.covariates is not None else None
        dropped = []
        if wp.dropped_units:
            of = f"{outcome} or a covariate" if self.covariates else outcome
            dropped.append(
                Dropped(
                    f"unit missing a period of {of}, dropped to balance the panel",
                    wp.dropped_rows,
                    wp.dropped,
                )
            )
        if not keep.all():
            dropped.append(
                Dropped(
                    "unit treated by the first period (no period before its start)",
                    int((~keep).sum()) * len(wp.periods),
                    tuple(wp.units[~keep].tolist()),
                )
            )
        # cohorts of the units balancing dropped (not of those the panel left out before)
        balanced_out = panel.units.set_index("unit")["cohort"].reindex(list(wp.dropped))
        kept = set(cohort[keep])
        lost = tuple(
            float(c)
            for c in sorted(set(balanced_out.dropna()))
            if np.isfinite(c)
            and c not in kept
            and c <= wp.periods[-1] + self.anticipation
            and c > wp.periods[0]
        )
        sample = Sample(
            wp.units[keep],
            wp.y[keep],
            cohort[keep],
            wp.weight[keep],
            cov,
            wp.periods,
            lead[keep],
            wp.dropped_units,
            int((~keep).sum()),
            tuple(dropped),
            lost,
            len(
                {
                    u
                    for e in panel.exclusions
                    if e.reason == NO_PERIOD_BEFORE and e.outcome in ("", outcome)
                    for u in e.units
                }
            ),
        )
        if not np.isfinite(sample.cohort).any():
            early = sorted({float(c) for c in wp.cohort[~keep] if np.isfinite(c)})
            unbalanced = [c for c in lost if c not in early]

            def listed(cohorts: list[float]) -> str:
                return ", ".join(panel.period_label(int(c)) for c in cohorts)

            why = []
            if early and self.anticipation:
                why.append(
                    f"cohort(s) {listed(early)} have no base period before the data's first "
                    f"period {wp.periods[0]:g} with anticipation {self.anticipation} (the base "
                    f"is g − 1 − {self.anticipation})"
                )
            elif early:
                why.append(f"cohort(s) {listed(early)} start by the data's first period")
            if unbalanced:
                why.append(
                    f"cohort(s) {listed(unbalanced)} lose all units when units missing a period "
                    "are dropped to balance the panel"
                )
            fixes = (["lower options.anticipation"] if early and self.anticipation else []) + (
                ["supply complete series for the treated units"] if unbalanced else []
            )
            raise EstimationError(
                f"no treated cohort with a pre-treatment period in {outcome!r}"
                + (f" ({'; '.join(why)})" if why else ""),
                where="cohort",
                fix=", or ".join(fixes or ["check the rollout dates against the data periods"]),
            )
        if self.control_group == "never_treated" and not np.isnan(sample.cohort).any():
            raise EstimationError(
                "there are no never-treated units to compare with",
                where="options.control_group",
                fix="set control_group: not_yet_treated",
            )
        return sample

    def _group_time(self, sample: Sample, outcome: str) -> GroupTimeATT:
        gt = group_time_att(
            sample.y,
            sample.cohort,
            sample.periods,
            covariates=sample.covariates,
            weights=sample.weight,
            control_group=self.control_group,
            anticipation=sample.lead,
            base_period=self.base_period,
            method=self.method,
        )
        if len(gt.att) == 0:
            raise EstimationError(
                "no group-time effect could be estimated",
                where=f"outcome {outcome}",
                fix="check there are comparison units in each period"
                + (", and that each covariate varies between units" if self.covariates else ""),
            )
        return gt

    def _stack(self, gt: GroupTimeATT) -> Stacked:
        simple = aggregate(gt, "simple")
        if self.aggregation == "simple":
            blocks, estimates, agg = [simple.overall_influence[:, None]], [[simple.overall]], simple
        else:
            agg = aggregate(
                gt, self.aggregation, balance_e=self.balance_e, min_e=self.min_e, max_e=self.max_e
            )
            blocks = [
                simple.overall_influence[:, None],
                agg.influence,
                agg.overall_influence[:, None],
            ]
            estimates = [[simple.overall], agg.estimate, [agg.overall]]
        n_rows = sum(b.shape[1] for b in blocks)
        agg_slice = slice(1, 1 + len(agg.estimate)) if agg is not simple else slice(0, 1)
        return Stacked(
            simple,
            agg,
            np.concatenate([*estimates, gt.att]),
            np.column_stack([*blocks, gt.influence]),
            n_rows,
            agg_slice,
            slice(n_rows, n_rows + len(gt.att)),
        )

    def _inference(
        self,
        sample: Sample,
        gt: GroupTimeATT,
        stack: Stacked,
        cluster: np.ndarray | None,
        layout: PanelLayout,
        level: float,
    ) -> Inferred:
        """Standard errors (analytic, bootstrap or, for the table rows with few treated units,
        cohort-stratified), df and the uniform bands' critical values."""
        zero = zero_se(sample.y)
        an_se = analytic_se(stack.influence, cluster, zero)
        vcov_if = influence_vcov(stack.influence, cluster)
        row_weights = [stack.simple.overall_weights[None, :]]
        if stack.agg is not stack.simple:
            row_weights += [stack.agg.weights, stack.agg.overall_weights[None, :]]
        w_rows = np.vstack(row_weights)

        def unit_weights() -> np.ndarray:
            a = stratum_weights(gt, w_rows)[:, unit_strata(gt), :]
            return layout.unit_weights(sample.units, sample.periods, a)

        decision = did_decision(
            self.name,
            self.inference.method,
            sample.n_treated,
            self.bootstrap_draws == 0
            and sample.covariates is None
            and not self.weighted
            and cluster is None,
            layout,
            unit_weights,
        )
        choice = decision.choice
        boot = None
        if choice.method == "multiplier_bootstrap" or self.bootstrap_draws > 0:
            draws = self.bootstrap_draws if self.bootstrap_draws > 0 else self.inference.draws
            # did draws Rademacher multipliers; Mammen's on request (Inference's default,
            # webb, is the wild cluster bootstrap's choice and does not apply here).
            wkind = "mammen" if self.inference.weights == "mammen" else "rademacher"
            boot = multiplier_bootstrap(
                stack.influence,
                draws,
                self.seed,
                weights=wkind,
                cluster=cluster,
                level=level,
                zero=zero,
            )
            se = boot.std_error
        else:
            se = an_se
        df = np.full(len(stack.estimate), np.inf)
        strat = None
        if decision.variance is not None:
            se = se.copy()
            pv = decision.variance
            se[: stack.n_rows], df[: stack.n_rows] = pv.std_error, pv.df
        elif choice.method == "cohort_stratified":
            strat = cohort_stratified(sample.y, gt, w_rows)
            se = se.copy()
            se[: stack.n_rows], df[: stack.n_rows] = strat.std_error, strat.df

        def crit(sl: slice, salt: int) -> float:
            if boot is not None:
                return boot.sup_t(sl)
            return gaussian_sup_t(vcov_if[sl, sl], level, self.seed + salt)

        return Inferred(
            se,
            df,
            an_se,
            vcov_if,
            crit(stack.agg_slice, 1),
            crit(stack.gt_slice, 2),
            choice,
            boot,
            strat,
            decision.variance is not None,
            decision.dependence,
        )

    def _rows(
        self,
        stack: Stacked,
        inf: Inferred,
        gt: GroupTimeATT,
        sample: Sample,
        panel: ValidatedPanel,
        level: float,
    ) -> list[dict]:
        """The table: the simple ATT, then the aggregation's rows (t reference with df)."""
        est, se, df = stack.estimate, inf.std_error, inf.df
        with np.errstate(divide="ignore", invalid="ignore"):
            stat = est / se
        pval = 2.0 * stats.t.sf(np.abs(stat), df)
        half = stats.t.ppf(0.5 + level / 2.0, df) * se  # NaN df (a zero-variance row): NaN
        sizes = _cohort_sizes(gt, sample)

        def row(i: int, term: str, weights: np.ndarray, **extra: float) -> dict:
            used = {float(c) for c in gt.group[weights > 0]}
            return {
                "term": term,
                "estimate": est[i],
                "std_error": se[i],
                "statistic": stat[i],
                "p_value": pval[i],
                "ci_lower": est[i] - half[i],
                "ci_upper": est[i] + half[i],
                "df": df[i] if np.isfinite(df[i]) else np.nan,
                "n_units": int(sum(sizes[c] for c in used)),
                **extra,
            }

        rows = [row(0, "ATT (simple)", stack.simple.overall_weights)]
        if stack.agg is stack.simple:
            return rows
        for j, lab in enumerate(stack.agg.labels):
            if self.aggregation == "dynamic":
                term, extra = f"event time {int(lab)}", {"event_time": lab}
            elif self.aggregation == "group":
                term, extra = f"cohort {panel.period_label(int(lab))}", {"cohort": lab}
            else:
                term, extra = f"period {panel.period_label(int(lab))}", {"period": lab}
            rows.append(row(1 + j, term, stack.agg.weights[j], **extra))
        return rows

    def _label(self, inf: Inferred, cluster: np.ndarray | None, layout: PanelLayout) -> str:
        cl_name = "unit" if cluster is None else self.inference.cluster
        if inf.pooled:
            return pooled_label(layout, inf.choice.reason) + (
                "; ATT(g,t) cells keep the influence-function standard errors, and uniform "
                "bands a Gaussian sup-t critical value"
            )
        if inf.boot is not None:
            return (
                f"multiplier bootstrap ({inf.boot.weights} weights, {inf.boot.draws} draws, seed "
                f"{self.seed}) clustered by {cl_name}: IQR-based standard errors, normal "
                "intervals, sup-t uniform bands"
            )
        if inf.strat is not None:
            borrowed = (
                f"; {inf.strat.singletons} single-LA cohort(s) borrow the pooled within-cohort "
                "covariance"
                if inf.strat.singletons
                else ""
            )
            return (
                "cohort-stratified variance (each cohort's contribution's variance estimated "
                f"within the cohort, divisor n − 1{borrowed}) with Bell-McCaffrey degrees of "
                f"freedom, t reference{because(inf.choice.reason)}; ATT(g,t) cells "
                "keep the influence-function standard errors, and uniform bands a Gaussian "
                "sup-t critical value"
            )
        return (
            f"analytic influence-function standard errors clustered by {cl_name}, normal "
            "reference; sup-t uniform bands by Gaussian simulation"
        )

    def _warnings(
        self,
        sample: Sample,
        gt: GroupTimeATT,
        inf: Inferred,
        pre: dict | None,
        n_clusters: int,
        outcome: str,
        panel: ValidatedPanel,
    ) -> tuple[str, ...]:
        def label(period: float) -> str:  # 2023-24 on financial years, not the ordinal
            return panel.period_label(int(period))

        warns = []
        if sample.dropped_units:
            of = f"{outcome!r}" + (" or of a covariate" if self.covariates else "")
            warns.append(
                f"{sample.dropped_units} units missing a period of {of} were dropped to "
                "balance the panel."
            )
        if sample.n_first:
            warns.append(f"{sample.n_first} units treated by the first period were dropped.")
        if sample.lost:
            warns.append(
                f"Cohort(s) {', '.join(label(c) for c in sample.lost)} lost all their units "
                "to balancing and are not in any estimate: every unit of theirs misses a "
                "period."
            )
        partly = sample.lead > self.anticipation
        if partly.any():  # a cohort takes its units' largest δ
            n_cohorts = int(np.isin(sample.cohort, sample.cohort[partly]).sum())
            whose = (
                "their effects are"
                if n_cohorts == partly.sum()
                else f"the effects of their cohorts ({n_cohorts} units) are"
            )
            warns.append(
                f"The design leaves out the partly exposed period of {partly.sum()} treated "
                f"units (partial_period_rule: transition): {whose} measured against the "
                "period before it, as did's anticipation of one period."
            )
        left = [
            f"ATT(g={label(g)}, t={label(t)})" for g, t, why in gt.dropped_cells if why == LEFT_OUT
        ]
        if left:
            warns.append(
                f"{len(left)} ATT(g,t) need a period the design leaves out and are not "
                f"estimated: {', '.join(left)}."
            )
        for g_, t_, why in gt.dropped_cells:
            if why != LEFT_OUT:
                warns.append(f"ATT(g={label(g_)}, t={label(t_)}) not estimated: {why}.")
        if inf.strat is None and not inf.pooled:
            warns += few_cluster_warnings(sample.n_treated, n_clusters)
        if pre is not None and pre["df"] >= sample.n_treated:
            warns.append(
                f"The pre-test compares {pre['df']} pre-start cells using only "
                f"{sample.n_treated} treated units: its covariance is nearly singular, so its "
                "p-value is not reliable; judge pre-trends from the event-time estimates."
            )
        return tuple(warns)

    def _facts(
        self,
        sample: Sample,
        gt: GroupTimeATT,
        stack: Stacked,
        inf: Inferred,
        pre: dict | None,
        pretest_power: dict[str, float] | None,
        n_clusters: int,
        level: float,
    ) -> GroupTimeFacts:
        est, se = stack.estimate, inf.std_error
        half = stats.t.ppf(0.5 + level / 2.0, inf.df) * se
        gt_rows = [
            {
                "cohort": float(gt.group[j]),
                "period": float(gt.time[j]),
                "base_period": float(gt.base[j]),
                "event_time": float(gt.time[j] - gt.group[j]),
                "post": bool(gt.post[j]),
                "estimate": float(est[i]),
                "std_error": float(se[i]),
                "analytic_std_error": float(inf.analytic_se[i]),
                "band_lower": float(est[i] - inf.crit_gt * se[i]),
                "band_upper": float(est[i] + inf.crit_gt * se[i]),
                "n_treated": int(gt.n_treated[j]),
                "n_comparison": int(gt.n_control[j]),
            }
            for j, i in enumerate(range(stack.n_rows, stack.n_rows + len(gt.att)))
        ]
        overall = None
        if stack.agg is not stack.simple:
            i = 1 + len(stack.agg.estimate)
            overall = {
                "estimate": float(est[i]),
                "std_error": float(se[i]),
                "analytic_std_error": float(inf.analytic_se[i]),
                "ci_lower": float(est[i] - half[i]),
                "ci_upper": float(est[i] + half[i]),
            }
        sl = stack.agg_slice
        agg_band = [
            {
                "label": None if np.isnan(lab) else float(lab),
                "band_lower": float(est[sl][j] - inf.crit_agg * se[sl][j]),
                "band_upper": float(est[sl][j] + inf.crit_agg * se[sl][j]),
            }
            for j, lab in enumerate(stack.agg.labels)
        ]
        return GroupTimeFacts(
            control_group=self.control_group,
            method=self.method,
            method_label=METHOD_LABEL[self.method],
            anticipation=self.anticipation,
            base_period=self.base_period,
            aggregation=self.aggregation,
            covariates=list(self.covariates),
            att_gt=gt_rows,
            aggregation_weights=_weights_view(stack.agg, gt),
            simple_weights=_weights_view(stack.simple, gt),
            aggregation_overall=overall,
            aggregation_band=agg_band,
            pretest=pre,
            pretest_power=pretest_power,
            uniform_band_critical_value={"aggregation": inf.crit_agg, "att_gt": inf.crit_gt},
            units_per_cohort={f"{c:g}": v for c, v in _cohort_sizes(gt, sample).items()},
            never_treated_units=int(np.isnan(sample.cohort).sum()),
            units_dropped_unbalanced=sample.dropped_units,
            units_dropped_treated_first_period=sample.n_first + sample.panel_first,
            n_clusters=n_clusters,
            inference_method=inf.key,
            bootstrap=None
            if inf.boot is None
            else {"draws": inf.boot.draws, "weights": inf.boot.weights, "seed": self.seed},
        )


def _cohort_sizes(gt: GroupTimeATT, sample: Sample) -> dict[float, int]:
    return {float(c): int(np.sum(sample.cohort == c)) for c in gt.cohorts}


def _weights_view(a: Aggregation, gt: GroupTimeATT) -> list[dict]:
    """An aggregation's weights on the ATT(g,t) cells, row by row (non-zero cells only)."""
    out = []
    labels = a.labels if a.kind != "simple" else [np.nan]
    for j, lab in enumerate(labels):
        nz = np.flatnonzero(a.weights[j])
        out.append(
            {
                "label": None if np.isnan(lab) else float(lab),
                "cells": [
                    {
                        "cohort": float(gt.group[c]),
                        "period": float(gt.time[c]),
                        "weight": float(a.weights[j, c]),
                    }
                    for c in nz
                ],
            }
        )
    return out
