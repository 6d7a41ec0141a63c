"""Two-stage difference-in-differences (Gardner 2022, arXiv 2207.05943; R did2s, Butts &
Gardner 2022, R Journal 14:162–173).

Stage 1 fits unit and period effects on the untreated cells only; stage 2 regresses the
outcome less those effects on the treatment terms over all cells: one indicator of treated
cells for the overall ATT, and in a second regression one per event time ≥ 0. Point
estimates equal the imputation estimator's with the same weighting. Standard errors are
did2s's GMM ones, which carry the first stage's estimation error into the second: with X₁
the unit and period dummies, X₁₀ the same with treated rows set to zero,
Γ = (X₁₀ᵀX₁₀)⁻¹X₁ᵀX₂, and per cluster g W_g = X₂_gᵀ e₂_g − Γᵀ X₁₀_gᵀ e₁_g,
V = (X₂ᵀX₂)⁻¹ Σ_g W_g W_gᵀ (X₂ᵀX₂)⁻¹ (no small-sample factor, as did2s), e₁ the first
stage's residuals on untreated cells and e₂ the second's. The two regressions' scores are
stacked for the rows' joint covariance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import splu

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.estimators.did.facts import TwoStageFacts
from pathfinder_eval.estimators.did.imputation import lone_rows, small_sample_rows
from pathfinder_eval.estimators.pooled import did_decision, panel_layout, pooled_label
from pathfinder_eval.inference.cluster import blank_vacant, squared_norms, t_summary, vacant_rows
from pathfinder_eval.panel import ValidatedPanel
from pathfinder_eval.results import EffectEstimates, InferenceKey, InferenceUsed, estimates_table
from pathfinder_eval.settings import TwoStageOptions


@dataclass(frozen=True)
class TwoStageFit:
    """labels (k,), estimate (k,), vcov (k, k) GMM; weights (k, n): each estimate as weights on
    the outcomes of the rows kept (`kept`, (n,) bool: rows whose unit and period each have an
    untreated cell);
    n_clusters: G; noise: the mean squared residual (untreated cells' first stage, treated
    cells' event-time second stage)."""

    labels: tuple[str, ...]
    estimate: np.ndarray
    vcov: np.ndarray
    weights: np.ndarray
    kept: np.ndarray
    n_clusters: int
    noise: float


def two_stage(
    y: np.ndarray,
    unit: np.ndarray,
    period: np.ndarray,
    cohort: np.ndarray,
    cluster: np.ndarray | None = None,
) -> TwoStageFit:
    """Gardner's two-stage DiD: the overall ATT (second stage on one indicator of treated
    cells) then one effect per event time ≥ 0 (second stage on event-time indicators), with
    their joint GMM covariance. y, unit, period, cohort (n,): cohort the first treated period
    (NaN or inf: never treated). Rows of units never untreated, and treated rows of periods
    with no untreated cell (nothing to learn their level from), are left out. Clusters default
    to units."""
    y = np.asarray(y, float)
    period = np.asarray(period, float)
    cohort = np.where(np.isfinite(np.asarray(cohort, float)), cohort, np.inf)
    unit_codes = np.unique(np.asarray(unit), return_inverse=True)[1]
    treated = period >= cohort
    has_control = np.bincount(unit_codes, weights=~treated) > 0
    # a treated cell whose period has no untreated cell has no period effect to impute
    # from (all units treated by then): left out, as imputation and R's did2s leave it
    kept = has_control[unit_codes] & np.isin(period, period[~treated])
    if not treated[kept].any():
        raise EstimationError(
            "no treated cell belongs to a unit with an untreated cell",
            where="first_treated",
            fix="check that treated units are observed before their start",
        )
    y, period, cohort, treated = y[kept], period[kept], cohort[kept], treated[kept]
    u = np.unique(unit_codes[kept], return_inverse=True)[1]
    t = np.unique(period, return_inverse=True)[1]
    n, n_units, n_periods = len(y), u.max() + 1, t.max() + 1
    later = t > 0
    rows = np.concatenate([np.arange(n), np.flatnonzero(later)])
    cols = np.concatenate([u, n_units + t[later] - 1])
    x1 = sparse.csr_matrix((np.ones(rows.size), (rows, cols)), (n, n_units + n_periods - 1))
    x10 = sparse.diags((~treated).astype(float)) @ x1  # sparse: one unit and one period each
    try:
        gram1 = splu((x10.T @ x10).tocsc())
    except RuntimeError:  # SuperLU: "Factor is exactly singular"
        raise EstimationError(
            "unit and period effects are not identified from the untreated cells (the "
            "untreated cells do not connect all units and periods)",
            where="rollout",
            fix="keep never-treated or not-yet-treated comparison units in every period",
        ) from None
    resid = y - x1 @ gram1.solve(x10.T @ y)
    e1 = np.where(treated, 0.0, resid)
    rel = (period - cohort)[treated]
    events = np.unique(rel)
    by_event = np.zeros((n, len(events)))
    by_event[np.flatnonzero(treated), np.searchsorted(events, rel)] = 1.0
    labels = ("ATT (all treated cells)", *(f"event time {int(e)}" for e in events))
    groups = np.unique(
        np.asarray(unit)[kept] if cluster is None else np.asarray(cluster)[kept],
        return_inverse=True,
    )[1]
    estimates, scores, weights = [], [], []
    for x2 in (treated[:, None].astype(float), by_event):  # each a separate second stage
        bread = np.linalg.inv(x2.T @ x2)
        estimate = bread @ x2.T @ resid
        x10_gamma = x10 @ gram1.solve(np.asarray(x1.T @ x2))  # X₁₀Γ, (n, k)
        score = np.zeros((groups.max() + 1, x2.shape[1]))
        np.add.at(score, groups, x2 * (resid - x2 @ estimate)[:, None] - e1[:, None] * x10_gamma)
        estimates.append(estimate)
        scores.append(score @ bread)
        # θ̂ = (X₂ᵀX₂)⁻¹X₂ᵀ(I − X₁(X₁₀ᵀX₁₀)⁻¹X₁₀ᵀ) y: the estimates' weights on the outcomes
        weights.append(bread @ (x2 - x10_gamma).T)
    psi = np.hstack(scores)
    second = np.where(treated, resid - by_event @ estimates[-1], e1)
    full = np.zeros((len(labels), len(kept)))
    full[:, kept] = np.vstack(weights)
    return TwoStageFit(
        labels,
        np.concatenate(estimates),
        psi.T @ psi,
        full,
        kept,
        int(groups.max()) + 1,
        float(second @ second / n),
    )


def gmm_label(cluster: str, n_clusters: int) -> str:
    """The inference label of did2s's GMM variance clustered by `cluster` (unit or a
    unit-table column)."""
    by = "unit" if cluster in ("unit", "") else f"{cluster} ({n_clusters} clusters)"
    return f"did2s GMM standard errors (first-stage error carried), clustered by {by}; t(G−1)"


class TwoStage(TwoStageOptions):
    """Gardner's two-stage DiD: the overall ATT, then one row per event time ≥ 0.

    Inference: "cluster_robust" is did2s's GMM variance with a t(G−1) reference, clustered by
    `inference.cluster` (the unit, or a column of the unit table such as region, as did2s's
    cluster_var). "default" follows the linear DiD rule (inference/policy.py): the
    comparison-pooled variance for few treated units or a regional concentration; otherwise
    below 20 treated units the imputation estimator's small-sample variance (the two
    estimators are the same linear function of the outcomes): cohort-stratified with
    Bell-McCaffrey df on balanced panels, else the leave-out conservative variance; GMM above.
    Those small-sample variances treat units as independent, so with a cluster above the unit
    the default is the clustered GMM variance."""

    def fit(
        self, panel: ValidatedPanel, outcome: str, analysis_id: str, level: float = 0.95
    ) -> EffectEstimates:
        cells = panel.outcome_cells(outcome)
        args = (
            cells["y"].to_numpy(float),
            cells["unit"].to_numpy(),
            cells["period"].to_numpy(),
            cells["cohort"].to_numpy(float),
        )
        cluster = panel.cluster_codes(self.inference.cluster, args[1])
        res = two_stage(*args, cluster=cluster)
        n_treated = int(cells.loc[cells["role"] == "treated", "unit"].nunique())
        layout = panel_layout(panel, outcome)
        decision = did_decision(
            self.name,
            self.inference.method,
            n_treated,
            cluster is None,
            layout,
            lambda: layout.cell_weights(args[1], args[2], res.weights),
        )
        choice = decision.choice
        vcov, df = res.vcov, np.full(res.estimate.size, float(res.n_clusters - 1))
        key: InferenceKey = "two_stage_gmm"
        label = gmm_label(self.inference.cluster, res.n_clusters)
        if decision.variance is not None:
            vcov, df, key = decision.variance.vcov, decision.variance.df, "pooled_panel"
            label = pooled_label(layout, choice.reason)
        elif choice.method == "cohort_stratified":
            small = small_sample_rows(*args, choice.reason)
            vcov, df, key, label = small.vcov, small.df, small.key, small.label
        else:
            vcov, df = blank_vacant(
                vcov, df, squared_norms(res.weights), res.noise, float(np.abs(args[0]).max())
            )
        summ = t_summary(res.estimate, vcov, df, level)
        rel = (cells["period"] - cells["cohort"]).to_numpy(float)
        units = cells["unit"].to_numpy()
        treated = rel >= 0
        rows = []
        for j, term in enumerate(res.labels):
            e = None if j == 0 else float(term.split()[-1])
            sel = treated if e is None else rel == e
            rows.append(
                summ.row(
                    j,
                    term,
                    res.estimate[j],
                    df=float(np.atleast_1d(df)[j]),
                    event_time=np.nan if e is None else e,
                    n_units=len(set(units[sel & res.kept].tolist())),
                )
            )
        dropped = int((~res.kept).sum())
        warns = (
            [
                f"{dropped} treated cells were left out: their unit or period has no "
                "untreated cell to learn its level from."
            ]
            if dropped
            else []
        )
        if key == "bjs_leave_out":  # imputation's leave-out variance: its caveats too
            warns += lone_rows(rows)
        warns += vacant_rows(rows, key)
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
            n_units=len(set(units[res.kept].tolist())),
            n_treated=n_treated,
            n_obs=int(res.kept.sum()),
            facts=TwoStageFacts(
                inference_method=key,
                dropped_cells=dropped,
                first_stage="unit and period effects on untreated cells",
            ),
            warnings=tuple(warns),
        )
