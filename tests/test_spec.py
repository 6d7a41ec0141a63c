from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pydantic import ValidationError

from pathfinder_eval.errors import DesignError
from pathfinder_eval.spec import PilotKind, UnitLevel, load_design

DESIGNS = Path(__file__).resolve().parents[1] / "designs"


def test_family_help_design_resolves_las_to_codes():
    spec = load_design(DESIGNS / "family_help.yaml")
    assert spec.pilot is PilotKind.FAMILY_HELP
    starts = spec.start_of()
    assert {u for u, s in starts.items() if s == dt.date(2023, 7, 1)} == {"838", "925", "336"}
    assert len([u for u, s in starts.items() if s == dt.date(2024, 4, 1)]) == 7
    assert "846" in spec.comparison.exclude  # Brighton and Hove, a family network pilot LA
    assert spec.time.last == 2025


def test_family_network_design():
    spec = load_design(DESIGNS / "family_network.yaml")
    assert sorted(spec.start_of()) == sorted(["846", "394", "390", "894", "860", "805", "205"])


def test_rcc_groups_expand_to_member_las():
    spec = load_design(DESIGNS / "rcc.yaml")
    assert spec.unit_level is UnitLevel.REGION
    assert len(spec.groups["Greater Manchester"].members) == 10
    assert len(spec.groups["South East"].members) == 19
    assert set(spec.start_of()) == {"Greater Manchester", "South East"}


def test_spec_is_frozen_and_hashed():
    spec = load_design(DESIGNS / "family_help.yaml")
    with pytest.raises(ValidationError):
        spec.name = "other"
    assert len(spec.sha256) == 64


def test_la_listed_twice_is_an_error(tmp_path):
    text = (
        (DESIGNS / "family_network.yaml")
        .read_text()
        .replace("units: [Staffordshire,", "units: [Sunderland, Staffordshire,")
    )
    path = tmp_path / "d.yaml"
    path.write_text(text)
    with pytest.raises(DesignError, match=r"rollout\[1\]\.units\[0\].*listed twice"):
        load_design(path)


def test_unknown_region_group(tmp_path):
    text = (DESIGNS / "rcc.yaml").read_text().replace("region: South East", "region: Wessex")
    path = tmp_path / "d.yaml"
    path.write_text(text)
    with pytest.raises(DesignError, match=r"groups\.South East\.region.*Wessex"):
        load_design(path)


def test_duplicate_analysis_ids(tmp_path):
    text = (DESIGNS / "family_network.yaml").read_text().replace("id: event_study", "id: twfe")
    path = tmp_path / "d.yaml"
    path.write_text(text)
    with pytest.raises(DesignError, match="repeated: twfe"):
        load_design(path)


def test_design_that_is_not_a_mapping(tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(DesignError, match="YAML mapping"):
        load_design(path)


def test_at_most_one_primary_analysis(tmp_path):
    import yaml

    designs = Path(__file__).resolve().parents[1] / "designs"
    doc = yaml.safe_load((designs / "family_help.yaml").read_text())
    for a in doc["analyses"][:2]:
        a["primary"] = True
    path = tmp_path / "d.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(DesignError, match="only one analysis can be primary"):
        load_design(path)


TRIAL_RATE = """name: x
title: x
pilot: trial
unit_level: cluster
time: {axis: period}
rollout: [{wave: a, start: 2, units: [c1, c2]}, {wave: b, start: 3, units: [c3, c4]}]
comparison: {pool: not_yet_treated, min_units: 1}
outcomes: [{column: rate, denominator: pop, scale: SCALE}]
analyses: [{id: g, estimator: ESTIMATOR, options: {family: FAMILY}}]
data: {source: tidy}
"""


@pytest.mark.parametrize(
    ("scale", "estimator", "family", "refused"),
    [
        ("per_10000", "stepped_wedge_glmm", "poisson", True),
        ("percent", "stepped_wedge_gee", "binomial", True),
        ("per_10000", "stepped_wedge_gee", "gaussian", False),
        ("level", "stepped_wedge_glmm", "binomial", False),  # a proportion of n people
    ],
)
def test_a_count_model_of_a_rate_without_its_count_is_refused(
    tmp_path, scale, estimator, family, refused
):
    """The stepped-wedge count models read events as value × denominator: a rate per 10,000
    given with its population alone would be 10,000 times the count, and its variance that
    many times too small."""
    design = tmp_path / "x.yaml"
    text = TRIAL_RATE.replace("SCALE", scale).replace("ESTIMATOR", estimator)
    design.write_text(text.replace("FAMILY", family))
    if not refused:
        assert load_design(design).outcomes[0].denominator == "pop"
        return
    with pytest.raises(DesignError, match=f"outcome rate is a {scale} rate given without its"):
        load_design(design)


TRIAL = """
name: trial
title: Trial
pilot: trial
unit_level: cluster
time: {{axis: period}}
rollout:
  - {{wave: w1, start: 3, units: [{first}]}}
  - {{wave: w2, start: 5, units: [{second}]}}
comparison: {{pool: not_yet_treated, min_units: 1, exclude: [{excluded}]}}
outcomes: [{{column: y}}]
analyses: [{{id: cs, estimator: callaway_santanna}}]
data: {{source: tidy, path: d.csv, columns: {{unit: cluster, period: period}}}}
"""


def test_unit_ids_written_as_numbers_are_the_text_written(tmp_path):
    """`units: [7, 12]` was refused as 'Input should be a valid string'; a number is read as
    its text, the same as quoting it. A spelling YAML would read as another number (007 is 7,
    010 is 8, 0x1F is 31) is refused with the fix, wherever it stands."""
    bare, quoted = tmp_path / "bare.yaml", tmp_path / "quoted.yaml"
    bare.write_text(TRIAL.format(first="7, 12", second="1_000, -3", excluded="30"))
    quoted.write_text(TRIAL.format(first="'7', '12'", second="'1000', '-3'", excluded="'30'"))
    a, b = load_design(bare), load_design(quoted)
    assert a.start_of() == b.start_of() == {"7": 3, "12": 3, "1000": 5, "-3": 5}
    assert a.comparison.exclude == ("30",)
    for spelt, read in (("007", 7), ("010", 8), ("0x1F", 31)):
        bare.write_text(TRIAL.format(first=f"{spelt}, 12", second="5", excluded="30"))
        with pytest.raises(DesignError, match=f"{spelt} is read by YAML as the number {read}"):
            load_design(bare)
    bare.write_text(
        TRIAL.format(first="7", second="5", excluded="30").replace("start: 3", "start: 03")
    )
    with pytest.raises(DesignError, match="03 is read by YAML as the number 3"):
        load_design(bare)
