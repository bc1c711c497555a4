"""Nadam: Adam with Nesterov momentum."""

from __future__ import annotations

from typing import Any

import keras

from gdbench import _validate
from gdbench.optimizers._base import RuleOptimizer
from gdbench.optimizers._moments import moving_average
from gdbench.optimizers.adam import adam_direction, adam_moments


def nadam_update(
    param: Any, grad: Any, slots: tuple[Any, Any], *, step: Any, learning_rate: Any,
    beta_1: Any, beta_2: Any, epsilon: Any,
) -> tuple[Any, tuple[Any, Any]]:
    """One Nadam step; ``slots`` are (m, v) as in Adam."""
    m, v = adam_moments(grad, *slots, beta_1=beta_1, beta_2=beta_2)
    # β1 m̂ + (1−β1) g/(1−β1ᵗ) is the bias correction of the momentum applied
    # once more to the current gradient: the Nesterov look-ahead.
    look_ahead = moving_average(m, grad, decay=beta_1)
    direction = adam_direction(
        look_ahead, v, step=step, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon
    )
    return param - learning_rate * direction, (m, v)


@keras.saving.register_keras_serializable(package="gdbench")
class Nadam(RuleOptimizer):
    """Nadam: Nesterov-accelerated adaptive moment estimation.

        m_t = β1 m_{t−1} + (1 − β1) g_t
        v_t = β2 v_{t−1} + (1 − β2) g_t²
        m̂_t = m_t / (1 − β1ᵗ) ,  v̂_t = v_t / (1 − β2ᵗ)
        w_{t+1} = w_t − η / (√v̂_t + ε) · (β1 m̂_t + (1 − β1) g_t / (1 − β1ᵗ))

    | symbol | keyword         | default |
    |--------|-----------------|---------|
    | η      | `learning_rate` | 0.001   |
    | β1     | `beta_1`        | 0.9     |
    | β2     | `beta_2`        | 0.999   |
    | ε      | `epsilon`       | 1e-8    |

    Variant: the simplified Nadam with a constant β1, as written in Ruder's
    overview: both the momentum term and the gradient term are corrected by
    1 − β1ᵗ, and ε is added to √v̂ (outside the root), as in Adam.
    `keras.optimizers.Nadam` (and PyTorch's `NAdam`) follow Dozat's full
    algorithm instead: a warming momentum schedule μ_t = β1 (1 − ½·0.96ᵗ)
    (0.96^(0.004 t) in PyTorch), the momentum term corrected by
    1 − ∏_{i≤t+1} μ_i and the gradient term by 1 − ∏_{i≤t} μ_i; Keras's
    default ε is 1e-7.

    References:
        Dozat, "Incorporating Nesterov Momentum into Adam", ICLR 2016 Workshop.
        Ruder, "An overview of gradient descent optimization algorithms",
        arXiv:1609.04747, 2016.

    Args:
        learning_rate: η, a float > 0 or a `LearningRateSchedule`.
        beta_1: β1, decay of the first moment, 0 ≤ β1 < 1.
        beta_2: β2, decay of the second moment, 0 ≤ β2 < 1.
        epsilon: ε > 0, added to the denominator.
        name: the optimizer's name.
        **kwargs: the Keras base keywords (`clipnorm`, `clipvalue`, ...).
    """

    rule = staticmethod(nadam_update)
    slot_names = ("m", "v")
    hyperparameter_names = ("beta_1", "beta_2", "epsilon")

    def __init__(
        self,
        learning_rate: Any = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        name: str = "nadam",
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1 = _validate.decay_rate("beta_1", beta_1)
        self.beta_2 = _validate.decay_rate("beta_2", beta_2)
        self.epsilon = _validate.positive("epsilon", epsilon)
