"""A design file's trial layout as the clusters × periods matrix the power functions take."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from pathfinder_eval.errors import DesignError
from pathfinder_eval.power.analytic import VarianceModel, gls_precision, mdes, power
from pathfinder_eval.spec import DesignSpec, TrialSimulation
from pathfinder_eval.timeaxis import TimeAxis


@dataclass(frozen=True)
class PowerSummary:
    """Analytic power of a design at its stated effect, and its minimum detectable effects."""

    clusters: int
    periods: int
    sequences: int
    cell_size: int
    icc: float
    effect: float
    variance: float
    power: float
    mdes_80: float
    mdes_90: float
    alpha: float
    model: str
    df: float | None = None  # None: z reference; else t(df)

    @property
    def reference(self) -> str:
        return "z" if self.df is None else f"t({self.df:g})"


def trial_matrix(spec: DesignSpec) -> np.ndarray:
    """(clusters, periods) 0/1 matrix from a trial design's rollout (period-number starts)."""
    trial = spec.data.trial
    if spec.time.axis is not TimeAxis.PERIOD or trial is None:
        raise DesignError(
            "analytic power needs a trial design: time.axis 'period' and data.trial settings",
            file=spec.path,
            where="data.trial",
            fix="see designs/examples/stepped_wedge_trial.yaml; for LA panels use "
            "--simulate N (with --data DIR for null panels resampled from the real data)",
        )
    starts = sorted(int(s) for s in spec.start_of().values())
    periods = np.arange(1, trial.periods + 1)
    return (periods[None, :] >= np.array(starts)[:, None]).astype(float)


def trial_model(trial: TrialSimulation) -> VarianceModel:
    """The Hussey & Hughes model with the trial's ICC (total variance 1: effects in SD units),
    plus its clusters' own intervention effects (effect_sd, effect_corr) when given."""
    base = VarianceModel.from_icc(trial.icc)
    return replace(base, treatment_var=trial.effect_sd**2, treatment_corr=trial.effect_corr)


def design_power(
    spec: DesignSpec, alpha: float = 0.05, reference: Literal["z", "t"] = "z"
) -> PowerSummary:
    """Hussey & Hughes model with the design's ICC (total variance 1: effects in SD units).

    reference "t" uses a t distribution with I − 2 degrees of freedom (clusters minus two), a
    common small-sample rule for stepped-wedge trials with few clusters."""
    design = trial_matrix(spec)
    trial = spec.data.trial
    model = trial_model(trial)
    v = gls_precision(design, model, trial.cell_size).variance
    df = float(design.shape[0] - 2) if reference == "t" else None
    return PowerSummary(
        clusters=design.shape[0],
        periods=design.shape[1],
        sequences=len({w.start for w in spec.rollout}),
        cell_size=trial.cell_size,
        icc=trial.icc,
        effect=trial.effect,
        variance=v,
        power=power(trial.effect, v, alpha, df),
        mdes_80=mdes(v, 0.8, alpha, df),
        mdes_90=mdes(v, 0.9, alpha, df),
        alpha=alpha,
        model="Hussey & Hughes (random cluster intercept), categorical periods, GLS"
        + (
            f"; clusters' own intervention effects SD {trial.effect_sd:g}, correlation "
            f"{trial.effect_corr:g} with the intercept"
            if trial.effect_sd > 0
            else ""
        ),
        df=df,
    )
