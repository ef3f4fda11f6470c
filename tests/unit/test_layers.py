"""The layers of vadbench/ (docs/architecture.md): no import cycles between its parts, each subpackage
importing only the layers before it, the contracts in api/ depending on nothing else of vadbench, and plan/
and report/ importing without torch.

Imports are read from the source (AST), wherever they are: at module level, inside functions (an import
moved into a function still ties two layers) and under ``TYPE_CHECKING`` (an annotation names a type of
another layer).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import vadbench

PACKAGE = Path(vadbench.__file__).resolve().parent
ARCHITECTURE = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"
#: The subpackages, each importing only from those before it.
LAYERS = ("api", "data", "plugins", "plan", "report", "engine", "executors", "extract")
#: The parts that must import without torch (tables, figures and grid files are read on machines without it).
WITHOUT_TORCH = ("plan", "report")


def module_name(path: Path) -> str:
    """``<package>/plan/specs.py`` -> ``vadbench.plan.specs``; a package's ``__init__.py`` is the package."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(source: str, package: str) -> Iterator[tuple[int, str]]:
    """(line, module) of every vadbench module that `source`, a module of `package`, imports, wherever the
    import is."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            targets = [".".join([*base, *filter(None, [node.module])])]
        else:
            continue
        yield from ((node.lineno, target) for target in targets if target.partition(".")[0] == "vadbench")


def part(module: str) -> str:
    """The part of vadbench a module belongs to: its subpackage (``plan``, ``cli``), a top-level module
    (``testing``), or ``vadbench`` (the package itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def import_graph() -> dict[tuple[str, str], list[str]]:
    """(importing part, imported part) -> where (``plan/specs.py:19 imports vadbench.engine.runner``), for
    every import between two different parts."""
    graph: dict[tuple[str, str], list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        source = part(module_name(path))
        package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
        for line, target in imported(path.read_text(), package):
            if part(target) != source:
                where = f"{path.relative_to(PACKAGE).as_posix()}:{line} imports {target}"
                graph.setdefault((source, part(target)), []).append(where)
    return graph


def find_cycle(edges: Iterable[tuple[str, str]]) -> list[str] | None:
    """A cycle of the directed graph `edges`, as its nodes with the first repeated at the end, or None."""
    successors: dict[str, list[str]] = {}
    for source, target in edges:
        successors.setdefault(source, []).append(target)
    state: dict[str, str] = {}  # "open" while on the current path, "done" once all its successors are

    def visit(node: str, path: list[str]) -> list[str] | None:
        path = [*path, node]
        state[node] = "open"
        for successor in successors.get(node, []):
            if state.get(successor) == "open":
                return [*path[path.index(successor):], successor]
            if successor not in state and (cycle := visit(successor, path)):
                return cycle
        state[node] = "done"
        return None

    for node in sorted(successors):
        if node not in state and (cycle := visit(node, [])):
            return cycle
    return None


def test_the_cycle_finder_names_a_cycle_and_accepts_a_dag():
    assert find_cycle([("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")]) == ["a", "b", "c", "a"]
    assert find_cycle([("x", "a"), ("a", "b"), ("b", "a")]) == ["a", "b", "a"]
    assert find_cycle([("a", "b"), ("b", "c"), ("a", "c")]) is None


def test_imports_are_found_inside_functions_relative_and_for_annotations_only():
    source = ("from typing import TYPE_CHECKING\nimport numpy\nif TYPE_CHECKING:\n"
              "    from vadbench.plugins.manager import Plugins\n"
              "def f():\n    from ..report import store\n    import vadbench.engine.runner\n    from . import grid\n")
    assert sorted(imported(source, "vadbench.plan")) == [
        (4, "vadbench.plugins.manager"), (6, "vadbench.report"), (7, "vadbench.engine.runner"), (8, "vadbench.plan")]


def test_no_import_cycle_between_the_parts_of_vadbench():
    graph = import_graph()
    cycle = find_cycle(list(graph))
    assert cycle is None, f"import cycle {' -> '.join(cycle)}: " + "; ".join(
        graph[edge][0] for edge in zip(cycle, cycle[1:], strict=False))


def test_each_layer_imports_only_the_layers_before_it():
    """The order docs/architecture.md states; the parts on top (cli, testing) may import every layer, and every
    module may import the package itself (`vadbench.hookimpl`, `__version__`)."""
    upward = [where for (source, target), found in import_graph().items()
              if source in LAYERS and target in LAYERS and LAYERS.index(target) > LAYERS.index(source)
              for where in found]
    assert not upward, f"imports against the layer order {' <- '.join(LAYERS)}: {upward}"
    stated = " ← ".join(LAYERS) + " ← cli"
    assert stated in ARCHITECTURE.read_text(), f"docs/architecture.md states {stated!r}"


def test_api_imports_nothing_of_vadbench_outside_api():
    outside = [where for (source, _), found in import_graph().items() if source == "api" for where in found]
    assert not outside, f"the contracts depend on nothing else of vadbench: {outside}"


def test_every_module_of_plan_and_report_imports_without_torch(tmp_path):
    modules = sorted(module_name(path) for layer in WITHOUT_TORCH for path in (PACKAGE / layer).glob("*.py"))
    stub = tmp_path / "no-torch" / "torch"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text('raise ImportError("torch is not installed here")\n')
    script = ("import importlib, sys\n"
              "for name in sys.argv[1:]:\n"
              "    try:\n"
              "        importlib.import_module(name)\n"
              "    except ImportError as error:\n"
              "        print(f'{name}: {error!r}')\n")
    path = os.pathsep.join(filter(None, [str(stub.parent), os.environ.get("PYTHONPATH")]))
    found = subprocess.run([sys.executable, "-c", script, *modules], capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": path}, timeout=300, check=False)
    assert "vadbench.plan.specs" in modules and "vadbench.report.store" in modules
    assert found.returncode == 0 and found.stdout == "", found.stdout + found.stderr
