"""Every code example in the docs (and README) runs, and prints what the page says it prints.

Each page's ```python blocks run in order in one namespace from the repository root; a
```text block right after a block is its expected standard output, compared exactly. Pages
reading the shared reference or DfE data skip when that folder is absent."""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").rglob("*.md"))
PAGES = [ROOT / "README.md", *DOCS]
BLOCK = re.compile(r"```(python|text)\n(.*?)```", re.S)


def examples(page: Path) -> list[tuple[str, str | None]]:
    """(code, expected output or None) for each python block of the page."""
    blocks = BLOCK.findall(page.read_text(encoding="utf-8"))
    out = []
    for i, (kind, body) in enumerate(blocks):
        if kind == "python":
            follows = blocks[i + 1] if i + 1 < len(blocks) else None
            out.append((body, follows[1] if follows and follows[0] == "text" else None))
    return out


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_page_examples_run_and_print_what_they_say(page, tmp_path, monkeypatch):
    cases = examples(page)
    if not cases:
        pytest.skip("no code on this page")
    text = page.read_text(encoding="utf-8")
    for folder in ("../shared/data/reference", "../shared/data/public"):
        if folder in text and not (ROOT / folder).is_dir():
            pytest.skip(f"{folder} not present")
    monkeypatch.chdir(ROOT)
    namespace: dict = {}
    for code, expected in cases:
        code = code.replace('"out/', f'"{tmp_path}/out/')  # write nothing into the repository
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            exec(compile(code, str(page), "exec"), namespace)
        if expected is not None:
            assert buffer.getvalue() == expected, code


def test_every_page_is_in_the_site_navigation():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in DOCS:
        assert page.relative_to(ROOT / "docs").as_posix() in nav, page
    assert os.path.exists(ROOT / "docs" / "index.md")
