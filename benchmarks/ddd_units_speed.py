"""Unit-level triple-difference speed beside moderndid's `ddd` on the same data (run on demand,
not a test).

Children's records: 200,000 children × 10 years in 150 LAs (cohorts of LAs starting in years
3, 5, 7 and 9, and never), half the children eligible, two covariates (age, changing each
year, and a need score); the doubly robust DDD with never-treated comparisons (or, with
--not-yet-treated, not-yet-treated ones combined by GMM weights), universal base period,
every ATT(g,t) with its analytic SE and the event-time aggregation.
pathfinder-eval's `pe.triple_difference` from the long frame; moderndid's `ddd` (when
installed: `pip install moderndid`) from the same frame. Prints seconds (best of 3), the
ratio peer / ours, the largest difference in the ATT(g,t) and the peak memory each
allocates in one call (benchmarks/measure.py).

    OMP_NUM_THREADS=1 python benchmarks/ddd_units_speed.py [--units 200000] [--periods 10] \
        [--not-yet-treated]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from measure import peer_failure, traced_peak_mib  # benchmarks/ is on the path

import pathfinder_eval as pe

REPEATS = 3


def simulate(n: int, t_n: int, seed: int = 7) -> pd.DataFrame:
    """One row per child and year: la, child, year, start (0 never), eligible, age, need, y."""
    rng = np.random.default_rng(seed)
    years = np.arange(1, t_n + 1)
    la_start = np.where(rng.random(150) < 0.4, 0, rng.choice([3, 5, 7, 9], 150))
    la = rng.integers(0, 150, n)
    start = la_start[la]
    elig = (rng.random(n) < 0.5).astype(int)
    age0, need = rng.integers(0, 12, n), rng.normal(size=n)
    rel = years[None, :] - start[:, None]
    effect = np.where((start[:, None] > 0) & (rel >= 0) & (elig[:, None] == 1), 0.5, 0.0)
    y = (
        rng.normal(size=n)[:, None]
        + 0.1 * years[None, :]
        + 0.05 * years[None, :] * elig[:, None]
        + 0.2 * need[:, None]
        + effect
        + rng.normal(size=(n, t_n))
    )
    return pd.DataFrame(
        {
            "la": np.repeat(la, t_n),
            "child": np.repeat(np.arange(n), t_n),
            "year": np.tile(years, n),
            "start": np.repeat(start, t_n),
            "eligible": np.repeat(elig, t_n),
            "age": (age0[:, None] + years[None, :]).ravel(),
            "need": np.repeat(need, t_n),
            "y": y.ravel(),
        }
    )


def best(run, data, control: str) -> tuple[float, dict]:
    times, cells = [], {}
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        cells = run(data, control)
        times.append(time.perf_counter() - t0)
    return min(times), cells


def ours(frame: pd.DataFrame, control: str) -> dict:
    res = pe.triple_difference(
        frame,
        outcome="y",
        unit="child",
        time="year",
        first_treated="start",
        eligible="eligible",
        covariates=["age", "need"],
        control_group=control,
    )
    return {(c["cohort"], c["period"]): c["estimate"] for c in res.facts.att_gt}


def moderndid(frame: pd.DataFrame, control: str) -> dict:
    import moderndid as did

    res = did.ddd(
        data=frame,
        yname="y",
        tname="year",
        idname="child",
        gname="start",
        pname="eligible",
        xformla="~ age + need",
        control_group=control.replace("_", ""),
        base_period="universal",
        est_method="dr",
    )
    did.agg_ddd(res, type="eventstudy", boot=False, cband=False)
    return {
        (float(g), float(t)): a
        for g, t, a in zip(res.groups, res.times, res.att, strict=True)
        if t != g - 1
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--units", type=int, default=200_000)
    parser.add_argument("--periods", type=int, default=10)
    parser.add_argument("--not-yet-treated", action="store_true")
    args = parser.parse_args()
    control = "not_yet_treated" if args.not_yet_treated else "never_treated"
    warnings.filterwarnings("ignore")
    frame = simulate(args.units, args.periods)
    print(
        f"records: {args.units} children × {args.periods} years in 150 LAs, DR with 2 "
        f"covariates, {control.replace('_', '-')} comparisons"
    )
    t_ours, mine = best(ours, frame, control)
    print(f"pathfinder-eval pe.triple_difference: {t_ours:.2f} s ({len(mine)} ATT(g,t))")
    try:
        t_md, theirs = best(moderndid, frame, control)
    except Exception as exc:  # a peer's failure is reported, not raised
        print(f"moderndid: {peer_failure(exc)}")
        return
    shared = mine.keys() & theirs.keys()
    diff = max((abs(mine[k] - theirs[k]) for k in shared), default=float("nan"))
    print(
        f"moderndid ddd: {t_md:.2f} s; ratio peer/ours {t_md / t_ours:.1f}×; "
        f"max |ΔATT(g,t)| {diff:.1e} over the {len(shared)} cells both estimate "
        f"(ours {len(mine)}, moderndid {len(theirs)})"
    )
    mine = traced_peak_mib(lambda: ours(frame, control))
    theirs = traced_peak_mib(lambda: moderndid(frame, control))
    print(f"peak traced memory of one call: ours {mine:,.0f} MiB, moderndid {theirs:,.0f} MiB")


if __name__ == "__main__":
    main()
