"""When each inference method can be trusted: the validity conditions the report states beside
the method every analysis used (issue: "state the validity conditions"), with the simulation
evidence from benchmarks/ where the toolkit measured it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

VALIDITY = {
    "cr1": (
        "Cluster-robust (CR1) standard errors with a t(G−1) reference assume LAs are "
        "independent and need many treated LAs: with fewer than about 20 treated they "
        "over-reject (MacKinnon & Webb 2017; benchmarks/did_size.py: 13–27% at 5% with 3 "
        "to 10 treated of 150)."
    ),
    "cr2": (
        "CR2 with Bell-McCaffrey degrees of freedom assumes LAs are independent and allows any "
        "serial correlation and heteroskedasticity within an LA; with 3, 7 or 10 treated of "
        "150 LAs its size stayed between 3% and 6% in simulation (benchmarks/did_size.py). "
        "Intervals widen sharply when very few LAs are treated."
    ),
    "wild_bootstrap": (
        "The wild cluster restricted bootstrap (Webb weights) assumes independent LAs; with "
        "very few treated LAs its p-values are valid but its intervals can be uninformative "
        "(MacKinnon & Webb 2017)."
    ),
    "timing_randomisation": (
        "Re-assigning start dates across LAs gives an exact test only if the timing was as-if "
        "random across LAs; pilots chose their LAs, so treat it as a sensitivity check. The "
        "interval assumes a constant additive effect."
    ),
    "conley_taber": (
        "Conley-Taber assumes the treated LAs' errors come from the same distribution as the "
        "comparison LAs' and needs many comparison LAs; it suits very few treated LAs."
    ),
    "cohort_stratified": (
        "The cohort-stratified variance assumes LAs are independent and lets each start cohort "
        "have its own variance; a cohort of one LA borrows the pooled within-cohort "
        "covariance. With 3, 7 or 10 treated of 150 LAs its size was 4.6–5.6% and coverage "
        "94.4–95.4% in simulation, where did's influence-function standard errors rejected "
        "9–27% of true nulls (benchmarks/did_size.py)."
    ),
    "influence_function": (
        "Influence-function standard errors with a normal reference are large-sample "
        "approximations: they need many treated LAs in every cohort."
    ),
    "multiplier_bootstrap": (
        "The multiplier bootstrap is a large-sample method (many treated LAs per cohort); its "
        "uniform bands cover all event times jointly."
    ),
    "kenward_roger": (
        "Kenward-Roger assumes the mixed model's covariance structure is right and clusters "
        "are independent; in simulation its size was 4.6–5.3% with 8 to 15 clusters and "
        "3.6% (conservative) with 6 (benchmarks/sw_coverage.py)."
    ),
    "satterthwaite": (
        "Satterthwaite degrees of freedom with the model-based standard error are liberal "
        "with few clusters (size 6.0% with 6 and 8 clusters; benchmarks/sw_coverage.py)."
    ),
    "model_based": (
        "A normal reference with the model-based standard error ignores the uncertainty in "
        "the variance components and over-rejects with few clusters (7% with 6 clusters)."
    ),
    "randomisation": (
        "The randomisation test is exact under the trial's random allocation of clusters to "
        "sequences whatever the number of clusters or the outcome's distribution (size 4.8% "
        "with 6 clusters; benchmarks/sw_coverage.py); its interval assumes a constant "
        "additive effect."
    ),
    "gee": (
        "GEE with the Kauermann-Carroll sandwich and a t(I − p) reference is valid for the "
        "population-averaged effect if clusters are independent, even when the working "
        "correlation is wrong; with few clusters it is conservative (binary outcomes, no "
        "effect: size 0%, 1.4% and 4.7% with 6, 10 and 15 clusters, and 17% of fits failing "
        "with 6; benchmarks/sw_binary_size.py)."
    ),
    "glmm": (
        "The GLMM Wald test with t(I − 2) relies on the random-effects model being right; "
        "with few clusters it is conservative (binary outcomes, no effect: size 0.8%, 3.0% "
        "and 3.6% with 6, 10 and 15 clusters, where a normal reference gives 6.1%, 6.0% and "
        "5.6%; benchmarks/sw_binary_size.py)."
    ),
    "synthetic_control": (
        "Placebo-in-space p-values are exact only if the treated unit could as well have been "
        "any donor; with few donors the smallest attainable p-value is 1/(donors + 1)."
    ),
    "synthetic_did": (
        "The placebo variance re-assigns treatment to comparison units and assumes their "
        "errors resemble the treated units'; with one or two treated units it is approximate."
    ),
    "imputation": (
        "The imputation estimator's conservative variance (Borusyak, Jaravel & Spiess 2024, "
        "Theorem 3) assumes LAs are independent; with fewer than 20 treated LAs the default "
        "averages effects over each row's cells, leaves each unit out and uses "
        "Bell-McCaffrey degrees of freedom (size 1–5% with 3–10 treated of 150 LAs, "
        "conservative with 3; benchmarks/did_size.py)."
    ),
}

# Short names for the headline table (the Methods section gives the estimator's full label).
SHORT = {
    "cr1": "cluster-robust (CR1), t(G−1)",
    "cr2": "CR2 with Bell-McCaffrey df",
    "wild_bootstrap": "wild cluster restricted bootstrap",
    "timing_randomisation": "randomisation of start dates",
    "conley_taber": "Conley-Taber",
    "cohort_stratified": "cohort-stratified variance with Bell-McCaffrey df",
    "influence_function": "influence-function SEs, normal reference",
    "multiplier_bootstrap": "multiplier bootstrap",
    "kenward_roger": "Kenward-Roger SE and df",
    "satterthwaite": "Satterthwaite df",
    "model_based": "model-based SE, normal reference",
    "randomisation": "randomisation test over allocations",
    "gee": "bias-corrected sandwich, t(I − p)",
    "glmm": "Wald, t(I − 2)",
    "synthetic_control": "placebo-in-space and conformal inference",
    "synthetic_did": "placebo variance",
    "imputation": "BJS conservative variance",
}

# The inference of estimators that have one method only.
FIXED = {
    "stepped_wedge_gee": "gee",
    "stepped_wedge_glmm": "glmm",
    "synthetic_control": "synthetic_control",
    "synthetic_did": "synthetic_did",
    "twfe_poisson": "cr1",
    "bacon": "cr1",
}


def inference_key(estimator: str, diagnostics: Mapping[str, Any]) -> str | None:
    """The VALIDITY key of the method an analysis used: what the estimator recorded
    (`inference_method`, or the stepped-wedge LMM's `df_method`), else its only method."""
    key = diagnostics.get("inference_method") or diagnostics.get("df_method")
    return key if key in VALIDITY else FIXED.get(estimator)


def validity(estimator: str, diagnostics: Mapping[str, Any]) -> str:
    """The validity statement for an analysis ("" when none applies, e.g. a decomposition)."""
    key = inference_key(estimator, diagnostics)
    return VALIDITY[key] if key else ""


def short_inference(estimator: str, diagnostics: Mapping[str, Any], label: str) -> str:
    """A short name of the inference for the headline table, with "default for this design"
    when the estimator's default chose it; the full `label` when no short name applies."""
    key = inference_key(estimator, diagnostics)
    if key is None or key not in SHORT:
        return label
    return SHORT[key] + ("; chosen for this design" if "chosen" in label else "")
