"""Gradient descent with (heavy-ball) momentum."""

from __future__ import annotations

from typing import Any

import keras

from gdbench import _validate
from gdbench.optimizers._base import RuleOptimizer


def momentum_update(
    param: Any, grad: Any, slots: tuple[Any], *, step: Any, learning_rate: Any, momentum: Any
) -> tuple[Any, tuple[Any]]:
    """One momentum step: v ← γ v + η g ; w ← w − v. ``slots`` are (v,)."""
    del step
    (velocity,) = slots
    velocity = momentum * velocity + learning_rate * grad
    return param - velocity, (velocity,)


@keras.saving.register_keras_serializable(package="gdbench")
class Momentum(RuleOptimizer):
    """Momentum: gradient descent that keeps a velocity.

        v_t = γ v_{t−1} + η g_t
        w_{t+1} = w_t − v_t

    | symbol | keyword         | default |
    |--------|-----------------|---------|
    | η      | `learning_rate` | 0.01    |
    | γ      | `momentum`      | 0.9     |

    Variant: η lives inside the velocity, so a scheduled η scales each new
    gradient when it enters the buffer, not the whole buffer. This is exactly
    `keras.optimizers.SGD(momentum=γ)` (whose buffer is −v). PyTorch's `SGD`
    keeps η outside (v ← γ v + g ; w ← w − η v): the same trajectory for a
    constant η, a different one under a schedule.

    References:
        Polyak, "Some methods of speeding up the convergence of iteration
        methods", USSR Computational Mathematics and Mathematical Physics, 1964.
        Rumelhart, Hinton and Williams, "Learning representations by
        back-propagating errors", Nature, 1986.

    Args:
        learning_rate: η, a float > 0 or a `LearningRateSchedule`.
        momentum: γ, decay of the velocity, 0 ≤ γ < 1.
        name: the optimizer's name.
        **kwargs: the Keras base keywords (`clipnorm`, `clipvalue`, ...).
    """

    rule = staticmethod(momentum_update)
    slot_names = ("v",)
    hyperparameter_names = ("momentum",)

    def __init__(
        self,
        learning_rate: Any = 0.01,
        momentum: float = 0.9,
        name: str = "momentum",
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.momentum = _validate.decay_rate("momentum", momentum)
