"""Identifier codes read per distinct value (data/tidy.py `id_codes`) equal the row-by-row
reading (`id_text`, then a factorisation) on every kind of column an id comes in."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pathfinder_eval.data.tidy import (
    id_codes,
    id_text,
    identifiers,
    key_codes,
    repeated,
    repeated_text,
    text_array,
)
from pathfinder_eval.errors import DataError


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


@pytest.mark.parametrize("seed", range(5))
def test_repeated_key_codes_find_what_duplicated_finds(seed):
    """Rows repeating a multi-column key (data/tidy.py key_codes + repeated), missing values
    matching one another, are DataFrame.duplicated(keep=False)'s rows, also when the
    combinations outnumber four times the rows and the key is recoded on the way."""
    rng = np.random.default_rng(seed)
    n = 40
    frame = pd.DataFrame(
        {
            "unit": pd.array(rng.choice(["E1", "E2", "E3", None], n), dtype="str"),
            "period": rng.choice([2019.0, 2020.0, np.nan], n),
            "outcome": rng.choice(["cla_rate", "cpp_rate"], n),
            "wide": rng.integers(0, 30, n),  # 30 × 4 × 3 > 4 × 40: the key is recoded
        }
    )
    frame = pd.concat([frame, frame.iloc[:3]], ignore_index=True)  # some rows surely repeat
    kinds = set()
    for columns in (["unit", "period", "outcome"], ["wide", "unit", "period"]):
        found = repeated(key_codes(*(frame[c] for c in columns)))
        want = frame.duplicated(columns, keep=False).to_numpy()
        np.testing.assert_array_equal(found, want)
        kinds |= set(found.tolist())
    assert kinds == {True, False}  # rows that repeat and rows that do not: a real check


def test_text_helpers_give_the_string_column_pandas_would_make():
    """text_array, repeated_text and identifiers (codes into the distinct text) give the values
    and dtype pandas gives converting each row: the panel's columns are unchanged."""
    status = np.array(["", "suppressed", "", "", "not_available", "suppressed"], dtype=object)
    pd.testing.assert_series_equal(pd.Series(text_array(status)), pd.Series(status.tolist()))
    pd.testing.assert_series_equal(
        pd.Series(repeated_text("cla_rate", 3)), pd.Series(["cla_rate"] * 3)
    )
    raw = pd.DataFrame({"la": [838.0, 835.0, 838.0, 7.0]})
    got = identifiers(raw, "la", "f.csv", "unit", "fix")
    assert got.tolist() == ["838", "835", "838", "7"] and got.dtype == object
    with pytest.raises(DataError) as err:
        identifiers(pd.DataFrame({"la": ["E1", " ", "E2"]}), "la", "f.csv", "unit", "fix")
    assert err.value.row == 2


@pytest.mark.parametrize(
    "column",
    [
        pd.Series([np.nan, np.nan]),  # an empty column of a CSV
        pd.Series([None, None], dtype="string"),
        pd.Series([pd.NA, pd.NA], dtype="Int64"),
        pd.Series([None, None], dtype=object),
    ],
)
def test_a_unit_column_with_no_id_at_all_names_its_first_row(column):
    """Every id missing (no distinct value to read) is the row-numbered error, not a crash."""
    with pytest.raises(DataError) as err:
        identifiers(pd.DataFrame({"la": column}), "la", "f.csv", "unit", "fix")
    assert err.value.row == 1 and "unit identifier is missing" in str(err.value)
