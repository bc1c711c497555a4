"""A spec's first look: what can be checked before any task, optimizer or schedule is imported.

Reading a spec in full (:func:`~gdbench.study.plan.reader.read_specs`) builds
its task and optimizers, and so imports TensorFlow (seconds). The first look
reads the file's TOML, the keys of each study (and of its ``tracking``
table), and the names of its task and optimizers against gdbench's own names
(read from the packages' source, :func:`built_names`, without importing them)
and the installed plugins'; a spec wrong in any of these is refused in a
fraction of a second, with the line the full reading would give. A name that is
an import path, and every value beyond these, is left to the full reading.
Every reader of a spec file takes the first look first: :func:`~gdbench.study.load_specs`
and :func:`~gdbench.study.load_spec` (and so every command that reads one).

This module imports neither Keras nor TensorFlow.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import functools
from pathlib import Path
from typing import Any

from gdbench import _sources
from gdbench._package_source import PackageSource
from gdbench.study.errors import SpecError
from gdbench.study.plan.tables import STUDY_KEYS, study_tables
from gdbench.study.spec.fields import FieldReader, join, type_name

__all__ = ["OPTIMIZER_FORMS", "TRACKING_KEYS", "Names", "built_names", "first_look",
           "named_entry", "unknown_entry"]

#: The import paths a spec's optimizer may be named by, besides names.
OPTIMIZER_FORMS = "module.Class, module:Class, file.py:Class"

#: The keys of a study's ``tracking`` table.
TRACKING_KEYS = ("mlflow", "tracking_uri", "tensorboard", "tensorboard_dir", "experiment_name")


@dataclasses.dataclass(frozen=True)
class Names:
    """What a spec may name of one kind (``"optimizer"``, ``"task"``).

    Attributes:
        kind: the kind, as a message names it.
        registered: gdbench's own names; ``plugins``: the installed plugins'.
        forms: the import paths accepted besides names.
    """

    kind: str
    registered: list[str]
    plugins: list[str]
    forms: str


def named_entry(reader: FieldReader, value: Any, field: str, accepted: str
                ) -> tuple[Any, dict[str, Any], str]:
    """An entry given as a name or as a table ``{name = "...", ...}``: its name, its other
    keys and its name's field; a table without a name is refused, saying what is
    ``accepted``."""
    if not isinstance(value, dict):
        return value, {}, field
    if "name" not in value:
        raise reader.error(join(field, "name"), f"required; {accepted}")
    return value["name"], {key: item for key, item in value.items() if key != "name"}, join(
        field, "name")


def entry_name(reader: FieldReader, value: Any, field: str, names: Names
               ) -> tuple[str, dict[str, Any], str]:
    """An entry's name (checked to be a non-empty string), its other keys and its name's field."""
    accepted = f"one of: {', '.join(names.registered)} or an import path ({names.forms})"
    identifier, own, name_field = named_entry(reader, value, field, accepted)
    if not isinstance(identifier, str) or not identifier:
        article = "an" if names.kind[0] in "aeiou" else "a"
        raise reader.error(name_field, f"expected {article} {names.kind} name or an import "
                                       f"path, got {type_name(identifier)} {identifier!r}")
    return identifier, own, name_field


def unknown_entry(reader: FieldReader, name_field: str, identifier: str,
                  names: Names) -> SpecError:
    """The error of an entry naming nothing known: the closest name, and every accepted one."""
    close = difflib.get_close_matches(identifier.lower(), names.registered, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return reader.error(name_field, f"unknown {names.kind} {identifier!r}; {hint}accepted: "
                                    f"{', '.join(names.registered + names.plugins)}, "
                                    f"or an import path ({names.forms})")


def built_names() -> tuple[Names, Names]:
    """What a spec may name as a task and as an optimizer: gdbench's own names, read from the
    packages' source without importing them, and the installed plugins'."""
    tasks = _package_source("tasks")
    return (_names(tasks, "task", ast.literal_eval(tasks.constant("PATH_FORMS"))),
            _names(_package_source("optimizers"), "optimizer", OPTIMIZER_FORMS))


@functools.cache
def _package_source(package: str) -> PackageSource:
    return PackageSource(package)


def _names(source: PackageSource, kind: str, forms: str) -> Names:
    group = ast.literal_eval(source.constant("ENTRY_POINT_GROUP"))
    return Names(kind, list(source.registry()), sorted(_sources.plugin_claims(group)), forms)


def first_look(path: Path, task_names: Names | None = None,
               optimizer_names: Names | None = None) -> None:
    """Refuse the spec file at ``path`` if its TOML, its keys, or the names of its task and
    optimizers are wrong (see the module docstring).

    Args:
        path: the spec file.
        task_names, optimizer_names: what may be named; by default :func:`built_names`.

    Raises:
        SpecError: as the full reading would, naming the file and the field.
    """
    if task_names is None or optimizer_names is None:
        built = built_names()
        task_names, optimizer_names = task_names or built[0], optimizer_names or built[1]
    reader = FieldReader(path)
    for prefix, table in study_tables(path):
        reader.check_keys(table, STUDY_KEYS, prefix)
        if isinstance(table.get("tracking"), dict):
            reader.check_keys(table["tracking"], TRACKING_KEYS, join(prefix, "tracking"))
        entries = [(table["task"], join(prefix, "task"), task_names)] if "task" in table else []
        for key in ("optimizer", "optimizers"):
            listed = table.get(key)
            if key == "optimizer" and key in table:
                entries.append((listed, join(prefix, key), optimizer_names))
            elif isinstance(listed, list):
                entries += [(item, join(join(prefix, key), index), optimizer_names)
                            for index, item in enumerate(listed)]
        for value, field, names in entries:
            identifier, _, name_field = entry_name(reader, value, field, names)
            known = identifier.lower() in names.registered or identifier in names.plugins
            if not known and not _sources.is_path(identifier):
                raise unknown_entry(reader, name_field, identifier, names)
