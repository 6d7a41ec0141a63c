"""CR1's small-sample factor follows fixest and Stata: unit effects nested in the unit clusters
are not counted (tests/reference/pyfixest_nested_cr1, from pyfixest, to 1e-8 relative); the
R lm + vcovCL convention stays available as `inference.absorbed_effects: counted`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pathfinder_eval as pe
from pathfinder_eval.settings import Inference

ROOT = Path(__file__).resolve().parents[1]
REF = ROOT / "tests" / "reference" / "pyfixest_nested_cr1"
DATA = ROOT / "src" / "pathfinder_eval" / "replications" / "data"
RTOL = 1e-8  # both solve the same least squares; the SEs differ only by rounding


def reference(data: str) -> pd.DataFrame:
    values = pd.read_csv(REF / "values.csv")
    return values[values["data"] == data].set_index("term")


def event_time(term: str) -> int:
    return -int(term[3:]) if term.startswith("e_m") else int(term[2:])


def check_event_study(res, data: str) -> None:
    ref = reference(data)
    got = res.table.set_index("event_time")
    assert len(got) == len(ref)
    for term, row in ref.iterrows():
        e = event_time(term)
        assert got.loc[e, "estimate"] == pytest.approx(row["estimate"], rel=RTOL)
        assert got.loc[e, "std_error"] == pytest.approx(row["std_error"], rel=RTOL)


def ehec() -> pd.DataFrame:
    d = pd.read_csv(DATA / "ehec.csv").query("year < 2016 and yexp2 != 2015")
    return d.assign(g=np.where(d["yexp2"] == 2014, 2014, 0))


def test_castle_twfe_matches_fixest():
    castle = pd.read_csv(DATA / "castle.csv", usecols=["sid", "year", "post", "l_homicide"])
    res = pe.twfe(castle, outcome="l_homicide", unit="sid", time="year", treatment="post",
                  inference="cluster_robust")  # fmt: skip
    ref = reference("castle_twfe").loc["post"]
    row = res.table.iloc[0]
    assert row["estimate"] == pytest.approx(ref["estimate"], rel=RTOL)
    assert row["std_error"] == pytest.approx(ref["std_error"], rel=RTOL)
    assert "nested in the clusters not counted" in res.inference.label


def test_la_shaped_panel_matches_fixest():
    la = pd.read_csv(REF / "la_panel.csv")
    cols = {"outcome": "y", "unit": "la", "time": "year", "first_treated": "g"}
    twfe = pe.twfe(la, **cols, inference="cluster_robust")
    ref = reference("la_twfe").loc["d"]
    assert twfe.table["std_error"].iloc[0] == pytest.approx(ref["std_error"], rel=RTOL)
    es = pe.event_study(la, **cols, min_lead=-3, max_lag=2, inference="cluster_robust")
    check_event_study(es, "la_event_study")


def test_counted_convention_is_the_lm_vcovcl_factor():
    """Counting every absorbed effect multiplies the variance by (N − p − T)/(N − p − G − T + 1),
    p regressors, G units, T periods: the ratio of the two (N − 1)/(N − K) factors."""
    la = pd.read_csv(REF / "la_panel.csv")
    cols = {"outcome": "y", "unit": "la", "time": "year", "first_treated": "g"}
    nested = pe.twfe(la, **cols, inference="cluster_robust")
    counted = pe.twfe(la, **cols, inference=Inference(method="cluster_robust",
                                                      absorbed_effects="counted"))  # fmt: skip
    n, p, g, t = len(la), 1, la["la"].nunique(), la["year"].nunique()
    ratio = (counted.table["std_error"].iloc[0] / nested.table["std_error"].iloc[0]) ** 2
    assert ratio == pytest.approx((n - p - t) / (n - p - g - t + 1), rel=1e-12)
    assert "every absorbed effect counted" in counted.inference.label


def test_ehec_event_study_and_honestdid_readme_through_the_api():
    """The HonestDiD README's event study (2014 adopters against the rest, years before 2016)
    with fixest's CR1, then its smoothness and relative-magnitudes tables within their printed
    precision (tolerances as the replication's: replications/honestdid.py)."""
    from pathfinder_eval.replications import honestdid as h

    es = pe.event_study(ehec(), outcome="dins", unit="stfips", time="year", first_treated="g",
                        min_lead=-6, max_lag=1, inference="cluster_robust")  # fmt: skip
    check_event_study(es, "ehec_event_study")
    sd = pe.honest_did(es, list(h.M_SD))
    for (lo, hi), got_lo, got_hi in zip(h._SD_PRINTED, sd.lower, sd.upper, strict=True):
        assert got_lo == pytest.approx(lo, abs=h._three_digits(lo) + 3e-5)
        assert got_hi == pytest.approx(hi, abs=h._three_digits(hi) + 3e-5)
    rm = pe.honest_did(es, list(h.M_RM), "relative_magnitudes")
    for (lo, hi), got_lo, got_hi in zip(h._RM_PRINTED, rm.lower, rm.upper, strict=True):
        assert got_lo == pytest.approx(lo, abs=h._three_digits(lo) + 5.5e-4)
        assert got_hi == pytest.approx(hi, abs=h._three_digits(hi) + 5.5e-4)


def test_design_file_event_study_sensitivity_reproduces_the_honestdid_readme(tmp_path):
    """The same through a design file: `event_study` with `sensitivity: true` and the README's
    M and M̄ (leads from −6 and the lag 1 kept as single event times: min_lead −7, max_lag 2)."""
    from pathfinder_eval.pipeline import evaluate
    from pathfinder_eval.replications import honestdid as h
    from pathfinder_eval.spec import load_design

    d = ehec()
    d.to_csv(tmp_path / "ehec.csv", index=False)
    treated = sorted(d.loc[d["g"] > 0, "stfips"].astype(str).unique())
    m, mbar = ", ".join(map(str, h.M_SD)), ", ".join(map(str, h.M_RM))
    (tmp_path / "d.yaml").write_text(
        f"""name: ehec
title: ehec
pilot: custom
unit_level: cluster
time: {{axis: period}}
rollout: [{{wave: w, start: 2014, units: [{", ".join(repr(u) for u in treated)}]}}]
comparison: {{pool: never_treated, min_units: 1}}
outcomes: [{{column: dins}}]
analyses:
  - id: es
    estimator: event_study
    inference: {{method: cluster_robust}}
    options: {{min_lead: -7, max_lag: 2, sensitivity: true, sensitivity_m: [{m}],
               sensitivity_mbar: [{mbar}]}}
data: {{source: tidy, path: ehec.csv, columns: {{unit: stfips, period: year}}}}
"""
    )
    sens = evaluate(load_design(tmp_path / "d.yaml")).runs[0].result.diagnostics["sensitivity"]
    sd = sens["smoothness"]["rows"]
    for (lo, hi), row in zip(h._SD_PRINTED, sd, strict=True):
        assert row["lb"] == pytest.approx(lo, abs=h._three_digits(lo) + 3e-5)
        assert row["ub"] == pytest.approx(hi, abs=h._three_digits(hi) + 3e-5)
    rm = sens["relative_magnitudes"]["rows"]
    for (lo, hi), row in zip(h._RM_PRINTED, rm, strict=True):
        assert row["lb"] == pytest.approx(lo, abs=h._three_digits(lo) + 5.5e-4)
        assert row["ub"] == pytest.approx(hi, abs=h._three_digits(hi) + 5.5e-4)
