"""Reference values for did_multiplegt_dyn's `by` option from the authors' Python port (PyPI
py-did-multiplegt-dyn 0.1.9), on the committed panels.csv; run it in the environment
make_values.py names:

    /tmp/dcdh-ref/bin/python tests/reference/dcdh_multiplegt_dyn/make_by_values.py

It writes by_values.csv: for each run and each value of the panel's `stratum` column (units
nested in it), the port's average total effect, effects and placebos on that value's units
(estimate, analytic standard error, switchers).
"""

from authors_port import fit, panel, rows, write

# run: (panel, effects, placebos, cluster column or None)
RUNS = {
    "switch_on_off_pause_by": ("switch_on_off_pause", 3, 2, None),
    "intensity_by": ("intensity", 2, 1, None),
    "la_absorbing_by": ("la_absorbing", 3, 2, None),
    "missing_outcomes_by": ("missing_outcomes", 2, 1, None),
}


def main() -> None:
    values = []
    for run, (case, effects, placebo, cluster) in RUNS.items():
        res, _ = fit(panel(case), effects=effects, placebo=placebo, cluster=cluster, by="stratum")
        for part in res["all_by_results"]:
            for row in rows(part["result"]["did_multiplegt_dyn"]):
                values.append({"run": run, "value": part["by_value"], **row})
    write(values, "by_values.csv")


if __name__ == "__main__":
    main()
