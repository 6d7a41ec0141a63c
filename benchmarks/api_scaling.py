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

    OMP_NUM_THREADS=1 python benchmarks/api_scaling.py [--units 5000] [--only twfe ...]
"""

from __future__ import annotations

import argparse
import math
import signal
import time
import warnings

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


def timed(name: str, frame: pd.DataFrame) -> float:
    """Wall seconds of one fit of `name` from `frame`, inf past LIMIT."""
    fn = getattr(pe, name)
    kwargs = {"outcome": "y", "unit": "unit", "time": "period", "first_treated": "first_treat"}
    if name not in NO_INFERENCE_CHOICE:
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
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    sizes = (args.units, 10 * args.units)
    frames = {n: long_frame(*simulate(n, 10)) for n in sizes}
    print(f"{'estimator':<20} {sizes[0]:>9,} u {sizes[1]:>9,} u  ratio  exponent")
    warm = long_frame(*simulate(200, 10))
    for name in args.only:
        timed(name, warm)  # imports and compiled kernels, not counted
        small, large = (timed(name, frames[n]) for n in sizes)
        ratio = large / small
        exponent = math.log(ratio) / math.log(10) if math.isfinite(ratio) else math.inf
        print(f"{name:<20} {small:>9.2f} s {large:>9.2f} s {ratio:>6.1f}  {exponent:>8.2f}")


if __name__ == "__main__":
    main()
