"""Adamax: Adam with the infinity norm in place of the second moment."""

from __future__ import annotations

from typing import Any

import keras

from gdbench import _validate
from gdbench.optimizers._base import RuleOptimizer
from gdbench.optimizers._moments import debiasing_factor, moving_average, moving_max


def adamax_update(
    param: Any, grad: Any, slots: tuple[Any, Any], *, step: Any, learning_rate: Any,
    beta_1: Any, beta_2: Any, epsilon: Any,
) -> tuple[Any, tuple[Any, Any]]:
    """One Adamax step; ``slots`` are (m, v), v the weighted infinity norm."""
    m, v = slots
    m = moving_average(m, grad, decay=beta_1)
    v = moving_max(v, grad, decay=beta_2)
    # η m̂/(v + ε) with m̂ = m/(1 − β1ᵗ), the correction folded into the scalar η.
    step_size = learning_rate / debiasing_factor(decay=beta_1, step=step)
    return param - step_size * m / (v + epsilon), (m, v)


@keras.saving.register_keras_serializable(package="gdbench")
class Adamax(RuleOptimizer):
    """Adamax: Adam whose second moment is an exponentially weighted max.

        m_t = β1 m_{t−1} + (1 − β1) g_t
        v_t = max(β2 v_{t−1}, |g_t|)
        m̂_t = m_t / (1 − β1ᵗ)
        w_{t+1} = w_t − η m̂_t / (v_t + ε)

    v needs no bias correction: a max of zero-started terms is not biased
    towards zero.

    | symbol | keyword         | default |
    |--------|-----------------|---------|
    | η      | `learning_rate` | 0.002   |
    | β1     | `beta_1`        | 0.9     |
    | β2     | `beta_2`        | 0.999   |
    | ε      | `epsilon`       | 1e-8    |

    Variant: only m is bias-corrected, and ε is added to v (there is no root);
    the paper's Algorithm 2 has no ε. This is exactly
    `keras.optimizers.Adamax`, whose defaults differ (η = 0.001, ε = 1e-7).
    PyTorch's `Adamax` puts ε inside the max, v_t = max(β2 v_{t−1}, |g_t| + ε).

    References:
        Kingma and Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015,
        Section 7.1.

    Args:
        learning_rate: η, a float > 0 or a `LearningRateSchedule`.
        beta_1: β1, decay of the first moment, 0 ≤ β1 < 1.
        beta_2: β2, decay of the infinity norm, 0 ≤ β2 < 1.
        epsilon: ε > 0, added to the denominator.
        name: the optimizer's name.
        **kwargs: the Keras base keywords (`clipnorm`, `clipvalue`, ...).
    """

    rule = staticmethod(adamax_update)
    slot_names = ("m", "v")
    hyperparameter_names = ("beta_1", "beta_2", "epsilon")

    def __init__(
        self,
        learning_rate: Any = 0.002,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        name: str = "adamax",
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1 = _validate.decay_rate("beta_1", beta_1)
        self.beta_2 = _validate.decay_rate("beta_2", beta_2)
        self.epsilon = _validate.positive("epsilon", epsilon)
