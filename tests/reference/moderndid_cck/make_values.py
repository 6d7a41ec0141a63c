"""Reference values for continuous_did's data-driven (cck) dose curve from PyPI moderndid 0.2.0
(`cont_did(..., dose_est_method="cck")` and the `npiv` functions it calls), not a dependency of
pathfinder-eval. Run it in a separate environment:

    python3 -m venv /tmp/contdid-ref
    /tmp/contdid-ref/bin/pip install moderndid==0.2.0 "polars<1.32"
    /tmp/contdid-ref/bin/python tests/reference/moderndid_cck/make_values.py

It writes panels.csv (two-period panels: id, t, y, D (dose), G (2 treated, 0 never)) and
values.csv (panel, quantity, key, value):
- grid: the sieve segments tried (npiv_jhat_max), alpha: α̂;
- gap: each pair's largest studentized gap (npiv_j's z_sup), key "s1-s2";
- theta: θ* from npiv_j with 999 draws of seed 11; segments: its choice;
- curve, slope, se, slope_se: npiv at the chosen segments on 50 doses spread over the treated
  range (key: the grid index);
- att, acrt, acrt_se: cont_did's average effect and average causal response with its standard
  error (analytic; the ATT's standard error is a bootstrap and is not used).
"""

from pathlib import Path

import moderndid
import numpy as np
import pandas as pd
from moderndid.didcont.npiv.lepski import npiv_j, npiv_jhat_max
from moderndid.didcont.npiv.npiv import npiv

HERE = Path(__file__).resolve().parent
SEED = 11
DRAWS = 999


def two_periods(seed: int, n: int, curve) -> pd.DataFrame:
    """n units, 60% treated in period 2 with doses U(0.2, 3) rounded to 3 decimals, unit
    effects, a common trend 1 and the effect curve(dose) in period 2 (outcomes to 6 decimals)."""
    rng = np.random.default_rng(seed)
    treated = rng.uniform(size=n) < 0.6
    d = np.where(treated, rng.uniform(0.2, 3, n).round(3), 0.0)
    a = rng.normal(size=n)
    y1 = (a + rng.normal(size=n)).round(6)
    y2 = (a + 1 + np.where(treated, curve(d), 0) + rng.normal(size=n)).round(6)
    ids = np.arange(1, n + 1)
    g = np.where(treated, 2, 0)
    return pd.concat(
        [
            pd.DataFrame({"id": ids, "t": 1, "y": y1, "D": d, "G": g}),
            pd.DataFrame({"id": ids, "t": 2, "y": y2, "D": d, "G": g}),
        ]
    )


def guide() -> pd.DataFrame:
    """moderndid's user guide CCK example: gen_cont_did_data(n=2000, 2 periods, effect d²)."""
    d = moderndid.gen_cont_did_data(
        n=2000, num_time_periods=2, dose_linear_effect=0, dose_quadratic_effect=1.0, seed=1234
    ).to_pandas()
    return d.rename(columns={"time_period": "t", "Y": "y"})[["id", "t", "y", "D", "G"]]


PANELS = {
    "guide": guide(),
    "wave": two_periods(3, 1500, lambda d: np.sin(3 * d) * 1.5),
    "step": two_periods(5, 800, lambda d: 2.0 * (d > 1.5)),
    "small": two_periods(7, 120, lambda d: 0.5 * d),
}


def values(name: str, panel: pd.DataFrame) -> list[tuple]:
    wide = panel.pivot(index="id", columns="t", values="y")
    units = panel.groupby("id")[["D", "G"]].first().loc[wide.index]
    dy = (wide[2] - wide[1]).to_numpy()
    treated = units["G"].to_numpy() > 0
    dose = units["D"].to_numpy()[treated]
    y = dy[treated] - dy[~treated].mean()
    x = dose[:, None]
    grid = np.linspace(dose.min(), dose.max(), 50)[:, None]
    top = npiv_jhat_max(x, x, 3, 3, 2, "quantiles")
    sets, wsets = top["j_x_segments_set"], top["k_w_segments_set"]
    lep = npiv_j(
        y,
        x,
        x,
        grid,
        3,
        3,
        sets,
        wsets,
        "quantiles",
        boot_num=DRAWS,
        alpha=top["alpha_hat"],
        seed=SEED,
    )
    seg = int(lep["j_x_seg"])
    fit = npiv(
        y=y,
        x=x,
        w=x,
        x_eval=grid,
        j_x_degree=3,
        k_w_degree=3,
        j_x_segments=seg,
        k_w_segments=int(wsets[list(sets).index(seg)]),
        knots="quantiles",
        boot_num=99,
        ucb_h=False,
        ucb_deriv=False,
    )
    out = [(name, "grid", i, float(s)) for i, s in enumerate(sets)]
    out.append((name, "alpha", 0, float(top["alpha_hat"])))
    pairs = [(a, b) for i, a in enumerate(sets) for b in sets[i + 1 :]]
    out += [
        (name, "gap", f"{a}-{b}", float(z)) for (a, b), z in zip(pairs, lep["z_sup"], strict=True)
    ]
    out += [(name, "theta", 0, float(lep["theta_star"])), (name, "segments", 0, float(seg))]
    for q, arr in (
        ("curve", fit.h),
        ("slope", fit.deriv),
        ("se", fit.asy_se),
        ("slope_se", fit.deriv_asy_se),
    ):
        out += [(name, q, i, float(v)) for i, v in enumerate(np.ravel(arr))]
    res = moderndid.cont_did(
        data=panel,
        yname="y",
        tname="t",
        idname="id",
        dname="D",
        gname="G",
        aggregation="dose",
        dose_est_method="cck",
        biters=99,
        random_state=SEED,
    )
    out += [
        (name, "att", 0, float(res.overall_att)),
        (name, "acrt", 0, float(res.overall_acrt)),
        (name, "acrt_se", 0, float(res.overall_acrt_se)),
    ]
    return out


if __name__ == "__main__":
    rows = [r for name, p in PANELS.items() for r in values(name, p)]
    pd.concat([p.assign(panel=k) for k, p in PANELS.items()]).to_csv(
        HERE / "panels.csv", index=False
    )
    pd.DataFrame(rows, columns=["panel", "quantity", "key", "value"]).to_csv(
        HERE / "values.csv", index=False, float_format="%.17g"
    )
