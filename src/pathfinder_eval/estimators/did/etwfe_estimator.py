"""Extended TWFE on a pilot panel: the overall ATT and one row per event time, with the
toolkit's default inference for a linear fit, or log rate ratios for counts (Poisson).

The fit is estimators/did/etwfe.py's with unit fixed effects (etwfe's `ivar`): LA panels are
often unbalanced, and unit effects keep each LA's level out of the comparison whatever cells
it has. Linear, without covariates, the estimates are linear in the outcomes, so the default
inference is chosen as for the other linear DiD estimators (inference/policy.py): the
comparison-pooled variance for few treated LAs or a regional concentration; below 20 treated
the imputation estimator's small-sample variance (the estimates are the imputation
estimator's, unless a unit or period has no untreated cell), or with covariates, never-treated
controls or such a unit CR2 with Bell-McCaffrey degrees of freedom (which cannot see a
single-LA cohort's noise: warned); CR1 above. The Poisson fit's
inference, by the same rule, is the comparison-pooled variance of its first-order (delta
method) weights on the rates for few treated LAs or a regional concentration, and below 20
treated in place of CR1 by unit with a t(G−1) reference, which it keeps above.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.estimators.did.etwfe import (
    EtwfeFit,
    etwfe,
    etwfe_effects,
    outcome_weights,
)
from pathfinder_eval.estimators.did.facts import EtwfeFacts
from pathfinder_eval.estimators.did.imputation import (
    lone_rows,
    small_sample_rows,
)
from pathfinder_eval.estimators.did.twfe_poisson import ZERO_COUNTS
from pathfinder_eval.estimators.pooled import (
    PanelLayout,
    did_decision,
    panel_layout,
    pooled_label,
    pooled_unlearnable,
)
from pathfinder_eval.inference.cluster import blank_vacant, squared_norms, t_summary, vacant_rows
from pathfinder_eval.inference.cr2 import cr2_inference
from pathfinder_eval.inference.policy import because, few_cluster_warnings
from pathfinder_eval.panel import ValidatedPanel
from pathfinder_eval.results import (
    SCALE_OF_FAMILY,
    Dropped,
    EffectEstimates,
    InferenceKey,
    InferenceUsed,
    estimates_table,
)
from pathfinder_eval.settings import EtwfeOptions

ALL_TREATED = "treated cells of a period when every unit is treated (no comparison for it)"

CR1_LABEL = "cluster-robust by unit (CR1, unit effects nested in clusters not counted), t(G−1)"


class Etwfe(EtwfeOptions):
    """Wooldridge's extended TWFE: the simple ATT over treated cells, then each event time
    (with never-treated controls, the cells before the start too, as placebo rows). Poisson
    rows are log rate ratios of counts (numerator) with offset log(denominator)."""

    def fit(
        self, panel: ValidatedPanel, outcome: str, analysis_id: str, level: float = 0.95
    ) -> EffectEstimates:
        cells, dropped_units, dropped_rows, left = self._cells(panel, outcome, analysis_id)
        control = "notyet" if self.control_group == "not_yet_treated" else "never"
        poisson = self.family == "poisson"
        x = cells[[f"x:{c}" for c in self.covariates]].to_numpy(float) if self.covariates else None
        fit = etwfe(
            cells["numerator"].to_numpy(float) if poisson else cells["y"].to_numpy(float),
            cells["unit"].to_numpy(),
            cells["period"].to_numpy(float),
            cells["cohort"].to_numpy(float),
            x,
            control=control,
            family=self.family,
            offset=np.log(cells["denominator"].to_numpy(float)) if poisson else None,
            unit_effects=True,
        )
        simple = etwfe_effects(fit, "simple", scale="link")
        event = etwfe_effects(fit, "event", scale="link", post_only=False)
        estimate = np.r_[simple.estimate, event.estimate]
        gradient = np.vstack([simple.gradient, event.gradient])
        n_treated = int(cells.loc[cells["role"] == "treated", "unit"].nunique())
        vcov, df, used, label, reason, dependence, warns = self._inference(
            panel, outcome, cells, fit, gradient, n_treated, poisson
        )
        summ = t_summary(estimate, vcov, df, level)
        units = cells["unit"].to_numpy()[fit.rows]
        rel = fit.period - fit.cohort
        scale = "log rate ratio" if poisson else "ATT"
        rows = []
        for j, term in enumerate(("simple", *event.labels)):
            e = None if j == 0 else float(term)
            sel = rel >= 0 if e is None else rel == e
            name = f"{scale} (all treated cells)" if e is None else f"event time {term}"
            rows.append(
                summ.row(
                    j,
                    name,
                    estimate[j],
                    df=float(np.atleast_1d(df)[min(j, np.size(df) - 1)]),
                    event_time=np.nan if e is None else e,
                    n_units=len(set(units[sel].tolist())),
                )
            )
        if dropped_units:
            warns.append(
                f"{len(dropped_units)} units with zero counts in every period were dropped: "
                "they carry no information under Poisson fixed effects."
            )
        if dropped_rows:
            warns.append(f"{dropped_rows} cells without a covariate value were left out.")
        warns += [
            f"{d.rows} cells were left out: {d.reason}." for d in left if d.reason == ALL_TREATED
        ]
        if used == "bjs_leave_out":  # imputation's leave-out variance: its caveats too
            warns += lone_rows(rows)
        warns += vacant_rows(rows, used)
        return EffectEstimates(
            analysis_id=analysis_id,
            outcome=outcome,
            estimator=self.name,
            inference=InferenceUsed(
                key=used,
                label=label,
                chosen_by_default=self.inference.method == "default",
                reason=reason,
                dependence=dependence,
            ),
            table=estimates_table(rows),
            level=level,
            vcov=vcov,
            scale=SCALE_OF_FAMILY[self.family],
            n_units=fit.n_clusters,
            n_treated=n_treated,
            n_obs=fit.n_obs,
            facts=EtwfeFacts(
                control=self.control_group,
                family=self.family,
                covariates=list(self.covariates),
                cells=_cells_table(fit),
                rate_ratios=_rate_ratios(rows) if poisson else None,
                dropped_all_zero_units=dropped_units,
                dropped_missing_covariate_rows=dropped_rows,
                n_params=fit.n_params,
            ),
            warnings=tuple(warns),
            dropped=left,
        )

    def _cells(
        self, panel: ValidatedPanel, outcome: str, analysis_id: str
    ) -> tuple[pd.DataFrame, list[str], int, tuple[Dropped, ...]]:
        """The outcome's cells with covariate columns `x:name`; units without a count in any
        period (Poisson) and rows without a covariate value are dropped and counted (their
        units, rows and the reason as `Dropped`)."""
        cells = panel.outcome_cells(outcome)
        where = f"analyses[{analysis_id}].options.covariates"
        x = panel.covariate_values(cells, tuple(self.covariates), where)
        for name in self.covariates:
            cells[f"x:{name}"] = x[name].to_numpy()
        complete = cells[[f"x:{c}" for c in self.covariates]].notna().all(axis=1)
        dropped_rows = int((~complete).sum())
        left = (
            (
                Dropped(
                    "cell without a covariate value",
                    dropped_rows,
                    tuple(sorted(set(cells.loc[~complete, "unit"]))),
                ),
            )
            if dropped_rows
            else ()
        )
        cells = cells[complete]
        # a period in which every unit is treated has no comparison for its level: its
        # treatment cells are collinear with the period effect (fixest drops them; the
        # imputation estimator leaves them out), so its rows are left out and counted
        treated = (cells["period"] >= cells["cohort"]).to_numpy()
        compared = pd.Series(~treated, index=cells.index).groupby(cells["period"]).transform("any")
        alone = ~compared.to_numpy()
        if alone.any() and not alone.all():
            left += (
                Dropped(
                    ALL_TREATED,
                    int(alone.sum()),
                    tuple(sorted(set(cells.loc[alone, "unit"]))),
                ),
            )
            cells = cells[~alone]
        if self.family != "poisson":
            return cells, [], dropped_rows, left
        have = [c for c in ("numerator", "denominator") if c in cells.columns]
        if len(have) < 2 or cells[have].isna().any().any() or (cells["denominator"] <= 0).any():
            raise EstimationError(
                f"outcome {outcome!r} needs a count (numerator) and a positive population "
                "(denominator) in every cell for family: poisson",
                where=f"analyses[{analysis_id}].options.family",
                fix="use family: poisson only for rate indicators with counts, or linear",
            )
        total = cells.groupby("unit")["numerator"].transform("sum")
        dropped = sorted(set(cells.loc[total == 0, "unit"]))
        if dropped:
            left += (
                Dropped(
                    ZERO_COUNTS,
                    int((total == 0).sum()),
                    tuple(dropped),
                ),
            )
        return cells[total > 0], dropped, dropped_rows, left

    def _inference(
        self,
        panel: ValidatedPanel,
        outcome: str,
        cells: pd.DataFrame,
        fit: EtwfeFit,
        gradient: np.ndarray,
        n_treated: int,
        poisson: bool,
    ):
        """(vcov, df, key, label, reason, dependence, warnings) for the rows' estimates."""
        cr1 = gradient @ fit.vcov @ gradient.T
        g = fit.n_clusters
        layout = panel_layout(panel, outcome)
        weights = outcome_weights(fit, gradient)
        if poisson:
            return self._poisson_inference(layout, cells, weights, cr1, g, n_treated, fit.noise)

        def unit_weights() -> np.ndarray:
            return layout.cell_weights(
                cells["unit"].to_numpy(), cells["period"].to_numpy(), weights
            )

        decision = did_decision(
            self.name,
            self.inference.method,
            n_treated,
            not self.covariates,
            layout,
            unit_weights,
        )
        choice = decision.choice
        if decision.variance is not None:
            pv = decision.variance
            label = pooled_label(layout, choice.reason)
            return pv.vcov, pv.df, "pooled_panel", label, choice.reason, decision.dependence, []
        bjs_rows = self.control_group == "not_yet_treated" and not self.covariates
        if "cohort_stratified" in choice.methods and bjs_rows:
            # without covariates and with not-yet-treated controls the estimates are the
            # imputation estimator's, rows and all: its small-sample variance applies
            why = choice.reason_for("cohort_stratified")
            small = small_sample_rows(
                cells["y"].to_numpy(float),
                cells["unit"].to_numpy(),
                cells["period"].to_numpy(),
                cells["cohort"].to_numpy(float),
                why,
            )
            if not small.n_dropped:  # else a unit or period has no untreated cell: ETWFE
                # still estimates its cells (through the cohort's shared effects), imputation
                # cannot, so the rows differ
                return small.vcov, small.df, small.key, small.label, why, decision.dependence, []
        if "cr2" in choice.methods:
            res = cr2_inference(
                cells["y"].to_numpy(float),
                fit.slopes,
                pd.factorize(cells["unit"], sort=True)[0],
                pd.factorize(cells["period"], sort=True)[0],
                contrasts=gradient[:, : fit.slopes.shape[1]],
            )
            label = (
                "CR2 with Bell-McCaffrey (Satterthwaite) degrees of freedom, clustered by unit"
                + because(choice.reason_for("cr2"))
            )
            vcov = res.contrast_vcov
            sizes = cells.loc[cells["role"] == "treated"].groupby("cohort")["unit"].nunique()
            small_cohorts = int((sizes < 3).sum())
            warns = (
                [
                    f"{small_cohorts} cohort(s) have fewer than 3 treated units: CR2 cannot see "
                    "the noise a cohort × period effect absorbs, so these intervals are too "
                    "narrow (size 82% with single-LA cohorts in benchmarks/did_validity.py)."
                ]
                if small_cohorts
                else []
            )
            why = choice.reason_for("cr2")
            return vcov, res.df, "cr2", label, why, decision.dependence, warns
        key: InferenceKey = "cr1"
        vcov, df = blank_vacant(
            cr1, float(g - 1), squared_norms(weights), fit.noise, float(np.abs(cells["y"]).max())
        )
        return (
            vcov,
            df,
            key,
            CR1_LABEL,
            "",
            decision.dependence,
            list(few_cluster_warnings(n_treated, g)),
        )

    def _poisson_inference(
        self,
        layout: PanelLayout,
        cells: pd.DataFrame,
        count_weights: np.ndarray,
        cr1: np.ndarray,
        g: int,
        n_treated: int,
        noise: float,
    ):
        """The Poisson fit's inference: the comparison-pooled variance of its first-order
        weights, put on the outcome's rates (a count is the rate × denominator / the scale),
        when the linear DiD rule asks for it or, below 20 treated, in place of CR1, which
        over-rejects with few treated LAs; CR1 by unit otherwise (`noise`: the counts' mean
        squared residual)."""
        method = self.inference.method
        if method in ("cr2", "cohort_stratified"):
            raise EstimationError(
                f"inference {method} is not available for the Poisson fit",
                where="inference.method",
                fix="use default, pooled or cluster_robust with family: poisson",
            )
        y, count = cells["y"].to_numpy(float), cells["numerator"].to_numpy(float)
        scale = float(np.median((y * cells["denominator"] / count)[count > 0]))
        per_rate = cells["denominator"].to_numpy(float) / scale  # counts per unit of the rate
        weights = count_weights * per_rate[None, :]
        unit, period = cells["unit"].to_numpy(), cells["period"].to_numpy()
        decision = did_decision(
            "etwfe_poisson",
            method,
            n_treated,
            not self.covariates,
            layout,
            lambda: layout.cell_weights(unit, period, weights),
        )
        choice = decision.choice
        if decision.variance is not None:
            pv = decision.variance
            label = pooled_label(layout, choice.reason).replace(
                "comparison-pooled variance:",
                "comparison-pooled variance of the Poisson fit's first-order weights on the rates:",
                1,
            )
            return pv.vcov, pv.df, "pooled_panel", label, choice.reason, decision.dependence, []
        warns = list(few_cluster_warnings(n_treated, g))
        if choice.method == "pooled":
            warns.append(pooled_unlearnable("CR1"))
        label = "Poisson QMLE, " + CR1_LABEL
        vcov, df = blank_vacant(
            cr1, float(g - 1), squared_norms(count_weights), noise, float(count.max())
        )
        return vcov, df, "cr1", label, "", decision.dependence, warns


def _cells_table(fit: EtwfeFit) -> list[dict[str, float]]:
    out = []
    for j, name in enumerate(fit.names):
        if name.startswith("D[") and "·" not in name:
            g, t = name[2:-1].split(",")
            out.append({"cohort": float(g), "period": float(t), "estimate": float(fit.coef[j])})
    return out


def _rate_ratios(rows: list[dict]) -> list[dict]:
    return [
        {
            "term": r["term"],
            "rate_ratio": float(np.exp(r["estimate"])),
            "ci": [float(np.exp(r["ci_lower"])), float(np.exp(r["ci_upper"]))],
        }
        for r in rows
    ]
