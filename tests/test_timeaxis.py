import datetime as dt

import pytest

from pathfinder_eval.timeaxis import (
    PartialRule,
    TimeAxis,
    onset,
    parse_period,
    period_bounds,
    period_label,
)


@pytest.mark.parametrize(
    ("axis", "label", "ordinal"),
    [
        (TimeAxis.REPORTING_YEAR, "2024", 2024),
        (TimeAxis.FINANCIAL_YEAR, "202324", 2024),
        (TimeAxis.ACADEMIC_YEAR, "201920", 2020),
        (TimeAxis.QUARTER, "2023Q3", 4 * 2023 + 2),
        (TimeAxis.MONTH, "2023-07", 12 * 2023 + 6),
        (TimeAxis.PERIOD, "3", 3),
    ],
)
def test_parse_period_round_trip(axis, label, ordinal):
    assert parse_period(axis, label) == ordinal
    assert (
        parse_period(
            axis,
            period_label(axis, ordinal).replace("-", "")
            if axis in (TimeAxis.FINANCIAL_YEAR, TimeAxis.ACADEMIC_YEAR)
            else period_label(axis, ordinal),
        )
        == ordinal
    )


@pytest.mark.parametrize(
    ("axis", "label"),
    [
        (TimeAxis.REPORTING_YEAR, "2023/24"),
        (TimeAxis.FINANCIAL_YEAR, "202325"),
        (TimeAxis.QUARTER, "2023Q5"),
        (TimeAxis.MONTH, "2023-13"),
        (TimeAxis.PERIOD, "one"),
    ],
)
def test_parse_period_rejects_wrong_form(axis, label):
    assert parse_period(axis, label) is None


def test_reporting_year_bounds_are_april_to_march():
    assert period_bounds(TimeAxis.REPORTING_YEAR, 2024) == (
        dt.date(2023, 4, 1),
        dt.date(2024, 4, 1),
    )


@pytest.mark.parametrize(
    ("rule", "first", "transition"),
    [
        (PartialRule.ANY_EXPOSURE, 2024, None),
        (PartialRule.MAJORITY, 2024, None),  # 275 of 366 days exposed
        (PartialRule.FULL, 2025, None),
        (PartialRule.TRANSITION, 2025, 2024),
    ],
)
def test_july_2023_start_under_each_rule(rule, first, transition):
    on = onset(TimeAxis.REPORTING_YEAR, dt.date(2023, 7, 1), rule)
    assert (on.first_treated, on.transition) == (first, transition)
    assert on.exposure_fraction == pytest.approx(275 / 366)


def test_start_on_period_boundary_is_fully_exposed():
    on = onset(TimeAxis.REPORTING_YEAR, dt.date(2024, 4, 1), PartialRule.FULL)
    assert (on.first_treated, on.transition, on.exposure_fraction) == (2025, None, 1.0)


def test_majority_rule_with_late_start():
    on = onset(TimeAxis.REPORTING_YEAR, dt.date(2024, 1, 1), PartialRule.MAJORITY)
    assert on.first_treated == 2025  # only Jan–Mar exposed in 2024


def test_quarter_onset():
    on = onset(TimeAxis.QUARTER, dt.date(2023, 8, 15), PartialRule.MAJORITY)
    assert period_label(TimeAxis.QUARTER, on.first_treated) == "2023Q3"
