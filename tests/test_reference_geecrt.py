"""GEE/MAEE against the published geeCRT vignette (tests/reference/geecrt_vignette): geemaee
on sampleSWCRTSmall/Large, continuous and binary outcomes, nested exchangeable and exchangeable
working correlations, MAEE and uncorrected GEE; estimates, MB and BC0–BC3 SEs of β and α, and
the printed iteration count."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pathfinder_eval.estimators.stepped_wedge import gee as sw_gee
from pathfinder_eval.estimators.stepped_wedge.gee import Records, fit_gee, gee_data
from pathfinder_eval.estimators.stepped_wedge.lmm import fixed_effects, summarise_records
from sw_helpers import records

REF = pd.read_csv(
    Path(__file__).resolve().parent / "reference" / "geecrt_vignette" / "values.csv",
    dtype={"value": str},
)
# The vignette prints 7 significant digits: each value must agree to half a unit in its last
# printed digit (e.g. 0.1563400 → 5e-8).
FITS = sorted(set(REF[["block", "dataset", "family", "correlation", "method"]].itertuples(
    index=False, name=None
)))  # fmt: skip
VIGNETTE_TOL = 1e-3  # geeCRT's `epsilon` in the vignette calls: the same stopping point


def _half_ulp(value: str) -> float:
    return 0.5 * 10.0 ** -len(value.split(".")[1])


@pytest.mark.parametrize(("block", "dataset", "family", "correlation", "method"), FITS)
def test_matches_vignette(monkeypatch, block, dataset, family, correlation, method):
    raw, cluster, trt, _ = records(f"geecrt_{dataset}")
    if family == "poisson":  # geeCRT 1.1.4 count model: φ, not φ·μ, on the diagonal of V
        monkeypatch.setattr(sw_gee, "_individual_variance", lambda fam, v, phi: phi + 0 * v)
    cl, pe = raw[cluster].to_numpy() - 1, raw["period"].to_numpy() - 1
    y = raw["y_con" if family == "gaussian" else "y_bin"].to_numpy(float)
    shape = (cl.max() + 1, pe.max() + 1)
    cells = summarise_records(cl, pe, y, shape)
    start = raw[raw[trt] == 1].groupby(cluster)["period"].min().reindex(range(1, shape[0] + 1))
    X = fixed_effects(cells.observed, start.fillna(shape[1] + 1).to_numpy(int) - 1, "immediate").X
    data = gee_data(cells, X, Records(cl * shape[1] + pe, y))
    fit = fit_gee(data, family, correlation, method, tol=VIGNETTE_TOL)
    p = len(fit.beta)
    ref = REF[REF["block"] == block]
    for row in ref.itertuples():
        if row.quantity == "iterations_printed":
            assert fit.iterations + 1 == int(row.value)
            continue
        if row.parameter.startswith("beta"):
            k = int(row.parameter[4:])
            est = fit.beta[k]
        else:
            k = p + fit.alpha_names.index(row.parameter)
            est = fit.alpha[k - p]
        got = est if row.quantity == "estimate" else np.sqrt(fit.vcov[row.quantity][k, k])
        assert abs(got - float(row.value)) <= _half_ulp(row.value) + 1e-12, (
            row.parameter,
            row.quantity,
        )
