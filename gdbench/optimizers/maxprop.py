"""MaxProp: RMSProp with the infinity norm in place of the mean square."""

from __future__ import annotations

from typing import Any

import keras

from gdbench import _validate
from gdbench.optimizers._base import RuleOptimizer
from gdbench.optimizers._moments import moving_max


def maxprop_update(
    param: Any, grad: Any, slots: tuple[Any], *, step: Any, learning_rate: Any,
    rho: Any, epsilon: Any,
) -> tuple[Any, tuple[Any]]:
    """One MaxProp step: v ← max(ρ v, |g|) ; w ← w − η g/(v + ε). ``slots`` are (v,)."""
    del step
    (maximum,) = slots
    maximum = moving_max(maximum, grad, decay=rho)
    return param - learning_rate * grad / (maximum + epsilon), (maximum,)


@keras.saving.register_keras_serializable(package="gdbench")
class MaxProp(RuleOptimizer):
    """MaxProp: the gradient divided by an exponentially weighted max of |g|.

        v_t = max(ρ v_{t−1}, |g_t|)
        w_{t+1} = w_t − η g_t / (v_t + ε)

    RMSProp's mean square (an L² average) becomes an L∞ one, as Adamax does for
    Adam; equivalently, Adamax without momentum. Each step is at most η per
    coordinate, and exactly η when the gradient keeps its magnitude.

    | symbol | keyword         | default |
    |--------|-----------------|---------|
    | η      | `learning_rate` | 0.001   |
    | ρ      | `rho`           | 0.999   |
    | ε      | `epsilon`       | 1e-8    |

    Variant: no root and no bias correction (a max of zero-started terms is
    not biased towards zero); ε is added to v. Neither Keras nor PyTorch has a
    built-in MaxProp.

    References:
        Kingma and Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015,
        Section 7.1 (the weighted infinity norm).
        Tieleman and Hinton, "Lecture 6.5 — RMSProp", COURSERA: Neural
        Networks for Machine Learning, 2012.

    Args:
        learning_rate: η, a float > 0 or a `LearningRateSchedule`.
        rho: ρ, decay of the running max, 0 ≤ ρ < 1.
        epsilon: ε > 0, added to the denominator.
        name: the optimizer's name.
        **kwargs: the Keras base keywords (`clipnorm`, `clipvalue`, ...).
    """

    rule = staticmethod(maxprop_update)
    slot_names = ("v",)
    hyperparameter_names = ("rho", "epsilon")

    def __init__(
        self,
        learning_rate: Any = 0.001,
        rho: float = 0.999,
        epsilon: float = 1e-8,
        name: str = "maxprop",
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.rho = _validate.decay_rate("rho", rho)
        self.epsilon = _validate.positive("epsilon", epsilon)
