"""A spec's first look: what can be checked before any task, optimizer or schedule is imported.

Reading a spec in full (:func:`~gdbench.study.plan.reader.load_specs`) builds
its task and optimizers, and so imports TensorFlow (seconds). The first look
reads the file's TOML, the keys of each study (and of its ``tracking``
table), and the names of its task and optimizers against the names it is
given, which the command line reads from gdbench's sources without importing
them; a spec wrong in any of these is refused in a fraction of a second, with
the line the full reading would give. A name that is an import path, and every
value beyond these, is left to the full reading.

This module imports neither Keras nor TensorFlow.
"""

from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path
from typing import Any

from gdbench import _sources
from gdbench.study.errors import SpecError
from gdbench.study.plan.tables import STUDY_KEYS, study_tables
from gdbench.study.spec.fields import FieldReader, join, type_name

__all__ = ["OPTIMIZER_FORMS", "TRACKING_KEYS", "Names", "first_look", "named_entry",
           "unknown_entry"]

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


def first_look(path: Path, task_names: Names, optimizer_names: Names) -> None:
    """Refuse the spec file at ``path`` if its TOML, its keys, or the names of its task and
    optimizers are wrong (see the module docstring).

    Raises:
        SpecError: as the full reading would, naming the file and the field.
    """
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
