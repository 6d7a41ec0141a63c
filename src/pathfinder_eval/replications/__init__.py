"""Reproduce published trials and papers: `pathfinder-eval replicate`."""
