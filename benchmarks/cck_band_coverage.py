"""Coverage of continuous_did's data-driven dose curve (dose_method: cck) and its uniform bands
(run on demand: python benchmarks/cck_band_coverage.py [--reps 200] [--processes 2]
[--n 300 1500] [--variances hc2 hc3 hc0 auto]).

The processes (written for this check, not tuned to the estimator): n units observed in two
periods, 60% of them given a dose in period 2, the dose log-normal (median 1, log-SD 0.5: a
right-skewed funding per child), a unit level N(0, 1), a common change 1 and noise whose SD
grows with the dose, 0.5 + 0.3·dose (larger teams or budgets, noisier outcomes); the effect of
dose d is one of
  saturating  2(1 − e^(−d)),
  linear      0.6 d,
  kink        0.8 max(d − 1, 0) (no effect below a threshold dose; the curve is not smooth).
Reported per process and n: the share of replications whose uniform 95% band for ATT(d)
contains the true curve at all 50 doses spread over the treated range (and the same for
ACRT(d) and the true slope), the same share for the pointwise 95% intervals (why a band is
needed), the band's width over the pointwise interval's, the coverage of ATT and ACRT (the
average slope over the treated doses, against its average over them), and the segments chosen;
with the default HC2 residuals (each divided by √(1 − its leverage)), HC3's (by 1 − its
leverage) and contdid's raw ones (hc0). Each cell with its Monte Carlo SE; the same seeds for
each.
"""

from __future__ import annotations

import argparse
import itertools
from collections import Counter
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd

import pathfinder_eval as pe

CURVES = {
    "saturating": (lambda d: 2 * (1 - np.exp(-d)), lambda d: 2 * np.exp(-d)),
    "linear": (lambda d: 0.6 * d, lambda d: np.full_like(d, 0.6)),
    "kink": (lambda d: 0.8 * np.maximum(d - 1, 0), lambda d: 0.8 * (d > 1)),
}


def panel(rng: np.random.Generator, n: int, curve: str) -> pd.DataFrame:
    treated = rng.uniform(size=n) < 0.6
    dose = np.where(treated, rng.lognormal(0.0, 0.5, n), 0.0)
    level = rng.normal(size=n)
    noise = 0.5 + 0.3 * dose
    effect = CURVES[curve][0](dose)
    y1 = level + noise * rng.normal(size=n)
    y2 = level + 1 + np.where(treated, effect, 0) + noise * rng.normal(size=n)
    ids = np.arange(n)
    g = np.where(treated, 2, 0)
    return pd.concat(
        [
            pd.DataFrame({"id": ids, "t": 1, "y": y1, "D": dose, "G": g}),
            pd.DataFrame({"id": ids, "t": 2, "y": y2, "D": dose, "G": g}),
        ]
    )


SMALLEST_N = 120  # 72 treated on average: fewer than 50 is 4 SDs away


def one(args: tuple[str, int, int, str]) -> dict[str, float]:
    curve, n, seed, variance = args
    rng = np.random.default_rng(seed)
    data = panel(rng, n, curve)
    doses = data.loc[data["G"] > 0, "D"].unique()
    grid = np.linspace(doses.min(), doses.max(), 50)
    res = pe.continuous_did(
        data,
        outcome="y",
        unit="id",
        time="t",
        first_treated="G",
        dose="D",
        dose_method="cck",
        sieve_variance=variance,
        doses=tuple(grid),
        seed=seed,
    )
    t = res.table
    sieve = res.facts.sieve
    level, slope = CURVES[curve]
    att_d = t[t["term"].str.startswith("ATT at dose")]
    acrt_d = t[t["term"].str.startswith("ACRT at dose")]
    out = {"segments": sieve.segments}
    for name, rows, truth, value in (
        ("att_d", att_d, level(grid), sieve.critical_value),
        ("acrt_d", acrt_d, slope(grid), sieve.critical_value_slope),
    ):
        est, se = rows["estimate"].to_numpy(), rows["std_error"].to_numpy()
        out[f"{name} band"] = float(np.all(np.abs(est - truth) <= value * se))
        out[f"{name} pointwise"] = float(
            np.all((rows["ci_lower"] <= truth) & (truth <= rows["ci_upper"]))
        )
        out[f"{name} width"] = value / 1.959964
    for j, truth in ((0, level(doses).mean()), (1, slope(doses).mean())):
        row = t.iloc[j]
        out[["att", "acrt"][j]] = float(row["ci_lower"] <= truth <= row["ci_upper"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--n", type=int, nargs="+", default=[300, 1500])
    parser.add_argument("--variances", nargs="+", default=["hc2", "hc3", "hc0"])
    args = parser.parse_args()
    if min(args.n) < SMALLEST_N:
        parser.error(
            f"--n below {SMALLEST_N}: cck needs 50 treated units, and with 60% treated a "
            "replicate would too often have fewer"
        )
    print(
        f"{'process':>11} {'n':>5} {'resid':>5} | {'ATT(d) band':>11} {'pointwise':>9} "
        f"{'width':>5} | {'ACRT(d) band':>12} {'pointwise':>9} {'width':>5} | {'ATT':>5} "
        f"{'ACRT':>5} | segments"
    )
    with ProcessPoolExecutor(args.processes) as pool:
        for curve, n, variance in itertools.product(CURVES, args.n, args.variances):
            seeds = [(curve, n, 1000 * n + r, variance) for r in range(args.reps)]
            frame = pd.DataFrame(list(pool.map(one, seeds)))
            chosen = Counter(frame["segments"].astype(int))
            print(
                f"{curve:>11} {n:>5} {variance:>5} | {_pct(frame, 'att_d band'):>11} "
                f"{_pct(frame, 'att_d pointwise'):>9} {frame['att_d width'].mean():5.2f} | "
                f"{_pct(frame, 'acrt_d band'):>12} {_pct(frame, 'acrt_d pointwise'):>9} "
                f"{frame['acrt_d width'].mean():5.2f} | {_pct(frame, 'att'):>5} "
                f"{_pct(frame, 'acrt'):>5} | "
                + ", ".join(f"{k}: {v}" for k, v in sorted(chosen.items()))
            )


def _pct(frame: pd.DataFrame, col: str) -> str:
    """A share in percent with its Monte Carlo SE."""
    p = frame[col].mean()
    return f"{100 * p:5.1f}±{100 * np.sqrt(p * (1 - p) / len(frame)):.1f}"


if __name__ == "__main__":
    main()
