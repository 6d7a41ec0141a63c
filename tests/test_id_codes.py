"""Identifier codes read per distinct value (data/tidy.py `id_codes`) equal the row-by-row
reading (`id_text`, then a factorisation) on every kind of column an id comes in."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pathfinder_eval.data.tidy import id_codes, id_text


@pytest.mark.parametrize(
    "values",
    [
        pd.Series([838.0, 835.0, 838.0, np.nan, 7.0]),  # Stata/Parquet floats: '838'
        pd.Series([838.5, 835.0, 838.5]),  # not whole: kept as written
        pd.Series(["a ", "a", " b", None, "a"], dtype=object),  # spaces: one unit
        pd.Series([3, "3", 3.0, "x"], dtype=object),  # one unit written three ways
        pd.Series(["u1", "u2", "u1"], dtype="string"),
        pd.Series(np.arange(6) % 3),
        pd.Series([], dtype=float),
    ],
)
def test_codes_read_per_distinct_value_equal_the_row_by_row_reading(values):
    codes, labels = id_codes(values)
    want_codes, want_labels = pd.factorize(id_text(values))
    assert [labels[c] if c >= 0 else None for c in codes] == [
        want_labels[c] if c >= 0 else None for c in want_codes
    ]
    assert sorted(map(str, labels)) == sorted(map(str, want_labels))
