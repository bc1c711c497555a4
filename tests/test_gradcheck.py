"""Gradient checks: autodiff against centered finite differences in float64."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import gdbench.tasks
from gdbench.tasks.gradcheck import (
    check_gradients,
    check_model_gradients,
    check_task_gradients,
)

POINT = np.array([[0.3, -1.2, 2.0], [0.7, 1.5, -0.4]])


def smooth(params: tf.Tensor) -> tf.Tensor:
    return tf.reduce_sum(tf.sin(params) ** 2 * tf.exp(0.1 * params)) + tf.reduce_prod(params)


@tf.custom_gradient
def wrong_at_one_coordinate(params: tf.Tensor):
    """Σ sin(θ), whose declared gradient is off by 0.5 at coordinate (1, 2) only."""
    mistake = tf.scatter_nd([[1, 2]], tf.constant([0.5], tf.float64), tf.shape(params))

    def gradient(upstream):
        return upstream * (tf.cos(params) + mistake)

    return tf.reduce_sum(tf.sin(params)), gradient


def test_passes_on_a_correct_gradient():
    result = check_gradients(smooth, POINT)
    assert result.passed
    assert result.coordinates_checked == 6
    assert result.max_abs_error < 1e-8
    assert len(result.worst_index) == 2


def test_fails_on_a_wrong_gradient_and_points_at_it():
    result = check_gradients(wrong_at_one_coordinate, POINT)
    assert not result.passed
    assert result.worst_index == (1, 2)
    assert result.max_abs_error == pytest.approx(0.5, rel=1e-6)


def test_tolerances_decide():
    # A gradient off by 1e-4 relative passes a loose check and fails the default.
    @tf.custom_gradient
    def slightly_wrong(params):
        return tf.reduce_sum(params**3), lambda upstream: upstream * 3.0 * params**2 * (1 + 1e-4)

    assert not check_gradients(slightly_wrong, POINT).passed
    assert check_gradients(slightly_wrong, POINT, rtol=1e-3).passed


def test_random_subset_of_coordinates_is_seeded():
    big = np.linspace(-1.0, 1.0, 200)
    first = check_gradients(smooth, big, max_coordinates=10, seed=3)
    again = check_gradients(smooth, big, max_coordinates=10, seed=3)
    assert first.coordinates_checked == 10 and first.passed
    assert first == again


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="eps"):
        check_gradients(smooth, POINT, eps=0.0)
    with pytest.raises(ValueError, match="rtol"):
        check_gradients(smooth, POINT, rtol=-1.0)
    with pytest.raises(ValueError, match="max_coordinates"):
        check_gradients(smooth, POINT, max_coordinates=0)
    with pytest.raises(ValueError, match="params"):
        check_gradients(smooth, [np.nan, 1.0])
    with pytest.raises(ValueError, match="fn: expected a scalar"):
        check_gradients(lambda params: params * 2.0, POINT)
    with pytest.raises(ValueError, match="fn: returned float32"):
        check_gradients(lambda params: tf.reduce_sum(tf.cast(params, tf.float32)), POINT)


@pytest.mark.parametrize("start", [(-2.0, -2.0), (-4.0, 4.0), (1.8, -2.3)])
def test_sigmoid_neuron_gradient_is_right(start):
    result = check_task_gradients(gdbench.tasks.get("sigmoid_neuron", start=start))
    assert result.passed, result
    assert result.coordinates_checked == 2


def test_toy_task_on_one_batch():
    task = gdbench.tasks.get("sigmoid_sparse")
    batch = task.batches(16, epoch=0)[0]
    assert check_task_gradients(task, batch=batch).passed


def test_task_check_refuses_a_keras_task():
    with pytest.raises(ValueError, match="check_model_gradients"):
        check_task_gradients(gdbench.tasks.get("digits_mlp"))


def tiny_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((4,)),
        keras.layers.Dense(5, activation="tanh"),
        keras.layers.Dense(3),
    ])


def tiny_batch() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(8, 4)).astype("float32"), np.arange(8) % 3


def test_tiny_keras_model_in_float32_is_checked_in_float64():
    model = tiny_model()
    before = [weight.numpy().copy() for weight in model.weights]
    x, y = tiny_batch()
    result = check_model_gradients(
        model, x, y, keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        max_coordinates=None,
    )
    assert result.passed, result
    assert result.coordinates_checked == 4 * 5 + 5 + 5 * 3 + 3
    assert result.worst_variable.startswith("sequential/dense")
    # The model passed in is left as it was: float32 and the same weights.
    for weight, value in zip(model.weights, before):
        assert weight.dtype == "float32"
        np.testing.assert_array_equal(weight.numpy(), value)


class _DoubledKernelGradient(keras.layers.Layer):
    """A dense layer that reports twice the true gradient for its kernel."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 2), initializer="glorot_uniform")

    def call(self, inputs):
        @tf.custom_gradient
        def kernel_value(kernel):
            return tf.identity(kernel), lambda upstream: 2.0 * upstream

        return tf.matmul(inputs, kernel_value(self.kernel.value))


def test_model_check_finds_a_wrong_layer_gradient():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,), dtype="float64")
    outputs = _DoubledKernelGradient(dtype="float64")(inputs)
    model = keras.Model(inputs, outputs)
    x, _ = tiny_batch()
    y = np.random.default_rng(1).normal(size=(8, 2))
    result = check_model_gradients(model, x, y, keras.losses.MeanSquaredError(dtype="float64"))
    assert not result.passed
    assert result.max_rel_error == pytest.approx(0.5, rel=1e-4)
    assert "kernel" in result.worst_variable


def test_model_check_needs_a_float64_loss():
    x, y = tiny_batch()
    with pytest.raises(ValueError, match="loss_fn.*float32"):
        check_model_gradients(tiny_model(), x, y,
                              lambda y_true, y_pred: tf.reduce_mean(tf.cast(y_pred, tf.float32)))
