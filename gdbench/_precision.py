"""Float64 where the backend has it, and Keras ops that keep it there.

gdbench keeps a constant η and a schedule's step in float64, so that float64
training (the toy tasks) follows the textbook recursion it documents. TensorFlow
and PyTorch always have float64. JAX has it only with x64 enabled
(``JAX_ENABLE_X64=1``, or ``jax.config.update("jax_enable_x64", True)`` before
any array is made); without it JAX truncates every float64 request to float32
with a warning, so gdbench asks for float32 there instead: η is then Keras's own
float32 variable, a schedule computes in float32, and a float64 model is a
float32 one.

Off TensorFlow, some Keras ops lose float64 even where the backend has it,
Keras's type promotion capping floats at 32 bits there: under PyTorch
``ops.maximum`` and ``ops.minimum``, and a Python float given to any op becomes
a float32 tensor first; under JAX ``ops.floor``, ``ops.ceil`` and ``ops.cos``.
The update rules and rate functions use the replacements below and the
schedules' ``completed_periods``, ``started_periods`` and ``cosine``, which
under TensorFlow give Keras's results bit for bit.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from keras import backend, ops


@functools.cache
def exact_float() -> str:
    """``"float64"`` where the backend holds it, else ``"float32"`` (JAX without x64).

    Read once, at the first optimizer or schedule evaluated: JAX's x64 switch
    is meant to be set before any array exists, and is not read again.
    """
    probe = ops.convert_to_tensor(np.zeros((), np.float64))
    return backend.standardize_dtype(probe.dtype)


def like(value: Any, reference: Any) -> Any:
    """A Python number as a tensor of ``reference``'s dtype; anything else as it is.

    Keras's PyTorch backend turns a Python float given to an op into a float32
    tensor first, so 0.1 would reach a float64 computation as 0.10000000149.
    """
    if isinstance(value, (int, float)) and hasattr(reference, "dtype"):
        return ops.convert_to_tensor(value, backend.standardize_dtype(reference.dtype))
    return value


def maximum(x1: Any, x2: Any) -> Any:
    """max(x1, x2) element-wise, in the inputs' dtype on every backend.

    ``ops.maximum`` is not under PyTorch, where Keras's type promotion makes
    the maximum of two float64 tensors a float32 one.
    """
    x1, x2 = like(x1, x2), like(x2, x1)
    return ops.where(x1 >= x2, x1, x2)


def minimum(x1: Any, x2: Any) -> Any:
    """min(x1, x2) element-wise, in the inputs' dtype on every backend (see `maximum`)."""
    x1, x2 = like(x1, x2), like(x2, x1)
    return ops.where(x1 <= x2, x1, x2)


def power(base: Any, exponent: Any) -> Any:
    """base^exponent, a Python-number base or exponent taken at the other's dtype (see `like`)."""
    return ops.power(like(base, exponent), like(exponent, base))


def mod(x1: Any, x2: Any) -> Any:
    """x1 mod x2, with the divisor's sign, a Python-number operand taken at the other's dtype."""
    return ops.mod(like(x1, x2), like(x2, x1))
