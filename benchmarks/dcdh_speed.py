"""de Chaisemartin-D'Haultfœuille DID_ℓ speed beside the authors' own Python port of
did_multiplegt_dyn on the same data (run on demand, not a test).

A panel of units × periods in which 60% of units switch on at a period from 3 on, a third of
those pause two periods later and a tenth start treated and switch off: 3 effects and 2
placebos with analytic standard errors. pathfinder-eval from arrays (`multiplegt_dyn`) and
through the public API from the long frame (`pe.did_multiplegt_dyn`, inference
"cluster_robust"), and in the same run the authors' `DidMultiplegtDyn` (PyPI
py-did-multiplegt-dyn, not a dependency: give the Python of an environment that has it, see
tests/reference/dcdh_multiplegt_dyn/README.md), timed inside its own process around the fit
alone. Prints seconds (best of 3 for ours and for the peer), the ratio peer / ours,
the largest differences in estimates and standard errors, and peak memory: this process's
and the peer process's own.

    OMP_NUM_THREADS=1 python benchmarks/dcdh_speed.py [--units 200000] [--periods 10] \
        [--peer-python /tmp/dcdh-ref/bin/python]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd
from measure import process_peak_mib  # benchmarks/ is on the path
from stacked_speed import REPEATS, PeerFailed, best, run_peer

import pathfinder_eval as pe
from pathfinder_eval.estimators.did.multiplegt_dyn import multiplegt_dyn

EFFECTS, PLACEBOS = 3, 2
PEER = """
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import polars as pl
from did_multiplegt_dyn import DidMultiplegtDyn
df = pl.read_parquet(sys.argv[1])
times = []
for _ in range(int(sys.argv[4])):  # best of, as ours
    t0 = time.perf_counter()
    res = DidMultiplegtDyn(df, "y", "unit", "period", "treatment", effects=int(sys.argv[2]),
                           placebo=int(sys.argv[3])).fit().result["did_multiplegt_dyn"]
    times.append(time.perf_counter() - t0)
rows = [res[b] for b in ("ATE", "Effects", "Placebos")]
print(json.dumps({"seconds": min(times),
                  "estimate": [float(v) for r in rows for v in r["Estimate"]],
                  "se": [float(v) for r in rows for v in r["SE"]]}))
"""


def simulate(n: int, t_n: int, seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(1, t_n + 1)
    first = np.where(rng.random(n) < 0.6, rng.integers(3, t_n + 1, n), 10**6)
    stop = np.where(rng.random(n) < 1 / 3, first + 2, 10**6)
    off = rng.random(n) < 0.1
    on = (t[None, :] >= first[:, None]) & (t[None, :] < stop[:, None])
    d = np.where(off[:, None], ~on, on).astype(np.int64)
    y = rng.normal(size=n)[:, None] + 0.1 * t + 0.5 * (d != d[:, :1]) + rng.normal(size=(n, t_n))
    return pd.DataFrame(
        {
            "unit": np.repeat(np.arange(n), t_n),
            "period": np.tile(t, n),
            "treatment": d.ravel(),
            "y": y.ravel(),
        }
    )


def arrays(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    fit = multiplegt_dyn(
        frame["y"].to_numpy(),
        frame["unit"].to_numpy(),
        frame["period"].to_numpy(),
        frame["treatment"].to_numpy(),
        EFFECTS,
        PLACEBOS,
    )
    return fit.estimate, np.sqrt(np.diag(fit.vcov))


def api(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    res = pe.did_multiplegt_dyn(
        frame,
        outcome="y",
        unit="unit",
        time="period",
        treatment="treatment",
        effects=EFFECTS,
        placebo=PLACEBOS,
        inference="cluster_robust",
    )
    return res.table["estimate"].to_numpy(), res.table["std_error"].to_numpy()


def peer(frame: pd.DataFrame, python: str) -> tuple[float, np.ndarray, np.ndarray, float]:
    got = run_peer(python, PEER, frame, str(EFFECTS), str(PLACEBOS), str(REPEATS))
    return got["seconds"], np.array(got["estimate"]), np.array(got["se"]), got["peak_mib"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--units", type=int, default=200_000)
    parser.add_argument("--periods", type=int, default=10)
    parser.add_argument("--peer-python", default=None)
    args = parser.parse_args()
    frame = simulate(args.units, args.periods)
    print(f"panel: {args.units} units × {args.periods} periods, switching on, pausing and off")
    arrays(frame.iloc[: 200 * args.periods])
    t_arr, est, se = best(arrays, frame)
    t_api, est_api, se_api = best(api, frame)
    print(f"pathfinder-eval multiplegt_dyn from arrays: {t_arr:.2f} s (best of {REPEATS})")
    print(f"pathfinder-eval pe.did_multiplegt_dyn from the long frame: {t_api:.2f} s")
    print(
        f"pathfinder-eval peak memory (this process, data included): {process_peak_mib():,.0f} MiB"
    )
    assert np.allclose(est, est_api, atol=1e-12) and np.allclose(se, se_api, rtol=1e-10)
    if args.peer_python is None:
        print("did_multiplegt_dyn (authors' Python port): not run (give --peer-python)")
        return
    try:
        t_peer, est_p, se_p, peak = peer(frame, args.peer_python)
    except PeerFailed as exc:  # not installed there, or failed
        print(f"did_multiplegt_dyn (authors' Python port): did not finish ({exc})")
        return
    print(
        f"did_multiplegt_dyn (authors' Python port): {t_peer:.2f} s, peak {peak:,.0f} MiB (its "
        "process); ratio peer/ours "
        f"{t_peer / t_arr:.1f}× (arrays), {t_peer / t_api:.1f}× (API); max |Δestimate| "
        f"{np.abs(est - est_p).max():.1e}, max relative |ΔSE| {np.abs(se / se_p - 1).max():.1e}"
    )


if __name__ == "__main__":
    sys.exit(main())
