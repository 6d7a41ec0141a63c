"""Size of the synthetic-control tests and coverage of SDID's placebo interval, by simulation.

Run on demand: python benchmarks/synthetic_size.py [N_SIMS]
Panels: 19 donors + 1 treated unit (SC) or 30 donors + 2 treated (SDID), two AR(1) factors
(φ = 0.5) with unit loadings U(0.5, 1.5) plus N(0, 0.3²) noise; no effect for the size columns,
an effect of 1.0 for SDID coverage. Prints rejection rates at 5% and 10% and 95% coverage.
"""

from __future__ import annotations

import sys

import numpy as np

from pathfinder_eval.estimators.synthetic.conformal import conformal_pvalue
from pathfinder_eval.estimators.synthetic.core import placebo_se, synthdid
from pathfinder_eval.estimators.synthetic.estimators import synthetic_control_unit


def panel(rng: np.random.Generator, n: int, t: int, phi: float = 0.5) -> np.ndarray:
    shocks = rng.normal(size=(2, t))
    f = np.empty((2, t))
    f[:, 0] = shocks[:, 0]
    for j in range(1, t):
        f[:, j] = phi * f[:, j - 1] + shocks[:, j]
    return 10 + rng.uniform(0.5, 1.5, (n, 2)) @ f + rng.normal(scale=0.3, size=(n, t))


def main(n_sims: int) -> None:
    rng = np.random.default_rng(2021)
    perm, conf, cover = [], [], []
    for _ in range(n_sims):
        y = panel(rng, 20, 30)
        perm.append(synthetic_control_unit(y, 19, 25).permutation_p_value)
        conf.append(conformal_pvalue(y, 19, 25, 0.0))
        z = panel(rng, 32, 15)
        z[30:, 10:] += 1.0
        fit = synthdid(z, 30, 10, "sdid")
        se = placebo_se(z, 30, 10, fit, 100, rng)
        cover.append(abs(fit.estimate - 1.0) <= 1.96 * se)
    perm_a, conf_a = np.array(perm), np.array(conf)
    mc = np.sqrt(0.05 * 0.95 / n_sims)
    print(f"{n_sims} simulated panels (Monte Carlo SE at 5%: {mc:.3f})")
    print(f"{'test':44} {'size 5%':>8} {'size 10%':>9}")
    print(
        f"{'SC placebo-in-space permutation (N0 = 19)':44} {(perm_a <= 0.05).mean():8.3f} "
        f"{(perm_a <= 0.10).mean():9.3f}"
    )
    print(
        f"{'SC conformal, H0: no effect (T = 30, T1 = 5)':44} {(conf_a <= 0.05).mean():8.3f} "
        f"{(conf_a <= 0.10).mean():9.3f}"
    )
    print(f"SDID 95% placebo interval coverage (N0 = 30, N1 = 2): {np.mean(cover):.3f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
