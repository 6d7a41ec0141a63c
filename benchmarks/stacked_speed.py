"""Stacked DiD speed beside diff-diff's StackedDiD on the same data (run on demand, not a
test).

A staggered panel of 200,000 units × 10 periods (cohorts 3, 5, 7, 9 + never treated): the
stack, corrective weights and weighted event study with CR1 by unit, κ_pre = 2 and
κ_post = 1 (so cohorts 3, 5 and 7 fit), not-yet-treated clean controls. pathfinder-eval from
arrays (`stacked_did`) and through the public API from the long frame (`pe.stacked`), and in
the same run diff-diff's `StackedDiD(weighting="aggregate")` when installed
(`pip install diff-diff`), which the project does not depend on. Prints seconds (best of 3),
ratios peer / ours, the largest difference in estimates and standard errors, and the peak
memory each allocates in one call (benchmarks/measure.py).

    OMP_NUM_THREADS=1 python benchmarks/stacked_speed.py [--units 200000] [--periods 10]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from etwfe_speed import simulate  # the same staggered panel (benchmarks/ is on the path)
from measure import PEAK_ON_EXIT, peer_failure, traced_peak_mib

import pathfinder_eval as pe
from pathfinder_eval.estimators.did.stacked import stacked_did

REPEATS = 3
KAPPA = (2, 1)


def best(run, frame: pd.DataFrame) -> tuple[float, np.ndarray, np.ndarray]:
    """Best of REPEATS seconds, and the event-time estimates and SEs (e = −2, 0, 1)."""
    times, out = [], None
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        out = run(frame)
        times.append(time.perf_counter() - t0)
    return min(times), *out


class PeerFailed(RuntimeError):
    """The peer's process did not finish (its exit status, last error line and peak memory)."""


def run_peer(python: str, code: str, frame: pd.DataFrame, *args: str) -> dict:
    """Run a peer package's `code` in another environment's `python` on `frame` (handed over as
    Parquet, the path as the first argument, then `args`); its last printed line is JSON, to
    which `peak_mib` (that peer process's own peak resident memory, VmHWM: measure.py says
    why not its ru_maxrss) is added."""
    with tempfile.TemporaryDirectory() as tmp:
        path, peak_file = Path(tmp) / "panel.parquet", Path(tmp) / "peak"
        frame.to_parquet(path)
        env = {**os.environ, "BENCH_PEAK_FILE": str(peak_file)}
        with open(Path(tmp) / "out", "w+") as out, open(Path(tmp) / "err", "w+") as err:
            proc = subprocess.run(
                [python, "-c", PEAK_ON_EXIT + code, str(path), *args],
                stdout=out,
                stderr=err,
                env=env,
            )
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read(), err.read()
        peak = float(peak_file.read_text()) if peak_file.exists() else float("nan")
    if proc.returncode != 0:
        how = (
            f"killed by {signal.Signals(-proc.returncode).name}"
            if proc.returncode < 0
            else f"exit status {proc.returncode}"
        )
        last = (stderr.strip().splitlines() or [""])[-1]
        at = f" at {peak:,.0f} MiB peak memory" if np.isfinite(peak) else ""
        raise PeerFailed(f"{how}{at}{': ' + last if last else ''}")
    return {**json.loads(stdout.strip().splitlines()[-1]), "peak_mib": peak}


def arrays(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    fit = stacked_did(
        frame["y"].to_numpy(),
        frame["unit"].to_numpy(),
        frame["period"].to_numpy(),
        frame["cohort"].to_numpy(),
        *KAPPA,
    )
    return fit.estimate[1:], np.sqrt(np.diag(fit.vcov))[1:]


def api(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    data = frame.assign(cohort=frame["cohort"].replace(np.inf, 0))
    res = pe.stacked(
        data,
        outcome="y",
        unit="unit",
        time="period",
        first_treated="cohort",
        kappa_pre=KAPPA[0],
        kappa_post=KAPPA[1],
        inference="cluster_robust",
    )
    rows = res.table.iloc[1:]
    return rows["estimate"].to_numpy(), rows["std_error"].to_numpy()


def diff_diff(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    from diff_diff import StackedDiD

    res = StackedDiD(kappa_pre=KAPPA[0], kappa_post=KAPPA[1], df_convention="cluster").fit(
        frame, outcome="y", unit="unit", time="period", first_treat="cohort"
    )
    es = res.event_study_effects
    keys = [e for e in sorted(es) if e != -1]
    return np.array([es[e]["effect"] for e in keys]), np.array([es[e]["se"] for e in keys])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--units", type=int, default=200_000)
    parser.add_argument("--periods", type=int, default=10)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    frame = simulate(args.units, args.periods)
    print(f"panel: {args.units} units × {args.periods} periods, cohorts 3, 5, 7, 9 + never")
    arrays(frame.iloc[:2000])
    t_arr, est, se = best(arrays, frame)
    t_api, est_api, se_api = best(api, frame)
    print(f"pathfinder-eval stacked_did from arrays: {t_arr:.2f} s (best of {REPEATS})")
    print(f"pathfinder-eval pe.stacked from the long frame: {t_api:.2f} s")
    assert np.allclose(est, est_api, atol=1e-12) and np.allclose(se, se_api, rtol=1e-10)
    try:
        t_dd, est_dd, se_dd = best(diff_diff, frame)
    except Exception as exc:  # a peer's failure is reported, not raised
        print(f"diff-diff: {peer_failure(exc)}")
        return
    print(
        f"diff-diff StackedDiD: {t_dd:.2f} s; ratio peer/ours {t_dd / t_arr:.1f}× (arrays), "
        f"{t_dd / t_api:.1f}× (API); max |Δestimate| {np.abs(est - est_dd).max():.1e}, "
        f"max relative |ΔSE| {np.abs(se / se_dd - 1).max():.1e}"
    )
    mine = traced_peak_mib(lambda: arrays(frame)), traced_peak_mib(lambda: api(frame))
    theirs = traced_peak_mib(lambda: diff_diff(frame))
    print(
        f"peak traced memory of one call: arrays {mine[0]:,.0f} MiB, API {mine[1]:,.0f} MiB, "
        f"diff-diff {theirs:,.0f} MiB"
    )


if __name__ == "__main__":
    main()
