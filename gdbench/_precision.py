"""The float type that holds η and the step, on the backend Keras runs on.

gdbench keeps a constant η and a schedule's step in float64, so that float64
training (the toy tasks) follows the textbook recursion it documents. TensorFlow
and PyTorch always have float64. JAX has it only with x64 enabled
(``JAX_ENABLE_X64=1``, or ``jax.config.update("jax_enable_x64", True)`` before
any array is made); without it JAX truncates every float64 request to float32
with a warning, so gdbench asks for float32 there instead: η is then Keras's own
float32 variable, a schedule computes in float32, and a float64 model is a
float32 one.
"""

from __future__ import annotations

import functools

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
