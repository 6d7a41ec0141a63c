"""Power of any analysis in a design by simulation: generate data with a known effect, run the
real estimator and inference, count rejections.

Replicate r draws from its own seed, spawned from the run's seed (numpy SeedSequence), so the
results are identical however the replicates are split: in this process, across local worker
processes, or on a Dask distributed cluster (`scheduler`).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from tqdm import tqdm

from pathfinder_eval.data.load import synthetic_outcomes, trial_outcomes
from pathfinder_eval.data.source import OutcomeData
from pathfinder_eval.errors import DesignError
from pathfinder_eval.estimators import one_blas_thread
from pathfinder_eval.panel import build_panel
from pathfinder_eval.pipeline import build_estimator, describe_outcome
from pathfinder_eval.registry import entry
from pathfinder_eval.spec import DesignSpec
from pathfinder_eval.workers import available_workers


class DataGenerator(Protocol):
    """Makes one replicate data set with `effect` injected (picklable, for worker processes):
    the design's own generator (`DesignGenerator`) or null panels resampled from real data
    (power/panel_simulation.PanelResampler)."""

    def replicate(self, effect: float, seed: int) -> OutcomeData: ...


@dataclass(frozen=True)
class DesignGenerator:
    """The design's generator (simulated trial or synthetic LA panel) for one outcome."""

    spec: DesignSpec
    outcome: str

    def replicate(self, effect: float, seed: int) -> OutcomeData:
        return simulated_data(self.spec, self.outcome, effect, seed)


@dataclass(frozen=True)
class Task:
    """Everything a worker needs for one replicate (picklable)."""

    spec: DesignSpec
    analysis: int
    outcome: str
    effect: float
    seed: int
    source: DataGenerator


@dataclass(frozen=True)
class SimulatedPower:
    """estimates, p_values: (n_sims,) per replicate, in replicate order; failed: replicates
    whose fit did not converge (NaN estimate and p-value, counted as not rejecting)."""

    analysis: str
    outcome: str
    effect: float
    alpha: float
    estimates: np.ndarray
    p_values: np.ndarray
    failed: int = 0

    @property
    def power(self) -> float:
        return float(np.mean(self.p_values < self.alpha))

    @property
    def monte_carlo_se(self) -> float:
        return float(np.sqrt(self.power * (1 - self.power) / len(self.p_values)))


def simulated_data(spec: DesignSpec, outcome: str, effect: float, seed: int) -> OutcomeData:
    """One data set from the design's generator with `effect` injected on `outcome` (trial:
    outcome SD units; LA panels: relative change in the rate). `spec` lists that outcome only."""
    if spec.data.trial is not None:
        return trial_outcomes(spec, seed, effect)
    return synthetic_outcomes(spec, seed, {outcome: effect})


def run_task(task: Task) -> tuple[float, float]:
    """(estimate, p-value) of the analysis's overall effect in one simulated data set."""
    spec = only_outcome(task.spec, task.outcome)
    panel = build_panel(spec, task.source.replicate(task.effect, task.seed), describe_outcome(spec))
    estimator = build_estimator(spec, task.analysis, task.seed)
    estimator = estimator.for_placebo()  # robustness refits: not needed
    analysis = spec.analyses[task.analysis]
    with one_blas_thread():  # a replicate's p-value is the same on any machine
        row = estimator.fit(panel, task.outcome, analysis.id, analysis.level).overall()
    if row is None:  # no overall effect (an event study is refused before: NO_OVERALL)
        return math.nan, math.nan
    return float(row["estimate"]), float(row["p_value"])


def checked_outcome(spec: DesignSpec, outcome: str | None) -> str:
    """The outcome to simulate (default: the design's first), or a DesignError naming the
    ones there are (an unknown one ended in an internal error without --data)."""
    outcome = outcome or spec.outcomes[0].id
    if outcome not in {o.id for o in spec.outcomes}:
        raise DesignError(
            f"no outcome {outcome!r} in the design",
            file=spec.path,
            where="--outcome",
            fix=f"name one of: {', '.join(o.id for o in spec.outcomes)}",
        )
    return outcome


def only_outcome(spec: DesignSpec, outcome: str) -> DesignSpec:
    """The design with one outcome: what a replicate generates and analyses."""
    return spec.model_copy(update={"outcomes": tuple(o for o in spec.outcomes if o.id == outcome)})


def default_effect(spec: DesignSpec, outcome: str, resampled: bool = False) -> float:
    """The effect to simulate when none is given: a trial's data.trial.effect; on the
    synthetic panel the effect injected into it (data.injected_effect); else, and always on
    panels resampled from real data, the design's expected_effect; 0 (the test's size) when
    the design states none. The expected effect was ignored: rcc, which expects −10% on
    every outcome, simulated 0."""
    if spec.data.trial is not None:
        return spec.data.trial.effect
    injected = spec.data.injected_effect.get(outcome)
    if injected is not None and not resampled:
        return float(injected)
    expected = spec.expected_effect(outcome)
    return 0.0 if expected is None else float(expected)


def replicate_seeds(seed: int, n: int) -> list[int]:
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(n)]


def simulate_power(
    spec: DesignSpec,
    n_sims: int,
    seed: int,
    effect: float,
    analysis: str | None = None,
    outcome: str | None = None,
    alpha: float = 0.05,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    panel: DataGenerator | None = None,
) -> SimulatedPower:
    """Run `n_sims` replicates of one analysis × outcome (defaults: the first outcome and
    `_analysis_index`'s analysis, the primary one where it can be simulated); `panel`:
    another data source than the design's own generator (e.g. null panels resampled from real
    data)."""
    outcome = checked_outcome(spec, outcome)
    index = _analysis_index(spec, analysis, outcome)
    source = panel or DesignGenerator(only_outcome(spec, outcome), outcome)
    tasks = [Task(spec, index, outcome, effect, s, source) for s in replicate_seeds(seed, n_sims)]
    show = progress and sys.stderr.isatty()
    if scheduler is not None:
        results = _on_dask(tasks, scheduler, show)
    elif (workers or available_workers()) == 1:
        results = list(tqdm(map(run_task, tasks), total=n_sims, disable=not show))
    else:
        with ProcessPoolExecutor(max_workers=workers or available_workers()) as pool:
            results = list(
                tqdm(
                    pool.map(run_task, tasks, chunksize=max(1, n_sims // 64)),
                    total=n_sims,
                    disable=not show,
                )
            )
    est, p = (np.array(v) for v in zip(*results, strict=True))
    if np.isnan(est).all():  # e.g. dCDH with trends_lin: its rows are per event time only
        raise DesignError(
            f"analysis {spec.analyses[index].id!r} reported no overall effect in any replicate, "
            "so there is no power to simulate",
            file=spec.path,
            where="--analysis",
            fix="simulate an analysis with an overall effect (did_multiplegt_dyn without "
            "trends_lin has its average total effect)",
        )
    return SimulatedPower(spec.analyses[index].id, outcome, effect, alpha, est, p)


def _on_dask(tasks: list[Task], scheduler: str, show: bool) -> Iterable[tuple[float, float]]:
    from distributed import Client, as_completed

    with Client(scheduler) as client:
        futures = client.map(run_task, tasks, pure=False)
        for _ in tqdm(as_completed(futures), total=len(futures), disable=not show):
            pass
        return client.gather(futures)


# Estimators whose rows are all per event time: no overall effect to have power for.
NO_OVERALL = frozenset({"event_study"})


def _analysis_index(spec: DesignSpec, analysis: str | None, outcome: str | None = None) -> int:
    """The analysis `analysis` names, else the primary one (primary: true, else the first)
    when it can be simulated and analyses `outcome`, else the first that can and does, else
    the first that can (it took the first estimable analysis whatever the design marked
    primary; found in review)."""
    fits = [
        i
        for i, a in enumerate(spec.analyses)
        if entry(a.estimator).cls is not None and a.estimator.value not in NO_OVERALL
    ]
    of_outcome = spec.analyses_for(outcome) if outcome is not None else spec.analyses
    fits.sort(
        key=lambda i: (
            spec.analyses[i] not in of_outcome,
            spec.analyses[i] is not spec.primary_analysis,
        )
    )
    named = [a for a in spec.analyses if a.id == analysis]
    if named and named[0].estimator.value in NO_OVERALL:
        raise DesignError(
            f"analysis {analysis!r} is an event study: it reports an effect per event time and "
            "no overall effect, so there is no power to simulate",
            file=spec.path,
            where="--analysis",
            fix=f"simulate an analysis with an overall effect: one of "
            f"{', '.join(spec.analyses[i].id for i in fits)}",
        )
    for i in fits:
        if analysis is None or spec.analyses[i].id == analysis:
            return i
    raise DesignError(
        f"no analysis {analysis!r} that can be simulated"
        if analysis
        else "no analysis that can be simulated",
        file=spec.path,
        where="--analysis" if analysis else "analyses",
        fix=f"name one of: {', '.join(spec.analyses[i].id for i in fits)}",
    )
