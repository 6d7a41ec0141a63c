"""pathfinder-eval: evaluation of children's social care pilots (stepped-wedge and DiD)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pathfinder-eval")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"
