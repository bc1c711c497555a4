"""RMSProp: gradient divided by a running root mean square."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from gdbench import _validate
from gdbench.optimizers._base import RuleOptimizer
from gdbench.optimizers._moments import moving_average


def rmsprop_update(
    param: Any, grad: Any, slots: tuple[Any], *, step: Any, learning_rate: Any,
    rho: Any, epsilon: Any,
) -> tuple[Any, tuple[Any]]:
    """One RMSProp step: v ← ρ v + (1−ρ) g² ; w ← w − η g / √(v + ε).

    ``slots`` are (v,).
    """
    del step
    (mean_square,) = slots
    mean_square = moving_average(mean_square, ops.square(grad), decay=rho)
    return param - learning_rate * grad / ops.sqrt(mean_square + epsilon), (mean_square,)


@keras.saving.register_keras_serializable(package="gdbench")
class RMSprop(RuleOptimizer):
    """RMSProp: root mean square propagation.

        v_t = ρ v_{t−1} + (1 − ρ) g_t²
        w_{t+1} = w_t − η g_t / √(v_t + ε)

    | symbol | keyword         | default |
    |--------|-----------------|---------|
    | η      | `learning_rate` | 0.001   |
    | ρ      | `rho`           | 0.9     |
    | ε      | `epsilon`       | 1e-8    |

    Variant: ε is added inside the root and v is not bias-corrected. This is
    `keras.optimizers.RMSprop(momentum=0.0, centered=False)` (default
    ε = 1e-7 there); the Keras class also offers momentum and a centered
    variant, which this one does not. PyTorch's `RMSprop` adds ε outside the
    root, √v_t + ε, and defaults to ρ = 0.99.

    References:
        Tieleman and Hinton, "Lecture 6.5 — RMSProp: divide the gradient by a
        running average of its recent magnitude", COURSERA: Neural Networks
        for Machine Learning, 2012.

    Args:
        learning_rate: η, a float > 0 or a `LearningRateSchedule`.
        rho: ρ, decay of the mean square, 0 ≤ ρ < 1.
        epsilon: ε > 0, added to the mean square under the root.
        name: the optimizer's name.
        **kwargs: the Keras base keywords (`clipnorm`, `clipvalue`, ...).
    """

    rule = staticmethod(rmsprop_update)
    slot_names = ("v",)
    hyperparameter_names = ("rho", "epsilon")

    def __init__(
        self,
        learning_rate: Any = 0.001,
        rho: float = 0.9,
        epsilon: float = 1e-8,
        name: str = "rmsprop",
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.rho = _validate.decay_rate("rho", rho)
        self.epsilon = _validate.positive("epsilon", epsilon)
