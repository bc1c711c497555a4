"""What the shipped study specs ask for, read from their TOML (not through the study layer)."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

import gdbench.optimizers
import gdbench.tasks

STUDIES = Path(__file__).resolve().parent.parent / "studies"
LECTURES = STUDIES / "lectures"


@dataclasses.dataclass(frozen=True)
class Entry:
    """One optimizer of a spec: its label, registry name and fixed keywords."""

    label: str
    name: str
    keywords: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Study:
    """One study of a spec file, as its TOML table says."""

    path: Path
    table: dict[str, Any]

    @property
    def task(self) -> gdbench.tasks.Task:
        """The task, a file's path read from the spec's folder as the study layer reads it."""
        task = self.table["task"]
        name, options = (task, {}) if isinstance(task, str) else (
            task["name"], {k: v for k, v in task.items() if k != "name"})
        return gdbench.tasks.source(name, base=self.path.parent).build(**options)

    @property
    def epochs(self) -> int | None:
        return self.table.get("epochs")

    @property
    def batch_size(self) -> int | None:
        return self.table.get("batch_size")

    @property
    def optimizers(self) -> list[Entry]:
        items = self.table.get("optimizers") or [self.table["optimizer"]]
        entries = []
        for item in items:
            if isinstance(item, str):
                entries.append(Entry(item, item, {}))
            else:
                keywords = {k: v for k, v in item.items() if k not in ("name", "label")}
                entries.append(Entry(item.get("label", item["name"]), item["name"], keywords))
        return entries

    def optimizer(self, label: str) -> Entry:
        return next(entry for entry in self.optimizers if entry.label == label)

    def build(self, label: str, **keywords: Any) -> Any:
        """A fresh optimizer of entry ``label``, its fixed keywords overridden by ``keywords``."""
        entry = self.optimizer(label)
        return gdbench.optimizers.source(entry.name, base=self.path.parent).build(
            **{**entry.keywords, **keywords})


def studies(path: Path) -> list[Study]:
    """Every study of the spec file ``path`` (one, or each ``[[study]]`` table)."""
    with open(path, "rb") as file:
        table = tomllib.load(file)
    return [Study(path, item) for item in table.get("study", [table])]


def spec_paths() -> list[Path]:
    """Every shipped spec, lectures' included."""
    return sorted(STUDIES.glob("*.toml")) + sorted(LECTURES.glob("*.toml"))
