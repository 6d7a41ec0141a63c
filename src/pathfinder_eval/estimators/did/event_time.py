"""Event times as differences of period labels, which the event-study estimators (event
study, Sun & Abraham, stacked) read in periods: that holds when consecutive labels are one
apart (years, or periods numbered 1, 2, 3, …), not for labels a fixed step apart; and the
event time they omit as the reference."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.panel import OTHER_RULE, ValidatedPanel


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


def cohorts_left_out_at(panel: ValidatedPanel, cells: pd.DataFrame, event_time: int) -> list[float]:
    """The treated cohorts of `cells` whose every unit has `event_time` left out by the design
    (the transition rule's partly exposed period at −1)."""
    treated = cells.loc[cells["role"] == "treated", ["unit", "cohort"]].drop_duplicates("unit")
    if treated.empty:
        return []
    units, cohort = treated["unit"].to_numpy(), treated["cohort"].to_numpy(float)
    periods, at = np.unique(cohort + event_time, return_inverse=True)
    gap, _ = panel.left_out_by_design(units, periods)
    out = gap[np.arange(len(units)), at]
    return [float(c) for c in np.unique(cohort) if out[cohort == c].all()]


def cells_left_out(panel: ValidatedPanel, cells: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(units, periods) of the cells the design leaves out for the treated units of `cells`
    (the transition rule's partly exposed period, a wave's transition periods), following the
    rollout's dates: in a placebo in time they sit at other event times than in the fit."""
    units = cells.loc[cells["role"] == "treated", "unit"].drop_duplicates().to_numpy()
    periods = np.asarray(panel.periods, dtype=float)
    gap, _ = panel.left_out_by_design(units, periods)
    rows, cols = np.nonzero(gap)
    return units[rows], periods[cols]


def reference_event_time(
    panel: ValidatedPanel, cells: pd.DataFrame, asked: int, named: bool, lowest: int
) -> tuple[int, str | None]:
    """The omitted event time: `asked`, unless the design leaves it out (the transition rule's
    partly exposed period) for every unit of a treated cohort, whose effects would then have
    no reference (the fit failed as 'not identified'). Then the latest earlier event time, down
    to `lowest`, that no cohort loses, with a note saying so; an error when the design named
    `asked` itself (`named`)."""
    gone = cohorts_left_out_at(panel, cells, asked)
    if not gone:
        return asked, None
    why = (
        f"event time {asked} is left out by the design for every unit of cohort(s) "
        f"{', '.join(panel.period_label(int(c)) for c in gone)} (their partly exposed period, "
        "partial_period_rule: transition), so their effects would have no reference period"
    )
    earlier = next(
        (e for e in range(asked - 1, lowest - 1, -1) if not cohorts_left_out_at(panel, cells, e)),
        None,
    )
    if named or earlier is None:
        raise EstimationError(
            why,
            where="options.reference" if named else "time.partial_period_rule",
            fix=f"set options.reference to {earlier}, the last period before it"
            if earlier is not None
            else f"{OTHER_RULE}, or read callaway_santanna or sun_abraham, which take an "
            "earlier reference",
        )
    return earlier, f"{why[0].upper()}{why[1:]}: the reference is event time {earlier}."
