"""Piecewise-constant schedules: a constant rate, and constant rates between boundaries."""

from __future__ import annotations

from typing import Any, Sequence

import keras
from keras import ops

from gdbench import _validate
from gdbench.schedules._base import RateSchedule


def constant_rate(step: Any, *, learning_rate: Any) -> Any:
    """η(step) = η₀, shaped and typed like ``step`` broadcast against η₀."""
    return ops.zeros_like(step) + learning_rate


def piecewise_constant_rate(step: Any, *, boundaries: Sequence[Any], values: Sequence[Any]) -> Any:
    """η(step) = values[i] for boundaries[i−1] < step ≤ boundaries[i].

    Written as Keras's `PiecewiseConstantDecay` is: the sum over the intervals
    of (step in the interval) · value, exactly one indicator being 1.

    Args:
        step: the 0-based step, a float tensor.
        boundaries: n strictly increasing numbers (or tensors broadcasting
            against ``step``).
        values: n + 1 rates, floats or ``[K, 1]`` tensors.
    """
    dtype = step.dtype

    def indicator(condition: Any) -> Any:
        return ops.cast(condition, dtype)

    rate = indicator(step <= boundaries[0]) * values[0]
    for low, high, value in zip(boundaries[:-1], boundaries[1:], values[1:-1]):
        rate = rate + indicator((step > low) & (step <= high)) * value
    return rate + indicator(step > boundaries[-1]) * values[-1]


@keras.saving.register_keras_serializable(package="gdbench")
class ConstantLearningRate(RateSchedule):
    """A constant learning rate: η(step) = η₀.

    | symbol | keyword         | default  |
    |--------|-----------------|----------|
    | η₀     | `learning_rate` | required |

    The baseline every other schedule is compared with; as a schedule it is
    tracked, logged and searched like the others.

    Args:
        learning_rate: η₀ > 0.
    """

    rate_function = staticmethod(constant_rate)

    def __init__(self, learning_rate: float) -> None:
        self.learning_rate = _validate.positive("learning_rate", learning_rate)


@keras.saving.register_keras_serializable(package="gdbench")
class PiecewiseConstantDecay(RateSchedule):
    """Constant rates between step boundaries, as Keras's `PiecewiseConstantDecay`.

        η(step) = values[0]   for step ≤ boundaries[0]
                  values[i]   for boundaries[i−1] < step ≤ boundaries[i]
                  values[n]   for step > boundaries[n−1]

    `step` is the optimizer's 0-based iteration count: with boundaries
    ``[100]`` the first 101 updates (steps 0 to 100) use ``values[0]``.

    | symbol | keyword      | default  |
    |--------|--------------|----------|
    | b_i    | `boundaries` | required |
    | η_i    | `values`     | required |

    Variant: the same function as `keras.optimizers.schedules.PiecewiseConstantDecay`
    (the interval is closed on the right); boundaries are compared as floats.

    Args:
        boundaries: n ≥ 1 strictly increasing numbers of steps.
        values: n + 1 learning rates, each > 0.
    """

    rate_function = staticmethod(piecewise_constant_rate)

    def __init__(self, boundaries: Sequence[float], values: Sequence[float]) -> None:
        boundaries = _validate.number_list("boundaries", boundaries)
        values = _validate.number_list("values", values)
        if not boundaries:
            raise ValueError("boundaries: expected at least one boundary, got []")
        for index, (low, high) in enumerate(zip(boundaries, boundaries[1:])):
            if not low < high:
                raise ValueError(
                    f"boundaries: must be strictly increasing, got boundaries[{index}]={low!r} "
                    f">= boundaries[{index + 1}]={high!r}"
                )
        if len(values) != len(boundaries) + 1:
            raise ValueError(
                f"values: expected len(boundaries) + 1 = {len(boundaries) + 1} rates, "
                f"got {len(values)}"
            )
        for index, value in enumerate(values):
            _validate.positive(f"values[{index}]", value)
        self.boundaries = boundaries
        self.values = values
