"""DfE's children's services statistical neighbour model: each LA's ten nearest LAs.

The file (`sn_model_2025_wide.csv`, one row per LA: `old_la_code`, `SN_1` … `SN_10` as
three-digit codes and `SN_1P` … `SN_10P` closeness labels) is read into a long table, and a
design's `comparison: {pool: statistical_neighbours}` becomes each treated unit's neighbour set.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

import pandas as pd

from pathfinder_eval.errors import DataError
from pathfinder_eval.spec import Closeness, DesignSpec, NeighbourSet

CLOSENESS: tuple[str, ...] = get_args(Closeness)
EXAMPLE_FILE = "sn_model_2025_wide.csv"
FILE_PATTERN = re.compile(r"(^|_)sn_model|statistical_neighbour")
_FIX = (
    f"put DfE's statistical neighbour file ('{EXAMPLE_FILE}', from the children's services "
    "statistical neighbour benchmarking tool) in the --data folder, or name it in the design "
    "as comparison.neighbour_file"
)


@dataclass(frozen=True)
class NeighbourTable:
    """The SN model in long form: la_code, rank (1 = nearest), neighbour, closeness."""

    frame: pd.DataFrame
    path: Path
    sha256: str

    def neighbours_of(
        self, la_code: str, n: int, closeness: tuple[str, ...] = ()
    ) -> tuple[tuple[str, str], ...]:
        """The first `n` neighbours of an LA (code, closeness), keeping only the closeness
        labels given (all when empty); DataError when the LA is not in the model."""
        rows = self.frame[self.frame["la_code"] == la_code]
        if rows.empty:
            raise DataError(
                f"LA {la_code} is not in the statistical neighbour model",
                file=self.path.name,
                where="old_la_code",
                fix="use the model for the LAs' current boundaries (2025 or later)",
            )
        rows = rows[rows["rank"] <= n]
        if closeness:
            rows = rows[rows["closeness"].isin(closeness)]
        return tuple(zip(rows["neighbour"], rows["closeness"], strict=True))


def find_neighbour_file(folder: Path) -> Path | None:
    """The SN file in a data folder, by name; None when there is none."""
    hits = sorted(p for p in folder.glob("*.csv") if FILE_PATTERN.search(p.name.lower()))
    if len(hits) > 1:
        raise DataError(
            f"{len(hits)} statistical neighbour files: {', '.join(p.name for p in hits)}",
            file=str(folder),
            fix="keep one statistical neighbour model in the folder",
        )
    return hits[0] if hits else None


def read_neighbours(path: Path | None, *, looked_in: str = "") -> NeighbourTable:
    """Read the SN file; DataError saying which file to pass when it is absent or malformed."""
    if path is None or not path.is_file():
        where = str(path) if path is not None else looked_in
        raise DataError("no statistical neighbour file", file=where or None, fix=_FIX)
    raw = path.read_bytes()
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    frame.columns = [c.strip() for c in frame.columns]
    wanted = ["old_la_code", *(f"SN_{k}" for k in range(1, 11))]
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise DataError(
            f"not a statistical neighbour file: no column(s) {', '.join(missing)}",
            file=path.name,
            fix=f"pass DfE's wide SN file ('{EXAMPLE_FILE}': old_la_code, SN_1 ... SN_10)",
        )
    parts = []
    for k in range(1, 11):
        label = frame.get(f"SN_{k}P", pd.Series("", index=frame.index)).str.strip()
        unknown = sorted(set(label) - set(CLOSENESS) - {""})
        if unknown:
            raise DataError(
                f"unknown closeness label {unknown[0]!r}",
                file=path.name,
                where=f"SN_{k}P",
                fix=f"labels are {', '.join(CLOSENESS)}",
            )
        parts.append(
            pd.DataFrame(
                {
                    "la_code": frame["old_la_code"].str.strip(),
                    "rank": k,
                    "neighbour": frame[f"SN_{k}"].str.strip(),
                    "closeness": label,
                }
            )
        )
    long = pd.concat(parts, ignore_index=True).sort_values(["la_code", "rank"], kind="stable")
    return NeighbourTable(long.reset_index(drop=True), path, hashlib.sha256(raw).hexdigest())


def resolve_neighbour_pool(spec: DesignSpec, data: object) -> DesignSpec:
    """A design with `pool: statistical_neighbours` made concrete: each treated unit's
    neighbour set (a group's is its members' neighbours outside the group) and their union as
    `comparison.units`, read from `comparison.neighbour_file` or the SN file in the data
    folder. Other designs come back unchanged."""
    comp = spec.comparison
    if comp.pool != "statistical_neighbours" or comp.neighbour_sets:
        return spec
    if comp.neighbour_file is not None:
        table = read_neighbours(Path(spec.path).parent / comp.neighbour_file)
    elif isinstance(data, Path) and data.is_dir():
        table = read_neighbours(find_neighbour_file(data), looked_in=str(data))
    else:
        raise DataError(
            "pool 'statistical_neighbours' needs DfE's statistical neighbour file, and the "
            "data are not a folder holding it",
            file=spec.path,
            where="comparison.neighbour_file",
            fix=_FIX,
        )
    members = {name: grp.members for name, grp in spec.groups.items()}
    sets = []
    for unit in spec.start_of():
        own = members.get(unit, (unit,))
        found: dict[str, str] = {}
        for la in own:
            for code, closeness in table.neighbours_of(la, comp.neighbours, comp.closeness):
                if code not in own:
                    found.setdefault(code, closeness)
        sets.append(NeighbourSet(unit=unit, neighbours=tuple(found.items())))
    union = tuple(sorted({code for s in sets for code, _ in s.neighbours}))
    resolved = comp.model_copy(
        update={
            "units": union,
            "neighbour_sets": tuple(sets),
            "neighbour_source": (table.path.name, table.sha256),
        }
    )
    return spec.model_copy(update={"comparison": resolved})
