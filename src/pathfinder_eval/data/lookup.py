"""Where identifiers sit among others: pandas' `Index.get_indexer` and `isin`, by Arrow's
hash lookup when both sides are text.

A national panel names hundreds of thousands of units, and pandas (3.x, whose text columns
are Arrow strings) turns each side into Python strings before hashing them: 0.1 s per lookup
of 200,000 units, and `isin` between two Arrow string indexes near a second. Arrow's
`index_in` does the same lookup in 0.03 s. Values that are not all text (numbers, or a mix)
go to pandas, so the answers are pandas' in every case.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

Labels = pd.Series | pd.Index | np.ndarray | Sequence[object]


def positions(values: Labels, labels: Labels) -> np.ndarray:
    """Each value's position among the distinct `labels`, −1 where absent (missing values
    match a missing label): `pd.Index(labels).get_indexer(values)`."""
    text = _text(values), _text(labels)
    if text[0] is None or text[1] is None or pc.count_distinct(text[1]).as_py() < len(text[1]):
        # (labels named twice: pandas refuses them, as it should)
        return pd.Index(_listed(labels)).get_indexer(_listed(values))
    found = pc.index_in(text[0], value_set=text[1], skip_nulls=False)
    return pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.intp)


def among(values: Labels, labels: Labels) -> np.ndarray:
    """Whether each value is one of `labels` (missing matches missing): pandas' `isin`."""
    text = _text(values), _text(labels)
    if text[0] is None or text[1] is None:
        return np.asarray(pd.Index(_listed(values)).isin(_listed(labels)), dtype=bool)
    return pc.is_in(text[0], value_set=text[1], skip_nulls=False).to_numpy(zero_copy_only=False)


def _listed(values: Labels) -> Labels:
    """A pandas-readable form of `values` (a tuple or set becomes a list)."""
    return values if isinstance(values, pd.Series | pd.Index | np.ndarray | list) else list(values)


def _text(values: Labels) -> pa.Array | None:
    """`values` as one Arrow string array, or None when any is not text (or is missing)."""
    if isinstance(values, pd.Series | pd.Index):
        if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
            stored = pa.array(values.array)  # pandas' own Arrow data, not copied
            if isinstance(stored, pa.ChunkedArray):
                stored = stored.combine_chunks()
            return stored.cast(pa.string())
        values = values.to_numpy(dtype=object)
    try:
        stored = pa.array(values if isinstance(values, np.ndarray | list) else list(values))
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # numbers mixed with text, say
        return None
    if stored.null_count or not (pa.types.is_string(stored.type) or len(stored) == 0):
        return None  # numbers, bytes or missing values: pandas' rules for them
    return stored.cast(pa.string())
