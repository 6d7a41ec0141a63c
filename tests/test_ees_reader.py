"""EES reader: symbols kept, BOM handled, families recognised, column drift, clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from _data_paths import (
    C1,
    C4,
    CARE_LEAVERS,
    CLA,
    CSWW,
    SHA256,
    STABILITY,
    needs_public_data,
    public,
)
from pathfinder_eval.data.ees import MISSING, SYMBOLS, ees_value, read_ees_csv
from pathfinder_eval.errors import DataError

HEADER = "time_period,time_identifier,geographic_level,country_code,region_code,old_la_code"


def _row(frame: pd.DataFrame, code: str, year: str) -> pd.DataFrame:
    return frame[(frame["old_la_code"] == code) & (frame["time_period"] == year)]


def test_symbol_legend_covers_every_ees_symbol():
    assert {"c", "x", "z", "u", "low", "k", ":", "~", MISSING} <= set(SYMBOLS)
    assert "suppressed" in SYMBOLS["c"]


@needs_public_data
def test_known_suppressed_cell_stays_nan_with_status_c():
    table = read_ees_csv(public(C1))
    # City of London 2024: 63 referrals, re-referrals suppressed (1 to 5).
    row = _row(table.frame, "201", "2024")
    values, status = ees_value(row["rereferral_count"], file=C1)
    assert np.isnan(values[0]) and status[0] == "c"
    values, status = ees_value(row["referral_count"], file=C1)
    assert values[0] == 63.0 and status[0] == ""


@needs_public_data
def test_u_low_and_k_symbols_are_kept_never_zero():
    cin = read_ees_csv(public(C1)).frame
    values, status = ees_value(_row(cin, "884", "2024")["referral_count"])  # Herefordshire
    assert np.isnan(values[0]) and status[0] == "u"
    csww = read_ees_csv(public(CSWW)).frame
    low = csww[csww["agency_fte"] == "low"]
    values, status = ees_value(low["agency_fte"])
    assert len(low) > 0 and np.isnan(values).all() and set(status) == {"low"}
    leavers = read_ees_csv(public(CARE_LEAVERS)).frame
    values, status = ees_value(leavers["care_leaver_percent"])
    assert (status == "k").sum() > 0
    assert np.isnan(values[status != ""]).all()
    assert not np.isnan(values[status == ""]).any()


@needs_public_data
@pytest.mark.parametrize(
    ("name", "family"),
    [
        (C1, "cin_referrals"),
        (C4, "cin_s47"),
        (CLA, "cla_rates"),
        (CSWW, "csww"),
        (STABILITY, "cla_placement_stability"),
        (CARE_LEAVERS, "care_leavers_accommodation"),
    ],
)
def test_every_public_file_is_recognised_and_hashed(name, family):
    table = read_ees_csv(public(name))
    assert table.family == family
    assert table.sha256 == SHA256[name]
    assert all(dtype == "str" for dtype in table.frame.dtypes)


@needs_public_data
def test_bom_file_reads_its_first_column_cleanly():
    assert public(CLA).read_bytes()[:3] == b"\xef\xbb\xbf"
    frame = read_ees_csv(public(CLA)).frame
    assert frame.columns[0] == "time_period"
    assert len(frame) == 2505
    england = frame[(frame["geographic_level"] == "National") & (frame["time_period"] == "2025")]
    assert set(england["population_estimate"]) == {"12183016"}


def test_column_drift_is_absorbed_by_aliases(tmp_path):
    # A future release: renamed columns, la_name moved, new year range in the file name.
    path = tmp_path / "c4_children_in_need_section_47s_and_icpcs_2014_to_2026.csv"
    path.write_text(
        "time_period,time_identifier,geographic_level,country_code,region_code,la_name,"
        "old_la_code,section47_count,ICPC_count\n"
        "2026,Reporting year,Local authority,E92000001,E12000001,Hartlepool,805,410,c\n",
        encoding="utf-8",
    )
    table = read_ees_csv(path)
    assert table.family == "cin_s47"
    assert {"section47", "icpc"} <= set(table.frame.columns)
    values, status = ees_value(table.frame["section47"])
    assert values[0] == 410.0 and status[0] == ""


def test_family_recognised_from_columns_when_file_is_renamed(tmp_path):
    path = tmp_path / "my_download.csv"
    path.write_text(
        f"{HEADER},Section47,ICPC\n2025,Reporting year,National,E92000001,,,5,2\n", encoding="utf-8"
    )
    assert read_ees_csv(path).family == "cin_s47"


def test_missing_family_column_names_the_aliases_tried(tmp_path):
    path = tmp_path / "c4_children_in_need_section_47s_and_icpcs_2013_to_2025.csv"
    path.write_text(
        f"{HEADER},Section47\n2025,Reporting year,National,E92000001,,,5\n", encoding="utf-8"
    )
    with pytest.raises(DataError) as err:
        read_ees_csv(path)
    assert "icpc" in str(err.value) and "icpc_count" in str(err.value)
    assert err.value.fix


def test_bad_value_error_names_file_column_row_and_value(tmp_path):
    path = tmp_path / "c1_children_in_need_referrals_and_rereferrals_2013_to_2025.csv"
    path.write_text(
        f"{HEADER},referral_count,rereferral_count,rereferral_percent\n"
        "2025,Reporting year,Local authority,E92000001,E12000001,805,100,20,20\n"
        "2025,Reporting year,Local authority,E92000001,E12000001,806,1 234,c,c\n",
        encoding="utf-8",
    )
    frame = read_ees_csv(path).frame
    with pytest.raises(DataError) as err:
        ees_value(frame["referral_count"], file=path.name)
    message = str(err.value)
    assert path.name in message and "referral_count" in message
    assert "row 2" in message and "'1 234'" in message
    assert err.value.row == 2


def test_empty_cell_is_missing_not_zero():
    values, status = ees_value(pd.Series(["", " 7 ", "12.5", "Z"], name="n"))
    assert np.isnan(values[0]) and status[0] == MISSING
    assert values[1] == 7.0 and values[2] == 12.5
    assert np.isnan(values[3]) and status[3] == "z"


@pytest.mark.parametrize(
    ("content", "phrase"),
    [
        ("", "file is empty"),
        ("\ufeff\n", "file is empty"),
        (f"{HEADER},referral_count\n", "no data rows"),
        ("year,la,referrals\n2025,805,10\n", "not an Explore Education Statistics file"),
    ],
)
def test_unusable_files_raise_with_a_fix(tmp_path, content, phrase):
    path = tmp_path / "file.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_ees_csv(path)
    assert phrase in str(err.value)
    assert "Fix:" in str(err.value) and "file.csv" in str(err.value)


def test_missing_file_raises(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_ees_csv(tmp_path / "absent.csv")


@pytest.mark.parametrize("extra", [0, 1])
def test_a_row_with_a_field_too_many_is_named_not_shifted(tmp_path, extra):
    """A trailing comma on the first data row made pandas take the first column as the index:
    every column shifted by one and the run ended in an internal error (exit 1)."""
    rows = [
        f"2024,Financial year,Local authority,E92000001,E12000001,805,{n}"
        + ("," if i == extra else "")
        for i, n in enumerate((10, 11, 12))
    ]
    path = tmp_path / "file.csv"
    path.write_text(f"{HEADER},referral_count\n" + "\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_ees_csv(path)
    line = extra + 2
    assert err.value.one_line().startswith(
        f"file.csv: row {line - 1}: line {line} has 8 fields, the header 7 (a comma at"
    )
