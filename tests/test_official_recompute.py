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
from pathfinder_eval.data.catalogue import load_catalogue
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
    "repeat_cpp": 24.5,
    "care_leavers_eet_17_18": 64.0,
    "care_leavers_eet_19_21": 54.0,
}
# Published figures outside the files. cin_rate: DfE's England rates in the Children in need
# 2024 release (330.1, 329.6, 343.7 for 2020-2022); its 2023 and 2024 rates (339.1, 332.9)
# used ONS mid-year estimates since revised, which the ONS file holds, so they are not
# reproducible from it. cpp_rate and cin_rate use the ONS mid-(Y-1) estimate of children aged
# 0 to 17 (the method those figures confirm).
CIN_RATE_PUBLISHED = {2020: 330.1, 2021: 329.6, 2022: 343.7}
# New placements: DfE publishes the inside-LA and outside-LA parts as whole percentages, so
# the sum of the two published parts is the published figure, within a point.
SUMMED_PARTS = {"new_placements_over_20_miles": 21.0, "new_placements_outside_la": 36.0}
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
    catalogue = load_catalogue()
    for outcome, published in ENGLAND_2025.items():
        value = england.loc[outcome, "value"]
        decimals = catalogue[outcome].decimals
        assert round_half_up(np.array([value]), decimals)[0] == published, (
            outcome,
            value,
        )
        if outcome != "s47_rate":
            assert england.loc[outcome, "published"] == published


@needs_public_data
def test_new_indicators_england_at_published_precision():
    frame = official_national().frame.set_index(["outcome", "period"])
    for year, published in CIN_RATE_PUBLISHED.items():
        value = frame.loc[("cin_rate", year), "value"]
        assert round_half_up(np.array([value]), 1)[0] == published, (year, value)
    # England 2025 from the same denominators: 49,420 plans and 402,400 children in need at
    # 31 March 2025 per 12,183,016 children aged 0 to 17 in mid-2024.
    assert frame.loc[("cpp_rate", 2025), "denominator"] == 12_183_016
    assert round_half_up(np.array([frame.loc[("cpp_rate", 2025), "value"]]), 1)[0] == 40.6
    assert round_half_up(np.array([frame.loc[("cin_rate", 2025), "value"]]), 1)[0] == 330.3
    for outcome, published in SUMMED_PARTS.items():
        row = frame.loc[(outcome, 2025)]
        assert row["published"] == published
        assert round_half_up(np.array([row["value"]]), 0)[0] == published
    # 3+ social workers is published for 2024 only: 22,140 of 83,300 children, 27%
    sw = frame.loc[("cla_3plus_social_workers", 2024)]
    assert (sw["numerator"], sw["denominator"], sw["published"]) == (22140, 83300, 27)
    assert round_half_up(np.array([sw["value"]]), 0)[0] == 27
    years = frame.xs("cla_3plus_social_workers", level="outcome").index
    assert list(years) == [2024]


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
        "repeat_cpp",
        "care_leavers_eet_17_18",
        "care_leavers_eet_19_21",
        "cla_3plus_social_workers",
        *SUMMED_PARTS,
        *WORKFORCE,
    }, report
    # one year of 3+ social workers (2024): about 150 LAs; every other series is longer
    assert (rates.drop(index="cla_3plus_social_workers")["rows"] > 250).all(), report
    assert rates.loc["cla_3plus_social_workers", "rows"] > 140, report
    # a sum of two whole percentages is the exact figure only when the rounding errors
    # cancel: every one must lie within the parts' rounding, most agree exactly
    summed = rates.loc[list(SUMMED_PARTS)]
    assert (summed["within_input_rounding_rate"] == 1.0).all(), report
    assert (summed["match_rate"] > 0.7).all(), report
    exact = rates.drop(index=[*WORKFORCE, *SUMMED_PARTS])
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
def test_s47_divides_by_the_ons_estimate_the_cla_file_also_uses():
    data = load_official(PUBLIC_DATA, ["s47_rate", "cla_rate"])
    s47 = data.frame[data.frame["outcome"] == "s47_rate"].set_index(["unit", "period"])
    cla = data.frame[data.frame["outcome"] == "cla_rate"].set_index(["unit", "period"])
    assert set(s47.index.get_level_values("period")) == set(range(2013, 2026))
    assert not [e for e in data.ledger if e.reason.startswith("s47_rate")]
    # 2021-2025: ONS's mid-(Y-1) estimates are the CLA file's populations, LA by LA
    both = s47.index.intersection(cla.index)
    assert len(both) > 700
    pd.testing.assert_series_equal(
        s47.loc[both, "denominator"], cla.loc[both, "denominator"], check_names=False
    )


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


@needs_public_data
@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("truncate", r"line \d+ has 4 of the header's 14 fields"),
        ("typo", "'Children starting to be looked after each yr' is not a filter value"),
    ],
)
def test_a_damaged_row_is_refused_not_lost(tmp_path, damage, message):
    """A row cut short (pandas pads it with empty cells, so it fell out of every filter) or
    with a slip in its filter value left Dorset's 2025 entries to care out of the panel
    without a word: the estimate moved and the exclusions table did not."""
    src = PUBLIC_DATA / "cla_number_and_rate_per_10k_children.csv"
    lines = src.read_text(encoding="utf-8-sig").splitlines()
    i = next(
        k
        for k, line in enumerate(lines)
        if line.startswith("2025,") and ",Dorset," in line and "starting to be" in line
    )
    lines[i] = (
        ",".join(lines[i].split(",")[:4])
        if damage == "truncate"
        else lines[i].replace("each year", "each yr")
    )
    (tmp_path / src.name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=message) as err:
        load_official(tmp_path, ["entering_care_rate"])
    assert err.value.row == i and err.value.file == src.name
    # the undamaged file reads, and its near pairs (suitable / unsuitable) are not slips
    assert not load_official(PUBLIC_DATA, ["entering_care_rate"]).frame.empty
