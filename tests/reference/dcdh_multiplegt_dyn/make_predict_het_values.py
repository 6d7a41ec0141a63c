"""Reference values for did_multiplegt_dyn's `predict_het` option from the authors' Python port
(PyPI py-did-multiplegt-dyn 0.1.9), on the committed panels.csv; run it in the environment
make_values.py names:

    /tmp/dcdh-ref/bin/python tests/reference/dcdh_multiplegt_dyn/make_predict_het_values.py

The covariates are fixed for each unit and computed from its label's number k (u007: 7):
het_a = sin(k), het_b = k mod 3. It writes predict_het_values.csv: for each run, effect
(negative: placebo) and covariate, the coefficient, its HC2 standard error, the LAs in the
regression and the p-value of the F test that every covariate's coefficient is zero.

The port stops with an error on many other runs of these panels (fewer than 2 placebos: an
unbound `l_placebo_int`; a switch-date cell with one LA, whose HC2 leverage is 1: statsmodels'
F test refuses the NaN covariance), so the runs are those it completes.
"""

import numpy as np
import pandas as pd
from authors_port import fit, panel, write

# run: (panel, effects, placebos, covariates, trends_nonparam column or None)
RUNS = {
    "missing_outcomes_het": ("missing_outcomes", 3, 2, ["het_a", "het_b"], None),
    "la_absorbing_het": ("la_absorbing", 3, 2, ["het_a", "het_b"], None),
    "missing_treatment_het": ("missing_treatment", 3, 2, ["het_a", "het_b"], None),
    "missing_treatment_het_regions": ("missing_treatment", 3, 2, ["het_a"], "stratum"),
}


def with_covariates(frame: pd.DataFrame) -> pd.DataFrame:
    """het_a = sin(k), het_b = k mod 3, k the number in the unit's label."""
    k = frame["unit"].str.extract(r"(\d+)$")[0].astype(int)
    return frame.assign(het_a=np.sin(k), het_b=(k % 3).astype(float))


def main() -> None:
    values = []
    for run, (case, effects, placebo, covariates, strata) in RUNS.items():
        res, _ = fit(
            with_covariates(panel(case)),
            effects=effects,
            placebo=placebo,
            trends_nonparam=[strata] if strata else None,
            predict_het=[covariates, -1],
        )
        for _, row in res["predict_het"].iterrows():
            values.append(
                {
                    "run": run,
                    "effect": int(row["effect"]),
                    "covariate": row["covariate"],
                    "estimate": row["Estimate"],
                    "std_error": row["SE"],
                    "n": int(row["N"]),
                    "p_joint": row["pF"],
                }
            )
    write(values, "predict_het_values.csv")


if __name__ == "__main__":
    main()
