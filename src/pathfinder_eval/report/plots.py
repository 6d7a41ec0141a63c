"""Charts as free functions on data; `to_svg` makes byte-reproducible inline SVG."""

from __future__ import annotations

import io

import matplotlib as mpl
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.text import Text

TREATED, COMPARISON = "#1d70b8", "#505a5f"  # GOV.UK blue and dark grey: 4.5:1 on white


def plot_trends(
    trends: pd.DataFrame,
    ylabel: str,
    start_labels: list[tuple[float, str]],
    legend: tuple[str, str] = ("Treated units", "Comparison units"),
    ax: Axes | None = None,
) -> Axes:
    """Mean outcome by period of two groups (treated vs comparison units, or a trial's cells in
    intervention vs not yet started); dashed lines mark rollout starts.

    trends: period_label, position (x), treated (first group), comparison (second group).
    """
    if ax is None:
        ax = Figure(figsize=(6.4, 3.4)).add_subplot()
    ax.plot(
        trends["position"],
        trends["treated"],
        marker="o",
        color=TREATED,
        label=f"{legend[0]} (mean)",
    )
    ax.plot(
        trends["position"],
        trends["comparison"],
        marker="s",
        linestyle="--",
        color=COMPARISON,
        label=f"{legend[1]} (mean)",
    )
    return _period_axes(ax, trends, start_labels, ylabel, "lower left")


def _estimates_with_intervals(table: pd.DataFrame, x: str, fmt: str, ax: Axes | None) -> Axes:
    """Axes with a zero line and the rows' estimates at `x` with their confidence intervals."""
    if ax is None:
        ax = Figure(figsize=(6.4, 3.2)).add_subplot()
    ax.axhline(0.0, color="#b1b4b6", linewidth=1)
    ax.errorbar(
        table[x],
        table["estimate"],
        yerr=[table["estimate"] - table["ci_lower"], table["ci_upper"] - table["estimate"]],
        fmt=fmt,
        color=TREATED,
        capsize=3,
    )
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def plot_event_study(table: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Event-time estimates with confidence intervals; the reference period is at zero."""
    ax = _estimates_with_intervals(table, "event_time", "o", ax)
    ax.axvline(-0.5, color="#b1b4b6", linestyle=":", linewidth=1)
    ax.plot([-1], [0.0], marker="o", markerfacecolor="white", color=TREATED)  # reference
    ax.set_xticks(sorted({*table["event_time"].astype(int).tolist(), -1}))
    ax.set_xlabel("Periods since start (−1 = reference)")
    ax.set_ylabel("Estimate")
    return ax


def plot_dose_response(table: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """ATT(d) by dose with confidence intervals (rows with a `dose` column), joined in order."""
    ax = _estimates_with_intervals(table, "dose", "o-", ax)
    ax.set_xlabel("Dose")
    ax.set_ylabel("ATT at the dose")
    return ax


def to_svg(ax: Axes, title: str) -> str:
    """Inline SVG of the axes' figure: no date, fixed ids, text kept as text (not paths) and
    shown as written: a '$' in an outcome or LA name is not the start of mathematics (an
    unmatched one made matplotlib fail)."""
    fig = ax.figure
    for text in fig.findobj(Text):
        text.set_parse_math(False)
    fig.tight_layout()
    # tight_layout leaves a placeholder layout engine, for which savefig lays the figure out
    # again in a draw of its own: 6 of the 45 ms each chart took, with the same bytes
    fig.set_layout_engine(None)
    buf = io.StringIO()
    with mpl.rc_context({"svg.hashsalt": "pathfinder-eval", "svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Title": title})
    text = buf.getvalue()
    return text[text.index("<svg") :]


SERIES_STYLES = (("o", "-"), ("s", "--"), ("^", ":"), ("D", "-."))  # marker, line: not colour


def plot_gaps(
    gaps: pd.DataFrame,
    starts: list[tuple[float, str]],
    ylabel: str,
    baselines: dict[str, float] | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Treated minus synthetic comparator by period, one line per series; a zero line, a
    vertical line at each start and, for SDID, each series' time-weighted pre-period gap.

    gaps: position (x), period_label, then one column per series.
    """
    if ax is None:
        ax = Figure(figsize=(6.4, 3.4)).add_subplot()
    ax.axhline(0.0, color="#b1b4b6", linewidth=1)
    series = [c for c in gaps.columns if c not in ("position", "period_label")]
    for i, name in enumerate(series):
        marker, line = SERIES_STYLES[i % len(SERIES_STYLES)]
        color = (TREATED, COMPARISON)[i % 2]
        ax.plot(
            gaps["position"], gaps[name], marker=marker, linestyle=line, color=color, label=name
        )
        if baselines and name in baselines:
            ax.axhline(
                baselines[name],
                color=color,
                linestyle=(0, (1, 3)),
                linewidth=1,
                label=f"{name}: pre-period baseline",
            )
    return _period_axes(ax, gaps, starts, ylabel, "best")


def _period_axes(
    ax: Axes, frame: pd.DataFrame, starts: list[tuple[float, str]], ylabel: str, legend: str
) -> Axes:
    """Shared finish of the by-period charts: a labelled rule at each start, period labels on
    the x axis, the y label, no top or right spine, the legend at `legend`."""
    for x, label in starts:
        ax.axvline(x, color="#b1b4b6", linewidth=1)
        ax.annotate(
            label,
            (x, 1.0),
            xycoords=("data", "axes fraction"),
            fontsize=8,
            ha="left",
            va="top",
            xytext=(3, -2),
            textcoords="offset points",
        )
    ax.set_xticks(frame["position"], frame["period_label"])
    ax.set_ylabel(ylabel)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(frameon=False, fontsize=8, loc=legend)
    return ax
