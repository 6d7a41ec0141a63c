"""The cluster bootstrap of de Chaisemartin & D'Haultfœuille's DID_ℓ (did_multiplegt_dyn's
`bootstrap` option): draw the clusters (units, or the `cluster` column's groups) with
replacement, re-estimate every row, and take each row's standard deviation over the draws.

The authors' R code stacks the drawn clusters' rows, so a cluster drawn m times has each of its
cells m times; it then collapses repeated group-period rows into one cell whose weight N_gt is
the sum of theirs. The estimator counts switchers and comparisons by N_gt throughout, so a draw
is the estimator with each cell's weight multiplied by its cluster's multiplicity (clusters not
drawn left out), which is what `draw_fits` re-estimates. A draw in which a row cannot be
estimated (no switcher or no comparison left for it) leaves that row missing, and each row's
standard deviation is over the draws that have it (R's `sd(na.rm = TRUE)`); the covariance of two
rows is over the draws that have both. The reference is normal, as the authors'.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.inference.policy import SMALL_SAMPLE_TREATED


@dataclass(frozen=True)
class BootstrapDraws:
    """`estimates` (draws, k): each draw's rows, NaN where a draw could not estimate one;
    `vcov` (k, k): their pairwise-complete covariance; `failed`: draws that estimated no row;
    `missing` (k,): draws without each row; `n_clusters`: the clusters drawn from."""

    estimates: np.ndarray
    vcov: np.ndarray
    failed: int
    missing: np.ndarray
    n_clusters: int


def cluster_multiplicities(n_clusters: int, draws: int, seed: int) -> np.ndarray:
    """(draws, n_clusters): how often each cluster is drawn when n_clusters are drawn with
    replacement, draw by draw from one seeded generator (the same seed, the same draws)."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n_clusters, size=(draws, n_clusters))
    offsets = np.arange(draws)[:, None] * n_clusters
    counts = np.bincount((picks + offsets).ravel(), minlength=draws * n_clusters)
    return counts.reshape(draws, n_clusters)


def draw_fits(
    refit: Callable[[np.ndarray], tuple[tuple[str, ...], np.ndarray]],
    clusters: np.ndarray,
    labels: tuple[str, ...],
    draws: int,
    seed: int,
) -> BootstrapDraws:
    """Bootstrap the rows named `labels`: `refit(multiplicity)` re-estimates with each grid
    row's weight multiplied by `multiplicity` (n,) (0: the row's cluster was not drawn) and
    returns its row labels and estimates; `clusters` (n,): each grid row's cluster, whose
    multiplicities are drawn in the clusters' sorted order. A refit that raises
    EstimationError is a failed draw."""
    codes, labels_drawn = pd.factorize(clusters, sort=True)
    n_clusters = len(labels_drawn)
    column = {label: j for j, label in enumerate(labels)}
    out = np.full((draws, len(labels)), np.nan)
    failed = 0
    for b, counts in enumerate(cluster_multiplicities(n_clusters, draws, seed)):
        try:
            names, estimates = refit(counts[codes])
        except EstimationError:
            failed += 1
            continue
        for name, value in zip(names, estimates, strict=True):
            if name in column:
                out[b, column[name]] = value
    vcov = pd.DataFrame(out).cov(min_periods=2).to_numpy()  # ddof 1, pairwise complete
    return BootstrapDraws(out, vcov, failed, np.isnan(out).sum(axis=0), n_clusters)


def bootstrap_label(boot: BootstrapDraws, draws: int, seed: int, cluster: str) -> str:
    """The inference label of a bootstrap run: what was drawn, how often, from which seed."""
    what = "units" if cluster in ("unit", "") else f"{cluster} clusters"
    return (
        f"cluster bootstrap: {boot.n_clusters} {what} drawn with replacement {draws:,} times "
        f"(seed {seed}), every row re-estimated, standard deviation over the draws, normal "
        "reference, as did_multiplegt_dyn's bootstrap"
    )


def bootstrap_warnings(
    boot: BootstrapDraws, labels: tuple[str, ...], draws: int, switchers: int
) -> list[str]:
    """What the reader needs to know about the draws: rows some draws could not estimate,
    its size with few switching LAs, and the authors' own caution with few clusters."""
    out = []
    if switchers < SMALL_SAMPLE_TREATED:
        out.append(
            f"Only {switchers} LAs switch: the cluster bootstrap over-rejects with few of them "
            "(in benchmarks/did_validity.py, 13.5% of true nulls rejected at 5% with 3 "
            "treated LAs of 150, 6.5% with 10); the default inference is built for this."
        )
    if boot.failed:
        out.append(
            f"{boot.failed:,} of {draws:,} bootstrap draws could not be estimated at all (no "
            "switcher or no comparison drawn, or another refusal of the estimator): they count "
            "as missing in every row."
        )
    short = [f"{name} ({int(k):,})" for name, k in zip(labels, boot.missing, strict=True) if k]
    if short:
        out.append(
            "Bootstrap draws without a row (the draw could not estimate it) leave it out, so its "
            f"standard deviation is over the other draws, and a row in fewer than 2 draws has "
            f"none; draws missing each row, of {draws:,}: " + ", ".join(short) + "."
        )
    if boot.n_clusters < 30:
        out.append(
            f"The bootstrap draws from only {boot.n_clusters} clusters: with few clusters, and "
            "few switchers among them, its standard errors are unreliable."
        )
    return out
