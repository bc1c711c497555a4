"""gdbench's own classes read from their packages' source files, without importing them.

The registries, the constructors' keywords and defaults and the tasks' class attributes
are written once, in the packages; ``gdbench list`` and a spec's first look
(:mod:`gdbench.study.plan.first_look`) read them here without starting Keras or
TensorFlow.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

__all__ = ["REQUIRED", "PackageSource", "Required"]

#: The folder of the ``gdbench`` package, found without importing its subpackages.
_GDBENCH = Path(__file__).resolve().parent


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
