"""Decaying schedules: η falls from η₀ as a function of step / decay_steps.

Step decay, exponential, inverse-time, inverse-square-root, polynomial and
cosine decay share that shape (a start rate and a step scale), so they live
together; the cyclic ones and the warm-up, which are built differently, have
their own modules.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from gdbench import _precision, _validate
from gdbench.schedules._base import (
    RateSchedule,
    completed_periods,
    cosine,
    started_periods,
)


def _progress(step: Any, decay_steps: Any, staircase: bool) -> Any:
    """step / decay_steps, floored when ``staircase``."""
    return completed_periods(step, decay_steps) if staircase else step / decay_steps


def step_decay_rate(
    step: Any, *, initial_learning_rate: Any, drop: Any, steps_per_drop: Any
) -> Any:
    """η(step) = η₀ · drop^⌊step / steps_per_drop⌋."""
    return initial_learning_rate * _precision.power(drop, completed_periods(step, steps_per_drop))


def exponential_rate(
    step: Any, *, initial_learning_rate: Any, decay_rate: Any, decay_steps: Any,
    staircase: bool = False,
) -> Any:
    """η(step) = η₀ · r^(step / D), the exponent floored when ``staircase``.

    r = ``decay_rate``, D = ``decay_steps``.
    """
    return initial_learning_rate * _precision.power(decay_rate, _progress(step, decay_steps, staircase))


def inverse_time_rate(
    step: Any, *, initial_learning_rate: Any, decay_rate: Any, decay_steps: Any,
    staircase: bool = False,
) -> Any:
    """η(step) = η₀ / (1 + r · step / D), step / D floored when ``staircase``.

    r = ``decay_rate``, D = ``decay_steps``.
    """
    return initial_learning_rate / (1.0 + decay_rate * _progress(step, decay_steps, staircase))


def inverse_sqrt_rate(step: Any, *, initial_learning_rate: Any, decay_steps: Any) -> Any:
    """η(step) = η₀ / √(1 + step / decay_steps)."""
    return initial_learning_rate / ops.sqrt(1.0 + step / decay_steps)


def polynomial_rate(
    step: Any, *, initial_learning_rate: Any, decay_steps: Any, end_learning_rate: Any = 0.0001,
    power: Any = 1.0, cycle: bool = False,
) -> Any:
    """η(step) = (η₀ − η_end) · (1 − s/D)^p + η_end, as Keras's `PolynomialDecay`.

    Without ``cycle``, s = min(step, D) and D = decay_steps; with it, s = step
    and D = decay_steps · max(1, ⌈step / decay_steps⌉), the first multiple of
    decay_steps not below the step (Keras writes the max as a test of step = 0;
    both agree on steps ≥ 0).
    """
    if cycle:
        decay_steps = decay_steps * _precision.maximum(started_periods(step, decay_steps), 1.0)
    else:
        step = _precision.minimum(step, decay_steps)
    remaining = 1.0 - step / decay_steps
    decayed = (initial_learning_rate - end_learning_rate) * _precision.power(remaining, power)
    return decayed + end_learning_rate


def cosine_rate(step: Any, *, initial_learning_rate: Any, decay_steps: Any, alpha: Any = 0.0) -> Any:
    """η(step) = η₀ · ((1 − α) · ½(1 + cos(π · min(step, D)/D)) + α), D = decay_steps.

    Keras's `CosineDecay` without warm-up, in the same order of operations.
    """
    progress = _precision.minimum(step, decay_steps) / decay_steps
    half_cosine = 0.5 * (1.0 + cosine(math.pi * progress))
    return initial_learning_rate * ((1.0 - alpha) * half_cosine + alpha)


@keras.saving.register_keras_serializable(package="gdbench")
class StepDecay(RateSchedule):
    """Step decay: η is multiplied by ``drop`` every ``steps_per_drop`` steps.

        η(step) = η₀ · drop^⌊step / steps_per_drop⌋

    `step` is the optimizer's 0-based iteration count: the first drop applies
    at step = steps_per_drop, i.e. to the (steps_per_drop + 1)-th update.

    | symbol | keyword                 | default  |
    |--------|-------------------------|----------|
    | η₀     | `initial_learning_rate` | required |
    | d      | `drop`                  | required |
    | k      | `steps_per_drop`        | required |

    References:
        Krizhevsky, Sutskever and Hinton, "ImageNet Classification with Deep
        Convolutional Neural Networks", NeurIPS 2012 (η divided by 10 by steps).

    Args:
        initial_learning_rate: η₀ > 0.
        drop: d, the factor applied at each drop, 0 < d ≤ 1.
        steps_per_drop: k, a whole number of steps ≥ 1.
    """

    rate_function = staticmethod(step_decay_rate)

    def __init__(self, initial_learning_rate: float, drop: float, steps_per_drop: int) -> None:
        self.initial_learning_rate = _validate.positive("initial_learning_rate", initial_learning_rate)
        self.drop = _validate.in_interval("drop", drop, low=0.0, high=1.0, low_open=True)
        self.steps_per_drop = _validate.integer("steps_per_drop", steps_per_drop, low=1)


@keras.saving.register_keras_serializable(package="gdbench")
class ExponentialDecay(RateSchedule):
    """Exponential decay: η shrinks by ``decay_rate`` every ``decay_steps`` steps.

        η(step) = η₀ · r^(step / D)        (staircase: r^⌊step / D⌋)

    `step` is the optimizer's 0-based iteration count.

    | symbol | keyword                 | default  |
    |--------|-------------------------|----------|
    | η₀     | `initial_learning_rate` | required |
    | r      | `decay_rate`            | required |
    | D      | `decay_steps`           | required |
    |        | `staircase`             | False    |

    Variant: the same function as `keras.optimizers.schedules.ExponentialDecay`.

    Args:
        initial_learning_rate: η₀ > 0.
        decay_rate: r > 0 (r < 1 decays, r > 1 grows).
        decay_steps: D > 0, the number of steps over which η is multiplied by r.
        staircase: floor step / D, so that η changes only every D steps.
    """

    rate_function = staticmethod(exponential_rate)

    def __init__(
        self, initial_learning_rate: float, decay_rate: float, decay_steps: float,
        staircase: bool = False,
    ) -> None:
        self.initial_learning_rate = _validate.positive("initial_learning_rate", initial_learning_rate)
        self.decay_rate = _validate.positive("decay_rate", decay_rate)
        self.decay_steps = _validate.positive("decay_steps", decay_steps)
        self.staircase = _validate.flag("staircase", staircase)


@keras.saving.register_keras_serializable(package="gdbench")
class InverseTimeDecay(RateSchedule):
    """Inverse-time decay: η ∝ 1 / (1 + r t), the classic 1/t schedule of SGD.

        η(step) = η₀ / (1 + r · step / D)        (staircase: ⌊step / D⌋)

    `step` is the optimizer's 0-based iteration count.

    | symbol | keyword                 | default  |
    |--------|-------------------------|----------|
    | η₀     | `initial_learning_rate` | required |
    | r      | `decay_rate`            | required |
    | D      | `decay_steps`           | required |
    |        | `staircase`             | False    |

    Variant: the same function as `keras.optimizers.schedules.InverseTimeDecay`.

    References:
        Robbins and Monro, "A Stochastic Approximation Method", 1951
        (Σ η = ∞, Σ η² < ∞, which 1/t satisfies).

    Args:
        initial_learning_rate: η₀ > 0.
        decay_rate: r > 0.
        decay_steps: D > 0.
        staircase: floor step / D, so that η changes only every D steps.
    """

    rate_function = staticmethod(inverse_time_rate)

    def __init__(
        self, initial_learning_rate: float, decay_rate: float, decay_steps: float,
        staircase: bool = False,
    ) -> None:
        self.initial_learning_rate = _validate.positive("initial_learning_rate", initial_learning_rate)
        self.decay_rate = _validate.positive("decay_rate", decay_rate)
        self.decay_steps = _validate.positive("decay_steps", decay_steps)
        self.staircase = _validate.flag("staircase", staircase)


@keras.saving.register_keras_serializable(package="gdbench")
class InverseSqrtDecay(RateSchedule):
    """Inverse-square-root decay: η ∝ 1/√t for large t.

        η(step) = η₀ / √(1 + step / D)

    `step` is the optimizer's 0-based iteration count; η(0) = η₀.

    | symbol | keyword                 | default  |
    |--------|-------------------------|----------|
    | η₀     | `initial_learning_rate` | required |
    | D      | `decay_steps`           | required |

    References:
        Vaswani et al., "Attention Is All You Need", NeurIPS 2017 (the 1/√t
        decay after warm-up); Zinkevich, "Online Convex Programming and
        Generalized Infinitesimal Gradient Ascent", ICML 2003 (η ∝ 1/√t).

    Args:
        initial_learning_rate: η₀ > 0.
        decay_steps: D > 0; η has fallen to η₀/√2 at step = D.
    """

    rate_function = staticmethod(inverse_sqrt_rate)

    def __init__(self, initial_learning_rate: float, decay_steps: float) -> None:
        self.initial_learning_rate = _validate.positive("initial_learning_rate", initial_learning_rate)
        self.decay_steps = _validate.positive("decay_steps", decay_steps)


@keras.saving.register_keras_serializable(package="gdbench")
class PolynomialDecay(RateSchedule):
    """Polynomial decay from η₀ to η_end over D steps, as Keras's `PolynomialDecay`.

        η(step) = (η₀ − η_end) · (1 − min(step, D)/D)^p + η_end

    With ``cycle``, D is replaced by the first multiple of D not below the step
    (D itself at step 0), so η climbs back and decays again, ever more slowly.
    `step` is the optimizer's 0-based iteration count.

    | symbol | keyword                 | default  |
    |--------|-------------------------|----------|
    | η₀     | `initial_learning_rate` | required |
    | D      | `decay_steps`           | required |
    | η_end  | `end_learning_rate`     | 0.0001   |
    | p      | `power`                 | 1.0      |
    |        | `cycle`                 | False    |

    Variant: the same function as `keras.optimizers.schedules.PolynomialDecay`,
    with its defaults (p = 1 is linear decay).

    Args:
        initial_learning_rate: η₀ > 0.
        decay_steps: D > 0.
        end_learning_rate: η_end ≥ 0, the rate reached at step D.
        power: p > 0.
        cycle: restart the decay at every multiple of D.
    """

    rate_function = staticmethod(polynomial_rate)

    def __init__(
        self, initial_learning_rate: float, decay_steps: float, end_learning_rate: float = 0.0001,
        power: float = 1.0, cycle: bool = False,
    ) -> None:
        self.initial_learning_rate = _validate.positive("initial_learning_rate", initial_learning_rate)
        self.decay_steps = _validate.positive("decay_steps", decay_steps)
        self.end_learning_rate = _validate.non_negative("end_learning_rate", end_learning_rate)
        self.power = _validate.positive("power", power)
        self.cycle = _validate.flag("cycle", cycle)


@keras.saving.register_keras_serializable(package="gdbench")
class CosineDecay(RateSchedule):
    """Cosine decay from η₀ to α η₀ over D steps, then constant.

        η(step) = η₀ · ((1 − α) · ½ (1 + cos(π · min(step, D)/D)) + α)

    `step` is the optimizer's 0-based iteration count: η(0) = η₀ and
    η(step) = α η₀ for step ≥ D.

    | symbol | keyword                 | default  |
    |--------|-------------------------|----------|
    | η₀     | `initial_learning_rate` | required |
    | D      | `decay_steps`           | required |
    | α      | `alpha`                 | 0.0      |

    Variant: the same function as `keras.optimizers.schedules.CosineDecay`
    without its built-in warm-up; for a warm-up, wrap this schedule in
    :class:`~gdbench.schedules.LinearWarmup`.

    References:
        Loshchilov and Hutter, "SGDR: Stochastic Gradient Descent with Warm
        Restarts", ICLR 2017 (one cosine period, no restart).

    Args:
        initial_learning_rate: η₀ > 0.
        decay_steps: D > 0.
        alpha: α, the final rate as a fraction of η₀, 0 ≤ α ≤ 1.
    """

    rate_function = staticmethod(cosine_rate)

    def __init__(self, initial_learning_rate: float, decay_steps: float, alpha: float = 0.0) -> None:
        self.initial_learning_rate = _validate.positive("initial_learning_rate", initial_learning_rate)
        self.decay_steps = _validate.positive("decay_steps", decay_steps)
        self.alpha = _validate.in_interval("alpha", alpha, low=0.0, high=1.0, low_open=False)
