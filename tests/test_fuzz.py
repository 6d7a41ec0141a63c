"""Property-based fuzz tests of the CLI contract (hypothesis).

Every case mutates a shipped design or a small design and data set (types, keys, symbols,
encodings, duplicates, extreme values, markup, paths, CLI arguments) and asserts the contract:
exit 0 with a complete report and JSON, or exit 2 with one line naming the file and the fix,
and no file written; never a traceback (fuzz_cases.check_case).

Examples are derandomised (the same cases every run). A long run, e.g. 2,000 examples per test:

    PATHFINDER_FUZZ_EXAMPLES=2000 pytest tests/test_fuzz.py

A failing example is reported as found, with the labels of its mutations; add
PATHFINDER_FUZZ_SHRINK=1 to have hypothesis shrink it first (minutes for a slow example).
"""

from __future__ import annotations

import copy
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st

from _data_paths import PUBLIC_DATA
from fuzz_cases import (
    DFE_SYMBOLS,
    EES_DESIGN,
    MARKUP,
    SHIPPED_DESIGNS,
    TIDY_DESIGN,
    TRIAL_DESIGN,
    Case,
    Doc,
    Table,
    case_names,
    check_case,
    data_listing,
    data_path_names,
    dump_design,
    ees_tables,
    encoded_table,
    mutated_design,
    mutated_table,
    sometimes,
    table_bytes,
    tidy_table,
    trial_table,
    write_files,
)

HAVE_PUBLIC = (PUBLIC_DATA / "README.md").is_file()


def fuzz(default: int) -> settings:
    """Hypothesis settings: `default` examples unless PATHFINDER_FUZZ_EXAMPLES says otherwise;
    shrinking only with PATHFINDER_FUZZ_SHRINK set."""
    phases = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target]
    if os.environ.get("PATHFINDER_FUZZ_SHRINK"):
        phases += [Phase.shrink, Phase.explain]
    return settings(
        max_examples=int(os.environ.get("PATHFINDER_FUZZ_EXAMPLES") or default),
        phases=phases,
        deadline=None,
        derandomize=True,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@contextmanager
def case_folder() -> Iterator[Path]:
    """A fresh folder for one example (function-scoped tmp_path is shared between examples)."""
    with tempfile.TemporaryDirectory(prefix="pathfinder-fuzz-") as folder:
        yield Path(folder)


# name -> (design, its data, the columns whose cells are mutated, the unit column)
BASES = {
    "tidy": (TIDY_DESIGN, tidy_table(), ["y", "events", "population", "period", "unit"], "unit"),
    "trial": (TRIAL_DESIGN, trial_table(), ["y", "period", "cluster"], "cluster"),
}
EES_VALUES = {
    "c1": ["referral_count", "rereferral_count", "rereferral_percent", "category"],
    "cla": ["population_estimate", "children_count", "rate_per_10000", "population_type"],
}
EES_COMMON = ["old_la_code", "geographic_level", "time_period"]
EES_TABLES = ees_tables()


def run_case(
    root: Path, design: bytes, data: Path | None, names: tuple[str, ...], labels: list[str]
) -> tuple[int, dict[str, Any] | None]:
    """`run` a design on `data` (None: its data.path) into root/out, check the contract;
    the exit code and the results JSON."""
    path = root / "design.yaml"
    path.write_bytes(design)
    out = root / "out"
    for label in labels:
        note(label)
    argv = ["run", str(path), "--out", str(out)]
    argv += ["--data", str(data)] if data is not None else []
    return check_case(Case(argv, root, out, (*case_names(path, data or ""), *names)))


@fuzz(120)
@given(design=st.sampled_from(SHIPPED_DESIGNS), data=st.data())
def test_shipped_design_mutations_validate(design: Path, data: st.DataObject) -> None:
    """`validate` on mutated shipped designs (synthetic data, or the real EES folder)."""
    text, labels, paths = data.draw(mutated_design(yaml.safe_load(design.read_text("utf-8"))))
    real = HAVE_PUBLIC and data.draw(sometimes(4))
    with case_folder() as root:
        path = root / design.name
        path.write_bytes(text)
        names = data_path_names(path, paths)
        argv = ["validate", str(path)]
        if real:
            argv += ["--data", str(PUBLIC_DATA)]
            names += (*case_names(PUBLIC_DATA), *data_listing(PUBLIC_DATA))
        for label in labels:
            note(label)
        check_case(Case(argv, root, None, (*case_names(path, root), *names)))


@fuzz(60)
@given(base=st.sampled_from(sorted(BASES)), data=st.data())
def test_small_design_mutations_run(base: str, data: st.DataObject) -> None:
    """`run` mutated small designs (tidy DiD panel, trial records) on their clean data (found
    through data.path)."""
    doc, table, _, _ = BASES[base]
    text, labels, paths = data.draw(mutated_design(doc))
    with case_folder() as root:
        (root / "data.csv").write_bytes(table_bytes(table))
        names = ("data.csv", *data_path_names(root / "design.yaml", paths))
        run_case(root, text, None, names, labels)


def _rename_unit(doc: Doc, table: Table, unit: str, old: str, new: str) -> tuple[Doc, Table]:
    """The design and data with unit `old` called `new` in both."""
    doc = copy.deepcopy(doc)
    for wave in doc["rollout"]:
        wave["units"] = [new if u == old else u for u in wave["units"]]
    col = table.header.index(unit)
    rows = [[new if i == col and v == old else v for i, v in enumerate(r)] for r in table.rows]
    return doc, Table(list(table.header), rows)


@fuzz(80)
@given(base=st.sampled_from(sorted(BASES)), data=st.data())
def test_data_mutations_run(base: str, data: st.DataObject) -> None:
    """`run` the small designs on mutated data: cells, rows, columns, encodings, file types,
    and markup as a treated unit's name in both design and data."""
    doc, table, columns, unit = BASES[base]
    labels = []
    if data.draw(sometimes(5)):
        old = doc["rollout"][0]["units"][0]
        new = data.draw(st.sampled_from(MARKUP))
        doc, table = _rename_unit(doc, table, unit, old, new)
        labels.append(f"treated unit {old!r} renamed {new!r} in design and data")
    table, more = data.draw(mutated_table(table, columns, unit))
    raw, how = data.draw(encoded_table(table, unit))
    suffix = data.draw(st.sampled_from([".csv"] * 8 + [".CSV", ".txt", ".parquet", ".dta", ""]))
    with case_folder() as root:
        path = root / f"data{suffix}"
        path.write_bytes(raw)
        run_case(root, dump_design(doc), path, (), [*labels, *more, *how, f"file {path.name}"])


@fuzz(15)
@given(
    cells=st.lists(
        st.tuples(
            st.integers(0, len(tidy_table().rows) - 1),
            st.sampled_from(["y", "events", "population"]),
            st.sampled_from(DFE_SYMBOLS),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_dfe_symbols_in_tidy_data_are_counted(cells: list[tuple[int, str, str]]) -> None:
    """A DfE symbol in a tidy value column is a missing value, counted in the exclusions."""
    table, hit = tidy_table(), {"y": set(), "rate": set()}
    for row, column, symbol in cells:
        table.rows[row][table.header.index(column)] = symbol
        hit["y" if column == "y" else "rate"].add(row)
    with case_folder() as root:
        (root / "data.csv").write_bytes(table_bytes(table))
        code, doc = run_case(root, dump_design(TIDY_DESIGN), None, (), [])
    assert code == 0 and doc is not None
    for outcome, rows in hit.items():
        counted = sum(e["count"] for e in doc["exclusions"] if e["outcome"] == outcome)
        assert counted >= len(rows), f"{outcome}: {len(rows)} symbols, {counted} rows excluded"


@st.composite
def ees_folder(draw: st.DrawFn) -> tuple[dict[str, bytes], list[str]]:
    """The two EES files, each possibly mutated, and folder-level mutations."""
    files, labels = {}, []
    for (name, table), key in zip(EES_TABLES.items(), EES_VALUES, strict=True):
        if draw(sometimes(2)):
            table, more = draw(mutated_table(table, EES_VALUES[key] + EES_COMMON, "old_la_code"))
            labels += [f"{key}: {m}" for m in more]
        files[name], more = draw(encoded_table(table, "la_name"))
        labels += [f"{key}: {m}" for m in more]
    kinds = ("other", "rename", "release", "dir", "drop")  # a harmless one first: the simplest
    for kind in [draw(st.sampled_from(kinds)) for _ in range(draw(st.sampled_from((0, 0, 1, 2))))]:
        if not files:
            break
        name = draw(st.sampled_from(sorted(files)))
        if kind == "drop":
            del files[name]
        elif kind == "release":
            files[name.replace(".csv", "_2024.csv")] = files[name]
        elif kind == "rename":
            files["download (1).csv"] = files.pop(name)
        elif kind == "other":
            files["notes.csv"] = b"time_period,geographic_level,value\n2024,National,c\n"
        elif kind == "dir":
            files["b1_children_in_need.csv/readme.txt"] = b"a folder named like a CSV"
        labels.append(f"folder: {kind} {name}")
    return files, labels


@fuzz(60)
@given(data=st.data())
def test_ees_mutations_run(data: st.DataObject) -> None:
    """`run` an EES design on a folder of mutated synthetic EES files."""
    files, labels = data.draw(ees_folder())
    with case_folder() as root:
        folder = root / "ees"
        folder.mkdir()
        write_files(folder, files)
        run_case(root, dump_design(EES_DESIGN), folder, data_listing(folder), labels)


SEEDS = ("abc", "1.5", "", "-1", "1e3", "0x1F", "٣", " 7 ", "nan", str(2**64), str(10**30))
TEMPLATES = (
    b"{% include '/etc/passwd' %}",
    b"{% include '../../../../../../etc/passwd' %}",
    b"{% extends 'missing.html.j2' %}",
    b"{{ ''.__class__.__mro__[1].__subclasses__() }}",
    b"{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    b"{% if %}",
    b"{{ nope.attr.deeper }}",
    b"{{ 1 / 0 }}",
    b"{{ 10 ** 5000 }}",
    b"\xff\xfe{{ title }}",
    b"<section><h2>{{ title }}</h2></section>",
)


@st.composite
def bad_arguments(
    draw: st.DrawFn, root: Path, design: Path, data: Path
) -> tuple[list[str], Path, tuple[str, ...]]:
    """Arguments for `run` (or another command) with one thing wrong: argv, the output folder
    and the option or path an error line may name. Creates whatever the case needs in root."""
    out = root / "out"
    base = ["run", str(design), "--data", str(data), "--out", str(out)]
    kind = draw(st.sampled_from(["seed", "flag", "data", "out", "templates", "design", "other"]))
    if kind == "seed":
        return [*base, "--seed", draw(st.sampled_from(SEEDS))], out, ("--seed",)
    if kind == "flag":
        extra = draw(st.sampled_from([["--seed"], ["--frobnicate"], ["other.yaml"], ["-x"]]))
        return [*base, *extra], out, (extra[0],)
    if kind == "data":
        shadow = root / "<img src=x onerror=alert(1)>.csv"
        shadow.write_bytes(data.read_bytes())
        choices = [root / "missing.csv", root, "/dev/null", design, "", "/etc/passwd", shadow]
        chosen = str(draw(st.sampled_from(choices)))
        return [*base[:3], chosen, *base[4:]], out, ("--data", *case_names(chosen, root))
    if kind == "out":
        which = draw(st.sampled_from(["file", "under_file", "proc", "taken", "markup", "long", ""]))
        target = {
            "file": root / "out.txt",
            "under_file": root / "out.txt" / "sub",
            "proc": Path("/proc"),
            "taken": root / "taken",
            "markup": root / "<img src=x onerror=alert(1)>",
            "long": root / ("x" * 300),
            "": Path(""),
        }[which]
        (root / "out.txt").write_text("not a folder")
        (root / "taken" / "fuzz_tidy.json").mkdir(parents=True)
        return [*base[:5], str(target)], target, ("--out", *case_names(target))
    if kind == "templates":
        folder = root / "tpl"
        choice = draw(st.sampled_from(["missing", "file", "empty", *range(len(TEMPLATES))]))
        if choice == "file":
            folder.write_text("not a folder")
        elif choice != "missing":
            folder.mkdir()
        if isinstance(choice, int):
            write_files(folder, {"sections/summary.html.j2": TEMPLATES[choice]})
        names = ("--templates", *case_names(folder, "summary.html.j2"))
        return [*base, "--templates", str(folder)], out, names
    if kind == "design":
        (root / "empty.yaml").write_bytes(b"")
        choices = [root / "missing.yaml", root, "/dev/null", root / "empty.yaml", data]
        chosen = str(draw(st.sampled_from(choices)))
        return ["run", chosen, *base[2:]], out, case_names(chosen, root)
    design_names = case_names(design)
    other, names = draw(
        st.sampled_from(
            [
                (["validate", str(design), "--out", str(out)], ("--out",)),
                (["power", str(design)], design_names),
                (["power", str(design), "--alpha", "2"], ("--alpha", *design_names)),
                (["power", str(design), "--simulate", "5"], ("--simulate",)),
                (["power", str(design), "--simulate", "abc"], ("--simulate",)),
                (["replicate", "nope"], ("nope",)),
                ([], ("command",)),
                (["--version", "--seed"], ()),
            ]
        )
    )
    return other, out, names


@fuzz(40)
@given(data=st.data())
def test_bad_cli_arguments(data: st.DataObject) -> None:
    """Bad arguments: seeds, unknown flags, data, output and template folders, commands."""
    with case_folder() as root:
        design, csv = root / "design.yaml", root / "data.csv"
        design.write_bytes(dump_design(TIDY_DESIGN))
        csv.write_bytes(table_bytes(tidy_table()))
        argv, out, names = data.draw(bad_arguments(root, design, csv))
        note(f"argv: {argv}")
        check_case(Case(argv, root, out, (*names, *case_names(design, csv))))


def test_the_clean_cases_run() -> None:
    """The unmutated small designs run, so a failure above is the mutation's doing."""
    for doc, table, *_ in BASES.values():
        with case_folder() as root:
            csv = root / "data.csv"
            csv.write_bytes(table_bytes(table))
            assert run_case(root, dump_design(doc), csv, (), [])[0] == 0
    with case_folder() as root:
        folder = root / "ees"
        write_files(folder, {n: table_bytes(t) for n, t in EES_TABLES.items()})
        assert run_case(root, dump_design(EES_DESIGN), folder, (), [])[0] == 0
