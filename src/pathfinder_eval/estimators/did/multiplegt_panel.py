"""How de Chaisemartin & D'Haultfœuille's code prepares a panel before estimating: every
unit × period with its treatment (known or not), each unit's cluster, and the authors' rules
for treatments that are not known in some periods (estimators/did/multiplegt_dyn.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pathfinder_eval.errors import EstimationError


def unit_period_grid(cells: pd.DataFrame, treatment: pd.DataFrame | None) -> pd.DataFrame:
    """Every unit × period of the outcome's cells: y (NaN where the cell is missing), the
    treatment (the data's treatment column when given, so it may pause or stop, NaN where
    not known; else treated from the unit's start on), and the cell's row (−1 if none)."""
    units = np.array(sorted(set(cells["unit"])), dtype=object)
    periods = np.array(sorted(set(cells["period"])))
    grid = pd.MultiIndex.from_product([units, np.asarray(periods)], names=["unit", "period"])
    frame = grid.to_frame(index=False)
    index = pd.Series(
        np.arange(len(cells)), index=pd.MultiIndex.from_frame(cells[["unit", "period"]])
    )
    frame["cell"] = index.reindex(grid).fillna(-1).astype(int).to_numpy()
    frame["y"] = cells["y"].to_numpy(float)[frame["cell"]].copy()
    frame.loc[frame["cell"] < 0, "y"] = np.nan
    if treatment is not None:  # a unit-period without a row: its treatment is not known
        given = treatment.set_index(["unit", "period"])["treatment"]
        frame["treated"] = given.reindex(grid).to_numpy(float)
        return frame
    cohort = cells.groupby("unit")["cohort"].first().reindex(units).to_numpy(float)
    start = np.repeat(cohort, len(periods))
    frame["treated"] = (frame["period"].to_numpy() >= start).astype(float)
    return frame


def group_clusters(
    cluster: np.ndarray,
    g_code: np.ndarray,
    names: pd.Index,
    what: str = "cluster",
    where: str = "inference.cluster",
) -> tuple[np.ndarray, np.ndarray]:
    """(G,) cluster codes of the groups from each row's cluster, and the clusters' labels
    (sorted; the codes index them); a group in two is an error. `what` and `where` name the
    grouping in errors (a cluster, or the strata of trends_nonparam)."""
    codes, levels = pd.factorize(np.asarray(cluster), sort=True)
    if (codes < 0).any():
        raise EstimationError(
            f"the {what} is missing in some rows",
            where=where,
            row=int(np.flatnonzero(codes < 0)[0]) + 1,
            fix=f"give every unit its {what}",
        )
    out = np.full(len(names), -1)
    out[g_code] = codes
    if (out[g_code] != codes).any():
        g = int(g_code[np.flatnonzero(out[g_code] != codes)[0]])
        raise EstimationError(
            f"unit {names[g]} lies in more than one {what}: units must be nested in them",
            where=where,
            fix=f"use a grouping of units (e.g. region), one {what} per unit",
        )
    return out, np.asarray(levels)


def missing_treatments(
    d: np.ndarray,
    ymat: np.ndarray,
    base: np.ndarray,
    first_seen: np.ndarray,
    f: np.ndarray,
    t_max: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The authors' rules for treatments missing in some periods; returns the filled
    treatment (G, T), the outcomes still usable, F_g, and F_g truncated where a group stops
    being a control. A switcher's gaps before its last known treatment before F_g take its
    baseline; if that treatment is known only up to LD_g < F_g − 1 the switch date is
    unknown, so the group becomes a control up to LD_g and its later outcomes are not used;
    otherwise its gaps after F_g take the treatment at F_g. A non-switcher's gaps between
    known treatments take its baseline, and its outcomes after its last known treatment are
    not used (nor is it a control there). Cells whose treatment stays unknown are not used."""
    n_g, n_t = d.shape
    t = np.arange(1, n_t + 1)[None, :]
    known = ~np.isnan(d)
    start = first_seen[:, None] + 1  # 1-based, as f
    switching = f <= t_max
    ld = np.where(known & (t < f[:, None]), t, 0).max(axis=1)  # last known before F_g
    d = np.where(switching[:, None] & ~known & (t > start) & (t < ld[:, None]), base[:, None], d)
    unsure = switching & (ld < f - 1)
    ymat = np.where(unsure[:, None] & (t > ld[:, None]), np.nan, ymat)
    f = np.where(unsure, t_max + 1, f)
    switching &= ~unsure
    at_switch = d[np.arange(n_g), np.minimum(f, n_t).astype(int) - 1]
    d = np.where(switching[:, None] & np.isnan(d) & (t > f[:, None]), at_switch[:, None], d)
    never = f == t_max + 1
    last_seen = n_t - known[:, ::-1].argmax(axis=1)  # 1-based
    gap = never[:, None] & np.isnan(d) & (t > start) & (t < last_seen[:, None])
    d = np.where(gap, base[:, None], d)
    ymat = np.where(never[:, None] & (t > last_seen[:, None]), np.nan, ymat)
    ymat = np.where(np.isnan(d), np.nan, ymat)
    f_trunc = np.where(never, np.minimum(f, last_seen + 1), f)
    return d, ymat, f, f_trunc
