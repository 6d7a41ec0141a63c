"""The pipeline: design → data → panel → estimators → results. The CLI and API call `evaluate`."""

from __future__ import annotations

import platform
from dataclasses import dataclass, fields
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from pathfinder_eval import __version__
from pathfinder_eval.data.catalogue import load_catalogue
from pathfinder_eval.data.load import load_outcomes
from pathfinder_eval.errors import DesignError, EstimationError
from pathfinder_eval.estimators.bacon import BaconDecomposition
from pathfinder_eval.estimators.callaway_santanna import CallawaySantAnna
from pathfinder_eval.estimators.imputation import Imputation
from pathfinder_eval.estimators.stepped_wedge import SteppedWedge
from pathfinder_eval.estimators.sun_abraham import SunAbraham
from pathfinder_eval.estimators.sw_gee import SteppedWedgeGEE
from pathfinder_eval.estimators.sw_glmm import SteppedWedgeGLMM
from pathfinder_eval.estimators.synthetic import SyntheticControl, SyntheticDiD
from pathfinder_eval.estimators.twfe import EventStudy, TwoWayFixedEffects
from pathfinder_eval.estimators.twfe_poisson import PoissonTWFE
from pathfinder_eval.panel import OutcomeInfo, ValidatedPanel, build_panel
from pathfinder_eval.results import EffectEstimates, Provenance
from pathfinder_eval.robustness import PLACEBO_ESTIMATORS, PlaceboRun, placebo_in_time
from pathfinder_eval.spec import AVAILABLE_ESTIMATORS, Analysis, DesignSpec, Estimator

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
)


@dataclass(frozen=True)
class AnalysisRun:
    """One analysis of one outcome: a result, or the plain reason there is none."""

    analysis: Analysis
    outcome: str
    status: str  # "ok" | "not_available" | "no_data" | "not_estimable"
    result: EffectEstimates | None = None
    note: str = ""


@dataclass(frozen=True)
class Evaluation:
    panel: ValidatedPanel
    runs: tuple[AnalysisRun, ...]
    provenance: Provenance
    placebo: tuple[PlaceboRun, ...] = ()


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


ESTIMATORS = {
    Estimator.TWFE: TwoWayFixedEffects,
    Estimator.TWFE_POISSON: PoissonTWFE,
    Estimator.EVENT_STUDY: EventStudy,
    Estimator.STEPPED_WEDGE: SteppedWedge,
    Estimator.STEPPED_WEDGE_GEE: SteppedWedgeGEE,
    Estimator.STEPPED_WEDGE_GLMM: SteppedWedgeGLMM,
    Estimator.CALLAWAY_SANTANNA: CallawaySantAnna,
    Estimator.SUN_ABRAHAM: SunAbraham,
    Estimator.IMPUTATION: Imputation,
    Estimator.BACON: BaconDecomposition,
    Estimator.SYNTHETIC_CONTROL: SyntheticControl,
    Estimator.SYNTHETIC_DID: SyntheticDiD,
}


def build_estimator(spec: DesignSpec, index: int, seed: int | None = None):
    """The estimator object analysis `index` names, configured from its options.

    Estimators that draw random numbers have a `seed` field; it is set from the run's seed
    (the design's `seed` unless --seed overrides it), so a run is reproducible.
    """
    analysis = spec.analyses[index]
    cls = ESTIMATORS[analysis.estimator]
    method = analysis.inference.method
    if method not in cls.inference_methods:
        raise DesignError(
            f"inference method {method!r} is not available for {analysis.estimator.value}",
            file=spec.path,
            where=f"analyses[{index}].inference.method",
            fix=f"use one of: {', '.join(sorted(cls.inference_methods))}",
        )
    options = dict(analysis.options)
    names = {f.name for f in fields(cls)}
    if "seed" in names:
        options["seed"] = spec.seed if seed is None else seed
    if "inference" in names:  # estimators that offer several inference methods
        options["inference"] = analysis.inference
    try:
        est = cls(**options)
        if hasattr(est, "check_options"):
            est.check_options()
        return est
    except EstimationError as exc:  # an option value no data could make work
        raise DesignError(
            exc.what, file=spec.path, where=f"analyses[{index}].{exc.where}", fix=exc.fix
        ) from None
    except TypeError:
        allowed = ", ".join(f.name for f in fields(cls)) or "none"
        bad = ", ".join(sorted(set(analysis.options) - {f.name for f in fields(cls)}))
        raise DesignError(
            f"unknown option(s) {bad or repr(analysis.options)} for {analysis.estimator.value}",
            file=spec.path,
            where=f"analyses[{index}].options",
            fix=f"options of {analysis.estimator.value}: {allowed}",
        ) from None


def prepare(spec: DesignSpec, data: Path | None = None, seed: int | None = None) -> ValidatedPanel:
    """Load the outcome data and run every design and data check: the `validate` command."""
    seed = spec.seed if seed is None else seed
    for i, analysis in enumerate(spec.analyses):
        if analysis.estimator in ESTIMATORS:
            build_estimator(spec, i)
    return build_panel(spec, load_outcomes(spec, data, seed), describe_outcome(spec))


def evaluate(
    spec: DesignSpec, data: Path | None = None, seed: int | None = None, command: str = ""
) -> Evaluation:
    """Run every analysis the design lists on every outcome it applies to, then the
    placebo-in-time check of each TWFE and Callaway-Sant'Anna analysis that produced one."""
    seed = spec.seed if seed is None else seed
    panel = prepare(spec, data, seed)
    runs = []
    for index, analysis in enumerate(spec.analyses):
        for info in panel.outcomes:
            if analysis not in spec.analyses_for(info.id):
                continue
            if analysis.estimator not in AVAILABLE_ESTIMATORS:
                runs.append(
                    AnalysisRun(
                        analysis,
                        info.id,
                        "not_available",
                        note=f"the {analysis.estimator.value} estimator is not "
                        "available in this version of pathfinder-eval",
                    )
                )
            elif not info.available:
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
                est = build_estimator(spec, index, seed)
                try:
                    result = est.fit(panel, info.id, analysis.id, analysis.level)
                    result = result.require_finite()
                except EstimationError as exc:
                    runs.append(
                        AnalysisRun(analysis, info.id, "not_estimable", note=exc.one_line())
                    )
                    continue
                runs.append(AnalysisRun(analysis, info.id, "ok", result))
    index = {a.id: i for i, a in enumerate(spec.analyses)}
    placebo = placebo_in_time(
        panel,
        (
            (r.analysis, r.outcome, build_estimator(spec, index[r.analysis.id], seed))
            for r in runs
            if r.status == "ok" and r.analysis.estimator in PLACEBO_ESTIMATORS
        ),
    )
    prov = Provenance(
        package_version=__version__,
        python=platform.python_version(),
        dependencies=tuple((d, _version(d)) for d in DEPENDENCIES),
        data_files=panel.data.files,
        design_sha256=spec.sha256,
        seed=seed,
        command=command,
    )
    return Evaluation(panel, tuple(runs), prov, placebo)


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"
