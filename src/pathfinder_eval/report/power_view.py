"""The power command's outputs: a printed table, JSON and a small HTML page with a curve."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
from matplotlib.figure import Figure

from pathfinder_eval.power.analytic import power
from pathfinder_eval.power.design import PowerSummary
from pathfinder_eval.power.simulate import SimulatedPower
from pathfinder_eval.power.trial_simulation import SimulatedMdes
from pathfinder_eval.report.plots import TREATED, to_svg


def table_text(s: PowerSummary) -> str:
    rows = [
        (
            "design",
            f"{s.clusters} clusters, {s.sequences} sequences, {s.periods} periods, "
            f"{s.cell_size} per cell"
            + (
                f"; {s.transition_cells} cluster-periods in transition, not measured"
                if s.transition_cells
                else ""
            ),
        ),
        ("model", s.model),
        ("reference", s.reference),
        ("ICC", f"{s.icc:g}"),
        ("Var(effect)", f"{s.variance:.6g}"),
        ("SE(effect)", f"{np.sqrt(s.variance):.4f}"),
        (f"power at effect {s.effect:g}", f"{s.power:.4f}"),
        ("MDES at 80% power", f"{s.mdes_80:.4f}"),
        ("MDES at 90% power", f"{s.mdes_90:.4f}"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def curve(s: PowerSummary, points: int = 21) -> list[dict[str, float]]:
    """Power against effect size from 0 to twice the 90% MDES."""
    return [
        {"effect": float(e), "power": power(e, s.variance, s.alpha, s.df)}
        for e in np.linspace(0.0, 2 * s.mdes_90, points)
    ]


def power_json(s: PowerSummary) -> str:
    doc = {"summary": dataclasses.asdict(s), "curve": curve(s)}
    return json.dumps(doc, indent=2) + "\n"


def power_context(title: str, s: PowerSummary) -> dict:
    pts = curve(s)
    ax = Figure(figsize=(6.0, 3.2)).add_subplot()
    ax.plot([p["effect"] for p in pts], [p["power"] for p in pts], color=TREATED, marker="o")
    ax.axhline(0.8, color="#b1b4b6", linestyle=":")
    ax.set_xlabel("Effect (outcome SD units)")
    ax.set_ylabel("Power")
    ax.spines[["top", "right"]].set_visible(False)
    alt = (
        f"Power curve: power rises from {pts[0]['power']:.2f} at no effect to "
        f"{pts[-1]['power']:.2f} at {pts[-1]['effect']:.2f}; the table gives the values."
    )
    return {
        "title": title,
        "table": table_text(s).splitlines(),
        "svg": to_svg(ax, f"Power curve: {title}"),
        "alt": alt,
        "curve": [{"effect": f"{p['effect']:.3f}", "power": f"{p['power']:.3f}"} for p in pts],
    }


def simulation_text(r: SimulatedPower, seed: int) -> str:
    rows = [
        ("analysis", f"{r.analysis} on {r.outcome}"),
        (
            "effect simulated",
            f"{r.effect:g}"
            + (" (no effect: the share rejected is the test's size)" if r.effect == 0 else ""),
        ),
        ("replicates", f"{len(r.p_values)} (seed {seed})"),
        ("power", f"{r.power:.3f} (Monte Carlo SE {r.monte_carlo_se:.3f})"),
        ("mean estimate", f"{np.nanmean(r.estimates):.4g}"),
        ("SD of estimates", f"{np.nanstd(r.estimates, ddof=1):.4g}"),
    ]
    if r.failed:
        rows.append(("not converged", f"{r.failed} fits (counted as not rejecting)"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def simulation_json(r: SimulatedPower, seed: int) -> str:
    doc = {
        "analysis": r.analysis,
        "outcome": r.outcome,
        "effect": r.effect,
        "alpha": r.alpha,
        "seed": seed,
        "replicates": len(r.p_values),
        "power": r.power,
        "monte_carlo_se": r.monte_carlo_se,
        "not_converged": r.failed,
        "estimates": r.estimates.tolist(),
        "p_values": r.p_values.tolist(),
    }
    return json.dumps(doc, indent=2) + "\n"


def mdes_text(m: SimulatedMdes, seed: int) -> str:
    """The simulated MDES with its Monte-Carlo interval, beside the analytic GLS MDES."""
    pct = f"{100 * m.target:g}%"
    rows = [
        ("analysis", f"{m.check.analysis} on {m.check.outcome}"),
        ("replicates", f"{len(m.check.p_values)} (seed {seed})"),
        (f"MDES at {pct} power", f"{m.mdes:.4f} (simulated)"),
        (
            f"{100 * m.level:g}% Monte-Carlo interval",
            f"{m.interval[0]:.4f} to {m.interval[1]:.4f}",
        ),
        (
            "analytic GLS MDES",
            f"{m.analytic:.4f} (known variances, z reference)"
            if np.isfinite(m.analytic)
            else "not available (found by search: each point a full simulation)",
        ),
        ("power at the MDES, refitted", f"{m.check.power:.3f} (same seeds)"),
        ("size at effect 0", f"{m.null.power:.3f} (Monte Carlo SE {m.null.monte_carlo_se:.3f})"),
    ]
    if m.null.failed:
        rows.append(("not converged", f"{m.null.failed} fits (counted as not rejecting)"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def mdes_json(m: SimulatedMdes, seed: int) -> str:
    doc = {
        "analysis": m.check.analysis,
        "outcome": m.check.outcome,
        "seed": seed,
        "replicates": len(m.check.p_values),
        "alpha": m.check.alpha,
        "target_power": m.target,
        "mdes": m.mdes,
        "monte_carlo_interval": [v if np.isfinite(v) else None for v in m.interval],
        "interval_level": m.level,
        "analytic_gls_mdes": m.analytic if np.isfinite(m.analytic) else None,
        "power_at_mdes_refitted": m.check.power,
        "size": m.null.power,
        "not_converged": m.null.failed,
        "curve": [{"effect": e, "power": p} for e, p in m.curve],
    }
    return json.dumps(doc, indent=2) + "\n"
