"""Reading a spec file: the first look (:mod:`gdbench.study.plan.first_look`), then the full
reading (:mod:`gdbench.study.plan.reader`).

A spec wrong in its TOML, its keys or its names is refused before the full reading, and so
TensorFlow, is imported: in a fraction of a second, with the line the full reading gives.
Every command that reads a spec file reads it here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from gdbench.study.errors import SpecError
from gdbench.study.plan.first_look import first_look

if TYPE_CHECKING:  # the model imports the tasks, and so TensorFlow
    from gdbench.study.spec.model import StudySpec

__all__ = ["load_spec", "load_specs"]


def load_specs(path: str | Path) -> list[StudySpec]:
    """Every study of a spec file (one, or several as ``[[study]]`` tables).

    Args:
        path: the TOML file.

    Raises:
        SpecError: the file is missing, not TOML, or any field is wrong; the
            message names the file, the field and what is accepted.
    """
    first_look(Path(path))
    from gdbench.study.plan.reader import (
        read_specs,  # keeps TensorFlow out of start-up
    )

    return read_specs(Path(path))


def load_spec(path: str | Path) -> StudySpec:
    """The one study of a spec file.

    Args:
        path: the TOML file.

    Raises:
        SpecError: as :func:`load_specs`, or the file holds several studies.
    """
    specs = load_specs(path)
    if len(specs) > 1:
        raise SpecError(path, "study", f"holds {len(specs)} studies; use load_specs")
    return specs[0]
