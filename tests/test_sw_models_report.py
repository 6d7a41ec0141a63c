"""The three stepped-wedge models (LMM, GEE, GLMM) run from one design on individual binary
records through the CLI, and the report states each model's facts."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pathfinder_eval.cli import main
from sw_helpers import DATASETS, ROOT, records

DESIGN = """
name: sw_binary
title: geeCRT small trial, binary outcome
pilot: trial
unit_level: cluster
time: {{axis: period}}
rollout:
{waves}
comparison: {{pool: not_yet_treated, min_units: 1}}
outcomes: [{{column: y_bin, name: Binary outcome}}]
analyses:
  - {{id: lmm, estimator: stepped_wedge}}
  - {{id: gee, estimator: stepped_wedge_gee, options: {{family: binomial}}}}
  - {{id: glmm, estimator: stepped_wedge_glmm,
      options: {{family: binomial, model: hussey_hughes}}}}
  - {{id: glmm_agq, estimator: stepped_wedge_glmm,
      options: {{family: binomial, model: hussey_hughes, quadrature_points: 10}}}}
data: {{source: records, columns: {{unit: id, period: period}}}}
"""


def test_binary_trial_through_the_cli(tmp_path):
    raw, cluster, trt, _ = records("geecrt_small")
    first = raw[raw[trt] == 1].groupby(cluster)["period"].min()
    waves = "\n".join(
        f"  - {{wave: s{s}, start: {s}, units: [{', '.join(repr(str(u)) for u in g.index)}]}}"
        for s, g in first.groupby(first)
    )
    design = tmp_path / "sw_binary.yaml"
    design.write_text(DESIGN.format(waves=waves))
    out = tmp_path / "o"
    assert (
        main(["run", str(design), "--data", str(DATASETS["geecrt_small"][0]), "--out", str(out)])
        == 0
    )
    doc = json.loads((out / "sw_binary.json").read_text())
    runs = {a["id"]: a for a in doc["analyses"]}
    assert {a["status"] for a in runs.values()} == {"ok"}
    gee, glmm, agq = (runs[k]["estimates"][0] for k in ("gee", "glmm", "glmm_agq"))
    assert gee["term"].endswith("log odds ratio") and glmm["term"].endswith("log odds ratio")
    # the population-averaged (GEE) log odds ratio is closer to zero than the cluster-specific
    # (GLMM) one, as attenuation predicts; quadrature moves the GLMM estimate only a little
    assert abs(gee["estimate"]) < abs(glmm["estimate"])
    assert agq["estimate"] == pytest.approx(glmm["estimate"], abs=0.02)
    assert gee["df"] == 12 - 5 and glmm["df"] == 12 - 2
    html = (out / "sw_binary.html").read_text()
    assert "Working correlation nested exchangeable" in html
    assert "Intervention effect (immediate, period-adjusted) as an odds ratio: " in html
    assert "ICC on the latent scale" in html
    # what each could detect is read on its own scale: the LMM in outcome units, the logit
    # fits on the log-odds scale against the pre-start proportion of the records
    det = {k: runs[k]["detectable"] for k in runs}
    assert det["lmm"]["scale"] == "outcome" and runs["lmm"]["scale"] == "difference"
    before = raw.loc[raw[trt] == 0, "y_bin"].mean()
    for k in ("gee", "glmm", "glmm_agq"):
        assert det[k]["scale"] == "log odds ratio" and runs[k]["scale"] == "log_odds_ratio"
        assert det[k]["baseline"] == pytest.approx(before, rel=1e-12)
    assert html.count(" on the log scale: an odds ratio below ") == 3


RECORDS_DESIGN = """
name: sw_people
title: records with individual covariates
pilot: trial
unit_level: cluster
time: {{axis: period}}
rollout:
{waves}
comparison: {{pool: not_yet_treated, min_units: 1}}
outcomes: [{{column: y}}]
analyses:
  - id: lmm
    estimator: stepped_wedge
    options: {{model: nested_exchangeable, effect: immediate}}
    inference: {{method: kenward_roger}}  # lme4 + pbkrtest's values (the default: CR3)
data: {{source: records, columns: {{unit: cluster, period: period{extra}}}}}
"""
LME4_RECORDS = ROOT / "tests" / "reference" / "r_lme4_records"


@pytest.mark.parametrize(
    ("file", "fit", "extra", "covariates"),
    [
        ("sim_cross.csv", "cross_ne", ", covariates: [age, sex]", ("age", "sex")),
        ("sim_cohort.csv", "cohort_ne", ", covariates: [sex, score], individual: id",
         ("sex", "score")),
    ],
)  # fmt: skip
def test_individual_covariates_and_cohorts_through_the_cli(tmp_path, file, fit, extra, covariates):
    raw = pd.read_csv(LME4_RECORDS / file)
    first = raw[raw["trt"] == 1].groupby("cluster")["period"].min()
    waves = "\n".join(
        f"  - {{wave: s{s}, start: {s}, units: [{', '.join(map(str, g.index))}]}}"
        for s, g in first.groupby(first)
    )
    design = tmp_path / "sw_people.yaml"
    design.write_text(RECORDS_DESIGN.format(waves=waves, extra=extra))
    out = tmp_path / "o"
    assert main(["run", str(design), "--data", str(LME4_RECORDS / file), "--out", str(out)]) == 0
    (run,) = json.loads((out / "sw_people.json").read_text())["analyses"]
    ref = pd.read_csv(LME4_RECORDS / "values.csv")
    ref = ref[ref["fit"] == fit].set_index("quantity")["value"]
    row, diag = run["estimates"][0], run["diagnostics"]
    assert row["estimate"] == pytest.approx(ref["trt:estimate"], abs=1e-6)
    assert row["std_error"] == pytest.approx(ref["trt:std_error_kr"], abs=1e-5)
    assert row["df"] == pytest.approx(ref["trt:df_kr"], abs=1e-3)
    for c in covariates:
        got = diag["individual_level"]["covariates"][c]
        assert got["estimate"] == pytest.approx(ref[f"{c}:estimate"], abs=1e-6)
        assert got["std_error"] == pytest.approx(ref[f"{c}:std_error_kr"], abs=1e-5)
    for name, value in diag["variance_components"].items():
        assert value == pytest.approx(ref[name], abs=1e-5), name
    assert diag["estimation"] == "REML (exact, on individual records)"
    html = (out / "sw_people.html").read_text()
    assert "Adjusted for individual covariates: " in html
