"""Review fixes to `indicators --data` and the official loader, checked against the real DfE
files (read in place from ../shared/data/public) read independently with pandas, or against
tiny files written here.

A. a sum with a suppressed part is unavailable, and `published` is only a figure DfE printed;
B. `agrees` follows check_recomputation's rule (input rounding included);
C. abolished LAs are shown in their own years, and a year outside an LA's life is explained;
D. common short names of LAs resolve;
E. a folder with no DfE file says so and lists the files looked for.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from importlib.resources import files
from io import StringIO

import numpy as np
import pandas as pd
import pytest

from _data_paths import (
    C1,
    CPP,
    CSWW,
    NEW_PLACEMENTS,
    POPULATION,
    PUBLIC_DATA,
    needs_public_data,
    public,
    write_csv,
)
from pathfinder_eval.cli import main
from pathfinder_eval.data.indicator_values import (
    WITHIN_INPUTS,
    indicator_table,
    indicator_values,
)
from pathfinder_eval.data.la_lookup import (
    ALIASES,
    resolve_la,
    suggest_la,
    unknown_la_fix,
)
from pathfinder_eval.data.official import check_recomputation, load_official
from pathfinder_eval.errors import DataError

OUTSIDE = (
    "Placed outside LA boundary less than 20 miles from home",
    "Placed outside LA boundary more than 20 miles from home",
)
OVER_20 = (
    "Placed inside LA boundary more than 20 miles from home",
    "Placed outside LA boundary more than 20 miles from home",
)
PARTS = {"new_placements_outside_la": OUTSIDE, "new_placements_over_20_miles": OVER_20}


def _raw(name: str) -> pd.DataFrame:
    """A DfE file as strings, straight from disk (not through the package's reader)."""
    return pd.read_csv(public(name), dtype=str, keep_default_na=False, encoding="utf-8-sig")


def _la_rows(name: str) -> pd.DataFrame:
    raw = _raw(name)
    return raw[raw["geographic_level"] == "Local authority"]


def _half_up(x: float, decimals: int) -> float:
    """Round half up with exact decimal arithmetic (an oracle independent of round_half_up)."""
    quantum = Decimal(1).scaleb(-decimals)
    return float(Decimal(repr(x)).quantize(quantum, rounding=ROUND_HALF_UP))


def _cli_csv(capsys, *args: str) -> pd.DataFrame:
    assert main(["indicators", "--data", str(PUBLIC_DATA), *args, "--format", "csv"]) == 0
    out = capsys.readouterr().out
    return pd.read_csv(StringIO(out), dtype={"area_code": str}, keep_default_na=False)


# --- A: summed parts -------------------------------------------------------------------


@needs_public_data
def test_a_suppressed_part_makes_the_sum_unavailable_not_zero(capsys):
    raw = _la_rows(NEW_PLACEMENTS)
    parts = raw[(raw["time_period"] == "2021") & raw["breakdown"].isin(OUTSIDE)]
    city = parts[parts["old_la_code"] == "201"]
    hf = parts[parts["old_la_code"] == "205"].set_index("breakdown")
    # what DfE printed: City of London c, c; Hammersmith and Fulham 52% plus a suppressed part
    assert sorted(city["children_count"]) == ["c", "c"]
    assert sorted(city["children_percent"]) == ["c", "c"]
    assert hf.loc[OUTSIDE[0], "children_percent"] == "52"
    assert hf.loc[OUTSIDE[1], "children_percent"] == "c"

    table = _cli_csv(
        capsys,
        *("--la", "City of London", "--la", "Hammersmith and Fulham"),
        *("--year", "2021", "--indicator", "new_placements_outside_la"),
    )
    las = table[table["area_type"] == "Local authority"].set_index("area_code")
    for code in ("201", "205"):
        row = las.loc[code]
        assert row["status"] == "c", code
        # blank, not 0 or 52: DfE never printed a total for these LAs
        assert (row["value"], row["published"], row["numerator"]) == ("", "", ""), code


@needs_public_data
def test_a_every_published_sum_is_one_dfe_printed():
    """Every LA-year `published` figure of a summed indicator is the sum of two parts DfE
    printed as numbers; where either part is a symbol there is no published figure."""
    raw = _la_rows(NEW_PLACEMENTS)
    frame = load_official(PUBLIC_DATA, list(PARTS)).frame
    ok_rows = 0
    for outcome, wanted in PARTS.items():
        sub = raw[raw["breakdown"].isin(wanted)]
        pct = sub.pivot_table(
            index=["time_period", "old_la_code"],
            columns="breakdown",
            values="children_percent",
            aggfunc="first",
        )
        numeric = pct.apply(lambda col: col.str.fullmatch(r"\d+(\.\d+)?")).all(axis=1)
        expected = pct[list(wanted)].where(numeric).astype(float).sum(axis=1, min_count=2)
        expected.index = expected.index.set_levels(expected.index.levels[0].astype(int), level=0)
        got = frame[frame["outcome"] == outcome].set_index(["period", "unit"])["published"]
        both = got.index.intersection(expected.index)
        assert len(both) > 700, outcome
        np.testing.assert_array_equal(got.loc[both].to_numpy(), expected.loc[both].to_numpy())
        # and the suppressed sums are usable nowhere: NaN value, numerator and published
        symbol = frame[(frame["outcome"] == outcome) & (frame["status"] == "c")]
        assert len(symbol) > 50, outcome
        assert symbol[["value", "numerator", "published"]].isna().all().all(), outcome
        ok_rows += int(expected.loc[both].notna().sum())
    assert ok_rows > 1000


def test_a_tiny_file_suppressed_part_is_excluded_and_its_percent_unpublished(tmp_path):
    header = (
        "time_period,time_identifier,geographic_level,country_code,region_code,old_la_code,"
        "characteristic,breakdown,children_count,children_percent"
    )
    ch = "Location of new placements during the year"

    def rows(code: str, less: tuple[str, str], more: tuple[str, str], total: str) -> list[str]:
        base = f"2025,Reporting year,Local authority,E92000001,E12000001,{code},{ch}"
        return [
            f"{base},{OUTSIDE[0]},{less[0]},{less[1]}",
            f"{base},{OUTSIDE[1]},{more[0]},{more[1]}",
            f"{base},Total new placements,{total},100",
        ]

    write_csv(
        tmp_path / "la_cla_during_year_new_placements.csv",
        header,
        rows("805", ("c", "c"), ("30", "30"), "100")
        + rows("806", ("10", "10"), ("20", "20"), "100"),
    )
    frame = load_official(tmp_path, ["new_placements_outside_la"]).frame.set_index("unit")
    assert frame.loc["805", "status"] == "c"
    assert np.isnan(frame.loc["805", ["numerator", "value", "published"]].astype(float)).all()
    assert frame.loc["806", "status"] == ""
    assert frame.loc["806", ["numerator", "published"]].tolist() == [30.0, 30.0]


# --- B: agrees uses check_recomputation's rule ------------------------------------------


@needs_public_data
def test_b_southwark_2017_turnover_is_within_input_rounding_not_a_mismatch():
    raw = _la_rows(CSWW)
    row = raw[(raw["time_period"] == "2017") & (raw["old_la_code"] == "210")].iloc[0]
    leavers, inpost = float(row["leavers_fte"]), float(row["inpost_fte"])
    published = float(row["turnover_rate_fte"])
    assert (leavers, inpost, published) == (39.4, 236.5, 16.6)
    # 39.4 / 236.5 = 16.66 -> 16.7, but FTEs rounded to 0.1 allow 39.35-39.45 / 236.45-236.55
    assert _half_up(leavers / inpost * 100, 1) == 16.7
    assert _half_up((leavers - 0.05) / (inpost + 0.05) * 100, 1) <= published
    table = indicator_values(PUBLIC_DATA, ["sw_turnover"], ["210"], 2017)
    southwark = table[table["area_code"] == "210"].iloc[0]
    assert (southwark["value"], southwark["published"]) == (16.7, 16.6)
    assert southwark["agrees"] == WITHIN_INPUTS


@needs_public_data
def test_b_agrees_says_no_only_outside_input_rounding_for_every_la_turnover():
    """For every LA-year of sw_turnover, `agrees` is what an independent interval check on
    the raw file gives: yes / within the FTEs' rounding / no."""
    raw = _la_rows(CSWW)
    numeric = raw[["leavers_fte", "inpost_fte", "turnover_rate_fte"]].apply(
        lambda c: c.str.fullmatch(r"\d+(\.\d+)?")
    )
    raw = raw[numeric.all(axis=1)]
    raw = raw[raw["inpost_fte"].astype(float) > 0]
    expected = {}
    for _, r in raw.iterrows():
        n, d, pub = float(r["leavers_fte"]), float(r["inpost_fte"]), float(r["turnover_rate_fte"])
        lo = _half_up((n - 0.05) / (d + 0.05) * 100, 1)
        hi = _half_up((n + 0.05) / (d - 0.05) * 100, 1)
        label = (
            "yes"
            if _half_up(n / d * 100, 1) == pub
            else WITHIN_INPUTS
            if lo - 1e-9 <= pub <= hi + 1e-9
            else "no"
        )
        expected[(int(r["time_period"]), r["old_la_code"])] = label
    codes = sorted({u for _, u in expected})
    got = {}
    for year in sorted({y for y, _ in expected}):
        table = indicator_values(PUBLIC_DATA, ["sw_turnover"], codes, year)
        las = table[table["area_type"] == "Local authority"]
        got.update({(year, u): a for u, a in zip(las["area_code"], las["agrees"], strict=True)})
    assert {k: got.get(k) for k in expected} == expected
    # the LA-years left out above (a symbol in the file) have nothing to compare
    assert {got[k] for k in set(got) - set(expected)} <= {""}
    labels = pd.Series(list(got.values())).value_counts()
    assert labels.get(WITHIN_INPUTS, 0) > 50 and labels.get("no", 0) == 0, labels


@needs_public_data
def test_b_agrees_and_check_recomputation_never_disagree():
    """Same rule, one place: every LA row check_recomputation finds within input rounding is
    not 'no' in the table, and every exact match is 'yes' (2017, the first CSWW year)."""
    ids = ["sw_turnover", "agency_rate", "caseload"]
    check = check_recomputation(load_official(PUBLIC_DATA, ids).frame)
    check = check[check["period"] == 2017].set_index(["outcome", "unit"])
    table = indicator_values(PUBLIC_DATA, ids, sorted(set(check.index.get_level_values(1))), 2017)
    las = table[table["area_type"] == "Local authority"].set_index(["indicator", "area_code"])
    both = check.index.intersection(las.index)
    assert len(both) > 400
    agrees = las.loc[both, "agrees"]
    assert (agrees[check.loc[both, "match"].to_numpy()] == "yes").all()
    inside = check.loc[both, "within_input_rounding"].to_numpy()
    assert (agrees[inside] != "no").all()
    assert (agrees[~inside] == "no").all()


# --- C: abolished LAs -------------------------------------------------------------------


@needs_public_data
def test_c_cumbria_2023_cpp_rate_from_its_own_rows(capsys):
    d5 = _la_rows(CPP)
    pop = _la_rows(POPULATION)
    plans = d5[(d5["time_period"] == "2023") & (d5["old_la_code"] == "909")]["CPP_At31"]
    children = pop[
        (pop["time_period"] == "2022")
        & (pop["old_la_code"] == "909")
        & (pop["age_group"] == "Children aged 0 to 17 years")
    ]["population_estimate"]
    n, d = float(plans.iloc[0]), float(children.iloc[0])
    assert (n, d) == (452, 90547)
    for ref in ("Cumbria", "909", "E10000006"):
        table = _cli_csv(capsys, "--la", ref, "--year", "2023", "--indicator", "cpp_rate")
        row = table[table["area_type"] == "Local authority"].iloc[0]
        assert (row["area_code"], row["area"]) == ("909", "Cumbria"), ref
        assert (row["numerator"], row["denominator"]) == (n, d), ref
        assert row["value"] == _half_up(n / d * 10_000, 1) == 49.9, ref


@pytest.mark.parametrize(
    ("ref", "code", "year"),
    [
        ("Northamptonshire", "928", 2021),
        ("928", "928", 2021),
        ("Bournemouth", "837", 2019),
        ("Poole", "836", 2019),
        ("835", "835", 2019),
        ("Dorset county", "835", 2019),
        ("Cumbria", "909", 2023),
    ],
)
@needs_public_data
def test_c_abolished_las_show_their_own_years(ref, code, year):
    c1 = _la_rows(C1)
    raw = c1[(c1["time_period"] == str(year)) & (c1["old_la_code"] == code)].iloc[0]
    table, _ = indicator_table(PUBLIC_DATA, [ref], year, ["repeat_referrals"])
    row = table[table["area_type"] == "Local authority"].iloc[0]
    assert row["area_code"] == code
    assert row["numerator"] == float(raw["rereferral_count"])
    assert row["denominator"] == float(raw["referral_count"])
    assert row["published"] == float(raw["rereferral_percent"])


@needs_public_data
def test_c_default_year_of_an_abolished_la_is_its_own_last():
    c1, csww = _la_rows(C1), _la_rows(CSWW)
    last_c1 = c1.loc[c1["old_la_code"] == "909", "time_period"].astype(int).max()
    last_csww = csww.loc[csww["old_la_code"] == "909", "time_period"].astype(int).max()
    assert (last_c1, last_csww) == (2023, 2022)
    table, _ = indicator_table(PUBLIC_DATA, ["Cumbria"], None, ["repeat_referrals", "caseload"])
    years = table[table["area_type"] == "Local authority"].set_index("indicator")["year"]
    assert years.to_dict() == {"repeat_referrals": last_c1, "caseload": last_csww}


@needs_public_data
def test_c_a_year_before_an_la_existed_names_its_predecessors(capsys):
    d5 = _la_rows(CPP)
    in_2019 = set(d5.loc[d5["time_period"] == "2019", "old_la_code"])
    assert {"835", "836", "837"} <= in_2019 and "838" not in in_2019
    argv = ["indicators", "--data", str(PUBLIC_DATA), "--la", "Dorset", "--year", "2019"]
    assert main([*argv, "--indicator", "cpp_rate"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1
    assert "reports from 2020" in err and "Dorset (835, 2013-2019)" in err
    assert "ask for 835, 836, 837 for 2019" in err
    # asked for the predecessor, the year is shown
    table, _ = indicator_table(PUBLIC_DATA, ["835"], 2019, ["repeat_cpp"])
    assert (table["area_code"] == "835").sum() == 1


@needs_public_data
def test_c_a_year_after_an_la_was_abolished_names_the_las_that_replaced_it():
    c1 = _la_rows(C1)
    in_2025 = set(c1.loc[c1["time_period"] == "2025", "old_la_code"])
    assert {"942", "943"} <= in_2025 and "909" not in in_2025
    with pytest.raises(DataError) as info:
        indicator_table(PUBLIC_DATA, ["Cumbria"], 2025, ["repeat_referrals"])
    text = str(info.value)
    assert "no figures for 2025" in text and "2013-2023" in text
    assert "Cumberland (942)" in text and "Westmorland and Furness (943)" in text
    assert "ask for 942, 943 for 2025" in text


def test_c_unknown_la_fix_for_an_abolished_la_is_not_self_contradictory():
    for ref in ("Cumbria", "909", "E10000006"):
        assert resolve_la(ref) is None  # designs name current LAs
        assert "Cumbria" not in suggest_la(ref)
        assert suggest_la(ref) == ["Cumberland", "Westmorland and Furness"]
        fix = unknown_la_fix(ref)
        assert "2013-2023" in fix and "942" in fix and "943" in fix
    assert "Northamptonshire" not in suggest_la("Northamptonshire")


# --- D: short names ---------------------------------------------------------------------


def test_d_common_short_names_resolve():
    # the shipped lookup read as a plain CSV, not through la_lookup.py
    with (files("pathfinder_eval.data") / "la_lookup.csv").open(encoding="utf-8") as fh:
        lookup = pd.read_csv(fh, dtype=str, keep_default_na=False)
    lookup = lookup.drop_duplicates("la_name", keep="last").set_index("la_name")
    cases = {
        "Herefordshire": "Herefordshire, County of",
        "County of Herefordshire": "Herefordshire, County of",
        "Hull": "Kingston upon Hull, City of",
        "Kingston upon Hull": "Kingston upon Hull, City of",
        "Bristol": "Bristol, City of",
        "Durham": "County Durham",
        "BCP": "Bournemouth, Christchurch and Poole",
    }
    for ref, name in cases.items():
        la = resolve_la(ref)
        assert la is not None, ref
        assert la.la_code == lookup.loc[name, "la_code"], ref
    # "Hereford" is not a name, but the suggestion is now the right LA first
    assert suggest_la("Hereford")[0] == "Herefordshire, County of"
    # every alias points at a current LA whose own name is not another LA's
    names = {n.lower() for n in lookup.index}
    current = set(lookup.loc[lookup["last_year"] == "2025", "la_code"])
    for alias, code in ALIASES.items():
        assert alias not in names, alias
        assert code in current or code == "835", alias


@needs_public_data
def test_d_hull_and_herefordshire_in_the_table(capsys):
    c1 = _la_rows(C1)
    for ref, name in (
        ("Hull", "Kingston upon Hull, City of"),
        ("Herefordshire", "Herefordshire, County of"),
    ):
        raw = c1[(c1["time_period"] == "2025") & (c1["la_name"] == name)].iloc[0]
        table = _cli_csv(capsys, "--la", ref, "--year", "2025", "--indicator", "repeat_referrals")
        row = table[table["area_type"] == "Local authority"].iloc[0]
        assert row["area_code"] == raw["old_la_code"], ref
        assert row["numerator"] == float(raw["rereferral_count"]), ref


# --- E: empty folder --------------------------------------------------------------------


def test_e_empty_folder_says_no_dfe_files_and_lists_them(tmp_path, capsys):
    assert main(["indicators", "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no indicators requested" not in err
    assert "no DfE files found in the folder (no CSV files)" in err
    for name in (C1, CSWW, NEW_PLACEMENTS, POPULATION):
        assert name in err, name
    (tmp_path / "notes.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"1 CSV file\(s\), none of them a DfE file"):
        indicator_table(tmp_path, [], None, [])


@needs_public_data
def test_the_api_reads_one_la_and_one_indicator_as_names_not_letters():
    """pe.indicators(las="Dorset") was read as the LAs 'D', 'o', ...: "unknown local
    authority 'D'"; ids="cpp_rate" as the indicator 'c'; year="2025" found no values."""
    import pathfinder_eval as pe

    one = pe.indicators(PUBLIC_DATA, las="Dorset", ids="cpp_rate", year="2025")
    listed = pe.indicators(PUBLIC_DATA, las=["Dorset"], ids=["cpp_rate"], year=2025)
    pd.testing.assert_frame_equal(one, listed)
    dorset = one[one["area_code"] == "838"]
    assert dorset["value"].tolist() == [41.4]
