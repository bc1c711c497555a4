"""AMSGrad: Adam with a non-decreasing second moment."""

from __future__ import annotations

from typing import Any

import keras

from gdbench import _precision, _validate
from gdbench.optimizers._base import RuleOptimizer
from gdbench.optimizers.adam import adam_direction, adam_moments


def amsgrad_update(
    param: Any, grad: Any, slots: tuple[Any, Any, Any], *, step: Any, learning_rate: Any,
    beta_1: Any, beta_2: Any, epsilon: Any,
) -> tuple[Any, tuple[Any, Any, Any]]:
    """One AMSGrad step; ``slots`` are (m, v, v̂), v̂ the running max of v."""
    m, v, v_hat = slots
    m, v = adam_moments(grad, m, v, beta_1=beta_1, beta_2=beta_2)
    v_hat = _precision.maximum(v_hat, v)
    direction = adam_direction(
        m, v_hat, step=step, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
        bias_correction=False,
    )
    return param - learning_rate * direction, (m, v, v_hat)


@keras.saving.register_keras_serializable(package="gdbench")
class AMSGrad(RuleOptimizer):
    """AMSGrad: Adam whose per-coordinate step size never grows.

        m_t = β1 m_{t−1} + (1 − β1) g_t
        v_t = β2 v_{t−1} + (1 − β2) g_t²
        v̂_t = max(v̂_{t−1}, v_t)
        w_{t+1} = w_t − η m_t / (√v̂_t + ε)

    | symbol | keyword         | default |
    |--------|-----------------|---------|
    | η      | `learning_rate` | 0.001   |
    | β1     | `beta_1`        | 0.9     |
    | β2     | `beta_2`        | 0.999   |
    | ε      | `epsilon`       | 1e-8    |

    Variant: no bias correction, as in the paper's Algorithm 2 (with a
    constant β1), plus an ε outside the root that the paper does not have;
    the early steps are therefore larger than bias-corrected ones, as with
    Adam's ``bias_correction=False`` (3.2 times at t = 1 with the default
    β's). `keras.optimizers.Adam(amsgrad=True)` (and
    PyTorch's `Adam(amsgrad=True)`) keep Adam's bias correction: Keras folds
    √(1 − β2ᵗ)/(1 − β1ᵗ) into η and adds ε to √v̂ of the uncorrected v,
    PyTorch adds ε to √(v̂/(1 − β2ᵗ)).

    References:
        Reddi, Kale and Kumar, "On the Convergence of Adam and Beyond",
        ICLR 2018.

    Args:
        learning_rate: η, a float > 0 or a `LearningRateSchedule`.
        beta_1: β1, decay of the first moment, 0 ≤ β1 < 1.
        beta_2: β2, decay of the second moment, 0 ≤ β2 < 1.
        epsilon: ε > 0, added to the denominator.
        name: the optimizer's name.
        **kwargs: the Keras base keywords (`clipnorm`, `clipvalue`, ...).
    """

    rule = staticmethod(amsgrad_update)
    slot_names = ("m", "v", "v_hat")
    hyperparameter_names = ("beta_1", "beta_2", "epsilon")

    def __init__(
        self,
        learning_rate: Any = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        name: str = "amsgrad",
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1 = _validate.decay_rate("beta_1", beta_1)
        self.beta_2 = _validate.decay_rate("beta_2", beta_2)
        self.epsilon = _validate.positive("epsilon", epsilon)
