"""The package's layer contract: every import points down or sideways, never up.

``docs/architecture.md`` draws the layers. Each module may import gdbench modules
of its own layer or of a layer below it; imports inside functions count as well.
An import of a gdbench module inside a function is allowed only where it keeps
TensorFlow (or Keras) out of start-up, and it says so on its line with
``DEFERRED_MARK``: a function-level import that only dodges a circle is what this
contract exists to catch (checked in the study package, where that happened; the
command line is all start-up, and the trackers load MLflow's parts on first use). The walls kept beside the layers: the library layers
import neither Optuna nor MLflow, the trackers do not import Optuna, and nothing
imports the command line.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gdbench"

DEFERRED_MARK = "keeps TensorFlow out of start-up"

# Top to bottom. A module belongs to the layer of the longest prefix that names it;
# "gdbench" names the root package alone.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("gdbench.__main__", "gdbench.cli"),
    ("gdbench.study.runner", "gdbench.study.worker"),
    ("gdbench.study.report",),
    ("gdbench.study.compare",),
    ("gdbench.study.trials",),
    ("gdbench.study.plan",),
    ("gdbench.study.spec",),
    ("gdbench.study.keys", "gdbench.study.errors", "gdbench.study.defaults", "gdbench.study.text"),
    ("gdbench.study",),
    ("gdbench.tracking",),
    ("gdbench.comparison_plots", "gdbench.baselines"),
    ("gdbench.plots", "gdbench._curve_plots", "gdbench._surface_plots", "gdbench._plot_style",
     "gdbench._figure_pool"),
    ("gdbench.tasks",),
    ("gdbench.optimizers",),
    ("gdbench.schedules",),
    ("gdbench._files", "gdbench._validate", "gdbench._precision", "gdbench._sources",
     "gdbench._package_source"),
    ("gdbench",),
)

LIBRARY = ("gdbench.optimizers", "gdbench.schedules", "gdbench.tasks", "gdbench.plots",
           "gdbench.comparison_plots", "gdbench.baselines", "gdbench._figure_pool",
           "gdbench._files", "gdbench._validate", "gdbench._precision", "gdbench._sources",
           "gdbench._package_source")

# (importer prefix, imported prefix): never allowed.
FORBIDDEN: tuple[tuple[tuple[str, ...], str], ...] = (
    (LIBRARY, "optuna"),
    (LIBRARY, "mlflow"),
    (("gdbench.tracking",), "optuna"),
)


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int
    in_function: bool
    marked: bool


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def layer_of(module: str) -> int:
    """The index in :data:`LAYERS` of the layer ``module`` belongs to (0 is the top)."""
    best = (-1, len(LAYERS))
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            named = module == prefix if prefix == "gdbench" else _within(module, prefix)
            if named and len(prefix) > best[0]:
                best = (len(prefix), index)
    return best[1]


def _is_package(module: str, known: set[str]) -> bool:
    return any(other.startswith(module + ".") for other in known)


def imports_of(source: str, module: str, is_package: bool, known: set[str]) -> list[Import]:
    """Every import in ``source`` (the text of ``module``), at any depth, resolved to modules.

    ``from a import b`` gives ``a.b`` where ``a.b`` is a module of ``known``, else ``a``.
    """
    lines = source.splitlines()
    found: list[Import] = []

    def add(name: str, node: ast.stmt, depth: int) -> None:
        text = lines[node.lineno - 1:node.end_lineno or node.lineno]
        found.append(Import(module, name, node.lineno, depth > 0,
                            any(DEFERRED_MARK in line for line in text)))

    def visit(node: ast.AST, depth: int) -> None:
        for child in ast.iter_child_nodes(node):
            inner = depth + isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    add(alias.name, child, depth)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    parts = module.split(".") if is_package else module.split(".")[:-1]
                    parts = parts[:len(parts) - (child.level - 1)]
                    base = ".".join(parts + ([child.module] if child.module else []))
                else:
                    base = child.module or ""
                for alias in child.names:
                    candidate = f"{base}.{alias.name}"
                    add(candidate if candidate in known else base, child, depth)
            visit(child, inner)

    visit(ast.parse(source), 0)
    return found


def package_imports() -> list[Import]:
    files = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        files[".".join(parts)] = path
    known = set(files)
    found: list[Import] = []
    for module, path in files.items():
        found += imports_of(path.read_text(encoding="utf-8"), module,
                            path.name == "__init__.py", known)
    return found


def upward(imports: list[Import]) -> list[str]:
    """The imports that point to a higher layer than their module's."""
    return [f"{i.importer}:{i.line} imports {i.imported}"
            for i in imports
            if _within(i.imported, "gdbench") and layer_of(i.imported) < layer_of(i.importer)]


def unmarked_deferred(imports: list[Import], prefix: str = "gdbench.study") -> list[str]:
    """gdbench imports inside functions of modules under ``prefix`` that do not say they keep
    TensorFlow out of start-up."""
    return [f"{i.importer}:{i.line} imports {i.imported} inside a function"
            for i in imports
            if _within(i.importer, prefix) and i.in_function and _within(i.imported, "gdbench")
            and not i.marked]


def forbidden(imports: list[Import]) -> list[str]:
    return [f"{i.importer}:{i.line} imports {i.imported}"
            for i in imports
            for importers, target in FORBIDDEN
            if any(_within(i.importer, p) for p in importers) and _within(i.imported, target)]


def cycles(imports: list[Import], prefix: str) -> list[list[str]]:
    """Circles of imports (at any depth) among the modules under ``prefix``, package
    ``__init__`` modules aside (they only re-export)."""
    modules = {i.importer for i in imports if _within(i.importer, prefix)}
    packages = {m for m in modules if _is_package(m, modules)}
    graph: dict[str, set[str]] = {m: set() for m in modules - packages}
    for i in imports:
        if i.importer in graph and i.imported in graph and i.imported != i.importer:
            graph[i.importer].add(i.imported)
    found: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_every_module_belongs_to_a_layer() -> None:
    modules = {i.importer for i in package_imports()}
    assert [m for m in sorted(modules) if layer_of(m) == len(LAYERS)] == []


def test_no_import_points_up_a_layer() -> None:
    assert upward(package_imports()) == []


def test_imports_inside_functions_say_why() -> None:
    assert unmarked_deferred(package_imports()) == []


def test_the_library_layers_import_neither_optuna_nor_mlflow() -> None:
    assert forbidden(package_imports()) == []


def test_the_study_package_has_no_circle_of_imports() -> None:
    assert cycles(package_imports(), "gdbench.study") == []


# The checker itself, on planted faults.

KNOWN = {"gdbench.study.trials.loop", "gdbench.study.report.leaderboard",
         "gdbench.study.spec.model", "gdbench.study.plan.reader", "gdbench.optimizers"}


@pytest.mark.parametrize("source", [
    "from gdbench.study.report import leaderboard\n",
    "from gdbench.study.report.leaderboard import leaderboard\n",
    "import gdbench.study.report.leaderboard\n",
    "def f():\n    from gdbench.study.report.leaderboard import leaderboard  # "
    + DEFERRED_MARK + "\n",
])
def test_a_planted_upward_import_is_caught(source: str) -> None:
    found = imports_of(source, "gdbench.study.trials.loop", False, KNOWN)
    assert upward(found) == [f"gdbench.study.trials.loop:{found[0].line} imports "
                             "gdbench.study.report.leaderboard"]


def test_a_downward_import_passes_and_an_unmarked_one_in_a_function_is_caught() -> None:
    source = ("from gdbench.study.spec import model\n"
              "def f():\n    from gdbench.study.plan import reader\n")
    found = imports_of(source, "gdbench.study.trials.loop", False, KNOWN)
    assert upward(found) == []
    assert unmarked_deferred(found) == [
        "gdbench.study.trials.loop:3 imports gdbench.study.plan.reader inside a function"]


def test_a_planted_circle_and_a_planted_wall_breach_are_caught() -> None:
    planted = [Import("gdbench.study.plan.reader", "gdbench.study.spec.model", 1, False, False),
               Import("gdbench.study.spec.model", "gdbench.study.plan.reader", 9, True, True),
               Import("gdbench.optimizers.adam", "optuna", 3, True, False)]
    assert cycles(planted, "gdbench.study") == [
        ["gdbench.study.plan.reader", "gdbench.study.spec.model", "gdbench.study.plan.reader"]]
    assert forbidden(planted) == ["gdbench.optimizers.adam:3 imports optuna"]
