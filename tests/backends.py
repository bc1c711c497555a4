"""The Keras backend this pytest process runs on, and the little that differs between backends.

Keras picks its backend once, when it is first imported (``conftest`` picks
TensorFlow unless ``KERAS_BACKEND`` says otherwise), so each backend's suite
is a pytest process of its own: the Makefile runs them one after the other.
"""

from __future__ import annotations

from typing import Any, Callable

import keras
import pytest

BACKEND = keras.backend.backend()

#: For a test of something only TensorFlow has (row-slice gradients, tf.function).
tensorflow_only = pytest.mark.skipif(
    BACKEND != "tensorflow", reason=f"TensorFlow only; this process runs Keras on {BACKEND}"
)


def xla_compiled(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` compiled by XLA, as ``fit(jit_compile=True)`` compiles a step.

    TensorFlow and JAX compile with XLA; PyTorch's ``jit_compile`` means
    ``torch.compile``, which Keras's own optimizers are not tested under here.
    """
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.function(function, jit_compile=True)
    if BACKEND == "jax":
        import jax

        return jax.jit(function)
    pytest.skip(f"no XLA compilation of a plain function on the {BACKEND} backend")
