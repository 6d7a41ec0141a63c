"""TWFE DiD and event study against R: lm + sandwich::vcovCL (tests/reference/r_sandwich_twfe)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from did_helpers import make_panel
from pathfinder_eval.estimators.did.twfe import EventStudy, TwoWayFixedEffects

REF = Path(__file__).resolve().parent / "reference" / "r_sandwich_twfe"
# Same least-squares algebra in two implementations: only floating-point rounding differs.
REL_TOL = 1e-8


@pytest.fixture(scope="module")
def reference():
    return pd.read_csv(REF / "values.csv", dtype={"term": str})


def panel(tmp_path):
    frame = pd.read_csv(REF / "panel.csv")
    starts: dict[int, list[str]] = {}
    for unit, cohort in frame.groupby("unit")["cohort"].first().items():
        if cohort > 0:
            starts.setdefault(int(cohort), []).append(unit)
    return make_panel(tmp_path, frame[["unit", "period", "y"]], starts)


def test_twfe_matches_r(tmp_path, reference):
    from pathfinder_eval.settings import Inference

    cr1 = Inference(method="cluster_robust", absorbed_effects="counted")  # R lm + vcovCL
    res = TwoWayFixedEffects(inference=cr1).fit(panel(tmp_path), "y", "a")
    ref = reference[reference["model"] == "twfe"].iloc[0]
    assert res.table.loc[0, "estimate"] == pytest.approx(ref["estimate"], rel=REL_TOL)
    assert res.table.loc[0, "std_error"] == pytest.approx(ref["std_error"], rel=REL_TOL)


def test_event_study_matches_r(tmp_path, reference):
    from pathfinder_eval.settings import Inference

    cr1 = Inference(method="cluster_robust", absorbed_effects="counted")  # R lm + vcovCL
    res = EventStudy(min_lead=-3, max_lag=2, inference=cr1).fit(panel(tmp_path), "y", "es")
    got = res.table.set_index("event_time")
    ref = reference[reference["model"] == "event_study"].set_index("term")
    for e in (-3, -2, 0, 1, 2):
        assert got.loc[e, "estimate"] == pytest.approx(ref.loc[str(e), "estimate"], rel=REL_TOL)
        assert got.loc[e, "std_error"] == pytest.approx(ref.loc[str(e), "std_error"], rel=REL_TOL)


def test_event_study_cr2_with_few_treated_matches_clubsandwich(tmp_path):
    """7 of 30 units treated: CR2 with Satterthwaite df per coefficient (the default before
    issue 16, now chosen by name), as R clubSandwich computes it
    (tests/reference/r_clubsandwich_twfe, lm with unit and period factors)."""
    from pathfinder_eval.settings import Inference

    cr2 = Inference(method="cr2")
    res = EventStudy(min_lead=-3, max_lag=2, inference=cr2).fit(panel(tmp_path), "y", "es")
    ref = pd.read_csv(REF.parent / "r_clubsandwich_twfe" / "values.csv")
    ref = ref[ref["data"] == "sandwich_panel_es"].set_index("term")
    got = res.table.set_index("event_time")
    for e in (-3, -2, 0, 1, 2):
        r = ref.loc[f"e{e + 10}"]
        for col in ("estimate", "std_error"):
            assert got.loc[e, col] == pytest.approx(r[col], rel=1e-8)
        assert got.loc[e, "df"] == pytest.approx(r["df"], rel=1e-6)
        assert got.loc[e, "p_value"] == pytest.approx(r["p_value"], rel=1e-6)
    assert "CR2" in res.inference.label
    assert res.diagnostics["inference_method"] == "cr2" and not res.warnings
    pre = res.diagnostics["pretrend_test"]
    assert pre["df_denom"] == pytest.approx(min(got.loc[[-3, -2], "df"]), rel=1e-12)


def test_twfe_small_sample_inference_options(tmp_path):
    """inference: cr2 reproduces clubSandwich (tests/reference/r_clubsandwich_twfe); the
    randomisation and Conley-Taber options replace the p-value and interval, keep CR1's SE."""
    from pathfinder_eval.settings import Inference

    p = panel(tmp_path)
    ref = pd.read_csv(REF.parent / "r_clubsandwich_twfe" / "values.csv")
    ref = ref[(ref["data"] == "sandwich_panel") & (ref["term"] == "treated")].iloc[0]
    cr2 = TwoWayFixedEffects(inference=Inference(method="cr2")).fit(p, "y", "a")
    row = cr2.table.iloc[0]
    assert row["std_error"] == pytest.approx(ref["std_error"], rel=REL_TOL)
    assert row["df"] == pytest.approx(ref["df"], abs=1e-6)
    assert row["p_value"] == pytest.approx(ref["p_value"], abs=1e-6)
    assert "CR2" in cr2.inference.label
    cr1 = TwoWayFixedEffects(inference=Inference(method="cluster_robust")).fit(p, "y", "a")
    for method in ("randomisation", "conley_taber"):
        res = TwoWayFixedEffects(inference=Inference(method=method, draws=999), seed=1).fit(
            p, "y", "a"
        )
        got = res.table.iloc[0]
        assert got["estimate"] == pytest.approx(cr1.table.loc[0, "estimate"], rel=1e-12)
        assert got["std_error"] == pytest.approx(cr1.table.loc[0, "std_error"], rel=1e-12)
        assert 0 < got["p_value"] <= 1 and got["ci_lower"] < got["estimate"] < got["ci_upper"]


def test_event_study_sensitivity_uses_the_single_event_times(tmp_path):
    """Rambachan & Roth intervals on the unbinned coefficients, widening with M and M̄."""
    import itertools

    import numpy as np

    from pathfinder_eval.inference.honest_did import sensitivity_sd

    est = EventStudy(min_lead=-4, max_lag=2, sensitivity=True)
    res = est.fit(panel(tmp_path), "y", "es")
    sens = res.diagnostics["sensitivity"]
    times = res.table["event_time"].tolist()
    assert sens["event_times"] == [e for e in times if -4 < e < 2]
    idx = [times.index(e) for e in sens["event_times"]]
    n_pre = sum(e < 0 for e in sens["event_times"])
    beta = res.table["estimate"].to_numpy()[idx]
    direct = sensitivity_sd(
        beta, res.vcov[np.ix_(idx, idx)], n_pre, len(idx) - n_pre, [0.0], level=res.level
    )
    assert sens["smoothness"]["rows"][0]["lb"] == pytest.approx(direct.lower[0], abs=1e-12)
    for key in ("smoothness", "relative_magnitudes"):
        widths = [r["ub"] - r["lb"] for r in sens[key]["rows"]]
        assert all(b >= a - 1e-9 for a, b in itertools.pairwise(widths))
