"""The Callaway & Sant'Anna (2021) estimator on the panel: group-time ATTs (group_time.py),
their aggregations and inference (group_time_inference.py), with the default inference from
inference/policy.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.estimators.did.facts import GroupTimeFacts
from pathfinder_eval.estimators.did.group_time import (
    METHOD_LABEL,
    Aggregation,
    aggregate,
    group_time_att,
    prepare_cohorts,
    wide_panel,
)
from pathfinder_eval.estimators.did.group_time_inference import (
    analytic_se,
    cohort_stratified,
    gaussian_sup_t,
    influence_vcov,
    multiplier_bootstrap,
    pretest,
)
from pathfinder_eval.estimators.did.two_way import few_cluster_warnings
from pathfinder_eval.inference.cluster import rescale_covariance
from pathfinder_eval.inference.policy import few_treated
from pathfinder_eval.panel import ValidatedPanel
from pathfinder_eval.results import EffectEstimates, InferenceUsed, estimates_table
from pathfinder_eval.settings import (
    CallawaySantAnnaOptions,
)


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

    def _cluster(self, panel: ValidatedPanel, units: np.ndarray) -> np.ndarray | None:
        name = self.inference.cluster
        if name in ("unit", "", None):
            return None
        if name not in panel.units.columns:
            raise EstimationError(
                f"cluster variable {name!r} is not a column of the unit table",
                where="inference.cluster",
                fix=f"use unit or one of {', '.join(map(str, panel.units.columns))}",
            )
        lookup = panel.units.set_index("unit")[name].reindex(units)
        if lookup.isna().any():
            raise EstimationError(
                f"cluster variable {name!r} is missing for some units",
                where="inference.cluster",
                fix="fill it for every unit or cluster by unit",
            )
        return pd.factorize(lookup.to_numpy())[0]

    def fit(
        self, panel: ValidatedPanel, outcome: str, analysis_id: str, level: float = 0.95
    ) -> EffectEstimates:
        wp = wide_panel(panel, outcome, tuple(self.covariates), self.weighted)
        cohort, keep = prepare_cohorts(wp.cohort, wp.periods, self.anticipation)
        n_first = int((~keep).sum())
        units, y, cohort, weight = wp.units[keep], wp.y[keep], cohort[keep], wp.weight[keep]
        cov = wp.covariates[keep] if wp.covariates is not None else None
        all_cohorts = sorted(set(panel.units.loc[panel.units["role"] == "treated", "cohort"]))
        lost = [
            c
            for c in all_cohorts
            if np.isfinite(c)
            and c not in set(cohort)
            and c <= wp.periods[-1] + self.anticipation
            and c > wp.periods[0]
        ]
        if lost:
            raise EstimationError(
                f"cohort(s) {', '.join(str(int(c)) for c in lost)} lose all units when units "
                f"missing a period of {outcome!r} are dropped",
                where=f"column y ({outcome})",
                fix="supply complete series for these units or drop the cohort",
            )
        if not np.isfinite(cohort).any():
            raise EstimationError(
                f"no treated cohort with a pre-treatment period in {outcome!r}",
                where="cohort",
                fix="check the rollout dates against the data periods",
            )
        if self.control_group == "never_treated" and not np.isnan(cohort).any():
            raise EstimationError(
                "there are no never-treated units to compare with",
                where="options.control_group",
                fix="set control_group: not_yet_treated",
            )
        gt = group_time_att(
            y,
            cohort,
            wp.periods,
            covariates=cov,
            weights=weight,
            control_group=self.control_group,
            anticipation=self.anticipation,
            base_period=self.base_period,
            method=self.method,
        )
        if len(gt.att) == 0:
            raise EstimationError(
                "no group-time effect could be estimated",
                where=f"outcome {outcome}",
                fix="check there are comparison units in each period",
            )
        cluster = self._cluster(panel, units)
        simple = aggregate(gt, "simple")
        agg = (
            simple
            if self.aggregation == "simple"
            else aggregate(
                gt, self.aggregation, balance_e=self.balance_e, min_e=self.min_e, max_e=self.max_e
            )
        )
        # Columns: headline, the aggregation's rows, its overall, then every ATT(g,t).
        rows_if = [simple.overall_influence[:, None]]
        if self.aggregation != "simple":
            rows_if += [agg.influence, agg.overall_influence[:, None]]
        n_rows = sum(a.shape[1] for a in rows_if)
        full_if = np.column_stack([*rows_if, gt.influence])
        est = np.concatenate(
            [[simple.overall]]
            + ([agg.estimate, [agg.overall]] if self.aggregation != "simple" else [])
            + [gt.att]
        )
        an_se = analytic_se(full_if, cluster)
        vcov_if = influence_vcov(full_if, cluster)
        boot = None
        n_treated_units = int(np.isfinite(cohort).sum())
        choice = few_treated(
            self.name,
            self.inference.method,
            n_treated_units,
            applicable=self.bootstrap_draws == 0
            and cov is None
            and not self.weighted
            and cluster is None,
        )
        use_boot = choice.method == "multiplier_bootstrap" or self.bootstrap_draws > 0
        if use_boot:
            draws = self.bootstrap_draws if self.bootstrap_draws > 0 else self.inference.draws
            # did draws Rademacher multipliers; Mammen's on request (Inference's default,
            # webb, is the wild cluster bootstrap's choice and does not apply here).
            wkind = "mammen" if self.inference.weights == "mammen" else "rademacher"
            boot = multiplier_bootstrap(
                full_if, draws, self.seed, weights=wkind, cluster=cluster, level=level
            )
            se = boot.std_error
        else:
            se = an_se
        df = np.full(len(est), np.inf)
        small = choice.method == "cohort_stratified"
        if small:
            rows_w = [simple.overall_weights[None, :]]
            if self.aggregation != "simple":
                rows_w += [agg.weights, agg.overall_weights[None, :]]
            strat = cohort_stratified(y, gt, np.vstack(rows_w))
            se = se.copy()
            se[:n_rows], df[:n_rows] = strat.std_error, strat.df
        with np.errstate(divide="ignore", invalid="ignore"):
            stat = est / se
        pval = 2.0 * stats.t.sf(np.abs(stat), df)
        half = stats.t.ppf(0.5 + level / 2.0, df) * se  # NaN df (a zero-variance row): NaN

        # Uniform bands: sup-t over the aggregation's rows and over the ATT(g,t) cells.
        agg_sl = slice(1, 1 + len(agg.estimate)) if self.aggregation != "simple" else slice(0, 1)
        gt_sl = slice(n_rows, n_rows + len(gt.att))

        def crit(sl: slice, salt: int) -> float:
            if boot is not None:
                return boot.sup_t(sl)
            return gaussian_sup_t(vcov_if[sl, sl], level, self.seed + salt)

        crit_agg, crit_gt = crit(agg_sl, 1), crit(gt_sl, 2)

        n_units = len(units)
        coh_sizes = {float(c): int(np.sum(cohort == c)) for c in gt.cohorts}

        def treated_units(wrow: np.ndarray) -> int:
            used = {float(c) for c in gt.group[wrow > 0]}
            return int(sum(coh_sizes[c] for c in used))

        def row(i: int, term: str, **extra: float) -> dict:
            return {
                "term": term,
                "estimate": est[i],
                "std_error": se[i],
                "statistic": stat[i],
                "p_value": pval[i],
                "ci_lower": est[i] - half[i],
                "ci_upper": est[i] + half[i],
                "df": df[i] if np.isfinite(df[i]) else np.nan,
                **extra,
            }

        rows = [row(0, "ATT (simple)", n_units=treated_units(simple.overall_weights))]
        if self.aggregation != "simple":
            for j, lab in enumerate(agg.labels):
                wrow = agg.weights[j]
                if self.aggregation == "dynamic":
                    extra = {"event_time": lab, "term": f"event time {int(lab)}"}
                elif self.aggregation == "group":
                    extra = {"cohort": lab, "term": f"cohort {panel.period_label(int(lab))}"}
                else:
                    extra = {"period": lab, "term": f"period {panel.period_label(int(lab))}"}
                term = extra.pop("term")
                rows.append(row(1 + j, term, n_units=treated_units(wrow), **extra))
        table = estimates_table(rows)

        vcov_full = rescale_covariance(vcov_if, se)
        table_idx = list(range(len(rows)))
        vcov = np.nan_to_num(vcov_full[np.ix_(table_idx, table_idx)])

        gt_rows = []
        for j in range(len(gt.att)):
            i = n_rows + j
            gt_rows.append(
                {
                    "cohort": float(gt.group[j]),
                    "period": float(gt.time[j]),
                    "base_period": float(gt.base[j]),
                    "event_time": float(gt.time[j] - gt.group[j]),
                    "post": bool(gt.post[j]),
                    "estimate": float(est[i]),
                    "std_error": float(se[i]),
                    "analytic_std_error": float(an_se[i]),
                    "band_lower": float(est[i] - crit_gt * se[i]),
                    "band_upper": float(est[i] + crit_gt * se[i]),
                    "n_treated": int(gt.n_treated[j]),
                    "n_comparison": int(gt.n_control[j]),
                }
            )

        def weights_view(a: Aggregation) -> list[dict]:
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

        overall = None
        if self.aggregation != "simple":
            i = 1 + len(agg.estimate)
            overall = {
                "estimate": float(est[i]),
                "std_error": float(se[i]),
                "analytic_std_error": float(an_se[i]),
                "ci_lower": float(est[i] - half[i]),
                "ci_upper": float(est[i] + half[i]),
            }
        agg_band = [
            {
                "label": None if np.isnan(lab) else float(lab),
                "band_lower": float(est[agg_sl][j] - crit_agg * se[agg_sl][j]),
                "band_upper": float(est[agg_sl][j] + crit_agg * se[agg_sl][j]),
            }
            for j, lab in enumerate(agg.labels)
        ]
        n_cl = n_units if cluster is None else int(cluster.max()) + 1
        cl_name = "unit" if cluster is None else self.inference.cluster
        if boot is not None:
            label = (
                f"multiplier bootstrap ({boot.weights} weights, {boot.draws} draws, seed "
                f"{self.seed}) clustered by {cl_name}: IQR-based standard errors, normal "
                "intervals, sup-t uniform bands"
            )
        elif small:
            label = (
                "cohort-stratified variance (each cohort's contribution's variance estimated "
                "within the cohort, divisor n − 1"
                + (
                    f"; {strat.singletons} single-LA cohort(s) borrow the pooled within-cohort "
                    "covariance"
                    if strat.singletons
                    else ""
                )
                + ") with Bell-McCaffrey degrees of freedom, t reference; chosen because "
                f"{choice.reason}; ATT(g,t) cells "
                "keep the influence-function standard errors, and uniform bands a Gaussian "
                "sup-t critical value"
            )
        else:
            label = (
                f"analytic influence-function standard errors clustered by {cl_name}, normal "
                "reference; sup-t uniform bands by Gaussian simulation"
            )
        warns = []
        if wp.dropped_units:
            warns.append(
                f"{wp.dropped_units} units missing a period of {outcome!r} were dropped to "
                "balance the panel."
            )
        if n_first:
            warns.append(f"{n_first} units treated by the first period were dropped.")
        for g_, t_, why in gt.dropped_cells:
            warns.append(f"ATT(g={g_:g}, t={t_:g}) not estimated: {why}.")
        if not small:
            warns += few_cluster_warnings(n_treated_units, n_cl)
        pre = pretest(gt, cluster)
        if pre is not None and pre["df"] >= n_treated_units:
            warns.append(
                f"The pre-test compares {pre['df']} pre-start cells using only "
                f"{n_treated_units} treated units: its covariance is nearly singular, so its "
                "p-value is not reliable; judge pre-trends from the event-time estimates."
            )
        facts = GroupTimeFacts(
            control_group=self.control_group,
            method=self.method,
            method_label=METHOD_LABEL[self.method],
            anticipation=self.anticipation,
            base_period=self.base_period,
            aggregation=self.aggregation,
            covariates=list(self.covariates),
            att_gt=gt_rows,
            aggregation_weights=weights_view(agg),
            simple_weights=weights_view(simple),
            aggregation_overall=overall,
            aggregation_band=agg_band,
            pretest=pre,
            uniform_band_critical_value={"aggregation": crit_agg, "att_gt": crit_gt},
            units_per_cohort={f"{c:g}": v for c, v in coh_sizes.items()},
            never_treated_units=int(np.isnan(cohort).sum()),
            units_dropped_unbalanced=wp.dropped_units,
            units_dropped_treated_first_period=n_first,
            n_clusters=n_cl,
            inference_method="multiplier_bootstrap"
            if boot is not None
            else "cohort_stratified"
            if small
            else "influence_function",
            bootstrap=None
            if boot is None
            else {"draws": boot.draws, "weights": boot.weights, "seed": self.seed},
        )
        return EffectEstimates(
            analysis_id=analysis_id,
            outcome=outcome,
            estimator=self.name,
            inference=InferenceUsed(
                key=facts.inference_method,
                label=label,
                chosen_by_default=choice.chosen_by_default,
                reason=choice.reason if small else "",
            ),
            table=table,
            level=level,
            vcov=vcov,
            n_units=n_units,
            n_treated=n_treated_units,
            n_obs=n_units * len(wp.periods),
            facts=facts,
            warnings=tuple(warns),
        )
