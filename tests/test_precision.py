"""η and a schedule's step are float64 where the backend has float64, float32 where it has not.

JAX has float64 only with x64 switched on; without it, gdbench must ask for
float32 rather than have JAX truncate (and warn) at every step.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import pytest

import gdbench.optimizers
import gdbench.schedules
from gdbench._precision import exact_float

ROOT = Path(__file__).resolve().parents[1]


def test_this_backend_keeps_eta_and_the_step_in_float64() -> None:
    # This process runs TensorFlow, PyTorch, or JAX with x64 (conftest).
    assert exact_float() == "float64"
    optimizer = gdbench.optimizers.get("adam", learning_rate=0.1)
    assert keras.backend.standardize_dtype(optimizer.learning_rate.dtype) == "float64"
    assert float(optimizer.learning_rate) == 0.1
    schedule = gdbench.schedules.get("inverse_sqrt", initial_learning_rate=0.1, decay_steps=3)
    rate = schedule(keras.ops.convert_to_tensor(6, "int64"))
    assert keras.backend.standardize_dtype(rate.dtype) == "float64"
    assert float(rate) == pytest.approx(0.1 / 3**0.5, rel=1e-15)


NO_X64 = textwrap.dedent("""
    import warnings
    # JAX warns when asked for a float64 it truncates to float32.
    warnings.filterwarnings("error", message=".*float64.*")
    import keras, numpy as np
    import gdbench.optimizers, gdbench.schedules
    from gdbench._precision import exact_float

    assert exact_float() == "float32", exact_float()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 3)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5]], "float32")
    for name in gdbench.optimizers.names():
        schedule = gdbench.schedules.get("cosine", initial_learning_rate=0.01, decay_steps=8)
        for learning_rate in (None, schedule):
            keywords = {} if learning_rate is None else {"learning_rate": learning_rate}
            optimizer = gdbench.optimizers.get(name, **keywords)
            assert keras.backend.standardize_dtype(optimizer.learning_rate.dtype) == "float32"
            model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
            model.compile(optimizer=optimizer, loss="mse")
            losses = model.fit(x, y, batch_size=8, epochs=2, verbose=0).history["loss"]
            assert np.all(np.isfinite(losses)) and losses[-1] < losses[0], (name, losses)
    print("float32 throughout")
""")


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_jax_without_x64_keeps_eta_in_float32_without_warnings() -> None:
    environment = {
        **os.environ, "KERAS_BACKEND": "jax", "JAX_ENABLE_X64": "0",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(
        [sys.executable, "-c", NO_X64], env=environment, capture_output=True, text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "float32 throughout" in result.stdout
