"""A design file's trial layout as the clusters × periods matrix the power functions take."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from pathfinder_eval.errors import DesignError
from pathfinder_eval.estimators.stepped_wedge.design import exposure_span
from pathfinder_eval.power.analytic import (
    VarianceModel,
    critical_value,
    effect_columns,
    effect_variance,
    gls_precision,
    mdes,
    power,
)
from pathfinder_eval.power.expected_df import small_sample_reference
from pathfinder_eval.settings import OPTIONS
from pathfinder_eval.spec import Analysis, DesignSpec, Estimator, TrialSimulation
from pathfinder_eval.timeaxis import TimeAxis


@dataclass(frozen=True)
class PowerSummary:
    """Analytic power of a design at its stated effect, and its minimum detectable effects."""

    clusters: int
    periods: int
    sequences: int
    cell_size: int
    icc: float
    effect: float
    variance: float
    power: float
    mdes_80: float
    mdes_90: float
    alpha: float
    model: str
    df: float | None = None  # None: z reference; else t(df)
    transition_cells: int = 0  # cluster-periods in transition: not measured, not analysed

    @property
    def reference(self) -> str:
        if self.df is None:
            return "z"
        return f"t({self.df:g})" if float(self.df).is_integer() else f"t({self.df:.1f})"


def trial_matrix(spec: DesignSpec) -> np.ndarray:
    """(clusters, periods) 0/1 matrix from a trial design's rollout (period-number starts), NaN in
    a wave's transition periods (the analysis leaves them out, so power must too); a start
    after the last period is refused, as `validate` refuses it (it would be a control
    throughout)."""
    trial = spec.data.trial
    if spec.time.axis is not TimeAxis.PERIOD or trial is None:
        raise DesignError(
            "analytic power needs a trial design: time.axis 'period' and data.trial settings",
            file=spec.path,
            where="data.trial",
            fix="see designs/examples/stepped_wedge_trial.yaml; for LA panels use "
            "--simulate N (with --data DIR for null panels resampled from the real data)",
        )
    if spec.data.source == "simulated_trial" and len(spec.outcomes) != 1:  # as `run` refuses it
        raise DesignError(
            f"a simulated trial has one outcome; the design lists {len(spec.outcomes)}",
            file=spec.path,
            where="outcomes",
            fix="keep one outcome, or give the trial's data (data.source: tidy or records)",
        )
    late = {unit: s for unit, s in spec.start_of().items() if int(s) > trial.periods}
    if late:  # such a cluster would be silently a control throughout; validate refuses it too
        unit, start = next(iter(late.items()))
        raise DesignError(
            f"start {start} of {unit} is after the trial's last period {trial.periods}"
            + (f" ({len(late)} clusters start after it)" if len(late) > 1 else ""),
            file=spec.path,
            where="rollout",
            fix="correct the start, or raise data.trial.periods to cover it",
        )
    layout = np.array(_starts_and_transitions(spec)).reshape(-1, 2)
    start, transition = layout[:, :1], layout[:, 1:]
    periods = np.arange(1, trial.periods + 1)[None, :]
    design = (periods >= start).astype(float)
    design[(periods >= start) & (periods < start + transition)] = np.nan  # not analysed
    return design


def trial_starts(spec: DesignSpec) -> np.ndarray:
    """Each row of `trial_matrix`'s start index (period - 1): exposure times count from it,
    through the transition periods the matrix leaves unmeasured."""
    return np.array([start - 1 for start, _ in _starts_and_transitions(spec)])


def _starts_and_transitions(spec: DesignSpec) -> list[tuple[int, int]]:
    """(start period, transition periods) of each cluster, in order of start."""
    return sorted(
        (int(w.start), w.transition_periods) for w in spec.rollout for _ in range(len(w.units))
    )


@dataclass(frozen=True)
class Estimand:
    """What the design's primary stepped-wedge analysis estimates, for its power: the effect
    `shape` (the time-averaged effect over exposure times, or the immediate effect), the
    exposure times averaged (`window`, None: all), the df of its t reference (None: normal),
    the analysis's variance over the GLS variance (`inflation`: Kenward-Roger's adjustment),
    the words the report uses (`text`), and why that reference (`why`)."""

    shape: Literal["immediate", "exposure_time"]
    window: int | None
    df: float | None
    text: str
    analysis: str = ""  # its id ("" when the design has no stepped-wedge analysis)
    inflation: float = 1.0
    why: str = ""


SW_ESTIMATORS = (Estimator.STEPPED_WEDGE, Estimator.STEPPED_WEDGE_GEE, Estimator.STEPPED_WEDGE_GLMM)


def primary_estimand(
    spec: DesignSpec, analysis: str | None = None, outcome: str | None = None
) -> Estimand:
    """The estimand of the primary analysis (`primary: true` on a stepped-wedge analysis, else
    the first stepped-wedge analysis; among `outcome`'s analyses when given; `analysis` names
    one instead): the design's power is for what the report estimates (it was the immediate
    effect with a normal reference, whatever the analysis: 0.227 SD at 80% power where the
    default time-averaged analysis, Mancl-DeRouen with t(I − 1), can detect 0.37; found in
    review), with that analysis's reference: t(I − 1) for the LMM's cluster-robust default,
    the GEE's t(I − p) (p mean parameters), the GLMM's t(I − 2), the normal for model-based
    Wald tests, and for Kenward-Roger and Satterthwaite the df (and Kenward-Roger's adjusted
    variance) they would give at the trial's own variance components (`expected_df`) where
    simulation bore them out (Hussey & Hughes, nested exchangeable, exponential decay; 6 or
    more clusters), t(I − 2) standing in elsewhere; never fewer than 1 df."""
    clusters = sum(len(w.units) for w in spec.rollout)
    pool = spec.analyses if outcome is None else tuple(spec.analyses_for(outcome))
    chosen = sorted((a for a in pool if a.estimator in SW_ESTIMATORS), key=lambda a: not a.primary)
    if analysis is not None:
        chosen = [_stepped_wedge_analysis(spec, analysis)]
        if chosen[0] not in pool:
            raise DesignError(
                f"analysis {analysis!r} does not analyse outcome {outcome!r}",
                file=spec.path,
                where="--outcome",
                fix="name an outcome the analysis lists, or leave out --outcome",
            )
    if not chosen:
        return Estimand("immediate", None, None, "the immediate effect")
    a = chosen[0]
    fields = OPTIONS[a.estimator.value].model_fields
    shape = a.options.get("effect", fields["effect"].default)
    measured = "immediate" if shape == "immediate" else "exposure_time"
    window = a.options.get("tate_window") if measured == "exposure_time" else None
    what = "the immediate effect"
    if measured == "exposure_time":
        what = f"the time-averaged effect over {_tate_span(spec, a, window)} (TATE)"
    if shape == "spline":
        what += ", computed for exposure-time indicators (the spline's TATE is close to it)"
    trend = a.options.get("period_effects", "categorical")
    if trend != "categorical":  # the GLS and its df have one effect per period
        what += f", with categorical period effects where the analysis fits {trend} ones"
    named = (
        "the analysis named"
        if analysis is not None
        else "the primary analysis"
        if a.primary
        else "the first stepped-wedge analysis"
    )
    df, inflation, why = _reference(spec, a, measured, window, clusters)
    if df is not None and not df >= 1:  # NaN too: the most conservative t, never the normal
        df, why = 1, f"t(1): {why} would leave fewer than one degree of freedom"
    return Estimand(
        measured, window, df, f"{what}, as {named} ({a.id}) estimates it", a.id, inflation, why
    )


def _tate_span(spec: DesignSpec, a: Analysis, window: int | None) -> str:
    """'exposure times 1–4' averaged by the TATE; DesignError when the window is outside
    the exposure times the trial would measure."""
    first = 1 + min(w.transition_periods for w in spec.rollout)  # measured from here
    if spec.data.trial is None:
        return exposure_span(first, window) if window else "all exposure times"
    longest = spec.data.trial.periods - min(int(w.start) for w in spec.rollout) + 1
    if window is not None and not first <= window <= longest:
        index = spec.analyses.index(a)
        raise DesignError(
            f"tate_window {window} is outside the {exposure_span(first, longest)} the "
            "trial would measure (exposure times count from the start; transition periods "
            "are not measured)",
            file=spec.path,
            where=f"analyses[{index}].options.tate_window",
            fix=f"use a whole number from {first} to {longest}",
        )
    return exposure_span(first, window or longest)


def _reference(
    spec: DesignSpec,
    a: Analysis,
    shape: Literal["immediate", "exposure_time"],
    window: int | None,
    clusters: int,
) -> tuple[float | None, float, str]:
    """(df or None for the normal, variance inflation, why) of the analysis's reference."""
    method = a.inference.method
    if method == "model_based":
        return None, 1.0, "the normal: a model-based Wald test"
    if a.estimator is Estimator.STEPPED_WEDGE_GEE:
        periods = spec.data.trial.periods if spec.data.trial is not None else 0
        p = periods + (1 if shape == "immediate" else periods - 1)
        return clusters - p, 1.0, f"the GEE's t(I − p), p = {p} mean parameters"
    if a.estimator is Estimator.STEPPED_WEDGE_GLMM:
        return clusters - 2, 1.0, "the GLMM's Wald t(I − 2)"
    if method in ("default", "mancl_derouen", "cr2"):
        return clusters - 1, 1.0, "the cluster-robust variance's t(I − 1)"
    structure = a.options.get("model", OPTIONS[a.estimator.value].model_fields["model"].default)
    trial = spec.data.trial
    if method == "randomisation":
        return clusters - 2, 1.0, "t(I − 2) standing in for the randomisation test"
    if trial is None or structure not in _CHECKED_STRUCTURES or clusters < _FEWEST_CLUSTERS:
        return clusters - 2, 1.0, "t(I − 2), a common small-sample rule, standing in for df "
        "that come from the data"
    ref = small_sample_reference(
        trial_matrix(spec),
        trial_model(trial),
        trial.cell_size,
        structure,
        method,
        shape,
        trial_starts(spec),
        window,
    )
    return ref.df, ref.inflation, f"{_SMALL_SAMPLE[method]} at the trial's variance components"


# The df at the trial's variances match simulated fits (power within Monte Carlo error) for
# these structures from this many clusters; with two clusters KR's fitted df fall below 5 in
# 38% of trials (analytic power 0.136 against 0.053 simulated), and cluster_plus_decay's decay
# is not identified when the data have no cluster-period variance (0.947 against 0.814).
_CHECKED_STRUCTURES = ("hussey_hughes", "nested_exchangeable", "exponential_decay")
_FEWEST_CLUSTERS = 6

_SMALL_SAMPLE = {
    "kenward_roger": "Kenward-Roger's df and adjusted variance",
    "satterthwaite": "Satterthwaite's df",
}


def _stepped_wedge_analysis(spec: DesignSpec, analysis: str):
    """The stepped-wedge analysis `--analysis` names; DesignError when there is none."""
    named = next((a for a in spec.analyses if a.id == analysis), None)
    if named is None or named.estimator not in SW_ESTIMATORS:
        ids = ", ".join(a.id for a in spec.analyses if a.estimator in SW_ESTIMATORS) or "none"
        raise DesignError(
            f"analytic power is for a stepped-wedge analysis; {analysis!r} "
            + (
                "is not an analysis of the design"
                if named is None
                else f"is a {named.estimator.value} analysis"
            ),
            file=spec.path,
            where="--analysis",
            fix=f"name one of: {ids}; or add --simulate N to simulate any analysis",
        )
    return named


def tate_weights(design: np.ndarray, starts: np.ndarray, window: int | None) -> np.ndarray | None:
    """The exposure-time effects' weights of a time-averaged effect over the first `window`
    exposure times (None: all, gls_precision's default)."""
    if window is None:
        return None
    times = np.array(effect_columns(design, "exposure_time", starts)[1])
    kept = times <= window
    return kept / kept.sum()


def trial_model(trial: TrialSimulation) -> VarianceModel:
    """The Hussey & Hughes model with the trial's ICC (total variance 1: effects in SD units),
    plus its clusters' own intervention effects (effect_sd, effect_corr) when given."""
    base = VarianceModel.from_icc(trial.icc)
    return replace(base, treatment_var=trial.effect_sd**2, treatment_corr=trial.effect_corr)


def design_power(
    spec: DesignSpec,
    alpha: float = 0.05,
    reference: Literal["z", "t", "analysis"] = "analysis",
    effect: float | None = None,
    analysis: str | None = None,
    outcome: str | None = None,
    estimand: Estimand | None = None,
) -> PowerSummary:
    """Hussey & Hughes model with the design's ICC (total variance 1: effects in SD units), for
    the estimand of the primary stepped-wedge analysis (`primary_estimand`, which `analysis`
    and `outcome` select as it says, or `estimand` when the caller has it); power at `effect`
    (default: the design's data.trial effect).

    reference "analysis" (default) is that analysis's own t reference; "t" a t distribution
    with I − 2 degrees of freedom (clusters minus two), a common small-sample rule for
    stepped-wedge trials with few clusters; "z" the normal. The design and
    variance checks are the API's (`analytic.effect_variance`); an alpha of 0.8 or more (no
    MDES at 80% power) or one too small for the t reference is a DesignError on --alpha."""
    design = trial_matrix(spec)
    trial = spec.data.trial
    model = trial_model(trial)
    # the API's checks (pe.power): separable design, variances not too extreme to solve with
    v = effect_variance(
        design, model, trial.cell_size, file=spec.path, design_at="rollout", model_at="data.trial"
    )
    estimand = estimand or primary_estimand(spec, analysis, outcome)
    if estimand.shape == "exposure_time":  # the analysis reports the time-averaged effect
        starts = trial_starts(spec)
        weights = tate_weights(design, starts, estimand.window)
        v = gls_precision(design, model, trial.cell_size, "exposure_time", weights, starts).variance
    if reference == "analysis":  # Kenward-Roger's adjusted variance, which the analysis reports
        v *= estimand.inflation
    df = _checked_reference(design.shape[0], alpha, reference, estimand.df)
    effect = trial.effect if effect is None else effect
    return PowerSummary(
        clusters=design.shape[0],
        periods=design.shape[1],
        sequences=len({w.start for w in spec.rollout}),
        cell_size=trial.cell_size,
        icc=trial.icc,
        effect=effect,
        variance=v,
        power=power(effect, v, alpha, df),
        mdes_80=mdes(v, 0.8, alpha, df),
        mdes_90=mdes(v, 0.9, alpha, df),
        alpha=alpha,
        model="Hussey & Hughes (random cluster intercept), categorical periods, GLS; "
        + estimand.text
        + (
            f"; variance × {estimand.inflation:.3f}, Kenward-Roger's adjustment"
            if reference == "analysis" and estimand.inflation != 1.0
            else ""
        )
        + (
            f"; clusters' own intervention effects SD {trial.effect_sd:g}, correlation "
            f"{trial.effect_corr:g} with the intercept"
            if trial.effect_sd > 0
            else ""
        ),
        df=df,
        transition_cells=int(np.isnan(design).sum()),
    )


def _checked_reference(
    clusters: int,
    alpha: float,
    reference: Literal["z", "t", "analysis"],
    analysis_df: float | None,
) -> float | None:
    """The t reference's df (None: z; "analysis": the primary analysis's own, `analysis_df`),
    after checking the level gives a finite critical value and an MDES at 80% and 90% power
    (both need alpha below 0.8: power at effect 0 is alpha)."""
    if alpha >= 0.8:
        raise DesignError(
            f"alpha {alpha:g} is not below 0.8, the lowest power the MDES is reported at",
            where="--alpha",
            fix="use a conventional level such as 0.05",
        )
    if reference == "z" or (reference == "analysis" and analysis_df is None):
        return None
    if reference == "analysis":
        return _finite_reference(alpha, float(analysis_df))
    if clusters < 3:
        raise DesignError(
            f"the t reference has clusters − 2 degrees of freedom: {clusters} clusters leave none",
            where="--reference t",
            fix="use --reference z, or add clusters",
        )
    return _finite_reference(alpha, float(clusters - 2))


def _finite_reference(alpha: float, df: float) -> float:
    """df, once alpha gives its t distribution a finite critical value."""
    if not np.isfinite(critical_value(alpha, df)):
        raise DesignError(
            f"alpha {alpha:g} is too small for a t({df:g}) reference: its critical value is "
            "not a finite number",
            where="--alpha",
            fix="use a larger --alpha, or --reference z",
        )
    return df
