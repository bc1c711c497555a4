"""Where a task comes from: gdbench's own, a plugin, a module, a file beside a spec.

A task is named by an *identifier*, which :func:`source` turns into a
:class:`TaskSource` (its class, and where it comes from):

| identifier                         | what it finds                                        |
|------------------------------------|------------------------------------------------------|
| ``digits_mlp``                     | a gdbench task (:data:`REGISTRY`)                    |
| ``breast_cancer``                  | a plugin: an entry point of :data:`ENTRY_POINT_GROUP` |
| ``package.module:Task``            | a task class of an importable module                 |
| ``himmelblau.py:Himmelblau``       | a task class of a Python file (relative to ``base``)  |

A task class is any :class:`~gdbench.tasks.Task` subclass: one of the user's own, or one
made from a loss function by :func:`~gdbench.tasks.toy_task` or from a Keras model builder
and its data by :func:`~gdbench.tasks.keras_task`. A plugin is a distribution that declares

    [project.entry-points."gdbench.tasks"]
    breast_cancer = "my_package.tasks:BreastCancer"

A name that two sources claim is refused, naming both. Loading is shared with the
optimizers' registry (:mod:`gdbench._sources`).
"""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from typing import Any

from gdbench import _sources
from gdbench.tasks._base import Task
from gdbench.tasks.images import (
    CIFAR10_3C3D,
    MNISTMLP,
    DigitsMLP,
    FashionMNIST2C2D,
    FashionMNISTMLP,
)
from gdbench.tasks.regression import LinearRegression, LogisticRegression, QuadraticDeep
from gdbench.tasks.sigmoid import SigmoidNeuron, SigmoidSparse
from gdbench.tasks.surfaces import Beale, Branin, Plateau, Rastrigin, Ravine, Rosenbrock, Saddle

__all__ = ["ENTRY_POINT_GROUP", "REGISTRY", "TaskSource", "get", "names", "plugin_names",
           "plugins", "source"]

#: name → task class: toy tasks first, then image tasks.
REGISTRY: dict[str, type[Task]] = {
    task.name: task
    for task in (
        SigmoidNeuron, SigmoidSparse,
        Saddle, Ravine, Plateau, Rosenbrock, Beale, Branin, Rastrigin,
        LinearRegression, LogisticRegression, QuadraticDeep,
        DigitsMLP, FashionMNISTMLP, FashionMNIST2C2D, MNISTMLP, CIFAR10_3C3D,
    )
}

#: The entry-point group through which an installed distribution brings tasks.
ENTRY_POINT_GROUP = "gdbench.tasks"

#: How a spec may name a task gdbench does not ship.
PATH_FORMS = "module:Task, file.py:Task"


@dataclasses.dataclass(frozen=True)
class TaskSource:
    """A task class and where it comes from.

    Attributes:
        identifier: what :func:`source` and :func:`get` take to find it again (a
            file's path made absolute).
        name: a registered or plugin name, else the class's ``name``.
        task_class: the class.
        origin: where it comes from, in words (``gdbench (built in)``,
            ``plugin gdbench-tasks 0.1 (tasks_pkg:BreastCancer)``, the identifier).
    """

    identifier: str
    name: str
    task_class: type[Task]
    origin: str

    @property
    def built_in(self) -> bool:
        """Whether it is one of gdbench's own tasks."""
        return self.origin == _sources.BUILT_IN

    def option_names(self) -> list[str]:
        """The options it takes, ``seed`` first."""
        return self.task_class.option_names()

    def build(self, **options: Any) -> Task:
        """An instance with ``options``.

        Raises:
            ValueError: an option it does not take (the message lists those it does),
                or one it refuses.
        """
        accepted = self.option_names()
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise ValueError(f"{self.name}: unknown option(s) {', '.join(unknown)}; "
                             f"accepted: {', '.join(accepted)}")
        return self.task_class(**options)


def names() -> list[str]:
    """Every gdbench task's name (plugins: :func:`plugin_names`)."""
    return list(REGISTRY)


def plugin_names() -> list[str]:
    """The names installed plugins claim, without loading them."""
    return sorted(_sources.plugin_claims(ENTRY_POINT_GROUP))


def plugins() -> dict[str, TaskSource]:
    """Every task an installed distribution brings, by name.

    Raises:
        ValueError: a name two sources claim, or a plugin that cannot be loaded.
    """
    return {name: _by_name(name) for name in plugin_names()}


def source(identifier: str, base: str | Path | None = None) -> TaskSource:
    """The task ``identifier`` names (see the module's table).

    Args:
        identifier: a registered name, a plugin name, or an import path.
        base: the folder a relative file path starts from (a spec's folder); the
            working directory when ``None``.

    Raises:
        KeyError: an unknown name; the message lists the names known.
        ValueError: a name two sources claim (naming both), a missing file or module,
            an import that fails, or an object that is not a task class.
    """
    if not isinstance(identifier, str) or not identifier:
        raise TypeError(f"task: expected a name or an import path, got {identifier!r}")
    if _sources.is_path(identifier):
        found_identifier, attribute, found = _sources.locate(
            identifier, Path.cwd() if base is None else Path(base))
        task_class = _task_class(found, found_identifier)
        return TaskSource(found_identifier, getattr(task_class, "name", attribute.lower()),
                          task_class, found_identifier)
    return _by_name(identifier)


def get(name: str, **options: Any) -> Task:
    """Build a task by name or import path.

    Args:
        name: a registered name (see :func:`names`), a plugin's name, or an import path
            (``"himmelblau.py:Himmelblau"``, ``"package.module:Task"``; see :func:`source`).
        **options: the task's options, ``seed`` included (see each task's docstring).

    Raises:
        KeyError: unknown name; the message lists the registered names.
        ValueError: an option the task does not take (the message lists those it
            does), a bad value (the message names the option), or a path that gives
            no task.
    """
    return source(name).build(**options)


def _by_name(identifier: str) -> TaskSource:
    name = identifier.lower()
    entry = _sources.sole_claim(name, ENTRY_POINT_GROUP, name in REGISTRY, "task")
    if name in REGISTRY:
        return TaskSource(name, name, REGISTRY[name], _sources.BUILT_IN)
    if entry is None:
        known = names() + plugin_names()
        raise KeyError(f"task: unknown name {identifier!r}; registered: {', '.join(known)} "
                       f"(or an import path: {PATH_FORMS})")
    claim = _sources.claimant(entry)
    return TaskSource(name, name, _task_class(_sources.load_entry(entry), claim), claim)


def _task_class(found: Any, where: str) -> type[Task]:
    if inspect.isclass(found) and issubclass(found, Task):
        if inspect.isabstract(found):
            raise ValueError(f"{where}: {found.__name__} is abstract (it leaves "
                             f"{', '.join(sorted(found.__abstractmethods__))} unwritten)")
        return found
    if callable(found):
        raise ValueError(f"{where}: is a function, not a gdbench task; make a toy task of a "
                         "loss with gdbench.tasks.toy_task(loss, start=...), or a Keras task "
                         "of a model builder with gdbench.tasks.keras_task(build_model, data)")
    raise ValueError(f"{where}: is {type(found).__name__} {found!r}, not a gdbench task "
                     "(a gdbench.tasks.Task subclass)")
