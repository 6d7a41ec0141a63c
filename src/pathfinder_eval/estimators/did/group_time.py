"""Callaway & Sant'Anna (2021) group-time average treatment effects and their aggregations.

Callaway, B. and Sant'Anna, P. H. C. (2021), "Difference-in-Differences with multiple time
periods", J. Econometrics 225(2):200–230. Each ATT(g,t) is a 2×2 DiD of cohort g against a
comparison group (never treated, or not yet treated by max(t, base) + δ) between period t and a
base period, estimated by outcome regression, normalised inverse probability weighting or the
doubly robust estimator of Sant'Anna & Zhao (2020, J. Econometrics 219:101–122). Every ATT(g,t)
carries its influence function, so aggregations (simple, event time, cohort, calendar) are
linear maps with explicit weights, and inference (analytic, clustered, multiplier bootstrap,
sup-t uniform bands, the pre-test of parallel trends) works on any of them.

Conventions follow the R package `did` (Callaway & Sant'Anna, version 2.5.1) so numbers can be
checked against it: influence functions are scaled so that estimate − target ≈ mean(ψ_i), hence
se = sqrt(Σ_c (Σ_{i∈c} ψ_i)²) / n; aggregated influence functions include the term for the
estimated cohort-share weights (did's `wif`); bootstrap standard errors are IQR-based.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.jit import cached_njit
from pathfinder_eval.panel import ValidatedPanel
from pathfinder_eval.settings import (
    AggregationKind,
    BasePeriod,
    ControlGroup,
)
from pathfinder_eval.settings import GroupTimeMethod as Method

METHOD_LABEL = {
    "dr": "doubly robust (Sant'Anna & Zhao 2020)",
    "ipw": "normalised inverse probability weighting",
    "reg": "outcome regression",
}


# did's threshold below which a standard error is treated as zero (a reference cell).
ZERO_SE = np.sqrt(np.finfo(float).eps) * 10


def zero_se(y: np.ndarray) -> float:
    """did's zero-SE line in the outcome's units: ZERO_SE for outcomes spread by 1 or more
    (did's convention, so R's tables are matched), shrinking with the spread below 1, so an
    outcome measured on a tiny scale (a proportion times 1e-8) keeps its standard errors."""
    spread = float(np.nanstd(y)) if np.size(y) else 0.0
    return ZERO_SE * min(1.0, spread)


PS_CAP = 1.0 - 1e-6  # propensity scores are capped here (DRDID)


# Why a cell is not estimated when a period it needs is not in the balanced panel: the
# design left it out (a transition period, or the partly exposed period of the transition rule).
LEFT_OUT = "a period it needs is left out by the design"


PS_TRIM = 0.995  # comparison units with a propensity score at or above this get weight 0


@dataclass(frozen=True)
class CellDiD:
    """A 2×2 panel DiD on the n1 units of one cell. influence: (n1,), scaled so that
    att − target ≈ mean(influence)."""

    att: float
    influence: np.ndarray


def _weighted_ols(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least squares: coefficients (p,) and Xᵀdiag(w)X (p, p)."""
    xw = x * w[:, None]
    xtwx = xw.T @ x
    if np.linalg.cond(xtwx) > 1.0 / np.finfo(float).eps:
        raise np.linalg.LinAlgError("singular regression design")
    return np.linalg.solve(xtwx, xw.T @ y), xtwx


def _logit(x: np.ndarray, d: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted logistic regression by Newton–Raphson; fitted probabilities (n,)."""
    if x.shape[1] == 1:  # intercept only: the MLE is the weighted share treated
        return np.full(len(d), float(np.sum(w * d) / np.sum(w)))
    beta = np.zeros(x.shape[1])
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(x @ beta)))
        hess = (x * (w * p * (1.0 - p))[:, None]).T @ x
        step = np.linalg.solve(hess, x.T @ (w * (d - p)))
        beta = beta + step
        if np.max(np.abs(step)) < 1e-12 * (1.0 + np.max(np.abs(beta))):
            break
    else:
        raise np.linalg.LinAlgError("propensity score did not converge")
    return 1.0 / (1.0 + np.exp(-(x @ beta)))


def propensity(x: np.ndarray, d: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(n1,) the logit propensity score of being treated given x, capped at 1 − 1e−6 (DRDID)."""
    return np.minimum(_logit(x, d, w / w.mean()), PS_CAP)


def comparison_odds(ps: np.ndarray, d: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(n1,) the doubly robust and IPW DiD's weights w·p/(1 − p) on the comparison units (0 on
    the treated and on comparison units trimmed at a score ≥ 0.995, as DRDID); w normalised
    to mean 1."""
    keep = np.where(d == 1, 1.0, (ps < PS_TRIM).astype(float))
    return keep * (w / w.mean()) * ps * (1.0 - d) / (1.0 - ps)


def did_panel_2x2(
    dy: np.ndarray,
    d: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    method: Method,
    ps: np.ndarray | None = None,
) -> CellDiD:
    """ATT and influence function of a two-period panel DiD with covariates.

    dy: (n1,) outcome change; d: (n1,) 1 for the treated cohort, 0 for comparison units;
    x: (n1, p) covariates including the intercept column; w: (n1,) unit weights (normalised to
    mean 1 here). Estimators of Sant'Anna & Zhao (2020): "reg" is the outcome-regression DiD
    (Heckman, Ichimura & Todd 1997), "ipw" the normalised (Hajek) IPW DiD of Abadie (2005),
    "dr" the locally efficient doubly robust DiD (their eq. 3.1 with a logit propensity score
    and a linear outcome model for the comparison group), each with the influence function
    including the estimation effect of the nuisance models (as R DRDID's reg_did_panel,
    std_ipw_did_panel and drdid_panel, which did calls). Propensity scores are capped at 1−1e−6
    and comparison units with a score ≥ 0.995 are trimmed (weight 0), as DRDID does; `ps`:
    the scores when the caller already has them (`propensity`).
    """
    n = len(d)
    w = w / w.mean()
    wc = w * (1.0 - d)
    wt = w * d
    mt = wt.mean()
    if method == "reg":
        beta, xtwx = _weighted_ols(x, dy, wc)
        out = x @ beta
        eta_t = np.mean(wt * dy) / mt
        eta_c = np.mean(wt * out) / mt
        lin_ols = ((wc * (dy - out))[:, None] * x) @ np.linalg.inv(xtwx / n)
        inf_treat = (wt * dy - wt * eta_t) / mt
        inf_cont = (wt * out - wt * eta_c + lin_ols @ (wt[:, None] * x).mean(axis=0)) / mt
        return CellDiD(float(eta_t - eta_c), inf_treat - inf_cont)
    ps = propensity(x, d, w) if ps is None else ps
    wps = comparison_odds(ps, d, w)
    mc = wps.mean()
    hess_ps = np.linalg.inv((x * (ps * (1.0 - ps) * w)[:, None]).T @ x) * n
    lin_ps = ((w * (d - ps))[:, None] * x) @ hess_ps
    if method == "ipw":
        eta_t = np.mean(wt * dy) / mt
        eta_c = np.mean(wps * dy) / mc
        inf_treat = (wt * dy - wt * eta_t) / mt
        m2 = ((wps * (dy - eta_c))[:, None] * x).mean(axis=0)
        inf_cont = (wps * dy - wps * eta_c + lin_ps @ m2) / mc
        return CellDiD(float(eta_t - eta_c), inf_treat - inf_cont)
    beta, xtwx = _weighted_ols(x, dy, wc)
    out = x @ beta
    resid = dy - out
    eta_t = np.mean(wt * resid) / mt
    eta_c = np.mean(wps * resid) / mc
    lin_ols = ((wc * resid)[:, None] * x) @ np.linalg.inv(xtwx / n)
    inf_treat = (wt * resid - wt * eta_t - lin_ols @ (wt[:, None] * x).mean(axis=0)) / mt
    m2 = ((wps * (resid - eta_c))[:, None] * x).mean(axis=0)
    m3 = (wps[:, None] * x).mean(axis=0)
    inf_cont = (wps * resid - wps * eta_c + lin_ps @ m2 - lin_ols @ m3) / mc
    return CellDiD(float(eta_t - eta_c), inf_treat - inf_cont)


@dataclass(frozen=True)
class GroupTimeATT:
    """ATT(g,t) for k cells on a balanced panel of n units.

    group, time, base: (k,) cohort g, period t and base period of each cell; att: (k,);
    influence: (n, k), Fortran-ordered, did's scaling (att − target ≈ column mean), zero for
    units outside a cell; post: (k,) bool, g ≤ t; n_treated, n_control: (k,) units used;
    unit_cohort: (n,) cohort of each unit (NaN never treated); unit_weight: (n,);
    cohorts: (m,) treated cohorts kept; comparison: (k, m + 1) bool, the cohorts (never
    treated last) that are each cell's comparison units; dropped_cells: (g, t, reason) of
    cells not estimable.
    """

    group: np.ndarray
    time: np.ndarray
    base: np.ndarray
    att: np.ndarray
    influence: np.ndarray
    post: np.ndarray
    n_treated: np.ndarray
    n_control: np.ndarray
    unit_cohort: np.ndarray
    unit_weight: np.ndarray
    cohorts: np.ndarray
    periods: np.ndarray
    comparison: np.ndarray
    dropped_cells: tuple[tuple[float, float, str], ...] = ()

    @property
    def n(self) -> int:
        return self.influence.shape[0]


def prepare_cohorts(
    cohort: np.ndarray, periods: np.ndarray, anticipation: int | np.ndarray = 0
) -> tuple[np.ndarray, np.ndarray]:
    """did's cohort rules: cohorts after the last period + δ count as never treated (NaN);
    units treated by the first period + δ cannot be compared and are dropped (δ: one for all,
    or (n,) each unit's). Returns (cohort (n,) with NaN for never treated, keep (n,) bool)."""
    c = np.asarray(cohort, dtype=float).copy()
    c[~np.isfinite(c) | (c <= 0)] = np.nan
    c[c > periods[-1] + anticipation] = np.nan
    keep = ~(c <= periods[0] + anticipation)
    return c, keep


@cached_njit()
def _unconditional_cells(y, code, w, g_code, t_idx, b_idx, ctrl_tab, ok, att, infl, share):
    """All cells without covariates, two passes over the units per cell. Without covariates
    the reg, IPW and DR estimators coincide: att = Δȳ_treated − Δȳ_comparison (weighted) and
    ψ_i = n·w_i(Δy_i − Δȳ_treated)/Σw_treated, or −n·w_i(Δy_i − Δȳ_comparison)/Σw_comparison.
    Writes att (k,), infl (n, k) and share (k,), the weighted treated share of the cell."""
    n = y.shape[0]
    for j in range(len(g_code)):
        if not ok[j]:
            continue
        g, t, b = g_code[j], t_idx[j], b_idx[j]
        swt = 0.0
        swc = 0.0
        sdt = 0.0
        sdc = 0.0
        for i in range(n):
            c = code[i]
            if c == g:
                swt += w[i]
                sdt += w[i] * (y[i, t] - y[i, b])
            elif ctrl_tab[j, c]:
                swc += w[i]
                sdc += w[i] * (y[i, t] - y[i, b])
        mt = sdt / swt
        mc = sdc / swc
        att[j] = mt - mc
        share[j] = swt / (swt + swc)
        for i in range(n):
            c = code[i]
            if c == g:
                infl[i, j] = n * w[i] * (y[i, t] - y[i, b] - mt) / swt
            elif ctrl_tab[j, c]:
                infl[i, j] = -n * w[i] * (y[i, t] - y[i, b] - mc) / swc


def group_time_att(
    y: np.ndarray,
    cohort: np.ndarray,
    periods: np.ndarray,
    *,
    covariates: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    control_group: ControlGroup = "never_treated",
    anticipation: int | np.ndarray = 0,
    base_period: BasePeriod = "varying",
    method: Method = "dr",
) -> GroupTimeATT:
    """Group-time ATTs of Callaway & Sant'Anna (2021, Sections 3–4, eqs. 2.3–2.6 and
    Theorem 1) on a balanced panel, with each cell's influence function.

    y: (n, T) outcomes, columns in the order of `periods` (T,) ascending; cohort: (n,) first
    treated period (NaN never treated; apply `prepare_cohorts` first); covariates: (n, p)
    time-invariant or (n, T, p) time-varying, taken at the earlier of the cell's two periods
    (its base period for post-treatment cells), as did does; weights: (n,) unit weights.

    With the "varying" base period a pre-treatment cell compares t with t−1 and a
    post-treatment cell (g ≤ t) compares t with g−δ−1; "universal" compares every t with
    g−δ−1 (that cell is 0 by construction). Not-yet-treated comparison units are those never
    treated or first treated after max(t, base) + δ, other than cohort g.

    δ (`anticipation`) is one for all units as in did, or (n,) each unit's, a cohort taking
    its units' largest: a design's transition rule leaves out the partly exposed period
    before a cohort's first treated period, so that cohort is compared as if anticipating by
    one period more. y may then be NaN in the periods the design left out: a cell needing
    one of its units' missing values is not estimated (`dropped_cells`, reason `LEFT_OUT`).
    """
    y = np.asarray(y, dtype=float)
    n, n_t = y.shape
    periods = np.asarray(periods, dtype=float)
    cohort = np.asarray(cohort, dtype=float)
    w_unit = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    if covariates is None:
        cov = None
    else:
        cov = np.asarray(covariates, dtype=float)
        if cov.ndim == 2:
            cov = cov[:, None, :]
    never = np.isnan(cohort)
    glist = np.unique(cohort[~never])
    n_coh = len(glist)
    code = np.where(never, n_coh, np.searchsorted(glist, np.nan_to_num(cohort))).astype(np.int64)
    # cohort value of each code, never treated = +inf (never "treated by" any period)
    code_cohort = np.append(glist, np.inf)
    lead = np.zeros(n_coh + 1)  # each cohort's δ: its units' largest
    if np.ndim(anticipation) == 0:  # one δ: each cohort present has it
        lead[np.unique(code)] = np.maximum(0.0, float(anticipation))  # (NaN stays NaN)
    else:
        np.maximum.at(lead, code, np.asarray(anticipation, dtype=float))
    # whether every unit of a cohort (never treated last) is observed in a period
    missing = np.isnan(y)
    seen = np.ones((n_coh + 1, n_t), dtype=bool)
    for t in np.flatnonzero(missing.any(axis=0)):
        seen[:, t] = np.bincount(code[missing[:, t]], minlength=n_coh + 1) == 0
    t_range = range(1, n_t) if base_period == "varying" else range(n_t)
    plan: list[tuple[int, int, int, bool, np.ndarray]] = []  # (g code, t, base, post, controls)
    dropped: list[tuple[float, float, str]] = []
    for gi, g in enumerate(glist):
        before = np.nonzero(periods + lead[gi] < g)[0]
        if len(before) == 0:
            dropped += [(float(g), float(periods[t]), "no pre-treatment period") for t in t_range]
            continue
        pret_g = int(before[-1])
        for t in t_range:
            post = bool(g <= periods[t])
            pret = pret_g if (post or base_period == "universal") else t - 1
            if control_group == "never_treated":
                ctrl = np.isinf(code_cohort)
            else:
                ctrl = code_cohort - lead > periods[max(t, pret)]
                ctrl[gi] = False
            if not (seen[gi, t] and seen[gi, pret] and seen[ctrl][:, [t, pret]].all()):
                dropped.append((float(g), float(periods[t]), LEFT_OUT))
                continue
            plan.append((gi, t, pret, post, ctrl))
    k = len(plan)
    influence = np.zeros((n, k), order="F")
    att = np.zeros(k)
    n_tr = np.zeros(k, dtype=np.int64)
    n_co = np.zeros(k, dtype=np.int64)
    share = np.zeros(k)
    active = np.array([p[1] != p[2] for p in plan], dtype=bool)  # universal reference: 0
    if k:
        g_code = np.array([p[0] for p in plan], dtype=np.int64)
        t_idx = np.array([p[1] for p in plan], dtype=np.int64)
        b_idx = np.array([p[2] for p in plan], dtype=np.int64)
        ctrl_tab = np.vstack([p[4] for p in plan])
        sizes = np.bincount(code, minlength=n_coh + 1)
        n_tr[:] = sizes[g_code]
        n_co[:] = (ctrl_tab * sizes[None, :]).sum(axis=1)
    ok = active & (n_tr > 0) & (n_co > 0)
    for j in np.flatnonzero(active & ~ok):
        dropped.append(
            (float(glist[plan[j][0]]), float(periods[plan[j][1]]), "no comparison units")
        )
    generic = np.zeros(k, dtype=bool)
    if cov is None and ok.any():
        _unconditional_cells(
            np.asfortranarray(y),
            code,
            w_unit,
            g_code,
            t_idx,
            b_idx,
            ctrl_tab,
            ok,
            att,
            influence,
            share,
        )
        # IPW/DR with a treated share ≥ the trimming level go through the general path
        generic = ok & (share >= PS_TRIM) & (method != "reg")
    elif cov is not None:
        generic = ok
    for j in np.flatnonzero(generic):
        gi, t, pret, _, ctrl = plan[j]
        use = (code == gi) | ctrl[code]
        idx = np.flatnonzero(use)
        dy = y[idx, t] - y[idx, pret]
        d = (code[idx] == gi).astype(float)
        x = np.ones((len(idx), 1))
        if cov is not None:
            x = np.column_stack([x, cov[idx, min(t, pret) if cov.shape[1] > 1 else 0, :]])
        try:
            cell = did_panel_2x2(dy, d, x, w_unit[idx], method)
        except np.linalg.LinAlgError as exc:
            dropped.append((float(glist[gi]), float(periods[t]), f"not estimable ({exc})"))
            ok[j] = False
            continue
        att[j] = cell.att
        influence[:, j] = 0.0
        influence[idx, j] = cell.influence * (n / len(idx))
    keep = ok | ~active
    if not keep.all():
        influence = np.asfortranarray(influence[:, keep])
    cols = [p for p, kp in zip(plan, keep, strict=True) if kp]
    return GroupTimeATT(
        group=np.array([glist[c[0]] for c in cols], dtype=float),
        time=np.array([periods[c[1]] for c in cols], dtype=float),
        base=np.array([periods[c[2]] for c in cols], dtype=float),
        att=att[keep],
        influence=influence,
        post=np.array([c[3] for c in cols], dtype=bool),
        n_treated=np.where(active, n_tr, 0)[keep],
        n_control=np.where(active, n_co, 0)[keep],
        unit_cohort=cohort,
        unit_weight=w_unit,
        cohorts=glist,
        periods=periods,
        comparison=np.array([c[4] for c in cols], dtype=bool).reshape(len(cols), n_coh + 1),
        dropped_cells=tuple(dropped),
    )


@dataclass(frozen=True)
class Aggregation:
    """Aggregated effects θ = weights @ att of a GroupTimeATT with k cells.

    kind: "simple" | "dynamic" | "group" | "calendar"; labels: (m,) event time, cohort or
    period of each row (NaN for simple); weights: (m, k); estimate: (m,); influence: (n, m),
    including the term for estimated cohort shares; overall_weights: (k,); overall: float;
    overall_influence: (n,). For "simple" the single row is the overall estimate.
    """

    kind: str
    labels: np.ndarray
    weights: np.ndarray
    estimate: np.ndarray
    influence: np.ndarray
    overall_weights: np.ndarray
    overall: float
    overall_influence: np.ndarray


def _share_influence(
    unit_code: np.ndarray,
    unit_weight: np.ndarray,
    n_cohorts: int,
    masks: np.ndarray,
    pg: np.ndarray,
    cell_code: np.ndarray,
    a: np.ndarray,
) -> np.ndarray:
    """Influence (n, m) of estimating the weights pg[keep]/Σpg[keep] of m rows.

    masks: (m, k) cells kept by each row; pg: (k,) cohort share of each cell's cohort,
    π_g = mean(w_i·1{G_i = g}); cell_code: (k,) cohort index of each cell; a: (k,) the ATTs.
    did's `wif` term, Σ_k a_k [(w_i 1{G_i=g_k} − π_k)/S − π_k Σ_l (w_i 1{G_i=g_l} − π_l)/S²],
    simplifies to w_i·B[G_i] with B[g] = A_g/S − C_g·(Σ_k π_k a_k)/S², A_g and C_g the sum
    and count of kept ATTs of cohort g: a gather from a small (cohorts × m) table."""
    m = masks.shape[0]
    table = np.zeros((n_cohorts + 1, m))  # last row: never treated, always 0
    for r in range(m):
        keep = masks[r]
        pk, ak, ck = pg[keep], a[keep], cell_code[keep]
        s = pk.sum()
        pa = float(pk @ ak)
        a_by = np.bincount(ck, weights=ak, minlength=n_cohorts)
        c_by = np.bincount(ck, minlength=n_cohorts)
        table[:n_cohorts, r] = a_by / s - c_by * pa / s**2
    return unit_weight[:, None] * table[unit_code]


def aggregate(
    gt: GroupTimeATT,
    kind: AggregationKind,
    *,
    balance_e: int | None = None,
    min_e: float = -np.inf,
    max_e: float = np.inf,
) -> Aggregation:
    """Aggregations of Callaway & Sant'Anna (2021, Section 3.1, eqs. 3.3–3.11) as did's
    `aggte` computes them.

    simple: post-treatment cells (g ≤ t ≤ g + max_e) weighted by cohort share; dynamic: for each
    event time e = t − g, cells weighted by cohort share (balance_e keeps only cohorts observed
    for e = balance_e periods after treatment and event times up to balance_e), overall = mean
    over e ≥ 0; group: per cohort the mean over its post-treatment cells, overall weighted by
    cohort share; calendar: per period t the cohort-share average of post-treatment cells,
    overall = mean over periods. Cohort shares are π_g = mean(w_i·1{G_i = g}) over all units,
    and influence functions of share-weighted rows include their estimation effect.
    """
    k = len(gt.att)
    n_coh = len(gt.cohorts)
    never = np.isnan(gt.unit_cohort)
    unit_code = np.where(never, n_coh, np.searchsorted(gt.cohorts, np.nan_to_num(gt.unit_cohort)))
    w = gt.unit_weight
    pg_coh = np.bincount(unit_code, weights=w, minlength=n_coh + 1)[:n_coh] / len(w)
    cell_code = np.searchsorted(gt.cohorts, gt.group)
    pg = pg_coh[cell_code] if k else np.zeros(0)
    g, t, att, psi = gt.group, gt.time, gt.att, gt.influence

    def share_rows(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        weights = np.where(masks, pg[None, :], 0.0)
        weights /= weights.sum(axis=1, keepdims=True)
        wif = _share_influence(unit_code, w, n_coh, masks, pg, cell_code, att)
        return weights, psi @ weights.T + wif

    post = (g <= t) & (t <= g + max_e)
    if not post.any():
        raise EstimationError(
            "no post-treatment group-time effects to aggregate",
            where="ATT(g,t)",
            fix="check the cohorts' first treated periods fall inside the data",
        )
    if kind == "simple":
        weights, influence = share_rows(post[None, :])
        return Aggregation(
            kind,
            np.array([np.nan]),
            weights,
            weights @ att,
            influence,
            weights[0],
            float(weights[0] @ att),
            influence[:, 0],
        )
    if kind == "dynamic":
        e_all = t - g
        include = np.ones(k, dtype=bool)
        if balance_e is not None:
            include = (t.max() - g) >= balance_e
        eseq = np.unique(e_all[include])
        if balance_e is not None:
            eseq = eseq[(eseq <= balance_e) & (eseq >= balance_e - t.max() + gt.periods[0])]
        eseq = eseq[(eseq >= min_e) & (eseq <= max_e)]
        if len(eseq) == 0 or not (eseq >= 0).any():
            raise EstimationError(
                "no post-treatment event times fall within the requested window",
                where="min_e / max_e / balance_e",
                fix="widen the event-time window so event time 0 or later is included",
            )
        masks = (e_all[None, :] == eseq[:, None]) & include[None, :]
        weights, influence = share_rows(masks)
        pos = eseq >= 0
        ow = weights[pos].mean(axis=0)
        return Aggregation(
            kind,
            eseq.astype(float),
            weights,
            weights @ att,
            influence,
            ow,
            float(ow @ att),
            influence[:, pos].mean(axis=1),
        )
    if kind == "group":
        masks = (g[None, :] == gt.cohorts[:, None]) & post[None, :]
        weights = masks / masks.sum(axis=1, keepdims=True)
        influence = psi @ weights.T
        est = weights @ att
        share = pg_coh / pg_coh.sum()
        over_inf = (
            influence @ share
            + _share_influence(
                unit_code, w, n_coh, np.ones((1, n_coh), bool), pg_coh, np.arange(n_coh), est
            )[:, 0]
        )
        ow = share @ weights
        return Aggregation(
            kind,
            gt.cohorts.astype(float),
            weights,
            est,
            influence,
            ow,
            float(ow @ att),
            over_inf,
        )
    if kind == "calendar":
        tseq = np.array([tt for tt in np.unique(t[t >= g.min()]) if ((t == tt) & (g <= t)).any()])
        masks = (t[None, :] == tseq[:, None]) & (g <= t)[None, :]
        weights, influence = share_rows(masks)
        ow = weights.mean(axis=0)
        return Aggregation(
            kind,
            tseq.astype(float),
            weights,
            weights @ att,
            influence,
            ow,
            float(ow @ att),
            influence.mean(axis=1),
        )
    raise EstimationError(
        f"unknown aggregation {kind!r}",
        where="options.aggregation",
        fix="use one of simple, dynamic, group, calendar",
    )


@dataclass(frozen=True)
class WidePanel:
    """A balanced panel but for the cells the design leaves out (NaN there). y: (n, T);
    cohort: (n,); weight: (n,); covariates: (n, T, p) or None; units: n unit ids; periods:
    (T,); partly: (n,) 1 for a unit whose partly exposed period the design leaves out;
    dropped_units: units lost to missing periods (or a missing covariate value), `dropped`
    their ids and `dropped_rows` the cells they had."""

    units: np.ndarray
    periods: np.ndarray
    y: np.ndarray
    cohort: np.ndarray
    weight: np.ndarray
    covariates: np.ndarray | None
    partly: np.ndarray
    dropped: tuple[str, ...] = ()  # ids of the units lost
    dropped_rows: int = 0  # the cells they had

    @property
    def dropped_units(self) -> int:
        return len(self.dropped)


def wide_panel(
    panel: ValidatedPanel, outcome: str, covariates: tuple[str, ...], weighted: bool
) -> WidePanel:
    """Unit × period arrays for one outcome; units missing any period (or covariate value)
    are dropped, as did does for panel data, but for the periods the design leaves out (they
    stay NaN). Covariates are cell columns or other outcomes."""
    cells = panel.outcome_cells(outcome)
    if cells.empty:
        raise EstimationError(
            f"outcome {outcome!r} has no cells",
            where=f"outcomes ({outcome})",
            fix="supply data for this outcome",
        )
    frame = cells[["unit", "period", "y", "weight", "cohort"]].copy()
    x = panel.covariate_values(cells, covariates, "options.covariates")
    for name in covariates:
        frame[f"x:{name}"] = x[name].to_numpy()
    periods = np.array(sorted(frame["period"].unique()), dtype=float)
    codes, names = panel.unit_codes(outcome)
    cols = np.searchsorted(periods, frame["period"].to_numpy(float))

    def spread(column: str) -> np.ndarray:
        """(units, T) the column's values by unit and period (NaN where no cell)."""
        out = np.full((len(names), len(periods)), np.nan)
        out[codes, cols] = frame[column].to_numpy(float)
        return out

    y_all = spread("y")
    x_all = [spread(f"x:{c}") for c in covariates]
    left_out, partly = panel.left_out_by_design(names.to_numpy(), periods)
    complete = ~(np.isnan(y_all) & ~left_out).any(axis=1)
    for x in x_all:
        complete &= ~(np.isnan(x) & ~left_out).any(axis=1)
    cohort = np.empty(len(names))
    cohort[codes] = frame["cohort"].to_numpy(float)  # constant within a unit
    w_all = spread("weight")
    first = np.argmax(~np.isnan(w_all), axis=1)  # each unit's earliest period with a cell
    units = names.to_numpy()[complete]
    y = y_all[complete]
    cov = np.stack([x[complete] for x in x_all], axis=2) if covariates else None
    weight = w_all[np.arange(len(names)), first][complete] if weighted else np.ones(len(units))
    lost = ~complete
    return WidePanel(
        units,
        periods,
        y,
        cohort[complete],
        weight,
        cov,
        partly[complete],
        tuple(names.to_numpy()[lost].tolist()),
        int(np.isfinite(y_all[lost]).sum()),
    )
