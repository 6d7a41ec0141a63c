"""Stepped-wedge input a review broke: an outcome with no variation (a rare event in a small
trial) crashed the LMM with ZeroDivisionError; the GEE and GLMM silently left out individual
covariates; a cluster written 'c1' in the data and 'C1' in the design joined the comparisons
as another cluster."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import pathfinder_eval as pe
from cli_helpers import run
from pathfinder_eval.errors import DataError, DesignError, EstimationError, PanelError
from pathfinder_eval.report.format import fmt

ARGS = {"outcome": "y", "cluster": "cl", "period": "per", "start": "start"}


def trial_records(seed: int = 3) -> pd.DataFrame:
    """8 clusters, 5 periods, 4 sequences (starts 2–5), 6 people per cluster-period."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(8):
        start, u = 2 + c // 2, rng.normal(0, 0.5)
        for t in range(1, 6):
            for _ in range(6):
                age = rng.normal(40, 10)
                y = u + 0.1 * t + 0.4 * (t >= start) + 0.05 * age + rng.normal()
                rows.append({"cl": f"C{c}", "per": t, "start": start, "age": age, "y": y})
    return pd.DataFrame(rows)


def trial_design(
    first_start: int = 2,
    more: str = "",
    waves: tuple[tuple[int, str], ...] | None = None,
) -> str:
    """A design file for `trial_records`: waves (start, units) of two clusters starting in
    periods `first_start`, 3, 4 and 5 unless given, the LMM and `more` analyses (YAML lines)."""
    waves = waves or ((first_start, "C0, C1"), (3, "C2, C3"), (4, "C4, C5"), (5, "C6, C7"))
    rollout = "".join(
        f"  - {{wave: S{i}, start: {start}, units: [{units}]}}\n"
        for i, (start, units) in enumerate(waves, 1)
    )
    return (
        "name: trial\ntitle: Trial\npilot: trial\nunit_level: cluster\n"
        "time: {axis: period}\nrollout:\n"
        + rollout
        + "comparison: {pool: not_yet_treated, min_units: 1}\noutcomes:\n  - {column: y}\n"
        "analyses:\n  - {id: sw, estimator: stepped_wedge}\n"
        + more
        + "data:\n  source: records\n  columns: {unit: cl, period: per}\n"
    )


@pytest.mark.parametrize("value", [0.0, 1.0])
@pytest.mark.parametrize("name", ["stepped_wedge", "stepped_wedge_gee"])
def test_an_outcome_without_variation_is_an_estimation_error(name, value):
    with pytest.raises(EstimationError, match=rf"the same \({value:g}\) in every record"):
        getattr(pe, name)(trial_records().assign(y=value), **ARGS)


@pytest.mark.parametrize("name", ["stepped_wedge_gee", "stepped_wedge_glmm"])
def test_cell_level_models_refuse_individual_covariates(name):
    data = trial_records()
    if name == "stepped_wedge_glmm":
        data = data.assign(y=(data["y"] > data["y"].median()).astype(int))
    with pytest.raises(EstimationError, match=r"does not adjust for individual covariates \(age"):
        getattr(pe, name)(data, **ARGS, covariates=("age",))
    # a closed cohort's person id was ignored without a word (found in review)
    cohort = data.assign(pid=data.groupby(["cl", "per"]).cumcount().astype(str) + data["cl"])
    with pytest.raises(EstimationError) as err:
        getattr(pe, name)(cohort, **ARGS, individual="pid")
    assert err.value.one_line().startswith(
        f"data.columns.individual: {name} works on cluster-period summaries and has no term "
        "for a person seen in several periods (individual: pid)"
    )
    adjusted = pe.stepped_wedge(trial_records(), **ARGS, covariates=("age",))
    plain = pe.stepped_wedge(trial_records(), **ARGS)
    assert adjusted.table["estimate"].iloc[0] != pytest.approx(plain.table["estimate"].iloc[0])


def test_a_cluster_id_differing_only_in_case_is_an_error(tmp_path, capsys):
    design = trial_design()
    data = trial_records()
    data.loc[data["cl"] == "C1", "cl"] = "c1"
    code, _ = run(tmp_path, design=design, data=data.drop(columns="start").to_csv(index=False))
    assert code == 2
    err = capsys.readouterr().err
    assert "unit 'c1' in the data differs from 'C1' in the design only in case" in err


def test_a_true_false_outcome_reads_as_one_and_zero():
    """A boolean column (as Parquet stores a binary outcome) was refused as "non-numeric
    value np.True_"."""
    data = trial_records()
    flag = data["y"] > data["y"].median()
    as_bool = pe.stepped_wedge_gee(data.assign(y=flag), **ARGS)
    as_int = pe.stepped_wedge_gee(data.assign(y=flag.astype(int)), **ARGS)
    np.testing.assert_array_equal(as_bool.table["estimate"], as_int.table["estimate"])


def test_a_treated_cluster_whose_rows_are_all_left_out_says_why():
    data = trial_records()
    data.loc[data["cl"] == "C2", "y"] = np.nan
    with pytest.raises(PanelError, match=r"C2 \(C2\) named in the design has no usable rows: "
                       "rows left out as individual record with a missing outcome"):  # fmt: skip
        pe.stepped_wedge(data, **ARGS)


def test_an_empty_start_cell_is_the_row_named():
    """A start missing on some rows of a cluster named row 1 (the cluster's first row, which
    was fine); the error now names the first row that differs and says it is empty."""
    data = trial_records()
    row = int(np.flatnonzero(data["cl"] == "C1")[3])
    data["start"] = data["start"].astype(float)
    data.loc[row, "start"] = np.nan
    with pytest.raises(pe.errors.DataError, match=r"unit C1 .*\(2 on its first row, empty here\)"
                       ) as info:  # fmt: skip
        pe.stepped_wedge(data, **ARGS)
    assert info.value.row == row + 1


@pytest.mark.parametrize("name", ["stepped_wedge", "stepped_wedge_gee", "stepped_wedge_glmm"])
def test_a_cluster_with_no_start_is_named_in_the_warnings(name):
    """A cluster in the data but in no wave joined the controls with only the design table's
    'never' row to show for it."""
    data = pd.concat(
        [trial_records(), trial_records(seed=4).query("cl == 'C0'").assign(cl="C99", start=np.nan)]
    )
    if name == "stepped_wedge_glmm":
        data = data.assign(y=(data["y"] > data["y"].median()).astype(int))
    res = getattr(pe, name)(data, **ARGS)
    said = [w for w in res.warnings if "have no start" in w]
    assert said == [
        "1 cluster(s) in the data have no start (C99): they are analysed as controls in every "
        "period. If they cross over, give them a start (a wave in the design's rollout, or the "
        "data's start column); if they are not in the trial, remove their rows."
    ]
    assert res.n_units == 9 and res.n_treated == 8
    every = getattr(pe, name)(data.query("cl != 'C99'"), **ARGS)
    assert not [w for w in every.warnings if "have no start" in w]


def test_a_missing_person_id_in_a_cohort_is_the_row_named():
    """A missing id was read as the text 'nan', making everyone without an id one person."""
    data = trial_records().assign(pid=lambda d: d["cl"] + "-" + (d.index % 6).astype(str))
    data["pid"] = data["pid"].astype(object)
    data.loc[13, "pid"] = None
    with pytest.raises(pe.errors.DataError, match="individual identifier is missing") as info:
        pe.stepped_wedge(data, **ARGS, individual="pid")
    assert info.value.row == 14 and info.value.where == "column pid"


def test_a_cohort_counts_records_not_individuals_in_its_design():
    """A closed cohort's design said '180 individuals' for 180 records of 36 people."""
    data = trial_records().assign(pid=lambda d: d["cl"] + "-" + (d.index % 6).astype(str))
    res = pe.stepped_wedge(data, **ARGS, individual="pid")
    assert res.facts.design["records"] == 240 and "individuals" not in res.facts.design
    assert res.facts.individual_level["individuals"] == 48
    cross = pe.stepped_wedge(data, **ARGS)
    assert cross.facts.design["individuals"] == 240 and "records" not in cross.facts.design


def few_clusters(n: int) -> pd.DataFrame:
    """n clusters, one per sequence (starts 2..n+1), n + 1 periods, 8 people per cell."""
    rng = np.random.default_rng(n)
    rows = [
        {"cl": f"C{c}", "per": t, "start": c + 2, "y": u + 0.3 * (t >= c + 2) + rng.normal()}
        for c in range(n)
        for u in [rng.normal(0, 0.4)]
        for t in range(1, n + 2)
        for _ in range(8)
    ]
    return pd.DataFrame(rows)


@pytest.mark.parametrize(("clusters", "warned"), [(4, True), (5, True), (6, False)])
def test_the_default_says_it_is_conservative_below_six_clusters(clusters, warned):
    res = pe.stepped_wedge(few_clusters(clusters), **ARGS)
    said = [w for w in res.warnings if w.startswith(f"only {clusters} clusters")]
    assert bool(said) is warned
    assert res.inference.key == "lmm_mancl_derouen"
    if warned:
        assert f"t({clusters - 1})" in said[0] and "inference.method: randomisation" in said[0]
    asked = pe.stepped_wedge(few_clusters(clusters), **ARGS, inference="kenward_roger")
    assert not [w for w in asked.warnings if w.startswith("only ")]


def test_a_cluster_started_before_the_data_is_counted_in_records(tmp_path, capsys):
    """The ledger counted the left-out cluster's cells (10) beside other reasons' records; the
    exclusions table's 'Rows' are the file's rows: its 60 records. (A DiD beside the stepped
    wedge has no period before the start to compare with, so the clusters are left out.)"""
    design = trial_design(first_start=1, more="  - {id: did, estimator: twfe}\n")
    data = trial_records().drop(columns="start")
    code, out = run(tmp_path, design=design, data=data.to_csv(index=False))
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "trial.json").read_text())
    [left] = report["exclusions"]
    assert left["reason"] == "treated unit with no usable period before its start"
    assert (left["count"], left["units"]) == (60, ["C0", "C1"])
    assert report["analyses"][0]["diagnostics"]["design"]["individuals"] == 180


def test_clusters_treated_from_the_first_period_stay_in_as_lme4_keeps_them():
    """A sequence crossing at period 1 was left out like a DiD unit with no pre-period; a
    mixed model uses it. Reference: statsmodels' MixedLM by REML on the same records (random
    cluster intercept, period and intervention fixed effects), and the GLS standard error
    (XᵀV⁻¹X)⁻¹ at its variance estimates, which is lme4's vcov (statsmodels' own bse comes from
    the full Hessian). Tolerances: its optimiser's, 1e-4."""
    import statsmodels.formula.api as smf

    data = trial_records()
    data.loc[data["cl"].isin(["C0", "C1"]), "start"] = 1
    data["trt"] = (data["per"] >= data["start"]).astype(float)
    ours = pe.stepped_wedge(
        data, **ARGS, model="hussey_hughes", effect="immediate", inference="model_based"
    )
    assert (ours.n_units, ours.n_treated) == (8, 8)
    ref = smf.mixedlm("y ~ C(per) + trt", data, groups=data["cl"]).fit(reml=True)
    tau2, sigma2 = float(ref.cov_re.iloc[0, 0]), float(ref.scale)
    assert ours.facts.variance_components["tau2"] == pytest.approx(tau2, rel=1e-4)
    assert ours.facts.variance_components["sigma2"] == pytest.approx(sigma2, rel=1e-4)
    assert ours.table["estimate"].iloc[0] == pytest.approx(ref.params["trt"], abs=1e-4)
    x = pd.get_dummies(data["per"], drop_first=True).astype(float).assign(trt=data["trt"])
    x.insert(0, "const", 1.0)
    info = sum(
        xi.T @ np.linalg.solve(sigma2 * np.eye(len(xi)) + tau2, xi)
        for xi in (x[data["cl"] == c].to_numpy() for c in data["cl"].unique())
    )
    gls_se = float(np.sqrt(np.linalg.inv(info)[-1, -1]))
    assert ours.table["std_error"].iloc[0] == pytest.approx(gls_se, rel=1e-4)
    without = pe.stepped_wedge(
        data.query("start > 1"), **ARGS, model="hussey_hughes", effect="immediate"
    )
    assert without.table["estimate"].iloc[0] != pytest.approx(ours.table["estimate"].iloc[0])


@pytest.mark.parametrize(
    ("inference", "said"),
    [
        ("default", "t reference with clusters-minus-one (I − 1) degrees of freedom 7.0"),
        ("cr2", "t reference with Satterthwaite (CR2) degrees of freedom"),
        ("kenward_roger", "t reference with Kenward-Roger degrees of freedom"),
    ],
)
def test_the_report_names_where_the_degrees_of_freedom_come_from(inference, said):
    """The default's line read 't reference with mancl_derouen degrees of freedom 11.0': an
    internal key, and its df are the I − 1 rule, not a Mancl-DeRouen df."""
    from pathfinder_eval.report.views import lmm_lines

    res = pe.stepped_wedge(trial_records(), **ARGS, inference=inference)
    assert said in " ".join(lmm_lines(res.facts, res))


def test_a_trial_report_speaks_of_clusters_not_las(tmp_path, capsys):
    """A stepped-wedge report's trends table had 'Treated LAs' columns, its design said
    'Comparison pool: 0 units' and its limitations 'Only 8 treated units: ... learns the
    treated units' noise from the comparison units' (the DiD policy, not the trial's). The
    trends table then split by role, so every cluster was 'treated' in every period and the
    comparison column was empty: it is by condition (in intervention, not yet started)."""
    design = trial_design()
    records = trial_records()
    code, out = run(tmp_path, design=design, data=records.to_csv(index=False))
    assert code == 0, capsys.readouterr().err
    html = (out / "trial.html").read_text()
    assert "Raw trends: clusters in intervention and not yet started</h3>" in html
    assert "Clusters in intervention</th>" in html and "Clusters not yet started</th>" in html
    assert "Treated LAs" not in html and "Comparison pool: 0 units" not in html
    cell = records.groupby(["cl", "per", "start"], as_index=False)["y"].mean()
    cell["arm"] = np.where(cell["per"] >= cell["start"], "on", "off")
    means = cell.groupby(["per", "arm"])["y"].mean().unstack()
    counts = cell.groupby(["per", "arm"])["cl"].nunique().unstack().fillna(0)
    body = html[html.index("<caption>Mean y by period</caption>") :]
    body = body[: body.index("</tbody>")]
    for period in range(1, 6):
        on, off = (means.loc[period].get(arm, np.nan) for arm in ("on", "off"))
        shown = [fmt(on), fmt(off), str(int(counts.loc[period].get("on", 0)))]
        shown.append(str(int(counts.loc[period].get("off", 0))))
        row = "".join(f'<td class="num">{v}</td>' for v in shown)
        assert f'<tr><th scope="row">{period}</th>{row}' in body, period
    assert "Comparison: the clusters not yet started in each period" in html
    assert "treated units: conventional cluster-robust inference" not in html


def test_a_descriptive_analysis_beside_the_trial_keeps_its_clusters(tmp_path, capsys):
    """Adding `estimator: descriptive` (which fits nothing) made the design 'not all stepped
    wedge', so clusters treated from period 1 were left out and the LMM's estimate moved."""
    data = trial_records().drop(columns="start").to_csv(index=False)
    runs = []
    for extra in ("", "  - {id: trends, estimator: descriptive}"):
        (tmp_path / str(len(extra))).mkdir()
        more = extra + "\n" if extra else ""
        design = trial_design(first_start=1, more=more)
        code, out = run(tmp_path / str(len(extra)), design=design, data=data)
        assert code == 0, capsys.readouterr().err
        runs.append(json.loads((out / "trial.json").read_text()))
    alone, beside = (r["analyses"][0] for r in runs)
    assert alone["n_units"] == beside["n_units"] == 8
    assert alone["estimates"][0]["estimate"] == beside["estimates"][0]["estimate"]
    assert runs[1]["exclusions"] == []


def test_every_cluster_starting_together_says_so_not_lower_min_units(tmp_path, capsys):
    """A design whose clusters all start in period 2 was told to 'lower
    comparison.min_units', which was already 1."""
    design = trial_design(waves=((2, "C0, C1, C2, C3, C4, C5, C6, C7"),))
    data = trial_records().drop(columns="start").to_csv(index=False)
    code, _ = run(tmp_path, design=design, data=data)
    assert code == 2
    err = capsys.readouterr().err
    assert "rollout: outcome 'y' has no comparison: every unit with data starts in the same " in err
    assert "stagger the starts" in err and "min_units" not in err


def test_one_covariate_named_as_text_is_one_column():
    """covariates="age" was read letter by letter ('a', 'g', 'e'): an error about column 'a',
    or, where columns a, g and e existed, a silent adjustment for them (found in review)."""
    data = trial_records()
    one = pe.stepped_wedge(data, **ARGS, covariates="age")
    listed = pe.stepped_wedge(data, **ARGS, covariates=("age",))
    assert one.table["estimate"].iloc[0] == listed.table["estimate"].iloc[0]
    letters = data.assign(a=1.0, g=data["age"] % 7, e=data["age"] % 3)
    assert (
        pe.stepped_wedge(letters, **ARGS, covariates="age").table["estimate"].iloc[0]
        == (listed.table["estimate"].iloc[0])
    )


def test_a_covariate_missing_from_records_names_the_argument():
    """It said "column nope: required column 'nope' is missing. Fix: ... map it in
    data.columns", a design file's words to an API caller (found in review)."""
    with pytest.raises(DataError) as err:
        pe.stepped_wedge(trial_records(), **ARGS, covariates=["age", "nope"])
    assert err.value.where == "argument covariates[1]"
    assert "column 'nope' is not in the data" in err.value.what


@pytest.mark.parametrize(
    ("name", "options", "option"),
    [
        ("stepped_wedge", {"effect": "immediate", "tate_window": 2}, "tate_window"),
        ("stepped_wedge", {"exposure_knots": 5}, "exposure_knots"),
        ("stepped_wedge", {"period_knots": 5}, "period_knots"),
        ("stepped_wedge", {"randomisation_statistic": "npwp"}, "randomisation_statistic"),
        ("stepped_wedge_gee", {"tate_window": 2}, "tate_window"),
        (
            "stepped_wedge_gee",
            {"correlation": "independence", "correlation_method": "moment"},
            "correlation_method",
        ),
        ("stepped_wedge_glmm", {"tate_window": 2}, "tate_window"),
    ],
)
def test_an_option_the_other_settings_leave_unused_is_refused(name, options, option):
    """Each gave byte-identical results to the call without it, without a word (found in
    review); the same options with the settings that use them run."""
    data = trial_records()
    if name == "stepped_wedge_glmm":
        data = data.assign(y=(data["y"] > data["y"].median()).astype(int))
    with pytest.raises(DesignError) as err:
        getattr(pe, name)(data, **ARGS, **options)
    assert err.value.what.startswith(f"{option} applies only ")
    assert err.value.what.endswith("so it would be ignored here: drop it, or set that")


def test_a_default_given_explicitly_is_not_an_unused_option_and_dates_name_period():
    """tate_window=None (YAML null) with the immediate effect was refused as given; dates in a
    records call's period column were blamed on 'argument time' (found in review)."""
    plain = pe.stepped_wedge(trial_records(), **ARGS, effect="immediate")
    same = pe.stepped_wedge(trial_records(), **ARGS, effect="immediate", tate_window=None)
    assert same.table["estimate"].iloc[0] == plain.table["estimate"].iloc[0]
    dated = trial_records()
    dated["per"] = pd.to_datetime(dated["per"].astype(str) + "-01-2020", format="%m-%d-%Y")
    with pytest.raises(DataError) as err:
        pe.stepped_wedge(dated, **ARGS)
    assert err.value.one_line().startswith("argument period: column 'per' holds dates")


@pytest.mark.parametrize("name", ["stepped_wedge", "stepped_wedge_gee"])
@pytest.mark.parametrize("argument", ["cluster", "period"])
def test_a_misspelt_column_names_the_argument_as_called(name, argument):
    """A misspelt cluster or period column was blamed on 'argument unit' / 'argument time',
    arguments these functions do not have (found in review)."""
    with pytest.raises(DataError) as err:
        getattr(pe, name)(trial_records(), **{**ARGS, argument: "nope"})
    assert err.value.one_line().startswith(f"argument {argument}: column 'nope' is not in")
