"""Periodic schedules: cyclical learning rates and cosine annealing with restarts.

Both rise back to a maximal rate at regular intervals instead of decaying for
good, and both take a minimal and a maximal rate instead of one start rate,
which sets them apart from the decays of :mod:`gdbench.schedules.decay`.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from gdbench import _precision, _validate
from gdbench.schedules._base import RateSchedule, completed_periods, cosine

#: The amplitude policies of Smith (2017), in the paper's order.
CYCLICAL_MODES = ("triangular", "triangular2", "exp_range")


def cyclical_rate(
    step: Any, *, initial_learning_rate: Any, maximal_learning_rate: Any, step_size: Any,
    mode: str = "triangular", gamma: Any = 1.0,
) -> Any:
    """Smith's cyclical learning rate (CLR).

        c = ⌊1 + step / (2 s)⌋ ;  x = |step / s − 2c + 1|
        η = η_base + (η_max − η_base) · max(0, 1 − x) · scale

    with scale = 1 (``triangular``), 1 / 2^(c−1) (``triangular2``) or γ^step
    (``exp_range``).

    Args:
        step: the 0-based step, a float tensor.
        initial_learning_rate: η_base, the bottom of every cycle.
        maximal_learning_rate: η_max, the top of the first cycle.
        step_size: s, the steps of a half cycle (rise or fall).
        mode: one of ``CYCLICAL_MODES``, a Python string.
        gamma: γ, used by ``exp_range`` only.
    """
    cycle = 1.0 + completed_periods(step, 2.0 * step_size)
    distance = ops.abs(step / step_size - 2.0 * cycle + 1.0)
    if mode == "triangular":
        scale = 1.0
    elif mode == "triangular2":
        scale = 1.0 / _precision.power(2.0, cycle - 1.0)
    elif mode == "exp_range":
        scale = _precision.power(gamma, step)
    else:
        raise ValueError(f"mode: expected one of {', '.join(CYCLICAL_MODES)}, got {mode!r}")
    amplitude = (maximal_learning_rate - initial_learning_rate) * _precision.maximum(0.0, 1.0 - distance)
    return initial_learning_rate + amplitude * scale


def cosine_restarts_rate(
    step: Any, *, maximal_learning_rate: Any, minimal_learning_rate: Any, period: Any
) -> Any:
    """Cosine annealing with warm restarts (SGDR), every T + 1 steps.

        η = η_min + (η_max − η_min)/2 · (1 + cos(π · (step mod (T + 1)) / T))

    Args:
        step: the 0-based step, a float tensor.
        maximal_learning_rate: η_max, the rate at each restart.
        minimal_learning_rate: η_min, the rate at the end of each period.
        period: T, the steps from a restart to η_min.
    """
    position = _precision.mod(step, period + 1.0) / period
    half_range = (maximal_learning_rate - minimal_learning_rate) / 2.0
    return minimal_learning_rate + half_range * (1.0 + cosine(math.pi * position))


@keras.saving.register_keras_serializable(package="gdbench")
class CyclicalLearningRate(RateSchedule):
    """Cyclical learning rate: η goes up and down linearly between two bounds.

        c = ⌊1 + step / (2 s)⌋                      (the cycle, from 1)
        x = |step / s − 2c + 1|                      (distance to the peak, 0..1)
        η(step) = η_base + (η_max − η_base) · max(0, 1 − x) · scale(c, step)

    | mode          | scale(c, step) | the peaks                  |
    |---------------|----------------|----------------------------|
    | `triangular`  | 1              | all η_max                  |
    | `triangular2` | 1 / 2^(c−1)    | halved every cycle         |
    | `exp_range`   | γ^step         | shrink by γ at every step  |

    `step` is the optimizer's 0-based iteration count: η(0) = η_base, the
    first peak η_max is at step = s and a cycle lasts 2 s steps.

    | symbol | keyword                 | default      |
    |--------|-------------------------|--------------|
    | η_base | `initial_learning_rate` | required     |
    | η_max  | `maximal_learning_rate` | required     |
    | s      | `step_size`             | required     |
    |        | `mode`                  | "triangular" |
    | γ      | `gamma`                 | 1.0          |

    References:
        Smith, "Cyclical Learning Rates for Training Neural Networks",
        WACV 2017 (the formula and the three modes).

    Args:
        initial_learning_rate: η_base > 0, the bottom of every cycle.
        maximal_learning_rate: η_max ≥ η_base, the top of the first cycle.
        step_size: s, a whole number of steps ≥ 1 per half cycle (the paper
            advises 2 to 10 epochs' worth).
        mode: ``"triangular"``, ``"triangular2"`` or ``"exp_range"``.
        gamma: γ in (0, 1], for ``exp_range`` only; any other mode refuses a
            γ other than 1.0 rather than ignore it.
    """

    rate_function = staticmethod(cyclical_rate)

    def __init__(
        self, initial_learning_rate: float, maximal_learning_rate: float, step_size: int,
        mode: str = "triangular", gamma: float = 1.0,
    ) -> None:
        self.initial_learning_rate = _validate.positive("initial_learning_rate", initial_learning_rate)
        self.maximal_learning_rate = _validate.positive("maximal_learning_rate", maximal_learning_rate)
        _validate.at_least(
            "maximal_learning_rate", self.maximal_learning_rate,
            other_name="initial_learning_rate", other=self.initial_learning_rate,
        )
        self.step_size = _validate.integer("step_size", step_size, low=1)
        self.mode = _validate.choice("mode", mode, CYCLICAL_MODES)
        self.gamma = _validate.in_interval("gamma", gamma, low=0.0, high=1.0, low_open=True)
        if self.mode != "exp_range" and self.gamma != 1.0:
            raise ValueError(
                f"gamma: used by mode='exp_range' only, got gamma={gamma!r} with mode={mode!r}"
            )


@keras.saving.register_keras_serializable(package="gdbench")
class CosineRestarts(RateSchedule):
    """Cosine annealing with warm restarts (SGDR), with a fixed period.

        η(step) = η_min + (η_max − η_min)/2 · (1 + cos(π · (step mod (T + 1)) / T))

    `step` is the optimizer's 0-based iteration count: η = η_max at step 0,
    η falls along a half cosine to η_min at step T, and restarts at η_max at
    step T + 1. A cycle thus spans T + 1 steps, so that both ends, η_max and
    η_min, are reached.

    | symbol | keyword                 | default  |
    |--------|-------------------------|----------|
    | η_max  | `maximal_learning_rate` | required |
    | η_min  | `minimal_learning_rate` | required |
    | T      | `period`                | required |

    Variant: every period has the same length and height (the paper's
    T_mult = 1, no decay of η_max); Keras's `CosineDecayRestarts` grows the
    period by `t_mul`, shrinks the peak by `m_mul` and restarts after T steps,
    never quite reaching η_min.

    References:
        Loshchilov and Hutter, "SGDR: Stochastic Gradient Descent with Warm
        Restarts", ICLR 2017, eq. (5).

    Args:
        maximal_learning_rate: η_max > 0.
        minimal_learning_rate: η_min with 0 ≤ η_min ≤ η_max.
        period: T, a whole number of steps ≥ 1 from a restart to η_min.
    """

    rate_function = staticmethod(cosine_restarts_rate)

    def __init__(
        self, maximal_learning_rate: float, minimal_learning_rate: float, period: int
    ) -> None:
        self.maximal_learning_rate = _validate.positive("maximal_learning_rate", maximal_learning_rate)
        self.minimal_learning_rate = _validate.non_negative(
            "minimal_learning_rate", minimal_learning_rate
        )
        _validate.at_least(
            "maximal_learning_rate", self.maximal_learning_rate,
            other_name="minimal_learning_rate", other=self.minimal_learning_rate,
        )
        self.period = _validate.integer("period", period, low=1)
