"""The contract every estimator keeps, for every inference method it offers (registry ×
options model): the one result type with the fixed columns; the caller's panel untouched;
the same numbers for rows in another order and for units under other names; identical numbers
for a seed; a bad option a one-line design error naming its key and the allowed values; and the
recorded inference the method actually used, with its validity statement."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args, get_origin

import numpy as np
import pandas as pd
import pytest

from pathfinder_eval.data.records import records_outcomes
from pathfinder_eval.data.source import CELL_COLUMNS, LONG_COLUMNS, OutcomeData
from pathfinder_eval.errors import DesignError
from pathfinder_eval.panel import OutcomeInfo, ValidatedPanel, build_panel
from pathfinder_eval.registry import REGISTRY
from pathfinder_eval.report.validity import SHORT, VALIDITY, short_inference, validity
from pathfinder_eval.results import COLUMNS, EffectEstimates
from pathfinder_eval.settings import OPTIONS, Inference, validate_settings
from pathfinder_eval.spec import Estimator, load_design

# The inference key each (estimator, method) must record on the test panels below: the DiD
# panel has 5 treated units and 11 comparisons (so DiD defaults take the comparison-pooled
# variance), the trial 12 clusters.
EXPECTED: dict[tuple[str, str], str] = {
    ("twfe", "default"): "pooled_panel",
    ("twfe", "pooled"): "pooled_panel",
    ("twfe", "cluster_robust"): "cr1",
    ("twfe", "cr2"): "cr2",
    ("twfe", "wild_bootstrap"): "wild_bootstrap",
    ("twfe", "randomisation"): "timing_randomisation",
    ("twfe", "conley_taber"): "conley_taber",
    ("twfe_poisson", "default"): "cr1",
    ("twfe_poisson", "cluster_robust"): "cr1",
    ("event_study", "default"): "pooled_panel",
    ("event_study", "pooled"): "pooled_panel",
    ("event_study", "cr2"): "cr2",
    ("event_study", "cluster_robust"): "cr1",
    ("callaway_santanna", "default"): "pooled_panel",
    ("callaway_santanna", "pooled"): "pooled_panel",
    ("callaway_santanna", "cohort_stratified"): "cohort_stratified",
    ("callaway_santanna", "cluster_robust"): "influence_function",
    ("callaway_santanna", "multiplier_bootstrap"): "multiplier_bootstrap",
    ("sun_abraham", "default"): "pooled_panel",
    ("sun_abraham", "pooled"): "pooled_panel",
    ("sun_abraham", "cohort_stratified"): "cohort_stratified",
    ("sun_abraham", "cr2"): "cr2",
    ("sun_abraham", "cluster_robust"): "cr1",
    ("imputation", "default"): "pooled_panel",
    ("imputation", "pooled"): "pooled_panel",
    ("imputation", "cohort_stratified"): "cohort_stratified",
    ("imputation", "cluster_robust"): "bjs_conservative",
    ("etwfe", "default"): "pooled_panel",
    ("etwfe", "pooled"): "pooled_panel",
    ("etwfe", "cr2"): "cr2",
    ("etwfe", "cohort_stratified"): "cohort_stratified",
    ("etwfe", "cluster_robust"): "cr1",
    ("two_stage", "default"): "pooled_panel",
    ("two_stage", "pooled"): "pooled_panel",
    ("two_stage", "cohort_stratified"): "cohort_stratified",
    ("two_stage", "cluster_robust"): "two_stage_gmm",
    ("stacked", "default"): "pooled_panel",
    ("stacked", "pooled"): "pooled_panel",
    ("stacked", "cohort_stratified"): "cohort_stratified",
    ("stacked", "cluster_robust"): "cr1",
    ("did_multiplegt_dyn", "default"): "pooled_panel",
    ("did_multiplegt_dyn", "pooled"): "pooled_panel",
    ("did_multiplegt_dyn", "cohort_stratified"): "cohort_stratified",
    ("did_multiplegt_dyn", "cluster_robust"): "influence_function",
    ("did_multiplegt_dyn", "cluster_bootstrap"): "cluster_bootstrap",
    ("continuous_did", "default"): "pooled_panel",
    ("continuous_did", "pooled"): "pooled_panel",
    ("continuous_did", "cluster_robust"): "influence_function",
    ("bacon", "default"): "cr2",  # its TWFE row: CR2 below 20 treated
    ("bacon", "cluster_robust"): "cr1",
    ("synthetic_control", "default"): "sc_placebo_conformal",
    ("synthetic_control", "randomisation"): "sc_placebo_conformal",
    ("synthetic_did", "default"): "pooled_panel",
    ("synthetic_did", "pooled"): "pooled_panel",
    ("synthetic_did", "randomisation"): "sdid_placebo",
    ("stepped_wedge", "default"): "lmm_mancl_derouen",
    ("stepped_wedge", "kenward_roger"): "kenward_roger",
    ("stepped_wedge", "satterthwaite"): "satterthwaite",
    ("stepped_wedge", "model_based"): "lmm_normal",
    ("stepped_wedge", "randomisation"): "allocation_randomisation",
    ("stepped_wedge", "mancl_derouen"): "lmm_mancl_derouen",
    ("stepped_wedge", "cr2"): "lmm_cr2",
    ("stepped_wedge_gee", "default"): "gee_kauermann_carroll",
    ("stepped_wedge_gee", "kauermann_carroll"): "gee_kauermann_carroll",
    ("stepped_wedge_gee", "mancl_derouen"): "gee_mancl_derouen",
    ("stepped_wedge_gee", "fay_graubard"): "gee_fay_graubard",
    ("stepped_wedge_gee", "cr2"): "gee_cr2",
    ("stepped_wedge_gee", "sandwich"): "gee_sandwich",
    ("stepped_wedge_gee", "model_based"): "gee_model_based",
    ("stepped_wedge_glmm", "default"): "glmm_t",
    ("stepped_wedge_glmm", "model_based"): "glmm_normal",
    ("triple_difference", "default"): "ddd_cr2",
    ("triple_difference", "cr2"): "ddd_cr2",
    ("triple_difference", "cluster_robust"): "ddd_clustered",
}
# Methods whose p-values, intervals or standard errors come from random draws over units:
# under relabelled or reordered units the draws differ, so only the estimate is compared.
MONTE_CARLO = {
    ("twfe", "wild_bootstrap"),
    ("twfe", "randomisation"),
    ("twfe", "conley_taber"),
    ("callaway_santanna", "multiplier_bootstrap"),
    ("did_multiplegt_dyn", "cluster_bootstrap"),
    ("synthetic_did", "randomisation"),
    ("stepped_wedge", "randomisation"),
}
PAIRS = sorted(EXPECTED)
DRAWS = 199  # enough for the contract; the reference tests check the methods themselves


def test_every_estimator_and_method_has_a_contract_case():
    offered = {
        (estimator.value, method)
        for estimator, row in REGISTRY.items()
        if row.cls is not None
        for method in row.cls.inference_methods
    }
    assert offered == set(EXPECTED)


# ------------------------------------------------------------------------------- panels

DID_DESIGN = """
name: c
title: c
pilot: custom
unit_level: cluster
time: {{axis: period}}
rollout:
  - {{wave: a, start: 4, units: [{a}]}}
  - {{wave: b, start: 5, units: [{b}]}}
comparison: {{pool: never_treated, min_units: 2}}
outcomes: [{{column: y, scale: per_10000}}]
analyses: [{{id: a, estimator: twfe}}]
"""
TRIAL_DESIGN = """
name: c
title: c
pilot: trial
unit_level: cluster
time: {{axis: period}}
rollout:
{waves}
comparison: {{pool: not_yet_treated, min_units: 1}}
outcomes: [{{column: y}}]
analyses: [{{id: a, estimator: stepped_wedge}}]
"""
RECORDS_DESIGN = """
name: c
title: c
pilot: custom
unit_level: cluster
time: {{axis: period}}
rollout:
  - {{wave: a, start: 3, units: [{a}]}}
comparison: {{pool: never_treated, min_units: 2}}
outcomes: [{{column: y}}]
analyses: [{{id: a, estimator: triple_difference}}]
data: {{source: records, columns: {{unit: la, period: period, individual: child, eligible: e}}}}
"""


def _panel(
    tmp_path: Path,
    design: str,
    cells: pd.DataFrame,
    scale: str,
    order_seed: int | None,
    doses: dict[str, float] | None = None,
) -> ValidatedPanel:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "design.yaml"
    path.write_text(design, encoding="utf-8")
    long = cells.assign(outcome="y", status="", source="contract")
    long = long[list(LONG_COLUMNS) + [c for c in CELL_COLUMNS if c in long]]
    if order_seed is not None:
        long = long.sample(frac=1.0, random_state=order_seed).reset_index(drop=True)
    units = pd.DataFrame({"unit": sorted(set(long["unit"]))})
    units["name"], units["region"] = units["unit"], ""
    if doses is not None:
        units["dose"] = units["unit"].map(doses)
    return build_panel(
        load_design(path),
        OutcomeData(long, units, "tidy"),
        lambda o: OutcomeInfo(o, o, scale, "neutral", True),
    )


def did_panel(tmp_path: Path, label: Callable[[str], str], order_seed: int | None = None):
    """16 units × 7 periods; 3 start in period 4, 2 in period 5, 11 never; event counts over
    populations (a rate per 10,000) with a level shift after the start; doses 1 to 3."""
    rng = np.random.default_rng(20)
    rows = []
    for i in range(16):
        unit, pop, base = label(f"u{i:02d}"), 4000 + 400 * i, 90 + 6 * rng.normal()
        start = 4 if i < 3 else 5 if i < 5 else 99
        for p in range(1, 8):
            rate = base + 2.0 * p + (8.0 if p >= start else 0.0) + 3 * rng.normal()
            events = float(rng.poisson(rate * pop / 10_000))
            rows.append((unit, p, events, float(pop), events / pop * 10_000))
    cells = pd.DataFrame(rows, columns=["unit", "period", "numerator", "denominator", "value"])
    design = DID_DESIGN.format(
        a=", ".join(label(f"u{i:02d}") for i in range(3)),
        b=", ".join(label(f"u{i:02d}") for i in range(3, 5)),
    )
    doses = {label(f"u{i:02d}"): 1.0 + 0.5 * i for i in range(5)}
    return _panel(tmp_path, design, cells, "per_10000", order_seed, doses)


def trial_panel(tmp_path: Path, label: Callable[[str], str], order_seed: int | None = None):
    """12 clusters in 4 sequences × 5 periods, 30 people a cell with 0/1 outcomes (events,
    people and the within-cell sum of squares)."""
    rng = np.random.default_rng(21)
    rows = []
    for i in range(12):
        cluster, start, u = label(f"k{i:02d}"), 2 + i // 3, rng.normal(scale=0.4)
        for p in range(1, 6):
            logit = -1.0 + u + 0.1 * p + (0.6 if p >= start else 0.0)
            events = float(rng.binomial(30, 1 / (1 + np.exp(-logit))))
            rows.append((cluster, p, events, 30.0, events / 30.0, events - events**2 / 30.0))
    cells = pd.DataFrame(
        rows, columns=["unit", "period", "numerator", "denominator", "value", "ssw"]
    )
    waves = "\n".join(
        f"  - {{wave: s{s}, start: {s}, units: [{', '.join(label(f'k{i:02d}') for i in range(12) if 2 + i // 3 == s)}]}}"  # noqa: E501
        for s in range(2, 6)
    )
    return _panel(tmp_path, TRIAL_DESIGN.format(waves=waves), cells, "percent", order_seed)


def records_panel(tmp_path: Path, label: Callable[[str], str], order_seed: int | None = None):
    """Children's records: 8 LAs × 5 periods, 3 starting in period 3, 12 children an LA (half
    targeted) seen in every period, with LA × period shocks and an effect of 0.5 on the
    targeted children of the starting LAs."""
    rng = np.random.default_rng(22)
    rows = []
    for i in range(8):
        la, shocks = label(f"l{i:02d}"), rng.normal(scale=0.3, size=5)
        for c in range(12):
            level, eligible = rng.normal(), c % 2
            for p in range(1, 6):
                effect = 0.5 if (i < 3 and eligible and p >= 3) else 0.0
                y = level + 0.1 * p + shocks[p - 1] + effect + rng.normal()
                rows.append((la, f"{la}-{c:02d}", p, eligible, y))
    raw = pd.DataFrame(rows, columns=["la", "child", "period", "e", "y"])
    if order_seed is not None:
        raw = raw.sample(frac=1.0, random_state=order_seed).reset_index(drop=True)
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "design.yaml"
    path.write_text(
        RECORDS_DESIGN.format(a=", ".join(label(f"l{i:02d}") for i in range(3))), encoding="utf-8"
    )
    data = records_outcomes(
        raw, "la", "period", {"y": "y"}, "r.csv", individual="child", eligible="e"
    )
    return build_panel(
        load_design(path), data, lambda o: OutcomeInfo(o, o, "percent", "neutral", True)
    )


def _panel_for(estimator: str) -> Callable[..., ValidatedPanel]:
    if estimator == "triple_difference":
        return records_panel
    return trial_panel if estimator.startswith("stepped_wedge") else did_panel


def _estimator(estimator: str, method: str, **options: Any):
    cls = REGISTRY[Estimator(estimator)].cls
    if estimator == "stepped_wedge_gee":
        options.setdefault("family", "binomial")
    return cls(**options, inference=Inference(method=method, draws=DRAWS), seed=7)


def _same(a: pd.DataFrame, b: pd.DataFrame, columns: list[str]) -> None:
    for column in columns:
        np.testing.assert_allclose(
            a[column].to_numpy(float), b[column].to_numpy(float), rtol=1e-7, atol=1e-9
        )


# ------------------------------------------------------------------------------- the contract


@pytest.mark.parametrize(("estimator", "method"), PAIRS)
def test_contract(estimator, method, tmp_path):
    build = _panel_for(estimator)
    panel = build(tmp_path / "base", lambda u: u)
    before = panel.cells.copy()
    est = _estimator(estimator, method)
    res = est.fit(panel, "y", "a")
    # the result type, its fixed columns, its recorded inference and validity statement
    assert isinstance(res, EffectEstimates) and not res.table.empty
    assert list(res.table.columns[: len(COLUMNS)]) == list(COLUMNS)
    assert res.inference.key == EXPECTED[(estimator, method)]
    assert res.inference.chosen_by_default == (method == "default")
    assert validity(res.inference) == VALIDITY[res.inference.key]
    assert short_inference(res.inference).startswith(SHORT[res.inference.key])
    assert res.facts is None or res.diagnostics == res.facts.to_dict()
    # the caller's panel is not changed (exact: it must be untouched, not merely close)
    pd.testing.assert_frame_equal(panel.cells, before)
    # same seed, same code, same process: identical bits is the reproducibility contract
    pd.testing.assert_frame_equal(est.fit(panel, "y", "a").table, res.table)
    # rows in another order, units under other names: the same numbers
    columns = ["estimate"] if (estimator, method) in MONTE_CARLO else ["estimate", "std_error"]
    shuffled = build(tmp_path / "shuffled", lambda u: u, order_seed=5)
    _same(est.fit(shuffled, "y", "a").table, res.table, columns)
    relabelled = build(tmp_path / "relabelled", lambda u: "z" + u[::-1])
    _same(est.fit(relabelled, "y", "a").table, res.table, columns)


# ------------------------------------------------------------------------------- bad options


def _bad_values(field: Any) -> list[Any]:
    """Values of the wrong kind for an option field."""
    annotation = field.annotation
    args = get_args(annotation)
    if get_origin(annotation) is not None and any(a is type(None) for a in args):
        annotation = next(a for a in args if a is not type(None))
    if get_origin(annotation) is not None and str(get_origin(annotation)).endswith("Literal"):
        return ["not_an_option"]
    if any(str(get_origin(a)).endswith("Literal") for a in args):  # a number or a name
        return ["not_an_option", -1, 1.5]
    base = get_args(annotation)[0] if get_args(annotation) else annotation
    if base is bool or annotation is bool:
        return ["yes", 1]
    if base in (int, float):
        return ["4", True]
    return [5]


OPTION_CASES = [
    (name, key, value)
    for name, model in OPTIONS.items()
    for key in model.option_names()
    for value in _bad_values(model.model_fields[key])
]


@pytest.mark.parametrize(("estimator", "key", "value"), OPTION_CASES)
def test_bad_option_value_is_a_one_line_design_error(estimator, key, value):
    with pytest.raises(DesignError) as err:
        validate_settings(OPTIONS[estimator], {key: value}, Inference(), "analyses[2].", "d.yaml")
    line = err.value.one_line()
    assert line.startswith(f"d.yaml: analyses[2].options.{key}: bad value ")
    assert "; allowed: " in line and "\n" not in line


@pytest.mark.parametrize("estimator", sorted(OPTIONS))
def test_misspelt_option_names_the_options(estimator, tmp_path):
    names = OPTIONS[estimator].option_names()
    key = (names[0][:-1] + "x") if names else "anything"
    design = DID_DESIGN.format(a="u00", b="u01").replace(
        "{id: a, estimator: twfe}", f"{{id: a, estimator: {estimator}, options: {{{key}: 1}}}}"
    )
    path = tmp_path / "d.yaml"
    path.write_text(design, encoding="utf-8")
    with pytest.raises(DesignError) as err:
        load_design(path)
    line = err.value.one_line()
    assert f"analyses[0].options.{key}: unknown option '{key}' for {estimator}" in line
    assert f"options of {estimator}: {', '.join(names) or 'none'}" in line


@pytest.mark.parametrize("estimator", sorted(OPTIONS))
def test_inference_method_not_offered_is_a_design_error(estimator):
    offered = OPTIONS[estimator].inference_methods
    method = next(m for m in ("wild_bootstrap", "kenward_roger") if m not in offered)
    with pytest.raises(DesignError) as err:
        validate_settings(OPTIONS[estimator], {}, Inference(method=method), "analyses[0].")
    assert err.value.where == "analyses[0].inference.method"
    assert f"inference method '{method}' is not available for {estimator}" in err.value.what


# ------------------------------------------------------------------------------- the report


KC = "with the Kauermann-Carroll sandwich"


def test_cycle_finder_finds_a_circle():
    from test_architecture import cycles

    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


@pytest.mark.parametrize(
    ("estimator", "method", "says", "not_says"),
    [
        ("stepped_wedge_gee", "model_based", "Model-based GEE standard errors", KC),
        ("stepped_wedge_gee", "sandwich", "uncorrected sandwich", KC),
        ("stepped_wedge_gee", "mancl_derouen", "the Mancl-DeRouen bias-corrected", KC),
        ("stepped_wedge_gee", "fay_graubard", "the Fay-Graubard bias-corrected", KC),
        ("stepped_wedge_gee", "cr2", "bias-reduced linearisation sandwich (CR2", KC),
        ("stepped_wedge_gee", "default", KC, "Mancl-DeRouen"),
        ("stepped_wedge_glmm", "model_based", "ignores that the variance", "relies on the"),
        ("stepped_wedge_glmm", "default", "Wald test with t(I − 2)", "ignores that the variance"),
    ],
)
def test_methods_table_states_the_method_actually_used(estimator, method, says, not_says, tmp_path):
    from pathfinder_eval.pipeline import AnalysisRun, Evaluation
    from pathfinder_eval.report.context import inference_rows
    from pathfinder_eval.results import Provenance
    from pathfinder_eval.spec import Analysis

    panel = trial_panel(tmp_path, lambda u: u)
    res = _estimator(estimator, method).fit(panel, "y", "a")
    analysis = Analysis(id="a", estimator=estimator, inference=Inference(method=method))
    run = AnalysisRun(analysis, "y", "ok", res)
    provenance = Provenance("0", "3", (), (), "", 0, "")
    (row,) = inference_rows(Evaluation(panel, (run,), provenance))
    assert row["inference"] == res.inference.label
    assert says in row["validity"] and not_says not in row["validity"]


def test_report_of_a_gee_with_model_based_errors_says_so(tmp_path):
    from pathfinder_eval.cli import main

    root = Path(__file__).resolve().parents[1]
    design = (root / "designs" / "examples" / "stepped_wedge_trial.yaml").read_text()
    design = design.replace(
        "    options: {family: gaussian, correlation: nested_exchangeable}\n",
        "    options: {family: gaussian, correlation: nested_exchangeable}\n"
        "    inference: {method: model_based}\n",
    )
    path = tmp_path / "trial.yaml"
    path.write_text(design, encoding="utf-8")
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 0
    html = (tmp_path / "out" / "stepped_wedge_trial.html").read_text(encoding="utf-8")
    row = html[html.index('<th scope="row">stepped_wedge_gee</th>') :].split("</tr>")[0]
    assert "model-based standard error" in row and VALIDITY["gee_model_based"][:40] in row
    assert "Kauermann-Carroll" not in row


@pytest.mark.parametrize("estimator", sorted(OPTIONS))
def test_a_cluster_the_variance_cannot_use_is_refused_not_ignored(estimator):
    """inference.cluster above the unit runs only where the variance uses it (a TWFE given
    `cluster: region` clustered by LA and said so in small print before)."""
    model = OPTIONS[estimator]
    region = Inference(method="default", cluster="region")
    if model.clusters_above_unit:
        validate_settings(model, {}, region, "analyses[0].")
        return
    with pytest.raises(DesignError) as err:
        validate_settings(model, {}, region, "analyses[0].")
    assert err.value.where == "analyses[0].inference.cluster"
    assert f"{estimator} clusters its variance by unit only, not by 'region'" in err.value.what
    assert "callaway_santanna, did_multiplegt_dyn" in err.value.what


# --------------------------------------------------------------------- robustness re-fits

# The estimators whose main fit reports the pre-test's power on the contract's DiD panel.
PRETEST_POWER = {
    "event_study",
    "callaway_santanna",
    "sun_abraham",
    "imputation",
    "stacked",
    "did_multiplegt_dyn",
    "continuous_did",
}
FITTED = sorted(e for e in OPTIONS if REGISTRY[Estimator(e)].cls is not None)


@pytest.mark.parametrize("estimator", FITTED)
def test_a_robustness_refit_gives_the_same_estimates_without_the_extras(estimator, tmp_path):
    """`for_placebo` (placebo in time, power replicates): a copy marked as a re-fit whose
    table is the main fit's, computed without what describes the main analysis only (the
    pre-test's power, the event study's sensitivity intervals)."""
    options = {"sensitivity": True} if estimator == "event_study" else {}
    est = _estimator(estimator, "default", **options)
    refit = est.for_placebo()
    assert refit.refit and not est.refit and type(refit) is type(est)
    panel = _panel_for(estimator)(tmp_path, lambda u: u)
    main, again = est.fit(panel, "y", "a"), refit.fit(panel, "y", "a")
    pd.testing.assert_frame_equal(again.table, main.table)
    assert again.inference == main.inference
    has_power = main.diagnostics.get("pretest_power") is not None
    assert has_power == (estimator in PRETEST_POWER)
    if has_power:
        assert main.diagnostics["pretest_power"]["slope_80"] > 0
        assert again.diagnostics["pretest_power"] is None
    if estimator == "event_study":
        assert main.diagnostics["sensitivity"]["smoothness"]["rows"]
        assert again.diagnostics.get("sensitivity") is None
