"""Inputs, mutations and the CLI contract for the property-based fuzz suite (test_fuzz.py).

Small designs and data sets (a tidy DiD panel, trial records, a folder of EES-format CSVs),
hypothesis strategies that break them, and `check_case`, which runs `pathfinder-eval` in-process
and asserts the contract: exit 0 with a complete report and JSON, or exit 2 with one line naming
the file and the fix and nothing written; never a traceback.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import datetime as dt
import io
import json
import math
import os
import signal
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import yaml
from hypothesis import strategies as st
from hypothesis.strategies import DrawFn

from pathfinder_eval.cli import main
from pathfinder_eval.data.la_lookup import la_table

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_DESIGNS = sorted([*ROOT.glob("designs/*.yaml"), *ROOT.glob("designs/examples/*.yaml")])
PREFIX = "pathfinder-eval: error: "
TIME_LIMIT_S = 120  # one example running longer than this counts as a hang
DEBUG = "PATHFINDER_EVAL_DEBUG"  # set: an internal error raises (its traceback shows)
# No effect or standard error on the small data sets here comes near this: one that does was
# computed from an implausible value (1e308, say) that should have been refused or excluded.
ABSURD = 1e100

Doc = dict[str, Any]
Key = str | int

# --- hostile values ------------------------------------------------------------------------

MARKUP = (
    "<script>alert(1)</script>",
    "{{ 7*7 }}",
    "{% include '/etc/passwd' %}",
    '"><img src=x onerror=alert(1)>',
    "</html><!--",
    "]]><svg onload=alert(1)>",
)
# Raw markup and file contents that must never appear in a report (escaped markup may).
LEAKS = (
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<svg onload=alert(1)>",
    "</html><!--",
    "<b>x</b>",
    "root:x:0:0",
    "uid=",
)
DFE_SYMBOLS = ("c", "x", "z", "u", "low", "k", ":", "~")  # EES status symbols (docs/data.md)
SYMBOLS = (*DFE_SYMBOLS, "C", " c ")
ODD_CELLS = (
    "",
    " ",
    "text",
    "-5",
    "-0",
    "0",
    "1e308",
    "-1e308",
    "1e150",
    "1e309",
    "9" * 400,
    "1e-320",
    "inf",
    "-inf",
    "Infinity",
    "nan",
    "NaN",
    "NA",
    "null",
    "1,000",
    "5%",
    "0x10",
    "١٢",
    "=1+2",
    "\x00",
    "é",
)
ODD_VALUES: tuple[Any, ...] = (
    None,
    True,
    0,
    -1,
    3.5,
    10**30,
    1e308,
    -1e308,
    float("nan"),
    float("inf"),
    "",
    "  ",
    "x" * 2000,
    [],
    {},
    [None],
    {"a": 1},
    "2023-13-45",
    "\x00",
)
LA_REFS = (
    "Atlantis",
    "Dorsett",
    "dorset",
    " Dorset ",
    "999",
    "E06999999",
    "Bournemouth",
    "City of London",
    "Isles of Scilly",
    "Northamptonshire",
    "Dorset",
    "u00",
    "",
)
PATHS = (
    "../../etc/passwd",
    "/etc/passwd",
    "/etc",
    "/nonexistent/data.csv",
    "missing.csv",
    "",
    ".",
    "..",
    "/dev/null",
    "~/data.csv",
    "file:///etc/passwd",
    "C:\\data\\d.csv",
    "x" * 300 + ".csv",
    "d\x00.csv",
    "<img src=x onerror=alert(1)>.csv",
)

# --- small designs and data sets -------------------------------------------------------------

TIDY_DESIGN: Doc = {
    "name": "fuzz_tidy",
    "title": "Fuzz: tidy panel",
    "pilot": "custom",
    "unit_level": "cluster",
    "time": {"axis": "period"},
    "rollout": [
        {"wave": "W1", "start": 3, "units": ["u00", "u01", "u02", "u03"]},
        {"wave": "W2", "start": 5, "units": ["u04", "u05", "u06", "u07"]},
    ],
    "comparison": {"pool": "never_treated", "min_units": 2},
    "outcomes": [
        {"column": "y", "name": "Score"},
        {
            "column": "rate",
            "numerator": "events",
            "denominator": "population",
            "scale": "per_10000",
        },
    ],
    "analyses": [
        {"id": "twfe", "estimator": "twfe"},
        {"id": "cs", "estimator": "callaway_santanna"},
    ],
    "data": {
        "source": "tidy",
        "path": "data.csv",
        "columns": {"unit": "unit", "period": "period"},
    },
    "seed": 7,
}
TRIAL_DESIGN: Doc = {
    "name": "fuzz_trial",
    "title": "Fuzz: stepped-wedge trial records",
    "pilot": "trial",
    "unit_level": "cluster",
    "time": {"axis": "period"},
    "rollout": [
        {"wave": f"S{s}", "start": s + 1, "units": [f"c{3 * s + i:02d}" for i in range(3)]}
        for s in range(1, 5)
    ],
    "comparison": {"pool": "not_yet_treated", "min_units": 1},
    "outcomes": [{"column": "y", "name": "Wellbeing"}],
    "analyses": [
        {"id": "sw", "estimator": "stepped_wedge"},
        {"id": "gee", "estimator": "stepped_wedge_gee"},
    ],
    "data": {
        "source": "records",
        "path": "data.csv",
        "columns": {"unit": "cluster", "period": "period"},
    },
    "seed": 5,
}
EES_TREATED = (["Knowsley", "Liverpool", "St. Helens"], ["Bolton", "Bury", "Oldham"])
EES_DESIGN: Doc = {
    "name": "fuzz_ees",
    "title": "Fuzz: EES folder",
    "pilot": "custom",
    "unit_level": "local_authority",
    "time": {"axis": "reporting_year", "first": 2021, "last": 2025},
    "rollout": [
        {"wave": "W1", "start": dt.date(2023, 7, 1), "units": EES_TREATED[0]},
        {"wave": "W2", "start": dt.date(2024, 4, 1), "units": EES_TREATED[1]},
    ],
    "comparison": {"pool": "never_treated", "min_units": 5},
    "outcomes": [{"indicator": "repeat_referrals"}, {"indicator": "cla_rate"}],
    "analyses": [
        {"id": "twfe", "estimator": "twfe"},
        {"id": "cs", "estimator": "callaway_santanna"},
    ],
    "data": {"source": "official"},
    "seed": 11,
}


@dataclass
class Table:
    """A CSV as strings: header and rows (mutations edit it in place)."""

    header: list[str]
    rows: list[list[str]]

    def __repr__(self) -> str:
        return f"Table({self.header}, {len(self.rows)} rows)"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis' reports
        printer.text(repr(self))


class Blob(bytes):
    """File contents that hypothesis reports by their start, not in full."""

    def __repr__(self) -> str:
        return f"Blob({len(self)} bytes: {bytes(self[:80])!r}...)"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis' reports
        printer.text(repr(self))


def tidy_table() -> Table:
    """24 clusters x 6 periods; eight treated from period 3 or 5; a level and a count rate."""
    rng = np.random.default_rng(1)
    rows = []
    for i in range(24):
        a = rng.normal()
        start = 3 if i < 4 else 5 if i < 8 else 99
        for p in range(1, 7):
            y = a + 0.2 * p + 0.5 * (p >= start) + rng.normal()
            pop = int(rng.integers(20_000, 80_000))
            events = int(rng.poisson(pop * 0.003))
            rows.append([f"u{i:02d}", str(p), f"{y:.4f}", str(events), str(pop)])
    return Table(["unit", "period", "y", "events", "population"], rows)


def trial_table() -> Table:
    """Records of 12 clusters x 5 periods x 3 people; clusters cross over in 4 steps."""
    rng = np.random.default_rng(2)
    rows = []
    for c in range(3, 15):
        a = rng.normal(scale=0.3)
        for p in range(1, 6):
            for _ in range(3):
                y = a + 0.1 * p + 0.4 * (p > c // 3) + rng.normal()
                rows.append([f"c{c:02d}", str(p), f"{y:.3f}"])
    return Table(["cluster", "period", "y"], rows)


GEOGRAPHY = ["time_period", "time_identifier", "geographic_level", "country_code"]
GEOGRAPHY += ["country_name", "region_code", "region_name", "old_la_code"]
C1_FILE = "c1_children_in_need_referrals_and_rereferrals_2013_to_2025.csv"
CLA_FILE = "cla_number_and_rate_per_10k_children.csv"
C1_VALUES = ("referral_count", "rereferral_count", "rereferral_percent")
CLA_VALUES = ("population_estimate", "children_count", "rate_per_10000")
CLA_TYPES = (
    "Children looked after on 31 March each year",
    "Children starting to be looked after each year",
    "Children ceasing to be looked after each year",
)


def ees_tables() -> dict[str, Table]:
    """The two EES files the EES design reads, for 34 North East and North West LAs."""
    las = la_table()
    las = las[
        las["region_name"].isin(["North East", "North West"])
        & (las["first_year"] <= 2021)
        & (las["last_year"] == 2025)
    ]
    rng = np.random.default_rng(3)
    c1 = Table([*GEOGRAPHY, "new_la_code", "la_name", "category", *C1_VALUES], [])
    cla = Table([*GEOGRAPHY, "la_name", "new_la_code", "population_type", *CLA_VALUES], [])
    for year in range(2021, 2026):
        for la in las.itertuples():
            geo = [str(year), "Reporting year", "Local authority", "E92000001", "England"]
            geo += [la.region_code, la.region_name, str(la.la_code)]
            referrals = int(rng.integers(1500, 9000))
            again = int(referrals * rng.uniform(0.15, 0.3))
            percent = f"{100 * again / referrals:.1f}"
            c1.rows.append(
                [*geo, la.gss_code, la.la_name, "Referrals", str(referrals), str(again), percent]
            )
            pop = int(float(la.child_population_2025) * rng.uniform(0.97, 1.03))
            for kind, per in zip(CLA_TYPES, (70, 25, 24), strict=True):
                n = int(rng.poisson(pop * per / 10_000))
                rate = f"{10_000 * n / pop:.0f}"
                cla.rows.append([*geo, la.la_name, la.gss_code, kind, str(pop), str(n), rate])
    return {C1_FILE: c1, CLA_FILE: cla}


def dump_design(doc: Doc) -> Blob:
    """A design dict as UTF-8 YAML."""
    return Blob(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True).encode("utf-8"))


def table_bytes(table: Table, encoding: str = "utf-8", newline: str = "\n") -> Blob:
    """A table as CSV bytes (characters the encoding lacks become '?')."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator=newline).writerows([table.header, *table.rows])
    return Blob(buf.getvalue().encode(encoding, errors="replace"))


# --- design mutations ------------------------------------------------------------------------


# How many mutations a case gets: mostly one, so a fatal one rarely hides the others' effect.
FEW = (1, 1, 1, 2, 2, 3, 4)


def sometimes(n: int) -> st.SearchStrategy[bool]:
    """True about once in `n` draws; False is the simplest value (what shrinking prefers)."""
    return st.integers(1, n).map(lambda k: k == n)


def _paths(node: Any, prefix: tuple[Key, ...] = ()) -> list[tuple[Key, ...]]:
    """Every path to a value below `node` (dict keys and list indices)."""
    items: list[tuple[Key, Any]] = []
    if isinstance(node, dict):
        items = list(node.items())
    elif isinstance(node, list):
        items = list(enumerate(node))
    out = []
    for key, value in items:
        out.append((*prefix, key))
        out += _paths(value, (*prefix, key))
    return out


def _get(doc: Any, path: Sequence[Key]) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def _pick(draw: DrawFn, doc: Doc, keep: Callable[[tuple[Key, ...], Any], bool]) -> tuple[Key, ...]:
    """A path whose value passes `keep`, or () when there is none."""
    paths = [p for p in _paths(doc) if keep(p, _get(doc, p))]
    return draw(st.sampled_from(paths)) if paths else ()


def _where(path: Sequence[Key]) -> str:
    return "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in path).lstrip(".")


# Each op changes `doc` in place and returns a label for hypothesis' report of a failure.


def op_delete(draw: DrawFn, doc: Doc) -> str:
    path = _pick(draw, doc, lambda p, v: True)
    if path:
        del _get(doc, path[:-1])[path[-1]]
    return f"delete {_where(path)}"


def op_rename(draw: DrawFn, doc: Doc) -> str:
    path = _pick(draw, doc, lambda p, v: isinstance(p[-1], str))
    if not path:
        return "rename nothing"
    old = str(path[-1])
    new = draw(
        st.sampled_from(
            [old[:-1] or "x", old + "s", old.upper(), old.replace("_", "-"), f" {old}", old[::-1]]
        )
        | st.text(min_size=1, max_size=8)
    )
    parent = _get(doc, path[:-1])
    parent[new] = parent.pop(old)
    return f"rename {_where(path)} -> {new!r}"


def op_retype(draw: DrawFn, doc: Doc) -> str:
    path = _pick(draw, doc, lambda p, v: True)
    if not path:
        return "retype nothing"
    value = draw(st.sampled_from(ODD_VALUES) | st.integers() | st.floats() | st.text(max_size=12))
    _get(doc, path[:-1])[path[-1]] = value = copy.deepcopy(value)
    return f"set {_where(path)} = {value!r:.60}"


def op_empty(draw: DrawFn, doc: Doc) -> str:
    path = _pick(draw, doc, lambda p, v: isinstance(v, list | dict))
    if path:
        _get(doc, path[:-1])[path[-1]] = draw(st.sampled_from([[], {}, None]))
    return f"empty {_where(path)}"


def op_duplicate(draw: DrawFn, doc: Doc) -> str:
    path = _pick(draw, doc, lambda p, v: isinstance(v, list) and bool(v))
    if not path:
        return "duplicate nothing"
    items = _get(doc, path)
    items.append(copy.deepcopy(items[draw(st.integers(0, len(items) - 1))]))
    return f"duplicate an item of {_where(path)}"


def op_markup(draw: DrawFn, doc: Doc) -> str:
    path = _pick(draw, doc, lambda p, v: isinstance(v, str))
    if not path:
        return "markup nothing"
    payload = draw(st.sampled_from(MARKUP))
    parent = _get(doc, path[:-1])
    parent[path[-1]] = draw(st.sampled_from([payload, f"{parent[path[-1]]} {payload}"]))
    return f"markup in {_where(path)}: {parent[path[-1]]!r}"


def op_unit(draw: DrawFn, doc: Doc) -> str:
    path = _pick(
        draw,
        doc,
        lambda p, v: len(p) > 1 and p[-2] in ("units", "exclude", "members") and isinstance(v, str),
    )
    if not path:
        return "no unit to change"
    _get(doc, path[:-1])[path[-1]] = ref = draw(st.sampled_from(LA_REFS))
    return f"unit {_where(path)} = {ref!r}"


def op_data_path(draw: DrawFn, doc: Doc) -> str:
    data = doc.setdefault("data", {})
    if not isinstance(data, dict):
        return "data is not a mapping"
    data["source"] = draw(st.sampled_from(["tidy", "official", "records", data.get("source")]))
    data["path"] = draw(st.sampled_from(PATHS))
    return f"data.source {data['source']!r}, data.path {data['path']!r}"


EXTREMES: tuple[tuple[tuple[Key, ...], tuple[Any, ...]], ...] = (
    (("time", "first"), (-1, 0, 10**9, 2030, "2017", None)),
    (("time", "last"), (-1, 1900, 10**9, "last")),
    (("seed",), (-1, 2**64, 10**30, "abc", 1.5, True)),
    (("comparison", "min_units"), (0, -1, 10**9)),
    (("comparison", "pool"), ("list", "everyone")),
    (("report",), ({"disclosure": {"min_count": 0}}, {"disclosure": {"round_to": 10**9}})),
    (("report",), ({"date": "yesterday"}, {"date": "2024-02-30"}, {"template": "../../x"})),
    (("analyses", 0, "level"), (0.5, 1.0, 0.999999, float("nan"), "95%")),
    (("analyses", 0, "options"), ({"bogus": 1}, {"min_lead": -100}, {"aggregation": "all"})),
    (("analyses", 0, "outcomes"), ([], ["nope"], ["all", "all"], None)),
    (
        ("analyses", 0, "inference"),
        ({"method": "nope"}, {"draws": 1}, {"cluster": "region"}, {"cluster": "nope"}),
    ),
    (("data", "columns", "unit_columns"), (["region"], ["nope"], ["unit", "unit"], "y", [1])),
    (("rollout", 0, "transition_periods"), (-1, 100, 10**9)),
    (("rollout", 0, "start"), (0, -5, 10**9, "2023-13-01", "1900-01-01", "2999-01-01", 3.5)),
    (("rollout", 0, "units"), ([], "u00", [["u00"]])),
    (("outcomes", 0, "scale"), ("per_million", None)),
    (("unit_level",), ("region", "cluster", "local_authority", "person")),
    (("time", "axis"), ("quarter", "month", "academic_year", "century")),
)


def op_extreme(draw: DrawFn, doc: Doc) -> str:
    path, values = draw(st.sampled_from(EXTREMES))
    try:
        parent = _get(doc, path[:-1])
    except (KeyError, IndexError, TypeError):
        return f"no {_where(path)}"
    if not isinstance(parent, dict):
        return f"{_where(path[:-1])} is not a mapping"
    parent[path[-1]] = value = copy.deepcopy(draw(st.sampled_from(values)))
    return f"set {_where(path)} = {value!r}"


DOC_OPS = (
    op_delete,
    op_rename,
    op_retype,
    op_empty,
    op_duplicate,
    op_markup,
    op_unit,
    op_data_path,
    op_extreme,
)

SNIPPETS = (
    "{",
    "[",
    ": :",
    "\t",
    "- ",
    "'",
    '"',
    "&a",
    "*b",
    "? ",
    "%YAML 9.9\n",
    "---\n",
    "key: value: other\n",
    '!!python/object/apply:os.system ["touch PWNED"]\n',
)
WHOLE_FILES = (
    b"",
    b"   \n",
    b"# only a comment\n",
    b"- a\n- b\n",
    b"just a string\n",
    b"null\n",
    b"\x00\x01\x02\xff",
    b"name: [unclosed\n",
    b'x: !!python/object/apply:os.system ["touch PWNED"]\n',
)


@st.composite
def yaml_text_mutation(draw: DrawFn, text: bytes) -> tuple[bytes, str]:
    """A byte-level mutation of a YAML file: encodings, syntax errors, truncation."""
    kind = draw(
        st.sampled_from(
            ["bad_bytes", "encoding", "snippet", "truncate", "dup_line", "tabs", "whole"]
        )
    )
    at = draw(st.integers(0, len(text)))
    if kind == "bad_bytes":
        junk = draw(st.sampled_from([b"\xff\xfe", b"\xc3\x28", b"\x80", b"\xed\xa0\x80"]))
        return text[:at] + junk + text[at:], f"bytes {junk!r} at {at}"
    if kind == "encoding":
        enc = draw(st.sampled_from(["utf-16", "utf-32", "cp1252", "latin-1", "utf-8-sig"]))
        decoded = text.decode("utf-8").replace("title: ", "title: Café ", 1)
        return decoded.encode(enc, errors="replace"), f"encoded as {enc}"
    lines = text.splitlines(keepends=True)
    line = draw(st.integers(0, max(len(lines) - 1, 0)))
    if kind == "snippet":
        snippet = draw(st.sampled_from(SNIPPETS)).encode()
        lines.insert(line, snippet)
        return b"".join(lines), f"insert {snippet!r} before line {line + 1}"
    if kind == "truncate":
        return text[:at], f"truncated at byte {at}"
    if kind == "dup_line":
        lines.insert(line, lines[line] if lines else b"")
        return b"".join(lines), f"duplicate line {line + 1}"
    if kind == "tabs":
        return text.replace(b"\n  ", b"\n\t"), "tab indentation"
    whole = draw(st.sampled_from(WHOLE_FILES))
    return whole, f"whole file {whole!r}"


@st.composite
def mutated_design(draw: DrawFn, base: Doc) -> tuple[bytes, list[str], tuple[str, ...]]:
    """A design with one to four structural mutations and, sometimes, a byte-level one; with
    the labels of the mutations and its data.path, if any (see `data_path_names`)."""
    doc = copy.deepcopy(base)
    ops = [draw(st.sampled_from(DOC_OPS)) for _ in range(draw(st.sampled_from(FEW)))]
    labels = [op(draw, doc) for op in ops]
    text = dump_design(doc)
    if draw(sometimes(4)):
        raw, label = draw(yaml_text_mutation(text))
        text = Blob(raw)
        labels.append(label)
    data = doc.get("data")
    path = data.get("path") if isinstance(data, dict) else None
    return text, labels, (path,) if isinstance(path, str) else ()


# --- data mutations --------------------------------------------------------------------------


# Table mutations, values (cells, symbols) weighted above the rest (rows, columns, unit names).
TABLE_OPS = ("cell",) * 4 + ("symbol",) * 2 + ("dup_rows", "shuffle", "drop_rows")
TABLE_OPS += ("drop_col", "rename_col", "extra_col", "markup_unit")


def _misspell(name: str) -> list[str]:
    return [name.upper(), f" {name}", name[:-1] or "x", f"{name}_2", "", name + name]


@st.composite
def mutated_table(
    draw: DrawFn, table: Table, columns: Sequence[str], unit: str
) -> tuple[Table, list[str]]:
    """Up to four mutations of a copy of `table`: cells of `columns`, rows, columns, and
    markup as the name of a unit (column `unit`)."""
    t = Table(list(table.header), [list(r) for r in table.rows])
    labels = []
    for kind in [draw(st.sampled_from(TABLE_OPS)) for _ in range(draw(st.sampled_from(FEW)))]:
        if not t.rows:
            break
        row = draw(st.integers(0, len(t.rows) - 1))
        present = [c for c in columns if c in t.header]
        if kind in ("cell", "symbol") and present:
            col = t.header.index(draw(st.sampled_from(present)))
            pool = SYMBOLS if kind == "symbol" else ODD_CELLS + MARKUP
            t.rows[row][col] = value = draw(st.sampled_from(pool))
            labels.append(f"row {row + 1} {t.header[col]} = {value!r}")
        elif kind == "dup_rows":
            n = draw(st.integers(1, 3))
            t.rows[row:row] = [list(r) for r in t.rows[row : row + n]]
            labels.append(f"duplicate rows {row + 1}..{row + n}")
        elif kind == "shuffle":
            t.rows = draw(st.permutations(t.rows))
            labels.append("shuffle rows")
        elif kind == "drop_rows":
            n = draw(st.sampled_from([1, 2, 3, len(t.rows)]))
            del t.rows[row : row + n]
            labels.append(f"drop rows {row + 1}..{row + n}")
        elif kind == "drop_col":
            col = draw(st.integers(0, len(t.header) - 1))
            labels.append(f"drop column {t.header.pop(col)!r}")
            for r in t.rows:
                del r[col : col + 1]
        elif kind == "rename_col":
            col = draw(st.integers(0, len(t.header) - 1))
            new = draw(st.sampled_from(_misspell(t.header[col]) + list(t.header)))
            labels.append(f"rename column {t.header[col]!r} -> {new!r}")
            t.header[col] = new
        elif kind == "extra_col":
            name = draw(st.sampled_from(["extra", "", "unit", "<b>x</b>", "y"]))
            t.header.append(name)
            for r in t.rows:
                r.append(draw(st.sampled_from(["1", "", "c", "text"])))
            labels.append(f"extra column {name!r}")
        elif kind == "markup_unit" and unit in t.header:
            col = t.header.index(unit)
            old, new = t.rows[row][col], draw(st.sampled_from(MARKUP))
            for r in t.rows:
                if r[col : col + 1] == [old]:
                    r[col] = new
            labels.append(f"unit {old!r} renamed {new!r} in the data only")
    return t, labels


@st.composite
def encoded_table(draw: DrawFn, table: Table, name: str) -> tuple[bytes, list[str]]:
    """A table's bytes: usually UTF-8, sometimes another encoding (with 'Café' as the last
    row's `name` column), BOM, line ending or a degenerate file (empty, header only, binary)."""
    kind = draw(st.sampled_from(["plain"] * 6 + ["encoding", "newline", "whole", "header"]))
    if kind == "encoding":
        enc = draw(st.sampled_from(["utf-8-sig", "utf-16", "latin-1", "cp1252", "utf-32"]))
        if name in table.header and table.rows and len(table.rows[-1]) == len(table.header):
            last = list(table.rows[-1])
            last[table.header.index(name)] = "Café"
            table = Table(table.header, [*table.rows[:-1], last])
        return table_bytes(table, enc), [f"encoded as {enc} ('Café' in column {name})"]
    if kind == "newline":
        nl = draw(st.sampled_from(["\r\n", "\r"]))
        return table_bytes(table, newline=nl), [f"line ending {nl!r}"]
    if kind == "header":
        return table_bytes(Table(table.header, [])), ["header only"]
    if kind == "whole":
        whole = draw(st.sampled_from([b"", b"\n", b"\xef\xbb\xbf", b",,,\n", b"\x1f\x8b\x08\x00"]))
        return Blob(whole), [f"whole file {whole!r}"]
    return table_bytes(table), []


# --- the contract --------------------------------------------------------------------------


@dataclass
class Case:
    """One CLI call in its own folder.

    argv: arguments for `main`; root: the example's folder (the working directory during the
    call); out: the output folder a `run` writes to; names: tokens one of which an error line
    must contain (the design, the data, a file in the data folder, the option at fault).
    """

    argv: list[str]
    root: Path
    out: Path | None = None
    names: tuple[str, ...] = ()


def _snapshot(folder: Path) -> dict[Path, tuple[int, int]]:
    """Every file below `folder` with its size and modification time."""
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


@contextlib.contextmanager
def _time_limit(seconds: int) -> Iterator[None]:
    """Raise TimeoutError in the main thread after `seconds` (where SIGALRM exists)."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def _raise(signum: int, frame: object) -> None:
        raise TimeoutError(f"pathfinder-eval did not return within {seconds} s")

    previous = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def call_main(argv: list[str], cwd: Path) -> tuple[int, str, str]:
    """`main(argv)` in `cwd` with captured output; SystemExit gives the exit code. Warnings are
    recorded (not raised as pytest's filters would); any other exception propagates, with the
    CLI's debug switch on so an internal error shows its traceback."""
    out, err = io.StringIO(), io.StringIO()
    with (
        mock.patch.dict(os.environ, {DEBUG: "1"}),
        contextlib.chdir(cwd),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        warnings.catch_warnings(record=True),
        _time_limit(TIME_LIMIT_S),
    ):
        warnings.simplefilter("always")
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1 if exc.code else 0
    return code, out.getvalue(), err.getvalue()


def _no_constant(name: str) -> float:
    raise AssertionError(f"non-finite number {name} in the results JSON")


def _design_analysis_ids(design: Path) -> set[str]:
    """The analysis ids a (valid) design file asks for."""
    doc = yaml.safe_load(design.read_bytes().decode("utf-8-sig"))
    return {str(a["id"]) for a in doc["analyses"]}


def _check_report(case: Case, written: set[Path]) -> dict[str, Any]:
    """Exit 0 of `run`: the report and JSON complete, nothing else written; the JSON."""
    assert case.out is not None
    out = case.out if case.out.is_absolute() else case.root / case.out
    htmls = sorted(p for p in out.glob("*.html"))
    assert len(htmls) == 1, f"expected one HTML report in {out}: {htmls}"
    html_path, json_path = htmls[0], htmls[0].with_suffix(".json")
    assert json_path.is_file(), f"{json_path.name} missing beside {html_path.name}"
    extra = written - {html_path, json_path}
    assert not extra, f"files written besides the report and JSON: {sorted(map(str, extra))}"
    html = html_path.read_text(encoding="utf-8")
    assert html.rstrip().endswith("</html>"), "the HTML report is incomplete"
    leaked = [text for text in LEAKS if text in html]
    assert not leaked, f"raw markup or file contents reached the HTML: {leaked}"
    doc = json.loads(json_path.read_text(encoding="utf-8"), parse_constant=_no_constant)
    for key in ("schema_version", "analyses", "exclusions", "provenance"):
        assert key in doc, f"results JSON lacks {key!r}"
    missing = _design_analysis_ids(case.root / case.argv[1]) - {a["id"] for a in doc["analyses"]}
    assert not missing, f"analyses of the design absent from the results: {sorted(missing)}"
    for analysis in doc["analyses"]:
        if analysis.get("status") != "ok":
            continue
        label = f"analysis {analysis.get('id')!r} ({analysis.get('outcome')!r}) is 'ok' but"
        assert analysis.get("estimates"), f"{label} has no estimates"
        first = analysis["estimates"][0]
        estimate, se = first.get("estimate"), first.get("std_error")
        assert isinstance(estimate, int | float) and math.isfinite(estimate), (
            f"{label} its estimate is {estimate!r}"
        )
        assert se is None or (isinstance(se, int | float) and math.isfinite(se)), (
            f"{label} its std_error is {se!r}"
        )
        assert abs(estimate) < ABSURD and (se is None or se < ABSURD), (
            f"{label} its estimate {estimate!r} (SE {se!r}) is absurd"
        )
    return doc


def _check_error(case: Case, stderr: str, written: set[Path]) -> None:
    lines = stderr.splitlines()
    assert len(lines) == 1, f"exit 2 must print exactly one line, got {len(lines)}:\n{stderr}"
    line = lines[0]
    assert line.startswith(PREFIX), f"the error line lacks {PREFIX!r}: {line}"
    assert "Fix:" in line, f"the error line gives no fix: {line}"
    named = [n for n in case.names if n and n in line]
    assert named, f"the error line names none of {case.names}: {line}"
    assert not written, f"exit 2 but files were written: {sorted(map(str, written))}"


def check_case(case: Case) -> tuple[int, dict[str, Any] | None]:
    """Run the case, assert the contract (exit 0 and complete outputs, or exit 2 and one line)
    and return the exit code and, for a successful `run`, the results JSON."""
    before = _snapshot(case.root)
    code, _stdout, stderr = call_main(case.argv, case.root)
    after = _snapshot(case.root)
    written = {p for p, stamp in after.items() if before.get(p) != stamp}
    assert "Traceback" not in stderr, stderr
    if code == 0 and case.argv[:1] == ["run"]:
        return code, _check_report(case, written)
    if code == 0:
        assert not written, f"{case.argv[:1]} wrote {sorted(map(str, written))}"
    elif code == 2:
        _check_error(case, stderr, written)
    else:
        raise AssertionError(f"exit code {code} (only 0 or 2 allowed); stderr: {stderr}")
    return code, None


def write_files(folder: Path, files: dict[str, bytes]) -> None:
    """Write each file (name relative to `folder`), creating subfolders."""
    for name, data in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def case_names(*paths: Path | str) -> tuple[str, ...]:
    """Names an error line may use for these paths: the path and its file name."""
    names: list[str] = []
    for p in paths:
        names += [str(p), Path(p).name] if str(p) else []
    return tuple(dict.fromkeys(n for n in names if n and n != "."))


def data_path_names(design: Path, data_paths: Sequence[str]) -> tuple[str, ...]:
    """Names an error about a design's data.path may use: as written, and resolved against
    the design's folder."""
    names: list[str] = []
    for raw in data_paths:
        names += case_names(raw)
        with contextlib.suppress(OSError, ValueError):
            names += case_names((design.parent / raw).resolve())
    return tuple(names)


def data_listing(folder: Path) -> tuple[str, ...]:
    """The names of the files in a data folder (an error may name any of them)."""
    return tuple(sorted(os.listdir(folder))) if folder.is_dir() else ()
