"""Statistical disclosure control for anything a report shows about children.

Counts of children below `min_count` are suppressed; other counts are rounded to the nearest
`round_to` (DfE's convention for published tables is suppression of 1–5 and rounding of
national totals; the design may set stricter values). Every action is logged for the appendix.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
            self.suppressed[table] = self.suppressed.get(table, 0) + 1
            return f"<{self.min_count}"
        rounded = int(self.round_to * round(value / self.round_to))
        if rounded != value:
            self.rounded[table] = self.rounded.get(table, 0) + 1
        return f"{rounded:,}"

    def rows(self) -> list[dict[str, object]]:
        tables = sorted(set(self.suppressed) | set(self.rounded))
        return [
            {"table": t, "suppressed": self.suppressed.get(t, 0), "rounded": self.rounded.get(t, 0)}
            for t in tables
        ]
