"""Callaway–Sant'Anna speed beside peer packages (run on demand, not a test).

A staggered panel of 200,000 units × 10 periods (4 cohorts + never treated, no covariates):
ATT(g,t) with analytic SEs, and with a 999-draw multiplier bootstrap, for pathfinder-eval and,
in the same run, diff-diff and csdid when installed (`pip install diff-diff csdid`). Prints
seconds (best of 3 for ours and diff-diff; csdid's bootstrap takes a minute, so once), the
ratio peer / ours, the largest differences in ATT(g,t) and in the event-time effects, and the
peak memory each allocates in one call (benchmarks/measure.py).

The ratio is against the public `pathfinder_eval.callaway_santanna` from the same long data
frame the peers are given (its reshaping, validation, panel building and the report's
diagnostics counted), at each peer's number of draws: the ratio a user sees. Beside it, the
engine from the (n, T) outcome array (its reshaping not counted), the speed of the estimator
itself.

    OMP_NUM_THREADS=1 python benchmarks/cs_speed.py [--units 200000] [--periods 10]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import time
import warnings

import numpy as np
import pandas as pd
from measure import peer_failure, process_peak_mib, traced_peak_mib  # benchmarks/ on the path

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


def api_run(frame: pd.DataFrame, draws: int = 0):
    """The public API from the long frame, cluster-robust (with `draws`: the multiplier
    bootstrap's) inference; the seconds and the event-time effects."""
    import pathfinder_eval as pe

    cpu0, t0 = time.process_time(), time.perf_counter()
    res = pe.callaway_santanna(
        frame,
        outcome="y",
        unit="unit",
        time="period",
        first_treated="first_treat",
        inference="cluster_robust",
        bootstrap_draws=draws,
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
    peak = traced_peak_mib(lambda: ours(y, cohort, periods, args.draws))
    print(
        f"pathfinder-eval engine on arrays: analytic {t_an[0]:.2f} s wall / {t_an[1]:.2f} s "
        f"CPU; with {args.draws}-draw bootstrap {t_bs[0]:.2f} s wall / {t_bs[1]:.2f} s CPU; "
        f"peak traced memory {peak:.0f} MiB"
    )
    print(f"process peak RSS before any peer runs: {process_peak_mib():.0f} MiB")
    if args.no_peers:
        return
    frame = long_frame(y, cohort, periods)
    settings = (0, args.draws) if args.draws else (0,)
    api: dict[int, tuple] = {}
    for draws in settings:
        runs = [api_run(frame, draws) for _ in range(REPEATS)]
        api[draws] = (min((e for e, _ in runs), key=lambda t: t[0]), runs[0][1])
        peak = traced_peak_mib(lambda draws=draws: api_run(frame, draws))
        print(
            f"pathfinder-eval API from the long frame ({draws} draws): {api[draws][0][0]:.2f} s "
            f"wall / {api[draws][0][1]:.2f} s CPU; peak traced memory {peak:,.0f} MiB"
        )
    engine = {0: t_an, args.draws: t_bs}
    for label, runner in (("diff-diff", diff_diff_run), ("csdid", csdid_run)):
        for draws in settings:
            repeats = REPEATS if label == "diff-diff" else 1  # csdid's bootstrap takes ~1 min
            try:
                timed = [runner(frame, draws) for _ in range(repeats)]
                peak = traced_peak_mib(lambda runner=runner, draws=draws: runner(frame, draws))
            except Exception as exc:  # a peer's failure is reported, not raised
                print(f"{label} ({draws} draws): {peer_failure(exc)}")
                if isinstance(exc, ImportError):
                    break
                continue
            elapsed = min((run[0] for run in timed), key=lambda t: t[0])
            (api_t, api_events), eng = api[draws], engine[draws]
            events = timed[0][2]
            print(
                f"{label} ({draws} draws): {elapsed[0]:.2f} s wall / {elapsed[1]:.2f} s CPU, "
                f"peak traced memory {peak:,.0f} MiB; ratio peer / our API from the same "
                f"frame {elapsed[0] / api_t[0]:.2f}× wall, {elapsed[1] / api_t[1]:.2f}× CPU "
                f"(peer / our engine on arrays {elapsed[0] / eng[0]:.1f}×); max |ΔATT(g,t)| "
                f"{max_diff(att, timed[0][1]):.2e}"
                + (
                    f", max |Δ event-time effect| {max_diff(api_events, events):.2e}"
                    if events
                    else ""
                )
            )
    print(f"process peak RSS (ours and the peers run in it): {process_peak_mib():.0f} MiB")


if __name__ == "__main__":
    main()
