"""The one result type every estimator returns, and the run's provenance."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

from pathfinder_eval.errors import EstimationError

COLUMNS: tuple[str, ...] = (
    "term",
    "estimate",
    "std_error",
    "statistic",
    "p_value",
    "ci_lower",
    "ci_upper",
)
OPTIONAL_COLUMNS: tuple[str, ...] = ("df", "cohort", "period", "event_time", "n_units")


def estimates_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Build a tidy estimates table with the fixed columns, in the fixed order."""
    frame = pd.DataFrame(rows)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"estimates rows lack columns {missing}")
    extra = [c for c in frame.columns if c not in COLUMNS + OPTIONAL_COLUMNS]
    if extra:
        raise ValueError(f"estimates rows have non-standard columns {extra}")
    ordered = list(COLUMNS) + [c for c in OPTIONAL_COLUMNS if c in frame.columns]
    frame = frame[ordered].copy()
    for c in ordered[1:]:
        frame[c] = frame[c].astype("float64")
    frame["term"] = frame["term"].astype(str)
    return frame


# One vocabulary for the inference an analysis used (report/validity.py keys on it).
InferenceKey = Literal[
    "ols",  # classical OLS standard errors
    "hc1",  # heteroskedasticity-robust HC1
    "cr1",  # cluster-robust CR1 by unit, t(G−1)
    "cr2",  # CR2 with Bell-McCaffrey / Satterthwaite df
    "wild_bootstrap",  # wild cluster restricted bootstrap
    "timing_randomisation",  # start dates re-assigned across units
    "conley_taber",
    "cohort_stratified",  # each cohort's variance within it, Bell-McCaffrey df
    "pooled_panel",  # comparison-pooled variance: size-scaled noise and regional shocks
    "influence_function",  # did's analytic SEs, normal reference
    "ddd_cr2",  # unit-level DDD: CR2 by LA on its subgroup regressions, Bell-McCaffrey df
    "ddd_clustered",  # unit-level DDD: influence functions summed within LAs, t(G−1)
    "multiplier_bootstrap",
    "cluster_bootstrap",  # did_multiplegt_dyn's bootstrap: clusters redrawn, rows re-estimated
    "bjs_conservative",  # BJS Theorem 3, t(G−1)
    "bjs_leave_out",  # BJS leave-out, τ̄ by row, Bell-McCaffrey df
    "two_stage_gmm",  # did2s GMM variance, t(G−1)
    "kenward_roger",
    "satterthwaite",
    "lmm_normal",  # LMM model-based SE, normal reference
    "lmm_mancl_derouen",  # LMM Mancl-DeRouen (CR3) sandwich, t(I − 1)
    "lmm_cr2",  # LMM CR2 sandwich, Satterthwaite df
    "allocation_randomisation",  # clusters re-allocated to sequences
    "gee_kauermann_carroll",
    "gee_mancl_derouen",
    "gee_fay_graubard",
    "gee_cr2",  # GEE CR2 (clubSandwich), Satterthwaite df
    "gee_sandwich",
    "gee_model_based",
    "glmm_t",  # GLMM Wald, t(I − 2)
    "glmm_normal",  # GLMM Wald, normal reference
    "sc_placebo_conformal",
    "sdid_placebo",
    "sdid_jackknife",
    "sdid_bootstrap",
]


# The scale of an analysis's estimates: differences in the outcome's units (every linear
# estimator), or log ratios from a log- or logit-link fit (inference/detectable.py reads
# the minimum detectable effect on it).
EffectScale = Literal["difference", "log_rate_ratio", "log_odds_ratio"]
SCALE_OF_FAMILY: dict[str, EffectScale] = {
    "gaussian": "difference",
    "linear": "difference",
    "binomial": "log_odds_ratio",
    "poisson": "log_rate_ratio",
}


@dataclass(frozen=True)
class RegionalDependence:
    """What the panel shows about shocks shared by the units of a region, and where the
    treated units are: the comparison units' within-region residual correlation `rho` and
    that of period-to-period changes `change_rho`, each with a jackknife-over-regions SE
    (NaN with fewer than three informative regions); `n_regions` regions with at least two
    comparison units; `n_comparison` comparison units with complete series;
    `treated_regions` (region, treated units) largest first ("" when unknown)."""

    rho: float
    rho_se: float
    change_rho: float
    change_rho_se: float
    n_regions: int
    n_comparison: int
    treated_regions: tuple[tuple[str, int], ...]

    @property
    def regions_known(self) -> bool:
        return all(r for r, _ in self.treated_regions)

    @property
    def n_treated(self) -> int:
        return sum(n for _, n in self.treated_regions)

    @property
    def concentrated(self) -> bool:
        """Half or more of the treated units (two at least) share one known region."""
        if not self.regions_known or not self.treated_regions:
            return False
        top = self.treated_regions[0][1]
        return top >= 2 and 2 * top >= self.n_treated

    @property
    def dependent(self) -> bool:
        """The comparison units' within-region correlation is clearly above zero (beyond 1.96
        jackknife standard errors; never with an unknown SE)."""
        return self.regions_known and self.rho > 1.96 * self.rho_se

    def to_dict(self) -> dict[str, Any]:
        return {
            "within_region_correlation": _clean(self.rho),
            "within_region_correlation_se": _clean(self.rho_se),
            "change_correlation": _clean(self.change_rho),
            "change_correlation_se": _clean(self.change_rho_se),
            "regions": self.n_regions,
            "comparison_units": self.n_comparison,
            "treated_regions": {r or "unknown": k for r, k in self.treated_regions},
        }


@dataclass(frozen=True, kw_only=True)
class InferenceUsed:
    """The inference an analysis actually used: `key` (one vocabulary, InferenceKey), the
    estimator's full `label`, whether `inference: default` chose it, `reason`: why the
    default switched method for this design ("" when it did not), and the panel's
    `dependence` the choice read (None where it does not apply: trials, SC)."""

    key: InferenceKey
    label: str
    chosen_by_default: bool = False
    reason: str = ""
    dependence: RegionalDependence | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "chosen_by_default": self.chosen_by_default,
            "reason": self.reason,
            "regional_dependence": self.dependence.to_dict() if self.dependence else None,
        }


class _Omitted:
    """The value of a fact an analysis did not compute: left out of the JSON."""

    def __repr__(self) -> str:
        return "OMITTED"

    def __reduce__(self) -> str:
        return "OMITTED"  # unpickled (from a worker process) as this module's one instance


OMITTED: Any = _Omitted()


@dataclass(frozen=True, kw_only=True)
class Facts:
    """Estimator-specific facts of a result (weights, fits, tests), one typed subclass per
    estimator (estimators/*/facts.py). `to_dict` is the JSON "diagnostics": the fields in
    order, nested facts as dicts, OMITTED fields left out."""

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not OMITTED:
                out[f.name] = value.to_dict() if isinstance(value, Facts) else value
        return out


@dataclass(frozen=True)
class Dropped:
    """Rows an analysis left out beyond the panel's exclusions (a balanced panel's units
    missing a period, Poisson units with no events): why, how many rows (None once
    disclosure control suppressed the count), which units."""

    reason: str
    rows: int | None
    units: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"reason": self.reason, "count": self.rows, "units": list(self.units)}


@dataclass(frozen=True, kw_only=True)
class EffectEstimates:
    """One analysis of one outcome: the tidy estimates plus what a reader needs to judge them.

    `table` has the fixed columns of `COLUMNS` (+ any of `OPTIONAL_COLUMNS`); `vcov` is the
    covariance of `table.estimate` (terms × terms) where the estimator provides one;
    `inference` records the method used; `facts` the estimator's typed facts (weights, fit
    statistics, tests), also readable as the JSON-ready `diagnostics`; `scale` says whether the
    estimates are differences in the outcome's units or log rate/odds ratios; `dropped` the
    rows the analysis itself left out (the report counts them with the panel's exclusions).
    """

    analysis_id: str
    outcome: str
    estimator: str
    inference: InferenceUsed
    table: pd.DataFrame
    level: float = 0.95
    vcov: np.ndarray | None = None
    n_units: int = 0
    n_treated: int = 0
    n_obs: int = 0
    facts: Facts | None = None
    warnings: tuple[str, ...] = ()
    scale: EffectScale = "difference"
    dropped: tuple[Dropped, ...] = ()

    @property
    def diagnostics(self) -> MappingProxyType:
        """The facts as a read-only JSON-ready mapping (empty when there are none)."""
        return MappingProxyType(self.facts.to_dict() if self.facts is not None else {})

    def overall(self) -> pd.Series | None:
        """The overall effect's row: every estimator puts it first, with no event time. None
        when the first row is for an event time: an event study (its first row is a lead)
        and dCDH with trends_lin have no overall effect, and a later row without an event
        time is a subgroup's (dCDH's by_path), so headlines, robustness tables, detectable
        effects and power never read a lead or a subgroup."""
        table = self.table
        if table.empty:
            return None
        first = table.iloc[0]
        if "event_time" in table.columns and pd.notna(first["event_time"]):
            return None
        return first

    def to_frame(self) -> pd.DataFrame:
        """A copy of the tidy table (fixed columns)."""
        return self.table.copy()

    def summary(self) -> str:
        """A plain-text table: estimates, SE, df, interval, p-value, the inference used and
        why, the units and the warnings (display.py)."""
        from pathfinder_eval.display import summary

        return summary(self)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        """One line: what was estimated and how (print() or summary() gives the table)."""
        first = self.overall()
        head = (
            f", {first['term']} = {first['estimate']:.4g} (SE {first['std_error']:.3g})"
            if first is not None
            else ""
        )
        return (
            f"<EffectEstimates {self.estimator} of {self.outcome!r}: {len(self.table)} rows"
            f"{head}; {self.n_units} units, {self.n_treated} treated; "
            f"inference {self.inference.key}>"
        )

    def _repr_html_(self) -> str:
        from pathfinder_eval.display import to_html

        return to_html(self)

    def plot(self) -> Figure:
        """A matplotlib figure of the estimates and their intervals (display.py)."""
        from pathfinder_eval.display import plot

        return plot(self)

    def require_finite(self) -> EffectEstimates:
        """Self, or EstimationError when an estimate is not a finite number or a standard
        error is infinite (an overflow, a degenerate fit), or when every standard error is 0
        (nothing varies): such numbers are never reported as estimates. A NaN standard error
        means the row has none (permutation or conformal inference, a descriptive row) and is
        allowed."""
        estimate = self.table["estimate"].to_numpy()
        se = self.table["std_error"].to_numpy()
        bad = ~np.isfinite(estimate) | np.isinf(se)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            what = "estimate" if not np.isfinite(estimate[i]) else "standard error"
            value = estimate[i] if what == "estimate" else se[i]
            raise EstimationError(
                f"the {what} of {self.table['term'].iloc[i]!r} is not a finite number "
                f"({value}); {int(bad.sum())} of {len(bad)} rows are affected",
                fix="check the outcome's values for extreme or impossible numbers, or simplify "
                "the model",
            )
        given = se[np.isfinite(se)]
        if given.size and (given == 0).all():  # p NaN, interval [β̂, β̂]: not a result
            raise EstimationError(
                "every standard error is exactly 0: the outcome does not vary beyond what the "
                "model's unit and period effects fit (a constant outcome, or a column constant "
                "within each unit)",
                fix="check that the outcome names the measure to analyse and that it varies",
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        """The JSON form documented in README ('Results JSON')."""
        return {
            "id": self.analysis_id,
            "outcome": self.outcome,
            "estimator": self.estimator,
            "scale": self.scale,
            "inference": self.inference.label,
            "inference_used": self.inference.to_dict(),
            "level": self.level,
            "n_units": self.n_units,
            "n_treated": self.n_treated,
            "n_obs": self.n_obs,
            "estimates": [
                {k: _clean(v) for k, v in row.items()} for row in self.table.to_dict("records")
            ],
            "diagnostics": _clean(dict(self.diagnostics)),
            "warnings": list(self.warnings),
            "dropped": [d.to_dict() for d in self.dropped],
        }


def _clean(value: Any) -> Any:
    """JSON-safe copy: NaN/inf → None, numpy scalars → Python, tuples → lists."""
    if isinstance(value, dict | MappingProxyType):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_clean(v) for v in value.tolist()]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        f = float(value)
        return None if math.isnan(f) or math.isinf(f) else f
    return value


@dataclass(frozen=True)
class Provenance:
    """What produced a result: versions, input hashes, seed and command (no clock, no host);
    `templates`: each file of a template pack the report used, with its hash (none for the
    packaged templates, which the package version fixes)."""

    package_version: str
    python: str
    dependencies: tuple[tuple[str, str], ...]
    data_files: tuple[tuple[str, str], ...]
    design_sha256: str
    seed: int
    command: str
    templates: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = {
            "package_version": self.package_version,
            "python": self.python,
            "dependencies": dict(self.dependencies),
            "data_files": [{"path": p, "sha256": h} for p, h in self.data_files],
            "design_sha256": self.design_sha256,
            "seed": self.seed,
            "command": self.command,
        }
        if self.templates:
            out["templates"] = [{"path": p, "sha256": h} for p, h in self.templates]
        return out
