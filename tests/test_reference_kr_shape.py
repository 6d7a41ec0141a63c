"""The Kenward-Roger F test that the intervention effect does not change with exposure time
(exposure-time indicators against the immediate-effect model they nest) against pbkrtest's
KRmodcomp (tests/reference/r_pbkrtest_effect_shape)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pathfinder_eval.estimators.stepped_wedge.design import trial_arrays
from pathfinder_eval.estimators.stepped_wedge.lmm import (
    fit_reml,
    fixed_effects,
    kenward_roger_f,
    small_sample,
)
from sw_helpers import dataset_panel

REF = pd.read_csv(
    Path(__file__).resolve().parent / "reference" / "r_pbkrtest_effect_shape" / "values.csv"
)
FITS = sorted(set(zip(REF["dataset"], REF["model"], strict=True)))


@pytest.mark.parametrize(("dataset", "model"), FITS)
def test_constant_effect_f_test_matches_krmodcomp(tmp_path, dataset, model):
    """Statistic (scaled), numerator and denominator df, scaling and p-value: 1e-6 relative
    (both sides optimise the same REML criterion to ~1e-9)."""
    panel = dataset_panel(dataset, tmp_path)
    trial = trial_arrays(panel.outcome_cells("y"), panel.periods)
    fe = fixed_effects(trial.cells.observed, trial.start, "exposure_time")
    fit = fit_reml(trial.cells, fe.X, model)
    ss = small_sample(fit, trial.cells, fe.X)
    effect = list(fe.effect)
    lmat = np.zeros((len(effect) - 1, fe.X.shape[2]))
    lmat[:, effect[0]] = -1.0
    lmat[np.arange(len(effect) - 1), effect[1:]] = 1.0
    test = kenward_roger_f(ss, fit.vcov, lmat, fit.beta)
    ref = REF[(REF["dataset"] == dataset) & (REF["model"] == model)].set_index("quantity")["value"]
    assert test.df_num == ref["df_num"]
    assert test.statistic == pytest.approx(ref["statistic"], rel=1e-6)
    assert test.df_den == pytest.approx(ref["df_den"], rel=1e-6)
    assert test.p_value == pytest.approx(ref["p_value"], rel=1e-6)
    assert test.scaling == pytest.approx(ref["scaling"], rel=1e-6)
