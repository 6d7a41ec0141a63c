"""Synthetic control and synthetic DiD on the panel, for pilots with very few treated units.

Balanced unit × period matrices are built here (donors with a missing period are dropped and
named in the diagnostics); the numbers come from `synthdid_core` and `inference/conformal`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.estimators.pooled import decide, panel_layout, pooled_label, pooled_rows
from pathfinder_eval.estimators.synthetic.conformal import conformal_interval, conformal_pvalue
from pathfinder_eval.estimators.synthetic.core import (
    SDIDFit,
    bootstrap_se,
    jackknife_se,
    placebo_draws,
    synthdid,
)
from pathfinder_eval.estimators.synthetic.facts import SyntheticControlFacts, SyntheticDidFacts
from pathfinder_eval.estimators.synthetic.first_order import variance_weights
from pathfinder_eval.estimators.synthetic.predictors import fixed_v_weights, predictor_weights
from pathfinder_eval.inference.policy import Choice, synthetic_did_default
from pathfinder_eval.panel import OTHER_RULE, ValidatedPanel
from pathfinder_eval.results import (
    Dropped,
    EffectEstimates,
    InferenceKey,
    InferenceUsed,
    estimates_table,
)
from pathfinder_eval.settings import SyntheticControlOptions, SyntheticDidOptions

# SDID's `variance` option → the InferenceUsed key (report/validity.py)
VARIANCE_KEY: dict[str, InferenceKey] = {
    "pooled": "pooled_panel",
    "placebo": "sdid_placebo",
    "jackknife": "sdid_jackknife",
    "bootstrap": "sdid_bootstrap",
}


@dataclass(frozen=True)
class BlockData:
    """Y: (N0 + N1, T) with donors first; names: N0 + N1 unit codes; periods: (T,);
    n0 donors; t0 pre periods (before the common first treated period)."""

    y: np.ndarray
    names: tuple[str, ...]
    periods: np.ndarray
    n0: int
    t0: int
    dropped_donors: tuple[str, ...]


def cells_used(blocks: Iterable[BlockData]) -> int:
    """Unit-periods the blocks use, each counted once: a donor serves every treated unit's
    (or cohort's) block, and counting it per block reported more cells than the panel has."""
    return len({(u, p) for b in blocks for u in b.names for p in b.periods.tolist()})


def block_matrix(
    panel: ValidatedPanel, outcome: str, treated: list[str], pool: set[str] | None = None
) -> BlockData:
    """Donors (comparison units observed in every period, from `pool` when given) then the
    given treated units."""
    cells = panel.outcome_cells(outcome)
    wide = cells.pivot(index="unit", columns="period", values="y").sort_index()
    cohort = cells.groupby("unit")["cohort"].first()
    donors_all = sorted(
        u for u in wide.index if np.isnan(cohort[u]) and (pool is None or u in pool)
    )
    complete = wide.notna().all(axis=1)
    donors = [u for u in donors_all if complete[u]]
    missing = [u for u in treated if u not in wide.index or not complete.get(u, False)]
    if missing:
        raise EstimationError(
            f"treated unit(s) {', '.join(missing)} lack a value in some period of {outcome}",
            where=outcome,
            fix="supply complete series for treated units (suppressed or "
            "missing cells cannot be synthesised)",
        )
    starts = {float(cohort[u]) for u in treated}
    if len(starts) != 1:
        raise ValueError("block_matrix needs treated units with one common start")
    periods = wide.columns.to_numpy()
    start = starts.pop()
    t0 = int((periods < start).sum())
    if t0 < 2 or len(donors) < 2:
        raise EstimationError(
            f"the units starting in period {start:g} have {t0} pre-period(s) and "
            f"{len(donors)} complete donors; synthetic methods need at least 2 of each",
            where=outcome,
            fix="use a longer series or a larger donor pool",
        )
    y = wide.loc[donors + list(treated)].to_numpy(dtype=float)
    return BlockData(
        y,
        tuple(donors + list(treated)),
        periods,
        len(donors),
        t0,
        tuple(u for u in donors_all if u not in donors),
    )


def neighbour_donors(panel: ValidatedPanel, unit: str) -> set[str] | None:
    """A treated unit's own statistical neighbours, when the design's pool is built from
    them; None (every comparison unit) otherwise."""
    for s in panel.spec.comparison.neighbour_sets:
        if s.unit == unit:
            return {code for code, _ in s.neighbours}
    return None


def _cohorts(panel: ValidatedPanel, outcome: str) -> tuple[dict[float, list[str]], list[str]]:
    """Treated units with a value in every period, by first treated period; and the others
    (their ids).

    Raises EstimationError when no treated unit has a complete series."""
    cells = panel.outcome_cells(outcome)
    n_periods = cells["period"].nunique()
    treated = (
        cells[cells["role"] == "treated"]
        .groupby("unit")
        .agg(cohort=("cohort", "first"), n=("period", "nunique"))
    )
    expected = panel.units.loc[panel.units["role"] == "treated", "unit"]
    incomplete = [u for u in expected if u not in treated.index or treated.loc[u, "n"] < n_periods]
    out: dict[float, list[str]] = {}
    for unit, row in treated[treated["n"] == n_periods].sort_index().iterrows():
        out.setdefault(float(row["cohort"]), []).append(unit)
    if not out:
        partly = set(panel.partly_exposed_treated()) & set(incomplete)
        raise EstimationError(
            f"no treated unit has a complete {outcome} series (incomplete: "
            f"{', '.join(_names(panel, incomplete))})"
            + (
                f"; the design leaves out the partly exposed period of {len(partly)} of them "
                "(partial_period_rule: transition)"
                if partly
                else ""
            ),
            where=outcome,
            fix=OTHER_RULE
            if partly
            else "suppressed or missing cells in a treated series cannot be synthesised",
        )
    return dict(sorted(out.items())), incomplete


# Below this many donors the placebo variance's few placebo estimates make it unreliable (and
# the comparison-pooled variance cannot be learned either).
FEW_DONORS = 10


def _t_row(term: str, estimate: float, se: float, df: float, level: float, **extra) -> dict:
    stat = estimate / se if se > 0 else np.nan
    half = stats.t.ppf(0.5 + level / 2, df) * se
    return {
        "term": term,
        "estimate": estimate,
        "std_error": se,
        "statistic": stat,
        "p_value": 2 * stats.t.sf(abs(stat), df) if se > 0 else np.nan,
        "ci_lower": estimate - half,
        "ci_upper": estimate + half,
        "df": df,
        **extra,
    }


def _z_row(term: str, estimate: float, se: float, level: float, **extra) -> dict:
    z = stats.norm.ppf(0.5 + level / 2)
    stat = estimate / se if se > 0 else np.nan
    return {
        "term": term,
        "estimate": estimate,
        "std_error": se,
        "statistic": stat,
        "p_value": 2 * stats.norm.sf(abs(stat)) if se > 0 else np.nan,
        "ci_lower": estimate - z * se,
        "ci_upper": estimate + z * se,
        **extra,
    }


class SyntheticDiD(SyntheticDidOptions):
    """Synthetic DiD (or its SC / DID special cases) with placebo variance.

    Staggered adoption: one estimate per cohort against never-treated donors, averaged with
    weights proportional to treated cells (N1_g × T1_g); the placebo variance re-assigns the
    same cohort structure to randomly chosen donors (Arkhangelsky et al. 2021, Algorithm 4;
    Clarke, Pailañir, Athey & Imbens 2023 for staggered adoption).
    """

    def fit(
        self, panel: ValidatedPanel, outcome: str, analysis_id: str, level: float = 0.95
    ) -> EffectEstimates:
        cohorts, incomplete = _cohorts(panel, outcome)
        blocks = {g: block_matrix(panel, outcome, units) for g, units in cohorts.items()}
        fits = {g: synthdid(b.y, b.n0, b.t0, self.method) for g, b in blocks.items()}
        cells = {g: (b.y.shape[0] - b.n0) * (b.y.shape[1] - b.t0) for g, b in blocks.items()}
        total = sum(cells.values())
        weights = {g: c / total for g, c in cells.items()}
        att = sum(weights[g] * fits[g].estimate for g in fits)
        n_treated = sum(len(u) for u in cohorts.values())
        layout = panel_layout(panel, outcome)

        held_fixed: list[str] = []

        def unit_weights() -> np.ndarray:
            out = np.zeros((1, len(layout.units), len(layout.periods)))
            for g, b in blocks.items():
                w, why = variance_weights(b.y, b.n0, b.t0, fits[g])
                if why:
                    held_fixed.append(f"cohort {panel.period_label(int(g))} ({why})")
                names = np.array(b.names, dtype=object)
                out += weights[g] * layout.unit_weights(names, b.periods, w[None])
            return out

        decision = decide(
            self.requested_variance,
            self.method != "sc",
            layout,
            unit_weights,
            lambda geo: synthetic_did_default(self.requested_variance, geo),
        )
        choice = decision.choice
        few_donors: tuple[str, ...] = ()
        if decision.variance is not None:
            pv = decision.variance
            rows_first = pooled_rows(np.array([att]), pv, level)
            se, df = float(rows_first.std_error[0]), float(rows_first.df[0])
            variance_text = pooled_label(layout, choice.reason) + (
                "; the estimate linearised in the outcomes, so the fitted unit and time "
                "weights' own noise counts"
                if self.method == "sdid" and not held_fixed
                else ""
            )
        else:
            se, variance_text = self._standard_error(blocks, fits, weights, outcome, choice)
            df = np.nan
            if choice.method == "placebo":
                # the variance of n0 placebo estimates: a t(n0 − 1) reference (with one treated
                # unit and 6 donors the normal one rejected 17% of true nulls at 5%, t(5) 8%;
                # found in review)
                donors = min(b.n0 for b in blocks.values())
                df = float(donors - 1)
                reference = f"t({donors - 1}) reference"
                variance_text = variance_text.replace("normal reference", reference)
                if donors < FEW_DONORS:
                    few_donors = (
                        f"Only {donors} donors: the placebo variance rests on few placebo "
                        "estimates and is unreliable (one treated unit with 6 donors: 8% of true "
                        "nulls rejected at 5% with this t reference, 17% with the normal one "
                        "Arkhangelsky et al. use); read the interval as indicative.",
                    )
        label = {
            "sdid": "ATT (synthetic DiD)",
            "sc": "ATT (synthetic control)",
            "did": "ATT (DiD)",
        }[self.method]
        rows = [
            _t_row(label, att, se, df, level, n_units=n_treated)
            if np.isfinite(df)
            else _z_row(label, att, se, level, n_units=n_treated)
        ]
        for g, fit in fits.items():
            b = blocks[g]
            for p, eff in zip(b.periods[b.t0 :], fit.curve, strict=True):
                rows.append(
                    {
                        "term": f"cohort {panel.period_label(int(g))}: period "
                        f"{panel.period_label(int(p))}",
                        "estimate": float(eff),
                        "std_error": np.nan,
                        "statistic": np.nan,
                        "p_value": np.nan,
                        "ci_lower": np.nan,
                        "ci_upper": np.nan,
                        "cohort": g,
                        "period": float(p),
                        "n_units": b.y.shape[0] - b.n0,
                    }
                )
        facts = SyntheticDidFacts(
            method=self.method,
            variance=variance_text,
            cohort_weights={panel.period_label(int(g)): w for g, w in weights.items()},
            cohort_estimates={panel.period_label(int(g)): f.estimate for g, f in fits.items()},
            unit_weights={
                panel.period_label(int(g)): _named(blocks[g].names, f.omega)
                for g, f in fits.items()
            },
            time_weights={
                panel.period_label(int(g)): {
                    panel.period_label(int(p)): float(w)
                    for p, w in zip(blocks[g].periods[: blocks[g].t0], f.lambda_, strict=True)
                    if w > 0
                }
                for g, f in fits.items()
            },
            noise_level={panel.period_label(int(g)): f.noise_level for g, f in fits.items()},
            gaps={
                panel.period_label(int(g)): _gap_series(panel, blocks[g], f)
                for g, f in fits.items()
            },
            gap_baseline={
                panel.period_label(int(g)): _gap_baseline(blocks[g], f) for g, f in fits.items()
            },
            donors_dropped_incomplete=sorted(
                {u for b in blocks.values() for u in b.dropped_donors}
            ),
        )
        n_units = blocks[next(iter(blocks))].n0 + n_treated
        dropped, donor_warning = _left_out(
            panel, outcome, incomplete, [b.dropped_donors for b in blocks.values()]
        )
        return EffectEstimates(
            analysis_id=analysis_id,
            outcome=outcome,
            estimator=self.name,
            inference=InferenceUsed(
                key=VARIANCE_KEY[choice.method],
                label=variance_text,
                chosen_by_default=choice.chosen_by_default,
                reason=choice.reason,
                dependence=decision.dependence,
            ),
            table=estimates_table(rows),
            level=level,
            vcov=None,
            n_units=n_units,
            n_treated=n_treated,
            n_obs=cells_used(blocks.values()),
            facts=facts,
            warnings=_short_series_warnings(blocks)
            + _incomplete_warning(_names(panel, incomplete))
            + donor_warning
            + _held_fixed_warning(held_fixed)
            + few_donors,
            dropped=dropped,
        )

    def _standard_error(
        self,
        blocks: dict[float, BlockData],
        fits: dict[float, SDIDFit],
        weights: dict[float, float],
        outcome: str,
        choice: Choice,
    ) -> tuple[float, str]:
        """The placebo, jackknife or bootstrap variance; jackknife and bootstrap need one
        cohort with at least two treated units."""
        rng = np.random.default_rng(self.seed)
        if choice.method != "placebo":
            g, b = next(iter(blocks.items()))
            if len(blocks) != 1 or b.y.shape[0] - b.n0 < 2:
                raise EstimationError(
                    f"{outcome}: {choice.method} variance needs one cohort with at least two "
                    "treated units",
                    where="options.variance",
                    fix="use variance: placebo (valid with one treated unit)",
                )
            if choice.method == "jackknife":
                se = jackknife_se(b.y, b.n0, b.t0, fits[g])
                return (
                    se,
                    "fixed-weights jackknife (Arkhangelsky et al. Algorithm 3), normal reference",
                )
            se = bootstrap_se(b.y, b.n0, b.t0, fits[g], self.replications, rng)
            return se, (
                f"unit bootstrap, {self.replications} replications (Algorithm 2), normal reference"
            )
        draws = np.zeros(self.replications)
        for g, b in blocks.items():
            if b.n0 <= b.y.shape[0] - b.n0:
                raise EstimationError(
                    f"{outcome}: {b.n0} donors for {b.y.shape[0] - b.n0} treated units; the "
                    "placebo variance needs more donors than treated units",
                    where=outcome,
                )
            draws += weights[g] * placebo_draws(b.y, b.n0, b.t0, fits[g], self.replications, rng)
        se = float(np.sqrt((self.replications - 1) / self.replications) * draws.std(ddof=1))
        possible = math.prod(math.comb(b.n0, b.y.shape[0] - b.n0) for b in blocks.values())
        drawn = (
            f"{self.replications} placebo assignments of donors drawn from the {possible} possible"
            if possible < self.replications
            else f"{self.replications} placebo assignments of donors"
        )
        return se, f"placebo variance ({drawn}, Algorithm 4), normal reference"


class SyntheticControl(SyntheticControlOptions):
    """Synthetic control for each treated unit separately (Abadie, Diamond & Hainmueller 2010).

    By default convex donor weights minimise the pre-period outcome gap with equal weight on
    every pre-period outcome (V = identity on lagged outcomes), plus an infinitesimal ridge
    that picks one solution when several fit equally (as in synthdid's `sc_estimate`). With
    `predictors` (other outcomes of the design, entered as their pre-period means beside the
    outcome's own pre-period values) V is chosen from the data to minimise the pre-period
    outcome MSPE (Abadie, Diamond & Hainmueller 2010, §2.3); donors lacking a predictor are
    dropped and named. With a statistical-neighbour pool each unit's donors are its own
    neighbours, not the union. Inference for one treated unit: placebo-in-space permutation of the
    post/pre RMSPE ratio (Abadie et al. 2010) and conformal inference for a constant effect
    with the confidence set by test inversion (Chernozhukov, Wüthrich & Zhu 2021, JASA).
    """

    def fit(
        self, panel: ValidatedPanel, outcome: str, analysis_id: str, level: float = 0.95
    ) -> EffectEstimates:
        rows, per_unit = [], {}
        cohorts, incomplete = _cohorts(panel, outcome)
        warns = list(_incomplete_warning(_names(panel, incomplete)))
        donor_sets: list[tuple[str, ...]] = []
        n_units = 0
        used: list[BlockData] = []
        for g, units in cohorts.items():
            for unit in units:
                b = block_matrix(panel, outcome, [unit], neighbour_donors(panel, unit))
                x = None
                if self.predictors:
                    b, x = with_predictors(panel, b, self.predictors)
                donor_sets.append(b.dropped_donors)
                sc = synthetic_control_unit(b.y, b.n0, b.t0, x)
                fit, gaps, ratio, att = sc.fit, sc.gaps, sc.rmspe_ratio, sc.att
                placebo, p_perm = sc.placebo_ratios, sc.permutation_p_value
                p_conf = conformal_pvalue(b.y, b.n0, b.t0, 0.0)
                lo, hi = conformal_interval(b.y, b.n0, b.t0, att, 1 - level, self.conformal_grid)
                name = panel.units.set_index("unit").loc[unit, "name"]
                rows.append(
                    {
                        "term": f"{name}: ATT (synthetic control)",
                        "estimate": att,
                        "std_error": np.nan,
                        "statistic": ratio,
                        "p_value": p_perm,
                        "ci_lower": lo,
                        "ci_upper": hi,
                        "cohort": g,
                        "n_units": 1,
                    }
                )
                for p, gap in zip(b.periods[b.t0 :], gaps[b.t0 :], strict=True):
                    rows.append(
                        {
                            "term": f"{name}: gap {panel.period_label(int(p))}",
                            "estimate": float(gap),
                            "std_error": np.nan,
                            "statistic": np.nan,
                            "p_value": np.nan,
                            "ci_lower": np.nan,
                            "ci_upper": np.nan,
                            "cohort": g,
                            "period": float(p),
                            "n_units": 1,
                        }
                    )
                loo = _leave_one_out(b, fit)
                pre_rmspe = float(np.sqrt(np.mean(gaps[: b.t0] ** 2)))
                per_unit[str(name)] = {
                    "donor_weights": _named(b.names[: b.n0], fit.omega),
                    "predictor_weights": (
                        dict(
                            zip(
                                [
                                    *self.predictors,
                                    *(
                                        f"outcome {panel.period_label(int(p))}"
                                        for p in b.periods[: b.t0]
                                    ),
                                ],
                                sc.predictor_weights.tolist(),
                                strict=True,
                            )
                        )
                        if sc.predictor_weights is not None
                        else {}
                    ),
                    "pre_rmspe": pre_rmspe,
                    "post_rmspe": float(np.sqrt(np.mean(gaps[b.t0 :] ** 2))),
                    "rmspe_ratio": ratio,
                    "placebo_rmspe_ratios": sorted(float(r) for r in placebo),
                    "permutation_p_value": p_perm,
                    "conformal_p_value_no_effect": p_conf,
                    "gaps": {
                        panel.period_label(int(p)): float(v)
                        for p, v in zip(b.periods, gaps, strict=True)
                    },
                    "leave_one_donor_out": loo,
                    "donors_dropped_incomplete": list(b.dropped_donors),
                }
                if 1 / (b.n0 + 1) > 1 - level:
                    warns.append(
                        f"{name}: {b.n0} donors allow permutation p-values no "
                        f"smaller than {1 / (b.n0 + 1):.3f}."
                    )
                if not np.isfinite(lo) or not np.isfinite(hi):
                    warns.append(
                        f"{name}: with {b.y.shape[1]} periods the conformal "
                        f"{level:.0%} confidence set is unbounded: the data cannot "
                        "rule out any effect size."
                    )
                n_units += 1
                used.append(b)
                warns += list(_short_series_warnings({g: b}))
                scale = float(np.std(b.y[-1, : b.t0])) or 1.0
                if pre_rmspe > 0.5 * scale:
                    warns.append(
                        f"{name}: poor pre-period fit (RMSPE {pre_rmspe:.3g} against "
                        f"a pre-period SD of {scale:.3g}); the synthetic comparator "
                        "does not track this unit and its gaps are not credible."
                    )
        if not per_unit:
            raise EstimationError(
                "; ".join(warns), where=outcome, fix="supply complete series for the treated units"
            )
        dropped, donor_warning = _left_out(panel, outcome, incomplete, donor_sets)
        return EffectEstimates(
            analysis_id=analysis_id,
            outcome=outcome,
            estimator=self.name,
            inference=InferenceUsed(
                key="sc_placebo_conformal",
                label="placebo-in-space permutation p-value (post/pre RMSPE ratio); conformal "
                f"{level:.0%} confidence set by test inversion",
                chosen_by_default=self.inference.method == "default",
            ),
            table=estimates_table(rows),
            level=level,
            vcov=None,
            n_units=len({u for b in used for u in b.names}),
            n_treated=n_units,
            n_obs=cells_used(used),
            facts=SyntheticControlFacts(
                units=per_unit,
                v_matrix=(
                    f"data-driven over predictors {list(self.predictors)} and "
                    "pre-period outcomes (minimum pre-period MSPE)"
                )
                if self.predictors
                else "identity on pre-period outcomes",
            ),
            warnings=tuple(dict.fromkeys(warns)) + donor_warning,
            dropped=dropped,
        )


@dataclass(frozen=True)
class SCUnitFit:
    """Synthetic control for the last row of Y. gaps: (T,) treated minus synthetic;
    placebo_ratios: (N0,) post/pre RMSPE ratios of each donor against the other donors."""

    fit: SDIDFit
    gaps: np.ndarray
    att: float
    rmspe_ratio: float
    placebo_ratios: np.ndarray
    permutation_p_value: float
    predictor_weights: np.ndarray | None = None


def synthetic_control_unit(
    y: np.ndarray, n0: int, t0: int, x: np.ndarray | None = None
) -> SCUnitFit:
    """Weights, gaps and the placebo-in-space permutation test (Abadie et al. 2010, §4):
    p = (1 + #{donors whose post/pre RMSPE ratio ≥ the treated unit's}) / (N0 + 1), each
    donor's ratio from a synthetic control built from all other units (see _donor_gaps).

    x: optional (k, N0 + 1) predictors (donors' columns first, the treated unit's last); the
    weights then come from predictors with a data-driven V (`sc_predictors`), and each placebo
    re-solves its weights under the treated unit's V."""
    fit = synthdid(y, n0, t0, "sc")
    v = None
    if x is not None:
        pf = predictor_weights(x[:, -1], x[:, :n0], y[-1, :t0], y[:n0, :t0])
        fit, v = replace(fit, omega=pf.omega), pf.v
    gaps = y[-1] - fit.omega @ y[:n0]
    ratio = _rmspe_ratio(gaps, t0)
    placebo = np.array([_rmspe_ratio(_donor_gaps(y, j, t0, x, v), t0) for j in range(n0)])
    p_perm = float((1 + (placebo >= ratio).sum()) / (n0 + 1))
    return SCUnitFit(fit, gaps, float(gaps[t0:].mean()), ratio, placebo, p_perm, v)


def with_predictors(
    panel: ValidatedPanel, b: BlockData, predictors: tuple[str, ...]
) -> tuple[BlockData, np.ndarray]:
    """Predictor matrix (k, N0 + 1): each predictor's pre-period mean, then the outcome's own
    pre-period values; donors without every predictor are dropped from the block."""
    pre = b.periods[: b.t0]
    rows = []
    for name in predictors:
        cells = panel.outcome_cells(name)
        if cells.empty:
            raise EstimationError(
                f"predictor {name!r} has no data",
                where="options.predictors",
                fix="name outcomes of the design that have data",
            )
        means = cells[cells["period"].isin(pre)].groupby("unit")["y"].mean()
        rows.append(means.reindex(list(b.names)).to_numpy(dtype=float))
    x = np.vstack([*rows, b.y[:, : b.t0].T])
    keep = ~np.isnan(x).any(axis=0)
    if not keep[-1]:
        raise EstimationError(
            "the treated unit lacks a predictor value before its start",
            where="options.predictors",
            fix="choose predictors it has",
        )
    dropped = tuple(n for n, k in zip(b.names[: b.n0], keep[: b.n0], strict=True) if not k)
    block = BlockData(
        b.y[keep],
        tuple(n for n, k in zip(b.names, keep, strict=True) if k),
        b.periods,
        int(keep[: b.n0].sum()),
        b.t0,
        b.dropped_donors + dropped,
    )
    return block, x[:, keep]


def _gap_path(b: BlockData, fit: SDIDFit) -> np.ndarray:
    """(T,) treated mean minus the unit-weighted donor mean, every period."""
    return b.y[b.n0 :].mean(axis=0) - fit.omega @ b.y[: b.n0]


def _gap_series(panel: ValidatedPanel, b: BlockData, fit: SDIDFit) -> dict[str, float]:
    return {
        panel.period_label(int(p)): float(v)
        for p, v in zip(b.periods, _gap_path(b, fit), strict=True)
    }


def _gap_baseline(b: BlockData, fit: SDIDFit) -> float:
    """The time-weighted pre-period gap: each post-period effect is its gap minus this."""
    return float(_gap_path(b, fit)[: b.t0] @ fit.lambda_)


def _named(names: tuple[str, ...], w: np.ndarray) -> dict[str, float]:
    return {n: float(v) for n, v in zip(names, w, strict=False) if v > 1e-10}


def _rmspe_ratio(gaps: np.ndarray, t0: int) -> float:
    pre = float(np.sqrt(np.mean(gaps[:t0] ** 2)))
    post = float(np.sqrt(np.mean(gaps[t0:] ** 2)))
    return post / pre if pre > 0 else np.inf


def _donor_gaps(
    y: np.ndarray, j: int, t0: int, x: np.ndarray | None = None, v: np.ndarray | None = None
) -> np.ndarray:
    """Gaps of donor j against a synthetic control from every other unit, the treated one
    included, so that under no effect all N0 + 1 ratios are exchangeable and the rank test is
    exact (Firpo & Possebom 2018, J. Causal Inference 6(2)); using only the other donors gives
    the treated unit one more donor than its placebos and over-rejects (7.4% at 5% in
    benchmarks/synthetic_size.py)."""
    others = np.delete(y, j, axis=0)
    if x is not None and v is not None:
        xo = np.delete(x, j, axis=1)
        sd = x.std(axis=1)
        sd[sd == 0] = 1.0
        omega = fixed_v_weights(xo / sd[:, None], x[:, j] / sd, v)
    else:
        omega = synthdid(np.vstack([others, y[j]]), len(others), t0, "sc").omega
    return y[j] - omega @ others


def _leave_one_out(b: BlockData, fit: SDIDFit) -> dict[str, float]:
    """ATT re-estimated without each donor that carries weight (robustness)."""
    out = {}
    for j in np.flatnonzero(fit.omega > 1e-10):
        keep = [i for i in range(b.n0) if i != j] + [b.y.shape[0] - 1]
        # one donor left is the synthetic control (and too few changes to scale a refit by)
        omega = synthdid(b.y[keep], b.n0 - 1, b.t0, "sc").omega if b.n0 > 2 else np.ones(1)
        gaps = b.y[-1] - omega @ b.y[keep][: b.n0 - 1]
        out[b.names[j]] = float(gaps[b.t0 :].mean())
    return out


def _left_out(
    panel: ValidatedPanel, outcome: str, incomplete: list[str], donor_sets: list[tuple[str, ...]]
) -> tuple[tuple[Dropped, ...], tuple[str, ...]]:
    """The units a synthetic comparison leaves out for a suppressed or missing cell, as the
    result's `dropped` (their rows counted) and a warning naming the donors: treated units
    (`incomplete`) and donors left out of every cohort's comparison (`donor_sets`, one per
    cohort); a donor left out of some cohorts only is named, not counted."""
    cells = panel.outcome_cells(outcome)
    treated = tuple(sorted(incomplete))
    everywhere = set.intersection(*map(set, donor_sets)) if donor_sets else set()
    donors = tuple(sorted(everywhere))
    reasons = (
        ("treated unit with a suppressed or missing cell in its series", treated),
        ("comparison unit with a suppressed or missing cell in its series (not a donor)", donors),
    )
    counted = [(reason, units, int(cells["unit"].isin(units).sum())) for reason, units in reasons]
    # a treated unit with no cells at all was left out (and counted) by the panel already
    dropped = tuple(Dropped(reason, rows, units) for reason, units, rows in counted if rows)
    named = _names(panel, {u for d in donor_sets for u in d})
    warning = (
        (
            f"{len(named)} comparison units were left out of the donor pool for a suppressed "
            f"or missing cell in their series (or predictors): {', '.join(named[:10])}"
            + (f" and {len(named) - 10} more." if len(named) > 10 else "."),
        )
        if named
        else ()
    )
    return dropped, warning


def _names(panel: ValidatedPanel, units: Iterable[str]) -> list[str]:
    """The units' names (their ids where the unit table has none), sorted."""
    names = panel.units.set_index("unit")["name"]
    return sorted(str(names.get(u, u)) for u in units)


def _incomplete_warning(names: list[str]) -> tuple[str, ...]:
    if not names:
        return ()
    return (
        f"Left out for a suppressed or missing cell in their series: {', '.join(names)}; "
        "the estimate covers the other treated units only.",
    )


def _held_fixed_warning(cohorts: list[str]) -> tuple[str, ...]:
    if not cohorts:
        return ()
    return (
        "The pooled variance holds the unit and time weights fixed for "
        + "; ".join(cohorts)
        + ". It leaves out the noise the weights pick up, so the interval may be slightly "
        "too narrow; compare the placebo variance (variance: placebo).",
    )


def _short_series_warnings(blocks: dict[float, BlockData]) -> tuple[str, ...]:
    out = []
    for b in blocks.values():
        t1 = b.y.shape[1] - b.t0
        if t1 < 2:
            out.append(
                f"Only {t1} post-period: too short to support a conclusion about an "
                "effect that may take time to appear."
            )
        if b.t0 < 5:
            out.append(
                f"Only {b.t0} pre-periods: the pre-period fit says little about how "
                "well the synthetic comparator would have tracked the treated unit."
            )
    return tuple(dict.fromkeys(out))
