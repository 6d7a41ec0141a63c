"""Indicator values computed from a folder of DfE files, beside DfE's published figures.

The `indicators --data DIR` command: England, the regions and chosen LAs, each value
recomputed from its numerator and denominator and rounded half up as DfE publishes it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pathfinder_eval.data.catalogue import load_catalogue
from pathfinder_eval.data.families import FAMILIES
from pathfinder_eval.data.la_lookup import la_table, resolve_la, suggest_la
from pathfinder_eval.data.official import (
    find_family_file,
    load_official,
    load_official_aggregates,
    round_half_up,
)
from pathfinder_eval.errors import DataError

_SUB_REGIONS = {"E13000001": "Inner London", "E13000002": "Outer London"}


def indicator_table(
    folder: Path, las: list[str], year: int | None, ids: list[str], where: str = "--la"
) -> tuple[pd.DataFrame, dict[str, str]]:
    """`indicator_values` for LA names or codes and indicator ids as a user gives them
    (default: every indicator the folder's files allow), and the indicators left out for a
    missing file (id → family); DataError naming what to fix."""
    if not folder.is_dir():
        raise DataError("not a folder", file=str(folder), fix="pass the folder of EES CSVs")
    codes = []
    for ref in las:
        la = resolve_la(ref)
        if la is None:
            near = ", ".join(suggest_la(ref)) or "see `pathfinder-eval las`"
            raise DataError(
                f"unknown local authority {ref!r}", where=where, fix=f"did you mean: {near}"
            )
        codes.append(la.la_code)
    available, missing = _computable(folder)
    chosen = ids or available
    absent = [i for i in chosen if i in missing]
    if absent:
        raise DataError(
            f"indicator {absent[0]!r} needs a {missing[absent[0]]} file, not in the folder",
            file=str(folder),
            fix="add that DfE file to the folder (see `pathfinder-eval indicators`)",
        )
    table = indicator_values(folder, chosen, codes, year)
    if table.empty:
        raise DataError(
            f"no values for year {year}",
            file=str(folder),
            fix="choose a year the files cover, or leave the year out for each one's latest",
        )
    return table, missing


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
    England, each region, then the LAs asked for; `value` rounded half up to DfE's
    decimals, `published` DfE's own figure where the file has one, `agrees` whether the two
    are equal at published precision ("" when there is nothing to compare)."""
    names = _area_names()
    parts = [
        load_official_aggregates(data_dir, ids, level="National").frame.assign(area_type="England"),
        load_official_aggregates(data_dir, ids, level="Regional").frame.assign(area_type="Region"),
    ]
    if la_codes:
        la = load_official(data_dir, ids).frame
        parts.append(la[la["unit"].isin(la_codes)].assign(area_type="Local authority"))
    frame = pd.concat(parts, ignore_index=True)
    if year is None:
        latest = frame[frame["status"] == ""].groupby("outcome")["period"].max()
        frame = frame[frame["period"] == frame["outcome"].map(latest)]
    else:
        frame = frame[frame["period"] == year]
    catalogue = load_catalogue()
    decimals = frame["outcome"].map(lambda i: catalogue[i].decimals).to_numpy()
    value = np.array(
        [round_half_up(np.array([v]), d)[0] for v, d in zip(frame["value"], decimals, strict=True)]
    )
    published = frame["published"].to_numpy()
    slack = frame["outcome"].map(lambda i: _published_rounding(catalogue[i])).to_numpy()
    gap = np.abs(value - published)
    agrees = np.select(
        [np.isnan(gap), gap < 1e-9, gap <= slack + 1e-9],
        ["", "yes", "within the rounding of DfE's parts"],
        "no",
    )
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


def _published_rounding(ind) -> float:
    """How far a published figure that adds up rounded parts can be from the exact value."""
    pub = ind.published
    if pub is None or pub.rounded_to is None or pub.parts < 2:
        return 0.0
    return pub.rounded_to / 2 * pub.parts


def _area_names() -> dict[str, str]:
    """Area code → name: England, the regions (and London's halves) and every LA."""
    table = la_table()
    names = {"E92000001": "England", **_SUB_REGIONS}
    names.update(dict(zip(table["region_code"], table["region_name"], strict=True)))
    names.update(dict(zip(table["la_code"], table["la_name"], strict=True)))
    return names
