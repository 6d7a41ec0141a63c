"""Reference values for the `favara_imbs_dcdh` replication: the README example of
did_multiplegt_dyn (github Credible-Answers/did_multiplegt_dyn, README "Example", at b1da0e4)
run by the authors' own Python package on the bundled Favara & Imbs (2015) data.

Run in a separate environment (a reference only, never a dependency of pathfinder-eval):

    python -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install py-did-multiplegt-dyn==0.1.9 "polars<1.32"
    /tmp/refvenv/bin/python tests/reference/dcdh_favara_imbs/make_values.py

The README prints no numbers, so its two commands are run here: eight effects and three
placebos clustered by state, and eight normalised effects over the same switchers with the
test that the effects are equal (the port's default of one placebo).
"""

import contextlib
import io
from pathlib import Path

import pandas as pd
import polars as pl
from did_multiplegt_dyn import DidMultiplegtDyn

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[2] / "src" / "pathfinder_eval" / "replications" / "data" / "favara_imbs.csv.gz"
RUNS = {
    "dynamic": dict(effects=8, placebo=3, cluster="state_n"),
    "normalized": dict(
        effects=8, cluster="state_n", normalized=True, same_switchers=True, effects_equal=True
    ),
}
TESTS = {
    "p_jointplacebo": "placebos jointly zero",
    "p_jointeffects": "effects jointly zero",
    "p_equality_effects": "effects equal",
}


def main() -> None:
    data = pl.from_pandas(pd.read_csv(DATA))
    values = []
    for run, options in RUNS.items():
        with contextlib.redirect_stdout(io.StringIO()):
            res = DidMultiplegtDyn(
                data, "Dl_vloans_b", "county", "year", "inter_bra", **options
            ).fit()
        result = res.result["did_multiplegt_dyn"]
        for block in ("ATE", "Effects", "Placebos"):
            for name, row in result[block].iterrows():
                values.append(
                    {
                        "run": run,
                        "row": name,
                        "estimate": row["Estimate"],
                        "std_error": row["SE"],
                        "switchers": row["Switchers"],
                    }
                )
        for key, label in TESTS.items():
            if key in result:
                values.append({"run": run, "row": label, "estimate": float(result[key])})
    pd.DataFrame(values).to_csv(HERE / "values.csv", index=False, float_format="%.17g")


if __name__ == "__main__":
    main()
