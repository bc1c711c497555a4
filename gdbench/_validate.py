"""Checks of user-given keywords: the one set of checks of the whole package.

Each returns the checked value (converted where that helps) or raises
``ValueError`` whose message starts with the keyword's name and says what is
accepted. They run once, at construction, on Python values: the pure update
rules and rate functions never validate, since they also take per-trial
tensors, on which a Python test of the value is impossible under XLA.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable
from typing import Any, Sequence

import numpy as np


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
        bound = f"{name} > {low}" if low_open and high is None else range_text(low, high)
        raise ValueError(f"{name}: must satisfy {bound}, got {value!r}")
    return result


def positive(name: str, value: Any) -> float:
    """A finite number > 0."""
    result = number(name, value)
    if result <= 0:
        raise ValueError(f"{name}: must be > 0, got {value!r}")
    return result


def non_negative(name: str, value: Any) -> float:
    """A finite number ≥ 0."""
    result = number(name, value)
    if result < 0:
        raise ValueError(f"{name}: must be >= 0, got {value!r}")
    return result


def decay_rate(name: str, value: Any) -> float:
    """A decay factor β with 0 ≤ β < 1."""
    result = number(name, value)
    if not 0 <= result < 1:
        raise ValueError(f"{name}: must satisfy 0 <= {name} < 1, got {value!r}")
    return result


def greater_than(name: str, value: Any, bound: float) -> float:
    """A finite number > ``bound``."""
    result = number(name, value)
    if result <= bound:
        raise ValueError(f"{name}: must be > {bound}, got {value!r}")
    return result


def open_interval(name: str, value: Any, low: float, high: float) -> float:
    """A finite number strictly between ``low`` and ``high``."""
    result = number(name, value)
    if not low < result < high:
        raise ValueError(f"{name}: must satisfy {low} < {name} < {high}, got {value!r}")
    return result


def in_interval(name: str, value: Any, *, low: float, high: float, low_open: bool) -> float:
    """A finite number in (low, high] when ``low_open``, else in [low, high]."""
    result = number(name, value)
    inside = (low < result if low_open else low <= result) and result <= high
    if not inside:
        bracket = "(" if low_open else "["
        raise ValueError(f"{name}: must lie in {bracket}{low}, {high}], got {value!r}")
    return result


def integer(name: str, value: Any, *, low: int | None = None, high: int | None = None) -> int:
    """A whole number with ``low <= value <= high`` where those bounds are given.

    An ``int``, a NumPy integer, or an integral float (``100.0``, as a config or a
    spec may hold it); never a boolean, and never ``2.5``.
    """
    if low is not None and high is not None:
        wanted = f"an integer in [{low}, {high}]"
    elif low is not None or high is not None:
        wanted = f"an integer >= {low}" if low is not None else f"an integer <= {high}"
    else:
        wanted = "an integer"
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or (isinstance(value, (float, np.floating)) and not float(value).is_integer()) \
            or (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name}: expected {wanted}, got {value!r}")
    result = int(value)
    return result


def point(name: str, value: Any, size: int) -> tuple[float, ...]:
    """A sequence of ``size`` finite numbers, e.g. a start point ``(w, b)``."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != size:
        raise ValueError(f"{name}: expected {size} numbers, got {value!r}")
    return tuple(number(f"{name}[{index}]", item) for index, item in enumerate(value))


def at_least(name: str, value: float, *, other_name: str, other: float) -> None:
    """Refuses ``value < other``, naming both keywords."""
    if value < other:
        raise ValueError(f"{name}: must be >= {other_name} ({other!r}), got {value!r}")


def flag(name: str, value: Any) -> bool:
    """A boolean switch; refuses anything but ``True`` and ``False``."""
    if not isinstance(value, bool):
        raise ValueError(f"{name}: expected True or False, got {value!r}")
    return value


def choice(name: str, value: Any, allowed: Sequence[str]) -> str:
    """One of ``allowed``, listing them when refused."""
    if value not in allowed:
        raise ValueError(f"{name}: expected one of {', '.join(allowed)}, got {value!r}")
    return value


def number_list(name: str, values: Any) -> list[float]:
    """A list, tuple or array of finite numbers, as a list of floats."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ValueError(f"{name}: expected a list of numbers, got {values!r}")
    return [number(f"{name}[{index}]", value) for index, value in enumerate(values)]


def learning_rate(value: Any) -> None:
    """η: a number > 0, a ``LearningRateSchedule``, or a callable of the step."""
    if callable(value):  # a LearningRateSchedule is one
        return
    # A Keras variable exists only once Keras is loaded: this module does not load it.
    keras = sys.modules.get("keras")
    if keras is not None and isinstance(value, keras.Variable):
        value = value.numpy()
    positive("learning_rate", value)


def range_text(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"{low} <= value <= {high}"
    if low is not None:
        return f"value >= {low}"
    return f"value <= {high}"
