"""The generic checks of a spec reader: every error names the file and the dotted field."""

from __future__ import annotations

import difflib
import inspect
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

from gdbench import _validate
from gdbench.study.errors import SpecError
from gdbench.tracking.limits import MAX_PARAM_VALUE_LENGTH, length_problem


def join(prefix: str, key: str | int) -> str:
    """The dotted field of ``key`` inside ``prefix`` (``search.beta_1``, ``optimizers[0]``)."""
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    return f"{prefix}.{key}" if prefix else key


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)


def error_keyword(message: str) -> str:
    """The keyword a library error message starts with (``"beta_1: must ..."`` → ``beta_1``)."""
    head = message.split(":", 1)[0].strip()
    return head if re.fullmatch(r"[a-z_][a-z0-9_]*", head) else ""


def signature_defaults(callable_: Any) -> dict[str, Any]:
    """Keyword → default of a constructor's positional-or-keyword parameters."""
    return {
        p.name: p.default for p in inspect.signature(callable_).parameters.values()
        if p.name not in ("self", "name") and p.kind is p.POSITIONAL_OR_KEYWORD
    }


def option_names(cls: type) -> list[str]:
    """Every keyword a class's constructor takes."""
    return [p.name for p in inspect.signature(cls).parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


class FieldReader:
    """Checks the fields of one spec file; every error it raises names the file and the field.

    Args:
        path: the spec file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, field: str, message: str) -> SpecError:
        return SpecError(self.path, field, message)

    # -- generic checks -----------------------------------------------------

    def check_keys(self, table: Mapping[str, Any], accepted: Sequence[str], prefix: str) -> None:
        for key in table:
            if key not in accepted:
                close = difflib.get_close_matches(key, accepted, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise self.error(join(prefix, key),
                                 f"unknown key; {hint}accepted: {', '.join(accepted)}")

    def string(self, value: Any, field: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.error(field, f"expected a non-empty string, got {value!r}")
        return value

    def check_length(self, text: str, field: str, limit: int) -> None:
        """``text`` within the length MLflow keeps where it goes."""
        problem = length_problem(text, limit)
        if problem:
            raise self.error(field, problem)

    def integer(self, value: Any, field: str, low: int) -> int:
        try:
            return _validate.integer(field, value, low=low)
        except ValueError as error:
            raise self.error(field, str(error).split(": ", 1)[1]) from None

    def flag(self, value: Any, field: str) -> bool:
        if not isinstance(value, bool):
            raise self.error(field, f"expected true or false, got {value!r}")
        return value

    def table(self, value: Any, field: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(field, f"expected a table, got {type_name(value)} {value!r}")
        return value

    def named(self, value: Any, field: str, registered: Sequence[str], what: str
              ) -> tuple[str, dict[str, Any], str]:
        """A ``"name"`` or ``{name = ..., ...}``: (name, the other keys, the name's field)."""
        if isinstance(value, str):
            name, rest, name_field = value, {}, field
        elif isinstance(value, dict):
            if "name" not in value:
                raise self.error(join(field, "name"), f"required; one of: {', '.join(registered)}")
            rest = {key: item for key, item in value.items() if key != "name"}
            name, name_field = value["name"], join(field, "name")
        else:
            raise self.error(field, f"expected a {what} name or a table with a name, "
                                    f"got {type_name(value)} {value!r}")
        if not isinstance(name, str) or name.lower() not in registered:
            close = difflib.get_close_matches(str(name).lower(), registered, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise self.error(name_field, f"unknown {what} {name!r}; {hint}"
                                         f"accepted: {', '.join(registered)}")
        return name.lower(), rest, name_field

    def label(self, own: dict[str, Any], name: str, field: str) -> str:
        """The entry's ``label`` (popped from ``own``), its name when it has none."""
        label = own.pop("label", name)
        if not isinstance(label, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_\-]*", label):
            raise self.error(join(field, "label"),
                             f"expected a name of letters, digits, '_' and '-', got {label!r}")
        self.check_length(label, join(field, "label"), MAX_PARAM_VALUE_LENGTH)
        return label

    # -- the study ----------------------------------------------------------
