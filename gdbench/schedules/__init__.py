"""Learning-rate schedules as Keras 3 `LearningRateSchedule` objects.

A schedule maps the optimizer's step, its 0-based iteration count, to η. Each
one is a pure rate function (``*_rate``), which broadcasts over per-trial
parameter tensors of shape ``[K, 1]``, and a thin
`keras.optimizers.schedules.LearningRateSchedule` subclass that validates and
stores the keywords and calls it.

Modules by family: :mod:`~gdbench.schedules.piecewise` (constant rates),
:mod:`~gdbench.schedules.decay` (decays of step / decay_steps),
:mod:`~gdbench.schedules.cyclic` (periodic rates) and
:mod:`~gdbench.schedules.warmup` (a ramp in front of another schedule).

    >>> import gdbench.schedules
    >>> schedule = gdbench.schedules.get("cosine", initial_learning_rate=0.1, decay_steps=1000)
    >>> gdbench.schedules.names()[:3]
    ['constant', 'step_decay', 'exponential']
"""

from __future__ import annotations

import copy
from typing import Any

import keras

from gdbench.schedules._base import RateSchedule, float_step
from gdbench.schedules.cyclic import (
    CYCLICAL_MODES,
    CosineRestarts,
    CyclicalLearningRate,
    cosine_restarts_rate,
    cyclical_rate,
)
from gdbench.schedules.decay import (
    CosineDecay,
    ExponentialDecay,
    InverseSqrtDecay,
    InverseTimeDecay,
    PolynomialDecay,
    StepDecay,
    cosine_rate,
    exponential_rate,
    inverse_sqrt_rate,
    inverse_time_rate,
    polynomial_rate,
    step_decay_rate,
)
from gdbench.schedules.piecewise import (
    ConstantLearningRate,
    PiecewiseConstantDecay,
    constant_rate,
    piecewise_constant_rate,
)
from gdbench.schedules.warmup import LinearWarmup, warmup_rate

__all__ = [
    "CYCLICAL_MODES",
    "REGISTRY",
    "ConstantLearningRate",
    "CosineDecay",
    "CosineRestarts",
    "CyclicalLearningRate",
    "ExponentialDecay",
    "InverseSqrtDecay",
    "InverseTimeDecay",
    "LinearWarmup",
    "PiecewiseConstantDecay",
    "PolynomialDecay",
    "RateSchedule",
    "StepDecay",
    "constant_rate",
    "cosine_rate",
    "cosine_restarts_rate",
    "cyclical_rate",
    "exponential_rate",
    "float_step",
    "get",
    "inverse_sqrt_rate",
    "inverse_time_rate",
    "names",
    "piecewise_constant_rate",
    "polynomial_rate",
    "step_decay_rate",
    "warmup_rate",
]

#: name → schedule class; ``REGISTRY[name].rate_function`` is its pure function.
REGISTRY: dict[str, type[RateSchedule]] = {
    "constant": ConstantLearningRate,
    "step_decay": StepDecay,
    "exponential": ExponentialDecay,
    "inverse_time": InverseTimeDecay,
    "inverse_sqrt": InverseSqrtDecay,
    "polynomial": PolynomialDecay,
    "piecewise_constant": PiecewiseConstantDecay,
    "cyclical": CyclicalLearningRate,
    "cosine": CosineDecay,
    "cosine_restarts": CosineRestarts,
    "warmup": LinearWarmup,
}


def names() -> list[str]:
    """Every registered schedule name, from the simplest to the composite."""
    return list(REGISTRY)


def get(identifier: Any, **kwargs: Any) -> keras.optimizers.schedules.LearningRateSchedule:
    """Build a schedule from a name, a config dict or an instance.

    Args:
        identifier: a registered name (``"cosine"``), a Keras config dict
            (``keras.optimizers.schedules.serialize(schedule)``) or a
            `LearningRateSchedule` instance, returned as is.
        **kwargs: the schedule's keywords, with a name only.

    Raises:
        KeyError: unknown name; the message lists the registered names.
        ValueError: a keyword the schedule does not take, a missing keyword,
            or a bad value; the message names the keyword.
        TypeError: an identifier of another kind.
    """
    if isinstance(identifier, keras.optimizers.schedules.LearningRateSchedule):
        if kwargs:
            raise ValueError(f"keywords {sorted(kwargs)} given with a schedule instance")
        return identifier
    if isinstance(identifier, dict):
        if kwargs:
            raise ValueError(f"keywords {sorted(kwargs)} given with a config dict")
        return keras.optimizers.schedules.deserialize(copy.deepcopy(identifier))
    if not isinstance(identifier, str):
        raise TypeError(
            f"schedule: expected a name, a config dict or a LearningRateSchedule, got {identifier!r}"
        )
    key = identifier.lower()
    if key not in REGISTRY:
        raise KeyError(f"schedule: unknown name {identifier!r}; registered: {', '.join(REGISTRY)}")
    schedule_class = REGISTRY[key]
    accepted = schedule_class.keywords()
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(
            f"{key}: unknown keyword(s) {', '.join(unknown)}; accepted: {', '.join(accepted)}"
        )
    missing = [name for name in schedule_class.required_keywords() if name not in kwargs]
    if missing:
        raise ValueError(
            f"{key}: missing keyword(s) {', '.join(missing)}; accepted: {', '.join(accepted)}"
        )
    return schedule_class(**kwargs)
