"""The registrable analysis plan: the design's decisions, their hash, and deviations from them.

`decisions(spec)` is everything a statistical analysis plan commits to (units and rollout,
comparison pool, window, outcomes, analyses with their inference and options (resolved,
defaults included, since schema 4), the primary
analysis, the data read and how, disclosure control, seed), as plain JSON. The plan file's
`sha256` is the hash of the whole file as canonical JSON (since schema 2; schema 1 hashed
the decisions only). A report run with `--plan` compares the design it ran, with the seed it used,
and its data before the first start, with the registered plan (`check_against`).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ValidationError

from pathfinder_eval.errors import DesignError
from pathfinder_eval.settings import OPTIONS
from pathfinder_eval.spec import (
    Analysis,
    Comparison,
    Contrast,
    DataSpec,
    DesignSpec,
    Disclosure,
    Group,
    Outcome,
    TimeSpec,
    Wave,
)
from pathfinder_eval.timeaxis import TimeAxis

PLAN_KIND = "statistical_analysis_plan"
# 2: the hash covers the whole file; decisions name the primary analysis and the data settings,
# and the file records the first withheld period and each outcome's pre-start hash; 3: those
# hashes by outcome and period (a schema-2 plan is read, its data not compared); 4: each
# analysis's options resolved, defaults included, so a default that changes between versions
# is a deviation (schema 1-3 plans hold the options as written and are compared so)
PLAN_SCHEMA = 4
_COMPARISON_RESOLVED = {"neighbour_sets", "neighbour_source"}  # read from data, not decided


@dataclass(frozen=True)
class Deviation:
    """One difference between the registered plan and the analysis run."""

    kind: str  # e.g. "outcome dropped", "inference changed"
    what: str  # the sentence the report prints

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "what": self.what}


@dataclass(frozen=True)
class PlanCheck:
    """A run checked against a registered plan: its hash, file and deviations."""

    sha256: str
    file: str
    deviations: tuple[Deviation, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "file": self.file,
            "followed": not self.deviations,
            "deviations": [d.to_dict() for d in self.deviations],
        }


def decisions(spec: DesignSpec, resolved: bool = True) -> dict[str, Any]:
    """What the plan commits to, as plain JSON values (outcomes and analyses keyed by id);
    each analysis's options `resolved` (every option the estimator reads, defaults included:
    schema 4) or as the design writes them (schemas 1-3)."""
    comparison = spec.comparison.model_dump(mode="json", exclude=_COMPARISON_RESOLVED)
    contrasts = {c.id: c.model_dump(mode="json") for c in spec.contrasts}
    return {
        "design": spec.name,
        "pilot": spec.pilot.value,
        "unit_level": spec.unit_level.value,
        "time": spec.time.model_dump(mode="json"),
        "rollout": [w.model_dump(mode="json") for w in spec.rollout],
        "groups": {k: g.model_dump(mode="json") for k, g in sorted(spec.groups.items())},
        "comparison": comparison,
        "outcomes": {o.id: o.model_dump(mode="json") for o in spec.outcomes},
        # only when used, so plans registered before contrasts existed keep their hash
        **({"contrasts": contrasts} if contrasts else {}),
        "analyses": {a.id: _analysis(a, resolved) for a in spec.analyses},
        # the analyses are keyed by id, so design order (which makes the first the primary
        # when none is marked) is not in them: the primary is named
        "primary": spec.primary_analysis.id,
        # the data's source, columns (covariates, individual, treatment, dose, region, unit
        # columns) and simulation settings; not its path, which moves with the files
        "data": spec.data.model_dump(mode="json", exclude={"path"}),
        "disclosure": spec.report.disclosure.model_dump(mode="json"),
        "seed": spec.seed,
    }


def _analysis(analysis: Analysis, resolved: bool) -> dict[str, Any]:
    """An analysis as JSON, its options resolved by the estimator's options model or as
    written."""
    out = analysis.model_dump(mode="json")
    if resolved:
        model = OPTIONS[analysis.estimator.value](**analysis.options, inference=analysis.inference)
        dumped = model.model_dump(mode="json", exclude={"inference", "seed"})
        # JSON has no infinity (an event-time bound's default): written as text
        out["options"] = {
            k: repr(v) if isinstance(v, float) and not math.isfinite(v) else v
            for k, v in dumped.items()
        }
    return out


def plan_hash(planned: dict[str, Any]) -> str:
    """sha256 of a JSON value as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(planned, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def document_hash(doc: dict[str, Any]) -> str:
    """A plan file's sha256: every key but `sha256` itself (schema 1: the decisions only)."""
    if doc.get("schema_version", 1) < 2:
        return plan_hash(doc["decisions"])
    return plan_hash({k: v for k, v in doc.items() if k != "sha256"})


def cells_sha256(cells: pd.DataFrame) -> str:
    """sha256 of a panel's cells (unit, period, outcome, counts, value), in a fixed order,
    numbers to 10 significant digits: the plan's record of the pre-start data, and the run's
    check of them (records summarised in other partitions, as on a Dask cluster, give means
    that differ in the last bits)."""
    cells = cells[["unit", "period", "outcome", "numerator", "denominator", "y"]]
    ordered = cells.sort_values(["outcome", "unit", "period"])
    text = ordered.to_csv(index=False, float_format="%.10g")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_plan(path: Path) -> dict[str, Any]:
    """A plan JSON written by `pathfinder-eval plan`; DesignError when it is not one, when its
    contents no longer match its hash (the file was edited after it was written), or when its
    decisions are not the shape `plan` writes."""
    fix = "pass the NAME_plan.json that `pathfinder-eval plan` wrote"
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: bad JSON, huge numbers
        raise DesignError(
            f"cannot read the analysis plan ({exc})", file=str(path), where="--plan", fix=fix
        ) from None
    if not isinstance(doc, dict) or doc.get("kind") != PLAN_KIND or "decisions" not in doc:
        raise DesignError(
            "not an analysis plan written by pathfinder-eval",
            file=str(path),
            where="--plan",
            fix=fix,
        )
    version = doc.get("schema_version", 1)
    if type(version) is not int or not 1 <= version <= PLAN_SCHEMA:
        raise DesignError(
            f"schema_version {version!r} is not one this version reads (1 to {PLAN_SCHEMA})",
            file=str(path),
            where="schema_version",
            fix=fix,
        )
    if document_hash(doc) != doc.get("sha256"):
        covered = "decisions" if version < 2 else "contents"
        raise DesignError(
            f"the plan's {covered} do not match its sha256: the file was changed after it was "
            "written",
            file=str(path),
            where="sha256",
            fix="use the plan file exactly as registered. The check finds edits that leave the "
            "hash as it was; it is the sha256 lodged with a registry (the trial registration, "
            "OSF) that shows the file is the one registered",
        )
    _check_shape(doc, str(path))
    return doc


# each decision as the design model that wrote it; its JSON must validate as that model again
_MODELS: dict[str, type[BaseModel]] = {
    "time": TimeSpec,
    "comparison": Comparison,
    "disclosure": Disclosure,
}
_KEYED: dict[str, type[BaseModel]] = {
    "groups": Group,
    "outcomes": Outcome,
    "contrasts": Contrast,
    "analyses": Analysis,
}


def _check_shape(doc: dict[str, Any], file: str) -> None:
    """DesignError naming the first decision that is missing or is not what `plan` writes:
    every decision validates as the design model it was dumped from (a hand-made plan with a
    matching hash crashed after the whole run, or ran and listed nonsense)."""
    bad = next(_misshapen(doc), None)
    if bad is not None:
        raise DesignError(
            "not what `pathfinder-eval plan` writes here",
            file=file,
            where=bad,
            fix="pass the NAME_plan.json that `pathfinder-eval plan` wrote, unedited",
        )


def _misshapen(doc: dict[str, Any]) -> Iterator[str]:
    planned = doc["decisions"]
    if not isinstance(planned, dict):
        yield "decisions"
        return
    later = doc.get("schema_version", 1) >= 2
    for key in ("design", "pilot", "unit_level") + (("primary",) if later else ()):
        if not isinstance(planned.get(key), str):
            yield f"decisions.{key}"
    if type(planned.get("seed")) is not int or planned["seed"] < 0:
        yield "decisions.seed"
    checks: list[tuple[str, type[BaseModel], Any]] = [
        (f"decisions.{k}", model, planned.get(k)) for k, model in _MODELS.items()
    ]
    rollout = planned.get("rollout")
    if not isinstance(rollout, list) or not rollout:
        yield "decisions.rollout"
    else:
        checks += [(f"decisions.rollout.{i}", Wave, w) for i, w in enumerate(rollout)]
    for key, model in _KEYED.items():
        entries = planned.get(key, {} if key in ("groups", "contrasts") else None)
        if not isinstance(entries, dict):
            yield f"decisions.{key}"
            continue
        checks += [(f"decisions.{key}.{k}", model, v) for k, v in entries.items()]
    if later:
        data = planned.get("data")
        checks.append(("decisions.data", DataSpec, data))
    for where, model, value in checks:
        if not _validates(model, value):
            yield where
    if later:
        yield from _misshapen_data(doc.get("data"), doc["schema_version"])


def _validates(model: type[BaseModel], value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    try:
        model.model_validate(value)
    except (ValidationError, ValueError, TypeError):
        return False
    return True


def _misshapen_data(data: Any, version: int) -> Iterator[str]:
    """The plan's record of its pre-start data: the first withheld period and the hashes."""
    if not isinstance(data, dict) or not isinstance(data.get("withheld_from"), str):
        yield "data"
        return
    first = data.get("withheld_from_period")
    if type(first) is not int or abs(first) > 10**6:
        yield "data.withheld_from_period"
    hashes = data.get("pre_start_sha256_by_outcome")
    ok = isinstance(hashes, dict) and all(
        isinstance(by_period, dict)
        and all(isinstance(v, str) and _whole(k) for k, v in by_period.items())
        for by_period in hashes.values()
    )
    if version >= 3 and not ok:  # schema 2's are not compared
        yield "data.pre_start_sha256_by_outcome"


def _whole(text: str) -> bool:
    return text.lstrip("-").isdigit() and len(text) < 12


def check_against(
    plan: dict[str, Any], spec: DesignSpec, file: str, seed: int, cells: pd.DataFrame
) -> PlanCheck:
    """The registered plan beside the design now run with the seed it used (`run --seed`
    overrides the design's), and the run's panel cells (unit, period, outcome, counts, value)
    before the plan's first withheld period beside the plan's hashes of its own."""
    version = plan.get("schema_version", 1)
    now = decisions(spec.model_copy(update={"seed": seed}), resolved=version >= 4)
    found = deviations(plan["decisions"], now)
    if version >= 3:
        pre_start = cells[cells["period"] < plan["data"]["withheld_from_period"]]
        windows = (plan["decisions"]["time"], spec.time.model_dump(mode="json"))
        found += _data_changed(plan["data"], pre_start, _within(windows), spec)
    return PlanCheck(plan["sha256"], file, tuple(found))


def _within(windows: tuple[dict[str, Any], ...]) -> Callable[[int], bool]:
    """Whether a period lies in every one of the analysis windows (`first`, `last`: None
    open) the plan and the run name."""
    firsts = [w["first"] for w in windows if w.get("first") is not None]
    lasts = [w["last"] for w in windows if w.get("last") is not None]
    return lambda period: all(period >= f for f in firsts) and all(period <= t for t in lasts)


def outcome_hashes(cells: pd.DataFrame) -> dict[str, dict[str, str]]:
    """`cells_sha256` of each outcome's cells in each period: an outcome added or dropped,
    or a period the window no longer covers, leaves the others' as they were."""
    return {
        str(outcome): {str(period): cells_sha256(g) for period, g in part.groupby("period")}
        for outcome, part in cells.groupby("outcome", sort=True)
    }


def _data_changed(
    recorded: dict[str, Any],
    pre_start: pd.DataFrame,
    in_window: Callable[[int], bool],
    spec: DesignSpec,
) -> list[Deviation]:
    """A deviation naming the outcomes, planned and still analysed, whose pre-start cells
    differ from those the plan was written on in a period both analysis windows cover
    (`in_window`): changed, gone (a year missing from the files) or added. A narrower or
    wider window is a change of window, not of data."""
    now = outcome_hashes(pre_start)
    analysed = {o.id for o in spec.outcomes}

    def windowed(by_period: dict[str, str]) -> dict[str, str]:
        return {p: sha for p, sha in by_period.items() if in_window(int(p))}

    changed = [
        outcome
        for outcome, by_period in recorded["pre_start_sha256_by_outcome"].items()
        if outcome in analysed and windowed(by_period) != windowed(now.get(outcome, {}))
    ]
    if not changed:
        return []
    first = str(recorded["withheld_from"])
    first = f"period {first}" if spec.time.axis is TimeAxis.PERIOD else first
    return [
        Deviation(
            "data changed",
            f"the data before {first} differ from those the plan was written on for "
            f"{', '.join(changed)}: other or revised files, other exclusions, or simulated "
            "data drawn with another seed",
        )
    ]


def deviations(planned: dict[str, Any], now: dict[str, Any]) -> list[Deviation]:
    """Every difference, in plain words: outcomes, triple-difference contrasts and analyses
    added, dropped or changed (the primary analysis, inference and options named as such),
    and changes to the design, rollout, comparison pool, window, data settings, disclosure
    control and seed. The order of waves, of units in a wave and of a group's members is not a
    change."""
    out: list[Deviation] = []
    out += _keyed(planned["outcomes"], now["outcomes"], "outcome")
    out += _keyed(planned.get("contrasts", {}), now.get("contrasts", {}), "contrast")
    was, is_ = (
        (planned["primary"], now["primary"])
        if "primary" in planned  # schema 1 named only a primary: true flag
        else (_primary(planned["analyses"]), _primary(now["analyses"]))
    )
    if was != is_:
        out.append(
            Deviation(
                "primary analysis changed",
                f"primary analysis changed from {was or 'none'} to {is_ or 'none'}",
            )
        )
    out += _keyed(
        {k: _sorted_in(a, "outcomes") for k, a in planned["analyses"].items()},
        {k: _sorted_in(a, "outcomes") for k, a in now["analyses"].items()},
        "analysis",
        skip={"primary"},
    )
    labels = {
        "design": "design name",
        "pilot": "pilot",
        "unit_level": "unit level",
        "time": "analysis window",
        "rollout": "rollout",
        "groups": "groups of LAs",
        "comparison": "comparison pool",
        "data": "data settings",
        "disclosure": "disclosure control",
        "seed": "seed",
    }
    for key, label in labels.items():
        if key == "data" and key not in planned:  # schema 1 did not record them
            continue
        for path, a, b in _leaves(_unordered(key, planned.get(key)), _unordered(key, now.get(key))):
            where = f" ({path})" if path else ""
            out.append(
                Deviation(f"{label} changed", f"{label}{where} changed from {_v(a)} to {_v(b)}")
            )
    return out


def _unordered(key: str, value: Any) -> Any:
    """Decisions whose order decides nothing in a fixed form: the rollout keyed by wave name
    (so a changed start names its wave, and a renamed wave is one wave dropped and one
    added), units, members, exclusions, closeness bands, an analysis's outcomes and the
    covariates sorted."""
    if key == "rollout" and isinstance(value, list) and all(isinstance(w, dict) for w in value):
        waves = {str(w.get("wave")): w for w in value}
        if len(waves) == len(value):
            return {
                name: _sorted_in({k: v for k, v in w.items() if k != "wave"}, "units")
                for name, w in waves.items()
            }
    if key == "groups" and isinstance(value, dict):
        return {k: _sorted_in(g, "members") for k, g in value.items()}
    if key == "comparison":
        return _sorted_in(_sorted_in(_sorted_in(value, "units"), "exclude"), "closeness")
    if key == "data" and isinstance(value, dict):
        columns = _sorted_in(_sorted_in(value.get("columns"), "covariates"), "unit_columns")
        return {**value, "columns": columns} if "columns" in value else value
    return value


def _sorted_in(entry: Any, field: str) -> Any:
    if not isinstance(entry, dict) or not isinstance(entry.get(field), list):
        return entry
    return {**entry, field: sorted(entry[field], key=str)}


def _primary(analyses: dict[str, Any]) -> str | None:
    return next((k for k, a in analyses.items() if a.get("primary")), None)


def _keyed(
    planned: dict[str, Any], now: dict[str, Any], noun: str, skip: frozenset | set = frozenset()
) -> list[Deviation]:
    out = [Deviation(f"{noun} dropped", f"{noun} {k} dropped") for k in planned if k not in now]
    out += [Deviation(f"{noun} added", f"{noun} {k} added") for k in now if k not in planned]
    for key in planned:
        if key not in now:
            continue
        for path, a, b in _leaves(planned[key], now[key]):
            if path.split(".")[0] in skip:
                continue
            field = path.split(".")[0]
            kind = "inference changed" if field == "inference" else f"{noun} changed"
            out.append(Deviation(kind, f"{noun} {key}: {path} changed from {_v(a)} to {_v(b)}"))
    return out


def _leaves(a: Any, b: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """(dotted path, planned, now) for every differing leaf of two JSON values."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b), key=str):
            sub = f"{path}.{key}" if path else str(key)
            out += _leaves(a.get(key), b.get(key), sub)
        return out
    return [] if a == b else [(path, a, b)]


def _v(value: Any) -> str:
    """A planned or current value as the report prints it."""
    if value is None:
        return "(not set)"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)
