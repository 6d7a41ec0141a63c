"""The indicator catalogue shipped with the package (indicators.yaml), read into frozen objects.

Each indicator says which family, columns and rows give its numerator and denominator, how
to scale the ratio, which way is better, and where DfE's own figure is, so the recomputation
can be checked against it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from pathfinder_eval.data.families import FAMILIES, GEOGRAPHY
from pathfinder_eval.data.plausibility import Plausible
from pathfinder_eval.errors import DataError

SCALES: Mapping[str, float] = {"percent": 100.0, "per_10000": 10_000.0, "ratio": 1.0}
POLARITIES = ("lower_is_better", "higher_is_better", "neutral")
_REQUIRED_KEYS = {
    "name",
    "framework",
    "family",
    "numerator",
    "denominator",
    "scale",
    "decimals",
    "polarity",
    "published",
    "source",
}
_INDICATOR_KEYS = _REQUIRED_KEYS | {"notes", "plausible", "share"}
_MEASURE_KEYS = {"family", "column", "columns", "filters", "rounded_to"}


@dataclass(frozen=True)
class Measure:
    """The sum of `columns` on the rows of `family` where every filter column equals its value
    (or one of its values: a tuple sums those rows, e.g. inside and outside the LA).

    rounded_to: rounding unit of each published input (e.g. 0.1 FTE), or None when exact.
    """

    family: str
    columns: tuple[str, ...]
    filters: tuple[tuple[str, str | tuple[str, ...]], ...] = ()
    rounded_to: float | None = None

    @property
    def parts(self) -> int:
        """How many published figures are added up: columns x rows selected per area-year."""
        rows = 1
        for _, wanted in self.filters:
            rows *= 1 if isinstance(wanted, str) else len(wanted)
        return len(self.columns) * rows


@dataclass(frozen=True)
class Indicator:
    """One outcome: value = numerator / denominator x SCALES[scale], published to `decimals`."""

    id: str
    name: str
    framework: str
    family: str
    numerator: Measure
    denominator: Measure
    scale: str
    decimals: int
    polarity: str
    published: Measure | None
    source: str
    notes: str = ""
    plausible: tuple[float, float] | None = None
    share: bool = False

    def rule(self, bounds: tuple[float, float] | None = None) -> Plausible:
        """What this indicator's values can be (data/plausibility.py); `bounds` (a design's
        `plausible`) override the catalogue's range, which overrides the scale's."""
        return Plausible.for_scale(self.scale, self.share, bounds or self.plausible)

    @property
    def multiplier(self) -> float:
        """The factor applied to numerator / denominator (100, 10,000 or 1)."""
        return SCALES[self.scale]

    @property
    def families(self) -> tuple[str, ...]:
        """Every family the indicator reads, in a stable order."""
        measures = (self.numerator, self.denominator, self.published)
        return tuple(dict.fromkeys(m.family for m in measures if m is not None))


def load_catalogue(path: Path | None = None) -> dict[str, Indicator]:
    """Indicators by id, from the shipped indicators.yaml or `path`; DataError if malformed.

    The shipped catalogue is parsed once per process (it is read on every analysis and every
    simulated replicate); callers get their own dict of the frozen indicators."""
    if path is None:
        return dict(_shipped())
    return _parse(Path(path).read_text(encoding="utf-8"), Path(path).name)


@cache
def _shipped() -> dict[str, Indicator]:
    text = (files("pathfinder_eval.data") / "indicators.yaml").read_text(encoding="utf-8")
    return _parse(text, "indicators.yaml")


def _parse(text: str, name: str) -> dict[str, Indicator]:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DataError(f"invalid YAML ({exc})", file=name, fix="correct the YAML syntax") from exc
    if not isinstance(raw, dict) or not raw:
        raise DataError("no indicators", file=name, fix="map indicator ids to their definitions")
    return {str(key): _indicator(str(key), spec, name) for key, spec in raw.items()}


def _fail(what: str, file: str, where: str, fix: str) -> DataError:
    return DataError(what, file=file, where=where, fix=fix)


def _indicator(key: str, spec: Any, file: str) -> Indicator:
    if not isinstance(spec, dict):
        raise _fail("must be a mapping", file, key, "give name, family, numerator ... keys")
    unknown = set(spec) - _INDICATOR_KEYS
    missing = _REQUIRED_KEYS - set(spec)
    if unknown or missing:
        raise _fail(
            f"unknown key(s) {sorted(unknown)}, missing key(s) {sorted(missing)}",
            file,
            key,
            f"use only {sorted(_INDICATOR_KEYS)}",
        )
    family = spec["family"]
    if family not in FAMILIES:
        raise _fail(
            f"unknown family {family!r}", file, f"{key}.family", f"use one of {sorted(FAMILIES)}"
        )
    if spec["scale"] not in SCALES:
        raise _fail(
            f"unknown scale {spec['scale']!r}", file, f"{key}.scale", f"use one of {sorted(SCALES)}"
        )
    if spec["polarity"] not in POLARITIES:
        raise _fail(
            f"unknown polarity {spec['polarity']!r}",
            file,
            f"{key}.polarity",
            f"use one of {list(POLARITIES)}",
        )
    if not isinstance(spec["decimals"], int) or spec["decimals"] < 0:
        raise _fail(
            "decimals must be a whole number >= 0",
            file,
            f"{key}.decimals",
            "give the number of decimals DfE publishes",
        )
    published = spec["published"]
    return Indicator(
        id=key,
        name=str(spec["name"]),
        framework=str(spec["framework"]),
        family=family,
        numerator=_measure(spec["numerator"], family, file, f"{key}.numerator"),
        denominator=_measure(spec["denominator"], family, file, f"{key}.denominator"),
        scale=spec["scale"],
        decimals=spec["decimals"],
        polarity=spec["polarity"],
        published=None
        if published is None
        else _measure(published, family, file, f"{key}.published"),
        source=str(spec["source"]),
        notes=str(spec.get("notes", "")),
        plausible=_bounds(spec.get("plausible"), file, f"{key}.plausible"),
        share=bool(spec.get("share", False)),
    )


def _bounds(value: Any, file: str, where: str) -> tuple[float, float] | None:
    """A [low, high] plausible range, or None when not given."""
    if value is None:
        return None
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        low = high = float("nan")
    if not low < high:
        raise _fail("must be [low, high] with low < high", file, where, "e.g. plausible: [0, 100]")
    return low, high


def _measure(spec: Any, default_family: str, file: str, where: str) -> Measure:
    if not isinstance(spec, dict) or set(spec) - _MEASURE_KEYS:
        raise _fail(
            "must be a mapping with keys from " + ", ".join(sorted(_MEASURE_KEYS)),
            file,
            where,
            "e.g. {column: referral_count}",
        )
    family = spec.get("family", default_family)
    if family not in FAMILIES:
        raise _fail(
            f"unknown family {family!r}", file, f"{where}.family", f"use one of {sorted(FAMILIES)}"
        )
    columns = spec.get("columns", [spec["column"]] if "column" in spec else [])
    filters = spec.get("filters") or {}
    known = set(FAMILIES[family].columns) | set(GEOGRAPHY)
    used = [*columns, *filters]
    unknown = [c for c in used if c not in known]
    if not columns or unknown:
        raise _fail(
            f"needs 'column' or 'columns' naming canonical {family} columns; unknown: {unknown}",
            file,
            where,
            f"use columns from {sorted(known)}",
        )
    rounded_to = spec.get("rounded_to")
    return Measure(
        family=family,
        columns=tuple(str(c) for c in columns),
        filters=tuple((str(k), _filter_value(v)) for k, v in filters.items()),
        rounded_to=None if rounded_to is None else float(rounded_to),
    )


def _filter_value(value: Any) -> str | tuple[str, ...]:
    """One filter value, or several (a list in the YAML) whose rows are added together."""
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value) if len(value) > 1 else str(value[0])
    return str(value)
