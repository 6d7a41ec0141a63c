"""Which method `inference: default` uses for a design, and why: every estimator's default
policy in one place. Estimators ask here, run what the choice says, and record it as an
`InferenceUsed` (results.py), which the report's method names and validity statements
(report/validity.py) are keyed on.

The rules and the evidence behind them:
- DiD estimators with fewer than SMALL_SAMPLE_TREATED treated units switch to a small-sample
  variance: cluster-robust CR1 and influence-function standard errors over-reject there
  (MacKinnon & Webb 2017; benchmarks/did_size.py: 13–27% at 5% with 3 to 10 of 150 treated).
- Stepped-wedge LMMs with fewer than SMALL_TRIAL_CLUSTERS clusters use an exact randomisation
  test when the design has at least MIN_ALLOCATIONS distinct allocations: Kenward-Roger is
  conservative there and Satterthwaite liberal (benchmarks/sw_coverage.py).
- GEE uses the Kauermann-Carroll sandwich with t(I − p), the GLMM a t(I − 2) reference.
"""

from __future__ import annotations

from dataclasses import dataclass

# Below this many treated units every DiD estimator's default is its small-sample method.
SMALL_SAMPLE_TREATED = 20
# Below this many clusters the stepped-wedge LMM's default is a randomisation test ...
SMALL_TRIAL_CLUSTERS = 8
# ... when the design has enough distinct allocations to reject at 5% (p ≥ 1/M).
MIN_ALLOCATIONS = 20


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


# DiD: the small-sample methods in order of preference and the standard method.
_SMALL: dict[str, tuple[str, ...]] = {
    "twfe": ("cr2",),
    "event_study": ("cr2",),
    "callaway_santanna": ("cohort_stratified",),
    "sun_abraham": ("cohort_stratified", "cr2"),
    "imputation": ("cohort_stratified", "leave_out"),
}
_WHY = {
    "cr2": "CR1 over-rejects with few treated clusters",
    "callaway_santanna": "did's influence-function standard errors with a normal reference "
    "over-reject with few treated units",
    "sun_abraham": "CR1 over-rejects, and with single-unit cohorts so does CR2",
    "imputation": "BJS's clustered variance with t(G−1) over-rejects, and its leave-out version "
    "is very conservative with single-unit cohorts",
    "leave_out": "with t(G−1) and τ̄ by cohort × period the test over-rejects: a cohort of one "
    "unit drops out of the variance",
}


def few_treated(estimator: str, requested: str, n_treated: int, applicable: bool = True) -> Choice:
    """A DiD estimator's inference: what was asked, or for "default" its small-sample methods
    when fewer than SMALL_SAMPLE_TREATED units are treated and they `applicable` (e.g. not
    for weighted fits), else cluster_robust."""
    if requested != "default":
        return Choice((requested,))
    if n_treated >= SMALL_SAMPLE_TREATED or not applicable:
        return Choice(("cluster_robust",), chosen_by_default=True)
    methods = _SMALL[estimator]
    reasons = tuple(
        f"only {n_treated} units are treated ({_WHY[estimator if m == 'cohort_stratified' else m]})"
        for m in methods
    )
    return Choice(methods, chosen_by_default=True, reasons=reasons)


def stepped_wedge_lmm(requested: str, clusters: int, allocations: int, records: bool) -> Choice:
    """The stepped-wedge LMM's inference: what was asked, or for "default" an exact
    randomisation test below SMALL_TRIAL_CLUSTERS clusters when the design has at least
    MIN_ALLOCATIONS allocations and the fit is on cell summaries, Kenward-Roger otherwise."""
    if requested != "default":
        return Choice((requested,))
    if not records and clusters < SMALL_TRIAL_CLUSTERS and allocations >= MIN_ALLOCATIONS:
        return Choice(
            ("randomisation",),
            chosen_by_default=True,
            reasons=(
                f"the trial has {clusters} clusters (fewer than {SMALL_TRIAL_CLUSTERS}, where "
                "Kenward-Roger intervals are conservative); the test's size is at most the "
                "nominal level by construction",
            ),
        )
    if clusters >= SMALL_TRIAL_CLUSTERS:
        return Choice(("kenward_roger",), chosen_by_default=True)
    why = (
        "randomisation inference is not available on individual records"
        if records
        else f"only {allocations} distinct allocations exist, too few for a 5% randomisation test"
    )
    return Choice(
        ("kenward_roger",),
        chosen_by_default=True,
        warning=f"Kenward-Roger inference although the trial has only {clusters} clusters "
        f"({why}): with so few clusters its intervals tend to be conservative",
    )


def default_lmm_method(clusters: int, allocations: int) -> str:
    """The LMM default on cell summaries for a design (simulations and benchmarks)."""
    return stepped_wedge_lmm("default", clusters, allocations, records=False).method


def fixed_default(requested: str, default: str) -> Choice:
    """Estimators whose default is one method whatever the design (GEE, GLMM, synthetic)."""
    if requested == "default":
        return Choice((default,), chosen_by_default=True)
    return Choice((requested,))
