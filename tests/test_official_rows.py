"""Official statistics: every Local authority row is read or the file is refused, naming the
row; a row was silently lost to a mistyped geographic level, and an empty or unknown LA code
became a comparison unit of its own."""

from __future__ import annotations

import pytest

from _data_paths import C1, C1_HEADER, write_csv
from pathfinder_eval.data.official import load_official
from pathfinder_eval.errors import DataError

ROW = "2025,Reporting year,{level},E92000001,E12000001,{code},100,20,20"


def rows(**change: tuple[str, str]) -> list[str]:
    """Four LA rows (805–808); `change` maps a code to its (level, code) as written."""
    out = []
    for code in ("805", "806", "807", "808"):
        level, written = change.get(code, ("Local authority", code))
        out.append(ROW.format(level=level, code=written))
    return out


def read(tmp_path, lines: list[str]):
    write_csv(tmp_path / C1, C1_HEADER, lines)
    return load_official(tmp_path, ["repeat_referrals"]).frame


def test_a_level_written_in_another_case_is_still_read(tmp_path):
    frame = read(
        tmp_path, rows(**{"806": ("Local Authority", "806"), "807": ("local  authority", "807")})
    )
    assert sorted(frame["unit"]) == ["805", "806", "807", "808"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("Local authorty", "806"),
            "geographic_level 'Local authorty' is close to 'Local authority'",
        ),
        (("Local authority", ""), "old_la_code is empty"),
        (("Local authority", "999"), "old_la_code '999' is not a local authority's code"),
    ],
)
def test_a_row_that_would_be_lost_or_become_a_unit_is_refused(tmp_path, change, message):
    with pytest.raises(DataError) as err:
        read(tmp_path, rows(**{"806": change}))
    text = err.value.one_line()
    assert text.startswith(f"{C1}: ") and ", row 2: " in text and message in text
