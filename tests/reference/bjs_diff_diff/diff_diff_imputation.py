"""Reference values for the BJS imputation estimator's conservative variance: diff-diff's
`ImputationDiD` (Python package diff-diff 3.13.0, an implementation of Borusyak, Jaravel &
Spiess 2024 checked against Stata's did_imputation in its own tests) on mpdta, clustered by
county, with and without leave-one-out, to full precision: the overall ATT and one effect per
event time, each with its standard error.

Run from the project root in an environment with diff-diff (a reference only, never a
dependency of pathfinder-eval):

    pip install diff-diff==3.13.0
    python tests/reference/bjs_diff_diff/diff_diff_imputation.py

It writes values.csv beside this file.
"""

from pathlib import Path

import diff_diff
import pandas as pd

HERE = Path(__file__).resolve().parent
MPDTA = HERE.parents[2] / "src/pathfinder_eval/replications/data/mpdta.csv"


def main() -> None:
    d = pd.read_csv(MPDTA)
    rows = []
    for leave_out in (False, True):
        fit = diff_diff.ImputationDiD(cluster="countyreal", leave_one_out=leave_out).fit(
            d,
            outcome="lemp",
            unit="countyreal",
            time="year",
            first_treat="first.treat",
            aggregate="event_study",
        )
        rows.append((leave_out, "overall", fit.overall_att, fit.overall_se))
        for e, v in sorted(fit.event_study_effects.items()):
            rows.append((leave_out, str(int(e)), v["effect"], v["se"]))
    out = pd.DataFrame(rows, columns=["leave_out", "row", "estimate", "std_error"])
    out.to_csv(HERE / "values.csv", index=False, float_format="%.17g")
    print(f"diff-diff {diff_diff.__version__}: {len(out)} rows written")


if __name__ == "__main__":
    main()
