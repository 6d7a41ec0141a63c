"""Goodman-Bacon decomposition of the TWFE DiD coefficient (a diagnostic, not a new estimator).

With a balanced panel and a binary, absorbing treatment adopted at different times, the TWFE
coefficient on D_it is exactly a weighted average of every 2×2 DiD between timing groups:
earlier- vs later-treated (the later group as a not-yet-treated control), later- vs
earlier-treated (the earlier, already-treated group as control), and treated vs never-treated
(or always-treated) units. The weights are positive and sum to one; the 2×2s that use
already-treated units as controls are the ones that bias TWFE when effects change over time
(Goodman-Bacon 2021, J. Econometrics 225:254–277, Theorem 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.estimators.did.facts import BaconFacts
from pathfinder_eval.estimators.did.twfe import cr2_row, df_text
from pathfinder_eval.estimators.did.two_way import cr1_label, fit_twfe
from pathfinder_eval.inference.cluster import t_summary, vacant_rows
from pathfinder_eval.inference.policy import SMALL_SAMPLE_TREATED, few_cluster_warnings
from pathfinder_eval.panel import LEFT_OUT_BY, OTHER_RULE, ValidatedPanel
from pathfinder_eval.results import Dropped, EffectEstimates, InferenceUsed, estimates_table
from pathfinder_eval.settings import BaconOptions

EARLIER_VS_LATER = "Earlier vs later treated"
LATER_VS_EARLIER = "Later vs earlier treated"
TREATED_VS_NEVER = "Treated vs never treated"
TREATED_VS_ALWAYS = "Treated vs always treated"
COMPARISON_TYPES = (EARLIER_VS_LATER, LATER_VS_EARLIER, TREATED_VS_NEVER, TREATED_VS_ALWAYS)


@dataclass(frozen=True)
class BaconResult:
    """The decomposition of one TWFE coefficient.

    twfe: the TWFE coefficient computed directly (two-way demeaned D, balanced panel).
    kind: (m,) comparison type of each 2×2 (one of COMPARISON_TYPES).
    treated, control: (m,) timing-group labels: the first-treated period position (0-based
        index into the sorted periods) of the group acting as treated / as control, with
        -1 for never treated; always-treated groups carry position 0.
    estimate: (m,) the 2×2 DiD estimates β_k; weight: (m,) their weights s_k (sum to 1).
    n_treated, n_control: (m,) units in the treated and control group of each 2×2.
    """

    twfe: float
    kind: tuple[str, ...]
    treated: np.ndarray
    control: np.ndarray
    estimate: np.ndarray
    weight: np.ndarray
    n_treated: np.ndarray
    n_control: np.ndarray

    def by_type(self) -> dict[str, tuple[float, float]]:
        """{type: (total weight, weighted-average estimate)} for the types present."""
        kinds = np.asarray(self.kind)
        out = {}
        for k in COMPARISON_TYPES:
            sel = kinds == k
            if sel.any():
                w = float(self.weight[sel].sum())
                avg = float(self.weight[sel] @ self.estimate[sel] / w) if w > 0 else float("nan")
                out[k] = (w, avg)
        return out


def bacon_decomposition(y: np.ndarray, first: np.ndarray) -> BaconResult:
    """Goodman-Bacon (2021, Theorem 1; weights eqs. 10e–10g) decomposition on a balanced panel.

    y: (N, T) outcomes, units in rows, periods in time order in columns (no missing values).
    first: (N,) position (0-based column index) of each unit's first treated period; NaN or
        any value ≥ T for units never treated within the panel; ≤ 0 for always-treated units.

    Treatment is D_it = 1{t ≥ first_i}. Returns every 2×2 with its weight; Σ weight = 1 and
    Σ weight·estimate equals the TWFE coefficient up to floating-point rounding.
    """
    y = np.asarray(y, dtype=float)
    n_units, n_periods = y.shape
    first = np.asarray(first, dtype=float)
    timing = np.where(np.isnan(first) | (first >= n_periods), -1.0, np.clip(first, 0, None))
    periods = np.arange(n_periods)
    d = np.where(timing[:, None] < 0, 0.0, (periods[None, :] >= timing[:, None]).astype(float))
    d_tilde = d - d.mean(axis=1, keepdims=True) - d.mean(axis=0, keepdims=True) + d.mean()
    var_d = float((d_tilde**2).mean())
    if var_d <= 1e-15:
        raise EstimationError(
            "treatment does not vary within units and periods, so TWFE is not identified",
            where="rollout",
            fix="check that some units start treatment inside the panel's periods",
        )
    twfe = float((d_tilde * y).sum() / (d_tilde**2).sum())

    groups = {}
    for g in np.unique(timing):
        rows = timing == g
        groups[float(g)] = (int(rows.sum()), y[rows].mean(axis=0))
    timed = sorted(g for g in groups if g > 0)
    controls = [g for g in (-1.0, 0.0) if g in groups]

    def share_treated(g: float) -> float:
        return (n_periods - g) / n_periods

    def window(g: float, lo: float, hi: float) -> float:
        return float(groups[g][1][int(lo) : int(hi)].mean())

    kind, treated, control, est, wt, nt, nc = [], [], [], [], [], [], []
    for k in timed:
        nk, dk = groups[k][0] / n_units, share_treated(k)
        for u in controls:
            nu = groups[u][0] / n_units
            beta = (window(k, k, n_periods) - window(k, 0, k)) - (
                window(u, k, n_periods) - window(u, 0, k)
            )
            # s_kU = (n_k + n_U)² n_kU (1 − n_kU) D̄_k (1 − D̄_k) / V̂^D  (eq. 10e)
            s = nk * nu * dk * (1 - dk) / var_d
            kind.append(TREATED_VS_NEVER if u < 0 else TREATED_VS_ALWAYS)
            treated.append(k), control.append(u), est.append(beta), wt.append(s)
            nt.append(groups[k][0]), nc.append(groups[u][0])
        for ell in timed:
            if ell <= k:
                continue
            nl, dl = groups[ell][0] / n_units, share_treated(ell)
            pair = nk * nl / (nk + nl) ** 2  # n_kℓ (1 − n_kℓ)
            # earlier k treated, later ℓ not yet treated: periods before ℓ starts (eq. 10f)
            beta_k = (window(k, k, ell) - window(k, 0, k)) - (
                window(ell, k, ell) - window(ell, 0, k)
            )
            s_k = ((nk + nl) * (1 - dl)) ** 2 * pair * (dk - dl) / (1 - dl) * (1 - dk) / (1 - dl)
            # later ℓ treated, earlier k already treated: periods from k's start (eq. 10g)
            beta_l = (window(ell, ell, n_periods) - window(ell, k, ell)) - (
                window(k, ell, n_periods) - window(k, k, ell)
            )
            s_l = ((nk + nl) * dk) ** 2 * pair * (dl / dk) * (dk - dl) / dk
            for name, tr, co, b, s in (
                (EARLIER_VS_LATER, k, ell, beta_k, s_k),
                (LATER_VS_EARLIER, ell, k, beta_l, s_l),
            ):
                kind.append(name), treated.append(tr), control.append(co)
                est.append(b), wt.append(s / var_d)
                nt.append(groups[tr][0]), nc.append(groups[co][0])
    return BaconResult(
        twfe,
        tuple(kind),
        np.asarray(treated, dtype=float),
        np.asarray(control, dtype=float),
        np.asarray(est, dtype=float),
        np.asarray(wt, dtype=float),
        np.asarray(nt, dtype=int),
        np.asarray(nc, dtype=int),
    )


def balanced_matrix(cells: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list, list]:
    """Cells (unit, period, y, cohort) → (Y (N, T), first-treated positions (N,), units,
    periods); raises EstimationError naming example gaps when the panel is not balanced."""
    units = sorted(cells["unit"].unique())
    periods = sorted(cells["period"].unique())
    wide = cells.pivot_table(index="unit", columns="period", values="y", aggfunc="first")
    wide = wide.reindex(index=units, columns=periods)
    missing = wide.isna()
    if missing.to_numpy().any():
        gaps = missing.stack()
        gaps = gaps[gaps].index[:3].tolist()
        example = ", ".join(f"{u} in {p}" for u, p in gaps)
        raise EstimationError(
            f"the Bacon decomposition needs a balanced panel; {int(missing.to_numpy().sum())} "
            f"unit-period cells are missing (e.g. {example})",
            where="analyses.estimator: bacon",
            fix="restrict the analysis to units and periods with complete data, or use "
            "sun_abraham or imputation, which handle unbalanced panels",
        )
    cohort = cells.groupby("unit")["cohort"].first().reindex(units)
    # first period at or after the cohort's start (a start beyond the panel = never treated)
    first = np.searchsorted(np.asarray(periods, dtype=float), cohort.to_numpy(float)).astype(float)
    first[cohort.isna().to_numpy()] = np.nan
    return wide.to_numpy(float), first, units, periods


class BaconDecomposition(BaconOptions):
    """TWFE DiD (headline, CR1 by unit, t(G−1)) with its Goodman-Bacon decomposition.

    The table's first row is the TWFE estimate; one row per comparison type follows with the
    weighted-average 2×2 estimate of that type (no standard error: the components are a
    diagnostic). Type weights and every 2×2 are in `diagnostics`. Unweighted, no covariates
    (the within-covariate component of Goodman-Bacon's Section 5 is not implemented).
    `balance` (default) drops units missing any period, counted in a warning, as R's did does
    for panels; with balance: false an unbalanced panel is not estimable.
    """

    def fit(
        self, panel: ValidatedPanel, outcome: str, analysis_id: str, level: float = 0.95
    ) -> EffectEstimates:
        cells = panel.outcome_cells(outcome)
        dropped: list[str] = []
        left_out = by_design = 0
        if self.balance:
            counts = cells.groupby("unit")["period"].nunique()
            every = np.array(sorted(cells["period"].unique()), dtype=float)
            dropped = sorted(counts.index[counts < len(every)])
            gone = cells["unit"].isin(dropped)
            left_out = int(gone.sum())
            cells = cells[~gone]
            # units whose only missing periods are those the design leaves out
            gap, _ = panel.left_out_by_design(np.array(dropped, dtype=object), every)
            by_design = int(
                (counts.reindex(dropped).to_numpy() + gap.sum(axis=1) == len(every)).sum()
            )
            if by_design and not (cells["role"] == "treated").any():
                raise EstimationError(
                    f"every treated unit misses a period of {outcome!r}, {by_design} of them "
                    f"only the periods the design leaves out ({LEFT_OUT_BY}), and the "
                    "decomposition needs every period of a unit",
                    where="time.partial_period_rule",
                    fix="read callaway_santanna, which measures around the left-out periods, or "
                    + OTHER_RULE,
                )
        y, first, units, periods = balanced_matrix(cells)
        dec = bacon_decomposition(y, first)
        nested = self.inference.absorbed_effects == "nested"
        fit = fit_twfe(cells, ["treated"], weighted=False, nested=nested)
        summ = t_summary(fit.params, fit.vcov, fit.n_clusters - 1, level)
        rows = [summ.row(0, "ATT (TWFE)", dec.twfe, n_units=fit.n_clusters)]
        n_treated = int(cells.loc[cells["role"] == "treated", "unit"].nunique())
        key, used = "cr1", cr1_label(self.inference.absorbed_effects)
        if self.inference.method == "default" and n_treated < SMALL_SAMPLE_TREATED:
            # CR1 over-rejects with few treated (12.5% at 5% with 7 of family_network's LAs)
            c2 = cr2_row(cells, rows[0], level)
            key = "cr2"
            used = (
                f"CR2 cluster-robust by unit (Bell & McCaffrey 2002) with Satterthwaite degrees "
                f"of freedom {df_text(c2.df[0])}, the small-sample method with fewer than "
                f"{SMALL_SAMPLE_TREATED} treated units"
            )
        types = dec.by_type()
        for kind, (_w, avg) in types.items():
            rows.append(
                {
                    "term": kind,
                    "estimate": avg,
                    "std_error": np.nan,
                    "statistic": np.nan,
                    "p_value": np.nan,
                    "ci_lower": np.nan,
                    "ci_upper": np.nan,
                    "df": np.nan,
                    "n_units": np.nan,
                }
            )

        def label(pos: float) -> object:
            return "never treated" if pos < 0 else periods[int(pos)]

        comparisons = [
            {
                "type": dec.kind[j],
                "treated_cohort": label(dec.treated[j]),
                "control_cohort": label(dec.control[j]),
                "estimate": float(dec.estimate[j]),
                "weight": float(dec.weight[j]),
                "n_units_treated": int(dec.n_treated[j]),
                "n_units_control": int(dec.n_control[j]),
            }
            for j in range(len(dec.kind))
        ]
        return EffectEstimates(
            analysis_id=analysis_id,
            outcome=outcome,
            estimator=self.name,
            inference=InferenceUsed(
                key=key,
                chosen_by_default=self.inference.method == "default",
                label=used + " for the TWFE row; decomposition rows are descriptive",
            ),
            table=estimates_table(rows),
            level=level,
            vcov=None,
            n_units=len(units),
            n_treated=n_treated,
            n_obs=int(y.size),
            facts=BaconFacts(
                weights_by_type={k: w for k, (w, _a) in types.items()},
                average_by_type={k: a for k, (_w, a) in types.items()},
                weight_sum=float(dec.weight.sum()),
                decomposition_total=float(dec.weight @ dec.estimate),
                twfe_linearmodels=float(fit.params[0]),
                already_treated_control_weight=types.get(LATER_VS_EARLIER, (0.0, 0))[0],
                comparisons=comparisons,
                units_dropped_unbalanced=dropped,
            ),
            dropped=(
                Dropped(
                    f"unit missing a period of {outcome}, dropped to balance the panel",
                    left_out,
                    tuple(dropped),
                ),
            )
            if dropped
            else (),
            warnings=few_cluster_warnings(n_treated, fit.n_clusters)
            + tuple(vacant_rows(rows[:1], key))
            + (
                (
                    f"{len(dropped)} units missing a period of {outcome!r} were dropped to "
                    "balance the panel"
                    + (
                        f" ({by_design} of them miss only periods the design leaves out: "
                        f"{LEFT_OUT_BY}; the decomposition needs every period of a unit)"
                        if by_design
                        else ""
                    )
                    + "; the TWFE row and its decomposition use the rest.",
                )
                if dropped
                else ()
            ),
        )
