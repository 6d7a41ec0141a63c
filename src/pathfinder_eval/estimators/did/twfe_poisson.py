"""Poisson QMLE two-way fixed effects for rates: counts with a log(population) offset.

E[count_it] = pop_it · exp(α_i + λ_t + β·D_it). β is the log rate ratio; exp(β) the rate ratio.
The Poisson quasi-MLE is consistent for β when the conditional mean is right, whatever the
count distribution (Gourieroux, Monfort & Trognon 1984, Econometrica 52:681–700; Wooldridge
1999, J. Econometrics 90:77–97), and the unit effects do not cause an incidental-parameters
bias in the Poisson case. Inference is cluster-robust by unit (CR1: G/(G−1)·(N−1)/(N−K), as
R's sandwich::vcovCL(type = "HC1", cadjust = TRUE)) with a t(G−1) reference.

Fitted with statsmodels GLM (Poisson, log link) on unit and period dummies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from statsmodels.genmod.families import Poisson
from statsmodels.genmod.generalized_linear_model import GLM

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.estimators.did.facts import PoissonTwfeFacts
from pathfinder_eval.inference.cluster import t_summary
from pathfinder_eval.panel import ValidatedPanel
from pathfinder_eval.results import Dropped, EffectEstimates, InferenceUsed, estimates_table
from pathfinder_eval.settings import PoissonTwfeOptions

# why a unit's rows are left out (the ETWFE Poisson fit says the same)
ZERO_COUNTS = "unit with zero counts in every period (no information under Poisson fixed effects)"

INFERENCE_LABEL = "Poisson QMLE, cluster-robust by unit (CR1), t(G−1) reference"


@dataclass(frozen=True)
class PoissonFit:
    """estimate/std_error: log rate ratio β̂ and its CR1 SE; n_params: K (β + all fixed
    effects, after dropping the reference unit and period); n_clusters: G."""

    estimate: float
    std_error: float
    n_obs: int
    n_clusters: int
    n_params: int
    converged: bool


def poisson_twfe(
    counts: np.ndarray | pd.Series,
    population: np.ndarray | pd.Series,
    treated: np.ndarray | pd.Series,
    unit: np.ndarray | pd.Series,
    period: np.ndarray | pd.Series,
    cluster: np.ndarray | pd.Series,
) -> PoissonFit:
    """Poisson QMLE of counts on treated with unit and period dummies, offset log(population).

    All arguments (n,): counts ≥ 0, population > 0, treated 0/1 (or a dose), unit and period
    labels, cluster labels for the CR1 covariance. Units whose counts are all zero carry no
    information on β and make their dummy diverge: drop them first.
    """
    y = np.asarray(counts, dtype=float).reshape(-1)
    pop = np.asarray(population, dtype=float).reshape(-1)
    d = np.asarray(treated, dtype=float).reshape(-1)
    n = y.shape[0]
    if not (pop.shape[0] == d.shape[0] == n) or not np.all(np.isfinite(np.r_[y, pop, d])):
        raise EstimationError(
            "counts, population and treated must be complete and of equal length",
            where="numerator/denominator",
            fix="drop cells with a missing count or population",
        )
    if np.any(y < 0) or np.any(pop <= 0):
        raise EstimationError(
            "counts must be ≥ 0 and populations > 0",
            where="numerator/denominator",
            fix="drop cells with a zero or negative population",
        )
    u = pd.Series(np.asarray(unit).reshape(-1), name="u").astype(str)
    t = pd.Series(np.asarray(period).reshape(-1), name="t").astype(str)
    fe = pd.get_dummies(pd.concat([u, t], axis=1), columns=["u", "t"], drop_first=True)
    x = np.column_stack([d, np.ones(n), fe.to_numpy(dtype=float)])
    groups = pd.factorize(np.asarray(cluster).reshape(-1))[0]
    model = GLM(y, x, family=Poisson(), offset=np.log(pop))
    res = model.fit(
        method="newton",
        maxiter=200,
        tol=1e-12,
        cov_type="cluster",
        cov_kwds={"groups": groups, "use_correction": True, "df_correction": True},
    )
    converged = bool(res.converged) if hasattr(res, "converged") else True
    return PoissonFit(
        estimate=float(res.params[0]),
        std_error=float(np.sqrt(res.cov_params()[0, 0])),
        n_obs=n,
        n_clusters=int(groups.max()) + 1,
        n_params=x.shape[1],
        converged=converged,
    )


class PoissonTWFE(PoissonTwfeOptions):
    """Static Poisson TWFE for rate outcomes: count_it ~ Poisson QMLE with unit and period
    effects and offset log(denominator_it); reports the log rate ratio (and the rate ratio in
    the diagnostics). Uses the panel cells' `numerator` (counts) and `denominator`
    (population); outcomes without them cannot be fitted.

    Inference: "default" and "cluster_robust" are both CR1 by unit with a t(G−1) reference."""

    def fit(
        self, panel: ValidatedPanel, outcome: str, analysis_id: str, level: float = 0.95
    ) -> EffectEstimates:
        cells = panel.outcome_cells(outcome)
        absent = [
            f"{name} ({c})"
            for c, name in (("numerator", "counts"), ("denominator", "populations"))
            if c not in cells.columns or cells[c].isna().all()
        ]
        if absent:
            raise EstimationError(
                f"outcome {outcome!r} has no {' and no '.join(absent)}",
                where=f"analyses[{analysis_id}].estimator",
                fix="use twfe_poisson only for rate indicators whose data give numerator and "
                "denominator, or choose twfe",
            )
        usable = cells[cells["numerator"].notna() & (cells["denominator"] > 0)]
        if len(usable) < len(cells):
            raise EstimationError(
                f"outcome {outcome!r} has {len(cells) - len(usable)} cells without a count or "
                "a positive population",
                where=f"analyses[{analysis_id}].estimator",
                fix="exclude those cells upstream or choose twfe",
            )
        total = usable.groupby("unit")["numerator"].transform("sum")
        dropped = sorted(set(usable.loc[total == 0, "unit"]))
        left = (Dropped(ZERO_COUNTS, int((total == 0).sum()), tuple(dropped)),) if dropped else ()
        usable = usable[total > 0]
        fit = poisson_twfe(
            usable["numerator"],
            usable["denominator"],
            usable["treated"],
            usable["unit"],
            usable["period"],
            usable["unit"],
        )
        summ = t_summary(
            np.array([fit.estimate]), np.array([[fit.std_error**2]]), fit.n_clusters - 1, level
        )
        row = summ.row(0, "log rate ratio (Poisson TWFE)", fit.estimate, n_units=fit.n_clusters)
        n_treated = int(usable.loc[usable["role"] == "treated", "unit"].nunique())
        warns = []
        if dropped:
            warns.append(
                f"{len(dropped)} units with zero counts in every period were dropped: they "
                "carry no information on the rate ratio under Poisson fixed effects."
            )
        if not fit.converged:
            warns.append("The Poisson fit did not report convergence; read the estimate warily.")
        return EffectEstimates(
            analysis_id=analysis_id,
            outcome=outcome,
            estimator=self.name,
            inference=InferenceUsed(
                key="cr1",
                label=INFERENCE_LABEL,
                chosen_by_default=self.inference.method == "default",
            ),
            table=estimates_table([row]),
            level=level,
            vcov=np.array([[fit.std_error**2]]),
            scale="log_rate_ratio",
            n_units=fit.n_clusters,
            n_treated=n_treated,
            n_obs=fit.n_obs,
            facts=PoissonTwfeFacts(
                rate_ratio=float(np.exp(fit.estimate)),
                rate_ratio_ci=[
                    float(np.exp(row["ci_lower"])),
                    float(np.exp(row["ci_upper"])),
                ],
                dropped_all_zero_units=dropped,
                n_params=fit.n_params,
            ),
            warnings=tuple(warns),
            dropped=left,
        )
