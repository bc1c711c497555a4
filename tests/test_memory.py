"""A fit leaves nothing behind: its traced graphs and its model can be collected."""

from __future__ import annotations

import gc
import weakref

import keras
import pytest
import tensorflow as tf
from tensorflow.python.framework import ops as tf_ops

import gdbench.optimizers
import gdbench.tasks
from gdbench.tasks._gradients import CUSTOM_GRADIENT_PREFIX, custom_gradients_released


def custom_gradient_names() -> set[str]:
    return {name for name in tf_ops.gradient_registry.list()
            if name.startswith(CUSTOM_GRADIENT_PREFIX)}


class ModelWatcher(keras.callbacks.Callback):
    """Keeps a weak reference to the model it is given, to see whether the model outlives the fit."""

    def __init__(self) -> None:
        super().__init__()
        self.models: list[weakref.ref] = []

    def set_model(self, model) -> None:
        super().set_model(model)
        self.models.append(weakref.ref(model))


@pytest.mark.parametrize("task_name, options", [
    ("digits_mlp", {"subset": 256}),
    ("sigmoid_neuron", {}),
])
def test_a_fit_registers_no_lasting_gradient_and_its_model_is_collected(task_name, options):
    task = gdbench.tasks.get(task_name, **options)
    before = custom_gradient_names()
    watcher = ModelWatcher()
    task.fit(gdbench.optimizers.get("adam"), epochs=2, callbacks=[watcher])
    assert custom_gradient_names() == before
    # The watcher, as every callback, holds its model.
    models = watcher.models
    del watcher
    keras.backend.clear_session(free_memory=False)
    gc.collect()
    assert models and all(model() is None for model in models)


def test_a_fit_ended_by_an_exception_releases_its_gradients_too():
    class Stop(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise RuntimeError("stopped")

    task = gdbench.tasks.get("digits_mlp", subset=256)
    before = custom_gradient_names()
    with pytest.raises(RuntimeError, match="stopped"):
        task.fit(gdbench.optimizers.get("adam"), epochs=3, callbacks=[Stop()])
    assert custom_gradient_names() == before


def scaled_identity_function() -> tf.types.experimental.PolymorphicFunction:
    @tf.custom_gradient
    def scaled_identity(x):
        return tf.identity(x), lambda upstream: 2.0 * upstream

    @tf.function
    def gradient(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = scaled_identity(x)
        return tape.gradient(y, x)

    return gradient


def test_only_the_custom_gradients_of_the_block_are_dropped():
    kept = scaled_identity_function()
    assert float(kept(tf.constant(1.0))) == 2.0
    registered_before = custom_gradient_names()
    with custom_gradients_released():
        dropped = scaled_identity_function()
        # Differentiated while traced, inside the block: the gradient is the custom one.
        assert float(dropped(tf.constant(1.0))) == 2.0
        assert len(custom_gradient_names() - registered_before) == 1
    assert custom_gradient_names() == registered_before
    # Graphs traced before and inside the block still run.
    assert float(kept(tf.constant(3.0))) == 2.0
    assert float(dropped(tf.constant(3.0))) == 2.0


STUDY = """\
name = "flat_memory"
task = {{name = "digits_mlp", subset = 256}}
optimizer = "adam"
tune = ["learning_rate", "beta_1"]
epochs = 2
trials = {trials}
seed = 0
sampler = {{name = "random", seed = 7}}
pruner = "none"
"""


@pytest.mark.slow
def test_a_tracked_image_study_keeps_its_memory_flat(tmp_path):
    """A looser bound than benchmarks/memory.py's 0.3 MB/trial, over a shorter window."""
    import numpy as np
    import psutil

    from gdbench.study import load_specs, run_study

    trials, first = 30, 10
    spec_path = tmp_path / "study.toml"
    spec_path.write_text(STUDY.format(trials=trials))
    (spec,) = load_specs(spec_path)
    process = psutil.Process()
    samples: dict[int, float] = {}

    def sample(study, trial) -> None:
        samples[trial.number] = process.memory_info().rss / 2**20

    run_study(spec, home=tmp_path / "home", quiet=True, callbacks=[sample])
    numbers = sorted(number for number in samples if number >= first)
    slope = np.polyfit(numbers, [samples[number] for number in numbers], 1)[0]
    assert slope <= 1.0, f"RSS grew by {slope:.2f} MB per trial from trial {first} to {trials}"
