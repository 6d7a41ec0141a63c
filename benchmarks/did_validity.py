"""Size, coverage and width of the default inference of the DiD and synthetic DiD estimators
on English-LA-shaped panels with few treated LAs, LAs of very different sizes and shocks
shared within regions (run on demand: python benchmarks/did_validity.py; about two hours
on two cores with the default 1,000 replications per cell).

The process (written for this check, not tuned to any estimator): 150 LAs in 9 regions of
12–20 LAs; child populations log-uniform from 20,000 to 500,000 (25-fold). An LA's true rate
m_it = level_i + trend_t + shock_rt + noise_it (+ τ in treated cells): levels N(50, 12²)
per 10,000, a national trend, region × year shocks N(0, σ_r²), and LA noise AR(1) with
ρ = 0.5 and SD 3. Outcomes are observed through counts: with T = 8, a rate per 10,000 from
Poisson events in the child population; with T = 13, a percentage from binomial events out
of referrals (5% of the population a year). So a small LA's rate is much noisier.
Regional shocks: none; "real" (σ_r such that the within-region residual correlation is about
0.03, as on the DfE panels); "strong" (about 0.2, a regional event). Treated: 2, 3, 7 or 10
LAs chosen with probability proportional to population, half starting 3 and half 2 periods
before the end, either in different regions ("across") or all in one region ("within").

Size: rejection rate of H0: τ = 0 at 5% when τ = 0. Coverage: share of 95% intervals
containing τ when τ = 4 per 10,000 (or 1.5 percentage points). Width ratio: mean interval
width over the oracle 2 × 1.96 × SD of the estimate across replications (1 is as narrow as
a valid interval can be). Targets (issue 16): size ≤ 5.5% and coverage within 94–96%, each
give or take 1.96 Monte Carlo SEs (1.35 points with 1,000 replications), and width
ratio ≤ 1.25; cells outside them are listed at the end.

Estimators, each with the toolkit's default inference (inference/policy.py decides, on the
same geography facts the estimators compute): TWFE; the event study's first post-period
coefficient (leads binned at −3, lags at 2); Callaway & Sant'Anna's simple ATT (never-treated
comparisons); Sun & Abraham's post-treatment average; the Borusyak-Jaravel-Spiess imputation
ATT; two-stage DiD (the same estimate, so its default column repeats BJS's; its "before"
column is did2s's GMM variance); Wooldridge's extended TWFE's simple ATT (linear,
not-yet-treated controls, unit effects: the same estimate again, its "before" column CR2 on
its saturated cells); stacked DiD's mean of the post-start event times (Wing, Freedman &
Hollingsworth's weights, the longest window both cohorts fit, not-yet-treated clean
controls; "before" column the cohort-stratified variance); synthetic DiD (one estimate per
cohort, averaged by treated cells). For the DiD estimators the table beside it shows the
default before issue 16 (CR2, cohort-stratified, Bell-McCaffrey; CR2 for ETWFE, GMM for
two-stage) for comparison.
Triple difference ("ddd (cs)"): each replicate also draws the same LAs' untargeted group (no
effect; its own level, the same trend and regional shocks, LA noise correlated 0.6 with the
targeted group's, 0.5–1.5 times its population) from a separate stream, and Callaway &
Sant'Anna's simple ATT runs on the targeted-minus-untargeted contrast with its default
inference, as a design's `contrasts` do; its "before" column is the cohort-stratified
variance. Dose ("dose att", "dose acrt"): each treated LA draws a dose from U(0.5, 2) and
Callaway, Goodman-Bacon & Sant'Anna's straight-line dose curve runs; with k = 2 (one LA per
start date) no line can be fitted, the estimator refuses, and the cell reads "not estimable"
with the reason listed at the end. The numbers are the estimators' own: the benchmark calls
the functions the estimator classes call, without building a panel per replicate.
With `--transition` every treated LA starts during the period before its first treated one
(its rate there carries half the effect, unseen) and the design leaves that period out
(`partial_period_rule: transition`): its outcome is missing, Callaway & Sant'Anna compares
the LA from two periods before its first treated one, the event study and Sun & Abraham take
event time −2 as the reference, and the regression estimators fit the rows left. Only the
estimators that accept such a design run (stacked, dCDH and synthetic DiD refuse it; the
dose, triple-difference and Poisson ETWFE columns are not simulated with it; naming one of
them is an error).
Only when named (`--estimators dcdh_bootstrap`): de Chaisemartin & D'Haultfœuille's average
total effect with their cluster bootstrap (inference.method: cluster_bootstrap; 199 draws of
LAs), a method a design asks for by name, not a default: its columns are the bootstrap's.
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

# one process per core already: BLAS threads on top oversubscribe the cores (about 2× slower)
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
from scipy import stats

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.estimators.did.continuous import continuous_did
from pathfinder_eval.estimators.did.etwfe import etwfe, etwfe_effects
from pathfinder_eval.estimators.did.etwfe import outcome_weights as etwfe_weights
from pathfinder_eval.estimators.did.group_time import aggregate, group_time_att, prepare_cohorts
from pathfinder_eval.estimators.did.group_time_inference import (
    cohort_stratified,
    stratum_weights,
    unit_strata,
)
from pathfinder_eval.estimators.did.imputation import imputation
from pathfinder_eval.estimators.did.imputation import stratified_rows as bjs_stratified
from pathfinder_eval.estimators.did.multiplegt_bootstrap import draw_fits
from pathfinder_eval.estimators.did.multiplegt_dyn import multiplegt_dyn
from pathfinder_eval.estimators.did.stacked import stacked_did
from pathfinder_eval.estimators.did.sun_abraham import (
    cr2_rows,
    outcome_weights,
    stratified_rows,
    sun_abraham,
)
from pathfinder_eval.estimators.did.two_stage import two_stage
from pathfinder_eval.estimators.did.two_way import absorb_two_way
from pathfinder_eval.estimators.synthetic.core import synthdid
from pathfinder_eval.estimators.synthetic.first_order import variance_weights
from pathfinder_eval.inference.cohort_stratified import stratified_cells
from pathfinder_eval.inference.cr2 import cr2_inference
from pathfinder_eval.inference.panel_variance import NoiseModel, noise_model, panel_variance
from pathfinder_eval.inference.policy import Geography, did_default, synthetic_did_default
from pathfinder_eval.results import RegionalDependence

REGION_SIZES = (12, 15, 17, 18, 19, 20, 16, 14, 19)
SHOCK_SD = {"none": 0.0, "real": 0.62, "strong": 1.8}  # per 10,000 (×0.3 for percent)
TAU = {8: 4.0, 13: 1.5}
NULL_ONLY = frozenset({"etwfe_poisson"})  # no truth under the additive effect: null replicates
LEVEL = 0.95
DID = (
    "twfe",
    "event_study",
    "callaway_santanna",
    "sun_abraham",
    "imputation",
    "two_stage",
    "etwfe",
    "stacked",
    "did_multiplegt_dyn",
    "dcdh_region",
    "continuous_did",
    "continuous_acrt",
    "etwfe_poisson",
)
ALL = (*DID, "synthetic_did", "ddd")
# Run only when named (--estimators dcdh_bootstrap): did_multiplegt_dyn's cluster bootstrap,
# BOOT_DRAWS refits per replicate, is a non-default method and about 40 times slower
OPT_IN = ("dcdh_bootstrap",)
BOOT_DRAWS = 199
SHORT = {
    "twfe": "twfe",
    "event_study": "es e=0",
    "callaway_santanna": "cs",
    "sun_abraham": "sa",
    "imputation": "bjs",
    "two_stage": "2-stage",
    "etwfe": "etwfe",
    "stacked": "stacked",
    "did_multiplegt_dyn": "dcdh",
    "dcdh_region": "dcdh in region",
    "dcdh_bootstrap": "dcdh bootstrap",
    "continuous_did": "dose att",
    "continuous_acrt": "dose acrt (τ=0)",
    "etwfe_poisson": "etwfe poisson (τ=0)",
    "synthetic_did": "sdid",
    "ddd": "ddd (cs)",
}


# under --transition: the estimators that run when the design leaves out each treated LA's
# partly exposed period (stacked, dCDH and synthetic DiD refuse a design where every treated
# LA's is; the dose, triple-difference and Poisson ETWFE columns are not simulated with it)
TRANSITION = ("twfe", "event_study", "callaway_santanna", "sun_abraham", "imputation")
TRANSITION += ("two_stage", "etwfe")


@dataclass(frozen=True)
class Cell:
    treated: int
    geography: str
    shock: str
    periods: int
    transition: bool = False


def simulate(rng: np.random.Generator, cell: Cell, tau: float, parts: dict | None = None):
    """One panel: y (n, T), start (n,) first treated period index (inf never), region (n,),
    size (n,) the outcome's denominator. `parts` (when given) receives the LA levels, trend,
    regional shocks, LA noise, scale and size, for the untargeted group of a triple
    difference."""
    n, T = sum(REGION_SIZES), cell.periods
    region = np.repeat(np.arange(len(REGION_SIZES)), REGION_SIZES)
    pop = np.exp(rng.uniform(np.log(20_000), np.log(500_000), n))
    percent = T == 13
    scale = 0.3 if percent else 1.0
    level = (22.0 + 4.0 * rng.normal(size=n)) if percent else (50.0 + 12.0 * rng.normal(size=n))
    trend = np.cumsum(rng.normal(0.3, 1.0, T)) * scale
    shock = rng.normal(0.0, SHOCK_SD[cell.shock] * scale, (len(REGION_SIZES), T))[region]
    noise = np.empty((n, T))
    noise[:, 0] = rng.normal(size=n) / np.sqrt(1 - 0.25)
    for t in range(1, T):
        noise[:, t] = 0.5 * noise[:, t - 1] + rng.normal(size=n)
    rate = level[:, None] + trend[None, :] + shock + 3.0 * scale * noise
    start = np.full(n, np.inf)
    treated = _choose(rng, cell, region, pop)
    start[treated[: (cell.treated + 1) // 2]] = T - 3
    start[treated[(cell.treated + 1) // 2 :]] = T - 2
    d = np.arange(T)[None, :] >= start[:, None]
    # a start during period g − 1 (--transition): that period is partly exposed (its rate
    # carries half the effect) and the design leaves it out, so its outcome is missing, as
    # in the panel: no estimator sees it
    partly = cell.transition & (np.arange(T)[None, :] == start[:, None] - 1)
    rate = np.clip(rate + tau * d + 0.5 * tau * partly, 0.5, None)
    if percent:
        size = np.round(0.05 * pop)
        events = rng.binomial(size.astype(int)[:, None], np.clip(rate / 100, 0, 1))
        y = events / size[:, None] * 100
    else:
        size = pop
        y = rng.poisson(rate * pop[:, None] / 10_000) / pop[:, None] * 10_000
    y[partly] = np.nan
    if parts is not None:
        parts.update(level=level, trend=trend, shock=shock, noise=noise, scale=scale, size=size)
    return y, start, region, size


def _choose(rng, cell: Cell, region, pop) -> np.ndarray:
    """Treated LAs, chosen with probability ∝ population, across regions or within one."""
    if cell.geography == "within":
        r = rng.integers(len(REGION_SIZES))
        pool = np.flatnonzero(region == r)
        return rng.choice(pool, cell.treated, replace=False, p=pop[pool] / pop[pool].sum())
    regions = rng.choice(len(REGION_SIZES), cell.treated, replace=cell.treated > 9)
    out = []
    for r in regions:
        pool = np.setdiff1d(np.flatnonzero(region == r), out)
        out.append(rng.choice(pool, p=pop[pool] / pop[pool].sum()))
    return np.array(out)


def _row(est: float, se: float, df: float, tau: float) -> tuple[float, float, float]:
    """(reject at 5%, covers τ, width) of a t interval."""
    crit = stats.t.ppf(0.5 + LEVEL / 2, df) if np.isfinite(df) else stats.norm.ppf(0.975)
    lo, hi = est - crit * se, est + crit * se
    return float(abs(est) / se > crit), float(lo <= tau <= hi), float(hi - lo)


class Panel:
    """One replicate with what the policy and the pooled variance read from it."""

    def __init__(self, y, start, region, size, dose=None):
        self.y, self.start, self.region, self.size, self.dose = y, start, region, size, dose
        n, T = y.shape
        # the observed cells, as long rows (the periods a design leaves out are not rows)
        self.observed = np.isfinite(y).ravel()
        self.units = np.repeat(np.arange(n), T)[self.observed]
        self.periods = np.tile(np.arange(T), n)[self.observed]
        self.comparison = ~np.isfinite(start)
        self.model: NoiseModel = noise_model(y, self.comparison, region, size)
        counts = np.bincount(region[~self.comparison])
        self.dependence = RegionalDependence(
            rho=self.model.rho,
            rho_se=self.model.rho_se,
            change_rho=self.model.change_rho,
            change_rho_se=self.model.change_rho_se,
            n_regions=self.model.n_regions,
            n_comparison=self.model.n_comparison,
            treated_regions=tuple(
                (f"R{r}", int(counts[r])) for r in np.argsort(-counts, kind="stable") if counts[r]
            ),
        )

    def pooled(self, cell_weights: np.ndarray) -> tuple[float, float, float]:
        """(se, df, regional share) of the estimate with weights on the long cells."""
        n, T = self.y.shape
        w = np.zeros((1, n, T))
        w[0, self.units, self.periods] = cell_weights
        pv = panel_variance(w, self.model, self.region, self.size)
        return float(pv.std_error[0]), float(pv.df[0]), float(pv.regional_share[0])

    def pooled_units(self, unit_weights: np.ndarray) -> tuple[float, float, float]:
        pv = panel_variance(unit_weights[None], self.model, self.region, self.size)
        return float(pv.std_error[0]), float(pv.df[0]), float(pv.regional_share[0])

    def geography(self, share: float) -> Geography:
        return Geography(self.dependence, True, share)


def fit_all(p: Panel, tau: float, want: frozenset[str] = frozenset(ALL)) -> dict[str, tuple]:
    """Per estimator in `want`: (estimate, default's (reject, cover, width), old default's or
    None, the default was the pooled variance)."""
    if not p.observed.all() and not want <= set(TRANSITION):
        raise ValueError(f"with periods left out only {', '.join(TRANSITION)} run")
    need = want | ({"imputation"} if want & {"two_stage", "etwfe"} else set())
    y, start = p.y, p.start
    T = y.shape[1]
    units, periods = p.units, p.periods
    yy = y.ravel()[p.observed]
    rows = len(yy)
    k = int((~p.comparison).sum())
    d = (periods >= start[units]).astype(float)
    out = {}

    def record(name, est, old, pooled, truth=tau, policy=None, within=None):
        se, df, share = pooled
        choice = did_default(policy or name, "default", k, True, p.geography(share), within)
        use = (se, df) if choice.method == "pooled" else old
        out[name] = (est, _row(est, *use, truth), _row(est, *old, truth), choice.method == "pooled")

    cohort = np.where(np.isfinite(start), start, np.nan).astype(float)
    if "twfe" in need:
        xt = absorb_two_way(d[:, None], units, periods)[:, 0]
        w = xt / (xt @ xt)
        c2 = cr2_inference(yy, d[:, None], units, periods, level=LEVEL)
        record("twfe", float(w @ yy), (c2.std_error[0], c2.df[0]), p.pooled(w))
    left_out = not p.observed.all()  # every treated LA's event time −1
    if "event_study" in need:
        # first post-period coefficient, leads binned at −3, lags at 2, ref −1 (−2 when the
        # design leaves out −1, as the estimator moves it)
        rel = np.clip(periods - start[units], -3, 2)
        events = [-3, 0, 1, 2] if left_out else [-3, -2, 0, 1, 2]
        x = np.column_stack([(rel == e) & np.isfinite(start[units]) for e in events])
        x = x.astype(float)
        xt = absorb_two_way(x, units, periods)
        we = np.linalg.solve(xt.T @ xt, xt.T)[events.index(0)]
        c2 = cr2_inference(yy, x, units, periods, level=LEVEL)
        j = events.index(0)
        record("event_study", float(we @ yy), (c2.std_error[j], c2.df[j]), p.pooled(we))
    if "callaway_santanna" in need:  # simple ATT, never-treated comparisons
        record("callaway_santanna", *_callaway_santanna(p))
    if "sun_abraham" in need:  # post-treatment average
        ref = -2 if left_out else -1
        res = sun_abraham(yy, units, periods, cohort[units], "never_treated", False, ref)
        st = stratified_rows(res)
        if st is None:
            c2 = cr2_rows(res, LEVEL)
            old = (c2.std_error[0], c2.df[0])
        else:
            old = (st.std_error[0], st.df[0])
        ws = np.zeros(rows)
        ws[res.rows] = outcome_weights(res)[0]
        record("sun_abraham", float(res.att), old, p.pooled(ws))
    if "did_multiplegt_dyn" in need:
        # de Chaisemartin & D'Haultfœuille: the average total effect of 3 effects (the
        # default); "before" column the cohort-stratified variance (its small-sample method)
        dc = multiplegt_dyn(yy, units, periods, d, effects=3, placebo=0)
        st = stratified_cells(dc.weights[:1], yy, units, periods, cohort)
        old = (st.std_error[0], st.df[0]) if st else (np.sqrt(dc.vcov[0, 0]), np.inf)
        record("did_multiplegt_dyn", float(dc.estimate[0]), old, p.pooled(dc.weights[0]))
    if "dcdh_region" in need:
        # the same, each LA compared only with LAs of its region (trends_nonparam: region),
        # which takes the region × period shocks out of every comparison
        dr = multiplegt_dyn(yy, units, periods, d, effects=3, placebo=0, strata=p.region[units])
        st = stratified_cells(dr.weights[:1], yy, units, periods, cohort)
        old = (st.std_error[0], st.df[0]) if st else (np.sqrt(dr.vcov[0, 0]), np.inf)
        pooled = p.pooled(dr.weights[0])
        est = float(dr.estimate[0])
        record("dcdh_region", est, old, pooled, policy="did_multiplegt_dyn", within="region")
    if "dcdh_bootstrap" in need:
        # the same estimate with did_multiplegt_dyn's cluster bootstrap (LAs redrawn
        # BOOT_DRAWS times, seeded by the replicate's data), normal reference, in both columns
        dc = multiplegt_dyn(yy, units, periods, d, effects=3, placebo=0)

        def refit(times: np.ndarray) -> tuple[tuple[str, ...], np.ndarray]:
            kept = times > 0
            b = multiplegt_dyn(
                yy[kept], units[kept], periods[kept], d[kept], 3, 0, weights=times[kept] * 1.0
            )
            return b.labels, b.estimate

        seed = int(np.float64(yy.sum()).view(np.uint64) % 2**32)
        boot = draw_fits(refit, units, dc.labels[:1], BOOT_DRAWS, seed)
        row = _row(float(dc.estimate[0]), float(np.sqrt(boot.vcov[0, 0])), np.inf, tau)
        out["dcdh_bootstrap"] = (float(dc.estimate[0]), row, row, False)
    if need & {"continuous_did", "continuous_acrt"} and p.dose is not None:
        # Callaway, Goodman-Bacon & Sant'Anna with a straight-line dose curve (the default):
        # ATT^o (truth τ) and ACRT^o (truth 0: the effect does not depend on the dose);
        # "before" column contdid's influence-function variance, normal reference
        try:
            cd = continuous_did(y, start, p.dose, np.array([1.0]), 1, 0)
        except EstimationError as err:  # the estimator refuses this design: say why
            out["continuous_did"] = out["continuous_acrt"] = err.what
            cd = None
        for j, name, truth in ((0, "continuous_did", tau), (1, "continuous_acrt", 0.0)):
            if cd is None:
                continue
            old = (np.sqrt(cd.vcov[j, j]), np.inf)
            pooled = p.pooled_units(cd.weights[j])
            record(name, float(cd.estimate[j]), old, pooled, truth, "continuous_did")
    if "etwfe_poisson" in need:
        # extended TWFE, Poisson on the counts with offset log(denominator), unit effects:
        # the simple log rate ratio; "before" column CR1 by LA with t(G−1). The process adds τ
        # to the rates, which has no single rate ratio, so only the null replicates are read
        per = p.size / (100.0 if T == 13 else 10_000.0)  # counts per unit of the rate
        counts = np.round(y * per[:, None]).ravel()
        args = (units, periods, cohort[units])
        fit = etwfe(counts, *args, family="poisson", offset=np.log(per[units]), unit_effects=True)
        eff = etwfe_effects(fit, "simple", scale="link")
        cr1 = (float(np.sqrt(eff.vcov[0, 0])), float(fit.n_clusters - 1))
        wp = etwfe_weights(fit, eff.gradient)[0] * per[units]
        record("etwfe_poisson", float(eff.estimate[0]), cr1, p.pooled(wp), 0.0)
    if "imputation" in need:  # Borusyak, Jaravel & Spiess, overall ATT
        args = (yy, units, periods, cohort[units])
        bjs = imputation(*args, leave_out=True, average_by="row")
        st = bjs_stratified(bjs, *args)
        old = (
            (st.std_error[0], st.df[0]) if st is not None else (np.sqrt(bjs.vcov[0, 0]), bjs.df[0])
        )
        wb = np.zeros(rows)
        wb[bjs.treated_rows] = bjs.weights[0]
        wb[bjs.untreated_rows] = bjs.v_untreated[0]
        record("imputation", float(bjs.estimate[0]), old, p.pooled(wb))
    if need & {"two_stage", "etwfe"}:
        _two_stage_and_etwfe(p, tau, out)
    if "stacked" in need:
        # Wing et al. (2024), default window (every cohort fits), not-yet-treated clean
        # controls: the mean of the post-start event times; "before" the cohort-stratified
        # variance (its small-sample default; the authors' CR1 is in the README's note)
        sk = stacked_did(yy, units, periods, cohort[units])
        wst = sk.outcome_weights()
        st = stratified_cells(wst[:1], yy, units, periods, cohort)
        old = (st.std_error[0], st.df[0]) if st else (np.sqrt(sk.vcov[0, 0]), sk.n_clusters - 1.0)
        record("stacked", float(sk.estimate[0]), old, p.pooled(wst[0]))
    if "synthetic_did" in need:
        out["synthetic_did"] = _synthetic_did(p, tau)
    return {k: v for k, v in out.items() if k in want}


def _two_stage_and_etwfe(p: Panel, tau: float, out: dict) -> None:
    """Two-stage DiD and ETWFE: BJS's estimate, so their default columns repeat BJS's."""
    y, start = p.y, p.start
    units, periods = p.units, p.periods
    yy = y.ravel()[p.observed]
    cohort = np.where(np.isfinite(start), start, np.nan).astype(float)
    # two-stage DiD: BJS's estimates and weights; its default falls back to BJS's small-sample
    # variance, so the default column repeats BJS's and the "before" column is did2s's GMM
    ts = two_stage(yy, units, periods, cohort[units])
    gmm = (float(np.sqrt(ts.vcov[0, 0])), float(ts.n_clusters - 1))
    bjs_default = out["imputation"][1]
    out["two_stage"] = (
        float(ts.estimate[0]),
        bjs_default,
        _row(ts.estimate[0], *gmm, tau),
        out["imputation"][3],
    )
    # extended TWFE (linear, not-yet-treated controls, unit effects), its simple ATT: BJS's
    # estimate and weights, and below 20 treated BJS's small-sample variance, so its default
    # column repeats BJS's; the "before" column is CR2 on its saturated cells
    fit = etwfe(yy, units, periods, cohort[units], unit_effects=True)
    eff = etwfe_effects(fit, "simple")
    c2 = cr2_inference(yy, fit.slopes, units, periods, contrasts=eff.gradient, level=LEVEL)
    est_et = float(eff.estimate[0])
    cr2_row = _row(est_et, c2.std_error[0], c2.df[0], tau)
    out["etwfe"] = (est_et, out["imputation"][1], cr2_row, out["imputation"][3])


def _synthetic_did(p: Panel, tau: float) -> tuple:
    """Synthetic DiD per cohort against never-treated donors, averaged by treated cells."""
    y, start = p.y, p.start
    n, T = y.shape
    donors = np.flatnonzero(p.comparison)
    wsd = np.zeros((n, T))
    est, total = 0.0, 0
    for g in np.unique(start[np.isfinite(start)]):
        treated = np.flatnonzero(start == g)
        t0, n1 = int(g), len(treated)
        block = np.vstack([y[donors], y[treated]])
        fit = synthdid(block, len(donors), t0)
        cells = n1 * (T - t0)
        grad = variance_weights(block, len(donors), t0, fit)[0]  # as the estimator does
        wsd[donors] += cells * grad[: len(donors)]
        wsd[treated] += cells * grad[len(donors) :]
        est, total = est + cells * fit.estimate, total + cells
    se, df, share = p.pooled_units(wsd / total)
    choice = synthetic_did_default("default", p.geography(share))
    assert choice.method == "pooled"
    return (est / total, _row(est / total, se, df, tau), None, True)


def _callaway_santanna(p: Panel) -> tuple[float, tuple[float, float], tuple[float, ...]]:
    """CS simple ATT (never-treated comparisons): the estimate, its cohort-stratified (se, df)
    and its pooled (se, df, regional share)."""
    n, T = p.y.shape
    cohort = np.where(np.isfinite(p.start), p.start, np.nan).astype(float)
    # a treated LA whose period g − 1 the design leaves out is compared from g − 2
    lead = np.zeros(n, dtype=int)
    treated = np.flatnonzero(np.isfinite(p.start))
    lead[treated] = ~np.isfinite(p.y[treated, p.start[treated].astype(int) - 1])
    coh, keep = prepare_cohorts(cohort, np.arange(T, dtype=float), lead)
    gt = group_time_att(p.y[keep], coh[keep], np.arange(T, dtype=float), anticipation=lead[keep])
    simple = aggregate(gt, "simple")
    strat = cohort_stratified(p.y[keep], gt, simple.overall_weights[None, :])
    a = stratum_weights(gt, simple.overall_weights[None, :])[0]
    wcs = np.zeros((n, T))
    wcs[np.flatnonzero(keep)] = a[unit_strata(gt)]
    return float(simple.overall), (strat.std_error[0], strat.df[0]), p.pooled_units(wcs)


def untargeted(rng: np.random.Generator, parts: dict, cell: Cell) -> tuple[np.ndarray, ...]:
    """The same LAs' untargeted group (no effect), for the triple difference: its own level
    (5 lower on average), the national trend and regional shocks of the targeted group, LA noise
    correlated 0.6 with the targeted group's, and 0.5–1.5 times its population. Returns y0 and
    the contrast's effective size 1/(1/d₁ + 1/d₀)."""
    level, trend, shock, noise = (parts[k] for k in ("level", "trend", "shock", "noise"))
    n, T = noise.shape
    scale = parts["scale"]
    own = np.empty((n, T))
    own[:, 0] = rng.normal(size=n) / np.sqrt(1 - 0.25)
    for t in range(1, T):
        own[:, t] = 0.5 * own[:, t - 1] + rng.normal(size=n)
    level0 = level - 5.0 * scale + 3.0 * scale * rng.normal(size=n)
    rate = level0[:, None] + trend + shock + 3.0 * scale * (0.6 * noise + 0.8 * own)
    rate = np.clip(rate, 0.5, None)
    size0 = parts["size"] * rng.uniform(0.5, 1.5, n)
    if cell.periods == 13:
        size0 = np.round(size0)
        y0 = rng.binomial(size0.astype(int)[:, None], np.clip(rate / 100, 0, 1)) / size0[:, None]
        y0 = y0 * 100
    else:
        y0 = rng.poisson(rate * size0[:, None] / 10_000) / size0[:, None] * 10_000
    return y0, 1.0 / (1.0 / parts["size"] + 1.0 / size0)


def fit_ddd(p: Panel, tau: float) -> tuple:
    """CS's simple ATT on the targeted-minus-untargeted contrast, default inference."""
    est, old, pooled = _callaway_santanna(p)
    se, df, share = pooled
    k = int((~p.comparison).sum())
    choice = did_default("callaway_santanna", "default", k, True, p.geography(share))
    use = (se, df) if choice.method == "pooled" else old
    return (est, _row(est, *use, tau), _row(est, *old, tau), choice.method == "pooled")


def run_cell(job: tuple[Cell, int, int, tuple[str, ...]]) -> tuple[Cell, dict]:
    cell, reps, seed, names = job
    rng = np.random.default_rng(seed)
    tau = TAU[cell.periods]
    want = frozenset(names)
    null = {k: [] for k in names}
    alt = {k: [] for k in names}
    refused: dict[str, str] = {}  # estimator → why it refused a replicate
    for rep in range(reps):
        for effect, store in ((0.0, null), (tau, alt)):
            parts: dict = {}
            y, start, region, size = simulate(rng, cell, effect, parts)
            dose = None
            if want & {"continuous_did", "continuous_acrt"}:
                # doses from their own stream (the others keep theirs)
                rng_dose = np.random.default_rng([seed, rep, effect > 0, 1])
                dose = np.where(np.isfinite(start), rng_dose.uniform(0.5, 2.0, len(start)), 0.0)
            for k, v in fit_all(Panel(y, start, region, size, dose), effect, want).items():
                if isinstance(v, str):
                    refused[k] = v
                else:
                    store[k].append(v)
            if "ddd" in want:
                # the triple difference draws from its own stream, so the others keep theirs
                rng_ddd = np.random.default_rng([seed, rep, effect > 0])
                y0, size_ddd = untargeted(rng_ddd, parts, cell)
                store["ddd"].append(fit_ddd(Panel(y - y0, start, region, size_ddd), effect))
    summary: dict = {(k, "refused"): why for k, why in refused.items()}
    for k in names:
        if not alt[k] or k in refused:  # a cell an estimator refuses is not estimable
            continue
        # estimators without a truth under the additive effect: coverage and width of τ = 0
        shown = null[k] if k in NULL_ONLY else alt[k]
        est1 = np.array([v[0] for v in shown])
        oracle = 2 * 1.96 * est1.std(ddof=1)
        for j, name in ((1, "default"), (2, "old")):
            if null[k][0][j] is None:
                continue
            size = np.mean([v[j][0] for v in null[k]])
            cover = np.mean([v[j][1] for v in shown])
            width = np.mean([v[j][2] for v in shown]) / oracle
            summary[(k, name)] = (size, cover, width)
        summary[(k, "pooled share")] = np.mean([v[3] for v in null[k] + alt[k]])
    return cell, summary


def misses(size: float, cover: float, width: float, reps: int) -> list[str]:
    """The targets a cell misses (Monte Carlo error allowed on size and coverage)."""
    mc = 1.96 * np.sqrt(0.05 * 0.95 / reps)
    out = []
    if size > 0.055 + mc:
        out.append(f"size {100 * size:.1f}%")
    if not 0.94 - mc <= cover <= 0.96 + mc:
        out.append(f"coverage {100 * cover:.1f}%")
    if width > 1.25:
        out.append(f"width {width:.2f}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--treated", type=int, nargs="*", default=[2, 3, 7, 10])
    parser.add_argument("--geography", nargs="*", default=["across", "within"])
    parser.add_argument("--shock", nargs="*", default=["none", "real", "strong"])
    parser.add_argument("--periods", type=int, nargs="*", default=[8, 13])
    parser.add_argument("--seed", type=int, default=20261202)
    parser.add_argument(
        "--estimators",
        nargs="*",
        default=list(ALL),
        choices=ALL + OPT_IN,
        help="a subset to run (dcdh_bootstrap only when named)",
    )
    parser.add_argument(
        "--transition",
        action="store_true",
        help="starts during the period before the first treated one, which the design leaves "
        "out (partial_period_rule: transition); runs the estimators that accept it",
    )
    args = parser.parse_args()
    names = tuple(k for k in ALL + OPT_IN if k in args.estimators)
    if args.transition:
        named = args.estimators != list(ALL)  # the default runs those of ALL that accept it
        if named and not set(args.estimators) <= set(TRANSITION):
            parser.error(f"--transition runs only {', '.join(TRANSITION)}")
        names = tuple(k for k in names if k in TRANSITION)
    did = tuple(k for k in DID if k in names)
    cells = [
        Cell(k, g, s, t, args.transition)
        for t, s, g, k in itertools.product(args.periods, args.shock, args.geography, args.treated)
    ]
    seeds = np.random.SeedSequence(args.seed).spawn(len(cells))
    jobs = [
        (c, args.reps, int(s.generate_state(1)[0]), names)
        for c, s in zip(cells, seeds, strict=True)
    ]
    t0 = time.perf_counter()
    head = f"{'T':>3} {'shock':>7} {'geo':>7} {'k':>3}"
    print(f"{args.reps} replications per cell; size % / coverage % / width ÷ oracle")
    if args.transition:
        print(
            "Transition rule: each treated LA starts during the period before its first treated "
            "one, and that period is left out"
        )
    print("\nDefault inference (pooled: share of replicates where the default chose it)")
    print(head + "".join(f"{SHORT[k]:>24}" for k in names))
    results = []
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for cell, s in pool.map(run_cell, jobs):
            results.append((cell, s))
            cols = "".join(
                _triple(s[(k, "default")], s[(k, "pooled share")])
                if (k, "default") in s
                else "not estimable".rjust(24)
                if (k, "refused") in s
                else " " * 24
                for k in names
            )
            print(f"{_label(cell)}{cols}", flush=True)
    print("\nThe defaults before issue 16 (CR2 / cohort-stratified / Bell-McCaffrey)")
    print(head + "".join(f"{SHORT[k]:>24}" for k in did))
    for cell, s in results:
        print(
            _label(cell)
            + "".join(_triple(s[(k, "old")]) if (k, "old") in s else " " * 24 for k in did)
        )
    print("\nCells outside the targets (default inference):")
    bad = [
        f"  {_label(cell).strip()}  {SHORT[k]}: {', '.join(m)}"
        for cell, s in results
        for k in names
        if (k, "default") in s and (m := misses(*s[(k, "default")], args.reps))
    ]
    print("\n".join(bad) if bad else "  none")
    why = [
        f"  {_label(cell).strip()}  {SHORT[k]}: {s[(k, 'refused')]}"
        for cell, s in results
        for k in names
        if (k, "refused") in s
    ]
    if why:
        print("\nNot estimable (the estimator refuses the design, with its reason):")
        print("\n".join(why))
    print(f"{time.perf_counter() - t0:.0f} s")


def _label(cell: Cell) -> str:
    return f"{cell.periods:>3} {cell.shock:>7} {cell.geography:>7} {cell.treated:>3}"


def _triple(v: tuple[float, float, float], pooled: float | None = None) -> str:
    size, cover, width = v
    tail = f" {100 * pooled:3.0f}" if pooled is not None else "    "
    return f"{100 * size:5.1f} {100 * cover:5.1f} {width:5.2f}{tail}".rjust(24)


if __name__ == "__main__":
    main()
