"""pe.triple_difference: Ortiz-Villavicencio & Sant'Anna's (2025) DDD on unit-level records
(children, households) with covariates and an unbalanced panel. Reference: moderndid's `ddd`
(tests/reference/moderndid_ddd, script beside the values); on one unit per LA and group it
is the within-LA contrast (tests/reference/diff_diff_triple). Cai (2016)'s published numbers
are the replication `cai_triple_difference` (test_replications.py)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pathfinder_eval as pe
from pathfinder_eval import errors as pe_errors
from pathfinder_eval.errors import DataError, DesignError, EstimationError, ExcludedRowsWarning
from pathfinder_eval.estimators.did.group_time import aggregate
from pathfinder_eval.estimators.did.triple_difference import cr2_blocks, triple_difference_att
from pathfinder_eval.estimators.did.unit_records import unit_panel

REF = Path(__file__).parent / "reference"
# The same closed forms; the logits converge by different algorithms (statsmodels' IRLS, our
# Newton steps) to within 1e-12 of each other.
TOL = 1e-8
CHILDREN = dict(outcome="y", unit="child", time="year", first_treated="start", eligible="eligible")


@pytest.fixture(scope="module")
def children() -> pd.DataFrame:
    return pd.read_csv(REF / "moderndid_ddd" / "panel.csv")


@pytest.mark.parametrize("method", ["dr", "ipw", "reg"])
@pytest.mark.parametrize("base", ["varying", "universal"])
def test_matches_moderndid_ddd(children, method, base):
    """Every ATT(g,t) and its analytic SE, the event-time estimates and their average, on 24
    LAs' children (two start dates, 3% of child-years missing, covariates age and need)."""
    ref = pd.read_csv(REF / "moderndid_ddd" / "values.csv")
    ref = ref[ref["fit"] == f"{method}_{base}"]
    res = pe.triple_difference(
        children, **CHILDREN, covariates=["age", "need"], method=method, base_period=base
    )
    cells = {(c["cohort"], c["period"]): c for c in res.facts.att_gt}
    theirs = ref[ref["kind"] == "cell"]
    assert len(theirs) == len(cells) == 14
    for r in theirs.itertuples():
        ours = cells[(r.cohort, float(r.year))]
        assert ours["estimate"] == pytest.approx(r.estimate, rel=TOL, abs=1e-10)
        assert ours["std_error"] == pytest.approx(float(r.std_error), rel=TOL)
    events = ref[ref["kind"] == "event"]
    table = res.table.set_index("event_time")
    for r in events.itertuples():
        assert table.loc[float(r.year), "estimate"] == pytest.approx(r.estimate, rel=TOL)
    overall = ref.loc[ref["kind"] == "overall", "estimate"].iloc[0]
    post = table.loc[table.index >= 0, "estimate"]
    assert post.mean() == pytest.approx(overall, rel=TOL)


def test_one_unit_per_la_and_group_is_the_within_la_contrast():
    """Each LA's targeted and untargeted group as two units, regression DiDs, no covariates:
    the group-time effects are diff-diff's TripleDifference's (as the contrast's are), and
    the simple ATT is Callaway & Sant'Anna's on the contrast."""
    long = pd.read_csv(REF / "diff_diff_triple" / "panel.csv")
    long["unit"] = long["la"] + "_" + long["targeted"].astype(str)
    ref = pd.read_csv(REF / "diff_diff_triple" / "values.csv")
    for base in ("varying", "universal"):
        res = pe.triple_difference(
            long,
            outcome="y",
            unit="unit",
            time="year",
            first_treated="cohort",
            eligible="targeted",
            method="reg",
            base_period=base,
        )
        rows = ref[ref["fit"] == f"staggered_{base}"].iloc[1:]
        ours = {(c["cohort"], c["period"]): c["estimate"] for c in res.facts.att_gt}
        for r in rows.itertuples():
            assert ours[(r.cohort, float(r.year))] == pytest.approx(r.estimate, rel=1e-10)
        wide = long.pivot_table(index=["la", "year", "cohort"], columns="targeted", values="y")
        wide = wide.reset_index().rename(columns={0: "y0", 1: "y1"})
        cs = pe.callaway_santanna(
            wide,
            outcome="y1",
            minus="y0",
            unit="la",
            time="year",
            first_treated="cohort",
            control_group="never_treated",
            method="reg",
            aggregation="simple",
            base_period=base,
        )
        assert res.table["estimate"].iloc[0] == pytest.approx(cs.table["estimate"].iloc[0])


def test_clustering_by_the_county_that_was_treated_says_it_is_one_cluster():
    """Cai's insurance reached one county of 12: clustered by county the influence functions'
    sums have a t(11) reference and the result warns; CR2 (the default with a cluster) has no
    variance for a lone treated county and says so."""
    d = pd.read_csv(files("pathfinder_eval.replications") / "data" / "cai2016.csv.gz")
    d["start"] = d["treatment"] * 2003
    args = dict(
        outcome="checksaving_ratio",
        unit="hhno",
        time="year",
        first_treated="start",
        eligible="sector",
        covariates=["hhsize", "age"],
    )
    alone = pe.triple_difference(d, **args)
    res = pe.triple_difference(d, **args, cluster="county", inference="influence_function")
    assert np.allclose(res.table["estimate"], alone.table["estimate"], rtol=0, atol=0)
    assert (res.table["df"] == 11).all() and alone.table["df"].isna().all()
    assert res.facts.treated_clusters == 1 and res.facts.n_clusters == 12
    assert any("Only 1 of 12 clusters hold treated eligible units" in w for w in res.warnings)
    cr2 = pe.triple_difference(d, **args, cluster="county")
    assert cr2.table["std_error"].isna().all() and cr2.table["estimate"].notna().all()
    lone = [w for w in cr2.warnings if w.startswith("One cluster holds all the units")]
    assert len(lone) == 1 and "ATT(2003, 2000): the eligible" in lone[0]
    assert any("cluster=" in w for w in alone.warnings)
    assert res.facts.units_by_subgroup == {
        "treated eligible": 837,
        "treated ineligible": 161,
        "never-treated eligible": 1271,
        "never-treated ineligible": 1390,
    }
    assert "units_by_subgroup: treated eligible 837, treated ineligible 161," in res.summary()


def test_rows_left_out_are_counted(children):
    """Units whose LA starts in the first period and rows without an outcome are counted by
    reason in `dropped`, with the units named, and said in the warnings and an
    ExcludedRowsWarning as every API function says them (they were in `dropped` alone)."""
    d = children.copy()
    d.loc[d["la"] == "la00", "start"] = 2018
    la05 = d.index[d["la"] == "la05"]
    d.loc[la05[:5], "y"] = np.nan
    with pytest.warns(ExcludedRowsWarning, match="rows of the data were left out") as seen:
        res = pe.triple_difference(d, **CHILDREN, covariates="need")
    assert len([w for w in seen if w.category is ExcludedRowsWarning]) == 1
    said = next(w for w in res.warnings if "rows of the data were left out" in w)
    assert said.startswith(f"{int((d['la'] == 'la00').sum()) + 5} rows")
    assert "before it" in said and "5 rows with no outcome value" in said
    reasons = {x.reason.split(":")[0]: x for x in res.dropped}
    early = reasons["units whose group starts in or before the data's first period"]
    assert early.rows == int((d["la"] == "la00").sum())
    assert set(early.units) == set(d.loc[d["la"] == "la00", "child"])
    assert reasons["rows with no outcome value"].rows == 5
    assert res.n_obs == len(d) - early.rows - 5  # observed outcomes the panel holds


def test_bad_input_names_the_argument_and_row(children):
    d = children.copy()
    d.loc[3, "eligible"] = 2
    with pytest.raises(DataError, match="not 0 or 1") as err:
        pe.triple_difference(d, **CHILDREN)
    assert err.value.row == 4 and "eligible" in err.value.where
    d = children.copy()
    d.loc[d.index[1], "eligible"] = 1 - d.loc[d.index[1], "eligible"]
    with pytest.raises(DataError, match="changes its eligible over time"):
        pe.triple_difference(d, **CHILDREN)
    with pytest.raises(DataError, match="two rows for one period"):
        pe.triple_difference(pd.concat([children, children.iloc[[0]]]), **CHILDREN)
    for column, value, match in (
        ("y", np.inf, "the outcome is infinite"),
        ("need", np.nan, "a covariate is missing"),
        ("la", np.nan, "the cluster is missing"),
    ):
        d = children.copy()
        d.loc[d.index[6], column] = value
        with pytest.raises(DataError, match=match) as err:
            pe.triple_difference(d, **CHILDREN, covariates="need", cluster="la")
        assert err.value.row == 7
    d = children.astype({"start": object})
    d.loc[d.index[2], "start"] = "never"
    with pytest.raises(DataError, match="value 'never' is not a number") as err:
        pe.triple_difference(d, **CHILDREN)
    assert "0 (or leave it empty) for a group never treated" in err.value.fix  # not "0/1"
    with pytest.raises(DataError, match="no rows"):
        pe.triple_difference(children.iloc[:0], **CHILDREN)
    with pytest.raises(DesignError, match="method='x'"):
        pe.triple_difference(children, **CHILDREN, method="x")
    never_eligible = children[~((children["start"] == 0) & (children["eligible"] == 1))]
    with pytest.raises(EstimationError, match="no never-treated eligible units"):
        pe.triple_difference(never_eligible, **CHILDREN)


def test_starts_outside_the_periods(children):
    """inf is never treated (R's did); a start after the last period is compared as never
    treated, with a DataWarning and a note; a start between periods is an error on its row."""
    base = pe.triple_difference(children, **CHILDREN)
    d = children.assign(start=children["start"].replace(0, np.inf))
    assert pe.triple_difference(d, **CHILDREN).table.equals(base.table)
    d = children.assign(start=children["start"].replace(0, 2031))
    with pytest.warns(pe_errors.DataWarning, match="start after the data's last period"):
        res = pe.triple_difference(d, **CHILDREN)
    assert res.table.equals(base.table) and "compared as never treated" in res.warnings[0]
    d = children.assign(start=children["start"].replace(2023, 2022.5))
    with pytest.raises(DataError, match=r"2022\.5 is not one of the data's periods") as err:
        pe.triple_difference(d, **CHILDREN)
    assert err.value.row == int(np.flatnonzero(children["start"] == 2023)[0]) + 1


def test_a_cohort_without_estimates_is_named_and_not_counted(children):
    """Without the 2021 LAs' ineligible children no ATT(2021, t) exists: the result says so
    and counts only the 2023 cohort's treated children."""
    d = children[~((children["start"] == 2021) & (children["eligible"] == 0))]
    res = pe.triple_difference(d, **CHILDREN)
    assert {c["cohort"] for c in res.facts.att_gt} == {2023.0}
    assert any("(cohorts 2021;" in w for w in res.warnings)
    treated_2023 = d.loc[(d["start"] == 2023) & (d["eligible"] == 1), "child"].nunique()
    assert res.n_treated == treated_2023


def _dense_cr2(dy, group, cluster, contrast):
    """CR2 and its Bell-McCaffrey df from dense matrices: OLS of dy on dummies of `group`
    (codes 1..len(contrast)), A_g = (I − H_gg)^(−1/2), V = Σ_g (cᵀ(XᵀX)⁻¹X_gᵀA_g e_g)²,
    ν = (tr Ω)²/‖Ω‖²_F with Ω_gh = p_gᵀ M_gh p_h (Pustejovsky & Tipton 2018, working model I)."""
    x = (group[:, None] == np.arange(1, len(contrast) + 1)[None, :]).astype(float)
    bread = np.linalg.inv(x.T @ x)
    hat = x @ bread @ x.T
    resid = dy - hat @ dy
    m = np.eye(len(dy)) - hat
    ps, v = [], 0.0
    for g in np.unique(cluster):
        rows = cluster == g
        vals, vecs = np.linalg.eigh(m[np.ix_(rows, rows)])
        adj = vecs @ np.diag(1 / np.sqrt(vals)) @ vecs.T
        p = np.zeros(len(dy))
        p[rows] = adj @ x[rows] @ bread @ contrast
        v += (p[rows] @ resid[rows]) ** 2
        ps.append(p)
    p = np.array(ps)
    omega = p @ m @ p.T
    return np.sqrt(v), np.trace(omega) ** 2 / np.sum(omega**2), p @ resid


def test_cr2_is_bell_mccaffrey_on_the_subgroup_regression(children):
    """Two periods, one start: the ATT is m4 − m3 − m2 + m1 of the subgroups' changes, and the
    default clustered inference equals CR2 and its Bell-McCaffrey df computed from dense
    matrices of that regression, to 1e-10."""
    two = children[children["year"].isin([2022, 2023]) & children["start"].isin([0, 2023])]
    res = pe.triple_difference(two, **CHILDREN, cluster="la")
    assert res.inference.key == "ddd_cr2" and "Bell-McCaffrey" in res.inference.label
    wide = two.pivot_table(index=["child", "la", "start", "eligible"], columns="year", values="y")
    wide = wide.dropna().reset_index()
    group = np.where(wide["start"] > 0, 3, 1) + wide["eligible"].to_numpy()
    dy = (wide[2023] - wide[2022]).to_numpy()
    se, df, _ = _dense_cr2(dy, group, wide["la"].to_numpy(), np.array([1.0, -1.0, -1.0, 1.0]))
    row = res.table.iloc[0]
    assert row["std_error"] == pytest.approx(se, rel=1e-10)
    assert row["df"] == pytest.approx(df, rel=1e-10)
    assert res.facts.att_gt[0]["std_error"] == pytest.approx(se, rel=1e-10)
    assert np.sqrt(np.diag(res.vcov)) == pytest.approx(res.table["std_error"], rel=1e-12)
    alone = pe.triple_difference(two, **CHILDREN, cluster="la", inference="influence_function")
    assert alone.table["std_error"].iloc[0] < se  # CR2 scales each treated LA's sum up


def test_cr2_of_aggregated_rows_is_cr2_of_the_stacked_cell_regressions(children):
    """Two start dates, a universal base: each ATT(g,t) is a regression of the changes from
    g − 1 on subgroup dummies, so the simple ATT and the event-time rows are contrasts of one
    stacked regression on cell × subgroup dummies (the same child in several cells, one
    cluster per LA); their Bell-McCaffrey df equal the dense computation's, and their SEs its
    CR2 with each LA's sum of the estimated cohort shares' influence added (as R's did adds
    it), which the engine's aggregation gives."""
    las = ["la00", "la08", "la10", "la13", "la03", "la09", "la17", "la01", "la02", "la04"]
    d = children[children["la"].isin(las) & children["year"].between(2019, 2024)]
    assert d.groupby("start")["la"].nunique().to_dict() == {0: 4, 2021: 3, 2023: 3}
    res = pe.triple_difference(d, **CHILDREN, cluster="la")
    wide = d.pivot_table(index=["child", "la", "start", "eligible"], columns="year", values="y")
    wide = wide.reset_index()
    cells = [(c["cohort"], c["period"]) for c in res.facts.att_gt]
    rows, codes, clusters = [], [], []
    for j, (g, t) in enumerate(cells):
        keep = wide["start"].isin([0, g]) & wide[t].notna() & wide[g - 1].notna()
        w = wide[keep]
        rows.append((w[t] - w[g - 1]).to_numpy())
        codes.append(4 * j + np.where(w["start"] > 0, 3, 1) + w["eligible"].to_numpy())
        clusters.append(w["la"].to_numpy())
    dy, code, cl = np.concatenate(rows), np.concatenate(codes), np.concatenate(clusters)
    share = {g: (wide["start"] == g).mean() for g, _ in cells}
    sign = np.array([1.0, -1.0, -1.0, 1.0])
    post = [(g, t) for g, t in cells if t >= g]

    def contrast(use):
        w = np.array([share[g] if (g, t) in use else 0.0 for g, t in cells])
        return np.kron(w / w.sum(), sign)

    table = res.table.set_index("event_time", drop=False)
    checks = [(res.table.iloc[0], contrast(post))]
    for e in (-3.0, 0.0, 1.0):
        checks.append((table.loc[e], contrast([(g, t) for g, t in cells if t - g == e])))
    panel, codes, *_ = unit_panel(d, "y", "child", "year", "start", "eligible", (), "la")
    gt = triple_difference_att(panel).gt
    simple, dynamic = aggregate(gt, "simple"), aggregate(gt, "dynamic")
    events = list(dynamic.labels)
    shares = [simple.overall_influence - gt.influence @ simple.weights[0]]
    shares += [
        dynamic.influence[:, events.index(e)] - gt.influence @ dynamic.weights[events.index(e)]
        for e in (-3.0, 0.0, 1.0)
    ]
    la_names = np.unique(d["la"])  # the engine's cluster codes, in sorted order
    for (row, c), share in zip(checks, shares, strict=True):
        _, df, by_la = _dense_cr2(dy, code, cl, c)
        share_by_la = np.bincount(codes, weights=share) / len(panel.cohort)
        assert row["std_error"] == pytest.approx(np.sqrt(np.sum((by_la + share_by_la) ** 2)))
        assert row["df"] == pytest.approx(df, rel=1e-9)
        assert len(by_la) == len(la_names)


@pytest.mark.parametrize("method", ["dr", "ipw", "reg"])
@pytest.mark.parametrize("base", ["varying", "universal"])
def test_not_yet_treated_matches_moderndid_ddd(children, method, base):
    """control_group="not_yet_treated": cells of the 2021 cohort before 2023 compare with the
    never-treated LAs and the 2023 cohort, their DDDs combined by GMM weights. Every ATT(g,t),
    the event-time estimates and their average equal moderndid's `ddd(...,
    control_group="notyettreated")` to 1e-8 (absolute 1e-9 near zero; measured 5.6e-10, IPW);
    SEs of cells with one comparison cohort too. For GMM cells moderndid divides the combined
    influence's variance by all n units though it is scaled to the cell's n_c (its aggregation
    reads the influence, as ours): ours is its SE × √(n(n_c − 1))/n_c, to 1e-8."""
    ref = pd.read_csv(REF / "moderndid_ddd" / "values_not_yet.csv")
    ref = ref[ref["fit"] == f"{method}_{base}"]
    res = pe.triple_difference(
        children,
        **CHILDREN,
        covariates=["age", "need"],
        method=method,
        base_period=base,
        control_group="not_yet_treated",
    )
    n = children["child"].nunique()
    cells = {(c["cohort"], c["period"]): c for c in res.facts.att_gt}
    theirs = ref[ref["kind"] == "cell"]
    assert len(theirs) == len(cells) == 14
    mixed = 0
    for r in theirs.itertuples():
        ours = cells[(r.cohort, float(r.year))]
        assert ours["estimate"] == pytest.approx(r.estimate, rel=TOL, abs=1e-9)
        weights = ours["comparison_weights"]
        assert sum(weights.values()) == pytest.approx(1.0, abs=1e-12)
        n_c = ours["treated_eligible_units"] + ours["other_units"]
        factor = np.sqrt(n * (n_c - 1)) / n_c if len(weights) > 1 else 1.0
        mixed += len(weights) > 1
        assert ours["std_error"] == pytest.approx(float(r.std_error) * factor, rel=TOL)
    assert mixed == (6 if base == "varying" else 4)
    table = res.table.set_index("event_time")
    for r in ref[ref["kind"] == "event"].itertuples():
        assert table.loc[float(r.year), "estimate"] == pytest.approx(r.estimate, rel=TOL, abs=1e-9)
    overall = ref.loc[ref["kind"] == "overall", "estimate"].iloc[0]
    assert table.loc[table.index >= 0, "estimate"].mean() == pytest.approx(overall, rel=TOL)
    assert res.facts.control_group == "not_yet_treated"


def test_cr2_of_a_gmm_cell_is_dense_cr2(children):
    """The 2021 cohort in 2021 against 2020, compared with the never-treated LAs and the 2023
    cohort (not yet treated): the cell is m₀ − m₁ − Σ_k w_k (m₂ₖ − m₃ₖ) with the GMM weights w,
    and its default clustered SE and df equal CR2 and Bell-McCaffrey computed from dense
    matrices of the six-block regression (the weights held fixed), to 1e-10."""
    three = children[children["year"].isin([2020, 2021, 2023])]
    res = pe.triple_difference(three, **CHILDREN, cluster="la", control_group="not_yet_treated")
    (cell,) = [c for c in res.facts.att_gt if (c["cohort"], c["period"]) == (2021.0, 2021.0)]
    w = cell["comparison_weights"]
    assert set(w) == {"never", "2023"} and 0 < w["never"] < 1
    wide = three.pivot_table(index=["child", "la", "start", "eligible"], columns="year", values="y")
    wide = wide.dropna(subset=[2020, 2021]).reset_index()
    group = wide["start"].map({2021: 1, 0: 3, 2023: 5}).to_numpy() + 1 - wide["eligible"]
    contrast = np.array([1, -1, -w["never"], w["never"], -w["2023"], w["2023"]])
    dy = (wide[2021] - wide[2020]).to_numpy()
    se, df, _ = _dense_cr2(dy, group.to_numpy(), wide["la"].to_numpy(), contrast)
    assert cell["std_error"] == pytest.approx(se, rel=1e-10)
    panel, codes, *_ = unit_panel(three, "y", "child", "year", "start", "eligible", (), "la")
    cells = triple_difference_att(panel, control_group="not_yet_treated")
    j = [c["period"] for c in res.facts.att_gt].index(2021.0)
    rows = cr2_blocks(panel, cells, codes, "period").rows(np.eye(len(cells.gt.att)))
    assert rows.df[j] == pytest.approx(df, rel=1e-10)
    assert rows.se[j] == pytest.approx(se, rel=1e-10)


def test_not_yet_treated_needs_no_never_treated_units(children):
    """Without never-treated LAs the never-treated comparison is refused and says to use the
    not-yet-treated; with it the 2021 cohort is compared with the 2023 cohort before 2023."""
    late = children[children["start"] > 0]
    with pytest.raises(EstimationError, match="control_group='not_yet_treated'"):
        pe.triple_difference(late, **CHILDREN)
    res = pe.triple_difference(late, **CHILDREN, control_group="not_yet_treated")
    weights = [c["comparison_weights"] for c in res.facts.att_gt]
    assert all(w == {"2023": 1.0} for w in weights)
    assert {c["cohort"] for c in res.facts.att_gt} == {2021.0}
    reasons = {d["reason"] for d in res.facts.dropped_cells}
    assert reasons == {"no group never treated or not yet treated in both periods to compare with"}
    assert {d["cohort"] for d in res.facts.dropped_cells} == {2021.0, 2023.0}


def test_a_comparison_cohort_left_out_is_said(children):
    """Without the 2023 cohort's ineligible children, the 2021 cohort's cells before 2023 can
    compare only with the never-treated LAs: each names the cohort it left out and why, and a
    warning counts those cells."""
    d = children[~((children["start"] == 2023) & (children["eligible"] == 0))]
    res = pe.triple_difference(d, **CHILDREN, control_group="not_yet_treated")
    early = [c for c in res.facts.att_gt if c["cohort"] == 2021.0 and c["period"] < 2023]
    assert len(early) == 4
    for c in early:
        assert c["comparison_weights"] == {"never": 1.0}
        assert "ineligible" in c["comparisons_left_out"]["2023"]
    (note,) = [w for w in res.warnings if "left out a not-yet-treated comparison cohort" in w]
    assert note.startswith("4 ATT(g,t)") and "(2023:" in note


def test_a_comparison_cohort_in_one_cluster_is_left_out_under_cr2(children):
    """The 2023 cohort kept in one LA: under CR2 by LA it cannot carry a variance, so the 2021
    cohort's cells compare with the never-treated LAs alone (their estimates then equal the
    never-treated fit's) and keep their standard errors; the influence-function variance keeps
    the GMM combination."""
    one_la = children["la"][children["start"] == 2023].iloc[0]
    d = children[(children["start"] != 2023) | (children["la"] == one_la)]
    args = dict(**CHILDREN, cluster="la")
    nyt = pe.triple_difference(d, **args, control_group="not_yet_treated")
    never = pe.triple_difference(d, **args)
    ours = {(c["cohort"], c["period"]): c for c in nyt.facts.att_gt}
    theirs = {(c["cohort"], c["period"]): c for c in never.facts.att_gt}
    early = [k for k in ours if k[0] == 2021.0 and k[1] < 2023]
    assert early
    for k in early:
        assert "one cluster holds" in ours[k]["comparisons_left_out"]["2023"]
        assert ours[k]["estimate"] == pytest.approx(theirs[k]["estimate"], rel=1e-12)
        assert np.isfinite(ours[k]["std_error"])
    summed = pe.triple_difference(
        d, **args, control_group="not_yet_treated", inference="influence_function"
    )
    mixed = [c for c in summed.facts.att_gt if (c["cohort"], c["period"]) in early]
    assert all(set(c["comparison_weights"]) == {"never", "2023"} for c in mixed)


def test_no_comparison_is_left_out_when_the_treated_cohort_is_in_one_cluster(children):
    """If the 2021 cohort's eligible children are all in one LA the cell has no CR2 variance
    whatever it compares with, so the lone 2023 cohort is kept: the estimates are the GMM
    combination's, as with the influence-function variance."""
    la23 = children["la"][children["start"] == 2023].iloc[0]
    la21 = children["la"][children["start"] == 2021].iloc[0]
    keep = (children["start"] == 0) | (children["la"] == la23)
    keep |= (children["start"] == 2021) & ((children["eligible"] == 0) | (children["la"] == la21))
    d = children[keep]
    args = dict(**CHILDREN, cluster="la", control_group="not_yet_treated")
    cr2 = pe.triple_difference(d, **args)
    summed = pe.triple_difference(d, **args, inference="influence_function")
    early = [c for c in cr2.facts.att_gt if c["cohort"] == 2021.0 and c["period"] < 2023]
    same = {(c["cohort"], c["period"]): c for c in summed.facts.att_gt}
    for c in early:
        assert set(c["comparison_weights"]) == {"never", "2023"}
        assert c["estimate"] == same[(c["cohort"], c["period"])]["estimate"]
        assert np.isnan(c["std_error"])
