"""Continuous-dose DiD (Callaway, Goodman-Bacon & Sant'Anna) speed beside two Python ports of
R contdid on the same data (run on demand, not a test).

A panel of units × periods in which 40% of units are never treated and the rest start in
periods 4 to 7 with doses U(0.5, 3) and an effect 0.5 d + 0.2 d²: ATT^o, ACRT^o and the
curves at five doses with a cubic B-spline (contdid's default), not-yet-treated comparisons,
analytic standard errors. pathfinder-eval from arrays (`continuous_did`, which also gives the
event-time rows) and through the public API from the long frame (`pe.continuous_did`,
inference "cluster_robust"), and in the same run diff-diff's `ContinuousDiD` (with its event
study) and moderndid's `cont_did` (dose aggregation; its standard errors are bootstrap draws,
100 of them), neither a dependency: give the Python of an environment that has both, see
tests/reference/cgbs_continuous_did/README.md. The peers are timed inside their own process
around the fit alone, from the same long frame. Prints seconds (best of 3 for ours and for
each peer), the ratios peer / ours, the largest differences in estimates, and peak
memory: this process's and each peer process's own.

    OMP_NUM_THREADS=1 python benchmarks/contdid_speed.py [--units 200000] [--periods 10] \
        [--peer-python /tmp/contdid-ref/bin/python]
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import pandas as pd
from measure import process_peak_mib  # benchmarks/ is on the path
from stacked_speed import REPEATS, PeerFailed, best, run_peer

import pathfinder_eval as pe
from pathfinder_eval.estimators.did.continuous import continuous_did

DEGREE = 3
DOSES = (0.75, 1.1, 1.75, 2.4, 2.75)
PEER = """
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np, pandas as pd
df = pd.read_parquet(sys.argv[1])
doses = np.array(json.loads(sys.argv[3]))
def fit():
    if sys.argv[2] == "diff-diff":
        from diff_diff import ContinuousDiD
        r = ContinuousDiD(degree=3, num_knots=0, dvals=doses, control_group="not_yet_treated"
                          ).fit(df, outcome="y", unit="unit", time="period", first_treat="g",
                                dose="dose", aggregate="eventstudy")
        return [r.overall_att, r.overall_acrt, *r.dose_response_att.effects,
                *r.dose_response_acrt.effects]
    import moderndid
    r = moderndid.cont_did(data=df, yname="y", tname="period", idname="unit", gname="g",
                           dname="dose", aggregation="dose", degree=3, dvals=doses,
                           biters=100, random_state=1)
    return [r.overall_att, r.overall_acrt, *r.att_d, *r.acrt_d]
times = []
for _ in range(int(sys.argv[4])):  # best of, as ours
    t0 = time.perf_counter()
    est = fit()
    times.append(time.perf_counter() - t0)
print(json.dumps({"seconds": min(times), "estimate": [float(v) for v in est]}))
"""


def simulate(n: int, t_n: int, seed: int = 13) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(1, t_n + 1)
    g = np.where(rng.random(n) < 0.4, 0, rng.integers(4, 8, n))
    dose = np.where(g > 0, rng.uniform(0.5, 3, n), 0.0)
    on = (g[:, None] > 0) & (t[None, :] >= g[:, None])
    effect = on * (0.5 * dose + 0.2 * dose**2)[:, None]
    y = rng.normal(size=n)[:, None] + 0.3 * t + effect + rng.normal(size=(n, t_n))
    return pd.DataFrame(
        {
            "unit": np.repeat(np.arange(n), t_n),
            "period": np.tile(t, n),
            "g": np.repeat(g, t_n),
            "dose": np.repeat(dose, t_n),
            "y": y.ravel(),
        }
    )


def arrays(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    n_periods = frame["period"].nunique()
    y = frame["y"].to_numpy().reshape(-1, n_periods)
    g = frame["g"].to_numpy()[::n_periods]
    start = np.where(g > 0, g - 1, np.inf)
    fit = continuous_did(y, start, frame["dose"].to_numpy()[::n_periods], np.array(DOSES), DEGREE)
    keep = np.isnan(fit.event_time)
    return fit.estimate[keep], np.sqrt(np.diag(fit.vcov))[keep]


def api(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    res = pe.continuous_did(
        frame,
        outcome="y",
        unit="unit",
        time="period",
        first_treated="g",
        dose="dose",
        degree=DEGREE,
        doses=DOSES,
        inference="cluster_robust",
    )
    table = res.table[res.table["event_time"].isna()]
    return table["estimate"].to_numpy(), table["std_error"].to_numpy()


def peer(frame: pd.DataFrame, python: str, which: str) -> tuple[float, np.ndarray, float]:
    got = run_peer(python, PEER, frame, which, json.dumps(DOSES), str(REPEATS))
    return got["seconds"], np.array(got["estimate"]), got["peak_mib"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--units", type=int, default=200_000)
    parser.add_argument("--periods", type=int, default=10)
    parser.add_argument("--peer-python", default=None)
    args = parser.parse_args()
    frame = simulate(args.units, args.periods)
    print(f"panel: {args.units} units × {args.periods} periods, starts in periods 4–7")
    arrays(frame.iloc[: 200 * args.periods])
    t_arr, est, se = best(arrays, frame)
    t_api, est_api, se_api = best(api, frame)
    print(f"pathfinder-eval continuous_did from arrays: {t_arr:.2f} s (best of {REPEATS})")
    print(f"pathfinder-eval pe.continuous_did from the long frame: {t_api:.2f} s")
    print(
        f"pathfinder-eval peak memory (this process, data included): {process_peak_mib():,.0f} MiB"
    )
    assert np.allclose(est, est_api, atol=1e-12) and np.allclose(se, se_api, rtol=1e-10)
    if args.peer_python is None:
        print("diff-diff and moderndid: not run (give --peer-python)")
        return
    for which in ("diff-diff", "moderndid"):
        try:
            t_peer, est_p, peak = peer(frame, args.peer_python, which)
        except PeerFailed as exc:  # not installed there, or failed: the others still run
            print(f"{which}: did not finish ({exc})")
            continue
        print(
            f"{which}: {t_peer:.2f} s, peak {peak:,.0f} MiB (its process); ratio peer/ours "
            f"{t_peer / t_arr:.1f}× (arrays), {t_peer / t_api:.1f}× (API); max |Δestimate| "
            f"{np.abs(est - est_p).max():.1e}"
        )


if __name__ == "__main__":
    sys.exit(main())
