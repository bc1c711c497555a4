"""Hyperparameter checks shared by every optimizer: each error names its keyword."""

from __future__ import annotations

import math
from typing import Any

import keras


def number(name: str, value: Any) -> float:
    """``float(value)``; refuses non-numbers, NaN and infinities, naming ``name``."""
    if isinstance(value, bool):
        raise ValueError(f"{name}: expected a number, got {value!r}")
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a number, got {value!r}") from None
    if not math.isfinite(result):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
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


def learning_rate(value: Any) -> None:
    """η: a number > 0, a ``LearningRateSchedule``, or a callable of the step."""
    if isinstance(value, keras.optimizers.schedules.LearningRateSchedule) or callable(value):
        return
    if isinstance(value, keras.Variable):
        value = value.numpy()
    positive("learning_rate", value)


def flag(name: str, value: Any) -> bool:
    """A boolean switch; refuses anything but ``True`` and ``False``."""
    if not isinstance(value, bool):
        raise ValueError(f"{name}: expected True or False, got {value!r}")
    return value
