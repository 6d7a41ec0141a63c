"""Event times as differences of period labels, which the event-study estimators (event
study, Sun & Abraham, stacked) read in periods: that holds when consecutive labels are one
apart (years, or periods numbered 1, 2, 3, …), not for labels a fixed step apart."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pathfinder_eval.errors import EstimationError


def check_periods_one_apart(periods: Sequence[float], estimator: str) -> None:
    """Refuse periods whose labels all step by more than one (2001, 2003, 2005, …): event
    time −1, the reference, would fall between two periods, and each estimator then fails
    with a message about something else."""
    steps = np.diff(np.unique(np.asarray(periods, float)))
    whole = steps.size and np.all(steps == np.round(steps))
    step = int(np.gcd.reduce(steps.astype(np.int64))) if whole else 1
    if step > 1:
        shown = ", ".join(f"{p:g}" for p in np.unique(np.asarray(periods, float))[:3])
        raise EstimationError(
            f"the periods are {step} apart ({shown}, …) and {estimator} counts event times in "
            "the time column's units, so the period before each start (event time −1, the "
            "reference) is not one of them",
            where="time",
            fix="number the periods in order (1, 2, 3, …) so that event times count periods",
        )
