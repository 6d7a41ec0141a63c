"""Woertman et al. (2013, J Clin Epidemiol 66:752–758) stepped-wedge design effect, a
cross-check on the GLS variance of `analytic.gls_precision`.

k steps, b baseline measurement times, t measurement times after each step and n individuals
per cluster per measurement time (cross-sectional), ICC ρ:

    DE_sw = (1 + ρ(ktn + bn − 1)) / (1 + ρ(½ktn + bn − 1)) · 3(1 − ρ) / (2t(k − 1/k))

N_sw = DE_sw · N_u, N_u the total of an individually randomised trial. N_sw counts each
cluster's n once (I·n, the individuals per measurement time), so the trial needs N_sw / n
clusters and measures (b + kt)·N_sw individuals in all. The formula is the Hussey & Hughes
variance (categorical periods, one random cluster intercept, CAC = 1) of a design with the same
number of clusters starting at each step; it is not exact when allocation is unequal (Hemming
2016, PMID 27146064) and is too optimistic when the cluster autocorrelation is below 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats


def woertman_design_effect(icc: float, steps: int, baseline: int, per_step: int, n: float) -> float:
    """DE_sw for k = steps, b = baseline, t = per_step, n per cluster per measurement time."""
    k, b, t, rho = steps, baseline, per_step, icc
    clustering = (1 + rho * (k * t * n + b * n - 1)) / (1 + rho * (0.5 * k * t * n + b * n - 1))
    return clustering * 3 * (1 - rho) / (2 * t * (k - 1 / k))


def individual_total(effect: float, target: float = 0.8, alpha: float = 0.05) -> float:
    """N_u: total (both arms) of a two-arm individually randomised trial, standardised effect
    (difference over the total SD), two-sided z test: 4(z_{1−α/2} + z_{power})² / d²."""
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(target)
    return float(4 * z**2 / effect**2)


@dataclass(frozen=True)
class WoertmanSize:
    """design_effect: DE_sw; n_sw: DE_sw · N_u; clusters: n_sw / n; clusters_per_step: rounded
    up so that every step starts the same whole number of clusters; measured: individuals over
    all (b + kt) measurement times with that rounded allocation."""

    design_effect: float
    n_sw: float
    clusters: float
    clusters_per_step: int
    measured: int


def woertman_size(
    n_individual: float, icc: float, steps: int, baseline: int, per_step: int, n: int
) -> WoertmanSize:
    """Clusters implied by Woertman's design effect for an individually randomised total."""
    de = woertman_design_effect(icc, steps, baseline, per_step, n)
    n_sw = float(de * n_individual)
    per = math.ceil(n_sw / (n * steps))
    return WoertmanSize(de, n_sw, n_sw / n, per, per * steps * n * (baseline + steps * per_step))
