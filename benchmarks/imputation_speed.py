"""BJS imputation speed and memory beside diff-diff's ImputationDiD (run on demand, not a test).

The staggered panel of benchmarks/cs_speed.py (4 cohorts + never treated, 60% treated), at
several sizes. For each size, three rows timed from the same long data frame: the engine
(`imputation`, its arrays taken from the frame inside the timing), the public
`pathfinder_eval.imputation` with the same variance as the peer (τ̄ by cohort × period,
clustered by unit: `inference="cluster_robust"`), and diff-diff's `ImputationDiD` clustered by
unit, each the best of 3 after one warm-up. Prints seconds, the ratio peer / ours, the peak
traced memory of one run, and the largest differences in the overall ATT, the event-time
effects and their standard errors. The engine also computes every row's Satterthwaite df,
which diff-diff does not.

    OMP_NUM_THREADS=1 python benchmarks/imputation_speed.py [--units 1000 5000 20000]
"""

from __future__ import annotations

import argparse
import os
import time
import tracemalloc
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
from cs_speed import long_frame, simulate
from measure import peer_failure

import pathfinder_eval as pe
from pathfinder_eval.estimators.did.imputation import imputation

REPEATS = 3

Effects = dict[str, tuple[float, float]]  # row → (estimate, standard error)


def engine(frame: pd.DataFrame) -> Effects:
    cohort = frame["first_treat"].replace(0, np.nan).to_numpy(float)
    res = imputation(frame["y"].to_numpy(), frame["unit"].to_numpy(), frame["period"], cohort)
    se = np.sqrt(np.diag(res.vcov))
    rows = ["overall"] + [str(int(e)) for e in res.event_time]
    return dict(zip(rows, zip(res.estimate, se, strict=True), strict=True))


def api(frame: pd.DataFrame) -> Effects:
    res = pe.imputation(
        frame,
        outcome="y",
        unit="unit",
        time="period",
        first_treated="first_treat",
        inference="cluster_robust",
    )
    t = res.table
    rows = ["overall" if np.isnan(e) else str(int(e)) for e in t["event_time"]]
    return dict(zip(rows, zip(t["estimate"], t["std_error"], strict=True), strict=True))


def diff_diff(frame: pd.DataFrame) -> Effects:
    from diff_diff import ImputationDiD

    fit = ImputationDiD(cluster="unit").fit(  # one fit with the event study, as ours
        frame,
        outcome="y",
        unit="unit",
        time="period",
        first_treat="first_treat",
        aggregate="event_study",
    )
    out = {"overall": (fit.overall_att, fit.overall_se)}
    for e, v in fit.event_study_effects.items():
        if e >= 0:
            out[str(int(e))] = (v["effect"], v["se"])
    return out


def timed(
    run: Callable[[pd.DataFrame], Effects], frame: pd.DataFrame
) -> tuple[float, float, Effects]:
    """Best-of-3 seconds, peak traced MiB of one more run, and its effects."""
    run(frame)
    best = float("inf")
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        run(frame)
        best = min(best, time.perf_counter() - t0)
    tracemalloc.start()
    out = run(frame)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return best, peak, out


def largest_gaps(a: Effects, b: Effects) -> str:
    keys = sorted(set(a) & set(b))
    d_est = max(abs(a[k][0] - b[k][0]) for k in keys)
    d_se = max(abs(a[k][1] - b[k][1]) for k in keys)
    return f"{len(keys)} rows, max |Δ estimate| {d_est:.1e}, max |Δ SE| {d_se:.1e}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--units", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--periods", type=int, default=10)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    for n in args.units:
        frame = long_frame(*simulate(n, args.periods))
        print(f"{n} units × {args.periods} periods ({len(frame):,} rows)")
        t_eng, m_eng, ours = timed(engine, frame)
        t_api, m_api, ours_api = timed(api, frame)
        print(f"    engine  {t_eng:7.2f} s  peak traced {m_eng:5.0f} MiB")
        print(
            f"    API     {t_api:7.2f} s  peak traced {m_api:5.0f} MiB  "
            f"({largest_gaps(ours, ours_api)})"
        )
        try:
            t_dd, m_dd, peer = timed(diff_diff, frame)
        except Exception as exc:  # a peer's failure is reported, not raised
            print(f"    diff-diff: {peer_failure(exc)} (pip install diff-diff)")
            continue
        print(
            f"    diff-diff {t_dd:5.2f} s  peak traced {m_dd:5.0f} MiB  "
            f"peer / engine {t_dd / t_eng:.1f}×, peer / API {t_dd / t_api:.1f}×  "
            f"({largest_gaps(ours, peer)})"
        )


if __name__ == "__main__":
    main()
