"""Speed of continuous_did's data-driven (cck) dose curve beside moderndid's `cont_did(...,
dose_est_method="cck")` on the same data (run on demand, not a test).

Two periods, 60% of units given a log-normal dose in the second and an effect
2(1 − e^(−dose)), noise SD 0.5 + 0.3·dose. Ours through the public API from the long frame
(`pe.continuous_did(..., dose_method="cck", sieve_variance="hc0")`, contdid's residuals, 999
multiplier draws) and the sieve choice alone from arrays (`choose_segments`); moderndid (999
draws, not a dependency: give the Python of an environment that has it, see
tests/reference/moderndid_cck/README.md) timed in its own process around the fit alone, from
the same long frame. moderndid's IV fit forms an n × n projection of the treated units, so
200,000 units are out of its reach; the default sizes are ones it can run. Prints seconds
(best of 3 for each), the ratio peer / ours, the peak memory of each (ours: allocated in one
call; the peer: its process's), the segments each chose and the largest difference in ATT and
ACRT.

    OMP_NUM_THREADS=1 python benchmarks/cck_speed.py [--units 2000 10000] \
        [--peer-python /tmp/contdid-ref/bin/python]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from measure import traced_peak_mib  # benchmarks/ is on the path
from stacked_speed import PeerFailed, run_peer

import pathfinder_eval as pe
from pathfinder_eval.estimators.did.dose_sieve import choose_segments

PEER = """
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import pandas as pd, moderndid
df = pd.read_parquet(sys.argv[1])
times = []
for _ in range(int(sys.argv[2])):  # best of, as ours
    t0 = time.perf_counter()
    r = moderndid.cont_did(data=df, yname="y", tname="period", idname="unit", gname="g",
                           dname="dose", aggregation="dose", dose_est_method="cck", biters=999,
                           random_state=1)
    times.append(time.perf_counter() - t0)
print(json.dumps({"seconds": min(times),
                  "estimate": [float(r.overall_att), float(r.overall_acrt)]}))
"""


def simulate(n: int, seed: int = 17) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    treated = rng.uniform(size=n) < 0.6
    dose = np.where(treated, rng.lognormal(0.0, 0.5, n).round(6), 0.0)
    noise = 0.5 + 0.3 * dose
    level = rng.normal(size=n)
    y1 = level + noise * rng.normal(size=n)
    y2 = level + 1 + np.where(treated, 2 * (1 - np.exp(-dose)), 0) + noise * rng.normal(size=n)
    ids = np.arange(1, n + 1)
    g = np.where(treated, 2, 0)
    return pd.concat(
        [
            pd.DataFrame({"unit": ids, "period": 1, "y": y1, "dose": dose, "g": g}),
            pd.DataFrame({"unit": ids, "period": 2, "y": y2, "dose": dose, "g": g}),
        ],
        ignore_index=True,
    )


def ours(frame: pd.DataFrame, repeats: int = 3) -> tuple[float, np.ndarray, int]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = pe.continuous_did(
            frame,
            outcome="y",
            unit="unit",
            time="period",
            first_treated="g",
            dose="dose",
            dose_method="cck",
            sieve_variance="hc0",
            inference="cluster_robust",
        )
        times.append(time.perf_counter() - t0)
    return min(times), res.table["estimate"].to_numpy()[:2], res.facts.sieve.segments


def choice_alone(frame: pd.DataFrame) -> float:
    wide = frame.pivot(index="unit", columns="period", values="y")
    unit = frame.groupby("unit")[["dose", "g"]].first().loc[wide.index]
    treated = unit["g"].to_numpy() > 0
    change = (wide[2] - wide[1]).to_numpy()[treated]
    dose = unit["dose"].to_numpy()[treated]
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        choose_segments(dose, change, 999, 0, variance="hc0")
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, nargs="+", default=[2000, 10000])
    parser.add_argument("--peer-python", default=None)
    args = parser.parse_args()
    for n in args.units:
        frame = simulate(n)
        t_api, est, segments = ours(frame)
        t_choice = choice_alone(frame)
        peak = traced_peak_mib(lambda frame=frame: ours(frame, 1))
        line = (
            f"{n:>7} units: pathfinder-eval {t_api:.2f} s (API; the sieve choice alone "
            f"{t_choice:.2f} s), peak {peak:.0f} MiB, {segments} segment(s)"
        )
        if args.peer_python:
            try:
                got = run_peer(args.peer_python, PEER, frame, "3")
            except PeerFailed as err:
                line += f"; moderndid failed: {err}"
            else:
                diff = np.abs(est - np.array(got["estimate"])).max()
                line += (
                    f"; moderndid {got['seconds']:.2f} s, peak {got['peak_mib']:.0f} MiB, "
                    f"ratio {got['seconds'] / t_api:.1f}×, max |ΔATT, ΔACRT| {diff:.1e}"
                )
        print(line, flush=True)


if __name__ == "__main__":
    main()
