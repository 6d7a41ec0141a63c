"""Write a run's HTML and JSON together, atomically: both appear, or neither does."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from pathfinder_eval.errors import PathfinderError


def write_atomically(out_dir: Path, files: dict[str, str]) -> list[Path]:
    """Write every file to a temporary name in `out_dir`, then rename them all into place.

    Any failure (a read-only folder, a full disk, a folder where a file should go) removes
    what was staged or already renamed and puts back the files they replaced, so the folder
    holds the previous report or the new one, never a mix; it becomes one PathfinderError
    naming the folder. Ctrl-C does the same."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _unwritable(out_dir, "cannot create output folder", exc) from None
    staged: list[tuple[str, Path]] = []
    placed: list[Path] = []
    kept: list[tuple[Path, Path]] = []  # (file, the previous version set aside)
    try:
        for name, text in files.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=out_dir)
            staged.append((name, Path(tmp)))
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(text)
            os.chmod(tmp, 0o644)
        for name, tmp in staged:
            target = out_dir / name
            if target.is_dir() and not target.is_symlink():
                raise IsADirectoryError(errno.EISDIR, "a folder has the report's name", name)
            if target.exists() or target.is_symlink():
                old = tmp.with_suffix(".old")
                os.replace(target, old)
                kept.append((target, old))
            os.replace(tmp, target)
            placed.append(target)
    except (OSError, KeyboardInterrupt) as exc:  # (Ctrl-C too: all files or none)
        for path in placed:
            path.unlink(missing_ok=True)
        for target, old in kept:
            os.replace(old, target)
        kept.clear()
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise _unwritable(out_dir, "cannot write the output", exc) from None
    finally:
        for _, tmp in staged:
            tmp.unlink(missing_ok=True)
        for _, old in kept:
            old.unlink(missing_ok=True)
    return [out_dir / name for name in files]


def _unwritable(out_dir: Path, what: str, exc: OSError) -> PathfinderError:
    named = f": {Path(exc.filename).name}" if exc.filename else ""
    return PathfinderError(
        f"{what} ({exc.strerror or exc}{named})",
        file=str(out_dir),
        where="--out",
        fix="choose a folder you can write to, on a disk with free space, where no folder has "
        "a report file's name",
    )
