"""Typed facts of the synthetic control and synthetic DiD results (results.Facts), fields in
the JSON's order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pathfinder_eval.results import Facts


@dataclass(frozen=True, kw_only=True)
class SyntheticControlFacts(Facts):
    """Per treated unit: RMSPEs, permutation p-value, donor weights, gaps and placebo ratios;
    v_matrix: how the predictors were weighted."""

    units: dict[str, dict[str, Any]]
    v_matrix: str


@dataclass(frozen=True, kw_only=True)
class SyntheticDidFacts(Facts):
    """Per cohort: weights, estimates, unit and time weights, noise level, the gap series and
    its baseline; donors dropped for incomplete series."""

    method: str
    variance: str
    cohort_weights: dict[str, float]
    cohort_estimates: dict[str, float]
    unit_weights: dict[str, dict[str, float]]
    time_weights: dict[str, dict[str, float]]
    noise_level: dict[str, float]
    gaps: dict[str, Any]
    gap_baseline: dict[str, Any]
    donors_dropped_incomplete: list[str]
