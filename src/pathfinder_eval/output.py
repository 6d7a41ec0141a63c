"""Write a run's HTML and JSON together, atomically: both appear, or neither does."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from pathfinder_eval.errors import PathfinderError


def write_atomically(out_dir: Path, files: dict[str, str]) -> list[Path]:
    """Write every file to a temporary name in `out_dir`, then rename them all into place.

    Any failure (a read-only folder, a full disk) removes what was staged or already renamed,
    and becomes one PathfinderError naming the folder; Ctrl-C removes them too."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _unwritable(out_dir, "cannot create output folder", exc) from None
    staged: list[tuple[str, Path]] = []
    placed: list[Path] = []
    try:
        for name, text in files.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=out_dir)
            staged.append((name, Path(tmp)))
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(text)
            os.chmod(tmp, 0o644)
        for name, tmp in staged:
            os.replace(tmp, out_dir / name)
            placed.append(out_dir / name)
    except (OSError, KeyboardInterrupt) as exc:  # (Ctrl-C too: both files or neither)
        for path in placed:
            path.unlink(missing_ok=True)
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise _unwritable(out_dir, "cannot write the output", exc) from None
    finally:
        for _, tmp in staged:
            tmp.unlink(missing_ok=True)
    return [out_dir / name for name in files]


def _unwritable(out_dir: Path, what: str, exc: OSError) -> PathfinderError:
    return PathfinderError(
        f"{what} ({exc.strerror or exc})",
        file=str(out_dir),
        where="--out",
        fix="choose a folder you can write to, on a disk with free space",
    )
