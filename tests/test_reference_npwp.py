"""Within-period randomisation statistics against a base-R enumeration written from the
published definitions (tests/reference/npwp_geecrt): Thompson et al.'s NPWP (inverse-variance
period weights) and swpermute's default count weights, on geeCRT's small trial, all 34,650
allocations: the statistic, the exact count of allocations at least as extreme, the p-value and
the interval by test inversion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pathfinder_eval.estimators.stepped_wedge.lmm import fixed_effects, summarise_records
from pathfinder_eval.estimators.stepped_wedge.randomisation import TIE_TOL, randomisation_test
from sw_helpers import SHARED_SW

HERE = Path(__file__).resolve().parent / "reference" / "npwp_geecrt"
REF = pd.read_csv(HERE / "values.csv").set_index(["statistic", "quantity"])["value"]
STAT_TOL = 1e-12  # the same arithmetic on the same summaries
CI_TOL = 1e-6  # both bisect; ours stops at 1e-6 of the null spread (observed 7e-8)


@pytest.mark.parametrize("statistic", ["npwp", "within_period"])
def test_exact_enumeration_matches_base_r(statistic):
    path = SHARED_SW / "geeCRT_sampleSWCRTSmall.csv"
    if not path.is_file():
        pytest.skip("geeCRT_sampleSWCRTSmall.csv absent: expected in ../shared")
    raw = pd.read_csv(path)
    cells = summarise_records(
        raw["id"].to_numpy() - 1,
        raw["period"].to_numpy() - 1,
        raw["y_con"].to_numpy(float),
        (12, 4),
    )
    start = raw[raw["treatment"] == 1].groupby("id")["period"].min().to_numpy(int) - 1
    fe = fixed_effects(cells.observed, start, "immediate")
    res = randomisation_test(
        cells, start, fe, "immediate", np.eye(fe.X.shape[2])[-1], "nested_exchangeable",
        statistic, 40_000, 0, 0.95,
    )  # fmt: skip
    ref = REF.loc[statistic]
    assert res.exact and res.allocations == res.total == ref["total"] == 34_650
    assert res.estimate == pytest.approx(ref["estimate"], abs=STAT_TOL)
    scale = max(float(np.abs(res.null).max()), 1.0)
    count = int(np.sum(np.abs(res.null) >= abs(res.estimate) - TIE_TOL * scale))
    assert count == ref["count"]
    assert res.p_value == ref["count"] / ref["total"]
    assert res.ci_lower == pytest.approx(ref["ci_lower"], abs=CI_TOL)
    assert res.ci_upper == pytest.approx(ref["ci_upper"], abs=CI_TOL)
