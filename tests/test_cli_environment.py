"""Failures outside the happy path still end in one line: unwritable output, a full disk, no
writable HOME (numba's cache, matplotlib's config), bad arguments and internal errors."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from pathfinder_eval import cli, output
from pathfinder_eval.cli import main

ROOT = Path(__file__).resolve().parents[1]
TRIAL = ROOT / "designs" / "examples" / "stepped_wedge_trial.yaml"
NOBODY = 65534
AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]

# Emulates an install folder and HOME nobody may write, for a process run as root (to whom
# every folder is writable): numba's cache locators fail their write check outside ALLOWED.
NO_WRITE_SITECUSTOMIZE = """
import os
import numba.core.caching as caching

_check = caching._CacheLocator.ensure_cache_path

def ensure_cache_path(self):
    allowed = os.environ.get("ALLOWED")
    if not allowed or not self.get_cache_path().startswith(allowed):
        raise PermissionError(13, "Permission denied", self.get_cache_path())
    _check(self)

caching._CacheLocator.ensure_cache_path = ensure_cache_path
"""


def one_error_line(capsys, code: int, expected_code: int = 2) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == expected_code and len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_output_folder_that_cannot_be_written(capsys):
    # /proc exists but refuses new files even to root: a real OS refusal, not a mock
    line = one_error_line(capsys, main(["run", str(TRIAL), "--out", "/proc"]))
    assert line.startswith("pathfinder-eval: error: /proc: --out: cannot write the output (")
    assert "Fix: choose a folder you can write to" in line


def test_full_disk_leaves_nothing_behind(tmp_path, capsys, monkeypatch):
    real_fdopen = os.fdopen
    calls = []

    def full_after_first(fd, *args, **kwargs):  # the second file hits a full disk
        calls.append(fd)
        if len(calls) == 2:
            os.close(fd)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fdopen(fd, *args, **kwargs)

    monkeypatch.setattr(output.os, "fdopen", full_after_first)
    out = tmp_path / "out"
    line = one_error_line(capsys, main(["run", str(TRIAL), "--out", str(out)]))
    assert "cannot write the output (No space left on device)" in line
    assert list(out.iterdir()) == []  # the staged first file is removed too


def test_failed_rename_removes_the_file_already_placed(tmp_path, monkeypatch):
    real_replace = os.replace

    def fail_second(src, dst):
        if str(dst).endswith(".json"):
            raise OSError(errno.EIO, "Input/output error")
        real_replace(src, dst)

    monkeypatch.setattr(output.os, "replace", fail_second)
    out = tmp_path / "out"
    with pytest.raises(output.PathfinderError, match="Input/output error"):
        output.write_atomically(out, {"r.html": "<html></html>", "r.json": "{}"})
    assert list(out.iterdir()) == []


def test_a_failed_write_puts_the_previous_report_back(tmp_path, monkeypatch):
    """The rollback deleted the new files, and with them the previous report they had
    replaced: a failure on the JSON left the folder with neither version of the HTML."""
    out = tmp_path / "out"
    output.write_atomically(out, {"r.html": "old html", "r.json": "old json"})
    real_replace = os.replace

    def fail_new_json(src, dst):
        if str(dst).endswith("r.json") and str(src).endswith(".tmp"):
            raise OSError(errno.EIO, "Input/output error")
        real_replace(src, dst)

    monkeypatch.setattr(output.os, "replace", fail_new_json)
    with pytest.raises(output.PathfinderError, match="Input/output error"):
        output.write_atomically(out, {"r.html": "new html", "r.json": "new json"})
    assert sorted(f.name for f in out.iterdir()) == ["r.html", "r.json"]
    assert (out / "r.html").read_text() == "old html" and (out / "r.json").read_text() == "old json"
    monkeypatch.undo()
    (out / "r.json").unlink()
    (out / "r.json").mkdir()  # a folder with the report's name
    with pytest.raises(output.PathfinderError, match=r"a folder has the report's name: r\.json"):
        output.write_atomically(out, {"r.html": "new html", "r.json": "new json"})
    assert (out / "r.html").read_text() == "old html" and (out / "r.json").is_dir()
    assert sorted(f.name for f in out.iterdir()) == ["r.html", "r.json"]


def test_bad_arguments_are_one_line_with_a_fix(capsys):
    line = one_error_line(capsys, main(["run", str(TRIAL), "--seed", "abc"]))
    assert line == (
        "pathfinder-eval: error: pathfinder-eval run: argument --seed: 'abc' is not a seed "
        "(a whole number of 0 or more). Fix: see `pathfinder-eval run --help` for the arguments"
    )
    line = one_error_line(capsys, main(["rnu"]))
    assert "invalid choice: 'rnu'" in line and "Fix: see `pathfinder-eval --help`" in line
    line = one_error_line(capsys, main([]))
    assert "the following arguments are required: command" in line


def test_unreadable_design_is_one_line(tmp_path, capsys):
    folder = tmp_path / "a_folder.yaml"
    folder.mkdir()
    line = one_error_line(capsys, main(["validate", str(folder)]))
    assert str(folder) in line and "Fix:" in line


def test_internal_error_is_one_line_unless_debugging(capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setattr("pathfinder_eval.pipeline.evaluate", broken)
    monkeypatch.delenv(cli.DEBUG_VARIABLE, raising=False)
    line = one_error_line(capsys, main(["run", str(TRIAL), "--out", "x"]), cli.EXIT_INTERNAL)
    assert line.startswith(
        "pathfinder-eval: internal error: ZeroDivisionError: float division by zero. "
        "Fix: this is a bug in pathfinder-eval"
    )
    monkeypatch.setenv(cli.DEBUG_VARIABLE, "1")
    with pytest.raises(ZeroDivisionError):
        main(["run", str(TRIAL), "--out", "x"])


def run_without_home(tmp_path: Path, allowed: str, tmpdir: str) -> subprocess.CompletedProcess:
    """The trial design run in a fresh process with HOME not a folder, numba's usual cache
    folders refused (see NO_WRITE_SITECUSTOMIZE) and TMPDIR as given."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(textwrap.dedent(NO_WRITE_SITECUSTOMIZE))
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": "/dev/null",
        "TMPDIR": tmpdir,
        "ALLOWED": allowed,
        "PYTHONPATH": os.pathsep.join([str(site), *sys.path[1:]]),
    }
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "pathfinder_eval.cli", "run", str(TRIAL), "--out", str(out)]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)


def test_no_writable_home_caches_in_the_temporary_directory(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    done = run_without_home(tmp_path, allowed=str(tmp), tmpdir=str(tmp))
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert (tmp_path / "out" / "stepped_wedge_trial.html").is_file()
    cache = tmp / f"pathfinder-eval-numba-{os.getuid()}"
    assert any(cache.rglob("*.nbi")), "numba's cache should move to the temporary directory"
    assert (tmp / f"pathfinder-eval-matplotlib-{os.getuid()}").is_dir()


def test_nothing_writable_compiles_in_memory(tmp_path):
    done = run_without_home(tmp_path, allowed="", tmpdir="/dev/null/nowhere")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert (tmp_path / "out" / "stepped_wedge_trial.json").is_file()


def _nobody_can_run_python() -> bool:
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("setpriv") is None:
        return False
    # through `env`, as the test runs it: setpriv's own exec can still resolve a path the
    # nobody user cannot (e.g. an interpreter under a root-only /root), a second exec cannot
    probe = subprocess.run(
        [*AS_NOBODY, "env", sys.executable, "-c", "import pathfinder_eval.cli"],
        capture_output=True,
    )
    return probe.returncode == 0


@pytest.mark.skipif(
    not _nobody_can_run_python(),
    reason="needs root, setpriv and an interpreter the nobody user can run",
)
def test_real_user_without_a_writable_home():
    shared = Path(tempfile.mkdtemp(prefix="pathfinder-nobody-"))  # pytest's tmp is root-only
    shared.chmod(0o777)
    out = shared / "out"
    env = ["env", "HOME=/nonexistent", f"TMPDIR={shared}"]
    command = [sys.executable, "-m", "pathfinder_eval.cli", "run", str(TRIAL), "--out", str(out)]
    done = subprocess.run(
        [*AS_NOBODY, *env, *command],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert (out / "stepped_wedge_trial.html").is_file()
    shutil.rmtree(shared)


def test_a_failed_pdf_removes_the_earlier_pdf_and_says_why(tmp_path, monkeypatch):
    """A browser that failed left last run's PDF beside the new HTML, and the message showed
    a Python list (['boom'])."""
    from pathfinder_eval.report import pdf

    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\necho boom >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(pdf, "find_browser", lambda: str(fake))
    page = tmp_path / "r.html"
    page.write_text("<html></html>")
    (tmp_path / "r.pdf").write_text("last run's")
    with pytest.raises(output.PathfinderError) as info:
        pdf.write_pdfs([page])
    assert "could not print the page to PDF (boom) (the earlier r.pdf was removed)" in str(
        info.value
    )
    assert not (tmp_path / "r.pdf").exists()


@pytest.mark.parametrize("command", ["run", "plan", "replicate"])
def test_an_empty_output_folder_is_refused(tmp_path, capsys, monkeypatch, command):
    """--out "" wrote the report into the current folder."""
    monkeypatch.chdir(tmp_path)
    args = [command, str(TRIAL)] if command != "replicate" else [command, "kielmc_did"]
    line = one_error_line(capsys, main([*args, "--out", ""]))
    assert "argument --out: '' is not a folder name (e.g. out/)" in line
    assert list(tmp_path.iterdir()) == []


def test_pdf_without_a_browser_removes_the_earlier_pdf(tmp_path, capsys, monkeypatch):
    """With --pdf and no Chromium the previous run's PDF stayed beside the new HTML."""
    from pathfinder_eval.report import pdf

    monkeypatch.setattr(pdf, "find_browser", lambda: None)
    out = tmp_path / "out"
    out.mkdir()
    (out / "stepped_wedge_trial.pdf").write_text("last run's")
    assert main(["run", str(TRIAL), "--out", str(out), "--pdf"]) == 0
    err = capsys.readouterr().err
    assert "stepped_wedge_trial.pdf: it was from an earlier run" in err
    assert not (out / "stepped_wedge_trial.pdf").exists()


def test_a_closed_pipe_is_not_an_error(tmp_path):
    """`pathfinder-eval indicators | head` printed "error: Broken pipe. Fix: check that the
    path exists" and exited 2."""
    done = subprocess.run(  # `true` reads nothing and exits: the write meets a closed pipe
        f"sleep 0.1 | {sys.executable} -m pathfinder_eval.cli indicators | true; "
        "echo ${PIPESTATUS[1]}",
        shell=True,
        capture_output=True,
        text=True,
        executable="/bin/bash",
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert done.stdout == "0\n" and done.stderr == ""
