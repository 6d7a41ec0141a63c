"""Indicator catalogue: required ids, definitions that match the DfE files, validation."""

from __future__ import annotations

from importlib.resources import files

import pytest

from pathfinder_eval.data.catalogue import POLARITIES, SCALES, load_catalogue
from pathfinder_eval.data.families import FAMILIES, GEOGRAPHY
from pathfinder_eval.errors import DataError

REQUIRED = {
    "repeat_referrals",
    "entering_care_rate",
    "cla_rate",
    "s47_rate",
    "icpc_rate",
    "placement_stability_3plus",
    "care_leavers_unsuitable_17_18",
    "care_leavers_unsuitable_19_21",
    "sw_turnover",
    "agency_rate",
    "caseload",
    "cpp_rate",
    "repeat_cpp",
    "cin_rate",
    "new_placements_over_20_miles",
    "new_placements_outside_la",
    "care_leavers_eet_17_18",
    "care_leavers_eet_19_21",
    "cla_3plus_social_workers",
}
FRAMEWORK = {
    "Outcome 1: Children, young people and families stay together and get the help they need",
    "Outcome 2: Children and young people are safe in and outside of their home",
    "Outcome 4: Children in care and care leavers have stable, loving homes",
    "Enabler: The workforce is equipped and effective",
}


def test_catalogue_ships_as_package_data_with_the_required_ids():
    assert (files("pathfinder_eval.data") / "indicators.yaml").is_file()
    catalogue = load_catalogue()
    assert set(catalogue) >= REQUIRED
    assert all(key == ind.id for key, ind in catalogue.items())


def test_every_indicator_is_well_formed():
    for ind in load_catalogue().values():
        assert ind.scale in SCALES and ind.polarity in POLARITIES, ind.id
        assert ind.framework in FRAMEWORK, ind.id
        for measure in (ind.numerator, ind.denominator, ind.published):
            if measure is None:
                continue
            known = set(FAMILIES[measure.family].columns) | set(GEOGRAPHY)
            assert set(measure.columns) <= known, ind.id
            assert {c for c, _ in measure.filters} <= known, ind.id


def test_definitions_follow_dfe():
    cat = load_catalogue()
    rr = cat["repeat_referrals"]
    assert (rr.numerator.columns, rr.denominator.columns) == (
        ("rereferral_count",),
        ("referral_count",),
    )
    assert rr.published.columns == ("rereferral_percent",) and rr.decimals == 1
    assert rr.multiplier == 100.0 and rr.polarity == "lower_is_better"
    s47 = cat["s47_rate"]
    assert s47.denominator.family == "child_population" and s47.multiplier == 10_000.0
    assert s47.denominator.columns == ("population_estimate",)
    assert s47.families == ("cin_s47", "child_population")
    agency = cat["agency_rate"]
    assert agency.denominator.columns == ("agency_fte", "inpost_fte")
    assert cat["caseload"].scale == "ratio"
    stab = dict(cat["placement_stability_3plus"].denominator.filters)
    assert stab == {"cla_group": "CLA on 31 March", "placement_stability": "Total children"}


def test_new_framework_indicators_follow_dfe():
    cat = load_catalogue()
    for rate in ("cpp_rate", "cin_rate", "s47_rate", "icpc_rate"):
        den = cat[rate].denominator
        assert den.family == "child_population" and den.columns == ("population_estimate",)
        assert dict(den.filters) == {"age_group": "Children aged 0 to 17 years"}
        assert cat[rate].multiplier == 10_000.0 and cat[rate].decimals == 1
    # ONS mid-2024 estimates are the denominators of the year to 31 March 2025
    assert FAMILIES["child_population"].period_offset == 1
    repeat = cat["repeat_cpp"]
    assert (repeat.numerator.columns, repeat.denominator.columns) == (
        ("cpp_subsequent",),
        ("cpp_start",),
    )
    far = cat["new_placements_over_20_miles"]
    parts = dict(far.numerator.filters)["breakdown"]
    assert parts == (
        "Placed inside LA boundary more than 20 miles from home",
        "Placed outside LA boundary more than 20 miles from home",
    )
    assert dict(far.denominator.filters)["breakdown"] == "Total new placements"
    # the published figure adds two whole percentages: each may be off by half a point
    assert far.published.parts == 2 and far.published.rounded_to == 1.0
    eet = cat["care_leavers_eet_19_21"]
    assert dict(eet.numerator.filters) == {
        "care_leaver_age": "19 to 21 years",
        "breakdown": "Total in education, employment or training",
    }
    assert eet.polarity == "higher_is_better" and eet.share


GOOD = {
    "scale": "percent",
    "family": "cin_referrals",
    "numerator": "{column: referral_count}",
}


@pytest.mark.parametrize(
    ("key", "broken"),
    [("scale", "percentage"), ("family", "cin_referals"), ("numerator", "{column: referals}")],
)
def test_malformed_catalogue_names_the_key(tmp_path, key, broken):
    fields = {**GOOD, key: broken}
    path = tmp_path / "indicators.yaml"
    path.write_text(
        "bad:\n  name: x\n  framework: y\n"
        + "".join(f"  {k}: {v}\n" for k, v in fields.items())
        + "  denominator: {column: referral_count}\n  decimals: 1\n"
        "  polarity: neutral\n  published: null\n  source: s\n",
        encoding="utf-8",
    )
    with pytest.raises(DataError) as err:
        load_catalogue(path)
    assert f"bad.{key}" in str(err.value) and "indicators.yaml" in str(err.value)


def test_well_formed_custom_catalogue_loads(tmp_path):
    path = tmp_path / "indicators.yaml"
    path.write_text(
        "ok:\n  name: x\n  framework: y\n"
        + "".join(f"  {k}: {v}\n" for k, v in GOOD.items())
        + "  denominator: {column: referral_count}\n  decimals: 1\n"
        "  polarity: neutral\n  published: null\n  source: s\n",
        encoding="utf-8",
    )
    assert load_catalogue(path)["ok"].multiplier == 100.0
