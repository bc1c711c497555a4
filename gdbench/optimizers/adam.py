"""Adam, with or without bias correction (the lectures' "Adam-No-BC")."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from gdbench import _validate
from gdbench.optimizers._base import RuleOptimizer
from gdbench.optimizers._moments import debiasing_factor, moving_average


def adam_moments(grad: Any, m: Any, v: Any, *, beta_1: Any, beta_2: Any) -> tuple[Any, Any]:
    """Adam's moment estimates: m ← β1 m + (1−β1) g ; v ← β2 v + (1−β2) g²."""
    m = moving_average(m, grad, decay=beta_1)
    v = moving_average(v, ops.square(grad), decay=beta_2)
    return m, v


def adam_direction(
    m: Any, v: Any, *, step: Any, beta_1: Any, beta_2: Any, epsilon: Any,
    bias_correction: bool = True,
) -> Any:
    """Adam's step direction m̂/(√v̂ + ε), with m̂, v̂ = m, v when uncorrected."""
    if not bias_correction:
        return m / (ops.sqrt(v) + epsilon)
    # m̂/(√v̂ + ε) = (√c2/c1) · m/(√v + ε√c2) with c = 1 − βᵗ: the corrections
    # then cost scalar work instead of two full-size divisions per step.
    root_c2 = ops.sqrt(debiasing_factor(decay=beta_2, step=step))
    scale = root_c2 / debiasing_factor(decay=beta_1, step=step)
    return scale * m / (ops.sqrt(v) + epsilon * root_c2)


def adam_update(
    param: Any, grad: Any, slots: tuple[Any, Any], *, step: Any, learning_rate: Any,
    beta_1: Any, beta_2: Any, epsilon: Any, bias_correction: bool = True,
) -> tuple[Any, tuple[Any, Any]]:
    """One Adam step on ``param``; ``slots`` are (m, v)."""
    m, v = adam_moments(grad, *slots, beta_1=beta_1, beta_2=beta_2)
    direction = adam_direction(
        m, v, step=step, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
        bias_correction=bias_correction,
    )
    return param - learning_rate * direction, (m, v)


@keras.saving.register_keras_serializable(package="gdbench")
class Adam(RuleOptimizer):
    """Adam: adaptive moment estimation.

        m_t = β1 m_{t−1} + (1 − β1) g_t
        v_t = β2 v_{t−1} + (1 − β2) g_t²
        m̂_t = m_t / (1 − β1ᵗ) ,  v̂_t = v_t / (1 − β2ᵗ)
        w_{t+1} = w_t − η m̂_t / (√v̂_t + ε)

    With ``bias_correction=False`` (the lectures' "Adam-No-BC"), m̂_t = m_t and
    v̂_t = v_t. Both start at zero, but m is pulled towards zero less than √v,
    so the early steps are (1 − β1ᵗ)/√(1 − β2ᵗ) times the corrected ones
    (ε aside): with the default β's, 3.2 at t = 1, up to 6.6 near t = 12, and
    still 1.3 at t = 1000.

    | symbol | keyword           | default |
    |--------|-------------------|---------|
    | η      | `learning_rate`   | 0.001   |
    | β1     | `beta_1`          | 0.9     |
    | β2     | `beta_2`          | 0.999   |
    | ε      | `epsilon`         | 1e-8    |
    |        | `bias_correction` | True    |

    Variant: ε is added to √v̂ (outside the root), after bias correction, as in
    the paper's Algorithm 1 and PyTorch. Keras's built-in `Adam` folds the
    correction into the learning rate, η√(1−β2ᵗ)/(1−β1ᵗ), and adds ε to the
    uncorrected √v: the two agree up to an ε of different scale
    (ε_keras = ε√(1−β2ᵗ)).

    References:
        Kingma and Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015.

    Args:
        learning_rate: η, a float > 0 or a `LearningRateSchedule`.
        beta_1: β1, decay of the first moment, 0 ≤ β1 < 1.
        beta_2: β2, decay of the second moment, 0 ≤ β2 < 1.
        epsilon: ε > 0, added to the denominator.
        bias_correction: divide the moments by 1 − βᵗ.
        name: the optimizer's name.
        **kwargs: the Keras base keywords (`clipnorm`, `clipvalue`, ...).
    """

    rule = staticmethod(adam_update)
    slot_names = ("m", "v")
    hyperparameter_names = ("beta_1", "beta_2", "epsilon", "bias_correction")

    def __init__(
        self,
        learning_rate: Any = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        bias_correction: bool = True,
        name: str = "adam",
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1 = _validate.decay_rate("beta_1", beta_1)
        self.beta_2 = _validate.decay_rate("beta_2", beta_2)
        self.epsilon = _validate.positive("epsilon", epsilon)
        self.bias_correction = _validate.flag("bias_correction", bias_correction)
