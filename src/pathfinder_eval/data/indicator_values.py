"""Indicator values computed from a folder of DfE files, beside DfE's published figures.

The `indicators --data DIR` command: England, the regions and chosen LAs, each value
recomputed from its numerator and denominator and rounded half up as DfE publishes it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pathfinder_eval.data.catalogue import Indicator, load_catalogue
from pathfinder_eval.data.families import FAMILIES
from pathfinder_eval.data.la_lookup import (
    LocalAuthority,
    la_history,
    la_table,
    predecessors,
    resolve_la,
    successors,
    unknown_la_fix,
)
from pathfinder_eval.data.official import (
    compare_with_published,
    find_family_file,
    load_official_aggregates,
    load_official_units,
    round_half_up,
)
from pathfinder_eval.errors import DataError

_SUB_REGIONS = {"E13000001": "Inner London", "E13000002": "Outer London"}
WITHIN_PARTS = "within the rounding of DfE's parts"
WITHIN_INPUTS = "within the rounding of DfE's inputs"


def indicator_table(
    folder: Path, las: list[str], year: int | None, ids: list[str], where: str = "--la"
) -> tuple[pd.DataFrame, dict[str, str]]:
    """`indicator_values` for LA names or codes and indicator ids as a user gives them
    (default: every indicator the folder's files allow), and the indicators left out for a
    missing file (id → family); DataError naming what to fix.

    An LA abolished in a reorganisation (Cumbria, 909) is shown in its own years; an LA
    asked for in a year before it existed or after it was abolished is an error saying when
    it reports and which LAs preceded or replaced it."""
    if not folder.is_dir():
        raise DataError("not a folder", file=str(folder), fix="pass the folder of EES CSVs")
    chosen_las = []
    for ref in las:
        la = resolve_la(ref, current_only=False)
        if la is None:
            raise DataError(
                f"unknown local authority {ref!r}", where=where, fix=unknown_la_fix(ref)
            )
        chosen_las.append(la)
    available, missing = _computable(folder)
    if not ids and not available:
        raise _no_files(folder)
    chosen = ids or available
    absent = [i for i in chosen if i in missing]
    if absent:
        raise DataError(
            f"indicator {absent[0]!r} needs a {missing[absent[0]]} file, not in the folder",
            file=str(folder),
            fix="add that DfE file to the folder (see `pathfinder-eval indicators`)",
        )
    table = indicator_values(folder, chosen, [la.la_code for la in chosen_las], year)
    if year is not None:
        for la in chosen_las:
            _check_lifetime(table, la, year, chosen, where)
    if table.empty:
        raise DataError(
            f"no values for year {year}",
            file=str(folder),
            fix="choose a year the files cover, or leave the year out for each one's latest",
        )
    return table, missing


def _check_lifetime(
    table: pd.DataFrame, la: LocalAuthority, year: int, ids: list[str], where: str
) -> None:
    """DataError when `year` is outside the LA's years and an indicator asked for has no row
    for it (Dorset, 838, in 2019: its area was then Dorset county, 835, Poole and Bournemouth).
    Workforce figures of a new LA can start a year early (their years end in September):
    those rows are shown when asked for alone."""
    if la.first_year <= year <= la.last_year:
        return
    shown = set(table.loc[table["area_code"] == la.la_code, "indicator"])
    if set(ids) <= shown:
        return
    others = _alternatives(la, year)
    instead = f"ask for {', '.join(others)} for {year}, or " if others else ""
    raise DataError(
        f"no figures for {year}: {la_history(la)}",
        where=where,
        fix=f"{instead}choose a year from {la.first_year} to {la.last_year}",
    )


def _no_files(folder: Path) -> DataError:
    """The error for a folder holding no DfE file that any indicator reads, listing the
    files looked for by publication."""
    csvs = sorted(folder.glob("*.csv"))
    found = (
        f"{len(csvs)} CSV file(s), none of them a DfE file an indicator reads"
        if csvs
        else "no CSV files"
    )
    wanted: dict[str, list[str]] = {}
    for spec in FAMILIES.values():
        wanted.setdefault(spec.publication, []).append(spec.example_file)
    listing = "; ".join(f"{pub}: {', '.join(names)}" for pub, names in wanted.items())
    return DataError(
        f"no DfE files found in the folder ({found})",
        file=str(folder),
        fix="download the Explore Education Statistics 'underlying data' CSVs into it, "
        f"unmodified (found by name, else by their columns; see docs/data.md): {listing}",
    )


def _alternatives(la: LocalAuthority, year: int) -> list[str]:
    """Codes of the LAs that preceded or replaced `la` and report in `year`."""
    near = [*predecessors(la), *successors(la)]
    return [x.la_code for x in near if x.first_year <= year <= x.last_year]


def _computable(data_dir: Path) -> tuple[list[str], dict[str, str]]:
    """Catalogue ids whose files are all in the folder, and the others with the file missing."""
    present = {f: find_family_file(data_dir, f) is not None for f in FAMILIES}
    ok, missing = [], {}
    for key, ind in load_catalogue().items():
        absent = [f for f in ind.families if not present[f]]
        if absent:
            missing[key] = absent[0]
        else:
            ok.append(key)
    return ok, missing


def indicator_values(
    data_dir: Path, ids: list[str], la_codes: list[str], year: int | None = None
) -> pd.DataFrame:
    """One row per area × indicator for `year` (default: each indicator's latest year):
    England, each region, then the LAs asked for (each in its own years: an abolished LA's
    latest year is its last); `value` rounded half up to DfE's decimals, `published` DfE's
    own figure where the file has one, `agrees` by check_recomputation's rule
    (`compare_with_published`): "yes" when the two are equal at published precision,
    WITHIN_PARTS or WITHIN_INPUTS when the published figure is within the rounding of the
    parts it adds up or of the numerator and denominator, else "no" ("" when there is
    nothing to compare)."""
    names = _area_names()
    parts = [
        load_official_aggregates(data_dir, ids, level="National").frame.assign(area_type="England"),
        load_official_aggregates(data_dir, ids, level="Regional").frame.assign(area_type="Region"),
    ]
    if la_codes:
        la = load_official_units(data_dir, ids, la_codes).frame
        parts.append(la.assign(area_type="Local authority"))
    frame = pd.concat(parts, ignore_index=True)
    if year is None:
        # each indicator's latest year with a value; an area without a row that year (an
        # abolished LA) shows its own latest year before it
        latest = frame[frame["status"] == ""].groupby("outcome")["period"].max()
        frame = frame[frame["period"] <= frame["outcome"].map(latest)]
        own = frame.groupby(["unit", "outcome"])["period"].transform("max")
        frame = frame[frame["period"] == own]
    else:
        frame = frame[frame["period"] == year]
    frame = frame.reset_index(drop=True)
    catalogue = load_catalogue()
    decimals = frame["outcome"].map(lambda i: catalogue[i].decimals).to_numpy()
    value = np.array(
        [round_half_up(np.array([v]), d)[0] for v, d in zip(frame["value"], decimals, strict=True)]
    )
    published = frame["published"].to_numpy()
    agrees = pd.Series("", index=frame.index, dtype=object)
    compared = compare_with_published(frame)  # check_recomputation's rule
    within = frame.loc[compared.index, "outcome"].map(
        lambda i: WITHIN_PARTS if _adds_rounded_parts(catalogue[i]) else WITHIN_INPUTS
    )
    agrees[compared.index] = np.where(
        compared["match"],
        "yes",
        np.where(compared["within_input_rounding"], within, "no"),
    )
    agrees = agrees.to_numpy()
    order = {"England": 0, "Region": 1, "Local authority": 2}
    out = pd.DataFrame(
        {
            "area_type": frame["area_type"].to_numpy(),
            "area_code": frame["unit"].to_numpy(),
            "area": frame["unit"].map(names).fillna(frame["unit"]).to_numpy(),
            "indicator": frame["outcome"].to_numpy(),
            "year": frame["period"].to_numpy(),
            "value": value,
            "published": published,
            "agrees": agrees,
            "numerator": frame["numerator"].to_numpy(),
            "denominator": frame["denominator"].to_numpy(),
            "status": frame["status"].to_numpy(),
        }
    )
    out["_order"] = out["area_type"].map(order)
    out["_ind"] = out["indicator"].map({k: i for i, k in enumerate(ids)})
    out = out.sort_values(["_order", "area_code", "_ind"], kind="stable")
    return out.drop(columns=["_order", "_ind"]).reset_index(drop=True)


def _adds_rounded_parts(ind: Indicator) -> bool:
    """Whether DfE's figure is a sum of published rounded parts (new placements)."""
    pub = ind.published
    return pub is not None and pub.rounded_to is not None and pub.parts >= 2


def _area_names() -> dict[str, str]:
    """Area code → name: England, the regions (and London's halves) and every LA."""
    table = la_table()
    names = {"E92000001": "England", **_SUB_REGIONS}
    names.update(dict(zip(table["region_code"], table["region_name"], strict=True)))
    names.update(dict(zip(table["la_code"], table["la_name"], strict=True)))
    return names
