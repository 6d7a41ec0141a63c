"""When each inference method can be trusted: the validity conditions the report states beside
the method every analysis used (issue: "state the validity conditions"), with the simulation
evidence from benchmarks/ where the toolkit measured it."""

from __future__ import annotations

import math
from typing import get_args

from pathfinder_eval.results import InferenceKey, InferenceUsed, RegionalDependence

# Methods that treat units as independent: a shock shared by a region's units is not in them.
_BY_UNIT: frozenset[InferenceKey] = frozenset(
    {
        "cr1",
        "cr2",
        "wild_bootstrap",
        "cohort_stratified",
        "influence_function",
        "ddd_cr2",
        "ddd_clustered",
        "multiplier_bootstrap",
        "cluster_bootstrap",
        "bjs_leave_out",
        "bjs_conservative",
        "two_stage_gmm",
    }
)

VALIDITY: dict[InferenceKey, str] = {
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
    "ddd_cr2": (
        "CR2 by LA with Bell-McCaffrey degrees of freedom, on the triple difference's "
        "comparisons of people, assumes LAs are independent and allows any correlation among "
        "an LA's people and periods; on children's records in 60 LAs its size stayed at or "
        "below 5% with 4 and 10 treated LAs (0.5–3.8%), but with 4 its intervals were about "
        "2.25 times as wide as needed (benchmarks/ddd_units_validity.py). A cell whose "
        "subgroup lies in one LA has no CR2 variance."
    ),
    "ddd_clustered": (
        "Influence functions summed within LAs with a t(G−1) reference assume independent LAs "
        "and many treated ones: on children's records in 60 LAs they rejected 10.8–25% of "
        "true nulls at 5% with 3 to 10 treated (benchmarks/ddd_units_validity.py)."
    ),
    "multiplier_bootstrap": (
        "The multiplier bootstrap is a large-sample method (many treated LAs per cohort); its "
        "uniform bands cover all event times jointly."
    ),
    "cluster_bootstrap": (
        "The cluster bootstrap redraws whole clusters (LAs, or the regions the analysis "
        "clusters by) and re-estimates every row; it assumes the clusters are independent "
        "and needs many of them, with many switching LAs among them: with 3 treated LAs of "
        "150 it rejected 13.5% of true nulls at 5% and with 10, 6.5% (benchmarks/"
        "did_validity.py). The authors recommend it where the analytic variance can be "
        "liberal (the continuous option)."
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
    "lmm_normal": (
        "A normal reference with the model-based standard error ignores the uncertainty in "
        "the variance components and over-rejects with few clusters (7% with 6 clusters)."
    ),
    "allocation_randomisation": (
        "The randomisation test is exact under the trial's random allocation of clusters to "
        "sequences whatever the number of clusters or the outcome's distribution (size 4.8% "
        "with 6 clusters; benchmarks/sw_coverage.py); its interval assumes a constant "
        "additive effect."
    ),
    "gee_kauermann_carroll": (
        "GEE with the Kauermann-Carroll sandwich and a t(I − p) reference is valid for the "
        "population-averaged effect if clusters are independent, even when the working "
        "correlation is wrong; with few clusters it is conservative (no effect, 6, 10 and 15 "
        "clusters: binary outcomes size 0%, 1.7% and 4.2%, with 15% of fits failing with 6, "
        "benchmarks/sw_binary_size.py; overdispersed counts per person 0%, 1.1% and 4.8%, with "
        "13% failing with 6, benchmarks/sw_count_size.py)."
    ),
    "glmm_t": (
        "The GLMM Wald test with t(I − 2) relies on the random-effects model being right; "
        "with few clusters and the nested-exchangeable default it is conservative (no "
        "effect, 6, 10 and 15 clusters: binary outcomes size 0.7%, 3.1% and 3.0%, "
        "benchmarks/sw_binary_size.py; overdispersed counts per person 2.8%, 3.6% and 4.5%, "
        "benchmarks/sw_count_size.py). Without the cluster-period effect (hussey_hughes) the "
        "counts' extra variation between cells is ignored and it rejected 7.9%, 16% and 19%."
    ),
    "sc_placebo_conformal": (
        "Placebo-in-space p-values are exact only if the treated unit could as well have been "
        "any donor; with few donors the smallest attainable p-value is 1/(donors + 1)."
    ),
    "sdid_placebo": (
        "The placebo variance re-assigns treatment to comparison units and assumes their "
        "errors resemble the treated units'; with one or two treated units it is approximate."
    ),
    "bjs_leave_out": (
        "The imputation estimator's conservative variance (Borusyak, Jaravel & Spiess 2024, "
        "Theorem 3) assumes LAs are independent; with fewer than 20 treated LAs the default "
        "averages effects over each row's cells, leaves each unit out and uses "
        "Bell-McCaffrey degrees of freedom (size 1–5% with 3–10 treated of 150 LAs, "
        "conservative with 3; benchmarks/did_size.py)."
    ),
    "pooled_panel": (
        "The comparison-pooled variance learns the treated units' noise from the many "
        "comparison units, scaled by unit size, and adds the shocks that units in one region "
        "share, learned from the comparison units' regions; its degrees of freedom are those "
        "of the variance estimate itself (a parametric bootstrap of the fitted noise model). "
        "It assumes the treated units' errors, after scaling by size, come from the "
        "distribution the comparison units show, and regions' shocks are independent. On "
        "English-LA-shaped panel designs (2 to 10 treated LAs, within one region or spread, "
        "regional shocks from none to strong, 8 or 13 periods; benchmarks/did_validity.py, "
        "1,000 replications each) the DiD estimators' size stayed between 3.0% and 6.1% and "
        "coverage between 93.5% and 97.4%, with intervals 0.96 to 1.19 times the narrowest "
        "valid width; the regional part counts as estimated, so it is unbiased when regional "
        "shocks are small. For synthetic DiD it takes the estimate linearised in the outcomes, so "
        "the noise the fitted unit and time weights pick up counts: size 2.4–6.3%, coverage "
        "93.7–97.3% and width 0.99–1.13 on all 48 cells, and 2.7–6.3%, 94.1–97.3% and "
        "0.98–1.11 on the 33 rerun with the regional part as estimated (holding the weights "
        "fixed had covered 92–93% with 7 to 10 treated LAs in one region and strong regional "
        "shocks)."
    ),
    "ols": (
        "Classical OLS standard errors assume independent, equally variable observations; "
        "with repeated observations of the same units they are usually too small."
    ),
    "hc1": (
        "Heteroskedasticity-robust (HC1) standard errors assume independent observations; "
        "with repeated observations of the same units cluster by unit instead."
    ),
    "bjs_conservative": (
        "BJS's conservative clustered variance (Theorem 3) with a t(G−1) reference assumes LAs "
        "are independent and needs many treated LAs: with 3, 7 and 10 treated of 150 it "
        "rejected 84%, 18% and 15% of true nulls in simulation (benchmarks/did_size.py)."
    ),
    "two_stage_gmm": (
        "did2s's GMM standard errors with a t(G−1) reference carry the first stage's error "
        "into the second, assume LAs are independent, and like any cluster-robust variance "
        "need many treated LAs: below 20 treated the default uses the imputation estimator's "
        "small-sample variance instead (the two estimates are identical)."
    ),
    "gee_mancl_derouen": (
        "GEE with the Mancl-DeRouen bias-corrected sandwich and a t(I − p) reference is valid "
        "for the population-averaged effect if clusters are independent, even when the working "
        "correlation is wrong; it corrects more than Kauermann-Carroll, so with few clusters it "
        "tends to be conservative (Ford & Westgate 2017)."
    ),
    "lmm_mancl_derouen": (
        "The mixed model's estimate with a Mancl-DeRouen cluster-robust standard error and a "
        "t(I − 1) reference is valid for the mean intervention effect if clusters are "
        "independent, even when the covariance model is wrong (for example when clusters have "
        "their own intervention effects or correlation decays over time): for the "
        "time-averaged effect its size was 4.3–5.3% and coverage 94.5–95.9% with 6 to 15 "
        "clusters in simulation (4,000 trials per design), with intervals 1.47–1.50 times the "
        "oracle's with 6 clusters, 1.25–1.29 times with 10 and 1.15–1.20 times with 15 "
        "(benchmarks/sw_coverage.py --processes). Its variance is estimated from the clusters "
        "and read against t(I − 1): t(5)'s 2.57 and t(9)'s 2.26 against the oracle's 1.96 "
        "alone make intervals 1.31 and 1.15 times as wide. With 6 or 10 clusters no analysis "
        "tried met the 1.25 width target while keeping coverage within 94–96%: the random-slope "
        "model with Kenward-Roger was narrower with 10 (1.08–1.16 times) but covered 96.2–96.3% "
        "in two of the four processes, and 97.7% with 6. Below 6 "
        "clusters it is conservative: with 4 and 5 clusters (one per sequence) it rejected "
        "0.8% and 1.1% of true nulls at 5% and its 95% intervals covered 99.1–99.2%, where "
        "the randomisation test held 5.0% and 4.0% (benchmarks/sw_coverage.py 1000 2 4 5)."
    ),
    "lmm_cr2": (
        "The mixed model's estimate with the bias-reduced linearisation (CR2) cluster-robust "
        "standard error and Satterthwaite degrees of freedom is valid for the mean intervention "
        "effect if clusters are independent, even when the covariance model is wrong; its "
        "degrees of freedom come from the fitted model, so they are approximate when it is."
    ),
    "gee_cr2": (
        "GEE with the bias-reduced linearisation sandwich (CR2, as R's clubSandwich) and "
        "Satterthwaite degrees of freedom is valid for the population-averaged effect if "
        "clusters are independent, even when the working correlation is wrong; its degrees of "
        "freedom come from the working model, so they are only approximate when that model is "
        "wrong. It is offered to match analyses run with clubSandwich; the default "
        "Kauermann-Carroll sandwich with t(I − p) is the one checked by simulation here."
    ),
    "gee_fay_graubard": (
        "GEE with the Fay-Graubard bias-corrected sandwich and a t(I − p) reference is valid "
        "for the population-averaged effect if clusters are independent, even when the working "
        "correlation is wrong; how close to nominal it stays with few clusters depends on the "
        "design's leverage (Fay & Graubard 2001): check it with `pathfinder-eval power "
        "--simulate`."
    ),
    "gee_sandwich": (
        "The uncorrected sandwich (Liang & Zeger 1986) underestimates the variance when clusters "
        "are few, so tests over-reject: with a normal reference it rejected 21%, 12% and 10% of "
        "true nulls with 6, 10 and 15 clusters (binary outcomes; benchmarks/sw_binary_size.py); "
        "the t(I − p) reference used here reduces but does not remove this."
    ),
    "gee_model_based": (
        "Model-based GEE standard errors are right only if the working correlation is the true "
        "one; otherwise they are biased in either direction. The bias-corrected sandwiches do "
        "not need that assumption."
    ),
    "glmm_normal": (
        "The GLMM Wald test with a normal reference ignores that the variance components are "
        "estimated from few clusters: with binary outcomes and no effect it rejected 6.7%, 6.1% "
        "and 5.4% of true nulls with 6, 10 and 15 clusters (Hussey & Hughes; "
        "benchmarks/sw_binary_size.py)."
    ),
    "sdid_jackknife": (
        "The jackknife variance leaves out one unit at a time with the weights held fixed; it "
        "needs at least two treated units and is conservative with few of them (Arkhangelsky et "
        "al. 2021, Algorithm 3)."
    ),
    "sdid_bootstrap": (
        "The unit bootstrap resamples units and refits the weights; it needs many treated units "
        "(Arkhangelsky et al. 2021, Algorithm 2)."
    ),
}


# Short names for the headline table (the Methods section gives the estimator's full label).
SHORT: dict[InferenceKey, str] = {
    "cr1": "cluster-robust (CR1), t(G−1)",
    "cr2": "CR2 with Bell-McCaffrey df",
    "wild_bootstrap": "wild cluster restricted bootstrap",
    "timing_randomisation": "randomisation of start dates",
    "conley_taber": "Conley-Taber",
    "cohort_stratified": "cohort-stratified variance with Bell-McCaffrey df",
    "influence_function": "influence-function SEs, normal reference",
    "ddd_cr2": "CR2 by LA with Bell-McCaffrey df",
    "ddd_clustered": "influence functions summed by LA, t(G−1)",
    "multiplier_bootstrap": "multiplier bootstrap",
    "cluster_bootstrap": "cluster bootstrap, normal reference",
    "kenward_roger": "Kenward-Roger SE and df",
    "satterthwaite": "Satterthwaite df",
    "lmm_normal": "model-based SE, normal reference",
    "allocation_randomisation": "randomisation test over allocations",
    "gee_kauermann_carroll": "bias-corrected sandwich, t(I − p)",
    "glmm_t": "Wald, t(I − 2)",
    "sc_placebo_conformal": "placebo-in-space and conformal inference",
    "sdid_placebo": "placebo variance",
    "bjs_leave_out": "BJS conservative variance",
    "pooled_panel": "comparison-pooled variance (size- and region-aware)",
    "ols": "classical OLS SE",
    "hc1": "heteroskedasticity-robust (HC1) SE",
    "bjs_conservative": "BJS conservative variance, t(G−1)",
    "two_stage_gmm": "did2s GMM variance, t(G−1)",
    "gee_mancl_derouen": "Mancl-DeRouen sandwich, t(I − p)",
    "gee_fay_graubard": "Fay-Graubard sandwich, t(I − p)",
    "gee_cr2": "CR2 sandwich, Satterthwaite df",
    "lmm_mancl_derouen": "LMM with Mancl-DeRouen sandwich, t(I − 1)",
    "lmm_cr2": "LMM with CR2 sandwich, Satterthwaite df",
    "gee_sandwich": "uncorrected sandwich, t(I − p)",
    "gee_model_based": "model-based SE, t(I − p)",
    "glmm_normal": "Wald, normal reference",
    "sdid_jackknife": "jackknife variance",
    "sdid_bootstrap": "bootstrap variance",
}


def validity(used: InferenceUsed) -> str:
    """The conditions under which the inference an analysis used is valid, and what the panel's
    measured regional dependence and the treated units' geography mean for them here."""
    dep = used.dependence
    if dep is None or not dep.regions_known:
        return VALIDITY[used.key]
    top, k = dep.treated_regions[0] if dep.treated_regions else ("", 0)
    if used.key == "pooled_panel":
        here = (
            f" Here {k} of the {dep.n_treated} treated units are in {top}, so a shock to that "
            "region would look like an effect: the variance includes the regional shock "
            f"component learned from the comparison units of {dep.n_regions} regions."
            if dep.concentrated
            else f" Here the treated units are spread over {len(dep.treated_regions)} regions "
            "(at most "
            f"{k} in one), and the variance includes the regional component the comparison "
            "units show."
        )
        return VALIDITY[used.key] + here
    if used.key in _BY_UNIT and dep.dependent:
        return VALIDITY[used.key] + (
            " Caution: this panel's comparison units move together within regions (the "
            "measured correlation is clearly above zero), which this method does not allow "
            "for; the comparison-pooled variance (inference: pooled) does."
        )
    return VALIDITY[used.key]


def dependence_statement(dep: RegionalDependence | None) -> str:
    """The regional dependence measured on the panel and where the treated units are, in
    words ("" when the analysis did not measure it)."""
    if dep is None:
        return ""
    if not dep.regions_known:
        return (
            "Regional dependence not measured: the data do not give every treated unit's "
            "region, so shocks shared within regions are assumed absent."
        )
    where = ", ".join(f"{region} {n}" for region, n in dep.treated_regions)
    if not math.isfinite(dep.rho):
        return (
            f"Regional dependence could not be measured: the panel's {dep.n_comparison} "
            f"comparison units with a complete series give {dep.n_regions} region"
            f"{'' if dep.n_regions == 1 else 's'} enough of them to show whether units of a "
            f"region move together. Treated units by region: {where}."
        )
    return (
        f"Regional dependence measured on {dep.n_comparison} comparison units in "
        f"{dep.n_regions} regions: residuals of units in the same region and period correlate "
        f"{_r(dep.rho, dep.rho_se)}, year-to-year changes {_r(dep.change_rho, dep.change_rho_se)}"
        f" ({'clearly' if dep.dependent else 'not clearly'} above zero). Treated units by "
        f"region: {where}."
    )


def _r(value: float, se: float) -> str:
    return f"{value:.3f}" + (f" (SE {se:.3f})" if math.isfinite(se) else " (SE not estimable)")


def short_inference(used: InferenceUsed) -> str:
    """A short name of the inference for the headline table, with "chosen for this design"
    when the default switched to it for this design."""
    return SHORT[used.key] + ("; chosen for this design" if used.reason else "")


def _check() -> None:
    """Every key of the vocabulary has its statement and short name."""
    keys = set(get_args(InferenceKey))
    if keys != set(VALIDITY) or keys != set(SHORT):
        raise RuntimeError(f"validity texts out of step: {sorted(keys ^ set(VALIDITY))}")


_check()
