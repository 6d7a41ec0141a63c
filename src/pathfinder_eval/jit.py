"""numba's `njit` with its on-disk cache wherever one can be written.

numba looks for a cache folder beside the source, then in the user's cache folder under HOME,
and raises at import when neither can be written (a read-only install with no writable HOME).
Then the cache goes to a per-user folder in the system's temporary directory, and failing that
the functions are compiled in memory on first use: slower to start, same numbers.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numba
from numba.core import config

F = TypeVar("F", bound=Callable[..., Any])


def cached_njit(**options: Any) -> Callable[[F], F]:
    """`numba.njit(cache=True, **options)`, falling back as the module docstring says."""

    def compile_(func: F) -> F:
        try:
            return numba.njit(cache=True, **options)(func)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            pass
        if not config.CACHE_DIR and _use_temporary_cache():
            try:
                return numba.njit(cache=True, **options)(func)
            except RuntimeError:
                pass
        return numba.njit(**options)(func)

    return compile_


def _use_temporary_cache() -> bool:
    """Point numba's cache at a private folder in the temporary directory, if writable."""
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    folder = Path(tempfile.gettempdir()) / f"pathfinder-eval-numba-{uid}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError:
        return False
    config.CACHE_DIR = str(folder)
    return True
