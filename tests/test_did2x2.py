"""2×2 DiD (estimators/did2x2.py) against R lm + sandwich (tests/reference/r_kielmc) and the
published Wooldridge Example 13.3 numbers (replications/kielmc.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.estimators.did.did2x2 import DID_TERM, did_2x2

ROOT = Path(__file__).resolve().parents[1]
REF = ROOT / "tests" / "reference" / "r_kielmc"
DATA = ROOT / "src" / "pathfinder_eval" / "replications" / "data" / "kielmc.csv"
REL_TOL = 1e-8  # same least-squares algebra in two implementations
SPECS = {
    "rprice": ("rprice", ()),
    "rprice_age": ("rprice", ("age", "agesq")),
    "rprice_full": ("rprice", ("age", "agesq", "intst", "land", "area", "rooms", "baths")),
    "lprice": ("lprice", ()),
    "lrprice": ("lrprice", ()),
}
R_TERM = {"(Intercept)": "const", "y81": "post", "nearinc": "group", "y81nrinc": DID_TERM}
SE_COLUMN = {"nonrobust": "se_nonrobust", "HC1": "se_hc1", "cluster": "se_cluster"}


@pytest.fixture(scope="module")
def kielmc():
    return pd.read_csv(DATA)


@pytest.fixture(scope="module")
def reference():
    return pd.read_csv(REF / "values.csv")


def fit(d, model, cov_type, weighted=False):
    outcome, controls = SPECS[model]
    return did_2x2(
        d[outcome],
        d["nearinc"],
        d["y81"],
        covariates=d[list(controls)] if controls else None,
        weights=d["land"] if weighted else None,
        cluster=d["cbd"],
        cov_type=cov_type,
    )


@pytest.mark.parametrize("cov_type", ["nonrobust", "HC1", "cluster"])
@pytest.mark.parametrize(
    ("model", "weighted"), [(m, False) for m in SPECS] + [("rprice", True), ("rprice_age", True)]
)
def test_equals_r(kielmc, reference, model, weighted, cov_type):
    res = fit(kielmc, model, cov_type, weighted)
    ref = reference[(reference["model"] == model) & (reference["weighted"] == int(weighted))]
    assert len(ref) == len(res.names)
    for _, row in ref.iterrows():
        est, se = res.coefficient(R_TERM.get(row["term"], row["term"]))
        assert est == pytest.approx(row["estimate"], rel=REL_TOL, abs=1e-12)
        assert se == pytest.approx(row[SE_COLUMN[cov_type]], rel=REL_TOL)
    if cov_type != "cluster":
        assert res.df == ref["df_resid"].iloc[0]
    else:
        assert res.df == kielmc["cbd"].nunique() - 1


@pytest.mark.parametrize("weighted", [False, True])
def test_coefficient_is_difference_of_cell_means(kielmc, weighted):
    res = fit(kielmc, "rprice", "HC1", weighted)
    w = kielmc["land"] if weighted else pd.Series(1.0, index=kielmc.index)
    cell = kielmc.assign(w=w, wy=w * kielmc["rprice"]).groupby(["nearinc", "y81"])[["wy", "w"]]
    m = (cell.sum()["wy"] / cell.sum()["w"]).unstack()
    closed = (m.loc[1, 1] - m.loc[1, 0]) - (m.loc[0, 1] - m.loc[0, 0])
    assert res.estimate == pytest.approx(closed, rel=1e-12)
    assert res.cells.difference_in_differences == pytest.approx(closed, rel=1e-12)
    assert res.cells.counts.tolist() == [[123, 102], [56, 40]]
    assert res.cells.means[0, 0] == pytest.approx(m.loc[0, 0], rel=1e-12)


@pytest.mark.parametrize("cov_type", ["nonrobust", "HC1"])
def test_matches_statsmodels_formula(kielmc, cov_type):
    ref = smf.ols("rprice ~ y81 + nearinc + y81nrinc + age + agesq", kielmc).fit(
        cov_type=cov_type, use_t=True
    )
    res = fit(kielmc, "rprice_age", cov_type)
    assert res.estimate == pytest.approx(ref.params["y81nrinc"], rel=1e-10)
    assert res.std_error == pytest.approx(ref.bse["y81nrinc"], rel=1e-10)
    lo, hi = ref.conf_int().loc["y81nrinc"]
    assert (res.ci_lower, res.ci_upper) == pytest.approx((lo, hi), rel=1e-10)
    assert res.p_value == pytest.approx(ref.pvalues["y81nrinc"], rel=1e-8)


def test_to_estimates_row(kielmc):
    res = fit(kielmc, "rprice", "nonrobust")
    est = res.to_estimates("a", "rprice")
    row = est.table.iloc[0]
    assert row["estimate"] == res.estimate and row["std_error"] == res.std_error
    assert est.n_obs == 321 and est.n_treated == 96
    assert est.to_dict()["diagnostics"]["cell_counts"] == [[123, 102], [56, 40]]


def test_bad_inputs_are_estimation_errors(kielmc):
    y, g, p = kielmc["rprice"], kielmc["nearinc"], kielmc["y81"]
    with pytest.raises(EstimationError, match="0/1"):
        did_2x2(y, g * 2, p)
    with pytest.raises(EstimationError, match="empty"):
        did_2x2(y[g == 0], g[g == 0], p[g == 0])
    with pytest.raises(EstimationError, match="cluster labels"):
        did_2x2(y, g, p, cov_type="cluster")
    with pytest.raises(EstimationError, match="rank deficient"):
        did_2x2(y, g, p, covariates=pd.DataFrame({"z": 2.0 * p}))
    with pytest.raises(EstimationError, match="missing"):
        did_2x2(y.where(y > 30000), g, p)
    with pytest.raises(EstimationError, match="cov_type"):
        did_2x2(y, g, p, cov_type="HC3")  # type: ignore[arg-type]


def test_panel_with_unit_clusters():
    """A two-period panel is the same regression; clustering by unit gives CR1."""
    rng = np.random.default_rng(7)
    units = np.repeat(np.arange(40), 2)
    post = np.tile([0, 1], 40)
    group = (units < 15).astype(float)
    y = rng.normal(size=40)[units] + 0.3 * post + 0.8 * group * post + rng.normal(size=80)
    res = did_2x2(y, group, post, cluster=units, cov_type="cluster")
    frame = pd.DataFrame({"y": y, "g": group, "p": post, "u": units})
    ref = smf.ols("y ~ p + g + g:p", frame).fit(
        cov_type="cluster", cov_kwds={"groups": units}, use_t=True
    )
    assert res.estimate == pytest.approx(ref.params["g:p"], rel=1e-10)
    assert res.std_error == pytest.approx(ref.bse["g:p"], rel=1e-10)
    assert res.n_clusters == 40 and res.df == 39
    est = res.to_estimates("a", "y")
    assert est.n_treated == 15  # 15 units, not their 30 observations
    few = did_2x2(y, (units < 2).astype(float), post, cluster=units, cov_type="cluster")
    warned = few.to_estimates("a", "y")
    assert warned.n_treated == 2  # it said 4: two LAs in two periods (found in review)
    assert warned.warnings[0].startswith(
        "Only 2 treated units: cluster-robust standard errors can over-reject badly"
    )


def test_replication_entry_reproduces_published_numbers():
    from pathfinder_eval.replications import kielmc  # noqa: F401
    from pathfinder_eval.replications.registry import ENTRIES

    entry = ENTRIES["kielmc_did"]
    assert entry.compute is not None and entry.lesson
    got = entry.compute(DATA)
    assert {p.label for p in entry.published} <= set(got)
    for pub in entry.published:
        assert abs(got[pub.label].value - pub.value) <= pub.tolerance, pub.label
        assert pub.source and pub.why


def test_cli_replicate_exit_zero(tmp_path, capsys):
    """`pathfinder-eval replicate kielmc_did` once the module is imported (run.py wiring)."""
    import json

    from pathfinder_eval.cli import main
    from pathfinder_eval.replications import (
        kielmc,
        run,  # noqa: F401  (registers the pending stub)
    )

    kielmc.register(kielmc.ENTRY)
    code = main(["replicate", "kielmc_did", "--out", str(tmp_path)])
    assert code == 0, capsys.readouterr().out
    doc = json.loads((tmp_path / "kielmc_did.json").read_text(encoding="utf-8"))
    assert doc["status"] == "pass" and len(doc["numbers"]) == len(kielmc.ENTRY.published)
