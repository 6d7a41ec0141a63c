"""Parts of a panel that de Chaisemartin & D'Haultfœuille's estimator runs on alone: each
treatment path (`by_path`, multiplegt_paths.py) or each value of a unit-table column (`by`).

Each part's fit is on its own rows of the unit × period grid; its rows follow the overall ones
in the table, and all rows share one variance: their weights on the outcomes line up on the
grid (for the pooled and stratified variances) and their influence functions are summed
within the same clusters (for the analytic one).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import numpy as np

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.estimators.did.multiplegt_paths import treatment_paths
from pathfinder_eval.settings import MultiplegtDynOptions


class Fit(Protocol):
    """What a part's fit gives (multiplegt_dyn.DynamicFit): its rows' lags, labels and
    estimates, their weights on the grid rows it used, and their influences summed within
    labelled clusters."""

    @property
    def lag(self) -> np.ndarray: ...
    @property
    def estimate(self) -> np.ndarray: ...
    @property
    def weights(self) -> np.ndarray: ...
    @property
    def influence(self) -> np.ndarray: ...
    @property
    def clusters(self) -> np.ndarray: ...
    @property
    def labels(self) -> tuple[str, ...]: ...


# the estimator on some rows of the grid: (rows, effects, placebos, same switchers) → fit
Estimate = Callable[[np.ndarray, int, int, bool], Fit]


class Part(NamedTuple):
    """A part estimated on its own: its rows' name in the table, its label in the facts, its
    LAs, its rows of the grid and its fit or why there is none."""

    name: str
    label: str
    units: int
    rows: np.ndarray
    fit: Fit | EstimationError


def by_path(options: MultiplegtDynOptions, d: np.ndarray, estimate: Estimate) -> list[Part]:
    """Each requested treatment path's fit, with every effect over the same LAs, or why it
    could not be estimated (as the authors' code, the other paths go on). Raises when the
    paths cannot be formed (a treatment missing)."""
    how_many = None if options.by_path == "all" else int(options.by_path)
    out = []
    for path in treatment_paths(d, options.effects, options.placebo, how_many):
        try:
            fit: Fit | EstimationError = estimate(path.rows, path.effects, path.placebos, True)
        except EstimationError as exc:
            fit = exc
        out.append(Part(f"path {path.label}", path.label, int(path.units.sum()), path.rows, fit))
    return out


def by_value(
    options: MultiplegtDynOptions, values: np.ndarray, units: np.ndarray, estimate: Estimate
) -> list[Part]:
    """The fit on the LAs of each value of the `by` column (each grid row's `values`, in the
    values' order), or why it could not be estimated (the authors' `by`)."""
    out = []
    for value in sorted(set(values), key=str):
        rows = values == value
        try:
            fit: Fit | EstimationError = estimate(
                rows, options.effects, options.placebo, options.same_switchers
            )
        except EstimationError as exc:
            fit = exc
        label = str(value)
        out.append(Part(f"{options.by} {label}", label, len(set(units[rows])), rows, fit))
    return out


def on_rows(weights: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """A part's weights (k, its rows) on the whole grid (k, grid rows)."""
    out = np.zeros((weights.shape[0], rows.size))
    out[:, rows] = weights
    return out


def joint_vcov(fits: list[Fit]) -> np.ndarray:
    """The analytic variance of every fit's rows together: their influences summed within
    the same clusters (a cluster outside a fit's rows contributes nothing to them)."""
    labels = np.unique(np.concatenate([f.clusters for f in fits]))
    psi = np.vstack(
        [cluster_sums(f.influence, np.searchsorted(labels, f.clusters), len(labels)) for f in fits]
    )
    return psi @ psi.T


def cluster_sums(influence: np.ndarray, member: np.ndarray, n_clusters: int) -> np.ndarray:
    """(k, n_clusters) sums of the columns of influence (k, G) within their clusters (member:
    (G,) codes 0..n_clusters−1): one pass per row, not a (G, clusters) indicator matrix."""
    return np.array(
        [np.bincount(member, weights=row, minlength=n_clusters) for row in influence]
    ).reshape(len(influence), n_clusters)


def part_facts(part: Part, key: str) -> dict[str, Any]:
    """The report's line for one part: its label (under `key`), LAs, rows and whether it was
    estimable."""
    facts: dict[str, Any] = {key: part.label, "units": part.units}
    if isinstance(part.fit, EstimationError):
        return {**facts, "rows": 0, "note": part.fit.one_line()}
    return {**facts, "rows": int(part.fit.lag.size), "note": ""}
