"""Adagrad: per-coordinate step sizes from the sum of squared gradients."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from gdbench import _validate
from gdbench.optimizers._base import RuleOptimizer


def adagrad_update(
    param: Any, grad: Any, slots: tuple[Any], *, step: Any, learning_rate: Any, epsilon: Any
) -> tuple[Any, tuple[Any]]:
    """One Adagrad step: v ← v + g² ; w ← w − η g / √(v + ε). ``slots`` are (v,)."""
    del step
    (accumulator,) = slots
    accumulator = accumulator + ops.square(grad)
    return param - learning_rate * grad / ops.sqrt(accumulator + epsilon), (accumulator,)


@keras.saving.register_keras_serializable(package="gdbench")
class Adagrad(RuleOptimizer):
    """Adagrad: adaptive gradient.

        v_t = v_{t−1} + g_t² ,  v_0 = `initial_accumulator_value`
        w_{t+1} = w_t − η g_t / √(v_t + ε)

    | symbol | keyword                     | default |
    |--------|-----------------------------|---------|
    | η      | `learning_rate`             | 0.01    |
    | ε      | `epsilon`                   | 1e-8    |
    | v_0    | `initial_accumulator_value` | 0.0     |

    Variant: ε is added inside the root, as in `keras.optimizers.Adagrad`,
    which runs the same update with other defaults (η = 0.001, ε = 1e-7,
    v_0 = 0.1). PyTorch's `Adagrad` adds ε outside the root, √v_t + ε.

    References:
        Duchi, Hazan and Singer, "Adaptive Subgradient Methods for Online
        Learning and Stochastic Optimization", JMLR 2011.

    Args:
        learning_rate: η, a float > 0 or a `LearningRateSchedule`.
        epsilon: ε > 0, added to the accumulator under the root.
        initial_accumulator_value: v_0 ≥ 0, the accumulator's starting value.
        name: the optimizer's name.
        **kwargs: the Keras base keywords (`clipnorm`, `clipvalue`, ...).
    """

    rule = staticmethod(adagrad_update)
    slot_names = ("v",)
    hyperparameter_names = ("epsilon",)

    def __init__(
        self,
        learning_rate: Any = 0.01,
        epsilon: float = 1e-8,
        initial_accumulator_value: float = 0.0,
        name: str = "adagrad",
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.epsilon = _validate.positive("epsilon", epsilon)
        self.initial_accumulator_value = _validate.non_negative(
            "initial_accumulator_value", initial_accumulator_value
        )

    def slot_initial_value(self, slot_name: str) -> float:
        return self.initial_accumulator_value

    def get_config(self) -> dict[str, Any]:
        # v_0 sets the slot's initial value rather than entering the rule,
        # so it is saved here instead of in `hyperparameter_names`.
        config = super().get_config()
        config["initial_accumulator_value"] = self.initial_accumulator_value
        return config
