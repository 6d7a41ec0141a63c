"""Presentation: view data (with disclosure control), charts and templated HTML.

Also callable: `pathfinder_eval.report(evaluation, out, templates=None, workers=None)` writes an
evaluation's HTML report and results JSON into `out` as the `run` command does; its parameters
are documented at `pathfinder_eval.api.report`.
"""

from pathfinder_eval.callable_package import make_callable

make_callable(__name__)
