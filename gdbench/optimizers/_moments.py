"""Running statistics of the gradient that several update rules share.

Each is a pure, broadcasting function: hyperparameters may be floats or
tensors shaped to broadcast against the moment (one row per trial).
"""

from __future__ import annotations

from typing import Any

from keras import ops

from gdbench import _precision


def moving_average(average: Any, value: Any, *, decay: Any) -> Any:
    """Exponential moving average: β a + (1 − β) x."""
    return decay * average + (1.0 - decay) * value


def moving_max(maximum: Any, grad: Any, *, decay: Any) -> Any:
    """Exponentially weighted infinity norm: max(β u, |g|)."""
    return _precision.maximum(decay * maximum, ops.abs(grad))


def debiasing_factor(*, decay: Any, step: Any) -> Any:
    """1 − βᵗ: the weight a zero-started moving average has gathered by step t.

    Dividing the average by it removes its bias towards zero. It is a scalar
    (one per trial), so rules apply it to η rather than to a full-size moment.
    """
    return 1.0 - _precision.power(decay, step)
