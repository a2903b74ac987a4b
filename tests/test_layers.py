"""The shape of the package: no import cycles, and imports that only go down the layers.

Every ``import`` in ``scaling/`` counts, those inside functions too (a lazy import is still a
dependency). A package's ``__init__`` importing names from its own modules (a facade, as
``scaling.data`` re-exports ``prepare_data``) is not a dependency of those modules on it and is not
counted: a module always needs its parent package first, so such edges are part of every package.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "scaling"

#: the layers, bottom first: a module may import its own package and the packages of lower layers
#: (``scaling.X`` for a module ``scaling/X.py`` or a package ``scaling/X/``); the top layer, the
#: command line, may also import within itself (``demo`` runs other commands through ``cli``)
LAYERS: tuple[frozenset[str], ...] = tuple(map(frozenset, (
    {"errors"},                                # errors meant for people
    {"formatting", "atomic", "reading"},       # foundations: numbers for people; writing and reading files
    {"spec", "results_table"},                 # what a run is; what the table is
    {"store", "models", "data"},               # where results live; architectures; tokens
    {"runs"},                                  # the run layer: graph, timeline, costs, materialise, outcome
    {"sweep", "collect", "fit", "evaluation"},  # grids of runs; store → table; laws; benchmarks
    {"train", "figures"},                      # training a run; drawing a table and its fits
    {"launch"},                                # executors
    {"commands", "cli"},                       # the command line
)))
TOP = len(LAYERS) - 1


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Module → the scaling modules it imports (anywhere in its code), facade edges left out."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            for target in targets:
                facade = path.name == "__init__.py" and target.startswith(name + ".")
                if target in modules and target != name and not facade:
                    graph[name].add(target)
    return {name: graph[name] for name in modules}


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_there_are_no_import_cycles():
    graph = _imports()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append(" -> ".join(path[path.index(target):] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_imports_go_down_the_layers():
    layer_of = {package: i for i, layer in enumerate(LAYERS) for package in layer}
    graph = _imports()
    packages = {_package(m) for m in graph} - {""}
    assert packages == set(layer_of), f"packages without a layer: {packages - set(layer_of)}; layers naming none: {set(layer_of) - packages}"
    upward = []
    for module, targets in graph.items():
        here = _package(module)
        for target in targets:
            there = _package(target)
            if here and there and here != there:
                if layer_of[there] > layer_of[here] or layer_of[there] == layer_of[here] != TOP:
                    upward.append(f"{module} imports {target} (layer {layer_of[here]} -> {layer_of[there]})")
    assert not upward, "imports that do not go down the layers:\n" + "\n".join(sorted(upward))


def test_the_checks_see_a_cycle_and_an_upward_import(tmp_path, monkeypatch):
    """The walk is real: a planted cycle and a planted upward import are both found."""
    import shutil

    import pytest

    copy = tmp_path / "scaling"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "errors.py").write_text((copy / "errors.py").read_text() + "\n\ndef _planted():\n    from scaling.runs import graph\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", copy)
    with pytest.raises(AssertionError, match="scaling.errors imports scaling.runs.graph"):
        test_imports_go_down_the_layers()
    with pytest.raises(AssertionError, match="import cycles"):
        test_there_are_no_import_cycles()
