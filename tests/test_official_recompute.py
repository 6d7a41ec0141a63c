"""load_official contract, and recomputed rates against DfE's published figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from _data_paths import (
    C1,
    C1_HEADER,
    CSWW,
    PUBLIC_DATA,
    SHA256,
    needs_public_data,
    official_la,
    official_national,
    public,
    write_csv,
)
from pathfinder_eval.data.official import (
    check_recomputation,
    load_official,
    round_half_up,
    summarise_recomputation,
)
from pathfinder_eval.data.source import OFFICIAL_COLUMNS
from pathfinder_eval.errors import DataError

DTYPES = {
    "unit": "str",
    "period": "int64",
    "outcome": "str",
    "numerator": "float64",
    "denominator": "float64",
    "value": "float64",
    "published": "float64",
    "status": "str",
    "source": "str",
    "detail": "str",
}
WORKFORCE = {"sw_turnover", "agency_rate", "caseload"}
# England 2025 as DfE publishes it (s47: Children in need 2025 release; the c4 file has counts
# only). Each must be reproduced exactly at published precision from the file's counts.
ENGLAND_2025 = {
    "repeat_referrals": 22.6,
    "entering_care_rate": 26.0,
    "s47_rate": 189.3,
    "sw_turnover": 11.8,
    "agency_rate": 13.0,
    "caseload": 15.2,
}
# LA figures DfE computes from the same unrounded counts it publishes: exact agreement expected.
LA_MIN_MATCH = 0.99


@needs_public_data
def test_contract_columns_dtypes_and_provenance():
    data = official_la()
    assert tuple(data.frame.columns) == OFFICIAL_COLUMNS
    assert {c: str(t) for c, t in data.frame.dtypes.items()} == DTYPES
    assert isinstance(data.frame.index, pd.RangeIndex)
    usable = data.frame["status"] == ""
    assert data.frame.loc[usable, "value"].notna().all()
    assert data.frame.loc[~usable, "value"].isna().all()
    assert dict(data.files) == SHA256
    assert set(data.frame["period"]) == set(range(2013, 2026))


@needs_public_data
def test_england_2025_is_reproduced_at_published_precision():
    frame = official_national().frame
    england = frame[(frame["unit"] == "E92000001") & (frame["period"] == 2025)]
    england = england.set_index("outcome")
    decimals = {"entering_care_rate": 0}
    for outcome, published in ENGLAND_2025.items():
        value = england.loc[outcome, "value"]
        assert round_half_up(np.array([value]), decimals.get(outcome, 1))[0] == published, (
            outcome,
            value,
        )
        if outcome != "s47_rate":
            assert england.loc[outcome, "published"] == published


@needs_public_data
def test_la_recomputation_matches_published_figures():
    summary = summarise_recomputation(check_recomputation(official_la().frame))
    rates = summary.set_index("outcome")
    report = summary.to_string(index=False)
    assert set(rates.index) == {
        "repeat_referrals",
        "entering_care_rate",
        "cla_rate",
        "placement_stability_3plus",
        "care_leavers_unsuitable_17_18",
        "care_leavers_unsuitable_19_21",
        *WORKFORCE,
    }, report
    assert (rates["rows"] > 250).all(), report
    exact = rates.drop(index=list(WORKFORCE))
    assert (exact["match_rate"] > LA_MIN_MATCH).all(), report
    # CSWW publishes FTEs to 0.1 but computes rates from unrounded FTEs: exact agreement is
    # not reachable from the file, so every published rate must lie within the input rounding.
    assert (rates.loc[list(WORKFORCE), "within_input_rounding_rate"] == 1.0).all(), report
    assert (rates.loc[list(WORKFORCE), "match_rate"] > 0.9).all(), report


def test_check_recomputation_rounds_half_up_and_leaves_input_alone():
    frame = pd.DataFrame(
        {
            "unit": ["805", "806", "807"],
            "period": [2025] * 3,
            "outcome": ["repeat_referrals"] * 3,
            "numerator": [1.0, 453.0, 1.0],
            "denominator": [8.0, 2000.0, 3.0],
            "value": [12.5, 22.65, 100 / 3],
            "published": [12.5, 22.7, 33.4],
            "status": [""] * 3,
            "source": ["t.csv"] * 3,
        }
    )
    before = frame.copy()
    check = check_recomputation(frame)
    # exact: the caller's frame must be untouched, not merely close
    pd.testing.assert_frame_equal(frame, before)
    assert check["match"].tolist() == [True, True, False]
    assert check["recomputed"].tolist() == [12.5, 22.7, 33.3]


def test_missing_family_file_says_what_to_download(tmp_path):
    write_csv(
        tmp_path / C1,
        C1_HEADER,
        ["2025,Reporting year,Local authority,E92000001,E12000001,805,100,20,20"],
    )
    with pytest.raises(DataError) as err:
        load_official(tmp_path, ["cla_rate"])
    message = str(err.value)
    assert str(tmp_path) in message and "cla_rates" in message
    assert "cla_number_and_rate_per_10k_children" in message
    assert "Children looked after in England including adoptions" in message


def test_two_releases_of_one_family_are_refused(tmp_path):
    for years in ("2013_to_2024", "2013_to_2025"):
        write_csv(
            tmp_path / f"c1_children_in_need_referrals_and_rereferrals_{years}.csv",
            C1_HEADER,
            ["2025,Reporting year,Local authority,E92000001,E12000001,805,1,1,1"],
        )
    with pytest.raises(DataError, match="2 files of family cin_referrals"):
        load_official(tmp_path, ["repeat_referrals"])


def test_unknown_indicator_suggests_the_nearest(tmp_path):
    with pytest.raises(DataError, match="did you mean 'repeat_referrals'"):
        load_official(tmp_path, ["repeat_referral"])


def test_small_folder_with_financial_years_symbols_and_zero_denominator(tmp_path):
    write_csv(
        tmp_path / "referrals_and_rereferrals_latest.csv",
        C1_HEADER,
        [
            "202425,Financial year,Local authority,E92000001,E12000001,805,200,50,25",
            "202425,Financial year,Local authority,E92000001,E12000001,806,40,c,c",
            "202425,Financial year,Local authority,E92000001,E12000001,420,0,0,z",
            "202425,Financial year,National,E92000001,,,240,50,20.8",
        ],
    )
    frame = load_official(tmp_path, ["repeat_referrals"]).frame.set_index("unit")
    assert list(frame.index) == ["420", "805", "806"]
    assert (frame["period"] == 2025).all()
    assert frame.loc["805", "value"] == 25.0 and frame.loc["805", "published"] == 25.0
    assert frame.loc["806", "status"] == "c" and np.isnan(frame.loc["806", "value"])
    assert frame.loc["806", "denominator"] == 40.0
    assert frame.loc["420", "status"] == "zero_denominator"


@needs_public_data
def test_s47_uses_the_cla_population_and_ledgers_years_without_one():
    data = load_official(PUBLIC_DATA, ["s47_rate"])
    assert set(data.frame["period"]) == set(range(2021, 2026))
    assert [name for name, _ in data.files] == [
        "c4_children_in_need_section_47s_and_icpcs_2013_to_2025.csv",
        "cla_number_and_rate_per_10k_children.csv",
    ]
    (entry,) = [e for e in data.ledger if e.reason.startswith("s47_rate")]
    raw = pd.read_csv(
        public("c4_children_in_need_section_47s_and_icpcs_2013_to_2025.csv"),
        dtype=str,
        keep_default_na=False,
    )
    early = (raw["geographic_level"] == "Local authority") & (raw["time_period"] < "2021")
    assert entry.count == int(early.sum())


@needs_public_data
def test_workforce_periods_keep_their_own_year():
    frame = official_la().frame
    raw = pd.read_csv(public(CSWW), dtype=str, keep_default_na=False)
    la = raw[raw["geographic_level"] == "Local authority"]
    assert set(frame.loc[frame["outcome"] == "sw_turnover", "period"]) == set(
        la["time_period"].astype(int)
    )


def test_repeated_rows_point_at_the_rows_of_the_users_file(tmp_path):
    rows = [
        "2024,Reporting year,Local authority,E92000001,E12000001,805,100,20,20",
        "2025,Reporting year,Local authority,E92000001,E12000001,805,100,20,20",
        "2025,Reporting year,Local authority,E92000001,E12000001,806,50,5,10",
        "2025,Reporting year,Local authority,E92000001,E12000001,805,100,20,20",
    ]
    write_csv(tmp_path / C1, C1_HEADER, rows)
    with pytest.raises(DataError) as err:
        load_official(tmp_path, ["repeat_referrals"])
    line = err.value.one_line()
    assert line.startswith(f"{C1}: row 4: rows 2, 4 repeat one Local authority row for ")
    assert "time_period 2025, area 805 (1 repeated rows in the file)" in line
    assert "remove the repeated rows from the file" in line and "indicators.yaml" not in line


def test_rows_differing_in_an_unfiltered_column_are_a_new_breakdown(tmp_path):
    header = C1_HEADER + ",age_group"
    rows = [
        "2025,Reporting year,Local authority,E92000001,E12000001,805,100,20,20,Total",
        "2025,Reporting year,Local authority,E92000001,E12000001,805,60,12,20,Under 10",
    ]
    write_csv(tmp_path / C1, header, rows)
    with pytest.raises(DataError) as err:
        load_official(tmp_path, ["repeat_referrals"])
    line = err.value.one_line()
    assert "rows 1, 2 are both Local authority rows for time_period 2025, area 805" in line
    assert "they differ in age_group" in line
