"""Benchmark: synthetic DiD with 200 placebo replications on California Prop 99, side by side.

Run on demand (not a test): python benchmarks/sdid_prop99.py [PROP99_CSV]
Peers are timed when importable: diff-diff (`pip install diff-diff`) and synthdid-py
(`pip install synthdid-py`, imported as `synthdid`). Each is run once to warm up (numba
compilation, imports), then timed as the best of `REPEATS` runs (synthdid-py, whose placebo
replications take minutes: one), each from the same long frame (its reshaping counted); ratios
are peer / ours, then the estimate and its placebo SE with their differences from ours
(placebo SEs differ by their draws), and the peak of what one call allocates (tracemalloc,
one more untimed call).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from measure import best_of, peer_failure, traced_peak_mib  # benchmarks/ is on the path

from pathfinder_eval.estimators.synthetic.core import placebo_se, synthdid

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared/data/reference/synth/california_prop99.csv"
REPLICATIONS, REPEATS = 200, 3


def main(path: Path) -> None:
    d = pd.read_csv(path)  # every package starts from this long frame: its reshaping counts
    treated = sorted(d.loc[d["treated"] == 1, "State"].unique())

    def matrix() -> tuple[np.ndarray, int, int]:
        """The states × years outcomes, controls first (synthdid's panel.matrices)."""
        wide = d.pivot(index="State", columns="Year", values="PacksPerCapita")
        controls = sorted(set(wide.index) - set(treated))
        y = wide.loc[controls + treated].to_numpy()
        return y, len(controls), int(d.loc[d["treated"] == 1, "Year"].min() - d["Year"].min())

    def ours():
        y, n0, t0 = matrix()
        fit = synthdid(y, n0, t0, "sdid")
        return fit.estimate, placebo_se(y, n0, t0, fit, REPLICATIONS, np.random.default_rng(1))

    rows = [("pathfinder-eval", *best_of(ours, REPEATS), traced_peak_mib(ours), REPEATS)]
    try:
        from diff_diff import SyntheticDiD

        def dd():
            long = d.assign(treat=d["State"].isin(treated).astype(int))
            res = SyntheticDiD(variance_method="placebo", n_bootstrap=REPLICATIONS, seed=1).fit(
                long,
                "PacksPerCapita",
                "treat",
                "State",
                "Year",
                post_periods=list(range(1989, 2001)),
            )
            return res.att, res.se

        rows.append(("diff-diff", *best_of(dd, REPEATS), traced_peak_mib(dd), REPEATS))
    except Exception as exc:  # a peer's failure is reported, not raised
        print(f"diff-diff: {peer_failure(exc)}: skipped")
    try:
        import synthdid as sdpy

        def py():
            y, n0, t0 = matrix()
            est = sdpy.synthdid_estimate(y, n0, t0)
            return float(est), float(
                np.sqrt(sdpy.vcov(est, method="placebo", replications=REPLICATIONS)[0, 0])
            )

        rows.append(("synthdid-py", *best_of(py, 1), traced_peak_mib(py), 1))
    except Exception as exc:  # a peer's failure is reported, not raised
        print(f"synthdid-py: {peer_failure(exc)}: skipped")
    base, (base_est, base_se) = rows[0][1], rows[0][2]
    print(f"SDID on Prop 99 with {REPLICATIONS} placebo replications")
    print(
        f"{'package':18} {'runs':>4} {'seconds':>9} {'ratio':>7} {'estimate':>11} {'|Δ|':>8} "
        f"{'placebo SE':>11} {'|ΔSE|':>7} {'peak MiB':>9}"
    )
    for name, seconds, (est, se), peak, runs in rows:
        print(
            f"{name:18} {runs:4d} {seconds:9.3f} {seconds / base:7.1f} {est:11.4f} "
            f"{abs(est - base_est):8.1e} {se:11.3f} {abs(se - base_se):7.3f} {peak:9.2f}"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT)
