"""Speed of the whole report, per shipped design (run on demand, not a test).

For each pilot design, on the synthetic panel and (when ../shared/data/public exists) on the real
statistics: the wall time of `pathfinder-eval run` in a cold process (best of 3) with its
default workers (the available cores) and with `--workers 1`, and one phase breakdown from a
fresh process, each phase in one process (imports, the design's estimator engines included,
data load, panel, each analysis summed over its outcomes, placebo-in-time, rendering).
`--save FILE` writes the numbers as JSON; `--previous FILE` prints the ratio to a saved run
(e.g. of the previous release) beside each total.

    OMP_NUM_THREADS=1 python benchmarks/report_speed.py [--repeats 3] [--save now.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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
print(json.dumps(phases))
"""


def cold_run(design: Path, data: Path | None, out: Path, workers: int | None) -> float:
    """Seconds for `pathfinder-eval run` in a new interpreter (workers None: its default)."""
    cmd = [sys.executable, "-m", "pathfinder_eval.cli", "run", str(design), "--out", str(out)]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    if data is not None:
        cmd += ["--data", str(data)]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def phases(design: Path, data: Path | None) -> dict[str, float]:
    """The phase breakdown, measured in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", PHASES, str(design), str(data) if data else ""],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--save", type=Path, default=None)
    parser.add_argument("--previous", type=Path, default=None)
    args = parser.parse_args()
    previous = json.loads(args.previous.read_text()) if args.previous else {}
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sources = [("synthetic", None)] + ([("real", PUBLIC)] if PUBLIC.is_dir() else [])
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in DESIGNS:
            design = ROOT / "designs" / f"{name}.yaml"
            for label, data in sources:
                key = f"{name} / {label}"
                best, serial = (
                    min(cold_run(design, data, Path(tmp), w) for _ in range(args.repeats))
                    for w in (None, 1)
                )
                results[key] = {"total": best, "one_worker": serial, "phases": phases(design, data)}
                old = previous.get(key, {}).get("total")
                ratio = f"  ({best / old:.2f}x the previous {old:.1f} s)" if old else ""
                print(
                    f"{key:28} {best:6.1f} s on {available_workers()} cores, {serial:.1f} s with "
                    f"--workers 1  (best of {args.repeats}, cold process){ratio}"
                )
                for phase, seconds in results[key]["phases"].items():  # one process
                    print(f"    {phase:34} {seconds:6.2f} s")
    if args.save:
        args.save.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
