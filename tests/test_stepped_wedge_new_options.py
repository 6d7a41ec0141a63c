"""The stepped-wedge options added for trials that are not the default model, end to end from a
design file: the random-slope and cluster-plus-decay LMMs, the NPWP randomisation statistic, the
GEE's CR2 sandwich and a simulated trial whose clusters have their own effects; the report names
each model and inference."""

from __future__ import annotations

import json
from pathlib import Path

from pathfinder_eval.cli import main

ROOT = Path(__file__).resolve().parents[1]
ANALYSES = """analyses:
  - id: slope
    estimator: stepped_wedge
    options: {model: random_slope}
  - id: block_decay
    estimator: stepped_wedge
    options: {model: cluster_plus_decay}
  - id: npwp
    estimator: stepped_wedge
    options: {randomisation_statistic: npwp}
    inference: {method: randomisation, draws: 999}
  - id: gee_cr2
    estimator: stepped_wedge_gee
    inference: {method: cr2}
data:
  source: simulated_trial
  trial: {periods: 5, effect: 0.3, icc: 0.05, cell_size: 30, effect_sd: 0.1, effect_corr: 0.2}
seed: 2007
"""


def test_design_file_runs_every_new_option(tmp_path):
    text = (ROOT / "designs" / "examples" / "stepped_wedge_trial.yaml").read_text()
    head = text[: text.index("analyses:")]
    design = tmp_path / "options.yaml"
    design.write_text(head + ANALYSES)
    assert main(["run", str(design), "--out", str(tmp_path / "out")]) == 0
    result = json.loads((tmp_path / "out" / "stepped_wedge_trial.json").read_text())
    html = (tmp_path / "out" / "stepped_wedge_trial.html").read_text()
    text = json.dumps(result)
    assert "own intervention effect (random slope" in html
    assert "AR(1) cluster-period effects" in html
    assert "NPWP, Thompson et al. 2018" in text
    assert "bias-reduced linearisation sandwich (CR2" in html
    assert "varying between clusters with SD 0.1" in html


RECORDS = """name: slope_records
title: random-slope reference trial (individual records)
pilot: trial
unit_level: cluster
time: {{axis: period}}
rollout:
{waves}
comparison: {{pool: not_yet_treated, min_units: 1}}
outcomes: [{{column: y, name: Outcome}}]
analyses:
  - {{id: slope, estimator: stepped_wedge, options: {{model: random_slope}}}}
  - {{id: block_decay, estimator: stepped_wedge, options: {{model: cluster_plus_decay}}}}
  - id: npwp
    estimator: stepped_wedge
    options: {{randomisation_statistic: npwp}}
    inference: {{method: randomisation, draws: 999}}
  - {{id: md, estimator: stepped_wedge, inference: {{method: mancl_derouen}}}}
  - {{id: cr2, estimator: stepped_wedge, inference: {{method: cr2}}}}
  - {{id: gee_cr2, estimator: stepped_wedge_gee, inference: {{method: cr2}}}}
data: {{source: records, columns: {{unit: cluster, period: period}}}}
seed: 2007
"""


def test_design_file_and_api_give_identical_estimates(tmp_path):
    """The same records through a design file and through pathfinder_eval.* give the same
    estimates, standard errors, df and intervals, bit for bit, for every new option."""
    import pandas as pd

    import pathfinder_eval as pe
    from pathfinder_eval.settings import Inference

    data = ROOT / "tests" / "reference" / "r_lme4_random_slope" / "sim_slope.csv"
    raw = pd.read_csv(data)
    first = raw[raw["trt"] == 1].groupby("cluster")["period"].min()
    waves = "\n".join(
        f"  - {{wave: s{s}, start: {s}, units: [{', '.join(repr(u) for u in g.index)}]}}"
        for s, g in first.groupby(first)
    )
    design = tmp_path / "slope_records.yaml"
    design.write_text(RECORDS.format(waves=waves))
    assert main(["run", str(design), "--data", str(data), "--out", str(tmp_path / "o")]) == 0
    doc = json.loads((tmp_path / "o" / "slope_records.json").read_text())
    runs = {r["id"]: r for r in doc["analyses"]}
    kw = {
        "outcome": "y",
        "cluster": "cluster",
        "period": "period",
        "treatment": "trt",
        "seed": 2007,
    }
    api = {
        "slope": pe.stepped_wedge(raw, model="random_slope", **kw),
        "block_decay": pe.stepped_wedge(raw, model="cluster_plus_decay", **kw),
        "npwp": pe.stepped_wedge(
            raw,
            randomisation_statistic="npwp",
            inference=Inference(method="randomisation", draws=999),
            **kw,
        ),
        "md": pe.stepped_wedge(raw, inference="mancl_derouen", **kw),
        "cr2": pe.stepped_wedge(raw, inference="cr2", **kw),
        "gee_cr2": pe.stepped_wedge_gee(raw, inference="cr2", **kw),
    }
    for key, res in api.items():
        row, got = res.table.iloc[0], runs[key]["estimates"][0]
        for col in ("estimate", "std_error", "df", "ci_lower", "ci_upper"):
            want = row[col]
            assert (got[col] is None and pd.isna(want)) or got[col] == want, (key, col)
