"""PDF copies of the pages, printed by headless Chromium (Debian's `chromium` package).

Chromium keeps the inline SVG charts as vectors, the tables, the print styles of
base.html.j2 (page numbers in the @page margin boxes) and writes a tagged PDF with an outline
from the headings. Without it the command says how to install it and the HTML stands alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from pathfinder_eval.errors import PathfinderError

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = (
    "PDF not written: no headless Chromium found; install it (Debian/Ubuntu: "
    "apt-get install chromium) and run again; the HTML was written"
)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--no-pdf-header-footer",
    "--generate-pdf-document-outline",
)


def find_browser() -> str | None:
    """The first Chromium on PATH, or None."""
    return next((path for b in BROWSERS if (path := shutil.which(b))), None)


def write_pdfs(pages: list[Path]) -> tuple[list[Path], str]:
    """Print each HTML page to a PDF beside it. Returns the PDFs and, when no browser is
    installed, the one-line hint to print instead (the pages are left as they are)."""
    browser = find_browser()
    if browser is None:
        return [], INSTALL_HINT
    return [_print(browser, page) for page in pages], ""


def _print(browser: str, page: Path) -> Path:
    pdf = page.with_suffix(".pdf")
    with tempfile.TemporaryDirectory(prefix="pathfinder-pdf-") as profile:
        tmp = pdf.with_name(f".{pdf.name}.tmp")
        cmd = [
            browser,
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--print-to-pdf={tmp}",
            page.resolve().as_uri(),
        ]
        env = {**os.environ, "HOME": profile}
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
        except (OSError, subprocess.TimeoutExpired) as exc:
            tmp.unlink(missing_ok=True)
            raise _failed(browser, page, str(exc)) from None
        if done.returncode != 0 or not tmp.is_file() or tmp.stat().st_size == 0:
            tmp.unlink(missing_ok=True)
            last = (done.stderr or "").strip().splitlines()[-1:]
            raise _failed(browser, page, last[0] if last else f"exit code {done.returncode}")
        os.replace(tmp, pdf)
    return pdf


def _failed(browser: str, page: Path, detail: str) -> PathfinderError:
    """The error for a PDF that could not be printed; a PDF left from an earlier run is
    removed, since it no longer matches the HTML just written."""
    stale = page.with_suffix(".pdf")
    removed = f" (the earlier {stale.name} was removed)" if stale.is_file() else ""
    stale.unlink(missing_ok=True)
    return PathfinderError(
        f"{browser} could not print the page to PDF ({detail}){removed}",
        file=str(page),
        where="--pdf",
        fix="the HTML and JSON were written; check that Chromium runs headless on this machine",
    )
