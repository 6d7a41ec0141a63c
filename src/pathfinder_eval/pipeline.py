"""The pipeline: design → data → panel → estimators → results. The CLI and API call `evaluate`."""

from __future__ import annotations

import math
import platform
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pandas as pd

from pathfinder_eval import __version__
from pathfinder_eval.analysis_plan import PlanCheck
from pathfinder_eval.data.catalogue import load_catalogue
from pathfinder_eval.data.load import load_outcomes
from pathfinder_eval.data.neighbours import resolve_neighbour_pool
from pathfinder_eval.errors import DesignError, EstimationError
from pathfinder_eval.estimators import checked_fit, one_blas_thread
from pathfinder_eval.inference.detectable import Detectable, minimum_detectable
from pathfinder_eval.panel import OutcomeInfo, ValidatedPanel, build_panel, cell_events
from pathfinder_eval.registry import entry
from pathfinder_eval.results import Dropped, EffectEstimates, Provenance
from pathfinder_eval.robustness import (
    PLACEBO_SHIFT,
    PlaceboPanel,
    PlaceboRun,
    placebo_panel,
    placebo_refit,
    unplaceable,
)
from pathfinder_eval.settings import EstimatorSettings
from pathfinder_eval.spec import Analysis, DesignSpec, Estimator
from pathfinder_eval.workers import ordered_map

DEPENDENCIES = (
    "numpy",
    "scipy",
    "pandas",
    "statsmodels",
    "linearmodels",
    "jinja2",
    "pydantic",
    "pyyaml",
    "matplotlib",
    "pyarrow",  # reads the CSV and Parquet files
    "pyreadstat",  # reads Stata files
    "numba",  # compiles the stepped-wedge likelihoods
    "clarabel",  # solves the Rambachan-Roth intervals' programmes
)


@dataclass(frozen=True)
class AnalysisRun:
    """One analysis of one outcome: a result, or the plain reason there is none."""

    analysis: Analysis
    outcome: str
    status: str  # "ok" | "no_data" | "not_estimable" | "suppressed" (disclosure control)
    result: EffectEstimates | None = None
    note: str = ""
    detectable: Detectable | None = None
    dropped: tuple[Dropped, ...] = ()  # a suppressed result's exclusions, still counted

    @property
    def left_out(self) -> tuple[Dropped, ...]:
        """The rows this analysis left out itself, whether or not its result is shown."""
        return self.result.dropped if self.result is not None else self.dropped


@dataclass(frozen=True)
class Evaluation:
    """A run's panel, analyses, provenance and placebo re-fits; `plan`: the registered
    analysis plan it was checked against (`run --plan`), None when there was none."""

    panel: ValidatedPanel
    runs: tuple[AnalysisRun, ...]
    provenance: Provenance
    placebo: tuple[PlaceboRun, ...] = ()
    plan: PlanCheck | None = None


def describe_outcome(spec: DesignSpec):
    """A function outcome id → OutcomeInfo, from the catalogue or the design's column outcome."""
    catalogue = load_catalogue()
    by_id = {o.id: o for o in spec.outcomes}

    def describe(outcome_id: str) -> OutcomeInfo:
        o = by_id[outcome_id]
        if o.indicator is not None:
            ind = catalogue[o.indicator]
            return OutcomeInfo(ind.id, ind.name, ind.scale, ind.polarity, True)
        return OutcomeInfo(o.id, o.name or o.id, o.scale, o.polarity, True)

    return describe


def build_estimator(spec: DesignSpec, index: int, seed: int | None = None) -> EstimatorSettings:
    """The estimator analysis `index` names, with its typed options (validated when the design
    was loaded), its inference and the run's seed (the design's `seed` unless --seed
    overrides it), so a run is reproducible."""
    analysis = spec.analyses[index]
    cls = entry(analysis.estimator).cls
    if cls is None:
        raise DesignError(
            f"{analysis.estimator.value} has nothing to fit",
            file=spec.path,
            where=f"analyses[{index}].estimator",
            fix="choose an estimator that estimates an effect",
        )
    return cls(
        **analysis.options,
        inference=analysis.inference,
        seed=spec.seed if seed is None else seed,
    )


def prepare(
    spec: DesignSpec,
    data: Path | pd.DataFrame | None = None,
    seed: int | None = None,
    scheduler: str | None = None,
) -> ValidatedPanel:
    """Load the outcome data and run every design and data check: the `validate` command.
    scheduler: a Dask address that summarises a records file."""
    seed = spec.seed if seed is None else seed
    spec = resolve_neighbour_pool(spec, data)
    return build_panel(spec, load_outcomes(spec, data, seed, scheduler), describe_outcome(spec))


def evaluate(
    spec: DesignSpec,
    data: Path | pd.DataFrame | None = None,
    seed: int | None = None,
    command: str = "",
    scheduler: str | None = None,
    workers: int | None = None,
) -> Evaluation:
    """Run every analysis the design lists on every outcome it applies to, then the
    placebo-in-time check of each TWFE and Callaway-Sant'Anna analysis that produced one.
    scheduler: a Dask address that summarises a records file; workers: local processes for
    the fits (default: the available cores, at most 8; the results do not depend on it)."""
    seed = spec.seed if seed is None else seed
    panel = prepare(spec, data, seed, scheduler)
    runs: list[AnalysisRun | None] = []
    fits: list[tuple[Analysis, str, EstimatorSettings]] = []
    for index, analysis in enumerate(spec.analyses):
        for info in panel.outcomes:
            if analysis not in spec.analyses_for(info.id):
                continue
            if not info.available:
                runs.append(AnalysisRun(analysis, info.id, "no_data", note=info.note))
            elif analysis.estimator is Estimator.DESCRIPTIVE:
                runs.append(
                    AnalysisRun(
                        analysis,
                        info.id,
                        "ok",
                        note="descriptive trends only (see the trends chart)",
                    )
                )
            else:
                runs.append(None)  # built here: the estimator's module is imported once
                fits.append((analysis, info.id, build_estimator(spec, index, seed)))
    # the placebo re-fits go to the workers with the fits (one set of warm processes, no
    # wait between them); a re-fit whose analysis turns out not estimable is dropped, and one
    # that raised is run again here only if its analysis is estimable (as a serial run)
    try:
        pp, why = placebo_panel(panel), None
    except EstimationError as exc:
        pp, why = None, exc
    checks = [i for i, f in enumerate(fits) if entry(f[0].estimator).placebo]
    tasks = [(f, False) for f in fits] + ([(fits[i], True) for i in checks] if pp else [])
    # one BLAS thread for the fits and what follows them in a worker (the detectable effect;
    # the workers inherit the limit): see one_blas_thread
    with one_blas_thread():
        out = ordered_map(_fit_or_refit, (panel, pp), tasks, workers)
    fitted = iter(out[: len(fits)])
    done = tuple(r if r is not None else next(fitted) for r in runs)
    ok = [i for i in checks if out[i].status == "ok"]
    if pp is None:
        placebo = unplaceable([fits[i] for i in ok], PLACEBO_SHIFT, why)
    else:
        refits = dict(zip(checks, out[len(fits) :], strict=True))
        placebo = tuple(refits[i] or placebo_refit(pp, fits[i]) for i in ok)
    prov = Provenance(
        package_version=__version__,
        python=platform.python_version(),
        dependencies=tuple((d, _version(d)) for d in DEPENDENCIES),
        data_files=panel.data.files + _neighbour_file(panel.spec),
        design_sha256=spec.sha256,
        seed=seed,
        command=command,
    )
    return Evaluation(panel, done, prov, placebo)


def _fit_or_refit(
    panels: tuple[ValidatedPanel, PlaceboPanel | None],
    task: tuple[tuple[Analysis, str, EstimatorSettings], bool],
) -> AnalysisRun | PlaceboRun | None:
    """One task for ordered_map: a fit of (analysis, outcome, estimator) on the panel, or
    (placebo) its re-fit on the placebo panel — None if the re-fit raised, which matters only
    if the analysis itself is estimable (evaluate then runs it again to raise)."""
    fit, placebo = task
    if not placebo:
        return _fit(panels[0], fit)
    try:
        return placebo_refit(panels[1], fit)
    except Exception:
        return None


def _fit(panel: ValidatedPanel, fit: tuple[Analysis, str, EstimatorSettings]) -> AnalysisRun:
    """One analysis of one outcome: its result, or why there is none."""
    analysis, outcome, est = fit
    try:
        result = checked_fit(est, panel, outcome, analysis.id, analysis.level)
    except EstimationError as exc:
        return AnalysisRun(analysis, outcome, "not_estimable", note=exc.one_line())
    return AnalysisRun(analysis, outcome, "ok", result, detectable=detectable(panel, result))


def detectable(panel: ValidatedPanel, result: EffectEstimates) -> Detectable | None:
    """What the analysis could detect: the MDES of its headline row on the row's scale,
    relative to the treated units' mean before they started (for a triple difference, the
    targeted group's; for a log odds ratio, their proportion of events; none for a measure
    with negative values, such as a standardised score, whose mean is no natural scale: a
    score's ±0.36 read as 338% of its mean), beside the effect
    injected into simulated data or else the design's `expected_effect`. None for a result
    without an overall effect (an event study)."""
    row = result.overall()
    if row is None:
        return None
    spec = panel.spec
    # a triple difference's effect is read against the targeted group's level
    targeted = {c.id: c.outcome for c in spec.contrasts}.get(result.outcome, result.outcome)
    cells = panel.outcome_cells(targeted)
    before = cells[(cells["role"] == "treated") & (cells["treated"] == 0)]
    if result.scale == "log_odds_ratio":
        baseline = _event_proportion(before)
    elif len(before) and (before["y"] >= 0).all():
        baseline = float(before["y"].mean())
    else:  # no data, or a score with negative values: a share of its mean means nothing
        baseline = math.nan
    injected = spec.data.injected_effect.get(result.outcome)
    expected = spec.expected_effect(result.outcome)
    if panel.data.kind == "synthetic" and injected:
        source, value = "injected", injected
    elif expected is not None:
        source, value = "design", expected
    else:
        source, value = "", math.nan
    df = float(row.get("df", math.nan))  # no df column: a normal reference
    return minimum_detectable(
        float(row["std_error"]), df, baseline, value, source, scale=result.scale
    )


def _event_proportion(cells: pd.DataFrame) -> float:
    """Events over trials in the cells that have both (events: the numerator, else
    y × denominator rounded, as the binomial fits count them); NaN without trials."""
    if "denominator" not in cells or not len(cells):
        return math.nan
    events = cell_events(cells)
    known = events.notna() & cells["denominator"].notna()
    trials = float(cells.loc[known, "denominator"].sum())
    return float(events[known].round().sum()) / trials if trials > 0 else math.nan


def _neighbour_file(spec: DesignSpec) -> tuple[tuple[str, str], ...]:
    """The statistical neighbour file a pool was read from, for the provenance."""
    source = spec.comparison.neighbour_source
    return () if source is None else (source,)


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"
