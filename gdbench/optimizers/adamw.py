"""AdamW: Adam with decoupled weight decay."""

from __future__ import annotations

from typing import Any

import keras

from gdbench import _validate
from gdbench.optimizers._base import RuleOptimizer
from gdbench.optimizers.adam import adam_update


def adamw_update(
    param: Any, grad: Any, slots: tuple[Any, Any], *, step: Any, learning_rate: Any,
    beta_1: Any, beta_2: Any, epsilon: Any, weight_decay: Any,
) -> tuple[Any, tuple[Any, Any]]:
    """One AdamW step: Adam's step, then w ← w − η λ w_old. ``slots`` are (m, v)."""
    new_param, slots = adam_update(
        param, grad, slots, step=step, learning_rate=learning_rate,
        beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
    )
    return new_param - learning_rate * weight_decay * param, slots


@keras.saving.register_keras_serializable(package="gdbench")
class AdamW(RuleOptimizer):
    """AdamW: Adam with decoupled weight decay.

        m_t, v_t, m̂_t, v̂_t as in Adam
        w_{t+1} = w_t − η m̂_t / (√v̂_t + ε) − η λ w_t

    The decay shrinks the weights directly instead of adding λ w to the
    gradient, so it does not pass through Adam's per-coordinate scaling.

    | symbol | keyword         | default |
    |--------|-----------------|---------|
    | η      | `learning_rate` | 0.001   |
    | β1     | `beta_1`        | 0.9     |
    | β2     | `beta_2`        | 0.999   |
    | ε      | `epsilon`       | 1e-8    |
    | λ      | `weight_decay`  | 0.01    |

    Variables named in `exclude_from_weight_decay(var_list=..., var_names=...)`
    take Adam's step without decay.

    Variant: Adam's step is gdbench's `Adam` (bias-corrected, ε outside the
    root), and the decay is multiplied by the full η, so it follows a
    learning-rate schedule; the paper multiplies λ by the schedule factor only
    (λ here is λ_paper/α). This matches PyTorch's `AdamW`.
    `keras.optimizers.AdamW` decays by η λ w_t before a Keras `Adam` step,
    which gives the same decay term but Keras's ε placement (ε added to the
    uncorrected √v, default 1e-7), and defaults to λ = 0.004.

    References:
        Loshchilov and Hutter, "Decoupled Weight Decay Regularization",
        ICLR 2019.

    Args:
        learning_rate: η, a float > 0 or a `LearningRateSchedule`.
        beta_1: β1, decay of the first moment, 0 ≤ β1 < 1.
        beta_2: β2, decay of the second moment, 0 ≤ β2 < 1.
        epsilon: ε > 0, added to the denominator.
        weight_decay: λ ≥ 0, the decay rate per unit of η.
        name: the optimizer's name.
        **kwargs: the Keras base keywords (`clipnorm`, `clipvalue`, ...).
    """

    rule = staticmethod(adamw_update)
    slot_names = ("m", "v")
    hyperparameter_names = ("beta_1", "beta_2", "epsilon", "weight_decay")
    decouples_weight_decay = True

    def __init__(
        self,
        learning_rate: Any = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        weight_decay: float = 0.01,
        name: str = "adamw",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            learning_rate=learning_rate,
            name=name,
            weight_decay=_validate.non_negative("weight_decay", weight_decay),
            **kwargs,
        )
        self.beta_1 = _validate.decay_rate("beta_1", beta_1)
        self.beta_2 = _validate.decay_rate("beta_2", beta_2)
        self.epsilon = _validate.positive("epsilon", epsilon)

    def rule_hyperparameters(self, variable: Any) -> dict[str, Any]:
        hyperparameters = super().rule_hyperparameters(variable)
        if not self._use_weight_decay(variable):
            hyperparameters["weight_decay"] = 0.0
        return hyperparameters

    def _apply_weight_decay(self, variables: list[Any]) -> None:
        """Does nothing: the rule decays, and Keras's base must not decay again."""
