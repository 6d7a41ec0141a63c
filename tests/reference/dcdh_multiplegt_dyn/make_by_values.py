"""Reference values for did_multiplegt_dyn's `by` option from the authors' Python port (PyPI
py-did-multiplegt-dyn 0.1.9), on the committed panels.csv; run it in the environment
make_values.py names:

    /tmp/dcdh-ref/bin/python tests/reference/dcdh_multiplegt_dyn/make_by_values.py

It writes by_values.csv: for each run and each value of the panel's `stratum` column (units
nested in it), the port's average total effect, effects and placebos on that value's units
(estimate, analytic standard error, switchers).
"""

import contextlib
import io
from pathlib import Path

import pandas as pd
import polars as pl
from did_multiplegt_dyn import DidMultiplegtDyn

HERE = Path(__file__).resolve().parent

# run: (panel, effects, placebos, cluster column or None)
RUNS = {
    "switch_on_off_pause_by": ("switch_on_off_pause", 3, 2, None),
    "intensity_by": ("intensity", 2, 1, None),
    "la_absorbing_by": ("la_absorbing", 3, 2, None),
    "missing_outcomes_by": ("missing_outcomes", 2, 1, None),
}


def main() -> None:
    panels = pd.read_csv(HERE / "panels.csv")
    values = []
    for run, (case, effects, placebo, cluster) in RUNS.items():
        frame = panels[panels["case"] == case].drop(columns="case")
        with contextlib.redirect_stdout(io.StringIO()):  # the port prints its tables
            fit = DidMultiplegtDyn(
                pl.from_pandas(frame),
                "y",
                "unit",
                "period",
                "treatment",
                effects=effects,
                placebo=placebo,
                cluster=cluster,
                by="stratum",
            ).fit()
        for part in fit.result["did_multiplegt_dyn"]["all_by_results"]:
            res = part["result"]["did_multiplegt_dyn"]
            for block in ("ATE", "Effects", "Placebos"):
                table = res.get(block)
                if table is None:
                    continue
                for name, row in table.iterrows():
                    values.append(
                        {
                            "run": run,
                            "value": part["by_value"],
                            "row": name,
                            "estimate": row["Estimate"],
                            "std_error": row["SE"],
                            "switchers": row["Switchers"],
                        }
                    )
    pd.DataFrame(values).to_csv(HERE / "by_values.csv", index=False, float_format="%.17g")


if __name__ == "__main__":
    main()
