"""The shipped LA lookup: codes, names and regions of English local authorities."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

import pandas as pd

from pathfinder_eval.data.harmonise import Reorganisation, load_reorganisations


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


# Short forms in common use for LAs whose DfE name is longer ("Kingston upon Hull, City of"),
# and former GSS codes: normalised form -> three-digit code. "X, City of" and "X, County of"
# also resolve as "X", "City of X" and "X City" without an entry here (see `_name_forms`).
ALIASES: dict[str, str] = {
    "hull": "810",
    "hull city": "810",
    "durham": "840",
    "bcp": "839",
    "dorset county": "835",
    "southend": "882",
    "stoke": "861",
    "brighton": "846",
    "newcastle": "391",
    "telford": "894",
    "blackburn": "889",
    "east riding": "811",
    "east yorkshire": "811",
    "bath": "800",
    "windsor": "868",
    # GSS codes DfE's files used before a county became a unitary on the same boundary
    # (reorganisations.yaml, rule continuous): its series and three-digit code go on
    "e10000002": "825",  # Buckinghamshire, to 2020
    "e10000023": "815",  # North Yorkshire, to 2023
    "e10000027": "933",  # Somerset, to 2023
}


def _name_forms(name: str) -> set[str]:
    """The normalised forms an LA name is known by: "Herefordshire, County of" is also
    "herefordshire", "county of herefordshire" and "herefordshire county"."""
    key = _norm(name)
    forms = {key}
    for title in ("city of", "county of"):
        if key.endswith(" " + title):
            base = key[: -len(title) - 1]
            forms |= {base, f"{title} {base}", f"{base} {title.split()[0]}"}
    return forms


def resolve_la(ref: str, *, current_only: bool = True) -> LocalAuthority | None:
    """Find an LA by three-digit code, GSS code, name or common short form ("Hull",
    "Herefordshire", "Bristol"); None when nothing matches. A name two LAs have had
    (Dorset: 835 to 2019, 838 from 2020) gives the later one. `current_only` leaves out
    LAs abolished in a reorganisation (Cumbria, Northamptonshire, Dorset county ...)."""
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
        hit = table[table["la_name"].map(lambda n: key in _name_forms(n))]
    if len(hit) == 0 and key in ALIASES:
        hit = table[table["la_code"] == ALIASES[key]]
    return _to_la(hit.iloc[-1]) if len(hit) else None


def namesakes(ref: str) -> list[LocalAuthority]:
    """Every LA that has had the name `ref`, oldest first: more than one only for a name kept
    through a reorganisation (Dorset: the county, 835, to 2019; the unitary, 838, from 2020)."""
    table = la_table()
    hit = table[table["la_name"].map(_norm) == _norm(str(ref))]
    return [_to_la(row) for _, row in hit.sort_values("first_year").iterrows()]


def suggest_la(ref: str, n: int = 3) -> list[str]:
    """Closest current LA names to an unknown reference, for error messages ("Hereford"
    finds "Herefordshire, County of" by its short form). A reference to an abolished LA
    gives the LAs that replaced it (never the reference itself)."""
    old = resolve_la(ref, current_only=False)
    if old is not None and not is_current(old):
        return [la.name for la in successors(old)][:n] or [old.name]
    table = la_table()
    current = table[table["last_year"] == table["last_year"].max()]
    forms: dict[str, str] = {}
    for name in sorted(set(current["la_name"])):
        forms.update(dict.fromkeys(sorted(_name_forms(name)), name))
    close = difflib.get_close_matches(_norm(str(ref)), list(forms), n=3 * n, cutoff=0.5)
    return list(dict.fromkeys(forms[c] for c in close))[:n]


def is_current(la: LocalAuthority) -> bool:
    """Whether the LA reports in the lookup's latest year."""
    return la.last_year == int(la_table()["last_year"].max())


def successors(la: LocalAuthority) -> list[LocalAuthority]:
    """The LAs created by the split or boundary change that ended `la` (reorganisations.yaml)."""
    return [_by_code(c) for r in _reorganisations(la, "old_units") for c in r.new_units]


def predecessors(la: LocalAuthority) -> list[LocalAuthority]:
    """The LAs ended by the split or boundary change that created `la` (reorganisations.yaml)."""
    return [_by_code(c) for r in _reorganisations(la, "new_units") for c in r.old_units]


def _reorganisations(la: LocalAuthority, side: str) -> list[Reorganisation]:
    """The splits and boundary changes with `la` among their old or new units."""
    return [
        r
        for r in load_reorganisations()
        if r.rule in ("split", "break") and la.la_code in getattr(r, side)
    ]


def _by_code(code: str) -> LocalAuthority:
    table = la_table()
    return _to_la(table[table["la_code"] == code].iloc[-1])


def la_label(la: LocalAuthority) -> str:
    """The LA's name and code, with its years when another LA has had the same name:
    'Cumbria (909)', 'Dorset (835, 2013-2019)'."""
    table = la_table()
    shared = (table["la_name"] == la.name).sum() > 1
    years = f", {la.first_year}-{la.last_year}" if shared else ""
    return f"{la.name} ({la.la_code}{years})"


def la_history(la: LocalAuthority) -> str:
    """When the LA reports in DfE's files and the reorganisations that created or ended it,
    as a clause for messages: 'Cumbria (909) reports for 2013-2023 (workforce figures, years
    to 30 September, to 2022); Cumbria split into Cumberland and Westmorland and Furness
    (2023-04-01): Cumberland (942) and Westmorland and Furness (943) report from 2024'."""
    latest = int(la_table()["last_year"].max())
    created, ended = _reorganisations(la, "new_units"), _reorganisations(la, "old_units")
    csww = [f"from {la.first_year - 1}"] * bool(created) + [f"to {la.last_year - 1}"] * bool(ended)
    span = f"from {la.first_year}" if la.last_year == latest else f"for {la.first_year}-"
    span += "" if la.last_year == latest else str(la.last_year)
    text = f"{la_label(la)} reports {span}"
    if csww:
        text += f" (workforce figures, years to 30 September, {' and '.join(csww)})"
    for r in created:
        olds = ", ".join(la_label(_by_code(c)) for c in r.old_units)
        text += f"; {_event(r)}: before {la.first_year} the area was in {olds}"
    for r in ended:
        news = " and ".join(la_label(_by_code(c)) for c in r.new_units)
        text += f"; {_event(r)}: {news} report from {la.last_year + 1}"
    return text


def _event(r: Reorganisation) -> str:
    return f"{r.name} ({r.effective})" if r.effective else r.name


def unknown_la_fix(ref: str) -> str:
    """The fix for a reference that names no current LA: for an abolished LA, when it
    reported and what replaced it; otherwise the closest current names."""
    old = resolve_la(ref, current_only=False)
    if old is not None and not is_current(old):
        codes = ", ".join(x.la_code for x in successors(old))
        return f"{la_history(old)}; name {codes} instead" if codes else la_history(old)
    close = suggest_la(ref)
    if close:
        return f"did you mean {' or '.join(repr(c) for c in close)}?"
    return "use the LA's name, three-digit DfE code or GSS code (pathfinder-eval las lists them)"


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
