"""Triple-difference speed beside diff-diff's TripleDifference on the same data (run on
demand, not a test).

A staggered panel of 200,000 LAs × 10 periods, each with a targeted and an untargeted group
(cohorts 3, 5, 7, 9 + never treated): the staggered DDD with never-treated comparisons,
regression adjustment, no covariates, the simple ATT with its SE. pathfinder-eval as
Callaway & Sant'Anna on the within-LA contrast, from arrays (the engine) and through
`pe.callaway_santanna(..., minus=)` from the long frame (one row per LA and period, a column
per group); diff-diff's `TripleDifference` (when installed: `pip install diff-diff`) from the
same data in its long form (one row per LA, group and period). The headline ratio is from
that one long frame for both: ours counts its reshaping to a column per group (a merge).
Prints seconds (best of 3), ratios peer / ours, the difference in the ATT and the peak memory
each allocates in one call (benchmarks/measure.py).

    OMP_NUM_THREADS=1 python benchmarks/ddd_speed.py [--units 200000] [--periods 10]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from measure import peer_failure, traced_peak_mib  # benchmarks/ is on the path

import pathfinder_eval as pe
from pathfinder_eval.estimators.did.group_time import aggregate, group_time_att, prepare_cohorts
from pathfinder_eval.estimators.did.group_time_inference import analytic_se

REPEATS = 3


def simulate(n: int, t_n: int, seed: int = 7) -> pd.DataFrame:
    """One row per LA and period: cohort (0 never), y1 (targeted), y0 (untargeted)."""
    rng = np.random.default_rng(seed)
    periods = np.arange(1, t_n + 1)
    cohort = np.where(rng.random(n) < 0.4, 0, rng.choice([3, 5, 7, 9], n))
    shared = rng.normal(size=n)[:, None] + 0.1 * periods + rng.normal(size=(n, t_n))
    rel = periods[None, :] - cohort[:, None]
    effect = np.where((cohort[:, None] > 0) & (rel >= 0), 0.5 + 0.1 * rel, 0.0)
    y1 = shared + 0.5 + effect + rng.normal(size=(n, t_n))
    y0 = shared + rng.normal(size=(n, t_n))
    return pd.DataFrame(
        {
            "la": np.repeat(np.arange(n), t_n),
            "year": np.tile(periods, n),
            "cohort": np.repeat(cohort, t_n),
            "y1": y1.ravel(),
            "y0": y0.ravel(),
        }
    )


def best(run, data) -> tuple[float, float]:
    times, att = [], np.nan
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        att = run(data)
        times.append(time.perf_counter() - t0)
    return min(times), att


def engine(frame: pd.DataFrame) -> float:
    t_n = frame["year"].nunique()
    y = (frame["y1"] - frame["y0"]).to_numpy().reshape(-1, t_n)
    cohort = frame["cohort"].to_numpy()[::t_n].astype(float)
    periods = np.arange(1, t_n + 1, dtype=float)
    c, keep = prepare_cohorts(np.where(cohort > 0, cohort, np.nan), periods)
    gt = group_time_att(y[keep], c[keep], periods, method="reg")
    simple = aggregate(gt, "simple")
    analytic_se(simple.influence)
    return float(simple.overall)


def api(frame: pd.DataFrame) -> float:
    res = pe.callaway_santanna(
        frame,
        outcome="y1",
        minus="y0",
        unit="la",
        time="year",
        first_treated="cohort",
        control_group="never_treated",
        method="reg",
        aggregation="simple",
        inference="cluster_robust",
    )
    return float(res.table["estimate"].iloc[0])


def api_from_long(long: pd.DataFrame) -> float:
    """The API from the peer's long frame: a column per group by a merge, then `api`."""
    keys = ["la", "year"]
    targeted = long[long["targeted"] == 1][[*keys, "cohort", "y"]].rename(columns={"y": "y1"})
    other = long[long["targeted"] == 0][[*keys, "y"]].rename(columns={"y": "y0"})
    return api(targeted.merge(other, on=keys))


def diff_diff(long: pd.DataFrame) -> float:
    from diff_diff import TripleDifference

    res = TripleDifference(estimation_method="reg", control_group="never_treated").fit(
        long, outcome="y", unit="unit", time="year", first_treat="cohort", partition="targeted"
    )
    return float(res.overall_att)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--units", type=int, default=200_000)
    parser.add_argument("--periods", type=int, default=10)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    frame = simulate(args.units, args.periods)
    print(f"panel: {args.units} LAs × {args.periods} periods × 2 groups, cohorts 3, 5, 7, 9")
    t_engine, att = best(engine, frame)
    t_api, att_api = best(api, frame)
    print(f"pathfinder-eval CS on the contrast, engine from arrays: {t_engine:.2f} s")
    print(f"pathfinder-eval pe.callaway_santanna(minus=) from the long frame: {t_api:.2f} s")
    assert abs(att - att_api) < 1e-10
    long = pd.concat(
        [
            frame[["la", "year", "cohort"]].assign(targeted=g, y=frame[col])
            for g, col in ((1, "y1"), (0, "y0"))
        ],
        ignore_index=True,
    )
    long["unit"] = long["la"] * 2 + long["targeted"]
    t_long, att_long = best(api_from_long, long)
    print(f"pathfinder-eval from diff-diff's long frame (reshaping counted): {t_long:.2f} s")
    assert abs(att - att_long) < 1e-10
    try:
        t_dd, att_dd = best(diff_diff, long)
    except Exception as exc:  # a peer's failure is reported, not raised
        print(f"diff-diff: {peer_failure(exc)}")
        return
    print(
        f"diff-diff TripleDifference: {t_dd:.2f} s; ratio peer/ours from the same long frame "
        f"{t_dd / t_long:.1f}× (beside: {t_dd / t_engine:.1f}× the engine on arrays, "
        f"{t_dd / t_api:.1f}× the API on the wide frame); |ΔATT| {abs(att - att_dd):.1e}"
    )
    arrays, frame_api = traced_peak_mib(lambda: engine(frame)), traced_peak_mib(lambda: api(frame))
    from_long = traced_peak_mib(lambda: api_from_long(long))
    theirs = traced_peak_mib(lambda: diff_diff(long))
    print(
        f"peak traced memory of one call: engine {arrays:,.0f} MiB, API {frame_api:,.0f} MiB "
        f"(from the long frame {from_long:,.0f} MiB), diff-diff {theirs:,.0f} MiB"
    )


if __name__ == "__main__":
    main()
