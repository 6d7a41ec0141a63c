"""`pathfinder-eval`: a thin shell over the pipeline. User errors → one line on stderr, exit 2."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from pathfinder_eval import __version__
from pathfinder_eval.errors import PathfinderError

EXIT_USAGE = 2
EXIT_INTERNAL = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports it
DEBUG_VARIABLE = "PATHFINDER_EVAL_DEBUG"


class UsageError(PathfinderError):
    """A command line argparse cannot parse."""


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors raised as one-line UsageErrors, not printed, and no
    abbreviated options (`--work 3` for `--workers 3` would reach the report's command line)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **{"allow_abbrev": False, **kwargs})

    def error(self, message: str):  # type: ignore[override]
        command = self.prog.removeprefix("pathfinder-eval").strip()
        raise UsageError(
            message,
            where=f"pathfinder-eval {command}" if command else None,
            fix=f"see `{self.prog} --help` for the arguments",
        )


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="pathfinder-eval", description=__doc__)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a design's analyses and write NAME.html and NAME.json")
    run.add_argument("design", type=Path, help="design file (designs/*.yaml)")
    run.add_argument(
        "--data",
        type=Path,
        default=None,
        help="folder of DfE EES CSV downloads, or a tidy .csv/.parquet/.dta file "
        "(default: the design's data source, the embedded synthetic panel)",
    )
    run.add_argument(
        "--out", type=_folder, default=Path("out"), help="output folder (default out/)"
    )
    run.add_argument("--seed", type=_seed, default=None, help="random seed (default: the design's)")
    run.add_argument(
        "--templates",
        type=Path,
        default=None,
        help="folder of report templates overriding the packaged ones",
    )

    run.add_argument("--pdf", action="store_true", help="also write NAME.pdf (headless Chromium)")
    run.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="summarise a records file (data.source: records) on this Dask distributed "
        "scheduler, one task per partition (the workers must be able to read the file)",
    )
    run.add_argument(
        "--plan",
        type=Path,
        default=None,
        help="registered analysis plan (NAME_plan.json): list every deviation in the report",
    )
    run.add_argument(
        "--workers",
        type=_workers,
        default=None,
        help="local processes for the fits (default: the available cores, at most 8; the "
        "report is the same for any number and does not record it)",
    )

    plan = sub.add_parser(
        "plan",
        help="write the statistical analysis plan (NAME_plan.html, NAME_plan.json) before "
        "the outcome data: no value from the first start on is read",
    )
    plan.add_argument("design", type=Path, help="design file (designs/*.yaml)")
    plan.add_argument(
        "--data",
        type=Path,
        default=None,
        help="data whose pre-start values estimate what the design can detect (default: the "
        "design's data source)",
    )
    plan.add_argument(
        "--out", type=_folder, default=Path("out"), help="output folder (default out/)"
    )
    plan.add_argument(
        "--templates", type=Path, default=None, help="folder of templates overriding the packaged"
    )
    plan.add_argument(
        "--pdf", action="store_true", help="also write NAME_plan.pdf (headless Chromium)"
    )

    val = sub.add_parser("validate", help="check a design (and its data) without running it")
    val.add_argument("design", type=Path)
    val.add_argument("--data", type=Path, default=None)

    pw = sub.add_parser("power", help="analytic power and MDES of a trial design")
    pw.add_argument("design", type=Path)
    pw.add_argument("--out", type=_folder, default=None, help="also write NAME_power.json/.html")
    pw.add_argument("--alpha", type=_level, default=0.05, help="two-sided level (default 0.05)")
    pw.add_argument(
        "--reference",
        choices=["analysis", "z", "t"],
        default=None,
        help="analytic power: the primary analysis's own reference (default; for "
        "Kenward-Roger and Satterthwaite their df at the trial's variances), a z test, or t "
        "with clusters − 2 df",
    )
    pw.add_argument(
        "--simulate",
        type=int,
        default=None,
        metavar="N",
        help="power by simulating N data sets and running the real analysis",
    )
    pw.add_argument(
        "--effect",
        type=_finite_effect,
        default=None,
        help="effect to simulate, or analytic power's effect (trial: SD units; LA panels: "
        "relative change in the rate, e.g. -0.1); default: the design's",
    )
    pw.add_argument(
        "--mdes",
        type=float,
        nargs="?",
        const=0.8,
        default=None,
        metavar="POWER",
        help="with --simulate: the minimum detectable effect at POWER (default 0.8) by "
        "simulation, with its Monte-Carlo interval: from one run for a trial's LMM with an "
        "immediate effect and KR, Satterthwaite or model-based inference, else by bisection "
        "(each point a full simulation)",
    )
    pw.add_argument(
        "--analysis",
        default=None,
        help="analysis id (default: the primary analysis; simulation: else the first it can run)",
    )
    pw.add_argument(
        "--outcome",
        default=None,
        help="outcome id (simulation: default the first; analytic: the analyses of this outcome)",
    )
    pw.add_argument(
        "--seed", type=_seed, default=None, help="with --simulate: seed (default: the design's)"
    )
    pw.add_argument(
        "--workers", type=_workers, default=None, help="local processes (default: all cores)"
    )
    pw.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run the replicates on a Dask distributed scheduler",
    )
    pw.add_argument(
        "--data",
        type=Path,
        default=None,
        help="with --simulate: resample null panels from this real LA panel (folder of DfE EES "
        "CSVs or a tidy file) instead of the synthetic one",
    )

    rep = sub.add_parser("replicate", help="reproduce a published analysis (see --list)")
    rep.add_argument("name", nargs="?", help="registry entry")
    rep.add_argument("--list", action="store_true", help="list the entries")
    rep.add_argument("--out", type=_folder, default=Path("out"), help="output folder")
    rep.add_argument("--pdf", action="store_true", help="also write NAME.pdf (headless Chromium)")
    rep.add_argument(
        "--data",
        type=Path,
        default=None,
        help="folder of the reference datasets read in place (its stepped_wedge/ and did/ "
        "files; default ../shared/data/reference); entries whose data ship with the package "
        "do not need it, and --list says which entry needs which file",
    )

    ind = sub.add_parser(
        "indicators",
        help="list the indicator catalogue, or with --data compute the indicators from DfE files",
    )
    ind.add_argument(
        "--data",
        type=Path,
        default=None,
        help="folder of DfE EES CSVs: compute England, regional and --la values from it",
    )
    ind.add_argument(
        "--la", action="append", default=[], metavar="NAME", help="an LA (name or code); repeat"
    )
    ind.add_argument(
        "--year", type=int, default=None, help="reporting year (default: each one's latest)"
    )
    ind.add_argument(
        "--indicator",
        action="append",
        default=[],
        metavar="ID",
        help="an indicator id; repeat (default: every one the folder's files allow)",
    )
    ind.add_argument("--format", choices=("table", "csv"), default="table", help="output format")
    sub.add_parser("las", help="list local authorities: DfE code, GSS code, name, region")
    return p


def _whole_number(least: int, what: str) -> Callable[[str], int]:
    """An argparse type: a whole number of `least` or more, else "'TEXT' is not WHAT"."""

    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            n = least - 1
        if n < least:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return n

    return parse


# a --workers value: processes, at least 1; a --seed: numpy refuses negative seeds
_workers = _whole_number(1, "a number of processes (1 or more)")
_seed = _whole_number(0, "a seed (a whole number of 0 or more)")


def _folder(text: str) -> Path:
    """An output folder: an empty name is refused (it wrote into the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not a folder name (e.g. out/)")
    return Path(text)


def _level(text: str) -> float:
    """A --alpha value: a significance level strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a level between 0 and 1 (e.g. 0.05)")
    return value


def _finite_effect(text: str) -> float:
    """A power --effect: a finite number (nan simulated unusable data, inf reported power 1)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not -float("inf") < value < float("inf"):  # NaN fails the comparison too
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number (e.g. 0.3 or -0.1)")
    if abs(value) > MAX_EFFECT:  # 1e308 overflowed the simulated outcomes into an internal error
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an effect to plan for: use one between -{MAX_EFFECT:g} and "
            f"{MAX_EFFECT:g} (SD units for trials, a relative change for LA panels)"
        )
    return value


MAX_EFFECT = 1000.0


def _outside_data(out: Path, data: Path | None) -> None:
    """The report may not be written into the data folder: the statistics stay as
    published (and their hashes, which the report records, as read)."""
    if data is None or not data.is_dir():
        return
    folder, target = data.resolve(), out.resolve()
    if target == folder or folder in target.parents:
        raise PathfinderError(
            f"the output folder {str(out)!r} is inside the data folder {str(data)!r}",
            where="--out",
            fix="write the report to a folder outside the data, e.g. --out out/",
        )


def _without_workers(argv: list[str]) -> list[str]:
    """The command line as the report records it: without --workers, which does not change
    the report (so the files are the same, byte for byte, for any number of workers)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--workers":
            skip = True
        elif not arg.startswith("--workers="):
            out.append(arg)
    return out


def _matplotlib_config() -> None:
    """Give matplotlib a lasting per-user config folder in the temporary directory when its
    default (under HOME) cannot be written; otherwise it makes a new one on every run and
    prints a multi-line warning."""
    if os.environ.get("MPLCONFIGDIR"):
        return
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    default = Path(base) / "matplotlib"
    try:
        default.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=default).close()
    except OSError:
        uid = os.getuid() if hasattr(os, "getuid") else "user"
        folder = Path(tempfile.gettempdir()) / f"pathfinder-eval-matplotlib-{uid}"
        try:
            folder.mkdir(mode=0o700, exist_ok=True)
        except OSError:
            return
        os.environ["MPLCONFIGDIR"] = str(folder)


def main(argv: list[str] | None = None) -> int:
    """Run one command. A user error (a PathfinderError, or a file the system refuses) prints
    one line and returns 2; Ctrl-C one line and 130; anything else is a bug: one line and 1,
    with the traceback only when PATHFINDER_EVAL_DEBUG is set."""
    try:
        args = _parser().parse_args(argv)
        _matplotlib_config()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=FutureWarning)
            # numpy's overflow and invalid-value notices: a non-finite result is reported
            # as not estimable with its reason (EffectEstimates.require_finite)
            warnings.simplefilter("ignore", category=RuntimeWarning)
            return _dispatch(args, argv if argv is not None else sys.argv[1:])
    except PathfinderError as exc:
        return _fail(exc.one_line())
    except BrokenPipeError:  # the reader stopped (`| head`): not an error of ours or theirs
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    except OSError as exc:
        return _fail(_os_error(exc).one_line())
    except KeyboardInterrupt:
        print("pathfinder-eval: stopped (Ctrl-C)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if os.environ.get(DEBUG_VARIABLE):
            raise
        detail = " ".join(str(exc).split())[:300]
        print(
            f"pathfinder-eval: internal error: {type(exc).__name__}: {detail}. Fix: this is a "
            f"bug in pathfinder-eval; please report it with the command and the design (set "
            f"{DEBUG_VARIABLE}=1 to see the traceback)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


def _fail(line: str) -> int:
    print(f"pathfinder-eval: error: {line}", file=sys.stderr)
    return EXIT_USAGE


def _os_error(exc: OSError) -> PathfinderError:
    """A file the system would not open or write, as a located one-line error."""
    return PathfinderError(
        exc.strerror or str(exc),
        file=str(exc.filename) if exc.filename is not None else None,
        fix="check that the path exists and that you may read it (or write it, for --out)",
    )


def _dispatch(args: argparse.Namespace, argv: list[str]) -> int:
    if args.command == "indicators":
        if args.data is None:
            given = [o for o, v in (("--la", args.la), ("--year", args.year),
                                    ("--indicator", args.indicator)) if v]  # fmt: skip
            if given:  # they select values computed from --data: alone they did nothing
                raise PathfinderError(
                    f"{', '.join(given)} only apply with --data: they select values computed "
                    "from its files",
                    where="indicators",
                    fix="add --data DIR (e.g. --data ../shared/data/public), or drop "
                    f"{', '.join(given)} to list the catalogue",
                )
            return _indicators()
        return _indicator_values(args)
    if args.command == "las":
        return _las()
    if args.command == "replicate":
        return _replicate(args)
    from pathfinder_eval.panel import CHECKS
    from pathfinder_eval.pipeline import evaluate, prepare
    from pathfinder_eval.spec import load_design

    spec = load_design(args.design)
    if args.command == "power":
        return _power(spec, args)
    if args.command == "plan":
        from pathfinder_eval.output import write_atomically
        from pathfinder_eval.planning import plan_evidence
        from pathfinder_eval.report.plan_view import plan_files

        _outside_data(args.out, args.data)
        files = plan_files(plan_evidence(spec, args.data), args.templates)
        paths = write_atomically(args.out, files)
        for path in paths:
            print(f"wrote {path}")
        return _pdf(paths) if args.pdf else 0
    if args.command == "validate":
        panel = prepare(spec, args.data)
        excluded = sum(e.count for e in panel.exclusions)
        print(
            f"{args.design}: valid: {len(panel.units)} units, {len(panel.cells)} unit-period "
            f"cells, {excluded} rows excluded (listed in the report's exclusions table)"
        )
        print(f"checks passed: {', '.join(c.name for c in CHECKS)}")
        return 0

    from pathfinder_eval.output import write_atomically
    from pathfinder_eval.report.render import report_files

    command = "pathfinder-eval " + shlex.join(_without_workers(argv))
    _outside_data(args.out, args.data)
    registered = None
    if args.plan is not None:
        from pathfinder_eval.analysis_plan import read_plan

        registered = read_plan(args.plan)  # before the run: a bad plan file fails fast
    ev = evaluate(spec, args.data, args.seed, command, args.scheduler, args.workers)
    if registered is not None:
        from pathfinder_eval.analysis_plan import check_against

        # the panel's spec: the neighbour pool resolved from the data, as `plan` resolved it
        check = check_against(
            registered, ev.panel.spec, args.plan.name, ev.provenance.seed, ev.panel.cells
        )
        ev = replace(ev, plan=check)
    paths = write_atomically(args.out, report_files(ev, args.templates, args.workers))
    for path in paths:
        print(f"wrote {path}")
    if args.pdf:
        return _pdf(paths)
    for path in paths:
        if path.suffix == ".html" and path.with_suffix(".pdf").is_file():
            print(
                f"note: {path.with_suffix('.pdf')} is from an earlier run; add --pdf to "
                "print it again, or delete it",
                file=sys.stderr,
            )
    return 0


def _pdf(paths: list[Path]) -> int:
    """PDF copies of the HTML pages just written; without Chromium, the install hint."""
    from pathfinder_eval.report.pdf import write_pdfs

    pages = [p for p in paths if p.suffix == ".html"]
    pdfs, hint = write_pdfs(pages)
    for path in pdfs:
        print(f"wrote {path}")
    if hint:
        print(hint, file=sys.stderr)
        for stale in (p.with_suffix(".pdf") for p in pages):
            if stale.is_file():  # from an earlier run: it no longer matches the HTML
                stale.unlink()
                print(f"removed {stale}: it was from an earlier run", file=sys.stderr)
    return 0


def _indicators() -> int:
    from pathfinder_eval.data.catalogue import load_catalogue

    for ind in load_catalogue().values():
        print(f"{ind.id:32} {ind.name} [{ind.scale}, {ind.polarity.replace('_', ' ')}]")
    return 0


def _indicator_values(args: argparse.Namespace) -> int:
    """Indicators computed from the files in --data, beside DfE's published figures."""
    from pathfinder_eval.data.indicator_values import indicator_table

    table, missing = indicator_table(args.data, args.la, args.year, args.indicator)
    if args.format == "csv":
        print(table.to_csv(index=False), end="")
        return 0
    shown = table.drop(columns=["numerator", "denominator", "area_code"])
    shown["value"] = [_plain(v) for v in shown["value"]]
    shown["published"] = [_plain(v) for v in shown["published"]]
    print(shown.to_string(index=False))
    print(
        "\nvalue: recomputed from the files' counts and rounded half up to DfE's published "
        "decimals; published: DfE's figure from the same file (blank where the file has none)."
    )
    if not args.indicator and missing:
        print("not computed (file absent): " + ", ".join(f"{k} ({f})" for k, f in missing.items()))
    return 0


def _plain(v: float) -> str:
    """A number as DfE prints it: no trailing .0 on whole numbers, blank when missing."""
    return "" if v != v else f"{v:g}"  # v != v: NaN


def _power(spec, args: argparse.Namespace) -> int:
    from pathfinder_eval.output import write_atomically
    from pathfinder_eval.power.design import design_power
    from pathfinder_eval.report.power_view import power_context, power_json, table_text
    from pathfinder_eval.report.render import render_html

    if args.simulate is not None:
        if args.reference is not None:
            raise PathfinderError(
                "--reference is used only by analytic power: a simulation's test is the "
                "analysis's own",
                where="--reference",
                fix="drop --reference, or drop --simulate for analytic power",
            )
        return _simulated_power(spec, args)
    unused = [
        flag
        for flag, value in (
            ("--data", args.data),
            ("--mdes", args.mdes),
            ("--seed", args.seed),
            ("--workers", args.workers),
            ("--scheduler", args.scheduler),
        )
        if value is not None
    ]
    if unused:  # analytic power ignored them (--mdes: it prints the MDES at 80% and 90%)
        raise PathfinderError(
            f"{', '.join(unused)} {'is' if len(unused) == 1 else 'are'} used only by simulated "
            "power; analytic power has no random draws and prints the MDES at 80% and 90% power",
            where=unused[0],
            fix=f"add --simulate N, or drop {', '.join(unused)} for analytic power",
        )
    if args.outcome is not None:
        from pathfinder_eval.power.simulate import checked_outcome

        checked_outcome(spec, args.outcome)
    summary = design_power(
        spec, args.alpha, args.reference or "analysis", args.effect, args.analysis, args.outcome
    )
    print(table_text(summary))
    if args.out is not None:
        html = render_html(power_context(spec.title, summary), None, "power.html.j2")
        for path in write_atomically(
            args.out,
            {f"{spec.name}_power.json": power_json(summary), f"{spec.name}_power.html": html},
        ):
            print(f"wrote {path}")
    return 0


def _simulated_power(spec, args: argparse.Namespace) -> int:
    from pathfinder_eval.output import write_atomically
    from pathfinder_eval.power.simulate import default_effect, simulate_power
    from pathfinder_eval.report.power_view import simulation_json, simulation_text

    if args.simulate < 10:
        raise PathfinderError(
            f"--simulate {args.simulate} is too few replicates",
            where="--simulate",
            fix="use at least 10 (1,000 for a report)",
        )
    from pathfinder_eval.data.neighbours import resolve_neighbour_pool

    spec = resolve_neighbour_pool(spec, args.data)
    outcome = args.outcome or spec.outcomes[0].id
    resampled = args.data is not None
    effect = args.effect if args.effect is not None else default_effect(spec, outcome, resampled)
    seed = spec.seed if args.seed is None else args.seed
    panel = None
    if args.data is not None:
        from pathfinder_eval.power.panel_simulation import panel_resampler

        panel = panel_resampler(spec, args.data, outcome)
        print(panel.summary())
    from pathfinder_eval.power.trial_simulation import design_trial, simulate_trial_power

    fast = None if panel is not None else design_trial(spec, args.analysis, outcome)
    if args.mdes is not None:
        return _simulated_mdes(spec, args, fast, seed, panel)
    if fast is not None:  # the stepped-wedge LMM on exactly drawn cells: no panel needed
        result = simulate_trial_power(
            fast, args.simulate, seed, effect, args.alpha, args.workers, args.scheduler
        )
    else:
        result = simulate_power(
            spec,
            args.simulate,
            seed,
            effect,
            args.analysis,
            outcome,
            args.alpha,
            args.workers,
            args.scheduler,
            panel=panel,
        )
    print(simulation_text(result, seed))
    if args.out is not None:
        name = f"{spec.name}_simulated_power.json"
        for path in write_atomically(args.out, {name: simulation_json(result, seed)}):
            print(f"wrote {path}")
    return 0


def _simulated_mdes(spec, args: argparse.Namespace, fast, seed: int, panel) -> int:
    """--simulate N --mdes [POWER]: the MDES by simulation: from one run for a trial's
    stepped-wedge LMM (`fast`), else by bracketing and bisection (power.mdes_search), on
    `panel` (resampled real data) when given."""
    from pathfinder_eval.output import write_atomically
    from pathfinder_eval.power.trial_simulation import simulated_mdes
    from pathfinder_eval.report.power_view import mdes_json, mdes_text

    if not 0.0 < args.mdes < 1.0:
        raise PathfinderError(
            f"--mdes {args.mdes} is not a power between 0 and 1",
            where="--mdes",
            fix="e.g. --mdes 0.8",
        )
    if fast is not None:  # one run gives the whole curve (module power.trial_simulation)
        found = simulated_mdes(
            fast,
            args.simulate,
            seed,
            args.mdes,
            args.alpha,
            workers=args.workers,
            scheduler=args.scheduler,
        )
    else:
        from pathfinder_eval.power.mdes_search import effect_direction, search_mdes
        from pathfinder_eval.power.simulate import default_effect

        outcome = args.outcome or spec.outcomes[0].id
        found = search_mdes(
            spec,
            args.simulate,
            seed,
            args.mdes,
            effect_direction(args.effect, default_effect(spec, outcome, panel is not None)),
            args.analysis,
            outcome,
            args.alpha,
            args.workers,
            args.scheduler,
            panel,
        )
    print(mdes_text(found, seed))
    if args.out is not None:
        name = f"{spec.name}_simulated_mdes.json"
        for path in write_atomically(args.out, {name: mdes_json(found, seed)}):
            print(f"wrote {path}")
    return 0


def _replicate(args: argparse.Namespace) -> int:
    from pathfinder_eval.output import write_atomically
    from pathfinder_eval.replications.report import replication_outputs
    from pathfinder_eval.replications.run import ENTRIES, data_found, replicate

    if args.list or not args.name:
        for entry in ENTRIES.values():
            state = "available"
            if entry.compute is None:
                state = f"pending: {entry.pending}"
            elif not data_found(entry, args.data):
                state = f"needs {entry.data} under --data"
            print(f"{entry.name:28} {entry.title} [{state}]")
        return 0
    if args.name not in ENTRIES:
        raise PathfinderError(
            f"no replication named {args.name!r}",
            where="NAME",
            fix="see pathfinder-eval replicate --list",
        )
    result = replicate(args.name, args.data)
    files = replication_outputs(result)
    paths = write_atomically(args.out, files)
    for path in paths:
        print(f"wrote {path}")
    if args.pdf:
        _pdf(paths)
    for row in result.rows:
        print(
            f"{'pass' if row.passed else 'MISMATCH':8} {row.label}: published "
            f"{row.published:.10g}, reproduced {row.reproduced:.10g} "
            f"(tolerance {row.tolerance:.3g})"
        )
    if result.entry.compute is None:
        print(f"pending: {result.entry.pending}")
    return 0 if result.passed else 1


def _las() -> int:
    from pathfinder_eval.data.la_lookup import la_table

    table = la_table()
    for row in table[table["last_year"] == table["last_year"].max()].itertuples():
        print(f"{row.la_code}  {row.gss_code}  {row.la_name:36} {row.region_name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
