"""The Keras shell that every gdbench schedule shares.

A schedule is a pure rate function of the step plus a declaration of its
keywords. :class:`RateSchedule` stores the validated keywords, casts the step to
a float and calls the function; the function never touches the object, so the
vectorized population engine can call it with per-trial tensors of shape
``[K, 1]`` instead of Python floats. Such tensors must have the step's dtype;
Python numbers take it on, so a float64 step gives a float64 rate.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any, Callable, ClassVar

import keras
from keras import ops

from gdbench import _precision

RateFunction = Callable[..., Any]


def float_step(step: Any) -> Any:
    """The step as a float tensor.

    A floating step keeps its dtype (a float32 step gives a float32 rate); an
    integer step, such as the optimizer's ``iterations`` counter, becomes
    float64, so that η is exact for float64 training (the toy tasks). The
    optimizer casts η to each variable's dtype, so float32 and mixed-precision
    models see no change; the extra cost is a few scalar operations per step.
    Under JAX without x64, which has no float64, it becomes float32 (see
    :mod:`gdbench._precision`).

    Args:
        step: the 0-based iteration count, a number, array or tensor.
    """
    step = ops.convert_to_tensor(step)
    if keras.backend.is_float_dtype(step.dtype):
        return step
    return ops.cast(step, _precision.exact_float())


def completed_periods(step: Any, period: Any) -> Any:
    """⌊step / period⌋, exact in the step's dtype on every backend.

    ``ops.floor(step / period)`` is not: under JAX, Keras computes floor and
    ceil in float32 whatever the argument's dtype (its type promotion caps
    floats at 32 bits there), and XLA's float32 division on a CPU is not
    correctly rounded (180/60 gives 3.0000002, whose ceiling is 4). The
    floating-point remainder is exact, so step − remainder is an exact multiple
    of the period, and rounding its quotient recovers the whole number.
    """
    return ops.round((step - _precision.mod(step, period)) / period)


def started_periods(step: Any, period: Any) -> Any:
    """⌈step / period⌉, exact in the step's dtype on every backend (see `completed_periods`)."""
    partial = ops.cast(_precision.mod(step, period) > 0, step.dtype)
    return completed_periods(step, period) + partial


def cosine(angle: Any) -> Any:
    """cos(angle), in the angle's dtype.

    Under JAX, Keras computes the cosine in float32 whatever the angle's dtype
    (its type promotion caps floats at 32 bits there): it is then
    float32-accurate (about 1e-7 relative), and is cast back so that a float64
    step still gives a float64 rate.
    """
    return ops.cast(ops.cos(angle), angle.dtype)


class RateSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Base class of gdbench schedules: a `LearningRateSchedule` around a pure function.

    Subclasses set ``rate_function`` to ``f(step, **keywords)`` and write an
    ``__init__`` whose parameters are exactly those keywords, each validated
    and stored as an attribute of the same name. The config is then those
    attributes, and ``from_config`` is ``cls(**config)``.
    """

    rate_function: ClassVar[RateFunction]

    @classmethod
    def _parameters(cls) -> list[inspect.Parameter]:
        return [
            parameter
            for parameter in inspect.signature(cls.__init__).parameters.values()
            if parameter.kind is parameter.POSITIONAL_OR_KEYWORD and parameter.name != "self"
        ]

    @classmethod
    def keywords(cls) -> list[str]:
        """Every keyword the constructor accepts, in signature order."""
        return [parameter.name for parameter in cls._parameters()]

    @classmethod
    def required_keywords(cls) -> list[str]:
        """The keywords without a default, in signature order."""
        return [
            parameter.name for parameter in cls._parameters()
            if parameter.default is parameter.empty
        ]

    def rate_keywords(self) -> dict[str, Any]:
        """The keywords this schedule passes to its rate function."""
        return {name: getattr(self, name) for name in self.keywords()}

    def __call__(self, step: Any) -> Any:
        return type(self).rate_function(float_step(step), **self.rate_keywords())

    def get_config(self) -> dict[str, Any]:
        return copy.deepcopy(self.rate_keywords())

    def __repr__(self) -> str:
        arguments = ", ".join(f"{name}={value!r}" for name, value in self.rate_keywords().items())
        return f"{type(self).__name__}({arguments})"
