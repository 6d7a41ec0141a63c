"""The house rules the code keeps (ARCHITECTURE.md): imports point one way, with no circle;
inference/ is family-agnostic; the pipeline checks are named steps; every estimator has one
registry row and one options model."""

from __future__ import annotations

import ast
from pathlib import Path

from pathfinder_eval.panel import CHECKS
from pathfinder_eval.registry import REGISTRY
from pathfinder_eval.settings import OPTIONS
from pathfinder_eval.spec import Estimator

SRC = Path(__file__).resolve().parents[1] / "src"


def import_graph() -> dict[str, set[str]]:
    """Module → the package modules it imports (module level and inside functions)."""
    modules = {}
    for path in (SRC / "pathfinder_eval").rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pathfinder"):
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    deps.add(full if full in modules else node.module)
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def module_level_graph() -> dict[str, set[str]]:
    """As import_graph, counting only imports run when the module loads."""
    graph = {}
    for name, deps in import_graph().items():
        path = SRC / Path(*name.split("."))
        path = (
            path.with_suffix(".py") if path.with_suffix(".py").is_file() else path / "__init__.py"
        )
        top = set()
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pathfinder"):
                top |= {d for d in deps if d == node.module or d.startswith(node.module + ".")}
        graph[name] = top
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                out.append(sorted(part))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_circle():
    assert cycles(module_level_graph()) == []


def test_inference_never_imports_an_estimator():
    graph = import_graph()
    wrong = {
        m: sorted(d for d in deps if d.startswith("pathfinder_eval.estimators"))
        for m, deps in graph.items()
        if m.startswith("pathfinder_eval.inference")
    }
    assert {m: d for m, d in wrong.items() if d} == {}


def test_estimators_and_data_never_import_the_report_or_the_cli():
    graph = import_graph()
    later = ("pathfinder_eval.report", "pathfinder_eval.cli", "pathfinder_eval.pipeline")
    wrong = {
        m: sorted(d for d in deps if d.startswith(later))
        for m, deps in graph.items()
        if m.startswith(("pathfinder_eval.estimators", "pathfinder_eval.data"))
    }
    assert {m: d for m, d in wrong.items() if d} == {}


def test_every_estimator_has_one_registry_row_and_options_model():
    assert set(REGISTRY) == set(Estimator)
    assert set(OPTIONS) == {e.value for e in Estimator}
    for key, row in REGISTRY.items():
        if row.cls is not None:
            assert issubclass(row.cls, OPTIONS[key.value]) and row.cls.name == key.value


def test_estimator_engines_are_imported_only_when_a_design_names_them():
    """The registry and the pipeline load no engine: a synthetic-control design does not pay
    for linearmodels, statsmodels or numba (about a second of a cold run)."""
    import subprocess
    import sys

    code = (
        "import sys, pathfinder_eval.pipeline, pathfinder_eval.registry as r;"
        "loaded = [m for m in sys.modules if m.startswith('pathfinder_eval.estimators.')];"
        "r.entry('synthetic_control').cls;"
        "print(len(loaded), 'pathfinder_eval.estimators.synthetic.estimators' in sys.modules,"
        " 'pathfinder_eval.estimators.did.bacon' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "True", "False"]


def test_panel_checks_are_named_steps():
    names = [c.name for c in CHECKS]
    assert len(set(names)) == len(names) and all(c.doc for c in CHECKS)
    assert names[0] == "unique_unit_period" and names[-2:] == ["outcomes_supported", "contrasts"]
