"""Benchmark: individual records at national scale → cluster-period summaries.

Run on demand (not a test): python benchmarks/records_scale.py [--rows 50_000_000] [--repeats 3]
A stepped-wedge trial's records (20 clusters × 11 periods, a 0/1 outcome, cluster names as
text) are written once to a Parquet file in the system's temporary folder (seed 1, pyarrow's
default row groups). Each way of summarising them then runs in a fresh process (best of
REPEATS; peak memory is that process's maximum resident set, so a Dask cluster is run with
threads inside it):
- pathfinder-eval, read in parts (what `pathfinder-eval run` does),
- pathfinder-eval on a Dask LocalCluster (2 workers; what `run --scheduler` does),
- pathfinder-eval on the frame in memory (pandas.read_parquet, then one part),
- peers from the same file: pandas (read_parquet, groupby size/sum/var) and pyarrow
  (read_table, Table.group_by count/sum/variance),
- `pathfinder-eval run` end to end (summaries, the stepped-wedge LMM, the report).
Printed: seconds, peak RSS, the ratio peer / ours (parts), and the largest difference of each
way's summaries from ours (parts); `--memory` measures the individual-covariate path's peak
memory per million records instead (data/records.py MB_PER_MILLION).
"""

from __future__ import annotations

import argparse
import inspect
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from measure import high_water_mib  # benchmarks/ is on the path

CLUSTERS, PERIODS, CHUNK = 20, 11, 1_000_000

COMMON = """
import json, sys, time
import numpy as np, pandas as pd
path = sys.argv[1]
def done(t, frame):
    frame = frame.sort_values(["unit", "period"]).reset_index(drop=True)
    frame[["unit", "period", "n", "sum", "ssw"]].to_parquet(sys.argv[2])
    print(json.dumps({"seconds": t, "rss": high_water_mib() * 1024}))
def ours(data):
    f = data.frame
    return pd.DataFrame({"unit": f["unit"], "period": f["period"], "n": f["denominator"],
                         "sum": f["numerator"], "ssw": f["ssw"]})
COLS = None
def cols():
    from pathfinder_eval.data.records import RecordColumns
    return RecordColumns("cluster", "period", {"y": "y"}, path)
"""

# each way's process measures its own peak (VmHWM): its ru_maxrss would hold this one's
CHILD = inspect.getsource(high_water_mib) + COMMON

WAYS = {
    "parts": """
from pathfinder_eval.data.records import records_from_file
from pathlib import Path
t = time.perf_counter(); data = records_from_file(Path(path), cols())
done(time.perf_counter() - t, ours(data))
""",
    "dask": """
from pathlib import Path
from distributed import LocalCluster
from pathfinder_eval.data.records import records_on_cluster
with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                  dashboard_address=None) as lc:
    t = time.perf_counter(); data = records_on_cluster(Path(path), cols(), lc.scheduler_address)
    done(time.perf_counter() - t, ours(data))
""",
    "in memory": """
from pathfinder_eval.data.records import records_outcomes
t = time.perf_counter(); raw = pd.read_parquet(path)
data = records_outcomes(raw, "cluster", "period", {"y": "y"}, path)
done(time.perf_counter() - t, ours(data))
""",
    "pandas": """
t = time.perf_counter(); raw = pd.read_parquet(path, columns=["cluster", "period", "y"])
g = raw.groupby(["cluster", "period"], observed=True)["y"].agg(["size", "sum", "var"])
g = g.reset_index()
out = pd.DataFrame({"unit": g["cluster"].astype(str), "period": g["period"], "n": g["size"],
                    "sum": g["sum"], "ssw": g["var"] * (g["size"] - 1)})
done(time.perf_counter() - t, out)
""",
    "pyarrow": """
import pyarrow.parquet as pq
t = time.perf_counter(); table = pq.read_table(path, columns=["cluster", "period", "y"])
g = table.group_by(["cluster", "period"]).aggregate(
    [("y", "count"), ("y", "sum"), ("y", "variance")]).to_pandas()
out = pd.DataFrame({"unit": g["cluster"].astype(str), "period": g["period"],
                    "n": g["y_count"], "sum": g["y_sum"], "ssw": g["y_variance"] * g["y_count"]})
done(time.perf_counter() - t, out)
""",
}

DESIGN = """
name: records_scale
title: Records at national scale (benchmark)
pilot: trial
unit_level: cluster
time: {{axis: period}}
rollout:
{waves}
comparison: {{pool: not_yet_treated, min_units: 1}}
outcomes: [{{column: y, name: Event}}]
analyses:
  - {{id: ne, estimator: stepped_wedge, options: {{model: nested_exchangeable}}}}
data: {{source: records, columns: {{unit: cluster, period: period}}}}
"""

RUN = """
import subprocess, resource
t = time.perf_counter()
import shutil
cli = shutil.which("pathfinder-eval") or str(__import__("pathlib").Path(sys.executable).parent
                                             / "pathfinder-eval")
subprocess.run([cli, "run", sys.argv[3], "--data", path, "--out", sys.argv[2] + ".out"],
               check=True, stdout=subprocess.DEVNULL)
print(json.dumps({"seconds": time.perf_counter() - t,
                  "rss": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def starts() -> np.ndarray:
    """Each cluster's first treated period: two clusters start in each of periods 2..11."""
    return 2 + np.arange(CLUSTERS) // 2


def write_records(path: Path, rows: int) -> None:
    """rows records, 1 million at a time: a 0/1 outcome with cluster and period effects and
    an effect of +0.02 once treated."""
    rng = np.random.default_rng(1)
    names = pa.array([f"cluster_{i:02d}" for i in range(CLUSTERS)])
    base = 0.3 + rng.normal(0, 0.05, CLUSTERS)[:, None] + np.linspace(0, 0.03, PERIODS)[None]
    start = starts()
    schema = pa.schema(
        [
            ("cluster", pa.dictionary(pa.int32(), pa.string())),
            ("period", pa.int64()),
            ("y", pa.float64()),
        ]
    )
    with pq.ParquetWriter(path, schema) as writer:
        for lo in range(0, rows, CHUNK):
            n = min(CHUNK, rows - lo)
            c = rng.integers(0, CLUSTERS, n)
            p = rng.integers(1, PERIODS + 1, n)
            prob = base[c, p - 1] + 0.02 * (p >= start[c])
            y = (rng.random(n) < prob).astype(float)
            cluster = pa.DictionaryArray.from_arrays(pa.array(c.astype(np.int32)), names)
            writer.write_table(pa.table([cluster, pa.array(p), pa.array(y)], schema=schema))


def run(way: str, path: Path, out: Path, extra: list[str], repeats: int) -> dict:
    """Best of `repeats` fresh processes."""
    best = None
    for _ in range(repeats):
        code = CHILD + (RUN if way == "run" else WAYS[way])
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code), str(path), str(out), *extra],
            capture_output=True,
            text=True,
        )
        if done.returncode:
            sys.exit(f"{way} failed:\n{done.stderr}")
        got = json.loads(done.stdout.strip().splitlines()[-1])
        if best is None or got["seconds"] < best["seconds"]:
            best = got
    return best


MEMORY = """
import time
from pathfinder_eval.pipeline import evaluate
from pathfinder_eval.spec import load_design
from pathlib import Path
before = high_water_mib() * 1024
evaluate(load_design(sys.argv[3]), Path(path))
print(json.dumps({"seconds": 0, "rss": high_water_mib() * 1024,
                  "before": before}))
"""


def memory_per_million(folder: Path, rows: int) -> None:
    """Peak RSS of `run` with an individual covariate, at rows and at twice rows: the slope
    is the memory per million records."""
    waves = "\n".join(
        f"  - {{wave: s{s}, start: {s}, units: [{', '.join(f'cluster_{i:02d}' for i in us)}]}}"
        for s, us in _waves().items()
    )
    design = folder / "covariate.yaml"
    design.write_text(
        DESIGN.format(waves=waves).replace(
            "columns: {unit: cluster, period: period}",
            "columns: {unit: cluster, period: period, covariates: [x]}",
        )
    )
    peaks = []
    for n in (rows, 2 * rows):
        path = folder / f"cov_{n}.parquet"
        write_records(path, n)
        table = pq.read_table(path)
        x = np.random.default_rng(2).normal(size=table.num_rows)
        pq.write_table(table.append_column("x", pa.array(x)), path)
        code = CHILD + MEMORY
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code), str(path), "-", str(design)],
            check=True,
            capture_output=True,
            text=True,
        )
        peaks.append(json.loads(done.stdout.strip().splitlines()[-1])["rss"] / 1024)
        print(f"{n:>12,} records with a covariate: peak RSS {peaks[-1]:,.0f} MB")
    print(f"memory per million records: {(peaks[1] - peaks[0]) / (rows / 1e6):,.0f} MB")


def _waves() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for i, s in enumerate(starts()):
        out.setdefault(int(s), []).append(i)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ways", default="parts,dask,in memory,pandas,pyarrow,run")
    parser.add_argument("--memory", action="store_true", help="measure MB per million records")
    args = parser.parse_args()
    folder = Path(tempfile.gettempdir()) / "pathfinder_records_scale"
    folder.mkdir(exist_ok=True)
    if args.memory:
        memory_per_million(folder, min(args.rows, 2_000_000))
        return
    path = folder / f"records_{args.rows}.parquet"
    if not path.is_file():
        write_records(path, args.rows)
    waves = "\n".join(
        f"  - {{wave: s{s}, start: {s}, units: [{', '.join(f'cluster_{i:02d}' for i in us)}]}}"
        for s, us in _waves().items()
    )
    design = folder / "records_scale.yaml"
    design.write_text(DESIGN.format(waves=waves))
    print(
        f"{args.rows:,} records ({path.stat().st_size / 2**20:,.0f} MB Parquet, "
        f"{pq.ParquetFile(path).metadata.num_row_groups} row groups), "
        f"{CLUSTERS} clusters × {PERIODS} periods; best of {args.repeats} fresh processes"
    )
    print(f"{'way':<12}{'seconds':>10}{'peak RSS MB':>13}{'ratio':>8}  largest difference")
    import pandas as pd

    rows, reference = {}, None
    ways = args.ways.split(",")
    ways.sort(key=lambda w: w != "parts")  # ours first: the reference and the ratios' base
    for way in ways:
        out = folder / f"{way.replace(' ', '_')}.parquet"
        rows[way] = run(way, path, out, [str(design)], args.repeats)
        if way == "run":
            diff = "(summaries, LMM, report)"
        else:
            got = pd.read_parquet(out)
            if reference is None:
                reference = got
            cells = got[["unit", "period"]].to_numpy()
            same = len(cells) == len(reference) and bool(
                (cells == reference[["unit", "period"]].to_numpy()).all()
            )
            gaps = [
                np.abs(got[c].to_numpy(float) - reference[c].to_numpy(float)).max()
                for c in ("n", "sum", "ssw")
            ]
            diff = (
                ("n, sum, ssw: " + ", ".join(f"{g:.3g}" for g in gaps)) if same else "cells differ"
            )
        ratio = rows[way]["seconds"] / rows["parts"]["seconds"] if "parts" in rows else np.nan
        print(
            f"{way:<12}{rows[way]['seconds']:>10.2f}{rows[way]['rss'] / 1024:>13,.0f}"
            f"{ratio:>8.2f}  {diff}"
        )


if __name__ == "__main__":
    main()
