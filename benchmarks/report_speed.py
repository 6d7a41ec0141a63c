"""Speed of the whole report, per shipped design (run on demand, not a test).

For each pilot design, on the synthetic panel and (when ../shared/data/public exists) on the real
statistics: the wall time of `pathfinder-eval run` in a cold process (best of 3) with its
default workers (the available cores) and with `--workers 1`, and one phase breakdown from a
fresh process, each phase in one process (imports, the design's estimator engines included,
data load, panel, each analysis summed over its outcomes, placebo-in-time, rendering). Beside
each total: the peak resident memory of the largest process of the default run (its workers
included, so read from getrusage: floored at this script's own small peak, which Linux carries
into a child's, measure.py), and the import
floor: the seconds a fresh interpreter takes to import, in the same order, every module outside
pathfinder_eval that the run imported (numpy, pandas, SciPy, statsmodels, matplotlib ... and the
standard library's), best of the repeats: the import time left if this package's own modules
cost nothing (it could still lower it only by not using numba, pydantic and the like). The
package is byte-compiled first, as `pip install` leaves it (a process started with
PYTHONDONTWRITEBYTECODE set, as some sandboxes do, would otherwise compile its modules from
source on every run: 0.3-0.5 s).
`--save FILE` writes the numbers as JSON; `--previous FILE` prints the ratio to a saved run
(e.g. of the previous release) beside each total.

    OMP_NUM_THREADS=1 python benchmarks/report_speed.py [--repeats 3] [--save now.json]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pathfinder_eval
from pathfinder_eval.workers import available_workers

ROOT = Path(__file__).resolve().parents[1]
PUBLIC = ROOT.parent / "shared" / "data" / "public"
DESIGNS = ("family_help", "family_network", "rcc")

PHASES = r"""
import json, sys, time
t0 = time.perf_counter()
from pathfinder_eval.data.load import load_outcomes
from pathfinder_eval.data.neighbours import resolve_neighbour_pool
from pathfinder_eval.estimators import checked_fit
from pathfinder_eval.panel import build_panel
from pathfinder_eval.pipeline import build_estimator, describe_outcome, evaluate
from pathfinder_eval.registry import entry
from pathfinder_eval.report.render import report_files
from pathfinder_eval.robustness import placebo_in_time
from pathfinder_eval.spec import Estimator, load_design
from pathlib import Path
design, data = sys.argv[1], (Path(sys.argv[2]) if sys.argv[2] else None)
spec = resolve_neighbour_pool(load_design(design), data)
engines = [entry(a.estimator).cls for a in spec.analyses]  # imported on first use: count here
phases = {"import": time.perf_counter() - t0}
t = time.perf_counter(); raw = load_outcomes(spec, data, spec.seed)
phases["load"] = time.perf_counter() - t
t = time.perf_counter(); panel = build_panel(spec, raw, describe_outcome(spec))
phases["panel"] = time.perf_counter() - t
placebo = []
for i, a in enumerate(spec.analyses):
    if a.estimator is Estimator.DESCRIPTIVE:
        continue
    t = time.perf_counter()
    for info in panel.outcomes:
        if a in spec.analyses_for(info.id) and info.available:
            try:
                checked_fit(build_estimator(spec, i), panel, info.id, a.id, a.level)
                if entry(a.estimator).placebo:
                    placebo.append((a, info.id, build_estimator(spec, i)))
            except Exception:
                pass
    phases[f"analysis {a.id}"] = time.perf_counter() - t
t = time.perf_counter(); placebo_in_time(panel, placebo)
phases["placebo in time"] = time.perf_counter() - t
ev = evaluate(spec, data, workers=1)
t = time.perf_counter(); report_files(ev, workers=1)
phases["render"] = time.perf_counter() - t
others = [m for m in sys.modules if m.split(".")[0] not in ("pathfinder_eval", "__main__")]
print(json.dumps({"phases": phases, "modules": others}))
"""

FLOOR = r"""
import importlib, json, sys, time
names = json.loads(sys.stdin.read())
t0 = time.perf_counter()
for name in names:
    try:
        importlib.import_module(name)
    except Exception:  # a module that only imports as part of its package's own import
        pass
print(time.perf_counter() - t0)
"""


def cold_run(
    design: Path, data: Path | None, out: Path, workers: int | None
) -> tuple[float, float]:
    """Seconds for `pathfinder-eval run` in a new interpreter (workers None: its default), and
    the peak resident MiB of its largest process (the run or one of its workers)."""
    cmd = [sys.executable, "-m", "pathfinder_eval.cli", "run", str(design), "--out", str(out)]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    if data is not None:
        cmd += ["--data", str(data)]
    with tempfile.TemporaryFile() as err:  # a file, not a pipe: a long stderr cannot block
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)  # this run's resource use, its workers' too
        seconds = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            raise SystemExit(f"{' '.join(cmd)} failed: {err.read().decode()[-2000:]}")
    return seconds, usage.ru_maxrss / 1024


def phases(design: Path, data: Path | None) -> tuple[dict[str, float], list[str]]:
    """The phase breakdown, measured in a fresh interpreter, and the modules outside
    pathfinder_eval it imported, in order."""
    done = subprocess.run(
        [sys.executable, "-c", PHASES, str(design), str(data) if data else ""],
        check=True,
        capture_output=True,
        text=True,
    )
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return out["phases"], out["modules"]


def import_floor(modules: list[str]) -> float:
    """Seconds a fresh interpreter takes to import `modules`, in order."""
    done = subprocess.run(
        [sys.executable, "-c", FLOOR],
        input=json.dumps(modules),
        check=True,
        capture_output=True,
        text=True,
    )
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--save", type=Path, default=None)
    parser.add_argument("--previous", type=Path, default=None)
    args = parser.parse_args()
    previous = json.loads(args.previous.read_text()) if args.previous else {}
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    compileall.compile_dir(Path(pathfinder_eval.__file__).parent, quiet=1)
    sources = [("synthetic", None)] + ([("real", PUBLIC)] if PUBLIC.is_dir() else [])
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in DESIGNS:
            design = ROOT / "designs" / f"{name}.yaml"
            for label, data in sources:
                key = f"{name} / {label}"
                runs = [cold_run(design, data, Path(tmp), None) for _ in range(args.repeats)]
                best, peak = min(t for t, _ in runs), max(m for _, m in runs)
                serial = min(cold_run(design, data, Path(tmp), 1)[0] for _ in range(args.repeats))
                steps, modules = phases(design, data)
                floor = min(import_floor(modules) for _ in range(args.repeats))
                results[key] = {
                    "total": best,
                    "one_worker": serial,
                    "peak_mib": peak,
                    "import_floor": floor,
                    "phases": steps,
                }
                old = previous.get(key, {}).get("total")
                ratio = f"  ({best / old:.2f}x the previous {old:.1f} s)" if old else ""
                print(
                    f"{key:28} {best:6.1f} s on {available_workers()} cores, {serial:.1f} s with "
                    f"--workers 1  (best of {args.repeats}, cold process){ratio}; peak "
                    f"{peak:,.0f} MiB; import floor {floor:.2f} s ({len(modules)} modules "
                    "outside pathfinder_eval)"
                )
                for phase, seconds in results[key]["phases"].items():  # one process
                    print(f"    {phase:34} {seconds:6.2f} s")
    if args.save:
        args.save.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
