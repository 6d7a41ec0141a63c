"""Conventional two-way fixed-effects DiD and event study (the benchmark, not robust estimators).

Under staggered adoption with effects that vary by cohort or over time, the TWFE coefficient is a
weighted average of 2×2 comparisons some of which use already-treated units as controls and can
carry negative weights (Goodman-Bacon 2021, J. Econometrics 225:254–277; de Chaisemartin &
D'Haultfœuille 2020, AER 110:2964–2996). It is reported as the conventional benchmark.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.estimators.did.event_time import (
    check_periods_one_apart,
    reference_event_time,
)
from pathfinder_eval.estimators.did.facts import EventStudyFacts, TwfeFacts
from pathfinder_eval.estimators.did.two_way import (
    absorb_two_way,
    cr1_label,
    fit_twfe,
    leave_one_treated_out,
)
from pathfinder_eval.estimators.pooled import (
    Decision,
    PanelLayout,
    did_decision,
    panel_layout,
    pooled_label,
    pooled_rows,
)
from pathfinder_eval.inference.cluster import (
    blank_vacant,
    joint_zero_test,
    t_summary,
    untested_leads,
    vacant_rows,
)
from pathfinder_eval.inference.conley_taber import conley_taber
from pathfinder_eval.inference.cr2 import CR2Result, cr2_inference
from pathfinder_eval.inference.honest_did import sensitivity_rm, sensitivity_sd
from pathfinder_eval.inference.policy import because, few_cluster_warnings
from pathfinder_eval.inference.pretrends_power import pretest_summary
from pathfinder_eval.inference.randomisation_did import timing_randomisation
from pathfinder_eval.inference.wild_bootstrap import wild_cluster_bootstrap
from pathfinder_eval.panel import ValidatedPanel
from pathfinder_eval.results import EffectEstimates, InferenceKey, InferenceUsed, estimates_table
from pathfinder_eval.settings import EventStudyOptions, TwfeOptions

# inference.method → the InferenceUsed key (report/validity.py states its conditions)
METHOD_KEY: dict[str, InferenceKey] = {
    "cluster_robust": "cr1",
    "cr2": "cr2",
    "wild_bootstrap": "wild_bootstrap",
    "randomisation": "timing_randomisation",
    "conley_taber": "conley_taber",
    "pooled": "pooled_panel",
}


def outcome_weights(cells: pd.DataFrame, names: list[str]) -> np.ndarray:
    """(coefficients, cells) the unweighted OLS coefficients on `names` with unit and period
    effects as weights on the outcomes: (X̃ᵀX̃)⁻¹X̃ᵀ, X̃ the regressors with the effects
    absorbed."""
    codes = pd.factorize(cells["unit"])[0], pd.factorize(cells["period"])[0]
    xt = absorb_two_way(cells[names].to_numpy(float), *codes)
    return np.linalg.solve(xt.T @ xt, xt.T)


def bread_and_noise(
    cells: pd.DataFrame, names: list[str], params: np.ndarray
) -> tuple[np.ndarray, float]:
    """diag (X̃ᵀX̃)⁻¹ of the unweighted regression of y on `names` with unit and period effects
    (each coefficient's ‖w‖² as weights on the outcomes) and its mean squared residual at
    `params`: what `blank_vacant` reads."""
    codes = pd.factorize(cells["unit"])[0], pd.factorize(cells["period"])[0]
    xy = absorb_two_way(cells[[*names, "y"]].to_numpy(float), *codes)
    xt, e = xy[:, :-1], xy[:, -1] - xy[:, :-1] @ np.asarray(params, float)
    return np.diag(np.linalg.inv(xt.T @ xt)), float(e @ e / len(e))


def ols_decision(
    est: TwfeOptions | EventStudyOptions,
    panel: ValidatedPanel,
    outcome: str,
    cells: pd.DataFrame,
    names: list[str],
    n_treated: int,
) -> tuple[PanelLayout, Decision]:
    """The default-inference decision for OLS coefficients on `names` with unit and period
    effects: their weights on the outcomes are the rows of (X̃ᵀX̃)⁻¹X̃ᵀ, X̃ the regressors with
    the two-way effects absorbed (computed only if the pooled variance is considered)."""
    layout = panel_layout(panel, outcome)
    unit, period = cells["unit"].to_numpy(), cells["period"].to_numpy()

    def unit_weights() -> np.ndarray:
        return layout.cell_weights(unit, period, outcome_weights(cells, names))

    decision = did_decision(
        est.name, est.inference.method, n_treated, not est.weighted, layout, unit_weights
    )
    return layout, decision


def cr2_row(cells: pd.DataFrame, row: dict, level: float) -> CR2Result:
    """CR2 with Bell-McCaffrey df for the treated coefficient of the TWFE on `cells` (unit
    and period effects, unweighted): sets the row's inference columns and returns the fit."""
    c2 = cr2_inference(
        cells["y"].to_numpy(float),
        cells["treated"].to_numpy(float)[:, None],
        pd.factorize(cells["unit"])[0],
        pd.factorize(cells["period"])[0],
        level=level,
    )
    _set_inference(row, c2)
    return c2


# A row's inference columns, as CR2 and the pooled variance give them
INFERENCE_COLUMNS = ("std_error", "statistic", "p_value", "ci_lower", "ci_upper", "df")


def _set_inference(row: dict, res: Any) -> None:
    """The row's inference columns from the first entry of `res`'s (a CR2 or pooled result)."""
    row.update({k: getattr(res, k)[0] for k in INFERENCE_COLUMNS})


def df_text(df: float) -> str:
    """CR2's Satterthwaite df for a label, or why there is none."""
    return f"{df:.1f}" if np.isfinite(df) else "none (no variance: see the warnings)"


class TwoWayFixedEffects(TwfeOptions):
    """Static TWFE DiD: y_it = α_i + λ_t + β·D_it + ε_it. `weighted` uses the denominators;
    `leave_one_out` re-fits without each treated unit (robustness; off in simulations).

    Inference: "cluster_robust" is CR1 with a t(G−1) reference. "wild_bootstrap" replaces the
    p-value and interval by the wild cluster restricted bootstrap (the standard error shown
    stays CR1); "cr2", "randomisation" and "conley_taber" as in inference/. "default" chooses
    CR2 with Bell-McCaffrey degrees of freedom when fewer than 20 units are treated, where CR1
    over-rejects (MacKinnon & Webb 2017) and the wild bootstrap's intervals become
    uninformative with 3 treated (benchmarks/did_size.py: CR2 size 3–7% at 3, 7 and 10 of
    150 treated), and CR1 otherwise (and for weighted fits, which CR2 does not cover)."""

    def fit(
        self, panel: ValidatedPanel, outcome: str, analysis_id: str, level: float = 0.95
    ) -> EffectEstimates:
        cells = panel.outcome_cells(outcome)
        nested = self.inference.absorbed_effects == "nested"
        fit = fit_twfe(cells, ["treated"], self.weighted, nested)
        norms, noise = bread_and_noise(cells, ["treated"], fit.params)
        cr1, df = blank_vacant(  # an ATT resting on cells fitted exactly has no variance
            fit.vcov, fit.n_clusters - 1, norms, noise, float(cells["y"].abs().max())
        )
        summ = t_summary(fit.params, cr1, float(df[0]), level)  # one coefficient
        n_treated = int(cells.loc[cells["role"] == "treated", "unit"].nunique())
        row = summ.row(0, "ATT (TWFE)", fit.params[0], n_units=fit.n_clusters)
        vacant = not np.isfinite(cr1[0, 0])
        label = cr1_label(self.inference.absorbed_effects)
        warns = few_cluster_warnings(n_treated, fit.n_clusters)
        layout, decision = ols_decision(self, panel, outcome, cells, ["treated"], n_treated)
        choice = decision.choice
        method = choice.method
        vcov = cr1
        if decision.variance is not None:
            pr = pooled_rows(np.array([row["estimate"]]), decision.variance, level)
            _set_inference(row, pr)
            vcov = decision.variance.vcov
            label, warns = pooled_label(layout, choice.reason), ()
        elif method in ("cr2", "randomisation", "conley_taber"):
            if self.weighted:
                raise EstimationError(
                    f"{method} inference is implemented for unweighted TWFE only",
                    where="options.weighted",
                    fix="set weighted: false or use cluster_robust",
                )
            label, warns, vcov = self._small_sample(cells, row, method, level, n_treated)
            label += because(choice.reason)
        elif method == "wild_bootstrap" and vacant:  # nothing to studentize by
            row.update(p_value=np.nan, ci_lower=np.nan, ci_upper=np.nan, df=np.nan)
            label = "wild cluster restricted bootstrap by unit: not run (no CR1 variance)"
            warns = ()
        elif method == "wild_bootstrap":
            if self.weighted:
                raise EstimationError(
                    "the wild cluster bootstrap is implemented for unweighted TWFE only",
                    where="options.weighted",
                    fix="set weighted: false or use cluster_robust",
                )
            wb = wild_cluster_bootstrap(
                cells["y"].to_numpy(float),
                cells["treated"].to_numpy(float),
                pd.factorize(cells["unit"])[0],
                pd.factorize(cells["period"])[0],
                pd.factorize(cells["unit"])[0],
                self.inference.draws,
                self.inference.weights,
                level,
                self.seed,
            )
            row.update(p_value=wb.p_value, ci_lower=wb.ci_lower, ci_upper=wb.ci_upper)
            row["df"] = np.nan
            label = (
                f"wild cluster restricted bootstrap by unit ({wb.weights} weights, "
                f"{wb.draws} {'enumerated ' if wb.enumerated else ''}draws; p-value and "
                "interval by test inversion); standard error CR1"
            )
            warns = ()
        warns = (*warns, *vacant_rows([row], METHOD_KEY[method]))
        table = estimates_table([row])
        return EffectEstimates(
            analysis_id=analysis_id,
            outcome=outcome,
            estimator=self.name,
            inference=InferenceUsed(
                key=METHOD_KEY[method],
                label=label,
                chosen_by_default=choice.chosen_by_default,
                reason=choice.reason,
                dependence=decision.dependence,
            ),
            table=table,
            level=level,
            vcov=vcov,
            n_units=fit.n_clusters,
            n_treated=n_treated,
            n_obs=fit.n_obs,
            facts=TwfeFacts(
                weighted=self.weighted,
                inference_method=METHOD_KEY[method],
                treated_cells=int(cells["treated"].sum()),
                leave_one_treated_out=leave_one_treated_out(cells, self.weighted)
                if self.leave_one_out
                else {},
            ),
            warnings=warns,
        )

    def _small_sample(
        self, cells: pd.DataFrame, row: dict, method: str, level: float, n_treated: int
    ) -> tuple[str, tuple[str, ...], np.ndarray]:
        """CR2 with Bell-McCaffrey df, re-assigned timing, or Conley-Taber: updates the row's
        inference columns; returns the label, warnings and the covariance to report."""
        u = pd.factorize(cells["unit"])[0]
        t = pd.factorize(cells["period"])[0]
        y = cells["y"].to_numpy(float)
        d = cells["treated"].to_numpy(float)
        draws = self.inference.draws
        if method == "cr2":
            c2 = cr2_row(cells, row, level)
            label = (
                f"CR2 cluster-robust by unit (Bell & McCaffrey 2002) with Satterthwaite "
                f"degrees of freedom {df_text(c2.df[0])} (Pustejovsky & Tipton 2018)"
            )
            return label, (), c2.contrast_vcov
        if method == "randomisation":
            start = cells.groupby(u)["cohort"].first().sort_index().to_numpy(float)
            ri = timing_randomisation(
                y, u, cells["period"].to_numpy(float), start, draws, self.seed, level
            )
            row.update(p_value=ri.p_value, ci_lower=ri.ci_lower, ci_upper=ri.ci_upper, df=np.nan)
            how = "all" if ri.exact else f"{ri.assignments:,} sampled"
            label = (
                f"randomisation inference re-assigning start dates across units ({how} of "
                f"{ri.total:,} assignments; p-value and interval by test inversion under a "
                "constant effect); standard error CR1"
            )
            return label, (), np.asarray([[row["std_error"] ** 2]])
        ct = conley_taber(y, d, u, t, draws=draws, level=level, seed=self.seed)
        row.update(p_value=ct.p_value, ci_lower=ct.ci_lower, ci_upper=ct.ci_upper, df=np.nan)
        label = (
            f"Conley & Taber (2011) inference from the {ct.n_controls} comparison units' "
            "residuals (valid with many comparison units whose errors are alike and "
            "independent of treatment timing); standard error CR1"
        )
        warns = ()
        if ct.n_controls < 30:
            warns = (
                f"Conley-Taber inference uses only {ct.n_controls} comparison units: it needs "
                "many, so read the interval as approximate.",
            )
        return label, warns, np.asarray([[row["std_error"] ** 2]])


class EventStudy(EventStudyOptions):
    """TWFE event study with relative-time indicators for treated units.

    Reference period `reference` (default −1) is omitted; relative times below `min_lead` or
    above `max_lag` are binned into the endpoints. Never-treated units carry all zeros.
    `sensitivity` adds the Rambachan & Roth (2023) robust intervals for the first post-period
    effect (smoothness FLCI and relative-magnitudes C-LF, with breakdown values), computed on
    the event times that are not binned endpoints.

    Inference: "cluster_robust" is CR1 by unit with t(G−1); "default" uses CR2 with
    Bell-McCaffrey df per coefficient when fewer than 20 units are treated and the fit is
    unweighted (as TwoWayFixedEffects), its covariance also feeding the pre-trend test (F with
    the smallest lead df as denominator, conservative) and the sensitivity analysis.
    """

    def fit(
        self, panel: ValidatedPanel, outcome: str, analysis_id: str, level: float = 0.95
    ) -> EffectEstimates:
        check_periods_one_apart(panel.periods, "the event study")
        cells = panel.outcome_cells(outcome).copy()
        reference, moved = reference_event_time(
            panel, cells, self.reference, "reference" in self.model_fields_set, self.min_lead
        )
        rel = (cells["period"] - cells["cohort"]).clip(self.min_lead, self.max_lag)
        observed = sorted(int(e) for e in rel.dropna().unique() if e != reference)
        if not observed:
            raise EstimationError(
                f"no treated unit is observed at an event time other than the reference "
                f"({reference})",
                where="rollout",
                fix="supply the treated units' cells after their start (and before it)",
            )
        names = []
        for e in observed:
            col = f"e{e:+d}"
            cells[col] = (rel == e).astype("float64")
            names.append(col)
        fit = fit_twfe(cells, names, self.weighted, self.inference.absorbed_effects == "nested")
        n_treated = int(cells.loc[cells["role"] == "treated", "unit"].nunique())
        layout, decision = ols_decision(self, panel, outcome, cells, names, n_treated)
        choice = decision.choice
        small, pooled = choice.method == "cr2", decision.variance is not None
        vcov, df = fit.vcov, np.full(len(names), float(fit.n_clusters - 1))
        if decision.variance is not None:
            vcov, df = decision.variance.vcov, decision.variance.df
        elif small:
            c2 = cr2_inference(
                cells["y"].to_numpy(float),
                cells[names].to_numpy(float),
                pd.factorize(cells["unit"])[0],
                pd.factorize(cells["period"])[0],
                level=level,
            )
            vcov, df = c2.contrast_vcov, c2.df
        else:  # CR1: rows resting on cells fitted exactly have a variance of rounding
            norms, noise = bread_and_noise(cells, names, fit.params)
            vcov, df = blank_vacant(vcov, df, norms, noise, float(cells["y"].abs().max()))
        summ = t_summary(fit.params, vcov, df, level)
        n_by_e = {e: int(cells.loc[rel == e, "unit"].nunique()) for e in observed}
        rows = []
        for j, e in enumerate(observed):
            label = f"event time {e}"
            if e == self.min_lead:
                label += " or earlier"
            if e == self.max_lag:
                label += " or later"
            rows.append(
                summ.row(j, label, fit.params[j], df=float(df[j]), event_time=e, n_units=n_by_e[e])
            )
        leads = [j for j, e in enumerate(observed) if e < 0]
        pretrend = joint_zero_test(np.asarray(fit.params), vcov, df, leads)
        untested = [rows[j]["term"] for j in leads if not np.isfinite(vcov[j, j])]
        warns = (
            ([moved] if moved else [])
            + vacant_rows(rows, "pooled_panel" if pooled else "cr2" if small else "cr1")
            + untested_leads(untested, pretrend is not None)
        )
        facts = EventStudyFacts(
            reference_event_time=reference,
            binned_endpoints=[self.min_lead, self.max_lag],
            pretrend_test=pretrend,
            inference_method="pooled_panel" if pooled else "cr2" if small else "cr1",
            pretest_power=None
            if self.refit
            else pretest_summary(fit.params, vcov, np.array(observed, float), float(reference)),
        )
        if self.sensitivity and not self.refit:
            facts = replace(
                facts, sensitivity=self._sensitivity(observed, fit.params, vcov, level, reference)
            )
        label = cr1_label(self.inference.absorbed_effects)
        if pooled:
            label = pooled_label(layout, choice.reason) + (
                "; pre-trend F test on the pooled covariance with the smallest lead's df"
            )
        elif small:
            label = (
                "CR2 cluster-robust by unit (Bell & McCaffrey 2002) with Satterthwaite degrees "
                f"of freedom per coefficient (Pustejovsky & Tipton 2018){because(choice.reason)}; "
                "pre-trend F test on the CR2 covariance with the smallest "
                "lead's df"
            )
        return EffectEstimates(
            analysis_id=analysis_id,
            outcome=outcome,
            estimator=self.name,
            inference=InferenceUsed(
                key="pooled_panel" if pooled else "cr2" if small else "cr1",
                label=label,
                chosen_by_default=choice.chosen_by_default,
                reason=choice.reason,
                dependence=decision.dependence,
            ),
            table=estimates_table(rows),
            level=level,
            vcov=vcov,
            n_units=fit.n_clusters,
            n_treated=n_treated,
            n_obs=fit.n_obs,
            facts=facts,
            warnings=(() if small or pooled else few_cluster_warnings(n_treated, fit.n_clusters))
            + tuple(warns),
        )

    def _sensitivity(
        self,
        observed: list[int],
        params: np.ndarray,
        vcov: np.ndarray,
        level: float,
        reference: int,
    ) -> dict | None:
        """Rambachan & Roth sensitivity of the first post-period effect on the single event
        times (binned endpoints average several periods, so they are left out). Their
        restrictions bound changes between consecutive periods up to event time −1, the
        reference: with another reference there is none."""
        if reference != -1:
            note = {
                "note": f"the reference is event time {reference}, and Rambachan & Roth's "
                "restrictions need event time −1 as the reference"
            }
            return {"event_times": [], "target": "first post period"} | {
                "smoothness": note,
                "relative_magnitudes": note,
            }
        keep = [j for j, e in enumerate(observed) if self.min_lead < e < self.max_lag]
        pre = [j for j in keep if observed[j] < 0]
        post = [j for j in keep if observed[j] >= 0]
        if not pre or not post:
            return None
        idx = pre + post
        beta, vcov = params[idx], vcov[np.ix_(idx, idx)]
        out: dict = {"event_times": [observed[j] for j in idx], "target": "first post period"}
        se_first = float(np.sqrt(vcov[len(pre), len(pre)]))
        m = np.array(self.sensitivity_m) if self.sensitivity_m else np.linspace(0, se_first / 2, 6)
        mbar = np.array(self.sensitivity_mbar)
        for key, run in (
            ("smoothness", lambda: sensitivity_sd(beta, vcov, len(pre), len(post), m,
                                                  level=level)),
            ("relative_magnitudes", lambda: sensitivity_rm(beta, vcov, len(pre), len(post), mbar,
                                                           level=level)),
        ):  # fmt: skip
            try:
                res = run()
            except EstimationError as exc:
                out[key] = {"note": exc.one_line()}
                continue
            out[key] = {"method": res.method, "rows": res.rows(), "breakdown": res.breakdown}
        return out
