"""Stepped-wedge LMMs against R (tests/reference/r_lme4_stepped_wedge): lme4 REML fits,
lmerTest Satterthwaite df, pbkrtest Kenward-Roger SE and df, glmmTMB exponential decay."""

from __future__ import annotations

import pandas as pd
import pytest

from pathfinder_eval.estimators.stepped_wedge.design import trial_arrays
from pathfinder_eval.estimators.stepped_wedge.lmm import fixed_effects, profiled_criterion
from pathfinder_eval.estimators.stepped_wedge.lmm_estimator import SteppedWedge
from pathfinder_eval.settings import Inference
from sw_helpers import REF, dataset_panel

# Both sides optimise the same REML criterion to ~1e-9 (R with tightened tolerances): the
# issue's targets hold with room to spare.
BETA_TOL = 1e-6
SE_TOL = 1e-5
VC_TOL = 1e-5
DF_TOL = 1e-3
# lmerTest differentiates the deviance numerically (numDeriv): with a variance within 1e-4 of
# zero (sw_example, spline trend: γ² = 5e-5) its Satterthwaite df carries ~4e-5 relative
# error; ours uses the analytic Hessian (checked against the dense one in test_stepped_wedge).
NEAR_BOUNDARY_DF_REL = 1e-4
# glmmTMB's nlminb stops on the flat decay profile a little short of the optimum (its REML
# criterion is up to 5e-9 above ours): its decay estimates agree to these, not to 1e-6.
TMB_BETA_TOL = 5e-6
TMB_TOL = 5e-5

MODELS = {"hh": "hussey_hughes", "ne": "nested_exchangeable", "ed": "exponential_decay"}
# R shape key → estimator options (effect shape and secular trend)
SHAPES = {
    "it": {"effect": "immediate"},
    "eti": {"effect": "exposure_time"},
    "ncs": {"effect": "spline"},
    "it_linear": {"effect": "immediate", "period_effects": "linear"},
    "it_pspline": {"effect": "immediate", "period_effects": "spline"},
}
# Fits whose spline basis differs from R's splines::ns basis by an invertible linear map: the
# same function space, so the same fit and effect curve, but a REML criterion shifted by a
# constant.
SPLINE_BASES = {"ncs", "it_pspline"}
VALUES = pd.read_csv(REF / "values.csv")
FITS = sorted(set(zip(VALUES["dataset"], VALUES["model"], VALUES["shape"], strict=True)))


def _row(table: pd.DataFrame, term: str) -> pd.Series:
    if term in ("effect", "tate"):
        return table.iloc[0]
    return table[table["event_time"] == int(term[1:])].iloc[0]


@pytest.mark.parametrize(("dataset", "model", "shape"), FITS)
def test_matches_r(tmp_path, dataset, model, shape):
    panel = dataset_panel(dataset, tmp_path)
    ref = VALUES[
        (VALUES["dataset"] == dataset) & (VALUES["model"] == model) & (VALUES["shape"] == shape)
    ].set_index("quantity")["value"]
    est = SteppedWedge(
        model=MODELS[model], **SHAPES[shape], inference=Inference(method="kenward_roger")
    )
    kr = est.fit(panel, "y", "kr")
    satt = SteppedWedge(
        model=MODELS[model], **SHAPES[shape], inference=Inference(method="satterthwaite")
    ).fit(panel, "y", "s")
    comp = kr.diagnostics["variance_components"]
    vc_tol = TMB_TOL if model == "ed" else VC_TOL
    for name in ("tau2", "gamma2", "decay", "sigma2"):
        if name in ref.index:
            assert comp[name] == pytest.approx(ref[name], abs=vc_tol), name
    if shape in SPLINE_BASES:
        pass  # the criterion moves by 2·log|det A| between bases X and XA (same fit)
    elif "reml_criterion" in ref.index:
        assert kr.diagnostics["reml_criterion"] == pytest.approx(ref["reml_criterion"], abs=1e-6)
    else:  # glmmTMB: our optimum is at least as good as its estimates
        trial = trial_arrays(panel.outcome_cells("y"), panel.periods)
        x = fixed_effects(trial.cells.observed, trial.start, "immediate").X
        theirs = [ref["tau2"], ref["decay"], ref["sigma2"]]
        assert (
            kr.diagnostics["reml_criterion"]
            <= profiled_criterion(trial.cells, x, "exponential_decay", theirs) + 1e-9
        )
    beta_tol = TMB_BETA_TOL if model == "ed" else BETA_TOL
    for key in ref.index[ref.index.str.contains(":")]:
        term, quantity = key.split(":")
        got_kr, got_s = _row(kr.table, term), _row(satt.table, term)
        value = ref[key]
        if quantity == "estimate":
            assert got_kr["estimate"] == pytest.approx(value, abs=beta_tol), key
        elif quantity == "std_error":
            assert got_s["std_error"] == pytest.approx(value, abs=vc_tol), key
        elif quantity == "std_error_kr":
            assert got_kr["std_error"] == pytest.approx(value, abs=SE_TOL), key
        elif quantity == "df_satterthwaite":
            tol = DF_TOL
            if 0 < ref.get("gamma2", 1.0) < 1e-4 * ref["sigma2"] and comp["gamma2"] > 0:
                tol = NEAR_BOUNDARY_DF_REL * value
            assert got_s["df"] == pytest.approx(value, abs=tol), key
        elif quantity == "df_kr":
            assert got_kr["df"] == pytest.approx(value, abs=DF_TOL), key
