"""Which method `inference: default` uses for a design, and why: every estimator's default
policy in one place. Estimators ask here, run what the choice says, and record it as an
`InferenceUsed` (results.py), which the report's method names and validity statements
(report/validity.py) are keyed on.

The rules and the evidence behind them:
- Linear DiD estimators (TWFE, event study, Callaway-Sant'Anna, Sun-Abraham, imputation) and
  synthetic DiD use the comparison-pooled variance (inference/panel_variance.py) when at most
  FEW_TREATED units are treated, half or more of them share a region, or the measured
  within-region correlation is clearly above zero and regional shocks make up REGIONAL_SHARE
  of the estimate's variance: it learns the treated units' noise and their
  regions' shared shocks from the comparison units, and held size, coverage and width on
  English-LA-shaped panels where the cluster-robust defaults were several times too wide or
  missed regional shocks (benchmarks/did_validity.py). A pilot concentrated in one region
  with fewer than three comparison regions is not estimable: nothing shows what its region's
  shock looks like.
- Otherwise DiD estimators with fewer than SMALL_SAMPLE_TREATED treated units switch to a
  small-sample variance: cluster-robust CR1 and influence-function standard errors
  over-reject there (MacKinnon & Webb 2017; benchmarks/did_size.py: 13–27% at 5% with 3 to 10
  of 150 treated).
- Stepped-wedge LMMs on cell summaries use the Mancl-DeRouen cluster-robust variance with a
  t(I − 1) reference (with the time-averaged effect over exposure times as the default
  estimand, settings.SteppedWedgeOptions): on trials the model does not describe (an effect
  that builds with exposure, AR(1) cluster-period effects, clusters' own effects) it held size
  and coverage with 6 to 15 clusters where Kenward-Roger's size reached 9–10% once clusters
  had their own effects (benchmarks/sw_coverage.py --processes; as Ouyang et al. 2026,
  arXiv:2604.18323, found for exposure-time models with continuous outcomes). On individual
  records, where the robust variance is not available, Kenward-Roger.
- GEE uses the Kauermann-Carroll sandwich with t(I − p), the GLMM a t(I − 2) reference.
"""

from __future__ import annotations

from dataclasses import dataclass

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.results import RegionalDependence

# Below this many treated units every DiD estimator's default is its small-sample method.
SMALL_SAMPLE_TREATED = 20


@dataclass(frozen=True)
class Choice:
    """The method(s) to run for one analysis.

    methods: in order of preference; an estimator runs the first its data admit (e.g. the
    cohort-stratified variance needs a balanced panel, else CR2). chosen_by_default: the user
    asked for "default". reasons: for each method, why the default switched to it, completing
    "chosen because …" ("" when it did not switch). warning: a caveat the default could not
    avoid ("" when none)."""

    methods: tuple[str, ...]
    chosen_by_default: bool = False
    reasons: tuple[str, ...] = ()
    warning: str = ""

    @property
    def method(self) -> str:
        return self.methods[0]

    @property
    def reason(self) -> str:
        return self.reason_for(self.method)

    def reason_for(self, method: str) -> str:
        """Why the default chose `method` ("" if it was asked for or not a switch)."""
        if method not in self.methods or not self.reasons:
            return ""
        return self.reasons[self.methods.index(method)]


def because(reason: str) -> str:
    """ "; chosen because …" for a label, or "" when the method was asked for."""
    return f"; chosen because {reason}" if reason else ""


# DiD: the small-sample methods in order of preference and the standard method.
_SMALL: dict[str, tuple[str, ...]] = {
    "twfe": ("cr2",),
    "event_study": ("cr2",),
    "callaway_santanna": ("cohort_stratified",),
    "sun_abraham": ("cohort_stratified", "cr2"),
    "imputation": ("cohort_stratified", "leave_out"),
    "etwfe": ("cohort_stratified", "cr2"),
    "etwfe_poisson": ("pooled",),
    "two_stage": ("cohort_stratified",),
    "stacked": ("cohort_stratified",),
    "did_multiplegt_dyn": ("cohort_stratified",),
    "continuous_did": ("pooled",),
}
_WHY = {
    "cr2": "CR1 over-rejects with few treated clusters",
    "callaway_santanna": "did's influence-function standard errors with a normal reference "
    "over-reject with few treated units",
    "sun_abraham": "CR1 over-rejects, and with single-unit cohorts so does CR2",
    "imputation": "BJS's clustered variance with t(G−1) over-rejects, and its leave-out version "
    "is very conservative with single-unit cohorts",
    "stacked": "CR1 of the stacked regression over-rejects, and a cohort of one unit gives its "
    "treated cells no within-cohort spread to learn from",
    "did_multiplegt_dyn": "the analytic variance with a normal reference over-rejects with few "
    "switchers, and a start date of one unit gives its cells no within-cohort spread",
    "etwfe_poisson": "CR1 over-rejects with few treated clusters, and a Poisson fit has no "
    "cohort-stratified or CR2 variance",
    "continuous_did": "the influence-function variance with a normal reference over-rejects "
    "with few treated units, and dose-specific weights differ unit by unit, so no "
    "cohort-stratified variance applies",
    "leave_out": "with t(G−1) and τ̄ by cohort × period the test over-rejects: a cohort of one "
    "unit drops out of the variance",
}


def few_treated(estimator: str, requested: str, n_treated: int, applicable: bool = True) -> Choice:
    """A DiD estimator's inference: what was asked, or for "default" its small-sample methods
    when fewer than SMALL_SAMPLE_TREATED units are treated and they `applicable` (e.g. not
    for weighted fits), else cluster_robust. "cohort_stratified" asks for the small-sample
    methods by name."""
    if requested == "cohort_stratified":
        return Choice(_SMALL[estimator])
    if requested != "default":
        return Choice((requested,))
    if n_treated >= SMALL_SAMPLE_TREATED or not applicable:
        return Choice(("cluster_robust",), chosen_by_default=True)
    methods = _SMALL[estimator]
    reasons = tuple(
        f"only {n_treated} units are treated ({_WHY[_why_key(estimator, m)]})" for m in methods
    )
    return Choice(methods, chosen_by_default=True, reasons=reasons)


def _why_key(estimator: str, method: str) -> str:
    """The _WHY entry explaining a small-sample switch (two-stage DiD and ETWFE share
    imputation's; a switch to the pooled variance has the estimator's own)."""
    if method == "pooled":
        return estimator
    if method != "cohort_stratified":
        return method
    return "imputation" if estimator in ("two_stage", "etwfe") else estimator


# Up to this many treated units every linear DiD estimator's default is the comparison-pooled
# variance: a cluster-robust variance has about k − 1 degrees of freedom with k treated units,
# and its intervals were 1.2 to 5 times wider than the estimate's spread with 2 to 7 treated LAs
# (benchmarks/did_validity.py).
FEW_TREATED = 9
# A variance clustered by unit misses the shocks treated units share with their region: when
# the pooled variance puts at least this share of the estimate's variance there, the default is
# the pooled variance whatever the number of treated units.
REGIONAL_SHARE = 0.10


@dataclass(frozen=True)
class Geography:
    """What the panel shows for a DiD analysis: `dependence` (the comparison units' regional
    correlation and where the treated units are); `poolable`: the pooled variance can be
    computed for this analysis (enough comparison units with complete series, an estimate
    linear in the outcomes); `regional_share`: the largest share of a reported row's pooled
    variance that regional shocks contribute (NaN when not poolable)."""

    dependence: RegionalDependence
    poolable: bool
    regional_share: float
    sizes_known: bool = True
    """Whether the units' sizes (populations) differ in the data, so the pooled variance can
    scale each unit's noise by its size."""

    @property
    def n_treated(self) -> int:
        return self.dependence.n_treated

    @property
    def concentrated(self) -> bool:
        return self.dependence.concentrated

    @property
    def dependent(self) -> bool:
        return self.dependence.dependent


def did_default(
    estimator: str,
    requested: str,
    n_treated: int,
    applicable: bool,
    geography: Geography | None,
    compared_within: str | None = None,
) -> Choice:
    """A DiD estimator's inference: the comparison-pooled variance ("pooled",
    inference/panel_variance.py) when it can be computed and the design needs it (at most
    FEW_TREATED treated units, half or more of them in one region, or a within-region
    correlation clearly above zero with regional shocks making up REGIONAL_SHARE of the
    estimate's variance, or each unit compared only within its `compared_within` grouping,
    where the variances by treatment path pool comparison units the estimate keeps apart),
    otherwise `few_treated`. EstimationError, whatever was asked, when no method can be
    valid: the treated units are concentrated in one region and fewer than three other
    regions show what a regional shock looks like."""
    geo = geography
    if geo is not None:
        _refuse_unlearnable_region(geo, n_treated)
    if requested != "default":
        return few_treated(estimator, requested, n_treated, applicable)
    if geo is not None and geo.poolable and applicable:
        why = _pooled_reason(n_treated, geo)
        if not why and compared_within:
            why = (
                f"each unit is compared only with units of its {compared_within}: a variance by "
                "treatment path would pool comparison units the estimate keeps apart (in "
                "benchmarks/did_validity.py it gave intervals up to 1.32 times the oracle and "
                "7% size with ten treated LAs spread over regions)"
            )
        if why:
            return Choice(("pooled",), chosen_by_default=True, reasons=(why,))
    return few_treated(estimator, requested, n_treated, applicable)


def synthetic_did_default(requested: str, geography: Geography | None) -> Choice:
    """Synthetic DiD's variance: what was asked, or for "default" the comparison-pooled
    variance whenever it can be computed (SDID and DID weights), else the placebo variance
    (Arkhangelsky et al. 2021, Algorithm 4). The placebo variance hands every treated unit the
    noise of a randomly chosen donor, whatever its size or region; the pooled variance scales
    the noise by size and adds the shocks the treated units' regions share. Not estimable when
    the treated units are concentrated in a region no other regions can calibrate."""
    if geography is not None:
        _refuse_unlearnable_region(geography, geography.n_treated)
    if requested != "default":
        return Choice((requested,))
    if geography is not None and geography.poolable:
        does = [
            "scales the noise by unit size" if geography.sizes_known else "",
            "adds the shocks shared within the treated units' regions"
            if geography.dependence.regions_known
            else "",
        ]
        pooled = " and ".join(d for d in does if d) or "learns the noise from every comparison unit"
        return Choice(
            ("pooled",),
            chosen_by_default=True,
            reasons=(
                "the placebo variance gives each treated unit a randomly chosen donor's noise, "
                f"whatever its size and region; the pooled variance {pooled}",
            ),
        )
    return Choice(("placebo",), chosen_by_default=True)


def _refuse_unlearnable_region(geo: Geography, n_treated: int) -> None:
    """EstimationError when the treated units are concentrated in one region and fewer than
    three comparison regions show what a regional shock looks like."""
    if geo.concentrated and geo.dependence.n_regions < 3:
        region, k = geo.dependence.treated_regions[0]
        raise EstimationError(
            f"{k} of the {n_treated} treated units are in {region} and the comparison units "
            f"span {geo.dependence.n_regions} region(s) with two or more units: a shock shared "
            f"by {region}'s units cannot be told apart from the effect, so no interval here "
            "would be valid",
            where="comparison",
            fix="add comparison units from at least three regions, or report this pilot "
            "descriptively",
        )


def _pooled_reason(n_treated: int, geo: Geography) -> str:
    """Why the design needs the pooled variance ("" when it does not)."""
    if geo.concentrated:
        region, k = geo.dependence.treated_regions[0]
        return (
            f"{k} of the {n_treated} treated units are in {region}: shocks shared by a "
            "region's units do not average out over them, and a variance clustered by unit "
            "would miss them"
        )
    if geo.dependent and geo.regional_share >= REGIONAL_SHARE:
        dep = geo.dependence
        return (
            f"the comparison units' residuals are correlated within regions (ρ = {dep.rho:.3f}, "
            f"SE {dep.rho_se:.3f}), and shocks shared by a region's units make up "
            f"{geo.regional_share:.0%} of the estimate's variance: a variance clustered by unit "
            "would miss them"
        )
    if n_treated <= FEW_TREATED:
        return (
            f"only {n_treated} units are treated: a cluster-robust variance would learn their "
            "noise from those units alone, with about as few degrees of freedom, and give "
            "needlessly wide intervals; the comparison units teach it instead"
        )
    return ""


# Fewer clusters than this: the cluster-robust default is valid but conservative.
FEW_SW_CLUSTERS = 6


def stepped_wedge_lmm(requested: str, clusters: int | None = None) -> Choice:
    """The stepped-wedge LMM's inference: what was asked, or for "default" the Mancl-DeRouen
    cluster-robust variance with t(I − 1), on cell summaries and on individual records alike
    (on records it was Kenward-Roger, which assumes the covariance model: with 8 clusters of
    unequal sizes, their own effects SD 0.5 and a covariate, it rejected 16.5% of true nulls
    at 5% and Mancl-DeRouen 4.5%, 200 trials; found in review). With fewer than
    FEW_SW_CLUSTERS `clusters` the default warns that it is conservative
    (benchmarks/sw_coverage.py with 4 and 5 clusters, one per sequence: size 0.8% and 1.1%,
    coverage 99%, against 5.0% and 4.0% for the randomisation test)."""
    if requested != "default":
        return Choice((requested,))
    few = clusters is not None and clusters < FEW_SW_CLUSTERS
    return Choice(
        ("mancl_derouen",),
        chosen_by_default=True,
        reasons=(
            "a cluster-robust variance stays valid for the mean effect when the covariance "
            "model is wrong (clusters' own effects, correlation that decays): size and coverage "
            "held in simulation with 6 to 15 clusters",
        ),
        warning=(
            f"only {clusters} clusters: the cluster-robust default with t({clusters - 1}) is "
            "valid but conservative this small (in simulation with 4 and 5 clusters it rejected "
            "a true null about 1% of the time at 5%, and its 95% intervals covered 99%), so its "
            "intervals are wider than they need be; the randomisation test "
            "(inference.method: randomisation) held its size there and can be reported beside it"
            if few
            else ""
        ),
    )


def default_lmm_method() -> str:
    """The LMM default (simulations and benchmarks)."""
    return stepped_wedge_lmm("default").method


def fixed_default(requested: str, default: str) -> Choice:
    """Estimators whose default is one method whatever the design (GEE, GLMM, synthetic)."""
    if requested == "default":
        return Choice((default,), chosen_by_default=True)
    return Choice((requested,))


def few_cluster_warnings(n_treated: int, n_clusters: int) -> tuple[str, ...]:
    """Plain statements of when cluster-robust inference is unreliable (MacKinnon & Webb 2017)."""
    out = []
    if n_treated < SMALL_SAMPLE_TREATED:
        out.append(
            f"Only {n_treated} treated units: cluster-robust standard errors can over-reject "
            "badly when few clusters are treated (MacKinnon & Webb 2017, J. Applied "
            "Econometrics 32:233–254); read these p-values as indicative only."
        )
    if n_clusters < 30:
        out.append(f"Only {n_clusters} clusters in all: the t(G−1) reference is approximate.")
    return tuple(out)
