"""Rollouts the Python API reads as R's did does (a review's messy panels, on mpdta): no
never-treated unit (not-yet-treated comparisons), a cohort treated from the data's first
period (left out and counted), a cohort first treated after the data's last period (compared
as not yet treated, with a warning). The numbers are checked against the engine, against the
same data with those units removed or recoded, and against the identities that tie the
imputation, two-stage and linear ETWFE estimates together."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import pathfinder_eval as pe
from did_helpers import MPDTA
from pathfinder_eval.errors import (
    DataError,
    DataWarning,
    EstimationError,
    ExcludedRowsWarning,
    PanelError,
)
from pathfinder_eval.estimators.did.group_time import aggregate, group_time_att

COLUMNS = dict(outcome="lemp", unit="countyreal", time="year", first_treated="first.treat")
EXACT = 1e-10


@pytest.fixture(scope="module")
def mpdta() -> pd.DataFrame:
    return pd.read_csv(MPDTA)


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExcludedRowsWarning)
        return fn(*args, **kwargs)


def _overall(res) -> float:
    return float(res.table["estimate"].iloc[0])


def test_no_never_treated_unit_uses_the_not_yet_treated(mpdta):
    """Without mpdta's never-treated counties, CS with not-yet-treated comparisons is the
    engine's simple ATT on the same wide panel (its 2007 cells have no comparison)."""
    data = mpdta[mpdta["first.treat"] > 0]
    res = pe.callaway_santanna(
        data, **COLUMNS, control_group="not_yet_treated", aggregation="simple"
    )
    wide = data.pivot(index="countyreal", columns="year", values="lemp").sort_index()
    cohort = data.groupby("countyreal")["first.treat"].first().sort_index().to_numpy(float)
    gt = group_time_att(
        wide.to_numpy(), cohort, wide.columns.to_numpy(float), control_group="not_yet_treated"
    )
    assert _overall(res) == pytest.approx(float(aggregate(gt, "simple").estimate[0]), abs=EXACT)


def test_no_never_treated_imputation_two_stage_and_etwfe_agree(mpdta):
    """Gardner's two-stage and linear not-yet-treated ETWFE without covariates are the
    imputation estimator (BJS 2024): on a panel where every county is treated by 2007 all
    three leave out the 2007 cells (no untreated cell that year) and say so."""
    data = mpdta[mpdta["first.treat"] > 0]
    imputation = pe.imputation(data, **COLUMNS)
    two_stage = pe.two_stage(data, **COLUMNS)
    etwfe = pe.etwfe(data, **COLUMNS)
    assert _overall(two_stage) == pytest.approx(_overall(imputation), abs=EXACT)
    assert _overall(etwfe) == pytest.approx(_overall(imputation), abs=EXACT)
    in_2007 = int((data["year"] == 2007).sum())
    assert any(w.startswith(f"{in_2007} treated cells were left out") for w in two_stage.warnings)
    assert any(w.startswith(f"{in_2007} cells were left out") for w in etwfe.warnings)
    assert etwfe.dropped[-1].rows == in_2007


def test_a_single_cohort_and_no_never_treated_is_refused(mpdta):
    data = mpdta[mpdta["first.treat"] == 2006]
    with pytest.raises(PanelError, match=r"no comparison: every unit with data starts in the "
                       r"same period \(2006\) and none is untreated") as info:  # fmt: skip
        pe.callaway_santanna(data, **COLUMNS, control_group="not_yet_treated")
    assert info.value.where == "argument first_treated" and "stagger the starts" in info.value.fix


def test_a_cohort_treated_from_the_first_period_is_left_out_and_counted(mpdta):
    data = mpdta.assign(**{"first.treat": mpdta["first.treat"].replace(2004, 2003)})
    with pytest.warns(ExcludedRowsWarning, match="treated unit with no usable period"):
        res = pe.callaway_santanna(data, **COLUMNS)
    without = mpdta[mpdta["first.treat"] != 2004]
    ref = pe.callaway_santanna(without, **COLUMNS)
    np.testing.assert_allclose(res.table["estimate"], ref.table["estimate"], atol=EXACT)
    rows = int((mpdta["first.treat"] == 2004).sum())
    assert any(f"{rows} treated unit with no usable period" in w for w in res.warnings)


def test_a_cohort_after_the_last_period_is_compared_as_not_yet_treated(mpdta):
    data = mpdta.assign(**{"first.treat": mpdta["first.treat"].replace(2007, 2009)})
    with pytest.warns(DataWarning, match=r"\d+ units first treated after the data's last"):
        res = pe.callaway_santanna(data, **COLUMNS)
    recoded = mpdta.assign(**{"first.treat": mpdta["first.treat"].replace(2007, 0)})
    ref = pe.callaway_santanna(recoded, **COLUMNS)
    np.testing.assert_allclose(res.table["estimate"], ref.table["estimate"], atol=EXACT)
    np.testing.assert_allclose(res.table["std_error"], ref.table["std_error"], atol=EXACT)
    late = mpdta.loc[mpdta["first.treat"] == 2007, "countyreal"].nunique()
    assert any(w.startswith(f"{late} units first treated after") for w in res.warnings)


def test_every_unit_after_the_last_period_is_an_error(mpdta):
    data = mpdta.assign(**{"first.treat": np.where(mpdta["first.treat"] > 0, 2010, 0)})
    with pytest.raises(DataError, match="no unit is treated in the data"):
        _quiet(pe.callaway_santanna, data, **COLUMNS)


@pytest.mark.parametrize("name", ["event_study", "sun_abraham", "stacked"])
def test_periods_two_apart_are_refused_by_event_time_estimators_saying_why(mpdta, name):
    """Biennial labels (2006, 2008, …): event time −1 falls between periods. The estimators
    that count event times in the labels' units said 'cannot be told apart', 'include
    never-treated units' or 'no weighted rows'; now each says why and what to do, and the
    estimators that do not count event times give the same numbers as with 1, 2, 3, …"""
    doubled = mpdta.assign(year=2 * mpdta["year"], **{"first.treat": 2 * mpdta["first.treat"]})
    with pytest.raises(EstimationError, match=r"periods are 2 apart \(4006, 4008, 4010, …\)"):
        getattr(pe, name)(doubled, **COLUMNS)


def test_estimators_without_event_times_read_periods_two_apart_in_order(mpdta):
    doubled = mpdta.assign(year=2 * mpdta["year"], **{"first.treat": 2 * mpdta["first.treat"]})
    for name in ("callaway_santanna", "imputation", "twfe"):
        a, b = getattr(pe, name)(mpdta, **COLUMNS), getattr(pe, name)(doubled, **COLUMNS)
        assert _overall(b) == pytest.approx(_overall(a), abs=EXACT), name


def test_text_periods_and_repeated_columns_are_named():
    """'2015-16' periods were blamed on first_treated ('after the data's last period (nan)')
    and two columns named like the outcome ended in an AttributeError."""
    data = pd.read_csv(MPDTA)
    cols = dict(outcome="lemp", unit="countyreal", time="year", first_treated="first.treat")
    text = data.assign(year=data["year"].astype(str) + "-x")
    with pytest.raises(DataError) as err:
        pe.twfe(text, **cols)
    assert err.value.one_line().startswith(
        "argument time (column 'year'), row 1: time '2003-x' is not a period number"
    )
    doubled = pd.concat([data, data[["lemp"]]], axis=1)
    with pytest.raises(DataError, match="argument outcome: the data have 2 columns named 'lemp'"):
        pe.twfe(doubled, **cols)


@pytest.mark.parametrize("kind", ["datetime64", "period", "date"])
def test_dates_as_periods_are_named_as_an_argument(mpdta, kind):
    """Dates in the time or start column were read as a design file's labels ('period
    2003-01-01 is not a period label … or change the design's time.axis': an API caller has
    no design file); Python dates passed the number check as nanoseconds."""
    as_dates = {
        "datetime64": lambda s: pd.to_datetime(s.astype(str), format="%Y"),
        "period": lambda s: pd.to_datetime(s.astype(str), format="%Y").dt.to_period("Y"),
        "date": lambda s: pd.to_datetime(s.astype(str), format="%Y").dt.date,
    }[kind]
    expected = (
        "argument {arg}: column {col!r} holds dates; periods here are whole numbers. "
        "Fix: pass a year (data[{col!r}].dt.year) or a period index"
    )
    with pytest.raises(DataError) as err:
        pe.callaway_santanna(mpdta.assign(year=as_dates(mpdta["year"])), **COLUMNS)
    assert err.value.one_line().startswith(expected.format(arg="time", col="year"))
    starts = mpdta["first.treat"].where(mpdta["first.treat"] > 0)
    dated = mpdta.assign(**{"first.treat": as_dates(starts.astype("Int64"))})
    with pytest.raises(DataError) as err:
        pe.twfe(dated, **COLUMNS)
    assert err.value.one_line().startswith(expected.format(arg="first_treated", col="first.treat"))


def test_two_units_differing_only_in_case_are_an_error_not_two_units(mpdta):
    """One row of a comparison county written in lower case made a phantom comparison unit."""
    data = mpdta.assign(countyreal=mpdta["countyreal"].astype(str).radd("c"))
    first_never = data.loc[data["first.treat"] == 0, "countyreal"].iloc[0]
    row = data.index[data["countyreal"] == first_never][0]
    data.loc[row, "countyreal"] = first_never.upper()
    with pytest.raises(PanelError, match=rf"units '{first_never.upper()}' and '{first_never}' in"):
        pe.twfe(data, **COLUMNS)
