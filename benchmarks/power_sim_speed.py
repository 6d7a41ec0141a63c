"""Speed of simulation power for a stepped-wedge trial: in-process, local processes and Dask.

Run on demand (not a test): python benchmarks/power_sim_speed.py [REPLICATES] [CHUNK]
10,000 (default) trials of 10 clusters (5 sequences × 2, 6 periods, the first all-control)
are simulated from a nested-exchangeable model (ICC 0.05, CAC 0.8, 25 individuals per cell,
effect 0.3) and analysed with the nested-exchangeable LMM (REML, Kenward-Roger) by
power.trial_simulation, timed (wall clock, after a warm-up that compiles and loads the numba
kernels in each worker) in this process, on 2 local processes, and on Dask LocalClusters of
1 and 2 single-threaded worker processes. The per-task overhead is the Dask time of as many
trivial tasks as the run had chunks, divided by their number. Target: ≤ 30 s on 2 cores.
Results must be identical across the four runs (same seeds, any chunking).
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
from distributed import Client, LocalCluster

from pathfinder_eval.power.analytic import VarianceModel, stepped_wedge
from pathfinder_eval.power.trial_simulation import TrialModel, simulate_trial_power

TRIAL = TrialModel(stepped_wedge([2] * 5), VarianceModel.from_icc(0.05, 0.8), 25)
EFFECT, SEED = 0.3, 7


def run(n: int, chunk: int, **where) -> tuple[float, np.ndarray]:
    """Wall time and p-values of one run of n replicates."""
    t0 = time.perf_counter()
    res = simulate_trial_power(TRIAL, n, SEED, EFFECT, chunk_size=chunk, progress=False, **where)
    return time.perf_counter() - t0, res.p_values


def trivial(x: int) -> int:
    return x


def main(n: int, chunk: int) -> None:
    tasks = -(-n // chunk)
    print(f"load average before: {os.getloadavg()[0]:.2f} (other processes share the cores)")
    print(
        f"{n:,} NE trials (10 clusters, 6 periods, 25 per cell), REML + Kenward-Roger; "
        f"{tasks} tasks of {chunk} replicates; host has {os.cpu_count()} cores"
    )
    run(2 * chunk, chunk, workers=1)  # compile/load the numba kernels here
    times, pvals = {}, {}
    cpu = time.process_time()
    times["in-process, 1 core"], pvals["in"] = run(n, chunk, workers=1)
    cpu = time.process_time() - cpu
    run(4, 2, workers=2)
    times["local processes, 2"], pvals["local"] = run(n, chunk, workers=2)
    overhead = {}
    for k in (1, 2):
        with (
            LocalCluster(
                n_workers=k, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            run(2 * k, 1, scheduler=cluster.scheduler_address)  # warm each worker
            times[f"Dask LocalCluster, {k} worker(s)"], pvals[k] = run(
                n, chunk, scheduler=cluster.scheduler_address
            )
            t0 = time.perf_counter()
            client.gather(client.map(trivial, range(tasks), pure=False))
            overhead[k] = (time.perf_counter() - t0) / tasks
    base = times["in-process, 1 core"]
    print(f"{'run':34} {'seconds':>8} {'ms/trial':>9} {'speed-up':>9}")
    for name, t in times.items():
        print(f"{name:34} {t:8.2f} {1e3 * t / n:9.3f} {base / t:9.2f}")
    dask1, dask2 = times["Dask LocalCluster, 1 worker(s)"], times["Dask LocalCluster, 2 worker(s)"]
    print(f"Dask 2 workers vs 1 worker: {dask1 / dask2:.2f}×")
    for k, o in overhead.items():
        print(f"Dask per-task overhead ({k} worker(s), {tasks} trivial tasks): {1e3 * o:.2f} ms")
    print(
        f"in-process CPU time: {1e3 * cpu / n:.3f} ms/trial (10,000 on 2 idle cores ≈ "
        f"{5e3 * cpu / n:.1f} s); load average after: {os.getloadavg()[0]:.2f}"
    )
    same = all(np.array_equal(pvals["in"], p, equal_nan=True) for p in pvals.values())
    print(
        f"identical p-values in all runs: {same}; target ≤ 30 s on 2 cores: "
        f"{'met' if min(times['local processes, 2'], dask2) <= 30 else 'NOT met'}"
    )


if __name__ == "__main__":
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 10_000,
        int(sys.argv[2]) if len(sys.argv) > 2 else 250,
    )
