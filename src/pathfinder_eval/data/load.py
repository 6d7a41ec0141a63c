"""Choose the reader the design and `--data` call for, and return `OutcomeData`.

No `--data`: the design's `data.source` (the embedded synthetic panel by default).
A folder: DfE Explore Education Statistics downloads, named as DfE publishes them.
A file (.csv, .parquet, .dta): tidy data, one row per unit-period with named columns, or with
data.source 'records' individual records (one row per person) summarised per cluster-period.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pathfinder_eval.data.catalogue import SCALES, load_catalogue
from pathfinder_eval.data.ees import MISSING
from pathfinder_eval.data.harmonise import (
    OLD_ENDS,
    applicable_reorganisations,
    ended_reason,
    load_reorganisations,
)
from pathfinder_eval.data.la_lookup import la_table, namesakes, resolve_la, suggest_la
from pathfinder_eval.data.official import (
    find_family_file,
    load_official,
    load_official_aggregates,
)
from pathfinder_eval.data.plausibility import Located, Plausible, RowLabels, screen
from pathfinder_eval.data.records import (
    RecordColumns,
    check_records_fit,
    records_from_dask,
    records_from_file,
    records_on_cluster,
    records_outcomes,
)
from pathfinder_eval.data.source import DETAIL, LONG_COLUMNS, Exclusion, OutcomeData
from pathfinder_eval.data.synthetic import calibration, synthetic_panel
from pathfinder_eval.data.tidy import (
    key_codes,
    map_distinct,
    numbers,
    numeric_cells,
    period_ordinals,
    read_tidy,
    repeated,
    repeated_text,
    text_array,
    text_by_code,
    text_column,
    unit_codes,
)
from pathfinder_eval.data.trial_sim import simulate_stepped_wedge
from pathfinder_eval.errors import DataError, cell
from pathfinder_eval.spec import DesignSpec, Outcome, TidyColumns, UnitLevel
from pathfinder_eval.timeaxis import (
    EXAMPLE_LABEL,
    TimeAxis,
    containing_period,
    onset,
    parse_period,
    period_bounds,
)


def load_outcomes(
    spec: DesignSpec, data: Path | pd.DataFrame | None, seed: int, scheduler: str | None = None
) -> OutcomeData:
    """Read the outcome data for a design (see module docstring for the choice); a DataFrame
    (the Python API) is read as the design's tidy data or individual records, a Dask DataFrame
    as individual records. scheduler: summarise a records file on that Dask cluster."""
    if isinstance(data, pd.DataFrame):
        return _frame(spec, data)
    if is_dask_frame(data):
        if spec.data.source != "records":
            raise DataError(
                "a Dask DataFrame is read as individual records only",
                where="data",
                fix="set data.source: records, or pass a pandas DataFrame or a file",
            )
        return records_dask(spec, data)
    from_design = data is None
    if data is None:
        if spec.data.source == "synthetic":
            return synthetic_outcomes(spec, seed)
        if spec.data.source == "simulated_trial":
            return trial_outcomes(spec, seed)
        if spec.data.path is None:
            raise DataError(
                f"data.source is {spec.data.source!r} but no data.path is given",
                file=spec.path,
                where="data.path",
                fix="set data.path in the design or pass --data PATH",
            )
        data = Path(spec.path).parent / spec.data.path
    try:
        data = data.resolve() if from_design else data
        is_dir, exists = data.is_dir(), data.exists()
    except (OSError, ValueError) as exc:  # e.g. an embedded NUL byte, a name too long
        raise DataError(
            f"data path {str(data)!r} is not a usable path ({exc})",
            file=spec.path if from_design else None,
            where="data.path" if from_design else "--data",
            fix="give the path of an existing folder of EES CSVs or a tidy file",
        ) from None
    if is_dir:
        if spec.data.columns.unit_columns:
            raise DataError(
                "data.columns.unit_columns are columns of a tidy file; a folder of EES CSVs "
                "has none",
                file=spec.path,
                where="data.columns.unit_columns",
                fix="pass the tidy file with those columns, or drop unit_columns (and the "
                "inference.cluster, by or trends_nonparam that name them)",
            )
        return _official(spec, data)
    if not exists:
        raise DataError(
            "data path not found",
            file=str(data),
            fix="pass an existing folder of EES CSVs or a tidy .csv/.parquet/.dta file",
        )
    if spec.data.source == "records":
        return records_file(spec, data, scheduler)
    if scheduler is not None:
        raise DataError(
            "--scheduler summarises individual records; this design's data are not records",
            file=spec.path,
            where="data.source",
            fix="drop --scheduler (tidy panels and EES folders are read on this machine)",
        )
    return tidy_outcomes(spec, data)


FRAME = "data frame"
DASK_FRAME = "Dask data frame"


def is_dask_frame(data: object) -> bool:
    """A Dask DataFrame (recognised without importing Dask)."""
    return type(data).__module__.startswith("dask") and hasattr(data, "to_delayed")


def frame_sha(frame: pd.DataFrame) -> str:
    """A stable hash of a frame's values and column names, for provenance."""
    h = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    h.update("\x1f".join(map(str, frame.columns)).encode())
    return h.hexdigest()


def _frame(spec: DesignSpec, frame: pd.DataFrame) -> OutcomeData:
    frame = frame.reset_index(drop=True)
    if spec.data.source == "records":
        return replace(records_frame(spec, frame, "data"), files=((FRAME, frame_sha(frame)),))
    return frame_outcomes(spec, frame, "data", FRAME, frame_sha(frame))


def records_file(spec: DesignSpec, path: Path, scheduler: str | None = None) -> OutcomeData:
    """Individual records (data.source: records), one row per person, summarised per cell as
    the file is read in parts (on a Dask cluster with `scheduler`); a model that needs the
    records themselves (covariates, an individual column) reads them whole, after checking
    they fit in memory."""
    with path.open("rb") as f:
        sha = hashlib.file_digest(f, "sha256").hexdigest()
    cols = record_columns(spec, str(path))
    individual = keeps_records(spec)
    if individual and scheduler is not None:
        raise DataError(
            "a Dask cluster gives cell summaries only; individual covariates and cohorts "
            "need the records on this machine",
            file=spec.path,
            where="data.columns",
            fix="drop --scheduler, or drop data.columns.covariates and individual",
        )
    if individual:
        check_records_fit(path)
        # ids as written, as the summaries read a CSV's in parts and on a cluster
        data = records_frame(spec, read_tidy(path, text=(cols.unit,)), str(path))
    elif scheduler is not None:
        data = _records_as_las(spec, records_on_cluster(path, cols, scheduler), str(path))
    else:
        data = _records_as_las(spec, records_from_file(path, cols), str(path))
    return replace(data, files=((path.name, sha),))


def _records_as_las(spec: DesignSpec, data: OutcomeData, file: str) -> OutcomeData:
    """Records of an LA-level design name each LA by name or code, as tidy data do: the cells,
    the exclusions and the kept records take its code (by year for a name two LAs have had)
    and the unit table its name and region, as the rollout is resolved (a name left as
    written matched nothing: "treated unit Bromley has no rows")."""
    if spec.unit_level is not UnitLevel.LOCAL_AUTHORITY:
        return data
    column = spec.data.columns.unit
    for label in data.units["unit"]:  # every unit read, even one whose records were all left out
        if _la_code(label) is None:
            raise _not_an_la(str(label), file, column)

    def codes(frame: pd.DataFrame) -> tuple[pd.Series, dict[str, set[str]]]:
        """Each row's LA code, and the codes each label took (two for a namesake by year)."""
        pairs = frame[["unit", "period"]].drop_duplicates().reset_index(drop=True)
        try:
            mapped = _namesakes_by_year(
                pairs["unit"],
                map_distinct(pairs["unit"], _la_code),
                pairs["period"],
                spec.time.axis,
                file,
                column,
            )
        except DataError as e:  # its row is one of the distinct pairs, not the file's
            raise DataError(e.what, file=file, where=e.where, fix=e.fix) from None
        at = pd.MultiIndex.from_frame(pairs).get_indexer(
            pd.MultiIndex.from_frame(frame[["unit", "period"]])
        )
        taken = pd.Series(mapped.to_numpy(dtype=object)).groupby(pairs["unit"]).unique()
        return (
            pd.Series(mapped.to_numpy(dtype=object)[at], index=frame.index),
            {str(k): set(v) for k, v in taken.items()},
        )

    units, taken = codes(data.frame)
    frame = data.frame.assign(unit=units)
    twice = frame.duplicated(["unit", "outcome", "period"])
    if twice.any():
        la = frame.loc[twice, "unit"].iloc[0]
        labels = sorted(set(data.frame.loc[(frame["unit"] == la).to_numpy(), "unit"]))
        raise DataError(
            f"LA {la} is named {' and '.join(map(repr, labels))} in the records",
            file=file,
            where=f"column {column}",
            fix="name each LA one way (its name or its code) in every record",
        )

    def of(label: object) -> set[str]:
        return taken.get(str(label)) or {str(_la_code(label))}

    records = data.records
    if records is not None:
        kept, split = codes(records)
        moved = [k for k, v in split.items() if len(v) > 1]
        if moved and "individual" in records:
            raise DataError(
                f"{moved[0]!r} names {len(split[moved[0]])} LAs by year "
                f"({', '.join(sorted(split[moved[0]]))}), and the records follow people over "
                "periods: each would move between them",
                file=file,
                where=f"column {column}",
                fix="give each record its LA's code, or keep the periods on one side of the change",
            )
        records = records.assign(unit=kept)
    table = la_table().set_index("la_code")
    every = sorted(set().union(*(of(u) for u in data.units["unit"])))
    meta = pd.DataFrame(
        {
            "unit": every,
            "name": table["la_name"].reindex(every).to_numpy(),
            "region": table["region_name"].reindex(every).fillna("").to_numpy(),
        }
    )
    ledger = tuple(
        replace(e, units=tuple(sorted(set().union(*(of(u) for u in e.units))))) if e.units else e
        for e in data.exclusions
    )
    return replace(data, frame=frame, units=meta, exclusions=ledger, records=records)


def keeps_records(spec: DesignSpec) -> bool:
    """Whether a model needs the records themselves, not only their cell summaries (eligible
    is kept with them; triple_difference needs individual, so it keeps them)."""
    cols = spec.data.columns
    return bool(cols.covariates or cols.individual)


def record_columns(spec: DesignSpec, file: str) -> RecordColumns:
    """Where a records design's unit, period and outcomes are in its data."""
    outcomes = {}
    for i, o in enumerate(spec.outcomes):
        if o.column is None or o.numerator or o.denominator:
            counted = ", ".join(k for k in ("numerator", "denominator") if getattr(o, k))
            raise DataError(
                "individual records need '- column: <name>' outcomes"
                + (f" without {counted}: each record is one person" if counted else ""),
                file=spec.path,
                where=f"outcomes[{i}]",
                fix="name the column holding each person's outcome"
                + (f" and drop {counted}" if counted else ""),
            )
        outcomes[o.id] = o.column
    cols = spec.data.columns
    return RecordColumns(
        cols.unit,
        cols.period,
        outcomes,
        file,
        partial(parse_period, spec.time.axis),
        f"{EXAMPLE_LABEL[spec.time.axis]} for '{spec.time.axis.value}'",
    )


def records_frame(spec: DesignSpec, raw: pd.DataFrame, file: str) -> OutcomeData:
    """Individual records from a frame (a file read, or one passed to the Python API)."""
    cols = record_columns(spec, file)
    data = records_outcomes(
        raw,
        cols.unit,
        cols.period,
        dict(cols.outcomes),
        file,
        cols.parse_period,
        spec.data.columns.covariates,
        spec.data.columns.individual,
        spec.data.columns.eligible,
        cols.period_example,
    )
    return _records_as_las(spec, data, file)


def records_dask(spec: DesignSpec, frame: Any) -> OutcomeData:
    """Individual records in a Dask DataFrame, summarised partition by partition where the
    active Dask scheduler runs; provenance is the hash of the summaries (the frame is never
    gathered)."""
    if keeps_records(spec):
        raise DataError(
            "a Dask DataFrame of records gives cell summaries only",
            file=spec.path,
            where="data.columns",
            fix="drop data.columns.covariates and individual, or pass a pandas DataFrame",
        )
    data = _records_as_las(
        spec, records_from_dask(frame, record_columns(spec, DASK_FRAME), DASK_FRAME), DASK_FRAME
    )
    return replace(
        data, files=((DASK_FRAME + " (hash of its cell summaries)", frame_sha(data.frame)),)
    )


def _indicator_ids(spec: DesignSpec, source: str) -> list[str]:
    catalogue = load_catalogue()
    ids = []
    for i, outcome in enumerate(spec.outcomes):
        if outcome.indicator is None:
            raise DataError(
                f"outcome column {outcome.column!r} needs tidy data, not {source}",
                file=spec.path,
                where=f"outcomes[{i}]",
                fix="pass --data FILE.csv with that column, or use a catalogue indicator",
            )
        if outcome.indicator not in catalogue:
            raise DataError(
                f"unknown indicator {outcome.indicator!r}",
                file=spec.path,
                where=f"outcomes[{i}].indicator",
                fix="pick an id from `pathfinder-eval indicators`",
            )
        ids.append(outcome.indicator)
    return ids


def _treated_las(spec: DesignSpec) -> dict[str, object]:
    """Treated LA → start; a treated group's members inherit the group's start."""
    out: dict[str, object] = {}
    for unit, start in spec.start_of().items():
        members = spec.groups[unit].members if unit in spec.groups else (unit,)
        out.update({m: start for m in members})
    return out


def synthetic_outcomes(
    spec: DesignSpec, seed: int, effects: dict[str, float] | None = None
) -> OutcomeData:
    """The embedded synthetic panel for the design's outcomes, with the design's injected
    effects (or `effects`, e.g. from a power simulation)."""
    catalogue = load_catalogue()
    ids = _indicator_ids(spec, "the synthetic panel")
    available = [i for i in ids if i in calibration()["indicators"]]
    cohorts = {
        u: onset(spec.time.axis, s, spec.time.partial_period_rule).first_treated
        for u, s in _treated_las(spec).items()
    }
    chosen = dict(spec.data.injected_effect) if effects is None else effects
    return synthetic_panel([(i, catalogue[i].scale) for i in available], cohorts, chosen, seed)


def trial_outcomes(spec: DesignSpec, seed: int, effect: float | None = None) -> OutcomeData:
    """The simulated stepped-wedge trial the design describes (its effect unless `effect`)."""
    trial = spec.data.trial
    if trial is None or spec.time.axis is not TimeAxis.PERIOD or len(spec.outcomes) != 1:
        raise DataError(
            "a simulated trial needs data.trial settings, time.axis 'period' and one outcome",
            file=spec.path,
            where="data.trial",
            fix="see designs/examples/stepped_wedge_trial.yaml",
        )
    starts = {u: int(s) for u, s in spec.start_of().items()}
    chosen = trial.effect if effect is None else effect
    return simulate_stepped_wedge(
        starts,
        trial.periods,
        spec.outcomes[0].id,
        chosen,
        trial.icc,
        trial.cell_size,
        seed,
        effect_sd=trial.effect_sd,
        effect_corr=trial.effect_corr,
    )


def _official(spec: DesignSpec, folder: Path) -> OutcomeData:
    ids = _indicator_ids(spec, "official statistics")
    required = {o.indicator for o in spec.outcomes if o.required}
    catalogue = load_catalogue()
    rules = {o.indicator: catalogue[o.indicator].rule(o.plausible) for o in spec.outcomes}
    chosen = [i for i in ids if i in required or _has_family(folder, i)]
    official = load_official(folder, chosen, rules=rules)
    table = la_table()
    units = table[["la_code", "la_name", "region_name"]].drop_duplicates("la_code", keep="last")
    units = units.rename(columns={"la_code": "unit", "la_name": "name", "region_name": "region"})
    frame = official.frame[[*LONG_COLUMNS, DETAIL]].copy()
    extra = sorted(set(frame["unit"]) - set(units["unit"]))
    if extra:
        units = pd.concat([units, pd.DataFrame({"unit": extra, "name": extra, "region": ""})])
    exclusions = tuple(Exclusion(e.reason, e.count, tuple(e.units)) for e in official.ledger)
    regional, notes = _whole_region_groups(spec, folder, chosen)
    return OutcomeData(
        pd.concat([frame, regional], ignore_index=True) if len(regional) else frame,
        units.reset_index(drop=True),
        "official",
        tuple((name, sha) for name, sha in official.files),
        exclusions,
        notes,
        reorganisations=tuple(str(r) for r in official.reorganisations),
    )


def _whole_region_groups(
    spec: DesignSpec, folder: Path, ids: list[str]
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Rows for groups that are a whole region (`region: South East`): DfE's published
    regional figures, which count every LA, including those whose own figures are
    suppressed, so the group is not lost to one suppressed member. Groups of named LAs are
    summed from their members in the panel."""
    whole = {name: g.region for name, g in spec.groups.items() if g.region is not None}
    if not whole:
        return pd.DataFrame(columns=[*LONG_COLUMNS, DETAIL]), ()
    table = la_table()
    code = dict(zip(table["region_name"], table["region_code"], strict=False))
    regional = load_official_aggregates(folder, ids, level="Regional").frame
    parts = []
    for name, region in whole.items():
        rows = regional.loc[regional["unit"] == code[region], [*LONG_COLUMNS, DETAIL]]
        parts.append(rows.assign(unit=name, source="regional rows of " + rows["source"]))
    note = (
        f"{', '.join(whole)}: DfE's published regional figures (regional counts are rounded "
        "to the nearest 10), which count every LA in the region, including those whose own "
        "figures are suppressed; other groups are sums of their member LAs."
    )
    return pd.concat(parts, ignore_index=True), (note,)


def _has_family(folder: Path, indicator: str) -> bool:
    """Whether every file family the indicator reads is in the folder."""
    families = load_catalogue()[indicator].families
    return all(find_family_file(folder, f) is not None for f in families)


def tidy_outcomes(spec: DesignSpec, path: Path) -> OutcomeData:
    """Tidy data: map the design's columns to the long form, checking each value."""
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    return frame_outcomes(spec, read_tidy(path), str(path), path.name, sha)


def frame_outcomes(
    spec: DesignSpec, raw: pd.DataFrame, file: str, source: str, sha: str
) -> OutcomeData:
    """A tidy data frame (a file read, or one passed to the Python API) in the long form,
    checking each value; `file` names it in errors, `source` in the rows, `sha` its hash."""
    cols: TidyColumns = spec.data.columns
    needed = [cols.unit, cols.period]
    for o in spec.outcomes:
        from_counts = bool(o.numerator and o.denominator)
        needed += [c for c in (o.numerator, o.denominator) if c]
        if o.column and not from_counts:
            needed.append(o.column)
        if o.indicator is not None:
            raise DataError(
                f"outcome {o.indicator!r} is a catalogue indicator; tidy data need "
                "'column' outcomes",
                file=spec.path,
                where="outcomes",
                fix="write '- column: <name>' for tidy data",
            )
    needed += [c for c in (cols.treatment, cols.region, cols.dose, *cols.unit_columns) if c]
    for c in needed:
        if c not in raw.columns:
            close = [x for x in raw.columns if x.lower() == c.lower()]
            hint = f" (found {close[0]!r}: names are case-sensitive)" if close else ""
            raise DataError(
                f"required column {c!r} is missing{hint}",
                file=file,
                where=f"column {c}",
                fix=f"add the column or map it in the design's data.columns; "
                f"columns present: {', '.join(map(str, raw.columns))}",
            )
    unit_code, labels = unit_codes(raw, cols.unit, file)
    periods = period_ordinals(
        raw,
        cols.period,
        lambda v: parse_period(spec.time.axis, v),
        file,
        f"a {spec.time.axis.value} label",
        EXAMPLE_LABEL[spec.time.axis],
    )
    if spec.unit_level is UnitLevel.LOCAL_AUTHORITY or spec.unit_level is UnitLevel.REGION:
        names = pd.Series(np.array(labels, dtype=object)[unit_code], index=raw.index)
        units = _las_by_code(spec, names, periods, file, cols.unit)
    else:  # the identifiers as they are: the text of each distinct one, taken per row
        units = pd.Series(text_by_code(labels, unit_code), index=raw.index)
    _one_row_per_unit_period(raw, units, periods, cols, file)
    treatment = (
        _treatment_table(spec, raw, units, periods, cols.treatment, file)
        if cols.treatment
        else None
    )
    frames = []
    for o in spec.outcomes:
        frames.append(_tidy_outcome(raw, o, source, units, periods))
    frame = pd.concat(frames, ignore_index=True)
    left_out: tuple[Exclusion, ...] = ()
    reorganised: tuple[str, ...] = ()
    if spec.unit_level is UnitLevel.LOCAL_AUTHORITY:
        reorganised = tuple(str(r) for r in applicable_reorganisations(frame))
        frame, left_out = _old_las_left_out(frame)
    distinct = sorted(pd.unique(units).tolist())
    meta = pd.DataFrame({"unit": distinct})
    table = la_table()
    names = dict(zip(table["la_code"], table["la_name"], strict=False))
    meta["name"] = [names.get(u, u) for u in distinct]
    if cols.region:
        meta["region"] = meta["unit"].map(_unit_values(raw, units, cols.region, file))
        meta["region"] = meta["region"].fillna("")
    elif spec.unit_level is UnitLevel.LOCAL_AUTHORITY:
        regions = dict(zip(table["la_code"], table["region_name"], strict=False))
        meta["region"] = meta["unit"].map(lambda u: regions.get(u, ""))
    else:
        meta["region"] = ""
    if cols.dose:
        meta["dose"] = meta["unit"].map(_unit_doses(raw, units, cols.dose, file))
    for c in cols.unit_columns:  # missing stays missing: never a shared "" cluster
        meta[c] = meta["unit"].map(_unit_values(raw, units, c, file))
    return OutcomeData(
        frame,
        meta,
        "tidy",
        ((source, sha),),
        exclusions=left_out,
        reorganisations=reorganised,
        treatment=treatment,
    )


def _las_by_code(
    spec: DesignSpec, units: pd.Series, periods: pd.Series, file: str, column: str
) -> pd.Series:
    """LAs named by name or code, as their codes (a name two LAs have had, by each row's
    year); for a regional design, a group's own rows keep their name."""
    if spec.unit_level is UnitLevel.LOCAL_AUTHORITY:
        codes = map_distinct(units, _la_code)
        unknown = codes.isna() & units.notna()
        if unknown.any():  # it would join the comparisons as a unit with no region
            row = int(np.flatnonzero(unknown.to_numpy())[0])
            raise _not_an_la(units.iloc[row], file, column, row + 1)
        codes = _namesakes_by_year(units, codes, periods, spec.time.axis, file, column)
        return text_column(codes.where(units.notna(), units))
    # member LAs named as the design's groups name them: by their codes, as the groups'
    # members are resolved (named LAs made the groups' rows vanish: 'treated unit Greater
    # Manchester has no rows'; found in review); a group's own rows keep their name, even
    # one a former LA had (Cumbria, Dorset, Northamptonshire, North Yorkshire)
    groups = {str(g).strip().casefold() for g in spec.groups}
    codes = map_distinct(
        units,
        lambda u: None if str(u).strip().casefold() in groups else _la_code(u),
    )
    return text_column(codes.where(codes.notna(), units))


def _one_row_per_unit_period(
    raw: pd.DataFrame, units: pd.Series, periods: pd.Series, cols: TidyColumns, file: str
) -> None:
    """A unit and period on two rows of a tidy file is an error naming both rows, as the file
    writes the unit and period (the panel's check named the LA's code and the period's
    ordinal: 'unit 838, period 8092' for Dorset, 2023Q1)."""
    group = key_codes(units, periods)  # missing values match too
    twice = repeated(group)
    if not twice.any():
        return
    rows = np.flatnonzero(twice)
    first = int(rows[0])
    again = int(np.flatnonzero(group == group[first])[1])
    raise DataError(
        f"{len(rows)} rows repeat a unit-period (first: {raw[cols.unit].iloc[first]}, "
        f"{raw[cols.period].iloc[first]}, on rows {first + 1} and {again + 1})",
        file=file,
        where=f"columns {cols.unit}, {cols.period}",
        row=first + 1,
        fix="keep one row per unit and period (aggregate or remove duplicates)",
    )


def _old_las_left_out(frame: pd.DataFrame) -> tuple[pd.DataFrame, tuple[Exclusion, ...]]:
    """Rows of an LA a reorganisation ended whose boundary no later LA matches (rule split or
    break: Northamptonshire, Cumbria, the Dorset county) left out and counted, as the official
    data's harmonisation leaves them out: a tidy file naming 'Dorset' for 2018-19 made the old
    county a comparison unit beside the treated unitary (found in review)."""
    keep = np.ones(len(frame), dtype=bool)
    ledger = []
    for r in load_reorganisations():
        gone = keep & frame["unit"].isin(r.old_units).to_numpy()
        if r.rule not in OLD_ENDS or not gone.any():
            continue
        for outcome, part in frame[gone].groupby("outcome", sort=True):
            units = tuple(sorted(set(part["unit"])))
            ledger.append(Exclusion(ended_reason(r), len(part), units, outcome))
        keep &= ~gone
    if keep.all():
        return frame, ()
    return frame[keep], tuple(ledger)  # the index stays each row's place in the file


def _unit_values(raw: pd.DataFrame, units: pd.Series, column: str, file: str) -> pd.Series:
    """Each unit's value of a unit-level column (region, a cluster): the same on every row of
    the unit that gives one (empty rows allowed), so no unit is silently put in either."""
    given = raw[column].astype("string").str.strip().replace("", pd.NA)
    by_unit = given.groupby(units.to_numpy())
    if conflict := _first_conflict(given, units, by_unit):
        unit, first, row = conflict
        raise DataError(
            f"unit {unit} is in more than one {column} ({cell(given.iloc[first])} and "
            f"{cell(given.iloc[row])})",
            file=file,
            where=f"column {column}",
            row=row + 1,
            fix=f"give each unit one {column} on all its rows (e.g. its region before a "
            "boundary change)",
        )
    return by_unit.first()


def _first_conflict(
    values: pd.Series, units: pd.Series, by_unit: Any
) -> tuple[Any, int, int] | None:
    """The first unit whose rows give two different values (missing ones aside): the unit, the
    position of its first value and of the first row that differs from it; None if none."""
    varies = by_unit.nunique() > 1
    if not varies.any():
        return None
    unit = varies.index[varies.to_numpy()][0]
    rows = np.flatnonzero((units == unit).to_numpy() & values.notna().to_numpy())
    return unit, int(rows[0]), next(int(r) for r in rows if values.iloc[r] != values.iloc[rows[0]])


def _unit_doses(raw: pd.DataFrame, units: pd.Series, column: str, file: str) -> pd.Series:
    """Each unit's dose from the dose column: a number of 0 or more, the same on every row of
    the unit that gives one (missing rows allowed), NaN for units that give none."""
    d = pd.to_numeric(raw[column], errors="coerce")
    bad = (raw[column].notna() & d.isna()) | (d < 0) | np.isinf(d)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"dose {cell(raw[column].iloc[row])} is not a number of 0 or more",
            file=file,
            where=f"column {column}",
            row=row + 1,
            fix="give each treated unit's dose as a number (leave it empty or 0 for units "
            "never treated)",
        )
    by_unit = d.groupby(units.to_numpy())
    if conflict := _first_conflict(d, units, by_unit):
        unit, first, row = conflict
        raise DataError(
            f"unit {unit} has more than one dose ({d.iloc[first]:g} and {d.iloc[row]:g})",
            file=file,
            where=f"column {column}",
            row=row + 1,
            fix="give each unit one dose on all its rows; for a dose that changes over time "
            "use did_multiplegt_dyn with the levels in the treatment column",
        )
    return by_unit.first()


def _not_an_la(name: object, file: str, column: str, row: int | None = None) -> DataError:
    """The error for a unit of an LA-level design that no LA has been called, with the
    nearest names."""
    close = suggest_la(str(name))
    return DataError(
        f"{name!r} is not a local authority"
        + (f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""),
        file=file,
        where=f"column {column}",
        row=row,
        fix="correct the name or give the LA's code; rows for England or a region belong in "
        "another file; units that are not LAs need unit_level: cluster",
    )


def _la_code(unit: object) -> str | None:
    """The LA code a name or code (current or former) resolves to, else None."""
    return la.la_code if (la := resolve_la(unit, current_only=False)) else None


def _namesakes_by_year(
    units: pd.Series,
    codes: pd.Series,
    periods: Any,
    axis: TimeAxis,
    file: str,
    column: str,
) -> pd.Series:
    """Codes with a name two LAs have had resolved by each row's year: "Dorset" is the county
    (835) up to reporting year 2019 and the unitary (838) from 2020, whose boundary differs
    (the county held Christchurch). Every Dorset row was 838, so the treated LA's pre-start
    series joined the old county's (family_help's TWFE −1.644 for 0.294 by code)."""
    codes, ordinals = codes.copy(), np.asarray(periods)
    for name in pd.unique(units.dropna()):
        las = namesakes(name)
        if len(las) < 2:
            continue
        rows = np.flatnonzero((units == name).to_numpy())
        if axis is TimeAxis.PERIOD:  # no calendar: no year to tell them apart by
            raise DataError(
                f"{name!r} names {len(las)} LAs "
                + ", ".join(f"{la.la_code} ({la.first_year}-{la.last_year})" for la in las),
                file=file,
                where=f"column {column}",
                row=int(rows[0]) + 1,
                fix="give each row's LA code",
            )
        for r in rows:
            start = period_bounds(axis, int(ordinals[r]))[0]
            year = containing_period(TimeAxis.REPORTING_YEAR, start)
            la = next((la for la in reversed(las) if la.first_year <= year), las[0])
            codes.iloc[r] = la.la_code
    return codes


def _tidy_outcome(
    raw: pd.DataFrame,
    outcome: Outcome,
    file: str,
    units: pd.Series,
    periods: pd.Series,
) -> pd.DataFrame:
    """One outcome's long rows from a tidy file: DfE symbols and empty cells are kept as
    unusable with their status, and impossible values are marked (data/plausibility.py), by
    where they are, not their values (a tidy file's counts may be unpublished)."""

    def located(column: str, values: pd.Series) -> Located:
        return Located(values.to_numpy(), RowLabels(file, column))

    rule = Plausible.for_scale(
        outcome.scale,
        outcome.share if outcome.share is not None else outcome.scale == "percent",
        outcome.plausible,
    )
    num = den = None
    if outcome.denominator:
        den, den_status = numeric_cells(raw, outcome.denominator, file)
    if outcome.numerator:  # a rate recomputed from its counts (the spec requires a denominator)
        num, status = numeric_cells(raw, outcome.numerator, file)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            value = (num / den.where(den > 0)) * SCALES.get(outcome.scale, 1.0)
        shown = located(f"{outcome.id} from {outcome.numerator}/{outcome.denominator}", value)
    else:  # the value as given, with each unit's size beside it when a denominator is named
        column = outcome.column or outcome.id
        value, status = numeric_cells(raw, column, file)
        shown = located(column, value)
    if den is not None:
        if num is None:  # a row without its size is excluded, its reason naming the denominator
            den_status = np.where(den_status == MISSING, "missing_denominator", den_status)
        status = np.where(status != "", status, den_status)
        status = np.where((status == "") & (den == 0), "zero_denominator", status)
    status, detail = screen(
        shown,
        rule,
        status,
        None if num is None else located(outcome.numerator, num),
        None if den is None else located(outcome.denominator, den),
        values_shown=False,
    )
    return pd.DataFrame(
        {
            "unit": units,
            "period": periods.astype("int64"),
            "outcome": repeated_text(outcome.id, len(raw)),
            "numerator": num if num is not None else np.nan,
            "denominator": den if den is not None else np.nan,
            "value": value.where(status == "").astype("float64"),
            "status": text_array(status),
            "source": repeated_text(file, len(raw)),
            DETAIL: text_array(detail),
        },
        index=raw.index,
    )


# Estimators whose treatment may switch off or pause (the others need staggered adoption).
SWITCHING = frozenset({"did_multiplegt_dyn"})


def _treatment_table(
    spec: DesignSpec,
    raw: pd.DataFrame,
    units: pd.Series,
    periods: pd.Series,
    column: str,
    file: str,
) -> pd.DataFrame:
    """unit, period, treatment from the treatment column: 0 or 1 in every row, never
    switching off, unless every analysis's estimator allows treatments that stop or change
    level (then any number of 0 or more, or empty where it is not known)."""
    d = pd.DataFrame({"unit": units, "period": periods, "d": numbers(raw[column])})
    d["row"] = np.arange(len(d)) + 1
    switching = all(a.estimator.value in SWITCHING for a in spec.analyses)
    bad = (~(d["d"] >= 0) & raw[column].notna().to_numpy()) if switching else ~d["d"].isin([0, 1])
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"treatment value {cell(raw[column].iloc[row])} is "
            + ("not a number of 0 or more" if switching else "not 0 or 1"),
            file=file,
            where=f"column {column}",
            row=row + 1,
            fix="code the treatment column 0 (not treated) or its level (a number above 0), "
            "or leave it empty where it is not known"
            if switching
            else "code the treatment column 0 (not treated) or 1 (treated) in every row",
        )
    d = d.sort_values(["unit", "period"])
    drop = d.groupby("unit")["d"].diff() < 0
    if drop.any() and not switching:
        hit = d[drop].iloc[0]
        raise DataError(
            f"treatment switches off for unit {hit['unit']} at period {hit['period']}",
            file=file,
            where=f"column {column}",
            row=int(hit["row"]),
            fix="treatment must not reverse once started (staggered adoption) for "
            + ", ".join(sorted({a.estimator.value for a in spec.analyses} - SWITCHING))
            + "; check the column, treat the unit as leaving the study, or analyse a "
            "treatment that pauses or stops with did_multiplegt_dyn alone",
        )
    return pd.DataFrame(
        {
            "unit": d["unit"].to_numpy(),
            "period": d["period"].to_numpy("int64"),
            "treatment": d["d"].to_numpy(float),
        }
    )
