"""Stepped-wedge trial estimators: the shared design code, the linear mixed model (cell
summaries and individual records), GEE and GLMM kernels, their estimators on the panel, and
randomisation inference over allocations."""
