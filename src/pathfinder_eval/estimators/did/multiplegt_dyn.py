"""de Chaisemartin & D'Haultfœuille's dynamic DiD estimators DID_ℓ (2024, Review of Economics
and Statistics, "Difference-in-differences estimators of intertemporal treatment effects"; the
authors' `did_multiplegt_dyn` in Stata, R and Python) for a treatment that may switch on,
switch off, pause or change level.

Groups are classed by their baseline treatment D_g1; F_g is the first period in which a group's
treatment differs from it, up (S_g = +1) or down (S_g = −1). For ℓ ≥ 1 a switcher g with
F_g − 1 + ℓ ≤ T_g (T_g: the last period in which some group of its baseline has not yet
switched) contributes

    DID_gℓ = (Y_g,F_g−1+ℓ − Y_g,F_g−1) − mean over not-yet-switchers g′ of its baseline at
             F_g − 1 + ℓ of (Y_g′,F_g−1+ℓ − Y_g′,F_g−1),

and DID_ℓ is the mean of S_g DID_gℓ over those switchers, the effect of having switched ℓ
periods ago, whatever the treatment did after F_g; `normalized` divides it by the mean
treatment change the switchers received from F_g to F_g − 1 + ℓ. The average total effect is
Σ_ℓ N_ℓ DID_ℓ over the treatment change the switchers received in those periods. Placebo ℓ is
the same comparison of the backward difference Y_g,F_g−1−ℓ − Y_g,F_g−1 over the groups and
controls of effect ℓ. Every row is a fixed linear combination of the outcomes (`weights`), so
the toolkit's few-treated variances apply to it.

The authors' analytic variance (`vcov`, normal reference) is the sum of squared group
influence functions in which each first difference is centred on its cohort mean (switchers: by
baseline, switch date and new level; not-yet-switchers: by baseline and period; a singleton
cohort falls back on the union of both) with a √(n/(n−1)) factor, as their Stata, R and Python
code. With their `cluster` option (groups nested in coarser clusters, e.g. LAs in regions) n
counts a cohort's clusters instead of its groups, and the influence functions are summed
within clusters before squaring. As that code does, baselines whose groups all switch at the
same date, periods in which every group of a baseline has switched, and a group's cells once
its treatment has been both above and below its baseline are left out.

Control variables (the authors' `controls`) and starting treatments that all differ (their
`continuous`: one baseline class, with a polynomial in the start as controls) are in
multiplegt_controls.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.estimators.did.facts import MultiplegtDynFacts
from pathfinder_eval.estimators.did.multiplegt_bootstrap import (
    BootstrapDraws,
    bootstrap_label,
    bootstrap_warnings,
    draw_fits,
)
from pathfinder_eval.estimators.did.multiplegt_controls import residualise
from pathfinder_eval.estimators.did.multiplegt_het import group_covariates, heterogeneity
from pathfinder_eval.estimators.did.multiplegt_panel import (
    group_clusters,
    missing_treatments,
    unit_period_grid,
)
from pathfinder_eval.estimators.did.multiplegt_parts import (
    Part,
    by_path,
    by_value,
    cluster_sums,
    joint_vcov,
    on_rows,
    part_facts,
)
from pathfinder_eval.estimators.did.multiplegt_paths import design
from pathfinder_eval.estimators.pooled import (
    did_decision,
    panel_layout,
    pooled_label,
    stratified_or_pooled,
    unlearnable,
)
from pathfinder_eval.inference.cluster import equal_test, joint_zero_test, t_summary
from pathfinder_eval.inference.policy import because
from pathfinder_eval.inference.pretrends_power import pretest_summary
from pathfinder_eval.panel import OTHER_RULE, ValidatedPanel
from pathfinder_eval.results import EffectEstimates, InferenceKey, InferenceUsed, estimates_table
from pathfinder_eval.settings import MultiplegtDynOptions


@dataclass(frozen=True)
class DynamicFit:
    """Rows: the average total effect, effects ℓ = 1 … L, then placebos ℓ = 1 … P.

    lag: (k,) 0 for the average total effect, ℓ for effects and −ℓ for placebos; estimate: (k,);
    vcov: (k, k) the authors' analytic variance, influence @ influence.T with influence (k, C)
    each row's influence summed within each of the C clusters (clusters: their labels, the
    units' without a cluster), so fits on parts of one panel have a joint variance;
    n_switchers: (k,) switchers behind each row;
    switcher_weight: (k,) their total weight N_ℓ (n_switchers unweighted); weights: (k, n) each
    row's weights on the input outcomes; groups: G, the groups the estimator keeps; units: (G,)
    their labels; dropped: labels of groups left out (a baseline with no variation in switch
    dates); unobserved: groups with no treatment or no outcome known; unknown_cells: kept
    groups' periods without a known treatment; unsure: groups whose switch date is unknown
    (comparisons up to their last known treatment); early: groups switching in period 2, left
    out with trends_lin; no_controls: rows left out because a control is missing; singular:
    baselines whose controls are collinear among their not-yet-switchers (the pseudo-inverse is
    used, as the authors' code does); heterogeneity: predict_het's rows (multiplegt_het.py);
    het_missing: switching groups left out of them for a missing covariate; design: the
    switchers' treatment paths over the effects (multiplegt_paths.design), not_followed: the
    switchers not followed that long."""

    lag: np.ndarray
    estimate: np.ndarray
    vcov: np.ndarray
    influence: np.ndarray
    clusters: np.ndarray
    n_switchers: np.ndarray
    switcher_weight: np.ndarray
    weights: np.ndarray
    groups: int
    units: np.ndarray
    dropped: tuple[str, ...]
    unobserved: tuple[str, ...] = ()
    unknown_cells: int = 0
    unsure: tuple[str, ...] = ()
    early: tuple[str, ...] = ()
    no_controls: int = 0
    singular: tuple[float, ...] = ()
    heterogeneity: tuple[dict[str, Any], ...] = ()
    het_missing: tuple[str, ...] = ()
    design: tuple[dict[str, Any], ...] = ()
    not_followed: int = 0

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(
            "average total effect"
            if k == 0
            else f"effect {int(k)}"
            if k > 0
            else f"placebo {int(-k)}"
            for k in self.lag
        )


def multiplegt_dyn(
    y: np.ndarray,
    unit: np.ndarray,
    period: np.ndarray,
    treatment: np.ndarray,
    effects: int = 1,
    placebo: int = 0,
    normalized: bool = False,
    cluster: np.ndarray | None = None,
    trends_lin: bool = False,
    controls: np.ndarray | None = None,
    continuous: int = 0,
    weights: np.ndarray | None = None,
    switchers: str = "",
    only_never_switchers: bool = False,
    same_switchers: bool = False,
    same_switchers_pl: bool = False,
    strata: np.ndarray | None = None,
    less_conservative_se: bool = False,
    predict_het: np.ndarray | None = None,
    het_names: tuple[str, ...] = (),
) -> DynamicFit:
    """DID_ℓ for ℓ = 1 … `effects` and placebos 1 … `placebo` (module docstring); fewer where
    the data allow fewer. y, unit, period, treatment (n,): one row per unit and period, the
    treatment (0/1 or a level) observed in every row; y may be NaN (that cell is not used).
    normalized: effects and placebos per unit of treatment received (module docstring).
    cluster (n,): each row's cluster, the same in all of a unit's rows (None: the unit).
    trends_lin: allow each unit its own linear trend (the authors' option): the estimators
    run on first differences with the same switchers for effects 1 … ℓ, and effect ℓ is the
    sum of the first ℓ (placebos likewise); no average total effect.
    controls (n, k): control variables, the authors' `controls` (multiplegt_controls.py); a
    row missing one is left out, as their code does (with trends_lin their Python port then
    differences across the gap; here that difference is missing), the treatment it received
    still counting when normalised.
    continuous: for a starting treatment that differs between units (the authors'
    `continuous`): every unit is compared with every unit not yet changed, whatever its start,
    with the outcome's change in each period allowed a polynomial of this degree in the
    starting treatment (controls 1{t ≥ τ}·D_g1^p, τ = 2 … T, p = 1 … degree); 0: compared
    within the same starting treatment.
    weights (n,): each cell's weight N_gt (the authors' `weight`, e.g. the LA's child
    population): switchers and controls count by it in every mean and total, and the rows'
    switcher counts stay counts of units; above 0 where the outcome is known.
    switchers: "in" or "out", only the units whose treatment first rises (falls) ("": both);
    only_never_switchers: compare only with units whose treatment never changes;
    same_switchers: every effect over the switchers seen in all of them (placebos over those
    too), and same_switchers_pl also over those seen in all placebos (the authors' options).
    strata (n,): each row's stratum, the same in all of a unit's rows (e.g. its region): units
    are compared only within their stratum (the authors' trends_nonparam), so each stratum
    may have its own period effects.
    less_conservative_se: in the effects' variance, centre each switcher's change on the mean
    of the switchers sharing its whole treatment path since F_g, where another group shares
    it (else its path's first period, else its baseline and F_g), instead of those sharing
    its baseline, F_g and first new level (the authors' less_conservative_se).
    predict_het (n, k): covariates fixed within each unit, named het_names, whose association
    with each effect and placebo among the switchers is estimated (multiplegt_het.py, the
    authors' predict_het); not with trends_lin, controls, normalized, continuous, weights or
    same_switchers."""
    if strata is not None and trends_lin:
        raise EstimationError(
            "comparisons within strata (trends_nonparam) cannot yet be combined with "
            "trends_lin here (not checked: the authors' Python port fails on it)",
            where="options",
            fix="drop trends_nonparam or trends_lin",
        )
    unchecked = trends_lin or controls is not None or normalized or continuous
    if predict_het is not None and (unchecked or weights is not None or same_switchers):
        raise EstimationError(
            "predict_het cannot yet be combined with trends_lin, covariates, normalized, "
            "continuous, weights or same_switchers here (not checked against the authors' "
            "code, which fails on some of them)",
            where="options predict_het",
            fix="drop predict_het or the other option",
        )
    if switchers not in ("", "in", "out"):
        raise EstimationError(
            f"switchers {switchers!r} is not one of '', 'in', 'out'",
            where="options switchers",
            fix="use in, out, or leave it empty for both",
        )
    if same_switchers_pl and not same_switchers:
        raise EstimationError(
            "same_switchers_pl needs same_switchers as well",
            where="options",
            fix="set same_switchers too, or drop same_switchers_pl",
        )
    if trends_lin and normalized:
        raise EstimationError(
            "trends_lin and normalized cannot be combined here",
            where="options",
            fix="drop one of trends_lin and normalized",
        )
    y = np.asarray(y, float)
    d_long = np.asarray(treatment, float)
    if np.isinf(d_long).any():
        bad = int(np.flatnonzero(np.isinf(d_long))[0])
        raise EstimationError(
            f"treatment value {treatment[bad]!r} is not a number",
            where="treatment",
            row=bad + 1,
            fix="give the treatment (0 untreated, or its level), or leave it missing",
        )
    g_code, names = pd.factorize(np.asarray(unit), sort=True)
    t_code, _ = pd.factorize(np.asarray(period), sort=True)
    n_g, n_t = len(names), int(t_code.max()) + 1
    if np.bincount(g_code.astype(np.int64) * n_t + t_code).max() > 1:
        raise EstimationError(
            "a unit has more than one row in a period",
            where="unit, period",
            fix="give one row per unit and period",
        )
    all_names = names  # (names is narrowed to the groups kept below)
    g_cluster, cluster_names = np.arange(n_g), names  # each group its own cluster
    if cluster is not None:
        g_cluster, cluster_names = group_clusters(cluster, g_code, names)
    g_stratum = np.zeros(n_g, np.int64)
    if strata is not None:
        g_stratum = group_clusters(strata, g_code, names, "stratum", "trends_nonparam")[0]
    d = np.full((n_g, n_t), np.nan)
    d[g_code, t_code] = d_long
    ymat = np.full((n_g, n_t), np.nan)
    ymat[g_code, t_code] = y
    wmat = np.ones((n_g, n_t))
    if weights is not None:
        w_long = np.asarray(weights, float)
        bad = ~(w_long > 0) & ~np.isnan(y)
        if bad.any() or np.isinf(w_long).any():
            row = int(np.flatnonzero(bad | np.isinf(w_long))[0])
            raise EstimationError(
                f"weight {float(w_long[row])!r} is not a number above 0",
                where="weight",
                row=row + 1,
                fix="give every unit-period with an outcome a weight above 0 (e.g. its child "
                "population)",
            )
        wmat[g_code, t_code] = np.where(w_long > 0, w_long, 1.0)
    xmat = np.zeros((n_g, n_t, 0))
    no_controls = 0
    gap_d = np.full((n_g, n_t), np.nan)  # the known treatment where only a control is missing
    if controls is not None:
        x_long = np.asarray(controls, float).reshape(len(y), -1)
        xmat = np.full((n_g, n_t, x_long.shape[1]), np.nan)
        xmat[g_code, t_code] = x_long
        gone = np.isnan(xmat).any(axis=2)  # as a row that is not there
        no_controls = int((gone[g_code, t_code] & ~(np.isnan(y) & np.isnan(d_long))).sum())
        gap_d = np.where(gone, d, np.nan)
        d[gone], ymat[gone] = np.nan, np.nan
    cell_index = np.full((n_g, n_t), -1)
    cell_index[g_code, t_code] = np.arange(len(y))
    # units with no treatment or no outcome observed are left out, as the authors' code does
    seen = ~np.isnan(d).all(axis=1) & ~np.isnan(ymat).all(axis=1)
    unobserved = tuple(str(n) for n in names[~seen])
    d, ymat, xmat, cell_index, g_cluster, names, gap_d, wmat, g_stratum = (
        a[seen] for a in (d, ymat, xmat, cell_index, g_cluster, names, gap_d, wmat, g_stratum)
    )
    n_g = len(names)
    observed = ~np.isnan(d)
    first_seen = observed.argmax(axis=1)  # the first period with a known treatment (0-based)
    base = d[np.arange(n_g), first_seen]
    ymat[np.arange(n_t)[None, :] < first_seen[:, None]] = np.nan
    # once a group's treatment has been both above and below its baseline its cells are not
    # used (the authors' default, without dont_drop_larger_lower)
    crossed = np.maximum.accumulate(d > base[:, None], axis=1) & np.maximum.accumulate(
        d < base[:, None], axis=1
    )
    changed = (d != base[:, None]) & observed
    first = np.where(changed.any(axis=1), changed.argmax(axis=1) + 1, 0)
    cls_all, levels = pd.factorize(base, sort=True)
    if continuous:  # one class: every unit a comparison, the start's polynomial a control
        cls_all, levels = np.zeros(n_g, np.int64), pd.Index([0.0])
    base_levels, base_of = levels, np.arange(len(levels))  # each class's baseline
    if strata is not None:  # classes: baseline × stratum
        cls_all, pairs = pd.factorize(cls_all * (g_stratum.max() + 1) + g_stratum, sort=True)
        base_of = pairs // (g_stratum.max() + 1)
    n_cls = len(base_of)
    # baselines whose groups all switch at one date (or never) give no comparison
    keep = np.zeros(n_g, bool)
    for b in range(n_cls):
        members = cls_all == b
        varies = members.sum() > 1 and first[members].min() != first[members].max()
        keep |= members & varies
    if not keep.any():
        raise EstimationError(
            "no effect can be estimated: within each baseline treatment every group switches "
            "at the same date (de Chaisemartin & D'Haultfœuille's design restriction 1)",
            where="treatment",
            fix="supply groups that switch later or never",
        )
    base, first, changed, crossed = base[keep], first[keep], changed[keep], crossed[keep]
    d, ymat, xmat, cell_index, cls, gap_d, wmat = (
        d[keep],
        ymat[keep],
        xmat[keep],
        cell_index[keep],
        cls_all[keep],
        gap_d[keep],
        wmat[keep],
    )
    g_cluster, first_seen = g_cluster[keep], first_seen[keep]
    if strata is not None and cluster is not None:
        _strata_across_clusters(cls, g_cluster, names[keep])
    # periods in which every group of a baseline has switched have no control: not used
    switched = np.maximum.accumulate(changed, axis=1)
    has_control = np.stack([(~switched[cls == b]).any(axis=0) for b in range(n_cls)])
    live = has_control[cls] & ~crossed
    ymat = np.where(live, ymat, np.nan)
    t_max = int(np.flatnonzero(has_control[cls].any(axis=0)).max()) + 1
    f = np.where(first == 0, t_max + 1, first).astype(float)
    unknown_cells = int((np.isnan(d) & np.isnan(gap_d)).sum())  # a missing control's: no_controls
    d, ymat, f_known, f_trunc = missing_treatments(d, ymat, base, first_seen, f, t_max)
    kept = names[keep]
    unsure = tuple(str(n) for n in kept[f_known != f])
    # never switching: no change seen, or one at an unknown date (a control, as the authors)
    comparable = (first == 0) | (f_known != f) if only_never_switchers else np.ones(len(f), bool)
    f = f_known
    early: tuple[str, ...] = ()
    n_kept = len(f)  # the authors' G, before trends_lin leaves groups out
    if trends_lin:  # a group switching in period 2 shows no trend before its switch
        sel = f != 2
        early = tuple(str(n) for n in kept[~sel])
        per_group = (d, ymat, xmat, cell_index, cls, g_cluster, base, f, f_trunc, live, kept)
        d, ymat, xmat, cell_index, cls, g_cluster, base, f, f_trunc, live, kept = (
            a[sel] for a in per_group
        )
        wmat, comparable, gap_d = wmat[sel], comparable[sel], gap_d[sel]
        # the outcome and the controls in first differences, as the authors' code
        ymat = np.concatenate([np.full((len(f), 1), np.nan), np.diff(ymat, axis=1)], axis=1)
        xmat = np.concatenate([np.full_like(xmat[:, :1], np.nan), np.diff(xmat, axis=1)], axis=1)
    last = np.array(
        [f_trunc[cls == b].max() - 1 if (cls == b).any() else np.nan for b in range(n_cls)]
    )
    t_g = last[cls]
    l_g = t_g - f + 1
    switcher = f <= t_g
    d_first = d[np.arange(len(f)), np.minimum(f, n_t).astype(int) - 1]
    # switching up or down (a group's cells stop being used once it has been on both sides
    # of its baseline, so the direction of its first change is that of its mean after it)
    s_in = switcher & (d_first > base)
    dropped = tuple(str(n) for n in names[~keep])
    n_groups = len(kept)
    effects_n = int(min(effects, np.nanmax(np.where(switcher, l_g, 0)))) if effects else 0
    if effects_n < 1:
        raise EstimationError(
            "no effect can be estimated: no group switches while a group of its baseline "
            "has not switched yet",
            where="treatment",
            fix="supply groups that switch later or never",
        )
    pl_g = np.where(f >= 3, np.minimum(f - 2, l_g), 0)
    # with trends one placebo fewer: the first difference uses one more period (as the authors)
    most = int(np.max(np.where(switcher, pl_g, 0))) - int(trends_lin)
    placebo_n = int(min(placebo, effects_n, most))
    # the treatment received counts where it is known, even in a period whose control is
    # missing (the authors' normalisation uses it)
    received = np.where(np.isnan(gap_d), d, gap_d)
    dose = np.where(live & ~np.isnan(received), np.abs(received - base[:, None]), 0.0)
    if continuous:  # switchers' cohorts: switch date and direction (the authors' binarised D)
        d_first = np.where(s_in, 1.0, -1.0)
    # the treatment's paths (less_conservative_se's cohorts, the design table); with
    # continuous the authors' binarised D: the direction of the first change from F_g on,
    # whatever the treatment does later
    after = np.arange(1, d.shape[1] + 1)[None, :] >= f[:, None]
    path_d = np.where(after, d_first[:, None], 0.0) if continuous else d
    cohorts = ()
    if less_conservative_se:
        cohorts = _path_cohorts(path_d, base_of[cls], cls, f, effects_n)
    paths_seen, not_followed = design(path_d, f, l_g, switcher, live, effects_n)
    spec = _Groups(
        cls,
        n_cls,
        f,
        t_g,
        l_g,
        switcher,
        s_in,
        dose,
        d_first,
        g_cluster,
        wmat,
        comparable,
        cohorts,
    )
    adjustment = None
    if continuous:
        steps = np.arange(1, n_t + 1)[None, :, None] >= np.arange(2, n_t + 1)[None, None, :]
        powers = base[:, None] ** np.arange(1, continuous + 1)[None, :]  # (G, degree)
        poly = (steps[..., None] * powers[:, None, None, :]).reshape(len(base), n_t, -1)
        xmat = np.concatenate([xmat, poly], axis=2)
    if xmat.shape[2]:
        adjustment = residualise(ymat, xmat, cls, base_of, f, last, g_cluster, n_kept, wmat)
        ymat = adjustment.adjusted(ymat, xmat, cls)

    def row(
        i: int, placebo: bool, among: np.ndarray | None = None, up: bool | None = None
    ) -> _Row | None:
        """Effect or placebo i, with θ_d's terms when there are controls."""
        r = _row(ymat, spec, i, placebo, among, up)
        if r is None or adjustment is None:
            return r
        lost, added = adjustment.terms(r.cell_weights, xmat, cls, r.lag)
        return replace(r, influence=r.influence - lost, cell_weights=r.cell_weights + added)

    up = {"": None, "in": True, "out": False}[switchers]
    _some_switchers_and_comparisons(spec, up, only_never_switchers)
    among_e = among_p = None
    if same_switchers:
        among_e = among_p = _same_switchers(ymat, spec, effects_n, False)
        if same_switchers_pl and placebo_n:
            among_p = among_e & _same_switchers(ymat, spec, placebo_n, True)
    if trends_lin:
        effect_rows = _with_trends(ymat, spec, effects_n, False, row, up)
        _need_effects(effect_rows, adjustment is not None)
        rows_out = effect_rows + _with_trends(ymat, spec, placebo_n, True, row, up)
    else:
        effect_rows = [r for i in range(1, effects_n + 1) if (r := row(i, False, among_e, up))]
        _need_effects(effect_rows, adjustment is not None)
        total = _total_effect(effect_rows)
        if normalized:  # per unit of treatment received since the switch
            effect_rows = [r.per_dose(r.cumulative_dose / r.n_switchers) for r in effect_rows]
        placebo_rows = [r for i in range(1, placebo_n + 1) if (r := row(i, True, among_p, up))]
        if normalized:  # each placebo by the treatment its switchers receive in effect ℓ
            placebo_rows = [r.per_dose(r.cumulative_dose / r.n_switchers) for r in placebo_rows]
        rows_out = [total, *effect_rows, *placebo_rows]
    het: list[dict[str, Any]] = []
    het_missing = np.zeros(len(f), bool)
    if predict_het is not None:
        x_rows = np.asarray(predict_het, float).reshape(len(y), -1)
        x_all = group_covariates(x_rows, g_code, het_names, all_names)
        cells = pd.factorize(pd.Series(list(zip(f, base, s_in, cls, strict=True))))[0]
        het, het_missing = heterogeneity(
            ymat,
            f,
            cells,
            np.where(s_in, 1.0, -1.0),
            wmat,
            x_all[pd.Index(all_names).get_indexer(kept)],
            het_names,
            {r.lag: r.switchers for r in effect_rows},
            placebo_n,
        )
    lag = np.array([r.lag for r in rows_out], float)
    estimate = np.array([r.estimate for r in rows_out])
    influence = np.array([r.influence for r in rows_out])  # (k, G)
    # summed within clusters: the groups of a cluster may share shocks
    own, member = np.unique(g_cluster, return_inverse=True)
    influence = cluster_sums(influence, member, len(own))
    weights = np.zeros((len(rows_out), len(y)))
    on = cell_index >= 0
    for k, r in enumerate(rows_out):
        weights[k, cell_index[on]] = r.cell_weights[on]
    return DynamicFit(
        lag=lag,
        estimate=estimate,
        vcov=influence @ influence.T,
        influence=influence,
        clusters=cluster_names[own],
        n_switchers=np.array([r.count for r in rows_out], float),
        switcher_weight=np.array([r.n_switchers for r in rows_out], float),
        weights=weights,
        groups=n_groups,
        units=np.asarray(kept),
        dropped=dropped,
        unobserved=unobserved,
        unknown_cells=unknown_cells,
        unsure=unsure,
        early=early,
        no_controls=no_controls,
        singular=()
        if adjustment is None
        else tuple(float(base_levels[b]) for b in adjustment.singular),
        heterogeneity=tuple(het),
        design=tuple(paths_seen),
        not_followed=not_followed,
        het_missing=tuple(str(n) for n in kept[het_missing]),
    )


@dataclass(frozen=True)
class _Groups:
    """Per kept group: baseline class (of n_cls), switch date F_g (T_max + 1 if never), T_g,
    L_g, whether it switches within T_g and whether on; dose (G, T): |D_gt − D_g1| in the
    cells used (0 elsewhere); d_first: the treatment at F_g; cluster: its cluster's code;
    weight (G, T): the cells' weights N_gt (1 unweighted); comparable: whether it may be a
    comparison before its switch (with only_never_switchers, only if it never switches);
    cohorts: with less_conservative_se, for each effect ℓ = 1, 2, … the switchers' paths
    that centre its changes (_path_cohorts; empty: baseline × F_g × first new level)."""

    cls: np.ndarray
    n_cls: int
    f: np.ndarray
    t_g: np.ndarray
    l_g: np.ndarray
    switcher: np.ndarray
    s_in: np.ndarray
    dose: np.ndarray
    d_first: np.ndarray
    cluster: np.ndarray
    weight: np.ndarray
    comparable: np.ndarray
    cohorts: tuple[np.ndarray, ...] = ()


@dataclass(frozen=True)
class _Row:
    lag: int
    estimate: float
    influence: np.ndarray  # (G,) so that the variance is influence @ influence
    n_switchers: float  # weighted (N_ℓ): what the estimate is an average over
    count: float  # switchers (units) behind the row
    cell_weights: np.ndarray  # (G, T) weights on the outcome matrix
    dose: float = 0.0  # treatment the switchers received at F_g − 1 + ℓ (effects)
    cumulative_dose: float = 0.0  # … and from F_g to F_g − 1 + ℓ
    switchers: np.ndarray | None = None  # (G,) the groups counted as switchers

    def per_dose(self, scale: float) -> _Row:
        """The row divided by `scale` (the normalised DID_ℓ)."""
        return replace(
            self,
            estimate=self.estimate / scale,
            influence=self.influence / scale,
            cell_weights=self.cell_weights / scale,
        )


def _need_effects(effects: list[_Row], controls: bool) -> None:
    """Refuse a panel in which no effect can be formed once the missing cells are left out."""
    if effects:
        return
    missing = "an outcome or a covariate" if controls else "an outcome"
    raise EstimationError(
        "no effect can be estimated: once the unit-periods missing "
        f"{missing} are left out, no switcher's outcome change after its switch is observed "
        "together with the same change of a not-yet-switched group of its baseline",
        where="outcome",
        fix="supply the missing values"
        + (", or leave out the covariates that are often missing" if controls else ""),
    )


def _strata_across_clusters(cls: np.ndarray, g_cluster: np.ndarray, names: np.ndarray) -> None:
    """Refuse strata that lie inside one cluster: their groups' influence functions sum to zero
    there, so the clustered variance cannot see their noise (it would be too small, or 0)."""
    for c in np.unique(cls):
        members = cls == c
        if members.sum() > 1 and np.unique(g_cluster[members]).size == 1:
            raise EstimationError(
                "the units compared with each other (one stratum of trends_nonparam, e.g. "
                f"{', '.join(map(str, names[members][:3]))}) all lie in one cluster, so the "
                "clustered variance cannot see their noise",
                where="inference.cluster",
                fix="cluster by a grouping finer than the strata (e.g. the LA), or drop "
                "trends_nonparam",
            )


def _some_switchers_and_comparisons(spec: _Groups, up: bool | None, never: bool) -> None:
    """Refuse options that leave no switcher or no comparison, saying which."""
    if up is not None and not (spec.switcher & (spec.s_in == up)).any():
        raise EstimationError(
            f"no unit's treatment first {'rises' if up else 'falls'}, so switchers: "
            f"{'in' if up else 'out'} leaves nothing to estimate",
            where="options switchers",
            fix="use the other direction, or both",
        )
    if never and not (spec.comparable & ~spec.switcher).any():
        raise EstimationError(
            "no unit's treatment never changes, so only_never_switchers leaves no comparison",
            where="options only_never_switchers",
            fix="drop only_never_switchers: units not yet changed are then the comparisons",
        )


def _total_effect(effects: list[_Row]) -> _Row:
    """The average total effect per unit of treatment: Σ_ℓ N_ℓ DID_ℓ over the treatment the
    switchers received in those periods (Σ_ℓ Σ_g |D_g,F_g−1+ℓ − D_g1|), the authors' ATE;
    with an absorbing treatment the switcher-weighted mean of the effects."""
    dose = sum(r.dose for r in effects)
    return _Row(
        lag=0,
        estimate=sum(r.n_switchers * r.estimate for r in effects) / dose,
        influence=sum(r.n_switchers * r.influence for r in effects) / dose,
        n_switchers=sum(r.n_switchers for r in effects),
        count=sum(r.count for r in effects),
        cell_weights=sum(r.n_switchers * r.cell_weights for r in effects) / dose,
    )


def _with_trends(
    dy: np.ndarray,
    spec: _Groups,
    n: int,
    placebo: bool,
    row: Callable[[int, bool, np.ndarray, bool], _Row | None],
    direction: bool | None = None,
) -> list[_Row]:
    """Effects (or placebos) ℓ = 1 … n with group-specific linear trends, from the first
    differences dy: for the switchers up and those down apart, the sum of DID_1 … DID_ℓ on dy
    (`row`, with its controls' terms) over the switchers whose changes 1 … ℓ (and, for
    placebos, the backward ones) are observed with a control (the authors' trends_lin with
    same_switchers); the two sums averaged by their switchers' weights in DID_ℓ, as the
    authors' code (with equal weights in every period, the sum of DID_1 … DID_ℓ); weights
    mapped back onto the levels. `direction`: only the switchers up (True) or down (False)."""
    out = []
    for ell in range(1, n + 1):
        among = _same_switchers(dy, spec, ell, False)
        if placebo:
            among &= _same_switchers(dy, spec, ell, True)
        sides = []  # per direction: its switchers' weight in DID_ℓ and its summed rows
        for up in (True, False) if direction is None else (direction,):
            parts = [row(i, placebo, among, up) for i in range(1, ell + 1)]
            if all(p is not None for p in parts):
                sides.append(_summed(parts))
        if not sides:
            break
        n_w = sum(side.n_switchers for side in sides)
        w = sum(side.n_switchers / n_w * side.cell_weights for side in sides)
        levels = w.copy()
        levels[:, :-1] -= w[:, 1:]  # dy_t = y_t − y_t−1
        out.append(
            _Row(
                lag=-ell if placebo else ell,
                estimate=sum(side.n_switchers / n_w * side.estimate for side in sides),
                influence=sum(side.n_switchers / n_w * side.influence for side in sides),
                n_switchers=n_w,
                count=sum(side.count for side in sides),
                cell_weights=levels,
            )
        )
    return out


def _summed(parts: list[_Row]) -> _Row:
    """DID_1 + … + DID_ℓ of one direction's switchers, counted as in DID_ℓ."""
    return replace(
        parts[-1],
        estimate=sum(p.estimate for p in parts),
        influence=sum(p.influence for p in parts),
        cell_weights=sum(p.cell_weights for p in parts),
    )


def _same_switchers(dy: np.ndarray, spec: _Groups, n: int, backward: bool) -> np.ndarray:
    """(G,) switchers whose outcome change from F_g − 1 to each of F_g − 1 ± j, j = 1 … n, is
    observed, each with a not-yet-switched group of its baseline whose same change is
    observed (the authors' same_switchers; backward: same_switchers_pl); forward, also
    F_g − 1 + n ≤ T_g."""
    n_g, n_t = dy.shape
    ok = spec.switcher & (backward | (spec.f - 1 + n <= spec.t_g))
    period = np.arange(1, n_t + 1)[None, :]
    rows = np.arange(n_g)
    for j in range(1, n + 1):
        if backward:  # dy_t − dy_t+j
            diff = np.full_like(dy, np.nan)
            if j < n_t:
                diff[:, : n_t - j] = dy[:, : n_t - j] - dy[:, j:]
        else:
            diff = _lagged(dy, 0, j)  # dy_t − dy_t−j
        known = ~np.isnan(diff)
        controls = _by_class(known & _not_yet(spec, period), spec) > 0
        col = (spec.f - 2 + (-j if backward else j)).astype(int)
        inside = (col >= 0) & (col < n_t)
        c = np.clip(col, 0, n_t - 1)
        ok &= inside & known[rows, c] & controls[spec.cls, c]
    return ok


def _row(
    ymat: np.ndarray,
    spec: _Groups,
    i: int,
    placebo: bool,
    among: np.ndarray | None = None,
    up: bool | None = None,
) -> _Row | None:
    """Effect or placebo i: the estimate, its weights and its group influence functions;
    `among` (G,) limits the switchers (the same switchers of effects 1 … ℓ); `up`: only the
    switchers up (True) or down (False) (None: both)."""
    n_g, n_t = ymat.shape
    t = np.arange(1, n_t + 1)[None, :]
    diff = _lagged(ymat, 0, i)  # Y_t − Y_t−i (effects' differences, at t = F_g − 1 + i)
    valid = ~np.isnan(diff)
    not_yet = valid & _not_yet(spec, t)
    diff_pl = _lagged(ymat, i, 2 * i)  # Y_t−2i − Y_t−i
    valid_pl = ~np.isnan(diff_pl)
    window = (i <= spec.t_g - 1)[:, None] & (t >= i + 1) & (t <= spec.t_g[:, None])
    total, n_total, count, dose, cumulative = 0.0, 0.0, 0.0, 0.0, 0.0
    received = np.cumsum(np.where(t >= spec.f[:, None], spec.dose, 0.0), axis=1)
    influence = np.zeros(n_g)
    cell_w = np.zeros((n_g, n_t))
    counted = np.zeros(n_g, bool)
    # a placebo uses effect i's switchers and controls whose backward difference exists
    has_ctrl = _by_class(not_yet, spec)[spec.cls] > 0
    ctrl, dy = (not_yet & valid_pl, diff_pl) if placebo else (not_yet, diff)
    ctrl_w = ctrl * spec.weight
    n_ctrl = _class_sum(ctrl_w, spec)
    for sign, side in ((1.0, spec.s_in), (-1.0, spec.switcher & ~spec.s_in)):
        if up is not None and up != (sign > 0):
            continue
        dist = (
            valid
            & (t == spec.f[:, None] - 1 + i)
            & (spec.l_g >= i)[:, None]
            & side[:, None]
            & has_ctrl
        )
        if among is not None:
            dist &= among[:, None]
        if placebo:
            dist = dist & valid_pl & (n_ctrl[spec.cls] > 0)
        if not dist.any():
            continue
        dist_w = dist * spec.weight
        n_sw = _class_sum(dist_w, spec)
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(n_ctrl > 0, n_sw / n_ctrl, 0.0)
        w = np.where(window, dist_w - share[spec.cls] * ctrl_w, 0.0)
        dy0 = np.where(w != 0, dy, 0.0)
        total += sign * float((w * dy0).sum())
        n_total += float(dist_w.sum())
        count += float(dist.sum())
        counted |= dist.any(axis=1)
        dose += float((dist_w * spec.dose).sum())
        cumulative += float((dist_w * received).sum())
        cohort = spec.cohorts[i - 1] if spec.cohorts and not placebo else None
        centred = _centred(dy, dist, ctrl, dist.sum(axis=0) > 0, spec, cohort)
        influence += sign * np.nansum(np.where(w != 0, w * centred, 0.0), axis=1)
        cell_w += sign * w
    if n_total == 0:
        return None
    # weights on the outcome matrix: + on the difference's first term (Y_t, or Y_t−2i for a
    # placebo), − on its second (Y_t−i)
    y_w = np.zeros((n_g, n_t))
    plus = 2 * i if placebo else 0
    y_w[:, : n_t - plus] += cell_w[:, plus:]
    y_w[:, : n_t - i] -= cell_w[:, i:]
    return _Row(
        lag=-i if placebo else i,
        estimate=total / n_total,
        influence=influence / n_total,
        n_switchers=n_total,
        count=count,
        cell_weights=y_w / n_total,
        dose=dose,
        cumulative_dose=cumulative,
        switchers=counted,
    )


def _not_yet(spec: _Groups, period: np.ndarray) -> np.ndarray:
    """(G, T) groups that are comparisons in each period: not switched yet (and, with
    only_never_switchers, never switching)."""
    return (spec.f[:, None] > period) & spec.comparable[:, None]


def _lagged(ymat: np.ndarray, a: int, b: int) -> np.ndarray:
    """(G, T) at period t: Y_t − Y_t−b when a = 0 (the effects' forward difference), else
    Y_t−b − Y_t−a (the placebos' backward difference, a = i, b = 2i); NaN before the data."""
    out = np.full_like(ymat, np.nan)
    if b < ymat.shape[1]:
        near = ymat[:, b - a : ymat.shape[1] - a] if a else ymat[:, b:]
        far = ymat[:, : ymat.shape[1] - b]
        out[:, b:] = far - near if a else near - far
    return out


def _by_class(mask: np.ndarray, spec: _Groups) -> np.ndarray:
    """(classes, T) counts of `mask` by baseline class and period."""
    return _class_sum(mask.astype(float), spec)


def _centred(
    dy: np.ndarray,
    dist: np.ndarray,
    ctrl: np.ndarray,
    any_switch: np.ndarray,
    spec: _Groups,
    cohort: np.ndarray | None = None,
) -> np.ndarray:
    """(G, T) √(n/(n−1))·(ΔY − cohort mean) for the switchers' and controls' cells of one
    side (NaN elsewhere and where the authors' code leaves a cell out): switchers centred by
    baseline and switch date, controls by baseline and period, a cohort in one cluster on the
    union of both at its baseline and period; means weighted by the cells' weights, n counts
    the cohort's clusters. `cohort` (levels + 1, G): the switchers' paths instead (row 0:
    the row of the path each is centred on; _path_cohorts)."""
    n_g, n_t = dy.shape
    out = np.full((n_g, n_t), np.nan)
    ns = ctrl & any_switch[None, :]  # controls in periods where some group switches
    union = ns | dist
    w = spec.weight
    wdy = np.where(union, dy, 0.0) * w
    n_ns, s_ns = _class_sum(ns * w, spec), _class_sum(np.where(ns, wdy, 0.0), spec)
    n_un, s_un = _class_sum(union * w, spec), _class_sum(wdy, spec)
    for b in range(spec.n_cls):
        members = spec.cls == b
        for col in range(n_t):
            rows = np.flatnonzero(members & ns[:, col])
            dof = _n_clusters(spec, rows)
            if dof >= 2:
                mean = s_ns[b, col] / n_ns[b, col]
                out[rows, col] = np.sqrt(dof / (dof - 1)) * (dy[rows, col] - mean)
            elif dof == 1 and (dof := _n_clusters(spec, members & union[:, col])) >= 2:
                mean = s_un[b, col] / n_un[b, col]
                out[rows, col] = np.sqrt(dof / (dof - 1)) * (dy[rows, col] - mean)
    # switchers: cohorts of baseline × switch date × first new level (one period each), or
    # the paths of `cohort` (a switcher centred on its chosen path's switchers, which may be
    # centred on other paths themselves)
    sw_rows, sw_cols = np.nonzero(dist)
    if cohort is None:
        key = np.column_stack([spec.cls, spec.f, spec.d_first])
        cohort = np.stack(
            [np.ones(len(key), np.int64), np.unique(key, axis=0, return_inverse=True)[1].ravel()]
        )
    chosen = cohort[0, sw_rows]
    for level in np.unique(chosen):
        code = cohort[level, sw_rows]
        for path in np.unique(code[chosen == level]):
            members = code == path
            r, c = sw_rows[members], sw_cols[members]
            centre = members & (chosen == level)
            rc, cc = sw_rows[centre], sw_cols[centre]
            b = int(spec.cls[r[0]])
            if (dof := _n_clusters(spec, r)) >= 2:
                mean = np.average(dy[r, c], weights=w[r, c])
                out[rc, cc] = np.sqrt(dof / (dof - 1)) * (dy[rc, cc] - mean)
            elif (dof := _n_clusters(spec, (spec.cls == b) & union[:, c[0]])) >= 2:
                mean = s_un[b, c[0]] / n_un[b, c[0]]
                out[rc, cc] = np.sqrt(dof / (dof - 1)) * (dy[rc, cc] - mean)
    return out


def _path_cohorts(
    d: np.ndarray, base: np.ndarray, cls: np.ndarray, f: np.ndarray, n: int
) -> tuple[np.ndarray, ...]:
    """For effects ℓ = 1 … n, (4, G): each group's paths P_0 (baseline `base` and F_g), P_1
    (and the treatment at F_g) and P_ℓ (and the treatment in F_g … F_g − 1 + ℓ, a treatment
    not known taking the one before), within its class `cls` (baseline × trends_nonparam
    stratum), as codes in rows 1–3; in row 0 the row of the path its change is centred on
    under the authors' less_conservative_se: P_ℓ if another group shares it, else P_1 if
    another shares that, else P_0 — groups counted whether they switch or not and whatever
    their stratum, as the authors' code counts them."""
    n_g, n_t = d.shape
    rows = np.arange(n_g)

    def coded(*columns: np.ndarray) -> np.ndarray:
        return np.unique(np.column_stack(columns), axis=0, return_inverse=True)[1].ravel()

    def shared(code: np.ndarray) -> np.ndarray:
        return np.bincount(code)[code] > 1

    col = (f - 1).astype(int)
    level = d[rows, np.clip(col, 0, n_t - 1)]  # the treatment at F_g
    p0 = coded(base, f)
    path = p1 = coded(p0, np.nan_to_num(level, nan=-np.inf))
    out = []
    for ell in range(1, n + 1):
        if ell > 1:
            now = d[rows, np.clip(col + ell - 1, 0, n_t - 1)]
            level = np.where((col + ell - 1 < n_t) & ~np.isnan(now), now, level)
            path = coded(path, np.nan_to_num(level, nan=-np.inf))
        chosen = np.where(shared(path), 3, np.where(shared(p1), 2, 1))
        out.append(np.stack([chosen, *(coded(p, cls) for p in (p0, p1, path))]))
    return tuple(out)


def _n_clusters(spec: _Groups, rows: np.ndarray) -> int:
    """The distinct clusters among `rows` (indices or a mask of groups)."""
    return int(np.unique(spec.cluster[rows]).size)


def _class_sum(values: np.ndarray, spec: _Groups) -> np.ndarray:
    """(classes, T) sums of `values` by baseline class and period."""
    return (spec.cls[None, :] == np.arange(spec.n_cls)[:, None]).astype(float) @ values


def _unit_column(
    panel: ValidatedPanel,
    name: str,
    units: pd.Series,
    analysis_id: str,
    option: str = "trends_nonparam",
) -> np.ndarray:
    """Each row's value of the unit-table column `name` (trends_nonparam, by)."""
    return panel.unit_values(
        name,
        units.to_numpy(),
        f"analyses[{analysis_id}].options.{option}",
        f"give every unit its {name} (the data's column named as data.columns.region or "
        "among data.columns.unit_columns)",
    )


ANALYTIC_LABEL = (
    "de Chaisemartin-D'Haultfœuille analytic variance (each group's influence function, first "
    "differences centred on their cohort's mean), normal reference, as did_multiplegt_dyn"
)


class MultiplegtDyn(MultiplegtDynOptions):
    """de Chaisemartin & D'Haultfœuille's DID_ℓ: the average total effect per unit of
    treatment, the effects ℓ = 1 … `effects` periods after the first switch (event times
    0 … effects − 1) and the placebos, which compare the `placebo` periods before it.

    Inference: "cluster_robust" is the authors' analytic variance with a normal reference,
    clustered by `inference.cluster` (the unit, or a unit-table column such as region).
    "default" follows the linear DiD rule (inference/policy.py): the comparison-pooled variance
    for few treated units or a regional concentration; otherwise below 20 treated units the
    cohort-stratified variance (the rows are linear in the outcomes with weights that depend
    only on a unit's treatment path on a balanced panel), the analytic variance above."""

    def fit(
        self, panel: ValidatedPanel, outcome: str, analysis_id: str, level: float = 0.95
    ) -> EffectEstimates:
        cells = panel.outcome_cells(outcome)
        partly = panel.partly_exposed_treated()
        if partly and len(partly) == int((panel.units["role"] == "treated").sum()):
            raise EstimationError(
                "every treated unit's period before its first treated one is its partly "
                "exposed period, which the design leaves out (partial_period_rule: transition), "
                "and did_multiplegt_dyn compares each switcher with that period",
                where="time.partial_period_rule",
                fix=f"{OTHER_RULE}, or read callaway_santanna, which measures from the period "
                "before it",
            )
        grid = unit_period_grid(cells, panel.data.treatment)
        cluster = panel.cluster_codes(self.inference.cluster, grid["unit"].to_numpy())
        row = grid["cell"].to_numpy()  # each grid row's cell (−1: no cell)

        def on_grid(values: np.ndarray) -> np.ndarray:
            """Cell values (n_cells, …) on the unit × period grid, NaN where there is no cell."""
            mask = (row >= 0).reshape(-1, *([1] * (values.ndim - 1)))
            return np.where(mask, values[np.maximum(row, 0)], np.nan)

        controls = None
        if self.covariates:
            where = f"analyses[{analysis_id}].options.covariates"
            x = panel.covariate_values(cells, tuple(self.covariates), where).to_numpy(float)
            controls = on_grid(x)
        het = None
        if self.predict_het:
            where = f"analyses[{analysis_id}].options.predict_het"
            x = panel.covariate_values(cells, tuple(self.predict_het), where).to_numpy(float)
            het = on_grid(x)
        strata = None
        if self.trends_nonparam:
            strata = _unit_column(panel, self.trends_nonparam, grid["unit"], analysis_id)
        # the cells' weights (their denominators)
        n_gt = on_grid(cells["weight"].to_numpy(float)) if self.weighted else None

        def estimate(
            rows: slice | np.ndarray,
            effects: int,
            placebo: int,
            same: bool,
            times: np.ndarray | None = None,
        ) -> DynamicFit:
            """The estimator on the grid's `rows`: all of them, or a part's (by_path, by),
            whose clusters are the units' labels when there is no cluster, so that the fits'
            clusters line up; predict_het on all of them only. `times` (n,): each grid row's
            weight multiplied by it (a bootstrap draw's multiplicities)."""
            whole = isinstance(rows, slice)
            part = cluster if cluster is not None or whole else grid["unit"].to_numpy()
            w = n_gt
            if times is not None:
                w = times.astype(float) if n_gt is None else n_gt * times
            return multiplegt_dyn(
                grid["y"].to_numpy()[rows],
                grid["unit"].to_numpy()[rows],
                grid["period"].to_numpy()[rows],
                grid["treated"].to_numpy()[rows],
                effects,
                placebo,
                self.normalized,
                None if part is None else part[rows],
                self.trends_lin,
                None if controls is None else controls[rows],
                self.continuous,
                None if w is None else w[rows],
                "" if self.switchers == "both" else self.switchers,
                self.only_never_switchers,
                same,
                self.same_switchers_pl,
                None if strata is None else strata[rows],
                less_conservative_se=self.less_conservative_se,
                predict_het=None if het is None or not whole else het,
                het_names=tuple(self.predict_het),
            )

        res = estimate(slice(None), self.effects, self.placebo, self.same_switchers)
        paths = grid.pivot(index="unit", columns="period", values="treated")
        parts: list[Part] = []
        unparted = None  # why by_path found no paths
        if self.by_path:
            try:
                parts = by_path(self, paths.to_numpy(), estimate)
            except EstimationError as exc:
                unparted = exc.one_line()
        elif self.by:
            values = _unit_column(panel, self.by, grid["unit"], analysis_id, "by")
            parts = by_value(self, values, grid["unit"].to_numpy(), estimate)
        done = [p for p in parts if not isinstance(p.fit, EstimationError)]
        fits = [res, *(p.fit for p in done)]
        terms = [*res.labels, *(f"{p.name}: {term}" for p in done for term in p.fit.labels)]
        grid_weights = np.vstack([res.weights, *(on_rows(p.fit.weights, p.rows) for p in done)])
        observed = row >= 0
        weights = np.zeros((len(grid_weights), len(cells)))
        weights[:, row[observed]] = grid_weights[:, observed]
        unit = cells["unit"].to_numpy()
        period = cells["period"].to_numpy()
        y = cells["y"].to_numpy(float)
        switched = (paths.to_numpy() != paths.to_numpy()[:, :1]).any(axis=1)
        n_treated = int(switched.sum())
        layout = panel_layout(panel, outcome)
        decision = did_decision(
            self.name,
            self.inference.method,
            n_treated,
            cluster is None,  # the pooled variances treat units as independent given region
            layout,
            lambda: layout.cell_weights(unit, period, weights),
            self.trends_nonparam,
        )
        choice = decision.choice
        vcov = res.vcov if len(fits) == 1 else joint_vcov(fits)
        df = np.full(len(terms), np.inf)
        key: InferenceKey = "influence_function"
        label = ANALYTIC_LABEL
        if self.less_conservative_se:
            label += " (less_conservative_se: switchers centred on those with their treatment path)"
        if cluster is not None:
            label += f", clustered by {self.inference.cluster} ({len(np.unique(cluster))} clusters)"
        label += because(choice.reason_for("cluster_robust"))
        warns = []
        if res.unobserved:
            warns.append(
                f"{len(res.unobserved)} unit(s) left out: no treatment or no outcome known "
                f"({', '.join(res.unobserved)})."
            )
        if res.unknown_cells:
            warns.append(
                f"{res.unknown_cells} unit-period(s) have no known treatment: gaps between equal "
                "known treatments take that value, and outcomes where it stays unknown are not "
                "used (de Chaisemartin & D'Haultfœuille's rules)."
            )
        if res.unsure:
            warns.append(
                f"{len(res.unsure)} unit(s) switch at an unknown date (a gap in their treatment"
                + (" or their controls" if self.covariates else "")
                + ") and are comparisons up to their last known treatment "
                f"({', '.join(res.unsure)})."
            )
        if self.same_switchers and self.trends_lin:
            warns.append(
                "same_switchers changes nothing with trends_lin: effect ℓ already uses the LAs "
                "seen in effects 1 … ℓ (as the authors' code)."
            )
        if res.early:
            warns.append(
                f"{len(res.early)} unit(s) switching in the second period left out: with a "
                f"linear trend for each unit they show none before their switch "
                f"({', '.join(res.early)})."
            )
        if res.no_controls:
            warns.append(
                f"{res.no_controls} unit-period(s) not used: a control variable "
                f"({', '.join(self.covariates)}) is missing there, so they count as unit-periods "
                "without a row, as in the authors' code."
            )
        if res.singular:
            warns.append(
                "The control variables are collinear among the units not yet switched with "
                f"starting treatment {', '.join(f'{v:g}' for v in res.singular)}: their "
                "coefficients are a pseudo-inverse's, as the authors' code does."
            )
        if unparted:
            warns.append(f"No rows by treatment path: {unparted}.")
        if res.het_missing:
            warns.append(
                f"{len(res.het_missing)} switching unit(s) left out of predict_het's "
                f"regressions: no value of {', '.join(self.predict_het)} "
                f"({', '.join(res.het_missing)})."
            )
        if res.dropped:
            warns.append(
                f"{len(res.dropped)} unit(s) left out: every unit of their baseline treatment "
                f"switches at the same date, so none is a comparison ({', '.join(res.dropped)})."
            )
        if choice.method == "cluster_bootstrap":
            boot = self._bootstrap(estimate, cluster, grid["unit"].to_numpy(), res.labels)
            vcov, key = boot.vcov, "cluster_bootstrap"
            label = bootstrap_label(boot, self.inference.draws, self.seed, self.inference.cluster)
            warns.extend(bootstrap_warnings(boot, res.labels, self.inference.draws, n_treated))
        elif decision.variance is not None:
            vcov, df, key = decision.variance.vcov, decision.variance.df, "pooled_panel"
            label = pooled_label(layout, choice.reason)
        elif choice.method == "cohort_stratified":
            # strata: the units' treatment paths (sorted units, as the cells' codes)
            path = pd.factorize(pd.Series([tuple(r) for r in paths.to_numpy()]))[0]
            small = stratified_or_pooled(
                weights,
                y,
                unit,
                period,
                path.astype(float),
                vcov,
                layout,
                decision.pooled,
                choice.reason,
                "DID_ℓ rows",
                "treatment path",
            )
            if small is None:
                warns.append(unlearnable("treatment path", "the analytic variance"))
            else:
                vcov, df, key, label = small.vcov, small.df, small.key, small.label
        if self.less_conservative_se and key != "influence_function":
            warns.append(
                "less_conservative_se changes only the analytic variance, which this analysis "
                'does not use (inference.method: "cluster_robust" uses it).'
            )
        # the paths' rows (after the overall ones) have no event time: NaN lag
        lag = np.concatenate([res.lag, *(np.full(f.lag.size, np.nan) for f in fits[1:])])
        est = np.concatenate([f.estimate for f in fits])
        summ = t_summary(est, vcov, df, level)
        df = np.broadcast_to(df, est.shape)
        placebos = np.flatnonzero(lag < 0)
        lagged = np.isfinite(lag) & (lag != 0)  # effects and placebos (not the total effect)
        placebo_test = joint_zero_test(est, vcov, df, placebos)
        effects_equal = equal_test(est, vcov, df, np.flatnonzero(lag > 0))
        # effect ℓ is event time ℓ − 1 from the first switch, placebo ℓ event time −ℓ − 1
        event_time = np.where(lag != 0, lag - 1, np.nan)
        switchers = np.concatenate([f.n_switchers for f in fits])
        rows = [
            summ.row(
                j,
                term,
                est[j],
                df=float(df[j]),
                event_time=event_time[j],
                n_units=switchers[j],
            )
            for j, term in enumerate(terms)
        ]
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
            n_units=res.groups,
            n_treated=n_treated,
            n_obs=int(np.count_nonzero(np.abs(weights).sum(axis=0))),
            facts=MultiplegtDynFacts(
                inference_method=key,
                effects=int((res.lag > 0).sum()),
                placebos=int(placebos.size),
                groups=res.groups,
                left_out=list(res.dropped),
                linear_trends=self.trends_lin,
                covariates=list(self.covariates),
                continuous=self.continuous,
                weighted=self.weighted,
                switchers=self.switchers,
                only_never_switchers=self.only_never_switchers,
                same_switchers=0
                if self.trends_lin
                else int(self.same_switchers) + int(self.same_switchers_pl),
                trends_nonparam=self.trends_nonparam,
                effects_equal=effects_equal,
                placebo_test=placebo_test,
                pretest_power=None
                if self.refit
                else pretest_summary(
                    est[lagged], vcov[np.ix_(lagged, lagged)], event_time[lagged], -1.0
                ),
                treatment_paths=list(res.design),
                late_switchers=res.not_followed,
                paths=[part_facts(p, "path") for p in parts] if self.by_path else [],
                subgroups=[part_facts(p, self.by) for p in parts] if self.by else [],
                heterogeneity=[_with_interval(h, level) for h in res.heterogeneity],
            ),
            warnings=tuple(warns)
            + (
                (
                    f"{len(partly)} treated units' period before their first treated one is "
                    "their partly exposed period, which the design leaves out (partial_period_"
                    "rule: transition): they are in no effect.",
                )
                if partly
                else ()
            ),
        )

    def _bootstrap(
        self,
        estimate: Callable[..., DynamicFit],
        cluster: np.ndarray | None,
        unit: np.ndarray,
        labels: tuple[str, ...],
    ) -> BootstrapDraws:
        """The cluster bootstrap of the overall rows (multiplegt_bootstrap.py): each draw
        re-estimates on the drawn clusters' rows, weighted by how often each was drawn."""

        def refit(times: np.ndarray) -> tuple[tuple[str, ...], np.ndarray]:
            drawn = times > 0
            fit = estimate(drawn, self.effects, self.placebo, self.same_switchers, times)
            return fit.labels, fit.estimate

        by = unit if cluster is None else cluster
        return draw_fits(refit, by, labels, self.inference.draws, self.seed)


def _with_interval(row: dict[str, Any], level: float) -> dict[str, Any]:
    """A predict_het row with its `level` interval on t(df)."""
    half = stats.t.ppf(0.5 + level / 2, row["df"]) * row["std_error"]
    return {**row, "conf_low": row["estimate"] - half, "conf_high": row["estimate"] + half}
