"""Nesterov accelerated gradient (NAG)."""

from __future__ import annotations

from typing import Any

import keras

from gdbench import _validate
from gdbench.optimizers._base import RuleOptimizer


def nesterov_update(
    param: Any, grad: Any, slots: tuple[Any], *, step: Any, learning_rate: Any, momentum: Any
) -> tuple[Any, tuple[Any]]:
    """One NAG step: v ← γ v + g ; w ← w − η (γ v + g). ``slots`` are (v,)."""
    del step
    (velocity,) = slots
    velocity = momentum * velocity + grad
    return param - learning_rate * (momentum * velocity + grad), (velocity,)


@keras.saving.register_keras_serializable(package="gdbench")
class Nesterov(RuleOptimizer):
    """Nesterov accelerated gradient, in the look-ahead-free form.

        v_t = γ v_{t−1} + g_t
        w_{t+1} = w_t − η (γ v_t + g_t)

    The gradient is taken at w_t, not at the look-ahead point w_t − ηγ v_{t−1}:
    this change of variable (Sutskever et al.) gives the same iterates as NAG
    while needing one gradient per step.

    | symbol | keyword         | default |
    |--------|-----------------|---------|
    | η      | `learning_rate` | 0.01    |
    | γ      | `momentum`      | 0.9     |

    Variant: η lives outside the velocity (as PyTorch's
    `SGD(nesterov=True)` with no dampening). `keras.optimizers.SGD(momentum=γ,
    nesterov=True)` keeps η inside (m ← γ m − η g ; w ← w + γ m − η g): the
    two agree for a constant η (m = −η v) and differ under a schedule, where
    this variant rescales the whole buffer by the current η.

    References:
        Nesterov, "A method for solving the convex programming problem with
        convergence rate O(1/k²)", Soviet Mathematics Doklady, 1983.
        Sutskever, Martens, Dahl and Hinton, "On the importance of
        initialization and momentum in deep learning", ICML 2013.

    Args:
        learning_rate: η, a float > 0 or a `LearningRateSchedule`.
        momentum: γ, decay of the velocity, 0 ≤ γ < 1.
        name: the optimizer's name.
        **kwargs: the Keras base keywords (`clipnorm`, `clipvalue`, ...).
    """

    rule = staticmethod(nesterov_update)
    slot_names = ("v",)
    hyperparameter_names = ("momentum",)

    def __init__(
        self,
        learning_rate: Any = 0.01,
        momentum: float = 0.9,
        name: str = "nesterov",
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.momentum = _validate.decay_rate("momentum", momentum)
