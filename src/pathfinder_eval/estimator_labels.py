"""Each estimator's name as the report, the API's summaries and the Methods section print it
(one table: registry.py and display.py read it)."""

LABELS: dict[str, str] = {
    "descriptive": "Descriptive trends",
    "twfe": "Two-way fixed-effects DiD (conventional benchmark)",
    "twfe_poisson": "Poisson two-way fixed effects on counts (log rate ratio)",
    "event_study": "Two-way fixed-effects event study (conventional benchmark)",
    "stepped_wedge": "Stepped-wedge linear mixed model (REML, period effects)",
    "stepped_wedge_gee": "Stepped-wedge GEE (bias-corrected sandwich, t reference)",
    "stepped_wedge_glmm": "Stepped-wedge generalised linear mixed model (maximum likelihood)",
    "callaway_santanna": "Callaway & Sant'Anna (2021) group-time ATTs",
    "sun_abraham": "Sun & Abraham (2021) interaction-weighted event study",
    "imputation": "Imputation DiD (Borusyak, Jaravel & Spiess 2024)",
    "etwfe": "Extended two-way fixed effects (Wooldridge 2021, 2023)",
    "two_stage": "Two-stage DiD (Gardner 2022)",
    "stacked": "Stacked DiD with corrective weights (Wing, Freedman & Hollingsworth 2024)",
    "did_multiplegt_dyn": "Dynamic DiD for switching treatments (de Chaisemartin & "
    "D'Haultfœuille 2024)",
    "continuous_did": "DiD with a continuous dose (Callaway, Goodman-Bacon & Sant'Anna 2024)",
    "bacon": "Goodman-Bacon (2021) decomposition of the TWFE estimate",
    "synthetic_control": "Synthetic control (Abadie, Diamond & Hainmueller 2010)",
    "synthetic_did": "Synthetic difference-in-differences (Arkhangelsky et al. 2021)",
    "did_2x2": "Canonical 2×2 difference-in-differences (OLS)",
    "triple_difference": "Triple differences on unit-level records (Ortiz-Villavicencio & "
    "Sant'Anna 2025)",
}
