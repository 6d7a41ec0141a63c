"""Run a registry entry: compare every reproduced number with its published value."""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from pathfinder_eval.errors import DataError
from pathfinder_eval.replications import (  # noqa: F401
    dcdh,
    did,
    dose,
    etwfe,
    honestdid,
    kielmc,
    power_examples,
    pretrends,
    prop99,
    stacked,
    stepped_wedge,
    triple,
    two_stage,
)
from pathfinder_eval.replications.registry import ENTRIES, Entry

SHARED_REFERENCE = Path("../shared/data/reference")  # beside a checkout, as the README runs


@dataclass(frozen=True)
class Comparison:
    label: str
    published: float
    reproduced: float
    difference: float
    tolerance: float
    passed: bool
    why: str
    source: str


@dataclass(frozen=True)
class ReplicationResult:
    entry: Entry
    rows: tuple[Comparison, ...]

    @property
    def passed(self) -> bool:
        return bool(self.rows) and all(r.passed for r in self.rows)


def data_found(entry: Entry, data_dir: Path | None) -> bool:
    """Whether an entry's data are there (bundled ones always are)."""
    return not entry.data or entry.bundled or _reference_file(entry, data_dir).is_file()


def _reference_file(entry: Entry, data_dir: Path | None) -> Path:
    """Where a data file that is not bundled is read: under --data, else the shared folder."""
    return (data_dir or SHARED_REFERENCE) / entry.data


def data_path(entry: Entry, data_dir: Path | None) -> Path:
    """Where an entry's data are: bundled copies, or the reference folder for GPL datasets."""
    if not entry.data:
        return Path()
    if entry.bundled:
        return Path(str(files("pathfinder_eval.replications") / "data" / entry.data))
    path = _reference_file(entry, data_dir)
    if not path.is_file():
        raise DataError(
            f"{entry.data} not found",
            file=str(data_dir or SHARED_REFERENCE),
            where="--data",
            fix=f"download it from {entry.download or 'the R package named in the entry'} "
            f"and pass --data DIR with it at DIR/{entry.data}",
        )
    return path


def replicate(name: str, data_dir: Path | None = None) -> ReplicationResult:
    entry = ENTRIES[name]
    if entry.compute is None:
        return ReplicationResult(entry, ())
    got = entry.compute(data_path(entry, data_dir))
    rows = []
    for pub in entry.published:
        rep = got[pub.label]
        tol = pub.tolerance if pub.tolerance is not None else rep.tolerance
        diff = rep.value - pub.value
        ok = bool(tol is not None and math.isfinite(diff) and abs(diff) <= tol)
        rows.append(
            Comparison(
                pub.label, pub.value, rep.value, diff, float(tol or 0.0), ok, pub.why, pub.source
            )
        )
    return ReplicationResult(entry, tuple(rows))
