"""Size, coverage and width of pe.triple_difference's inference on children's records in LAs
(run on demand: python benchmarks/ddd_units_validity.py [--reps 1000] [--processes 2]
[--treated 3 4 10]).

The process (written for this check, not tuned to the estimator): 60 LAs in 6 regions; each
LA's cohort of children in the records is log-uniform from 30 to 300; an LA's share of
eligible children (the targeted age band) is U(0.3, 0.7). Children are observed for 8 years;
5% of child-years are missing at random. A child's outcome is its own level N(0, 1) + a
national trend + 0.05·t more for eligible children + a region × year shock N(0, 0.2²) + an
LA × year shock N(0, 0.3²) shared by all its children + an LA × eligibility × year shock
N(0, σ²) (σ = 0, "none"; 0.15, "la×group": the targeted group's own local trend, which the
within-LA comparison cannot remove) + the child's noise N(0, 1) (+ τ = 0.3 for eligible
children of treated LAs from their start). Treated: 3, 4 or 10 LAs, at random, half starting
in year 5 and half in year 6 (3: two and one).

Inference compared on the simple ATT: "units" (without a cluster: children independent,
normal reference), "cluster la" (influence functions summed within LAs, t(G − 1)) and
"cr2 la" (the default with a cluster: CR2 by LA with Bell-McCaffrey df; none where one LA
holds all of a cohort's treated children, the "n/e %" column), "cr2 la, nyt" (the same with
not-yet-treated comparisons: the year-5 starters' cells before year 6 also compare with the
year-6 starters, combined by GMM weights); beside them
"la contrast", the LA-level alternative: the children's means by LA, group and year, and
Callaway & Sant'Anna on the eligible-minus-ineligible contrast with the toolkit's default
inference (pe.callaway_santanna(minus=), as a design's `contrasts`; LAs weighted equally,
so its estimand differs from the children-weighted one when effects vary by LA). Size: share
of 95% intervals excluding 0 when τ = 0; coverage: share containing τ when τ = 0.3; width:
mean width over the oracle 2·1.96·SD of the estimate across replications. The same seeds
draw both, and τ shifts every estimate by itself without moving its SE, so coverage is
100% − size here. Prints each cell with its Monte Carlo SE.
"""

from __future__ import annotations

import argparse
import itertools
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd

import pathfinder_eval as pe

N_LA, N_REGION, YEARS, TAU = 60, 6, np.arange(1, 9), 0.3


def simulate(rng: np.random.Generator, treated: int, sigma: float, tau: float) -> pd.DataFrame:
    """One row per child and year (5% missing): la, region, child, year, start, eligible, y."""
    size = np.exp(rng.uniform(np.log(30), np.log(300), N_LA)).astype(int)
    share = rng.uniform(0.3, 0.7, N_LA)
    region = np.arange(N_LA) % N_REGION
    chosen = rng.choice(N_LA, treated, replace=False)
    start = np.zeros(N_LA)
    start[chosen] = np.where(np.arange(treated) < (treated + 1) // 2, 5, 6)
    t_n = len(YEARS)
    shock_r = rng.normal(0, 0.2, (N_REGION, t_n))
    shock_la = rng.normal(0, 0.3, (N_LA, t_n))
    shock_le = rng.normal(0, sigma, (N_LA, 2, t_n))
    la = np.repeat(np.arange(N_LA), size)
    n = len(la)
    elig = (rng.random(n) < share[la]).astype(int)
    level = rng.normal(0, 1, n)
    y = (
        level[:, None]
        + 0.1 * YEARS[None, :]
        + 0.05 * YEARS[None, :] * elig[:, None]
        + shock_r[region[la]]
        + shock_la[la]
        + shock_le[la, elig]
        + rng.normal(0, 1, (n, t_n))
    )
    on = (start[la][:, None] > 0) & (YEARS[None, :] >= start[la][:, None]) & (elig[:, None] == 1)
    y += tau * on
    frame = pd.DataFrame(
        {
            "la": np.repeat(la, t_n),
            "child": np.repeat(np.arange(n), t_n),
            "year": np.tile(YEARS, n),
            "start": np.repeat(start[la], t_n),
            "eligible": np.repeat(elig, t_n),
            "y": y.ravel(),
        }
    )
    return frame[rng.random(len(frame)) >= 0.05]


def one(job: tuple[int, float, float, int]) -> dict[str, tuple[float, float, float]]:
    """Estimate, SE-based interval limits for each inference on one replicate."""
    treated, sigma, tau, seed = job
    warnings.simplefilter("ignore")
    d = simulate(np.random.default_rng(seed), treated, sigma, tau)
    args = dict(outcome="y", unit="child", time="year", first_treated="start", eligible="eligible")
    out = {}
    for name, cluster, inference, control in (
        ("units", None, "cr2", "never_treated"),
        ("cluster la", "la", "influence_function", "never_treated"),
        ("cr2 la", "la", "cr2", "never_treated"),
        ("cr2 la, nyt", "la", "cr2", "not_yet_treated"),
    ):
        fit = pe.triple_difference(
            d, **args, cluster=cluster, inference=inference, control_group=control
        )
        row = fit.table.iloc[0]
        out[name] = (row["estimate"], row["ci_lower"], row["ci_upper"])
    cells = d.pivot_table(index=["la", "year", "start"], columns="eligible", values="y")
    cells = cells.reset_index().rename(columns={0: "y0", 1: "y1"})
    row = pe.callaway_santanna(
        cells,
        outcome="y1",
        minus="y0",
        unit="la",
        time="year",
        first_treated="start",
        control_group="never_treated",
        aggregation="simple",
    ).table.iloc[0]
    out["la contrast"] = (row["estimate"], row["ci_lower"], row["ci_upper"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--treated", type=int, nargs="+", default=[3, 4, 10])
    args = parser.parse_args()
    cells = list(itertools.product(args.treated, (0.0, 0.15)))
    print(f"{N_LA} LAs, children 30–300 per LA, {args.reps} replications per cell")
    head = ("treated", "la×group", "inference", "size %", "cover %", "width", "n/e %")
    print(" ".join(f"{h:>{w}}" for h, w in zip(head, (8, 9, 12, 8, 8, 6, 6), strict=True)))
    with ProcessPoolExecutor(args.processes) as pool:
        for treated, sigma in cells:
            stats = {}
            for tau in (0.0, TAU):
                jobs = [(treated, sigma, tau, 1_000_003 * r + 17) for r in range(args.reps)]
                stats[tau] = list(pool.map(one, jobs, chunksize=8))
            label = "none" if sigma == 0 else f"{sigma:g}"
            for name in ("units", "cluster la", "cr2 la", "cr2 la, nyt", "la contrast"):
                null = np.array([s[name] for s in stats[0.0]])
                alt = np.array([s[name] for s in stats[TAU]])
                oracle = 2 * 1.96 * np.std(alt[:, 0])
                ok = np.isfinite(null[:, 1]) & np.isfinite(alt[:, 1])
                null, alt = null[ok], alt[ok]
                if not ok.any():
                    print(f"{treated:>8} {label:>9} {name:>12}   no interval in any replicate")
                    continue
                size = np.mean((null[:, 1] > 0) | (null[:, 2] < 0))
                cover = np.mean((alt[:, 1] <= TAU) & (alt[:, 2] >= TAU))
                width = np.mean(alt[:, 2] - alt[:, 1]) / oracle
                mc = np.sqrt(0.05 * 0.95 / max(ok.sum(), 1))
                print(
                    f"{treated:>8} {label:>9} {name:>12} "
                    f"{100 * size:>8.1f} {100 * cover:>8.1f} {width:>6.2f} "
                    f"{100 * (1 - ok.mean()):>6.1f}   (MC SE {100 * mc:.1f} points)"
                )


if __name__ == "__main__":
    main()
