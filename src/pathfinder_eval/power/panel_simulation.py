"""Power of an LA design by simulation on a real outcome panel (`power --simulate N --data`).

The null panels keep what decides a DiD's power on real data: each LA's level, the national
path, the size of the year-to-year noise and its serial correlation, and which cells are
missing. The real panel y_it (as the design's panel checks leave it) is split into a fitted
two-way structure α_i + λ_t and residual trajectories e_i by OLS with unit and period effects
plus a dummy for the real pilots' treated cells, so that an effect the real pilots may have had
is neither noise nor part of the null. A replicate gives each LA i the whole residual trajectory
of a donor LA j drawn with replacement (a block bootstrap across LAs):

    y*_it = (α_i + λ_t + e_jt · s_i / s_j) · (1 + δ · D_it)

where s is the residual scale predicted from the LA's mean denominator (log SD on log size,
fitted across LAs: per-10,000 rates are noisier in small LAs, so a small LA's noise is not
handed to a large one), and δ is the hypothetical relative change in the rate in treated
cells D_it (the design's LAs from their first treated period, or chosen LAs and starts).

Why whole trajectories rather than a fitted AR(1): with 5–9 years per LA an AR(1) fitted to
within-LA residuals is biased towards −1/(T−1) (Nickell bias) and assumes Gaussian,
stationary noise; copying whole trajectories keeps each LA's serial correlation, trends in its
noise and heavy tails as observed, with no model to mis-specify. No degrees-of-freedom
inflation is applied: the estimators use only within-LA deviations, which a whole trajectory
carries intact. Treating LAs as exchangeable after scaling is the assumption.

Missing cells stay missing: the replicate is the real long frame with only the values of the
panel's usable cells replaced, so suppressed, unavailable and reorganised cells are excluded
and counted by the same panel checks as in the real run. A donor must be observed wherever its
recipient is (an LA that no other LA covers keeps its own trajectory).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from pathfinder_eval.data.catalogue import SCALES
from pathfinder_eval.data.la_lookup import resolve_la
from pathfinder_eval.data.load import load_outcomes
from pathfinder_eval.data.neighbours import resolve_neighbour_pool
from pathfinder_eval.data.source import Exclusion, OutcomeData
from pathfinder_eval.errors import DataError, DesignError
from pathfinder_eval.estimators.did.two_way import absorb_two_way
from pathfinder_eval.panel import ValidatedPanel, build_panel
from pathfinder_eval.pipeline import describe_outcome
from pathfinder_eval.power.simulate import SimulatedPower, checked_outcome, simulate_power
from pathfinder_eval.spec import DesignSpec, UnitLevel, Wave
from pathfinder_eval.timeaxis import onset


@dataclass(frozen=True)
class PanelResampler:
    """A real panel split into two-way structure and LA residual trajectories (picklable).

    Matrices are units × periods in `units`/`periods` order, NaN where the cell is not in the
    panel. rows: (n_cells,) positions in `data.frame` of the panel's usable cells, with their
    unit and period indices `u`, `t`. donors[i]: LAs whose trajectories LA i may receive.
    `spec` is the design with the rollout the effect is applied to: simulate with it.
    """

    spec: DesignSpec
    outcome: str
    data: OutcomeData
    units: tuple[str, ...]
    periods: tuple[int, ...]
    fitted: np.ndarray
    standardised: np.ndarray
    scale: np.ndarray
    treated: np.ndarray
    rows: np.ndarray
    u: np.ndarray
    t: np.ndarray
    donors: tuple[np.ndarray, ...]
    value_factor: float
    exclusions: tuple[Exclusion, ...]
    lag1: float
    bounds: tuple[float, float] = (-np.inf, np.inf)  # what the outcome's values can be

    def replicate(self, effect: float, seed: int) -> OutcomeData:
        """One null panel from `seed`, with `effect` (relative change) in the treated cells."""
        rng = np.random.default_rng(seed)
        pick = np.array([d[rng.integers(len(d))] for d in self.donors])
        noise = self.standardised[pick] * self.scale[:, None]
        y = (self.fitted + noise) * (1.0 + effect * self.treated)
        y = np.clip(y, *self.bounds)  # a rate below 0 (or a share above 100%) cannot occur
        frame = self.data.frame.copy()
        value = y[self.u, self.t]
        frame.iloc[self.rows, frame.columns.get_loc("value")] = value
        counted = frame["numerator"].notna().to_numpy()[self.rows]  # a rate given alone has none
        den = frame["denominator"].to_numpy()[self.rows]
        counts = np.where(counted, value * den / self.value_factor, np.nan)
        frame.iloc[self.rows, frame.columns.get_loc("numerator")] = counts
        note = (
            f"The data are SIMULATED by resampling the real {self.outcome} panel's LA residual "
            f"trajectories (seed {seed}); injected effect on the rate in treated LAs: "
            f"{effect:+.0%}."
        )
        return replace(self.data, frame=frame, notes=(note,))

    def summary(self) -> str:
        """One line for the CLI: what the null panels are built from and what is left out."""
        holes = len(self.units) * len(self.periods) - len(self.rows)
        excluded = sum(e.count for e in self.exclusions)
        return (
            f"resampled real panel: {len(self.units)} LAs × {len(self.periods)} periods "
            f"({self.periods[0]}–{self.periods[-1]}), {len(self.rows)} cells, {holes} missing "
            f"cells kept missing, {excluded} rows excluded by the panel checks, residual lag-1 "
            f"autocorrelation {self.lag1:.3f}"
            + (
                f", values kept within {self.bounds[0]:g}–{self.bounds[1]:g}"
                if np.isfinite(self.bounds[1])
                else f", values kept at or above {self.bounds[0]:g}"
                if np.isfinite(self.bounds[0])
                else ""
            )
        )


def panel_resampler(
    spec: DesignSpec,
    data: Path,
    outcome: str | None = None,
    treated: Mapping[str, dt.date | int] | None = None,
) -> PanelResampler:
    """Read `data` for the design and fit what a null replicate of `outcome` needs.

    treated: hypothetical LA (name or code) → start; default: the design's rollout.
    """
    if spec.unit_level is UnitLevel.REGION:
        raise DesignError(
            "power on a real panel resamples LA rows; a region design's cells are LA sums",
            file=spec.path,
            where="unit_level",
            fix="simulate without --data (the synthetic panel), or use an LA-level design",
        )
    outcome = checked_outcome(spec, outcome)
    spec = resolve_neighbour_pool(spec, data)
    one = spec.model_copy(update={"outcomes": tuple(o for o in spec.outcomes if o.id == outcome)})
    sim = one if treated is None else _with_rollout(one, treated)
    real = load_outcomes(one, data, spec.seed)
    if real.records is not None:
        raise DataError(
            "power on a real panel resamples cell values, not individual records",
            file=str(data),
            fix="pass cell-level data (one row per unit and period)",
        )
    frame = real.frame[real.frame["outcome"] == outcome].reset_index(drop=True)
    real = replace(real, frame=frame)
    panel = build_panel(sim, real, describe_outcome(sim))
    if not panel.outcomes[0].available:
        raise DataError(
            f"outcome {outcome!r} has no usable rows in the data",
            file=str(data),
            where=f"outcome {outcome}",
            fix="choose an outcome the data cover with --outcome",
        )
    return _fit(spec, sim, panel, outcome)


def simulate_panel_power(
    spec: DesignSpec,
    data: Path,
    n_sims: int,
    seed: int,
    effect: float,
    analysis: str | None = None,
    outcome: str | None = None,
    alpha: float = 0.05,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    treated: Mapping[str, dt.date | int] | None = None,
) -> SimulatedPower:
    """Power of one analysis × outcome on null panels resampled from the real `data`."""
    resampler = panel_resampler(spec, data, outcome, treated)
    return simulate_power(
        resampler.spec,
        n_sims,
        seed,
        effect,
        analysis,
        resampler.outcome,
        alpha,
        workers,
        scheduler,
        progress,
        panel=resampler,
    )


def lag1_autocorrelation(panel: ValidatedPanel, outcome: str) -> float:
    """Lag-1 autocorrelation of the two-way residuals of `outcome` between consecutive periods
    of each unit (both cells observed; see `_lag1`)."""
    cells = panel.outcome_cells(outcome)
    unit, period = pd.factorize(cells["unit"])[0], pd.factorize(cells["period"], sort=True)[0]
    resid = absorb_two_way(cells[["y"]].to_numpy(float), unit, period)[:, 0]
    return _lag1(_matrix(resid, unit, period, unit.max() + 1, period.max() + 1))


def _fit(spec: DesignSpec, sim: DesignSpec, panel: ValidatedPanel, outcome: str) -> PanelResampler:
    cells = panel.outcome_cells(outcome)
    unit_codes, units = pd.factorize(cells["unit"])
    period_codes, periods = pd.factorize(cells["period"], sort=True)
    n, p = len(units), len(periods)
    real_start = {
        u: onset(spec.time.axis, s, spec.time.partial_period_rule).first_treated
        for u, s in spec.start_of().items()
    }
    real_cohort = cells["unit"].map(real_start).astype(float).to_numpy()
    real_d = (cells["period"].to_numpy() >= real_cohort).astype(float)
    y = cells["y"].to_numpy(float)
    absorbed = absorb_two_way(np.column_stack([y, real_d]), unit_codes, period_codes)
    d_tilde = absorbed[:, 1]
    ss = float(d_tilde @ d_tilde)
    beta = float(d_tilde @ absorbed[:, 0]) / ss if ss > 1e-12 else 0.0
    resid = absorbed[:, 0] - beta * d_tilde
    fitted = _matrix(y - resid - beta * real_d, unit_codes, period_codes, n, p)
    e = _matrix(resid, unit_codes, period_codes, n, p)
    observed = ~np.isnan(e)
    scale = _residual_scale(e, observed, cells, unit_codes, n)
    standardised = e / scale[:, None]
    treated = np.nan_to_num(
        _matrix(cells["treated"].to_numpy(float), unit_codes, period_codes, n, p)
    )
    counts = observed.sum(axis=1)
    donors = []
    for i in range(n):
        ok = (counts >= 2) & np.all(observed[:, observed[i]], axis=1)
        donors.append(np.flatnonzero(ok) if ok.any() else np.array([i]))
    frame = panel.data.frame
    index = pd.MultiIndex.from_frame(frame[["unit", "period"]].astype({"period": "int64"}))
    rows = index.get_indexer(pd.MultiIndex.from_frame(cells[["unit", "period"]]))
    info = panel.outcomes[0]
    return PanelResampler(
        spec=sim,
        outcome=outcome,
        data=panel.data,
        units=tuple(units),
        periods=tuple(int(x) for x in periods),
        fitted=fitted,
        standardised=standardised,
        scale=scale,
        treated=treated,
        rows=rows,
        u=unit_codes,
        t=period_codes,
        donors=tuple(donors),
        value_factor=SCALES.get(info.scale, 1.0),
        exclusions=tuple(x for x in panel.exclusions if x.outcome == outcome),
        lag1=_lag1(e),
        bounds=_bounds(y, info.scale),
    )


def _bounds(y: np.ndarray, scale: str) -> tuple[float, float]:
    """The range a replicate's values are kept in: from 0 when the real values are never
    negative (rates, counts: resampled residuals gave −365 per 10,000 children, and the
    Poisson analyses refused the replicate), to 100 for a percentage that never exceeds it."""
    low = 0.0 if (y >= 0).all() else -np.inf
    high = 100.0 if scale == "percent" and (y <= 100).all() else np.inf
    return low, high


def _residual_scale(
    e: np.ndarray, observed: np.ndarray, cells: pd.DataFrame, unit: np.ndarray, n: int
) -> np.ndarray:
    """Each LA's residual SD as predicted from its mean denominator (log–log, across LAs);
    ones when the data have no denominators. Scales are relative: only their ratios matter."""
    size = np.bincount(unit, cells["denominator"].fillna(0.0).to_numpy(float), n) / np.bincount(
        unit, minlength=n
    )
    dof = observed.sum(axis=1) - 1
    sd = np.sqrt(np.nansum(e**2, axis=1) / np.maximum(dof, 1))
    ok = (dof >= 2) & (sd > 0) & (size > 0)
    if ok.sum() < 3 or not np.all(size > 0):
        return np.ones(n)
    slope = np.polyfit(np.log(size[ok]), np.log(sd[ok]), 1)[0]
    return np.exp(slope * (np.log(size) - np.log(size).mean()))


def _matrix(values: np.ndarray, unit: np.ndarray, period: np.ndarray, n: int, p: int) -> np.ndarray:
    out = np.full((n, p), np.nan)
    out[unit, period] = values
    return out


def _lag1(e: np.ndarray) -> float:
    """Pooled lag-1 correlation of residuals standardised by each unit's own RMS, so that no
    single noisy LA decides it (units × periods, NaN where missing)."""
    rms = np.sqrt(np.nanmean(e**2, axis=1, keepdims=True))
    e = e / np.where(rms > 0, rms, np.nan)
    x, z = e[:, :-1].ravel(), e[:, 1:].ravel()
    both = ~np.isnan(x) & ~np.isnan(z)
    return float(np.corrcoef(x[both], z[both])[0, 1])


def _with_rollout(spec: DesignSpec, treated: Mapping[str, dt.date | int]) -> DesignSpec:
    """The design with a hypothetical rollout: one wave per start date."""
    by_start: dict[dt.date | int, list[str]] = {}
    for ref, start in treated.items():
        la = resolve_la(ref, current_only=False)
        if la is None:
            raise DesignError(
                f"unknown local authority {ref!r}",
                where="treated",
                fix="use the LA's name, three-digit DfE code or GSS code (pathfinder-eval las)",
            )
        by_start.setdefault(start, []).append(la.la_code)
    waves = tuple(
        Wave(wave=f"hypothetical start {s}", start=s, units=tuple(codes))
        for s, codes in sorted(by_start.items())
    )
    return spec.model_copy(update={"rollout": waves})
