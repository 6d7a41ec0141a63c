"""The stepped-wedge GLMM estimator on the panel: event counts from the cells, the fit
(glmm.py), Wald rows with a t(I − 2) or normal reference, and its facts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.estimators.stepped_wedge.design import (
    MODEL_LABEL,
    Contrast,
    TrialArrays,
    check_design,
    contrast_weights,
    design_summary,
    effect_contrasts,
    event_counts,
    never_started,
    period_grid,
    refuse_individual_columns,
    wald_row,
)
from pathfinder_eval.estimators.stepped_wedge.facts import GlmmFacts
from pathfinder_eval.estimators.stepped_wedge.glmm import (
    CountCells,
    FitError,
    GlmmFit,
    correlations,
    fit_glmm,
)
from pathfinder_eval.estimators.stepped_wedge.lmm import CellSummaries, FixedEffects, fixed_effects
from pathfinder_eval.inference.policy import fixed_default
from pathfinder_eval.panel import ValidatedPanel
from pathfinder_eval.results import SCALE_OF_FAMILY, EffectEstimates, InferenceUsed, estimates_table
from pathfinder_eval.settings import GlmmFamily as Family
from pathfinder_eval.settings import Shape, SteppedWedgeGlmmOptions

SCALE = {"binomial": ("log odds ratio", "odds_ratio"), "poisson": ("log rate ratio", "rate_ratio")}


FAMILY_LABEL = {"binomial": "binomial GLMM, logit link", "poisson": "Poisson GLMM, log link"}


# Default reference: t with I − 2 df, the between-cluster df of the between-within rule for a
# cluster-randomised comparison (Li & Redden 2015, BMC Med. Res. Methodol. 15:38).
DF_RULE = "clusters minus 2 (between-within rule; Li & Redden 2015)"


class SteppedWedgeGLMM(SteppedWedgeGlmmOptions):
    """Generalised linear mixed model for a stepped-wedge trial on cluster-period counts:
    `family` binomial (logit; events out of trials) or poisson (log; events in a population,
    offset log n); `model` hussey_hughes | nested_exchangeable | exponential_decay |
    cluster_plus_decay; `effect`
    immediate or exposure_time (headline: TATE over exposure times 1..`tate_window`).
    Estimates are log odds ratios or log rate ratios (the ratios are in the diagnostics).

    `quadrature_points`: 1 = Laplace; K > 1 adaptive Gauss-Hermite with K points
    (hussey_hughes only, as glmer's nAGQ). Inference: Wald with the model-based covariance
    (Hessian of the deviance in (θ, β), as lme4); "default" uses a t reference with I − 2 df
    (DF_RULE), "model_based" the normal reference."""

    def fit(
        self, panel: ValidatedPanel, outcome: str, analysis_id: str, level: float = 0.95
    ) -> EffectEstimates:
        refuse_individual_columns(panel.spec.data.columns, "stepped_wedge_glmm")
        counts = count_arrays(panel.outcome_cells(outcome), panel.periods, self.family)
        trial = counts.trial
        fe = fixed_effects(trial.cells.observed, trial.start, self.effect)
        check_design(trial, fe)
        contrasts = effect_contrasts(fe, self.effect, self.tate_window)
        try:
            fit = fit_glmm(counts.cells, fe.X, self.model, self.family, self.quadrature_points)
        except FitError as exc:
            raise EstimationError(
                f"the {self.family} {self.model} GLMM could not be fitted ({exc})",
                where="options.model",
                fix="try a simpler random-effects structure (hussey_hughes), or check for "
                "cells with all or no events throughout",
            ) from exc
        if not fit.converged:
            raise EstimationError(
                f"the maximum-likelihood fit of the {self.family} {self.model} GLMM did not "
                f"converge (largest projected gradient {np.abs(fit.gradient).max():.2g}, "
                f"Newton decrement {fit.decrement:.2g})",
                where="options.model",
                fix="try a simpler random-effects structure (hussey_hughes) or check the data",
            )
        choice = fixed_default(self.inference.method, "between_within_t")
        t_reference = choice.method == "between_within_t"
        df = float(len(trial.clusters) - 2) if t_reference else np.inf
        rows = wald_rows(fit, contrasts, df, level, SCALE[self.family][0])
        warns = never_started(trial)
        if fit.boundary:
            warns.append(
                f"Variance parameter(s) {', '.join(fit.boundary)} estimated on the boundary "
                "of the parameter space (e.g. a zero variance): the fit is singular."
            )
        return EffectEstimates(
            analysis_id=analysis_id,
            outcome=outcome,
            estimator=self.name,
            inference=InferenceUsed(
                key="glmm_t" if t_reference else "glmm_normal",
                label=f"{FAMILY_LABEL[self.family]}, {MODEL_LABEL[self.model]}; "
                f"{_method_label(fit, df)}",
                chosen_by_default=choice.chosen_by_default,
            ),
            table=estimates_table(rows),
            level=level,
            vcov=fit.vcov[np.ix_(fe.effect, fe.effect)],
            scale=SCALE_OF_FAMILY[self.family],
            n_units=len(trial.clusters),
            n_treated=int((trial.start < len(trial.periods)).sum()),
            n_obs=int(trial.cells.observed.sum()),
            facts=glmm_facts(fit, counts, fe, panel, self.effect, contrasts, rows, df, level),
            warnings=tuple(warns),
        )


def _method_label(fit: GlmmFit, df: float) -> str:
    how = (
        "Laplace approximation"
        if fit.points == 1
        else f"adaptive Gauss-Hermite quadrature ({fit.points} points)"
    )
    ref = f"t reference, {DF_RULE}" if np.isfinite(df) else "normal reference"
    return f"maximum likelihood ({how}); Wald, model-based SE (Hessian in θ and β), {ref}"


@dataclass(frozen=True)
class TrialCounts:
    """A trial's counts on the clusters × periods grid: `cells` for the GLMM and `trial`
    (cell proportions as means, sizes, start periods) for the shared design checks."""

    cells: CountCells
    trial: TrialArrays


def count_arrays(cells: pd.DataFrame, periods: tuple[int, ...], family: Family) -> TrialCounts:
    """Events and trials (or population) of one outcome from panel cells: events from the
    `numerator` column where present, else y × denominator, which must be whole."""
    periods = period_grid(periods)
    events, den = event_counts(
        cells, whole_denominator=family == "binomial", capped=family == "binomial"
    )
    clusters = tuple(sorted(set(cells["unit"])))
    row = pd.Index(clusters).get_indexer(cells["unit"])
    col = pd.Index(periods).get_indexer(cells["period"])
    shape = (len(clusters), len(periods))
    y, n = np.zeros(shape), np.zeros(shape)
    y[row, col] = events.to_numpy(float)
    n[row, col] = den.to_numpy(float)
    observed = n > 0
    cohort = cells.groupby("unit")["cohort"].first().reindex(list(clusters)).to_numpy(float)
    start = np.array(
        [len(periods) if np.isnan(c) else int(np.searchsorted(periods, c)) for c in cohort]
    )
    mean = np.divide(y, n, out=np.zeros(shape), where=observed)
    summaries = CellSummaries(mean, n, np.zeros(shape), observed)
    return TrialCounts(
        CountCells(y, n, observed), TrialArrays(summaries, start, clusters, tuple(periods))
    )


def wald_rows(
    fit: GlmmFit,
    contrasts: dict[str, Contrast],
    df: float,
    level: float,
    scale: str,
) -> list[dict[str, Any]]:
    """One row per contrast on the log scale (log odds or rate ratio): Wald statistic, t(df)
    or normal reference."""
    rows = []
    for term, contrast in contrasts.items():
        lvec = contrast.vector
        est = float(lvec @ fit.beta)
        se = float(np.sqrt(lvec @ fit.vcov @ lvec))
        rows.append(wald_row(f"{term}, {scale}", est, se, df, level, contrast))
    return rows


def glmm_facts(
    fit: GlmmFit,
    counts: TrialCounts,
    fe: FixedEffects,
    panel: ValidatedPanel,
    shape: Shape,
    contrasts: dict[str, Contrast],
    rows: list[dict[str, Any]],
    df: float,
    level: float,
) -> GlmmFacts:
    """The fit's facts: model, estimation, variance components, latent ICC/CAC, likelihood,
    convergence, the ratios with their intervals, and the design summary."""
    corr = correlations(fit)
    return GlmmFacts(
        model=fit.structure,
        family=fit.family,
        link="logit" if fit.family == "binomial" else "log (offset log n)",
        effect_shape=shape,
        period_effects="categorical",
        estimation="maximum likelihood, "
        + (
            "Laplace approximation"
            if fit.points == 1
            else f"adaptive Gauss-Hermite quadrature ({fit.points} points)"
        ),
        quadrature_points=fit.points,
        vcov_method="fixed-effect block of 2H⁻¹, H the Hessian of the deviance in (θ, β) "
        "(lme4 use.hessian = TRUE)",
        df_method=DF_RULE if np.isfinite(df) else "normal reference",
        df=df,
        variance_components=fit.components,
        icc_latent=corr.icc,
        icc_scale="latent (logistic residual variance π²/3)"
        if fit.family == "binomial"
        else "not defined for the log link",
        cac=corr.cac,
        loglik=fit.loglik,
        deviance=fit.deviance,
        convergence={
            "converged": fit.converged,
            "max_abs_gradient": float(np.abs(fit.gradient).max()),
            "newton_decrement": fit.decrement,
            "starts": fit.starts,
            "starts_at_optimum": fit.agreeing,
            "boundary": list(fit.boundary),
        },
        ratio_key=SCALE[fit.family][1],
        ratios={
            row["term"]: {
                "estimate": float(np.exp(row["estimate"])),
                "ci": [float(np.exp(row["ci_lower"])), float(np.exp(row["ci_upper"]))],
                "level": level,
            }
            for row in rows
        },
        design=design_summary(counts.trial, panel)
        | {
            "events": float(counts.cells.events.sum()),
            "trials" if fit.family == "binomial" else "population": float(
                counts.cells.trials.sum()
            ),
        },
        contrasts=contrast_weights(fe, contrasts),
    )
