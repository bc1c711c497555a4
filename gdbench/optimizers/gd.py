"""Plain (vanilla) gradient descent."""

from __future__ import annotations

from typing import Any

import keras

from gdbench.optimizers._base import RuleOptimizer


def gd_update(
    param: Any, grad: Any, slots: tuple[()], *, step: Any, learning_rate: Any
) -> tuple[Any, tuple[()]]:
    """One step of gradient descent: w ← w − η g. Keeps no slots."""
    del step
    return param - learning_rate * grad, slots


@keras.saving.register_keras_serializable(package="gdbench")
class GD(RuleOptimizer):
    """Gradient descent: w_{t+1} = w_t − η g_t.

    | symbol | keyword         | default |
    |--------|-----------------|---------|
    | η      | `learning_rate` | 0.01    |

    Variant: identical to `keras.optimizers.SGD(momentum=0.0)`.

    References:
        Cauchy, "Méthode générale pour la résolution des systèmes d'équations
        simultanées", 1847.

    Args:
        learning_rate: η, a float > 0 or a `LearningRateSchedule`.
        name: the optimizer's name.
        **kwargs: the Keras base keywords (`clipnorm`, `clipvalue`,
            `global_clipnorm`, `use_ema`, `loss_scale_factor`,
            `gradient_accumulation_steps`, ...).
    """

    rule = staticmethod(gd_update)

    def __init__(self, learning_rate: Any = 0.01, name: str = "gd", **kwargs: Any) -> None:
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
