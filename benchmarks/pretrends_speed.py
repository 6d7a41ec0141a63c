"""Roth's (2022) pre-test power beside diff-diff's PreTrendsPower (run on demand, not a test).

A staggered panel (units × max(10, leads + 5) periods, cohorts starting in the last three
periods and never treated) gives an event study with `--leads` leads from diff-diff's
StackedDiD; both packages then take the same leads and covariance: diff-diff's
`PreTrendsPower(pretest_form="nis").fit` (the minimum detectable linear violation at 80%
power, R pretrends' no-individually-significant pre-test) and ours,
`pe.pretrends(beta=, sigma=, event_times=, target_power=0.8)`, which also gives the power,
Bayes factor, likelihood ratio and the means after pre-testing against that trend (R
pretrends' two calls), and our slope search alone (`slope_for_power`, what diff-diff's MDV
is). Prints seconds (best of 3 after a warm-up), the ratio, the slopes' difference and the
peak memory each allocates in one call (benchmarks/measure.py).

    OMP_NUM_THREADS=1 python benchmarks/pretrends_speed.py [--units 2000] [--leads 5]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import pandas as pd
from measure import best_of, traced_peak_mib  # benchmarks/ is on the path

import pathfinder_eval as pe
from pathfinder_eval.inference.pretrends_power import slope_for_power

REPEATS = 3


def panel(n: int, periods: int, seed: int = 1) -> pd.DataFrame:
    """A long panel: unit effects, a common trend, 0.5 from the start, N(0, 1) noise."""
    rng = np.random.default_rng(seed)
    unit = np.repeat(np.arange(n), periods)
    period = np.tile(np.arange(1, periods + 1), n)
    first = np.where(rng.random(n) < 0.4, 0, rng.choice([periods - 2, periods - 1], n))
    treated = (first[unit] > 0) & (period >= first[unit])
    y = rng.normal(size=n)[unit] + 0.1 * period + 0.5 * treated + rng.normal(size=n * periods)
    return pd.DataFrame({"unit": unit, "period": period, "y": y, "first_treat": first[unit]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=2000)
    parser.add_argument("--leads", type=int, default=5)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    try:
        import diff_diff as dd
    except ImportError:
        print("diff-diff is not installed (pip install diff-diff): nothing to compare with")
        return
    periods = max(10, args.leads + 5)
    study = dd.StackedDiD(kappa_pre=args.leads + 1, kappa_post=1).fit(
        panel(args.units, periods), "y", "unit", "period", "first_treat"
    )
    es = study.aggregate("event_study")
    rows = np.asarray(es.event_time)[~np.asarray(es.is_reference)]
    leads = rows < 0
    beta = np.asarray(es.att)[~np.asarray(es.is_reference)][leads]
    sigma = np.asarray(es.vcov)[np.ix_(leads, leads)]
    times = rows[leads].astype(float)
    lead_list = times.astype(int).tolist()
    print(f"event study: {args.units} units × {periods} periods, leads {lead_list}")

    def theirs_fit():
        return dd.PreTrendsPower(power=0.8, pretest_form="nis").fit(es)

    def ours_fit():
        return pe.pretrends(beta=beta, sigma=sigma, event_times=times, target_power=0.8)

    peer_s, peer = best_of(theirs_fit, REPEATS)
    ours_s, ours = best_of(ours_fit, REPEATS)
    slope_s, slope = best_of(lambda: slope_for_power(sigma, times, -1.0, 0.8), REPEATS)
    print(f"diff-diff PreTrendsPower (MDV at 80%):   {peer_s:.3f} s, MDV {peer.mdv:.8g}")
    print(
        f"pathfinder-eval pe.pretrends (all):      {ours_s:.3f} s, slope {ours.slope:.8g}; "
        f"ratio peer/ours {peer_s / ours_s:.2f}×"
    )
    print(
        f"pathfinder-eval slope_for_power alone:   {slope_s:.3f} s, slope {slope:.8g}; "
        f"ratio peer/ours {peer_s / slope_s:.2f}×"
    )
    print(f"|slope − MDV| / MDV: {abs(slope - peer.mdv) / peer.mdv:.2e}")
    theirs, mine = traced_peak_mib(theirs_fit), traced_peak_mib(ours_fit)
    print(f"peak traced memory of one call: diff-diff {theirs:,.2f} MiB, ours {mine:,.2f} MiB")


if __name__ == "__main__":
    main()
