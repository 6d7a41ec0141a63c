"""One table of every estimator a design can name: its class (which carries its typed options,
settings.py), the label and method text the report shows, its family, and whether the
placebo-in-time robustness check re-runs it. Adding an estimator adds one row here."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from pathfinder_eval.estimator_labels import LABELS
from pathfinder_eval.settings import EstimatorSettings
from pathfinder_eval.spec import Estimator


@dataclass(frozen=True)
class Entry:
    """An estimator: `fitter` ("module:Class" under pathfinder_eval.estimators) fits it (None:
    descriptive trends, nothing to fit), imported when first used so that a design loads only
    the engines it names; `label` names it in the report, `method_text` describes it in
    Methods ("" for none); `family` groups it (did, stepped_wedge, synthetic); `placebo`: the
    placebo-in-time check re-runs it."""

    fitter: str | None
    label: str
    method_text: str
    family: str
    placebo: bool = False

    @property
    def cls(self) -> type[EstimatorSettings] | None:
        """The estimator's class (its typed options model), imported on first use."""
        if self.fitter is None:
            return None
        module, name = self.fitter.split(":")
        return getattr(importlib.import_module(f"pathfinder_eval.estimators.{module}"), name)


REGISTRY: dict[Estimator, Entry] = {
    Estimator.DESCRIPTIVE: Entry(
        None,
        LABELS["descriptive"],
        "",
        "descriptive",
    ),
    Estimator.TWFE: Entry(
        "did.twfe:TwoWayFixedEffects",
        LABELS["twfe"],
        (
            "Linear regression of the outcome on a treatment indicator with LA and period fixed "
            "effects, fitted by ordinary least squares (linearmodels PanelOLS); the default "
            "inference is chosen for the design (the comparison-pooled variance with few treated "
            "LAs or a regional concentration, CR2 with Bell-McCaffrey degrees of freedom below 20"
            " treated, CR1 above; see Inference used). With staggered starts and effects "
            "that vary over time this estimator can be biased (Goodman-Bacon 2021); it is shown "
            "as the conventional benchmark."
        ),
        "did",
        placebo=True,
    ),
    Estimator.TWFE_POISSON: Entry(
        "did.twfe_poisson:PoissonTWFE",
        LABELS["twfe_poisson"],
        "",
        "did",
    ),
    Estimator.EVENT_STUDY: Entry(
        "did.twfe:EventStudy",
        LABELS["event_study"],
        (
            "Two-way fixed-effects regression on indicators of periods since start (endpoints "
            "binned, the period before start as reference), the default inference chosen for the "
            "design as for TWFE (see Inference used); a joint Wald test of the pre-period "
            "coefficients checks for differential pre-trends."
        ),
        "did",
    ),
    Estimator.STEPPED_WEDGE: Entry(
        "stepped_wedge.lmm_estimator:SteppedWedge",
        LABELS["stepped_wedge"],
        (
            "Linear mixed model for the individual outcomes with period effects (categorical by "
            "default; linear or a natural cubic spline on request) and an intervention effect "
            "(by default one per exposure time, reported as the time-averaged effect over "
            "exposure times and the point effects, Kenny et al. 2022, with the immediate-effect "
            "model's estimate beside it and a test that the effect is constant; or immediate, "
            "or a natural cubic spline in exposure time), "
            "fitted by exact restricted maximum likelihood on cluster-period means, sizes and "
            "within-cell sums of squares. Random effects: nested exchangeable (cluster and "
            "cluster-period intercepts; Hooper et al. 2016) by default, or Hussey & Hughes (2007)"
            " cluster intercepts, or exponential decay of the between-period correlation (Kasza "
            "et al. 2019). Inference by default: the Mancl-DeRouen (2001) cluster-robust "
            "standard error with a t(I − 1) reference, valid when the covariance model is wrong; "
            "Kenward-Roger (Kenward & Roger 1997), Satterthwaite, CR2 or an exact randomisation "
            "test re-allocating clusters to sequences (interval by test inversion) on request. "
            "ICC and cluster autocorrelation (CAC) from the variance components."
        ),
        "stepped_wedge",
    ),
    Estimator.STEPPED_WEDGE_GEE: Entry(
        "stepped_wedge.gee_estimator:SteppedWedgeGEE",
        LABELS["stepped_wedge_gee"],
        (
            "Generalised estimating equations for the individual outcomes (identity, logit or log"
            " link) with period effects and the intervention effect; working correlation nested "
            "exchangeable (within-period and between-period correlations; Li, Turner & Preisser "
            "2018, Biometrics 74:1450–1458) by default, estimated by matrix-adjusted estimating "
            "equations (Preisser, Lu & Qaqish 2008). Standard errors: Kauermann-Carroll bias-"
            "corrected sandwich by default (Mancl-DeRouen, Fay-Graubard, robust and model-based "
            "on request) with a t reference on clusters minus mean parameters, which keeps tests "
            "near their nominal size with few clusters."
        ),
        "stepped_wedge",
    ),
    Estimator.STEPPED_WEDGE_GLMM: Entry(
        "stepped_wedge.glmm_estimator:SteppedWedgeGLMM",
        LABELS["stepped_wedge_glmm"],
        (
            "Generalised linear mixed model for binary outcomes (binomial, logit link) or counts "
            "(Poisson, log link with the population as offset) on cluster-period cells, with "
            "period effects and the intervention effect; random cluster intercepts (Hussey & "
            "Hughes), cluster and cluster-period intercepts (nested exchangeable) or exponential "
            "decay; maximum likelihood by the Laplace approximation or adaptive Gauss-Hermite "
            "quadrature (as lme4's glmer). Wald inference with a t reference on clusters minus 2 "
            "degrees of freedom (between-within rule; Li & Redden 2015)."
        ),
        "stepped_wedge",
    ),
    Estimator.CALLAWAY_SANTANNA: Entry(
        "did.callaway_santanna:CallawaySantAnna",
        LABELS["callaway_santanna"],
        (
            "Group-time average effects ATT(g,t) for each start cohort g and period t, each a 2×2"
            " comparison with never-treated (or not-yet-treated) LAs from the period before the "
            "start, by doubly robust, inverse-probability-weighted or outcome-regression "
            "estimation (Callaway & Sant'Anna 2021, J. Econometrics 225:200–230; as R's did), "
            "aggregated with explicit weights (overall, by event time, cohort or calendar "
            "period); the default inference is chosen for the design (the comparison-pooled "
            "variance with few treated LAs or a regional concentration, else below 20 treated a "
            "cohort-stratified variance with Bell-McCaffrey degrees of freedom), otherwise "
            "standard errors from the influence functions clustered by LA, or the multiplier "
            "bootstrap with uniform bands; pre-test of parallel trends on the pre-start cells."
        ),
        "did",
        placebo=True,
    ),
    Estimator.SUN_ABRAHAM: Entry(
        "did.sun_abraham:SunAbraham",
        LABELS["sun_abraham"],
        (
            "Interaction-weighted event study (Sun & Abraham 2021, J. Econometrics 225:175–199): "
            "cohort-by-relative-period effects estimated against never-treated units with unit "
            "and period fixed effects, averaged over cohorts with their sample shares; the "
            "default inference is chosen for the design (the comparison-pooled variance with few "
            "treated LAs or a regional concentration, else below 20 treated the cohort-stratified"
            " variance or CR2), otherwise standard errors clustered by unit (CR1)."
        ),
        "did",
    ),
    Estimator.IMPUTATION: Entry(
        "did.imputation:Imputation",
        LABELS["imputation"],
        (
            "Imputation estimator (Borusyak, Jaravel & Spiess 2024, Rev. Econ. Stud.): unit and "
            "period effects fitted on untreated observations only, the untreated outcome imputed "
            "for each treated cell and the differences averaged; their conservative clustered "
            "variance (Theorem 3) with a t(G−1) reference, unless the default chooses for the "
            "design the comparison-pooled variance (few treated LAs or a regional concentration) "
            "or, below 20 treated, the leave-one-out version with Bell-McCaffrey degrees of "
            "freedom; a pre-trend test on untreated cells."
        ),
        "did",
    ),
    Estimator.ETWFE: Entry(
        "did.etwfe_estimator:Etwfe",
        LABELS["etwfe"],
        (
            "Extended two-way fixed effects (Wooldridge 2021; 2023, Econometrics J. 26:C31–C66): "
            "one regression with LA and period effects and a separate effect for every treated "
            "cohort × period cell (with covariates, their cohort, period and cell "
            "interactions), compared with not-yet-treated or never-treated cells and averaged "
            "over treated cells and by event time, as R's etwfe; linear, or Poisson on counts "
            "with a log-population offset (log rate ratios). The linear fit's default inference "
            "is chosen for the design (the comparison-pooled variance with few treated LAs or a "
            "regional concentration; below 20 treated the imputation estimator's small-sample "
            "variance, its estimates being the same, or CR2 with covariates or never-treated "
            "controls; CR1 above); the Poisson fit's the comparison-pooled variance of its "
            "first-order weights on the rates with few treated LAs, a regional concentration or "
            "below 20 treated, CR1 by LA with a t(G−1) reference above."
        ),
        "did",
    ),
    Estimator.TWO_STAGE: Entry(
        "did.two_stage:TwoStage",
        LABELS["two_stage"],
        (
            "Two-stage difference-in-differences (Gardner 2022; R did2s): LA and period effects "
            "fitted on untreated LA-periods only, subtracted from every outcome, and the "
            "remainder regressed on treated-cell and event-time indicators; its estimates equal"
            " the imputation estimator's. did2s's GMM standard errors carry the first stage's "
            "error, unless the default chooses for the design the comparison-pooled variance "
            "(few treated LAs or a regional concentration) or, below 20 treated, the "
            "imputation estimator's small-sample variance."
        ),
        "did",
    ),
    Estimator.STACKED: Entry(
        "did.stacked:Stacked",
        LABELS["stacked"],
        (
            "Stacked difference-in-differences (Wing, Freedman & Hollingsworth 2024, NBER WP "
            "32054): one sub-experiment per start date with the LAs starting then and clean "
            "comparison LAs (not started before the window ends), over a common window of event"
            " times; the sub-experiments are stacked and an event-study regression weighted so "
            "that each start date counts by its share of treated LAs (their corrective weights)"
            " gives the trimmed aggregate ATT. Start dates whose window does not fit the data "
            "are left out and named. Standard errors clustered by LA (CR1, t(G−1)), unless the"
            " default chooses for the design the comparison-pooled variance (few treated LAs or"
            " a regional concentration) or, below 20 treated, the cohort-stratified variance."
        ),
        "did",
    ),
    Estimator.DID_MULTIPLEGT_DYN: Entry(
        "did.multiplegt_dyn:MultiplegtDyn",
        LABELS["did_multiplegt_dyn"],
        (
            "de Chaisemartin & D'Haultfœuille's (2024, Review of Economics and Statistics) "
            "dynamic difference-in-differences, as their did_multiplegt_dyn: each LA whose "
            "treatment first changes is compared, ℓ periods on, with the LAs of the same "
            "starting treatment that have not changed yet, so LAs that pause or stop are "
            "allowed; effect ℓ is the mean of those comparisons, the placebos repeat them over "
            "the periods before the change, and the average total effect weights the effects "
            "by the treatment received. The authors' analytic standard errors (normal "
            "reference), unless the default chooses for the design the comparison-pooled "
            "variance (few treated LAs or a regional concentration) or, below 20 treated, the "
            "cohort-stratified variance."
        ),
        "did",
    ),
    Estimator.CONTINUOUS_DID: Entry(
        "did.continuous:ContinuousDid",
        LABELS["continuous_did"],
        (
            "Difference-in-differences with a continuous treatment (Callaway, Goodman-Bacon & "
            "Sant'Anna 2024), as R contdid's parametric estimator: for each start date and "
            "period from the start on, the treated LAs' change in the outcome since the period "
            "before their start is regressed on a B-spline in their dose and compared with the "
            "change in the LAs not yet treated; averaged over periods with each start date's "
            "share of treated LAs, this gives the average effect (ATT), the average causal "
            "response per unit of dose (ACRT) and both as curves over the dose. The same "
            "comparisons before the start test parallel trends. Influence-function standard "
            "errors (normal reference) unless the default chooses for the design the "
            "comparison-pooled variance (fewer than 20 treated LAs or a regional "
            "concentration). Parallel trends in the dose-response (strong parallel trends) are "
            "needed to read the curve's differences between doses as causal."
        ),
        "did",
    ),
    Estimator.TRIPLE_DIFFERENCE: Entry(
        "did.triple_difference_estimator:TripleDifference",
        LABELS["triple_difference"],
        (
            "Triple differences on individual records (Ortiz-Villavicencio & Sant'Anna 2025), "
            "as Python moderndid's ddd: for each start date and period, the change in the "
            "outcome of the people the reform targets in the starting LAs is compared with "
            "that of the same LAs' untargeted people and with both groups in the comparison "
            "LAs (each comparison a doubly robust DiD on the people observed in both periods), "
            "then averaged over start dates and periods by the number of targeted people. "
            "Shocks common to an LA's two groups cancel, so parallel trends is needed only for "
            "the gap between them. Standard errors cluster by LA: CR2 with Bell-McCaffrey "
            "degrees of freedom by default, or the influence-function sums with a t(G − 1) "
            "reference (cluster_robust)."
        ),
        "did",
    ),
    Estimator.BACON: Entry(
        "did.bacon:BaconDecomposition",
        LABELS["bacon"],
        (
            "Goodman-Bacon (2021, J. Econometrics 225:254–277) decomposition of the two-way "
            "fixed-effects estimate into every 2×2 comparison (earlier vs later treated, later vs"
            " earlier treated — already-treated units as controls — and treated vs never treated)"
            " with its weight: it shows how much of the conventional estimate rests on "
            "comparisons that are biased when effects change over time."
        ),
        "did",
    ),
    Estimator.SYNTHETIC_CONTROL: Entry(
        "synthetic.estimators:SyntheticControl",
        LABELS["synthetic_control"],
        (
            "For each treated unit, convex weights on comparison units that best reproduce its "
            "pre-period outcomes (equal weight on every pre-period outcome); the gap after the "
            "start estimates the effect. Inference: placebo-in-space permutation of the post/pre "
            "RMSPE ratio (Abadie, Diamond & Hainmueller 2010, JASA 105:493–505) and a conformal "
            "confidence set for a constant effect by test inversion (Chernozhukov, Wüthrich & Zhu"
            " 2021, JASA 116:1849–1864); leave-one-donor-out estimates check robustness."
        ),
        "synthetic",
    ),
    Estimator.SYNTHETIC_DID: Entry(
        "synthetic.estimators:SyntheticDiD",
        LABELS["synthetic_did"],
        (
            "Synthetic difference-in-differences: unit and time weights chosen so that weighted "
            "comparison units track the treated units before the start, then a weighted DiD "
            "(Arkhangelsky, Athey, Hirshberg, Imbens & Wager 2021, AER 111:4088–4118, with the "
            "paper's regularisation); by default the comparison-pooled variance of the estimate "
            "linearised in the outcomes (the fitted weights' own noise included; size- and "
            "region-aware, t reference), or the "
            "placebo variance from re-assignments of treatment to comparison units (their "
            "Algorithm 4, normal reference) when too few donors have complete series."
        ),
        "synthetic",
    ),
}


def entry(estimator: Estimator | str) -> Entry:
    """The registry row of an estimator (by enum or its design-file name)."""
    return REGISTRY[Estimator(estimator)]


def _check() -> None:
    """Every estimator has a row (that each class carries its design options model is checked
    in tests, which import them all)."""
    missing = set(Estimator) ^ set(REGISTRY)
    if missing:
        raise RuntimeError(f"registry rows missing or extra: {sorted(missing)}")


_check()
