"""LA harmonisation: apply the reorganisation rules in reorganisations.yaml to a long frame.

Units are DfE's three-digit `old_la_code`. Code-only changes need nothing; splits and
boundary breaks decide which rows form comparable series; every excluded row is counted in a
ledger so the report can say what was left out and why.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib.resources import files
from typing import NamedTuple

import numpy as np
import pandas as pd
import yaml

from pathfinder_eval.data.catalogue import load_catalogue
from pathfinder_eval.data.source import DETAIL, OFFICIAL_COLUMNS
from pathfinder_eval.errors import DataError

RULES = {
    "continuous": "one continuous series under the same code",
    "split": "new units analysed from their first year; the old unit's rows excluded",
    "break": "new units start a new series, old units excluded",
    "combined": "kept as one combined unit (workforce data only)",
}
NOT_EXISTING = ("z", "x")


class LedgerEntry(NamedTuple):
    """Rows excluded for one reason, and the units they belonged to."""

    reason: str
    count: int
    units: tuple[str, ...]


@dataclass(frozen=True)
class Reorganisation:
    """One reorganisation and the rule applied to it (see reorganisations.yaml)."""

    id: str
    name: str
    rule: str
    old_units: tuple[str, ...]
    new_units: tuple[str, ...]
    effective: str = ""
    first_period: int | None = None
    note: str = ""

    def __str__(self) -> str:
        """One line for the report's list of LA reorganisations handled."""
        when = f" ({self.effective})" if self.effective else ""
        old, new = ", ".join(self.old_units), ", ".join(self.new_units)
        change = f"{old} keeps its code" if old == new else f"{old} -> {new}"
        return f"{self.name}{when}: {change}; {RULES[self.rule]}"

    @property
    def units(self) -> frozenset[str]:
        """Every unit code the reorganisation touches."""
        return frozenset(self.old_units) | frozenset(self.new_units)


def load_reorganisations() -> tuple[Reorganisation, ...]:
    """The shipped reorganisations, in file order; every LA code must be in la_lookup.csv."""
    package = files("pathfinder_eval.data")
    text = (package / "reorganisations.yaml").read_text(encoding="utf-8")
    with (package / "la_lookup.csv").open(encoding="utf-8", newline="") as fh:
        known = {row["la_code"] for row in csv.DictReader(fh)}
    out = []
    for entry in yaml.safe_load(text):
        if entry.get("rule") not in RULES:
            raise DataError(
                f"unknown rule {entry.get('rule')!r}",
                file="reorganisations.yaml",
                where=str(entry.get("id")),
                fix=f"use one of {list(RULES)}",
            )
        codes = {c for c in [*entry["old_units"], *entry["new_units"]] if " / " not in c}
        if codes - known:
            raise DataError(
                f"LA code(s) {sorted(codes - known)} not in la_lookup.csv",
                file="reorganisations.yaml",
                where=str(entry["id"]),
                fix="use DfE three-digit old_la_code values (scripts/build_la_lookup.py)",
            )
        out.append(
            Reorganisation(
                id=entry["id"],
                name=entry["name"],
                rule=entry["rule"],
                old_units=tuple(entry["old_units"]),
                new_units=tuple(entry["new_units"]),
                effective=str(entry.get("effective", "")),
                first_period=entry.get("first_period"),
                note=str(entry.get("note", "")).strip(),
            )
        )
    return tuple(out)


def applicable_reorganisations(frame: pd.DataFrame) -> list[Reorganisation]:
    """The reorganisations whose units appear in `frame["unit"]`: the report's flag list."""
    present = set(frame["unit"])
    return [r for r in load_reorganisations() if r.units & present]


def harmonise(
    frame: pd.DataFrame, *, aggregate: bool = False
) -> tuple[pd.DataFrame, list[LedgerEntry]]:
    """Apply every reorganisation rule to a long LA frame; return a new frame and the ledger.

    1. Rows with status z or x for an LA that did not exist that year are excluded.
    2. split: the old unit's rows are excluded (default), or with `aggregate` the new units
       (and any combined return covering them) are summed into the old code.
    3. break: the old units' rows are excluded. continuous, combined: rows kept unchanged.
    Ledger counts equal the rows excluded; rows summed by `aggregate` are not exclusions.
    """
    missing = [c for c in OFFICIAL_COLUMNS if c not in frame.columns and c != DETAIL]
    if missing:
        raise DataError(
            f"frame lacks column(s) {', '.join(missing)}",
            where="harmonise",
            fix="pass the long frame from load_official",
        )
    reorgs = load_reorganisations()
    out = frame.copy()
    ledger: list[LedgerEntry] = []

    defunct = np.zeros(len(out), dtype=bool)
    for r in reorgs:
        if r.first_period is None:
            continue
        gone = out["unit"].isin(r.old_units) & (out["period"] >= r.first_period)
        early = out["unit"].isin(r.new_units) & (out["period"] < r.first_period)
        defunct |= ((gone | early) & out["status"].isin(NOT_EXISTING)).to_numpy()
    out = _drop(out, defunct, "z/x row for an LA that did not exist in that year", ledger)

    combined = [r for r in reorgs if r.rule == "combined"]
    for r in reorgs:
        if r.rule == "split" and aggregate:
            out = _aggregate(out, r, combined)
        elif r.rule in OLD_ENDS:
            reason = ended_reason(r) + ("; aggregate=True keeps it" if r.rule == "split" else "")
            out = _drop(out, out["unit"].isin(r.old_units).to_numpy(), reason, ledger)
    return out.reset_index(drop=True), ledger


# Rules whose old unit ends: its rows compare with no later LA, so they are left out.
OLD_ENDS = ("split", "break")


def ended_reason(r: Reorganisation) -> str:
    """The ledger's reason for the rows of an LA reorganisation `r` ended."""
    return f"{r.name} ({r.rule}): old unit not comparable with the new units"


def _drop(
    frame: pd.DataFrame, mask: np.ndarray, reason: str, ledger: list[LedgerEntry]
) -> pd.DataFrame:
    """Remove the masked rows, recording them in the ledger when there are any."""
    if mask.any():
        units = tuple(sorted(set(frame.loc[mask, "unit"])))
        ledger.append(LedgerEntry(reason, int(mask.sum()), units))
    return frame.loc[~mask]


def _aggregate(
    frame: pd.DataFrame, split: Reorganisation, combined: list[Reorganisation]
) -> pd.DataFrame:
    """Replace the new units' rows of a split by their sums under the old unit's code.

    A combined return covering new units counts for all of them. A year whose rows do not
    cover every new unit gets NaN and status `partial_aggregate`; a member's symbol status
    carries over to the sum.
    """
    covers = {u: frozenset([u]) for u in split.new_units}
    for c in combined:
        if set(c.old_units) <= set(split.new_units):
            covers.update({u: frozenset(c.old_units) for u in c.new_units})
    is_member = frame["unit"].isin(list(covers)).to_numpy()
    members = frame.loc[is_member]
    if members.empty:
        return frame
    multipliers = {k: ind.multiplier for k, ind in load_catalogue().items()}
    unknown = sorted(set(members["outcome"]) - set(multipliers))
    if unknown:
        raise DataError(
            f"cannot aggregate outcome(s) {unknown}: not in the catalogue",
            where="outcome",
            fix="aggregate only catalogue indicators",
        )
    rows = []
    for (outcome, period), group in members.groupby(["outcome", "period"], sort=True):
        covered = frozenset().union(*(covers[u] for u in group["unit"]))
        ordered = group.sort_values("unit")
        statuses = [s for s in ordered["status"] if s]
        details = [d for d in ordered["detail"] if d] if "detail" in group else []
        num, den = group["numerator"].sum(), group["denominator"].sum()
        status = next(iter(statuses), "")
        if covered != frozenset(split.new_units):
            status = "partial_aggregate"
        elif not status and den == 0:
            status = "zero_denominator"
        usable = status == ""
        rows.append(
            {
                "unit": split.old_units[0],
                "period": period,
                "outcome": outcome,
                "numerator": num if usable else np.nan,
                "denominator": den if usable else np.nan,
                "value": num / den * multipliers[outcome] if usable else np.nan,
                "published": np.nan,
                "status": status,
                "source": " + ".join(sorted(set(group["source"]))),
                "detail": next(iter(details), ""),
            }
        )
    summed = pd.DataFrame(rows)[list(frame.columns)].astype(frame.dtypes.to_dict())
    return pd.concat([frame.loc[~is_member], summed], ignore_index=True)
