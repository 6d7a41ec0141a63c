"""Simulated stepped-wedge trial data: cluster-period summaries from a Hussey & Hughes model.

Y_ijk = μ + β_j + θ·X_ij + α_i + ε_ijk with α_i ~ N(0, τ²), ε ~ N(0, σ²), where τ² and σ² come
from the ICC (τ²/(τ²+σ²)) and a total variance of 1 (Hussey & Hughes 2007, Contemp. Clin.
Trials 28:182–191). Cell summaries are drawn exactly: the mean of m children ~ N(., σ²/m) and,
independently, their within-cell sum of squares ~ σ²·χ²(m − 1) (from a second stream of the
seed, so the means are those of earlier versions).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pathfinder_eval.data.source import CELL_COLUMNS, LONG_COLUMNS, OutcomeData


def simulate_stepped_wedge(
    starts: dict[str, int],
    periods: int,
    outcome: str,
    effect: float,
    icc: float,
    cell_size: int,
    seed: int,
    period_effect: float = 0.1,
    effect_sd: float = 0.0,
    effect_corr: float = 0.0,
) -> OutcomeData:
    """One row per cluster × period: the cell mean as `value`, the cell size as denominator and
    the within-cell sum of squares as `ssw`. effect_sd, effect_corr: each cluster's intervention
    effect is effect + b_i, b_i ~ N(0, effect_sd²) correlated effect_corr with its intercept
    (drawn from their own stream, so the other draws do not move)."""
    rng = np.random.default_rng(seed)
    rng_ssw = np.random.default_rng([seed, 1])
    clusters = sorted(starts)
    tau, sigma = np.sqrt(icc), np.sqrt(1.0 - icc)
    alpha = rng.normal(0.0, tau, len(clusters))
    slope = np.zeros(len(clusters))
    if effect_sd > 0.0:
        z = np.random.default_rng([seed, 2]).standard_normal(len(clusters))
        shared = alpha / tau if tau > 0 else np.zeros(len(clusters))
        slope = effect_sd * (effect_corr * shared + np.sqrt(1.0 - effect_corr**2) * z)
    rows = []
    for i, c in enumerate(clusters):
        for j in range(1, periods + 1):
            x = 1.0 if j >= starts[c] else 0.0
            mean = period_effect * (j - 1) + (effect + slope[i]) * x + alpha[i]
            value = rng.normal(mean, sigma / np.sqrt(float(cell_size)))
            rows.append(
                {
                    "unit": c,
                    "period": j,
                    "outcome": outcome,
                    "numerator": np.nan,
                    "denominator": float(cell_size),
                    "value": value,
                    "status": "",
                    "source": "simulated trial",
                    "ssw": (1.0 - icc) * rng_ssw.chisquare(cell_size - 1) if cell_size > 1 else 0.0,
                    "negative": np.nan,  # summaries without records
                }
            )
    frame = pd.DataFrame(rows)[list(LONG_COLUMNS) + list(CELL_COLUMNS)]
    units = pd.DataFrame({"unit": clusters, "name": clusters, "region": ""})
    note = (
        f"The data are SIMULATED: a cross-sectional stepped-wedge trial (Hussey & Hughes "
        f"model, ICC {icc}, {cell_size} individuals per cluster-period, seed {seed}) with a "
        f"true intervention effect of {effect} (in outcome SD units)"
        + (
            f" varying between clusters with SD {effect_sd} (correlation {effect_corr} with "
            "the cluster intercept)."
            if effect_sd > 0
            else "."
        )
    )
    return OutcomeData(frame, units, "synthetic", (), (), (note,))
