"""Reproduce the HonestDiD README's Medicaid event study (betahat, sigma) from ehec.csv.

Specification (README, "Estimate the baseline DiD"): years before 2016, states first treated in
2015 dropped, D = 1 for 2014 adopters (never-treated states are the comparison group);
OLS of dins on year x D indicators (2013 omitted) with state and year fixed effects, unweighted;
covariance clustered by state with fixest's default small-sample factor
G/(G-1) * (n-1)/(n-K), K = 15 (7 event-study coefficients + 8 year effects; the state effects
are nested in the clusters and not counted). Run `python event_study.py` to rewrite
betahat_sigma.csv.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[2] / "src" / "pathfinder_eval" / "replications" / "data" / "ehec.csv"
TERMS = ("2008", "2009", "2010", "2011", "2012", "2014", "2015")


def event_study(path: Path = DATA) -> tuple[np.ndarray, np.ndarray]:
    """(betahat, sigma) in the order 2008..2012, 2014, 2015."""
    df = pd.read_csv(path)
    df = df[(df["year"] < 2016) & (df["yexp2"].isna() | (df["yexp2"] != 2015))]
    d = (df["yexp2"] == 2014).to_numpy(float)
    year = df["year"].to_numpy()
    x = np.column_stack([(year == int(t)) * d for t in TERMS])
    states = pd.get_dummies(df["stfips"]).to_numpy(float)
    years = pd.get_dummies(df["year"]).to_numpy(float)[:, 1:]
    z = np.column_stack([x, states, years])
    y = df["dins"].to_numpy(float)
    coef, *_ = np.linalg.lstsq(z, y, rcond=None)
    resid = y - z @ coef
    bread = np.linalg.inv(z.T @ z)
    g = df["stfips"].to_numpy()
    scores = np.array([z[g == c].T @ resid[g == c] for c in np.unique(g)])
    n, n_clusters, k = len(y), len(scores), 7 + years.shape[1] + 1
    vcov = bread @ scores.T @ scores @ bread
    vcov *= n_clusters / (n_clusters - 1) * (n - 1) / (n - k)
    return coef[:7], vcov[:7, :7]


if __name__ == "__main__":
    beta, sigma = event_study()
    frame = pd.DataFrame(sigma, columns=[f"sigma_{t}" for t in TERMS])
    frame.insert(0, "betahat", beta)
    frame.insert(0, "term", [f"year{t}:D" for t in TERMS])
    frame.to_csv(HERE / "betahat_sigma.csv", index=False, float_format="%.17g")
