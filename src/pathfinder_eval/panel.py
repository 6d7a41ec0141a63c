"""ValidatedPanel: design + outcome data → unit × period cells with treatment timing.

All checks of design against data live here, each a named step (`CHECKS`, run in order), and
every row left out is counted in the exclusions ledger with its reason. The caller's data are
never modified.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pathfinder_eval.data.catalogue import SCALES
from pathfinder_eval.data.ees import DERIVED_STATUSES, SYMBOLS, WITHHELD
from pathfinder_eval.data.la_lookup import la_table
from pathfinder_eval.data.lookup import among, positions
from pathfinder_eval.data.plausibility import STATUSES as PLAUSIBILITY_STATUSES
from pathfinder_eval.data.source import CELL_COLUMNS, DETAIL, Exclusion, OutcomeData
from pathfinder_eval.data.tidy import key_codes, repeated, text_by_code
from pathfinder_eval.errors import EstimationError, PanelError
from pathfinder_eval.spec import DesignSpec, Estimator, UnitLevel
from pathfinder_eval.timeaxis import PartialRule, onset, period_label

T = TypeVar("T")

STATUS_REASON = {
    **{s: f"{meaning} ({s})" for s, meaning in SYMBOLS.items()},
    **DERIVED_STATUSES,
    **PLAUSIBILITY_STATUSES,
    "incomplete": "group total incomplete: a member LA's value is suppressed or missing",
}


@dataclass(frozen=True)
class OutcomeInfo:
    """Display facts about an outcome: name, scale and polarity, and whether data exist."""

    id: str
    name: str
    scale: str
    polarity: str
    available: bool
    note: str = ""

    @property
    def unit_label(self) -> str:
        return {"percent": "%", "per_10000": "per 10,000 children", "ratio": "ratio"}.get(
            self.scale, ""
        )


# What leaves periods out by design, as messages name it.
LEFT_OUT_BY = (
    "the partly exposed period of partial_period_rule: transition, or a wave's transition_periods"
)

# The fix of an analysis the transition rule leaves nothing to estimate from.
OTHER_RULE = "class the partly exposed period by another rule (any_exposure, majority, full)"

# The ledger's reason for a treated unit left with no usable period before its start (treated
# from the data's first period, or its earlier values unusable).
NO_PERIOD_BEFORE = "treated unit with no usable period before its start"


@dataclass(frozen=True)
class ValidatedPanel:
    """Analysis-ready cells.

    cells: unit, period, outcome, y, numerator, denominator, weight, cohort (first treated
    period, NaN for comparison units), treated (0/1 in that cell), role ('treated'|'comparison'),
    and any of source.CELL_COLUMNS the reader supplied (ssw: within-cell sum of squares).
    units: unit, name, region, role, wave, start, cohort, exposure_fraction.
    """

    spec: DesignSpec
    cells: pd.DataFrame
    units: pd.DataFrame
    periods: tuple[int, ...]
    outcomes: tuple[OutcomeInfo, ...]
    exclusions: tuple[Exclusion, ...]
    data: OutcomeData
    _derived: dict[Hashable, Any] = field(default_factory=dict, init=False, repr=False)

    def outcome_cells(self, outcome_id: str) -> pd.DataFrame:
        return self.cells[self.cells["outcome"] == outcome_id].reset_index(drop=True)

    def covariate_values(
        self, cells: pd.DataFrame, names: tuple[str, ...], where: str
    ) -> pd.DataFrame:
        """A column per covariate for the rows of `cells` (one outcome's cells): a column of
        the cells, or another outcome's value in the same unit and period; NaN where none.
        `where`: the option naming them, for the error."""
        out = pd.DataFrame(index=cells.index)
        for name in names:
            if name in cells.columns:
                out[name] = pd.to_numeric(cells[name], errors="coerce")
            elif name in set(self.cells["outcome"]):
                other = self.outcome_cells(name).set_index(["unit", "period"])["y"]
                key = pd.MultiIndex.from_frame(cells[["unit", "period"]])
                out[name] = other.reindex(key).to_numpy()
            else:
                raise EstimationError(
                    f"covariate {name!r} is neither a column of the cells nor an outcome",
                    where=where,
                    fix="name a cell column or another outcome of the design",
                )
        return out

    def unit_codes(self, outcome_id: str) -> tuple[np.ndarray, pd.Index]:
        """The units of outcome_cells(outcome_id), row by row, as codes into their sorted
        distinct ids (pd.factorize with sort=True), made once per panel and outcome: the
        analyses of an outcome each need them (read-only)."""

        def build() -> tuple[np.ndarray, pd.Index]:
            codes, names = pd.factorize(self.outcome_cells(outcome_id)["unit"], sort=True)
            codes.flags.writeable = False
            return codes, names

        return self.derived(("unit codes", outcome_id), build)

    def derived(self, key: Hashable, build: Callable[[], T]) -> T:
        """`build()` once per panel and key: a read-only view that several analyses of one
        outcome share (the panel is frozen, and `replace` starts a new panel afresh)."""
        if key not in self._derived:
            self._derived[key] = build()
        return self._derived[key]

    def period_label(self, ordinal: int) -> str:
        return period_label(self.spec.time.axis, ordinal)

    def left_out_by_design(
        self, units: np.ndarray, periods: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(n, T) the cells of `units` × `periods` the design leaves out (the partly exposed
        period under the transition rule, a wave's transition periods): missing there is the
        design's, not a gap in the data; and (n,) 1 for a unit whose left-out partly exposed
        period is the one before its first treated period, so that period is compared with
        the one before it. Both follow the rollout's dates, not the unit table's cohorts (a
        placebo in time moves those, not the periods the design left out)."""
        n = len(units)
        rule, axis = self.spec.time.partial_period_rule, self.spec.time.axis
        if "wave" not in self.units.columns or not any(
            w.transition_periods or onset(axis, w.start, rule).transition is not None
            for w in self.spec.rollout
        ):  # nothing left out by design
            return np.zeros((n, len(periods)), dtype=bool), np.zeros(n, dtype=np.int64)
        info = self.units.set_index("unit").reindex(units)
        part, first, k = np.full(n, np.nan), np.full(n, np.nan), np.zeros(n)
        treated = (info["role"] == "treated").to_numpy()
        for wave in self.spec.rollout:
            rows = treated & (info["wave"] == wave.wave).to_numpy()
            on = onset(axis, wave.start, rule)
            part[rows] = np.nan if on.transition is None else on.transition
            first[rows], k[rows] = on.first_treated, wave.transition_periods
        at = np.asarray(periods, dtype=float)[None, :]
        gap = (at == part[:, None]) | ((at >= first[:, None]) & (at < (first + k)[:, None]))
        partly = part == info["cohort"].to_numpy(float) - 1
        return gap, partly.astype(np.int64)

    def partly_exposed_treated(self) -> list[str]:
        """The treated units whose partly exposed period the design leaves out (the
        transition rule), so their period before the first treated one is not in the data."""
        treated = self.units.loc[self.units["role"] == "treated", "unit"].to_numpy(dtype=object)
        _, partly = self.left_out_by_design(treated, np.array(self.periods, dtype=float))
        return [str(u) for u in treated[partly == 1]]

    def unit_values(self, name: str, units: np.ndarray, where: str, fix: str) -> np.ndarray:
        """Each of `units`' value of the unit-table column `name` (region, a unit column):
        refused when the column is absent or a unit has no value ("" is no value either, not
        one shared group). `where`: the design path in errors; `fix`: what to do when a value
        is missing."""
        if name not in self.units.columns:
            raise EstimationError(
                f"{name!r} is not a column of the unit table",
                where=where,
                fix=f"use one of {', '.join(map(str, self.units.columns))}",
            )
        lookup = self.units.set_index("unit")[name].reindex(units)
        missing = lookup.isna() | (lookup.astype(str) == "")
        if missing.any():
            which = "every unit" if missing.all() else f"unit {lookup.index[missing][0]}"
            raise EstimationError(f"{name!r} is missing for {which}", where=where, fix=fix)
        return lookup.to_numpy()

    def cluster_codes(self, name: str, units: np.ndarray) -> np.ndarray | None:
        """Integer codes of `units`' clusters for `inference.cluster` = name, a column of the
        unit table such as region (None: cluster by unit)."""
        if name in ("unit", ""):
            return None
        values = self.unit_values(
            name,
            units,
            "inference.cluster",
            f"give every unit its {name} (e.g. the data's {name} column) or cluster by unit",
        )
        codes, values = pd.factorize(values)
        if len(values) < 2:
            raise EstimationError(
                f"cluster variable {name!r} is {values[0]!r} for every unit: a clustered "
                "variance needs two clusters or more",
                where="inference.cluster",
                fix=f"give each unit its {name} (e.g. the data's region column) or cluster by unit",
            )
        return codes


OutcomeLookup = Callable[[str], OutcomeInfo]


def _within_treated(spec: DesignSpec) -> bool:
    """Whether every analysis of the design compares treated LAs with each other (a continuous
    dose with the lowest-dose LAs as comparison; de Chaisemartin & D'Haultfœuille's LAs not
    yet switched), so none needs a comparison pool."""
    analyses = spec.analyses
    return bool(analyses) and all(
        (
            a.estimator is Estimator.CONTINUOUS_DID
            and a.options.get("control_group") == "lowest_dose"
        )
        or a.estimator is Estimator.DID_MULTIPLEGT_DYN
        for a in analyses
    )


STEPPED_WEDGE = (Estimator.STEPPED_WEDGE, Estimator.STEPPED_WEDGE_GEE, Estimator.STEPPED_WEDGE_GLMM)


def _keeps_always_treated(spec: DesignSpec) -> bool:
    """Whether clusters treated in every period they have stay in: the stepped-wedge models
    use them (their cells inform the period effects and, through the cluster effects, the
    intervention effect), as lme4 or a GEE on the same records would; a DiD has nothing to
    compare them with. A descriptive analysis fits nothing, so it does not count."""
    fitted = [a for a in spec.analyses if a.estimator is not Estimator.DESCRIPTIVE]
    return bool(fitted) and all(a.estimator in STEPPED_WEDGE for a in fitted)


# The unit table's columns as the checks fill them (unit_rows: each column's values)
UNIT_COLUMNS = ("unit", "role", "wave", "start", "cohort", "transition", "exposure_fraction")


def _unit_rows(
    earlier: dict[str, tuple[Any, ...]], units: list[str], **shared: Any
) -> dict[str, tuple[Any, ...]]:
    """`earlier` rows of the unit table and after them one per unit of `units`, each with the
    `shared` values of the other UNIT_COLUMNS."""
    added = {"unit": tuple(units), **{c: (v,) * len(units) for c, v in shared.items()}}
    return {c: (*earlier.get(c, ()), *added[c]) for c in UNIT_COLUMNS}


@dataclass(frozen=True)
class PanelDraft:
    """The panel as the checks build it: the long `frame` of usable and not-yet-excluded rows,
    the exclusions `ledger`, unit names and regions, each outcome's description, the treated
    units' rows (`unit_rows`), the cells in transition periods, and finally the `cells` and
    outcome `infos` of the ValidatedPanel."""

    spec: DesignSpec
    data: OutcomeData
    frame: pd.DataFrame
    ledger: tuple[Exclusion, ...]
    described: dict[str, OutcomeInfo]
    unit_names: dict[str, str] = field(default_factory=dict)
    unit_regions: dict[str, str] = field(default_factory=dict)
    unit_rows: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # UNIT_COLUMNS
    in_transition: tuple[tuple[str, int], ...] = ()
    cells: pd.DataFrame = field(default_factory=pd.DataFrame)
    infos: tuple[OutcomeInfo, ...] = ()

    def drop(self, mask: pd.Series, reason: str, stage: str = "panel") -> PanelDraft:
        """Without the masked rows, each counted per outcome in the ledger."""
        ledger = list(self.ledger)
        frame = _drop(self.frame, mask, reason, ledger, stage, self.data.kind == "records")
        return replace(self, frame=frame, ledger=tuple(ledger))


@dataclass(frozen=True)
class Check:
    """One named step of building the panel: it raises PanelError naming what to fix, or
    returns the draft with rows excluded (and counted) or facts added."""

    name: str
    doc: str
    run: Callable[[PanelDraft], PanelDraft]


def cell_events(cells: pd.DataFrame) -> pd.Series:
    """Each cell's event count as the count models read it: the `numerator` where given,
    else y × denominator (unrounded; NaN where neither is known)."""
    events = cells["y"] * cells["denominator"]
    if "numerator" in cells:
        return cells["numerator"].where(cells["numerator"].notna(), events)
    return events


def build_panel(spec: DesignSpec, data: OutcomeData, describe: OutcomeLookup) -> ValidatedPanel:
    """Run the named checks (CHECKS, in order) and assemble the panel; raises PanelError
    naming what to fix. The caller's data are not modified."""
    frame = data.frame.copy()
    frame["period"] = frame["period"].astype("int64")
    draft = PanelDraft(
        spec, data, frame, tuple(data.exclusions), {o.id: describe(o.id) for o in spec.outcomes}
    )
    for check in CHECKS:
        draft = check.run(draft)
    return ValidatedPanel(
        spec,
        draft.cells,
        _unit_table(draft),
        tuple(sorted(draft.cells["period"].unique().tolist())),
        draft.infos,
        draft.ledger,
        draft.data,
    )


def _unique_unit_period(draft: PanelDraft) -> PanelDraft:
    _check_unique(draft)
    return draft


def _design_window(draft: PanelDraft) -> PanelDraft:
    """Drop rows of outcomes the design does not use and periods outside its window."""
    spec, frame = draft.spec, draft.frame
    wanted = {o.id for o in spec.outcomes}
    draft = draft.drop(~frame["outcome"].isin(wanted), "outcome not used by the design")
    lo, hi = spec.time.first, spec.time.last
    if lo is None and hi is None:
        return draft
    frame = draft.frame
    outside = (frame["period"] < (lo if lo is not None else -(10**9))) | (
        frame["period"] > (hi if hi is not None else 10**9)
    )
    window = f"{lo if lo is not None else 'start'}–{hi if hi is not None else 'end'}"
    return draft.drop(outside, f"outside the design's time window ({window})")


def _units_and_groups(draft: PanelDraft) -> PanelDraft:
    """Unit names and regions; for a regional design, member LAs summed into group cells."""
    spec, data, frame = draft.spec, draft.data, draft.frame
    unit_names: dict[str, str] = {}
    if spec.unit_level is UnitLevel.LOCAL_AUTHORITY:
        table = la_table()
        unit_names = dict(zip(table["la_code"], table["la_name"], strict=True))
    ids = data.units["unit"].tolist()
    unit_names.update(zip(ids, data.units["name"].tolist(), strict=True))
    unit_regions = dict(zip(ids, data.units["region"].tolist(), strict=False))
    if spec.unit_level is UnitLevel.REGION:
        factors = {k: SCALES.get(v.scale, 1.0) for k, v in draft.described.items()}
        frame = _aggregate_groups(spec, frame, factors)
        for name, group in spec.groups.items():
            # a group lies in its members' region when they share one (Greater Manchester in
            # the North West): regional shocks are then learned from that region's other LAs
            regions = {unit_regions.get(m) for m in group.members}
            one = regions.pop() if len(regions) == 1 else None
            unit_names[name], unit_regions[name] = name, one if one else name
    return replace(draft, frame=frame, unit_names=unit_names, unit_regions=unit_regions)


def _design_units_present(draft: PanelDraft) -> PanelDraft:
    present = pd.Index(draft.frame["unit"].unique())
    starts = pd.Index(list(draft.spec.start_of()), dtype=object)
    named = pd.Index(list(set(starts) | set(draft.spec.comparison.units)), dtype=object)
    if _may_fold_together(present.astype(str), named[~among(named, present)].astype(str)):
        _same_when_folded(draft, present.tolist(), set(named))
    missing = starts[~among(starts, present)]
    if len(missing):
        raise _no_usable_rows(draft, missing[0])
    return draft


def _no_usable_rows(draft: PanelDraft, unit: str) -> PanelError:
    """The error for a treated unit of the design with no rows, or none usable (the ledger's
    reasons say why)."""
    label = draft.unit_names.get(unit, unit)
    left = [e for e in draft.ledger if unit in e.units]  # read, then all left out
    what = "LA" if draft.spec.unit_level is UnitLevel.LOCAL_AUTHORITY else "unit"
    return PanelError(
        f"treated unit {label} ({unit}) named in the design has no usable rows: "
        + "; ".join(f"rows left out as {e.reason}" for e in left[:3])
        if left
        else f"treated unit {label} ({unit}) named in the design has no rows in the data",
        file=draft.spec.path,
        where="rollout",
        fix=f"supply usable rows for this {what}, or remove it from the rollout",
    )


def _fold(unit: object) -> str:
    """An identifier with case and runs of spaces ignored: 'LA 05' and ' la  05' are one."""
    return " ".join(str(unit).split()).casefold()


# Python's str.split() whitespace among ASCII characters
_ASCII_SPACE = "[\t\n\v\f\r\x1c-\x1f ]"


def _may_fold_together(*parts: Iterable[str]) -> bool:
    """Whether two of these distinct identifiers (no two parts share one) might be one once
    case and spaces are ignored: a cheap test, in pyarrow, that lets a national file's units
    skip the exact one. ASCII identifiers are lowered with every space removed, which only
    merges more of them; any other text (casefold maps 'ß' to 'ss') is left to the exact
    test."""
    arr = pa.concat_arrays(
        [pa.array(p if isinstance(p, pd.Index) else list(p), type=pa.string()) for p in parts]
    )
    if not len(arr):
        return False
    if not pc.all(pc.string_is_ascii(arr)).as_py():
        return True
    coarse = pc.ascii_lower(pc.replace_substring_regex(arr, _ASCII_SPACE, ""))
    return pc.count_distinct(coarse).as_py() < len(arr)


def _same_when_folded(draft: PanelDraft, present: list[Any], named: set[str]) -> None:
    """Refuse units that differ only in case or spaces: from the design's ('c1' in the data,
    'C1' in the design), or from one another ('LA05' and 'la05': two comparison units)."""
    keys = [_fold(u) for u in present]
    folded = {_fold(u): u for u in named}
    clash = [(u, k) for u, k in zip(present, keys, strict=True) if k in folded and u not in named]
    if clash:  # 'c1' in the data, 'C1' in the design
        unit, key = min(clash, key=lambda p: str(p[0]))
        raise PanelError(
            f"unit {unit!r} in the data differs from {folded[key]!r} in the design only "
            "in case or spaces, so it would be analysed as another (comparison) unit",
            file=draft.spec.path,
            where="rollout",
            fix="write each unit's identifier the same way in the data and the design",
        )
    if len(set(keys)) < len(keys):  # 'LA05' and 'la05': two comparison units
        seen: dict[str, Any] = {}
        for unit, key in sorted(zip(present, keys, strict=True), key=lambda p: str(p[0])):
            if key in seen:
                raise PanelError(
                    f"units {seen[key]!r} and {unit!r} in the data differ only in case or "
                    "spaces, so they would be analysed as two units",
                    file=draft.spec.path,
                    where="data",
                    fix="write each unit's identifier the same way on every row",
                )
            seen[key] = unit


def _start_within_data(draft: PanelDraft) -> PanelDraft:
    """Each treated unit's first treated period, its transition periods and, under the
    transition rule, its partly exposed period dropped. A unit treated from the data's first
    period (or before) has no period to compare with: its rows are left out and counted, as
    when its earlier values are unusable (`_cells`); an error if no treated unit is left."""
    spec = draft.spec
    data_periods = sorted(draft.frame["period"].unique().tolist())
    rule = spec.time.partial_period_rule
    in_transition: list[tuple[str, int]] = []
    unit_rows: dict[str, tuple[Any, ...]] = {}
    no_before: list[tuple[str, Any, int]] = []  # (unit, start, first treated period)
    onsets: dict[Any, Any] = {}  # many waves share a start
    keep_all = _keeps_always_treated(spec)
    partly: list[tuple[str, int]] = []  # (unit, its partly exposed period)
    for wave in spec.rollout:  # a wave's units share its start: one onset for them all
        start, units = wave.start, wave.units
        if start not in onsets:
            onsets[start] = onset(spec.time.axis, start, rule)
        on = onsets[start]
        if on.first_treated <= data_periods[0] and not keep_all:
            no_before += [(unit, start, on.first_treated) for unit in units]
            continue
        if on.first_treated > data_periods[-1]:
            raise _start_outside(draft, units[0], start, on.first_treated, data_periods)
        unit_rows = _unit_rows(
            unit_rows,
            units,
            role="treated",
            wave=wave.wave,
            start=str(start),
            cohort=on.first_treated,
            transition=on.transition,
            exposure_fraction=on.exposure_fraction,
        )
        if skip := wave.transition_periods:
            # calendar periods: a period missing from the data is still one of the k
            later = [p for p in data_periods if on.first_treated <= p < on.first_treated + skip]
            in_transition += [(unit, p) for unit in units for p in later]
        if rule is PartialRule.TRANSITION and on.transition is not None:
            partly += [(unit, on.transition) for unit in units]
    if partly:  # one ledger row for all units, not one each
        frame = draft.frame
        cell = pd.Series(list(zip(frame["unit"], frame["period"], strict=True)), index=frame.index)
        draft = draft.drop(cell.isin(partly), "partly exposed period dropped (transition rule)")
    if no_before:
        if not unit_rows.get("unit"):
            raise _start_outside(draft, *no_before[0], data_periods)
        frame = draft.frame
        draft = draft.drop(
            frame["unit"].isin([u for u, _, _ in no_before]),
            NO_PERIOD_BEFORE,
        )
    return replace(draft, unit_rows=unit_rows, in_transition=tuple(in_transition))


def _start_outside(
    draft: PanelDraft, unit: str, start: Any, first_treated: int, data_periods: list[int]
) -> PanelError:
    """The error for a start the data cannot analyse: after the data's last period, or (for
    every treated unit) in or before its first."""
    axis = draft.spec.time.axis
    where = "after its last period" if first_treated > data_periods[-1] else "no period before it"
    return PanelError(
        f"start {start} of {draft.unit_names.get(unit, unit)} maps to period "
        f"{period_label(axis, first_treated)}, outside the data: {where} "
        f"({period_label(axis, data_periods[0])}–{period_label(axis, data_periods[-1])})",
        file=draft.spec.path,
        where="rollout",
        fix="correct the start date or supply data "
        "covering at least one period before and one period from the start",
    )


def _transition_periods(draft: PanelDraft) -> PanelDraft:
    if not draft.in_transition:
        return draft
    frame = draft.frame
    cell = pd.MultiIndex.from_frame(frame[["unit", "period"]])
    transition = pd.Series(cell.isin(list(draft.in_transition)), index=frame.index)
    return draft.drop(transition, "transition period excluded by design")


def _comparison_pool(draft: PanelDraft) -> PanelDraft:
    """Comparison units: the design's pool less its exclusions; other units dropped."""
    spec, starts = draft.spec, pd.Index(list(draft.spec.start_of()), dtype=object)
    codes, names = pd.factorize(draft.frame["unit"], use_na_sentinel=False)
    # factorised once, then each unit tested once, not each row
    if spec.comparison.pool == "list":  # a unit listed by hand and absent was passed over
        listed = pd.Index(spec.comparison.units, dtype=object)
        absent = listed[~among(listed, names)].tolist()
        if absent:
            u = absent[0]
            raise PanelError(
                f"comparison unit {draft.unit_names.get(u, u)} ({u}) named in the design has "
                "no rows in the data"
                + (
                    f" ({len(absent) - 1} more: {', '.join(absent[1:4])})"
                    if len(absent) > 1
                    else ""
                ),
                file=spec.path,
                where="comparison.units",
                fix="supply its rows, or remove it from comparison.units",
            )
    treated = among(names, starts)
    comparison = _comparison_units(spec, names[~treated])
    index = draft.frame.index
    not_pool = ~_unit_in(codes, treated | among(names, comparison), index)
    excluded = not_pool & _unit_in(codes, among(names, spec.comparison.exclude), index)
    draft = draft.drop(excluded, spec.comparison.exclude_reason)
    draft = draft.drop(not_pool[~excluded], "not in the design's comparison pool")
    rows = _unit_rows(
        draft.unit_rows,
        comparison,
        role="comparison",
        wave="",
        start="",
        cohort=np.nan,
        transition=None,
        exposure_fraction=0.0,
    )
    return replace(draft, unit_rows=rows)


def _unit_in(codes: np.ndarray, hit: np.ndarray, index: pd.Index) -> pd.Series:
    """Rows (unit `codes` into the distinct units, as pd.factorize gives) whose unit is a `hit`
    (one flag per distinct unit): tested once per unit, not per row."""
    return pd.Series(hit[codes] if len(codes) else np.zeros(0, bool), index=index)


def _usable_values(draft: PanelDraft) -> PanelDraft:
    """Rows with no value or a status (suppressed, not available, implausible ...) excluded,
    counted per status and outcome with the first row's detail where the reader gave one."""
    frame, ledger = draft.frame, list(draft.ledger)
    unusable = frame["value"].isna() | (frame["status"] != "")
    for status, part in frame[unusable].groupby("status", sort=True):
        reason = STATUS_REASON.get(str(status), f"unusable value ({status or 'blank'})")
        for outcome, sub in part.groupby("outcome", sort=True):
            first = next((d for d in sub.get(DETAIL, ()) if isinstance(d, str) and d), "")
            ledger.append(
                Exclusion(
                    f"{reason} (first: {first})" if first else reason,
                    len(sub),
                    tuple(sorted(set(sub["unit"]))),
                    str(outcome),
                    "panel",
                )
            )
    draft = replace(draft, frame=frame[~unusable], ledger=tuple(ledger))
    if unusable.any():  # a treated unit all of whose values are unusable: left out, as R's
        usable = set(draft.frame["unit"].unique())  # did leaves it, and said up front (the
        # report listed it as treated); a plan's withheld values are not the data's
        had = set(frame.loc[unusable & (frame["status"] != WITHHELD), "unit"].unique())
        lost = [u for u in draft.spec.start_of() if u in had and u not in usable]
        if lost:
            notes = tuple(_no_usable_values(draft, u) for u in lost)
            draft = replace(draft, data=replace(draft.data, notes=draft.data.notes + notes))
    return draft


def _no_usable_values(draft: PanelDraft, unit: str) -> str:
    """The report's note on a treated unit none of whose values can be used."""
    why = "; ".join(e.reason for e in draft.ledger if unit in e.units)
    return (
        f"Treated unit {draft.unit_names.get(unit, unit)} ({unit}) has no usable values (left "
        f"out as {why}): every analysis uses the other treated units."
    )


def _cells(draft: PanelDraft) -> PanelDraft:
    """Analysis cells: y, counts, weight, cohort, treated (0/1) and role, sorted by outcome,
    unit and period (one lexsort of integer codes from sorted factorisations, and one take
    of the frame's numbers in that order; its text rebuilt from the codes, which is several
    times faster than taking millions of strings)."""
    rows = draft.unit_rows
    frame = draft.frame
    codes, names = pd.factorize(frame["unit"], sort=True)
    outcome_codes, outcomes = pd.factorize(frame["outcome"], sort=True)
    # every unit left is treated or a comparison: its row of the unit table (−1: none)
    at = positions(names, list(rows.get("unit", ())))
    role_codes, roles = pd.factorize(np.asarray(rows.get("role", ()), dtype=object))
    unit_role = np.append(role_codes, -1)[at]
    period = frame["period"].to_numpy(np.int64)  # (object after a regional design's sums)
    cohort = np.append(np.asarray(rows.get("cohort", ()), float), np.nan)[at][codes]
    treated = period >= cohort
    # a treated unit with no usable period before its start (for an outcome) has nothing to
    # compare its treated periods with: its rows would count it as treated while no estimator
    # can use it, so they are left out and counted
    is_treated = np.append(roles == "treated", False)[unit_role][codes]
    unit_outcome = codes * (int(outcome_codes.max(initial=-1)) + 1) + outcome_codes
    seen_before = np.bincount(
        unit_outcome[is_treated & ~treated], minlength=int(unit_outcome.max(initial=-1)) + 1
    )
    no_before = is_treated & (seen_before[unit_outcome] == 0)
    keep = np.arange(len(frame))
    if no_before.any() and not _keeps_always_treated(draft.spec):
        draft = draft.drop(pd.Series(no_before, index=frame.index), NO_PERIOD_BEFORE)
        keep = np.flatnonzero(~no_before)
    order = keep[np.lexsort((period[keep], codes[keep], outcome_codes[keep]))]
    numbers = ["period", "value", "numerator", "denominator"]
    numbers += [c for c in CELL_COLUMNS if c in frame.columns]
    cells = frame[numbers].take(order).rename(columns={"value": "y"}).reset_index(drop=True)
    for position, column, distinct, row_codes in (
        (0, "unit", names, codes),
        (2, "outcome", outcomes, outcome_codes),
    ):
        # typed as the frame's column (object after a regional design's sums): an inserted
        # array would be re-typed
        dtype = frame[column].dtype
        text = text_by_code(pd.Index(distinct, dtype=dtype), row_codes[order])
        cells.insert(position, column, pd.Series(text, dtype=dtype))
    cells["weight"] = cells["denominator"].where(cells["denominator"] > 0, 1.0).fillna(1.0)
    cells["cohort"] = cohort[order]
    cells["treated"] = treated[order].astype("int64")
    cells["role"] = text_by_code(list(roles), unit_role[codes[order]])
    return replace(draft, cells=cells)


def _outcomes_supported(draft: PanelDraft) -> PanelDraft:
    """Each required outcome has usable rows (an optional one without is marked unavailable),
    and at least comparison.min_units comparison units."""
    spec, cells = draft.spec, draft.cells
    infos = []
    for outcome in spec.outcomes:
        info = draft.described[outcome.id]
        sub = cells[cells["outcome"] == outcome.id]
        if sub.empty:
            if outcome.required:
                left_out = [e for e in draft.ledger if e.outcome == outcome.id]
                why = "; ".join(f"{e.count} {e.reason}" for e in left_out[:3])
                raise PanelError(
                    f"outcome {outcome.id!r} has no usable rows in the data"
                    + (f" (left out: {why})" if why else ""),
                    file=spec.path,
                    where=f"outcomes ({outcome.id})",
                    fix="supply data for it, or mark it 'required: false' in the design",
                )
            infos.append(
                OutcomeInfo(
                    info.id,
                    info.name,
                    info.scale,
                    info.polarity,
                    False,
                    "not available in the data supplied",
                )
            )
            continue
        n_comp = sub.loc[sub["role"] == "comparison", "unit"].nunique()
        if spec.comparison.pool == "not_yet_treated":
            later = sub["cohort"] > sub["cohort"].min()
            n_comp += sub.loc[later, "unit"].nunique()
        if n_comp < spec.comparison.min_units and not _within_treated(spec):
            starts = sub.loc[sub["role"] == "treated", "cohort"].dropna().unique()
            if n_comp == 0 and len(starts) == 1:  # lowering min_units cannot help
                raise PanelError(
                    f"outcome {outcome.id!r} has no comparison: every unit with data starts "
                    f"in the same period ({period_label(spec.time.axis, int(starts[0]))}) and "
                    "none is untreated, so the effect cannot be told from the period effects",
                    file=spec.path,
                    where="rollout" if spec.path else "argument first_treated",
                    fix="stagger the starts (a stepped wedge needs clusters not yet started) or "
                    "include units never treated",
                )
            raise PanelError(
                f"outcome {outcome.id!r} has {n_comp} comparison units with data, fewer than "
                f"comparison.min_units = {spec.comparison.min_units}",
                file=spec.path,
                where="comparison",
                fix="widen the comparison pool or lower comparison.min_units"
                if spec.path
                else "include units never treated, or treated later than the others",
            )
        infos.append(info)
    return replace(draft, infos=tuple(infos))


def _neither_usable(
    draft: PanelDraft, outcome: str, minus: str, left: pd.DataFrame, right: pd.DataFrame
) -> set[tuple[Any, int]]:
    """Unit-periods of the panel's units and periods that the data hold a row for, for either
    outcome, where neither outcome has a usable cell: the contrast has no value there either
    (each outcome's own exclusion counts its row, not the contrast's)."""
    raw = draft.data.frame
    raw = raw[raw["outcome"].isin([outcome, minus])]
    units, periods = set(draft.cells["unit"]), set(draft.cells["period"].tolist())
    seen = {
        (u, int(p))
        for u, p in zip(raw["unit"], raw["period"], strict=True)
        if u in units and int(p) in periods
    }
    usable = set(zip(left["unit"], left["period"].tolist(), strict=True))
    usable |= set(zip(right["unit"], right["period"].tolist(), strict=True))
    return seen - usable


def _contrasts(draft: PanelDraft) -> PanelDraft:
    """Each triple-difference contrast as an outcome of its own: in every unit and period
    with both values, `outcome` minus `minus`, without counts; its denominator is the
    difference's effective size 1/(1/d₁ + 1/d₀) (unknown when either is), which scales its
    noise in the pooled variance and weights weighted fits. The cells of either outcome
    without the other, and the unit-periods with neither, are counted in the ledger against
    the contrast."""
    spec, cells = draft.spec, draft.cells
    if not spec.contrasts:
        return draft
    infos = {i.id: i for i in draft.infos}
    parts, ledger, added = [cells], list(draft.ledger), []
    periods = pd.factorize(cells["period"])[0]
    cell_key = pd.factorize(cells["unit"])[0].astype(np.int64) * (periods.max() + 1) + periods
    for c in spec.contrasts:
        a, b = infos[c.outcome], infos[c.minus]
        if a.scale != b.scale:
            raise PanelError(
                f"contrast {c.id!r}: {c.outcome!r} is on the {a.scale} scale and {c.minus!r} "
                f"on the {b.scale} scale, so their difference has no meaning",
                file=spec.path,
                where=f"contrasts ({c.id})",
                fix="contrast two outcomes measured on the same scale",
            )
        is_left = (cells["outcome"] == c.outcome).to_numpy()
        is_right = (cells["outcome"] == c.minus).to_numpy()
        left, right = cells[is_left], cells[is_right]
        in_right = np.isin(cell_key[is_left], cell_key[is_right])
        in_left = np.isin(cell_key[is_right], cell_key[is_left])
        for side, keep, name, other in (
            (left, in_right, c.outcome, c.minus),
            (right, in_left, c.minus, c.outcome),
        ):
            if not keep.all():
                ledger.append(
                    Exclusion(
                        f"{name} without a usable {other} value in the same unit and period",
                        int((~keep).sum()),
                        tuple(sorted(set(side.loc[~keep, "unit"]))),
                        c.id,
                        "panel",
                    )
                )
        neither = _neither_usable(draft, c.outcome, c.minus, left, right)
        if neither:
            ledger.append(
                Exclusion(
                    f"neither {c.outcome} nor {c.minus} usable in the same unit and period",
                    len(neither),
                    tuple(sorted({unit for unit, _ in neither})),
                    c.id,
                    "panel",
                )
            )
        # cells are sorted by outcome, unit and period, so the matched rows line up
        both, minus = left[in_right], right[in_left]
        d1 = both["denominator"].to_numpy(float)
        d0 = minus["denominator"].to_numpy(float)
        # the noise of a difference of two rates scales with 1/d₁ + 1/d₀: its effective size
        size = pd.Series(1.0 / (1.0 / d1 + 1.0 / d0), index=both.index)
        out = both.assign(
            outcome=c.id,
            y=both["y"].to_numpy(float) - minus["y"].to_numpy(float),
            numerator=np.nan,
            denominator=size,
            weight=size.where(size > 0, 1.0).fillna(1.0),
        )
        for col in CELL_COLUMNS:
            if col in out.columns:
                out[col] = np.nan
        parts.append(out[cells.columns])
        available = a.available and b.available and len(out) > 0
        added.append(
            OutcomeInfo(
                c.id,
                c.name or f"{a.name} minus {b.name} (within-unit contrast)",
                a.scale,
                a.polarity,
                available,
                "" if available else "no unit and period has both outcomes",
            )
        )
    # the contrasts' cells follow the outcomes' (each outcome's sorted by unit and period)
    merged = pd.concat(parts, ignore_index=True)
    return replace(draft, cells=merged, infos=(*draft.infos, *added), ledger=tuple(ledger))


def _unit_table(draft: PanelDraft) -> pd.DataFrame:
    rows = draft.unit_rows
    units = pd.DataFrame({c: list(v) for c, v in rows.items()} if rows.get("unit") else {})
    given = draft.data.units.drop_duplicates("unit", keep="last").set_index("unit")
    ids = units["unit"]
    row = positions(ids, given.index)  # each unit's row of the data's unit table (−1: none)
    row[among(ids, list(draft.spec.groups))] = -1  # a group's own values come from lookups
    names = _unit_values(ids, row, given.get("name"), draft.unit_names)
    units.insert(1, "name", names.where(names.notna(), ids))
    regions = _unit_values(ids, row, given.get("region"), draft.unit_regions)
    units.insert(2, "region", regions.fillna(""))
    for c in draft.spec.data.columns.unit_columns:
        values = given[c].to_dict()
        for name, group in draft.spec.groups.items():  # a group: its members' shared value
            shared = {v for m in group.members if pd.notna(v := values.get(m))}
            if len(shared) > 1:
                a, b = sorted(map(str, shared))[:2]
                raise PanelError(
                    f"the members of group {name} have different {c} ({a!r} and {b!r}), so "
                    f"the group has no one {c}",
                    file=draft.spec.path,
                    where="data.columns.unit_columns",
                    fix=f"cluster by a column the group's members share, or leave {c} out",
                )
            values[name] = shared.pop() if shared else None
        units[c] = units["unit"].map(values)
    return units


def _unit_values(
    ids: pd.Series, row: np.ndarray, given: pd.Series | None, lookup: dict[str, str]
) -> pd.Series:
    """`lookup.get(unit)` for each unit of `ids`, read from `given` (the data's value per
    unit, which `lookup` holds too) at the unit's `row` of it where it has one (−1: none, or
    a group): one vectorised lookup for the many units of a long file, the dictionary for the
    few others."""
    values = np.full(len(ids), None, dtype=object)
    other = (row < 0) if given is not None else np.ones(len(ids), dtype=bool)
    if given is not None:
        values[~other] = given.to_numpy(object)[row[~other]]
    values[other] = [lookup.get(u) for u in ids[other]]
    return pd.Series(values, index=ids.index)


CHECKS: tuple[Check, ...] = (
    Check(
        "unique_unit_period",
        "each unit has at most one row per period and outcome",
        _unique_unit_period,
    ),
    Check("design_window", "rows of the design's outcomes and time window", _design_window),
    Check("units_and_groups", "unit names, regions and group totals", _units_and_groups),
    Check(
        "design_units_present",
        "every treated unit named in the design appears in the data",
        _design_units_present,
    ),
    Check(
        "start_within_data",
        "every start date falls by the last data period; units treated from the first "
        "period are left out (no period before their start)",
        _start_within_data,
    ),
    Check("transition_periods", "transition periods are excluded", _transition_periods),
    Check("comparison_pool", "comparison units are the design's pool", _comparison_pool),
    Check(
        "usable_values",
        "unusable values (symbols, missing, implausible) are excluded",
        _usable_values,
    ),
    Check("cells", "analysis cells with treatment timing", _cells),
    Check(
        "outcomes_supported",
        "each required outcome has usable rows and at least comparison.min_units comparison units",
        _outcomes_supported,
    ),
    Check(
        "contrasts",
        "triple-difference contrasts: one outcome minus an untargeted group's, per unit and period",
        _contrasts,
    ),
)


def _check_unique(draft: PanelDraft) -> None:
    """One row per unit, period and outcome (tidy files are checked as they are read, by their
    own rows and labels: data/load.py), the unit and period named as the report names them."""
    frame = draft.frame
    key = key_codes(frame["unit"], frame["period"], frame["outcome"])
    dup = pd.Series(repeated(key), index=frame.index)
    if dup.any():
        first = frame[dup].iloc[0]
        unit = str(first["unit"])
        names = draft.data.units.set_index("unit")["name"] if "name" in draft.data.units else {}
        label = str(names.get(unit, unit))
        raise PanelError(
            f"{int(dup.sum())} rows repeat a unit-period (first: unit {label}"
            + (f" ({unit})" if label != unit else "")
            + f", period {period_label(draft.spec.time.axis, int(first['period']))}, outcome "
            f"{first['outcome']})",
            file=str(first["source"]),
            where="columns unit, period",
            row=int(first.name) + 1 if isinstance(first.name, int | np.integer) else None,
            fix="keep one row per unit and period (aggregate or remove duplicates)",
        )


def _drop(
    frame: pd.DataFrame,
    mask: pd.Series,
    reason: str,
    ledger: list[Exclusion],
    stage: str = "panel",
    records: bool = False,
) -> pd.DataFrame:
    """Remove masked rows, counting them per outcome in the ledger. With `records` (cells
    summarising individual records) a cell counts as its records, so the ledger counts rows
    of the file whichever stage left them out."""
    if not mask.any():
        return frame
    for outcome, part in frame[mask].groupby("outcome", sort=True):
        count = int(part["denominator"].sum()) if records else len(part)
        ledger.append(
            Exclusion(reason, count, tuple(sorted(set(part["unit"]))), str(outcome), stage)
        )
    return frame[~mask]


def _comparison_units(spec: DesignSpec, candidates: pd.Index) -> list[str]:
    """The comparison units among `candidates` (the distinct untreated units), sorted."""
    comp = spec.comparison
    if comp.pool == "statistical_neighbours" and not comp.neighbour_sets:
        raise PanelError(
            "the statistical neighbour pool has not been read from DfE's SN file",
            file=spec.path,
            where="comparison.pool",
            fix="run the design through pathfinder_eval.prepare/run or the CLI, which read it",
        )
    if comp.pool in ("list", "statistical_neighbours"):
        candidates = candidates[among(candidates, comp.units)]
    return sorted(candidates[~among(candidates, comp.exclude)].tolist())


def _aggregate_groups(
    spec: DesignSpec, frame: pd.DataFrame, factors: dict[str, float]
) -> pd.DataFrame:
    """Sum member LAs' numerators and denominators into group cells, unless the reader gave
    the group's own rows (DfE's regional figures for a whole region).

    A group total with a suppressed or missing member is marked `incomplete` (and so excluded
    and counted later), never silently understated.
    """
    member_of = {m: g for g, grp in spec.groups.items() for m in grp.members}
    is_member = frame["unit"].isin(member_of)
    given = set(frame["unit"]) & set(spec.groups)
    members = frame[is_member & ~frame["unit"].map(member_of).isin(given)].copy()
    members["group"] = members["unit"].map(member_of)
    rows = []
    for (group, period, outcome), part in members.groupby(["group", "period", "outcome"]):
        expected = len(spec.groups[group].members)
        ok = (part["status"] == "") & part["numerator"].notna() & part["denominator"].notna()
        complete = bool(ok.all()) and len(part) == expected
        num, den = part["numerator"].sum(), part["denominator"].sum()
        rows.append(
            {
                "unit": group,
                "period": period,
                "outcome": outcome,
                "numerator": num if complete else np.nan,
                "denominator": den if complete else np.nan,
                "value": np.nan,
                "status": "" if complete else "incomplete",
                "source": ";".join(sorted(set(part["source"]))),
            }
        )
    grouped = pd.DataFrame(rows, columns=frame.columns)
    grouped["value"] = (
        grouped["numerator"]
        / grouped["denominator"]
        * grouped["outcome"].map(factors).astype(float)
    )
    return pd.concat([frame[~is_member], grouped], ignore_index=True)
