"""Fuzz the public estimators on small, ragged panels (run on demand, not a test).

Each seed draws one panel: 3–8 units over 3–7 years with 15% of cells missing and staggered
starts, some never treated (DiD); or 3–8 clusters over 3–5 periods with 10% of cells missing
(stepped wedge). Every estimator then runs on it through the public API with NumPy and
Python warnings raised as errors. A fit passes when it returns finite estimates or refuses
with a PathfinderError (a clear message); anything else, an exception, a RuntimeWarning,
a non-finite estimate or a standard error of rounding (a variance that is zero whatever the
outcomes, read as p ≈ 0), is printed once per kind with the first seed that shows it, so
`--seeds SEED SEED+1 --only NAME` replays it. Exit code 1 when anything was found.

    OMP_NUM_THREADS=1 python scripts/fuzz_estimators.py [--seeds FIRST STOP] [--only NAME…]

On 2026-12-05 an earlier form of this loop (seeds 0–110) found the ETWFE, stacked,
synthetic control, Sun & Abraham, pre-trend and stepped-wedge faults fixed that day.
"""

from __future__ import annotations

import argparse
import sys
import traceback
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

import pathfinder_eval as pe
from pathfinder_eval import api
from pathfinder_eval.errors import ExcludedRowsWarning, PathfinderError

# every DiD estimator of the API that needs no extra column (dose) and gives estimates (not a
# decomposition), and the synthetic ones
DID = (
    *(name for name in api.DID if name not in ("continuous_did", "bacon")),
    "synthetic_did",
    "synthetic_control",
)
# those whose explicit cluster_robust is a sandwich of their own (not the default's variance)
ROBUST = ("twfe", "event_study", "sun_abraham", "imputation", "etwfe", "two_stage", "stacked")
SW_MODELS = ("hussey_hughes", "nested_exchangeable", "exponential_decay")


def did_panel(rng: np.random.Generator) -> pd.DataFrame:
    """Units u0…, years from 2011, `first` the first treated year (0: never treated)."""
    n, t = int(rng.integers(3, 9)), int(rng.integers(3, 8))
    starts = rng.choice(np.r_[0, np.arange(2, t + 1)], n)
    if rng.random() < 0.7:
        starts[: rng.integers(1, 3)] = 0
    rows = [
        {
            "unit": f"u{i}",
            "year": 2010 + p,
            "y": level + 0.2 * p + rng.normal(),
            "first": 2010 + int(starts[i]) if starts[i] else 0,
            "region": f"r{i % 3}",
        }
        for i, level in enumerate(rng.normal(size=n))
        for p in range(1, t + 1)
        if rng.random() >= 0.15
    ]
    return pd.DataFrame(rows)


def sw_panel(rng: np.random.Generator) -> pd.DataFrame:
    """Clusters c0…, periods from 1, `start` each cluster's first intervention period."""
    k, periods = int(rng.integers(3, 9)), int(rng.integers(2, 5)) + 1
    start = rng.integers(2, periods + 1, k)
    rows = [
        {"cluster": f"c{c}", "period": p, "y": level + 0.1 * p + rng.normal(), "start": start[c]}
        for c, level in enumerate(rng.normal(size=k))
        for p in range(1, periods + 1)
        if rng.random() >= 0.1
    ]
    return pd.DataFrame(rows)


def fits(seed: int) -> list[tuple[str, Callable[[], pe.EffectEstimates]]]:
    """The seed's (name, fit) pairs: every DiD estimator on one panel, the stepped-wedge LMM
    and GEE on another."""
    rng = np.random.default_rng(seed)
    did, sw = did_panel(rng), sw_panel(rng)
    base = {"outcome": "y", "unit": "unit", "time": "year", "first_treated": "first"}
    out: list[tuple[str, Callable[[], pe.EffectEstimates]]] = []
    for name in DID:
        kw = {**base, "region": "region"} if rng.random() < 0.3 else base
        out.append((name, lambda name=name, kw=kw: getattr(pe, name)(did, **kw)))
        if name in ROBUST:
            robust = {**kw, "inference": "cluster_robust"}
            out.append(
                (f"{name} (cluster_robust)", lambda n=name, kw=robust: getattr(pe, n)(did, **kw))
            )
    trial = {"outcome": "y", "cluster": "cluster", "period": "period", "start": "start"}
    lmm = {"model": SW_MODELS[seed % 3], "effect": ("immediate", "exposure_time")[seed % 2]}
    out.append(("stepped_wedge", lambda: pe.stepped_wedge(sw, **trial, **lmm)))
    out.append(("stepped_wedge_gee", lambda: pe.stepped_wedge_gee(sw, **trial)))
    return out


def fault(fit: Callable[[], pe.EffectEstimates]) -> str | None:
    """None when the fit returns finite estimates or refuses clearly; else what went wrong and
    where."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # rows the panel leaves out (a ragged panel's treated unit with no period before its
        # start) are counted on the result by design: not a fault
        warnings.simplefilter("ignore", ExcludedRowsWarning)
        try:
            res = fit()
        except PathfinderError:
            return None
        except Exception as exc:  # anything else is the finding
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            where = f"{Path(frame.filename).name}:{frame.lineno}"
            return f"{type(exc).__name__}: {str(exc)[:90]} @ {where}"
    if not np.isfinite(res.table["estimate"].to_numpy(float)).all():
        return "non-finite estimate"
    se = res.table["std_error"].to_numpy(float)
    if (se[np.isfinite(se)] < 1e-9).any():  # outcomes are N(0, 1) noise around their levels
        return "a standard error of rounding (< 1e-9): read as p ≈ 0"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs=2, default=[0, 40], metavar=("FIRST", "STOP"))
    parser.add_argument("--only", nargs="*", default=None, help="estimator names to run")
    args = parser.parse_args()
    counts: Counter[tuple[str, str]] = Counter()
    first: dict[tuple[str, str], int] = {}
    for seed in range(*args.seeds):
        for name, fit in fits(seed):
            if args.only and name not in args.only:
                continue
            found = fault(fit)
            if found:
                key = (name, found)
                counts[key] += 1
                if key not in first:
                    first[key] = seed
                    print(f"seed {seed}: {name}: {found}", flush=True)
    print(
        f"{sum(counts.values())} faults of {len(counts)} kinds in seeds {args.seeds[0]}–"
        f"{args.seeds[1] - 1}"
    )
    return 1 if counts else 0


if __name__ == "__main__":
    sys.exit(main())
