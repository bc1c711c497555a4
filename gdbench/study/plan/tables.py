"""A spec file's study tables, read without importing the tasks (nor TensorFlow).

:func:`~gdbench.study.plan.reader.read_specs` reads each table into a spec;
``gdbench run --jobs`` needs only the studies' names, to start a process for
each, which reads its own study in full.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from gdbench.study.errors import SpecError

__all__ = ["STUDY_KEYS", "spec_text", "study_names", "study_tables"]

#: The keys of a study's table (docs/spec.md says what each means).
STUDY_KEYS = (
    "name", "description", "task", "epochs", "batch_size", "optimizer", "optimizers",
    "schedule", "schedules", "search", "tune", "objective", "trials", "sampler", "pruner",
    "storage", "tracking", "seed", "population", "trials_per_batch", "balance",
    "confirm", "compare",
)


def spec_text(path: Path) -> str:
    """A spec file's text, without the byte order mark some editors put first.

    Raises:
        SpecError: the path is a folder, is missing, or is not UTF-8 text.
    """
    if path.is_dir():
        raise SpecError(path, "(file)", "is a folder; give the spec file (a .toml file) in it")
    if not path.is_file():
        raise SpecError(path, "(file)", "no such spec file")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise SpecError(path, "(syntax)", f"not UTF-8 text: {error}") from None


def study_tables(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """The file's study tables, each with its field prefix.

    A file is one study (its top-level keys, prefix ``""``) or ``[[study]]``
    tables (prefixes ``study[0]``, ...); a study's name defaults to the file's stem.

    Raises:
        SpecError: the file is missing (or a folder), is not TOML, or its tables are malformed.
    """
    text = spec_text(path)
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SpecError(path, "(syntax)", f"not valid TOML: {error}") from None
    if "study" not in document:
        return [("", document)]
    others = sorted(set(document) - {"study"})
    if others:
        raise SpecError(path, others[0], "a file with [[study]] tables keeps every key inside them")
    tables = document["study"]
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise SpecError(path, "study", "expected one or more [[study]] tables")
    for index, table in enumerate(tables):
        if len(tables) > 1 and "name" not in table:
            raise SpecError(path, f"study[{index}].name",
                            "required when a file holds several studies")
    return [(f"study[{index}]", table) for index, table in enumerate(tables)]


def study_names(path: Path) -> list[str]:
    """The names of the file's studies, unchecked (reading the spec checks them)."""
    return [str(table.get("name", path.stem)) for _, table in study_tables(path)]
