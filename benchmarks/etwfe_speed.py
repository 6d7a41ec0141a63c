"""Extended TWFE speed beside pyfixest on the same regression (run on demand, not a test).

A staggered panel of 200,000 units × 10 periods (4 cohorts + never treated, no covariates):
the linear ETWFE with cohort and period effects (etwfe's default) and its event-study
aggregation with delta-method CR1 SEs, for pathfinder-eval and, in the same run, pyfixest's
`feols` of the same cell regression with CRV1 (when installed: `pip install pyfixest`;
pyfixest fits the regression only, it has no emfx; its dummy columns are built inside its
timing, as ours builds its design). Prints seconds (best of 3), the ratio
peer / ours, the largest coefficient difference and the peak memory each allocates in one
call (benchmarks/measure.py).

    OMP_NUM_THREADS=1 python benchmarks/etwfe_speed.py [--units 200000] [--periods 10]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from measure import peer_failure, traced_peak_mib  # benchmarks/ is on the path

from pathfinder_eval.estimators.did.etwfe import etwfe, etwfe_effects

REPEATS = 3


def simulate(n: int, t_n: int, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    periods = np.arange(1, t_n + 1)
    cohort = np.where(rng.random(n) < 0.4, np.inf, rng.choice([3, 5, 7, 9], n))
    rel = periods[None, :] - cohort[:, None]
    y = rng.normal(size=n)[:, None] + 0.1 * periods + np.where(rel >= 0, 0.5 + 0.1 * rel, 0.0)
    y = y + rng.normal(size=(n, t_n))
    return pd.DataFrame(
        {
            "unit": np.repeat(np.arange(n), t_n),
            "period": np.tile(periods, n),
            "cohort": np.repeat(cohort, t_n),
            "y": y.ravel(),
        }
    )


def ours(frame: pd.DataFrame) -> tuple[float, dict[str, float]]:
    t0 = time.perf_counter()
    fit = etwfe(frame["y"], frame["unit"], frame["period"], frame["cohort"])
    etwfe_effects(fit, "event")
    elapsed = time.perf_counter() - t0
    return elapsed, {n: float(c) for n, c in zip(fit.names, fit.coef, strict=True)}


def pyfixest_run(frame: pd.DataFrame) -> tuple[float, dict[str, float]]:
    import pyfixest as pf

    t0 = time.perf_counter()  # its dummy columns count, as our design matrix does
    data = frame.assign(cohort=frame["cohort"].replace(np.inf, 0).astype(int))
    cells = data.loc[data["period"] >= data["cohort"]].loc[data["cohort"] > 0]
    names = {}
    for g, t in sorted(set(zip(cells["cohort"], cells["period"], strict=True))):
        col = f"D_{g}_{t}"
        data[col] = ((data["cohort"] == g) & (data["period"] == t)).astype(float)
        names[col] = f"D[{g},{t}]"
    fit = pf.feols(f"y ~ {' + '.join(names)} | cohort + period", data, vcov={"CRV1": "unit"})
    coef = fit.coef()
    elapsed = time.perf_counter() - t0
    return elapsed, {names[k]: float(v) for k, v in coef.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--units", type=int, default=200_000)
    parser.add_argument("--periods", type=int, default=10)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    frame = simulate(args.units, args.periods)
    print(f"panel: {args.units} units × {args.periods} periods, cohorts 3, 5, 7, 9 + never")
    ours(frame.iloc[:2000])
    runs = [ours(frame) for _ in range(REPEATS)]
    t_ours = min(r[0] for r in runs)
    print(f"pathfinder-eval etwfe + event aggregation: {t_ours:.2f} s (best of {REPEATS})")
    try:
        peer = [pyfixest_run(frame) for _ in range(REPEATS)]
    except Exception as exc:  # a peer's failure is reported, not raised
        print(f"pyfixest: {peer_failure(exc)}")
        return
    t_peer = min(r[0] for r in peer)
    diff = max(abs(runs[0][1][k] - v) for k, v in peer[0][1].items())
    print(
        f"pyfixest feols (regression only): {t_peer:.2f} s; ratio peer/ours {t_peer / t_ours:.2f}×;"
        f" max |Δcoef| {diff:.1e}"
    )
    mine = traced_peak_mib(lambda: ours(frame))
    theirs = traced_peak_mib(lambda: pyfixest_run(frame))
    print(f"peak traced memory of one call: ours {mine:,.0f} MiB, pyfixest {theirs:,.0f} MiB")


if __name__ == "__main__":
    main()
