"""Fits and charts spread over local processes (workers.py): the same results, in the same
order, as one process; the report the same byte for byte for any number of workers and any
number of BLAS threads."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

import pathfinder_eval as pe
from pathfinder_eval.cli import main
from pathfinder_eval.errors import EstimationError, PathfinderError
from pathfinder_eval.pipeline import evaluate
from pathfinder_eval.report.render import report_files
from pathfinder_eval.results import OMITTED
from pathfinder_eval.spec import load_design
from pathfinder_eval.workers import ordered_map

DESIGNS = Path(__file__).resolve().parents[1] / "designs"

on_linux = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="worker processes are forked on Linux only"
)


@pytest.fixture
def forking(monkeypatch):
    """Fork even though earlier tests left idle threads behind (tqdm's monitor, Dask's IO
    loop), which makes a run keep its fits in its own process."""
    import pathfinder_eval.workers as workers

    monkeypatch.setattr(workers, "_can_fork", lambda: True)


def _pid_and_square(shared: tuple[threading.Lock, int], item: int) -> tuple[int, int]:
    time.sleep(0.02)  # long enough that both workers take items
    return os.getpid(), item * item + shared[1]


def _fails_on_three(shared: object, item: int) -> int:
    if item == 3:
        raise ValueError(f"item {item} is bad in process {os.getpid()}")
    return item


def _fails_on_three_counting_workers(shared: object, item: int) -> int:
    if item == 3:
        alive = len(multiprocessing.active_children())
        raise ValueError(f"item 3 is bad in process {os.getpid()} with {alive} workers alive")
    time.sleep(0.5)
    return item


def _fails_in_a_worker_only(parent: int, item: int) -> tuple[int, int]:
    if os.getpid() != parent and item == 3:
        raise MemoryError("a worker's own failure")
    return os.getpid(), item


def _dies_in_a_worker(parent: int, item: int) -> int:
    if os.getpid() != parent and item == 2:
        os._exit(1)  # as the system's out-of-memory killer would end it
    return item


@on_linux
def test_items_run_in_workers_and_come_back_in_order(forking):
    shared = (threading.Lock(), 10)  # a lock cannot be pickled: the workers inherit it
    out = ordered_map(_pid_and_square, shared, list(range(12)), workers=2)
    assert [v for _, v in out] == [i * i + 10 for i in range(12)]
    pids = {p for p, _ in out}
    assert len(pids) == 2 and os.getpid() not in pids


def test_one_worker_runs_here():
    out = ordered_map(_pid_and_square, (threading.Lock(), 0), [1, 2, 3], workers=1)
    assert out == [(os.getpid(), 1), (os.getpid(), 4), (os.getpid(), 9)]


@on_linux
def test_a_failing_item_raises_its_own_error_here(forking):
    """The error is raised by re-running the item in this process (its pid in the message),
    not a worker's error passed back."""
    with pytest.raises(ValueError, match=f"item 3 is bad in process {os.getpid()}$"):
        ordered_map(_fails_on_three, None, list(range(6)), workers=2)


@on_linux
def test_workers_end_before_a_failed_item_runs_again_here(forking):
    """The re-run of the item that failed sees no worker left: the others' fits (half a
    second each here) do not compete with it, and none is left running after."""
    with pytest.raises(ValueError, match=f"in process {os.getpid()} with 0 workers alive$"):
        ordered_map(_fails_on_three_counting_workers, None, list(range(8)), workers=2)
    assert multiprocessing.active_children() == []


@on_linux
def test_an_item_that_fails_only_in_a_worker_and_those_after_it_run_here(forking):
    out = ordered_map(_fails_in_a_worker_only, os.getpid(), list(range(6)), workers=2)
    assert [item for _, item in out] == list(range(6))
    assert {pid for pid, item in out if item >= 3} == {os.getpid()}
    assert os.getpid() not in {pid for pid, item in out if item < 3}


@on_linux
def test_a_killed_worker_stops_the_run_with_what_to_do(forking):
    """A worker that dies (os._exit, as an out-of-memory kill) gives a user-facing error
    naming one worker as the fix, and the parent does not hang."""
    with pytest.raises(PathfinderError, match=r"worker process stopped.*--workers 1"):
        ordered_map(_dies_in_a_worker, os.getpid(), list(range(6)), workers=2)


def _sleeps(shared: object, item: int) -> int:
    time.sleep(30)
    return item


@on_linux
def test_ctrl_c_ends_the_workers_at_once(forking):
    """Ctrl-C one second into four 30-second tasks on two workers: the parent stops within
    seconds and leaves no worker (the executor alone would wait for the tasks it handed out,
    and each worker would print its own traceback)."""
    import multiprocessing

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    start = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, 1.0)
    try:
        with pytest.raises(KeyboardInterrupt):
            ordered_map(_sleeps, None, [1, 2, 3, 4], workers=2)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert time.monotonic() - start < 10
    assert multiprocessing.active_children() == []


@on_linux
def test_ctrl_c_between_a_fork_and_its_registration_leaves_no_worker(forking, monkeypatch):
    """Ctrl-C just after the executor forked its second worker and before it recorded it
    (as a CI machine under load once showed): that worker is ended too."""
    import multiprocessing
    from multiprocessing.context import ForkProcess

    start, started = ForkProcess.start, []

    def start_then_interrupt(process: ForkProcess) -> None:
        start(process)
        started.append(process)
        if len(started) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(ForkProcess, "start", start_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        ordered_map(_sleeps, None, [1, 2, 3, 4], workers=2)
    left = multiprocessing.active_children()
    for process in left:  # a failure must not hang the test run at exit
        process.terminate()
        process.join()
    assert len(started) == 2 and left == []


def test_ctrl_c_is_one_line_and_exit_130(monkeypatch, capsys, tmp_path):
    import pathfinder_eval.pipeline as pipeline

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "ordered_map", interrupted)
    out = tmp_path / "out"
    assert main(["run", str(DESIGNS / "rcc.yaml"), "--out", str(out)]) == 130
    assert capsys.readouterr().err == "pathfinder-eval: stopped (Ctrl-C)\n"
    assert not out.exists()


def test_ctrl_c_while_writing_leaves_neither_file(monkeypatch, tmp_path):
    """The first file renamed into place, Ctrl-C before the second: both files or neither."""
    import pathfinder_eval.output as output

    replace, done = os.replace, []

    def interrupted_after_one(src, dst):
        if done:
            raise KeyboardInterrupt
        done.append(dst)
        replace(src, dst)

    monkeypatch.setattr(output.os, "replace", interrupted_after_one)
    with pytest.raises(KeyboardInterrupt):
        output.write_atomically(tmp_path, {"a.html": "<p>", "a.json": "{}"})
    assert done and sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_process_with_threads_does_not_fork():
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        out = ordered_map(_pid_and_square, (threading.Lock(), 0), [1, 2, 3], workers=2)
    finally:
        stop.set()
        other.join()
    assert {p for p, _ in out} == {os.getpid()}


def test_omitted_facts_stay_omitted_through_a_worker():
    assert pickle.loads(pickle.dumps(OMITTED)) is OMITTED


@on_linux
def test_report_is_the_same_for_any_number_of_workers_and_blas_threads(forking):
    spec = load_design(DESIGNS / "family_network.yaml")
    with threadpool_limits(limits=1):
        one = report_files(evaluate(spec, command="x", workers=1), workers=1)
    with threadpool_limits(limits=2):  # the run itself holds BLAS to one thread
        two = report_files(evaluate(spec, command="x", workers=2), workers=2)
    assert set(one) == {"family_network.html", "family_network.json"}
    assert two == one


def test_a_python_api_fit_is_the_same_for_any_number_of_blas_threads():
    """Imputation on 150 LAs × 12 periods: with two BLAS threads and no limit its estimates
    moved by 2e-15 (its projections are large enough for BLAS to split them)."""
    rng = np.random.default_rng(1)
    first = np.where(np.arange(150) < 30, np.array([0, 0, 0, 7, 9])[np.arange(150) % 5], 0)
    frame = pd.DataFrame(
        {
            "la": np.repeat([f"la{i:03d}" for i in range(150)], 12),
            "year": np.tile(np.arange(1, 13), 150),
            "first": np.repeat(first, 12),
        }
    )
    on = (frame["first"] > 0) & (frame["year"] >= frame["first"])
    frame["y"] = 0.1 * frame["year"] + 0.5 * on + rng.normal(size=len(frame))
    fits = []
    for threads in (1, 2):
        with threadpool_limits(limits=threads):
            r = pe.imputation(frame, outcome="y", unit="la", time="year", first_treated="first")
        fits.append(r.table.select_dtypes("number").to_numpy())
    assert np.array_equal(fits[0], fits[1], equal_nan=True)


@on_linux
def test_the_files_do_not_record_the_number_of_workers(tmp_path, forking):
    """The command line in the report leaves --workers out: `run --workers 1` and
    `run --workers=2` write the same bytes."""
    out = tmp_path / "out"
    files = []
    for option in (["--workers", "1"], ["--workers=2"]):
        assert main(["run", str(DESIGNS / "rcc.yaml"), "--out", str(out), *option]) == 0
        files.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
    assert len(files[0]) == 2 and files[0] == files[1]
    assert b"--workers" not in files[0]["rcc.json"]


def test_each_thread_fits_under_one_blas_thread():
    """Two threads fitting at once (the Python API from a thread pool): the second to enter
    holds BLAS to one thread too, also after the first has left (numpy's and SciPy's OpenBLAS
    count threads for each thread), and leaving restores the thread's own number."""
    from threadpoolctl import threadpool_info

    from pathfinder_eval.estimators import one_blas_thread

    def blas_threads() -> set[int]:  # numpy's and SciPy's (another package may bring its own)
        return {
            lib["num_threads"]
            for lib in threadpool_info()
            if lib["user_api"] == "blas" and "scipy_openblas" in lib["filepath"]
        }

    with threadpool_limits(limits=2):
        a_in, a_out, seen = threading.Event(), threading.Event(), []

        def first() -> None:
            with one_blas_thread():
                a_in.set()
                a_out.wait(5)

        other = threading.Thread(target=first)
        other.start()
        a_in.wait(5)
        with one_blas_thread():
            seen.append(blas_threads())
            a_out.set()
            other.join()  # the first thread has left its context
            seen.append(blas_threads())
        seen.append(blas_threads())
    assert seen == [{1}, {1}, {2}]


def test_an_abbreviated_option_is_refused(capsys):
    """`--work 3` is not taken for `--workers 3` (which the report would then record)."""
    assert main(["run", str(DESIGNS / "rcc.yaml"), "--work", "3"]) == 2
    assert "unrecognized arguments: --work 3" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_workers_must_be_a_positive_whole_number(value, capsys):
    assert main(["run", str(DESIGNS / "rcc.yaml"), "--workers", value]) == 2
    assert f"'{value}' is not a number of processes (1 or more)" in capsys.readouterr().err


FULL_LAST = 2025  # family_network's last period; its placebo panel stops before the first start


def _few_analyses():
    """family_network with only the analyses the placebo check re-fits (12 fits, 12 re-fits)."""
    spec = load_design(DESIGNS / "family_network.yaml")
    keep = ("twfe", "callaway_santanna")
    return spec.model_copy(
        update={"analyses": tuple(a for a in spec.analyses if a.estimator.value in keep)}
    )


@pytest.mark.parametrize("workers", [1, 2])
def test_no_placebo_for_an_analysis_that_was_not_estimable(workers, monkeypatch, forking, tmp_path):
    """TWFE on cla_rate is refused on the full panel and its re-fit on the placebo panel
    breaks (a ValueError): the re-fit runs once (in a worker or here) and is not run again,
    which would raise."""
    from pathfinder_eval.estimators.did.twfe import TwoWayFixedEffects

    fit, calls = TwoWayFixedEffects.fit, tmp_path / "placebo_calls"

    def fails_on_cla_rate(self, panel, outcome, *args, **kwargs):
        if outcome == "cla_rate" and panel.periods[-1] == FULL_LAST:
            raise EstimationError("refused for the test", where=f"outcome {outcome}")
        if outcome == "cla_rate":
            with calls.open("a") as log:  # appended from whichever process runs it
                log.write(f"{os.getpid()}\n")
            raise ValueError("the placebo re-fit breaks")
        return fit(self, panel, outcome, *args, **kwargs)

    monkeypatch.setattr(TwoWayFixedEffects, "fit", fails_on_cla_rate)
    ev = evaluate(_few_analyses(), workers=workers)
    assert len(calls.read_text().split()) == 1
    status = {(r.analysis.id, r.outcome): r.status for r in ev.runs}
    assert status[("twfe", "cla_rate")] == "not_estimable"
    assert sum(s == "ok" for s in status.values()) == 11
    checked = [(p.analysis.id, p.outcome) for p in ev.placebo]
    assert ("twfe", "cla_rate") not in checked and len(checked) == 11
    # in the order of the runs they check
    assert checked == [k for k, s in status.items() if s == "ok"]
    assert {p.status for p in ev.placebo} == {"ok"}


@pytest.mark.parametrize("workers", [1, 2])
def test_every_placebo_says_why_when_the_data_allow_none(workers, monkeypatch, forking):
    import pathfinder_eval.pipeline as pipeline

    def no_room(panel, shift=2):
        raise EstimationError("no room before the first start")

    monkeypatch.setattr(pipeline, "placebo_panel", no_room)
    ev = evaluate(_few_analyses(), workers=workers)
    assert len(ev.placebo) == 12 and all(r.status == "ok" for r in ev.runs)
    assert [(p.analysis.id, p.outcome) for p in ev.placebo] == [
        (r.analysis.id, r.outcome) for r in ev.runs
    ]
    assert {(p.status, p.note, p.window) for p in ev.placebo} == {
        ("not_estimable", "no room before the first start", None)
    }


def _fails_first_then_sleeps(shared: object, item: int) -> int:
    if item == 0:
        raise ValueError(f"item 0 is bad in process {os.getpid()}")
    time.sleep(30)
    return item


@on_linux
def test_a_failing_item_stops_the_run_without_waiting_for_the_others(forking):
    """The first item fails at once and the others take 30 seconds each: its error comes in
    seconds, from this process, and no worker is left running."""
    import multiprocessing

    start = time.monotonic()
    with pytest.raises(ValueError, match=f"item 0 is bad in process {os.getpid()}$"):
        ordered_map(_fails_first_then_sleeps, None, [0, 1, 2, 3], workers=2)
    assert time.monotonic() - start < 10
    assert multiprocessing.active_children() == []
