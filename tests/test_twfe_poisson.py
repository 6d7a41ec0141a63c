"""Poisson QMLE TWFE (estimators/twfe_poisson.py) against R glm(poisson, offset) +
sandwich::vcovCL (tests/reference/r_poisson_twfe), and the panel-level estimator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from did_helpers import PANEL_DESIGN as DESIGN
from pathfinder_eval.data.source import LONG_COLUMNS, OutcomeData
from pathfinder_eval.errors import EstimationError
from pathfinder_eval.estimators.did.twfe_poisson import PoissonTWFE, poisson_twfe
from pathfinder_eval.panel import OutcomeInfo, build_panel
from pathfinder_eval.spec import load_design

REF = Path(__file__).resolve().parent / "reference" / "r_poisson_twfe"
# Newton iterations to 1e-12 in both; CR1 algebra identical: rounding only.
REL_TOL = 1e-8


@pytest.fixture(scope="module")
def frame():
    return pd.read_csv(REF / "panel.csv")


@pytest.fixture(scope="module")
def reference():
    return pd.read_csv(REF / "values.csv").iloc[0]


def test_function_matches_r(frame, reference):
    fit = poisson_twfe(
        frame["count"],
        frame["population"],
        frame["treated"],
        frame["unit"],
        frame["period"],
        frame["unit"],
    )
    assert fit.estimate == pytest.approx(reference["estimate"], rel=REL_TOL)
    assert fit.std_error == pytest.approx(reference["std_error"], rel=REL_TOL)
    assert fit.n_params == reference["n_params"] and fit.n_obs == reference["n_obs"]
    assert fit.n_clusters == 30 and fit.converged


def test_matches_pyfixest_if_installed(frame):
    pf = pytest.importorskip("pyfixest")
    d = frame.assign(lpop=np.log(frame["population"]))
    m = pf.fepois("count ~ treated | unit + period", data=d, offset="lpop", vcov={"CRV1": "unit"})
    fit = poisson_twfe(d["count"], d["population"], d["treated"], d["unit"], d["period"], d["unit"])
    assert fit.estimate == pytest.approx(float(m.coef()["treated"]), rel=1e-6)


def panel(tmp_path, frame, with_counts=True):
    starts = sorted(set(frame.loc[frame["treated"] == 1, "unit"]))
    first = int(frame.loc[frame["treated"] == 1, "period"].min())
    waves = f"  - {{wave: w{first}, start: {first}, units: [{', '.join(starts)}]}}"
    path = tmp_path / "d.yaml"
    path.write_text(DESIGN.format(waves=waves))
    spec = load_design(path)
    long = frame.assign(
        outcome="y",
        value=frame["count"] / frame["population"] * 1000,
        numerator=frame["count"].astype(float) if with_counts else np.nan,
        denominator=frame["population"].astype(float) if with_counts else np.nan,
        status="",
        source="test",
    )[list(LONG_COLUMNS)]
    units = pd.DataFrame({"unit": sorted(set(frame["unit"]))})
    units["name"], units["region"] = units["unit"], ""
    data = OutcomeData(long, units, "tidy")
    return build_panel(spec, data, lambda o: OutcomeInfo(o, o, "rate", "neutral", True))


def test_estimator_on_panel_matches_r(tmp_path, frame, reference):
    res = PoissonTWFE().fit(panel(tmp_path, frame), "y", "a")
    row = res.table.iloc[0]
    assert res.estimator == "twfe_poisson"
    assert row["estimate"] == pytest.approx(reference["estimate"], rel=REL_TOL)
    assert row["std_error"] == pytest.approx(reference["std_error"], rel=REL_TOL)
    assert row["df"] == 29 and res.n_units == 30 and res.n_treated == 10
    assert res.diagnostics["rate_ratio"] == pytest.approx(np.exp(row["estimate"]))
    assert row["ci_lower"] < row["estimate"] < row["ci_upper"]


def test_estimator_without_counts_is_an_estimation_error(tmp_path, frame):
    with pytest.raises(
        EstimationError, match=r"has no counts \(numerator\) and no populations \(denominator\)"
    ) as err:
        PoissonTWFE().fit(panel(tmp_path, frame, with_counts=False), "y", "a")
    assert err.value.fix and err.value.where


def test_all_zero_units_are_dropped_with_a_warning(tmp_path, frame):
    zeroed = frame.copy()
    zeroed.loc[zeroed["unit"] == "u29", "count"] = 0
    res = PoissonTWFE().fit(panel(tmp_path, zeroed), "y", "a")
    assert res.diagnostics["dropped_all_zero_units"] == ["u29"]
    assert res.n_units == 29 and any("zero counts" in w for w in res.warnings)
    # counted among the exclusions, as every left-out row (it was a warning only: review)
    assert [(d.rows, d.units) for d in res.dropped] == [((zeroed["unit"] == "u29").sum(), ("u29",))]
    assert res.dropped[0].reason.startswith("unit with zero counts in every period")


def test_class_contract():
    est = PoissonTWFE()
    assert est.name == "twfe_poisson"
    assert est.inference_methods == frozenset({"default", "cluster_robust"})
    with pytest.raises(ValueError, match="frozen"):
        est.inference = None  # type: ignore[misc]
