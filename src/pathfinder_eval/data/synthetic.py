"""The embedded default: a synthetic LA panel generated deterministically from a seed.

All current English LAs with their real codes, names and regions, the design's real pilot LAs and
start dates, and outcome levels, trends, LA heterogeneity, serial correlation and noise calibrated
to DfE's published national and LA-level figures (synthetic_calibration.yaml). A known effect,
stated in the design (`data.injected_effect`, relative change in the rate), is injected into
treated LAs from their first treated period, so an analysis can be checked against the truth.
The data are simulated: the report says so.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib.resources import files

import numpy as np
import pandas as pd
import yaml
from scipy import stats

from pathfinder_eval.data.la_lookup import la_table
from pathfinder_eval.data.source import LONG_COLUMNS, OutcomeData
from pathfinder_eval.errors import DataError

GENERATOR_VERSION = "1"
SCALE = {"percent": 100.0, "per_10000": 10_000.0, "ratio": 1.0}


@cache
def calibration() -> dict:
    """The calibration table shipped with the package."""
    text = (files("pathfinder_eval.data") / "synthetic_calibration.yaml").read_text("utf-8")
    return yaml.safe_load(text)


def synthetic_panel(
    outcomes: list[tuple[str, str]],
    cohorts: dict[str, int],
    effects: dict[str, float],
    seed: int,
) -> OutcomeData:
    """Simulate counts for every current LA, 2017–2025 (reporting years).

    outcomes: (indicator id, scale) pairs; cohorts: treated la_code → first treated reporting
    year; effects: indicator id → relative effect on the rate (−0.10 = 10% lower).
    Each indicator draws from its own stream (seed, indicator), so adding an outcome leaves the
    others unchanged.
    """
    cal = calibration()
    years = np.arange(cal["first_year"], cal["last_year"] + 1)
    table = la_table()
    las = table[table["last_year"] == table["last_year"].max()].reset_index(drop=True)
    pop = las["child_population_2025"].astype(float).to_numpy()
    frames = []
    for indicator, scale in outcomes:
        params = cal["indicators"].get(indicator)
        if params is None:
            raise DataError(
                f"the synthetic panel has no calibration for outcome {indicator!r}",
                where="outcomes",
                fix="run with --data pointing at real data for this outcome, "
                "or use an outcome listed in synthetic_calibration.yaml",
            )
        rng = np.random.default_rng([seed, _stable_hash(indicator)])
        frames.append(
            _simulate(
                indicator,
                params,
                SCALE.get(scale, 1.0),
                las["la_code"],
                pop,
                years,
                cohorts,
                effects.get(indicator, 0.0),
                rng,
            )
        )
    frame = pd.concat(frames, ignore_index=True)[list(LONG_COLUMNS)]
    units = pd.DataFrame(
        {"unit": las["la_code"], "name": las["la_name"], "region": las["region_name"]}
    )
    described = ", ".join(f"{k} {v:+.0%}" for k, v in sorted(effects.items())) or "none"
    note = (
        f"The data are SIMULATED (synthetic LA panel, generator v{GENERATOR_VERSION}, seed "
        f"{seed}), calibrated to published DfE statistics; they are not real LA figures. "
        f"Injected effect on the rate in treated LAs from their first treated period: "
        f"{described}."
    )
    return OutcomeData(frame, units, "synthetic", (), (), (note,))


def _simulate(
    indicator: str,
    p: dict,
    scale: float,
    codes: pd.Series,
    pop: np.ndarray,
    years: np.ndarray,
    cohorts: dict[str, int],
    effect: float,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Counts by inversion of uniform draws (common random numbers): the injected effect moves
    only treated cells, and the same seed without the effect gives the exact counterfactual."""
    n, t = len(codes), len(years)
    level = rng.normal(0.0, p["la_sd"], n)
    rho, sd = float(p["rho"]), float(p["noise_sd"])
    shocks = rng.normal(0.0, 1.0, (n, t))
    u_den, u_num = rng.random((n, t)), rng.random((n, t))
    dev = np.empty((n, t))
    dev[:, 0] = sd * shocks[:, 0]
    for j in range(1, t):
        dev[:, j] = rho * dev[:, j - 1] + sd * np.sqrt(1 - rho**2) * shocks[:, j]
    drift = p["trend"] * (years - years[-1])
    # centre so that the 2025 England rate matches the published level (log-normal mean)
    log_rate = np.log(p["level"]) - (p["la_sd"] ** 2 + sd**2) / 2 + level[:, None] + dev + drift
    rate = np.exp(log_rate)
    cohort = np.array([cohorts.get(c, np.inf) for c in codes])
    rate = rate * np.where(years[None, :] >= cohort[:, None], 1.0 + effect, 1.0)
    growth = 1.0 + 0.002 * (years - years[-1])
    den_mean = pop[:, None] * growth[None, :] * p["denominator_per_child"]
    if scale == 100.0:  # shares: a count of cases, of which a binomial number have the outcome
        den = np.maximum(stats.poisson.ppf(u_den, den_mean), 1.0)
        num = stats.binom.ppf(u_num, den, np.clip(rate, 0.0, 1.0))
    elif scale == 1.0:  # ratios such as caseload: FTE denominators with one decimal
        den = np.maximum(np.round(den_mean * np.exp(0.05 * stats.norm.ppf(u_den)), 1), 1.0)
        num = stats.poisson.ppf(u_num, rate * den)
    else:  # rates per 10,000 children: the child population is the denominator
        den = np.round(den_mean)
        num = stats.poisson.ppf(u_num, rate * den)
    return pd.DataFrame(
        {
            "unit": np.repeat(codes.to_numpy(), t),
            "period": np.tile(years, n).astype("int64"),
            "outcome": indicator,
            "numerator": num.ravel().astype("float64"),
            "denominator": den.ravel().astype("float64"),
            "value": (num / den * scale).ravel(),
            "status": "",
            "source": "synthetic",
        }
    )


def _stable_hash(text: str) -> int:
    """A process-independent integer for seeding (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
