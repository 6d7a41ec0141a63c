"""Stepped-wedge cluster randomised trials: linear mixed model with categorical period effects,
fitted by exact REML on cluster-period summaries (estimators/sw_lmm.py), with Kenward-Roger,
Satterthwaite, model-based or randomisation inference.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.estimators.stepped_wedge.cell_sandwich import (
    Cr2,
    cell_basis,
    cr2_on_cells,
    mancl_derouen_on_cells,
)
from pathfinder_eval.estimators.stepped_wedge.design import (
    MODEL_LABEL,
    Contrast,
    TrialArrays,
    check_design,
    contrast_weights,
    design_summary,
    effect_contrasts,
    intervention_cells,
    never_started,
    trial_arrays,
    trial_size,
    wald_row,
)
from pathfinder_eval.estimators.stepped_wedge.facts import LmmFacts
from pathfinder_eval.estimators.stepped_wedge.lmm import (
    CellSummaries,
    FixedEffects,
    RemlFit,
    SmallSample,
    correlations,
    fit_reml,
    fixed_effects,
    kenward_roger_df,
    kenward_roger_f,
    lmm_cell_covariance,
    satterthwaite_df,
    small_sample,
)
from pathfinder_eval.estimators.stepped_wedge.lmm_records import fit_records
from pathfinder_eval.estimators.stepped_wedge.randomisation import (
    RandomisationResult,
    randomisation_test,
)
from pathfinder_eval.inference.cluster import wald_test
from pathfinder_eval.inference.policy import because, stepped_wedge_lmm
from pathfinder_eval.panel import ValidatedPanel
from pathfinder_eval.results import EffectEstimates, InferenceKey, InferenceUsed, estimates_table
from pathfinder_eval.settings import Shape, SteppedWedgeOptions

STATISTIC_LABEL = {
    "model_based": "statistic: GLS effect estimate with null-model REML variance parameters",
    "npwp": "statistic: non-parametric within-period contrast of cluster means with "
    "inverse-variance period weights (NPWP, Thompson et al. 2018)",
    "within_period": "statistic: within-period contrast of cluster means with period weights "
    "(1/n₁ + 1/n₀)⁻¹ (swpermute's default weightperiod(N))",
}


IMMEDIATE_BESIDE = "Intervention effect if immediate and constant (immediate-effect model)"


DEFAULT_SHAPE_REASON = (
    "the estimand is the time-averaged effect over exposure times (TATE; Kenny et al. 2022, "
    "Stat. Med. 41:4311–4339), because interventions such as new family help teams build up "
    "after they start: an immediate-effect model's estimate of an effect that ramps up is "
    "biased, and in simulation its interval covered the time-averaged effect only 49–85% of "
    "the time (benchmarks/sw_coverage.py --processes); the immediate-effect model's estimate "
    "is shown beside it, with a test that the effect is the same at every exposure time"
)


DF_LABEL = {
    "kenward_roger": "Kenward-Roger adjusted standard error and degrees of freedom",
    "mancl_derouen": "Mancl-DeRouen cluster-robust standard error (clubSandwich's CR3), "
    "t(I − 1) reference",
    "cr2": "bias-reduced linearisation cluster-robust standard error (CR2, as clubSandwich), "
    "Satterthwaite degrees of freedom",
    "satterthwaite": "model-based standard error, Satterthwaite degrees of freedom",
    "model_based": "model-based standard error, normal reference",
}


# inference method → the InferenceUsed key (report/validity.py)
METHOD_KEY: dict[str, InferenceKey] = {
    "kenward_roger": "kenward_roger",
    "satterthwaite": "satterthwaite",
    "model_based": "lmm_normal",
    "randomisation": "allocation_randomisation",
    "mancl_derouen": "lmm_mancl_derouen",
    "cr2": "lmm_cr2",
}


class SteppedWedge(SteppedWedgeOptions):
    """Linear mixed model for a stepped-wedge trial, on cell summaries (mean, n, within-cell sum
    of squares). `model`: hussey_hughes | nested_exchangeable | exponential_decay |
    cluster_plus_decay (τ² + γ²·r^|j−l|) | random_slope (nested exchangeable plus each
    cluster's own intervention effect, correlated with its intercept); `effect`: immediate (one
    effect), exposure_time (one effect per period since the start) or spline (a natural cubic
    spline in exposure time with `exposure_knots` knots); for the last two the headline is the
    time-averaged effect TATE over exposure times 1..`tate_window` (default all), followed by
    the point effects. `period_effects`: categorical (default), linear or spline
    (`period_knots` knots).

    Inference: "default" is inference/policy.stepped_wedge_lmm: the Mancl-DeRouen
    cluster-robust variance with t(I − 1) on cell summaries, Kenward-Roger on individual
    records (with a warning); "kenward_roger" uses the adjusted
    covariance and df; "satterthwaite" the model-based SE with Satterthwaite df;
    "model_based" a normal reference; "mancl_derouen" and "cr2" the cluster-robust variances
    (`robust_variance`: t(I − 1) and Satterthwaite df); "randomisation" re-randomises clusters
    to sequences (inference/randomisation.py) with the `randomisation_statistic` (model_based:
    the GLS effect with null-model variance parameters; npwp: Thompson et al.'s NPWP;
    within_period: the same contrast weighted by cluster counts); p-value and interval by test
    inversion, no SE."""

    def fit(
        self, panel: ValidatedPanel, outcome: str, analysis_id: str, level: float = 0.95
    ) -> EffectEstimates:
        cells = panel.outcome_cells(outcome)
        trial = trial_arrays(cells, panel.periods)
        fe = fixed_effects(
            trial.cells.observed,
            trial.start,
            self.effect,
            period_effects=self.period_effects,
            exposure_knots=self.exposure_knots,
            period_knots=self.period_knots,
        )
        check_design(trial, fe)
        contrasts = effect_contrasts(fe, self.effect, self.tate_window)
        people = individual_records(panel, outcome, trial)
        choice = stepped_wedge_lmm(self.inference.method, clusters=len(trial.clusters))
        method = choice.method
        if method == "randomisation" and self.model == "random_slope":
            raise EstimationError(
                "randomisation inference needs a null covariance that does not move with the "
                "allocation; the random_slope model's does",
                where="inference.method",
                fix="use kenward_roger or satterthwaite with random_slope",
            )
        extra: dict[str, Any] = {}
        if people is None:
            fit = fit_reml(trial.cells, fe.X, self.model, slope=_slope(trial, self.model))
            if not fit.converged:
                raise EstimationError(
                    f"the REML optimiser did not converge for the {self.model} model (largest "
                    f"projected gradient {np.abs(fit.gradient).max():.2g})",
                    where="options.model",
                    fix="try a simpler covariance structure (hussey_hughes) or check the data",
                )
            ss = small_sample(fit, trial.cells, fe.X)
        else:
            if method == "randomisation":
                raise EstimationError(
                    "randomisation inference works on cell summaries, not on records with "
                    "individual covariates or a cohort",
                    where="inference.method",
                    fix="use kenward_roger, or drop data.columns.covariates/individual",
                )
            x = np.column_stack([fe.X[people.cluster, people.period], people.covariates])
            res = fit_records(
                people.y,
                x,
                people.cluster,
                people.period,
                people.individual,
                self.model,
                robust=method == "mancl_derouen",
            )
            fit, ss, records_md = res.fit, res.small, res.mancl_derouen
            pad = people.covariates.shape[1]
            contrasts = {
                k: Contrast(np.concatenate([c.vector, np.zeros(pad)]), c.event_time)
                for k, c in contrasts.items()
            }
            extra["estimation"] = "REML (exact, on individual records)"
        if method == "randomisation":
            term, first = next(iter(contrasts.items()))
            contrasts = {term: first}
            rnd = randomisation_test(
                trial.cells,
                trial.start,
                fe,
                self.effect,
                first.vector,
                self.model,
                self.randomisation_statistic,
                self.inference.draws,
                self.seed,
                level,
            )
            rows = [randomisation_row(term, rnd)]
            extra["randomisation"] = {
                "statistic": STATISTIC_LABEL[rnd.statistic],
                "estimate": rnd.estimate,
                "p_value": rnd.p_value,
                "ci": [rnd.ci_lower, rnd.ci_upper],
                "allocations": rnd.allocations,
                "exact": rnd.exact,
                "possible_allocations": rnd.total,
                "seed": None if rnd.exact else self.seed,
            }
        else:
            robust = None
            if method == "mancl_derouen" and people is not None:
                robust = RobustVariance(records_md, None, len(trial.clusters))
            elif method in ("mancl_derouen", "cr2"):
                if people is not None:
                    raise EstimationError(
                        "CR2 on the LMM works on cell summaries, not on records with individual "
                        "covariates or a cohort",
                        where="inference.method",
                        fix="use mancl_derouen (the default) or kenward_roger, or drop "
                        "data.columns.covariates/individual",
                    )
                robust = robust_variance(fit, trial.cells, fe.X, method)
            rows = effect_rows(fit, ss, contrasts, method, level, robust)
            if people is not None:
                extra["individual_level"] = people.summary(fit, ss, robust)
            if self.effect == "exposure_time":
                if people is None:
                    extra["immediate_effect"] = self._immediate_row(trial, method, level)
                constancy = constancy_test(fit, ss, fe, method, robust)
                if constancy is not None:
                    extra["effect_constancy"] = constancy
        if "effect" not in self.model_fields_set:
            extra["effect_shape_choice"] = DEFAULT_SHAPE_REASON
        n_treated = int((trial.start < len(trial.periods)).sum())
        warns = never_started(trial) + ([choice.warning] if choice.warning else [])
        if fit.boundary:
            warns.append(
                f"Variance parameter(s) {', '.join(fit.boundary)} estimated on the boundary "
                "(e.g. a zero variance): the fit is singular and small-sample corrections are "
                "less reliable."
            )
        return EffectEstimates(
            analysis_id=analysis_id,
            outcome=outcome,
            estimator=self.name,
            inference=InferenceUsed(
                key=METHOD_KEY[method],
                label=f"{MODEL_LABEL[self.model]}; {self._inference_label(method)}"
                + because(choice.reason),
                chosen_by_default=choice.chosen_by_default,
                reason=choice.reason,
            ),
            table=estimates_table(rows),
            level=level,
            vcov=fit.vcov[np.ix_(fe.effect, fe.effect)],
            n_units=len(trial.clusters),
            n_treated=n_treated,
            n_obs=int(trial.cells.observed.sum()),
            facts=replace(
                lmm_facts(fit, ss, trial, fe, method, panel, self.effect, contrasts, level),
                **extra,
            ),
            warnings=tuple(warns),
        )

    def _immediate_row(self, trial: TrialArrays, method: str, level: float) -> dict[str, Any]:
        """The immediate-effect model's estimate, beside the time-averaged effect: the same
        covariance model and inference with one effect for every exposure time (a table row's
        fields)."""
        fe = fixed_effects(
            trial.cells.observed, trial.start, "immediate", period_effects=self.period_effects,
            period_knots=self.period_knots,
        )  # fmt: skip
        fit = fit_reml(trial.cells, fe.X, self.model, slope=_slope(trial, self.model))
        ss = small_sample(fit, trial.cells, fe.X)
        robust = (
            robust_variance(fit, trial.cells, fe.X, method)
            if method in ("mancl_derouen", "cr2")
            else None
        )
        contrast = next(iter(effect_contrasts(fe, "immediate", None).values()))
        row = effect_rows(fit, ss, {IMMEDIATE_BESIDE: contrast}, method, level, robust)[0]
        return {k: float(v) if isinstance(v, float | np.floating) else v for k, v in row.items()}

    def _inference_label(self, method: str) -> str:
        if method != "randomisation":
            return DF_LABEL[method]
        return (
            f"randomisation test re-allocating clusters to sequences "
            f"({STATISTIC_LABEL[self.randomisation_statistic]}; up to "
            f"{self.inference.draws:,} allocations, exact when that covers them all); "
            "p-value and interval by test inversion"
        )


@dataclass(frozen=True)
class IndividualRecords:
    """The records of one outcome in the analysed cells, for the individual-level path
    (estimators/sw_lmm_records.py). y: (N,); cluster, period: (N,) indices on the trial grid;
    covariates: (N, q) with `names`; individual: (N,) person codes (closed cohort) or None."""

    y: np.ndarray
    cluster: np.ndarray
    period: np.ndarray
    covariates: np.ndarray
    names: tuple[str, ...]
    individual: np.ndarray | None

    def summary(
        self, fit: RemlFit, ss: SmallSample, robust: RobustVariance | None = None
    ) -> dict[str, Any]:
        """Covariate coefficients (Kenward-Roger SE and df, or the analysis's cluster-robust
        variance and its df when it has one) and the record counts."""
        q = len(self.names)
        p = len(fit.beta)
        rows = {}
        for j, name in enumerate(self.names):
            lvec = np.zeros(p)
            lvec[p - q + j] = 1.0
            k = p - q + j
            rows[name] = {
                "estimate": float(fit.beta[k]),
                "std_error": float(np.sqrt((ss.vcov_kr if robust is None else robust.vcov)[k, k])),
                "df": kenward_roger_df(ss, fit.vcov, lvec) if robust is None else robust.df(lvec),
            }
        out: dict[str, Any] = {"covariates": rows, "records": len(self.y)}
        if self.individual is not None:
            out["individuals"] = len(np.unique(self.individual))
        return out


def individual_records(
    panel: ValidatedPanel, outcome: str, trial: TrialArrays
) -> IndividualRecords | None:
    """The outcome's records in the trial's observed cells, when the data kept records (a
    design naming individual covariates or a cohort id); None otherwise."""
    raw = panel.data.records
    if raw is None:
        return None
    cols = panel.spec.data.columns
    ci = pd.Index(trial.clusters).get_indexer(raw["unit"])
    pi = pd.Index(trial.periods).get_indexer(raw["period"])
    keep = (ci >= 0) & (pi >= 0) & raw[outcome].notna().to_numpy()
    keep[keep] = trial.cells.observed[ci[keep], pi[keep]]
    part = raw[keep]
    person = None
    if cols.individual:
        person = pd.factorize(part["individual"], sort=True)[0]
    return IndividualRecords(
        part[outcome].to_numpy(float),
        ci[keep],
        pi[keep],
        part[list(cols.covariates)].to_numpy(float).reshape(len(part), -1),
        tuple(cols.covariates),
        person,
    )


def effect_rows(
    fit: RemlFit,
    ss: SmallSample,
    contrasts: dict[str, Contrast],
    method: str,
    level: float,
    robust: RobustVariance | None = None,
) -> list[dict[str, Any]]:
    """One table row per contrast with the chosen SE and df (see DF_LABEL); `robust`: the
    cluster-robust variance the cr2 and mancl_derouen methods use (`robust_variance`)."""
    rows = []
    for term, contrast in contrasts.items():
        lvec = contrast.vector
        est = float(lvec @ fit.beta)
        if method == "kenward_roger":
            se = float(np.sqrt(lvec @ ss.vcov_kr @ lvec))
            df = kenward_roger_df(ss, fit.vcov, lvec)
        elif method == "satterthwaite":
            se = float(np.sqrt(lvec @ fit.vcov @ lvec))
            df = satterthwaite_df(ss, fit.vcov, lvec)
        elif robust is not None:
            se, df = float(np.sqrt(lvec @ robust.vcov @ lvec)), robust.df(lvec)
        else:
            se, df = float(np.sqrt(lvec @ fit.vcov @ lvec)), np.inf
        rows.append(wald_row(term, est, se, df, level, contrast))
    return rows


@dataclass(frozen=True)
class RobustVariance:
    """A cluster-robust covariance of the fixed effects: vcov (p, p); cr2: the CR2 pieces (its
    Satterthwaite df) or None for Mancl-DeRouen, whose reference is t(clusters − 1)."""

    vcov: np.ndarray
    cr2: Cr2 | None
    clusters: int

    def df(self, contrast: np.ndarray) -> float:
        if self.cr2 is not None:
            return self.cr2.satterthwaite_df(contrast)
        return float(self.clusters - 1)


def robust_variance(
    fit: RemlFit, cells: CellSummaries, X: np.ndarray, method: str
) -> RobustVariance:
    """The cluster-robust variance on cell summaries with the fitted covariance as target
    (cell_sandwich.py): CR2 for "cr2", Mancl-DeRouen (clubSandwich's CR3) for "mancl_derouen".
    Valid for the mean effect when clusters are independent whatever the covariance structure
    (e.g. clusters' own effects that the model leaves out)."""
    basis = cell_basis(*lmm_cell_covariance(fit, cells, X))
    clusters = cells.mean.shape[0]
    if method == "cr2":
        pieces = cr2_on_cells(*basis)
        return RobustVariance(pieces.vcov, pieces, clusters)
    return RobustVariance(mancl_derouen_on_cells(*basis), None, clusters)


def constancy_test(
    fit: RemlFit,
    ss: SmallSample,
    fe: FixedEffects,
    method: str,
    robust: RobustVariance | None,
) -> dict[str, Any] | None:
    """The test that the effect does not change with exposure time (H0: every exposure-time
    indicator's effect equal, i.e. the immediate-effect model; `fe` has exposure-time
    indicators): Kenward & Roger's F test (pbkrtest's
    KRmodcomp) with Kenward-Roger inference, a Wald F(q, I − 1) with a cluster-robust variance;
    None for other inference or fewer than two exposure times."""
    effect = list(fe.effect)
    if len(effect) < 2 or method not in ("kenward_roger", "mancl_derouen", "cr2"):
        return None
    lmat = np.zeros((len(effect) - 1, len(fit.beta)))  # records: covariates follow X
    lmat[:, effect[0]] = -1.0
    lmat[np.arange(len(effect) - 1), effect[1:]] = 1.0
    if method == "kenward_roger":
        kr = kenward_roger_f(ss, fit.vcov, lmat, fit.beta)
        how = "Kenward-Roger F test (KRmodcomp)"
        statistic, df, p_value = kr.statistic, [kr.df_num, kr.df_den], kr.p_value
    else:
        assert robust is not None
        w = wald_test(lmat @ fit.beta, lmat @ robust.vcov @ lmat.T, robust.clusters - 1)
        how = "Wald F test with the cluster-robust variance, F(q, I − 1)"
        statistic, df, p_value = w["statistic"], [len(effect) - 1, w["df_denom"]], w["p_value"]
    return {
        "hypothesis": "the effect is the same at every exposure time (the immediate-effect model)",
        "method": how,
        "statistic": statistic,
        "df": df,
        "p_value": p_value,
    }


def randomisation_row(term: str, rnd: RandomisationResult) -> dict[str, Any]:
    """The table row of a randomisation analysis: the statistic's estimate, its randomisation
    p-value and test-inversion interval (no standard error or df)."""
    return {
        "term": term,
        "estimate": rnd.estimate,
        "std_error": np.nan,
        "statistic": np.nan,
        "p_value": rnd.p_value,
        "ci_lower": rnd.ci_lower,
        "ci_upper": rnd.ci_upper,
        "df": np.nan,
        "event_time": np.nan,
    }


def lmm_facts(
    fit: RemlFit,
    ss: SmallSample,
    trial: TrialArrays,
    fe: FixedEffects,
    method: str,
    panel: ValidatedPanel,
    shape: Shape,
    contrasts: dict[str, Contrast],
    level: float,
) -> LmmFacts:
    """The fit's facts for the report: model, variance components, ICC/CAC, convergence,
    df method and the design summary (sequences, clusters per sequence, periods, cell sizes)."""
    comp = fit.components
    corr = correlations(fit, ss.hessian, level)
    return LmmFacts(
        model=fit.structure,
        effect_shape=shape,
        period_effects=fe.period_effects,
        estimation="REML (exact, on cluster-period summaries)",
        df_method=method,
        variance_components=comp,
        icc=corr.icc,
        icc_ci=list(corr.icc_ci),
        cac=corr.cac,
        cac_ci=list(corr.cac_ci),
        correlation_ci_method="Wald on the logit scale, observed information (delta method)",
        reml_criterion=fit.deviance,
        convergence={
            "converged": fit.converged,
            "max_abs_gradient": float(np.abs(fit.gradient).max()),
            "starts": fit.starts,
            "starts_at_optimum": fit.agreeing,
            "boundary": list(fit.boundary),
        },
        design=design_summary(trial, panel) | trial_size(trial, panel),
        contrasts=contrast_weights(fe, contrasts),
    )


def _slope(trial: TrialArrays, model: str) -> np.ndarray | None:
    """The intervention indicator (I, T) a random_slope model loads on, else None."""
    if model != "random_slope":
        return None
    return intervention_cells(trial.cells.observed, trial.start)
