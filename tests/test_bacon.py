"""Goodman-Bacon decomposition: exact identities, castle-doctrine published tables, invariances."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from did_helpers import make_panel
from pathfinder_eval.errors import EstimationError
from pathfinder_eval.estimators.did.bacon import (
    EARLIER_VS_LATER,
    LATER_VS_EARLIER,
    TREATED_VS_NEVER,
    BaconDecomposition,
    bacon_decomposition,
)

ROOT = Path(__file__).resolve().parents[1]
REF = ROOT / "tests" / "reference" / "castle_bacon"
CASTLE = ROOT / "src" / "pathfinder_eval" / "replications" / "data" / "castle.csv"
# Σw = 1 and Σwβ = TWFE are algebraic identities: only rounding differs.
IDENTITY = 1e-10
# l_homicide is float32 in one of the two files behind the 16-digit TWFE print.
NOTEBOOK_TWFE = 2e-9


def printed(decimals: int) -> float:
    """Half a unit in the last printed decimal."""
    return 0.5 * 10.0**-decimals


def castle_frame(shift: int = 0) -> tuple[pd.DataFrame, dict[int, list[str]]]:
    """Castle cells (unit, period, y) and starts {first treated year: units}; `shift=-1`
    dates treatment from the law's effective year (bacondecomp's coding)."""
    d = pd.read_csv(CASTLE, usecols=["sid", "year", "l_homicide", "post"])
    d["unit"] = d["sid"].map(lambda s: f"s{s:02d}")
    first = d[d["post"] > 0].groupby("unit")["year"].min() + shift
    starts: dict[int, list[str]] = {}
    for unit, year in first.items():
        starts.setdefault(int(year), []).append(unit)
    frame = d.rename(columns={"year": "period", "l_homicide": "y"})[["unit", "period", "y"]]
    return frame, starts


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return pd.read_csv(REF / "values.csv")


def random_design(rng, n, t):
    first = rng.integers(-1, t + 1, n).astype(float)
    first[first == t] = np.nan  # never treated
    first[first == -1] = 0  # always treated
    return rng.normal(size=(n, t)) + rng.normal(size=(n, 1)), first


def dummy_twfe(y, first):
    n, t = y.shape
    on = np.nan_to_num(first, nan=np.inf)[:, None]
    d = (np.arange(t)[None, :] >= on).astype(float)
    x = np.column_stack(
        [d.ravel(), np.kron(np.eye(n), np.ones((t, 1))), np.kron(np.ones((n, 1)), np.eye(t))]
    )
    return np.linalg.lstsq(x, y.ravel(), rcond=None)[0][0]


@pytest.mark.parametrize("seed", range(8))
def test_weights_sum_to_one_and_reproduce_twfe(seed):
    rng = np.random.default_rng(seed)
    y, first = random_design(rng, int(rng.integers(6, 30)), int(rng.integers(3, 12)))
    if np.unique(np.nan_to_num(first, nan=-9)).size < 2:
        pytest.skip("no timing variation drawn")
    dec = bacon_decomposition(y, first)
    assert dec.twfe == pytest.approx(dummy_twfe(y, first), abs=IDENTITY)
    assert dec.weight.sum() == pytest.approx(1.0, abs=IDENTITY)
    assert dec.weight @ dec.estimate == pytest.approx(dec.twfe, abs=IDENTITY)
    assert (dec.weight >= 0).all()


def test_two_by_two_closed_forms_on_three_groups():
    """Earlier (starts at 2), later (starts at 4), never; 6 periods: hand-computed 2×2s."""
    rng = np.random.default_rng(7)
    y = rng.normal(size=(6, 6))
    first = np.array([2, 2, 4, 4, np.nan, np.nan])
    dec = bacon_decomposition(y, first)
    e, ell, u = y[:2].mean(0), y[2:4].mean(0), y[4:].mean(0)
    want = {
        (TREATED_VS_NEVER, 2.0): (e[2:].mean() - e[:2].mean()) - (u[2:].mean() - u[:2].mean()),
        (TREATED_VS_NEVER, 4.0): (ell[4:].mean() - ell[:4].mean()) - (u[4:].mean() - u[:4].mean()),
        (EARLIER_VS_LATER, 2.0): (e[2:4].mean() - e[:2].mean())
        - (ell[2:4].mean() - ell[:2].mean()),
        (LATER_VS_EARLIER, 4.0): (ell[4:].mean() - ell[2:4].mean())
        - (e[4:].mean() - e[2:4].mean()),
    }
    got = {(k, t): b for k, t, b in zip(dec.kind, dec.treated, dec.estimate, strict=True)}
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-12)


def test_castle_identities_on_this_files_timing(tmp_path):
    """This CSV's `post` (first full year under the law): no published table could be
    retrieved, so only the identities are asserted (and TWFE against linearmodels)."""
    frame, starts = castle_frame()
    res = BaconDecomposition().fit(make_panel(tmp_path, frame, starts), "y", "bacon")
    d = res.diagnostics
    assert d["weight_sum"] == pytest.approx(1.0, abs=IDENTITY)
    assert d["decomposition_total"] == pytest.approx(d["twfe_linearmodels"], abs=IDENTITY)
    assert len(d["comparisons"]) == 5 + 2 * 10  # 5 cohorts × never treated + 10 cohort pairs
    assert res.table.loc[0, "std_error"] > 0


def test_castle_bacondecomp_vignette(tmp_path, reference):
    frame, starts = castle_frame(shift=-1)
    res = BaconDecomposition().fit(make_panel(tmp_path, frame, starts), "y", "bacon")
    table = res.table.set_index("term")
    ref = reference[reference["source"] == "bacondecomp_vignette"].set_index("term")
    assert table.loc["ATT (TWFE)", "estimate"] == pytest.approx(
        ref.loc["ATT (TWFE)", "estimate"], abs=NOTEBOOK_TWFE
    )
    for term in (EARLIER_VS_LATER, LATER_VS_EARLIER, TREATED_VS_NEVER):
        tol = printed(5)
        assert table.loc[term, "estimate"] == pytest.approx(ref.loc[term, "estimate"], abs=tol)
        assert res.diagnostics["weights_by_type"][term] == pytest.approx(
            ref.loc[term, "weight"], abs=tol
        )
    top = max(res.diagnostics["comparisons"], key=lambda c: c["weight"])
    nb = reference[reference["source"] == "bacondecomp_notebook"].iloc[0]
    assert (top["treated_cohort"], top["control_cohort"]) == (2006, "never treated")
    assert top["estimate"] == pytest.approx(nb["estimate"], abs=printed(8))
    assert top["weight"] == pytest.approx(nb["weight"], abs=printed(7))


def test_invariant_to_row_order_and_unit_labels(tmp_path):
    frame, starts = castle_frame()
    base = BaconDecomposition().fit(make_panel(tmp_path, frame, starts), "y", "b").table
    rng = np.random.default_rng(0)
    names = {u: f"x{i:02d}" for i, u in enumerate(rng.permutation(frame["unit"].unique()))}
    shuffled = frame.sample(frac=1.0, random_state=1).assign(unit=lambda f: f["unit"].map(names))
    new_starts = {s: [names[u] for u in us] for s, us in starts.items()}
    (tmp_path / "b").mkdir()
    other = BaconDecomposition().fit(make_panel(tmp_path / "b", shuffled, new_starts), "y", "b")
    pd.testing.assert_frame_equal(base, other.table, check_exact=False, atol=1e-12, rtol=0)


def test_unbalanced_panel_is_balanced_and_counted_or_refused(tmp_path):
    frame, starts = castle_frame()
    gaps = frame.loc[[3, 40], "unit"].unique().tolist()
    frame = frame.drop(index=[3, 40])
    before = frame.copy()
    panel = make_panel(tmp_path, frame, starts)
    with pytest.raises(EstimationError, match="balanced panel") as err:
        BaconDecomposition(balance=False).fit(panel, "y", "b")
    assert "sun_abraham or imputation" in str(err.value)
    res = BaconDecomposition().fit(panel, "y", "b")
    d = res.diagnostics
    assert sorted(d["units_dropped_unbalanced"]) == sorted(gaps)
    assert res.n_units == frame["unit"].nunique() - len(gaps)
    assert d["decomposition_total"] == pytest.approx(d["twfe_linearmodels"], abs=IDENTITY)
    assert any("dropped to balance" in w for w in res.warnings)
    # the rows left out reach the exclusions table (they were only in a warning)
    (left,) = res.dropped
    kept_rows = frame["unit"].isin(gaps)
    assert (left.rows, sorted(left.units)) == (int(kept_rows.sum()), sorted(gaps))
    # exact: the caller's frame must be untouched, not merely close
    pd.testing.assert_frame_equal(frame, before)


def test_the_twfe_row_uses_twfes_small_sample_default_with_few_treated():
    """With 7 treated LAs the TWFE row kept CR1 with t(G − 1), which over-rejects (12.5% at
    5% in simulation), and the report called a −10% change detectable from it; it is now CR2,
    the small-sample method, as twfe's CR2 on the same panel."""
    import pathfinder_eval as pe

    rng = np.random.default_rng(11)
    rows = []
    for u in range(40):
        first = [4, 6][u % 2] if u < 7 else np.nan
        level = rng.normal()
        for t in range(1, 9):
            effect = 0.5 if first == first and t >= first else 0.0
            rows.append({"u": f"u{u}", "t": t, "g": first, "y": level + 0.1 * t + effect})
    data = pd.DataFrame(rows)
    data["y"] += rng.normal(scale=0.3, size=len(data))
    cols = dict(outcome="y", unit="u", time="t", first_treated="g")
    bacon = pe.bacon(data, **cols).table.iloc[0]
    twfe = pe.twfe(data, **cols, inference="cr2").table.iloc[0]
    assert pe.bacon(data, **cols).inference.key == "cr2"
    for column in ("estimate", "std_error", "df", "ci_lower", "ci_upper"):
        assert bacon[column] == pytest.approx(twfe[column], rel=1e-9)
    cr1 = pe.bacon(data, **cols, inference="cluster_robust").table.iloc[0]
    assert cr1["df"] == 39 and cr1["std_error"] != pytest.approx(twfe["std_error"], rel=1e-3)
