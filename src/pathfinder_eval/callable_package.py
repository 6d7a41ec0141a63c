"""`pe.report(...)` and `pe.power(...)` are functions of the Python API, but `report` and
`power` are also subpackages: importing one binds its name on `pathfinder_eval`. Such a
subpackage is made callable, forwarding to the API function of the same name, so both the call
and ordinary imports (`from pathfinder_eval.power.analytic import ...`) keep working."""

from __future__ import annotations

import sys
import types
from importlib import import_module
from typing import Any


class _CallablePackage(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        name = self.__name__.rsplit(".", 1)[-1]
        return getattr(import_module("pathfinder_eval.api"), name)(*args, **kwargs)


def make_callable(package: str) -> None:
    """Let `package` (a subpackage's __name__) be called as pathfinder_eval.api.<its name>."""
    sys.modules[package].__class__ = _CallablePackage
