"""Size and coverage of few-treated-cluster inference for TWFE DiD, on panels shaped like the
pilots (run on demand: python benchmarks/did_size.py --reps 250).

Panels: 150 LAs, 3/7/10 treated with staggered starts (three cohorts starting 4, 3 and 2
periods before the end), 10 or 13 periods; y = unit effect + period effect + AR(1) error
(ρ = 0.5, stationary, unit variance innovations), iid across LAs. Size: rejection rate of
H0: β = 0 at 5% with no effect. Coverage: share of 95% intervals containing τ = 0.3 on the
same draws with a constant effect τ added to treated cells (each method's interval inverts
a test that is invariant to this shift, so coverage should equal 1 − size: a check of the
inversion code as much as of the method). Monte Carlo SE = √(p(1 − p)/reps).
`--groups twfe cs sa_bjs` picks the estimators (a group's rows are the same whichever others
run, so the cheap groups can be run with more replications).

Methods: CR1 with t(G−1) (the current default above 20 treated); CR2 with Bell–McCaffrey /
Satterthwaite df (inference/cr2.py); wild cluster restricted bootstrap, Webb weights
(inference/wild_bootstrap.py); randomisation inference re-assigning start dates
(inference/randomisation_did.py); Conley–Taber (inference/conley_taber.py). Callaway &
Sant'Anna's simple ATT (never-treated comparisons) with did's influence-function SE and normal
reference, and with the cohort-stratified variance and Bell-McCaffrey df
(inference/cohort_stratified.py). Sun & Abraham's post-treatment average with CR1 and t(G−1)
and with its default below 20 treated (CR2 on the interaction regression, Satterthwaite df);
Borusyak-Jaravel-Spiess's overall ATT with the Theorem 3 variance (τ̄ by cohort × period) and
t(G−1), and with its default below 20 treated (leave-out, τ̄ over the row's cells,
Satterthwaite df).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import stats

from pathfinder_eval.estimators.did.group_time import aggregate, group_time_att, prepare_cohorts
from pathfinder_eval.estimators.did.group_time_inference import cohort_stratified
from pathfinder_eval.estimators.did.imputation import imputation
from pathfinder_eval.estimators.did.imputation import stratified_rows as imputation_stratified
from pathfinder_eval.estimators.did.sun_abraham import cr2_rows, stratified_rows, sun_abraham
from pathfinder_eval.inference.conley_taber import conley_taber
from pathfinder_eval.inference.cr2 import cr2_inference, two_way_projection
from pathfinder_eval.inference.randomisation_did import timing_randomisation
from pathfinder_eval.inference.wild_bootstrap import wild_cluster_bootstrap

TAU = 0.3


def simulate(rng, n_units, n_periods, n_treated, rho=0.5):
    units = np.repeat(np.arange(n_units), n_periods)
    periods = np.tile(np.arange(n_periods), n_units)
    start = np.full(n_units, np.inf)
    start[:n_treated] = [n_periods - 4 + (j % 3) for j in range(n_treated)]
    e = np.empty((n_units, n_periods))
    e[:, 0] = rng.normal(size=n_units) / np.sqrt(1 - rho**2)
    for t in range(1, n_periods):
        e[:, t] = rho * e[:, t - 1] + rng.normal(size=n_units)
    y = rng.normal(size=n_units)[units] + rng.normal(size=n_periods)[periods] + e.ravel()
    d = (periods >= start[units]).astype(float)
    return y, d, units, periods, start


def cr1(y, d, units, proj, level):
    """CR1 = G/(G−1)·(N−1)/(N−K), K counting the absorbed effects; t(G−1) reference."""
    yt, xt = proj.residuals(np.column_stack([y, d])).T
    beta = xt @ yt / (xt @ xt)
    scores = np.bincount(units, weights=xt * (yt - beta * xt))
    g, n = len(scores), len(y)
    k = 1 + g + proj.dt.shape[1] - 1
    se = np.sqrt(g / (g - 1) * (n - 1) / (n - k) * np.sum(scores**2)) / (xt @ xt)
    crit = stats.t.ppf(0.5 + level / 2, g - 1)
    p = 2 * stats.t.sf(abs(beta / se), g - 1)
    return p, beta - crit * se, beta + crit * se


def callaway_santanna(yy, start, n_units, n_periods, level):
    """The simple ATT of Callaway & Sant'Anna (never-treated comparisons): did's
    influence-function SE with a normal reference, and the cohort-stratified variance with
    Bell-McCaffrey df (inference/cohort_stratified.py, the default with < 20 treated)."""
    periods = np.arange(n_periods, dtype=float)
    y = yy.reshape(n_units, n_periods)
    gt = group_time_att(y, prepare_cohorts(start, periods)[0], periods)
    agg = aggregate(gt, "simple")
    strat = cohort_stratified(y, gt, agg.weights)
    if_se = float(np.sqrt(np.sum(agg.overall_influence**2))) / n_units
    out = []
    for se, df in ((if_se, np.inf), (strat.std_error[0], strat.df[0])):
        crit = stats.t.ppf(0.5 + level / 2, df)
        p = 2 * stats.t.sf(abs(agg.overall / se), df)
        out.append((p, agg.overall - crit * se, agg.overall + crit * se))
    return out


def t_test(est, se, df, level):
    """Two-sided p-value and interval with a t(df) reference."""
    crit = stats.t.ppf(0.5 + level / 2, df)
    return 2 * stats.t.sf(abs(est / se), df), est - crit * se, est + crit * se


def sun_abraham_bjs(yy, units, periods, start, level):
    """Sun & Abraham's and BJS's overall ATT, each with CR1-type inference and t(G−1) and with
    the estimator's default below 20 treated."""
    cohort = np.where(np.isfinite(start), start, np.nan)[units]
    sa = sun_abraham(yy, units, periods, cohort)
    strat = stratified_rows(sa)  # the default on balanced panels, else CR2
    if strat is not None:
        sa_default = t_test(sa.att, strat.std_error[0], strat.df[0], level)
    else:
        c2 = cr2_rows(sa, level)
        sa_default = (c2.p_value[0], c2.ci_lower[0], c2.ci_upper[0])
    bjs = imputation(yy, units, periods, cohort)
    small = imputation(yy, units, periods, cohort, leave_out=True, average_by="row")
    b_strat = imputation_stratified(small, yy, units, periods, cohort)
    if b_strat is not None:  # the default on balanced panels
        bjs_default = t_test(small.estimate[0], b_strat.std_error[0], b_strat.df[0], level)
    else:
        bjs_default = t_test(small.estimate[0], np.sqrt(small.vcov[0, 0]), small.df[0], level)
    g = sa.n_clusters - 1
    return {
        "SA CR1": t_test(sa.att, np.sqrt(sa.att_var), g, level),
        "SA default": sa_default,
        "BJS t(G-1)": t_test(bjs.estimate[0], np.sqrt(bjs.vcov[0, 0]), g, level),
        "BJS default": bjs_default,
    }


def twfe_methods(yy, d, units, periods, start, proj, draws, seed, level):
    """TWFE's coefficient with each few-cluster inference method."""
    c2 = cr2_inference(yy, d, units, periods, level=level, projection=proj)
    wb = wild_cluster_bootstrap(yy, d, units, periods, units, draws, "webb", level, seed)
    ri = timing_randomisation(yy, units, periods, start, draws, seed, level)
    ct = conley_taber(yy, d, units, periods, draws=draws, level=level, seed=seed)
    return {
        "CR1 t(G-1)": cr1(yy, d, units, proj, level),
        "CR2-BM": (c2.p_value[0], c2.ci_lower[0], c2.ci_upper[0]),
        "WCR bootstrap": (wb.p_value, wb.ci_lower, wb.ci_upper),
        "randomisation": (ri.p_value, ri.ci_lower, ri.ci_upper),
        "Conley-Taber": (ct.p_value, ct.ci_lower, ct.ci_upper),
    }


# --groups: which estimators to run (a group's rows do not depend on which others run)
GROUPS = {
    "twfe": ("CR1 t(G-1)", "CR2-BM", "WCR bootstrap", "randomisation", "Conley-Taber"),
    "cs": ("CS IF normal", "CS stratified"),
    "sa_bjs": ("SA CR1", "SA default", "BJS t(G-1)", "BJS default"),
}


def one_rep(rng, n_units, n_periods, n_treated, draws, groups, level=0.95):
    y, d, units, periods, start = simulate(rng, n_units, n_periods, n_treated)
    proj = two_way_projection(units, periods)
    seed = int(rng.integers(1 << 31))
    out = {}
    for label, yy in (("h0", y), ("tau", y + TAU * d)):
        res = {}
        if "twfe" in groups:
            res |= twfe_methods(yy, d, units, periods, start, proj, draws, seed, level)
        if "cs" in groups:
            res |= dict(
                zip(
                    GROUPS["cs"],
                    callaway_santanna(yy, start, n_units, n_periods, level),
                    strict=True,
                )
            )
        if "sa_bjs" in groups:
            res |= sun_abraham_bjs(yy, units, periods, start, level)
        out[label] = res
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=250)
    ap.add_argument("--draws", type=int, default=399)
    ap.add_argument("--seed", type=int, default=20240611)
    ap.add_argument("--units", type=int, default=150)
    ap.add_argument("--periods", type=int, nargs="+", default=[10, 13])
    ap.add_argument("--treated", type=int, nargs="+", default=[3, 7, 10])
    ap.add_argument("--groups", nargs="+", choices=list(GROUPS), default=list(GROUPS))
    args = ap.parse_args()
    methods = [m for g in args.groups for m in GROUPS[g]]
    rng = np.random.default_rng(args.seed)
    print(
        f"{args.units} LAs, AR(1) rho=0.5, {args.reps} replications per row, {args.draws} "
        f"draws (bootstrap, randomisation, Conley-Taber); size at 5%, coverage of 95% CI "
        f"for tau={TAU}; (MC SE)"
    )
    header = f"{'T':>3} {'treated':>7}  {'method':<14} {'size':>14} {'coverage':>14} {'width':>7}"
    print(header)
    print("-" * len(header))
    tic = time.perf_counter()
    for n_periods in args.periods:
        for n_treated in args.treated:
            reject = dict.fromkeys(methods, 0)
            cover = dict.fromkeys(methods, 0)
            width = {m: [] for m in methods}
            for _ in range(args.reps):
                res = one_rep(rng, args.units, n_periods, n_treated, args.draws, args.groups)
                for m in methods:
                    reject[m] += res["h0"][m][0] <= 0.05
                    _, lo, hi = res["tau"][m]
                    cover[m] += lo <= TAU <= hi
                    width[m].append(hi - lo)
            for m in methods:
                s, c = reject[m] / args.reps, cover[m] / args.reps
                se_s = np.sqrt(s * (1 - s) / args.reps)
                se_c = np.sqrt(c * (1 - c) / args.reps)
                w = np.nanmedian(width[m])
                print(
                    f"{n_periods:>3} {n_treated:>7}  {m:<14} {s:6.3f} ({se_s:.3f})  "
                    f"{c:6.3f} ({se_c:.3f}) {w:7.3f}"
                )
    print(f"elapsed {time.perf_counter() - tic:.0f} s")


if __name__ == "__main__":
    main()
