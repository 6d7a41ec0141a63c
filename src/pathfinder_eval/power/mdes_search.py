"""Minimum detectable effect by simulation for any analysis, by bracketing and bisection.

The trial fast path (power.trial_simulation.simulated_mdes) reads the whole power curve off one
run because the LMM's estimate shifts exactly with an additive effect. An LA panel's effect is a
relative change in the rate, and estimators such as the Poisson model are not shift-equivariant,
so here each candidate effect is simulated in full. Every run uses the same replicate seeds
(common random numbers), which keeps the simulated curve close to monotone; the search doubles
the effect until the power reaches the target, then bisects. The reported MDES is the smallest
evaluated effect whose simulated power reaches the target (so never optimistic by the search's
resolution), and the interval comes from the evaluated points whose power lies within
z·√(p(1 − p)/n) of the target.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from pathfinder_eval.errors import PathfinderError
from pathfinder_eval.power.simulate import DataGenerator, SimulatedPower, simulate_power
from pathfinder_eval.power.trial_simulation import SimulatedMdes
from pathfinder_eval.spec import DesignSpec

START = 0.05  # first effect tried (LA panels: a 5% relative change; trials: 0.05 SD)
CAP_DOWN = 0.9  # the largest reduction searched (a 90% fall in the rate)
CAP_UP = 4.0  # the largest increase searched
BISECTIONS = 6  # resolution: the bracket width / 64


def search_mdes(
    spec: DesignSpec,
    n_sims: int,
    seed: int,
    target: float = 0.8,
    direction: float = -1.0,
    analysis: str | None = None,
    outcome: str | None = None,
    alpha: float = 0.05,
    workers: int | None = None,
    scheduler: str | None = None,
    panel: DataGenerator | None = None,
    level: float = 0.95,
) -> SimulatedMdes:
    """Smallest |effect| in `direction` (sign) with `target` power; each point is a full
    simulation of `n_sims` replicates on the same seeds."""
    sign = -1.0 if direction < 0 else 1.0
    cap = CAP_DOWN if sign < 0 else CAP_UP

    def run(size: float) -> SimulatedPower:
        return simulate_power(
            spec,
            n_sims,
            seed,
            sign * size,
            analysis,
            outcome,
            alpha,
            workers,
            scheduler,
            progress=False,
            panel=panel,
        )

    points = {0.0: run(0.0)}
    lo, hi = 0.0, START
    points[hi] = run(hi)
    while points[hi].power < target:
        if hi >= cap:
            raise PathfinderError(
                f"the simulated power stays below {target:g} up to a relative change of "
                f"{sign * hi:+.0%} ({points[hi].power:.3f})",
                where="--mdes",
                fix="ask for a lower power, more treated LAs or a longer panel",
            )
        lo, hi = hi, min(2 * hi, cap)
        points[hi] = run(hi)
    for _ in range(BISECTIONS):
        mid = 0.5 * (lo + hi)
        points[mid] = run(mid)
        lo, hi = (lo, mid) if points[mid].power >= target else (mid, hi)
    sizes = sorted(points)
    half = stats.norm.ppf(0.5 + level / 2.0) * math.sqrt(target * (1.0 - target) / n_sims)

    def first_reaching(level_: float) -> float:
        hit = [s for s in sizes if points[s].power >= level_]
        return sign * hit[0] if hit else math.copysign(math.inf, sign)

    return SimulatedMdes(
        sign * hi,
        (first_reaching(target - half), first_reaching(target + half)),
        target,
        level,
        float("nan"),
        points[0.0],
        points[hi],
        tuple((sign * s, points[s].power) for s in sizes),
    )


def effect_direction(effect: float | None, design_effect: float) -> float:
    """The sign of the effect to search for: the one asked for, else the design's injected
    effect's, else a reduction (the pilots aim to lower most indicators)."""
    for value in (effect, design_effect):
        if value is not None and value != 0 and np.isfinite(value):
            return float(np.sign(value))
    return -1.0
