"""Linear warm-up in front of another schedule (or of a constant rate).

It composes schedules rather than being one shape of decay, and it is the only
schedule whose config nests another schedule, hence its own module.
"""

from __future__ import annotations

from typing import Any, Callable, Union

import keras
from keras import ops

from gdbench import _precision, _validate
from gdbench.schedules._base import RateSchedule

Target = Union[Callable[[Any], Any], Any]


def warmup_rate(
    step: Any, *, target: Target, warmup_steps: Any, initial_learning_rate: Any = 0.0
) -> Any:
    """Linear warm-up from η_init to target(W) over W steps, then target(step).

        η(step) = η_init + (target(W) − η_init) · step / W    for step < W
                  target(step)                                for step ≥ W

    W = 0 means no warm-up: the ramp is never selected, and its division is
    guarded so that it yields no NaN.

    Args:
        step: the 0-based step, a float tensor.
        target: the rate after warm-up: a callable of the step (a schedule,
            whose result is cast to the step's dtype) or a rate.
        warmup_steps: W, the number of warm-up steps (a number or a tensor).
        initial_learning_rate: η_init, the rate at step 0.
    """
    warmup_steps = ops.cast(warmup_steps, step.dtype)
    if callable(target):
        target_rate = ops.cast(target(step), step.dtype)
        rate_after_warmup = ops.cast(target(warmup_steps), step.dtype)
    else:
        target_rate = rate_after_warmup = target
    fraction = step / _precision.maximum(warmup_steps, 1.0)
    ramp = initial_learning_rate + (rate_after_warmup - initial_learning_rate) * fraction
    return ops.where(step < warmup_steps, ramp, _precision.like(target_rate, step))


@keras.saving.register_keras_serializable(package="gdbench")
class LinearWarmup(RateSchedule):
    """Linear warm-up, then another schedule.

        η(step) = η_init + (η_target(W) − η_init) · step / W    for step < W
                  η_target(step)                                for step ≥ W

    `step` is the optimizer's 0-based iteration count: η(0) = η_init, and the
    ramp meets the target at step W, where the target takes over with its
    own, unshifted step (a target decaying from step 0 has already decayed
    by W steps when it takes over).

    | symbol   | keyword                 | default  |
    |----------|-------------------------|----------|
    | η_target | `target`                | required |
    | W        | `warmup_steps`          | required |
    | η_init   | `initial_learning_rate` | 0.0      |

    ``warmup_steps=0`` is accepted and means no warm-up (η = η_target), so
    that a search over W may include its absence.

    The config stores a schedule target as
    ``keras.optimizers.schedules.serialize(target)``, so the warm-up
    round-trips through ``get_config``/``from_config``, an optimizer's config
    and a ``.keras`` file.

    References:
        Goyal et al., "Accurate, Large Minibatch SGD: Training ImageNet in
        1 Hour", 2017 (gradual, linear warm-up).

    Args:
        target: a `LearningRateSchedule` (gdbench's or Keras's) or a rate > 0.
        warmup_steps: W, a whole number of steps ≥ 0.
        initial_learning_rate: η_init ≥ 0.
    """

    rate_function = staticmethod(warmup_rate)

    def __init__(
        self, target: keras.optimizers.schedules.LearningRateSchedule | float,
        warmup_steps: int, initial_learning_rate: float = 0.0,
    ) -> None:
        if not isinstance(target, keras.optimizers.schedules.LearningRateSchedule):
            if callable(target):
                raise ValueError(
                    f"target: expected a LearningRateSchedule or a number, got the callable "
                    f"{target!r}, which could not be saved"
                )
            target = _validate.positive("target", target)
        self.target = target
        self.warmup_steps = _validate.integer("warmup_steps", warmup_steps, low=0)
        self.initial_learning_rate = _validate.non_negative(
            "initial_learning_rate", initial_learning_rate
        )

    def get_config(self) -> dict[str, Any]:
        target = self.target
        if isinstance(target, keras.optimizers.schedules.LearningRateSchedule):
            target = keras.optimizers.schedules.serialize(target)
        return {
            "target": target,
            "warmup_steps": self.warmup_steps,
            "initial_learning_rate": self.initial_learning_rate,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LinearWarmup:
        config = dict(config)
        if isinstance(config["target"], dict):
            config["target"] = keras.optimizers.schedules.deserialize(config["target"])
        return cls(**config)
