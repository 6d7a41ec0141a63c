"""Reference values for did_multiplegt_dyn's `by_path` option from the authors' Python port
(PyPI py-did-multiplegt-dyn 0.1.9), on the committed panels.csv; run it in the environment
make_values.py names:

    /tmp/dcdh-ref/bin/python tests/reference/dcdh_multiplegt_dyn/make_by_path_values.py

It writes by_path_values.csv: for each run and each treatment path the port estimates (its
treatments from the period before the first change through `effects` periods after, "NA"
past the panel's end), the path's groups and its average total effect, effects and
placebos (estimate, analytic standard error, switchers).
"""

from authors_port import fit, panel, rows, write

# run: (panel, effects, placebos, by_path, cluster column or None, the port's other options)
RUNS = {
    "switch_on_off_pause_paths": ("switch_on_off_pause", 2, 1, "all", None, {}),
    "missing_outcomes_paths": ("missing_outcomes", 3, 2, 2, None, {}),
    "no_never_switchers_paths": ("no_never_switchers", 2, 1, "all", None, {}),
    "intensity_paths": ("intensity", 2, 1, "all", None, {}),
    "la_absorbing_paths": ("la_absorbing", 3, 2, 1, None, {}),
    "switch_on_off_pause_paths_cluster": ("switch_on_off_pause", 2, 1, "all", "cluster", {}),
    "intensity_paths_normalized": ("intensity", 2, 1, "all", None, {"normalized": True}),
    "switch_on_off_pause_paths_trends": (
        "switch_on_off_pause",
        2,
        1,
        "all",
        None,
        {"trends_lin": True},
    ),
    "switch_on_off_pause_paths_w": ("switch_on_off_pause", 2, 1, "all", None, {"weight": "w"}),
    "switch_on_off_pause_x_paths_controls": (
        "switch_on_off_pause_x",
        2,
        1,
        "all",
        None,
        {"controls": ["x1", "x2"]},
    ),
    "switch_on_off_pause_paths_regions": (
        "switch_on_off_pause",
        2,
        1,
        "all",
        None,
        {"trends_nonparam": ["stratum"]},
    ),
}


def main() -> None:
    values = []
    for run, (case, effects, placebo, by_path, cluster, extra) in RUNS.items():
        res, _ = fit(
            panel(case),
            effects=effects,
            placebo=placebo,
            cluster=cluster,
            by_path=by_path,
            **extra,
        )
        for path in res["all_path_results"]:
            label = ", ".join("NA" if v is None else str(v) for v in path["treatment_sequence"])
            for row in rows(path["result"]["did_multiplegt_dyn"]):
                values.append({"run": run, "path": f"({label})", "groups": path["n_groups"], **row})
    write(values, "by_path_values.csv")


if __name__ == "__main__":
    main()
