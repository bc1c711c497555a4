"""AdaDelta: step sizes in the units of the parameter."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from gdbench import _validate
from gdbench.optimizers._base import RuleOptimizer
from gdbench.optimizers._moments import moving_average


def adadelta_update(
    param: Any, grad: Any, slots: tuple[Any, Any], *, step: Any, learning_rate: Any,
    rho: Any, epsilon: Any,
) -> tuple[Any, tuple[Any, Any]]:
    """One AdaDelta step; ``slots`` are (v, u): mean squares of g and of Δ."""
    del step
    grad_mean_square, delta_mean_square = slots
    grad_mean_square = moving_average(grad_mean_square, ops.square(grad), decay=rho)
    delta = ops.sqrt(delta_mean_square + epsilon) / ops.sqrt(grad_mean_square + epsilon) * grad
    delta_mean_square = moving_average(delta_mean_square, ops.square(delta), decay=rho)
    return param - learning_rate * delta, (grad_mean_square, delta_mean_square)


@keras.saving.register_keras_serializable(package="gdbench")
class Adadelta(RuleOptimizer):
    """AdaDelta: RMSProp whose numerator is the RMS of the past updates.

        v_t = ρ v_{t−1} + (1 − ρ) g_t²
        Δ_t = √(u_{t−1} + ε) / √(v_t + ε) · g_t
        u_t = ρ u_{t−1} + (1 − ρ) Δ_t²
        w_{t+1} = w_t − η Δ_t

    | symbol | keyword         | default |
    |--------|-----------------|---------|
    | η      | `learning_rate` | 1.0     |
    | ρ      | `rho`           | 0.95    |
    | ε      | `epsilon`       | 1e-6    |

    Variant: ε is added inside both roots, and u accumulates Δ before the
    scaling by η, so η = 1 is the paper's method (which has no η). This is
    exactly `keras.optimizers.Adadelta`, whose defaults differ (η = 0.001,
    ε = 1e-7); PyTorch's `Adadelta` has the same update with ρ = 0.9.

    References:
        Zeiler, "ADADELTA: An Adaptive Learning Rate Method", arXiv:1212.5701,
        2012.

    Args:
        learning_rate: η, a float > 0 or a `LearningRateSchedule`.
        rho: ρ, decay of both mean squares, 0 ≤ ρ < 1.
        epsilon: ε > 0, added under both roots; it also sets the size of the
            first steps, since u starts at zero.
        name: the optimizer's name.
        **kwargs: the Keras base keywords (`clipnorm`, `clipvalue`, ...).
    """

    rule = staticmethod(adadelta_update)
    slot_names = ("v", "u")
    hyperparameter_names = ("rho", "epsilon")

    def __init__(
        self,
        learning_rate: Any = 1.0,
        rho: float = 0.95,
        epsilon: float = 1e-6,
        name: str = "adadelta",
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.rho = _validate.decay_rate("rho", rho)
        self.epsilon = _validate.positive("epsilon", epsilon)
