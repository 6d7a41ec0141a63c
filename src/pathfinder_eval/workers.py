"""Independent fits of one run spread over local processes.

A run's fits (each analysis × outcome, then each placebo re-fit) share one validated panel and
nothing else: every estimator is built with the run's seed, so a fit's numbers do not depend on
what ran before it. `ordered_map` hands them to worker processes forked from this one, which
inherit the panel (and every loaded module) instead of receiving a pickled copy, and returns
the results in the items' order: the report is the same, byte for byte, with any number of
workers. Forking is used only where it is safe and cheap: on Linux, from a process with one
thread; elsewhere the fits run here, one after another.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from pathfinder_eval.errors import PathfinderError

S = TypeVar("S")
T = TypeVar("T")
R = TypeVar("R")

MAX_DEFAULT_WORKERS = 8
_shared: Any = None  # set in each worker by _adopt; the parent never sets it


class _Raised:
    """A worker's fit raised: the parent runs that item itself to raise the real error."""


def available_workers() -> int:
    """The cores this process may run on (its CPU affinity where the system reports it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def ordered_map(
    fn: Callable[[S, T], R], shared: S, items: Sequence[T], workers: int | None = None
) -> list[R]:
    """[fn(shared, item) for item in items], with up to `workers` processes (default:
    default_workers()). `fn` must be a module-level function and its results picklable;
    `shared` reaches the workers by fork, never pickled. An item whose fit raises in a worker
    is run again here when its turn in the order comes, after the workers are ended without
    finishing, so its exception (and traceback) is the one a serial run gives (should it
    succeed here, the items after it run here too); a
    worker that is killed (often by the system, for lack of memory) stops the run with an
    error that says to use one worker."""
    n = min(default_workers() if workers is None else workers, len(items))
    if n < 2 or _shared is not None or not _can_fork():  # (_shared: inside a worker)
        return [fn(shared, item) for item in items]
    context = multiprocessing.get_context("fork")
    earlier = set(multiprocessing.active_children())
    with warnings.catch_warnings():
        # Python 3.12+ warns when it forks a process with other OS threads; ours are BLAS's
        # idle pool (OpenBLAS re-creates it in the child) — Python threads are checked above
        warnings.filterwarnings("ignore", ".*multi-threaded.*fork", DeprecationWarning)
        pool = ProcessPoolExecutor(n, context, initializer=_adopt, initargs=(fn, shared))
        try:
            results: list[R] = []
            for r in pool.map(_call, items):  # in order
                if isinstance(r, _Raised):
                    # end the workers first (not waited for), then run this item and the rest
                    # here: its error (and traceback) is a serial run's, raised without the
                    # workers' fits competing for the cores
                    _stop(pool, earlier)
                    return results + [fn(shared, item) for item in items[len(results) :]]
                results.append(r)
            return results
        except BrokenProcessPool:
            raise PathfinderError(
                f"a worker process stopped before its fits were done (killed, often by the "
                f"system for lack of memory: each of the {n} workers is a copy of this process)",
                where="workers",
                fix="run again with one worker (--workers 1, or workers=1 in Python)",
            ) from None
        except BaseException:  # Ctrl-C, or an item's error raised here
            _stop(pool, earlier)
            raise
        finally:
            pool.shutdown()


def default_workers() -> int:
    """The available cores, at most MAX_DEFAULT_WORKERS: each worker is a copy of this
    process, whose pages (the panel, the loaded modules) it shares only until it writes."""
    return min(available_workers(), MAX_DEFAULT_WORKERS)


def inner_threads() -> int:
    """Threads a fit may use for its own parallel loops: one in a worker process (the
    run's workers already use the cores), else the default number of workers."""
    return 1 if _shared is not None else default_workers()


def _stop(pool: ProcessPoolExecutor, earlier: set[Any]) -> None:
    """Ctrl-C or an error: cancel what has not started and end the workers now (the executor
    would otherwise wait for every fit already handed to them), also one forked but not yet
    registered when Ctrl-C came (every child this process has that it had not before).
    The executor's own thread also reaps the workers: it is waited for, as a join here can
    return before that thread has recorded a worker's exit."""
    known = (getattr(pool, "_processes", None) or {}).values()
    running = list({*known, *(set(multiprocessing.active_children()) - earlier)})
    manager = getattr(pool, "_executor_manager_thread", None)
    pool.shutdown(wait=False, cancel_futures=True)
    for process in running:
        process.terminate()
    for process in running:
        process.join()
    if manager is not None and manager.ident is not None:
        manager.join(timeout=10)


def _can_fork() -> bool:
    """Forking copies one thread: safe only when this process has no other."""
    return sys.platform.startswith("linux") and threading.active_count() == 1


def _adopt(fn: Callable[[Any, Any], Any], shared: Any) -> None:
    """A worker's start: keep the task and state; end with the parent if it is killed."""
    global _shared
    _shared = (fn, shared)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG (forked on Linux only)


def _call(item: Any) -> Any:
    fn, shared = _shared
    try:
        return fn(shared, item)
    except Exception:
        return _Raised()
