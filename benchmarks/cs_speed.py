"""Callaway–Sant'Anna speed beside peer packages (run on demand, not a test).

A staggered panel of 200,000 units × 10 periods (4 cohorts + never treated, no covariates):
ATT(g,t) with analytic SEs, and with a 999-draw multiplier bootstrap, for pathfinder-eval and,
in the same run, diff-diff and csdid when installed (`pip install diff-diff csdid`). Prints
seconds (best of 3 for ours and diff-diff), ratios (peer / ours), max |ΔATT| and peak memory.

Two rows for ours: the engine from the (n, T) outcome array (its reshaping not counted), and
the public `pathfinder_eval.callaway_santanna` from the same long data frame the peers are
given (validation, panel building and the report's diagnostics counted): the ratio a user
calling the API sees.

    OMP_NUM_THREADS=1 python benchmarks/cs_speed.py [--units 200000] [--periods 10]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import resource
import time
import tracemalloc
import warnings

import numpy as np
import pandas as pd

from pathfinder_eval.estimators.did.group_time import aggregate, group_time_att, prepare_cohorts
from pathfinder_eval.estimators.did.group_time_inference import analytic_se, multiplier_bootstrap


def simulate(n: int, t_n: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Outcomes (n, T), cohorts (n,) with NaN never treated, periods (T,)."""
    rng = np.random.default_rng(seed)
    periods = np.arange(1, t_n + 1, dtype=float)
    starts = np.array([3, 5, 7, 9], dtype=float)
    cohort = np.where(rng.random(n) < 0.4, np.nan, rng.choice(starts, n))
    unit = rng.normal(size=n)[:, None]
    time_fx = 0.1 * periods[None, :]
    exposure = np.where(np.isnan(cohort)[:, None], -1.0, periods[None, :] - cohort[:, None])
    effect = np.where(exposure >= 0, 0.5 + 0.1 * exposure, 0.0)
    y = unit + time_fx + effect + rng.normal(size=(n, t_n))
    return y, cohort, periods


REPEATS = 3  # best of: ours and diff-diff (each run once first to warm up)


def ours(y, cohort, periods, draws: int):
    c, keep = prepare_cohorts(cohort, periods)
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    gt = group_time_att(y[keep], c[keep], periods, method="dr")
    se = analytic_se(gt.influence)
    agg = aggregate(gt, "dynamic")
    analytic_se(agg.influence)
    t_an = time.perf_counter() - t0
    cpu_an = time.process_time() - cpu0
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    if draws:
        multiplier_bootstrap(np.column_stack([gt.influence, agg.influence]), draws, 1)
    t_bs = time.perf_counter() - t0
    cpu_bs = time.process_time() - cpu0
    att = {(float(g), float(t)): a for g, t, a in zip(gt.group, gt.time, gt.att, strict=True)}
    return (t_an, cpu_an), (t_an + t_bs, cpu_an + cpu_bs), att, se


def long_frame(y, cohort, periods) -> pd.DataFrame:
    n, t_n = y.shape
    return pd.DataFrame(
        {
            "unit": np.repeat(np.arange(n), t_n),
            "period": np.tile(periods.astype(int), n),
            "y": y.ravel(),
            "first_treat": np.repeat(np.nan_to_num(cohort, nan=0.0).astype(int), t_n),
        }
    )


def api_run(frame: pd.DataFrame):
    """The public API from the long frame, analytic (cluster-robust) inference."""
    import pathfinder_eval as pe

    cpu0, t0 = time.process_time(), time.perf_counter()
    res = pe.callaway_santanna(
        frame,
        outcome="y",
        unit="unit",
        time="period",
        first_treated="first_treat",
        inference="cluster_robust",
    )
    elapsed = (time.perf_counter() - t0, time.process_time() - cpu0)
    rows = res.table.dropna(subset=["event_time"])
    return elapsed, dict(zip(rows["event_time"].astype(float), rows["estimate"], strict=True))


def diff_diff_run(frame: pd.DataFrame, draws: int):
    from diff_diff import CallawaySantAnna as DD

    cpu0, t0 = time.process_time(), time.perf_counter()
    res = DD(estimation_method="dr", n_bootstrap=draws, seed=1).fit(
        frame, "y", "unit", "period", "first_treat", aggregate="event_study"
    )
    elapsed = (time.perf_counter() - t0, time.process_time() - cpu0)
    att = {(float(g), float(t)): v["effect"] for (g, t), v in res.group_time_effects.items()}
    events = {float(e): v["effect"] for e, v in (res.event_study_effects or {}).items()}
    return elapsed, att, events


def csdid_run(frame: pd.DataFrame, draws: int):
    from csdid.att_gt import ATTgt

    cpu0, t0 = time.process_time(), time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        fit = ATTgt(
            yname="y",
            gname="first_treat",
            idname="unit",
            tname="period",
            data=frame,
            biters=max(draws, 1),
        ).fit(est_method="dr", bstrap=draws > 0)
        fit.aggte(typec="dynamic", bstrap=draws > 0)
    elapsed = (time.perf_counter() - t0, time.process_time() - cpu0)
    r = fit.results
    att = {(float(g), float(t)): a for g, t, a in zip(r["group"], r["year"], r["att"], strict=True)}
    return elapsed, att, {}


def max_diff(a: dict, b: dict) -> float:
    keys = set(a) & set(b)
    return max(abs(a[k] - b[k]) for k in keys) if keys else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--units", type=int, default=200_000)
    parser.add_argument("--periods", type=int, default=10)
    parser.add_argument("--draws", type=int, default=999)
    parser.add_argument("--no-peers", action="store_true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    y, cohort, periods = simulate(args.units, args.periods)
    print(f"panel: {args.units} units × {args.periods} periods, cohorts 3, 5, 7, 9 + never")

    ours(y[:2000], cohort[:2000], periods, 9)  # warm-up (numba compilation, caches)
    runs = [ours(y, cohort, periods, args.draws) for _ in range(REPEATS)]
    t_an = min((r[0] for r in runs), key=lambda t: t[0])
    t_bs = min((r[1] for r in runs), key=lambda t: t[0])
    att = runs[0][2]
    tracemalloc.start()
    ours(y, cohort, periods, args.draws)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"pathfinder-eval: analytic {t_an[0]:.2f} s wall / {t_an[1]:.2f} s CPU; with "
        f"{args.draws}-draw bootstrap {t_bs[0]:.2f} s wall / {t_bs[1]:.2f} s CPU; "
        f"peak traced memory {peak / 2**20:.0f} MiB"
    )
    own_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process peak RSS before any peer runs: {own_rss:.0f} MiB")
    if args.no_peers:
        return
    frame = long_frame(y, cohort, periods)
    api_runs = [api_run(frame) for _ in range(REPEATS)]
    t_api = min((e for e, _ in api_runs), key=lambda t: t[0])
    print(
        f"pathfinder-eval API from the long frame (analytic): {t_api[0]:.2f} s wall / "
        f"{t_api[1]:.2f} s CPU"
    )
    for label, runner in (("diff-diff", diff_diff_run), ("csdid", csdid_run)):
        for draws, ours_t in ((0, t_an), (args.draws, t_bs))[: 2 if args.draws else 1]:
            try:
                repeats = REPEATS if label == "diff-diff" else 1  # csdid's bootstrap takes ~1 min
                timed = [runner(frame, draws) for _ in range(repeats)]
                elapsed = min((run[0] for run in timed), key=lambda t: t[0])
                peer_att = timed[0][1]
            except ImportError:
                print(f"{label}: not installed")
                break
            except Exception as exc:  # a peer failing must not stop the comparison
                print(f"{label} (draws={draws}): failed: {type(exc).__name__}: {exc}")
                continue
            print(
                f"{label} (draws={draws}): {elapsed[0]:.2f} s wall / {elapsed[1]:.2f} s CPU; "
                f"ratio peer/ours {elapsed[0] / ours_t[0]:.1f}× wall, "
                f"{elapsed[1] / ours_t[1]:.1f}× CPU; max |ΔATT| {max_diff(att, peer_att):.2e}"
            )
            if label == "diff-diff" and draws == 0:
                effects = timed[0][2]
                print(
                    f"    from the same long frame, peer / our API: "
                    f"{elapsed[0] / t_api[0]:.2f}× wall; max |Δ event-time effect| "
                    f"{max_diff(api_runs[0][1], effects):.2e}"
                )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process peak RSS (all runs): {rss:.0f} MiB")


if __name__ == "__main__":
    main()
