"""The Python face: one call per analysis on a long pandas DataFrame.

Each function builds the same typed design, panel and estimator a design file builds and calls
the same `fit` (one engine): `pe.callaway_santanna(df, outcome="y", unit="id", time="year",
first_treated="g")` runs exactly what a design file with `estimator: callaway_santanna` runs on
that data. Option names and defaults are the design file's `options`; `inference` is its
`inference.method`. Bad input raises a `pathfinder_eval.errors.PathfinderError` (DataError,
DesignError, EstimationError) naming the argument, column, row and fix.
"""

from __future__ import annotations

import datetime as dt
import inspect
import re
import textwrap
import types
import typing
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from pathfinder_eval.data.indicator_values import indicator_table
from pathfinder_eval.data.load import SWITCHING, is_dask_frame, load_outcomes
from pathfinder_eval.data.tidy import id_codes, id_text, numbers
from pathfinder_eval.errors import (
    DataError,
    DataWarning,
    DesignError,
    EstimationError,
    ExcludedRowsWarning,
    cell,
)
from pathfinder_eval.estimators import checked_fit, one_blas_thread
from pathfinder_eval.estimators.did.did2x2 import did_2x2 as estimate_2x2
from pathfinder_eval.estimators.did.triple_difference import fit_triple_difference
from pathfinder_eval.estimators.did.unit_records import ARGUMENTS, check_numbers, unit_panel
from pathfinder_eval.inference import pretrends_power
from pathfinder_eval.inference.honest_did import (
    SensitivityResult,
    sensitivity_rm,
    sensitivity_sd,
)
from pathfinder_eval.inference.pretrends_power import (
    CRITICAL,
    PretrendsResult,
    pass_probability,
    testable,
)
from pathfinder_eval.output import write_atomically
from pathfinder_eval.panel import build_panel
from pathfinder_eval.pipeline import Evaluation, describe_outcome
from pathfinder_eval.pipeline import evaluate as run_design
from pathfinder_eval.power import analytic
from pathfinder_eval.power.analytic import VarianceModel
from pathfinder_eval.registry import entry
from pathfinder_eval.results import EffectEstimates
from pathfinder_eval.settings import OPTIONS, Inference, clustering_above_unit
from pathfinder_eval.spec import (
    UNIT_TABLE_COLUMNS,
    Analysis,
    Comparison,
    Contrast,
    DataSpec,
    DesignSpec,
    Outcome,
    TidyColumns,
    TimeSpec,
    Wave,
    load_design,
)


def fit_frame(
    estimator: str,
    data: pd.DataFrame,
    *,
    outcome: str,
    unit: str,
    time: str,
    first_treated: str | None = None,
    treatment: str | None = None,
    region: str | None = None,
    cluster: str | None = None,
    dose: str | None = None,
    counts: str | None = None,
    population: str | None = None,
    minus: str | None = None,
    inference: str | Mapping[str, Any] | Inference = "default",
    level: float = 0.95,
    seed: int = 0,
    **options: Any,
) -> EffectEstimates:
    """Fit a DiD or synthetic `estimator` (a design-file estimator name) on a long frame, one
    row per unit and period: the shared body of the per-estimator functions. With `counts` and
    `population` the outcome is the rate per 10,000 recomputed from those columns (and
    `outcome` only names it), which Poisson fits need; with `population` alone the outcome is
    the column as given and the population each unit's size, which the pooled variance
    scales the noise by (a rate of a small LA is noisier). With `minus` (a column: the same
    measure for a group the reform does not target, in the same unit and period) the estimator
    runs on `outcome` minus `minus`, a triple difference, as a design file's `contrasts` do.
    Columns named in a `covariates` (or `predict_het`) option are read as further outcomes of
    the design, as a design file lists them. `cluster` (estimators whose variance can cluster
    above the unit), and did_multiplegt_dyn's `by` and `trends_nonparam` when they name a
    column, are carried to the unit table as a design file's `data.columns.unit_columns`."""
    if cluster is not None and not entry(estimator).cls.clusters_above_unit:
        raise DesignError(
            f"{estimator} clusters its variance by unit only",
            where="argument cluster",
            fix="leave out cluster (each unit is a cluster), or use "
            f"{' or '.join(clustering_above_unit())}",
        )
    if dose is not None and estimator != "continuous_did":
        raise DesignError(
            f"{estimator} does not read a dose: only continuous_did does",
            where="argument dose",
            fix="leave out dose, or use continuous_did for a dose-response",
        )
    rate = counts is not None or population is not None
    if minus is not None and minus == outcome:
        raise DesignError(
            f"minus names the outcome itself ({minus!r}): the contrast would be 0 everywhere",
            where="argument minus",
            fix="name the same measure for a group the reform does not target",
        )
    if minus is not None and rate:
        raise DesignError(
            "minus contrasts two outcome columns; counts and population describe one",
            where="argument minus",
            fix="pass both groups' rates as columns (outcome and minus) without counts or "
            "population",
        )
    if counts is not None and population is None:
        raise DesignError(
            "counts need the population they are of: the rate is recomputed from both",
            where="argument population",
            fix="name the population column too, or pass the rate as outcome without counts",
        )
    frame = _checked_frame(
        data,
        outcome=None if counts is not None else outcome,
        minus=minus,
        unit=unit,
        time=time,
        region=region,
        dose=dose,
        first_treated=first_treated,
        treatment=treatment,
        counts=counts,
        population=population,
    )
    for name in ("covariates", "predict_het"):  # one column name as a list of one
        if isinstance(options.get(name), str):
            options[name] = (options[name],)
    covariates = tuple(options.get("covariates", ()))
    _checked_frame(frame, **{f"covariates[{i}]": c for i, c in enumerate(covariates)})
    het = tuple(c for c in options.get("predict_het", ()) if c not in covariates)
    _checked_frame(frame, **{f"predict_het[{i}]": c for i, c in enumerate(het)})
    covariates += het
    if cluster in ("unit", unit):
        cluster = None  # each unit its own cluster: the default
    named = {a: options.get(a) for a in ("by", "trends_nonparam")} | {"cluster": cluster}
    named = {a: c for a, c in named.items() if isinstance(c, str) and c != region}
    for arg, column in named.items():  # frame columns, carried to the unit table
        if column not in UNIT_TABLE_COLUMNS:
            _checked_frame(frame, **{arg: column})
        elif column in frame.columns:  # the data's column or the unit table's own?
            raise DesignError(
                f"{arg}={column!r} names a column the unit table has for itself",
                where=f"argument {arg}",
                fix=f"rename the data's column, or pass region={column!r} to use it as the region"
                if column == "region"
                else "rename the data's column",
            )
    unit_columns = tuple(dict.fromkeys(c for c in named.values() if c not in UNIT_TABLE_COLUMNS))
    starts = _starts(
        frame, unit, time, first_treated, treatment, "first_treated", estimator in SWITCHING
    )
    starts, late = _treated_within_data(starts, frame[time], first_treated or "treatment")
    spec = _design(
        estimator,
        Outcome(column=outcome, numerator=counts, denominator=population, scale="per_10000")
        if counts is not None
        else Outcome(column=outcome, denominator=population),
        starts,
        level,
        seed,
        pilot="custom",
        pool="not_yet_treated",  # each estimator says which comparisons it can use
        data=DataSpec(
            source="tidy",
            columns=TidyColumns(
                unit=unit,
                period=time,
                region=region,
                treatment=treatment,
                dose=dose,
                unit_columns=unit_columns,
            ),
        ),
        extra=tuple(Outcome(column=c) for c in (minus, *covariates) if c and c != outcome),
        contrast=None
        if minus is None
        else Contrast(
            id=re.sub(r"[^A-Za-z0-9_\-]", "_", f"{outcome}_minus_{minus}"),
            outcome=outcome,
            minus=minus,
        ),
        options=options,
    )
    column = None if cluster is None else "region" if cluster == region else cluster
    asked = inference.cluster if isinstance(inference, Inference) else "unit"
    if column is not None and asked not in ("unit", column):
        raise DesignError(
            f"cluster={cluster!r} and inference's cluster {asked!r} differ",
            where="argument cluster",
            fix="name the cluster once: cluster= or Inference(cluster=...)",
        )
    result = _run(spec, frame, estimator, inference, level, seed, options, column)
    if not late:
        return result
    text = (
        f"{len(late)} units first treated after the data's last period are compared as not "
        f"yet treated in every period, as R's did does (units {_listed(late)})"
    )
    warnings.warn(text, DataWarning, stacklevel=_outside_package())
    return replace(result, warnings=(*result.warnings, text))


def _treated_within_data(
    starts: dict[int, list[str]], times: pd.Series, arg: str
) -> tuple[dict[int, list[str]], list[str]]:
    """The starts by the data's last period, and the units first treated after it: no
    period of the data sees them treated, so they are compared as not yet treated."""
    last = pd.to_numeric(times, errors="coerce").max()
    within = {s: us for s, us in starts.items() if s <= last}
    late = sorted(u for s, us in starts.items() if s > last for u in us)
    if not within:
        raise DataError(
            f"every unit's first treated period is after the data's last period ({last:g}): "
            "no unit is treated in the data",
            where=f"argument {arg}",
            fix="check the first-treated column, or supply data covering the treated periods",
        )
    return within, late


def fit_records(
    estimator: str,
    data: pd.DataFrame,
    *,
    outcome: str,
    cluster: str,
    period: str,
    start: str | None = None,
    treatment: str | None = None,
    covariates: tuple[str, ...] = (),
    individual: str | None = None,
    inference: str | Mapping[str, Any] | Inference = "default",
    level: float = 0.95,
    seed: int = 0,
    **options: Any,
) -> EffectEstimates:
    """Fit a stepped-wedge `estimator` on individual records (one row per person and period),
    summarised exactly per cluster-period as a design file with `data.source: records` does."""
    if isinstance(covariates, str):  # one column name, not its letters
        covariates = (covariates,)
    named = {f"covariates[{i}]": c for i, c in enumerate(covariates)}
    frame = _checked_frame(
        data,
        "period",
        outcome=outcome,
        cluster=cluster,
        period=period,
        start=start,
        treatment=treatment,
        individual=individual,
        **named,
    )
    starts = _starts(frame, cluster, period, start, treatment, "start")
    spec = _design(
        estimator,
        Outcome(column=outcome),
        starts,
        level,
        seed,
        pilot="trial",
        pool="not_yet_treated",
        data=DataSpec(
            source="records",
            columns=TidyColumns(
                unit=cluster,
                period=period,
                covariates=tuple(covariates),
                individual=individual,
            ),
        ),
    )
    return _run(spec, frame, estimator, inference, level, seed, options)


def _design(
    estimator: str,
    outcome: Outcome,
    starts: dict[int, list[str]],
    level: float,
    seed: int,
    *,
    pilot: str,
    pool: str,
    data: DataSpec,
    extra: tuple[Outcome, ...] = (),
    contrast: Contrast | None = None,
    options: dict[str, Any] | None = None,
) -> DesignSpec:
    """The design a design file would hold for this call: units on a period axis, the
    rollout read from the data, the outcome (then `extra` outcomes the options read, such as
    covariates) and one analysis of the outcome, or of the `contrast` when given, with the
    estimator's `options`."""
    _checked_level(level)
    _checked_seed(seed)
    return DesignSpec(
        name="api",
        title=f"{estimator} on a data frame",
        pilot=pilot,
        unit_level="cluster",
        time=TimeSpec(axis="period"),
        rollout=tuple(
            Wave(wave=f"start {s}", start=s, units=tuple(us)) for s, us in sorted(starts.items())
        ),
        comparison=Comparison(pool=pool, min_units=1),
        outcomes=(outcome, *extra),
        contrasts=() if contrast is None else (contrast,),
        analyses=(
            Analysis(
                id=estimator,
                estimator=estimator,
                outcomes=(outcome.id if contrast is None else contrast.id,),
                level=level,
                options=dict(options or {}),
            ),
        ),
        data=data,
        seed=seed,
    )


def _checked_level(level: float) -> float:
    """A confidence level strictly between 0.5 and 1 (0.95, not 95)."""
    if isinstance(level, bool) or not isinstance(level, int | float) or not 0.5 < level < 1:
        raise DesignError(
            f"level {level!r} is not a confidence level between 0.5 and 1",
            where="argument level",
            fix="give the level as a fraction, e.g. level=0.95 for 95% intervals",
        )
    return float(level)


def _checked_seed(seed: int | None, design_has_one: bool = False) -> None:
    """A seed numpy accepts: a whole number of 0 or more (None: the design's own, where a
    design file gives one; an estimator called on a frame has none)."""
    if seed is not None or not design_has_one:
        _whole("seed", seed, 0)


def _run(
    spec: DesignSpec,
    frame: pd.DataFrame,
    estimator: str,
    inference: str | Mapping[str, Any] | Inference,
    level: float,
    seed: int,
    options: dict[str, Any],
    cluster: str | None = None,
) -> EffectEstimates:
    """The pipeline's own steps: typed options, the validated panel, the checked fit;
    cluster: the unit-table column the variance clusters by (the `cluster` argument)."""
    model = entry(estimator).cls
    if not isinstance(inference, Inference):
        inference = _inference(inference, model.inference_methods, estimator)
    if cluster is not None:
        inference = inference.model_copy(update={"cluster": cluster})
    est = model(**options, inference=inference, seed=seed)
    panel = build_panel(spec, load_outcomes(spec, frame, seed), describe_outcome(spec))
    outcome = spec.analyses[0].outcomes[0]
    mine = [(e.reason, e.count, e.units) for e in panel.exclusions if e.outcome in ("", outcome)]
    return _counted(checked_fit(est, panel, outcome, estimator, level), mine)


def _inference(asked: object, methods: frozenset[str], estimator: str) -> Inference:
    """The `inference` argument, a method name or a design file's `inference:` mapping
    (method, draws, cluster, weights, absorbed_effects), as typed settings."""
    fields = dict(asked) if isinstance(asked, Mapping) else {"method": asked}
    method = fields.get("method", "default")
    if not isinstance(method, str) or method not in methods:
        raise DesignError(
            f"inference method {method!r} is not available for {estimator}",
            where="argument inference",
            fix=f"use one of {', '.join(sorted(methods))}",
        )
    try:
        return Inference(**fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise DesignError(
            f"{'.'.join(map(str, err['loc']))}: {err['msg']}",
            where="argument inference",
            fix="give a method name, or a mapping of method, draws, cluster, weights and "
            "absorbed_effects as a design file's inference block",
        ) from None


def _counted(
    result: EffectEstimates, left_out: Sequence[tuple[str, int | None, Sequence[str]]]
) -> EffectEstimates:
    """The rows of the data left out (reason, count, units), said where an API user sees
    them: the result's warnings and an ExcludedRowsWarning (the CLI's report has its
    exclusions table; a DataFrame call has no report)."""
    if not left_out:
        return result
    parts = [
        f"{count} {reason}" + (f" (units {_listed(list(units))})" if units else "")
        for reason, count, units in left_out
    ]
    text = (
        f"{sum(count or 0 for _, count, _ in left_out)} rows of the data were left out of this "
        "analysis: " + "; ".join(parts)
    )
    warnings.warn(text, ExcludedRowsWarning, stacklevel=_outside_package())
    return replace(result, warnings=(*result.warnings, text))


def _listed(units: Sequence[str], shown: int = 5) -> str:
    """The first `shown` units, then how many more."""
    more = f" and {len(units) - shown} more" if len(units) > shown else ""
    return ", ".join(units[:shown]) + more


def _outside_package() -> int:
    """The stacklevel of the first caller outside pathfinder_eval, so a warning names the
    user's line, whichever public function they called."""
    frame, level = inspect.currentframe(), 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith("pathfinder_eval"):
        frame, level = frame.f_back, level + 1
    return level - 1


def evaluate(
    design: str | Path | DesignSpec,
    data: str | Path | pd.DataFrame | Any | None = None,
    seed: int | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
) -> Evaluation:
    """Run every analysis a design file lists: the `run` command without writing files.

    Parameters
    ----------
    design : str, Path or DesignSpec
        A design file (designs/*.yaml) or a loaded design.
    data : str, Path or pandas.DataFrame, optional
        A folder of DfE EES CSVs, a tidy file, or a DataFrame read as the design's tidy data
        or individual records (default: the design's own data source). A Dask DataFrame is
        read as individual records, summarised partition by partition on the active Dask
        scheduler.
    seed : int, optional
        Overrides the design's seed.
    scheduler : str, optional
        The address of a Dask distributed scheduler that summarises a records file (the
        `run --scheduler` option).
    workers : int, optional
        Local processes for the fits (default: the available cores, at most 8; 1: this
        process only).
        The results are the same for any number. Workers are forked, on Linux and from a
        process with no other threads (not from a notebook kernel): elsewhere the fits run
        in this process.

    Returns
    -------
    Evaluation
        `.runs` (one AnalysisRun per analysis and outcome: `.result`, `.detectable`), the
        validated `.panel` and `.provenance`; pass it to `report`.
    """
    _checked_seed(seed, design_has_one=True)
    spec = design if isinstance(design, DesignSpec) else load_design(design)
    source = Path(data) if isinstance(data, str | Path) else data
    shown = (
        "a DataFrame"
        if isinstance(data, pd.DataFrame) or is_dask_frame(data)
        else repr(str(data))
        if data
        else ""
    )
    command = f"pathfinder_eval.evaluate({spec.path or spec.name!r}{', ' + shown if shown else ''})"
    return run_design(spec, source, seed, command, scheduler, workers)


def report(
    evaluation: Evaluation,
    out: str | Path,
    templates: str | Path | None = None,
    workers: int | None = None,
) -> list[Path]:
    """Write the evaluation's HTML report and results JSON into `out` (all or nothing), as
    the `run` command does.

    Parameters
    ----------
    evaluation : Evaluation
        What `evaluate` returned.
    out : str or Path
        The folder to write into (created if missing; nothing is written if any part fails).
    templates : str or Path, optional
        A template pack overriding the packaged templates (rendered in a sandbox).
    workers : int, optional
        Local processes drawing the analyses' charts (default: the available cores, at most
        8); the files are the same for any number.

    Returns
    -------
    list of Path
        The files written: the HTML report and the results JSON.
    """
    from pathfinder_eval.report.render import report_files  # plotting: only when reporting

    folder = Path(templates) if templates is not None else None
    return write_atomically(Path(out), report_files(evaluation, folder, workers))


def indicators(
    data: str | Path,
    *,
    las: str | Sequence[str] = (),
    year: int | str | None = None,
    ids: str | Sequence[str] = (),
) -> pd.DataFrame:
    """National Framework indicators computed from a folder of DfE files, beside DfE's
    published figures: the `indicators --data` command as a DataFrame.

    Parameters
    ----------
    data : str or Path
        A folder of DfE EES CSVs (e.g. ../shared/data/public).
    las : str or sequence of str, optional
        LAs to add to England and the regions (names, DfE or GSS codes).
    year : int, optional
        Reporting year (default: each indicator's latest); "2025" is read as 2025.
    ids : str or sequence of str, optional
        Indicator ids (default: every one the folder's files allow).

    Returns
    -------
    pandas.DataFrame
        One row per area and indicator: area_type, area_code, area, indicator, year, value
        (rounded half up as DfE publishes), published, agrees, numerator, denominator, status.
    """
    return indicator_table(Path(data), _names(las), _year(year), _names(ids), where="las")[0]


def _names(value: str | Sequence[str]) -> list[str]:
    """One name or several: a lone string is one name, not its letters ('Dorset' was read
    as the LAs 'D', 'o', ...)."""
    return [value] if isinstance(value, str) else list(value)


def _year(value: int | str | None) -> int | None:
    """A reporting year given as a whole number or its text ("2025")."""
    if value is None or isinstance(value, int):
        return value
    text = str(value).strip()
    if not text.isdigit():
        raise DesignError(
            f"year {value!r} is not a whole number",
            where="argument year",
            fix="give the reporting year as a number, e.g. 2025",
        )
    return int(text)


def did_2x2(
    data: pd.DataFrame,
    *,
    outcome: str,
    group: str,
    post: str,
    covariates: tuple[str, ...] = (),
    weights: str | None = None,
    cluster: str | None = None,
    cov_type: str | None = None,
    level: float = 0.95,
) -> EffectEstimates:
    """The canonical 2×2 difference-in-differences by OLS: outcome on post, group and
    group × post (+ covariates), as R `lm` (estimators/did/did2x2.py).

    Parameters
    ----------
    data : pandas.DataFrame
        One row per observation (repeated cross-sections or a two-period panel).
    outcome : str
        The outcome column.
    group : str
        0/1 column: in the treated group.
    post : str
        0/1 column: after the change.
    covariates : tuple of str, default ()
        Adjustment columns.
    weights : str, optional
        Positive analytic weights column.
    cluster : str, optional
        Cluster labels: the variance clusters by them (cov_type "cluster").
    cov_type : str, optional
        "nonrobust" (as R lm), "HC1" or "cluster" (default: "cluster" when a cluster column
        is given, else "HC1").
    level : float, default 0.95
        Confidence level.

    Returns
    -------
    EffectEstimates
        One row, "DiD (2×2)"; `facts` holds the four cell means and counts.
    """
    level = _checked_level(level)
    covariates = (covariates,) if isinstance(covariates, str) else tuple(covariates)
    if cov_type is None:
        cov_type = "cluster" if cluster else "HC1"
    elif cluster and cov_type != "cluster":
        raise DesignError(
            f"cluster={cluster!r} with cov_type={cov_type!r}: the clusters would be ignored",
            where="argument cov_type",
            fix="drop cov_type (or pass cov_type='cluster') to cluster by the column, or drop "
            "cluster",
        )
    named = {"outcome": outcome, "group": group, "post": post, "weights": weights}
    frame = _checked_frame(data, **named, cluster=cluster)
    for c in covariates:
        _require(frame, c)
    for arg, column in (*named.items(), *(("covariates", c) for c in covariates)):
        if column is not None:
            _numbers(frame, column, arg)
    with one_blas_thread():
        fit = estimate_2x2(
            frame[outcome],
            frame[group],
            frame[post],
            covariates=frame[list(covariates)] if covariates else None,
            weights=frame[weights] if weights else None,
            cluster=frame[cluster] if cluster else None,
            cov_type=cov_type,
            level=level,
        )
    return fit.to_estimates("did_2x2", outcome)


def triple_difference(
    data: pd.DataFrame,
    *,
    outcome: str,
    unit: str,
    time: str,
    first_treated: str,
    eligible: str,
    covariates: str | Sequence[str] = (),
    method: str = "dr",
    base_period: str = "universal",
    covariates_at: str = "period",
    control_group: str = "never_treated",
    cluster: str | None = None,
    inference: str = "cr2",
    level: float = 0.95,
) -> EffectEstimates:
    """Triple differences on unit-level records (children, households): Ortiz-Villavicencio &
    Sant'Anna's (2025) staggered DDD with never-treated or not-yet-treated comparisons
    (estimators/did/triple_difference.py).

    Each unit belongs to a group (an LA) that starts the reform in `first_treated` or never,
    and is `eligible` for it or not (a targeted age band). ATT(g,t) of the eligible units of
    cohort g is DiD(against the cohort's ineligible units) + DiD(against never-treated eligible
    units) − DiD(against never-treated ineligible units), each Sant'Anna & Zhao's doubly robust
    (or IPW, or regression) DiD on the units observed in both periods, so the panel may be
    unbalanced. Every ATT(g,t) and its standard error equals moderndid's
    `ddd(..., allow_unbalanced_panel=True)` (tests/reference/moderndid_ddd); the aggregated
    rows' standard errors also count the estimated cohort shares, as R's did does (moderndid's
    agg_ddd does not; the same with one start date). For an LA-level panel with the targeted
    and untargeted groups' outcomes as two columns, use `minus=` on any DiD function instead.
    In a design file: `estimator: triple_difference` on `data.source: records` with
    `data.columns.individual` and `eligible` (the LA's start from the rollout, clustered by LA).

    Parameters
    ----------
    data : pandas.DataFrame
        One row per unit and period.
    outcome, unit, time : str
        The outcome, unit id and period columns.
    first_treated : str
        The first treated period of the unit's group (0, missing or inf: never; after the
        data's last period: compared as never treated, with a warning); constant within a
        unit, one of the periods. Ineligible units of a starting group carry its start too.
    eligible : str
        0/1, constant within a unit: 1 for the units the reform targets.
    covariates : str or sequence of str, default ()
        Numeric columns the comparisons are net of (propensity score and outcome model).
    method : {"dr", "ipw", "reg"}, default "dr"
        Doubly robust, normalised IPW or outcome-regression DiD in each comparison.
    base_period : {"universal", "varying"}, default "universal"
        Every cell against the period before its cohort's start, or pre-start cells against
        the period before them.
    covariates_at : {"period", "base"}, default "period"
        Each cell's covariates at its period t (moderndid's `ddd`; after the start the reform
        may have moved them), or at its base period (as `callaway_santanna` takes them).
    control_group : {"never_treated", "not_yet_treated"}, default "never_treated"
        The comparison groups: the never-treated groups, or also every group starting after
        both of a cell's periods, one DDD per comparison cohort combined by Ortiz-Villavicencio
        & Sant'Anna's GMM weights (the inverse covariance of their influence functions; each
        cell's weights are in `diagnostics`). Every ATT(g,t) equals moderndid's
        `ddd(..., control_group="notyettreated")`.
    cluster : str, optional
        A column constant within units (the LA) to cluster the variance by. Without it units
        are independent, with a normal reference (as moderndid's analytic standard errors).
    inference : {"cr2", "influence_function"}, default "cr2"
        With a cluster: "cr2" scales each cluster's influence sums by CR2's bias reduction,
        with Bell-McCaffrey degrees of freedom (none where one cluster holds all of a
        cohort's treated units); "influence_function" sums them as they are, with a t(G − 1)
        reference, which over-rejects when few clusters are treated. CR2 held its size with
        4 and 10 treated LAs of 60 but was 2.25 times as wide as needed with 4; the LA-level
        contrast (the children's means by LA, group and period, `minus=` on
        `callaway_santanna`) held it at about the needed width
        (benchmarks/ddd_units_validity.py). With covariates CR2 leaves out their leverage
        (an approximation); aggregated rows add the estimated cohort shares' term.
    level : float, default 0.95
        Confidence level.

    Returns
    -------
    EffectEstimates
        "ATT (simple)" (post-start cells weighted by cohort size), then one row per event
        time; `diagnostics` has every ATT(g,t), the pre-test and the units in each subgroup.
    """
    level = _checked_level(level)
    covariates = (covariates,) if isinstance(covariates, str) else tuple(covariates)
    for arg, value, allowed in (
        ("method", method, ("dr", "ipw", "reg")),
        ("base_period", base_period, ("universal", "varying")),
        ("covariates_at", covariates_at, ("period", "base")),
        ("control_group", control_group, ("never_treated", "not_yet_treated")),
        ("inference", inference, ("cr2", "influence_function")),
    ):
        if value not in allowed:
            raise DesignError(
                f"{arg}={value!r} is not one of {', '.join(allowed)}",
                where=f"argument {arg}",
                fix=f"pass {arg}={allowed[0]!r}",
            )
    frame = _checked_frame(
        data,
        outcome=outcome,
        unit=unit,
        time=time,
        first_treated=first_treated,
        eligible=eligible,
        cluster=cluster,
        **{f"covariates[{i}]": c for i, c in enumerate(covariates)},
    )
    panel, codes, dropped, late = unit_panel(
        frame, outcome, unit, time, first_treated, eligible, covariates, cluster
    )
    for note in late:
        warnings.warn(note, DataWarning, stacklevel=_outside_package())
    with one_blas_thread():
        result = fit_triple_difference(
            panel,
            outcome=outcome,
            covariates=covariates,
            method=method,
            base_period=base_period,
            covariates_at=covariates_at,
            control_group=control_group,
            cluster=codes,
            level=level,
            inference=inference,
            dropped=dropped,
            notes=late,
        )
    return _counted(result, [(d.reason, d.rows, d.units) for d in dropped])


# Estimators whose event-time rows are effects relative to event time −1 (the reference
# HonestDiD's restrictions are written for); Callaway & Sant'Anna only with a universal base.
MEASURED_FROM_REFERENCE = frozenset({"event_study", "sun_abraham", "callaway_santanna"})


def honest_did(
    result: EffectEstimates,
    m_values: list[float] | np.ndarray,
    restriction: str = "smoothness",
    level: float = 0.95,
) -> SensitivityResult:
    """Rambachan & Roth (2023) robust intervals for the first post-period effect of an event
    study (`pe.event_study`), under smoothness (Δ^SD(M), FLCI) or relative magnitudes
    (Δ^RM(M̄), conditional least-favourable hybrid), as R HonestDiD.

    Parameters
    ----------
    result : EffectEstimates
        An event study's result: rows by event time with their covariance, measured from
        event time −1 (`pe.event_study`, `pe.sun_abraham`, or `pe.callaway_santanna` with
        base_period="universal"; its reference row is left out).
    m_values : list of float
        The restriction sizes M (smoothness) or M̄ (relative magnitudes).
    restriction : {"smoothness", "relative_magnitudes"}, default "smoothness"
    level : float, default 0.95

    Returns
    -------
    SensitivityResult
        `lower`, `upper` per M, the conventional interval (`original`) and the `breakdown` M.
    """
    event, beta, sigma = _event_rows(result, "honest_did", "the restriction cannot bound it")
    n_pre, n_post = int((event < 0).sum()), int((event >= 0).sum())
    l_vec = np.eye(n_post)[0]
    ms = np.asarray(m_values, dtype=float)
    if restriction not in ("smoothness", "relative_magnitudes"):
        raise DesignError(
            f"unknown restriction {restriction!r}",
            where="argument restriction",
            fix="use 'smoothness' or 'relative_magnitudes'",
        )
    solve = sensitivity_sd if restriction == "smoothness" else sensitivity_rm
    with one_blas_thread():
        return solve(beta, sigma, n_pre, n_post, ms, l_vec, level)


def _event_rows(
    result: EffectEstimates, function: str, why: str, needed: float = np.inf
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An event study's event times, estimates and covariance, measured from event time −1,
    without the reference row (honest_did's and pretrends' input); every row before event
    time `needed` must have a variance (`why` says what one without would stop)."""
    if not isinstance(result, EffectEstimates):
        raise DesignError(
            f"{function} takes a fitted result, not {type(result).__name__}",
            where="argument result",
            fix="pass the result of pe.event_study",
        )
    t = result.table
    if "event_time" not in t.columns or result.vcov is None:
        raise DesignError(
            f"{function} needs an event study's rows by event time and their covariance",
            where="argument result",
            fix="pass the result of pe.event_study",
        )
    if result.estimator not in MEASURED_FROM_REFERENCE or (
        result.diagnostics.get("base_period", "universal") != "universal"
    ):
        raise DesignError(
            f"the {result.estimator} result's leads are not measured from event time −1"
            + (" (base_period 'varying': each lead is a one-period change)"
               if result.estimator == "callaway_santanna" else ""),
            where="argument result",
            fix="pass pe.event_study's result, pe.sun_abraham's, or "
            "pe.callaway_santanna(..., base_period='universal')'s",
        )  # fmt: skip
    facts = result.diagnostics
    moved = [
        c for c in facts.get("att_gt", ()) if c["base_period"] != c["cohort"] - 1
    ]  # a cohort measured from before its period −1 (anticipation, a left-out period)
    if facts.get("reference_event_time", -1) != -1 or moved:
        raise DesignError(
            f"the {result.estimator} result's reference period is not event time −1"
            + (
                f" (cohort {moved[0]['cohort']:g} is measured from period "
                f"{moved[0]['base_period']:g})"
                if moved
                else f" ({facts['reference_event_time']})"
            ),
            where="argument result",
            fix="refit with event time −1 as the reference (no anticipation, and a partial "
            "period rule that keeps the period before each start)",
        )
    event_all = t["event_time"].to_numpy(float)
    variance = np.diag(result.vcov)
    reference = (t["estimate"].to_numpy(float) == 0) & (variance == 0)  # the normalisation
    rows = np.flatnonzero(np.isfinite(event_all) & ~reference)
    if (event_all[reference] != -1).any() or (event_all[rows] == -1).any():
        raise DesignError(
            f"the {result.estimator} result's reference period is not event time −1 "
            f"(reference {', '.join(f'{e:g}' for e in event_all[reference]) or 'none'})",
            where="argument result",
            fix="refit with event time −1 as the reference (reference=-1, no anticipation)",
        )
    checked = rows[event_all[rows] < needed]
    if not (variance[checked] > 0).all():
        bad = t["term"].iloc[checked[~(variance[checked] > 0)][0]]
        raise DesignError(
            f"row {bad!r} has no variance, so {why}",
            where="argument result",
            fix="refit with an inference that gives every event-time row a standard error",
        )
    beta, sigma = t["estimate"].to_numpy(float)[rows], result.vcov[np.ix_(rows, rows)]
    return event_all[rows], beta, sigma


def _array(value: object, name: str, ndim: int) -> np.ndarray:
    """A finite float array of `ndim` dimensions (1: flattened), or a DesignError naming it."""
    try:
        out = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        out = np.array(np.nan)
    out = out.ravel() if ndim == 1 else out
    if out.ndim != ndim or not np.isfinite(out).all():
        raise DesignError(
            f"{name} is not a {'vector' if ndim == 1 else 'matrix'} of finite numbers",
            where=f"argument {name}",
            fix=f"give {name} as numbers (a list, an array or a pandas object)",
        )
    return out


def _published_event_study(
    beta: object, sigma: object, event_times: object, reference: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """pretrends' arrays checked: one coefficient per distinct event time other than the
    reference, and a symmetric covariance with positive variances."""
    times = _array(event_times, "event_times", 1)
    b, cov = _array(beta, "beta", 1), _array(sigma, "sigma", 2)
    if b.size != times.size or cov.shape != (times.size, times.size):
        raise DesignError(
            f"beta has {b.size} values, event_times {times.size} and sigma is "
            f"{' × '.join(map(str, cov.shape))}",
            where="arguments beta, sigma, event_times",
            fix="give one coefficient and event time per row and column of sigma",
        )
    if np.unique(times).size != times.size or (times == reference).any():
        raise DesignError(
            f"event_times repeat a time or include the reference {reference:g}",
            where="argument event_times",
            fix="give each coefficient's own event time, the reference period left out",
        )
    scale = float(np.abs(cov).max())
    if not (np.diag(cov) > 0).all() or np.abs(cov - cov.T).max() > 1e-10 * scale:
        raise DesignError(
            "sigma is not a covariance matrix (a variance not positive, or not symmetric)",
            where="argument sigma",
            fix="pass the event study's covariance matrix of its coefficients",
        )
    return times, b, cov


def pretrends(
    result: EffectEstimates | None = None,
    *,
    delta: Sequence[float] | np.ndarray | None = None,
    target_power: float = 0.5,
    beta: Sequence[float] | np.ndarray | None = None,
    sigma: np.ndarray | pd.DataFrame | None = None,
    event_times: Sequence[float] | np.ndarray | None = None,
    reference: float = -1.0,
    critical: float = CRITICAL,
) -> PretrendsResult:
    """Roth's (2022) power of an event study's pre-test, as R pretrends: the slope of the
    linear trend the test detects with probability `target_power` (slope_for_power), and
    against a hypothesised trend the test's power, Bayes factor, likelihood ratio and the
    coefficients' mean among analyses that pass it (pretrends). The pre-test rejects when any
    lead (event time before `reference`) is individually significant at |t| > `critical`.

    Parameters
    ----------
    result : EffectEstimates, optional
        An event study measured from event time −1 (`pe.event_study`, `pe.sun_abraham`, or
        `pe.callaway_santanna(..., base_period="universal")`), or give the next three.
    delta : array, optional
        The hypothesised trend, one value per event time (default: the linear trend of
        `target_power`, slope·(t − reference)).
    target_power : float, default 0.5
    beta : array, optional
        A published event study's coefficients (the reference period left out), as R
        pretrends takes them; with `sigma` and `event_times`, instead of `result`.
    sigma : array, optional
        Their covariance matrix.
    event_times : array, optional
        Their event times.
    reference : float, default −1
        The omitted event time (a result's must be −1).
    critical : float, default 1.95996
        The pre-test's critical value (R pretrends: 1.96).

    Returns
    -------
    PretrendsResult
        `slope`, `power`, `bayes_factor`, `likelihood_ratio` and `table` by event time.
    """
    _in_range("critical", critical, 0.0, np.inf)
    _finite("target_power", target_power)
    _finite("reference", reference)
    given = [x is not None for x in (beta, sigma, event_times)]
    if (result is not None and any(given)) or (result is None and not all(given)):
        raise DesignError(
            "pretrends takes an event study's result, or beta, sigma and event_times",
            where="arguments",
            fix="pass pe.event_study's result, or all three arrays (not both)",
        )
    if result is not None:
        if reference != -1:
            raise DesignError(
                f"a result is measured from event time −1, not {reference:g}",
                where="argument reference",
                fix="leave reference out with a result",
            )
        times, b, cov = _event_rows(result, "pretrends", "the pre-test has none", reference)
    else:
        times, b, cov = _published_event_study(beta, sigma, event_times, reference)
    lead = times < reference
    if not lead.any() or not testable(cov[np.ix_(lead, lead)]):
        raise DesignError(
            f"no lead before event time {reference:g} has a positive definite covariance, so "
            "there is no pre-test",
            where="argument result" if result is not None else "arguments sigma, event_times",
            fix="pass an event study with leads and an inference that gives them a covariance",
        )
    if delta is not None:
        delta = _array(delta, "delta", 1)
        if delta.shape != times.shape:
            raise DesignError(
                f"delta has {delta.size} values for {times.size} event times",
                where="argument delta",
                fix="give the hypothesised trend at every event time (the reference left out)",
            )
    size = 1.0 - pass_probability(np.zeros(lead.sum()), cov[np.ix_(lead, lead)], critical)
    if not size < target_power < 1.0:
        raise DesignError(
            f"target_power {target_power:g} is not between the pre-test's rejection rate "
            f"under parallel trends ({size:.3f}) and 1",
            where="argument target_power",
            fix=f"ask for a power above {size:.3f} and below 1 (0.5 and 0.8 are usual when "
            "the test rejects less than half the time without a trend), or test fewer leads",
        )
    return pretrends_power.pretrends(b, cov, times, reference, delta, target_power, critical)


def power(
    design: np.ndarray | list[int],
    effect: float,
    *,
    cell_size: float,
    tau2: float | None = None,
    sigma2: float | None = None,
    gamma2: float | None = None,
    decay: float = 1.0,
    icc: float | None = None,
    cac: float | None = None,
    treatment_var: float = 0.0,
    treatment_corr: float = 0.0,
    alpha: float = 0.05,
) -> float:
    """Analytic two-sided power of a cluster design's treatment effect (GLS on cluster-period
    means: Hussey & Hughes 2007; nested exchangeable and exponential decay, `power/analytic.py`).

    Parameters
    ----------
    design : array or list of int
        A clusters × periods matrix (1 intervention, 0 control, NaN not measured), or the
        number of clusters in each sequence of a standard stepped wedge ([6, 6, 6, 6]).
    effect : float
        The effect on the outcome's scale.
    cell_size : float
        Individuals per cluster-period.
    tau2, sigma2 : float, optional
        Cluster and individual variances (or give `icc`, with total variance 1).
    gamma2 : float, optional
        Cluster-period variance (nested exchangeable), with tau2 and sigma2 (default 0).
    decay : float, default 1
        Between-period correlation decay r (exponential decay; 1: none).
    icc : float, optional
        Within-period intra-cluster correlation, instead of tau2 and sigma2.
    cac : float, optional
        Cluster autocorrelation τ²/(τ² + γ²), with icc (default 1: no cluster-period
        variance). gamma2 with icc, or cac with tau2 and sigma2, is refused: it would be
        ignored.
    treatment_var, treatment_corr : float, default 0
        Variance of the clusters' own intervention effects (a random slope; swCRTdesign's
        eta²) and their correlation with the cluster intercept (its rho).
    alpha : float, default 0.05
        Two-sided significance level.

    Returns
    -------
    float
        The power (normal reference).
    """
    _finite("effect", effect)
    _in_range("alpha", alpha, 0.0, 1.0)
    model, where = _variance_model(
        tau2, sigma2, gamma2, decay, icc, cac, treatment_var, treatment_corr
    )
    return analytic.power(effect, _design_variance(design, model, cell_size, where), alpha)


def mdes(
    design: np.ndarray | list[int],
    *,
    cell_size: float,
    tau2: float | None = None,
    sigma2: float | None = None,
    gamma2: float | None = None,
    decay: float = 1.0,
    icc: float | None = None,
    cac: float | None = None,
    treatment_var: float = 0.0,
    treatment_corr: float = 0.0,
    target: float = 0.8,
    alpha: float = 0.05,
) -> float:
    """The smallest effect a cluster design detects with the `target` power.

    Parameters
    ----------
    design : array or list of int
        A clusters × periods matrix (1 intervention, 0 control, NaN not measured), or the
        number of clusters in each sequence of a standard stepped wedge.
    cell_size : float
        Individuals per cluster-period.
    tau2, sigma2, gamma2, decay, icc, cac, treatment_var, treatment_corr : float
        The variance model, as in `power`.
    target : float, default 0.8
        The power to reach.
    alpha : float, default 0.05
        Two-sided significance level.

    Returns
    -------
    float
        The minimum detectable effect on the outcome's scale (normal reference).
    """
    _in_range("alpha", alpha, 0.0, 1.0)
    _in_range("target", target, alpha, 1.0)
    model, where = _variance_model(
        tau2, sigma2, gamma2, decay, icc, cac, treatment_var, treatment_corr
    )
    return analytic.mdes(_design_variance(design, model, cell_size, where), target, alpha)


def clusters_needed(
    effect: float,
    sequences: int,
    *,
    cell_size: float,
    tau2: float | None = None,
    sigma2: float | None = None,
    gamma2: float | None = None,
    decay: float = 1.0,
    icc: float | None = None,
    cac: float | None = None,
    treatment_var: float = 0.0,
    treatment_corr: float = 0.0,
    target: float = 0.8,
    alpha: float = 0.05,
) -> int:
    """Clusters per sequence a standard stepped wedge needs for the `target` power.

    Parameters
    ----------
    effect : float
        The effect on the outcome's scale.
    sequences : int
        Sequences (steps) of the standard stepped wedge.
    cell_size : float
        Individuals per cluster-period.
    tau2, sigma2, gamma2, decay, icc, cac, treatment_var, treatment_corr : float
        The variance model, as in `power`.
    target : float, default 0.8
        The power to reach.
    alpha : float, default 0.05
        Two-sided significance level.

    Returns
    -------
    int
        Clusters per sequence; an EstimationError when 200 per sequence are not enough.
    """
    _finite("effect", effect)
    if effect == 0:
        raise DesignError(
            "no number of clusters detects an effect of 0",
            where="argument effect",
            fix="give the smallest effect worth detecting, on the outcome's scale",
        )
    _whole("sequences", sequences, 2)
    _in_range("alpha", alpha, 0.0, 1.0)
    _in_range("target", target, alpha, 1.0)
    model, where = _variance_model(
        tau2, sigma2, gamma2, decay, icc, cac, treatment_var, treatment_corr
    )
    # the smallest design checks the variances once (each larger one repeats its clusters)
    _design_variance([1] * int(sequences), model, cell_size, where)
    most = 200
    n = analytic.clusters_needed(target, effect, int(sequences), model, cell_size, alpha, most)
    if n == 0:  # it returned 0, which a caller reads as "none needed" (found in review)
        reached = analytic.power(
            effect,
            analytic.gls_precision(
                analytic.stepped_wedge([most] * int(sequences)), model, cell_size
            ).variance,
            alpha,
        )
        raise EstimationError(
            f"even {most} clusters per sequence reach only {reached:.1%} power for an effect of "
            f"{effect:g}, short of {target:.0%}",
            where="argument effect",
            fix="give a larger effect worth detecting, more sequences or more individuals per cell",
        )
    return n


def _finite(name: str, value: float) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float | np.number)
        or not (np.isfinite(value))
    ):
        raise DesignError(
            f"{name} {value!r} is not a finite number",
            where=f"argument {name}",
            fix=f"give {name} as a number",
        )


def _in_range(name: str, value: float, low: float, high: float, closed: bool = False) -> None:
    """value in (low, high), or [low, high] when `closed` (an infinite bound is never reached:
    [0, inf)); else a DesignError naming it."""
    if not isinstance(value, bool) and isinstance(value, int | float | np.number):
        inside = low <= value <= high if closed else low < value < high
        if inside and np.isfinite(value):
            return
    left, right = ("[", "]") if closed else ("(", ")")
    bounds = f"{left}{low:g}, {high:g}{right if np.isfinite(high) else ')'}"
    raise DesignError(
        f"{name} {value!r} is outside {bounds}",
        where=f"argument {name}",
        fix=f"give {name} within {bounds}",
    )


def _whole(name: str, value: Any, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
        raise DesignError(
            f"{name} {value!r} is not a whole number of {least} or more",
            where=f"argument {name}",
            fix=f"give {name} as a whole number of {least} or more",
        )


def _design_variance(design: Any, model: VarianceModel, cell_size: float, where: str) -> float:
    """Var(θ̂) of the design under the model, after the checks the CLI's `power` shares
    (`analytic.effect_variance`): a design that does not separate the effect from the periods
    is a DesignError on the design, variances too extreme to solve with one on `where` (the
    variance arguments given), never numpy's LinAlgError."""
    _finite("cell_size", cell_size)
    _in_range("cell_size", cell_size, 0.0, np.inf)
    return analytic.effect_variance(_design_matrix(design), model, cell_size, model_at=where)


def _variance_model(
    tau2: float | None,
    sigma2: float | None,
    gamma2: float | None,
    decay: float,
    icc: float | None,
    cac: float | None,
    treatment_var: float = 0.0,
    treatment_corr: float = 0.0,
) -> tuple[VarianceModel, str]:
    """The variance model from the arguments given, and where to point an error about it (the
    variance arguments given, with cell_size). Every argument is checked: finite, in range,
    and used (gamma2 with icc, or cac with tau2 and sigma2, would be silently ignored)."""
    given = {
        "tau2": tau2, "sigma2": sigma2, "gamma2": gamma2, "icc": icc, "cac": cac,
        "decay": decay, "treatment_var": treatment_var, "treatment_corr": treatment_corr,
    }  # fmt: skip
    for name, value in given.items():
        if value is not None:
            _finite(name, value)
    for name in ("tau2", "sigma2", "gamma2"):
        if given[name] is not None:
            _in_range(name, given[name], 0.0, np.inf, closed=True)
    if icc is not None:
        _in_range("icc", icc, 0.0, 1.0, closed=True)
        if icc == 1:
            raise DesignError(
                "icc 1 leaves no variance within clusters: every cluster-period mean is known",
                where="argument icc",
                fix="give icc below 1 (LA outcomes: about 0.01 to 0.2)",
            )
    elif sigma2 == 0 and not gamma2:
        raise DesignError(
            "sigma2 and gamma2 are both 0: no variance within clusters",
            where="argument sigma2",
            fix="give the individual variance sigma2 (or a cluster-period variance gamma2)",
        )
    if cac is not None:
        _in_range("cac", cac, 0.0, 1.0, closed=True)
    _in_range("decay", decay, 0.0, 1.0, closed=True)
    _in_range("treatment_var", treatment_var, 0.0, np.inf, closed=True)
    _in_range("treatment_corr", treatment_corr, -1.0, 1.0, closed=True)
    model = _base_model(tau2, sigma2, gamma2, decay, icc, cac)  # names its own argument
    try:
        model = replace(model, treatment_var=treatment_var, treatment_corr=treatment_corr)
    except ValueError as err:
        raise DesignError(
            str(err), where="argument treatment_var", fix="check treatment_var and treatment_corr"
        ) from None
    names = ["icc"] if icc is not None else ["tau2", "sigma2"]
    names += [n for n in ("gamma2", "cac") if given[n] is not None]
    names += [n for n in ("decay", "treatment_var") if given[n] != (1.0 if n == "decay" else 0.0)]
    return model, f"arguments {', '.join(names)}, cell_size"


# how the two ways of giving a variance model combine (the fix of every mix-up)
_COMBINATIONS = (
    "give the cluster-period variance with cac when you give icc, or gamma2 with tau2 and sigma2"
)


def _base_model(
    tau2: float | None,
    sigma2: float | None,
    gamma2: float | None,
    decay: float,
    icc: float | None,
    cac: float | None,
) -> VarianceModel:
    """icc (with cac) on total variance 1, or the variances tau2, sigma2 (with gamma2)."""
    if icc is not None:
        if tau2 is not None or sigma2 is not None:
            raise DesignError(
                "give either icc (and cac) or the variances tau2 and sigma2, not both",
                where="argument icc",
                fix="drop icc, or drop tau2 and sigma2",
            )
        if gamma2 is not None:
            raise DesignError(
                f"gamma2 {gamma2!r} is not used with icc (icc and cac set the cluster-period "
                "variance)",
                where="argument gamma2",
                fix=_COMBINATIONS,
            )
        return VarianceModel.from_icc(icc, 1.0 if cac is None else cac, decay=decay)
    if tau2 is None or sigma2 is None:
        raise DesignError(
            "the variance model needs tau2 and sigma2, or icc",
            where="argument tau2",
            fix="e.g. tau2=0.025**2, sigma2=0.04 (a 4% prevalence), or icc=0.05",
        )
    if cac is not None:
        raise DesignError(
            f"cac {cac!r} is not used with tau2 and sigma2 (gamma2 sets the cluster-period "
            "variance)",
            where="argument cac",
            fix=_COMBINATIONS,
        )
    return VarianceModel(tau2=tau2, sigma2=sigma2, gamma2=gamma2 or 0.0, decay=decay)


def _design_matrix(design: np.ndarray | list[int]) -> np.ndarray:
    """A clusters × periods matrix of 0, 1 or NaN, or a standard stepped wedge from whole
    numbers of clusters (1 or more) in each of 2 or more sequences."""
    wrong = DesignError(
        "design must be a clusters × periods matrix of 0, 1 (or NaN: not measured), or a list "
        "of the whole number of clusters in each of 2 or more sequences",
        where="argument design",
        fix="e.g. [6, 6, 6, 6] for four sequences of six clusters",
    )
    try:
        matrix = np.asarray(design, dtype=float)
    except (TypeError, ValueError):
        raise wrong from None
    if matrix.ndim == 1:
        if len(matrix) < 2 or not np.all((matrix >= 1) & (matrix == np.floor(matrix))):
            raise wrong
        return analytic.stepped_wedge([int(n) for n in matrix])
    cells = matrix[~np.isnan(matrix)]
    if matrix.ndim != 2 or not np.isin(cells, (0.0, 1.0)).all() or matrix.shape[0] < 2:
        raise wrong
    return matrix


def _checked_frame(data: Any, time_arg: str = "time", **columns: str | None) -> pd.DataFrame:
    """The frame with integral float periods as integers; a wrong type or a missing column
    is a DataError naming the argument (`time_arg`: the argument naming the periods' column,
    `time`, or `period` for the stepped-wedge functions)."""
    if not isinstance(data, pd.DataFrame):
        raise DataError(
            f"data must be a pandas DataFrame, not {type(data).__name__}",
            where="argument data",
            fix="pass a long DataFrame, one row per unit and period (pd.read_csv(...))",
        )
    for arg, col in columns.items():
        if col is not None and not isinstance(col, str):
            raise DataError(
                f"column names are text; {arg} is {col!r} ({type(col).__name__})",
                where=f"argument {arg}",
                fix="name the columns with text (data.columns = data.columns.astype(str)) "
                "and pass those names",
            )
        if col is not None and col not in data.columns:
            raise DataError(
                f"column {col!r} is not in the data",
                where=f"argument {arg}",
                fix=f"name one of: {', '.join(map(str, data.columns))}",
            )
        if col is not None and (data.columns == col).sum() > 1:  # pandas gave a frame, not a column
            raise DataError(
                f"the data have {(data.columns == col).sum()} columns named {col!r}",
                where=f"argument {arg}",
                fix="rename or drop the repeated columns",
            )
    for arg in (time_arg, "first_treated", "start"):
        col = columns.get(arg)
        if col is not None and _holds_dates(data[col]):  # read as nanoseconds, or a label
            raise DataError(
                f"column {col!r} holds dates; periods here are whole numbers",
                where=f"argument {arg}",
                fix=f"pass a year (data[{col!r}].dt.year) or a period index, in the time "
                "column and the start column alike",
            )
    frame = data.reset_index(drop=True)
    t = columns.get(time_arg)
    values = frame[t] if t is not None else None
    if values is not None and not pd.api.types.is_numeric_dtype(values):
        text = values.dropna()
        bad = text[pd.to_numeric(text, errors="coerce").isna()]
        if len(bad):  # it was blamed on first_treated ('after the data's last period (nan)')
            raise DataError(
                f"{time_arg} {bad.iloc[0]!r} is not a period number",
                where=f"argument {time_arg} (column {t!r})",
                row=int(bad.index[0]) + 1,
                fix="give periods as whole numbers: a year (2016 for '2015-16', the year it "
                "ends) or a period index",
            )
    if (
        values is not None
        and pd.api.types.is_float_dtype(values)
        and bool(np.all(np.isnan(values) | (np.mod(values, 1) == 0)))
    ):
        frame = frame.assign(**{t: values.astype("Int64")})
    return frame


def _holds_dates(values: pd.Series) -> bool:
    """A column of dates or periods: datetime64 or pandas Period dtypes, or Python dates."""
    if pd.api.types.is_datetime64_any_dtype(values) or isinstance(values.dtype, pd.PeriodDtype):
        return True
    first = values.dropna()
    return values.dtype == object and len(first) > 0 and isinstance(first.iloc[0], dt.date)


def _starts(
    frame: pd.DataFrame,
    unit: str,
    time: str,
    first_treated: str | None,
    treatment: str | None,
    arg: str,
    switching: bool = False,
) -> dict[int, list[str]]:
    """First treated period → units, from a first-treated column `arg` (0, NaN or inf: never
    treated, as R did) or a 0/1 treatment column (its first 1; with `switching`, for
    estimators of treatments that may stop or change level, a column of levels of 0 or more
    and the first period in which it differs from the unit's first period's, so a unit
    treated from the start is a switcher when it stops; there a missing value is a treatment
    not known in that period)."""
    if (first_treated is None) == (treatment is None):
        raise DataError(
            f"give exactly one of {arg} and treatment",
            where=f"argument {arg}",
            fix=f"{arg}='g' (a column with each unit's first treated period, 0 or "
            "missing if never) or treatment='d' (0/1 by unit and period)",
        )
    if treatment is not None:
        ids = id_text(frame[unit])  # as the loader reads them: 0.0 is unit '0'
        d = numbers(frame[treatment])
        bad = (~(d >= 0) & frame[treatment].notna()) if switching else ~d.isin([0, 1])
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(
                f"treatment value {cell(frame[treatment].iloc[row])} is "
                + ("not a number of 0 or more" if switching else "not 0 or 1"),
                where=f"argument treatment (column {treatment})",
                row=row + 1,
                fix="code the treatment column 0 (not treated) or its level (above 0), or "
                "leave it empty where it is not known"
                if switching
                else "code the treatment column 0 (not yet treated) or 1 (treated)",
            )
        when = pd.to_numeric(frame[time], errors="coerce")
        if switching:  # treatment differs from the unit's value in its first known period
            codes = pd.factorize(ids)[0]
            known = d.notna().to_numpy()
            order = np.lexsort((when.to_numpy(), codes))
            order = order[known[order]]
            head = order[np.r_[True, np.diff(codes[order]) != 0]]
            baseline = np.full(codes.max() + 1, np.nan)
            baseline[codes[head]] = d.to_numpy()[head]
            on = d.notna() & (d != baseline[codes])
        else:
            if arg == "start":  # records: the loader sees no treatment column to check
                _absorbing(ids, when, d, treatment)
            on = d == 1
        first = when[on].groupby(ids[on]).min()
        return _group(first, "treatment")
    codes, labels = id_codes(frame[unit])  # as the loader reads them: 0.0 is unit '0'
    g = pd.to_numeric(frame[first_treated], errors="coerce")
    text = g.isna() & frame[first_treated].notna()
    if text.any():  # text read as "never treated" would move a treated unit to the comparisons
        row = int(np.flatnonzero(text.to_numpy())[0])
        raise DataError(
            f"first treated period {cell(frame[first_treated].iloc[row])} of unit "
            f"{labels[codes[row]] if codes[row] >= 0 else '(missing)'} is not a number",
            where=f"argument {arg} (column {first_treated})",
            row=row + 1,
            fix="give the first treated period as a number on the time column's scale, and 0 "
            "or an empty cell for units never treated",
        )
    values = g.to_numpy(float)
    seen = np.flatnonzero(codes >= 0)
    at_first = np.zeros(len(labels), dtype=np.int64)  # each unit's first row
    at_first[codes[seen[::-1]]] = seen[::-1]
    head = values[at_first]
    differs = np.zeros(len(values), dtype=bool)
    differs[seen] = ~(
        (values[seen] == head[codes[seen]]) | (np.isnan(values[seen]) & np.isnan(head[codes[seen]]))
    )
    if differs.any():  # the first unit (in order) with two values, at its first differing row
        u = min(str(labels[c]) for c in np.unique(codes[differs]))
        mine = differs & (codes == labels.get_loc(u))
        row = int(np.flatnonzero(mine)[0])
        here, first_value = (
            "empty" if np.isnan(v) else f"{v:g}" for v in (values[row], head[labels.get_loc(u)])
        )
        raise DataError(
            f"unit {u} has more than one first-treated period ({first_value} on its first row, "
            f"{here} here)",
            where=f"argument {arg} (column {first_treated})",
            row=row + 1,
            fix="give each unit one first-treated period on all its rows",
        )
    first = pd.Series(head, index=labels).sort_index()
    return _group(first[first.notna() & (first != 0) & np.isfinite(first)], arg)


def _absorbing(ids: pd.Series, when: pd.Series, d: pd.Series, column: str) -> None:
    """A 0/1 treatment must be one value per unit and period and never stop once started
    (records carry it on every row of a cluster-period)."""
    cells = pd.DataFrame({"unit": ids, "period": when, "d": d, "row": np.arange(len(d)) + 1})
    span = cells.groupby(["unit", "period"], sort=True)["d"].agg(["min", "max", "size"])
    mixed = span["min"] != span["max"]
    if mixed.any():
        u, t = span.index[mixed.to_numpy()][0]
        raise DataError(
            f"treatment is both 0 and 1 in unit {u}, period {t:g}",
            where=f"argument treatment (column {column})",
            fix="give each unit (cluster) one treatment value per period",
        )
    stops = span["max"].groupby(level=0).diff() < 0
    if stops.any():
        u, t = span.index[stops.to_numpy()][0]
        row = int(cells.loc[(cells["unit"] == u) & (cells["period"] == t), "row"].iloc[0])
        raise DataError(
            f"treatment switches off for unit {u} at period {t:g}",
            where=f"argument treatment (column {column})",
            row=row,
            fix="treatment must not reverse once started (staggered adoption): check the "
            "column, or analyse a treatment that pauses or stops with did_multiplegt_dyn",
        )


def _numbers(frame: pd.DataFrame, column: str, arg: str) -> None:
    """A column read as numbers holds numbers (or empty cells), else a DataError naming the
    argument and row."""
    check_numbers(frame, column, arg, ARGUMENTS)


def _require(frame: pd.DataFrame, column: str) -> None:
    if column not in frame.columns:
        raise DataError(
            f"column {column!r} is not in the data",
            where=f"column {column}",
            fix=f"name one of: {', '.join(map(str, frame.columns))}",
        )


def _group(first: pd.Series, arg: str) -> dict[int, list[str]]:
    if first.empty:
        raise DataError(
            "no unit is ever treated",
            where=f"argument {arg}",
            fix="check the first-treated or treatment column",
        )
    values = first.to_numpy(float)
    whole = values == np.floor(values)
    if not whole.all():
        j = int(np.flatnonzero(~whole)[0])
        raise DataError(
            f"first treated period {cell(values[j])} of unit {first.index[j]} is not a whole "
            "period",
            where=f"argument {arg}",
            fix="use the integer period labels of the time column",
        )
    units = first.index.astype(str).tolist()
    out: dict[int, list[str]] = {}
    for start in np.unique(values):
        out[int(start)] = [units[j] for j in np.flatnonzero(values == start)]
    return out


def _mapping_example(methods: frozenset[str]) -> str:
    """An `inference` mapping these methods accept: one with draws where a method takes them
    (the docstrings showed cluster_bootstrap, which only did_multiplegt_dyn has)."""
    drawn = ("wild_bootstrap", "multiplier_bootstrap", "cluster_bootstrap", "randomisation")
    method = next((m for m in drawn if m in methods), None)
    if method is not None:
        return f'{{"method": "{method}", "draws": 999}}'
    named = next(m for m in ("cr2", "cluster_robust", "model_based", "default") if m in methods)
    return f'{{"method": "{named}"}}'


_TAIL = """inference : str or mapping, default "default"
    The design file's `inference.method`: one of {methods}.
    Or its whole `inference` block as a mapping (method, draws, cluster, weights),
    e.g. {example}.
level : float, default 0.95
    Confidence level of the intervals.
seed : int, default 0
    Seed of any random draws (bootstrap, placebo, randomisation)."""

_PANEL = """data : pandas.DataFrame
    Long data, one row per unit and period.
outcome : str
    The outcome column.
unit : str
    The unit (LA or cluster) identifier column.
time : str
    The period column (integers, e.g. years). Event times are differences of these labels:
    event_study, sun_abraham and stacked need periods one apart (years, or 1, 2, 3, …).
first_treated : str, optional
    Column with each unit's first treated period (0 or missing: never treated).
treatment : str, optional
    A 0/1 treatment column instead of `first_treated` (its first 1 is the start; for
    did_multiplegt_dyn it may also stop, pause, change level or be empty where unknown).
region : str, optional
    Each unit's region, for the regional dependence the default inference measures.
{cluster}dose : str, optional
    Each treated unit's dose (one value per unit: funding per child, team coverage), which
    continuous_did needs.
counts, population : str, optional
    Count and population columns: the outcome is then the rate per 10,000 recomputed from
    them, and Poisson fits (`family="poisson"`) use the counts. `population` alone keeps the
    outcome column as given and reads each unit's size from it: the default pooled variance
    then scales each LA's noise by its size (without sizes it treats every LA as equally
    noisy: with the treated LA one of the 20 smallest of 150, synthetic DiD and TWFE
    rejected 15.5% and 17.0% of true nulls at 5%, and 6.5% with the population).
minus : str, optional
    The same measure for a group the reform does not target, in the same unit and period:
    the estimator then runs on `outcome` minus `minus`, a triple difference.
"""

_CLUSTER = """cluster : str, optional
    A column constant within each unit (e.g. its state or region) to cluster the variance by
    instead of the unit, as the authors' `cluster` option.
"""

_RECORDS = """data : pandas.DataFrame
    Individual records, one row per person and period (summarised exactly per
    cluster-period).
outcome : str
    The outcome column (numeric; 0/1 for binary outcomes).
cluster : str
    The cluster identifier column.
period : str
    The period column (integers 1, 2, ...).
start : str, optional
    Column with each cluster's first intervention period.
treatment : str, optional
    A 0/1 intervention column instead of `start` (its first 1 is the start).
covariates : tuple of str, default ()
    Individual-level numeric adjustment columns (the LMM's records path).
individual : str, optional
    A person id for closed cohorts (a person random intercept in the LMM).
"""


def _make(estimator: str, body: Callable[..., EffectEstimates]) -> Callable[..., EffectEstimates]:
    """A documented function for `estimator` whose keyword options are its options model's
    fields (same names, types, defaults and descriptions as the design file's `options`)."""
    model = OPTIONS[estimator]

    def fn(data: pd.DataFrame, **kwargs: Any) -> EffectEstimates:
        return body(estimator, data, **kwargs)

    base = inspect.signature(body).parameters
    hidden = {"estimator", "options"}
    if body is fit_frame and not model.clusters_above_unit:
        hidden.add("cluster")  # (fit_records' cluster is the cluster column itself)
    params = [p for name, p in base.items() if name not in hidden]
    lines = []
    for name in model.option_names():
        info = model.model_fields[name]
        ann = _type_name(info.annotation)
        params.append(
            inspect.Parameter(
                name, inspect.Parameter.KEYWORD_ONLY, default=info.default, annotation=ann
            )
        )
        meaning = " ".join((info.description or "").split())
        lines.append(f"{name} : {ann}, default {info.default!r}\n    {meaning}")
    fn.__signature__ = inspect.Signature(params, return_annotation="EffectEstimates")
    fn.__name__ = fn.__qualname__ = estimator
    fn.__module__ = "pathfinder_eval"
    head = (
        _RECORDS
        if body is fit_records
        else _PANEL.replace("{cluster}", _CLUSTER if model.clusters_above_unit else "")
    )
    fn.__doc__ = (
        f"{entry(estimator).label}, fitted on a data frame.\n\n"
        f"The same estimator as `estimator: {estimator}` in a design file. "
        f"{inspect.cleandoc(model.__doc__ or '')}\n\n"
        "Parameters\n----------\n"
        + head
        + _TAIL.format(
            methods=", ".join(sorted(model.inference_methods)),
            example=_mapping_example(model.inference_methods),
        )
        + ("\n" + "\n".join(lines) if lines else "")
        + _RETURNS
    )
    return fn


_RETURNS = """

Returns
-------
EffectEstimates
    `.summary()`, `.to_frame()`, `.plot()`, `.inference` (what was used and why),
    `.diagnostics`.
"""


def _generic_doc(summary: str, names: tuple[str, ...], head: str) -> str:
    """The docstring of fit_frame or fit_records: the per-estimator functions' parameters with
    the estimator's name in front and its options as keywords."""
    return (
        f"{summary}\n\nParameters\n----------\n"
        "estimator : str\n"
        + textwrap.fill(
            ", ".join(names) + ".",
            88,
            initial_indent="    A design-file estimator name: ",
            subsequent_indent="    ",
        )
        + "\n"
        + head
        + _TAIL.format(
            methods="the estimator's own (see its function)",
            example=_mapping_example(entry("twfe").cls.inference_methods) + " for twfe",
        )
        + "\n**options\n    The estimator's options, as the design file's `options` (see its "
        "function\n    for names, types and defaults)." + _RETURNS
    )


def _type_name(annotation: Any) -> str:
    """'bool', "Literal['dr', 'ipw', 'reg']", 'int | None' ... as a reader would write it
    (validation metadata left out)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is typing.Literal:
        return f"Literal[{', '.join(map(repr, args))}]"
    if origin is not None:
        inner = ", ".join("..." if a is Ellipsis else _type_name(a) for a in args)
        return f"{origin.__name__}[{inner}]"
    return "None" if annotation is type(None) else getattr(annotation, "__name__", str(annotation))


DID = (
    "twfe",
    "event_study",
    "callaway_santanna",
    "sun_abraham",
    "imputation",
    "etwfe",
    "two_stage",
    "stacked",
    "did_multiplegt_dyn",
    "continuous_did",
    "bacon",
)
SYNTHETIC = ("synthetic_control", "synthetic_did")
STEPPED_WEDGE = ("stepped_wedge", "stepped_wedge_gee", "stepped_wedge_glmm")

twfe = _make("twfe", fit_frame)
event_study = _make("event_study", fit_frame)
callaway_santanna = _make("callaway_santanna", fit_frame)
sun_abraham = _make("sun_abraham", fit_frame)
imputation = _make("imputation", fit_frame)
etwfe = _make("etwfe", fit_frame)
two_stage = _make("two_stage", fit_frame)
stacked = _make("stacked", fit_frame)
did_multiplegt_dyn = _make("did_multiplegt_dyn", fit_frame)
continuous_did = _make("continuous_did", fit_frame)
bacon = _make("bacon", fit_frame)
synthetic_control = _make("synthetic_control", fit_frame)
synthetic_did = _make("synthetic_did", fit_frame)
stepped_wedge = _make("stepped_wedge", fit_records)
stepped_wedge_gee = _make("stepped_wedge_gee", fit_records)
stepped_wedge_glmm = _make("stepped_wedge_glmm", fit_records)

fit_frame.__doc__ = _generic_doc(
    inspect.cleandoc(fit_frame.__doc__ or ""),
    DID + SYNTHETIC,
    _PANEL.replace("{cluster}", _CLUSTER),
)
fit_records.__doc__ = _generic_doc(
    inspect.cleandoc(fit_records.__doc__ or ""), STEPPED_WEDGE, _RECORDS
)

__all__ = [
    *DID,
    *SYNTHETIC,
    *STEPPED_WEDGE,
    "clusters_needed",
    "did_2x2",
    "evaluate",
    "fit_frame",
    "fit_records",
    "honest_did",
    "mdes",
    "power",
    "report",
]
