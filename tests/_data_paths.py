"""Shared helpers for the data-layer tests: where the real DfE files are, cached loads.

The DfE and ONS CSVs are read in place from ../shared/data/public (relative to the repo root);
tests that need them skip with a clear reason when the folder is absent.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from pathfinder_eval.data.catalogue import load_catalogue
from pathfinder_eval.data.official import (
    OfficialData,
    load_official,
    load_official_aggregates,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
PUBLIC_DATA = REPO_ROOT.parent / "shared" / "data" / "public"

C1 = "c1_children_in_need_referrals_and_rereferrals_2013_to_2025.csv"
C4 = "c4_children_in_need_section_47s_and_icpcs_2013_to_2025.csv"
CLA = "cla_number_and_rate_per_10k_children.csv"
CSWW = "csww_indicators_2017_to_2025.csv"
STABILITY = "la_cla_placement_stability.csv"
CARE_LEAVERS = "la_care_leavers_accommodation_suitability.csv"
CPP = "d5_cpps_at31march_by_duration_2013_to_2025.csv"
REPEAT_CPP = "d3_cpps_subsequent_plan_2013_to_2025.csv"
CIN = "b1_children_in_need_2013_to_2025.csv"
NEW_PLACEMENTS = "la_cla_during_year_new_placements.csv"
CARE_LEAVERS_ACTIVITY = "la_care_leavers_activity.csv"
SOCIAL_WORKERS = "la_cla_swcount.csv"
POPULATION = "ons_mid-year_population_estimates_2012_to_2024.csv"
NEIGHBOURS = "sn_model_2025_wide.csv"

# sha256 recorded in ../shared/data/public/README.md when the files were copied from DfE.
SHA256 = {
    C1: "e548b10b4e2de4e8845c35eae274f6280636f5ff262f8189cbe62c320591f75d",
    C4: "da748551c9edd117adfd7b365b340aaff32d02b8132642036317b6af6080810f",
    CLA: "8228ce8c6f55fb1ee59b65988dad56c79ea7703c03eedd5c0f8af5997d6686ce",
    CSWW: "9e058bac193cc5b03f0d21ebe4259c8935d236dbf59f09d90b3e0916bfbca95f",
    CARE_LEAVERS: "e7ec483b8ca26360161393e78ef4c6ac6dc408197c068ab98e42ffc06fa4199a",
    STABILITY: "b102f3277a40353a99bd997fe0c1ac557370bb8a793b177e6a570c851a96290f",
    CPP: "b203854c252fc055df1dc05d649de63c2f18c0246b1bd2282c2f3632530f296d",
    REPEAT_CPP: "06f9b63e9329925fea34d75a7f5e9c44d97fed4c1aed8cb2a302af21ef4113ab",
    CIN: "fc065f5eb33a97fcbf3b2df6a7a55e15dbf645ce9739ef0128776461602179ad",
    NEW_PLACEMENTS: "4d7cf7e62eb2946ce64c4c967f73e628251d50fd0b1bff962fa06f78ed9d13c9",
    CARE_LEAVERS_ACTIVITY: "6853227203b736615c55517ac0735acbff48fea6c9f69ee95c2e9b6d868f339b",
    SOCIAL_WORKERS: "1f496f2daafa387ba1e3205829e2264583bb54625afdc2fb120d9fd83eba8cb8",
    POPULATION: "bd6420a0edd97dc2bfb25e70955399778a460483d5c417032b8fcb92230bfaa3",
}
NEIGHBOURS_SHA256 = "948bcdbe76f92e448e39ff4fc9f20b9dd382e0ce419e1f0da65877b99d950e22"

needs_public_data = pytest.mark.skipif(
    not all((PUBLIC_DATA / name).is_file() for name in [*SHA256, NEIGHBOURS]),
    reason="real DfE files absent: expected the fourteen CSVs in ../shared/data/public "
    "relative to the repo root (they are read in place, never copied)",
)


def public(name: str) -> Path:
    """Path of one real DfE file."""
    return PUBLIC_DATA / name


def bundled_ids() -> list[str]:
    """Every catalogue id: all are computable from the files in ../shared/data/public."""
    return list(load_catalogue())


@cache
def official_la(aggregate: bool = False) -> OfficialData:
    """Every bundled indicator at LA level (loaded once per test session)."""
    return load_official(PUBLIC_DATA, bundled_ids(), aggregate=aggregate)


@cache
def official_national() -> OfficialData:
    """Every bundled indicator for England (loaded once per test session)."""
    return load_official_aggregates(PUBLIC_DATA, bundled_ids(), level="National")


def write_csv(path, header: str, rows: list[str]) -> None:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")


C1_HEADER = (
    "time_period,time_identifier,geographic_level,country_code,region_code,"
    "old_la_code,referral_count,rereferral_count,rereferral_percent"
)
