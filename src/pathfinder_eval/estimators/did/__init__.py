"""Difference-in-differences estimators: two-way fixed effects and event study, Poisson TWFE,
Callaway & Sant'Anna group-time ATTs, Sun & Abraham, Borusyak-Jaravel-Spiess imputation, the
Goodman-Bacon decomposition and the canonical 2x2."""
