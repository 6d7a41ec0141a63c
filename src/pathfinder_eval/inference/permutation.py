"""Permutation machinery shared by randomisation tests: allocations of units to the observed
sequences of start times (exact enumeration or seeded sampling) and confidence intervals by
test inversion."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Allocations:
    """starts: (M, I) index of each cluster's first intervention period under each allocation,
    row 0 the observed one; exact: all M distinct allocations were enumerated; total: how many
    distinct allocations the design has."""

    starts: np.ndarray
    exact: bool
    total: int


def allocation_count(start: np.ndarray) -> int:
    """How many distinct allocations of the clusters to the observed sequences exist: the
    multinomial coefficient I! / Π n_s!."""
    _, counts = np.unique(start, return_counts=True)
    return math.factorial(len(start)) // math.prod(math.factorial(int(c)) for c in counts)


def allocations(start: np.ndarray, draws: int, seed: int) -> Allocations:
    """Every distinct re-allocation of clusters to the observed sequences when there are at most
    `draws`, else the observed allocation plus `draws` random permutations (seeded)."""
    values, counts = np.unique(start, return_counts=True)
    n = len(start)
    total = allocation_count(start)
    if total <= draws:
        rows = [start.copy()]
        for alloc in _multiset_allocations(n, values, counts):
            if not np.array_equal(alloc, start):
                rows.append(alloc)
        return Allocations(np.array(rows), True, total)
    rng = np.random.default_rng(seed)
    perms = np.array([rng.permutation(start) for _ in range(draws)])
    return Allocations(np.vstack([start[None, :], perms]), False, total)


def _multiset_allocations(n: int, values: np.ndarray, counts: np.ndarray):
    """Each way to give counts[k] of the n clusters the start values[k]."""

    def fill(free: tuple[int, ...], k: int, alloc: np.ndarray):
        if k == len(values):
            yield alloc.copy()
            return
        for chosen in itertools.combinations(free, int(counts[k])):
            alloc[list(chosen)] = values[k]
            rest = tuple(i for i in free if i not in chosen)
            yield from fill(rest, k + 1, alloc)

    yield from fill(tuple(range(n)), 0, np.zeros(n, dtype=values.dtype))


def invert_test(
    p_value: Callable[[float], float],
    estimate: float,
    step: float,
    alpha: float,
    rtol: float = 1e-6,
) -> float:
    """The end of the acceptance region {b : p(b) > alpha} on the side of `estimate` that
    `step` points to: widen until rejected, then bisect to rtol·|step|; NaN if the test never
    rejects on that side."""
    inside, outside = estimate, estimate + step
    for _ in range(60):
        if p_value(outside) <= alpha:
            break
        inside, outside = outside, outside + 2.0 * (outside - estimate)
    else:
        return float("nan")
    while abs(outside - inside) > rtol * abs(step):
        mid = 0.5 * (inside + outside)
        if p_value(mid) <= alpha:
            outside = mid
        else:
            inside = mid
    return 0.5 * (inside + outside)
