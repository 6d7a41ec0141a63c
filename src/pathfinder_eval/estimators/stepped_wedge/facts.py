"""Typed facts of the stepped-wedge models' results (results.Facts): model, estimation,
variance components, correlations, convergence and the design summary the report and the
CONSORT-SW items read; fields in the JSON's order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pathfinder_eval.results import OMITTED, Facts


@dataclass(frozen=True, kw_only=True)
class LmmFacts(Facts):
    """Linear mixed model. df_method: the inference method used; icc and cac with Wald-logit
    intervals; design: sequences, clusters, periods, cells and sizes; contrasts: each
    reported contrast's weights; individual_level (records path), randomisation (the
    randomisation test), effect_constancy (the test that the effect is the same at every
    exposure time), immediate_effect (the immediate-effect model's estimate beside the TATE)
    and effect_shape_choice (why the default estimand) are OMITTED when not used."""

    model: str
    effect_shape: str
    period_effects: str
    estimation: str
    df_method: str
    variance_components: dict[str, float]
    icc: float
    icc_ci: list[float]
    cac: float
    cac_ci: list[float]
    correlation_ci_method: str
    reml_criterion: float
    convergence: dict[str, Any]
    design: dict[str, Any]
    contrasts: dict[str, list[float]]
    individual_level: dict[str, Any] = OMITTED
    randomisation: dict[str, Any] = OMITTED
    effect_constancy: dict[str, Any] = OMITTED
    immediate_effect: dict[str, Any] = OMITTED
    effect_shape_choice: str = OMITTED


@dataclass(frozen=True, kw_only=True)
class GeeFacts(Facts):
    """GEE: the working correlation's parameters with their sandwich SEs, dispersion,
    convergence, every SE type per term side by side and the one used (se_used)."""

    family: str
    link: str
    working_correlation: str
    correlation_method: str
    equations: str
    correlation_parameters: dict[str, float]
    correlation_parameter_se: dict[str, dict[str, float | None]]
    correlation_se_note: str | None
    dispersion: float
    convergence: dict[str, Any]
    standard_errors: dict[str, dict[str, float]]
    se_used: str
    df_rule: str
    design: dict[str, Any]
    contrasts: dict[str, list[float]]


@dataclass(frozen=True, kw_only=True)
class GlmmFacts(Facts):
    """GLMM: variance components, latent-scale ICC and CAC, likelihood, convergence and the
    effects as ratios (under "odds_ratio" or "rate_ratio" by family, `ratio_key`)."""

    model: str
    family: str
    link: str
    effect_shape: str
    period_effects: str
    estimation: str
    quadrature_points: int
    vcov_method: str
    df_method: str
    df: float
    variance_components: dict[str, float]
    icc_latent: float | None
    icc_scale: str
    cac: float | None
    loglik: float
    deviance: float
    convergence: dict[str, Any]
    ratio_key: str
    ratios: dict[str, dict[str, Any]]
    design: dict[str, Any]
    contrasts: dict[str, list[float]]

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        ratios = out.pop("ratios")
        del out["ratio_key"]
        keys = list(out)
        at = keys.index("convergence") + 1
        items = [*out.items()]
        return dict([*items[:at], (self.ratio_key, ratios), *items[at:]])
