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
