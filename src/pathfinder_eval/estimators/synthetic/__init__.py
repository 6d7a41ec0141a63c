"""Synthetic control and synthetic difference-in-differences for pilots with very few treated
units: the matrix kernels, predictor weighting, conformal inference and the estimators."""
