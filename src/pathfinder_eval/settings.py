"""Typed settings of every estimator: one frozen options model each, with the inference methods
it offers. The design file's `analyses[i].options` and `inference` are validated against these
(spec.load_design), so a misspelt or mistyped option is a one-line design error; the estimator
classes (estimators/) extend these models with `fit`, so options and defaults are written once.
"""

from __future__ import annotations

import difflib
import math
from typing import Annotated, Any, ClassVar, Literal, Self, get_args, get_origin

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from pathfinder_eval.errors import DesignError


def _number(value: Any) -> Any:
    """A number option: YAML text ("4") or a boolean is refused rather than converted."""
    if isinstance(value, str | bool):
        raise ValueError("expected a number, not text")
    return value


def _flag(value: Any) -> Any:
    """A true/false option: numbers and text are refused rather than converted."""
    if not isinstance(value, bool) and type(value).__name__ != "bool_":
        raise ValueError("expected true or false")
    return value


Whole = Annotated[int, BeforeValidator(_number)]
Number = Annotated[float, BeforeValidator(_number)]
Flag = Annotated[bool, BeforeValidator(_flag)]
NonNegative = Annotated[float, BeforeValidator(_number), Field(ge=0.0)]

# Vocabularies shared by the design file, the estimators and the report.
GlmmStructure = Literal[
    "hussey_hughes", "nested_exchangeable", "exponential_decay", "cluster_plus_decay"
]
Structure = Literal[
    "hussey_hughes",
    "nested_exchangeable",
    "exponential_decay",
    "cluster_plus_decay",
    "random_slope",
]
Shape = Literal["immediate", "exposure_time", "spline"]
PeriodEffects = Literal["categorical", "linear", "spline"]
Statistic = Literal["model_based", "npwp", "within_period"]
GeeFamily = Literal["gaussian", "binomial", "poisson"]
Correlation = Literal["independence", "exchangeable", "nested_exchangeable", "exponential_decay"]
CorrelationMethod = Literal["maee", "gee", "moment"]
GeeEquations = Literal["individual", "cluster_period"]
GlmmFamily = Literal["binomial", "poisson"]
ControlGroup = Literal["never_treated", "not_yet_treated"]
GroupTimeMethod = Literal["dr", "ipw", "reg"]
BasePeriod = Literal["varying", "universal"]
AggregationKind = Literal["simple", "dynamic", "group", "calendar"]
SunAbrahamControl = Literal["never_treated", "last_treated"]
SynthMethod = Literal["sdid", "sc", "did"]
SynthVariance = Literal["default", "pooled", "placebo", "jackknife", "bootstrap"]

SPLINE_KNOTS = 4
MAX_QUADRATURE_POINTS = 25

Method = Literal[
    "default",
    "cluster_robust",  # CR1, t(G-1)
    "cr2",  # CR2 with Bell-McCaffrey degrees of freedom
    "wild_bootstrap",  # wild cluster restricted bootstrap
    "randomisation",  # re-assign treatment timing / allocation across units
    "conley_taber",
    "pooled",  # the comparison-pooled variance (inference/panel_variance.py)
    "cohort_stratified",  # the small-sample DiD variances by name (inference/policy.py)
    "multiplier_bootstrap",
    "cluster_bootstrap",  # clusters drawn with replacement, every row re-estimated
    "model_based",
    "sandwich",
    "kauermann_carroll",
    "mancl_derouen",
    "fay_graubard",
    "kenward_roger",
    "satterthwaite",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class Inference(_Frozen):
    """How uncertainty is computed. `default` lets the estimator choose what stays valid for
    the design (e.g. the number of treated clusters: inference/policy.py) and the report says
    what it chose."""

    method: Method = "default"
    """How uncertainty is computed: "default" (chosen for the design) or a named method."""
    cluster: str = "unit"
    """What the cluster-robust methods cluster by."""
    draws: Whole = Field(default=9999, ge=99)
    """Draws of the bootstrap and randomisation methods."""
    weights: Literal["rademacher", "webb", "mammen"] = "webb"
    """The wild bootstrap's weights."""
    absorbed_effects: Literal["nested", "counted"] = "nested"
    """CR1's small-sample factor (N−1)/(N−K): "nested" leaves out of K the fixed effects
    nested in the clusters (fixest's default, Stata's xtreg/reghdfe); "counted" counts every
    dummy (R lm with sandwich::vcovCL, linearmodels)."""

    @property
    def above_unit(self) -> bool:
        """Whether it clusters by a unit-table column (e.g. region) rather than by unit."""
        return self.cluster not in ("unit", "")


class EstimatorSettings(_Frozen):
    """What every estimator holds: its options (subclasses), the inference asked for and the
    run's seed (set by the pipeline; estimators that draw no random numbers ignore it)."""

    inference: Inference = Inference()
    seed: int = 0

    name: ClassVar[str] = "estimator"
    inference_methods: ClassVar[frozenset[str]] = frozenset({"default"})
    clusters_above_unit: ClassVar[bool] = False
    """Whether its variance can cluster by a unit-table column (inference.cluster: region)
    rather than by unit; where not, another cluster is refused, never silently ignored."""
    counts_absorbed_effects: ClassVar[bool] = False
    """Whether its CR1 reads inference.absorbed_effects (its K has absorbed effects nested in
    the clusters); where not, "counted" is refused, never silently ignored."""

    def __init__(self, **data: Any) -> None:
        """Built from Python (the API, tests): a bad option is a DesignError naming it."""
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _option_error(exc, self.name, "options", None, type(self)) from None

    @field_validator("inference")
    @classmethod
    def _offered_inference(cls, value: Inference) -> Inference:
        if value.method not in cls.inference_methods:
            raise ValueError(
                f"inference method {value.method!r} is not available for {cls.name}: use one of "
                f"{', '.join(sorted(cls.inference_methods))}"
            )
        if value.above_unit and value.method in ("pooled", "cohort_stratified"):
            raise PydanticCustomError(
                "cluster_not_with_method",
                f"the {value.method} variance treats units as independent (given their "
                f"cohort or region), so it cannot cluster by {value.cluster!r}",
            )
        if value.absorbed_effects != "nested" and not cls.counts_absorbed_effects:
            raise PydanticCustomError(
                "absorbed_effects_not_read",
                f"absorbed_effects sets the CR1 factor of twfe, event_study, sun_abraham and "
                f"bacon; {cls.name}'s variance has no absorbed effects nested in its clusters "
                "to count",
            )
        if value.above_unit and not cls.clusters_above_unit:
            raise PydanticCustomError(
                "cluster_not_offered",
                f"{cls.name} clusters its variance by unit only, not by {value.cluster!r} "
                f"(clustering by a unit-table column: {', '.join(clustering_above_unit())})",
            )
        return value

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        """The keys a design may give under `options`."""
        return tuple(k for k in cls.model_fields if k not in ("inference", "seed"))

    _refit: bool = PrivateAttr(default=False)

    @property
    def refit(self) -> bool:
        """Whether these are a robustness re-fit's settings (`for_placebo`): only its estimates
        are read, so what describes the main analysis only (the pre-test's power, sensitivity
        intervals) is not computed."""
        return self._refit

    def for_placebo(self) -> Self:
        """These settings for a robustness re-fit (placebo in time, a power replicate): the
        same options and inference, the extras off."""
        return self._refit_copy()

    def _refit_copy(self, **update: Any) -> Self:
        copy = self.model_copy(update=update)
        copy._refit = True
        return copy


class TwfeOptions(EstimatorSettings):
    """`weighted`: weight cells by their denominators; `leave_one_out`: re-fit without each
    treated unit (robustness)."""

    name: ClassVar[str] = "twfe"
    counts_absorbed_effects: ClassVar[bool] = True

    weighted: Flag = False
    """Weight cells by their denominators (e.g. child population)."""
    leave_one_out: Flag = True
    """Re-fit without each treated unit in turn (robustness)."""

    inference_methods: ClassVar[frozenset[str]] = frozenset(
        {
            "default",
            "cluster_robust",
            "wild_bootstrap",
            "cr2",
            "randomisation",
            "conley_taber",
            "pooled",
        }
    )

    def for_placebo(self) -> Self:
        return self._refit_copy(leave_one_out=False)


class PoissonTwfeOptions(EstimatorSettings):
    """Poisson QMLE with unit and period effects: no options."""

    name: ClassVar[str] = "twfe_poisson"

    inference_methods: ClassVar[frozenset[str]] = frozenset({"default", "cluster_robust"})


class EventStudyOptions(EstimatorSettings):
    """Relative times below `min_lead` or above `max_lag` are binned into the endpoints;
    `reference` is omitted; `sensitivity` adds Rambachan & Roth's robust intervals."""

    name: ClassVar[str] = "event_study"
    counts_absorbed_effects: ClassVar[bool] = True

    min_lead: Whole = Field(default=-4, le=-1)
    """Earliest lead; earlier relative times are binned into it."""
    max_lag: Whole = Field(default=3, ge=0)
    """Latest lag; later relative times are binned into it."""
    reference: Whole = -1
    """The omitted relative time (a lead from min_lead to -1)."""
    weighted: Flag = False
    """Weight cells by their denominators."""
    sensitivity: Flag = False
    """Add Rambachan & Roth's robust intervals for the first post-period."""
    sensitivity_m: tuple[NonNegative, ...] = ()
    """Smoothness bounds M of the sensitivity analysis (default: 0 to half the first
    post-period's SE in 6 steps)."""
    sensitivity_mbar: tuple[NonNegative, ...] = (0.0, 0.5, 1.0, 1.5, 2.0)
    """Relative-magnitude bounds M̄ of the sensitivity analysis."""

    inference_methods: ClassVar[frozenset[str]] = frozenset(
        {"default", "cluster_robust", "cr2", "pooled"}
    )

    @field_validator("reference")
    @classmethod
    def _reference_inside(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("min_lead", -4)
        if not low <= value < 0:
            raise ValueError(f"the reference period must be a lead from min_lead ({low}) to -1")
        return value


def _unused(settings: EstimatorSettings, rules: tuple[tuple[str, bool, str], ...]) -> None:
    """An option given (not a default) that the other settings leave unused is a ValueError
    naming it and why, never silently ignored: rules of (option, unused, what uses it)."""
    default = type(settings).model_fields
    for option, unused, needs in rules:
        given = getattr(settings, option) != default[option].default  # `null` is the default
        if unused and option in settings.model_fields_set and given:
            raise ValueError(
                f"{option} applies only {needs}, so it would be ignored here: drop it, or set that"
            )


class SteppedWedgeOptions(EstimatorSettings):
    """Linear mixed model: covariance `model`, `effect` shape (with `tate_window`), period
    effects, spline knots and the randomisation test's statistic."""

    name: ClassVar[str] = "stepped_wedge"

    model: Structure = "nested_exchangeable"
    """Random-effects structure: nested_exchangeable, hussey_hughes, exponential_decay,
    cluster_plus_decay (a cluster intercept plus AR(1) cluster-period effects) or random_slope
    (nested exchangeable plus each cluster's own intervention effect, correlated with its
    intercept)."""
    effect: Shape = "exposure_time"
    """Effect shape: exposure_time (default: the time-averaged effect TATE, with the
    immediate-effect model's estimate beside it), immediate or spline."""
    tate_window: Whole | None = Field(default=None, ge=1)
    """Exposure periods averaged into the time-averaged effect (default all)."""
    period_effects: PeriodEffects = "categorical"
    """Secular trend: categorical, linear or spline."""
    exposure_knots: Whole = Field(default=SPLINE_KNOTS, ge=2)
    """Knots of the exposure-time spline (effect: spline)."""
    period_knots: Whole = Field(default=SPLINE_KNOTS, ge=2)
    """Knots of the period spline (period_effects: spline)."""
    randomisation_statistic: Statistic = "model_based"
    """Statistic of the randomisation test: model_based, npwp (Thompson et al. 2018's
    non-parametric within-period statistic, inverse-variance weights) or within_period (the same
    contrast with swpermute's default weights by cluster counts)."""

    inference_methods: ClassVar[frozenset[str]] = frozenset(
        {
            "default",
            "kenward_roger",
            "satterthwaite",
            "model_based",
            "randomisation",
            "mancl_derouen",
            "cr2",
        }
    )

    @model_validator(mode="after")
    def _no_unused_option(self) -> Self:
        _unused(
            self,
            (
                ("tate_window", self.effect == "immediate", "with effect: exposure_time or spline"),
                ("exposure_knots", self.effect != "spline", "with effect: spline"),
                ("period_knots", self.period_effects != "spline", "with period_effects: spline"),
                (
                    "randomisation_statistic",
                    self.inference.method != "randomisation",
                    "with inference method: randomisation",
                ),
            ),
        )
        return self


class SteppedWedgeGeeOptions(EstimatorSettings):
    """GEE on cells: `family`, working `correlation` and how it is estimated."""

    name: ClassVar[str] = "stepped_wedge_gee"

    family: GeeFamily = "gaussian"
    """Outcome family: gaussian, binomial or poisson (log link: each person's count on
    individual records; counts over a population, the denominator, otherwise)."""
    correlation: Correlation = "nested_exchangeable"
    """Working correlation: nested_exchangeable, exchangeable, exponential_decay or independence."""
    effect: Literal["immediate", "exposure_time"] = "immediate"
    """Effect shape: immediate or exposure_time."""
    tate_window: Whole | None = Field(default=None, ge=1)
    """Exposure periods averaged into the time-averaged effect (default all)."""
    correlation_method: CorrelationMethod = "maee"
    """How correlations are estimated: maee (as geeCRT), gee or moment."""
    equations: GeeEquations = "individual"
    """individual: correlation equations on pairs of individuals (geeCRT's geemaee);
    cluster_period: on cluster-period proportions (geeCRT's cpgeeSWD; binomial, correlated
    working structures, maee or gee), whose cost does not grow with the cluster sizes."""

    @field_validator("equations")
    @classmethod
    def _cluster_period_scope(cls, value: str, info: ValidationInfo) -> str:
        if value == "individual":
            return value
        family = info.data.get("family", "gaussian")
        correlation = info.data.get("correlation", "nested_exchangeable")
        method = info.data.get("correlation_method", "maee")
        if family != "binomial" or correlation == "independence" or method == "moment":
            raise ValueError(
                "equations: cluster_period is Li et al.'s GEE for binary outcomes' cluster-"
                "period proportions with a correlated working structure estimated by maee or "
                f"gee; got family {family}, correlation {correlation}, correlation_method "
                f"{method}: use family: binomial, correlation: exchangeable, "
                "nested_exchangeable or exponential_decay, and correlation_method: maee or gee "
                "(or equations: individual)"
            )
        return value

    inference_methods: ClassVar[frozenset[str]] = frozenset(
        {
            "default",
            "model_based",
            "sandwich",
            "kauermann_carroll",
            "mancl_derouen",
            "fay_graubard",
            "cr2",
        }
    )

    @model_validator(mode="after")
    def _no_unused_option(self) -> Self:
        _unused(
            self,
            (
                ("tate_window", self.effect == "immediate", "with effect: exposure_time"),
                (
                    "correlation_method",
                    self.correlation == "independence",
                    "with a correlated working correlation (independence has none to estimate)",
                ),
            ),
        )
        return self


class SteppedWedgeGlmmOptions(EstimatorSettings):
    """GLMM on cell counts: `family`, random-effects `model`, effect shape and quadrature."""

    name: ClassVar[str] = "stepped_wedge_glmm"

    family: GlmmFamily = "binomial"
    """Outcome family: binomial (logit) or poisson (log, population offset)."""
    model: GlmmStructure = "nested_exchangeable"
    """Random-effects structure: nested_exchangeable (default: its cluster-period effect carries
    the variation between cells beyond the binomial or Poisson, which hussey_hughes leaves out:
    on overdispersed counts it rejected a true null in 16% and 19% of trials with 10 and 15
    clusters, benchmarks/sw_count_size.py), hussey_hughes, exponential_decay or
    cluster_plus_decay (a cluster intercept plus AR(1) cluster-period effects)."""
    effect: Literal["immediate", "exposure_time"] = "immediate"
    """Effect shape: immediate or exposure_time."""
    tate_window: Whole | None = Field(default=None, ge=1)
    """Exposure periods averaged into the time-averaged effect (default all)."""
    quadrature_points: Whole = Field(default=1, ge=1, le=MAX_QUADRATURE_POINTS)
    """1: Laplace; more: adaptive Gauss-Hermite (hussey_hughes only)."""

    inference_methods: ClassVar[frozenset[str]] = frozenset({"default", "model_based"})

    @field_validator("quadrature_points")
    @classmethod
    def _quadrature_needs_one_effect(cls, value: int, info: ValidationInfo) -> int:
        default = cls.model_fields["model"].default
        model = info.data.get("model", default)
        if value > 1 and model != "hussey_hughes":
            raise ValueError(
                f"adaptive quadrature ({value} points) integrates one random effect per "
                f"cluster; the {model} model"
                + (" (the default)" if model == default else "")
                + " has one per cluster and period: use quadrature_points: 1 (Laplace) or "
                "model: hussey_hughes"
            )
        return value

    @model_validator(mode="after")
    def _no_unused_option(self) -> Self:
        _unused(self, (("tate_window", self.effect == "immediate", "with effect: exposure_time"),))
        return self


class CallawaySantAnnaOptions(EstimatorSettings):
    """Group-time ATTs: comparison group, estimation method, anticipation, base period, the
    aggregation reported after the simple ATT, covariates, weights, the dynamic aggregation's
    event-time window and bootstrap draws."""

    name: ClassVar[str] = "callaway_santanna"
    clusters_above_unit: ClassVar[bool] = True

    control_group: ControlGroup = "never_treated"
    """Comparison units: never_treated or not_yet_treated."""
    method: GroupTimeMethod = "dr"
    """Estimation method, as R did: dr, ipw or reg."""
    anticipation: Whole = Field(default=0, ge=0)
    """Periods of anticipation before the start."""
    base_period: BasePeriod = "varying"
    """Pre-period comparisons: varying or universal."""
    aggregation: AggregationKind = "dynamic"
    """Aggregation reported after the simple ATT: dynamic, simple, group or calendar."""
    covariates: tuple[str, ...] = ()
    """Time-invariant covariate columns (from the first period)."""
    weighted: Flag = False
    """Weight units by their denominators."""
    balance_e: Whole | None = Field(default=None, ge=0)
    """Keep only cohorts observed for this many post-periods (dynamic)."""
    min_e: Number = -math.inf
    """Earliest event time of the dynamic aggregation."""
    max_e: Number = math.inf
    """Latest event time of the dynamic aggregation."""
    bootstrap_draws: Whole = Field(default=0, ge=0)
    """Multiplier bootstrap draws (did's biters): above 0, the bootstrap runs with that many
    whatever the inference method; 0 leaves it to the inference method (multiplier_bootstrap
    then draws inference.draws, 9,999 by default; the others are analytic)."""

    inference_methods: ClassVar[frozenset[str]] = frozenset(
        {"default", "cluster_robust", "multiplier_bootstrap", "pooled", "cohort_stratified"}
    )

    @field_validator("max_e")
    @classmethod
    def _window(cls, value: float, info: ValidationInfo) -> float:
        low = info.data.get("min_e", -math.inf)
        if low > value:
            raise ValueError(f"max_e must not be below min_e ({low:g})")
        return value


class SunAbrahamOptions(EstimatorSettings):
    """`control`: never-treated units or the last-treated cohort; `share_uncertainty` adds the
    cohort shares' delta-method term (CR1 only)."""

    name: ClassVar[str] = "sun_abraham"
    counts_absorbed_effects: ClassVar[bool] = True

    control: SunAbrahamControl = "never_treated"
    """Comparison cohort: never_treated or last_treated."""
    share_uncertainty: Flag = False
    """Add the cohort shares' delta-method term (CR1 only)."""

    inference_methods: ClassVar[frozenset[str]] = frozenset(
        {"default", "cluster_robust", "cr2", "pooled", "cohort_stratified"}
    )


class ImputationOptions(EstimatorSettings):
    """`leave_out`: BJS's leave-out variance (cluster_robust); `pretrend_leads`: leads in the
    pre-trend test (0: none)."""

    name: ClassVar[str] = "imputation"

    leave_out: Flag = False
    """BJS's leave-out variance (with cluster_robust)."""
    pretrend_leads: Whole = Field(default=3, ge=0)
    """Leads in the pre-trend test (0: none)."""

    inference_methods: ClassVar[frozenset[str]] = frozenset(
        {"default", "cluster_robust", "pooled", "cohort_stratified"}
    )


class EtwfeOptions(EstimatorSettings):
    """Extended TWFE (Wooldridge 2021, 2023): comparison cells, linear or Poisson (counts
    with a log-population offset), covariates."""

    name: ClassVar[str] = "etwfe"

    control_group: ControlGroup = "not_yet_treated"
    """Comparison cells: not_yet_treated (every untreated cell) or never_treated (placebo
    rows before the start)."""
    family: Literal["linear", "poisson"] = "linear"
    """linear, or poisson: numerator counts with offset log(denominator), log rate ratios."""
    covariates: tuple[str, ...] = ()
    """Cell columns or other outcomes, with their cohort, period and treatment interactions."""

    inference_methods: ClassVar[frozenset[str]] = frozenset(
        {"default", "cluster_robust", "cr2", "pooled", "cohort_stratified"}
    )


class TwoStageOptions(EstimatorSettings):
    """Gardner's two-stage DiD: no options (the rows are the overall ATT and each event
    time)."""

    name: ClassVar[str] = "two_stage"
    clusters_above_unit: ClassVar[bool] = True

    inference_methods: ClassVar[frozenset[str]] = frozenset(
        {"default", "cluster_robust", "pooled", "cohort_stratified"}
    )


class StackedOptions(EstimatorSettings):
    """Stacked DiD (Wing, Freedman & Hollingsworth 2024): the event window and the clean
    controls."""

    name: ClassVar[str] = "stacked"

    kappa_pre: Whole | None = Field(default=None, ge=1)
    """Event times before the start in each sub-experiment's window (null: the longest every
    cohort fits, leaving aside those whose reference the design leaves out)."""
    kappa_post: Whole | None = Field(default=None, ge=0)
    """Event times from the start on (null: the longest every cohort fits)."""
    control_group: ControlGroup = "not_yet_treated"
    """Clean controls: not_yet_treated (first treated after the window ends, or never) or
    never_treated."""

    inference_methods: ClassVar[frozenset[str]] = frozenset(
        {"default", "cluster_robust", "pooled", "cohort_stratified"}
    )


class MultiplegtDynOptions(EstimatorSettings):
    """de Chaisemartin & D'Haultfœuille's DID_ℓ (did_multiplegt_dyn): how many effects and
    placebos to estimate (fewer where the data allow fewer; placebos at most as many as
    effects)."""

    name: ClassVar[str] = "did_multiplegt_dyn"
    clusters_above_unit: ClassVar[bool] = True

    effects: Whole = Field(default=3, ge=1)
    """Effects ℓ = 1 … effects: ℓ periods after the first switch (event times 0 … effects − 1)."""
    placebo: Whole = Field(default=2, ge=0)
    """Placebos ℓ = 1 … placebo: the outcome's change over the ℓ periods before the switch."""
    normalized: Flag = False
    """Divide effect ℓ (and placebo ℓ) by the treatment its switchers received from the
    switch to ℓ periods on: an effect per unit of treatment (the authors' `normalized`)."""
    trends_lin: Flag = False
    """Allow each unit its own linear trend (the authors' `trends_lin`): effect ℓ is then the
    sum of the first ℓ effects on first differences, over the switchers seen in all of them;
    units switching in the second period are left out, and there is no average total effect."""
    continuous: Whole = Field(default=0, ge=0)
    """For starting treatments that differ between LAs (the authors' `continuous`): compare each
    LA with every LA not yet changed, whatever its start, allowing each period's outcome change
    a polynomial of this degree in the starting treatment (0: compare LAs with the same start;
    the authors recommend 1 or 2 and say analytic SEs can then be liberal)."""
    covariates: tuple[str, ...] = ()
    """Time-varying control variables (the authors' `controls`: cell columns or other
    outcomes): within each baseline treatment the outcome's changes net of θ times theirs, θ
    from the units not yet switched; a unit-period missing one is not used."""
    weighted: Flag = False
    """Weight each unit-period by its denominator (e.g. the LA's child population; the
    authors' `weight`): effects per child rather than per LA."""
    switchers: Literal["both", "in", "out"] = "both"
    """Only the LAs whose treatment first rises (in) or falls (out) (the authors' `switchers`)."""
    only_never_switchers: Flag = False
    """Compare only with LAs whose treatment never changes (the authors'
    `only_never_switchers`; by default LAs not yet changed are comparisons too)."""
    same_switchers: Flag = False
    """Estimate every effect (and placebo) over the same LAs: those seen in all the effects
    (the authors' `same_switchers`), so the effects differ by exposure, not by who is in them."""
    same_switchers_pl: Flag = False
    """With same_switchers, also only the LAs seen in all the placebos (the authors'
    `same_switchers_pl`)."""
    trends_nonparam: str | None = None
    """A unit-table column (e.g. region): compare each LA only with LAs that share its value,
    so each region may have its own period effects (the authors' `trends_nonparam`)."""
    less_conservative_se: Flag = False
    """In the authors' analytic variance, centre each switching LA's change on the LAs with the
    same treatment path since the switch (where another LA shares it) rather than the same
    first new level (the authors' `less_conservative_se`): narrower or wider where treatments
    change level more than once; only the analytic variance ("cluster_robust") changes."""
    predict_het: tuple[str, ...] = ()
    """LA-level covariates fixed over time (cell columns or other outcomes, e.g. the LA's
    size before the pilot): how each effect and placebo varies with them among the switching
    LAs, a regression of each LA's change on them with a fixed effect for each switch date,
    starting treatment and direction, HC2 standard errors (the authors' `predict_het`). An
    association, not the covariate's effect."""
    by: str | None = None
    """A unit-table column (e.g. region): also estimate the effects for the LAs of each of its
    values alone, against the LAs of that value only (the authors' `by`); the rows follow the
    overall ones with the same variance. Not with by_path."""
    by_path: Annotated[Whole, Field(ge=0)] | Literal["all"] = 0
    """Also estimate the effects for each treatment path (an LA's treatment from the period
    before its first change through `effects` periods after, e.g. 0, 1, 0 for a pause): the
    `by_path` most common paths, or all; each path's LAs against those with their starting
    treatment before they change, every effect over the same LAs (the authors' `by_path`).
    The rows follow the overall ones, with the same variance (0: none)."""

    inference_methods: ClassVar[frozenset[str]] = frozenset(
        {"default", "cluster_robust", "pooled", "cohort_stratified", "cluster_bootstrap"}
    )

    @field_validator("same_switchers_pl")
    @classmethod
    def _with_same_switchers(cls, value: bool, info: ValidationInfo) -> bool:
        if value and not info.data.get("same_switchers", False):
            raise ValueError("same_switchers_pl needs same_switchers: true as well")
        return value

    @field_validator("by_path")
    @classmethod
    def _not_with_by(cls, value: int | str, info: ValidationInfo) -> int | str:
        if value and info.data.get("by"):
            raise ValueError("by_path and by cannot be combined (as the authors' options)")
        return value

    @model_validator(mode="after")
    def _bootstrap_overall_only(self) -> Self:
        if self.inference.method == "cluster_bootstrap" and (self.by or self.by_path):
            raise ValueError(
                "the cluster bootstrap re-estimates the overall rows only: drop by or by_path, "
                "or choose another inference method"
            )
        return self


class ContinuousDidOptions(EstimatorSettings):
    """Callaway, Goodman-Bacon & Sant'Anna's DiD with a continuous dose (R contdid's
    parametric estimator): the dose curve's B-spline, the doses it is reported at and the
    comparison units. The data need a dose column (data.columns.dose)."""

    name: ClassVar[str] = "continuous_did"

    degree: Whole = Field(default=1, ge=1, le=5)
    """Degree of the dose curve's B-spline: 1, a straight line, suits the few treated LAs of a
    pilot (each start date needs degree + knots + 1 distinct doses); contdid's default is 3."""
    knots: Whole = Field(default=0, ge=0)
    """Interior knots of the B-spline, at quantiles of the treated doses (0: one polynomial)."""
    doses: tuple[float, ...] = ()
    """Doses at which the curves ATT(d) and ACRT(d) are reported (default: the treated LAs'
    10th, 25th, 50th, 75th and 90th percentiles)."""
    control_group: Literal["not_yet_treated", "never_treated", "lowest_dose"] = "not_yet_treated"
    """Comparison units: not_yet_treated (contdid's default), never_treated, or lowest_dose when
    every LA gets some dose at one start date: the LAs at the lowest dose d_L are the
    comparison and ATT(d) is the effect of dose d relative to d_L (Callaway, Goodman-Bacon &
    Sant'Anna 2024, Remark 3.1; diff-diff's lowest_dose)."""
    covariates: tuple[str, ...] = ()
    """Covariates for parallel trends given them (cell columns or other outcomes, their
    values in each comparison's base period): the comparison LAs' change is regressed on them
    and the treated LAs' change taken net of its prediction (diff-diff's outcome regression;
    contdid has none). LAs missing a value are left out."""
    method: Literal["dr", "reg"] = "dr"
    """With covariates: dr, doubly robust (the average effect is Sant'Anna & Zhao's DR DiD with a
    logit propensity score, and the dose curve moves by the same level; diff-diff's default),
    or reg, the outcome regression alone."""
    dose_method: Literal["parametric", "cck"] = "parametric"
    """parametric: the B-spline of `degree` and `knots`; cck: a cubic B-spline whose number of
    segments Chen, Christensen & Kankanala's bootstrap Lepski rule chooses from the data, with
    uniform bands that allow for the choice (contdid's dose_est_method "cck"). cck needs two
    periods, one start date, 50 treated units or more, and no covariates."""
    sieve_draws: Whole = Field(default=999, ge=99)
    """cck: the Gaussian multiplier draws of its sieve choice and bands (contdid's 999)."""
    sieve_variance: Literal["auto", "hc2", "hc3", "hc0"] = "auto"
    """cck: the residuals in the dose rows' standard errors, the sieve choice and the bands:
    hc2, each divided by √(1 − its leverage) (a unit alone near a knot otherwise reads as no
    noise); hc3, each divided by 1 − its leverage (wider); hc0, contdid's raw residuals; auto
    (the default), hc3 below 400 treated units and hc2 from 400. On right-skewed doses
    (benchmarks/cck_band_coverage.py) HC2's band covered the curve in 85–89.5% of
    replications with 72–120 treated units, 90–94% with 180 and 91–92% with 300, HC3's in
    95–98%; with 390 and 480 HC2's covered 93.5–95.5% and with 900 96–97.5%, where HC3's was
    needlessly wide (98.5–99.5%)."""

    inference_methods: ClassVar[frozenset[str]] = frozenset({"default", "cluster_robust", "pooled"})

    @model_validator(mode="after")
    def _cck_alone(self) -> Self:
        if self.dose_method != "cck":
            return self
        clash = [
            name
            for name, bad in (
                ("degree", "degree" in self.model_fields_set),
                ("knots", "knots" in self.model_fields_set),
                ("covariates", bool(self.covariates)),
                ("control_group: lowest_dose", self.control_group == "lowest_dose"),
            )
            if bad
        ]
        if clash:
            raise ValueError(
                f"dose_method cck chooses its own cubic sieve and has no {', '.join(clash)}: "
                "leave them out, or use dose_method: parametric"
            )
        return self


class BaconOptions(EstimatorSettings):
    """`balance`: drop units missing any period (counted) rather than refuse the panel."""

    name: ClassVar[str] = "bacon"
    counts_absorbed_effects: ClassVar[bool] = True

    balance: Flag = True
    """Drop units missing any period (counted) rather than refuse the panel."""

    inference_methods: ClassVar[frozenset[str]] = frozenset({"default", "cluster_robust"})


class SyntheticControlOptions(EstimatorSettings):
    """`predictors`: other outcomes entered as pre-period means (V chosen from the data);
    `conformal_grid`: points of the conformal confidence set's search."""

    name: ClassVar[str] = "synthetic_control"

    predictors: tuple[str, ...] = ()
    """Other outcomes entered as pre-period means (V chosen from the data)."""
    conformal_grid: Whole = Field(default=41, ge=3)
    """Points of the conformal confidence set's search."""

    inference_methods: ClassVar[frozenset[str]] = frozenset({"default", "randomisation"})


class SyntheticDidOptions(EstimatorSettings):
    """`method`: sdid, sc or did weights; `variance`: default (inference/policy.py), pooled,
    placebo, jackknife or bootstrap, with `replications` draws."""

    name: ClassVar[str] = "synthetic_did"

    method: SynthMethod = "sdid"
    """Weights: sdid, sc or did."""
    variance: SynthVariance = "default"
    """default (inference/policy.py), pooled, placebo, jackknife or bootstrap."""
    replications: Whole = Field(default=200, ge=2)
    """Draws of the placebo or bootstrap variance."""

    inference_methods: ClassVar[frozenset[str]] = frozenset({"default", "randomisation", "pooled"})

    @property
    def requested_variance(self) -> str:
        """The variance asked for: `variance`, or when that is "default" what
        `inference.method` names (randomisation: the placebo variance)."""
        if self.variance != "default":
            return self.variance
        return {"randomisation": "placebo"}.get(self.inference.method, self.inference.method)


class DescriptiveOptions(EstimatorSettings):
    """Descriptive trends: no options, no inference."""

    name: ClassVar[str] = "descriptive"


def validate_settings(
    options_model: type[EstimatorSettings],
    options: dict[str, Any],
    inference: Inference,
    prefix: str = "",
    file: str | None = None,
) -> EstimatorSettings:
    """`options` and `inference` checked against an estimator's options model: a DesignError
    naming `<prefix>options.<key>` (or `<prefix>inference.method`) and the allowed values."""
    try:
        return options_model(**options, inference=inference)
    except DesignError as exc:
        raise DesignError(exc.what, file=file, where=f"{prefix}{exc.where}", fix=exc.fix) from None


def clustering_above_unit() -> list[str]:
    """The estimators whose variance can cluster by a unit-table column."""
    return sorted(k for k, m in OPTIONS.items() if m.clusters_above_unit)


def _option_error(
    exc: ValidationError, estimator: str, where: str, file: str | None, model: type | None = None
) -> DesignError:
    """One line for the first error: the key path, the bad value and what is allowed."""
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"] if not str(p).startswith("function-")]
    key = ".".join([where, *loc]) if loc else where
    if loc and loc[0] == "inference":  # a sibling of options in the design file
        parent = where.rsplit(".", 1)[0] + "." if "." in where else ""
        if err["type"] in ("cluster_not_offered", "cluster_not_with_method"):
            return DesignError(
                err["msg"],
                file=file,
                where=f"{parent}inference.cluster",
                fix="leave out inference.cluster (cluster by unit) or use an estimator it names"
                if err["type"] == "cluster_not_offered"
                else "use inference.method cluster_robust or default with it, or leave it out",
            )
        return DesignError(
            str((err.get("ctx") or {}).get("error", err["msg"])),
            file=file,
            where=f"{parent}inference.{'.'.join(loc[1:]) or 'method'}",
            fix=f"choose an inference method {estimator} offers",
        )
    value = err.get("input")
    shown = repr(value) if not isinstance(value, dict) else "a mapping"
    fields = getattr(model, "model_fields", {})
    if err["type"] == "extra_forbidden" and loc:
        names = [k for k in fields if k not in ("inference", "seed")]
        close = difflib.get_close_matches(loc[-1], names, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        return DesignError(
            f"unknown option '{loc[-1]}' for {estimator}",
            file=file,
            where=key,
            fix=f"{hint}options of {estimator}: {', '.join(names) or 'none'}",
        )
    reason = str((err.get("ctx") or {}).get("error", err["msg"]))
    if loc and loc[0] in fields:
        why = f": {reason}" if err["type"] == "value_error" else ""
        what = f"bad value {shown}{why}; allowed: {_allowed(fields[loc[0]])}"
    else:
        what = reason
    return DesignError(
        what,
        file=file,
        where=key,
        fix=f"correct the option (README, 'Estimators available now', {estimator})",
    )


def _allowed(field: Any) -> str:
    """The values a field accepts, in words: its Literal choices, or its type and bounds."""
    annotation = field.annotation
    args = [a for a in get_args(annotation) if a is not type(None)]
    optional = type(None) in get_args(annotation)
    if get_origin(annotation) is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    choices = [repr(c) for a in args if get_origin(a) is Literal for c in get_args(a)]
    if choices:  # a value or a named choice, e.g. a whole number or "all"
        args = [a for a in args if get_origin(a) is not Literal]
    base = args[0] if (optional or choices) and args else annotation
    metadata = list(field.metadata)
    if get_origin(base) is Annotated:
        base, *more = get_args(base)
        metadata += [m for item in more for m in getattr(item, "metadata", ())]  # Field(ge=…)
    words = {int: "a whole number", float: "a number", bool: "true or false"}.get(base)
    if words is None and get_origin(base) is tuple:
        words = "a list of names"
    words = words or getattr(base, "__name__", str(base))
    bounds = []
    for m in metadata:
        for attr, text in (("ge", "at least"), ("le", "at most"), ("gt", "above"), ("lt", "below")):
            if getattr(m, attr, None) is not None:
                bounds.append(f"{text} {getattr(m, attr)}")
    text = words + (f" {' and '.join(bounds)}" if bounds else "")
    text += "".join(f", or {c}" for c in choices)
    return text + (", or null" if optional else "")


class TripleDifferenceOptions(EstimatorSettings):
    """Ortiz-Villavicencio & Sant'Anna's (2025) triple difference on individual records
    (data.source: records with data.columns.individual and eligible): the eligible people of
    each starting LA against its ineligible people and the comparison LAs' two groups. The
    variance clusters by LA."""

    name: ClassVar[str] = "triple_difference"
    inference_methods: ClassVar[frozenset[str]] = frozenset({"default", "cr2", "cluster_robust"})

    covariates: tuple[str, ...] = ()
    """Individual covariates the comparisons are net of (propensity score and outcome model),
    among data.columns.covariates."""
    method: Literal["dr", "ipw", "reg"] = "dr"
    """Doubly robust, normalised IPW or outcome-regression DiD in each comparison."""
    base_period: Literal["universal", "varying"] = "universal"
    """Every cell against the period before its LA's start, or pre-start cells against the
    period before them."""
    covariates_at: Literal["period", "base"] = "period"
    """Each cell's covariates at its period (moderndid's ddd) or at its base period."""
    control_group: Literal["never_treated", "not_yet_treated"] = "never_treated"
    """The comparison LAs: never treated, or also those starting after both of a cell's
    periods (combined by the GMM weights)."""


# Each estimator's options model, by the name a design file uses (spec.Estimator).
OPTIONS: dict[str, type[EstimatorSettings]] = {
    "descriptive": DescriptiveOptions,
    "twfe": TwfeOptions,
    "twfe_poisson": PoissonTwfeOptions,
    "event_study": EventStudyOptions,
    "stepped_wedge": SteppedWedgeOptions,
    "stepped_wedge_gee": SteppedWedgeGeeOptions,
    "stepped_wedge_glmm": SteppedWedgeGlmmOptions,
    "callaway_santanna": CallawaySantAnnaOptions,
    "sun_abraham": SunAbrahamOptions,
    "imputation": ImputationOptions,
    "etwfe": EtwfeOptions,
    "two_stage": TwoStageOptions,
    "stacked": StackedOptions,
    "did_multiplegt_dyn": MultiplegtDynOptions,
    "continuous_did": ContinuousDidOptions,
    "triple_difference": TripleDifferenceOptions,
    "bacon": BaconOptions,
    "synthetic_control": SyntheticControlOptions,
    "synthetic_did": SyntheticDidOptions,
}
