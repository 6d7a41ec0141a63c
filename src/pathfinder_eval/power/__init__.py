"""Power, variance and sample size for stepped-wedge and other cluster designs.

Also callable: `pathfinder_eval.power(design, effect, cell_size=..., ...)` is the analytic power
of a cluster design (`pathfinder_eval.api.power`).
"""

from pathfinder_eval.callable_package import make_callable

make_callable(__name__)
