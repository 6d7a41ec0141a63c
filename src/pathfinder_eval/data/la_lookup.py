"""The shipped LA lookup: codes, names and regions of English local authorities."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

import pandas as pd


@dataclass(frozen=True)
class LocalAuthority:
    """One LA as the lookup lists it; `la_code` is DfE's three-digit old_la_code."""

    la_code: str
    gss_code: str
    name: str
    region: str
    first_year: int
    last_year: int
    child_population: float


@cache
def la_table() -> pd.DataFrame:
    """The lookup as a frame of strings plus integer years (a cached, read-only copy)."""
    path = files("pathfinder_eval.data") / "la_lookup.csv"
    with path.open("r", encoding="utf-8") as fh:
        frame = pd.read_csv(fh, dtype=str, keep_default_na=False)
    frame["first_year"] = frame["first_year"].astype(int)
    frame["last_year"] = frame["last_year"].astype(int)
    return frame


def _norm(text: str) -> str:
    return " ".join(text.lower().replace(",", " ").replace(".", " ").replace("&", "and").split())


def resolve_la(ref: str, *, current_only: bool = True) -> LocalAuthority | None:
    """Find an LA by three-digit code, GSS code or name; None when nothing matches."""
    table = la_table()
    if current_only:
        table = table[table["last_year"] == table["last_year"].max()]
    key = _norm(str(ref))
    for column in ("la_code", "gss_code"):
        hit = table[table[column].str.lower() == key]
        if len(hit):
            return _to_la(hit.iloc[-1])
    hit = table[table["la_name"].map(_norm) == key]
    if len(hit) == 0:
        hit = table[table["la_name"].map(_norm).str.replace(" city of", "") == key]
    return _to_la(hit.iloc[-1]) if len(hit) else None


def suggest_la(ref: str, n: int = 3) -> list[str]:
    """Closest LA names to an unknown reference, for error messages."""
    names = sorted(set(la_table()["la_name"]))
    return difflib.get_close_matches(str(ref), names, n=n, cutoff=0.5)


def region_members(region_name: str) -> list[str]:
    """Three-digit codes of the current LAs in a region (e.g. 'South East')."""
    table = la_table()
    current = table[(table["last_year"] == table["last_year"].max())]
    return current.loc[current["region_name"] == region_name, "la_code"].tolist()


def _to_la(row: pd.Series) -> LocalAuthority:
    pop = row["child_population_2025"]
    return LocalAuthority(
        la_code=row["la_code"],
        gss_code=row["gss_code"],
        name=row["la_name"],
        region=row["region_name"],
        first_year=int(row["first_year"]),
        last_year=int(row["last_year"]),
        child_population=float(pop) if pop else float("nan"),
    )
