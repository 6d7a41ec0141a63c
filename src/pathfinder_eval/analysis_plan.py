"""The registrable analysis plan: the design's decisions, their hash, and deviations from them.

`decisions(spec)` is everything a statistical analysis plan commits to (units and rollout,
comparison pool, window, outcomes, analyses with their inference and options, disclosure
control, seed), as canonical JSON; `plan_hash` is its sha256. A report run with `--plan`
compares the design it ran with the registered decisions (`deviations`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pathfinder_eval.errors import DesignError
from pathfinder_eval.spec import DesignSpec

PLAN_KIND = "statistical_analysis_plan"
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


def decisions(spec: DesignSpec) -> dict[str, Any]:
    """What the plan commits to, as plain JSON values (outcomes and analyses keyed by id)."""
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
        "analyses": {a.id: a.model_dump(mode="json") for a in spec.analyses},
        "disclosure": spec.report.disclosure.model_dump(mode="json"),
        "seed": spec.seed,
    }


def plan_hash(planned: dict[str, Any]) -> str:
    """sha256 of the decisions as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(planned, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_plan(path: Path) -> dict[str, Any]:
    """A plan JSON written by `pathfinder-eval plan`; DesignError when it is not one, or when
    its decisions no longer match its hash (the file was edited after registration)."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DesignError(
            f"cannot read the analysis plan ({exc})",
            file=str(path),
            where="--plan",
            fix="pass the NAME_plan.json that `pathfinder-eval plan` wrote",
        ) from None
    if not isinstance(doc, dict) or doc.get("kind") != PLAN_KIND or "decisions" not in doc:
        raise DesignError(
            "not an analysis plan written by pathfinder-eval",
            file=str(path),
            where="--plan",
            fix="pass the NAME_plan.json that `pathfinder-eval plan` wrote",
        )
    if plan_hash(doc["decisions"]) != doc.get("sha256"):
        raise DesignError(
            "the plan's decisions do not match its registered hash: the file was changed "
            "after it was written",
            file=str(path),
            where="sha256",
            fix="use the plan file exactly as registered",
        )
    return doc


def check_against(plan: dict[str, Any], spec: DesignSpec, file: str) -> PlanCheck:
    """The registered plan beside the design now run."""
    return PlanCheck(plan["sha256"], file, tuple(deviations(plan["decisions"], decisions(spec))))


def deviations(planned: dict[str, Any], now: dict[str, Any]) -> list[Deviation]:
    """Every difference, in plain words: outcomes, triple-difference contrasts and analyses
    added, dropped or changed (the primary analysis, inference and options named as such),
    and changes to the design, rollout, comparison pool, window, disclosure control and
    seed."""
    out: list[Deviation] = []
    out += _keyed(planned["outcomes"], now["outcomes"], "outcome")
    out += _keyed(planned.get("contrasts", {}), now.get("contrasts", {}), "contrast")
    was = _primary(planned["analyses"])
    is_ = _primary(now["analyses"])
    if was != is_:
        out.append(
            Deviation(
                "primary analysis changed",
                f"primary analysis changed from {was or 'none'} to {is_ or 'none'}",
            )
        )
    out += _keyed(planned["analyses"], now["analyses"], "analysis", skip={"primary"})
    labels = {
        "design": "design name",
        "pilot": "pilot",
        "unit_level": "unit level",
        "time": "analysis window",
        "rollout": "rollout",
        "groups": "groups of LAs",
        "comparison": "comparison pool",
        "disclosure": "disclosure control",
        "seed": "seed",
    }
    for key, label in labels.items():
        for path, a, b in _leaves(planned.get(key), now.get(key)):
            where = f" ({path})" if path else ""
            out.append(
                Deviation(f"{label} changed", f"{label}{where} changed from {_v(a)} to {_v(b)}")
            )
    return out


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
