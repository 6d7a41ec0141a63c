"""Sun & Abraham (2021) interaction-weighted event study.

Step 1 regresses the outcome on unit and period fixed effects and a full set of cohort ×
relative-period indicators (every relative period except the reference, −1), for every cohort
other than the control cohort (never-treated units, or the last-treated cohort with periods
from its start dropped). Step 2 averages the cohort-specific effects δ_{g,e} at each relative
period e with weights equal to each cohort's share of the cells observed at e. With
never-treated controls, no covariates and a balanced panel, δ_{g,e} equals Callaway &
Sant'Anna's ATT(g, g+e) with never-treated controls and base period g−1.

Sun, L. & Abraham, S. (2021), "Estimating dynamic treatment effects in event studies with
heterogeneous treatment effects", J. Econometrics 225:175–199 (eqs. 21–22 and Section 4.2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.estimators.did.event_time import (
    check_periods_one_apart,
    reference_event_time,
)
from pathfinder_eval.estimators.did.facts import SunAbrahamFacts
from pathfinder_eval.estimators.did.two_way import absorb_two_way, cr1_label
from pathfinder_eval.estimators.pooled import did_decision, panel_layout, pooled_label
from pathfinder_eval.inference.cluster import (
    TSummary,
    blank_vacant,
    rescale_covariance,
    t_summary,
    untested_leads,
    vacant_rows,
    wald_test,
)
from pathfinder_eval.inference.cohort_stratified import CohortStratified, stratified_cells
from pathfinder_eval.inference.cr2 import CR2Result, cr2_inference
from pathfinder_eval.inference.policy import (
    SMALL_SAMPLE_TREATED,
    Choice,
    because,
    few_cluster_warnings,
)
from pathfinder_eval.inference.pretrends_power import pretest_summary
from pathfinder_eval.panel import ValidatedPanel
from pathfinder_eval.results import (
    Dropped,
    EffectEstimates,
    InferenceKey,
    InferenceUsed,
    estimates_table,
)
from pathfinder_eval.settings import SunAbrahamOptions

CONTROLS = ("never_treated", "last_treated")
_POOLED_TAIL = "; interaction coefficients CR1, pre-trend Wald test CR1, F(q, G−1)"


@dataclass(frozen=True)
class SunAbrahamResult:
    """Interaction coefficients and their event-time aggregation.

    cohort, rel: (m,) cohort (first treated period) and relative period e = t − g of each
        interaction; coef: (m,) δ_{g,e}; vcov: (m, m) CR1 by unit; n_cells: (m,) observations
        in each interaction.
    event_time: (E,) relative periods reported; weights: (E, m) cohort-share weights (rows sum
        to 1); estimate: (E,) ν_e = weights @ coef; event_vcov: (E, E).
    att_weights: (m,) weights of the post-treatment average (cells with e ≥ 0, by count);
    att, att_var: that average and its variance; joint_vcov: (E+1, E+1) covariance of
        (att, estimate) together.
    n_obs, n_clusters: sample size and units; k_absorbed: fixed effects absorbed.
    y, x: (n_obs,), (n_obs, m) the step-1 outcome and interaction indicators, and units,
        periods: (n_obs,) their unit and period codes from 0, after any rows dropped for
        last-treated controls (the regression `cr2_rows` re-uses); unit_cohort: (U,) each
        unit code's own first treated period (NaN never treated; last-treated units keep
        theirs), the strata of `stratified_rows`; rows: (n_obs,) the positions of those
        observations in the input arrays; absorbed: (n_obs, m + 1) [X̃, ỹ], x and y less
        their unit and period effects (the step-1 regression's, which `step1_bread`,
        `outcome_weights` and `stratified_rows` read).
    """

    cohort: np.ndarray
    rel: np.ndarray
    coef: np.ndarray
    vcov: np.ndarray
    n_cells: np.ndarray
    event_time: np.ndarray
    weights: np.ndarray
    estimate: np.ndarray
    event_vcov: np.ndarray
    att_weights: np.ndarray
    att: float
    att_var: float
    joint_vcov: np.ndarray
    n_obs: int
    n_clusters: int
    k_absorbed: int
    y: np.ndarray
    x: np.ndarray
    units: np.ndarray
    periods: np.ndarray
    unit_cohort: np.ndarray
    rows: np.ndarray
    absorbed: np.ndarray

    @property
    def row_weights(self) -> np.ndarray:
        """(E+1, m) weights on coef of the reported rows: the post-treatment average, then
        each event time."""
        return np.vstack([self.att_weights, self.weights])


def sun_abraham(
    y: np.ndarray,
    unit: np.ndarray,
    period: np.ndarray,
    cohort: np.ndarray,
    control: str = "never_treated",
    share_uncertainty: bool = False,
    reference: int = -1,
    nested: bool = True,
) -> SunAbrahamResult:
    """Sun & Abraham (2021) interaction-weighted estimator with CR1 (by unit) covariance.

    y: (n,) outcomes; unit: (n,) unit labels; period: (n,) integer periods; cohort: (n,) first
    treated period of the row's unit, NaN if never treated. Panels may be unbalanced.

    control: "never_treated" (all never-treated units) or "last_treated" (the latest cohort,
    with all periods from its first treated period dropped; never-treated units, if any, stay
    in the control group too).

    Covariance: CR1 = G/(G−1)·(N−1)/(N−K) · A Σ_g s_g s_gᵀ A with A = (X̃ᵀX̃)⁻¹, s_g the unit
    score sums and K counting the interactions and the T period effects; the unit effects,
    nested in the unit clusters, are not counted (`nested`, the package's TWFE convention as
    fixest's and Stata's), or with nested=False counted too (R lm with vcovCL).
    Event-time aggregation is linear: with share_uncertainty=False
    the weights are treated as fixed (fixest's `aggregate`/`sunab` convention); with True the
    influence of the estimated cohort shares, n_{i,e}(δ_{g(i),e} − ν_e)/N_e per unit, is added
    to each unit's influence before squaring (as Sun & Abraham's Section 4.2 delta method,
    cross terms included), scaled by the same CR1 factor.
    """
    y = np.asarray(y, dtype=float)
    period = np.asarray(period).astype(np.int64)
    cohort = np.asarray(cohort, dtype=float).copy()
    unit_codes, _ = pd.factorize(pd.Series(unit), sort=True)
    keep = np.ones(len(y), dtype=bool)
    if control not in CONTROLS:
        raise EstimationError(
            f"control group {control!r} is not one of {CONTROLS}",
            where="analyses.options.control",
            fix="use never_treated or last_treated",
        )
    treated_cohorts = np.unique(cohort[~np.isnan(cohort)])
    own_cohort = cohort.copy()
    if control == "last_treated":
        if treated_cohorts.size < 2:
            raise EstimationError(
                "last_treated controls need at least two treated cohorts",
                where="analyses.options.control",
                fix="use never_treated controls",
            )
        last = treated_cohorts[-1]
        keep = period < last
        cohort = np.where(cohort == last, np.nan, cohort)
    elif np.isnan(cohort).sum() == 0:
        raise EstimationError(
            "Sun–Abraham with never-treated controls needs never-treated units; all are treated",
            where="analyses.options.control",
            fix="set control: last_treated to use the latest cohort as the control group",
        )
    y, period, cohort, unit_codes = y[keep], period[keep], cohort[keep], unit_codes[keep]
    own_cohort = own_cohort[keep]
    unit_codes = pd.factorize(unit_codes, sort=True)[0]
    period_codes = pd.factorize(period, sort=True)[0]

    rel = period - cohort
    treated_row = ~np.isnan(cohort)
    cells = sorted(
        {(float(g), int(e)) for g, e in zip(cohort[treated_row], rel[treated_row], strict=True)}
    )
    cells = [c for c in cells if c[1] != reference]
    if not cells:
        raise EstimationError(
            "no treated cohort has cells outside the reference period",
            where="rollout",
            fix="check the rollout dates against the data periods",
        )
    index = {c: j for j, c in enumerate(cells)}
    x = np.zeros((len(y), len(cells)))
    col = np.array(
        [
            index.get((float(g), int(e)), -1) if t else -1
            for g, e, t in zip(cohort, np.nan_to_num(rel), treated_row, strict=True)
        ]
    )
    x[np.flatnonzero(col >= 0), col[col >= 0]] = 1.0

    absorbed = absorb_two_way(np.column_stack([x, y]), unit_codes, period_codes)
    xt, yt = absorbed[:, :-1], absorbed[:, -1]
    xtx = xt.T @ xt
    if np.linalg.matrix_rank(xtx) < xtx.shape[0]:
        raise EstimationError(
            "cohort × relative-period effects are not identified on these data",
            where="rollout",
            fix="include never-treated units, or use control: last_treated",
        )
    bread = np.linalg.inv(xtx)
    coef = bread @ (xt.T @ yt)
    e = yt - xt @ coef
    n_clusters = int(unit_codes.max()) + 1
    scores = np.zeros((n_clusters, len(cells)))
    np.add.at(scores, unit_codes, xt * e[:, None])
    n = len(y)
    n_periods = int(period_codes.max()) + 1
    k_absorbed = n_clusters + n_periods - 1
    k = len(cells) + k_absorbed
    k_factor = len(cells) + n_periods if nested else k  # K in CR1's (N − 1)/(N − K)
    if n <= k:
        raise EstimationError(
            f"the saturated regression has {n} cells for {k} unit, period and cohort × "
            "relative-period effects: no residual is left to estimate a variance from",
            where="rollout",
            fix="include more comparison units or periods, or use the imputation estimator",
        )
    c = n_clusters / (n_clusters - 1) * (n - 1) / (n - k_factor)
    infl = scores @ bread  # (G, m): unit influence on coef
    vcov = c * infl.T @ infl

    g_arr = np.array([g for g, _ in cells])
    e_arr = np.array([r for _, r in cells])
    n_cells = x.sum(axis=0)
    event_time = np.unique(e_arr)
    weights = np.zeros((len(event_time), len(cells)))
    for r, et in enumerate(event_time):
        sel = e_arr == et
        weights[r, sel] = n_cells[sel] / n_cells[sel].sum()
    post = e_arr >= 0
    if not post.any():  # the average of no cells read 0 ± 0
        raise EstimationError(
            "no treated unit is observed from its start on (only before it): there is no "
            "effect to estimate",
            where="rollout",
            fix="check the start dates against the periods the data cover",
        )
    att_w = np.where(post, n_cells, 0.0)
    att_w = att_w / att_w.sum()
    big_w = np.vstack([att_w, weights])
    est_all = big_w @ coef
    phi = infl @ big_w.T  # (G, E+1)
    if share_uncertainty:
        share = np.zeros_like(phi)
        denom_att = n_cells[post].sum()
        for j, (_g, et) in enumerate(cells):
            rows = col == j
            per_unit = np.bincount(unit_codes[rows], minlength=n_clusters).astype(float)
            r = int(np.searchsorted(event_time, et)) + 1
            share[:, r] += per_unit * (coef[j] - est_all[r]) / n_cells[e_arr == et].sum()
            if et >= 0:
                share[:, 0] += per_unit * (coef[j] - est_all[0]) / denom_att
        phi = phi + share
    joint = c * phi.T @ phi
    return SunAbrahamResult(
        g_arr,
        e_arr,
        coef,
        vcov,
        n_cells,
        event_time,
        weights,
        est_all[1:],
        joint[1:, 1:],
        att_w,
        float(est_all[0]),
        float(joint[0, 0]),
        joint,
        n,
        n_clusters,
        k_absorbed,
        y,
        x,
        unit_codes,
        period_codes,
        pd.Series(own_cohort).groupby(unit_codes).first().to_numpy(float),
        np.flatnonzero(keep),
        absorbed,
    )


def step1_bread(res: SunAbrahamResult) -> tuple[np.ndarray, float]:
    """(X̃ᵀX̃)⁻¹ of the step-1 regression (m × m: the coefficients' weights on the outcomes
    have these inner products) and its mean squared residual, for `blank_vacant`."""
    xt = res.absorbed[:, :-1]
    e = res.absorbed[:, -1] - xt @ res.coef
    return np.linalg.inv(xt.T @ xt), float(e @ e / len(e))


def outcome_weights(res: SunAbrahamResult) -> np.ndarray:
    """(rows, n_obs) the reported rows' weights on the outcomes: c·coef = wᵀy with
    w = X̃(X̃ᵀX̃)⁻¹c."""
    xt = res.absorbed[:, :-1]
    return (xt @ np.linalg.solve(xt.T @ xt, res.row_weights.T)).T


def stratified_rows(res: SunAbrahamResult) -> CohortStratified | None:
    """The cohort-stratified variance with Bell-McCaffrey df (inference/cohort_stratified.py)
    of the reported rows, which are linear in the outcomes (`outcome_weights`); None when the
    weights differ between units of a cohort (unbalanced panels), where the stratified
    estimator does not apply."""
    w = outcome_weights(res)
    return stratified_cells(w, res.y, res.units, res.periods, res.unit_cohort)


def cr2_rows(res: SunAbrahamResult, level: float = 0.95, partly_seen: bool = False) -> CR2Result:
    """CR2 by unit with Bell-McCaffrey/Satterthwaite df for the reported rows, on exactly the
    step-1 regression (its rows and absorbed unit and period effects), aggregation weights
    held fixed: the small-sample alternative to CR1, which over-rejects with few treated
    units (benchmarks/did_size.py). Rows resting partly on a one-unit cohort's cells (fitted
    exactly) have none unless `partly_seen` (cr2_inference)."""
    return cr2_inference(
        res.y,
        res.x,
        res.units,
        res.periods,
        contrasts=res.row_weights,
        level=level,
        partly_seen=partly_seen,
    )


class SunAbraham(SunAbrahamOptions):
    """Sun & Abraham (2021) event study: table rows are the post-treatment average (cells
    weighted by count) and one row per relative period (cohort-share weighted); the
    cohort × relative-period coefficients, aggregation weights and a pre-trend Wald test on
    the leads are in `diagnostics`.

    Inference: "cluster_robust" is CR1 by unit with a t(G−1) reference. "default" chooses CR2
    by unit with Bell-McCaffrey/Satterthwaite df per row (`cr2_rows`) when fewer than 20 units
    are treated, where CR1 over-rejects, and CR1 otherwise (benchmarks/did_size.py, 150 LAs,
    T = 10, 300 draws: CR1 size 17% and 13% with 7 and 10 treated, CR2 4.0% and 4.7%). A cohort
    of one unit is fitted exactly by its interactions, so neither CR1 nor CR2 sees its noise
    (size 82% with 3 treated in three cohorts); a warning names such cohorts. With
    `share_uncertainty` the default stays CR1: CR2 treats the cohort shares as fixed, so it
    cannot carry their delta-method term."""

    def fit(
        self, panel: ValidatedPanel, outcome: str, analysis_id: str, level: float = 0.95
    ) -> EffectEstimates:
        check_periods_one_apart(panel.periods, "Sun & Abraham's estimator")
        cells = panel.outcome_cells(outcome)
        earliest = int(np.nanmin(cells["period"] - cells["cohort"], initial=-1))
        reference, moved = reference_event_time(panel, cells, -1, False, earliest)
        res = sun_abraham(
            cells["y"].to_numpy(float),
            cells["unit"].to_numpy(),
            cells["period"].to_numpy(),
            cells["cohort"].to_numpy(float),
            self.control,
            self.share_uncertainty,
            reference,
            nested=self.inference.absorbed_effects == "nested",
        )
        n_treated = int(cells.loc[cells["role"] == "treated", "unit"].nunique())
        layout = panel_layout(panel, outcome)
        unit, period = cells["unit"].to_numpy()[res.rows], cells["period"].to_numpy()[res.rows]
        decision = did_decision(
            self.name,
            self.inference.method,
            n_treated,
            not self.share_uncertainty,
            layout,
            lambda: layout.cell_weights(unit, period, outcome_weights(res)),
        )
        choice = decision.choice
        small = choice.method in ("cohort_stratified", "cr2")
        est = np.concatenate([[res.att], res.estimate])
        summ = t_summary(est, res.joint_vcov, res.n_clusters - 1, level)
        df = np.full(len(est), float(res.n_clusters - 1))
        coef_vcov, joint_vcov = res.vcov, res.joint_vcov
        strat = None
        if decision.variance is not None:
            df, joint_vcov = decision.variance.df, decision.variance.vcov
            summ = t_summary(est, joint_vcov, df, level)
        elif small:
            strat = stratified_rows(res) if choice.method == "cohort_stratified" else None
            # the stratified variance takes CR2's correlations only: it sees one-unit cohorts
            c2 = cr2_rows(res, level, partly_seen=strat is not None)
            summ = TSummary(
                c2.std_error, c2.statistic, c2.p_value, c2.ci_lower, c2.ci_upper, np.nan
            )
            df, coef_vcov = c2.df, c2.vcov
            joint_vcov = c2.contrast_vcov
        if strat is not None:
            df = strat.df
            joint_vcov = rescale_covariance(joint_vcov, strat.std_error)
            summ = t_summary(est, joint_vcov, df, level)
        # interactions fitting one unit's cells exactly have variance of rounding: none
        bread, noise = step1_bread(res)
        top = float(np.abs(res.y).max())
        if decision.variance is None and not small:  # CR1: rows of rounding have no SE
            joint_vcov, df = blank_vacant(
                joint_vcov,
                df,
                np.einsum("qk,kl,ql->q", res.row_weights, bread, res.row_weights),
                noise,
                top,
            )
            summ = t_summary(est, joint_vcov, df, level)
        rel_all = (cells["period"] - cells["cohort"]).to_numpy(float)
        rows = []
        for j, e in enumerate([None, *res.event_time.tolist()]):
            if e is None:
                term, n_units = "ATT (post-treatment average)", np.nan
            else:
                term = f"event time {int(e)}"
                n_units = cells.loc[rel_all == e, "unit"].nunique()
            rows.append(
                summ.row(
                    j,
                    term,
                    est[j],
                    df=float(df[j]),
                    event_time=np.nan if e is None else float(e),
                    n_units=n_units,
                )
            )
        coef_vcov = blank_vacant(coef_vcov, np.nan, np.diag(bread), noise, top)[0]
        coef_se = np.sqrt(np.clip(np.diag(coef_vcov), 0.0, None))  # rounding can dip below 0
        lead_vcov = blank_vacant(res.vcov, np.nan, np.diag(bread), noise, top)[0]
        leads = np.flatnonzero(res.rel < 0)  # the reference has no interaction
        tested = leads[np.isfinite(np.diag(lead_vcov)[leads])]
        pretrend = (
            wald_test(res.coef[tested], lead_vcov[np.ix_(tested, tested)], res.n_clusters - 1)
            if tested.size
            else None
        )
        unit_cohort = cells.groupby("unit")["cohort"].first()
        singletons = [g for g in np.unique(res.cohort) if int((unit_cohort == g).sum()) == 1]
        label, warns = self._label(res, choice, n_treated, singletons, strat)
        used: InferenceKey = "cohort_stratified" if strat is not None else "cr2" if small else "cr1"
        if decision.variance is not None:
            label, warns, used = (
                pooled_label(layout, choice.reason) + _POOLED_TAIL,
                (),
                "pooled_panel",
            )
        warns += ((moved,) if moved else ()) + tuple(vacant_rows(rows, used))
        warns += tuple(
            untested_leads(
                [
                    f"the cohort {res.cohort[j]:g} lead at {int(res.rel[j])}"
                    for j in sorted(set(leads) - set(tested))
                ],
                bool(tested.size),
            )
        )
        return EffectEstimates(
            analysis_id=analysis_id,
            outcome=outcome,
            estimator=self.name,
            inference=InferenceUsed(
                key=used,
                label=label,
                chosen_by_default=choice.chosen_by_default,
                reason=choice.reason_for(
                    {"cr1": "cluster_robust", "pooled_panel": "pooled"}.get(used, used)
                ),
                dependence=decision.dependence,
            ),
            table=estimates_table(rows),
            level=level,
            vcov=joint_vcov,
            n_units=res.n_clusters,
            n_treated=n_treated,
            n_obs=res.n_obs,
            dropped=_after_last_start(cells) if self.control == "last_treated" else (),
            facts=SunAbrahamFacts(
                control=self.control,
                inference_method=used,
                reference_event_time=reference,
                share_uncertainty=self.share_uncertainty,
                interactions=[
                    {
                        "cohort": float(g),
                        "event_time": int(e),
                        "estimate": float(b),
                        "std_error": float(s),
                        "n_obs": int(n),
                    }
                    for g, e, b, s, n in zip(
                        res.cohort, res.rel, res.coef, coef_se, res.n_cells, strict=True
                    )
                ],
                event_weights={
                    int(e): {
                        float(g): float(w)
                        for g, w in zip(res.cohort, res.weights[r], strict=True)
                        if w > 0
                    }
                    for r, e in enumerate(res.event_time)
                },
                pretrend_test=pretrend,
                pretest_power=None
                if self.refit
                else pretest_summary(
                    est[1:], joint_vcov[1:, 1:], res.event_time.astype(float), float(reference)
                ),
            ),
            warnings=warns,
        )

    def _label(
        self,
        res: SunAbrahamResult,
        choice: Choice,
        n_treated: int,
        singletons: list[float],
        strat: CohortStratified | None,
    ) -> tuple[str, tuple[str, ...]]:
        """The inference label (what was used and, for the default, why) and warnings."""
        if strat is not None:
            borrowed = (
                f"; {strat.singletons} single-unit cohort(s) borrow the pooled within-cohort "
                "covariance"
                if strat.singletons
                else ""
            )
            label = (
                "cohort-stratified variance of the interaction-weighted rows (each cohort's "
                f"variance estimated within the cohort, divisor n − 1{borrowed}) with "
                "Bell-McCaffrey degrees of freedom, cohort shares fixed"
                f"{because(choice.reason_for('cohort_stratified'))}; interaction coefficients CR2, "
                "pre-trend Wald test CR1, F(q, G−1)"
            )
            return label, ()
        if choice.method in ("cohort_stratified", "cr2"):
            label = (
                "CR2 cluster-robust by unit (Bell & McCaffrey 2002) on the step-1 interaction "
                "regression, Satterthwaite degrees of freedom per row (Pustejovsky & Tipton "
                f"2018), cohort shares fixed{because(choice.reason_for('cr2'))}; "
                "pre-trend Wald test CR1, F(q, G−1)"
            )
            return label, singleton_warning(singletons, cr2=True)
        shares = "with" if self.share_uncertainty else "without"
        label = (
            f"{cr1_label(self.inference.absorbed_effects)}; delta method {shares} "
            "cohort-share uncertainty"
        )
        kept = choice.chosen_by_default and n_treated < SMALL_SAMPLE_TREATED
        if self.share_uncertainty and kept:
            label += (
                f" (kept although only {n_treated} units are treated: CR2 holds the cohort "
                "shares fixed and cannot carry their uncertainty)"
            )
        return label, few_cluster_warnings(n_treated, res.n_clusters) + singleton_warning(
            singletons
        )


def _after_last_start(cells: pd.DataFrame) -> tuple[Dropped, ...]:
    """The rows last-treated controls leave out: every unit's periods from the last cohort's
    start, when no unit is a comparison any more (counted, as every left-out row is)."""
    last = cells["cohort"].max()
    gone = (cells["period"] >= last).to_numpy()
    if not gone.any():
        return ()
    return (
        Dropped(
            f"period from the last cohort's start ({int(last)}), when it stops being a control "
            "(control: last_treated)",
            int(gone.sum()),
            tuple(sorted(set(cells.loc[gone, "unit"]))),
        ),
    )


def singleton_warning(cohorts: list[float], cr2: bool = False) -> tuple[str, ...]:
    """A warning naming the cohorts of one unit: their interactions fit that unit's cells
    exactly, so no cluster-robust variance sees its own noise (CR2's rows using them have
    none: cr2_inference)."""
    if not cohorts:
        return ()
    names = ", ".join(f"{g:g}" for g in cohorts)
    cost = (
        "so CR2 cannot see its own noise and rows using it have no standard error"
        if cr2
        else "so cluster-robust standard errors (CR1 or CR2) omit its own noise and rows using "
        "it have intervals that are too narrow"
    )
    return (
        f"Cohort(s) starting in {names} have a single unit: its cohort × relative-period "
        f"indicators fit that unit's cells exactly, {cost}; compare TWFE with CR2 or "
        "randomisation inference.",
    )
