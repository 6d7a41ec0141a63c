"""DfE file families: how to recognise each EES file and map its columns to stable names.

DfE renames files (the year range in the name moves every release) and sometimes columns
(`Section47` in one release, `section47_count` in another), and the position of `la_name`
differs between publications. Each family therefore lists, per canonical column, every alias
seen or expected; the reader renames whatever alias a file uses to the canonical name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pandas as pd

from pathfinder_eval.errors import DataError

# Geography columns every family needs (canonical name -> aliases). `la_name` and
# `new_la_code` are not needed: units are keyed on the three-digit `old_la_code`.
GEOGRAPHY: Mapping[str, tuple[str, ...]] = {
    "time_period": ("time_period",),
    "geographic_level": ("geographic_level",),
    "country_code": ("country_code",),
    "region_code": ("region_code",),
    "old_la_code": ("old_la_code", "la_code_old", "la_code"),
}


@dataclass(frozen=True)
class Family:
    """One DfE file family.

    file_pattern: regex searched in the lower-cased file name (year ranges may vary).
    columns: canonical column -> accepted aliases (compared after `normalise_column`).
    signature: canonical columns that identify the family when the file name does not.
    period_offset: added to the file's year to give the reporting year it serves (ONS
    mid-year estimates for mid-2024 are the denominators of the year to 31 March 2025).
    """

    name: str
    publication: str
    example_file: str
    file_pattern: str
    columns: Mapping[str, tuple[str, ...]]
    signature: tuple[str, ...]
    period_offset: int = 0

    def matches_name(self, file_name: str) -> bool:
        """True when the file name fits this family's pattern."""
        return re.search(self.file_pattern, file_name.lower()) is not None


def normalise_column(name: str) -> str:
    """Lower case, trimmed, with spaces and hyphens as underscores: the form aliases use."""
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


CIN = "Children in need (Explore Education Statistics)"
CLA = "Children looked after in England including adoptions (Explore Education Statistics)"
CSWW = "Children's social work workforce (Explore Education Statistics)"
ONS = "ONS mid-year population estimates, in the EES layout (Explore Education Statistics)"

FAMILIES: Mapping[str, Family] = {
    f.name: f
    for f in (
        Family(
            name="cin_referrals",
            publication=CIN,
            example_file="c1_children_in_need_referrals_and_rereferrals_2013_to_2025.csv",
            file_pattern=r"referrals_and_re_?referrals",
            columns={
                "referral_count": ("referral_count", "referrals", "number_of_referrals"),
                "rereferral_count": (
                    "rereferral_count",
                    "re_referral_count",
                    "rereferrals",
                    "re_referrals",
                ),
                "rereferral_percent": (
                    "rereferral_percent",
                    "re_referral_percent",
                    "rereferral_rate",
                ),
            },
            signature=("referral_count", "rereferral_count"),
        ),
        Family(
            name="cin_s47",
            publication=CIN,
            example_file="c4_children_in_need_section_47s_and_icpcs_2013_to_2025.csv",
            file_pattern=r"section_?47s?_and_icpcs?",
            columns={
                "section47": ("section47", "section47_count", "section_47", "section47s", "s47"),
                "icpc": ("icpc", "icpc_count", "icpcs"),
            },
            signature=("section47", "icpc"),
        ),
        Family(
            name="cin_cpp",
            publication=CIN,
            example_file="d5_cpps_at31march_by_duration_2013_to_2025.csv",
            file_pattern=r"cpps?_at_?31_?march",
            columns={"cpp_at31": ("cpp_at31", "cpp_at_31", "cpp_at31_count", "cpp_count")},
            signature=("cpp_at31",),
        ),
        Family(
            name="cin_cpp_subsequent",
            publication=CIN,
            example_file="d3_cpps_subsequent_plan_2013_to_2025.csv",
            file_pattern=r"cpps?_subsequent",
            columns={
                "cpp_start": ("cpp_start", "cpp_starts"),
                "cpp_subsequent": ("cpp_subsequent", "cpp_subsequent_count"),
                "cpp_subsequent_percent": ("cpp_subsequent_percent", "cpp_subsequent_rate"),
            },
            signature=("cpp_start", "cpp_subsequent"),
        ),
        Family(
            name="cin_children",
            publication=CIN,
            example_file="b1_children_in_need_2013_to_2025.csv",
            file_pattern=r"(^|_)children_in_need_\d{4}_to_\d{4}",
            columns={"cin_at31": ("at31_episodes", "cin_at31", "at31_children")},
            signature=("cin_at31",),
        ),
        Family(
            name="child_population",
            publication=ONS,
            example_file="ons_mid-year_population_estimates_2012_to_2024.csv",
            file_pattern=r"mid[_-]?year_population",
            columns={
                "age_group": ("age_group",),
                "population_estimate": ("population_estimate", "population"),
            },
            signature=("age_group", "population_estimate"),
            period_offset=1,
        ),
        Family(
            name="cla_rates",
            publication=CLA,
            example_file="cla_number_and_rate_per_10k_children.csv",
            file_pattern=r"cla_number_and_rate_per_10k",
            columns={
                "population_type": ("population_type", "population_count"),
                "population_estimate": ("population_estimate", "population", "child_population"),
                "children_count": ("children_count", "number", "count"),
                "rate_per_10000": ("rate_per_10000", "rate_per_10k", "rate"),
            },
            signature=("population_type", "population_estimate", "rate_per_10000"),
        ),
        Family(
            name="csww",
            publication=CSWW,
            example_file="csww_indicators_2017_to_2025.csv",
            file_pattern=r"csww_indicators",
            columns={
                "inpost_fte": ("inpost_fte", "in_post_fte"),
                "leavers_fte": ("leavers_fte",),
                "turnover_rate_fte": ("turnover_rate_fte", "turnover_rate"),
                "agency_fte": ("agency_fte",),
                "agency_rate_fte": ("agency_rate_fte", "agency_rate"),
                "cases": ("cases", "caseload_cases", "case_count"),
                "case_holders_fte": ("case_holders_fte", "caseholders_fte"),
                "caseload_fte": ("caseload_fte", "average_caseload_fte", "caseload"),
            },
            signature=("inpost_fte", "leavers_fte", "case_holders_fte"),
        ),
        Family(
            name="cla_placement_stability",
            publication=CLA,
            example_file="la_cla_placement_stability.csv",
            file_pattern=r"cla_placement_stability",
            columns={
                "cla_group": ("cla_group",),
                "placement_stability": ("placement_stability",),
                "children_count": ("children_count", "number"),
                "children_percent": ("children_percent", "percent"),
            },
            signature=("cla_group", "placement_stability"),
        ),
        Family(
            name="care_leavers_accommodation",
            publication=CLA,
            example_file="la_care_leavers_accommodation_suitability.csv",
            file_pattern=r"care_leavers_accommodation",
            columns={
                "care_leaver_age": ("care_leaver_age", "age"),
                "breakdown": ("breakdown", "accommodation_suitability", "suitability"),
                "care_leaver_count": ("care_leaver_count", "number"),
                "care_leaver_percent": ("care_leaver_percent", "percent"),
            },
            signature=("care_leaver_age", "care_leaver_count"),
        ),
        Family(
            name="care_leavers_activity",
            publication=CLA,
            example_file="la_care_leavers_activity.csv",
            file_pattern=r"care_leavers_activity",
            columns={
                "care_leaver_age": ("care_leaver_age", "age"),
                "breakdown": ("breakdown", "activity"),
                "care_leaver_count": ("care_leaver_count", "number"),
                "care_leaver_percent": ("care_leaver_percent", "percent"),
            },
            signature=("care_leaver_age", "care_leaver_count", "breakdown"),
        ),
        Family(
            name="cla_new_placements",
            publication=CLA,
            example_file="la_cla_during_year_new_placements.csv",
            file_pattern=r"new_placements",
            columns={
                "characteristic": ("characteristic",),
                "breakdown": ("breakdown",),
                "children_count": ("children_count", "number"),
                "children_percent": ("children_percent", "percent"),
            },
            signature=("characteristic", "breakdown", "children_count"),
        ),
        Family(
            name="cla_social_workers",
            publication=CLA,
            example_file="la_cla_swcount.csv",
            file_pattern=r"swcount",
            columns={
                "cla_group": ("cla_group",),
                "sw_stability": ("sw_stability",),
                "children_count": ("number", "children_count"),
                "children_percent": ("percentage", "children_percent", "percent"),
            },
            signature=("sw_stability",),
        ),
    )
}


def _resolve(columns: Iterable[str], wanted: Mapping[str, tuple[str, ...]]) -> dict[str, str]:
    """Map file column -> canonical name for every canonical column found (first alias wins)."""
    by_norm = {normalise_column(c): c for c in columns}
    found: dict[str, str] = {}
    for canonical, aliases in wanted.items():
        for alias in aliases:
            if alias in by_norm and by_norm[alias] not in found:
                found[by_norm[alias]] = canonical
                break
    return found


def detect_family(file_name: str, columns: Iterable[str]) -> str | None:
    """The family a file belongs to: by its name first, else by its columns; None if neither.

    A name match wins. Otherwise the file's columns must contain every signature column of
    exactly one family (through aliases).
    """
    for family in FAMILIES.values():
        if family.matches_name(file_name):
            return family.name
    cols = list(columns)
    hits = [
        f.name
        for f in FAMILIES.values()
        if set(f.signature) <= set(_resolve(cols, f.columns).values())
    ]
    return hits[0] if len(hits) == 1 else None


def canonicalise(frame: pd.DataFrame, family: str, *, file: str) -> pd.DataFrame:
    """Rename a family file's columns to canonical names; DataError if any is missing.

    Returns a new frame (the caller's is untouched). Columns the family does not use keep
    their names.
    """
    spec = FAMILIES[family]
    wanted = {**GEOGRAPHY, **spec.columns}
    renames = _resolve(frame.columns, wanted)
    missing = sorted(set(wanted) - set(renames.values()))
    if missing:
        tried = "; ".join(f"{m}: {', '.join(wanted[m])}" for m in missing)
        raise DataError(
            f"{family} file lacks column(s) {', '.join(missing)} (names tried: {tried})",
            file=file,
            fix=(
                f"use the '{spec.example_file}' file from the {spec.publication} publication, "
                "or add the new column name as an alias in pathfinder_eval/data/families.py"
            ),
        )
    return frame.rename(columns=renames)
