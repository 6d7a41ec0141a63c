"""Impossible numbers never reach an estimator: counts and denominators must be finite and not
negative, a share's numerator cannot exceed its denominator, values stay in the outcome's
plausible range; each excluded row is counted with the file, row, column and value."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from _data_paths import C1, C1_HEADER, write_csv
from cli_helpers import TIDY_DESIGN as DESIGN
from cli_helpers import run, tidy_csv
from pathfinder_eval.data.catalogue import load_catalogue
from pathfinder_eval.data.official import load_official
from pathfinder_eval.data.plausibility import Located, Plausible, screen
from pathfinder_eval.errors import EstimationError
from pathfinder_eval.results import EffectEstimates, InferenceUsed, estimates_table


def where(n: int, column: str) -> np.ndarray:
    return np.array([f"f.csv row {i + 1}, column {column}" for i in range(n)], dtype=object)


def test_screen_marks_the_first_failing_check_with_its_place_and_value():
    n = np.array([5.0, -1.0, np.inf, 12.0, 3.0, np.nan])
    d = np.array([10.0, 10.0, 10.0, 10.0, 10.0, 10.0])
    v = n / d * 100
    status = np.array(["", "", "", "", "", "c"], dtype=object)
    out, detail = screen(
        Located(v, where(6, "rate")),
        Plausible.for_scale("percent", share=True),
        status,
        Located(n, where(6, "num")),
        Located(d, where(6, "den")),
    )
    assert list(out) == ["", "impossible_count", "not_finite", "above_denominator", "", "c"]
    assert detail[1] == "f.csv row 2, column num = -1"
    assert detail[2] == "f.csv row 3, column num = infinity"
    assert detail[3] == "f.csv row 4, column num = 12 is above f.csv row 4, column den = 10"
    assert detail[0] == detail[4] == detail[5] == ""
    assert list(status) == ["", "", "", "", "", "c"]  # the caller's array is untouched


def test_range_comes_from_the_design_then_the_catalogue_then_the_scale():
    assert Plausible.for_scale("per_10000", share=False).describe() == "0 to 10000"
    assert Plausible.for_scale("level", share=False).describe() == "-1e+09 to 1e+09"
    assert Plausible.for_scale("ratio", share=False).describe() == "0 to 1e+09"
    caseload = load_catalogue()["caseload"]
    assert caseload.rule().describe() == "0 to 100"
    assert caseload.rule((1.0, 40.0)).describe() == "1 to 40"
    assert load_catalogue()["repeat_referrals"].rule().share
    assert not load_catalogue()["sw_turnover"].rule().share
    v = np.array([50.0, 120.0])
    out, detail = screen(Located(v, where(2, "x")), Plausible(0, 100), np.array(["", ""]))
    assert list(out) == ["", "out_of_range"]
    assert detail[1] == "f.csv row 2, column x = 120, outside 0 to 100"


def excluded(out) -> dict[str, tuple[int, list[str]]]:
    doc = json.loads((out / "tidy_pilot.json").read_text(encoding="utf-8"))
    return {e["reason"]: (e["count"], e["units"]) for e in doc["exclusions"]}, doc


def test_huge_value_in_a_comparison_la_is_excluded_and_named(tmp_path):
    data = tidy_csv().replace("Bury,2023,14.5", "Bury,2023,1e308")
    code, out = run(tmp_path, data=data)
    assert code == 0
    ledger, doc = excluded(out)
    reason = (
        "implausible value: outside the outcome's plausible range (first: d.csv row 18, "
        "column rate, outside 0 to 10000)"
    )
    assert ledger == {reason: (1, ["351"])}
    twfe = doc["analyses"][0]
    # the 1e308 left out: the estimate is of the data's 0.4-at-most noise, not of the 1e308
    assert twfe["status"] == "ok" and abs(twfe["estimates"][0]["estimate"]) < 0.1


COUNTS = DESIGN.replace(
    "{column: rate, scale: per_10000}",
    "{column: rate, numerator: events, denominator: children, scale: percent}",
)


def counts_csv(changes: dict[str, str]) -> str:
    rows = ["la,year,events,children"]
    for i, la in enumerate(["Dorset", "Lincolnshire", "Bolton", "Bury", "Wigan", "Leeds"]):
        for y in range(2021, 2026):
            rows.append(f"{la},{y},{20 + i + y - 2021},{200 + 10 * i}")
    text = "\n".join(rows) + "\n"
    for old, new in changes.items():
        assert old in text
        text = text.replace(old, new)
    return text


def test_negative_infinite_and_impossible_share_counts_are_excluded(tmp_path):
    data = counts_csv(
        {
            "Bury,2022,24,230": "Bury,2022,-24,230",
            "Wigan,2023,26,240": "Wigan,2023,26,inf",
            "Leeds,2024,28,250": "Leeds,2024,280,250",
        }
    )
    code, out = run(tmp_path, design=COUNTS, data=data)
    assert code == 0
    ledger, doc = excluded(out)
    # where, not the values: a tidy file's counts of children may be unpublished (review: the
    # report printed "column repeat = 7 is above column plans = 5" for one LA)
    assert ledger == {
        "implausible value: a count or denominator below zero or above 100,000,000 (first: "
        "d.csv row 17, column events)": (1, ["351"]),
        "implausible value: a count, denominator or value that is not a finite number (first: "
        "d.csv row 23, column children)": (1, ["359"]),
        "implausible value: a share's numerator larger than its denominator (first: d.csv row "
        "29, column events is above d.csv row 29, column children)": (1, ["383"]),
    }
    html = (out / "tidy_pilot.html").read_text(encoding="utf-8")
    assert "column events is above" in html and "= 280" not in html
    assert doc["analyses"][0]["status"] == "ok"


def test_design_can_widen_the_range_and_share_can_be_switched_off(tmp_path):
    data = counts_csv({"Leeds,2024,28,250": "Leeds,2024,280,250"})
    design = COUNTS.replace("scale: percent}", "scale: percent, share: false, plausible: [0, 200]}")
    code, out = run(tmp_path, design=design, data=data)
    assert code == 0
    ledger, _ = excluded(out)
    assert ledger == {}  # 280 / 250 = 112%: allowed by this design


def test_bad_plausible_range_is_a_design_error(tmp_path, capsys):
    from cli_helpers import check_error

    design = DESIGN.replace("scale: per_10000}", "scale: per_10000, plausible: [10, 0]}")
    code, out = run(tmp_path, design=design, data=tidy_csv())
    check_error(capsys, code, out, "outcomes[0].plausible", "low < high")


def test_official_files_are_screened_with_the_file_row_and_column(tmp_path):
    rows = [
        "2025,Reporting year,Local authority,E92000001,E12000001,805,100,20,20",
        "2025,Reporting year,Local authority,E92000001,E12000001,806,1e308,5,0",
        "2025,Reporting year,Local authority,E92000001,E12000001,807,40,-3,0",
        "2025,Reporting year,Local authority,E92000001,E12000001,808,40,50,125",
    ]
    write_csv(tmp_path / C1, C1_HEADER, rows)
    frame = load_official(tmp_path, ["repeat_referrals"]).frame.set_index("unit")
    assert frame.loc["805", "status"] == "" and frame.loc["805", "value"] == pytest.approx(20.0)
    assert frame.loc["806", "status"] == "impossible_count"  # 5 / 1e308 would be a rate of 0
    assert frame.loc["806", "detail"] == f"{C1} row 2, column referral_count = 1e+308"
    assert frame.loc["807", "status"] == "impossible_count"
    assert frame.loc["807", "detail"] == f"{C1} row 3, column rereferral_count = -3"
    assert frame.loc["808", "status"] == "above_denominator"
    assert np.isnan(frame.loc[["806", "807", "808"], "value"]).all()


def test_non_finite_estimate_or_standard_error_is_not_estimable():
    def result(estimate: float, se: float) -> EffectEstimates:
        row = {"term": "ATT", "estimate": estimate, "std_error": se, "statistic": 0.0}
        row |= {"p_value": 1.0, "ci_lower": 0.0, "ci_upper": 0.0}
        used = InferenceUsed(key="cr1", label="CR1")
        return EffectEstimates(
            analysis_id="a",
            outcome="y",
            estimator="twfe",
            inference=used,
            table=estimates_table([row]),
        )

    assert result(0.5, np.nan).require_finite().table.iloc[0]["estimate"] == 0.5  # no SE: fine
    with pytest.raises(EstimationError, match=r"the estimate of 'ATT' is not a finite number"):
        result(np.inf, 0.1).require_finite()
    with pytest.raises(EstimationError, match=r"standard error of 'ATT' .* \(inf\)"):
        result(-2.1e304, np.inf).require_finite()


def test_overflowing_fit_is_reported_not_estimable(tmp_path):
    # a design that allows any value, so an extreme one reaches the estimator
    design = DESIGN.replace("scale: per_10000}", "scale: level, plausible: [-1e308, 1e308]}")
    data = tidy_csv().replace("Bury,2023,14.5", "Bury,2023,1e300")
    code, out = run(tmp_path, design=design, data=data)
    assert code == 0
    twfe = json.loads((out / "tidy_pilot.json").read_text(encoding="utf-8"))["analyses"][0]
    assert twfe["status"] == "not_estimable"
    assert "is not a finite number" in twfe["note"] and twfe["estimates"] == []
    html = (out / "tidy_pilot.html").read_text(encoding="utf-8")
    assert "is not a finite number" in html and "e+30" not in html


def test_frame_of_the_caller_is_not_changed_by_screening():
    v = pd.Series([1.0, 2e5])
    before = v.copy()
    screen(Located(v.to_numpy(), where(2, "x")), Plausible(0, 100), np.array(["", ""]))
    pd.testing.assert_series_equal(v, before)  # exact: untouched


def test_level_outcome_beyond_a_billion_is_excluded(tmp_path):
    design = DESIGN.replace("scale: per_10000}", "scale: level}")
    data = tidy_csv().replace("Bury,2023,14.5", "Bury,2023,-1e20")
    code, out = run(tmp_path, design=design, data=data)
    assert code == 0
    ledger, doc = excluded(out)
    assert ledger == {
        "implausible value: outside the outcome's plausible range (first: d.csv row 18, "
        "column rate, outside -1e+09 to 1e+09)": (1, ["351"])
    }
    assert doc["analyses"][0]["status"] == "ok"
