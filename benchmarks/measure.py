"""Time and peak memory for the benchmarks, measured the same way for ours and a peer.

- `best_of(fn, repeats)`: the best wall seconds of `repeats` calls after one warm-up call, and
  the last call's value.
- `traced_peak_mib(fn)`: the most memory allocated at once during one call of `fn`
  (tracemalloc, which sees Python, NumPy and pandas allocations), for a peer that runs in
  this process beside ours; the call is made once more for it, untimed (tracing slows it).
- `process_peak_mib()`: this process's peak resident memory so far (data included), to set
  beside a peer run in its own process (`stacked_speed.run_peer` gives that process's).
"""

from __future__ import annotations

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
