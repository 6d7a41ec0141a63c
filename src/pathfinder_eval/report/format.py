"""How numbers read in the report: estimates, p-values, intervals (one place, so every
section formats alike)."""

from __future__ import annotations

import math


def fmt(x: float | None, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    text = f"{x:,.{digits}f}"
    if text.startswith("-") and not any(c in "123456789" for c in text):
        text = text[1:]  # no "−0.00" for a value that rounds to zero
    return text.replace("-", "−")


def fmt_p(p: float | None) -> str:
    if p is None or math.isnan(p):
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def ci_text(ci: list[float | None], level: float) -> str:
    """' (95% CI a to b)', or nothing when the interval is undefined."""
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in ci):
        return ""
    return f" ({level:.0%} CI {fmt(ci[0], 3)} to {fmt(ci[1], 3)})"


def lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def wrap(text: str, width: int = 40) -> str:
    words, lines, line = text.split(), [], ""
    for w in words:
        if len(line) + len(w) + 1 > width and line:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    lines.append(line)
    return "\n".join(lines)
