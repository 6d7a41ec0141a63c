"""Treatment paths for de Chaisemartin & D'Haultfœuille's `by_path` option.

A switching LA's path is its treatment from the period before its first change through
`effects` periods after it, e.g. (0, 1, 1) for a team that starts and stays, (0, 1, 0) for
one that pauses. `by_path` estimates the effects separately for the most common paths: each
path's switchers against the LAs with the same starting treatment in the periods before
they change (never-changing LAs throughout), every effect over the same switchers — the
authors' rule (did_multiplegt_dyn's `by_path`; their Python port 0.1.9 checked in
tests/reference/dcdh_multiplegt_dyn).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pathfinder_eval.errors import EstimationError


@dataclass(frozen=True)
class TreatmentPath:
    """One path: its treatments (NaN past the panel's end: an incomplete path), the LAs on it
    (a mask over the rows of the unit × period matrix), how many effects and placebos its
    LAs allow, and the grid rows its estimation uses (a mask over the flattened matrix)."""

    treatments: tuple[float, ...]
    units: np.ndarray
    effects: int
    placebos: int
    rows: np.ndarray

    @property
    def label(self) -> str:
        return "(" + ", ".join("NA" if np.isnan(v) else f"{v:g}" for v in self.treatments) + ")"

    @property
    def complete(self) -> bool:
        return not np.isnan(self.treatments).any()


def treatment_paths(
    d: np.ndarray, effects: int, placebo: int, how_many: int | None
) -> list[TreatmentPath]:
    """The `how_many` most common paths (None: all) of the (units, periods) treatment matrix:
    complete paths first, then by how many LAs follow them, ties by their label (the
    authors' order). Each path's effects are at most its LAs' fewest periods from the first
    change to the panel's end; its placebos at most its LAs' most periods before the one
    before the change."""
    if np.isnan(d).any():
        raise EstimationError(
            "by_path needs every LA's treatment in every period (some are missing)",
            where="options by_path",
            fix="give the treatment in every period, or drop by_path",
        )
    n_units, n_periods = d.shape
    changed = d[:, 1:] != d[:, :-1]
    moves = changed.any(axis=1)
    first = np.where(moves, changed.argmax(axis=1) + 1, n_periods)  # F_g − 1, 0-based
    baseline = d[np.arange(n_units), first - 1]
    at = first[:, None] - 1 + np.arange(effects + 1)[None, :]  # F_g − 1 … F_g − 1 + effects
    seq = d[np.arange(n_units)[:, None], np.minimum(at, n_periods - 1)]
    seq[at >= n_periods] = np.nan  # past the panel's end
    keys: dict[tuple[float, ...], list[int]] = {}
    for g in np.flatnonzero(moves):
        keys.setdefault(tuple(np.nan_to_num(seq[g], nan=np.inf)), []).append(int(g))
    paths = []
    for key, members in keys.items():
        treatments = tuple(np.where(np.isinf(key), np.nan, key))
        on = np.zeros(n_units, bool)
        on[members] = True
        before = np.arange(n_periods)[None, :] < first[:, None]
        control = before & (baseline == baseline[members[0]])[:, None]
        paths.append(
            TreatmentPath(
                treatments=treatments,
                units=on,
                effects=int(min(effects, (n_periods - first[on]).min())),
                placebos=int(min(placebo, max(0, (first[on] - 1).max()))),
                rows=(on[:, None] | control).ravel(),
            )
        )
    paths.sort(key=lambda p: (not p.complete, -int(p.units.sum()), p.label))
    return paths if how_many is None else paths[:how_many]


def design(d: np.ndarray, effects: int) -> tuple[list[dict[str, Any]], int]:
    """The treatment paths of the LAs that change, over `effects` periods after the change,
    for those followed that long while an LA with their starting treatment is still unchanged
    (the authors' `design` option): each path with its LAs, most common first, and how many
    other LAs change while one is unchanged but too late to be followed that long. Nothing
    when a treatment is missing."""
    if np.isnan(d).any():
        return [], 0
    n_units, n_periods = d.shape
    changed = d[:, 1:] != d[:, :-1]
    first = np.where(changed.any(axis=1), changed.argmax(axis=1) + 1, n_periods)
    baseline = d[np.arange(n_units), first - 1]
    # the last period in which an LA of the same start is unchanged, for each LA's start
    last = {b: first[baseline == b].max() - 1 for b in np.unique(baseline)}
    control = np.array([last[b] for b in baseline])
    followed = first + effects - 1 <= control
    rows = [
        {"path": path.label, "units": int((path.units & followed).sum())}
        for path in treatment_paths(d, effects, 0, None)
        if (path.units & followed).any()
    ]
    rows.sort(key=lambda r: -r["units"])  # stable: ties keep treatment_paths' label order
    return rows, int((changed.any(axis=1) & (first <= control) & ~followed).sum())
