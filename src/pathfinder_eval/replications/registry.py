"""The replication registry: public datasets, published numbers with their sources and
tolerances, and the analysis that reproduces them with this package's estimators.

An entry whose estimator does not exist yet is listed as pending with the reason, never
dropped. A reproduced number is never adjusted to fit: a mismatch is reported as a mismatch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Published:
    """One published number. tolerance: fixed, or None when the computation supplies a Monte
    Carlo tolerance at run time; why: one line on where the tolerance comes from."""

    label: str
    value: float
    tolerance: float | None
    why: str
    source: str


@dataclass(frozen=True)
class Reproduced:
    value: float
    tolerance: float | None = None  # run-time (Monte Carlo) tolerance where published has None


Compute = Callable[[Path], dict[str, Reproduced]]


@dataclass(frozen=True)
class Entry:
    """A replication. data: file name under the bundled data folder (bundled=True) or a path
    under the reference data folder (--data); download: where to get data that are not
    shipped (empty: the package named in the citation)."""

    name: str
    title: str
    citation: str
    data: str
    bundled: bool
    published: tuple[Published, ...]
    compute: Compute | None
    lesson: tuple[str, ...]
    pending: str = ""
    api: ApiExample | None = None
    download: str = ""


@dataclass(frozen=True)
class ApiExample:
    """The public-API call that reproduces a published number: `code` (at most 6 lines, with
    `pd` and `pe` imported and `path` the data file) ends by setting `value`, which matches the
    published number `label`; `tolerance` replaces the published one where the call differs
    from the replication on purpose (why says how)."""

    code: str
    label: str
    tolerance: float | None = None
    why: str = ""


ENTRIES: dict[str, Entry] = {}


def register(entry: Entry) -> Entry:
    ENTRIES[entry.name] = entry
    return entry
