"""Two-stage DiD (estimators/did/two_stage.py): pyfixest's did2s on mpdta
(tests/reference/did2s_mpdta, script beside the values), the imputation estimator's identical
estimates, the GMM variance as a sandwich of the stacked scores, and the default inference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pathfinder_eval as pe
from did_helpers import MPDTA, regional_panel, wide_frame
from pathfinder_eval.errors import EstimationError
from pathfinder_eval.estimators.did.imputation import Imputation, imputation
from pathfinder_eval.estimators.did.two_stage import TwoStage, two_stage
from pathfinder_eval.settings import Inference

REF = Path(__file__).parent / "reference" / "did2s_mpdta"


@pytest.fixture(scope="module")
def mpdta():
    data = pd.read_csv(MPDTA)
    data = data[data["first.treat"] != 2004]
    cohort = data["first.treat"].where(data["first.treat"] > 0).to_numpy(float)
    return data, (
        data["lemp"].to_numpy(),
        data["countyreal"].to_numpy(),
        data["year"].to_numpy(),
        cohort,
    )


def test_matches_pyfixest_did2s(mpdta):
    """Estimates to 1e-9 and GMM standard errors to 1e-8 relative."""
    _, args = mpdta
    fit = two_stage(*args)
    ref = pd.read_csv(REF / "values.csv")
    assert len(ref) == 3
    for j, r in enumerate(ref.itertuples()):
        assert fit.estimate[j] == pytest.approx(r.estimate, rel=1e-9)
        assert np.sqrt(fit.vcov[j, j]) == pytest.approx(r.std_error, rel=1e-8)


def test_estimates_are_the_imputation_estimators(mpdta):
    """Gardner (2022): the two-stage estimates equal BJS's imputation estimates, overall and
    by event time, and the weights reproduce them."""
    _, args = mpdta
    fit = two_stage(*args)
    bjs = imputation(args[0].astype(float), *args[1:])
    np.testing.assert_allclose(fit.estimate, bjs.estimate, atol=1e-12)
    np.testing.assert_allclose(fit.weights @ args[0], fit.estimate, atol=1e-12)


def test_units_never_untreated_are_left_out(mpdta):
    """A unit treated in every period has no level to learn: its cells are left out, and the
    estimates are those without it."""
    _, (y, unit, year, cohort) = mpdta
    always = np.where(unit == unit[0], 2003.0, cohort)
    fit = two_stage(y, unit, year, always)
    assert (~fit.kept).sum() == 5
    keep = unit != unit[0]
    np.testing.assert_allclose(
        fit.estimate, two_stage(y[keep], unit[keep], year[keep], cohort[keep]).estimate
    )
    with pytest.raises(EstimationError, match="no treated cell"):
        two_stage(y, unit, year, np.full(len(y), 2003.0))


def test_default_inference_on_a_panel(tmp_path):
    """5 treated LAs: the pooled variance, identical to the imputation estimator's (same
    weights); 12 spread treated LAs without regional shocks: the imputation estimator's
    cohort-stratified variance; asked for, did2s's GMM variance with t(G−1)."""
    panel = regional_panel(tmp_path, [0, 17, 33, 50, 71], shock_sd=0.5, seed=3)
    ours, bjs = TwoStage().fit(panel, "y", "a"), Imputation().fit(panel, "y", "a")
    assert ours.inference.key == "pooled_panel"
    np.testing.assert_allclose(ours.table["estimate"], bjs.table["estimate"], rtol=1e-10)
    np.testing.assert_allclose(ours.table["std_error"], bjs.table["std_error"], rtol=1e-10)
    treated = [r * 15 + j for r in range(8) for j in range(2)][:12]
    spread = regional_panel(tmp_path, treated, shock_sd=0.0, seed=5)
    small = TwoStage().fit(spread, "y", "a")
    assert small.inference.key == "cohort_stratified"
    bjs = Imputation().fit(spread, "y", "a")
    np.testing.assert_allclose(small.table["std_error"], bjs.table["std_error"], rtol=1e-10)
    gmm = TwoStage(inference=Inference(method="cluster_robust")).fit(spread, "y", "a")
    assert gmm.inference.key == "two_stage_gmm"
    assert (gmm.table["df"] == gmm.n_units - 1).all()


def test_clustered_by_a_unit_table_column(tmp_path):
    """inference.cluster names a column of the unit table (did2s's cluster_var): the GMM
    variance sums the scores within it, t(G−1) with G its clusters; the default keeps that
    variance, since the small-sample and pooled variances treat units as independent."""
    import pathfinder_eval as pe

    data = pd.read_csv(MPDTA)
    data = data[data["first.treat"] != 2004].assign(
        first=lambda f: f["first.treat"].where(f["first.treat"] > 0),
        state=lambda f: f["countyreal"] % 23,
    )
    args = {"outcome": "lemp", "unit": "countyreal", "time": "year", "first_treated": "first"}
    fit = pe.two_stage(data, **args, cluster="state", inference="cluster_robust")
    cohort = data["first"].to_numpy(float)
    core = two_stage(
        data["lemp"].to_numpy(),
        data["countyreal"].to_numpy(),
        data["year"].to_numpy(),
        cohort,
        cluster=data["state"].to_numpy(),
    )
    np.testing.assert_allclose(fit.table["std_error"], np.sqrt(np.diag(core.vcov)), rtol=1e-12)
    assert not np.allclose(
        fit.table["std_error"],
        pe.two_stage(data, **args, inference="cluster_robust").table["std_error"],
    )
    assert (fit.table["df"] == 22).all() and fit.n_units == data["countyreal"].nunique()
    assert fit.inference.label.startswith("did2s GMM standard errors")
    assert "clustered by state (23 clusters)" in fit.inference.label
    few = regional_panel(tmp_path, [0, 17, 33, 50, 71], shock_sd=0.5, seed=3)
    by_region = TwoStage(inference=Inference(cluster="region")).fit(few, "y", "a")
    assert TwoStage().fit(few, "y", "a").inference.key == "pooled_panel"  # by unit: pooled
    assert by_region.inference.key == "two_stage_gmm" and by_region.inference.chosen_by_default
    assert "clustered by region (" in by_region.inference.label


def test_untreated_cells_that_do_not_connect_units_and_periods_are_refused():
    """u2's untreated cell (2011) is missing, so no untreated cell links it to the others:
    SuperLU's "Factor is exactly singular" reached the user (found by fuzzing); now the
    imputation estimator's refusal."""
    nan = np.nan
    frame = wide_frame(
        {
            "u0": [nan, 1.14, 0.71, 0.62],
            "u1": [2.91, 4.57, 2.78, 1.50],
            "u2": [nan, -1.37, nan, 0.37],
        },
        {"u1": 2012, "u2": 2012},
    )
    kw = {"outcome": "y", "unit": "unit", "time": "year", "first_treated": "first"}
    for fit in (pe.two_stage, pe.imputation):
        with pytest.raises(EstimationError, match="do not connect all units and periods"):
            fit(frame, **kw)
