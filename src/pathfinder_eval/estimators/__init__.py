"""Estimators by family (did/, stepped_wedge/, synthetic/): each a typed options model
(settings.py) with `fit(panel, outcome, analysis_id, level)` returning `EffectEstimates`."""

from __future__ import annotations

from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.results import EffectEstimates


def one_blas_thread() -> threadpool_limits:
    """A context in which BLAS uses one thread: a multi-threaded BLAS sums in an order that
    depends on the machine's cores, and a fit would differ from machine to machine in its last
    digits (a report's bytes, a simulation's p-values). Every fit runs in one."""
    return threadpool_limits(limits=1)


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
