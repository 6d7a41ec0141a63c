"""How a fitted result reads in a terminal, a notebook and a figure (EffectEstimates.summary,
_repr_html_, plot): the estimates, the inference used and why, the units, and the warnings."""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from pathfinder_eval.estimator_labels import LABELS

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


class Fitted(Protocol):
    """What display needs of a result (EffectEstimates has it; results.py imports this module,
    so the type is described here rather than imported)."""

    analysis_id: str
    outcome: str
    estimator: str
    table: pd.DataFrame
    level: float
    n_units: int
    n_treated: int
    n_obs: int
    warnings: tuple[str, ...]

    @property
    def inference(self) -> Any: ...

    @property
    def diagnostics(self) -> Any: ...


RULE = "=" * 78


def _label(res: Fitted) -> str:
    return LABELS.get(res.estimator, res.estimator)


def _num(x: float, digits: int = 4) -> str:
    if x is None or not math.isfinite(x):
        return "–"
    if abs(x) >= 1e4:
        return f"{x:,.1f}"
    if x != 0 and abs(x) < 1e-3:
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}f}"


def _rows(res: Fitted) -> list[list[str]]:
    t = res.table
    df = t["df"] if "df" in t.columns else [math.nan] * len(t)
    return [
        [
            str(term),
            _num(est),
            _num(se),
            _num(d, 1) if math.isfinite(d) else "normal",
            f"[{_num(lo)}, {_num(hi)}]",
            _num(p, 3),
        ]
        for term, est, se, d, lo, hi, p in zip(
            t["term"],
            t["estimate"],
            t["std_error"],
            df,
            t["ci_lower"],
            t["ci_upper"],
            t["p_value"],
            strict=True,
        )
    ]


def _header(res: Fitted) -> list[str]:
    return ["term", "estimate", "std. error", "df", f"{res.level:.0%} CI", "p-value"]


def summary(res: Fitted) -> str:
    """A plain-text table like R's summary(): estimates with SE, df, interval and p-value, the
    inference used and why, the units, and the warnings."""
    head, rows = _header(res), _rows(res)
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        return "  ".join([first, *(c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))])

    inf = res.inference
    out = [
        f"{_label(res)}",
        f"Outcome: {res.outcome}   Analysis: {res.analysis_id}",
        f"Units: {res.n_units} ({res.n_treated} treated)   Observations: {res.n_obs}",
        f"Inference: {inf.label}",
    ]
    if inf.chosen_by_default and inf.reason:
        out.append(f"  chosen by default because {inf.reason}")
    dep = inf.dependence
    if dep is not None and dep.regions_known:
        out.append(
            f"Regional dependence: within-region residual correlation {dep.rho:.3f}"
            + (f" (SE {dep.rho_se:.3f})" if math.isfinite(dep.rho_se) else "")
            + "; treated by region: "
            + ", ".join(f"{r} {n}" for r, n in dep.treated_regions)
        )
    rule = "=" * max(len(RULE), len(line(head)))
    out += [rule, line(head), "-" * len(rule), *(line(r) for r in rows), rule]
    out += _facts(res)
    out += [f"Warning: {w}" for w in res.warnings]
    return "\n".join(out)


def _facts(res: Fitted) -> list[str]:
    """The result's scalar facts and flat numeric mappings (variance components, ICC, model
    choices), one line each, as R's summary() prints them under the table."""
    facts = getattr(res, "diagnostics", {})
    out = []
    for key, value in facts.items():
        if isinstance(value, bool | str | int | float) and value is not None:
            out.append(f"{key}: {_shown(value)}")
        elif (
            isinstance(value, dict)
            and value
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value.values())
        ):
            out.append(f"{key}: " + ", ".join(f"{k} {_shown(v)}" for k, v in value.items()))
    return out


def _shown(value: bool | str | int | float) -> str:
    """A fact as summary() prints it: floats to _num's digits, counts and text as they are
    (a count of 837 units is not 837.0000)."""
    return _num(value) if isinstance(value, float) else str(value)


def to_html(res: Fitted) -> str:
    """The summary as an escaped HTML table for notebooks."""
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in _header(res))
    body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in _rows(res))
    inf = res.inference
    why = f" (chosen because {e(inf.reason)})" if inf.chosen_by_default and inf.reason else ""
    warn = "".join(f"<li>{e(w)}</li>" for w in res.warnings)
    return (
        f"<div><strong>{e(_label(res))}</strong>: {e(res.outcome)}; {res.n_units} units "
        f"({res.n_treated} treated), {res.n_obs} observations"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        f"<p>Inference: {e(inf.label)}{why}</p>" + (f"<ul>{warn}</ul>" if warn else "") + "</div>"
    )


def plot(res: Fitted) -> Figure:
    """Estimates with their intervals: against event time where the rows are event times
    (event studies, dynamic aggregations), else one row per term."""
    from matplotlib.figure import Figure

    t = res.table
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    has_time = "event_time" in t.columns and bool(np.isfinite(t["event_time"]).any())
    rows = t[np.isfinite(t["event_time"])] if has_time else t
    x = rows["event_time"].to_numpy(float) if has_time else np.arange(len(rows))
    est = rows["estimate"].to_numpy(float)
    lo, hi = rows["ci_lower"].to_numpy(float), rows["ci_upper"].to_numpy(float)
    ax.errorbar(x, est, yerr=[est - lo, hi - est], fmt="o", capsize=3, color="#1d70b8")
    ax.axhline(0.0, color="#505a5f", linewidth=0.8)
    if has_time:
        ax.axvline(-0.5, color="#505a5f", linestyle=":", linewidth=0.8)
        ax.set_xlabel("periods since the start")
    else:
        ax.set_xticks(x, [str(s) for s in rows["term"]], rotation=20, ha="right")
    ax.set_ylabel(f"effect on {res.outcome} ({res.level:.0%} CI)")
    ax.set_title(_label(res), fontsize=10)
    fig.tight_layout()
    return fig


class PretestPower(Protocol):
    """What the pre-test plot needs (inference/pretrends_power.PretrendsResult has it)."""

    table: pd.DataFrame
    reference: float
    power: float
    bayes_factor: float


def pretrends_plot(res: PretestPower) -> Figure:
    """The estimates with 95% intervals, the hypothesised trend and the estimates' mean among
    analyses that pass the pre-test, against event time (R pretrends' event_plot_pretest)."""
    from matplotlib.figure import Figure

    t = res.table.sort_values("event_time")
    x = np.append(t["event_time"].to_numpy(float), res.reference)
    order = np.argsort(x)

    def with_reference(column: str) -> np.ndarray:
        return np.append(t[column].to_numpy(float), 0.0)[order]

    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    half = 1.959964 * t["std_error"].to_numpy(float)
    ax.errorbar(
        t["event_time"], t["estimate"], yerr=half, fmt="o", capsize=3, color="#1d70b8",
        label="estimate (95% CI)",
    )  # fmt: skip
    ax.plot(x[order], with_reference("trend"), color="#d4351c", label="hypothesised trend")
    ax.plot(
        x[order], with_reference("mean_after_pretest"), "s--", color="#00703c", markersize=4,
        label="mean after passing the pre-test",
    )  # fmt: skip
    ax.axhline(0.0, color="#505a5f", linewidth=0.8)
    ax.axvline(res.reference + 0.5, color="#505a5f", linestyle=":", linewidth=0.8)
    ax.set_xlabel("event time")
    ax.set_title(
        f"Pre-test power {res.power:.2f} against the trend; Bayes factor {res.bayes_factor:.2f}",
        fontsize=10,
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
