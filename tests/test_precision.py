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
import numpy as np
import pytest
from backends import BACKEND
from keras import ops

import gdbench.optimizers
import gdbench.schedules
from gdbench import _precision
from gdbench._precision import exact_float
from gdbench.schedules._base import completed_periods, started_periods

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


X = np.array([0.1, 3.0, -2.5, 0.7])


@pytest.mark.parametrize(
    ("name", "ours", "numpys"),
    [
        ("maximum", lambda x: _precision.maximum(x, 0.3), lambda x: np.maximum(x, 0.3)),
        ("minimum", lambda x: _precision.minimum(0.3, x), lambda x: np.minimum(0.3, x)),
        ("power", lambda x: _precision.power(0.999, x), lambda x: np.power(0.999, x)),
        ("mod", lambda x: _precision.mod(x, 0.7), lambda x: np.mod(x, 0.7)),
    ],
)
def test_replacement_ops_keep_float64_and_python_numbers_exact(name, ours, numpys) -> None:
    """On float64 tensors, with Python floats beside them, the ops give numpy's float64 results.

    0.3, 0.999 and 0.7 are not float32 numbers: taken through float32, as
    Keras's PyTorch backend takes them, they would be off by about 1e-8.
    """
    result = ours(ops.convert_to_tensor(X, "float64"))
    assert keras.backend.standardize_dtype(result.dtype) == "float64", name
    np.testing.assert_allclose(ops.convert_to_numpy(result), numpys(X), rtol=1e-15, atol=0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_whole_periods_are_exact_at_every_multiple(dtype: str) -> None:
    """⌊step/period⌋ and ⌈step/period⌉ at and around every multiple, compiled where the backend can.

    XLA's float32 division on a CPU gives 180/60 = 3.0000002, so that
    ``ceil(step / period)`` would be 4 there.
    """
    steps = np.arange(0, 2000, dtype=dtype)

    def both(step):
        return completed_periods(step, 60.0), started_periods(step, 12.5)

    runs = [both]
    if BACKEND in ("tensorflow", "jax"):
        from backends import xla_compiled

        runs.append(xla_compiled(both))
    for run in runs:
        floors, ceilings = run(ops.convert_to_tensor(steps))
        np.testing.assert_array_equal(ops.convert_to_numpy(floors), np.floor(steps / 60.0))
        np.testing.assert_array_equal(ops.convert_to_numpy(ceilings), np.ceil(steps / 12.5))


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
# Its JAX process is set up whatever this process runs on: the TensorFlow pass runs it once.
@pytest.mark.skipif(BACKEND != "tensorflow",
                    reason="runs JAX in a process of its own, once, in the TensorFlow pass")
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
