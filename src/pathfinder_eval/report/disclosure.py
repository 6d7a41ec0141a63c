"""Statistical disclosure control for anything a report shows about children.

Counts of children from 1 to `min_count` − 1 are suppressed (DfE suppresses 1–5; a secure
research environment may require 10). Where a table shows a total, one suppressed cell could
be recovered by subtraction, so the smallest other cell is suppressed too (secondary
suppression). Shown counts are rounded half up (never banker's rounding) to the nearest
`round_to`. Every action is logged for the appendix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


def round_half_up(value: float, unit: int) -> int:
    """Nearest multiple of `unit`, halves away from zero (2.5 → 3 for unit 1)."""
    return int(math.copysign(math.floor(abs(value) / unit + 0.5) * unit, value))


@dataclass
class DisclosureLog:
    """Running record of what control did, by table."""

    min_count: int
    round_to: int
    suppressed: dict[str, int] = field(default_factory=dict)
    rounded: dict[str, int] = field(default_factory=dict)

    def count(self, value: float, table: str) -> str:
        """A child count made safe to publish, as display text."""
        if value != value:  # NaN
            return "–"
        if 0 < value < self.min_count:
            self._note(self.suppressed, table)
            return f"<{self.min_count}"
        rounded = round_half_up(value, self.round_to)
        if rounded != value:
            self._note(self.rounded, table)
        return f"{rounded:,}"

    def counts_with_total(self, values: list[float], table: str) -> tuple[list[str], str]:
        """Cells and their total: primary suppression, then secondary suppression of the
        smallest remaining non-zero cell when exactly one cell would otherwise be hidden."""
        small = [0 < v < self.min_count for v in values]
        if sum(small) == 1:
            others = [(v, i) for i, v in enumerate(values) if not small[i] and v > 0]
            if others:
                small[min(others)[1]] = True
        cells = []
        for v, hide in zip(values, small, strict=True):
            if hide:
                self._note(self.suppressed, table)
                cells.append("c")
            else:
                cells.append(self.count(v, table))
        return cells, self.count(sum(values), table)

    @staticmethod
    def _note(book: dict[str, int], table: str) -> None:
        book[table] = book.get(table, 0) + 1

    def rows(self) -> list[dict[str, object]]:
        tables = sorted(set(self.suppressed) | set(self.rounded))
        return [
            {"table": t, "suppressed": self.suppressed.get(t, 0), "rounded": self.rounded.get(t, 0)}
            for t in tables
        ]
