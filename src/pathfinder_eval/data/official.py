"""Load a folder of DfE EES files into the long outcome frame, and check the recomputation.

Each indicator's value is recomputed from its numerator and denominator counts (catalogue);
DfE's published figure travels alongside so `check_recomputation` can show the two agree.
"""

from __future__ import annotations

import csv
import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from pathfinder_eval.data.catalogue import Indicator, Measure, load_catalogue
from pathfinder_eval.data.ees import EESTable, ees_value, read_ees_csv
from pathfinder_eval.data.families import FAMILIES, detect_family
from pathfinder_eval.data.harmonise import (
    NOT_EXISTING,
    LedgerEntry,
    Reorganisation,
    applicable_reorganisations,
    harmonise,
)
from pathfinder_eval.data.la_lookup import la_table
from pathfinder_eval.data.plausibility import Located, Plausible, screen
from pathfinder_eval.data.source import OFFICIAL_COLUMNS
from pathfinder_eval.errors import DataError

LEVELS = {"Local authority": "old_la_code", "National": "country_code", "Regional": "region_code"}
_DTYPES = {
    "unit": "str",
    "period": "int64",
    "outcome": "str",
    "numerator": "float64",
    "denominator": "float64",
    "value": "float64",
    "published": "float64",
    "status": "str",
    "source": "str",
    "detail": "str",
}
_EPS = float(np.sqrt(np.finfo(float).eps))
# A filter value not read is taken for a typo of one that is when it is this close (difflib
# ratio: one slip in a 20-character value scores 0.95) and fills at most RARE as many rows.
NEAR_MISS = 0.9
RARE = 0.05


@dataclass(frozen=True)
class OfficialData:
    """Official outcome data in long form.

    frame: one row per unit x period x outcome, columns OFFICIAL_COLUMNS (status "" = usable).
    ledger: rows excluded, by reason. files: (file name, sha256) of every file read.
    reorganisations: LA reorganisations touching the units in the data, with the rule applied.
    """

    frame: pd.DataFrame
    ledger: tuple[LedgerEntry, ...]
    files: tuple[tuple[str, str], ...]
    reorganisations: tuple[Reorganisation, ...]


def load_official(
    data_dir: Path,
    indicator_ids: list[str],
    *,
    aggregate: bool = False,
    rules: Mapping[str, Plausible] | None = None,
) -> OfficialData:
    """Local authority rows of the requested indicators, harmonised (see harmonise.py).

    `aggregate=True` sums split LAs back into their former LA for continuous series. `rules`
    override an indicator's plausible values (default: the catalogue's, `Indicator.rule`).
    """
    frame, ledger, files = _load(Path(data_dir), indicator_ids, "Local authority", rules)
    flags = tuple(applicable_reorganisations(frame))
    frame, harmonised = harmonise(frame, aggregate=aggregate)
    return OfficialData(_tidy(frame), (*ledger, *harmonised), files, flags)


def load_official_units(data_dir: Path, indicator_ids: list[str], units: list[str]) -> OfficialData:
    """The rows of the LAs `units` (three-digit codes) as DfE published them, each LA in its
    own years: no reorganisation rule is applied, so an abolished LA keeps its series
    (Cumbria, 909, to 2023) beside the LAs that replaced it. Rows with status z or x for a
    year outside the LA's years in la_lookup.csv (the CLA files carry them, e.g. 909 in 2024)
    are excluded and counted in the ledger. For showing chosen LAs (`indicators --data`);
    analyses use `load_official`, whose harmonisation keeps series comparable."""
    frame, ledger, files = _load(Path(data_dir), indicator_ids, "Local authority")
    frame = frame.loc[frame["unit"].isin(units)]
    table = la_table().drop_duplicates("la_code", keep="last").set_index("la_code")
    first = frame["unit"].map(table["first_year"])
    last = frame["unit"].map(table["last_year"])
    outside = (frame["period"] < first) | (frame["period"] > last)
    defunct = (outside & frame["status"].isin(NOT_EXISTING)).to_numpy()
    if defunct.any():
        ledger.append(
            LedgerEntry(
                "z/x row for an LA that did not exist in that year",
                int(defunct.sum()),
                tuple(sorted(set(frame.loc[defunct, "unit"]))),
            )
        )
    frame = frame.loc[~defunct]
    flags = tuple(applicable_reorganisations(frame))
    return OfficialData(_tidy(frame), tuple(ledger), files, flags)


def load_official_aggregates(
    data_dir: Path, indicator_ids: list[str], level: str = "National"
) -> OfficialData:
    """National or Regional rows of the requested indicators; `unit` is the ONS area code."""
    if level not in ("National", "Regional"):
        raise DataError(
            f"unknown level {level!r}", where="level", fix="use 'National' or 'Regional'"
        )
    frame, ledger, files = _load(Path(data_dir), indicator_ids, level)
    return OfficialData(_tidy(frame), ledger, files, ())


def find_family_file(data_dir: Path, family: str) -> Path | None:
    """The CSV in `data_dir` of `family`, by file name or else by its header; None if absent.

    DataError when two files qualify (e.g. two releases): mixing releases must be a choice.
    """
    spec = FAMILIES[family]
    csvs = sorted(data_dir.glob("*.csv"))
    hits = [p for p in csvs if spec.matches_name(p.name)]
    if not hits:
        hits = [p for p in csvs if detect_family(p.name, _header(p)) == family]
    if len(hits) > 1:
        raise DataError(
            f"{len(hits)} files of family {family}: {', '.join(p.name for p in hits)}",
            file=str(data_dir),
            fix="keep one release of each file in the folder",
        )
    return hits[0] if hits else None


def _require_family_file(data_dir: Path, family: str) -> Path:
    """`find_family_file`, or a DataError saying which file to download from where."""
    path = find_family_file(data_dir, family)
    if path is None:
        spec = FAMILIES[family]
        raise DataError(
            f"no {family} file (expected a name like '{spec.example_file}', "
            f"pattern /{spec.file_pattern}/)",
            file=str(data_dir),
            fix=f"download '{spec.example_file}' from the {spec.publication} publication "
            "(explore-education-statistics.service.gov.uk, 'Download all data') into this folder",
        )
    return path


def check_recomputation(frame: pd.DataFrame) -> pd.DataFrame:
    """Compare each recomputed value, rounded as DfE publishes it, with the published figure.

    Rows with both a value and a published figure. `match`: equal at published precision
    (round half up). `within_input_rounding`: the published figure is reachable from the
    inputs given their own published rounding (catalogue `rounded_to`; CSWW FTEs are shown to
    0.1 but DfE computes rates from unrounded FTEs). The rule is `compare_with_published`'s.
    """
    columns = [
        "outcome",
        "unit",
        "period",
        "value",
        "published",
        "recomputed",
        "match",
        "within_input_rounding",
    ]
    frame = frame.reset_index(drop=True)  # a copy with unique labels; the caller's is untouched
    compared = compare_with_published(frame)
    if compared.empty:
        return pd.DataFrame(columns=columns)
    rows = frame.loc[compared.index, ["outcome", "unit", "period", "value", "published"]]
    return pd.concat([rows, compared], axis=1)[columns].reset_index(drop=True)


def compare_with_published(frame: pd.DataFrame) -> pd.DataFrame:
    """The one agreement rule between a recomputed value and DfE's published figure.

    For the rows of `frame` (columns outcome, value, published, numerator, denominator)
    having both a value and a published figure, indexed as in `frame`: `recomputed` (value
    rounded half up to DfE's decimals), `match` (equal to `published` at that precision) and
    `within_input_rounding` (the published figure lies within what the numerator and
    denominator allow given their own published rounding, catalogue `rounded_to`, widened by
    the rounding of published parts that are added up). DataError for an outcome not in the
    catalogue.
    """
    catalogue = load_catalogue()
    unknown = sorted(set(frame["outcome"]) - set(catalogue))
    if unknown:
        raise DataError(
            f"outcome(s) {unknown} not in the indicator catalogue",
            where="outcome",
            fix="check only catalogue indicators",
        )
    rows = frame.loc[frame["value"].notna() & frame["published"].notna()]
    parts = []
    for outcome, group in rows.groupby("outcome", sort=True):
        ind = catalogue[outcome]
        n = group["numerator"].to_numpy(dtype=float)
        d = group["denominator"].to_numpy(dtype=float)
        hn, hd, hp = (_half_width(m) for m in (ind.numerator, ind.denominator, ind.published))
        with np.errstate(divide="ignore", invalid="ignore"):
            lo = (n - hn) / (d + hd) * ind.multiplier
            hi = (n + hn) / (d - hd) * ind.multiplier
        published = group["published"].to_numpy()
        tol = 10.0**-ind.decimals / 100
        recomputed = round_half_up(group["value"].to_numpy(), ind.decimals)
        parts.append(
            pd.DataFrame(
                {
                    "recomputed": recomputed,
                    "match": np.abs(recomputed - published) <= tol,
                    "within_input_rounding": (
                        round_half_up(lo, ind.decimals) - tol - hp <= published
                    )
                    & (published <= round_half_up(hi, ind.decimals) + tol + hp),
                },
                index=group.index,
            )
        )
    if not parts:
        return pd.DataFrame(
            {
                "recomputed": pd.Series(dtype="float64"),
                "match": pd.Series(dtype="bool"),
                "within_input_rounding": pd.Series(dtype="bool"),
            }
        )
    return pd.concat(parts)


def summarise_recomputation(check: pd.DataFrame) -> pd.DataFrame:
    """Per outcome: rows compared, exact match rate and within-input-rounding rate."""
    return (
        check.groupby("outcome", sort=True)
        .agg(
            rows=("match", "size"),
            match_rate=("match", "mean"),
            within_input_rounding_rate=("within_input_rounding", "mean"),
        )
        .reset_index()
    )


def round_half_up(x: np.ndarray, decimals: int) -> np.ndarray:
    """Round half away from zero, as DfE does (numpy's round is half to even).

    Same rule as R's janitor::round_half_up: adds sqrt(machine epsilon) before truncating,
    so 22.65 stored as 22.6499999... still rounds to 22.7.
    """
    factor = 10.0**decimals
    return np.sign(x) * np.trunc(np.abs(x) * factor + 0.5 + _EPS) / factor


def _half_width(measure: Measure | None) -> float:
    """Largest rounding error of a (sum of) published figure(s)."""
    if measure is None or measure.rounded_to is None:
        return 0.0
    return measure.rounded_to / 2 * measure.parts


def _read(path: Path) -> EESTable:
    """`read_ees_csv`, once per file version: England, regional and LA rows of one folder
    (the `indicators` table, whole-region groups, `plan` then `run`) parse each file once.
    The cached table is read-only: callers select rows, never write into it."""
    stat = path.stat()
    return _read_version(path.resolve(), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=16)
def _read_version(path: Path, mtime_ns: int, size: int) -> EESTable:
    return read_ees_csv(path)


def _header(path: Path) -> list[str]:
    """The first line of a CSV as column names ([] if unreadable)."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            return next(csv.reader(fh), [])
    except UnicodeDecodeError:
        return []


def _load(
    data_dir: Path,
    indicator_ids: list[str],
    level: str,
    rules: Mapping[str, Plausible] | None = None,
) -> tuple[pd.DataFrame, list[LedgerEntry], tuple[tuple[str, str], ...]]:
    """Compute the long frame of the requested indicators at one geographic level."""
    if not data_dir.is_dir():
        raise DataError(
            "data folder not found",
            file=str(data_dir),
            fix="pass the folder holding the EES CSV files (--data DIR)",
        )
    indicators = _select(indicator_ids)
    tables: dict[str, EESTable] = {}
    for ind in indicators:
        for family in ind.families:
            if family not in tables:
                tables[family] = _read(_require_family_file(data_dir, family))
    parts, ledger = [], []
    for ind in indicators:
        part, entries = _indicator_frame(ind, tables, level, rules)
        parts.append(part)
        ledger.extend(entries)
    files = tuple((t.path.name, t.sha256) for t in tables.values())
    return pd.concat(parts, ignore_index=True), ledger, files


def _select(indicator_ids: list[str]) -> list[Indicator]:
    """The catalogue entries for the ids, in the order given; DataError on unknown ids."""
    catalogue = load_catalogue()
    if not indicator_ids:
        raise DataError(
            "no indicators requested",
            where="outcomes",
            fix=f"name one or more of {sorted(catalogue)}",
        )
    for key in indicator_ids:
        if key not in catalogue:
            near = difflib.get_close_matches(key, list(catalogue), n=1)
            hint = f"did you mean '{near[0]}'? " if near else ""
            raise DataError(
                f"unknown indicator {key!r}",
                where="outcomes",
                fix=f"{hint}known indicators: {', '.join(sorted(catalogue))}",
            )
    return [catalogue[k] for k in dict.fromkeys(indicator_ids)]


def _indicator_frame(
    ind: Indicator,
    tables: dict[str, EESTable],
    level: str,
    rules: Mapping[str, Plausible] | None = None,
) -> tuple[pd.DataFrame, list[LedgerEntry]]:
    """One indicator's long rows at `level`, plus rows dropped for lack of a denominator."""
    num = _measure(ind.numerator, tables[ind.numerator.family], level)
    den = _measure(ind.denominator, tables[ind.denominator.family], level)
    ledger = []
    covered = num.index.get_level_values("period").isin(den.index.get_level_values("period"))
    if not covered.all():
        dropped = num.loc[~covered]
        years = sorted(set(den.index.get_level_values("period")))
        ledger.append(
            LedgerEntry(
                f"{ind.id}: no {ind.denominator.family} denominator for the year "
                f"({ind.denominator.family} covers {years[0]}-{years[-1]})",
                int((~covered).sum()),
                tuple(sorted(set(dropped.index.get_level_values("unit")))),
            )
        )
        num = num.loc[covered]
    den = den.reindex(num.index)
    if ind.published is None:
        published = np.full(len(num), np.nan)
    else:
        pub = _measure(ind.published, tables[ind.published.family], level)
        # only a figure DfE printed: a symbol (or a symbol among summed parts) is no figure
        published = pub["value"].where(pub["status"] == "").reindex(num.index).to_numpy()
    n, d = num["value"].to_numpy(), den["value"].to_numpy()
    status = np.where(
        num["status"] != "",
        num["status"],
        np.where(
            den["status"].isna(),
            "no_denominator",
            np.where(
                den["status"].fillna("") != "",
                den["status"],
                np.where(d == 0, "zero_denominator", ""),
            ),
        ),
    )
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        value = np.where(status == "", n / d * ind.multiplier, np.nan)
    status, detail = screen(
        Located(value, _rate_from(ind, tables, num, den)),
        (rules or {}).get(ind.id, ind.rule()),
        status,
        numerator=Located(n, _located(ind.numerator, tables, num)),
        denominator=Located(d, _located(ind.denominator, tables, den)),
    )
    value = np.where(status == "", value, np.nan)
    sources = dict.fromkeys(tables[m.family].path.name for m in (ind.numerator, ind.denominator))
    frame = pd.DataFrame(
        {
            "unit": num.index.get_level_values("unit"),
            "period": num.index.get_level_values("period"),
            "outcome": ind.id,
            "numerator": n,
            "denominator": d,
            "value": value,
            "published": published,
            "status": status,
            "source": " + ".join(sources),
            "detail": detail,
        }
    )
    return frame, ledger


def _located(measure: Measure, tables: dict[str, EESTable], rows: pd.DataFrame) -> np.ndarray:
    """'<file> row N, column C' for each row of a measure (row unknown when it is missing)."""
    where = f"{tables[measure.family].path.name} row "
    column = f", column {'+'.join(measure.columns)}"
    return np.array([f"{where}{_row(r)}{column}" for r in rows["row"]], dtype=object)


def _rate_from(
    ind: Indicator, tables: dict[str, EESTable], num: pd.DataFrame, den: pd.DataFrame
) -> np.ndarray:
    """Where a recomputed rate comes from: its numerator's and denominator's rows."""
    n, d = _located(ind.numerator, tables, num), _located(ind.denominator, tables, den)
    return np.array([f"{ind.id} recomputed from {a} and {b}" for a, b in zip(n, d, strict=True)])


def _row(row: float) -> str:
    return "?" if pd.isna(row) else str(int(row))


def _near_misses(present: pd.Series, values: tuple[str, ...], column: str, file: str) -> None:
    """A filter value one slip away from a wanted one (a typo in a row) would leave its row
    out without a word: refuse it, naming the row. DfE's own categories can be as close
    ("suitable", "unsuitable"), but each fills as many rows as the other; a slip is rare."""
    counts = present.value_counts()
    for other in set(counts.index) - set(values):
        close = difflib.get_close_matches(other, values, n=1, cutoff=NEAR_MISS)
        if close and counts[other] <= RARE * counts.get(close[0], 0):
            row = int(np.flatnonzero((present == other).to_numpy())[0])
            raise DataError(
                f"value {other!r} is not a filter value this indicator reads, but is close to "
                f"{close[0]!r}",
                file=file,
                where=column,
                row=int(present.index[row]) + 1,
                fix="correct the cell, or download the file again from Explore Education "
                "Statistics",
            )


def _level_rows(frame: pd.DataFrame, level: str, name: str) -> np.ndarray:
    """Rows at `level`, its case and spacing aside ("Local Authority"); a value that is close
    to it but not it ("Local authorty") is a DataError naming the row, not a row silently
    left out of every LA's series."""
    levels = frame["geographic_level"].str.strip()
    folded = levels.str.casefold().str.split().str.join(" ")
    wanted = level.casefold()
    for other in folded[folded != wanted].unique():
        if difflib.SequenceMatcher(None, other, wanted).ratio() >= NEAR_MISS:
            row = int(np.flatnonzero((folded == other).to_numpy())[0])
            raise DataError(
                f"geographic_level {levels.iloc[row]!r} is close to {level!r} but is not it, so "
                "its row would be left out",
                file=name,
                where="geographic_level",
                row=int(frame.index[row]) + 1,
                fix="correct the cell, or download the file again from Explore Education "
                "Statistics",
            )
    return (folded == wanted).to_numpy()


def _check_la_codes(rows: pd.DataFrame, name: str) -> None:
    """Every LA row's old_la_code is a local authority's code (or a combined return's codes):
    an empty or unknown code became a comparison unit of its own."""
    codes = rows["old_la_code"].str.strip()
    known = set(la_table()["la_code"])
    # a combined return ("940 / 941": harmonise.py) names LAs that each exist
    parts = codes.str.split("/")
    valid = [all(p.strip() in known for p in named) for named in parts]
    bad = np.flatnonzero(~np.asarray(valid, dtype=bool))
    if bad.size:
        code = codes.iloc[bad[0]]
        raise DataError(
            "old_la_code is empty"
            if code == ""
            else f"old_la_code {code!r} is not a local authority's code",
            file=name,
            where="old_la_code",
            row=int(rows.index[bad[0]]) + 1,
            fix="correct the code (DfE's three-digit LA code), or download the file again from "
            "Explore Education Statistics",
        )


def _measure(measure: Measure, table: EESTable, level: str) -> pd.DataFrame:
    """Value and status of a measure per (period, unit) at `level`; DataError if ambiguous."""
    frame, name = table.frame, table.path.name
    rows = frame.loc[_level_rows(frame, level, name)]
    if level == "Local authority":
        _check_la_codes(rows, name)
    summed: list[str] = []  # filter columns whose several values' rows are added up
    for column, wanted in measure.filters:
        values = (wanted,) if isinstance(wanted, str) else wanted
        present = rows[column].str.strip()
        absent = [v for v in values if not (present == v).any()]
        if absent and not rows.empty:
            seen = ", ".join(sorted(set(rows[column]))[:8])
            raise DataError(
                f"no rows with {column} = {absent[0]!r} (values present: {seen})",
                file=name,
                where=column,
                fix="DfE may have renamed the filter value; update the filter "
                "in pathfinder_eval/data/indicators.yaml",
            )
        _near_misses(present, values, column, name)
        rows = rows.loc[present.isin(values)]
        if len(values) > 1:
            summed.append(column)
    value = np.zeros(len(rows))
    status = np.full(len(rows), "", dtype=object)
    for column in measure.columns:
        v, s = ees_value(rows[column], file=name)
        status = np.where(status == "", s, status)
        value = value + v
    periods = _periods(rows, name) + FAMILIES[measure.family].period_offset
    units = rows[LEVELS[level]].str.strip().to_numpy()
    keys = [periods, units, *(rows[c].str.strip().to_numpy() for c in summed)]
    index = pd.MultiIndex.from_arrays(keys, names=["period", "unit", *summed])
    out = pd.DataFrame({"value": value, "status": status, "row": rows.index + 1}, index=index)
    if out.index.has_duplicates:
        raise _repeated_rows(rows, out.index, measure, level, name)
    return _sum_parts(out, measure.parts // len(measure.columns)) if summed else out


def _sum_parts(parts: pd.DataFrame, expected: int) -> pd.DataFrame:
    """Add the rows of a multi-valued filter per (period, unit). The first DfE symbol among
    them marks the sum, whose value is then NaN (a suppressed part is never counted as 0:
    the sum is unknown, not smaller); an area-year lacking one of the rows is
    `incomplete_sum`, also NaN."""
    grouped = parts.groupby(level=["period", "unit"], sort=False)
    marked = parts["status"].where(parts["status"] != "")
    status = marked.groupby(level=["period", "unit"], sort=False).first().fillna("")
    out = pd.DataFrame(
        {"value": grouped["value"].sum(), "status": status, "row": grouped["row"].first()}
    )
    out.loc[grouped.size() < expected, "status"] = "incomplete_sum"
    out.loc[out["status"] != "", "value"] = np.nan
    return out


def _repeated_rows(
    rows: pd.DataFrame, index: pd.MultiIndex, measure: Measure, level: str, name: str
) -> DataError:
    """The error for two rows of one year and area: a row repeated in the user's file (fix
    the file), or rows that differ in a column no filter selects (DfE added a breakdown)."""
    key = index[np.flatnonzero(index.duplicated())[0]]
    same = rows.loc[np.asarray(index == key)]
    numbers = ", ".join(str(int(i) + 1) for i in same.index[:5])
    where = f"time_period {same['time_period'].iloc[0].strip()}, area {key[1]}"
    if not same.duplicated(keep=False).all():
        differing = [  # breakdown columns hold text; counts differ between rows anyway
            c
            for c in same.columns
            if same[c].nunique() > 1 and pd.to_numeric(same[c], errors="coerce").isna().any()
        ]
        if differing:
            return DataError(
                f"rows {numbers} are both {level} rows for {where} after the filters "
                f"{dict(measure.filters)}; they differ in {', '.join(differing[:4])}",
                file=name,
                row=int(same.index[0]) + 1,
                fix="use the file as published by DfE (a new breakdown column needs a filter "
                "in pathfinder_eval/data/indicators.yaml: please report it)",
            )
    repeated = int(rows.duplicated(keep="first").sum())
    return DataError(
        f"rows {numbers} repeat one {level} row for {where} ({repeated} repeated rows in the file)",
        file=name,
        row=int(same.index[-1]) + 1,
        fix="remove the repeated rows from the file (or download it again from Explore "
        "Education Statistics); one row per year and area",
    )


def _periods(rows: pd.DataFrame, file: str) -> np.ndarray:
    """Reporting years from time_period: 2024 as is, financial-year 202324 as 2024."""
    text = rows["time_period"].str.strip()
    four = text.str.fullmatch(r"\d{4}")
    six = text.str.fullmatch(r"\d{6}")
    start = pd.to_numeric(text.str[:4].where(six), errors="coerce")
    ok_six = six & (pd.to_numeric(text.str[4:].where(six), errors="coerce") == (start + 1) % 100)
    bad = ~(four | ok_six)
    if bad.any():
        label = rows.index[np.flatnonzero(bad.to_numpy())[0]]
        raise DataError(
            f"time_period {text.loc[label]!r} is not a year (2024) or financial year (202324)",
            file=file,
            where="time_period",
            row=int(label) + 1,
            fix="use the EES file as downloaded",
        )
    years = np.where(four, pd.to_numeric(text.where(four), errors="coerce"), start + 1)
    return years.astype("int64")


def _tidy(frame: pd.DataFrame) -> pd.DataFrame:
    """Fixed columns and dtypes, sorted by outcome, unit and period."""
    out = frame.loc[:, list(OFFICIAL_COLUMNS)].astype(_DTYPES)
    return out.sort_values(["outcome", "unit", "period"], kind="stable").reset_index(drop=True)
