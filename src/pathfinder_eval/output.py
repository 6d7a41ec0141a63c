"""Write a run's HTML and JSON together, atomically: both appear, or neither does."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from pathfinder_eval.errors import PathfinderError


def write_atomically(out_dir: Path, files: dict[str, str]) -> list[Path]:
    """Write every file to a temporary name in `out_dir`, then rename them all into place."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PathfinderError(
            f"cannot create output folder ({exc.strerror})",
            file=str(out_dir),
            where="--out",
            fix="choose a writable folder",
        ) from None
    staged: list[tuple[str, Path]] = []
    try:
        for name, text in files.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=out_dir)
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(text)
            os.chmod(tmp, 0o644)
            staged.append((name, Path(tmp)))
        for name, tmp in staged:
            os.replace(tmp, out_dir / name)
    finally:
        for _, tmp in staged:
            tmp.unlink(missing_ok=True)
    return [out_dir / name for name in files]
