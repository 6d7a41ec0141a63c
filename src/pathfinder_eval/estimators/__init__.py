"""Estimators by family (did/, stepped_wedge/, synthetic/): each a typed options model
(settings.py) with `fit(panel, outcome, analysis_id, level)` returning `EffectEstimates`."""
