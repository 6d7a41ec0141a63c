"""GEE CR2 sandwich and its Satterthwaite df against R clubSandwich's vcovCR(type = "CR2") and
coef_test(test = "Satterthwaite") on geepack::geeglm fits (tests/reference/r_clubsandwich_gee):
exchangeable and independence, gaussian and binomial, geeCRT's two sample trials and the seeded
trial with cells of 40-80; every coefficient."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pathfinder_eval.estimators.stepped_wedge.gee_estimator import SteppedWedgeGEE
from pathfinder_eval.settings import Inference
from sw_helpers import panel_from_records
from test_reference_geepack import _raw, moment_fit

HERE = Path(__file__).resolve().parent / "reference"
REF = pd.read_csv(HERE / "r_clubsandwich_gee" / "values.csv")
# Same fit (geeglm to epsilon 1e-12, ours to 1e-10) and the same closed-form CR2: only
# convergence and rounding separate them (observed: SE 6e-13, df 4e-11).
SE_TOL = 1e-6
DF_TOL = 1e-6
FITS = sorted(set(REF[["dataset", "family", "correlation"]].itertuples(index=False, name=None)))


@pytest.mark.parametrize(("dataset", "family", "correlation"), FITS)
def test_cr2_and_satterthwaite_df_match_clubsandwich(dataset, family, correlation):
    fit = moment_fit(dataset, family, correlation)
    p = len(fit.beta)
    ref = REF[(REF.dataset == dataset) & (REF.family == family) & (REF.correlation == correlation)]
    assert len(ref) == 2 * p
    for row in ref.itertuples():
        k = int(row.parameter[4:])
        if row.quantity == "cr2.se":
            got, tol = float(np.sqrt(fit.vcov["CR2"][k, k])), SE_TOL
        else:
            got, tol = fit.cr2.satterthwaite_df(np.eye(p)[k]), DF_TOL
        assert abs(got - row.value) <= tol, (row.parameter, row.quantity, got, row.value)
    # CR2 is not the uncorrected sandwich: the correction is visible at this size
    assert fit.vcov["CR2"][p - 1, p - 1] > 1.05 * fit.vcov["BC0"][p - 1, p - 1]


def test_estimator_cr2_reports_clubsandwich_se_and_df(tmp_path):
    """Through the panel: inference cr2 reports the treatment row's CR2 SE, its Satterthwaite df
    and the t interval on those df, and says so in the label and the facts."""
    raw, cluster, trt = _raw("geecrt_small")
    panel = panel_from_records(raw, cluster, trt, "y_con", tmp_path)
    est = SteppedWedgeGEE(
        correlation="exchangeable", correlation_method="moment", inference=Inference(method="cr2")
    )
    res = est.fit(panel, "y", "a")
    ref = REF[(REF.dataset == "geecrt_small") & (REF.family == "gaussian")]
    ref = ref[ref.correlation == "exchangeable"].set_index(["parameter", "quantity"])["value"]
    row = res.table.iloc[0]
    assert row["std_error"] == pytest.approx(ref[("beta4", "cr2.se")], abs=SE_TOL)
    assert row["df"] == pytest.approx(ref[("beta4", "satterthwaite.df")], abs=DF_TOL)
    from scipy import stats

    half = stats.t.ppf(0.975, row["df"]) * row["std_error"]
    assert row["ci_upper"] - row["estimate"] == pytest.approx(half, rel=1e-9)
    assert res.inference.key == "gee_cr2" and "Satterthwaite" in res.inference.label
    assert res.facts.se_used == "CR2" and "Satterthwaite" in res.facts.df_rule
