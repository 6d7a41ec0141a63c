"""Reference values for de Chaisemartin & D'Haultfœuille's DID_ℓ from the authors' own Python
port of did_multiplegt_dyn (PyPI py-did-multiplegt-dyn 0.1.9), which is not a dependency of
pathfinder-eval: run this in a separate environment.

    python3 -m venv /tmp/dcdh-ref
    /tmp/dcdh-ref/bin/pip install py-did-multiplegt-dyn==0.1.9 "polars<1.32"
    /tmp/dcdh-ref/bin/python tests/reference/dcdh_multiplegt_dyn/make_values.py

(polars 1.32 and later removed the argument-free pl.count() the package calls.) It writes
panels.csv (the five simulated panels below, seed 20261203) and values.csv (each case's
average total effect, effects and placebos: estimate, analytic standard error, switchers; and
the joint placebo test's p-value and, with effects_equal, the p-value of the test that the
effects are equal), 3 effects and 2 placebos, for la_absorbing_all 9 of each
asked for (the data hold 4 and 3), and for intensity_normalized the effects and placebos per
unit of treatment received (normalized=True). `missing_treatment` (40 × 8, as
`switch_on_off_pause`) and `intensity_gaps` (40 × 8 levels, also normalised) lose 10% of their
treatments and 3% of their rows, one unit's treatment and another's outcome throughout:
the authors' rules for missing treatments. The `_cluster` runs repeat four cases with the
authors' `cluster` option on the panels' `cluster` column (units nested in coarser clusters:
consecutive triples, every fifth unit, 9 LA regions holding all 7 treated LAs in one, fours).
The `_trends` runs repeat five cases with `trends_lin=True` (a linear trend for each unit).
They are given every unit-period as a row (outcome and treatment empty where the data have
none): the package's trends_lin differences each row with the previous row, which spans two
periods where a row is missing. `switchers_w` is the package's weighted switcher count
("Switchers.w"); with trends_lin its unweighted "Switchers" can differ from the switchers
behind the estimate. The `_lcs` runs use `less_conservative_se=True` (see README.md: the
clustered one is kept but not compared, and the earlier rows are kept as committed when a
newer numpy moves them in the 13th digit).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
from did_multiplegt_dyn import DidMultiplegtDyn

HERE = Path(__file__).resolve().parent
EFFECTS, PLACEBOS = 3, 2


def panel(rng, n_units, n_periods, p_never, p_off, p_pause, p_missing) -> pd.DataFrame:
    """Units start untreated (or treated with probability p_off, then switch off), switch at a
    random period from 2 on (never with probability p_never), and pause (return to their
    baseline) with probability p_pause; outcomes with unit levels, a trend, an effect that
    builds with exposure, and NaN with probability p_missing."""
    rows = []
    for g in range(n_units):
        base = int(rng.random() < p_off)
        first = int(rng.integers(2, n_periods + 1)) if rng.random() >= p_never else 10**6
        stop = first + int(rng.integers(1, n_periods)) if rng.random() < p_pause else 10**6
        level, exposure = rng.normal(0, 2), 0
        for t in range(1, n_periods + 1):
            d = 1 - base if first <= t < stop else base
            exposure = exposure + 1 if d != base else exposure
            y = level + 0.3 * t + 0.4 * np.sqrt(exposure) * (d != base) + rng.normal()
            rows.append((f"u{g:03d}", t, d, np.nan if rng.random() < p_missing else y))
    return pd.DataFrame(rows, columns=["unit", "period", "treatment", "y"])


def intensity(rng, n_units, n_periods) -> pd.DataFrame:
    """Treatment levels 0, 1 and 2: units start at a level (0 for most), change at a random
    period (never with probability 0.3) and may change again each later period with
    probability 0.3, up or down, back to their start or across it."""
    rows = []
    for g in range(n_units):
        base = float(rng.choice([0, 1, 2], p=[0.6, 0.25, 0.15]))
        path = np.full(n_periods, base)
        if rng.random() > 0.3:
            first = int(rng.integers(2, n_periods + 1))
            for t in range(first - 1, n_periods):
                if t == first - 1 or rng.random() < 0.3:
                    levels = [v for v in (0.0, 1.0, 2.0) if v != base]
                    path[t:] = rng.choice(levels + ([base] if t > first - 1 else []))
        level = rng.normal()
        for t in range(n_periods):
            y = level + 0.2 * t + 0.4 * (path[t] - path[0]) + rng.normal()
            rows.append((f"u{g:03d}", t + 1, path[t], y))
    return pd.DataFrame(rows, columns=["unit", "period", "treatment", "y"])


def la_shaped(rng) -> pd.DataFrame:
    """150 LAs × 8 years, an absorbing rollout: 4 LAs start in year 5, 3 in year 6."""
    rows = []
    for i in range(150):
        level, e = rng.normal(50, 12), 0.0
        start = 5 if i < 4 else 6 if i < 7 else 99
        for t in range(1, 9):
            e = 0.5 * e + rng.normal(0, 3)
            rows.append(
                (f"la{i:03d}", t, int(t >= start), level + 0.8 * t + e + 2.0 * (t >= start))
            )
    return pd.DataFrame(rows, columns=["unit", "period", "treatment", "y"])


def with_gaps(rng, df: pd.DataFrame, p_missing: float, p_gone: float) -> pd.DataFrame:
    """Treatments missing with probability p_missing and whole rows gone with probability
    p_gone; the first unit's treatment and the second unit's outcome missing throughout."""
    df = df.copy()
    df.loc[rng.random(len(df)) < p_missing, "treatment"] = np.nan
    units = df["unit"].unique()
    df.loc[df["unit"] == units[0], "treatment"] = np.nan
    df.loc[df["unit"] == units[1], "y"] = np.nan
    return df[rng.random(len(df)) >= p_gone].reset_index(drop=True)


def with_controls(rng, df: pd.DataFrame, p_missing: float) -> pd.DataFrame:
    """Two time-varying controls: x1 with a unit level and a trend, x2 noise with a trend in a
    third of the units; the outcome gains 0.7·x1 − 0.4·x2; x1 missing with probability
    p_missing."""
    df = df.copy()
    unit = df["unit"].factorize()[0]
    period = df["period"].to_numpy(float)
    level = rng.normal(0, 1, unit.max() + 1)
    df["x1"] = level[unit] + 0.2 * period + rng.normal(0, 1, len(df))
    df["x2"] = rng.normal(0, 1, len(df)) + 0.1 * period * (unit % 3 == 0)
    df["y"] = df["y"] + 0.7 * df["x1"] - 0.4 * df["x2"]
    df.loc[rng.random(len(df)) < p_missing, "x1"] = np.nan
    return df


def with_weights(rng, df: pd.DataFrame) -> pd.Series:
    """Cell weights as child populations: a unit level (log-normal, median 1,000, σ 0.8 on the
    log scale) growing 3% of it a period."""
    units = sorted(df["unit"].unique())
    pop = dict(zip(units, np.exp(rng.normal(0, 0.8, len(units))) * 1000, strict=True))
    return pd.Series(
        [pop[u] * (1 + 0.03 * t) for u, t in zip(df["unit"], df["period"], strict=True)],
        index=df.index,
    )


def continuous_start(rng, n_units, n_periods) -> pd.DataFrame:
    """Starting treatments drawn from U(0.5, 2.5), every unit's different; 70% change once, at a
    random period from 3 on, by +0.5 (70% of them) or −0.4; outcomes with unit levels, a
    trend that grows with the starting treatment, and 0.6 per unit of treatment change."""
    rows = []
    for g in range(n_units):
        base = rng.uniform(0.5, 2.5)
        first = int(rng.integers(3, n_periods + 1)) if rng.random() > 0.3 else 10**6
        step = 0.5 if rng.random() < 0.7 else -0.4
        level = rng.normal()
        for t in range(1, n_periods + 1):
            d = base + step * (t >= first)
            y = level + 0.2 * t + 0.3 * base * t + 0.6 * (d - base) + rng.normal()
            rows.append((f"u{g:03d}", t, d, y))
    return pd.DataFrame(rows, columns=["unit", "period", "treatment", "y"])


def continuous_twice(rng, n_units, n_periods) -> pd.DataFrame:
    """As continuous_start, and a second change one or two periods after the first (+0.3,
    −0.2 or none), which never takes a unit back across its start."""
    rows = []
    for g in range(n_units):
        base = rng.uniform(0.5, 2.5)
        first = int(rng.integers(3, n_periods)) if rng.random() > 0.3 else 10**6
        second = first + int(rng.integers(1, 3))
        step = 0.5 if rng.random() < 0.7 else -0.4
        step2 = rng.choice([0.3, -0.2, 0.0])
        level = rng.normal()
        for t in range(1, n_periods + 1):
            d = base + step * (t >= first) + step2 * (t >= second)
            y = level + 0.2 * t + 0.3 * base * t + 0.6 * (d - base) + rng.normal()
            rows.append((f"u{g:03d}", t, d, y))
    return pd.DataFrame(rows, columns=["unit", "period", "treatment", "y"])


def continuous_back(rng, n_units, n_periods) -> pd.DataFrame:
    """As continuous_start, and 40% of the units that change return to their start one to
    three periods later (and stay there)."""
    rows = []
    for g in range(n_units):
        base = rng.uniform(0.5, 2.5)
        first = int(rng.integers(3, n_periods)) if rng.random() > 0.3 else 10**6
        back = first + int(rng.integers(1, 4)) if rng.random() < 0.4 else 10**6
        step = 0.5 if rng.random() < 0.7 else -0.4
        level = rng.normal()
        for t in range(1, n_periods + 1):
            d = base + step * (first <= t < back)
            y = level + 0.2 * t + 0.3 * base * t + 0.6 * (d - base) + rng.normal()
            rows.append((f"u{g:03d}", t, d, y))
    return pd.DataFrame(rows, columns=["unit", "period", "treatment", "y"])


def main() -> None:
    rng = np.random.default_rng(20261203)
    cases = {
        "switch_on_off_pause": panel(rng, 30, 8, 0.3, 0.2, 0.3, 0.0),
        "missing_outcomes": panel(rng, 25, 8, 0.3, 0.2, 0.3, 0.06),
        "no_never_switchers": panel(rng, 12, 7, 0.0, 0.25, 0.2, 0.0),
        "la_absorbing": la_shaped(rng),
        "intensity": intensity(rng, 40, 8),
    }
    # drawn after the others, so their panels stay as they were
    cases["missing_treatment"] = with_gaps(rng, panel(rng, 40, 8, 0.25, 0.2, 0.3, 0.03), 0.1, 0.03)
    cases["intensity_gaps"] = with_gaps(rng, intensity(rng, 40, 8), 0.1, 0.03)
    # with control variables: drawn after the others (and from their own stream), so the
    # panels above stay as they were
    extra = np.random.default_rng(20261204)
    for case in ("switch_on_off_pause", "la_absorbing", "intensity"):
        cases[f"{case}_x"] = with_controls(extra, cases[case], 0.0)
    cases["missing_treatment_x"] = with_controls(extra, cases["missing_treatment"], 0.03)
    # a starting treatment that differs between units (the authors' `continuous`)
    cases["continuous_start_x"] = with_controls(
        extra, continuous_start(np.random.default_rng(20261205), 40, 8), 0.0
    )
    # cell weights (the authors' `weight`), from their own stream: the values above stay
    weigh = np.random.default_rng(20261206)
    for case in ("la_absorbing", "switch_on_off_pause", "intensity", "missing_treatment"):
        cases[case]["w"] = with_weights(weigh, cases[case])
        x = cases[f"{case}_x"]
        x["w"] = x.merge(cases[case], on=["unit", "period"], how="left")["w"].to_numpy()
    cases["continuous_start_x"]["w"] = with_weights(weigh, cases["continuous_start_x"])
    clusters = {
        "switch_on_off_pause": lambda g: g // 3,
        "missing_outcomes": lambda g: g % 5,
        "no_never_switchers": lambda g: g,
        "la_absorbing": lambda g: g // 17,  # the 7 treated LAs share region 0
        "intensity": lambda g: g // 4,
        "missing_treatment": lambda g: g // 4,
        "intensity_gaps": lambda g: g // 4,
        "continuous_start": lambda g: g // 4,
    }
    for case, df in cases.items():
        assign = clusters[case.removesuffix("_x")]
        df["cluster"] = [f"c{assign(int(u[-3:])):02d}" for u in df["unit"]]
        # strata for trends_nonparam: every third unit
        df["stratum"] = [f"s{int(u[-3:]) % 3}" for u in df["unit"]]
    # a control missing in a period where a unit pauses (its treatment there still counts)
    gap = cases["switch_on_off_pause_x"].copy()
    gap.loc[(gap["unit"] == "u022") & (gap["period"] == 5), "x1"] = np.nan
    cases["switch_on_off_pause_gap_x"] = gap
    # a starting treatment that differs between units and changes twice (its own stream; run
    # only with `continuous`)
    cases["continuous_twice"] = continuous_twice(np.random.default_rng(20261207), 40, 8)
    # … and one whose units may return to their start (its own stream)
    cases["continuous_back"] = continuous_back(np.random.default_rng(20261208), 40, 8)
    frames = [df.assign(case=case) for case, df in cases.items()]
    # the last run asks for more effects and placebos than the data hold
    plain = [c for c in cases if not c.endswith("_x") and not c.startswith("continuous_")]
    runs = [(case, case, EFFECTS, PLACEBOS, False, None, False) for case in plain]
    runs.append(("la_absorbing_all", "la_absorbing", 9, 9, False, None, False))
    runs.append(("intensity_normalized", "intensity", EFFECTS, PLACEBOS, True, None, False))
    runs.append(
        ("intensity_gaps_normalized", "intensity_gaps", EFFECTS, PLACEBOS, True, None, False)
    )
    for case in ("switch_on_off_pause", "missing_outcomes", "la_absorbing", "intensity"):
        runs.append((f"{case}_cluster", case, EFFECTS, PLACEBOS, False, "cluster", False))
    # (missing_outcomes is left out: the package fails on it with trends_lin, a polars error)
    trend_cases = ("switch_on_off_pause", "no_never_switchers", "la_absorbing", "intensity")
    for case in (*trend_cases, "missing_treatment"):
        runs.append((f"{case}_trends", case, EFFECTS, PLACEBOS, False, None, True))
    runs = [(*r, ()) for r in runs]
    both = ("x1", "x2")
    runs += [
        ("switch_on_off_pause_controls", "switch_on_off_pause_x", 3, 2, False, None, False, both),
        ("la_absorbing_controls", "la_absorbing_x", 3, 2, False, None, False, ("x1",)),
        ("la_absorbing_controls_cluster", "la_absorbing_x", 3, 2, False, "cluster", False, both),
        ("intensity_controls", "intensity_x", 3, 2, False, None, False, both),
        ("intensity_controls_normalized", "intensity_x", 3, 2, True, None, False, both),
        ("missing_treatment_controls", "missing_treatment_x", 3, 2, False, None, False, both),
        # with a linear trend for each unit too
        (
            "switch_on_off_pause_controls_trends",
            "switch_on_off_pause_x",
            3,
            2,
            False,
            None,
            True,
            both,
        ),
        ("la_absorbing_controls_trends", "la_absorbing_x", 3, 2, False, None, True, ("x1",)),
        ("intensity_controls_trends", "intensity_x", 3, 2, False, None, True, both),
    ]
    runs = [(*r, 0) for r in runs]
    runs += [
        ("continuous_1", "continuous_start_x", 3, 2, False, None, False, (), 1),
        ("continuous_2_normalized", "continuous_start_x", 3, 2, True, None, False, (), 2),
        ("continuous_1_controls", "continuous_start_x", 3, 2, False, None, False, both, 1),
        ("continuous_1_cluster", "continuous_start_x", 3, 2, False, "cluster", False, (), 1),
        ("continuous_1_trends", "continuous_start_x", 3, 2, False, None, True, (), 1),
        ("continuous_2_controls_trends", "continuous_start_x", 3, 2, False, None, True, ("x1",), 2),
    ]
    runs = [(*r, None) for r in runs]
    # weighted by the cells' weights w (the authors' `weight`)
    runs += [
        ("la_absorbing_w", "la_absorbing", 3, 2, False, None, False, (), 0, "w"),
        ("switch_on_off_pause_w", "switch_on_off_pause", 3, 2, False, None, False, (), 0, "w"),
        ("intensity_w_normalized", "intensity", 3, 2, True, None, False, (), 0, "w"),
        ("la_absorbing_w_cluster", "la_absorbing", 3, 2, False, "cluster", False, (), 0, "w"),
        ("missing_treatment_w", "missing_treatment", 3, 2, False, None, False, (), 0, "w"),
        (
            "switch_on_off_pause_w_trends",
            "switch_on_off_pause",
            3,
            2,
            False,
            None,
            True,
            (),
            0,
            "w",
        ),
        ("la_absorbing_w_controls", "la_absorbing_x", 3, 2, False, None, False, ("x1",), 0, "w"),
        (
            "switch_on_off_pause_w_controls_cluster",
            "switch_on_off_pause_x",
            3,
            2,
            False,
            "cluster",
            False,
            both,
            0,
            "w",
        ),
        ("intensity_w_controls_normalized", "intensity_x", 3, 2, True, None, False, both, 0, "w"),
        (
            "missing_treatment_w_controls",
            "missing_treatment_x",
            3,
            2,
            False,
            None,
            False,
            both,
            0,
            "w",
        ),
        (
            "switch_on_off_pause_w_controls_trends",
            "switch_on_off_pause_x",
            3,
            2,
            False,
            None,
            True,
            both,
            0,
            "w",
        ),
        ("continuous_1_w", "continuous_start_x", 3, 2, False, None, False, (), 1, "w"),
        ("continuous_1_w_controls", "continuous_start_x", 3, 2, False, None, False, both, 1, "w"),
    ]
    runs = [(*r, {}) for r in runs]
    # the authors' options on which switchers and comparisons are used
    options = {
        "never": {"only_never_switchers": True},
        "same": {"same_switchers": True},
        "same_pl": {"same_switchers": True, "same_switchers_pl": True},
        "in": {"switchers": "in"},
        "out": {"switchers": "out"},
    }
    for case in ("la_absorbing", "switch_on_off_pause", "intensity", "missing_treatment"):
        for name, extra in options.items():
            if case == "la_absorbing" and name == "out":
                continue  # no LA switches off
            runs.append((f"{case}_{name}", case, 3, 2, False, None, False, (), 0, None, extra))
    runs += [
        (
            "switch_on_off_pause_out_trends",
            "switch_on_off_pause",
            3,
            2,
            False,
            None,
            True,
            (),
            0,
            None,
            {"switchers": "out"},
        ),
        (
            "intensity_in_w_controls",
            "intensity_x",
            3,
            2,
            False,
            None,
            False,
            both,
            0,
            "w",
            {"switchers": "in"},
        ),
        (
            "missing_treatment_never_cluster",
            "missing_treatment",
            3,
            2,
            False,
            "cluster",
            False,
            (),
            0,
            None,
            {"only_never_switchers": True},
        ),
    ]
    # comparisons within strata (the authors' trends_nonparam): LA regions, or thirds
    within = {"trends_nonparam": ["stratum"]}
    regions = {"trends_nonparam": ["cluster"]}
    runs += [
        ("la_absorbing_np", "la_absorbing", 3, 2, False, None, False, (), 0, None, regions),
        ("la_absorbing_np_w", "la_absorbing", 3, 2, False, None, False, (), 0, "w", regions),
        (
            "switch_on_off_pause_np",
            "switch_on_off_pause",
            3,
            2,
            False,
            None,
            False,
            (),
            0,
            None,
            within,
        ),
        ("intensity_np", "intensity", 3, 2, False, None, False, (), 0, None, within),
        ("intensity_np_normalized", "intensity", 3, 2, True, None, False, (), 0, None, within),
        ("intensity_np_cluster", "intensity", 3, 2, False, "cluster", False, (), 0, None, within),
        (
            "missing_treatment_np",
            "missing_treatment",
            3,
            2,
            False,
            None,
            False,
            (),
            0,
            None,
            within,
        ),
        (
            "la_absorbing_np_controls",
            "la_absorbing_x",
            3,
            2,
            False,
            None,
            False,
            ("x1",),
            0,
            None,
            regions,
        ),
        ("intensity_np_controls", "intensity_x", 3, 2, False, None, False, both, 0, None, within),
        (
            "intensity_np_w_controls_cluster",
            "intensity_x",
            3,
            2,
            False,
            "cluster",
            False,
            both,
            0,
            "w",
            within,
        ),
        ("continuous_1_np", "continuous_start_x", 3, 2, False, None, False, (), 1, None, within),
        (
            "switch_on_off_pause_controls_gap_normalized",
            "switch_on_off_pause_gap_x",
            6,
            1,
            True,
            None,
            False,
            both,
            0,
            None,
            {},
        ),
    ]
    # the authors' less_conservative_se: switchers' cohorts by their treatment paths
    lcs = {"less_conservative_se": True}
    lcs_np = {**lcs, **within}
    runs += [
        ("intensity_lcs", "intensity", 3, 2, False, None, False, (), 0, None, lcs),
        ("intensity_gaps_lcs", "intensity_gaps", 3, 2, False, None, False, (), 0, None, lcs),
        (
            "switch_on_off_pause_lcs",
            "switch_on_off_pause",
            3,
            2,
            False,
            None,
            False,
            (),
            0,
            None,
            lcs,
        ),
        ("la_absorbing_lcs", "la_absorbing", 3, 2, False, None, False, (), 0, None, lcs),
        ("missing_treatment_lcs", "missing_treatment", 3, 2, False, None, False, (), 0, None, lcs),
        ("intensity_lcs_cluster", "intensity", 3, 2, False, "cluster", False, (), 0, None, lcs),
        ("intensity_lcs_normalized", "intensity", 3, 2, True, None, False, (), 0, None, lcs),
        ("intensity_lcs_w", "intensity", 3, 2, False, None, False, (), 0, "w", lcs),
        ("intensity_lcs_trends", "intensity", 3, 2, False, None, True, (), 0, None, lcs),
        ("intensity_np_lcs", "intensity", 3, 2, False, None, False, (), 0, None, lcs_np),
        ("intensity_lcs_controls", "intensity_x", 3, 2, False, None, False, both, 0, None, lcs),
        ("continuous_1_lcs", "continuous_start_x", 3, 2, False, None, False, (), 1, None, lcs),
        ("continuous_1_twice", "continuous_twice", 3, 2, False, None, False, (), 1, None, {}),
        ("continuous_1_twice_lcs", "continuous_twice", 3, 2, False, None, False, (), 1, None, lcs),
        ("continuous_1_back", "continuous_back", 3, 2, False, None, False, (), 1, None, {}),
        ("continuous_1_back_lcs", "continuous_back", 3, 2, False, None, False, (), 1, None, lcs),
        (
            "continuous_1_back_lcs_trends",
            "continuous_back",
            3,
            2,
            False,
            None,
            True,
            (),
            1,
            None,
            lcs,
        ),
    ]
    values = []
    for (
        case,
        data,
        effects,
        placebo,
        normalized,
        cluster,
        trends,
        controls,
        degree,
        w,
        extra,
    ) in runs:
        frame = cases[data]
        if trends:
            # every unit-period as a row: the package's first difference takes the previous
            # row, which spans two periods where a row is missing
            grid = pd.MultiIndex.from_product(
                [sorted(frame["unit"].unique()), sorted(frame["period"].unique())],
                names=["unit", "period"],
            )
            frame = frame.set_index(["unit", "period"]).reindex(grid).reset_index()
        fit = DidMultiplegtDyn(
            pl.from_pandas(frame),
            "y",
            "unit",
            "period",
            "treatment",
            effects=effects,
            placebo=placebo,
            normalized=normalized,
            cluster=cluster,
            trends_lin=trends,
            controls=list(controls) or None,
            continuous=degree,
            weight=w,
            effects_equal=True,
            **extra,
        ).fit()
        res = fit.result["did_multiplegt_dyn"]
        for block in ("ATE", "Effects", "Placebos"):
            table = res[block]
            if table is None or table["Estimate"].isna().all():  # no ATE with trends_lin
                continue
            for name, row in table.iterrows():
                values.append(
                    {
                        "case": case,
                        "row": name,
                        "estimate": row["Estimate"],
                        "std_error": row["SE"],
                        "switchers": row["Switchers"],
                        "switchers_w": row["Switchers.w"],
                    }
                )
        # (no joint test with a single placebo)
        joint = res.get("p_jointplacebo", float("nan"))
        values.append({"case": case, "row": "p_jointplacebo", "estimate": joint})
        # the test that the effects are equal (one effect: none)
        equal = res.get("p_equality_effects", float("nan"))
        values.append({"case": case, "row": "p_equality_effects", "estimate": equal})
    pd.concat(frames).to_csv(HERE / "panels.csv", index=False)
    pd.DataFrame(values).to_csv(HERE / "values.csv", index=False, float_format="%.17g")


if __name__ == "__main__":
    main()
