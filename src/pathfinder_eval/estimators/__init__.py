"""Estimators by family (did/, stepped_wedge/, synthetic/): each a typed options model
(settings.py) with `fit(panel, outcome, analysis_id, level)` returning `EffectEstimates`."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.inference.cr2 import two_way_residuals
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
    _require_variation(panel, outcome)
    return result.require_finite()


# Residuals of the outcome on unit and period effects at most this share of its largest value
# are rounding: nothing is left to estimate from (found in review: SEs of 1e-16 to 1e-31 and
# p = 0.034 from an outcome constant within each unit).
NO_VARIATION = 1e-9


def _require_variation(panel: Any, outcome: str) -> None:
    """EstimationError when the outcome's cells are unit effects plus period effects exactly
    (a constant outcome, one constant within each unit, or a noise-free additive series):
    every estimate and standard error is then rounding. Checked after the fit, so an
    estimator's own message for such data (a stepped wedge's 'the same in every record')
    comes first; once per panel and outcome, however many analyses read it."""
    if not panel.derived(
        ("varies", outcome),
        lambda: _varies(panel.outcome_cells(outcome), panel.unit_codes(outcome)[0]),
    ):
        raise EstimationError(
            "the outcome does not vary beyond what unit and period effects fit (a constant "
            "outcome, one constant within each unit, or a series without noise): every "
            "estimate and standard error would be rounding",
            where=f"outcome {outcome}",
            fix="check that the outcome names the measure to analyse and that it varies",
        )


def _varies(cells: pd.DataFrame, units: np.ndarray) -> bool:
    """Whether the cells' y has residuals beyond rounding on unit and period effects (`units`:
    each cell's unit code, ValidatedPanel.unit_codes)."""
    y = cells["y"].to_numpy(float)
    if y.size < 2 or not np.isfinite(y).all():
        return True
    left = two_way_residuals(units, pd.factorize(cells["period"])[0], y)
    return bool(
        np.abs(left).max() > NO_VARIATION * max(float(np.abs(y).max()), np.finfo(float).tiny)
    )
