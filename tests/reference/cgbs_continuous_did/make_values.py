"""Reference values for Callaway, Goodman-Bacon & Sant'Anna's DiD with a continuous treatment
from two independent Python ports of R contdid's `cont_did`, neither a dependency of
pathfinder-eval: PyPI moderndid 0.2.0 (`cont_did`) and PyPI diff-diff 3.13.0
(`ContinuousDiD`). Run this in a separate environment:

    python3 -m venv /tmp/contdid-ref
    /tmp/contdid-ref/bin/pip install moderndid==0.2.0 diff-diff==3.13.0 "polars<1.32"
    /tmp/contdid-ref/bin/python tests/reference/cgbs_continuous_did/make_values.py

(moderndid 0.2.0 fails with polars 2, which no longer casts in `is_in`.) It writes panels.csv
(three simulated panels, columns id, t, y, D (dose), G (first treated period, 0 never)) and
values.csv: per run the average effect ATT^o and average causal response ACRT^o and the dose
curves ATT(d), ACRT(d) from moderndid (dose aggregation) with its ACRT^o by event time (its
event study of the slope), and from diff-diff (B-spline runs
without interior knots, where its knot rule differs) the same estimates with their analytic
standard errors and the event-study ATT^o by event time with its standard error. moderndid's
standard errors are bootstrap draws, and its event study of the level passes the dose where
its doubly robust 2×2 expects a 0/1 group: neither is used.
"""

from pathlib import Path

import moderndid
import numpy as np
import pandas as pd
from diff_diff import ContinuousDiD

HERE = Path(__file__).resolve().parent


def panel(seed: int, n: int, periods: int, starts: list[int], probs: list[float], curved: bool):
    """n units over `periods`: unit effects, a common trend, doses U(0.5, 3) rounded to 3
    decimals for treated units (outcomes to 6) and an effect 0.5 d (+ 0.2 d² when `curved`)
    from the start."""
    rng = np.random.default_rng(seed)
    g = rng.choice(starts, size=n, p=probs)
    d = np.where(g > 0, rng.uniform(0.5, 3, n).round(3), 0.0)
    a = rng.normal(size=n)
    rows = []
    for t in range(1, periods + 1):
        effect = np.where((g > 0) & (t >= g), 0.5 * d + (0.2 * d**2 if curved else 0), 0)
        y = (a + 0.3 * t + effect + rng.normal(size=n)).round(6)
        rows += [(i + 1, t, y[i], d[i], g[i]) for i in range(n)]
    return pd.DataFrame(rows, columns=["id", "t", "y", "D", "G"])


def with_covariates(seed: int, n: int, periods: int) -> pd.DataFrame:
    """n units over `periods`, starts in 3 and 4 (40% never): a unit covariate x1 ~ N(0, 1)
    that both raises the dose (U(0.5, 3) + 0.4 x1, at least 0.2) and steepens the unit's
    trend (0.5 x1 per period), so parallel trends hold only given x1; a time-varying x = x1 +
    N(0, 0.5²); effect 0.5 d + 0.2 d² from the start."""
    rng = np.random.default_rng(seed)
    g = rng.choice([0, 3, 4], size=n, p=[0.4, 0.3, 0.3])
    x1 = rng.normal(size=n)
    d = np.where(g > 0, np.maximum(rng.uniform(0.5, 3, n) + 0.4 * x1, 0.2).round(3), 0.0)
    a = rng.normal(size=n) + x1
    rows = []
    for t in range(1, periods + 1):
        effect = np.where((g > 0) & (t >= g), 0.5 * d + 0.2 * d**2, 0)
        x = (x1 + rng.normal(0, 0.5, n)).round(6)
        y = (a + 0.3 * t + 0.5 * x1 * t + effect + rng.normal(size=n)).round(6)
        rows += [(i + 1, t, y[i], d[i], g[i], x[i], x1[i].round(6)) for i in range(n)]
    return pd.DataFrame(rows, columns=["id", "t", "y", "D", "G", "x", "x1"])


def lowest_dose(seed: int, n: int, periods: int, start: int, share_low: float) -> pd.DataFrame:
    """n units over `periods`, every one treated from `start`: a share at the lowest dose 0.5,
    the others U(0.8, 3) rounded to 3 decimals; effect 0.3 + 0.5 d + 0.2 d² from the start
    (no never-treated unit: the lowest-dose LAs are the comparison, Remark 3.1)."""
    rng = np.random.default_rng(seed)
    low = rng.random(n) < share_low
    d = np.where(low, 0.5, rng.uniform(0.8, 3, n).round(3))
    a = rng.normal(size=n)
    rows = []
    for t in range(1, periods + 1):
        effect = np.where(t >= start, 0.3 + 0.5 * d + 0.2 * d**2, 0)
        y = (a + 0.3 * t + effect + rng.normal(size=n)).round(6)
        rows += [(i + 1, t, y[i], d[i], start) for i in range(n)]
    return pd.DataFrame(rows, columns=["id", "t", "y", "D", "G"])


PANELS = {
    "A": panel(3, 300, 5, [0, 3, 4], [0.4, 0.3, 0.3], True),  # two cohorts, curved response
    "B": panel(7, 150, 8, [0, 4, 5, 6], [0.88, 0.04, 0.04, 0.04], False),  # LA-shaped
    "C": panel(11, 400, 4, [0, 3], [0.5, 0.5], True),  # one cohort
    "D": with_covariates(13, 200, 6),  # parallel trends given a covariate
    "E": lowest_dose(17, 200, 6, 4, 0.25),  # every unit treated, a quarter at the lowest dose
}
RUNS = [  # panel, degree, interior knots, comparison, doses
    ("A", 3, 0, "notyettreated", [0.8, 1.2, 1.6, 2.0, 2.5]),
    ("A", 3, 0, "nevertreated", [0.8, 1.2, 1.6, 2.0, 2.5]),
    ("A", 2, 1, "notyettreated", [0.8, 1.2, 1.6, 2.0, 2.5]),
    ("B", 1, 0, "notyettreated", [1.0, 2.0]),
    ("C", 3, 2, "notyettreated", [0.7, 1.5, 2.9]),
]
# covariates (their base-period values; diff-diff's outcome regression, contdid has none)
COVARIATE_RUNS = [  # panel, degree, comparison, doses, covariates, estimation method
    ("D", 1, "notyettreated", [1.0, 2.0], ["x1"], "reg"),
    ("D", 3, "notyettreated", [0.8, 1.6, 2.4], ["x", "x1"], "reg"),
    ("D", 2, "nevertreated", [1.0, 2.0], ["x"], "reg"),
    ("D", 1, "notyettreated", [1.0, 2.0], ["x1"], "dr"),
    ("D", 3, "notyettreated", [0.8, 1.6, 2.4], ["x", "x1"], "dr"),
    ("D", 2, "nevertreated", [1.0, 2.0], ["x"], "dr"),
]
# the lowest-dose LAs as the comparison (diff-diff's lowest_dose; contdid has none)
LOWEST_DOSE_RUNS = [  # panel, degree, doses
    ("E", 1, [1.0, 2.0]),
    ("E", 3, [1.0, 1.5, 2.0, 2.5]),
]


def diff_diff_rows(rec, df, degree, control, doses, covariates=None, method="reg") -> None:
    """diff-diff's estimates, analytic standard errors and event-study ATTs (`reg`: its
    outcome regression when there are covariates; `dr`: doubly robust)."""
    res = ContinuousDiD(
        degree=degree,
        num_knots=0,
        dvals=np.array(doses),
        control_group={
            "notyettreated": "not_yet_treated",
            "nevertreated": "never_treated",
            "lowestdose": "lowest_dose",
        }[control],
        estimation_method=method,
    ).fit(
        df,
        outcome="y",
        unit="id",
        time="t",
        first_treat="G",
        dose="D",
        aggregate="eventstudy",
        covariates=covariates,
    )
    src = "diff-diff"
    rec("att", res.overall_att, source=src)
    rec("acrt", res.overall_acrt, source=src)
    rec("att_se", res.overall_att_se, source=src)
    rec("acrt_se", res.overall_acrt_se, source=src)
    curves = zip(
        doses,
        res.dose_response_att.effects,
        res.dose_response_acrt.effects,
        res.dose_response_att.se,
        res.dose_response_acrt.se,
        strict=True,
    )
    for d, a, b, sa, sb in curves:
        rec("att_d", a, d, source=src)
        rec("acrt_d", b, d, source=src)
        rec("att_d_se", sa, d, source=src)
        rec("acrt_d_se", sb, d, source=src)
    for e, v in sorted(res.event_study_effects.items()):
        rec("event", v["effect"], event_time=e, source=src)
        rec("event_se", v["se"], event_time=e, source=src)


def main() -> None:
    out = []
    for run, (name, degree, knots, control, doses) in enumerate(RUNS):
        df = PANELS[name]

        base = dict(run=run, panel=name, degree=degree, knots=knots, control=control)

        def rec(kind, value, dose=np.nan, event_time=np.nan, source="moderndid", base=base):
            row = dict(source=source, kind=kind, dose=dose, event_time=event_time)
            out.append({**base, **row, "value": float(value)})

        r = moderndid.cont_did(
            data=df,
            yname="y",
            tname="t",
            idname="id",
            gname="G",
            dname="D",
            aggregation="dose",
            degree=degree,
            num_knots=knots,
            dvals=np.array(doses),
            control_group=control,
            random_state=1,
            biters=100,
        )
        rec("att", r.overall_att)
        rec("acrt", r.overall_acrt)
        for d, a, b in zip(doses, r.att_d, r.acrt_d, strict=True):
            rec("att_d", a, d)
            rec("acrt_d", b, d)
        slope = moderndid.cont_did(
            data=df,
            yname="y",
            tname="t",
            idname="id",
            gname="G",
            dname="D",
            aggregation="eventstudy",
            target_parameter="slope",
            degree=degree,
            num_knots=knots,
            control_group=control,
            random_state=1,
            biters=100,
        ).event_study
        for e, b in zip(slope.event_times, slope.att_by_event, strict=True):
            rec("acrt_event", b, event_time=float(e))
        if not knots:
            diff_diff_rows(rec, df, degree, control, doses)
    for run, (name, degree, control, doses, covariates, method) in enumerate(
        COVARIATE_RUNS, len(RUNS)
    ):
        base = dict(run=run, panel=name, degree=degree, knots=0, control=control)
        base["covariates"] = " ".join(covariates)
        base["method"] = method

        def rec(kind, value, dose=np.nan, event_time=np.nan, source="moderndid", base=base):
            row = dict(source=source, kind=kind, dose=dose, event_time=event_time)
            out.append({**base, **row, "value": float(value)})

        diff_diff_rows(rec, PANELS[name], degree, control, doses, covariates, method)
    first = len(RUNS) + len(COVARIATE_RUNS)
    for run, (name, degree, doses) in enumerate(LOWEST_DOSE_RUNS, first):
        base = dict(run=run, panel=name, degree=degree, knots=0, control="lowestdose")

        def rec(kind, value, dose=np.nan, event_time=np.nan, source="moderndid", base=base):
            row = dict(source=source, kind=kind, dose=dose, event_time=event_time)
            out.append({**base, **row, "value": float(value)})

        diff_diff_rows(rec, PANELS[name], degree, "lowestdose", doses)
    panels = pd.concat([d.assign(panel=k) for k, d in PANELS.items()])
    panels.to_csv(HERE / "panels.csv", index=False, float_format="%.17g")
    pd.DataFrame(out).to_csv(HERE / "values.csv", index=False, float_format="%.17g")


if __name__ == "__main__":
    main()
