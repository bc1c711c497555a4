"""Checks of task options and fit arguments: each error names its field and the accepted values."""

from __future__ import annotations

from typing import Any

import numpy as np

from gdbench._validate import range_text, choice, flag, number

__all__ = ["choice", "flag", "integer", "number", "point"]


def integer(name: str, value: Any, *, low: int | None = None, high: int | None = None) -> int:
    """An ``int`` (not ``bool``) with ``low <= value <= high`` where those bounds are given."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name}: expected an integer, got {value!r}")
    result = int(value)
    if (low is not None and result < low) or (high is not None and result > high):
        raise ValueError(f"{name}: must satisfy {range_text(low, high)}, got {value!r}")
    return result


def point(name: str, value: Any, size: int) -> tuple[float, ...]:
    """A sequence of ``size`` finite numbers, e.g. a start point ``(w, b)``."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != size:
        raise ValueError(f"{name}: expected {size} numbers, got {value!r}")
    return tuple(number(f"{name}[{index}]", item) for index, item in enumerate(value))
