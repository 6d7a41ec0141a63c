"""The Python face (`import pathfinder_eval as pe`): each function gives exactly what the
design-file pipeline gives on the same data (one engine), reproduces published numbers,
documents every option, reads as a table, and names the argument when the input is wrong."""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import os
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pathfinder_eval as pe
from pathfinder_eval.errors import DataError, DesignError, EstimationError, ExcludedRowsWarning
from pathfinder_eval.inference.cr2 import two_way_projection, two_way_residuals
from pathfinder_eval.pipeline import evaluate
from pathfinder_eval.settings import OPTIONS
from pathfinder_eval.spec import load_design
from sw_helpers import SHARED_SW

ROOT = Path(__file__).resolve().parents[1]

DESIGN = """
name: api_check
title: api check
pilot: {pilot}
unit_level: cluster
time: {{axis: period}}
rollout:
{waves}
comparison: {{pool: {pool}, min_units: 1}}
outcomes: [{{column: y}}]
analyses:
{analyses}
data: {{source: {source}, path: data.csv, columns: {{unit: unit, period: period}}}}
seed: 0
"""

PANEL_ESTIMATORS = (
    "twfe",
    "event_study",
    "callaway_santanna",
    "sun_abraham",
    "imputation",
    "two_stage",
    "etwfe",
    "stacked",
    "did_multiplegt_dyn",
    "bacon",
    "synthetic_control",
    "synthetic_did",
)


def staggered(seed: int = 4) -> pd.DataFrame:
    """30 units × 10 periods, 3 treated from period 6 and 3 from period 8 (g = 0: never)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(30):
        g = 6 if i < 3 else 8 if i < 6 else 0
        a = rng.normal()
        for t in range(1, 11):
            d = g and t >= g
            y = a + 0.3 * t + 0.8 * d + rng.normal(scale=0.5)
            rows.append({"unit": f"u{i:02d}", "period": t, "g": g, "y": y})
    return pd.DataFrame(rows)


def _design(tmp_path, frame, starts, analyses, pilot="custom", pool="never_treated", source="tidy"):
    frame.to_csv(tmp_path / "data.csv", index=False)
    waves = "\n".join(
        f"  - {{wave: w{s}, start: {s}, units: [{', '.join(u)}]}}" for s, u in starts.items()
    )
    text = DESIGN.format(
        pilot=pilot,
        waves=waves,
        pool=pool,
        analyses="\n".join(f"  - {{id: {a}, estimator: {a}}}" for a in analyses),
        source=source,
    )
    (tmp_path / "d.yaml").write_text(text)
    return load_design(tmp_path / "d.yaml")


def test_every_panel_estimator_matches_the_design_file_pipeline(tmp_path):
    frame = staggered()
    starts = {6: ["u00", "u01", "u02"], 8: ["u03", "u04", "u05"]}
    ev = evaluate(_design(tmp_path, frame, starts, PANEL_ESTIMATORS))
    by_id = {r.analysis.id: r for r in ev.runs}
    for name in PANEL_ESTIMATORS:
        got = getattr(pe, name)(frame, outcome="y", unit="unit", time="period", first_treated="g")
        want = by_id[name].result
        assert want is not None, name
        pd.testing.assert_frame_equal(got.table, want.table, check_exact=True, obj=name)
        assert got.inference.label == want.inference.label, name
        assert got.to_dict()["inference_used"] == want.to_dict()["inference_used"], name


def test_a_treatment_column_gives_the_same_fit_as_first_treated():
    frame = staggered()
    frame["d"] = ((frame["g"] > 0) & (frame["period"] >= frame["g"])).astype(int)
    a = pe.callaway_santanna(frame, outcome="y", unit="unit", time="period", first_treated="g")
    b = pe.callaway_santanna(frame, outcome="y", unit="unit", time="period", treatment="d")
    pd.testing.assert_frame_equal(a.table, b.table, check_exact=True)


def test_stepped_wedge_functions_match_the_design_file_pipeline(tmp_path):
    raw = pd.read_csv(SHARED_SW / "steppedwedge_sw_data_example.csv")
    if raw.empty:
        pytest.skip("reference data not available")
    frame = raw.rename(columns={"cluster": "unit", "outcome_cont": "y"})
    frame["unit"] = "c" + frame["unit"].astype(str)
    first = frame[frame["trt"] == 1].groupby("unit")["period"].min()
    starts: dict[int, list[str]] = {}
    for u, s in first.items():
        starts.setdefault(int(s), []).append(u)
    names = ("stepped_wedge", "stepped_wedge_gee")
    spec = _design(tmp_path, frame, starts, names, "trial", "not_yet_treated", "records")
    by_id = {r.analysis.id: r for r in evaluate(spec).runs}
    for name in names:
        got = getattr(pe, name)(
            frame, outcome="y", cluster="unit", period="period", treatment="trt"
        )
        pd.testing.assert_frame_equal(got.table, by_id[name].result.table, check_exact=True)
    binary = frame.drop(columns="y").rename(columns={"outcome_bin": "y"})
    (tmp_path / "bin").mkdir()
    spec = _design(tmp_path / "bin", binary, starts, ("stepped_wedge_glmm",), "trial",
                   "not_yet_treated", "records")  # fmt: skip
    want = evaluate(spec).runs[0].result.table
    got = pe.stepped_wedge_glmm(binary, outcome="y", cluster="unit", period="period",
                                treatment="trt")  # fmt: skip
    pd.testing.assert_frame_equal(got.table, want, check_exact=True)


@pytest.mark.skipif(
    not (SHARED_SW / "geeCRT_sampleSWCRTSmall.csv").is_file(), reason="reference data absent"
)
def test_geecrt_vignette_in_one_call():
    """geeCRT 1.1.4 vignette, geemaee on sampleSWCRTSmall (y_con, nested exchangeable, MAEE):
    −0.1846654 with BC0 SE 0.14636555 (printed to 7 digits; tolerance geeCRT's epsilon 1e-3
    relative, where geeCRT stops iterating)."""
    d = pd.read_csv(SHARED_SW / "geeCRT_sampleSWCRTSmall.csv")
    res = pe.stepped_wedge_gee(
        d,
        outcome="y_con",
        cluster="id",
        period="period",
        treatment="treatment",
        inference="sandwich",
    )
    row = res.table.iloc[0]
    assert row["estimate"] == pytest.approx(-0.1846654, rel=1e-3)
    assert row["std_error"] == pytest.approx(0.14636555, rel=1e-3)


def test_help_lists_every_design_option_with_type_default_and_meaning():
    for name in (*PANEL_ESTIMATORS, "stepped_wedge", "stepped_wedge_gee", "stepped_wedge_glmm"):
        fn = getattr(pe, name)
        params = inspect.signature(fn).parameters
        model = OPTIONS[name]
        for option in model.option_names():
            field = model.model_fields[option]
            assert params[option].default == field.default, (name, option)
            assert field.description, (name, option)  # the meaning, from settings.py
            meaning = " ".join(field.description.split())
            assert f"\n{option} : " in fn.__doc__ and meaning in fn.__doc__
        assert "inference" in params and "level" in params


def test_each_functions_inference_example_is_one_it_accepts():
    """The docstrings showed {"method": "cluster_bootstrap", "draws": 999} for every function,
    and 15 of 16 refused it: each now shows a mapping of its own methods, which its
    validation accepts."""
    for name in (*PANEL_ESTIMATORS, "stepped_wedge", "stepped_wedge_gee", "stepped_wedge_glmm"):
        shown = re.search(r"e\.g\. (\{.*?\})", getattr(pe, name).__doc__).group(1)
        methods = OPTIONS[name].inference_methods
        assert pe.api._inference(json.loads(shown), methods, name).method in methods, name


@pytest.mark.parametrize("fn", [pe.fit_frame, pe.fit_records, pe.api.report])
def test_the_generic_functions_document_every_parameter(fn):
    """fit_frame, fit_records and report had prose only: no Parameters section."""
    doc = inspect.cleandoc(fn.__doc__)
    assert "\nParameters\n----------\n" in doc and "\nReturns\n-------\n" in doc
    for name, param in inspect.signature(fn).parameters.items():
        shown = f"**{name}" if param.kind is param.VAR_KEYWORD else name
        assert re.search(rf"(\n|, ){re.escape(shown)}( : |\n|, )", doc), (fn.__name__, name)
    assert max(map(len, doc.splitlines())) <= 92


def test_summary_html_and_plot():
    frame = staggered()
    res = pe.event_study(frame, outcome="y", unit="unit", time="period", first_treated="g")
    text = res.summary()
    assert text == str(res)
    assert "Units: 30 (6 treated)" in text and res.inference.label in text
    assert "chosen by default because only 6 units are treated" in text
    first = res.table.iloc[0]
    assert f"{first['estimate']:.4f}" in text and f"{first['std_error']:.4f}" in text
    html = res._repr_html_()
    assert html.startswith("<div>") and "<table>" in html and "&#x27;" not in res.outcome
    fig = res.plot()
    ax = fig.axes[0]
    assert ax.get_xlabel() == "periods since the start"
    assert len(ax.lines) >= 1 and ax.get_title()


def test_evaluate_and_report_from_python(tmp_path):
    frame = staggered()
    starts = {6: ["u00", "u01", "u02"], 8: ["u03", "u04", "u05"]}
    spec = _design(tmp_path, frame, starts, ("twfe",))
    from_file = pe.evaluate(spec)
    from_frame = pe.evaluate(spec, data=frame)
    pd.testing.assert_frame_equal(
        from_file.runs[0].result.table, from_frame.runs[0].result.table, check_exact=True
    )
    paths = pe.report(from_frame, tmp_path / "out")
    assert sorted(p.name for p in paths) == ["api_check.html", "api_check.json"]
    assert "data frame" in (tmp_path / "out" / "api_check.json").read_text()


@pytest.mark.parametrize(
    ("change", "kwargs", "where", "message"),
    [
        (None, {"outcome": "nope"}, "argument outcome", "column 'nope' is not in the data"),
        (None, {"first_treated": None}, "argument first_treated", "exactly one of"),
        (lambda f: f.assign(y=f["y"].astype(str).where(f.index != 7, "n/a")), {}, "column y", ""),
        (
            lambda f: f.assign(g=np.where(f.index == 12, 3, f["g"])),
            {},
            "argument first_treated",
            "",
        ),
    ],
)
def test_bad_input_names_the_argument(change, kwargs, where, message):
    frame = staggered() if change is None else change(staggered())
    args = {"outcome": "y", "unit": "unit", "time": "period", "first_treated": "g"} | kwargs
    with pytest.raises(DataError) as info:
        pe.twfe(frame, **args)
    assert info.value.where.startswith(where) and message in info.value.one_line()


def test_a_switching_treatment_and_a_misspelt_option_are_one_line_errors():
    frame = staggered()
    frame["d"] = ((frame["g"] > 0) & (frame["period"] >= frame["g"])).astype(int)
    frame.loc[(frame["unit"] == "u00") & (frame["period"] == 9), "d"] = 0
    with pytest.raises(DataError, match="treatment switches off for unit u00"):
        pe.twfe(frame, outcome="y", unit="unit", time="period", treatment="d")
    with pytest.raises(DesignError, match=r"options\.controll_group"):
        pe.callaway_santanna(
            staggered(),
            outcome="y",
            unit="unit",
            time="period",
            first_treated="g",
            controll_group="never_treated",
        )
    with pytest.raises(DesignError, match="not available for twfe"):
        pe.twfe(
            staggered(),
            outcome="y",
            unit="unit",
            time="period",
            first_treated="g",
            inference="bootstrapp",
        )
    with pytest.raises(DataError, match="pandas DataFrame"):
        pe.twfe([1, 2], outcome="y", unit="unit", time="period", first_treated="g")


def test_power_functions_reproduce_the_published_examples():
    """SteppedPower (Hussey & Hughes setting) and swCRTdesign Example 1, published to 10
    significant digits (tolerance half a unit in the last digit), through pe.power; pe.mdes
    inverts it and pe.clusters_needed finds the 6 per sequence of that design."""
    hh = {"cell_size": 100, "tau2": 0.025**2, "sigma2": 0.041 * 0.959}
    assert pe.power([6, 6, 6, 6], 0.018, **hh) == pytest.approx(0.8059171845, abs=5e-11)
    sw = {"cell_size": 120, "tau2": 0.01**2, "sigma2": 0.0425 * 0.9575}
    assert pe.power([6, 6, 6, 6], 0.015, **sw) == pytest.approx(0.7861895925, abs=5e-11)
    m = pe.mdes([6, 6, 6, 6], **hh)
    assert pe.power([6, 6, 6, 6], m, **hh) == pytest.approx(0.8, abs=1e-9) and m < 0.018
    assert pe.clusters_needed(0.018, 4, **hh) == 6
    # beyond 200 per sequence it returned 0, read as "none needed" (found in review)
    with pytest.raises(EstimationError) as err:
        pe.clusters_needed(0.0005, 4, **hh)
    reach = pe.power([200] * 4, 0.0005, **hh)
    assert err.value.one_line().startswith(
        f"argument effect: even 200 clusters per sequence reach only {reach:.1%} power for an "
        "effect of 0.0005, short of 80%"
    )
    with pytest.raises(DesignError, match="tau2 and sigma2, or icc"):
        pe.power([6, 6], 0.1, cell_size=10)


def test_each_replication_page_shows_a_short_api_call_that_reproduces_its_number():
    """The code each replication page shows (replications/report.py) runs as shown, is at most
    6 lines of user code, and gives the published number within its tolerance."""
    from pathfinder_eval.replications.registry import ENTRIES
    from pathfinder_eval.replications.report import api_code
    from pathfinder_eval.replications.run import SHARED_REFERENCE, ReplicationResult

    shown = 0
    for entry in ENTRIES.values():
        if entry.api is None:
            continue
        if not entry.bundled and not (ROOT / SHARED_REFERENCE / entry.data).is_file():
            continue
        code = api_code(ReplicationResult(entry, ()))
        user = [ln for ln in entry.api.code.splitlines() if ln.strip() and not ln.startswith("#")]
        assert len(user) <= 6, entry.name
        namespace: dict = {}
        with contextlib.redirect_stdout(io.StringIO()) as out:
            cwd = os.getcwd()
            os.chdir(ROOT)
            try:
                exec(code, namespace)
            finally:
                os.chdir(cwd)
        published = next(p for p in entry.published if p.label == entry.api.label)
        tol = entry.api.tolerance or published.tolerance
        assert abs(namespace["value"] - published.value) <= tol, (entry.name, namespace["value"])
        assert out.getvalue().strip().startswith(str(namespace["value"])[:6])
        shown += 1
    assert shown >= 6  # the bundled entries; the GPL ones too when ../shared is there


def test_honest_did_on_an_event_study_result_reproduces_the_honestdid_readme():
    """pe.honest_did reads an event study's rows and covariance: given the HonestDiD README's
    event study (replications/honestdid.py: fixest's coefficients and covariance) as a result,
    it prints the README's smoothness intervals (3 significant digits, with the README's
    folded-normal simulation: tolerance as the replication's)."""
    from pathfinder_eval.replications import honestdid as h
    from pathfinder_eval.replications.registry import ENTRIES
    from pathfinder_eval.replications.run import data_path
    from pathfinder_eval.results import EffectEstimates, InferenceUsed, estimates_table

    beta, sigma = h.event_study(data_path(ENTRIES["ehec_honestdid"], None))
    rows = [
        {
            "term": f"e{e}",
            "estimate": b,
            "std_error": float(np.sqrt(sigma[i, i])),
            "statistic": np.nan,
            "p_value": np.nan,
            "ci_lower": np.nan,
            "ci_upper": np.nan,
            "event_time": float(e),
        }
        for i, (e, b) in enumerate(zip([-6, -5, -4, -3, -2, 0, 1], beta, strict=True))
    ]
    res = EffectEstimates(
        analysis_id="es",
        outcome="dins",
        estimator="event_study",
        inference=InferenceUsed(key="cr1", label="fixest CR1"),
        table=estimates_table(rows),
        vcov=np.asarray(sigma),
    )
    sd = pe.honest_did(res, list(h.M_SD))
    for (lo, hi), got_lo, got_hi in zip(h._SD_PRINTED, sd.lower, sd.upper, strict=True):
        assert got_lo == pytest.approx(lo, abs=h._three_digits(lo) + 3e-5)
        assert got_hi == pytest.approx(hi, abs=h._three_digits(hi) + 3e-5)
    with pytest.raises(DesignError, match="restriction"):
        pe.honest_did(res, [0.0], restriction="bounded")
    # the same rows with a reference row (estimate 0, variance 0) at e = −1, as Callaway &
    # Sant'Anna's universal base reports it, give the same intervals (it crashed at M > 0:
    # "Matrix is not positive definite")
    ref = {**rows[0], "term": "e-1", "estimate": 0.0, "std_error": 0.0, "event_time": -1.0}
    sigma_ref = np.zeros((8, 8))
    keep = [0, 1, 2, 3, 4, 6, 7]
    sigma_ref[np.ix_(keep, keep)] = sigma
    cs = replace(
        res,
        estimator="callaway_santanna",
        table=estimates_table([*rows[:5], ref, *rows[5:]]),
        vcov=sigma_ref,
    )
    with_ref = pe.honest_did(cs, list(h.M_SD))
    np.testing.assert_allclose(with_ref.lower, sd.lower, rtol=1e-12)
    np.testing.assert_allclose(with_ref.upper, sd.upper, rtol=1e-12)


def test_honest_did_refuses_leads_not_measured_from_the_reference():
    """Callaway & Sant'Anna's default (varying) base reports each lead as a one-period change,
    and imputation's leads come from a separate test: the restrictions, written for effects
    relative to e = −1, were applied to them without a word."""
    args = {"outcome": "y", "unit": "unit", "time": "period", "first_treated": "g"}
    for res in (pe.callaway_santanna(staggered(), **args), pe.imputation(staggered(), **args)):
        with pytest.raises(DesignError, match="not measured from event time −1"):
            pe.honest_did(res, [0.1])
    universal = pe.callaway_santanna(staggered(), base_period="universal", **args)
    got = pe.honest_did(universal, [0.0, 0.05])
    assert np.all(got.lower < got.upper) and got.lower[1] <= got.lower[0]


def test_cluster_argument_clusters_above_the_unit_or_is_refused():
    """`cluster=` is the design file's `inference.cluster` on a column carried to the unit
    table (`data.columns.unit_columns`), beside the region; estimators whose variance
    clusters by unit only refuse it, and a unit in two clusters is a data error on its row."""
    from pathfinder_eval.settings import Inference

    frame = staggered().assign(
        state=lambda f: f["unit"].str[1:].astype(int) // 3,
        area=lambda f: f["unit"].str[1:].astype(int) % 5,
    )
    args = {"outcome": "y", "unit": "unit", "time": "period", "first_treated": "g"}
    by_state = pe.callaway_santanna(frame, **args, cluster="state", inference="cluster_robust")
    same = pe.callaway_santanna(
        frame,
        **args,
        region="state",
        inference=Inference(method="cluster_robust", cluster="region"),
    )
    by_unit = pe.callaway_santanna(frame, **args, inference="cluster_robust")
    assert by_state.diagnostics["n_clusters"] == 10
    pd.testing.assert_frame_equal(by_state.table, same.table)
    assert not np.allclose(by_state.table["std_error"], by_unit.table["std_error"])
    beside = pe.callaway_santanna(
        frame, **args, region="area", cluster="state", inference="cluster_robust"
    )
    pd.testing.assert_frame_equal(beside.table, by_state.table)  # the region is not the cluster
    with pytest.raises(DesignError) as err:
        pe.twfe(frame, **args, cluster="state")
    assert err.value.where == "argument cluster" and "by unit only" in err.value.what
    with pytest.raises(DesignError, match="names a column the unit table has for itself"):
        pe.callaway_santanna(frame.rename(columns={"state": "dose"}), **args, cluster="dose")
    with pytest.raises(DesignError, match="inference's cluster 'region' differ"):
        pe.callaway_santanna(
            frame,
            **args,
            cluster="state",
            inference=Inference(method="cluster_robust", cluster="region"),
        )
    with pytest.raises(DesignError, match="cohort_stratified variance treats units as indep"):
        pe.callaway_santanna(frame, **args, cluster="state", inference="cohort_stratified")
    pd.testing.assert_frame_equal(  # the unit column named as the cluster: by unit
        pe.callaway_santanna(frame, **args, cluster="unit", inference="cluster_robust").table,
        by_unit.table,
    )
    blank = frame.assign(state=frame["state"].astype(str).where(frame["period"] != 3, " "))
    pd.testing.assert_frame_equal(  # blank cells are missing, not another state
        pe.callaway_santanna(blank, **args, cluster="state", inference="cluster_robust").table,
        by_state.table,
    )
    frame.loc[17, "state"] = 99  # u01, period 8
    with pytest.raises(DataError) as err:
        pe.callaway_santanna(frame, **args, cluster="state", inference="cluster_robust")
    assert (
        err.value.row == 18
        and "unit u01 is in more than one state ('0' and '99')" in err.value.what
    )
    assert "cluster" not in inspect.signature(pe.twfe).parameters
    assert "cluster" in inspect.signature(pe.stepped_wedge).parameters  # its cluster column
    assert "cluster : str, optional" in pe.did_multiplegt_dyn.__doc__


def test_dcdh_by_one_column_clustered_by_another():
    """did_multiplegt_dyn's `by` and `cluster` name two frame columns (the authors' `by` with
    `cluster`): each part's rows equal the part fitted alone, clustered by state."""
    from pathfinder_eval.estimators.did.multiplegt_dyn import multiplegt_dyn

    frame = staggered().assign(
        state=lambda f: f["unit"].str[1:].astype(int) // 3,
        area=lambda f: f["unit"].str[1:].astype(int) % 2,
    )
    frame["d"] = ((frame["g"] > 0) & (frame["period"] >= frame["g"])).astype(int)
    fit = pe.did_multiplegt_dyn(
        frame,
        outcome="y",
        unit="unit",
        time="period",
        treatment="d",
        cluster="state",
        by="area",
        effects=2,
        inference="cluster_robust",
    )
    rows = fit.table[fit.table["term"].str.startswith("area ")]
    for value in (0, 1):
        part = frame[frame["area"] == value]
        alone = multiplegt_dyn(
            part["y"].to_numpy(float),
            part["unit"].to_numpy(),
            part["period"].to_numpy(float),
            part["d"].to_numpy(float),
            effects=2,
            placebo=2,
            cluster=part["state"].to_numpy(),
        )
        mine = rows[rows["term"].str.startswith(f"area {value}:")]
        np.testing.assert_allclose(mine["estimate"], alone.estimate, rtol=1e-12)
        np.testing.assert_allclose(mine["std_error"], np.sqrt(np.diag(alone.vcov)), rtol=1e-12)
    # the default, with few switchers, does not fall back on a variance that ignores the states
    default = pe.did_multiplegt_dyn(
        frame, outcome="y", unit="unit", time="period", treatment="d", cluster="state"
    )
    assert default.inference.label.endswith("clustered by state (10 clusters)")
    with pytest.raises(DesignError, match="names a column the unit table has for itself"):
        pe.did_multiplegt_dyn(
            frame.assign(wave=frame["area"]),
            outcome="y",
            unit="unit",
            time="period",
            treatment="d",
            by="wave",
        )


def test_unit_columns_in_a_design_file_give_the_api_cluster(tmp_path):
    """`data.columns.unit_columns: [state]` with `inference: {cluster: state}` is the API's
    `cluster="state"`; a reserved name, or unit columns outside tidy data, is a design error
    naming the key."""
    frame = staggered().assign(state=lambda f: f["unit"].str[1:].astype(int) // 3)
    starts = {6: ["u00", "u01", "u02"], 8: ["u03", "u04", "u05"]}
    design = _design(tmp_path, frame, starts, ["callaway_santanna"])
    text = (tmp_path / "d.yaml").read_text()
    text = text.replace("period: period}", "period: period, unit_columns: [state]}").replace(
        "estimator: callaway_santanna}",
        "estimator: callaway_santanna, inference: {method: cluster_robust, cluster: state}}",
    )
    (tmp_path / "d.yaml").write_text(text)
    design = load_design(tmp_path / "d.yaml")
    got = evaluate(design).runs[0].result
    want = pe.callaway_santanna(
        frame,
        outcome="y",
        unit="unit",
        time="period",
        first_treated="g",
        cluster="state",
        inference="cluster_robust",
    )
    pd.testing.assert_frame_equal(got.table, want.table, check_exact=True)
    assert got.diagnostics["n_clusters"] == 10
    with pytest.raises(DataError, match="a folder of EES CSVs has none"):
        evaluate(design, tmp_path)  # a folder in place of the tidy file: never a silent NaN
    reserved = text.replace("unit_columns: [state]}", "unit_columns: [region]}")
    not_tidy = text.replace("source: tidy", "source: synthetic")
    for bad, message in ((reserved, "is already a unit-table column"), (not_tidy, "tidy data")):
        (tmp_path / "d.yaml").write_text(bad)
        with pytest.raises(DesignError) as err:
            load_design(tmp_path / "d.yaml")
        assert message in err.value.what and "data" in err.value.where


def test_a_regional_group_takes_its_members_shared_unit_column():
    """unit_columns in a regional design: each group (RCC's Greater Manchester, the South
    East) has its members' shared value, and members that differ are a panel error naming
    the group and two of their values, not a silent missing cluster."""
    from dataclasses import replace

    from pathfinder_eval.data.load import load_outcomes
    from pathfinder_eval.errors import PanelError
    from pathfinder_eval.panel import build_panel
    from pathfinder_eval.pipeline import describe_outcome
    from pathfinder_eval.spec import TidyColumns

    spec = load_design(ROOT / "designs" / "rcc.yaml")
    columns = TidyColumns(unit_columns=("area",))  # (synthetic data: the column added below)
    spec = spec.model_copy(update={"data": spec.data.model_copy(update={"columns": columns})})
    raw = load_outcomes(spec, None, spec.seed)
    members = {m: g for g, group in spec.groups.items() for m in group.members}
    area = raw.units["unit"].map(lambda u: f"in {members[u]}" if u in members else "elsewhere")
    panel = build_panel(
        spec, replace(raw, units=raw.units.assign(area=area)), describe_outcome(spec)
    )
    got = panel.units.set_index("unit")["area"]
    assert got["Greater Manchester"] == "in Greater Manchester"
    assert got["South East"] == "in South East"
    assert (got.drop(["Greater Manchester", "South East"]) == "elsewhere").all()
    one = next(iter(spec.groups["Greater Manchester"].members))
    split = raw.units.assign(area=area.where(raw.units["unit"] != one, "apart"))
    with pytest.raises(PanelError, match="members of group Greater Manchester have different area"):
        build_panel(spec, replace(raw, units=split), describe_outcome(spec))


def test_a_cluster_or_by_naming_no_unit_table_column_is_a_design_error(tmp_path):
    """A typo in inference.cluster or dCDH's by stops the run at the design (exit 2, the key
    named), rather than reporting the analysis as not estimable."""
    frame = staggered()
    _design(tmp_path, frame, {6: ["u00", "u01", "u02"]}, ["callaway_santanna"])
    text = (tmp_path / "d.yaml").read_text()
    for inserted, key in (
        ("inference: {method: cluster_robust, cluster: stat}", "inference.cluster"),
        ("options: {by: aera}", "options.by"),
    ):
        estimator = "did_multiplegt_dyn" if "by" in key else "callaway_santanna"
        (tmp_path / "d.yaml").write_text(
            text.replace(
                "{id: callaway_santanna, estimator: callaway_santanna}",
                f"{{id: a, estimator: {estimator}, {inserted}}}",
            )
        )
        with pytest.raises(DesignError) as err:
            load_design(tmp_path / "d.yaml")
        assert err.value.where == f"analyses[0].{key}"
        assert "is not a column of the unit table" in err.value.what


def test_a_headline_row_without_variance_is_not_called_a_randomisation_test(tmp_path):
    """Sun & Abraham's default (CR2) on single-unit cohorts: the post-treatment average rests
    on cells the model fits exactly, so it has no SE, interval or p-value. The report said
    its MDES was not computed because "this inference gives no standard error (a
    randomisation or conformal test)", which it is not; synthetic control's conformal rows
    (a p-value, no SE) keep that sentence."""
    from did_helpers import single_unit_cohorts

    frame = single_unit_cohorts().rename(columns={"year": "period"})
    starts = {2012: ["u4"], 2013: ["u1"], 2014: ["u0", "u2"]}
    ev = pe.evaluate(_design(tmp_path, frame, starts, ("sun_abraham",)), workers=1)
    assert np.isnan(ev.runs[0].result.table["p_value"].iloc[0])
    html = next(p for p in pe.report(ev, tmp_path / "out") if p.suffix == ".html").read_text()
    assert (
        "Minimum detectable effect not computed: the first row has no standard error, "
        "interval or p-value (the warnings say why)." in html
    )
    assert "a randomisation or conformal test" not in html


def test_callaway_santanna_counts_a_unit_treated_from_the_first_period_the_panel_left_out():
    """The panel leaves out a unit treated from period 1 (no period before its start): the
    warning said so while diagnostics said units_dropped_treated_first_period 0."""
    frame = staggered()
    frame.loc[frame["unit"] == "u00", "g"] = 1
    with pytest.warns(ExcludedRowsWarning, match="10 treated unit with no usable"):
        res = pe.callaway_santanna(
            frame, outcome="y", unit="unit", time="period", first_treated="g"
        )
    assert res.facts.units_dropped_treated_first_period == 1
    assert res.n_treated == 5


def test_rows_the_panel_leaves_out_are_counted_on_the_result_and_warned():
    """A DataFrame call has no report: the rows the panel drops (missing, not finite, outside
    the plausible range) are counted by reason on result.warnings and as one
    ExcludedRowsWarning pointing at the caller's line; a clean frame warns nothing."""
    from pathfinder_eval.errors import ExcludedRowsWarning

    args = {"outcome": "y", "unit": "unit", "time": "period", "first_treated": "g"}
    clean = pe.twfe(staggered(), **args)
    assert not [w for w in clean.warnings if "left out" in w]
    frame = staggered()
    frame.loc[frame["unit"] == "u00", "y"] = np.nan  # a treated unit, all 10 periods
    frame.loc[15, "y"] = np.inf
    frame.loc[25, "y"] = 1e12
    with pytest.warns(ExcludedRowsWarning, match="12 rows of the data were left out") as got:
        res = pe.twfe(frame, **args)
    assert got[0].filename == __file__
    text = next(w for w in res.warnings if "left out" in w)
    assert "10 empty cell" in text and "units u00" in text and "not a finite number" in text
    assert (
        "data frame row 26, column y, outside" in text
    )  # where, not the value (a report may print it)
    assert (res.n_obs, res.n_treated) == (clean.n_obs - 12, clean.n_treated - 1)
    from pathfinder_eval.errors import PanelError

    with pytest.raises(PanelError, match=r"no usable rows in the data \(left out: 300 implaus"):
        pe.twfe(staggered().assign(y=lambda f: f["y"] * 1e12), **args)


def test_text_in_first_treated_and_a_stepped_wedge_treatment_that_stops_are_refused():
    """Text in the first-treated column used to read as 'never treated' (a treated unit
    silently joined the comparisons); a 0/1 treatment that stops, or differs within a
    cluster-period of records, used to be read from its first 1 and the reversal ignored."""
    frame = staggered().astype({"g": object})
    frame.loc[frame["unit"] == "u01", "g"] = "x"
    with pytest.raises(DataError, match=r"'x' of unit u01 is not a number") as info:
        pe.twfe(frame, outcome="y", unit="unit", time="period", first_treated="g")
    assert info.value.row == 11 and "column g" in info.value.where
    rows = []
    for c in range(6):
        for t in range(1, 5):
            for i in range(3):
                rows.append({"cl": f"c{c}", "per": t, "trt": int(t >= 2 + c // 2), "y": i + t})
    records = pd.DataFrame(rows)
    stops = records.copy()
    stops.loc[(stops["cl"] == "c0") & (stops["per"] == 4), "trt"] = 0
    args = {"outcome": "y", "cluster": "cl", "period": "per", "treatment": "trt"}
    with pytest.raises(DataError, match="treatment switches off for unit c0 at period 4"):
        pe.stepped_wedge(stops, **args)
    mixed = records.copy()
    mixed.loc[0, "trt"] = 1
    with pytest.raises(DataError, match="both 0 and 1 in unit c0, period 1"):
        pe.stepped_wedge(mixed, **args)


@pytest.mark.parametrize(
    ("kwargs", "where"),
    [
        ({"level": 95}, "argument level"),
        ({"level": float("nan")}, "argument level"),
        ({"level": 1.0}, "argument level"),
        ({"seed": -1}, "argument seed"),
        ({"seed": 1.5}, "argument seed"),
    ],
)
def test_a_level_or_seed_out_of_range_is_a_design_error_naming_the_argument(kwargs, where):
    args = {"outcome": "y", "unit": "unit", "time": "period", "first_treated": "g"}
    with pytest.raises(DesignError) as info:
        pe.callaway_santanna(staggered(), **args, **kwargs)
    assert info.value.where == where


def test_did_2x2_checks_its_arguments():
    """Each case returned normally or raised a bare ValueError: an inverted interval at
    level=-0.5, a cluster column ignored without cov_type, text in the outcome or group, and a
    covariate name read letter by letter."""
    rng = np.random.default_rng(0)
    n = 200
    frame = pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "g": rng.integers(0, 2, n),
            "p": rng.integers(0, 2, n),
            "x": rng.normal(size=n),
            "c": rng.integers(0, 20, n),
        }
    )
    args = {"outcome": "y", "group": "g", "post": "p"}
    for level in (-0.5, 0, 2):
        with pytest.raises(DesignError, match="argument level"):
            pe.did_2x2(frame, level=level, **args)
    clustered = pe.did_2x2(frame, cluster="c", **args)
    same = pe.did_2x2(frame, cluster="c", cov_type="cluster", **args)
    hc1 = pe.did_2x2(frame, **args)
    assert clustered.table["std_error"][0] == same.table["std_error"][0]
    assert clustered.table["std_error"][0] != hc1.table["std_error"][0]
    with pytest.raises(DesignError, match="the clusters would be ignored"):
        pe.did_2x2(frame, cluster="c", cov_type="HC1", **args)
    text = frame.astype({"g": object})
    text.loc[3, "g"] = "treated"
    with pytest.raises(DataError, match="'treated' is not a number") as info:
        pe.did_2x2(text, **args)
    assert info.value.row == 4 and info.value.where == "argument group (column g)"
    one = pe.did_2x2(frame, covariates="x", **args)
    assert (
        one.table["estimate"][0]
        == pe.did_2x2(frame, covariates=("x",), **args).table["estimate"][0]
    )


@pytest.mark.parametrize(
    ("call", "where"),
    [
        (lambda: pe.power([3, 3, 3], 0.2, cell_size=-5, icc=0.05), "argument cell_size"),
        (lambda: pe.power([3, 3, 3], 0.2, cell_size=20, icc=-0.1), "argument icc"),
        (lambda: pe.power([3, 3, 3], 0.2, cell_size=20, icc=1.0), "argument icc"),
        (lambda: pe.power([3, 3, 3], 0.2, cell_size=20, icc=0.05, decay=2), "argument decay"),
        (lambda: pe.power([3, 3, 3], 0.2, cell_size=20, icc=0.05, cac=1.5), "argument cac"),
        (lambda: pe.power([3, 3, 3], 0.2, cell_size=20, tau2=-0.1, sigma2=1), "argument tau2"),
        (lambda: pe.power([3, 3, 3], 0.2, cell_size=20, icc=0.05, alpha=0), "argument alpha"),
        (lambda: pe.power([], 0.2, cell_size=20, icc=0.05), "argument design"),
        (lambda: pe.power([2.5, 3], 0.2, cell_size=20, icc=0.05), "argument design"),
        (lambda: pe.power(np.zeros((4, 3)), 0.2, cell_size=20, icc=0.05), "argument design"),
        (lambda: pe.mdes([3, 3, 3], cell_size=20, icc=0.05, target=1.5), "argument target"),
        (lambda: pe.clusters_needed(0.2, 0, cell_size=20, icc=0.05), "argument sequences"),
        (lambda: pe.clusters_needed(0.0, 3, cell_size=20, icc=0.05), "argument effect"),
    ],
)
def test_power_arguments_out_of_range_are_design_errors(call, where):
    """Each returned a wrong number (cell_size -5: power 0.65, above cell_size 20's 0.33;
    icc -0.1, decay 2, cac 1.5 ...) or raised numpy's or scipy's own error."""
    with pytest.raises(DesignError) as info:
        call()
    assert info.value.where == where


def test_inputs_found_in_review_give_the_answer_or_a_named_error():
    """A nullable boolean treatment crashed (numpy boolean subtract); whole-number float unit
    ids (0.0, 1.0: after a merge, from Parquet) were 'treated unit 0.0 named in the design has
    no rows'; minus naming the outcome, a constant outcome and the first-treated column as
    outcome gave estimate 0, SE 0, p NaN and no warning (and a column constant within units at
    non-integer levels SEs of 1e-16 with p = 0.03); an integer column name gave pydantic's
    internal ValidationError."""
    frame = staggered()
    frame["d"] = ((frame["g"] > 0) & (frame["period"] >= frame["g"])).astype(int)
    kw = {"outcome": "y", "unit": "unit", "time": "period"}
    base = pe.twfe(frame, **kw, treatment="d").table.iloc[0]
    with pytest.raises(DesignError) as err:  # pydantic's ValidationError (found in review)
        pe.synthetic_did(frame, **kw, treatment="d", seed=None)
    assert err.value.one_line().startswith("argument seed: seed None is not a whole number")
    flagged = pe.twfe(frame.astype({"d": "boolean"}), **kw, treatment="d").table.iloc[0]
    assert (flagged["estimate"], flagged["std_error"]) == (base["estimate"], base["std_error"])
    floats = frame.assign(unit=frame["unit"].str[1:].astype(float))
    as_float = pe.twfe(floats, **kw, first_treated="g").table.iloc[0]
    assert as_float["estimate"] == pytest.approx(base["estimate"], rel=1e-12)
    with pytest.raises(DesignError, match="minus names the outcome itself") as err:
        pe.twfe(frame, **kw, first_treated="g", minus="y")
    assert err.value.where == "argument minus"
    level = frame["unit"].str[1:].astype(float) * 0.37  # non-integer: SEs of rounding, not 0
    for data, outcome in ((frame.assign(y=1.0), "y"), (frame, "g"), (frame.assign(y=level), "y")):
        with pytest.raises(EstimationError, match="does not vary beyond what unit and period"):
            pe.twfe(data, outcome=outcome, unit="unit", time="period", first_treated="g")
    with pytest.raises(DesignError, match="twfe does not read a dose") as err:  # was ignored
        pe.twfe(frame.assign(z=1.0), **kw, first_treated="g", dose="z")
    assert err.value.where == "argument dose"
    numbered = frame[["unit", "period", "g", "y"]].set_axis(["unit", "period", "g", 0], axis=1)
    with pytest.raises(DataError, match=r"column names are text; outcome is 0 \(int\)"):
        pe.twfe(numbered, outcome=0, unit="unit", time="period", first_treated="g")


def test_two_way_residuals_in_closed_form_on_a_balanced_panel():
    """The no-variation check reads these residuals; on a balanced panel they come in closed
    form (the general projection built an n × P matrix: 1.7 s of a 2-million-cell API call)."""
    rng = np.random.default_rng(3)
    units, periods = np.repeat(np.arange(40), 7), np.tile(np.arange(7), 40)
    shuffle = rng.permutation(units.size)  # rows in any order
    units, periods = units[shuffle], periods[shuffle]
    y = rng.normal(size=units.size) * 1e3 + units * 5.0 - periods * 2.0
    exact = two_way_projection(units, periods).residuals(y[:, None])[:, 0]
    np.testing.assert_allclose(two_way_residuals(units, periods, y), exact, rtol=0, atol=1e-9)
    # unbalanced (three cells missing): the closed form is wrong there, the projection is used
    keep = np.ones(units.size, bool)
    keep[:3] = False
    u, t, v = units[keep], periods[keep], y[keep]
    exact = two_way_projection(u, t).residuals(v[:, None])[:, 0]
    assert np.array_equal(two_way_residuals(u, t, v), exact)
    naive = v - (np.bincount(u, v) / np.bincount(u))[u] - (np.bincount(t, v) / np.bincount(t))[t]
    assert np.abs(naive + v.mean() - exact).max() > 1.0


def test_a_result_reprs_in_one_line():
    """repr() was the dataclass dump: about 3,000 characters with the table inside."""
    res = pe.twfe(staggered(), outcome="y", unit="unit", time="period", first_treated="g")
    row = res.table.iloc[0]
    assert repr(res) == (
        f"<EffectEstimates twfe of 'y': 1 rows, ATT (TWFE) = {row['estimate']:.4g} (SE "
        f"{row['std_error']:.3g}); 30 units, 6 treated; inference {res.inference.key}>"
    )
