"""Individual-level trial records (one row per person: cluster, period, outcomes) → cell
summaries in the long form: per cluster × period the mean (`value`), the number of people
(`denominator`), the sum (`numerator`, the event count for a 0/1 outcome) and the within-cell
sum of squared deviations (`ssw`). A linear mixed model with cluster-period covariates depends
on the records only through these (estimators/sw_lmm.py), so nothing else is kept.

Records are summarised in parts (a frame as one part, a file's row groups or chunks, a Dask
DataFrame's partitions): each part gives partial sums per cell (`Partial`) and merging them in
file order gives the summaries, so a file never has to fit in memory. Whole-number outcomes
(0/1 events, counts) give the same summaries bit for bit however the records are split (while
their sums of squares stay below 2^53); other values are merged with the pairwise update of
Chan, Golub and LeVeque and agree to rounding, and bit for bit where the parts are the same
(a Parquet file's row groups, read here or on a Dask cluster).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from pathfinder_eval.data.ees import (
    MISSING,
    SYMBOLS,
    check_header,
    extra_field,
    record_widths,
    too_many_fields,
)
from pathfinder_eval.data.plausibility import STATUSES, Located, Plausible, screen
from pathfinder_eval.data.source import CELL_COLUMNS, LONG_COLUMNS, Exclusion, OutcomeData
from pathfinder_eval.data.tidy import (
    MAX_ORDINAL,
    file_type,
    identifiers,
    numeric_cells,
    period_ordinals,
    unit_ids,
    unreadable,
)
from pathfinder_eval.errors import DataError, cell

# Rows per part when a file is read in parts: about 25 MB per numeric column.
PART_ROWS = 1 << 22
# Sums of whole numbers below this are exact in float64, whatever the order of addition.
EXACT = 2.0**53
# How long to wait for a Dask scheduler before saying it cannot be reached.
CONNECT_TIMEOUT = "20s"
RULE = Plausible.for_scale("level", share=False)
PERIOD_EXPECTED = "a period label of the design's time axis"
PERIOD_EXAMPLE = "1, 2, … for 'period'"
# What to do about a CSV row with a field too many.
EXTRA_FIELD_FIX = "remove the extra field, or quote a value that holds a comma"


@dataclass(frozen=True)
class RecordColumns:
    """Where the records' fields are: unit and period columns, outcome id → column, the file
    named in errors, and how a period label becomes its ordinal (None: not a period)."""

    unit: str
    period: str
    outcomes: Mapping[str, str]
    file: str
    parse_period: Callable[[object], int | None] = int
    period_example: str = PERIOD_EXAMPLE
    """Period labels as the error for an unreadable one shows them (the axis's)."""

    @property
    def names(self) -> list[str]:
        """The columns read, each once."""
        return list(dict.fromkeys([self.unit, self.period, *self.outcomes.values()]))

    def require(self, present: Iterable[str], extra: Iterable[str] = ()) -> None:
        """A DataError naming the first needed column the data lack."""
        present = list(map(str, present))
        for c in [*self.names, *extra]:
            if c not in present:
                raise DataError(
                    f"required column {c!r} is missing",
                    file=self.file,
                    where=f"column {c}",
                    fix=f"add it or map it in data.columns; columns present: {', '.join(present)}",
                )


@dataclass
class Excluded:
    """Records of one outcome left out for one reason: how many, whose, and the first one's
    row within the part (from 0)."""

    count: int
    units: set[str]
    row: int


@dataclass
class Partial:
    """One part's sums per outcome: a frame of unit, period, n, s1 (Σy), s2 (Σy²), m2
    (Σ(y − part mean)²) and below (records below 0) per cell; whether every kept value was a
    whole number and the largest magnitude; the exclusions; or the error that stopped the part
    (its row within the part)."""

    rows: int
    units: set[str] = field(default_factory=set)
    cells: dict[str, pd.DataFrame] = field(default_factory=dict)
    whole: dict[str, bool] = field(default_factory=dict)
    peak: dict[str, float] = field(default_factory=dict)
    excluded: dict[tuple[str, str], Excluded] = field(default_factory=dict)
    error: DataError | None = None


def summarise_part(part: pd.DataFrame | pa.RecordBatch | pa.Table, cols: RecordColumns) -> Partial:
    """The partial sums of one part (rows numbered from 1 within it); a bad unit or period or
    non-numeric outcome becomes the Partial's error rather than an exception, so parts summarised
    elsewhere (a Dask worker) report the file row once their offsets are known."""
    if isinstance(part, pa.Table):
        part = part.combine_chunks().to_batches()[0] if part.num_rows else part.to_pandas()
    try:
        return _summarise(part, cols)
    except DataError as exc:
        return Partial(rows=len(part), error=exc)


def _summarise(part: pd.DataFrame | pa.RecordBatch, cols: RecordColumns) -> Partial:
    """The partial sums; of several bad cells the first row's error is raised (so any split
    of the records reports the same one)."""
    out, errors = Partial(rows=len(part)), []
    unit_code, unit_text = _codes(part, cols.unit)
    used = _used(unit_code, len(unit_text))
    text = np.array([t if used[i] else "" for i, t in enumerate(unit_labels(unit_text))], object)
    bad = (unit_code < 0) | ((text == "")[unit_code] & (unit_code >= 0))
    if bad.any():
        errors.append(_error_at(part, cols.unit, int(np.flatnonzero(bad)[0]), unit_ids, cols))
    period_code, labels = _codes(part, cols.period)
    used_period = _used(period_code, len(labels))
    ordinal = np.array(
        [_ordinal(v, cols.parse_period) if used_period[i] else 0 for i, v in enumerate(labels)],
        object,
    )
    bad = period_code < 0
    bad[~bad] = np.array([o is None for o in ordinal], dtype=bool)[period_code[~bad]]
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        errors.append(
            _error_at(part, cols.period, row, partial(_period_error, cols.period_example), cols)
        )
    numbers = {}
    for outcome, column in cols.outcomes.items():
        try:
            numbers[outcome] = _numbers(part, column, cols.file)
        except DataError as exc:
            errors.append(exc)
    if errors:
        raise min(errors, key=lambda e: e.row or 0)

    names = sorted(set(text[used]))
    local = {u: i for i, u in enumerate(names)}
    unit = np.array([local.get(t, -1) for t in text], dtype=np.int64)[unit_code]
    out.units = set(names)
    periods = sorted({int(o) for o, u in zip(ordinal, used_period, strict=True) if u})
    where = {o: i for i, o in enumerate(periods)}
    period = np.array([where.get(o, 0) for o in ordinal], dtype=np.int64)[period_code]
    key = unit * len(periods) + period
    size = len(names) * len(periods)
    grid_unit = np.repeat(np.array(names, dtype=object), len(periods))
    grid_period = np.tile(np.array(periods, dtype=np.int64), len(names))

    for outcome in cols.outcomes:
        values, status = numbers[outcome]
        with np.errstate(invalid="ignore"):
            usable = np.isfinite(values) & (values >= RULE.low) & (values <= RULE.high)
        if status is not None:
            usable &= status == ""
        left = np.flatnonzero(~usable)
        if len(left):
            before = (
                status[left]
                if status is not None
                else np.where(np.isnan(values[left]), MISSING, "").astype(object)
            )
            found, _ = screen(Located(values[left], np.full(len(left), "")), RULE, before)
            for code in sorted(set(found)):
                rows = left[found == code]
                out.excluded[(outcome, str(code))] = Excluded(
                    len(rows),
                    {names[u] for u in np.unique(unit[rows])},
                    int(rows[0]),
                )
        k, y = key[usable], values[usable]
        n = np.bincount(k, minlength=size).astype(float)
        s1 = np.bincount(k, y, minlength=size)
        s2 = np.bincount(k, y * y, minlength=size)
        mean = np.divide(s1, n, out=np.zeros(size), where=n > 0)
        m2 = np.bincount(k, (y - mean[k]) ** 2, minlength=size)
        below = np.bincount(k[y < 0], minlength=size)
        has = n > 0
        out.cells[outcome] = pd.DataFrame(
            {
                "unit": grid_unit[has],
                "period": grid_period[has],
                "n": n[has],
                "s1": s1[has],
                "s2": s2[has],
                "m2": m2[has],
                "below": below[has],
            }
        )
        out.whole[outcome] = bool(np.all(y == np.round(y)))
        out.peak[outcome] = float(np.abs(y).max()) if len(y) else 0.0
    return out


def _codes(part: pd.DataFrame | pa.RecordBatch, column: str) -> tuple[np.ndarray, list[Any]]:
    """Each row's code (−1 where missing) into the column's distinct values."""
    if isinstance(part, pa.RecordBatch):
        array = part.column(column)
        if not pa.types.is_dictionary(array.type):
            array = array.dictionary_encode()
        codes = array.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        return codes, array.dictionary.to_pylist()
    codes, uniques = pd.factorize(part[column], use_na_sentinel=True)
    return codes.astype(np.int64), list(uniques)


def unit_labels(distinct: list[Any]) -> list[str]:
    """Unit ids as text, value by value: a whole number stored as a float (Parquet, Stata, or a
    CSV part that also holds a missing id) reads as the integer it is ("3", not "3.0"), and a
    float NaN as missing (""). Decided per value, never per column, so a cluster reads the same
    in every part, route and chunking, for the cells and for the records a model keeps."""
    out = []
    for v in distinct:
        if isinstance(v, float | np.floating):
            if np.isnan(v):
                out.append("")
                continue
            if np.isfinite(v) and v == np.floor(v):
                v = int(v)
        out.append(str(v).strip())
    return out


def _used(codes: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(codes[codes >= 0], minlength=n) > 0


def _ordinal(label: object, parse: Callable[[object], int | None]) -> int | None:
    if pd.isna(label):  # type: ignore[arg-type]
        return None
    try:
        o = parse(label)
    except (TypeError, ValueError):  # a parser such as int() raises instead of saying None
        return None
    return None if o is None or abs(o) >= MAX_ORDINAL else int(o)


def _period_error(
    example: str, frame: pd.DataFrame, column: str, file: str, first_row: int
) -> None:
    period_ordinals(frame, column, lambda v: None, file, PERIOD_EXPECTED, example, first_row)


def _error_at(
    part: pd.DataFrame | pa.RecordBatch, column: str, row: int, check: Callable, cols: RecordColumns
) -> DataError:
    """The error `check` gives for the one bad row (its message names the row)."""
    one = part.slice(row, 1).to_pandas() if isinstance(part, pa.RecordBatch) else part.iloc[[row]]
    try:
        check(one[[column]].reset_index(drop=True), column, cols.file, first_row=row + 1)
    except DataError as exc:
        return exc
    raise AssertionError(f"{column} row {row + 1} was found bad but passed its check")


def _numbers(
    part: pd.DataFrame | pa.RecordBatch, column: str, file: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """An outcome column as floats (NaN where missing) and, for text columns, each cell's
    status ("" for a number, else the DfE symbol or `missing`)."""
    if isinstance(part, pa.RecordBatch):
        array = part.column(column)
        if pa.types.is_integer(array.type) or pa.types.is_floating(array.type):
            # (unsafe: an integer beyond 2^53 rounds, as numpy casts it, and the plausibility
            # screen then leaves it out, rather than the cast refusing the whole part)
            as_float = array.cast(pa.float64(), safe=False).fill_null(np.nan)
            return as_float.to_numpy(zero_copy_only=False), None
        series = array.to_pandas()
    else:
        series = part[column]
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return series.to_numpy(dtype=float, na_value=np.nan), None
    values, status = numeric_cells(pd.DataFrame({column: series}), column, file)
    return values.to_numpy(dtype=float), status


def merge_parts(
    parts: Iterable[Partial], cols: RecordColumns, source: str
) -> tuple[pd.DataFrame, pd.DataFrame, tuple[Exclusion, ...]]:
    """Summaries (LONG_COLUMNS + CELL_COLUMNS), units and exclusions from the parts in file
    order; the first part's error is raised with its row in the whole file."""
    offset, units = 0, set()
    cells: dict[str, list[pd.DataFrame]] = {o: [] for o in cols.outcomes}
    whole = dict.fromkeys(cols.outcomes, True)
    peak = dict.fromkeys(cols.outcomes, 0.0)
    excluded: dict[tuple[str, str], tuple[Excluded, int]] = {}
    for p in parts:
        if p.error is not None:
            e = p.error
            row = None if e.row is None else e.row + offset
            raise DataError(e.what, file=e.file, where=e.where, row=row, fix=e.fix)
        units |= p.units
        for o in cols.outcomes:
            cells[o].append(p.cells[o])
            whole[o] &= p.whole[o]
            peak[o] = max(peak[o], p.peak[o])
        for k, ex in p.excluded.items():
            if k in excluded:
                first, at = excluded[k]
                excluded[k] = (
                    Excluded(first.count + ex.count, first.units | ex.units, first.row),
                    at,
                )
            else:
                excluded[k] = (replace(ex, units=set(ex.units)), offset)
        offset += p.rows
    if offset == 0:
        raise DataError(
            "has no data rows", file=Path(cols.file).name, fix="export the data again with its rows"
        )
    frames = [_cell_frame(cells[o], o, source, whole[o], peak[o]) for o in cols.outcomes]
    meta = pd.DataFrame({"unit": sorted(units)})
    meta["name"], meta["region"] = meta["unit"], ""
    ledger = []
    for outcome, column in cols.outcomes.items():
        for code in sorted(c for o, c in excluded if o == outcome):
            ex, at = excluded[(outcome, code)]
            where = f"{Path(cols.file).name} row {at + ex.row + 1}, column {column}"
            ledger.append(
                Exclusion(
                    _reason(code, where),
                    ex.count,
                    tuple(sorted(ex.units)),
                    outcome,
                    "data",
                )
            )
    return pd.concat(frames, ignore_index=True), meta, tuple(ledger)


def _cell_frame(
    parts: list[pd.DataFrame], outcome: str, source: str, whole: bool, peak: float
) -> pd.DataFrame:
    """One outcome's summaries from its parts' sums: exact for whole numbers whose sums of
    squares stay below 2^53; otherwise Σ m2 plus the between-part term Σ n_i (m_i − m)²."""
    sums = pd.concat(parts, ignore_index=True)
    total = sums.groupby(["unit", "period"], sort=True)[["n", "s1", "s2", "m2", "below"]].sum()
    n, s1 = total["n"].to_numpy(), total["s1"].to_numpy()
    mean = s1 / n
    if whole and peak * peak * n.sum() < EXACT:
        ssw = np.array(
            [
                (int(a) * int(c) - int(b) * int(b)) / int(a)
                for a, b, c in zip(n, s1, total["s2"].to_numpy(), strict=True)
            ]
        )
    else:
        cell_mean = pd.Series(mean, index=total.index)
        at = pd.MultiIndex.from_frame(sums[["unit", "period"]])
        between = sums["n"] * (sums["s1"] / sums["n"] - cell_mean.reindex(at).to_numpy()) ** 2
        ssw = (
            total["m2"].to_numpy()
            + between.groupby([sums["unit"], sums["period"]], sort=True).sum().to_numpy()
        )
    index = total.index.to_frame(index=False)
    return pd.DataFrame(
        {
            "unit": index["unit"].astype(str),
            "period": index["period"].astype("int64"),
            "outcome": outcome,
            "numerator": s1,
            "denominator": n,
            "value": mean,
            "status": "",
            "source": source,
            "ssw": ssw,
            "negative": total["below"].to_numpy(float),
        }
    )[list(LONG_COLUMNS) + list(CELL_COLUMNS)]


def records_outcomes(
    raw: pd.DataFrame,
    unit: str,
    period: str,
    outcomes: dict[str, str],
    file: str,
    parse_period: Callable[[object], int | None] = int,
    covariates: tuple[str, ...] = (),
    individual: str | None = None,
    eligible: str | None = None,
    period_example: str = PERIOD_EXAMPLE,
) -> OutcomeData:
    """Summarise records held in memory into OutcomeData. outcomes: outcome id → column;
    parse_period turns a period label into its ordinal (None: not a period). Records with a
    missing outcome are left out and counted; non-numeric outcomes and unreadable periods are
    errors naming the row. With covariates or an individual column the records themselves are
    kept as well (OutcomeData.records), with eligible when named; covariates must be numeric
    and complete, eligible 0 or 1."""
    cols = RecordColumns(unit, period, outcomes, file, parse_period, period_example)
    cols.require(raw.columns, [*covariates, *(c for c in (individual, eligible) if c)])
    frame, meta, ledger = merge_parts([summarise_part(raw, cols)], cols, Path(file).name)
    kept_records = None
    if covariates or individual:
        kept_records = _kept_records(raw, cols, covariates, individual, eligible)
    return OutcomeData(frame, meta, "records", exclusions=ledger, records=kept_records)


def _kept_records(
    raw: pd.DataFrame,
    cols: RecordColumns,
    covariates: tuple[str, ...],
    individual: str | None,
    eligible: str | None,
) -> pd.DataFrame:
    """The records themselves, for models that need more than the cell summaries: unit,
    period, each outcome (NaN where left out), the covariates, the individual and eligible."""
    unit_ids(raw, cols.unit, cols.file)  # a missing id is an error naming its row
    codes, distinct = pd.factorize(raw[cols.unit])
    units = pd.Series(np.array(unit_labels(list(distinct)), object)[codes], index=raw.index)
    ordinals = period_ordinals(
        raw, cols.period, cols.parse_period, cols.file, PERIOD_EXPECTED, cols.period_example
    )
    kept = {}
    for outcome, column in cols.outcomes.items():
        values, status = numeric_cells(raw, column, cols.file)
        status, _ = screen(Located(values.to_numpy(), np.full(len(raw), "")), RULE, status)
        kept[outcome] = values.where(status == "")
    records = pd.DataFrame({"unit": units, "period": ordinals, **kept})
    for c in covariates:
        records[c] = _numeric_column(raw[c], c, cols.file)
    if individual:
        records["individual"] = identifiers(
            raw,
            individual,
            cols.file,
            "individual",
            "give every record its person's id (the cohort's id column), or remove the record",
        )
    if eligible:
        records["eligible"] = _eligibility(raw[eligible], eligible, cols.file)
    return records


def _eligibility(values: pd.Series, column: str, file: str) -> pd.Series:
    """Eligibility as 0/1 integers: anything else (missing, text, 2) names its row."""
    codes = pd.to_numeric(values, errors="coerce")
    _refuse_first(
        ~codes.isin([0, 1]).to_numpy(),
        values,
        "eligible is {}, not 0 or 1",
        column,
        file,
        "code 1 for the people the reform targets and 0 for the others, in every record",
    )
    return codes.astype("int8")


def _refuse_first(
    bad: np.ndarray, values: pd.Series, what: str, column: str, file: str, fix: str
) -> None:
    """A DataError on the first bad row, `what` formatted with its value."""
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            what.format(cell(values.iloc[row])),
            file=file,
            where=f"column {column}",
            row=row + 1,
            fix=fix,
        )


def file_parts(path: Path, cols: RecordColumns, rows: int = PART_ROWS) -> Iterator[Any]:
    """A records file (.parquet, .csv, .dta) in parts of about `rows` records, reading only
    the columns needed (a CSV's every column, in smaller parts: `_csv_parts`), so memory stays
    bounded whatever the file's length. A Parquet file's
    parts follow its row groups (those above `rows` records in parts of `rows`), as a Dask
    cluster's partitions do, so both routes sum the same records in the same order."""
    suffix = file_type(path)
    try:
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            schema = pq.ParquetFile(path).schema_arrow
            _require_once(schema.names, cols)
            text = [
                c
                for c in cols.names
                if pa.types.is_string(schema.field(c).type)
                or pa.types.is_large_string(schema.field(c).type)
            ]
            reader = pq.ParquetFile(path, read_dictionary=text)
            for group in range(reader.num_row_groups):
                yield from reader.iter_batches(
                    batch_size=rows, row_groups=[group], columns=cols.names
                )
        elif suffix == ".csv":
            yield from _csv_parts(path, cols, rows)
        else:
            import pyreadstat

            _, meta = pyreadstat.read_dta(str(path), metadataonly=True)
            cols.require(meta.column_names)
            for chunk, _ in pyreadstat.read_file_in_chunks(
                pyreadstat.read_dta, str(path), chunksize=rows, usecols=cols.names
            ):
                yield chunk
    except DataError:
        raise
    except Exception as exc:  # each backend raises its own types: report them all the same way
        raise unreadable(path, suffix, exc) from exc


def _csv_parts(path: Path, cols: RecordColumns, rows: int) -> Iterator[pd.DataFrame]:
    """A CSV file in parts of about `rows` records (pandas' reader, whose quoting is the one
    pandas users know: a quote left open is an error), the unit column as written ('01' stays
    '01', as on a Dask cluster and the covariate route). Every column is read, so that a row
    with a field too many is an error naming its line (with only the needed columns pandas
    drops the extra field unseen); parts shrink as the file widens, keeping memory bounded. A
    row cut short reads as missing values, which are counted."""
    header = _csv_header(path, cols)
    size = max(rows * len(cols.names) // len(header), 1)
    chunks = pd.read_csv(
        path, encoding="utf-8-sig", index_col=False, dtype={cols.unit: str}, chunksize=size
    )
    try:
        for chunk in chunks:
            yield chunk[cols.names]
    except pd.errors.ParserError as exc:
        raise extra_field(exc, path, EXTRA_FIELD_FIX) or exc from None


def _csv_header(path: Path, cols: RecordColumns) -> pd.Index:
    """A records CSV's header, checked (ees.check_header), holding the needed columns, and its
    first row no wider (pandas would drop that row's extra field with only a warning)."""
    check_header(path)
    header = pd.read_csv(path, nrows=0, encoding="utf-8-sig").columns
    cols.require(header)
    first = next(record_widths(path), None)
    if first is not None and first[1] > len(header):
        raise too_many_fields(path, *first, len(header), EXTRA_FIELD_FIX)
    return header


def _require_once(names: list[str], cols: RecordColumns) -> None:
    """The needed columns present, each named once (a column given twice cannot be read)."""
    cols.require(names)
    for c in cols.names:
        if names.count(c) > 1:
            raise DataError(
                f"the file names column {c!r} {names.count(c)} times",
                file=Path(cols.file).name,
                where=f"column {c}",
                fix="give each column its own name",
            )


def records_from_file(path: Path, cols: RecordColumns, rows: int = PART_ROWS) -> OutcomeData:
    """Summaries of a records file read in parts of about `rows` records (never whole)."""
    parts = (summarise_part(p, cols) for p in file_parts(path, cols, rows))
    frame, meta, ledger = merge_parts(parts, cols, path.name)
    return OutcomeData(frame, meta, "records", exclusions=ledger)


def records_from_dask(frame: Any, cols: RecordColumns, source: str) -> OutcomeData:
    """Summaries of a Dask DataFrame of records, one part per partition, computed where the
    active Dask scheduler runs them (a distributed Client's cluster, else local threads)."""
    import dask

    cols.require(frame.columns)
    tasks = [dask.delayed(summarise_part)(p, cols) for p in frame[cols.names].to_delayed()]
    parts = dask.compute(*tasks)
    frame, meta, ledger = merge_parts(parts, cols, source)
    return OutcomeData(frame, meta, "records", exclusions=ledger)


def _numeric_column(values: pd.Series, column: str, file: str) -> pd.Series:
    """A covariate as floats; a missing or non-numeric entry is an error naming its row."""
    out = pd.to_numeric(values, errors="coerce")
    _refuse_first(
        (out.isna() | np.isinf(out)).to_numpy(),
        values,
        "covariate value {} is missing or not a number",
        column,
        file,
        "covariates must be complete numbers (code categories as 0/1 columns)",
    )
    return out.astype(float)


def _reason(status: str, first: str) -> str:
    """The ledger's reason for individual records left out with `status`, `first` naming
    where the first is (file, row, column), not its value: a report must not show one
    child's record."""
    if status == MISSING:
        return "individual record with a missing outcome"
    if status in SYMBOLS:
        return f"individual record with an outcome withheld: {SYMBOLS[status]} ({status})"
    return f"individual record with an {STATUSES[status]} (first: {first})"


# Peak memory of the individual-covariate path per million records (reading the file whole,
# the kept records and the model's design): 1,160 MB measured with one covariate by
# `python benchmarks/records_scale.py --memory` (2 and 4 million records), rounded up.
MB_PER_MILLION = 1200.0
# Share of the memory available now that the path may use.
MEMORY_SHARE = 0.8


def count_records(path: Path) -> int:
    """The number of records in a file, from its metadata (Parquet, Stata) or, for CSV, its
    lines less the header (a quoted field holding line breaks counts once per line, and
    blank lines count: an upper bound, as a memory check wants)."""
    suffix = file_type(path)
    try:
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
        if suffix == ".dta":
            import pyreadstat

            return int(pyreadstat.read_dta(str(path), metadataonly=True)[1].number_rows)
        lines, last = 0, b"\n"
        with path.open("rb") as f:  # counted, not estimated from the first lines: a file's
            while block := f.read(1 << 24):  # early rows can be far longer or shorter
                lines += block.count(b"\n")
                last = block[-1:]
        return max(lines + (last != b"\n") - 1, 0)  # less the header; a last line unended
    except Exception as exc:  # each backend raises its own types: report them all the same way
        raise unreadable(path, suffix, exc) from exc


def check_records_fit(path: Path, available: float | None = None) -> None:
    """Refuse, before reading, a records file the individual-level path could not hold:
    it needs about MB_PER_MILLION MB per million records."""
    if available is None:
        import psutil

        available = float(psutil.virtual_memory().available)
    rows = count_records(path)
    need = rows / 1e6 * MB_PER_MILLION * 2**20
    if need > MEMORY_SHARE * available:
        raise DataError(
            f"{rows:,} records need about {_size(need)} in memory for a model with "
            f"individual covariates or cohorts ({MB_PER_MILLION:,.0f} MB per million records); "
            f"{_size(available)} is available",
            file=path.name,
            where="data.columns",
            fix="drop data.columns.covariates and individual to fit the cluster-period "
            "summaries (read in parts, any size), or run on a machine with more memory",
        )


def records_on_cluster(path: Path, cols: RecordColumns, scheduler: str) -> OutcomeData:
    """Summaries of a records file (.parquet or .csv) computed on the Dask cluster at
    `scheduler`, one task per partition; the workers must be able to read `path`."""
    suffix = file_type(path)
    if suffix == ".dta":
        raise DataError(
            "a Dask cluster reads records from .parquet or .csv files",
            file=path.name,
            where="--scheduler",
            fix="save the records as Parquet, or run without --scheduler",
        )
    import dask.dataframe as dd
    from distributed import Client

    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT)
    except (OSError, ValueError, TypeError) as exc:  # unreachable, or not an address at all
        raise DataError(
            f"cannot reach the Dask scheduler at {scheduler!r} ({exc})",
            where="--scheduler",
            fix="start one (`dask scheduler`, then `dask worker ADDRESS`) or check the address "
            "(tcp://HOST:PORT)",
        ) from None
    with client:
        try:
            client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
        except TimeoutError:  # its tasks would wait for ever
            raise DataError(
                f"the Dask scheduler at {scheduler!r} has no workers",
                where="--scheduler",
                fix="start a worker for it (`dask worker ADDRESS`), or run without --scheduler",
            ) from None
        try:
            if suffix == ".csv":
                _csv_header(path, cols)
                # every column (a field too many is then an error), as text
                frame = dd.read_csv(path, dtype=str, encoding="utf-8-sig")
            else:
                import pyarrow.parquet as pq

                _require_once(pq.ParquetFile(path).schema_arrow.names, cols)
                # a partition per row group: dask would otherwise size partitions by the
                # compressed bytes, and 0/1 outcomes compress 50-fold
                frame = dd.read_parquet(path, columns=cols.names, split_row_groups=True)
        except DataError:
            raise
        except Exception as exc:  # each backend raises its own types
            raise unreadable(path, suffix, exc) from exc
        try:
            return records_from_dask(frame, cols, path.name)
        except pd.errors.ParserError as exc:
            if "fields in line" not in str(exc):
                raise unreadable(path, suffix, exc) from exc
            raise DataError(
                "a row has more fields than the header (read on a cluster, in blocks, its line "
                "is not known)",
                file=path.name,
                fix="run without --scheduler to find its line, then remove the extra field or "
                "quote a value that holds a comma",
            ) from None


def _size(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:,.1f} GB" if n_bytes >= 2**30 else f"{n_bytes / 2**20:,.0f} MB"
