"""Reference values for ETWFE with a covariate when a cohort has one unit: diff-diff's
`WooldridgeDiD` (Python package diff-diff 3.13.0, whose saturated regression drops the
collinear covariate interactions of a one-unit cohort, as fixest does) on mpdta with `lpop`,
keeping one county of the 2004 cohort (the first by id), clustered by county: the overall ATT
and its standard error to full precision.

Run from the project root in an environment with diff-diff (a reference only, never a
dependency of pathfinder-eval):

    pip install diff-diff==3.13.0
    python tests/reference/diff_diff_etwfe_one_unit_cohort/diff_diff_etwfe.py

It writes values.csv beside this file.
"""

from pathlib import Path

import diff_diff
import pandas as pd

HERE = Path(__file__).resolve().parent
MPDTA = HERE.parents[2] / "src/pathfinder_eval/replications/data/mpdta.csv"


def one_unit_cohort(d: pd.DataFrame) -> pd.DataFrame:
    """mpdta with the 2004 cohort cut to its first county."""
    g04 = sorted(d.loc[d["first.treat"] == 2004, "countyreal"].unique())
    return d[(d["first.treat"] != 2004) | (d["countyreal"] == g04[0])]


def main() -> None:
    d = one_unit_cohort(pd.read_csv(MPDTA))
    fit = diff_diff.WooldridgeDiD(cluster="countyreal").fit(
        d, "lemp", "countyreal", "year", "first.treat", xgvar=["lpop"]
    )
    pd.DataFrame(
        {"term": ["overall"], "estimate": [fit.overall_att], "std_error": [fit.overall_se]}
    ).to_csv(HERE / "values.csv", index=False, float_format="%.17g")


if __name__ == "__main__":
    main()
