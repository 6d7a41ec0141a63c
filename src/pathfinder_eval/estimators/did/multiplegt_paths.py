"""Treatment paths for de Chaisemartin & D'Haultfœuille's `by_path` option and `design` table.

A switching LA's path is its treatment from the period before its first change through
`effects` periods after it, e.g. (0, 1, 1) for a team that starts and stays, (0, 1, 0) for
one that pauses. `by_path` estimates the effects separately for the most common paths: each
path's switchers against the LAs with the same starting treatment in the periods before
they change (never-changing LAs throughout), every effect over the same switchers — the
authors' rule (did_multiplegt_dyn's `by_path`; their Python port 0.1.9 checked in
tests/reference/dcdh_multiplegt_dyn). The `design` table counts the switchers on each path.
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
        return _label(self.treatments)

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
    seq, inside = _window(d, first, effects)
    seq[~inside] = np.nan  # past the panel's end
    keys: dict[tuple[float, ...], list[int]] = {}
    for g in np.flatnonzero(moves):
        keys.setdefault(tuple(np.nan_to_num(seq[g], nan=np.inf)), []).append(int(g))
    before = np.arange(n_periods)[None, :] < first[:, None]
    paths = []
    for key, members in keys.items():
        treatments = tuple(np.where(np.isinf(key), np.nan, key))
        on = np.zeros(n_units, bool)
        on[members] = True
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


def design(
    d: np.ndarray,
    f: np.ndarray,
    l_g: np.ndarray,
    switcher: np.ndarray,
    live: np.ndarray,
    effects: int,
) -> tuple[list[dict[str, Any]], int]:
    """The switchers' treatment paths from the period before the change through `effects`
    periods after (the authors' `design` table), over the switchers followed that long: a
    comparison of their start is unchanged until then (l_g ≥ effects) and every cell of the
    window is used (known, not after the LA has been above and below its start). Each path
    with its LAs, most common first (ties by label), and how many switchers are not followed
    that long. d (G, T) treatments, f (G,) switch dates (1-based), l_g (G,), live (G, T)."""
    seq, inside = _window(d, f.astype(int) - 1, effects)
    used = _window(live, f.astype(int) - 1, effects)[0] & inside & ~np.isnan(seq)
    followed = switcher & (l_g >= effects) & used.all(axis=1)
    counts: dict[tuple[float, ...], int] = {}
    for g in np.flatnonzero(followed):
        key = tuple(float(v) for v in seq[g])
        counts[key] = counts.get(key, 0) + 1
    rows = [{"path": _label(k), "units": n} for k, n in counts.items()]
    rows.sort(key=lambda r: (-r["units"], r["path"]))
    return rows, int((switcher & ~followed).sum())


def _window(values: np.ndarray, first: np.ndarray, effects: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's values from the period before `first` (0-based, its F_g) through `effects`
    periods after it, (G, effects + 1), and which of those periods are in the panel (the
    others hold the nearest period's value)."""
    at = first[:, None] - 1 + np.arange(effects + 1)[None, :]
    inside = (at >= 0) & (at < values.shape[1])
    cells = np.clip(at, 0, values.shape[1] - 1)
    return values[np.arange(values.shape[0])[:, None], cells], inside


def _label(treatments: tuple[float, ...]) -> str:
    return "(" + ", ".join("NA" if np.isnan(v) else f"{v:g}" for v in treatments) + ")"
