"""The design schematic: units × periods, shaded by condition (the CONSORT stepped-wedge
diagram). Conditions are told apart by pattern and label as well as colour."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from pathfinder_eval.panel import ValidatedPanel

STYLE = {  # condition → (face colour, hatch, label)
    "control": ("#f3f2f1", "", "Control"),
    "treated": ("#1d70b8", "", "Intervention"),
    "transition": ("#ffffff", "///", "Partly exposed / transition"),
}
MAX_ROWS = 30


def schematic_rows(panel: ValidatedPanel) -> tuple[list[str], list[list[str]]]:
    """Row labels and conditions per period: each treated unit, then one row for all
    comparison units (all control)."""
    units = panel.units
    treated = units[units["role"] == "treated"].sort_values(["cohort", "name"])
    labels, grid = [], []
    for _, u in treated.head(MAX_ROWS).iterrows():
        row = []
        for p in panel.periods:
            if (
                u["transition"] is not None
                and not np.isnan(u["transition"])
                and p == u["transition"]
            ):
                row.append("transition")
            elif p >= u["cohort"]:
                row.append("treated")
            else:
                row.append("control")
        labels.append(str(u["name"]))
        grid.append(row)
    n_comp = int((units["role"] == "comparison").sum())
    if n_comp:
        labels.append(f"Comparison units (n = {n_comp})")
        grid.append(["control"] * len(panel.periods))
    return labels, grid


def plot_schematic(panel: ValidatedPanel, ax: Axes | None = None) -> Axes:
    labels, grid = schematic_rows(panel)
    if ax is None:
        ax = Figure(figsize=(6.4, 0.9 + 0.28 * len(labels))).add_subplot()
    for i, row in enumerate(grid):
        for j, cond in enumerate(row):
            face, hatch, _ = STYLE[cond]
            ax.add_patch(
                Rectangle(
                    (j, i), 1, 1, facecolor=face, hatch=hatch, edgecolor="#505a5f", linewidth=0.5
                )
            )
    ax.set_xlim(0, len(panel.periods))
    ax.set_ylim(len(labels), 0)
    ax.set_xticks(
        np.arange(len(panel.periods)) + 0.5,
        [panel.period_label(p) for p in panel.periods],
        fontsize=8,
    )
    ax.set_yticks(np.arange(len(labels)) + 0.5, labels, fontsize=8)
    ax.tick_params(length=0)
    for side in ("top", "right", "left", "bottom"):
        ax.spines[side].set_visible(False)
    ax.legend(
        handles=[
            Patch(facecolor=f, hatch=h, edgecolor="#505a5f", label=lab)
            for f, h, lab in STYLE.values()
        ],
        fontsize=7,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.08 - 0.6 / len(labels)),
        ncol=3,
        frameon=False,
    )
    return ax
