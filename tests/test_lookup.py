"""data.lookup: pandas' get_indexer and isin, by Arrow's hash lookup for text; the same
answers as pandas on every kind of input (text, numbers, mixes, bytes, missing values)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pathfinder_eval.data.lookup import among, positions

ARROW = pd.StringDtype("pyarrow")

CASES = [
    # (values, labels): labels distinct, as get_indexer requires
    (pd.Series(["b", "z", "a", "b"], dtype=ARROW), pd.Index(["a", "b", "c"], dtype=ARROW)),
    (pd.Series(["b", "z"], dtype=ARROW), ["a", "b"]),  # Arrow text against Python text
    (np.array(["LA 05", "la05", "é"], dtype=object), ("é", "LA 05")),
    (np.array(["x", "y"]), pd.Index(["y"], dtype=object)),  # numpy's fixed-width text
    (pd.Series(["x", None], dtype=ARROW), pd.Index([None, "x"], dtype=ARROW)),
    (["a", None, "b"], ["b", None]),  # missing matches missing, as pandas
    ([1, 2, "a"], ["a", 2]),  # mixed: pandas' own rules
    (pd.Series([1.0, 2.0, np.nan]), [2.0, np.nan]),
    ([b"a", "a"], ["a"]),  # bytes are not text: b"a" is not "a"
    (pd.Series(["a", "c"], dtype="string[python]"), pd.Series(["c"], dtype=ARROW)),
    ([], ["a"]),
    (["a"], []),
]


@pytest.mark.parametrize(("values", "labels"), CASES)
def test_positions_and_membership_are_pandas(values, labels):
    listed = list(labels) if isinstance(labels, tuple) else labels
    expected = pd.Index(listed).get_indexer(values)
    got = positions(values, labels)
    assert got.tolist() == expected.tolist()
    assert among(values, labels).tolist() == pd.Index(values).isin(listed).tolist()


def test_a_national_lookup_finds_every_unit():
    """200,000 identifiers in another order, and ones absent: each found at its place."""
    ids = pd.Series(np.arange(200_000).astype(str), dtype=ARROW)
    order = np.random.default_rng(1).permutation(len(ids))
    asked = pd.concat([ids.iloc[order], pd.Series(["absent", "-1"], dtype=ARROW)])
    got = positions(asked, pd.Index(ids))
    assert got[:-2].tolist() == order.tolist() and got[-2:].tolist() == [-1, -1]
    assert among(asked, ids).sum() == len(ids)


def test_labels_named_twice_are_refused_as_pandas_refuses_them():
    with pytest.raises(pd.errors.InvalidIndexError):
        positions(["a", "b"], ["a", "a", "b"])
    assert among(["a", "c"], ["a", "a"]).tolist() == [True, False]  # (isin allows them)
