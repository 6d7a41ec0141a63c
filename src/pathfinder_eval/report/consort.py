"""CONSORT extension for stepped-wedge cluster randomised trials (Hemming, Taljaard, McKenzie
et al., BMJ 2018;363:k1614): the items a report can address, and where this report does.

Each entry: (item, what the extension asks, section anchor or "" when the report cannot
address it from the design and data, e.g. ethics and registration)."""

from __future__ import annotations

ITEMS: tuple[tuple[str, str, str], ...] = (
    ("1a", "Identification as a stepped-wedge cluster randomised trial in the title", "top"),
    (
        "1b",
        "Structured summary, including the design and the number of clusters, steps and "
        "participants",
        "summary",
    ),
    ("2a", "Scientific background and rationale for a stepped-wedge design", "design"),
    (
        "3a",
        "Description of the design: definition of cluster, number of sequences, clusters "
        "per sequence, periods and their length, with a diagram",
        "design",
    ),
    ("4a", "Eligibility criteria for clusters and participants", ""),
    ("5", "The intervention and control conditions, and when each cluster crossed over", "design"),
    (
        "6a",
        "Pre-specified primary and secondary outcomes, with the time of measurement",
        "outcomes",
    ),
    (
        "7a",
        "How the sample size was determined: method, clusters, steps, cluster-period "
        "size, and the ICC and cluster autocorrelation assumed",
        "design",
    ),
    ("8a", "Method used to generate the random allocation of clusters to sequences", ""),
    (
        "12a",
        "Statistical methods: how time (period) effects and the within-cluster "
        "correlation were modelled, and the inference used",
        "methods",
    ),
    (
        "13a",
        "Flow of clusters and participants by period (the design diagram and the "
        "cluster-period summary)",
        "trends",
    ),
    ("16", "Numbers of clusters and participants analysed, by sequence and period", "results"),
    (
        "17a",
        "Results for each outcome: estimated effect with its precision, and the "
        "estimated ICC and cluster autocorrelation",
        "results",
    ),
    ("19", "Harms or unintended effects", ""),
    ("20", "Limitations, including those of the design (confounding with time)", "limitations"),
    ("23", "Trial registration", ""),
    ("25", "Funding", "top"),
)


def checklist() -> list[dict[str, str]]:
    return [{"item": i, "text": t, "section": s} for i, t, s in ITEMS]
