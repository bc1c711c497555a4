"""Shared test set-up: quiet TensorFlow, deterministic ops, a fresh Keras session per test.

Run in parallel (``pytest -n 2 --dist loadgroup``, as ``make test`` does), a
test file goes to one worker whole, so that its module fixtures (a study
several tests read) are built once; the files that share the session's
servers (:func:`servers.shared_stack` and the studies :func:`servers.cached`
keeps) go to one worker together, so that the servers start once.

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


#: The files whose tests use the session's servers and the studies kept beside them.
SERVER_FILES = frozenset({"test_browser.py", "test_distributed.py", "test_study_processes.py"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test's ``xdist_group``: its file's name, or ``"servers"`` for :data:`SERVER_FILES`."""
    for item in items:
        group = "servers" if item.path.name in SERVER_FILES else item.path.name
        item.add_marker(pytest.mark.xdist_group(group))
