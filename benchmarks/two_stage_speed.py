"""Two-stage DiD speed beside pyfixest's did2s on the same data (run on demand, not a test).

A staggered panel of 200,000 units × 10 periods (cohorts 3, 5, 7, 9 + never treated, from
benchmarks/etwfe_speed.py): unit and period effects on the untreated cells, then the static
ATT and one effect per event time with did2s's GMM standard errors clustered by unit.
pathfinder-eval from arrays (`two_stage`) and through the public API from the long frame
(`pe.two_stage`); pyfixest's `did2s` (which the project does not depend on) in its own
environment, timed inside that process, when `--peer-python` names its interpreter
(`python -m venv /tmp/pfvenv && /tmp/pfvenv/bin/pip install pyfixest pyarrow`). Prints seconds (best
of 3), peak memory, ratios peer / ours and the largest differences in estimates and standard
errors; a peer that does not finish (pyfixest's did2s is killed for want of memory at 20,000
units × 10 periods on 24 GiB) is reported as such.

    OMP_NUM_THREADS=1 python benchmarks/two_stage_speed.py [--units 200000] [--periods 10] \\
        [--peer-python /tmp/pfvenv/bin/python]
"""

from __future__ import annotations

import argparse
import resource
import sys

import numpy as np
import pandas as pd
from etwfe_speed import simulate  # benchmarks/ is on the path
from stacked_speed import REPEATS, PeerFailed, best, run_peer

import pathfinder_eval as pe
from pathfinder_eval.estimators.did.two_stage import two_stage

PEER = """
import json, sys, time
import numpy as np, pandas as pd, pyfixest as pf
d = pd.read_parquet(sys.argv[1])
d["treat"] = (d["period"] >= d["cohort"]).astype(int)
d["rel"] = np.where(d["treat"] == 1, d["period"] - d["cohort"], -1000).astype(int)
times, out = [], None
for _ in range(int(sys.argv[2])):
    t0 = time.perf_counter()
    rows = []
    for second in ("~ i(treat, ref=0)", "~ i(rel, ref=-1000)"):
        fit = pf.did2s(d, yname="y", first_stage="~ 0 | unit + period", second_stage=second,
                       treatment="treat", cluster="unit")
        rows.append(fit.tidy()[["Estimate", "Std. Error"]].to_numpy())
    times.append(time.perf_counter() - t0)
    out = np.vstack(rows)
print(json.dumps({"seconds": min(times), "estimate": out[:, 0].tolist(),
                  "std_error": out[:, 1].tolist()}))
"""


def arrays(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    fit = two_stage(
        frame["y"].to_numpy(),
        frame["unit"].to_numpy(),
        frame["period"].to_numpy(),
        frame["cohort"].to_numpy(),
    )
    return fit.estimate, np.sqrt(np.diag(fit.vcov))


def api(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    data = frame.assign(cohort=frame["cohort"].replace(np.inf, 0))
    res = pe.two_stage(
        data,
        outcome="y",
        unit="unit",
        time="period",
        first_treated="cohort",
        inference="cluster_robust",
    )
    return res.table["estimate"].to_numpy(), res.table["std_error"].to_numpy()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--units", type=int, default=200_000)
    parser.add_argument("--periods", type=int, default=10)
    parser.add_argument("--peer-python", default=None)
    args = parser.parse_args()
    frame = simulate(args.units, args.periods)
    print(f"panel: {args.units} units × {args.periods} periods, cohorts 3, 5, 7, 9 + never")
    arrays(frame.iloc[: 200 * args.periods])
    t_arr, est, se = best(arrays, frame)
    t_api, est_api, se_api = best(api, frame)
    print(f"pathfinder-eval two_stage from arrays: {t_arr:.2f} s (best of {REPEATS})")
    print(f"pathfinder-eval pe.two_stage from the long frame: {t_api:.2f} s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"pathfinder-eval peak memory (this process, data included): {peak:,.0f} MiB")
    assert np.allclose(est, est_api, atol=1e-12) and np.allclose(se, se_api, rtol=1e-10)
    if args.peer_python is None:
        print("pyfixest did2s: not run (give --peer-python)")
        return
    try:
        got = run_peer(args.peer_python, PEER, frame, str(REPEATS))
    except PeerFailed as exc:
        print(f"pyfixest did2s: did not finish on this panel ({exc})")
        return
    t_peer = got["seconds"]
    print(
        f"pyfixest did2s: {t_peer:.2f} s, peak {got['peak_mib']:,.0f} MiB; ratio peer/ours "
        f"{t_peer / t_arr:.1f}× (arrays), {t_peer / t_api:.1f}× (API); max |Δestimate| "
        f"{np.abs(est - np.array(got['estimate'])).max():.1e}, max relative |ΔSE| "
        f"{np.abs(se / np.array(got['std_error']) - 1).max():.1e}"
    )


if __name__ == "__main__":
    sys.exit(main())
