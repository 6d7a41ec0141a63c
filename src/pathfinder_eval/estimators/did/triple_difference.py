"""Triple differences on unit-level panels: Ortiz-Villavicencio & Sant'Anna (2025), "Better
Understanding Triple Differences Estimators", arXiv:2505.09942.

Units (children, households) belong to a group that enables the reform at a start period g
(an LA, a county; never for comparison groups) and are eligible for it or not (an age band,
a need category). Each ATT(g,t) of the eligible units of cohort g is three two-period DiDs
against the cohort's ineligible units, the never-treated eligible units and the never-treated
ineligible units: DiD(g,1 vs g,0) + DiD(g,1 vs ∞,1) − DiD(g,1 vs ∞,0) (their eq. 4.8 with the
never-treated comparison), each the doubly robust, IPW or outcome-regression DiD of Sant'Anna
& Zhao (2020) that group_time.did_panel_2x2 computes, with its influence function. With
not-yet-treated comparisons each cohort starting after both of a cell's periods is a comparison
as well: one DDD against each, combined by the paper's GMM weights (eq. 4.11). A panel may
be unbalanced: each cell uses the units observed in both of its periods, as moderndid's
`ddd(..., allow_unbalanced_panel=True)` does. The cells form a GroupTimeATT, so the
aggregations and influence-function inference are Callaway & Sant'Anna's (group_time.py).
Clustered (by LA), the default variance is CR2 with Bell-McCaffrey df (cr2_blocks):
summed influence functions over-reject when few clusters are treated
(benchmarks/ddd_units_validity.py).

Where an LA-level panel has the targeted and the untargeted group's outcomes as two columns,
a design's `contrasts` (the DiD of their difference) is the same estimator without covariates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.estimators.did.facts import TripleDifferenceFacts
from pathfinder_eval.estimators.did.group_time import (
    METHOD_LABEL,
    GroupTimeATT,
    aggregate,
    did_panel_2x2,
    zero_se,
)
from pathfinder_eval.estimators.did.group_time_inference import (
    analytic_se,
    influence_vcov,
    pretest,
)
from pathfinder_eval.inference.policy import SMALL_SAMPLE_TREATED
from pathfinder_eval.results import Dropped, EffectEstimates, InferenceUsed, estimates_table
from pathfinder_eval.settings import BasePeriod
from pathfinder_eval.settings import GroupTimeMethod as Method

# a cell's blocks of units: 0 and 1 the treated cohort's eligible and ineligible units, then
# 2 + 2k and 3 + 2k comparison cohort k's; in one comparison's DDD, DiD(0 vs 1) + DiD(0 vs 2 + 2k)
# − DiD(0 vs 3 + 2k) (the paper's subgroups 4 vs 3, 2 and 1)
NEVER = float("nan")


@dataclass(frozen=True)
class UnitPanel:
    """A unit-level panel in wide form. y: (n, T), NaN where a unit is not observed;
    x: (n, T, p) covariates with the intercept first (NaN where missing); cohort: (n,) the
    start of the unit's group (NaN never); eligible: (n,) 0/1; periods: (T,) ascending."""

    y: np.ndarray
    x: np.ndarray
    cohort: np.ndarray
    eligible: np.ndarray
    periods: np.ndarray


def _base(g: float, t_idx: int, periods: np.ndarray, base_period: BasePeriod) -> float:
    """The cell's base period: g − 1 (the period before g) after the start and always with a
    universal base; the period before t before the start with a varying base."""
    before_g = periods[periods < g]
    pre_start = before_g[-1] if len(before_g) else np.nan
    if base_period == "universal" or periods[t_idx] >= g:
        return float(pre_start)
    return float(periods[t_idx - 1]) if t_idx > 0 else np.nan


def _cell_units(
    panel: UnitPanel,
    g: float,
    t: int,
    b: int,
    covariates_at: str,
    comparisons: tuple[float, ...] = (NEVER,),
) -> tuple[np.ndarray, np.ndarray]:
    """(n,) whether each unit enters cell (g, t) with base b (cohort g or a comparison cohort,
    NaN never treated; the outcome in both periods, the covariates where they are read), and
    its block (module comment)."""
    ineligible = 1 - panel.eligible.astype(int)
    block = np.where(panel.cohort == g, ineligible, -1)
    for k, c in enumerate(comparisons):
        in_c = np.isnan(panel.cohort) if np.isnan(c) else panel.cohort == c
        block = np.where(in_c, 2 + 2 * k + ineligible, block)
    x = panel.x[:, t if covariates_at == "period" else b, :]
    seen = (block >= 0) & np.isfinite(panel.y[:, t])
    seen &= np.isfinite(panel.y[:, b]) & np.isfinite(x).all(axis=1)
    return seen, block


def _cell(
    panel: UnitPanel,
    g: float,
    t: int,
    b: int,
    method: Method,
    covariates_at: str,
    comparison: float = NEVER,
) -> tuple[float, np.ndarray, np.ndarray] | str:
    """ATT(g,t) against one comparison cohort (NaN: never treated) and its influence (n,),
    scaled so that att − target ≈ its mean over all n units, with the units it used; or why
    it is missing."""
    y, n = panel.y, len(panel.cohort)
    x = panel.x[:, t if covariates_at == "period" else b, :]
    seen, block = _cell_units(panel, g, t, b, covariates_at, (comparison,))
    if not np.any(seen & (block == 0)):
        return "no eligible unit of the cohort observed in both periods"
    att, influence = 0.0, np.zeros(n)
    for other, sign in ((1, 1.0), (2, 1.0), (3, -1.0)):
        rows = np.flatnonzero(seen & ((block == 0) | (block == other)))
        if not np.any(block[rows] == other):
            return f"no {_block_name(other, (comparison,))} unit observed in both periods"
        d = (block[rows] == 0).astype(float)
        try:
            cell = did_panel_2x2(y[rows, t] - y[rows, b], d, x[rows], np.ones(len(rows)), method)
        except np.linalg.LinAlgError as err:
            return f"comparison with the {_block_name(other, (comparison,))} units: {err}"
        att += sign * cell.att
        influence[rows] += sign * cell.influence * (n / len(rows))
    return att, influence, seen


def _comparisons(
    panel: UnitPanel, g: float, t: float, b: float, control_group: str
) -> tuple[float, ...]:
    """The cohorts cell (g, t) with base b may compare with: never treated, and with
    not_yet_treated every other cohort starting after both periods."""
    later = np.unique(panel.cohort[np.isfinite(panel.cohort)])
    later = later[(later > max(t, b)) & (later != g)] if control_group == "not_yet_treated" else []
    has_never = bool(np.any(np.isnan(panel.cohort)))
    return (*((NEVER,) if has_never else ()), *(float(c) for c in later))


def _gmm(atts: np.ndarray, influence: np.ndarray, used: np.ndarray) -> np.ndarray:
    """Ortiz-Villavicencio & Sant'Anna's (2025, eq. 4.11) weights Ω⁻¹1 / 1ᵀΩ⁻¹1 on one cell's
    DDDs against several comparison cohorts, Ω the covariance of their influence functions
    (n, K) over the units any of them used (as moderndid's `ddd`)."""
    omega = np.atleast_2d(np.cov(influence[used], rowvar=False))
    try:
        solved = np.linalg.solve(omega, np.ones(len(atts)))
    except np.linalg.LinAlgError:
        solved = np.linalg.pinv(omega) @ np.ones(len(atts))
    return solved / solved.sum()


@dataclass(frozen=True)
class TripleCells:
    """The ATT(g,t) (gt) with, per cell, the comparison cohorts it combined (NaN never
    treated), their GMM weights (one comparison: weight 1), and those it left out with why."""

    gt: GroupTimeATT
    comparisons: tuple[tuple[float, ...], ...]
    mix: tuple[np.ndarray, ...]
    left_out: tuple[dict[float, str], ...]


def triple_difference_att(
    panel: UnitPanel,
    *,
    method: Method = "dr",
    base_period: BasePeriod = "universal",
    covariates_at: str = "period",
    control_group: str = "never_treated",
    cluster: np.ndarray | None = None,
) -> TripleCells:
    """Every estimable ATT(g,t) of a staggered triple difference. control_group
    "never_treated" compares each cohort with the never-treated units; "not_yet_treated" also
    with each cohort starting after both of a cell's periods, one DDD per comparison cohort
    combined by their GMM weights (`_gmm`); `cluster` (CR2's) leaves out a comparison cohort
    held by one cluster while another remains. covariates_at: "period" takes each cell's
    covariates at its period t (as moderndid's ddd; after the start the reform may have moved
    them); "base" at its base period (as Callaway & Sant'Anna's did)."""
    periods = panel.periods
    cohorts = np.unique(panel.cohort[np.isfinite(panel.cohort)])
    cohorts = cohorts[cohorts > periods[0]]
    if not len(cohorts):
        raise EstimationError(
            "no group starts after the first period: nothing to compare before and after",
            where="first_treated",
            fix="give each treated group's first treated period; leave never-treated missing",
        )
    never = np.isnan(panel.cohort)
    for e in (0, 1):
        if control_group == "never_treated" and not np.any(never & (panel.eligible == e)):
            raise EstimationError(
                f"no never-treated {'eligible' if e else 'ineligible'} units: the triple "
                "difference compares each cohort with both never-treated subgroups",
                where="first_treated / eligible",
                fix="include groups that never start, with eligible and ineligible units, or "
                "compare with groups not yet treated (control_group='not_yet_treated')",
            )
    index = {float(p): i for i, p in enumerate(periods)}
    cols: dict[str, list] = {k: [] for k in ("g", "t", "b", "att", "psi", "n1", "n0")}
    comparisons, mixes, left_out = [], [], []
    dropped: list[tuple[float, float, str]] = []
    for g in cohorts:
        for t_idx, t in enumerate(periods):
            b = _base(g, t_idx, periods, base_period)
            if np.isnan(b) or b == t:
                continue
            got = _mixed_cell(
                panel,
                g,
                (t_idx, index[b]),
                method,
                covariates_at,
                _comparisons(panel, g, t, b, control_group),
                cluster,
            )
            if isinstance(got, str):
                dropped.append((float(g), float(t), got))
                continue
            for k, v in zip(cols, (g, t, b, got.att, got.influence, got.n1, got.n0), strict=True):
                cols[k].append(v)
            comparisons.append(got.used)
            mixes.append(got.weights)
            left_out.append(got.left_out)
    if not cols["att"]:
        raise EstimationError(
            "no ATT(g,t) could be estimated",
            where="the panel",
            fix="; ".join(sorted({r for *_, r in dropped})) or "check the periods",
        )
    group, time = np.array(cols["g"], float), np.array(cols["t"], float)
    used_cohort = np.zeros((len(group), len(cohorts) + 1), dtype=bool)
    for j, used in enumerate(comparisons):
        for c in used:
            used_cohort[j, len(cohorts) if np.isnan(c) else np.searchsorted(cohorts, c)] = True
    gt = GroupTimeATT(
        group=group,
        time=time,
        base=np.array(cols["b"], float),
        att=np.array(cols["att"]),
        influence=np.asfortranarray(np.column_stack(cols["psi"])),
        post=group <= time,
        n_treated=np.array(cols["n1"]),
        n_control=np.array(cols["n0"]),
        unit_cohort=panel.cohort,
        unit_weight=np.ones(len(panel.cohort)),
        cohorts=cohorts,
        periods=periods,
        comparison=used_cohort,
        dropped_cells=tuple(dropped),
    )
    return TripleCells(gt, tuple(comparisons), tuple(mixes), tuple(left_out))


@dataclass(frozen=True)
class _Mixed:
    """One cell's DDDs combined: ATT, influence (n,), the treated-eligible and other units
    used, the comparison cohorts used with their GMM weights, and those left out with why."""

    att: float
    influence: np.ndarray
    n1: int
    n0: int
    used: tuple[float, ...]
    weights: np.ndarray
    left_out: dict[float, str]


def _mixed_cell(
    panel: UnitPanel,
    g: float,
    periods: tuple[int, int],
    method: Method,
    covariates_at: str,
    comparisons: tuple[float, ...],
    cluster: np.ndarray | None = None,
) -> _Mixed | str:
    """Cell (g, t) with base b (`periods`, their indices) against each comparison cohort, the
    DDDs combined by GMM weights; or why none could be used. With `cluster` (CR2), a comparison
    cohort whose eligible or ineligible units all lie in one cluster is left out while another
    remains: CR2 has no variance for it."""
    t, b = periods
    fits, left_out = [], {}
    for c in comparisons:
        got = _cell(panel, g, t, b, method, covariates_at, c)
        if isinstance(got, str):
            left_out[c] = got
        else:
            fits.append((c, *got))
    treated = (panel.cohort == g) & fits[0][3] if fits else None
    if cluster is not None and len(fits) > 1 and not _one_cluster_subgroup(panel, treated, cluster):
        lone = [_lone_comparison(panel, f[3], f[0], cluster) for f in fits]
        if not all(lone):
            left_out |= {f[0]: why for f, why in zip(fits, lone, strict=True) if why}
            fits = [f for f, why in zip(fits, lone, strict=True) if not why]
    if not fits:
        return "; ".join(dict.fromkeys(left_out.values())) or (
            "no group never treated or not yet treated in both periods to compare with"
        )
    used = tuple(f[0] for f in fits)
    atts = np.array([f[1] for f in fits])
    influence = np.column_stack([f[2] for f in fits])
    seen = np.logical_or.reduce([f[3] for f in fits])
    weights = np.ones(1) if len(fits) == 1 else _gmm(atts, influence, seen)
    n1 = int(np.sum(seen & (panel.cohort == g) & (panel.eligible == 1)))
    return _Mixed(
        float(atts @ weights),
        influence @ weights,
        n1,
        int(seen.sum()) - n1,
        used,
        weights,
        left_out,
    )


def _lone_comparison(panel: UnitPanel, seen: np.ndarray, c: float, cluster: np.ndarray) -> str:
    """Why comparison cohort c cannot enter a clustered cell ("" when it can): one cluster
    holds all its eligible or all its ineligible units seen in the cell."""
    in_c = (np.isnan(panel.cohort) if np.isnan(c) else panel.cohort == c) & seen
    kind = _one_cluster_subgroup(panel, in_c, cluster)
    return f"one cluster holds all its {kind} units: CR2 has no variance for it" if kind else ""


def _one_cluster_subgroup(panel: UnitPanel, units: np.ndarray, cluster: np.ndarray) -> str:
    """ "eligible" or "ineligible" when all of `units`' units of that kind lie in at most one
    cluster (CR2 then has no variance for them), else ""."""
    for e, kind in ((1, "eligible"), (0, "ineligible")):
        if np.unique(cluster[units & (panel.eligible == e)]).size <= 1:
            return kind
    return ""


SUBGROUPS = {
    "treated eligible": 4,
    "treated ineligible": 3,
    "never-treated eligible": 2,
    "never-treated ineligible": 1,
}


def _number(period: float) -> str:
    """A period as the API's callers wrote it (the design route passes its labels)."""
    return f"{period:g}"


def fit_triple_difference(
    panel: UnitPanel,
    *,
    outcome: str,
    covariates: tuple[str, ...] = (),
    method: Method = "dr",
    base_period: BasePeriod = "universal",
    covariates_at: str = "period",
    control_group: str = "never_treated",
    cluster: np.ndarray | None = None,
    level: float = 0.95,
    inference: str = "cr2",
    dropped: tuple[Dropped, ...] = (),
    notes: tuple[str, ...] = (),
    label: Callable[[float], str] = _number,
) -> EffectEstimates:
    """The triple difference's overall ATT (the simple aggregation: post-start cells weighted
    by cohort size) and event-time effects, with influence-function standard errors clustered
    by `cluster` ((n,) codes 0..G−1) with a t(G − 1) reference; with cluster None each unit
    is its own cluster and the reference is normal, as moderndid's analytic standard errors.
    Aggregated rows include the variance of the estimated cohort shares (R did's convention;
    moderndid's agg_ddd leaves it out). `notes`: the caller's statements for the warnings;
    `label`: a period (a cohort's start) as the warnings name it."""
    use_cr2 = cluster is not None and inference == "cr2"
    cells = triple_difference_att(
        panel,
        method=method,
        base_period=base_period,
        covariates_at=covariates_at,
        control_group=control_group,
        cluster=cluster if use_cr2 else None,
    )
    gt = cells.gt
    zero = zero_se(panel.y[np.isfinite(panel.y)])
    simple, dynamic = aggregate(gt, "simple"), aggregate(gt, "dynamic")
    est = np.r_[simple.overall, dynamic.estimate]
    psi = np.column_stack([simple.overall_influence, dynamic.influence])
    code = np.where(np.isnan(panel.cohort), 1, 3) + panel.eligible
    treated_units = (code == 4) & np.isin(panel.cohort, gt.group)  # cohorts with estimates
    n_clusters = len(code) if cluster is None else int(cluster.max()) + 1
    if use_cr2:
        blocks = cr2_blocks(panel, cells, cluster, covariates_at)
        weights = np.vstack([simple.weights, dynamic.weights])
        shares = psi - gt.influence @ weights.T  # the cohort shares' term of each row
        rows_cr2 = blocks.rows(weights, shares)
        cells_cr2 = blocks.rows(np.eye(len(gt.att)))
        se, df, vcov, cell_se = rows_cr2.se, rows_cr2.df, rows_cr2.vcov, cells_cr2.se
        pre = pretest(gt, vcov=cells_cr2.vcov)
    else:  # few clusters: t(G − 1)
        se, vcov = analytic_se(psi, cluster, zero), influence_vcov(psi, cluster)
        df = np.full(len(est), np.inf if cluster is None else n_clusters - 1.0)
        cell_se, pre = analytic_se(gt.influence, cluster, zero), pretest(gt, cluster, zero)
    half = stats.t.ppf(0.5 + level / 2.0, df) * se
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = est / se
    rows = [
        {
            "term": "ATT (simple)" if i == 0 else f"event time {int(e)}",
            "estimate": est[i],
            "std_error": se[i],
            "statistic": stat[i],
            "p_value": 2.0 * stats.t.sf(abs(stat[i]), df[i]),
            "ci_lower": est[i] - half[i],
            "ci_upper": est[i] + half[i],
            "df": np.nan if cluster is None else df[i],
            "event_time": np.nan if i == 0 else e,
        }
        for i, e in enumerate(np.r_[np.nan, dynamic.labels])
    ]
    treated_clusters = (
        int(treated_units.sum()) if cluster is None else len(np.unique(cluster[treated_units]))
    )
    notes = (*notes, *_inference_notes(cluster, n_clusters, treated_clusters, use_cr2))
    if use_cr2 and blocks.lone:
        notes = (*notes, _lone_note(blocks.lone, label))
    partial = [out for out in cells.left_out if out]
    if control_group == "not_yet_treated" and partial:
        left = sorted({c for out in partial for c in out}, key=lambda c: (np.isnan(c), c))
        cohorts_out = ["never" if np.isnan(c) else label(c) for c in left]
        notes = (
            *notes,
            f"{len(partial)} ATT(g,t) left out a not-yet-treated comparison cohort "
            f"({', '.join(cohorts_out)}: unusable there, or under CR2 held by one cluster; "
            "diagnostics' comparisons_left_out say why): those cells compare with the others "
            "only",
        )
    lost = sorted({g for g, *_ in gt.dropped_cells})
    if lost:
        notes = (
            *notes,
            f"{len(gt.dropped_cells)} ATT(g,t) could not be estimated (cohorts "
            f"{', '.join(label(g) for g in lost)}; diagnostics' dropped_cells say why): the "
            "aggregations use the others",
        )
    return EffectEstimates(
        analysis_id="triple_difference",
        outcome=outcome,
        estimator="triple_difference",
        inference=InferenceUsed(
            key="ddd_cr2"
            if use_cr2
            else ("influence_function" if cluster is None else "ddd_clustered"),
            label=f"CR2 by {n_clusters} clusters, Bell-McCaffrey df"
            + (" (the covariates' leverage left out)" if covariates else "")
            if use_cr2
            else "influence-function standard errors"
            + (
                " (units independent), normal reference"
                if cluster is None
                else f" summed within {n_clusters} clusters, t({n_clusters - 1}) reference"
            ),
        ),
        table=estimates_table(rows),
        level=level,
        vcov=vcov,
        n_units=len(code),
        n_treated=int(treated_units.sum()),
        n_obs=int(np.isfinite(panel.y).sum()),
        facts=TripleDifferenceFacts(
            method=method,
            method_label=METHOD_LABEL[method],
            base_period=base_period,
            control_group=control_group,
            covariates=list(covariates),
            covariates_at=covariates_at,
            att_gt=[
                {
                    "cohort": float(g),
                    "period": float(t),
                    "base": float(b),
                    "estimate": float(a),
                    "std_error": float(s),
                    "treated_eligible_units": int(n1),
                    "other_units": int(n0),
                    **(
                        {}
                        if control_group == "never_treated"
                        else {
                            "comparison_weights": {
                                _cohort_key(c): float(w) for c, w in zip(used, mix, strict=True)
                            },
                            "comparisons_left_out": {_cohort_key(c): why for c, why in out.items()},
                        }
                    ),
                }
                for g, t, b, a, s, n1, n0, used, mix, out in zip(
                    gt.group,
                    gt.time,
                    gt.base,
                    gt.att,
                    cell_se,
                    gt.n_treated,
                    gt.n_control,
                    cells.comparisons,
                    cells.mix,
                    cells.left_out,
                    strict=True,
                )
            ],
            pretest=pre,
            units_by_subgroup={k: int(np.sum(code == v)) for k, v in SUBGROUPS.items()},
            n_clusters=n_clusters,
            treated_clusters=treated_clusters,
            dropped_cells=[{"cohort": g, "period": t, "reason": r} for g, t, r in gt.dropped_cells],
        ),
        warnings=notes,
        dropped=dropped,
    )


def _cohort_key(c: float) -> str:
    return "never" if np.isnan(c) else f"{c:.15g}"


def _inference_notes(
    cluster: np.ndarray | None, n_clusters: int, treated: int, cr2: bool
) -> tuple[str, ...]:
    """What the reader must know about the standard errors, with what
    benchmarks/ddd_units_validity.py measured (children's records in 60 LAs with LA shocks,
    400 replications): units treated as independent, or few treated clusters."""
    if cluster is None:
        return (
            "Standard errors treat units as independent. Where the reform is assigned by LA "
            "(or county), units of one LA share its shocks: pass cluster=<the LA column> "
            "(treated as independent, children's records with LA shocks rejected 7–25% of "
            "true nulls at 5%).",
        )
    if treated >= SMALL_SAMPLE_TREATED:
        return ()
    if cr2:
        return (
            f"Only {treated} of {n_clusters} clusters hold treated eligible units. CR2 with "
            "Bell-McCaffrey df held its size with 4 and 10 treated LAs of 60 (0.5–3.8% at 5%), "
            "but with 4 its intervals were 2.25 times as wide as they need be; the LA-level "
            "contrast (a design's contrasts, or minus= on pe.callaway_santanna) held 3.8–6.8% "
            "at 1.02–1.12 times.",
        )
    return (
        f"Only {treated} of {n_clusters} clusters hold treated eligible units: influence "
        "functions summed within clusters understate the variance when few clusters are "
        "treated (MacKinnon & Webb 2017, J. Applied Econometrics 32:233–254; 10.8–25% of true "
        "nulls rejected at 5% with 3 to 10 treated LAs of 60); read these p-values as "
        "indicative only.",
    )


def _lone_note(
    lone: tuple[tuple[float, float, int, tuple[float, ...]], ...], label: Callable[[float], str]
) -> str:
    """Where CR2 has no variance: cells in which one cluster holds a whole subgroup."""
    shown = "; ".join(
        f"ATT({label(g)}, {label(t)}): the {_block_name(b, used, label)}"
        for g, t, b, used in lone[:3]
    )
    more = f" and {len(lone) - 3} more" if len(lone) > 3 else ""
    return (
        f"One cluster holds all the units of a subgroup in {len(lone)} cells ({shown}{more}): "
        "CR2 has no variance for a lone cluster, so rows using those cells have no standard "
        "error. With few treated LAs use the LA-level contrast: the children's means by LA, "
        "group and period as a design's contrasts or minus= on pe.callaway_santanna (its "
        "default variance pools the comparison LAs; benchmarks/ddd_units_validity.py)."
    )


def _block_name(
    block: int,
    comparisons: tuple[float, ...],
    label: Callable[[float], str] = _number,
) -> str:
    """A cell's block as the reader knows it: eligible, ineligible (of the treated cohort),
    never-treated eligible, cohort 2023 ineligible, ... (`label`: a cohort's start)."""
    kind = "eligible" if block % 2 == 0 else "ineligible"
    if block < 2:
        return kind
    c = comparisons[(block - 2) // 2]
    return f"{'never-treated' if np.isnan(c) else f'cohort {label(c)}'} {kind}"


@dataclass(frozen=True)
class Cr2Rows:
    """CR2 of m rows: se, df (m,) (NaN where a row uses a cell in which one cluster holds a
    whole subgroup) and sums (G, m), the clusters' adjusted influence sums."""

    se: np.ndarray
    df: np.ndarray
    sums: np.ndarray
    n: int

    @property
    def vcov(self) -> np.ndarray:
        return self.sums.T @ self.sums / self.n**2


@dataclass(frozen=True)
class Cr2Blocks:
    """What CR2 reads of each (cell, block) of units, by cluster (G clusters, K cells, B blocks
    in all: a cell's treated eligible and ineligible units and each comparison cohort's, module
    comment): scaled, Σ f² over the block's units; lever, f·m/√N, the block's column of U
    before a row's weights; adjusted (G, K), Σ_b f × the cluster's influence sum in block b;
    coef (B,), a unit's weight on its change per unit of the row's weight on the cell;
    cell (B,), each block's cell; broken (K,), cells where one cluster holds a whole block, and
    `lone` names them (cohort, period, block)."""

    scaled: np.ndarray
    lever: np.ndarray
    adjusted: np.ndarray
    coef: np.ndarray
    cell: np.ndarray
    broken: np.ndarray
    cluster: np.ndarray
    n: int
    lone: tuple[tuple[float, float, int, tuple[float, ...]], ...]

    def rows(self, weights: np.ndarray, extra: np.ndarray | None = None) -> Cr2Rows:
        """CR2 and Bell-McCaffrey df of the rows `weights` (m, K) of the ATT(g,t); `extra`
        (n, m): influence the rows also have, added to the clusters' sums unscaled (the
        estimated cohort shares' term of aggregated rows), outside the df."""
        sums = self.adjusted @ weights.T
        if extra is not None:
            np.add.at(sums, self.cluster, extra)
        gram = self.lever.T @ self.lever
        lever2 = self.lever**2
        df = np.full(weights.shape[0], np.nan)
        for r, w in enumerate(weights):
            if np.any(self.broken & (w != 0)):
                continue
            a = w[self.cell] * self.coef
            d, row_norm = self.scaled @ a**2, lever2 @ a**2
            tr_b = d.sum() - row_norm.sum()
            tr_b2 = d @ d - 2.0 * d @ row_norm + np.sum((gram * np.outer(a, a)) ** 2)
            df[r] = tr_b**2 / tr_b2
        sums[:, ~np.isfinite(df)] = np.nan
        return Cr2Rows(np.sqrt(np.sum(sums**2, axis=0)) / self.n, df, sums, self.n)


def cr2_blocks(
    panel: UnitPanel, cells: TripleCells, cluster: np.ndarray, covariates_at: str
) -> Cr2Blocks:
    """CR2 with Bell-McCaffrey degrees of freedom for rows of the ATT(g,t), clustered (Bell &
    McCaffrey 2002; Pustejovsky & Tipton 2018): the per-block sums, once for all rows.

    Without covariates each ATT(g,t) is m₀ − m₁ − Σ_k w_k (m₂ₖ − m₃ₖ), its blocks' mean changes
    (one comparison cohort: the paper's m4 − m3 − m2 + m1), the GMM weights w held fixed, and
    any rows are contrasts of one regression of the stacked cells' changes on cell × block
    dummies: CR2 scales each cluster's residual sum in a cell's block by
    f = (1 − its share of that block)^(−1/2) (a treated cluster holding a third of the treated
    eligible units counts 1.5 times), and the working-independence Bell-McCaffrey df,
    (tr B)² / tr B² with B = diag(d) − U Uᵀ, come from the same sums (traces only: no G × G
    matrix). With covariates the influence functions' sums are scaled the same way, the
    covariates' own leverage left out: an approximation."""
    gt = cells.gt
    n, k = len(panel.cohort), len(gt.att)
    n_cl = int(cluster.max()) + 1
    index = {float(p): i for i, p in enumerate(panel.periods)}
    n_blocks = [2 + 2 * len(c) for c in cells.comparisons]
    first = np.r_[0, np.cumsum(n_blocks)]
    scaled, lever = np.zeros((n_cl, first[-1])), np.zeros((n_cl, first[-1]))
    adjusted, coef = np.zeros((n_cl, k)), np.zeros(first[-1])
    broken = np.zeros(k, dtype=bool)
    lone = []
    for j in range(k):
        used, nb = cells.comparisons[j], n_blocks[j]
        seen, block = _cell_units(
            panel, gt.group[j], index[gt.time[j]], index[gt.base[j]], covariates_at, used
        )
        at = cluster[seen] * nb + block[seen]
        size = np.bincount(at, minlength=nb * n_cl).reshape(n_cl, nb).astype(float)
        psi = np.bincount(at, weights=gt.influence[seen, j], minlength=nb * n_cl)
        total = size.sum(axis=0)
        whole = np.any(size == total, axis=0) & (total > 0)
        if whole.any():
            broken[j] = True
            lone += [(gt.group[j], gt.time[j], int(b), used) for b in np.flatnonzero(whole)]
            continue
        f = 1.0 / np.sqrt(1.0 - size / total)
        span = slice(first[j], first[j + 1])
        scaled[:, span] = size * f**2
        lever[:, span] = f * size / np.sqrt(total)
        adjusted[:, j] = (psi.reshape(n_cl, nb) * f).sum(axis=1)
        sign = np.r_[1.0, -1.0, np.column_stack([-cells.mix[j], cells.mix[j]]).ravel()]
        coef[span] = sign / total
    cell = np.repeat(np.arange(k), n_blocks)
    return Cr2Blocks(scaled, lever, adjusted, coef, cell, broken, cluster, n, tuple(lone))
