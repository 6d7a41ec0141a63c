"""Shared fixtures: repository paths and the real DfE data folder (read in place)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SHARED_PUBLIC = ROOT.parent / "shared" / "data" / "public"


@pytest.fixture
def public_data() -> Path:
    """The real DfE statistics in ../shared/data/public; skip when this checkout has none."""
    if not (SHARED_PUBLIC / "README.md").is_file():
        pytest.skip("../shared/data/public is absent: the real DfE files are read in place only")
    return SHARED_PUBLIC
