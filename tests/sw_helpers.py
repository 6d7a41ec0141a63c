"""Stepped-wedge test helpers: individual records → a ValidatedPanel through the records reader,
and where the reference datasets live (read in place, never copied)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pathfinder_eval.data.records import records_outcomes
from pathfinder_eval.panel import OutcomeInfo, ValidatedPanel, build_panel
from pathfinder_eval.spec import load_design

ROOT = Path(__file__).resolve().parents[1]
SHARED_SW = ROOT.parent / "shared" / "data" / "reference" / "stepped_wedge"
REF = Path(__file__).resolve().parent / "reference" / "r_lme4_stepped_wedge"

# dataset → (file, cluster column, treatment column, outcome column)
DATASETS = {
    "geecrt_small": (SHARED_SW / "geeCRT_sampleSWCRTSmall.csv", "id", "treatment", "y_con"),
    "geecrt_large": (SHARED_SW / "geeCRT_sampleSWCRTLarge.csv", "id", "treatment", "y_con"),
    "sw_example": (
        SHARED_SW / "steppedwedge_sw_data_example.csv",
        "cluster",
        "trt",
        "outcome_cont",
    ),
    "sim_ne": (REF / "sim_ne.csv", "cluster", "trt", "y"),
    "sim_incomplete": (REF / "sim_incomplete.csv", "cluster", "trt", "y"),
    "sim_decay": (REF / "sim_decay.csv", "cluster", "trt", "y"),
}

DESIGN = """
name: t
title: t
pilot: trial
unit_level: cluster
time: {{axis: period}}
rollout:
{waves}
comparison: {{pool: not_yet_treated, min_units: 1}}
outcomes: [{{column: y}}]
analyses: [{{id: a, estimator: stepped_wedge}}]
"""


def records(name: str) -> tuple[pd.DataFrame, str, str, str]:
    """The raw records of a dataset; skips when a shared file is absent."""
    path, cluster, trt, y = DATASETS[name]
    if not path.is_file():
        pytest.skip(f"{path.name} absent: expected in ../shared/data/reference/stepped_wedge")
    return pd.read_csv(path), cluster, trt, y


def rollout_yaml(starts: pd.Series, transition_periods: int = 0) -> str:
    """A design's rollout entries (one wave per start period) from cluster → start period."""
    return "\n".join(
        f"  - {{wave: s{s}, start: {s}, transition_periods: {transition_periods}, "
        f"units: [{', '.join(repr(str(u)) for u in sorted(g.index))}]}}"
        for s, g in starts.groupby(starts)
    )


def panel_from_records(
    raw: pd.DataFrame,
    cluster: str,
    trt: str,
    y: str,
    tmp_path: Path,
    starts: pd.Series | None = None,
    transition_periods: int = 0,
) -> ValidatedPanel:
    """A trial design whose waves are the clusters' first treated periods (or `starts`, cluster
    → start period), and its panel."""
    raw = raw.assign(**{cluster: raw[cluster].astype(str)})
    if starts is None:
        starts = raw[raw[trt] == 1].groupby(cluster)["period"].min()
    path = tmp_path / "d.yaml"
    path.write_text(DESIGN.format(waves=rollout_yaml(starts, transition_periods)))
    data = records_outcomes(raw, cluster, "period", {"y": y}, "records.csv")
    return build_panel(
        load_design(path), data, lambda o: OutcomeInfo(o, o, "level", "neutral", True)
    )


def dataset_panel(name: str, tmp_path: Path) -> ValidatedPanel:
    raw, cluster, trt, y = records(name)
    return panel_from_records(raw, cluster, trt, y, tmp_path)


def dense_deviance(y, x, v):
    vinv = np.linalg.inv(v)
    m = x.T @ vinv @ x
    b = np.linalg.solve(m, x.T @ vinv @ y)
    r = y - x @ b
    return (
        np.linalg.slogdet(v)[1]
        + np.linalg.slogdet(m)[1]
        + r @ vinv @ r
        + (len(y) - len(b)) * np.log(2 * np.pi)
    )


def dense_kr(x, v, derivs, second):
    """Kenward & Roger (1997) eq. 4–5 and their df, written out on the N × N matrices."""
    vinv = np.linalg.inv(v)
    phi = np.linalg.inv(x.T @ vinv @ x)
    k = len(derivs)
    p = [-(x.T @ vinv @ d @ vinv @ x) for d in derivs]
    q = {
        (a, b): x.T @ vinv @ derivs[a] @ vinv @ derivs[b] @ vinv @ x
        for a, b in itertools.product(range(k), repeat=2)
    }
    proj = vinv - vinv @ x @ phi @ x.T @ vinv
    info = np.array(
        [[0.5 * np.trace(proj @ derivs[a] @ proj @ derivs[b]) for b in range(k)] for a in range(k)]
    )
    w = np.linalg.inv(info)
    u = sum(
        w[a, b]
        * (
            q[a, b]
            - p[a] @ phi @ p[b]
            - 0.25 * (x.T @ vinv @ second[(a, b)] @ vinv @ x if (a, b) in second else 0.0)
        )
        for a, b in itertools.product(range(k), repeat=2)
    )
    return phi, phi + 2 * phi @ u @ phi, p, w
