"""Panels for the DiD estimators' tests: a small design on simulated data, the mpdta data
and a balanced panel, built through the real panel checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pathfinder_eval.data.source import LONG_COLUMNS, OutcomeData
from pathfinder_eval.panel import OutcomeInfo, build_panel
from pathfinder_eval.spec import load_design

PANEL_DESIGN = """
name: t
title: t
pilot: custom
unit_level: cluster
time: {{axis: period}}
rollout:
{waves}
comparison: {{pool: never_treated, min_units: 2}}
outcomes: [{{column: y}}]
analyses: [{{id: a, estimator: twfe}}]
"""


def make_panel(tmp_path, frame: pd.DataFrame, starts: dict[int, list[str]]):
    waves = "\n".join(
        f"  - {{wave: w{s}, start: {s}, units: [{', '.join(u)}]}}" for s, u in starts.items()
    )
    path = tmp_path / "d.yaml"
    path.write_text(PANEL_DESIGN.format(waves=waves))
    spec = load_design(path)
    long = frame.assign(
        outcome="y", numerator=np.nan, denominator=np.nan, status="", source="test"
    ).rename(columns={"y": "value"})[list(LONG_COLUMNS)]
    units = pd.DataFrame({"unit": sorted(set(frame["unit"]))})
    units["name"], units["region"] = units["unit"], ""
    data = OutcomeData(long, units, "tidy")
    return build_panel(spec, data, lambda o: OutcomeInfo(o, o, "level", "neutral", True))


def simulated(seed=3, n=24, t=6, treated=("u00", "u01", "u02", "u03", "u04"), start=4):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        u = f"u{i:02d}"
        a = rng.normal()
        for p in range(1, t + 1):
            d = u in treated and p >= start
            rows.append(
                {"unit": u, "period": p, "y": a + 0.2 * p + 0.5 * d + rng.normal(scale=0.7)}
            )
    return pd.DataFrame(rows)


ROOT = Path(__file__).resolve().parents[1]
MPDTA = ROOT / "src" / "pathfinder_eval" / "replications" / "data" / "mpdta.csv"


def mpdta() -> tuple[pd.DataFrame, dict[int, list[str]]]:
    d = pd.read_csv(MPDTA)
    frame = pd.DataFrame(
        {"unit": "c" + d["countyreal"].astype(str), "period": d["year"], "y": d["lemp"]}
    )
    first = d.groupby("countyreal")["first.treat"].first()
    starts: dict[int, list[str]] = {}
    for county, g in first.items():
        if g > 0:
            starts.setdefault(int(g), []).append(f"c{county}")
    return frame, starts


def balanced(treated: list[str], start: int = 5, seed: int = 9, n: int = 30, t: int = 7):
    """A balanced panel: `treated` units start in `start`, the rest never treated."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        u, a = f"u{i:02d}", rng.normal()
        for p in range(1, t + 1):
            eff = 0.4 if u in treated and p >= start else 0.0
            rows.append({"unit": u, "period": p, "y": a + 0.1 * p + eff + rng.normal(scale=0.6)})
    return pd.DataFrame(rows)


REGIONS = tuple(f"Region {c}" for c in "ABCDEFGH")


def regional_panel(
    tmp_path,
    treated: list[int],
    shock_sd: float,
    seed: int = 1,
    per_region: int = 15,
    regions: tuple[str, ...] = REGIONS,
    region_known: bool = True,
):
    """An LA-like panel through the real checks: `per_region` LAs in each of `regions`, 8
    periods; rates per 10,000 from Poisson counts in child populations of 10,000–300,000;
    LA levels, a national path, region × period shocks N(0, shock_sd²) and LA noise
    (AR(1) 0.4, SD 2.5). LA i is "la{i:03d}" in region i // per_region; `treated` LAs
    start in period 6 (the first half) or 7, the others are comparisons."""
    rng = np.random.default_rng(seed)
    n, t = per_region * len(regions), 8
    region = np.repeat(np.arange(len(regions)), per_region)
    pop = np.exp(rng.uniform(np.log(10_000), np.log(300_000), n))
    noise = np.zeros((n, t))
    noise[:, 0] = rng.normal(size=n)
    for p in range(1, t):
        noise[:, p] = 0.4 * noise[:, p - 1] + np.sqrt(1 - 0.16) * rng.normal(size=n)
    shocks = rng.normal(0.0, shock_sd, (len(regions), t))[region]
    rate = 40 + 10 * rng.normal(size=n)[:, None] + np.linspace(0, 3, t) + shocks + 2.5 * noise
    counts = rng.poisson(np.clip(rate, 1, None) * pop[:, None] / 10_000)
    units = [f"la{i:03d}" for i in range(n)]
    starts = {6: [units[i] for i in treated[: (len(treated) + 1) // 2]]}
    if len(treated) > 1:
        starts[7] = [units[i] for i in treated[(len(treated) + 1) // 2 :]]
    waves = "\n".join(
        f"  - {{wave: w{s}, start: {s}, units: [{', '.join(u)}]}}" for s, u in starts.items()
    )
    path = tmp_path / "regional.yaml"
    path.write_text(PANEL_DESIGN.format(waves=waves))
    long = pd.DataFrame(
        {
            "unit": np.repeat(units, t),
            "period": np.tile(np.arange(1, t + 1), n),
            "outcome": "y",
            "numerator": counts.ravel().astype(float),
            "denominator": np.repeat(pop, t),
            "value": (counts / pop[:, None] * 10_000).ravel(),
            "status": "",
            "source": "test",
        }
    )[list(LONG_COLUMNS)]
    table = pd.DataFrame({"unit": units, "name": units})
    table["region"] = [regions[r] for r in region] if region_known else ""
    data = OutcomeData(long, table, "tidy")
    return build_panel(
        load_design(path), data, lambda o: OutcomeInfo(o, o, "per_10000", "neutral", True)
    )


def wide_frame(values: dict[str, list[float]], first: dict[str, int], start: int = 2011):
    """A long frame (unit, year, y, first) from each unit's yearly values from `start` (NaN:
    no row) and first treated years (absent: never treated, 0)."""
    rows = [
        {"unit": u, "year": start + j, "y": v, "first": first.get(u, 0)}
        for u, series in values.items()
        for j, v in enumerate(series)
        if not np.isnan(v)
    ]
    return pd.DataFrame(rows)


def single_unit_cohorts() -> pd.DataFrame:
    """Five units over 2011–2015: cohorts 2012 (u4) and 2013 (u1) of one unit each, cohort
    2014 (u0, u2), one never-treated unit (u3), ragged: Sun & Abraham's CR2 of the overall
    average and of event times −3, −2 and 2 is rounding (found by fuzzing, where u0 had no
    period before its start; the panel now leaves such a unit out, so u0 has 2011)."""
    nan = np.nan
    return wide_frame(
        {
            "u0": [0.2, nan, nan, 2.27, 1.81],
            "u1": [1.36, 0.79, -0.27, 0.78, 0.72],
            "u2": [nan, -4.49, -2.11, -1.35, -0.69],
            "u3": [-1.18, -2.75, -1.91, -1.25, 0.47],
            "u4": [0.59, -0.70, 1.55, 0.94, nan],
        },
        {"u0": 2014, "u1": 2013, "u2": 2014, "u4": 2012},
    )
