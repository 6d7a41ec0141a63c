"""Regenerate src/pathfinder_eval/data/la_lookup.csv from the DfE files in ../shared/data/public.

The lookup holds public reference facts only (LA codes, names, regions, years present and
a rounded child population for calibrating the synthetic panel), never the statistics.
Run: python scripts/build_la_lookup.py [DATA_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
LONDON = {"E13000001": "Inner London", "E13000002": "Outer London"}


def main(data_dir: Path) -> None:
    cin = pd.read_csv(
        data_dir / "c1_children_in_need_referrals_and_rereferrals_2013_to_2025.csv",
        dtype=str,
        encoding="utf-8-sig",
        keep_default_na=False,
    )
    cla = pd.read_csv(
        data_dir / "cla_number_and_rate_per_10k_children.csv",
        dtype=str,
        encoding="utf-8-sig",
        keep_default_na=False,
    )
    la = cin[cin.geographic_level == "Local authority"].copy()
    la["year"] = la.time_period.astype(int)
    la = la.sort_values("year")
    rows = []
    for code, g in la.groupby("old_la_code"):
        last = g.iloc[-1]
        region_code, region_name = last.region_code, last.region_name
        sub = ""
        if region_code in LONDON or region_name in LONDON.values():
            sub, region_code, region_name = region_name, "E12000007", "London"
        pop = cla[
            (cla.old_la_code == code)
            & (cla.time_period == "2025")
            & (cla.population_type == "Children looked after on 31 March each year")
        ]
        pop_val = pop.population_estimate.iloc[0] if len(pop) else ""
        pop_val = str(int(round(int(pop_val), -2))) if pop_val.isdigit() else ""
        rows.append(
            {
                "la_code": code,
                "gss_code": last.new_la_code,
                "la_name": last.la_name,
                "region_code": region_code,
                "region_name": region_name,
                "london_sub_region": sub,
                "first_year": int(g.year.min()),
                "last_year": int(g.year.max()),
                "child_population_2025": pop_val,
            }
        )
    # region codes for non-London regions come from the regional rows
    out = pd.DataFrame(rows)
    reg = cin[cin.geographic_level == "Regional"][["region_code", "region_name"]].drop_duplicates()
    reg_map = dict(zip(reg.region_name, reg.region_code, strict=True))
    out["region_code"] = [
        rc if rc else reg_map.get(rn, "")
        for rc, rn in zip(out.region_code, out.region_name, strict=True)
    ]
    out = out.sort_values("la_code")
    out.to_csv(ROOT / "src/pathfinder_eval/data/la_lookup.csv", index=False, lineterminator="\n")
    print(f"wrote {len(out)} LAs")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared/data/public")
