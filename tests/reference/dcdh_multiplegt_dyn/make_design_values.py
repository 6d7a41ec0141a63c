"""Reference values for did_multiplegt_dyn's `design` option (the treatment paths of the
switching groups) from the authors' Python port (PyPI py-did-multiplegt-dyn 0.1.9), on the
committed panels.csv; run it in the environment make_values.py names:

    /tmp/dcdh-ref/bin/python tests/reference/dcdh_multiplegt_dyn/make_design_values.py

The port prints the table only, so its rows are read from what it prints. It writes
design_values.csv: for each run, each path in the port's order, its number of groups and its
treatments from the period before the first change through `effects` periods after.
"""

import re

import pandas as pd
from authors_port import HERE, fit, panel

RUNS = {  # run: (panel, effects, the port's other options)
    "switch_on_off_pause_design": ("switch_on_off_pause", 2, {}),
    "intensity_design": ("intensity", 2, {}),
    "no_never_switchers_design": ("no_never_switchers", 3, {}),
    "la_absorbing_design": ("la_absorbing", 3, {}),
    "missing_treatment_design": ("missing_treatment", 2, {}),
    "intensity_gaps_design": ("intensity_gaps", 2, {}),
    "continuous_back_design": ("continuous_back", 2, {"continuous": 1}),
    "intensity_design_regions": ("intensity", 2, {"trends_nonparam": ["stratum"]}),
}
ROW = re.compile(r"^TreatPath(\d+)\s+(\d+)\s+[\d.]+\s+(.*)$")


def main() -> None:
    values = []
    for run, (case, effects, extra) in RUNS.items():
        _, printed = fit(panel(case), effects=effects, placebo=1, design=(1.0, "console"), **extra)
        for line in printed.splitlines():
            if match := ROW.match(line.strip()):
                treatments = ", ".join(f"{float(v):g}" for v in match.group(3).split())
                values.append(
                    {
                        "run": run,
                        "rank": int(match.group(1)),
                        "groups": int(match.group(2)),
                        "path": f"({treatments})",
                    }
                )
    pd.DataFrame(values).to_csv(HERE / "design_values.csv", index=False)


if __name__ == "__main__":
    main()
