"""pathfinder-eval: evaluation of children's social care pilots (stepped-wedge and DiD).

`import pathfinder_eval as pe`: one call per analysis on a long DataFrame
(`pe.callaway_santanna(df, outcome=..., unit=..., time=..., first_treated=...)`), or a whole
design file through `pe.evaluate` and `pe.report`. The functions are loaded on first use, so
the command-line tool starts without them.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("pathfinder-eval")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

_API = (
    "twfe",
    "event_study",
    "callaway_santanna",
    "sun_abraham",
    "imputation",
    "etwfe",
    "two_stage",
    "stacked",
    "did_multiplegt_dyn",
    "continuous_did",
    "bacon",
    "synthetic_control",
    "synthetic_did",
    "stepped_wedge",
    "stepped_wedge_gee",
    "stepped_wedge_glmm",
    "fit_frame",
    "fit_records",
    "evaluate",
    "indicators",
    "did_2x2",
    "triple_difference",
    "honest_did",
    "pretrends",
    "mdes",
    "clusters_needed",
)

__all__ = [*_API, "report", "power", "__version__"]  # callable subpackages (callable_package)


def __getattr__(name: str) -> Any:
    if name in ("report", "power"):  # subpackages callable as the API functions
        return import_module(f"pathfinder_eval.{name}")
    if name in _API:
        return getattr(import_module("pathfinder_eval.api"), name)
    raise AttributeError(f"module 'pathfinder_eval' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API, "report", "power"])
