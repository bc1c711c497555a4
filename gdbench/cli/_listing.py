"""``gdbench list``: every optimizer, schedule and task, with keywords, defaults and search spaces.

The command answers at once: it imports neither Keras nor TensorFlow (unless a plugin
brings tasks, whose options are read by loading them). The
registries, the constructors' keywords and defaults and the tasks' class
attributes are read from the packages' source (:class:`PackageSource`), where
they are written once; the search spaces and the sampler tables are modules
that import no Keras.
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path
from typing import Any

from gdbench import _sources

#: The folder of the ``gdbench`` package, found without importing its subpackages.
_GDBENCH = Path(__file__).resolve().parents[1]


def add_command(commands: Any) -> None:
    listing = commands.add_parser("list", help="list optimizers, schedules, tasks and samplers",
                                  description="List every optimizer (keywords, defaults and "
                                              "default search space), schedule, task and sampler "
                                              "(with the extra that installs it).")
    listing.set_defaults(handler=_list)


class Required:
    """The default of a keyword that has none."""

    def __repr__(self) -> str:
        return "<required>"


REQUIRED = Required()


class PackageSource:
    """The classes of one gdbench package, read from its source files without importing them.

    Args:
        package: the subpackage's name (``"optimizers"``).
    """

    def __init__(self, package: str) -> None:
        self.package = package
        self._classes: dict[str, ast.ClassDef] = {}
        self._constants: dict[str, dict[str, ast.expr]] = {}
        for path in sorted((_GDBENCH / package).glob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            constants = self._constants.setdefault(path.stem, {})
            for node in tree.body:
                if isinstance(node, ast.ClassDef):
                    self._classes[node.name] = node
                target, value = _assignment(node)
                if target is not None:
                    constants[target] = value

    def constant(self, name: str) -> ast.expr:
        """The value a module-level constant of the package is assigned (``__init__``'s first)."""
        for module in ["__init__"] + sorted(self._constants):
            if name in self._constants[module]:
                return self._constants[module][name]
        raise KeyError(f"gdbench.{self.package} assigns no {name}")

    def registry(self) -> dict[str, str]:
        """``REGISTRY`` of the package: name → class name, in its order.

        Written either as a dict of names (``{"gd": GD, …}``) or as a comprehension
        over classes keyed by their ``name`` attribute.
        """
        value = self.constant("REGISTRY")
        if isinstance(value, ast.Dict):
            return {ast.literal_eval(key): item.id for key, item in zip(value.keys, value.values)
                    if key is not None and isinstance(item, ast.Name)}
        if isinstance(value, ast.DictComp) and isinstance(value.key, ast.Attribute):
            classes = value.generators[0].iter
            if isinstance(classes, (ast.Tuple, ast.List)):
                return {self.attribute(item.id, value.key.attr): item.id
                        for item in classes.elts if isinstance(item, ast.Name)}
        raise ValueError(f"gdbench.{self.package}.REGISTRY is written in a form not read here")

    def lineage(self, class_name: str) -> list[ast.ClassDef]:
        """The class and its ancestors defined in this package, nearest first."""
        found: list[ast.ClassDef] = []
        waiting = [class_name]
        while waiting:
            node = self._classes.get(waiting.pop(0))
            if node is None or node in found:
                continue
            found.append(node)
            waiting += [base.id for base in node.bases if isinstance(base, ast.Name)]
        return found

    def is_subclass(self, class_name: str, base: str) -> bool:
        """Whether ``class_name`` is ``base`` or derives from it."""
        return any(node.name == base for node in self.lineage(class_name))

    def attribute(self, class_name: str, attribute: str) -> Any:
        """A class attribute's literal value, inherited as Python inherits it."""
        for node in self.lineage(class_name):
            for statement in node.body:
                target, value = _assignment(statement)
                if target == attribute and value is not None:
                    return self._literal(value)
        raise AttributeError(f"{class_name} has no literal class attribute {attribute!r}")

    def keywords(self, class_name: str, keyword_only: bool = False) -> dict[str, Any]:
        """The constructor's named keywords and defaults (:data:`REQUIRED` for none).

        Args:
            class_name: the class.
            keyword_only: the keyword-only parameters rather than the positional-or-keyword ones.
        """
        for node in self.lineage(class_name):
            init = next((s for s in node.body
                         if isinstance(s, ast.FunctionDef) and s.name == "__init__"), None)
            if init is None:
                continue
            arguments = init.args
            if keyword_only:
                pairs = zip(arguments.kwonlyargs, arguments.kw_defaults)
            else:
                positional = arguments.posonlyargs + arguments.args
                defaults = [None] * (len(positional) - len(arguments.defaults))
                pairs = zip(positional, defaults + list(arguments.defaults))
            return {argument.arg: REQUIRED if default is None else self._literal(default)
                    for argument, default in pairs if argument.arg not in ("self", "name")}
        return {}

    def _literal(self, node: ast.expr) -> Any:
        try:
            return ast.literal_eval(node)
        except ValueError:
            if isinstance(node, ast.Name):
                for constants in self._constants.values():
                    if node.id in constants:
                        return self._literal(constants[node.id])
            raise


def _assignment(node: ast.stmt) -> tuple[str | None, ast.expr | None]:
    """The single name a statement assigns and its value, or ``(None, None)``."""
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id, node.value
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return node.target.id, node.value
    return None, None


def _defaults_text(parameters: dict[str, Any]) -> str:
    return ", ".join(name if default is REQUIRED else f"{name}={default!r}"
                     for name, default in parameters.items())


def _plugin_claims(package: PackageSource) -> dict[str, list[str]]:
    """Each name the installed plugins claim in the package's entry-point group → its sources
    (gdbench's own first), without loading them."""
    group = ast.literal_eval(package.constant("ENTRY_POINT_GROUP"))
    built_in = package.registry()
    claims = {}
    for name, entries in sorted(_sources.plugin_claims(group).items()):
        sources = [f"{_sources.owner(entry)} ({entry.value})" for entry in entries]
        claims[name] = ([_sources.BUILT_IN] if name in built_in else []) + sources
    return claims


def _claim_line(name: str, sources: list[str], width: int) -> str:
    line = f"  {name:<{width}} {' and '.join(sources)}"
    return line + (" -- refused: two sources claim this name" if len(sources) > 1 else "")


def _list_plugins(optimizers: PackageSource) -> None:
    """The optimizers installed plugins bring, by name, without loading them (Keras stays out);
    a name two sources claim is marked refused, naming both."""
    claims = _plugin_claims(optimizers)
    group = ast.literal_eval(optimizers.constant("ENTRY_POINT_GROUP"))
    print(f"\nPlugin optimizers (entry points {group!r}; their default space comes from "
          "their signature):")
    if not claims:
        print("  none installed")
    for name, sources in claims.items():
        print(_claim_line(name, sources, 10))


def _list_task_plugins(tasks: PackageSource) -> None:
    """The tasks installed plugins bring, with their options: listing those loads them (and
    so Keras), where any is installed; a name two sources claim is marked refused."""
    claims = _plugin_claims(tasks)
    group = ast.literal_eval(tasks.constant("ENTRY_POINT_GROUP"))
    print(f"\nPlugin tasks (entry points {group!r}):")
    if not claims:
        print("  none installed")
        return
    import gdbench.tasks

    for name, sources in claims.items():
        print(_claim_line(name, sources, 20))
        if len(sources) > 1:
            continue
        try:
            task_class = gdbench.tasks.source(name).task_class
        except ValueError as error:
            print(f"  {'':<20} cannot be loaded: {error}")
            continue
        kind = "toy" if issubclass(task_class, gdbench.tasks.ToyTask) else "keras"
        batch = task_class.default_batch_size or "full"
        print(f"  {'':<20} {kind} epochs={task_class.default_epochs} batch_size={batch} "
              f"objective={task_class.objective_metric}; options: "
              f"{', '.join(task_class.option_names())}")


def _list(arguments: argparse.Namespace) -> int:
    del arguments
    from gdbench.study.plan import samplers
    from gdbench.study.spec import spaces

    optimizers = PackageSource("optimizers")
    print("Optimizers (keywords and defaults; default search space):")
    for name, class_name in optimizers.registry().items():
        print(f"  {name:<10} {_defaults_text(optimizers.keywords(class_name))}")
        space = spaces.OPTIMIZER_SPACES.get(name, {})
        if space:
            print(f"  {'':<10} search: " + "; ".join(d.describe(k) for k, d in space.items()))
    _list_plugins(optimizers)
    schedules = PackageSource("schedules")
    print("\nSchedules (keywords; η is the optimizer's learning_rate; default search space):")
    for name, class_name in schedules.registry().items():
        print(f"  {name:<18} {_defaults_text(schedules.keywords(class_name))}")
        schedule_space = spaces.SCHEDULE_SPACES[name]
        described = [d.describe(k) for k, d in schedule_space.parameters.items()]
        described += [derived.description for derived in schedule_space.derived.values()]
        if schedule_space.learning_rate_keyword:
            described.insert(0, f"{schedule_space.learning_rate_keyword} = η")
        print(f"  {'':<18} " + "; ".join(described))
    tasks = PackageSource("tasks")
    print("\nTasks (options; default epochs, batch size and objective):")
    for name, class_name in tasks.registry().items():
        kind = "toy" if tasks.is_subclass(class_name, "ToyTask") else "image"
        batch = tasks.attribute(class_name, "default_batch_size") or "full"
        print(f"  {name:<20} {kind:<5} epochs={tasks.attribute(class_name, 'default_epochs')} "
              f"batch_size={batch} objective={tasks.attribute(class_name, 'objective_metric')}")
        print(f"  {'':<20} {_defaults_text(tasks.keywords(class_name, keyword_only=True))}")
    _list_task_plugins(tasks)
    print("\nSamplers (default tpe):")
    for name in samplers.SAMPLERS:
        missing = samplers.missing_modules(name)
        if not missing:
            print(f"  {name:<10} installed")
        else:
            print(f"  {name:<10} not installed (needs {', '.join(missing)}): "
                  f"pip install gdbench[{samplers.SAMPLER_EXTRAS[name][0]}]")
    print(f"Pruners: {', '.join(samplers.PRUNERS)} (default median).")
    return 0
