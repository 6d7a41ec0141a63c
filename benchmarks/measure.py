"""Time and peak memory for the benchmarks, measured the same way for ours and a peer.

- `best_of(fn, repeats)`: the best wall seconds of `repeats` calls after one warm-up call, and
  the last call's value.
- `traced_peak_mib(fn)`: the most memory allocated at once during one call of `fn`
  (tracemalloc, which sees Python, NumPy and pandas allocations), for a peer that runs in
  this process beside ours; the call is made once more for it, untimed (tracing slows it).
- `process_peak_mib()`: this process's peak resident memory so far (data included), to set
  beside a peer run in its own process (`stacked_speed.run_peer` gives that process's).
- `high_water_mib()`, and `PEAK_ON_EXIT` (its source, for a child process's code): a process's
  own peak resident memory. A child's getrusage ru_maxrss is no measure of it: Linux carries
  the parent's peak into the child's at exec, so a 10 MiB peer started from a benchmark that
  peaked at 300 MiB reports 300 MiB (and so does `os.wait4`'s usage of it).

tracemalloc does not see arrays that numba allocates inside compiled kernels, so a traced peak
of ours can be low where a kernel allocates (the stepped-wedge LMM's): `process_peak_mib` or a
fresh process's `high_water_mib` bound it.
"""

from __future__ import annotations

import inspect
import resource
import time
import tracemalloc
from collections.abc import Callable
from typing import Any


def best_of(fn: Callable[[], Any], repeats: int = 3) -> tuple[float, Any]:
    """(best wall seconds of `repeats` calls after one warm-up call, the last call's value)."""
    value = fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return min(times), value


def traced_peak_mib(fn: Callable[[], Any]) -> float:
    """MiB: the peak of memory allocated during one call of `fn` (untimed)."""
    tracemalloc.start()
    try:
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 2**20


def process_peak_mib() -> float:
    """MiB: this process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def high_water_mib() -> float:
    """MiB: this process's own peak resident memory (VmHWM of /proc/self/status), not one
    inherited from the process that started it."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024


# Prepended to a child's Python code: at exit it writes its own peak (MiB) to the file named
# by the environment variable BENCH_PEAK_FILE.
PEAK_ON_EXIT = (
    inspect.getsource(high_water_mib)
    + """
import atexit as _atexit, os as _os
_atexit.register(
    lambda: open(_os.environ["BENCH_PEAK_FILE"], "w").write(repr(high_water_mib()))
)
"""
)


def peer_failure(exc: Exception) -> str:
    """Why a peer gave no result, for the line that stands in for its row: a peer that is not
    installed, or that fails on this input, must not stop the comparison."""
    if isinstance(exc, ImportError):
        return "not installed"
    return f"failed: {type(exc).__name__}: {exc}"
