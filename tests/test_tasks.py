"""Tasks: registry, options, batching, the toy training loop and its contract with callbacks."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import gdbench.optimizers
import gdbench.tasks
from gdbench.tasks import DatasetToyTask, ToyTask

#: Every toy task with an optimizer, η and epochs under which its loss must fall.
TOY_TRAINING = {
    "sigmoid_neuron": ("gd", 1.0, 30),
    "sigmoid_sparse": ("gd", 0.01, 10),
    "saddle": ("gd", 0.1, 20),
    "ravine": ("gd", 0.02, 20),
    "plateau": ("adam", 0.1, 20),
    "rosenbrock": ("gd", 1e-3, 20),
    "beale": ("adam", 0.05, 20),
    "branin": ("gd", 0.05, 20),
    "rastrigin": ("gd", 1e-3, 20),
    "linear_regression": ("gd", 0.3, 20),
    "logistic_regression": ("gd", 0.5, 2),
    "quadratic_deep": ("gd", 0.01, 2),
}
IMAGE_TASKS = ["digits_mlp", "fashion_mnist_mlp", "fashion_mnist_2c2d", "mnist_mlp", "cifar10_3c3d"]


def _numpy_sigmoid_gd(w: float, b: float, eta: float, epochs: int) -> np.ndarray:
    """The lectures' loop, verbatim in numpy."""
    xs, ys = np.array([0.5, 2.5]), np.array([0.2, 0.9])
    rows = [(w, b)]
    for _ in range(epochs):
        f = 1.0 / (1.0 + np.exp(-(w * xs + b)))
        dw = np.sum((f - ys) * f * (1 - f) * xs)
        db = np.sum((f - ys) * f * (1 - f))
        w, b = w - eta * dw, b - eta * db
        rows.append((w, b))
    return np.array(rows)


class Recorder(keras.callbacks.Callback):
    """Records the hooks it receives; stops training after ``stop_after`` epochs if given."""

    def __init__(self, stop_after: int | None = None) -> None:
        super().__init__()
        self.events: list[str] = []
        self.logs: list[dict[str, float]] = []
        self.stop_after = stop_after

    def on_train_begin(self, logs=None):
        self.events.append("train_begin")

    def on_epoch_begin(self, epoch, logs=None):
        self.events.append(f"epoch_begin {epoch}")

    def on_epoch_end(self, epoch, logs=None):
        self.events.append(f"epoch_end {epoch}")
        self.logs.append(dict(logs))
        if self.stop_after is not None and epoch + 1 >= self.stop_after:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        self.events.append("train_end")


def test_names_lists_every_task():
    assert sorted(gdbench.tasks.names()) == sorted([*TOY_TRAINING, *IMAGE_TASKS])


def test_toy_tasks_are_toy_tasks_and_image_tasks_are_not():
    for name in gdbench.tasks.names():
        assert issubclass(gdbench.tasks.REGISTRY[name], ToyTask) == (name in TOY_TRAINING)


def test_unknown_name_lists_the_names():
    with pytest.raises(KeyError, match="sigmoid_neuron.*digits_mlp"):
        gdbench.tasks.get("sigmoid")


def test_unknown_option_names_it_and_the_accepted_ones():
    accepted = "accepted: seed, start, noise, kappa"
    with pytest.raises(ValueError, match=rf"unknown option\(s\) kapa; {accepted}"):
        gdbench.tasks.get("ravine", kapa=3.0)


#: (task, options, the field the error must name): validation is cheap, so one test walks the table.
BAD_OPTIONS = [
    ("sigmoid_neuron", {"start": (1.0,)}, "start"),
    ("sigmoid_neuron", {"start": (1.0, float("nan"))}, r"start\[1\]"),
    ("sigmoid_neuron", {"seed": -1}, "seed"),
    ("sigmoid_neuron", {"seed": 1.5}, "seed"),
    ("sigmoid_neuron", {"shuffle": "yes"}, "shuffle"),
    ("sigmoid_sparse", {"sparsity": 1.0}, "sparsity"),
    ("saddle", {"noise": -0.1}, "noise"),
    ("ravine", {"kappa": 0.5}, "kappa"),
    ("linear_regression", {"basis": "cubic"}, "basis.*polynomial, gaussian"),
    ("linear_regression", {"degree": 0}, "degree"),
    ("quadratic_deep", {"noise_level": 0.0}, "noise_level"),
    ("digits_mlp", {"subset": 0}, "subset"),
    ("digits_mlp", {"subset": 1078}, "subset"),
    ("digits_mlp", {"validation_size": 1437}, "validation_size"),
    ("digits_mlp", {"test_size": 361}, "test_size"),
    ("fashion_mnist_mlp", {"download": 1}, "download"),
]


def test_bad_option_value_names_the_option():
    for name, options, field in BAD_OPTIONS:
        with pytest.raises(ValueError, match=field):
            gdbench.tasks.get(name, **options)


def test_options_are_recorded_validated():
    task = gdbench.tasks.get("sigmoid_neuron", start=[-4, 4], seed=3)
    assert task.seed == 3
    assert task.options == {"start": (-4.0, 4.0), "shuffle": True}


def test_steps_per_epoch_follows_the_lectures_table():
    task = gdbench.tasks.get("sigmoid_sparse")
    assert task.num_examples == 500
    assert task.steps_per_epoch(None) == 1  # its default: full batch
    assert task.steps_per_epoch(500) == 1
    assert task.steps_per_epoch(1) == 500
    assert task.steps_per_epoch(128) == 4
    assert task.steps_per_epoch(499) == 2
    assert gdbench.tasks.get("logistic_regression").steps_per_epoch(None) == 8  # 1000 / 128
    assert gdbench.tasks.get("rosenbrock").steps_per_epoch(None) == 1
    assert gdbench.tasks.get("digits_mlp").steps_per_epoch(None) == 9  # 1077 / 128


def test_bad_batch_size_or_epochs_is_refused_before_training():
    task = gdbench.tasks.get("sigmoid_sparse")
    optimizer = gdbench.optimizers.get("gd")
    for batch_size in (0, 501, 2.5, True, "8"):
        with pytest.raises(ValueError, match="batch_size: .*got"):
            task.steps_per_epoch(batch_size)
        with pytest.raises(ValueError, match="batch_size"):
            task.fit(optimizer, batch_size=batch_size)
    for epochs in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="epochs"):
            task.fit(optimizer, epochs=epochs)
    assert not optimizer.built


def test_an_optimizer_is_not_reused():
    task = gdbench.tasks.get("saddle")
    optimizer = gdbench.optimizers.get("gd")
    task.fit(optimizer, epochs=1)
    with pytest.raises(ValueError, match="optimizer.*fresh"):
        task.fit(optimizer, epochs=1)


@pytest.mark.parametrize("start", [(-2.0, -2.0), (-4.0, 4.0), (-4.0, -4.0)])
def test_sigmoid_neuron_gd_equals_the_lectures_numpy_loop(start):
    task = gdbench.tasks.get("sigmoid_neuron", start=start)
    result = task.fit(gdbench.optimizers.get("gd", learning_rate=1.0), epochs=200)
    expected = _numpy_sigmoid_gd(*start, eta=1.0, epochs=200)
    assert result.trajectory.dtype == np.float64
    np.testing.assert_allclose(result.trajectory, expected, rtol=1e-12, atol=0)
    assert result.parameter_names == ("w", "b")
    assert result.steps_per_epoch == 1


@pytest.mark.parametrize("name", list(TOY_TRAINING))
def test_toy_task_trains_and_its_loss_falls(name):
    optimizer_name, learning_rate, epochs = TOY_TRAINING[name]
    task = gdbench.tasks.get(name)
    start = task.initial_parameters()
    initial_loss = float(task.loss(start))
    result = task.fit(gdbench.optimizers.get(optimizer_name, learning_rate=learning_rate),
                      epochs=epochs)
    losses = result.history["loss"]
    assert len(losses) == epochs and result.finite
    assert losses[-1] < initial_loss
    assert losses[-1] < losses[0]
    assert result.metrics["loss"] == losses[-1]
    steps = epochs * task.steps_per_epoch(None)
    assert result.trajectory.shape == (steps + 1, len(task.parameter_names))
    np.testing.assert_array_equal(result.trajectory[0], start)
    assert float(task.loss(result.trajectory[-1])) == pytest.approx(losses[-1], rel=1e-12)


@pytest.mark.parametrize("name", list(TOY_TRAINING))
def test_toy_loss_broadcasts_over_leading_dimensions(name):
    task = gdbench.tasks.get(name, seed=1)
    rng = np.random.default_rng(0)
    shape = (3, 4, len(task.parameter_names))
    params = task.initial_parameters() + 0.1 * rng.standard_normal(shape)
    for batch in (None, task.batches(None, 0)[0]):
        together = task.loss(tf.constant(params), batch).numpy()
        assert together.shape == (3, 4)
        one_by_one = [[float(task.loss(params[i, j], batch)) for j in range(4)] for i in range(3)]
        np.testing.assert_allclose(together, one_by_one, rtol=1e-12)


def test_minibatches_cover_the_data_once_per_epoch_in_a_seeded_order():
    task = gdbench.tasks.get("sigmoid_sparse", seed=5)
    epoch0 = task.batches(128, 0)
    assert [len(targets) for _, targets in epoch0] == [128, 128, 128, 116]
    inputs = np.concatenate([inputs for inputs, _ in epoch0])
    np.testing.assert_array_equal(np.sort(inputs), np.sort(task.inputs))
    same = gdbench.tasks.get("sigmoid_sparse", seed=5).batches(128, 0)
    for (a, _), (b, _) in zip(epoch0, same):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(epoch0[0][0], task.batches(128, 1)[0][0])
    unshuffled = gdbench.tasks.get("sigmoid_sparse", seed=5, shuffle=False).batches(128, 3)
    np.testing.assert_array_equal(unshuffled[0][0], task.inputs[:128])
    assert task.batches(None, 0) == [None] and task.batches(500, 0) == [None]


def test_minibatch_trajectory_equals_a_plain_step_by_step_loop():
    task = gdbench.tasks.get("logistic_regression", seed=2)
    eta, batch_size, epochs = 0.5, 300, 2  # 4 steps per epoch, the last one short
    result = task.fit(gdbench.optimizers.get("gd", learning_rate=eta), epochs=epochs,
                      batch_size=batch_size)
    params = tf.constant(task.initial_parameters())
    rows = [params.numpy()]
    for epoch in range(epochs):
        for batch in task.batches(batch_size, epoch):
            with tf.GradientTape() as tape:
                tape.watch(params)
                value = task.loss(params, batch)
            params = params - eta * tape.gradient(value, params)
            rows.append(params.numpy())
    assert result.steps_per_epoch == 4
    np.testing.assert_allclose(result.trajectory, np.array(rows), rtol=1e-12)
    assert 0.5 < result.metrics["accuracy"] <= 1.0


def test_surface_noise_is_additive_gradient_noise_seeded_per_step():
    def noisy(seed: int) -> gdbench.tasks.Task:
        return gdbench.tasks.get("rosenbrock", noise=0.5, seed=seed)

    task = noisy(7)
    assert gdbench.tasks.get("rosenbrock").batches(None, 0) == [None]
    (noise,) = task.batches(None, 4)
    np.testing.assert_array_equal(noise, noisy(7).batches(None, 4)[0])
    assert not np.array_equal(noise, task.batches(None, 5)[0])
    assert not np.array_equal(noise, noisy(8).batches(None, 4)[0])
    params = tf.constant([0.3, -0.2], tf.float64)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(params)
        noisy_loss, clean_loss = task.loss(params, noise), task.loss(params)
    difference = tape.gradient(noisy_loss, params) - tape.gradient(clean_loss, params)
    np.testing.assert_allclose(difference, noise, rtol=1e-12)
    def trajectory(task: gdbench.tasks.Task) -> np.ndarray:
        return task.fit(gdbench.optimizers.get("gd", learning_rate=1e-3), epochs=3).trajectory

    np.testing.assert_array_equal(trajectory(task), trajectory(noisy(7)))
    assert not np.allclose(trajectory(task), trajectory(gdbench.tasks.get("rosenbrock")))


def test_two_parameter_toy_tasks_have_surface_bounds():
    for name in TOY_TRAINING:
        task = gdbench.tasks.get(name)
        if len(task.parameter_names) == 2:
            (x_low, x_high), (y_low, y_high) = task.surface_bounds
            assert x_low < x_high and y_low < y_high
        else:
            assert task.surface_bounds is None
    assert gdbench.tasks.get("linear_regression", degree=1).surface_bounds is not None


def test_quadratic_deep_spectrum_and_start():
    task = gdbench.tasks.get("quadratic_deep")
    eigenvalues = np.sort(np.linalg.eigvalsh(task.hessian))
    assert np.all((eigenvalues[:90] > 0) & (eigenvalues[:90] < 1))
    assert np.all((eigenvalues[90:] > 30) & (eigenvalues[90:] < 60))
    np.testing.assert_allclose(eigenvalues, np.sort(task.eigenvalues), rtol=1e-10)
    np.testing.assert_array_equal(task.initial_parameters(), np.ones(100))
    theta = np.linspace(-1, 1, 100)
    inputs = task.inputs[:50]
    per_example = np.mean([0.5 * (theta - x) @ task.hessian @ (theta - x) for x in inputs])
    assert float(task.loss(theta, (inputs, np.zeros(50)))) == pytest.approx(per_example, rel=1e-10)


def test_sigmoid_sparse_has_the_asked_fraction_of_zero_inputs():
    task = gdbench.tasks.get("sigmoid_sparse", sparsity=0.8)
    assert np.count_nonzero(task.inputs == 0.0) == 400
    assert np.count_nonzero(gdbench.tasks.get("sigmoid_sparse", sparsity=0.5).inputs == 0.0) == 250


def test_linear_regression_bases():
    polynomial = gdbench.tasks.get("linear_regression", degree=2)
    powers = np.stack([polynomial.x ** power for power in range(3)], axis=-1)
    np.testing.assert_allclose(polynomial.inputs, powers)
    gaussian = gdbench.tasks.get("linear_regression", basis="gaussian", degree=5)
    assert gaussian.parameter_names == ("w0", "w1", "w2", "w3", "w4", "w5")
    np.testing.assert_array_equal(gaussian.inputs[:, 0], 1.0)
    assert np.all((gaussian.inputs[:, 1:] > 0) & (gaussian.inputs[:, 1:] <= 1))


def test_callbacks_see_every_epoch_with_loss_and_learning_rate():
    schedule = keras.optimizers.schedules.ExponentialDecay(0.5, decay_steps=4, decay_rate=0.5)
    recorder = Recorder()
    task = gdbench.tasks.get("logistic_regression")
    result = task.fit(gdbench.optimizers.get("gd", learning_rate=schedule), epochs=3,
                      callbacks=[recorder])
    assert recorder.events == ["train_begin", "epoch_begin 0", "epoch_end 0", "epoch_begin 1",
                               "epoch_end 1", "epoch_begin 2", "epoch_end 2", "train_end"]
    assert isinstance(recorder.model, gdbench.tasks.ToyModel)
    assert recorder.params == {"epochs": 3, "steps": 8, "verbose": 0}
    assert [logs["loss"] for logs in recorder.logs] == result.history["loss"]
    expected_rates = [0.5 * 0.5 ** (8 * (epoch + 1) / 4) for epoch in range(3)]
    np.testing.assert_allclose(result.history["learning_rate"], expected_rates, rtol=1e-6)
    assert [logs["learning_rate"] for logs in recorder.logs] == result.history["learning_rate"]
    assert set(recorder.logs[0]) == {"loss", "accuracy", "learning_rate"}


def test_a_callback_can_stop_toy_training():
    result = gdbench.tasks.get("sigmoid_neuron").fit(
        gdbench.optimizers.get("gd", learning_rate=1.0), epochs=50,
        callbacks=[Recorder(stop_after=3)])
    assert result.epochs == 3
    assert result.trajectory.shape == (4, 2)


def test_a_callback_exception_propagates():
    class Prune(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise RuntimeError(f"pruned at {epoch}")

    with pytest.raises(RuntimeError, match="pruned at 0"):
        gdbench.tasks.get("saddle").fit(gdbench.optimizers.get("gd"), callbacks=[Prune()])


def test_early_stopping_works_on_a_toy_task():
    stopper = keras.callbacks.EarlyStopping(monitor="loss", patience=2, restore_best_weights=True)
    result = gdbench.tasks.get("ravine").fit(gdbench.optimizers.get("gd", learning_rate=0.041),
                                             epochs=100, callbacks=[stopper])
    assert result.epochs < 100  # η > 2/κ: the ravine's y-coordinate oscillates ever wider


def test_a_diverging_toy_task_stops_without_raising():
    recorder = Recorder()
    result = gdbench.tasks.get("rosenbrock").fit(gdbench.optimizers.get("gd", learning_rate=1.0),
                                                 epochs=100, callbacks=[recorder])
    losses = result.history["loss"]
    assert not result.finite and not math.isfinite(losses[-1])
    assert all(math.isfinite(loss) for loss in losses[:-1])
    assert result.epochs < 100 and recorder.events[-1] == "train_end"
    assert len(recorder.logs) == result.epochs


def test_dataset_toy_tasks_use_float64_data():
    for name in TOY_TRAINING:
        task = gdbench.tasks.get(name)
        assert task.initial_parameters().dtype == np.float64
        assert task.loss(task.initial_parameters()).dtype == tf.float64
        if isinstance(task, DatasetToyTask):
            assert task.inputs.dtype == np.float64 and len(task.targets) == task.num_examples
