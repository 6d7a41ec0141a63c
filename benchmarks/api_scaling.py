"""How each public DiD estimator's time grows with the number of units (run on demand, not a
test).

Every estimator the public API fits from a long frame (unit, period, outcome, first treated)
is timed once on a staggered panel of N units and of 10·N units (10 periods, 60% of units treated
in 4 cohorts; cs_speed.simulate), with analytic cluster-robust inference where the estimator
offers it, so the defaults' resampling does not hide the fit. Prints seconds at both sizes,
their ratio and the growth exponent log(ratio) / log(10): about 1 for a fit linear in the
units, 2 for one that is quadratic (as TWFE's leave-one-treated-out refits and dCDH's cluster
sums were until issue 21: TWFE 99 s at 5,000 units, dCDH 76 s at 50,000). A fit over 120 s is
stopped and shown as inf; each estimator is run once on 200 units first (imports and
compiled kernels not counted).

`--periods T --cohorts K` times a longer panel with K cohorts spread over periods 3 to T − 2
(40% never treated), where saturated estimators have about K·T interactions and event-study
rows grow with T; `--default-inference` keeps each estimator's default inference (the
comparison-pooled variance on panels with regions, CR2 or cohort-stratified with few treated
units) instead of the cluster-robust one. Before issue 21's fix the pooled variance's
covariances looped over rows² × units × periods²: Sun & Abraham took 177 s on 2,000 units ×
40 periods × 31 cohorts (`--units 200 --periods 40 --cohorts 31 --default-inference`, its
10·N column), 32 s after.

    OMP_NUM_THREADS=1 python benchmarks/api_scaling.py [--units 5000] [--only twfe ...]
        [--periods 10] [--cohorts 4] [--default-inference]
"""

from __future__ import annotations

import argparse
import math
import signal
import time
import warnings

import numpy as np
import pandas as pd
from cs_speed import long_frame, simulate

import pathfinder_eval as pe

ESTIMATORS = (
    "twfe",
    "event_study",
    "callaway_santanna",
    "sun_abraham",
    "imputation",
    "two_stage",
    "stacked",
    "etwfe",
    "bacon",
    "did_multiplegt_dyn",
)
NO_INFERENCE_CHOICE = {"bacon"}  # a decomposition: no inference to choose
LIMIT = 120  # seconds per fit


class _TooSlow(Exception):
    pass


def _stop(*_: object) -> None:
    raise _TooSlow


def staggered(n: int, periods: int, cohorts: int, seed: int = 7) -> pd.DataFrame:
    """A long frame of n units × `periods` periods: 40% never treated (first_treat 0), the
    rest in `cohorts` cohorts starting between periods 3 and periods − 2, unit effects, a
    trend and an effect growing with exposure."""
    rng = np.random.default_rng(seed)
    starts = np.unique(np.linspace(3, periods - 2, cohorts).round().astype(int))
    first = np.where(rng.random(n) < 0.4, 0, rng.choice(starts, n))
    unit, period = np.repeat(np.arange(n), periods), np.tile(np.arange(1, periods + 1), n)
    start = first[unit]
    exposure = np.where(start > 0, period - start, -1)
    y = (
        rng.normal(size=n)[unit]
        + 0.1 * period
        + np.where(exposure >= 0, 0.5 + 0.1 * exposure, 0.0)
        + rng.normal(size=n * periods)
    )
    return pd.DataFrame({"unit": unit, "period": period, "y": y, "first_treat": start})


def timed(name: str, frame: pd.DataFrame, default_inference: bool = False) -> float:
    """Wall seconds of one fit of `name` from `frame`, inf past LIMIT."""
    fn = getattr(pe, name)
    kwargs = {"outcome": "y", "unit": "unit", "time": "period", "first_treated": "first_treat"}
    if name not in NO_INFERENCE_CHOICE and not default_inference:
        kwargs["inference"] = "cluster_robust"
    signal.signal(signal.SIGALRM, _stop)
    signal.alarm(LIMIT)
    try:
        start = time.perf_counter()
        fn(frame, **kwargs)
        return time.perf_counter() - start
    except _TooSlow:
        return math.inf
    finally:
        signal.alarm(0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--units", type=int, default=5000)
    parser.add_argument("--only", nargs="*", default=list(ESTIMATORS))
    parser.add_argument("--periods", type=int, default=10)
    parser.add_argument("--cohorts", type=int, default=4)
    parser.add_argument("--default-inference", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    sizes = (args.units, 10 * args.units)
    if (args.periods, args.cohorts) == (10, 4):  # cs_speed's panel, as before these options

        def make(n: int) -> pd.DataFrame:
            return long_frame(*simulate(n, 10))
    else:

        def make(n: int) -> pd.DataFrame:
            return staggered(n, args.periods, args.cohorts)

    frames = {n: make(n) for n in sizes}
    inference = "default inference" if args.default_inference else "cluster-robust"
    print(f"{args.periods} periods, {args.cohorts} cohorts + never treated, {inference}")
    print(f"{'estimator':<20} {sizes[0]:>9,} u {sizes[1]:>9,} u  ratio  exponent")
    warm = make(200)
    for name in args.only:
        timed(name, warm, args.default_inference)  # imports and compiled kernels, not counted
        small, large = (timed(name, frames[n], args.default_inference) for n in sizes)
        ratio = large / small
        exponent = math.log(ratio) / math.log(10) if math.isfinite(ratio) else math.inf
        print(f"{name:<20} {small:>9.2f} s {large:>9.2f} s {ratio:>6.1f}  {exponent:>8.2f}")


if __name__ == "__main__":
    main()
