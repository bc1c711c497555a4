"""Running statistics of the gradient that several update rules share.

Each is a pure, broadcasting function: hyperparameters may be floats or
tensors shaped to broadcast against the moment (one row per trial).
"""

from __future__ import annotations

from typing import Any

from keras import ops


def moving_average(average: Any, value: Any, *, decay: Any) -> Any:
    """Exponential moving average: β a + (1 − β) x."""
    return decay * average + (1.0 - decay) * value


def moving_max(maximum: Any, grad: Any, *, decay: Any) -> Any:
    """Exponentially weighted infinity norm: max(β u, |g|)."""
    return ops.maximum(decay * maximum, ops.abs(grad))


def bias_corrected(moment: Any, *, decay: Any, step: Any) -> Any:
    """A zero-initialised moving average divided by 1 − βᵗ."""
    return moment / (1.0 - ops.power(decay, step))
