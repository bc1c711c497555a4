"""Checks of task options and fit arguments: each error names its field and the accepted values."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np


def integer(name: str, value: Any, *, low: int | None = None, high: int | None = None) -> int:
    """An ``int`` (not ``bool``) with ``low <= value <= high`` where those bounds are given."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name}: expected an integer, got {value!r}")
    result = int(value)
    if (low is not None and result < low) or (high is not None and result > high):
        raise ValueError(f"{name}: must satisfy {_range_text(low, high)}, got {value!r}")
    return result


def number(name: str, value: Any, *, low: float | None = None, high: float | None = None,
           low_open: bool = False) -> float:
    """A finite ``float`` inside the given bounds (``low`` excluded when ``low_open``)."""
    if isinstance(value, bool):
        raise ValueError(f"{name}: expected a number, got {value!r}")
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a number, got {value!r}") from None
    if not math.isfinite(result):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    too_low = low is not None and (result <= low if low_open else result < low)
    if too_low or (high is not None and result > high):
        bound = f"{name} > {low}" if low_open and high is None else _range_text(low, high)
        raise ValueError(f"{name}: must satisfy {bound}, got {value!r}")
    return result


def choice(name: str, value: Any, accepted: Sequence[str]) -> str:
    """One of the ``accepted`` strings."""
    if value not in accepted:
        raise ValueError(f"{name}: expected one of {', '.join(accepted)}; got {value!r}")
    return value


def flag(name: str, value: Any) -> bool:
    """``True`` or ``False``, nothing else."""
    if not isinstance(value, bool):
        raise ValueError(f"{name}: expected True or False, got {value!r}")
    return value


def point(name: str, value: Any, size: int) -> tuple[float, ...]:
    """A sequence of ``size`` finite numbers, e.g. a start point ``(w, b)``."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != size:
        raise ValueError(f"{name}: expected {size} numbers, got {value!r}")
    return tuple(number(f"{name}[{index}]", item) for index, item in enumerate(value))


def _range_text(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"{low} <= value <= {high}"
    if low is not None:
        return f"value >= {low}"
    return f"value <= {high}"
