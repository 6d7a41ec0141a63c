"""Estimators by family (did/, stepped_wedge/, synthetic/): each a typed options model
(settings.py) with `fit(panel, outcome, analysis_id, level)` returning `EffectEstimates`."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.results import EffectEstimates

_here = threading.local()  # .held: this thread is inside one_blas_thread (a worker forked
# by it inherits that, with its limit)


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """A context in which BLAS uses one thread: a multi-threaded BLAS sums in an order that
    depends on the machine's cores, and a fit would differ from machine to machine in its last
    digits (a report's bytes, a simulation's p-values). Every fit runs in one. The OpenBLAS of
    numpy's and SciPy's wheels keeps the number for each thread, so each thread sets its own;
    inside another context, or in a worker forked inside one, this costs nothing (setting
    the limit reads every loaded library: 0.6 ms, mostly system time)."""
    if getattr(_here, "held", False):
        yield
        return
    with threadpool_limits(limits=1):
        _here.held = True
        try:
            yield
        finally:
            _here.held = False


def checked_fit(
    estimator: Any, panel: Any, outcome: str, analysis_id: str, level: float
) -> EffectEstimates:
    """`estimator.fit(...)`, with a numerical breakdown (a singular or non-convergent linear
    algebra step on degenerate or extreme data) or a non-finite estimate turned into an
    EstimationError: the analysis is then reported not estimable with the reason."""
    try:
        with one_blas_thread():
            result = estimator.fit(panel, outcome, analysis_id, level)
    except np.linalg.LinAlgError as exc:
        raise EstimationError(
            f"the {estimator.name} fit broke down numerically ({exc})",
            where=f"outcome {outcome}",
            fix="check the outcome's values for extreme or constant series, or simplify the model",
        ) from None
    return result.require_finite()
