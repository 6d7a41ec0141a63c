"""LA harmonisation: each reorganisation rule, ledger counts, the aggregate option."""

from __future__ import annotations

from importlib.resources import files

import numpy as np
import pandas as pd
import pytest

from _data_paths import C1, CLA, PUBLIC_DATA, needs_public_data, official_la, public
from pathfinder_eval.data.harmonise import harmonise, load_reorganisations
from pathfinder_eval.data.official import load_official
from pathfinder_eval.errors import DataError

ALL_FLAGS = {
    "buckinghamshire_2020",
    "north_yorkshire_2023",
    "somerset_2023",
    "northamptonshire_2021",
    "cumbria_2023",
    "dorset_2019",
    "kingston_richmond_csww",
    "northamptonshire_csww",
}


def _raw(name: str) -> pd.DataFrame:
    frame = pd.read_csv(public(name), dtype=str, encoding="utf-8-sig", keep_default_na=False)
    return frame[frame["geographic_level"] == "Local authority"]


def _periods(frame: pd.DataFrame, unit: str, outcome: str) -> list[int]:
    rows = frame[(frame["unit"] == unit) & (frame["outcome"] == outcome)]
    return sorted(rows["period"].tolist())


def _long(rows: list[tuple[str, int, str, float, float, str]]) -> pd.DataFrame:
    """A small long frame: (unit, period, outcome, numerator, denominator, status)."""
    frame = pd.DataFrame(
        rows, columns=["unit", "period", "outcome", "numerator", "denominator", "status"]
    )
    frame["value"] = np.where(
        frame["status"] == "", frame["numerator"] / frame["denominator"] * 100, np.nan
    )
    frame["published"] = np.nan
    frame["source"] = "test.csv"
    return frame


def test_every_rule_is_stated_in_the_yaml():
    rules = {r.id: r.rule for r in load_reorganisations()}
    assert set(rules) == ALL_FLAGS
    assert rules["dorset_2019"] == "break" and rules["cumbria_2023"] == "split"
    assert rules["north_yorkshire_2023"] == "continuous"
    assert rules["kingston_richmond_csww"] == "combined"


def test_first_periods_agree_with_the_la_lookup():
    lookup = pd.read_csv(files("pathfinder_eval.data") / "la_lookup.csv", dtype=str)
    years = lookup.set_index("la_code")[["first_year", "last_year"]].astype(int)
    for r in load_reorganisations():
        if r.first_period is None:
            continue
        assert all(years.loc[u, "first_year"] == r.first_period for u in r.new_units), r.id
        assert all(years.loc[u, "last_year"] == r.first_period - 1 for u in r.old_units), r.id


def test_reorganisations_describe_themselves_for_the_report():
    text = {r.id: str(r) for r in load_reorganisations()}
    assert text["cumbria_2023"].startswith("Cumbria split")
    assert (
        "909 -> 942, 943" in text["cumbria_2023"]
        and "old unit's rows excluded" in text["cumbria_2023"]
    )
    assert "one continuous series" in text["somerset_2023"]


def test_ledger_counts_equal_rows_dropped_and_input_untouched():
    frame = _long(
        [
            ("928", 2020, "repeat_referrals", 10, 100, ""),
            ("928", 2021, "repeat_referrals", 10, 100, ""),
            ("928", 2022, "repeat_referrals", np.nan, np.nan, "z"),
            ("940", 2021, "repeat_referrals", np.nan, np.nan, "z"),
            ("941", 2021, "repeat_referrals", np.nan, np.nan, "x"),
            ("940", 2022, "repeat_referrals", 4, 50, ""),
            ("941", 2022, "repeat_referrals", 6, 50, ""),
            ("835", 2019, "repeat_referrals", 5, 40, ""),
            ("838", 2020, "repeat_referrals", 5, 40, ""),
            ("815", 2022, "repeat_referrals", 3, 30, ""),
            ("815", 2024, "repeat_referrals", 3, 30, ""),
            ("204", 2021, "repeat_referrals", np.nan, np.nan, "x"),  # x but not a defunct LA
        ]
    )
    before = frame.copy()
    out, ledger = harmonise(frame)
    # exact: the caller's frame must be untouched, not merely close
    pd.testing.assert_frame_equal(frame, before)
    assert len(frame) - len(out) == sum(e.count for e in ledger) == 6
    counts = {e.reason.split(" ")[0]: (e.count, e.units) for e in ledger}
    assert counts["z/x"] == (3, ("928", "940", "941"))
    assert counts["Northamptonshire"] == (2, ("928",))
    assert counts["Dorset"] == (1, ("835",))
    assert set(out["unit"]) == {"940", "941", "838", "815", "204"}


def test_aggregate_sums_successors_into_the_old_code():
    frame = _long(
        [
            ("928", 2021, "repeat_referrals", 10, 100, ""),
            ("940", 2022, "repeat_referrals", 4, 50, ""),
            ("941", 2022, "repeat_referrals", 6, 30, ""),
            ("940", 2023, "repeat_referrals", 4, 50, ""),  # 941 absent in 2023
            ("940", 2024, "repeat_referrals", 4, 50, ""),
            ("941", 2024, "repeat_referrals", np.nan, np.nan, "c"),
            ("940 / 941", 2022, "sw_turnover", 12, 300, ""),  # CSWW combined return
        ]
    )
    out, ledger = harmonise(frame, aggregate=True)
    assert ledger == []
    assert set(out["unit"]) == {"928"}
    rr = out[out["outcome"] == "repeat_referrals"].set_index("period")
    assert rr.loc[2022, "numerator"] == 10 and rr.loc[2022, "denominator"] == 80
    assert rr.loc[2022, "value"] == pytest.approx(12.5)
    assert rr.loc[2023, "status"] == "partial_aggregate" and np.isnan(rr.loc[2023, "value"])
    assert rr.loc[2024, "status"] == "c"
    sw = out[out["outcome"] == "sw_turnover"].iloc[0]
    assert sw["numerator"] == 12 and sw["value"] == pytest.approx(4.0)


def test_harmonise_names_missing_columns():
    with pytest.raises(DataError, match="lacks column"):
        harmonise(pd.DataFrame({"unit": ["815"], "period": [2024]}))


@needs_public_data
def test_dorset_is_a_break_and_predecessors_are_counted():
    data = load_official(PUBLIC_DATA, ["repeat_referrals"])
    frame = data.frame
    assert _periods(frame, "838", "repeat_referrals") == list(range(2020, 2026))
    assert _periods(frame, "839", "repeat_referrals") == list(range(2020, 2026))
    assert not set(frame["unit"]) & {"835", "836", "837"}
    raw = _raw(C1)
    dropped = int(raw["old_la_code"].isin(["835", "836", "837"]).sum())
    (entry,) = [e for e in data.ledger if e.reason.startswith("Dorset")]
    assert dropped == 21 and entry.count == dropped
    assert entry.units == ("835", "836", "837")


@needs_public_data
def test_north_yorkshire_is_one_series_despite_its_new_gss_code():
    raw = _raw(C1)
    assert set(raw.loc[raw["old_la_code"] == "815", "new_la_code"]) == {"E10000023", "E06000065"}
    frame = official_la().frame
    assert _periods(frame, "815", "repeat_referrals") == list(range(2013, 2026))
    assert "north_yorkshire_2023" in {r.id for r in official_la().reorganisations}


@needs_public_data
def test_cumbria_successors_start_2024_and_defunct_rows_are_counted():
    data = load_official(PUBLIC_DATA, ["cla_rate", "repeat_referrals"])
    frame = data.frame
    for unit in ("942", "943"):
        assert _periods(frame, unit, "repeat_referrals") == [2024, 2025]
        assert _periods(frame, unit, "cla_rate") == [2024, 2025]
    assert "909" not in set(frame["unit"])
    raw = _raw(CLA)
    raw = raw[raw["population_type"] == "Children looked after on 31 March each year"]
    defunct = raw["old_la_code"].isin(["909", "928", "940", "941", "942", "943"]) & (
        raw["children_count"] == "z"
    )
    (entry,) = [e for e in data.ledger if e.reason.startswith("z/x")]
    assert entry.count == int(defunct.sum()) == 14
    (cumbria,) = [e for e in data.ledger if e.reason.startswith("Cumbria")]
    assert cumbria.count == 11 + 3  # CIN 2013-2023 and CLA 2021-2023


@needs_public_data
def test_combined_workforce_returns_are_kept_and_flagged():
    data = official_la()
    frame = data.frame
    combined = frame[frame["unit"] == "314 / 318"]
    assert set(combined["outcome"]) == {"sw_turnover", "agency_rate", "caseload"}
    assert {"314", "318"} <= set(frame.loc[frame["outcome"] == "repeat_referrals", "unit"])
    assert {r.id for r in data.reorganisations} == ALL_FLAGS


@needs_public_data
def test_aggregate_gives_northamptonshire_a_continuous_series():
    frame = official_la(aggregate=True).frame
    assert _periods(frame, "928", "repeat_referrals") == list(range(2013, 2026))
    assert _periods(frame, "928", "sw_turnover") == list(range(2017, 2026))
    assert not set(frame["unit"]) & {"940", "941", "940 / 941", "942", "943"}
    raw = _raw(C1)
    succ = raw[raw["old_la_code"].isin(["940", "941"]) & (raw["time_period"] == "2022")]
    expected = (
        succ["rereferral_count"].astype(int).sum() / succ["referral_count"].astype(int).sum() * 100
    )
    row = frame[
        (frame["unit"] == "928")
        & (frame["period"] == 2022)
        & (frame["outcome"] == "repeat_referrals")
    ]
    assert row["value"].iloc[0] == pytest.approx(expected)
