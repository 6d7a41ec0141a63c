"""The sandbox template packs render in, and its limits.

A pack is untrusted: it renders in jinja2's immutable sandbox (no Python internals, no mutation
of the view data), may read only templates inside its folders, its `*` and `**` are bounded,
and so is the size of the HTML it renders (it cannot fill the disk). A pack given with
--templates also renders in a child process whose address space and CPU time are limited
(POSIX), so no template, however written, can exhaust the machine's memory or run for ever; the
packaged templates render in process.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from pathfinder_eval.errors import PathfinderError


class OutsideTemplateFolders(jinja2.TemplateNotFound):
    """A template asked for a file that is not inside the template folders."""


class ConfinedLoader(jinja2.FileSystemLoader):
    """A FileSystemLoader that refuses any template whose real path (symlinks resolved) lies
    outside its folders, so a shared template pack cannot read other files."""

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        if template.startswith("/") or ".." in template.replace("\\", "/").split("/"):
            raise OutsideTemplateFolders(template)
        try:
            source, filename, uptodate = super().get_source(environment, template)
        except UnicodeDecodeError:
            raise PathfinderError(
                f"template {template!r} is not UTF-8 text",
                file=template,
                fix="save the template as UTF-8",
            ) from None
        real = Path(filename).resolve()
        if not any(real.is_relative_to(Path(root).resolve()) for root in self.searchpath):
            raise OutsideTemplateFolders(template)
        return source, filename, uptodate


def template_environment(folders: list[Path]) -> jinja2.Environment:
    """The sandbox templates render in: no access to Python internals (attributes starting
    with `_`, function globals, unsafe methods), no mutation of the view data, no files
    outside `folders`, and only display helpers among the globals."""
    env = BoundedSandbox(
        loader=ConfinedLoader(folders),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.pop("lipsum", None)
    return env


# Longest string or list a template may build with `*`, and largest power with `**`: a pack's
# `'a' * 10**11` exhausted memory instead of failing as a template error.
MAX_REPEAT = 1_000_000
MAX_EXPONENT = 1_000


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The sandbox with `*` and `**` bounded, so a template cannot exhaust memory or time."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                repeats = isinstance(seq, str | list | tuple) and isinstance(times, int)
                if repeats and len(seq) * times > MAX_REPEAT:
                    raise SecurityError(f"'*' would build more than {MAX_REPEAT:,} items")
        elif isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"'**' with an exponent above {MAX_EXPONENT:,}")
        return super().call_binop(context, operator, left, right)


def render(template: str, folders: list[Path], context: dict[str, Any]) -> str:
    """`template` rendered with `context` in the sandbox, templates looked up in `folders` in
    order; a failure is a PathfinderError naming the template file and line."""
    env = template_environment(folders)
    try:
        html = env.get_template(template).render(**context)
    except PathfinderError:
        raise
    except jinja2.TemplateError as exc:
        raise _template_error(exc, folders[0]) from None
    except (
        ArithmeticError,
        AssertionError,
        LookupError,
        MemoryError,
        TypeError,
        ValueError,
        RecursionError,
    ) as exc:
        # template code is the pack author's: its runtime failures are theirs to fix
        file, line = _template_frame(exc)
        memory = isinstance(exc, MemoryError)
        raise PathfinderError(
            "template failed while rendering "
            + ("(out of memory)" if memory else f"({type(exc).__name__}: {exc})"),
            file=file or str(folders[0]),
            where=f"line {line}" if line else None,
            fix=f"build smaller strings and lists: a pack renders within {MEMORY_LIMIT >> 20} MB"
            if memory
            else "correct the template",
        ) from None
    if len(html) > MAX_OUTPUT:  # a report is read by people; this is a pack filling the disk
        raise PathfinderError(
            f"template rendered {len(html) >> 20} MB of HTML, above the {MAX_OUTPUT >> 20} MB "
            "a report may have",
            file=str(folders[0]),
            fix="simplify the template: a pack may only display the report's view data",
        )
    return html


# What a pack's child process may use: address space (the child renders family_help's 1.2 MB
# report within 40 MB), CPU seconds, and wall seconds
MEMORY_LIMIT = 512 << 20
MAX_OUTPUT = 64 << 20  # characters of HTML: family_help's report has 1.2 million
CPU_LIMIT = 60
WALL_LIMIT = 120
PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


def render_confined(template: str, folders: list[Path], context: dict[str, Any]) -> str:
    """`render` in a child process with MEMORY_LIMIT bytes of address space and CPU_LIMIT
    seconds of CPU (POSIX: `resource`); in process where the platform has no such limits."""
    try:
        import resource  # noqa: F401  (POSIX only)
    except ImportError:
        return render(template, folders, context)
    limits = (MEMORY_LIMIT, CPU_LIMIT)
    payload = pickle.dumps((limits, template, [str(f) for f in folders], context))
    # -P: not the current folder first on the path; the package's own folder instead, so the
    # child imports this package whatever the parent's sys.path was
    paths = [PACKAGE_ROOT, *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    try:
        done = subprocess.run(
            [sys.executable, "-P", "-m", "pathfinder_eval.report.sandbox"],
            input=payload,
            env=env,
            capture_output=True,
            timeout=WALL_LIMIT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise _limit_error(folders[0], f"took more than {WALL_LIMIT} s") from None
    try:
        kind, *rest = pickle.loads(done.stdout)
    except Exception:  # the child died: a limit, or a crash the limit caused
        raise _limit_error(folders[0], _cause(done)) from None
    if kind == "html":
        return rest[0]
    what, file, where, fix = rest
    raise PathfinderError(what, file=file, where=where, fix=fix)


def _cause(done: subprocess.CompletedProcess) -> str:
    if done.returncode in (-24, 152):  # SIGXCPU
        return f"used more than {CPU_LIMIT} s of CPU"
    tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
    return f"stopped ({tail[0] or f'exit code {done.returncode}'}), at most {MEMORY_LIMIT >> 20} MB"


def _limit_error(folder: Path, cause: str) -> PathfinderError:
    return PathfinderError(
        f"template rendering {cause}",
        file=str(folder),
        fix="simplify the template: a pack may only display the report's view data",
    )


def _child() -> None:
    """Child process of `render_confined`: set the limits, render the pickled request from
    stdin and write ("html", text) or ("error", what, file, where, fix) to stdout."""
    import resource

    (memory, cpu), template, folders, context = pickle.loads(sys.stdin.buffer.read())

    def lower(limit: int, soft: int, hard: int) -> None:
        """Set `limit` to at most (soft, hard), never above the hard limit the process was
        given (a batch job's `ulimit -t`: raising it is refused)."""
        given = resource.getrlimit(limit)[1]
        if given != resource.RLIM_INFINITY:
            soft, hard = min(soft, given), min(hard, given)
        resource.setrlimit(limit, (soft, hard))

    lower(resource.RLIMIT_AS, memory, memory)
    lower(resource.RLIMIT_CPU, cpu, cpu + 1)  # SIGXCPU at `cpu` seconds
    try:
        answer: tuple[Any, ...] = ("html", render(template, [Path(f) for f in folders], context))
    except PathfinderError as exc:
        answer = ("error", exc.what, exc.file, exc.where, exc.fix)
    sys.stdout.buffer.write(pickle.dumps(answer))


def _template_error(exc: jinja2.TemplateError, folder: Path) -> PathfinderError:
    """One located error for a template failure: the template file and line that asked."""
    file, line = _template_frame(exc)
    where = f"line {line}" if line else None
    file = file or str(folder)
    if isinstance(exc, OutsideTemplateFolders):
        return PathfinderError(
            f"template asks for {exc.name!r}, which is not inside the template folders",
            file=file,
            where=where,
            fix="include, extend or import only templates inside the --templates folder or "
            "the packaged ones, by a relative path without '..'",
        )
    if isinstance(exc, SecurityError):
        return PathfinderError(
            f"unsafe template code refused ({(exc.message or '').rstrip('.')})",
            file=file,
            where=where,
            fix="templates may only display the report's view data (README, 'Templates and "
            "branding'); remove the access to Python internals",
        )
    if isinstance(exc, jinja2.TemplateNotFound):
        return PathfinderError(
            f"template {exc.name!r} not found",
            file=file,
            where=where,
            fix="check the name against the packaged templates (README, 'Templates and branding')",
        )
    return PathfinderError(
        f"template error: {exc.message}", file=file, where=where, fix="correct the template"
    )


def _template_frame(exc: Exception) -> tuple[str | None, int | None]:
    """The template file and line where `exc` arose: from a syntax error itself, else from
    the innermost template frame jinja2 writes into the traceback."""
    if isinstance(exc, jinja2.TemplateSyntaxError) and exc.filename:
        return exc.filename, exc.lineno
    found: tuple[str | None, int | None] = (None, None)
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        name = frame.f_code.co_filename
        if name.endswith(".j2"):
            found = (name, tb.tb_lineno)
        elif frame.f_code.co_name in ("compile", "_generate", "generate") and frame.f_locals.get(
            "filename"
        ):
            found = (str(frame.f_locals["filename"]), None)  # failed while being compiled
        tb = tb.tb_next
    return found


if __name__ == "__main__":
    _child()
