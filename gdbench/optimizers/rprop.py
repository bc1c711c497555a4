"""Rprop: resilient backpropagation, steps driven by the gradient's sign only."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from gdbench import _precision, _validate
from gdbench.optimizers._base import RuleOptimizer


def rprop_update(
    param: Any, grad: Any, slots: tuple[Any, Any], *, step: Any, learning_rate: Any,
    eta_minus: Any, eta_plus: Any, min_step: Any, max_step: Any,
) -> tuple[Any, tuple[Any, Any]]:
    """One Rprop step; ``slots`` are (s, g_prev): step sizes and the last gradient."""
    step_size, prev_grad = slots
    # Slots start at zero; η becomes the step size at the first step, so a
    # LearningRateSchedule gives η(0) and the rule needs no per-trial initialiser.
    step_size = ops.where(ops.equal(step, 1), learning_rate, step_size)
    agreement = ops.sign(grad) * ops.sign(prev_grad)
    step_size = ops.where(
        agreement > 0,
        _precision.minimum(step_size * eta_plus, max_step),
        ops.where(agreement < 0, _precision.maximum(step_size * eta_minus, min_step), step_size),
    )
    # After a sign change the step is skipped and forgotten, so that the next
    # step neither grows nor shrinks s again.
    grad = ops.where(agreement < 0, ops.zeros_like(grad), grad)
    return param - ops.sign(grad) * step_size, (step_size, grad)


@keras.saving.register_keras_serializable(package="gdbench")
class Rprop(RuleOptimizer):
    """Rprop: a per-coordinate step size that grows while the gradient keeps its sign.

    Per coordinate, with s_0 = η and g_0 = 0:

        s_t = min(η₊ s_{t−1}, s_max)             if g_t g_{t−1} > 0
        s_t = max(η₋ s_{t−1}, s_min), g_t ← 0    if g_t g_{t−1} < 0
        s_t = s_{t−1}                            otherwise
        w_{t+1} = w_t − sign(g_t) s_t

    Only the gradient's sign is used, so Rprop suits full-batch training;
    mini-batch noise flips signs and shrinks the steps.

    | symbol | keyword         | default |
    |--------|-----------------|---------|
    | η      | `learning_rate` | 0.01    |
    | η₋     | `eta_minus`     | 0.5     |
    | η₊     | `eta_plus`      | 1.2     |
    | s_min  | `min_step`      | 1e-6    |
    | s_max  | `max_step`      | 50.0    |

    η is the initial step size only: it is read at the first step, so with a
    `LearningRateSchedule` the initial step is η(0) and later values of the
    schedule are ignored.

    Variant: iRprop⁻ (no weight backtracking; after a sign change the
    coordinate does not move and its gradient is forgotten), as PyTorch's
    `Rprop`; PyTorch also clips every step size, η included, to
    [s_min, s_max], while here only growth and shrinking are clipped, so an η
    outside that range is used as given at the first step. Keras has no
    built-in Rprop.

    References:
        Riedmiller and Braun, "A direct adaptive method for faster
        backpropagation learning: the RPROP algorithm", IEEE ICNN 1993.
        Igel and Hüsken, "Improving the Rprop Learning Algorithm", NC 2000.

    Args:
        learning_rate: η, the initial step size: a float > 0 or a
            `LearningRateSchedule` (only η(0) is used).
        eta_minus: η₋, step shrink factor on a sign change, 0 < η₋ < 1.
        eta_plus: η₊, step growth factor while the sign holds, η₊ > 1.
        min_step: s_min > 0, the smallest step size.
        max_step: s_max ≥ s_min, the largest step size.
        name: the optimizer's name.
        **kwargs: the Keras base keywords (`clipnorm`, `clipvalue`, ...).
    """

    rule = staticmethod(rprop_update)
    slot_names = ("step_size", "prev_grad")
    hyperparameter_names = ("eta_minus", "eta_plus", "min_step", "max_step")

    def __init__(
        self,
        learning_rate: Any = 0.01,
        eta_minus: float = 0.5,
        eta_plus: float = 1.2,
        min_step: float = 1e-6,
        max_step: float = 50.0,
        name: str = "rprop",
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.eta_minus = _validate.open_interval("eta_minus", eta_minus, 0.0, 1.0)
        self.eta_plus = _validate.greater_than("eta_plus", eta_plus, 1.0)
        self.min_step = _validate.positive("min_step", min_step)
        self.max_step = _validate.number("max_step", max_step)
        if self.max_step < self.min_step:
            raise ValueError(
                f"max_step: must be >= min_step ({min_step!r}), got {max_step!r}"
            )
