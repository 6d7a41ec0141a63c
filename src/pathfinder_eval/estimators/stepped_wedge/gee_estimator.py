"""The stepped-wedge GEE estimator on the panel: cells by family, the fit (gee.py), the
standard error the inference asks for with a t(I − p) reference, and its facts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.estimators.stepped_wedge.cluster_period_gee import fit_cluster_period_gee
from pathfinder_eval.estimators.stepped_wedge.design import (
    Contrast,
    TrialArrays,
    check_design,
    contrast_weights,
    design_summary,
    effect_contrasts,
    event_counts,
    never_started,
    refuse_individual_columns,
    trial_arrays,
    trial_size,
    wald_row,
)
from pathfinder_eval.estimators.stepped_wedge.facts import GeeFacts
from pathfinder_eval.estimators.stepped_wedge.gee import (
    ALPHA_SANDWICHES,
    LINK,
    MAX_ITER,
    TOL,
    VARIANCES,
    GeeFit,
    fit_gee,
    gee_data,
)
from pathfinder_eval.estimators.stepped_wedge.lmm import FixedEffects, fixed_effects
from pathfinder_eval.inference.policy import fixed_default
from pathfinder_eval.panel import ValidatedPanel
from pathfinder_eval.results import (
    SCALE_OF_FAMILY,
    EffectEstimates,
    InferenceKey,
    InferenceUsed,
    estimates_table,
)
from pathfinder_eval.settings import GeeFamily as Family
from pathfinder_eval.settings import SteppedWedgeGeeOptions

SE_OF_METHOD = {
    "kauermann_carroll": "BC1",
    "model_based": "MB",
    "sandwich": "BC0",
    "mancl_derouen": "BC2",
    "fay_graubard": "BC3",
    "cr2": "CR2",
}


KEY_OF_METHOD: dict[str, InferenceKey] = {
    "kauermann_carroll": "gee_kauermann_carroll",
    "model_based": "gee_model_based",
    "sandwich": "gee_sandwich",
    "mancl_derouen": "gee_mancl_derouen",
    "fay_graubard": "gee_fay_graubard",
    "cr2": "gee_cr2",
}


SE_LABEL = {
    "MB": "model-based standard error",
    "BC0": "robust sandwich standard error (BC0, Liang & Zeger 1986)",
    "BC1": "Kauermann-Carroll bias-corrected sandwich (BC1)",
    "BC2": "Mancl-DeRouen bias-corrected sandwich (BC2)",
    "BC3": "Fay-Graubard bias-corrected sandwich (BC3)",
    "CR2": "bias-reduced linearisation sandwich (CR2, as clubSandwich)",
}


CORRELATION_LABEL = {
    "independence": "independence",
    "exchangeable": "exchangeable",
    "nested_exchangeable": "nested exchangeable (within-period α0, between-period α1)",
    "exponential_decay": "exponential decay (α0·ρ^|j−l|)",
}


EQUATIONS_LABEL = {
    "individual": "",
    "cluster_period": " on cluster-period proportions (Li et al. 2022, geeCRT's cpgeeSWD)",
}


SCALE = {"gaussian": "", "binomial": ", log odds ratio", "poisson": ", log rate ratio"}


DF_RULE = "t with I − p degrees of freedom (I clusters, p mean parameters incl. period effects)"


CR2_DF_RULE = (
    "t with Satterthwaite degrees of freedom of the CR2 variance under the working model, per "
    "contrast (clubSandwich's coef_test)"
)


class SteppedWedgeGEE(SteppedWedgeGeeOptions):
    """Population-averaged model for a stepped-wedge trial by GEE on cell summaries, with the
    correlation parameters by MAEE (geeCRT's geemaee). `family`: gaussian (identity; needs
    ssw), binomial (logit; events from `numerator`, else y × denominator) or poisson (log: on
    individual records each person's count of events; on counts over the denominator's
    population, individuals counting 0 or 1); `correlation`: the
    working correlation; `correlation_method`: maee | gee | moment (geepack's estimator);
    `equations`: individual (correlation equations on pairs of individuals, geemaee) or
    cluster_period (on the cells' proportions, cpgeeSWD; binomial only).

    Inference: every SE uses a t reference with I − p df. "default" is the Kauermann-Carroll
    corrected sandwich, which kept the nominal size with t(I − p) in stepped-wedge simulations
    with as few as 8–12 clusters (Li, Turner & Preisser 2018, Biometrics 74:1450–1458; Ford &
    Westgate 2017 found MD conservative there; benchmarks/sw_binary_size.py finds it
    conservative below 15 clusters, size 1.7% with 10 and 4.2% with 15, while the uncorrected
    sandwich with z rejects 10–21%; sw_count_size.py, on counts per person, 1.1% and 4.8%);
    "model_based", "sandwich" (BC0),
    "kauermann_carroll" (BC1), "mancl_derouen" (BC2), "fay_graubard" (BC3), "cr2" (clubSandwich's
    bias-reduced linearisation with the working covariance as target and Satterthwaite df per
    contrast instead of I − p)."""

    def fit(
        self, panel: ValidatedPanel, outcome: str, analysis_id: str, level: float = 0.95
    ) -> EffectEstimates:
        refuse_individual_columns(panel.spec.data.columns, "stepped_wedge_gee")
        trial = trial_arrays(
            _family_cells(panel.outcome_cells(outcome), self.family), panel.periods
        )
        fe = fixed_effects(trial.cells.observed, trial.start, self.effect)
        check_design(trial, fe)
        n_clusters, p = len(trial.clusters), fe.X.shape[2]
        if n_clusters <= p:
            raise EstimationError(
                f"{n_clusters} clusters for {p} mean parameters leave no degrees of freedom "
                "for the t reference (I − p)",
                where="data",
                fix="use fewer periods or more clusters",
            )
        if self.equations == "cluster_period":
            fit = fit_cluster_period_gee(
                trial.cells, fe.X, self.correlation, self.correlation_method
            )
        else:
            fit = fit_gee(
                gee_data(trial.cells, fe.X), self.family, self.correlation, self.correlation_method
            )
        choice = fixed_default(self.inference.method, "kauermann_carroll")
        kind = SE_OF_METHOD[choice.method]
        contrasts = {
            term + SCALE[self.family]: c
            for term, c in effect_contrasts(fe, self.effect, self.tate_window).items()
        }
        rows = [
            _row(term, c, fit, kind, _df(fit, kind, c, n_clusters - p), level)
            for term, c in contrasts.items()
        ]
        reference = (
            "t reference with Satterthwaite df"
            if kind == "CR2"
            else f"t({n_clusters - p}) reference"
        )
        label = (
            f"GEE ({self.family}/{LINK[self.family]}), working correlation "
            f"{CORRELATION_LABEL[self.correlation]} by {self.correlation_method.upper()}"
            f"{EQUATIONS_LABEL[self.equations]}; "
            f"{SE_LABEL[kind]}, {reference}"
        )
        effect = list(fe.effect)
        return EffectEstimates(
            analysis_id=analysis_id,
            outcome=outcome,
            estimator=self.name,
            inference=InferenceUsed(
                key=KEY_OF_METHOD[choice.method],
                label=label,
                chosen_by_default=choice.chosen_by_default,
            ),
            table=estimates_table(rows),
            level=level,
            vcov=fit.vcov[kind][np.ix_(effect, effect)],
            scale=SCALE_OF_FAMILY[self.family],
            n_units=n_clusters,
            n_treated=int((trial.start < len(trial.periods)).sum()),
            n_obs=int(trial.cells.observed.sum()),
            facts=gee_facts(fit, trial, fe, contrasts, panel, self, kind),
            warnings=tuple(never_started(trial)),
        )


def _family_cells(cells: pd.DataFrame, family: Family) -> pd.DataFrame:
    """The panel cells for the family: poisson on individual records as they are (each
    person's count: the records' own mean and within-cell sum of squares, their sums whole and
    at least 0); otherwise a copy with y = event proportion and ssw of 0/1 individuals for
    binomial, and for poisson counts over a population (events: `numerator`, else y ×
    denominator, whole numbers)."""
    if family == "gaussian":
        return cells
    if family == "poisson" and "ssw" in cells and bool(cells["ssw"].notna().all()):
        event_counts(cells, whole_denominator=False, capped=False)
        return cells
    events, den = event_counts(cells, whole_denominator=False, capped=True)
    out = cells.copy()
    e, n = events.to_numpy(float), den.to_numpy(float)
    out["y"] = e / n
    out["ssw"] = e - e**2 / n
    return out


def _df(fit: GeeFit, kind: str, contrast: Contrast, residual_df: int) -> float:
    """The t reference's degrees of freedom: I − p, or CR2's Satterthwaite df."""
    if kind == "CR2":
        return fit.cr2.satterthwaite_df(contrast.vector)
    return float(residual_df)


def _row(
    term: str, contrast: Contrast, fit: GeeFit, kind: str, df: float, level: float
) -> dict[str, Any]:
    lvec = contrast.vector
    p = len(fit.beta)
    est = float(lvec @ fit.beta)
    se = float(np.sqrt(lvec @ fit.vcov[kind][:p, :p] @ lvec))
    return wald_row(term, est, se, df, level, contrast)


def gee_facts(
    fit: GeeFit,
    trial: TrialArrays,
    fe: FixedEffects,
    contrasts: dict[str, Contrast],
    panel: ValidatedPanel,
    est: SteppedWedgeGEE,
    kind: str,
) -> GeeFacts:
    """The fit's facts: correlation parameters with their sandwich SEs, dispersion,
    convergence, every SE type per term side by side, the df rule and the design summary."""
    p = len(fit.beta)
    alpha_se = {
        name: {
            k: float(np.sqrt(fit.vcov[k][p + j, p + j])) if fit.alpha_se_available else None
            for k in ALPHA_SANDWICHES
        }
        for j, name in enumerate(fit.alpha_names)
    }
    return GeeFacts(
        family=est.family,
        link=LINK[est.family],
        working_correlation=est.correlation,
        correlation_method=est.correlation_method,
        equations=est.equations,
        correlation_parameters=dict(zip(fit.alpha_names, fit.alpha.tolist(), strict=True)),
        correlation_parameter_se=alpha_se,
        correlation_se_note=None
        if fit.alpha_se_available
        else "not reported: geeCRT's correlation sandwich needs individual outcomes "
        "(Σ 1/residual per cell) that cell summaries of continuous outcomes or of counts per "
        "person do not determine",
        dispersion=fit.phi,
        convergence={
            "converged": True,
            "iterations": fit.iterations,
            "last_step": fit.max_step,
            "tolerance": TOL,
            "max_iterations": MAX_ITER,
            "correlation_shrink_steps": fit.shrinks,
        },
        standard_errors={
            term: {k: float(np.sqrt(c.vector @ fit.vcov[k][:p, :p] @ c.vector)) for k in VARIANCES}
            for term, c in contrasts.items()
        },
        se_used=kind,
        df_rule=CR2_DF_RULE if kind == "CR2" else DF_RULE,
        design=design_summary(trial, panel) | trial_size(trial, panel),
        contrasts=contrast_weights(fe, contrasts),
    )
