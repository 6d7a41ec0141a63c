"""Placebo in time: a DiD analysis re-run on pre-intervention data with every start moved
`shift` periods earlier. No pilot acted then, so an estimate far from zero points to trends
that already differed before the start (not to an effect of the pilot)."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from pathfinder_eval.data.source import Exclusion
from pathfinder_eval.errors import EstimationError
from pathfinder_eval.estimators import checked_fit
from pathfinder_eval.panel import ValidatedPanel
from pathfinder_eval.results import EffectEstimates
from pathfinder_eval.spec import Analysis
from pathfinder_eval.workers import ordered_map

PLACEBO_SHIFT = 2
STAGE = "placebo_in_time"


@dataclass(frozen=True)
class PlaceboPanel:
    """The truncated panel; fake_starts: unit → fake first treated period; exclusions: the
    rows (and units) the placebo leaves out, by outcome."""

    panel: ValidatedPanel
    shift: int
    fake_starts: dict[str, int]
    exclusions: tuple[Exclusion, ...]


@dataclass(frozen=True)
class PlaceboRun:
    """One placebo re-fit: a result, or the reason there is none."""

    analysis: Analysis
    outcome: str
    shift: int
    window: tuple[int, int] | None
    fake_starts: dict[str, int]
    status: str  # "ok" | "not_estimable" | "suppressed" (disclosure control)
    result: EffectEstimates | None = None
    note: str = ""
    exclusions: tuple[Exclusion, ...] = ()


def placebo_panel(panel: ValidatedPanel, shift: int = PLACEBO_SHIFT) -> PlaceboPanel:
    """Cells before the first real start, each treated unit's start moved `shift` data periods
    earlier. Treated units whose fake start falls outside that window are left out (counted).

    Raises EstimationError when the earliest fake start has no period before it."""
    periods = list(panel.periods)
    first_real = int(panel.units["cohort"].min())
    cut = bisect.bisect_left(periods, first_real)
    if shift < 1 or cut - shift < 1:
        raise EstimationError(
            f"{cut} period(s) before the first start: a placebo start {shift} periods "
            "earlier needs at least one period before it",
            where="placebo_in_time",
            fix="supply a longer pre-period",
        )
    window = periods[:cut]
    treated = panel.units[panel.units["role"] == "treated"]
    fake = {
        u: periods[bisect.bisect_left(periods, int(c)) - shift]
        for u, c in zip(treated["unit"], treated["cohort"], strict=True)
    }
    outside = sorted(u for u, p in fake.items() if p > window[-1])
    fake = {u: p for u, p in fake.items() if u not in outside}
    cells = panel.cells
    drop_late = cells["period"] >= first_real
    drop_unit = cells["unit"].isin(outside) & ~drop_late
    ledger = _ledger(
        cells, drop_late, "on or after the first real start (the placebo uses earlier data only)"
    )
    ledger += _ledger(cells, drop_unit, "treated unit whose placebo start falls after the window")
    kept = cells[~(drop_late | drop_unit)].copy()
    kept["cohort"] = kept["unit"].map(fake).astype("float64")
    kept["treated"] = (kept["period"] >= kept["cohort"]).astype("int64")
    units = panel.units[~panel.units["unit"].isin(outside)].copy()
    units["cohort"] = units["unit"].map(fake).astype("float64")
    truncated = replace(
        panel,
        cells=kept.reset_index(drop=True),
        units=units.reset_index(drop=True),
        periods=tuple(window),
        exclusions=panel.exclusions + tuple(ledger),
    )
    return PlaceboPanel(truncated, shift, fake, tuple(ledger))


def _ledger(cells: pd.DataFrame, mask: pd.Series, reason: str) -> list[Exclusion]:
    out = []
    for outcome, part in cells[mask].groupby("outcome", sort=True):
        units = tuple(sorted(set(part["unit"])))
        out.append(Exclusion(reason, len(part), units, str(outcome), STAGE))
    return out


def placebo_in_time(
    panel: ValidatedPanel,
    fits: Iterable[tuple[Analysis, str, Any]],
    shift: int = PLACEBO_SHIFT,
    workers: int | None = 1,
) -> tuple[PlaceboRun, ...]:
    """Re-fit each (analysis, outcome, estimator) on the placebo panel, with up to `workers`
    local processes (None: the available cores); leave-one-out refits are switched off (they
    are not part of the check)."""
    fits = list(fits)
    try:
        pp = placebo_panel(panel, shift)
    except EstimationError as exc:
        return unplaceable(fits, shift, exc)
    return tuple(ordered_map(placebo_refit, pp, fits, workers))


def unplaceable(
    fits: Iterable[tuple[Analysis, str, Any]], shift: int, why: EstimationError
) -> tuple[PlaceboRun, ...]:
    """The placebo runs of `fits` when the data allow no placebo panel (`why`)."""
    return tuple(
        PlaceboRun(a, o, shift, None, {}, "not_estimable", note=why.one_line()) for a, o, _ in fits
    )


def placebo_refit(pp: PlaceboPanel, fit: tuple[Analysis, str, Any]) -> PlaceboRun:
    """One placebo re-fit of (analysis, outcome, estimator): its result, or why there is none."""
    analysis, outcome, est = fit
    window = (pp.panel.periods[0], pp.panel.periods[-1])
    excluded = tuple(e for e in pp.exclusions if e.outcome == outcome)
    try:
        res = checked_fit(est.for_placebo(), pp.panel, outcome, analysis.id, analysis.level)
    except EstimationError as exc:
        return PlaceboRun(
            analysis,
            outcome,
            pp.shift,
            window,
            pp.fake_starts,
            "not_estimable",
            None,
            exc.one_line(),
            excluded,
        )
    return PlaceboRun(analysis, outcome, pp.shift, window, pp.fake_starts, "ok", res, "", excluded)


def placebo_document(run: PlaceboRun, label: Callable[[int], str]) -> dict[str, Any]:
    """The results-JSON entry of a placebo run; `label` maps period ordinals to labels."""
    entry = (
        run.result.to_dict()
        if run.result is not None
        else {
            "id": run.analysis.id,
            "outcome": run.outcome,
            "estimator": run.analysis.estimator.value,
            "estimates": [],
        }
    )
    entry.update(
        status=run.status,
        note=run.note,
        shift=run.shift,
        window=[label(p) for p in run.window] if run.window else None,
        fake_starts={u: label(p) for u, p in run.fake_starts.items()},
        exclusions=[
            {
                "reason": e.reason,
                "outcome": e.outcome,
                "count": e.count,
                "units": list(e.units),
                "stage": e.stage,
            }
            for e in run.exclusions
        ],
    )
    return entry
