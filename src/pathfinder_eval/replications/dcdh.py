"""de Chaisemartin & D'Haultfœuille's did_multiplegt_dyn on its own README example: banking
deregulation and loan volumes in US counties (Favara & Imbs 2015), a treatment that takes
several levels and changes at different times.

The README prints no output, so the numbers are those of the authors' Python package running
the README's two commands (tests/reference/dcdh_favara_imbs: the script and its values)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pathfinder_eval.estimators.did.multiplegt_dyn import multiplegt_dyn
from pathfinder_eval.inference.cluster import equal_test, joint_zero_test
from pathfinder_eval.replications.registry import ApiExample, Entry, Published, Reproduced, register

SOURCE = (
    "did_multiplegt_dyn README 'Example' (github Credible-Answers/did_multiplegt_dyn at "
    "b1da0e4), run by the authors' Python package py_did_multiplegt_dyn 0.1.9 "
    "(tests/reference/dcdh_favara_imbs)"
)
FULL = "the authors' package to full precision: 1e-9 allows the order of summation"
TOLERANCE = 1e-9

# run: (label, estimate, standard error) of the authors' package, then its tests' p-values
_DYNAMIC = (
    ("average total effect", 0.047828410083613229, 0.024673348016386307),
    ("effect 1", 0.043481419228638789, 0.035498065430574599),
    ("effect 2", 0.038711192731504827, 0.045312327188649471),
    ("effect 3", 0.081270953320407985, 0.049448850513518043),
    ("effect 4", 0.070594499416065645, 0.065658406432910432),
    ("effect 5", 0.14759517765808502, 0.066041871762971133),
    ("effect 6", 0.16310647501607875, 0.077531008082975236),
    ("effect 7", 0.15650342515159923, 0.079084613032417039),
    ("effect 8", 0.18582699521596283, 0.079413255584671119),
    ("placebo 1", 0.05480876707832099, 0.051111785356706511),
    ("placebo 2", -0.071834299349387593, 0.070798689580053087),
    ("placebo 3", -0.10947800027091976, 0.10364863380958218),
)
_NORMALIZED = (
    ("average total effect", 0.055063025517882808, 0.026808190547594965),
    ("effect 1", 0.024039303783558317, 0.018424050601673285),
    ("effect 2", 0.011670222795770513, 0.010671359472429575),
    ("effect 3", 0.014344271047463846, 0.0082882115212354855),
    ("effect 4", 0.011521103873535086, 0.0081951494099753251),
    ("effect 5", 0.016162703077027898, 0.0068420490512644955),
    ("effect 6", 0.013386096080962855, 0.0062512899101706048),
    ("effect 7", 0.0098100184594701757, 0.0049572174727585449),
    ("effect 8", 0.010083837648433782, 0.0043093328583328015),
    ("placebo 1", 0.030378515646637384, 0.026405152151615825),
)
_TESTS = {
    "placebos jointly zero p": 0.40683143660129761,
    "effects jointly zero p": 0.063545632705751975,
    "normalised effects jointly zero p": 0.096771339169890003,
    "normalised effects equal p": 0.073929589825513675,
}


def favara_imbs(path: Path) -> dict[str, Reproduced]:
    """Both README commands: 8 effects and 3 placebos clustered by state; 8 normalised
    effects over the same switchers (1 placebo, the package's default) with the equality
    test."""
    d = pd.read_csv(path)
    args = (
        d["Dl_vloans_b"].to_numpy(float),
        d["county"].to_numpy(),
        d["year"].to_numpy(float),
        d["inter_bra"].to_numpy(float),
    )
    out: dict[str, Reproduced] = {}
    runs = (
        ("", {"placebo": 3}),
        ("normalised ", {"placebo": 1, "normalized": True, "same_switchers": True}),
    )
    for prefix, options in runs:
        fit = multiplegt_dyn(*args, effects=8, cluster=d["state_n"].to_numpy(), **options)
        se = np.sqrt(np.diag(fit.vcov))
        for label, est, s in zip(fit.labels, fit.estimate, se, strict=True):
            out[f"{prefix}{label}"] = Reproduced(float(est))
            out[f"{prefix}{label} SE"] = Reproduced(float(s))
        normal = np.full(fit.lag.size, np.inf)  # the authors' chi-squared tests
        effects = np.flatnonzero(fit.lag > 0)
        tests = {
            "placebos jointly zero p": joint_zero_test(
                fit.estimate, fit.vcov, normal, np.flatnonzero(fit.lag < 0)
            ),
            "effects jointly zero p": joint_zero_test(fit.estimate, fit.vcov, normal, effects),
            "effects equal p": equal_test(fit.estimate, fit.vcov, normal, effects),
        }
        for name, test in tests.items():
            if test is not None:
                out[f"{prefix}{name}"] = Reproduced(float(test["p_value"]))
    return out


def _published() -> tuple[Published, ...]:
    rows = [
        Published(f"{prefix}{label}{suffix}", value, TOLERANCE, FULL, SOURCE)
        for prefix, table in (("", _DYNAMIC), ("normalised ", _NORMALIZED))
        for label, est, se in table
        for suffix, value in (("", est), (" SE", se))
    ]
    rows += [Published(label, p, TOLERANCE, FULL, SOURCE) for label, p in _TESTS.items()]
    return tuple(rows)


register(
    Entry(
        name="favara_imbs_dcdh",
        title="Dynamic effects of banking deregulation on loans (did_multiplegt_dyn's example)",
        citation=(
            "de Chaisemartin & D'Haultfœuille (2024), Rev. Econ. Stat. 106:1723–1736; "
            "data: Favara & Imbs (2015), Am. Econ. Rev. 105:958–992"
        ),
        data="favara_imbs.csv.gz",
        bundled=True,
        published=_published(),
        compute=favara_imbs,
        lesson=(
            "Design: 1,048 US counties, 1994–2005; US states lifted their limits on interstate "
            "branching step by step, so each county's deregulation index takes several "
            "levels and changes in different years (non-binary, staggered); the outcome is "
            "the yearly change in the log volume of bank loans; standard errors are "
            "clustered by state.",
            "Estimator: for each county whose index first changes in year F, its change in "
            "outcome from year F − 1 to F − 1 + ℓ is compared with the same change among "
            "counties with the same starting index that have not changed yet (effect ℓ); "
            "placebos run the comparison backwards, before the change. The normalised run "
            "divides each effect by the change in index its counties received, follows the "
            "same counties for all eight effects and tests that the effects are equal.",
            "Why the numbers match: the estimator is a fixed set of weighted differences of "
            "means, and its analytic variance sums each county's influence within its state, "
            "so the same data give the authors' package's numbers to rounding error.",
        ),
        api=ApiExample(
            "d = pd.read_csv(path)\n"
            'fit = pe.did_multiplegt_dyn(d, outcome="Dl_vloans_b", unit="county", time="year",\n'
            '                            treatment="inter_bra", cluster="state_n", effects=8,\n'
            '                            placebo=3, inference="cluster_robust")\n'
            'value = fit.table.set_index("term").loc["effect 8", "std_error"]',
            "effect 8 SE",
        ),
    )
)
