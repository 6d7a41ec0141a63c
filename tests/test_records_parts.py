"""Individual records summarised in parts (data/records.py): a whole frame, a file read in
small parts, and a Dask DataFrame on a LocalCluster give the same cell summaries, the same
exclusions and the same file rows in errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pathfinder_eval.cli import main
from pathfinder_eval.data.records import (
    RecordColumns,
    check_records_fit,
    count_records,
    records_from_dask,
    records_from_file,
    records_on_cluster,
    records_outcomes,
)
from pathfinder_eval.errors import DataError
from sw_helpers import records
from test_stepped_wedge import RECORDS_DESIGN

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

COLS = RecordColumns("c", "p", {"events": "e", "score": "s"}, "r.parquet")


def _records(n: int = 5_000, seed: int = 3) -> pd.DataFrame:
    """Records of 6 clusters × 4 periods: a 0/1 event, a continuous score, and outcomes left
    out for every reason (missing, a DfE symbol is not possible in a numeric column, infinite,
    out of range)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "c": rng.choice([f"cl{i}" for i in range(6)], n),
            "p": rng.integers(1, 5, n),
            "e": rng.binomial(1, 0.3, n).astype(float),
            "s": rng.normal(50.0, 12.0, n) + rng.uniform(0, 1e-3, n),
        }
    )
    frame.loc[[r for r in (10, 2_000, 4_321) if r < n], "e"] = np.nan
    frame.loc[[r for r in (7, 3_333) if r < n], "s"] = np.inf
    frame.loc[[n - 2], "s"] = 5e9
    return frame


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    ) as lc:
        yield lc


def _parquet(frame: pd.DataFrame, path: Path, row_group: int) -> Path:
    pq.write_table(
        pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=row_group
    )
    return path


def _same(a, b, exact_events=True):
    """Summaries equal: bit for bit for the 0/1 outcome, to rounding for the score."""
    ea, eb = (x.frame[x.frame["outcome"] == "events"].reset_index(drop=True) for x in (a, b))
    if exact_events:
        pd.testing.assert_frame_equal(ea, eb, check_exact=True)
    sa, sb = (x.frame[x.frame["outcome"] == "score"].reset_index(drop=True) for x in (a, b))
    pd.testing.assert_frame_equal(sa, sb, check_exact=False, rtol=1e-12, atol=0)
    assert a.exclusions == b.exclusions
    pd.testing.assert_frame_equal(a.units, b.units)


def test_parts_frame_and_dask_give_identical_summaries(tmp_path, cluster):
    frame = _records()
    whole = records_outcomes(frame, "c", "p", {"events": "e", "score": "s"}, "r.parquet")
    # the summaries are the textbook ones (one pass over the frame, pandas' groupby)
    kept = frame[np.isfinite(frame["s"]) & (frame["s"].abs() <= 1e9)]
    by = kept.groupby(["c", "p"])["s"]
    ssw = by.apply(lambda v: float(((v - v.mean()) ** 2).sum())).to_numpy()
    got = whole.frame[whole.frame["outcome"] == "score"]
    np.testing.assert_allclose(got["value"], by.mean().to_numpy(), rtol=1e-13)
    np.testing.assert_allclose(got["ssw"], ssw, rtol=1e-11)
    assert got["denominator"].sum() == len(frame) - 3
    events = whole.frame[whole.frame["outcome"] == "events"]
    assert events["numerator"].sum() == frame["e"].sum()
    assert [(e.reason[:40], e.count) for e in whole.exclusions] == [
        ("individual record with a missing outcome", 3),
        ("individual record with an implausible va", 2),
        ("individual record with an implausible va", 1),
    ]
    assert whole.exclusions[1].reason.endswith("(first: r.parquet row 8, column s)")
    assert whole.exclusions[2].reason.endswith("(first: r.parquet row 4999, column s)")

    path = _parquet(frame, tmp_path / "r.parquet", row_group=777)
    for rows in (333, 1_000, 10_000):
        _same(whole, records_from_file(path, COLS, rows))
    with distributed.Client(cluster):
        _same(whole, records_from_dask(dd.from_pandas(frame, npartitions=7), COLS, "r.parquet"))
    _same(whole, records_on_cluster(path, COLS, cluster.scheduler_address))
    frame.to_csv(tmp_path / "r.csv", index=False)
    csv_cols = RecordColumns("c", "p", {"events": "e", "score": "s"}, "r.csv")
    csv_whole = records_outcomes(
        pd.read_csv(tmp_path / "r.csv"), "c", "p", {"events": "e", "score": "s"}, "r.csv"
    )
    _same(csv_whole, records_from_file(tmp_path / "r.csv", csv_cols, 900))
    _same(csv_whole, records_on_cluster(tmp_path / "r.csv", csv_cols, cluster.scheduler_address))


def test_an_error_names_its_row_in_the_whole_file_whichever_part_it_is_in(tmp_path, cluster):
    frame = _records(2_000)
    frame["p"] = frame["p"].astype(str)
    frame.loc[1_234, "p"] = "spring"
    frame.loc[1_500, "c"] = "  "
    path = _parquet(frame, tmp_path / "r.parquet", row_group=100)
    message = r"r\.parquet: column p, row 1235: period 'spring' is not a period label"
    with pytest.raises(DataError, match=message):
        records_outcomes(frame, "c", "p", {"events": "e", "score": "s"}, "r.parquet")
    with pytest.raises(DataError, match=message):
        records_from_file(path, COLS, 64)
    with pytest.raises(DataError, match=message):
        records_on_cluster(path, COLS, cluster.scheduler_address)
    frame.loc[1_234, "p"] = "2"
    with pytest.raises(DataError, match=r"column c, row 1501: unit identifier is missing"):
        records_from_file(_parquet(frame, tmp_path / "r2.parquet", 100), COLS, 64)


def test_whole_number_sums_are_exact_whatever_the_split(cluster):
    """Counts with large values: the exact path (integer arithmetic for ssw) gives the same
    bits from any split, and the within-cell sum of squares is the exact rational rounded."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "c": rng.choice(["a", "b"], 3_000),
            "p": rng.integers(1, 3, 3_000),
            "e": rng.integers(0, 40_000, 3_000).astype(float),
            "s": 1.0,
        }
    )
    whole = records_outcomes(frame, "c", "p", {"events": "e", "score": "s"}, "r.parquet")
    for parts in (2, 5, 13):
        split = dd.from_pandas(frame, npartitions=parts)
        with distributed.Client(cluster):
            _same(whole, records_from_dask(split, COLS, "r.parquet"))
    cell = frame[(frame["c"] == "a") & (frame["p"] == 1)]["e"].astype(int).tolist()
    from fractions import Fraction

    exact = sum(Fraction(v) ** 2 for v in cell) - Fraction(sum(cell)) ** 2 / len(cell)
    got = whole.frame[(whole.frame["outcome"] == "events")].iloc[0]
    assert got["ssw"] == float(exact)


def test_run_on_a_dask_cluster_matches_the_local_run(tmp_path, cluster):
    raw, *_ = records("sw_example")
    first = raw[raw["trt"] == 1].groupby("cluster")["period"].min()
    waves = "\n".join(
        f"  - {{wave: s{s}, start: {s}, units: [{', '.join(repr(str(u)) for u in g.index)}]}}"
        for s, g in first.groupby(first)
    )
    design = tmp_path / "sw_records.yaml"
    design.write_text(RECORDS_DESIGN.format(waves=waves))
    data = tmp_path / "records.parquet"
    raw.to_parquet(data)
    assert main(["run", str(design), "--data", str(data), "--out", str(tmp_path / "a")]) == 0
    address = cluster.scheduler_address
    assert (
        main(
            [
                "run",
                str(design),
                "--data",
                str(data),
                "--out",
                str(tmp_path / "b"),
                "--scheduler",
                address,
            ]
        )
        == 0
    )
    a, b = (json.loads((tmp_path / d / "sw_records.json").read_text()) for d in "ab")
    assert a["analyses"][0]["estimates"] == b["analyses"][0]["estimates"]
    # 2011 records, published rounded to 5 (disclosure control)
    assert a["analyses"][0]["diagnostics"]["design"]["individuals"] == 2010


def test_bad_scheduler_and_oversized_individual_paths_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr("pathfinder_eval.data.records.CONNECT_TIMEOUT", "1s")
    path = _parquet(_records(500), tmp_path / "r.parquet", 100)
    assert count_records(path) == 500
    with pytest.raises(DataError, match="cannot reach the Dask scheduler"):
        records_on_cluster(path, COLS, "tcp://127.0.0.1:9")
    check_records_fit(path, available=1e9)  # 500 records fit in 1 GB
    with pytest.raises(DataError, match=r"500 records need about 1 MB .*1,200 MB per million"):
        check_records_fit(path, available=1e3)
    csv = tmp_path / "r.csv"
    _records(20_000).to_csv(csv, index=False)
    assert count_records(csv) == 20_000
    # counted, not estimated from the first lines: long early rows once made it 70 times low
    wide = _records(2_000).assign(note="")
    wide.loc[:99, "note"] = "x" * 2_000
    wide.to_csv(csv, index=False)
    assert count_records(csv) == 2_000
    with pytest.raises(DataError, match=r"cannot reach the Dask scheduler at 'foo'.*tcp://HOST"):
        records_on_cluster(path, COLS, "foo")  # not an address: was an internal ValueError
    idle = distributed.LocalCluster(n_workers=0, processes=False, dashboard_address=None)
    with idle, pytest.raises(DataError, match="has no workers"):  # tasks would wait for ever
        records_on_cluster(path, COLS, idle.scheduler_address)


def test_count_of_missing_columns_and_empty_files(tmp_path):
    path = _parquet(_records(50).drop(columns="s"), tmp_path / "r.parquet", 10)
    with pytest.raises(
        DataError, match=r"required column 's' is missing.*columns present: c, p, e"
    ):
        records_from_file(path, COLS)
    empty = tmp_path / "e.parquet"
    pq.write_table(
        pa.table(
            {
                "c": pa.array([], pa.string()),
                "p": pa.array([], pa.int64()),
                "e": pa.array([], pa.float64()),
                "s": pa.array([], pa.float64()),
            }
        ),
        empty,
    )
    with pytest.raises(DataError, match="has no data rows"):
        records_from_file(empty, COLS)


def test_run_refuses_a_covariate_file_that_would_not_fit(tmp_path, monkeypatch, capsys):
    raw, *_ = records("sw_example")
    first = raw[raw["trt"] == 1].groupby("cluster")["period"].min()
    waves = "\n".join(
        f"  - {{wave: s{s}, start: {s}, units: [{', '.join(repr(str(u)) for u in g.index)}]}}"
        for s, g in first.groupby(first)
    )
    design = tmp_path / "sw_records.yaml"
    design.write_text(
        RECORDS_DESIGN.format(waves=waves).replace(
            "period: period}", "period: period, covariates: [outcome_bin]}"
        )
    )
    data = tmp_path / "records.parquet"
    raw.to_parquet(data)
    # 2,011 records at 1,200 MB per million need 2.4 MB: refused with 2 MB available
    monkeypatch.setattr("psutil.virtual_memory", lambda: type("M", (), {"available": 2**21}))
    assert main(["run", str(design), "--data", str(data), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "2,011 records need about 2 MB in memory" in err and "2 MB is available" in err
    assert "Traceback" not in err and not (tmp_path / "o").exists()


def test_a_records_outcome_with_counts_says_why_it_is_refused(tmp_path):
    """`- column: y` with a denominator on records was refused as "records need '- column:
    <name>' outcomes", though it was one (found in review)."""
    from pathfinder_eval.data.load import record_columns
    from pathfinder_eval.spec import DesignSpec, Outcome

    spec = DesignSpec.model_validate(
        {
            "name": "r",
            "title": "r",
            "pilot": "trial",
            "unit_level": "cluster",
            "time": {"axis": "period"},
            "rollout": [{"wave": "a", "start": 2, "units": ["c1"]}],
            "outcomes": [Outcome(column="y", denominator="n").model_dump()],
            "analyses": [{"id": "lmm", "estimator": "stepped_wedge"}],
            "data": {"source": "records"},
        }
    )
    with pytest.raises(DataError, match="outcomes without denominator: each record is one person"):
        record_columns(spec, "people.csv")


def test_a_parquet_file_sums_alike_in_parts_and_on_a_cluster(tmp_path, cluster):
    """Parts follow the row groups, as the cluster's partitions do: the continuous score's
    summaries are equal bit for bit, not only to rounding (a part crossing row groups gave
    estimates 2.5e-8 apart, found in review); a row group above the part size is split."""
    frame = _records(6_000)
    path = _parquet(frame, tmp_path / "r.parquet", row_group=777)
    local = records_from_file(path, COLS, 10_000)
    pd.testing.assert_frame_equal(
        local.frame, records_on_cluster(path, COLS, cluster.scheduler_address).frame
    )
    _same(local, records_from_file(path, COLS, 500))


def _write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def test_cluster_ids_read_alike_whatever_their_type_route_or_part(tmp_path, cluster):
    """Ids as written in a CSV ('01' stays '01') on every route; whole numbers stored as floats
    read as integers ('3', not '3.0'), value by value, so a part holding a float cannot split a
    cluster in two (found in review: 12 clusters from 6)."""
    frame = _records(3_000)
    frame["c"] = frame["c"].str.replace("cl", "0")  # '00' ... '05'
    csv = _write(frame, tmp_path / "r.csv")
    cols = RecordColumns("c", "p", {"events": "e", "score": "s"}, "r.csv")
    local = records_from_file(csv, cols, 700)
    assert local.units["unit"].tolist() == [f"0{i}" for i in range(6)]
    _same(local, records_on_cluster(csv, cols, cluster.scheduler_address))
    from pathfinder_eval.data.tidy import read_tidy  # the covariate route reads it whole

    whole = records_outcomes(read_tidy(csv, text=("c",)), "c", "p", cols.outcomes, "r.csv")
    _same(local, whole)

    numbers = frame.assign(c=frame["c"].astype(int).astype(float))  # 0.0 ... 5.0
    floats = _write(numbers, tmp_path / "f.parquet")
    assert records_from_file(floats, COLS, 700).units["unit"].tolist() == list("012345")
    ints = _write(numbers.assign(c=numbers["c"].astype(int)), tmp_path / "i.parquet")
    pd.testing.assert_frame_equal(
        records_from_file(floats, COLS, 700).frame.drop(columns="source"),
        records_from_file(ints, COLS, 700).frame.drop(columns="source"),
    )
    mixed = numbers.astype({"c": object})
    mixed.loc[2_500:, "c"] = mixed.loc[2_500:, "c"].astype(int)  # a later part of integers
    pd.testing.assert_frame_equal(
        records_outcomes(mixed, "c", "p", cols.outcomes, "m").frame.drop(columns="source"),
        records_from_file(ints, COLS, 700).frame.drop(columns="source"),
    )
    gap = numbers.copy()
    gap.loc[1_234, "c"] = np.nan  # a float NaN is a missing id, not a cluster called 'nan'
    with pytest.raises(DataError, match=r"column c, row 1235: unit identifier is missing"):
        records_from_file(_write(gap, tmp_path / "g.parquet"), COLS, 700)


def test_damaged_csv_rows_repeated_columns_and_huge_integers(tmp_path, cluster):
    """A CSV row with a field too many is an error naming its line (with only the needed
    columns read, pandas dropped the extra field unseen), first row or later; a row cut short
    reads as missing values, counted; a column named twice is refused in CSV and Parquet; an
    integer outcome beyond 2^53 is left out and counted as on a cluster, not a crash."""
    frame = _records(3_000)
    cols = RecordColumns("c", "p", {"events": "e", "score": "s"}, "r.csv")
    text = _write(frame, tmp_path / "r.csv").read_text().splitlines()
    for at in (1, 2_500):
        lines = [*text[:at], text[at] + ",9", "", *text[at + 1 :]]  # (and a blank line)
        (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
        with pytest.raises(DataError, match=rf"d\.csv: row {at}: line {at + 1} has 5 fields"):
            records_from_file(tmp_path / "d.csv", cols, 700)
    lines = [*text[:2_500], "\n", text[2_500] + ",9", *text[2_501:]]
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"d\.csv: row 2502: line 2503 has 5 fields"):
        records_from_file(tmp_path / "d.csv", cols, 700)  # pandas counts blank lines too
    with pytest.raises(DataError, match=r"d\.csv: a row has more fields than the header"):
        records_on_cluster(tmp_path / "d.csv", cols, cluster.scheduler_address)
    short = [*text[:2_500], text[2_500].rsplit(",", 1)[0], *text[2_501:]]
    (tmp_path / "s.csv").write_text("\n".join(short) + "\n")
    got = records_from_file(tmp_path / "s.csv", cols, 700)
    missing = [e for e in got.exclusions if e.outcome == "score" and "missing" in e.reason]
    assert [e.count for e in missing] == [1]  # counted, not lost
    # a quote left open past the first chunk pandas reads: refused, not the rest of the file
    # taken into one field (Arrow's CSV reader did that, dropping the records after it)
    body = "".join(f"cl{i % 5},1,{i % 2},{i % 7}.5\n" for i in range(100_000))
    (tmp_path / "q.csv").write_text("c,p,e,s\n" + body + 'cl1,1,1,"2.5\ncl2,1,0,1.5\n')
    with pytest.raises(DataError, match=r"q\.csv: cannot be read as csv .*EOF inside string"):
        records_from_file(tmp_path / "q.csv", cols, 10_000)
    (tmp_path / "twice.csv").write_text("c,p,e,s,s\n" + "\n".join(text[1:]))
    with pytest.raises(DataError, match="names column 's' twice"):
        records_from_file(tmp_path / "twice.csv", cols, 700)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table.append_column("s", table.column("s")), tmp_path / "twice.parquet")
    for read in (
        lambda: records_from_file(tmp_path / "twice.parquet", COLS),
        lambda: records_on_cluster(tmp_path / "twice.parquet", COLS, cluster.scheduler_address),
    ):
        with pytest.raises(DataError, match="names column 's' 2 times"):
            read()
    huge = frame.assign(e=frame["e"].fillna(0).astype(np.int64))
    huge.loc[1_000, "e"] = 2**62
    path = _write(huge, tmp_path / "h.parquet")
    local = records_from_file(path, COLS, 700)
    assert [e.count for e in local.exclusions if e.outcome == "events"] == [1]
    _same(local, records_on_cluster(path, COLS, cluster.scheduler_address))
