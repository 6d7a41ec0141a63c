"""Units that differ only in case or spaces are refused, also where a large file's units take
the quick pyarrow test first (panel._may_fold_together) and only a possible clash the exact one."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

import pathfinder_eval as pe
from pathfinder_eval.errors import PanelError
from pathfinder_eval.panel import _fold, _may_fold_together


def test_the_quick_test_never_misses_a_pair_the_exact_one_merges():
    """Every pair of distinct identifiers from pieces with case, spaces (the ASCII ones
    Python's split knows, \\x1c included) and casefold's non-ASCII cases that fold to one key
    is flagged; distinct codes are not (so a large file's units skip the exact test)."""
    pieces = ["la", "LA", "La", " ", "\t", "\x1c", "05", "ß", "SS", "ss", "İ", "i̇", "Σ", "ς"]
    words = {"".join(p) for n in (1, 2, 3) for p in itertools.product(pieces, repeat=n)}
    groups: dict[str, list[str]] = {}
    for w in sorted(words):
        groups.setdefault(_fold(w), []).append(w)
    pairs = [p for g in groups.values() for p in itertools.combinations(g, 2)]
    assert len(pairs) > 1000  # the pieces do make clashes to miss
    assert all(_may_fold_together(set(p)) for p in pairs)
    assert not _may_fold_together({"E06000059", "E10000019", "e0600005"})
    assert not _may_fold_together({str(i) for i in range(200_000)})


def _frame(units: list[str]) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [
        {"unit": u, "period": t, "g": 5 if i < 3 else 0, "y": rng.normal()}
        for i, u in enumerate(units)
        for t in range(1, 9)
    ]
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    ("first", "second"), [("LA05", "la05"), ("LA 05", "la  05"), ("Straße", "STRASSE")]
)
def test_two_data_units_differing_in_case_or_spaces_are_refused(first, second):
    units = [f"u{i:02d}" for i in range(10)] + [first, second]
    with pytest.raises(PanelError, match="differ only in case or spaces"):
        pe.twfe(_frame(units), outcome="y", unit="unit", time="period", first_treated="g")
    distinct = [f"u{i:02d}" for i in range(10)] + [first, "other"]
    res = pe.twfe(_frame(distinct), outcome="y", unit="unit", time="period", first_treated="g")
    assert res.n_units == 12
