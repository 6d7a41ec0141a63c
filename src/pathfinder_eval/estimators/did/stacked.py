"""Stacked difference-in-differences with corrective weights (Wing, Freedman & Hollingsworth
2024, NBER Working Paper 32054; the authors' R and Stata code, github.com/hollina/
stacked-did-weights).

One sub-experiment per adoption cohort a: the cohort's units plus clean controls (units first
treated after a + κ_post, or never treated), observed at event times e = t − a in
[−κ_pre, κ_post]. Cohorts whose window does not fit in the data, or that have no clean
control, are trimmed (inclusion criteria IC1 and IC2). The sub-experiments are stacked and the
event-study regression

    Y = α₀ + α₁D + Σ_{e≠−1} (λ_e 1[e] + δ_e D·1[e]) + u

is fitted with weights Q: 1 for treated rows and, for control rows of sub-experiment a at
event time e, (N^D_{a,e}/N^D_e) / (N^C_{a,e}/N^C_e), the sub-experiment's share of the stack's
treated rows over its share of control rows (the reference code's `compute_weights`, row
counts per event time). Then δ_e is the trimmed aggregate ATT at event time e: the
treated-share weighted average over cohorts of each cohort's 2×2 contrast of e against −1.
The regression is saturated in the 2 × (κ_pre + κ_post + 1) cells (D, e), so its fit is the
Q-weighted cell means and every coefficient a fixed combination of them. The overall ATT is
the mean of δ_0 … δ_κpost, as in the authors' tutorial.

Standard errors clustered by unit (a unit stacked in several sub-experiments is one cluster),
CR1 with G/(G−1)·(n−1)/(n−p), p = 2 + 2(κ_pre + κ_post) (none of the fixed effects is nested
in units), t(G−1): fixest's `feols(... | treat + event_time, weights, cluster)` and Stata's
`reghdfe [aw], cluster()` in the tutorial.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.estimators.did.event_time import (
    cells_left_out,
    check_periods_one_apart,
)
from pathfinder_eval.estimators.did.facts import StackedFacts
from pathfinder_eval.estimators.pooled import (
    did_decision,
    panel_layout,
    pooled_label,
    stratified_or_pooled,
    unlearnable,
)
from pathfinder_eval.inference.cluster import (
    blank_vacant,
    joint_zero_test,
    squared_norms,
    t_summary,
    untested_leads,
    vacant_rows,
)
from pathfinder_eval.inference.policy import because
from pathfinder_eval.inference.pretrends_power import pretest_summary
from pathfinder_eval.panel import OTHER_RULE, ValidatedPanel
from pathfinder_eval.results import EffectEstimates, InferenceKey, InferenceUsed, estimates_table
from pathfinder_eval.settings import StackedOptions


@dataclass(frozen=True)
class SubExperiment:
    """One adoption cohort's sub-experiment: `cohort`, its `n_treated` and `n_control` units,
    and the corrective weight of its control rows at event time 0 (0 when it has none there)."""

    cohort: float
    n_treated: int
    n_control: int
    control_weight: float


@dataclass(frozen=True)
class StackedFit:
    """Rows: the overall ATT (mean of δ_0 … δ_κpost), then δ_e for each event time e ≠ −1.

    event_time: (k,) NaN for the overall row; estimate: (k,); vcov: (k, k) CR1 by unit;
    n_units: (k,) treated units behind each row; kept: (n,) bool, input rows in some
    sub-experiment; n_clusters: G; n_stacked: rows of the stack; kappa: (κ_pre, κ_post);
    included: the sub-experiments; trimmed: (cohort, reason) of the cohorts left out;
    partly_left_out: (cohort, number) of the included cohorts' units left out of their
    sub-experiment because the design leaves out their partly exposed period or transition
    periods in its window;
    outcome_weights: () → (k, n) each row's weights on the input outcomes (computed on
    request: the stack's rows summed back onto the cells they copy); noise: the stack's mean
    squared residual about its cell means."""

    event_time: np.ndarray
    estimate: np.ndarray
    vcov: np.ndarray
    n_units: np.ndarray
    kept: np.ndarray
    n_clusters: int
    n_stacked: int
    kappa: tuple[int, int]
    included: tuple[SubExperiment, ...]
    trimmed: tuple[tuple[float, str], ...]
    partly_left_out: tuple[tuple[float, int], ...]
    outcome_weights: Callable[[], np.ndarray]
    noise: float

    @property
    def labels(self) -> tuple[str, ...]:
        return (
            "ATT (mean of post-start event times)",
            *(f"event time {int(e)}" for e in self.event_time[1:]),
        )


# Why a cohort is trimmed when the design leaves out a period of each unit's window.
LEFT_OUT_WINDOW = (
    "each of its units has its partly exposed period, which the design leaves out "
    "(partial_period_rule: transition), in its window"
)
TRANSITION_WINDOW = (
    "each of its units has transition periods, which the design leaves out "
    "(rollout transition_periods), in its window"
)
# Why a cohort is trimmed when the design leaves out its reference period.
LEFT_OUT_REFERENCE = (
    "its event time −1, the reference, is its partly exposed period, which the design leaves "
    "out (partial_period_rule: transition)"
)


def stacked_did(
    y: np.ndarray,
    unit: np.ndarray,
    period: np.ndarray,
    cohort: np.ndarray,
    kappa_pre: int | None = None,
    kappa_post: int | None = None,
    control_group: str = "not_yet_treated",
    left_out: tuple[np.ndarray, np.ndarray] | None = None,
    label: Callable[[int], str] = str,
) -> StackedFit:
    """Weighted stacked DiD (module docstring). y, unit, period, cohort (n,): cohort the first
    treated period (NaN or inf: never treated); periods on a unit step. kappa_pre, kappa_post:
    the event window; None takes the longest window every cohort starting inside the data
    fits (so none of them is trimmed for its window), the pre-window over those keeping
    their reference.
    control_group: "not_yet_treated" (first treated after a + κ_post, or never) or
    "never_treated". left_out: (units, periods) of the cells the design leaves out (a start's
    partly exposed period under the transition rule, a wave's transition periods): a unit
    with such a period inside a sub-experiment's window is neither its treated unit nor its
    clean control (its cohort, when that leaves none, is trimmed with the reason: a cohort
    whose every unit has event time −1, the reference, left out does not shorten the default
    pre-window either). label: a period's display label, for the messages."""
    y = np.asarray(y, float)
    period = np.asarray(period, float)
    cohort = np.asarray(cohort, float)
    cohort = np.where(np.isfinite(cohort), cohort, np.inf)
    unit_codes, unit_names = pd.factorize(np.asarray(unit), sort=True)
    n_groups = len(unit_names)
    unit_cohort = np.full(n_groups, np.inf)
    unit_cohort[unit_codes] = cohort
    gap_unit, gap_period = _gaps(left_out, unit_names)
    before = gap_period < unit_cohort[gap_unit]  # partly exposed, not a transition period
    t_min, t_max = float(period.min()), float(period.max())
    cohorts = np.unique(cohort[np.isfinite(cohort)])
    if cohorts.size == 0:
        raise EstimationError(
            "no unit is treated", where="first_treated", fix="check the rollout dates"
        )
    # cohorts whose every unit has its reference left out by the design
    at_reference = np.zeros(n_groups, dtype=bool)
    at_reference[gap_unit[gap_period == unit_cohort[gap_unit] - 1]] = True
    no_reference = [a for a in cohorts if at_reference[unit_cohort == a].all()]
    # the default window: the longest every cohort starting inside the data fits (a cohort
    # starting before or after the data has no window and is trimmed whatever it is); one
    # whose reference the design leaves out is trimmed too, so it does not shorten the
    # others' pre-window. It still bounds the post-window: a longer one would change which
    # later cohorts are clean controls (and could leave a cohort without any)
    inside = cohorts[(cohorts > t_min) & (cohorts <= t_max)]
    inside = inside if inside.size else cohorts
    kept = inside[~np.isin(inside, no_reference)]
    kept = kept if kept.size else inside
    k_pre = int(min(kept - t_min)) if kappa_pre is None else kappa_pre
    k_post = int(min(t_max - inside)) if kappa_post is None else kappa_post
    if k_pre < 1:
        first = cohorts.min()
        raise EstimationError(
            "the event window needs event time −1 (the reference): kappa_pre must be at least "
            f"1, and the earliest cohort ({label(int(first))}) has {int(first - t_min)} "
            "period(s) before its start",
            where="options.kappa_pre",
            fix="set kappa_pre to 1 or more and supply a period before each start",
        )
    if k_post < 0:
        raise EstimationError(
            f"kappa_post is {k_post}: the window must reach event time 0",
            where="options.kappa_post",
            fix="set kappa_post to 0 or more",
        )
    parts, included, trimmed, partly = [], [], [], []
    causes = set()  # why cohorts were trimmed for what the design leaves out
    for a in cohorts:
        if a in no_reference:
            trimmed.append((float(a), LEFT_OUT_REFERENCE))
            causes.add(LEFT_OUT_REFERENCE)
            continue
        lo, hi = a - k_pre, a + k_post
        if lo < t_min or hi > t_max:
            window = f"[{label(int(lo))}, {label(int(hi))}]"
            trimmed.append((float(a), f"window {window} outside the data"))
            continue
        # a unit with a left-out period in the window is in neither group: partly exposed
        # (before its start) it is neither treated nor untreated through it; in transition
        # (from its start on) it has no row at those event times, so its cohort's treated
        # means would mix units. A clean control's transition periods come after the window.
        in_window = (gap_period >= lo) & (gap_period <= hi)
        gapped = np.zeros(n_groups, dtype=bool)
        gapped[gap_unit[in_window]] = True
        own = unit_cohort == a
        treated = own & ~gapped
        if not treated.any():
            partly_exposed = (before & in_window & own[gap_unit]).any()
            why = LEFT_OUT_WINDOW if partly_exposed else TRANSITION_WINDOW
            trimmed.append((float(a), f"{why} [{label(int(lo))}, {label(int(hi))}]"))
            causes.add(why)
            continue
        clean = unit_cohort > hi if control_group == "not_yet_treated" else np.isinf(unit_cohort)
        control = clean & ~gapped
        if not control.any():
            trimmed.append((float(a), "no clean control unit"))
            continue
        if (gone := int((own & gapped).sum())) > 0:
            partly.append((float(a), gone))
        rows = np.flatnonzero((treated | control)[unit_codes] & (period >= lo) & (period <= hi))
        parts.append((a, rows, (cohort[rows] == a)))
    if not parts:
        reasons = "; ".join(f"{label(int(a))}: {why}" for a, why in trimmed)
        where, fix = "options", "shorten kappa_pre or kappa_post, or use not-yet-treated controls"
        if LEFT_OUT_REFERENCE in causes:
            where = "time.partial_period_rule"
            fix = f"{OTHER_RULE}, or read callaway_santanna or sun_abraham, which take an earlier "
            fix += "reference"
        elif LEFT_OUT_WINDOW in causes:
            where = "time.partial_period_rule"
            fix = f"{OTHER_RULE}, or set kappa_pre and kappa_post so the window ends before it"
        elif TRANSITION_WINDOW in causes:
            where = "rollout.transition_periods"
            fix = "read callaway_santanna, imputation or sun_abraham, which use the periods after "
            fix += "the transition periods"
        raise EstimationError(f"every cohort was trimmed ({reasons})", where=where, fix=fix)
    rows = np.concatenate([p[1] for p in parts])
    d = np.concatenate([p[2] for p in parts])
    sub = np.concatenate([np.full(len(p[1]), i) for i, p in enumerate(parts)])
    e = np.concatenate([period[p[1]] - p[0] for p in parts]).astype(np.int64) + k_pre
    n_e = k_pre + k_post + 1
    q = _corrective_weights(d, sub, e, len(parts), n_e)
    cell = d * n_e + e  # (D, e) cells: 0..n_e−1 controls, n_e..2n_e−1 treated
    wsum = np.bincount(cell, weights=q, minlength=2 * n_e)
    if (wsum <= 0).any():
        missing = [
            f"{'treated' if c >= n_e else 'control'} e={c % n_e - k_pre}"
            for c in np.flatnonzero(wsum <= 0)
        ]
        raise EstimationError(
            f"the stack has no weighted rows in cell(s) {', '.join(missing)}",
            where="rollout",
            fix="check that every cohort is observed over its whole event window",
        )
    ys = y[rows]
    means = np.bincount(cell, weights=q * ys, minlength=2 * n_e) / wsum
    contrast = _contrasts(k_pre, k_post)  # (k, 2n_e) on the cell means
    estimate = contrast @ means
    # each row's coefficient on the stacked outcomes is contrast[:, cell] · q / wsum[cell]
    scale = q / wsum[cell]
    resid = ys - means[cell]
    groups = unit_codes[rows]
    z = np.zeros((n_groups, 2 * n_e))
    np.add.at(z, (groups, cell), scale * resid)
    used = np.bincount(groups, minlength=n_groups) > 0
    scores = z[used] @ contrast.T
    n_clusters, n, p = int(used.sum()), len(ys), 2 * n_e
    if n_clusters < 2 or n <= p:
        raise EstimationError(
            f"the stack has {n} rows from {n_clusters} unit(s) for {p} cell means: too few to "
            "estimate a variance",
            where="rollout",
            fix="supply more comparison units or a shorter event window",
        )
    factor = n_clusters / (n_clusters - 1) * (n - 1) / (n - p)
    vcov = factor * scores.T @ scores
    treated_units = [_distinct(groups[d & (e == j)], n_groups) for j in range(n_e)]
    n_units = np.array(
        [_distinct(groups[d & (e >= k_pre)], n_groups)]
        + [treated_units[j] for j in range(n_e) if j != k_pre - 1],
        float,
    )
    event_time = np.array([np.nan] + [j - k_pre for j in range(n_e) if j != k_pre - 1], float)
    kept = np.zeros(len(y), bool)
    kept[rows] = True

    @cache  # the pooled and the cohort-stratified variance may both need them
    def outcome_weights() -> np.ndarray:
        per_row = contrast[:, cell] * scale
        out = np.zeros((contrast.shape[0], len(y)))
        for j in range(contrast.shape[0]):
            out[j] = np.bincount(rows, weights=per_row[j], minlength=len(y))
        return out

    at_zero = ~d & (e == k_pre)  # control rows at event time 0 (Q is constant per sub × e)
    included = tuple(
        SubExperiment(
            float(a),
            _distinct(unit_codes[r[t]], n_groups),
            _distinct(unit_codes[r[~t]], n_groups),
            float(q[(sub == i) & at_zero].mean()) if ((sub == i) & at_zero).any() else 0.0,
        )
        for i, (a, r, t) in enumerate(parts)
    )
    return StackedFit(
        event_time,
        estimate,
        vcov,
        n_units,
        kept,
        n_clusters,
        n,
        (k_pre, k_post),
        included,
        tuple(trimmed),
        tuple(partly),
        outcome_weights,
        float(resid @ resid / len(resid)),
    )


def _strata(
    names: np.ndarray, codes: np.ndarray, cohort: np.ndarray, gaps: tuple[np.ndarray, ...]
) -> np.ndarray:
    """Each unit's stratum for the cohort-stratified variance: its cohort (NaN never treated)
    and the periods the design leaves out for it, so units of a cohort that the stack uses
    alike share one (a unit left out of its cohort's sub-experiment has other weights)."""
    unit_cohort = np.full(len(names), np.inf)
    unit_cohort[codes] = np.where(np.isfinite(cohort), cohort, np.inf)
    left: dict[object, list[float]] = {}
    for u, t in zip(*gaps, strict=True):
        left.setdefault(u, []).append(float(t))
    pattern = [tuple(left.get(u, ())) for u in names]
    strata = pd.factorize(pd.Series(list(zip(unit_cohort, pattern, strict=True))))[0]
    return np.where(np.isinf(unit_cohort), np.nan, strata.astype(float))


def _gaps(
    left_out: tuple[np.ndarray, np.ndarray] | None, names: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The left-out cells as (unit codes into `names`, periods), of units in the data."""
    if left_out is None:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    codes = pd.Index(names).get_indexer(np.asarray(left_out[0]))
    seen = codes >= 0
    if len(codes) and not seen.any():  # labels of another type ('7' for 7) would match none
        raise ValueError("left_out names no unit of the data (are its labels of another type?)")
    return codes[seen], np.asarray(left_out[1], dtype=float)[seen]


def _distinct(codes: np.ndarray, n: int) -> int:
    """How many distinct values codes (integers below n) take."""
    return int(np.count_nonzero(np.bincount(codes, minlength=n)))


def _corrective_weights(
    d: np.ndarray, sub: np.ndarray, e: np.ndarray, n_sub: int, n_e: int
) -> np.ndarray:
    """Q (n,): 1 on treated rows; on control rows of sub-experiment s at event time e the
    sub-experiment's share of the stack's treated rows at e over its share of control rows
    (0 where it has no treated row at e)."""
    key = sub * n_e + e
    treated = np.bincount(key, weights=d, minlength=n_sub * n_e).reshape(n_sub, n_e)
    control = np.bincount(key, weights=~d, minlength=n_sub * n_e).reshape(n_sub, n_e)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (treated / treated.sum(axis=0)) / (control / control.sum(axis=0))
    ratio = np.nan_to_num(ratio, nan=0.0, posinf=0.0)
    return np.where(d, 1.0, ratio[sub, e])


def _contrasts(k_pre: int, k_post: int) -> np.ndarray:
    """(k, 2n_e) each reported row as a combination of the cell means (controls first, then
    treated, by event time): δ_e = (m₁(e) − m₁(−1)) − (m₀(e) − m₀(−1)); the overall row the
    mean of δ_0 … δ_κpost."""
    n_e = k_pre + k_post + 1
    ref = k_pre - 1
    rows = []
    for j in range(n_e):
        if j == ref:
            continue
        c = np.zeros(2 * n_e)
        c[[n_e + j, ref]] += 1.0
        c[[n_e + ref, j]] -= 1.0
        rows.append(c)
    delta = np.array(rows)
    post = delta[k_pre - 1 :]  # event times 0 … κ_post
    return np.vstack([post.mean(axis=0), delta])


CR1_LABEL = (
    "cluster-robust by unit (CR1) on the weighted stack, t(G−1); fixest/reghdfe small-sample factor"
)


class Stacked(StackedOptions):
    """Stacked DiD with Wing, Freedman & Hollingsworth's corrective weights: the overall ATT
    (mean of the post-start event times), then one row per event time of the window.

    Inference: "cluster_robust" is CR1 by unit, t(G−1), as the authors' code. "default"
    follows the linear DiD rule (inference/policy.py): the comparison-pooled variance for few
    treated units or a regional concentration; otherwise below 20 treated units the
    cohort-stratified variance (the rows are linear in the outcomes with weights that depend
    only on a unit's cohort and the periods the design leaves out for it, the strata, on a
    balanced panel; on an unbalanced one the comparison-pooled variance, or CR1 with a
    warning when it cannot be learned); CR1 above."""

    def fit(
        self, panel: ValidatedPanel, outcome: str, analysis_id: str, level: float = 0.95
    ) -> EffectEstimates:
        check_periods_one_apart(panel.periods, "stacked DiD")
        cells = panel.outcome_cells(outcome)
        unit = cells["unit"].to_numpy()
        period = cells["period"].to_numpy()
        unit_codes, unit_names = pd.factorize(unit, sort=True)
        y = cells["y"].to_numpy(float)
        cohort = cells["cohort"].to_numpy(float)
        gaps = cells_left_out(panel, cells)  # partly exposed periods, transition periods
        res = stacked_did(
            y,
            unit,
            period,
            cohort,
            self.kappa_pre,
            self.kappa_post,
            self.control_group,
            gaps,
            panel.period_label,
        )
        n_treated = sum(s.n_treated for s in res.included)
        layout = panel_layout(panel, outcome)
        decision = did_decision(
            self.name,
            self.inference.method,
            n_treated,
            True,
            layout,
            lambda: layout.cell_weights(unit, period, res.outcome_weights()),
        )
        choice = decision.choice
        vcov = res.vcov
        df: np.ndarray = np.full(res.estimate.size, float(res.n_clusters - 1))
        key: InferenceKey = "cr1"
        label = CR1_LABEL + because(choice.reason_for("cluster_robust"))
        name = panel.period_label
        warns = [f"Cohort {name(int(a))} left out of the stack: {why}." for a, why in res.trimmed]
        warns += [
            f"{k} unit(s) of cohort {name(int(a))} left out of its sub-experiment: the design "
            "leaves out a period of its window for them (their partly exposed period, "
            "partial_period_rule: transition, or transition periods); its other units stay."
            for a, k in res.partly_left_out
        ]
        if decision.variance is not None:
            vcov, df, key = decision.variance.vcov, decision.variance.df, "pooled_panel"
            label = pooled_label(layout, choice.reason)
        elif choice.method == "cohort_stratified":
            small = stratified_or_pooled(
                res.outcome_weights(),
                y,
                unit,
                period,
                _strata(unit_names, unit_codes, cohort, gaps),
                vcov,
                layout,
                decision.pooled,  # computed already when the default was asked for
                choice.reason,
                "stacked rows",
                "cohort",
            )
            if small is None:
                warns.append(unlearnable("cohort", "CR1"))
            else:
                vcov, df, key, label = small.vcov, small.df, small.key, small.label
        if key == "cr1":
            vcov, df = blank_vacant(
                vcov, df, squared_norms(res.outcome_weights()), res.noise, float(np.abs(y).max())
            )
        summ = t_summary(res.estimate, vcov, df, level)
        df = np.broadcast_to(df, res.estimate.shape)
        leads = np.flatnonzero(res.event_time < -1)
        pretrend = joint_zero_test(res.estimate, vcov, df, leads)
        rows = [
            summ.row(
                j,
                term,
                res.estimate[j],
                df=float(df[j]),
                event_time=res.event_time[j],
                n_units=res.n_units[j],
            )
            for j, term in enumerate(res.labels)
        ]
        warns += vacant_rows(rows, key)
        untested = [rows[j]["term"] for j in leads if not np.isfinite(vcov[j, j])]
        warns += untested_leads(untested, pretrend is not None)
        return EffectEstimates(
            analysis_id=analysis_id,
            outcome=outcome,
            estimator=self.name,
            inference=InferenceUsed(
                key=key,
                label=label,
                chosen_by_default=choice.chosen_by_default,
                reason=choice.reason,
                dependence=decision.dependence,
            ),
            table=estimates_table(rows),
            level=level,
            vcov=vcov,
            n_units=res.n_clusters,
            n_treated=n_treated,
            n_obs=int(res.kept.sum()),
            facts=StackedFacts(
                inference_method=key,
                kappa_pre=res.kappa[0],
                kappa_post=res.kappa[1],
                control_group=self.control_group,
                sub_experiments=[
                    {
                        "cohort": s.cohort,
                        "n_treated": s.n_treated,
                        "n_control": s.n_control,
                        "control_weight": s.control_weight,
                    }
                    for s in res.included
                ],
                trimmed=[{"cohort": a, "reason": why} for a, why in res.trimmed],
                stacked_rows=res.n_stacked,
                pretrend_test=pretrend,
                pretest_power=None
                if self.refit
                else pretest_summary(res.estimate[1:], vcov[1:, 1:], res.event_time[1:], -1.0),
            ),
            warnings=tuple(warns),
        )
