"""Reference learning-rate schedules, written from the formulas of DESIGN.md.

Plain Python on one integer step at a time (``math``, integer floor division
and remainders where the formula floors), independent of gdbench and of
TensorFlow: the tests compare gdbench's tensor code with these. ``evaluate``
maps a reference over an array of steps.
"""

from __future__ import annotations

import bisect
import math
from typing import Any, Callable, Sequence

import numpy as np

Reference = Callable[..., float]


def constant(step: int, *, learning_rate: float) -> float:
    return learning_rate


def step_decay(step: int, *, initial_learning_rate: float, drop: float, steps_per_drop: int) -> float:
    return initial_learning_rate * drop ** (step // steps_per_drop)


def exponential(
    step: int, *, initial_learning_rate: float, decay_rate: float, decay_steps: float,
    staircase: bool = False,
) -> float:
    exponent = math.floor(step / decay_steps) if staircase else step / decay_steps
    return initial_learning_rate * decay_rate ** exponent


def inverse_time(
    step: int, *, initial_learning_rate: float, decay_rate: float, decay_steps: float,
    staircase: bool = False,
) -> float:
    ratio = math.floor(step / decay_steps) if staircase else step / decay_steps
    return initial_learning_rate / (1 + decay_rate * ratio)


def inverse_sqrt(step: int, *, initial_learning_rate: float, decay_steps: float) -> float:
    return initial_learning_rate / math.sqrt(1 + step / decay_steps)


def polynomial(
    step: int, *, initial_learning_rate: float, decay_steps: float,
    end_learning_rate: float = 0.0001, power: float = 1.0, cycle: bool = False,
) -> float:
    """Keras's documented `PolynomialDecay`."""
    if cycle:
        # The first multiple of decay_steps at or above the step; at step 0, decay_steps.
        multiple = 1 if step == 0 else math.ceil(step / decay_steps)
        decay_steps = decay_steps * multiple
    else:
        step = min(step, decay_steps)
    return (initial_learning_rate - end_learning_rate) * (1 - step / decay_steps) ** power + end_learning_rate


def piecewise_constant(step: int, *, boundaries: Sequence[float], values: Sequence[float]) -> float:
    """Keras's documented `PiecewiseConstantDecay`: values[i] for b[i−1] < step ≤ b[i]."""
    return values[bisect.bisect_left(boundaries, step)]


def cyclical(
    step: int, *, initial_learning_rate: float, maximal_learning_rate: float, step_size: int,
    mode: str = "triangular", gamma: float = 1.0,
) -> float:
    """Smith (2017): the triangular policy, and the triangular2 and exp_range variants."""
    cycle = 1 + step // (2 * step_size)
    distance = abs(step / step_size - 2 * cycle + 1)
    scale = {"triangular": 1.0, "triangular2": 1 / 2 ** (cycle - 1), "exp_range": gamma ** step}[mode]
    amplitude = maximal_learning_rate - initial_learning_rate
    return initial_learning_rate + amplitude * max(0.0, 1 - distance) * scale


def cosine(step: int, *, initial_learning_rate: float, decay_steps: float, alpha: float = 0.0) -> float:
    """Keras's documented `CosineDecay` without warm-up."""
    step = min(step, decay_steps)
    cosine_decay = 0.5 * (1 + math.cos(math.pi * (step / decay_steps)))
    return initial_learning_rate * ((1 - alpha) * cosine_decay + alpha)


def cosine_restarts(
    step: int, *, maximal_learning_rate: float, minimal_learning_rate: float, period: int
) -> float:
    position = step % (period + 1)
    return minimal_learning_rate + (maximal_learning_rate - minimal_learning_rate) / 2 * (
        1 + math.cos(math.pi * (position / period))
    )


def warmup(
    step: int, *, target: Reference | float, warmup_steps: int, initial_learning_rate: float = 0.0
) -> float:
    """``target`` is a reference of one step or a constant rate."""
    def target_at(at: int) -> float:
        return target(at) if callable(target) else target

    if step >= warmup_steps:
        return target_at(step)
    return initial_learning_rate + (target_at(warmup_steps) - initial_learning_rate) * (step / warmup_steps)


REFERENCES: dict[str, Reference] = {
    "constant": constant,
    "step_decay": step_decay,
    "exponential": exponential,
    "inverse_time": inverse_time,
    "inverse_sqrt": inverse_sqrt,
    "polynomial": polynomial,
    "piecewise_constant": piecewise_constant,
    "cyclical": cyclical,
    "cosine": cosine,
    "cosine_restarts": cosine_restarts,
    "warmup": warmup,
}


def evaluate(reference: Reference, steps: Sequence[int], **keywords: Any) -> np.ndarray:
    """The reference at every step, as a float64 array."""
    return np.array([reference(int(step), **keywords) for step in steps], dtype=np.float64)
