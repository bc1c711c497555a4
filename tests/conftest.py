"""Shared test set-up: quiet TensorFlow, deterministic ops, a fresh Keras session per test.

Run in parallel (``pytest -n 2 --dist loadfile``, as ``make test`` does), a
test file goes to one worker whole, so that its module fixtures (a study
several tests read) are built once; each worker starts the session's servers
(:func:`servers.shared_stack`, on free ports) for itself if its files need them.

The backend is TensorFlow unless ``KERAS_BACKEND`` names another. Under JAX, x64
is switched on: the float64 checks need float64, which JAX has only then
(``test_precision`` checks gdbench without it, in a process of its own).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
if os.environ["KERAS_BACKEND"] == "jax":
    os.environ["JAX_ENABLE_X64"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    keras.backend.clear_session(free_memory=False)
    yield
    keras.mixed_precision.set_global_policy("float32")
