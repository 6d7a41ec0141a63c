"""Typed facts of the DiD estimators' results (results.Facts): what the report reads and the
results JSON carries under "diagnostics", one class per estimator, fields in JSON order."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pathfinder_eval.results import OMITTED, Facts


@dataclass(frozen=True, kw_only=True)
class TwfeFacts(Facts):
    """weighted: cells weighted by denominators; leave_one_treated_out: the estimate without
    each treated unit ({} when not run or fewer than two treated; a unit whose refit is not
    estimable is left out)."""

    weighted: bool
    inference_method: str
    treated_cells: int
    leave_one_treated_out: dict[str, float]


@dataclass(frozen=True, kw_only=True)
class EventStudyFacts(Facts):
    """pretrend_test: joint Wald test of the leads (statistic, df_num, df_denom, p_value), None
    without leads; pretest_power: what the any-lead-significant pre-test can see (Roth 2022:
    the linear-trend slopes it detects 50% and 80% of the time, and under the 50% trend its
    Bayes factor and the first post-period coefficient's bias before and after pre-testing;
    inference/pretrends_power.py), None without leads and lags; sensitivity: Rambachan & Roth
    intervals (OMITTED unless asked for)."""

    reference_event_time: int
    binned_endpoints: list[int]
    pretrend_test: dict[str, float] | None
    inference_method: str
    pretest_power: dict[str, float] | None = None
    sensitivity: dict[str, Any] | None = OMITTED


@dataclass(frozen=True, kw_only=True)
class PoissonTwfeFacts(Facts):
    """The rate ratio exp(β) with its interval; units dropped for zero counts throughout."""

    rate_ratio: float
    rate_ratio_ci: list[float]
    dropped_all_zero_units: list[str]
    n_params: int


@dataclass(frozen=True, kw_only=True)
class BaconFacts(Facts):
    """Goodman-Bacon decomposition: weight and average 2×2 estimate by comparison type, every
    2×2 comparison, and the weight on already-treated controls."""

    weights_by_type: dict[str, float]
    average_by_type: dict[str, float]
    weight_sum: float
    decomposition_total: float
    twfe_linearmodels: float
    already_treated_control_weight: float
    comparisons: list[dict[str, Any]]
    units_dropped_unbalanced: list[str]


@dataclass(frozen=True, kw_only=True)
class GroupTimeFacts(Facts):
    """Callaway & Sant'Anna: settings, every ATT(g,t), the aggregation weights, uniform bands,
    the pre-test, the units by cohort and what was dropped; pretest_power: what the
    any-lead-significant pre-test on the event-time estimates can see (dynamic aggregation;
    as EventStudyFacts.pretest_power)."""

    control_group: str
    method: str
    method_label: str
    anticipation: int
    base_period: str
    aggregation: str
    covariates: list[str]
    att_gt: list[dict[str, Any]]
    aggregation_weights: dict[str, Any]
    simple_weights: dict[str, Any]
    aggregation_overall: dict[str, float] | None
    aggregation_band: list[dict[str, Any]]
    pretest: dict[str, Any] | None
    uniform_band_critical_value: dict[str, float]
    units_per_cohort: dict[str, int]
    never_treated_units: int
    units_dropped_unbalanced: int
    units_dropped_treated_first_period: int  # no period before the start: panel's or own
    n_clusters: int
    inference_method: str
    bootstrap: dict[str, Any] | None
    pretest_power: dict[str, float] | None = None


@dataclass(frozen=True, kw_only=True)
class SunAbrahamFacts(Facts):
    """Sun & Abraham: the cohort × relative-period interactions, each event time's cohort
    weights, the pre-trend Wald test on the leads and what the any-lead-significant pre-test
    on the event-time estimates can see (as EventStudyFacts.pretest_power)."""

    control: str
    inference_method: str
    reference_event_time: int
    share_uncertainty: bool
    interactions: list[dict[str, Any]]
    event_weights: dict[int, dict[float, float]]
    pretrend_test: dict[str, float] | None
    pretest_power: dict[str, float] | None = None


@dataclass(frozen=True, kw_only=True)
class ImputationFacts(Facts):
    """Borusyak-Jaravel-Spiess imputation: the variance used, the cells, the pre-trend test
    (None when pretrend_leads is 0) and what it can see: the linear pre-trends (per period,
    in the treated units) it detects 50% and 80% of the time, its Bayes factor and the overall
    ATT's bias under the first (inference/pretrends_power.linear_trend_power)."""

    inference_method: str
    leave_out: bool
    average_by: str
    treated_cells: int
    untreated_cells: int
    dropped_treated_cells: int
    weights: str
    pretrend_test: dict[str, Any] | None
    pretest_power: dict[str, float] | None = None


@dataclass(frozen=True, kw_only=True)
class EtwfeFacts(Facts):
    """Extended TWFE: the controls, family and covariates; each treated cohort × period cell's
    coefficient (`cells`: cohort, period, estimate); for Poisson the rows' rate ratios with
    their intervals and the units dropped for zero counts throughout; rows left out for a
    missing covariate."""

    control: str
    family: str
    covariates: list[str]
    cells: list[dict[str, float]]
    rate_ratios: list[dict[str, Any]] | None
    dropped_all_zero_units: list[str]
    dropped_missing_covariate_rows: int
    n_params: int


@dataclass(frozen=True, kw_only=True)
class TwoStageFacts(Facts):
    """Two-stage DiD: the variance used, cells left out (units never untreated), and the
    first stage's terms."""

    inference_method: str
    dropped_cells: int
    first_stage: str


@dataclass(frozen=True, kw_only=True)
class StackedFacts(Facts):
    """Stacked DiD: the variance used, the event window, each sub-experiment (cohort, treated
    and control units, the control rows' corrective weight at event time 0), the cohorts
    trimmed and why, the stack's rows, the joint Wald test of the leads with the variance used
    (None without leads; df the smallest of the leads') and what the pre-test can see (as
    EventStudyFacts.pretest_power)."""

    inference_method: str
    kappa_pre: int
    kappa_post: int
    control_group: str
    sub_experiments: list[dict[str, float]]
    trimmed: list[dict[str, Any]]
    stacked_rows: int
    pretrend_test: dict[str, float] | None
    pretest_power: dict[str, float] | None = None


@dataclass(frozen=True, kw_only=True)
class MultiplegtDynFacts(Facts):
    """de Chaisemartin-D'Haultfœuille DID_ℓ: the variance used, how many effects and placebos
    the data allowed, the groups kept, units left out (a baseline treatment whose units all
    switch at one date), the joint test that the placebos are zero with the variance used
    (None without placebos; df the smallest of the placebos') and what that pre-test can see
    (as EventStudyFacts.pretest_power: the placebos and effects are event times before and
    after the period before the switch); linear_trends: each unit its own linear trend;
    covariates: the control variables netted out; continuous: the degree of the polynomial in
    the starting treatment when LAs with different starts are compared (0: same start only);
    weighted: unit-periods weighted by their denominators (the authors' `weight`);
    effects_equal: the test that the effects are all equal (as placebo_test; None with one
    effect): whether the effect changes with exposure; switchers: both, in or out (LAs whose
    treatment first rises or falls); only_never_switchers: compared only with LAs that never
    change; same_switchers: 0, 1 (every effect over the same LAs) or 2 (and the placebos'
    too); trends_nonparam: the unit-table column within whose values LAs are compared;
    treatment_paths: the switchers' treatment from the period before the change through the
    effects estimated, each path with its LAs (the authors' `design`), over those followed
    that long; late_switchers: the other switchers (a late change, or a gap in the window);
    paths
    (by_path): each treatment path's label, LAs and rows in the table, or why it has none;
    subgroups (by): the same for each value of the `by` column (keyed by its name);
    heterogeneity (predict_het): per effect or placebo and covariate, its coefficient, HC2 SE,
    interval on t(df), LAs (n) and the joint F test's p-value."""

    inference_method: str
    effects: int
    placebos: int
    groups: int
    left_out: list[str]
    placebo_test: dict[str, float] | None
    pretest_power: dict[str, float] | None = None
    linear_trends: bool = False
    covariates: list[str] = field(default_factory=list)
    continuous: int = 0
    weighted: bool = False
    effects_equal: dict[str, float] | None = None
    switchers: str = "both"
    only_never_switchers: bool = False
    same_switchers: int = 0
    trends_nonparam: str | None = None
    treatment_paths: list[dict[str, Any]] = field(default_factory=list)
    late_switchers: int = 0
    paths: list[dict[str, Any]] = field(default_factory=list)
    subgroups: list[dict[str, Any]] = field(default_factory=list)
    heterogeneity: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class ContinuousDidFacts(Facts):
    """Continuous-dose DiD: the variance used, the dose curve's B-spline (degree, interior
    knots), the comparison units, how many treated LAs and start dates the estimates use, the
    treated doses' smallest, median and largest value, treated LAs left out (treated from the
    first period), the joint Wald test that every pre-start event-time ATT is zero (None
    without pre-periods), what that pre-test can see (as EventStudyFacts.pretest_power), and
    the joint test that every pre-start event-time ACRT is zero (pre-trends that differ with
    the dose); covariates: those the comparison is net of, by `method` (dr or reg);
    reference_dose: the lowest dose d_L when the LAs at it are the comparison (lowest_dose)."""

    inference_method: str
    degree: int
    knots: int
    control_group: str
    reference_dose: float | None = None
    covariates: list[str]
    method: str
    treated: int
    cohorts: int
    dose_range: list[float]
    left_out: list[str]
    pretrend_test: dict[str, float] | None
    pretest_power: dict[str, float] | None = None
    dose_pretrend_test: dict[str, float] | None = None
    sieve: DoseSieveFacts | None = OMITTED


@dataclass(frozen=True, kw_only=True)
class DoseSieveFacts(Facts):
    """The data-driven (cck) dose curve: the B-spline segments tried and chosen (cubic, knots at
    quantiles of the treated doses), Lepski's choice before the cap, α̂ and θ*, the uniform
    bands' critical values for ATT(d) and ACRT(d) (estimate ± value × standard error), the
    residuals behind the dose rows' standard errors and the draws (hc3, hc2 or hc0) and the
    sieve_variance asked for (auto: chosen by the number of treated units), the multiplier
    draws and seed, whether no sieve agreed with every larger one, and each dose row's
    uniform band."""

    segments_tried: list[int]
    segments: int
    lepski_segments: int
    alpha: float
    theta: float
    critical_value: float
    critical_value_slope: float
    variance: str
    variance_asked: str
    draws: int
    seed: int
    none_agreed: bool
    uniform_band: list[dict[str, Any]]


@dataclass(frozen=True, kw_only=True)
class Did2x2Facts(Facts):
    """The 2×2 cell means and counts and the regression's terms."""

    cell_means: list[list[float]]
    cell_counts: list[list[int]]
    terms: list[str]


@dataclass(frozen=True, kw_only=True)
class TripleDifferenceFacts(Facts):
    """Unit-level triple difference: settings, every ATT(g,t) with the eligible units of its
    cohort and the other units it used (with not-yet-treated comparisons, the comparison
    cohorts and their GMM weights), the Wald pre-test of the pre-start ATT(g,t), the units in
    each of the four subgroups, the clusters, and cells that could not be estimated."""

    method: str
    method_label: str
    base_period: str
    control_group: str
    covariates: list[str]
    covariates_at: str
    att_gt: list[dict[str, Any]]
    pretest: dict[str, Any] | None
    units_by_subgroup: dict[str, int]
    n_clusters: int
    treated_clusters: int
    dropped_cells: list[dict[str, Any]]
