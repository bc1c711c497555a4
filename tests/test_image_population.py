"""The image population engine trains every member exactly as ImageTask.fit trains it alone.

Each member of a population is compared with a separate ImageTask.fit of the
Keras class built with that member's hyperparameters: every epoch's loss,
accuracy, val_loss, val_accuracy and learning rate, the final metrics and the
final weights, to 1e-9 relative under float64 floatx. digits_mlp on 150
images in batches of 64 has a short last batch (22 images).
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf
from optimizer_cases import OPTIMIZERS
from test_population import SCHEDULE_TRIALS

import gdbench.optimizers
import gdbench.schedules
import gdbench.tasks
from gdbench.tasks import _stacked_mlp
from gdbench.tasks.image_population import (
    COMPLETE,
    DIVERGED,
    HISTORY_KEYS,
    STOPPED,
    EpochReport,
    ImagePopulationResult,
    fit_image_population,
    supports_population,
)

RTOL = 1e-9
#: Weights near zero are compared with this absolute tolerance as well.
ATOL = 1e-12
#: Float32: the rule's hyperparameters are float32 tensors, not Python floats,
#: and batched matmuls sum in another order; three epochs amplify the rounding
#: (measured: Adam's losses 2e-6 relative, its weights 7e-6 of their largest).
FLOAT32_RTOL, FLOAT32_ATOL = 1e-5, 1e-5
EPOCHS, BATCH_SIZE = 3, 64
TASK = gdbench.tasks.get("digits_mlp", subset=150)


@pytest.fixture
def float64():
    previous = keras.config.floatx()
    keras.config.set_floatx("float64")
    yield
    keras.config.set_floatx(previous)


class FinalWeights(keras.callbacks.Callback):
    """Keeps the model's weights when training ends; optionally stops after some epochs."""

    def __init__(self, stop_after: int | None = None) -> None:
        super().__init__()
        self.stop_after = stop_after
        self.weights: list[np.ndarray] = []

    def on_epoch_end(self, epoch, logs=None):
        if self.stop_after is not None and epoch + 1 >= self.stop_after:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        self.weights = self.model.get_weights()


def _single_fit(name: str, keywords: dict[str, Any], *, schedule: Any = None,
                stop_after: int | None = None) -> tuple[gdbench.tasks.FitResult, list[np.ndarray]]:
    keras.backend.clear_session(free_memory=False)
    if schedule is not None:
        keywords = {**keywords, "learning_rate": schedule}
    recorder = FinalWeights(stop_after)
    result = TASK.fit(gdbench.optimizers.get(name, **keywords), epochs=EPOCHS,
                      batch_size=BATCH_SIZE, callbacks=[recorder])
    return result, recorder.weights


def _assert_member_matches(result: ImagePopulationResult, index: int,
                           reference: gdbench.tasks.FitResult, weights: list[np.ndarray],
                           rtol: float = RTOL, atol: float = ATOL) -> None:
    trial = result.trial(index)
    assert list(trial.history) == list(reference.history)
    for key in reference.history:
        np.testing.assert_allclose(trial.history[key], reference.history[key], rtol=rtol, atol=0,
                                   err_msg=key)
    assert trial.steps_per_epoch == reference.steps_per_epoch
    member_weights = result.weights(index)
    assert len(member_weights) == len(weights)
    for mine, theirs in zip(member_weights, weights):
        assert mine.shape == theirs.shape and mine.dtype == theirs.dtype
        if reference.finite:
            np.testing.assert_allclose(mine, theirs, rtol=rtol, atol=atol)
    if not reference.finite:
        # Which entries of a diverged member's weights are NaN rather than
        # infinite depends on the order in which a matmul sums; that they are
        # not all finite does not.
        assert not all(np.isfinite(weight).all() for weight in member_weights)


def _members(name: str, bias_correction: bool | None) -> list[dict[str, Any]]:
    """The table's two variants over the defaults: other η and other β, ε, … per member."""
    row = OPTIMIZERS[name]
    members = [{**row.defaults, **variant} for variant in row.variants]
    if bias_correction is not None:
        members = [{**member, "bias_correction": bias_correction} for member in members]
    return members


def _columns(members: list[dict[str, Any]]) -> dict[str, Any]:
    """Members' keywords as the population takes them: K values per number, flags shared."""
    return {name: (members[0][name] if isinstance(members[0][name], bool)
                   else np.array([member[name] for member in members], dtype=float))
            for name in members[0]}


# A flag is shared by a population, so Adam's is fixed per population.
OPTIMIZER_POPULATIONS = [
    pytest.param(name, True if "bias_correction" in OPTIMIZERS[name].defaults else None, id=name)
    for name in gdbench.optimizers.names()
]
OPTIMIZER_POPULATIONS.append(pytest.param("adam", False, id="adam-without-bias-correction"))


def test_the_table_covers_every_registered_optimizer():
    assert set(OPTIMIZERS) == set(gdbench.optimizers.REGISTRY)


@pytest.mark.parametrize(("name", "bias_correction"), OPTIMIZER_POPULATIONS)
def test_every_member_matches_its_own_fit(float64, name, bias_correction):
    members = _members(name, bias_correction)
    result = fit_image_population(TASK, name, _columns(members), epochs=EPOCHS,
                                  batch_size=BATCH_SIZE)
    assert result.size == len(members) and result.steps_per_epoch == 3
    for index, member in enumerate(members):
        reference, weights = _single_fit(name, member)
        _assert_member_matches(result, index, reference, weights)
        expected = COMPLETE if reference.finite else DIVERGED
        assert result.status[index] == expected
        assert result.epochs_run[index] == reference.epochs
        if expected == COMPLETE:
            assert result.trial(index).metrics == pytest.approx(reference.metrics, rel=RTOL)


#: schedule → two members' keywords (per-member values as two-item lists).
SCHEDULES = {
    "exponential": {"initial_learning_rate": [0.05, 0.2], "decay_rate": [0.5, 0.8],
                    "decay_steps": [2, 3], "staircase": True},
    "piecewise_constant": {"boundaries": [2, [4, 5]], "values": [[0.2, 0.1], 0.05, [0.01, 0.02]]},
}


def _member_keywords(keywords: dict[str, Any], index: int) -> dict[str, Any]:
    def pick(value: Any) -> Any:
        return value[index] if isinstance(value, list) else value

    return {name: ([pick(item) for item in value] if name in ("boundaries", "values")
                   else pick(value)) for name, value in keywords.items()}


@pytest.mark.parametrize("schedule", list(SCHEDULES))
def test_a_scheduled_eta_with_per_member_parameters_matches(float64, schedule):
    keywords = SCHEDULES[schedule]
    result = fit_image_population(TASK, "momentum", {"momentum": [0.9, 0.5]}, epochs=EPOCHS,
                                  batch_size=BATCH_SIZE, schedule=schedule,
                                  schedule_parameters=keywords)
    for index, momentum in enumerate([0.9, 0.5]):
        rate = gdbench.schedules.get(schedule, **_member_keywords(keywords, index))
        reference, weights = _single_fit("momentum", {"momentum": momentum}, schedule=rate)
        _assert_member_matches(result, index, reference, weights)
    # η changes within the run, so the check covers the schedule, not a constant.
    assert len(set(result.trial(0).history["learning_rate"])) > 1


@pytest.mark.parametrize("schedule", list(SCHEDULE_TRIALS))
def test_every_schedule_gives_each_member_its_own_rate(schedule):
    keywords = SCHEDULE_TRIALS[schedule]
    result = fit_image_population(TASK, "gd", {}, epochs=2, batch_size=BATCH_SIZE,
                                  schedule=schedule, schedule_parameters=keywords)
    for index in range(2):
        rate = gdbench.schedules.get(schedule, **_member_keywords(keywords, index))
        reached = [3, 6]  # iterations after each epoch of three steps
        assert result.trial(index).history["learning_rate"] == pytest.approx(
            [float(rate(step)) for step in reached], rel=RTOL)


def test_under_float32_members_agree_to_rounding():
    assert keras.config.floatx() == "float32"
    members = [{"learning_rate": 0.01, "beta_1": 0.9}, {"learning_rate": 0.003, "beta_1": 0.5}]
    result = fit_image_population(TASK, "adam", _columns(members), epochs=EPOCHS,
                                  batch_size=BATCH_SIZE)
    for index, member in enumerate(members):
        reference, weights = _single_fit("adam", member)
        _assert_member_matches(result, index, reference, weights, rtol=FLOAT32_RTOL,
                               atol=FLOAT32_ATOL)


def test_a_member_stopped_after_an_epoch_ends_there_and_the_others_go_on(float64):
    rates = [0.1, 0.05, 0.02]
    reports: list[EpochReport] = []

    def stop_the_second(report: EpochReport) -> np.ndarray:
        reports.append(report)
        return np.array([False, report.epoch == 0, False])

    result = fit_image_population(TASK, "gd", {"learning_rate": rates}, epochs=EPOCHS,
                                  batch_size=BATCH_SIZE, on_epoch=stop_the_second)
    assert result.status == (COMPLETE, STOPPED, COMPLETE)
    assert result.epochs_run.tolist() == [EPOCHS, 1, EPOCHS]
    assert [report.epoch for report in reports] == list(range(EPOCHS))
    assert reports[0].active.tolist() == [True, True, True]
    assert reports[1].active.tolist() == [True, False, True]
    assert set(reports[1].logs) == set(HISTORY_KEYS)
    assert all(math.isnan(reports[1].logs[key][1]) for key in HISTORY_KEYS)
    for index, rate in enumerate(rates):
        reference, weights = _single_fit("gd", {"learning_rate": rate},
                                         stop_after=1 if index == 1 else None)
        _assert_member_matches(result, index, reference, weights)
    assert "test_loss" not in result.trial(1).metrics
    assert {"test_loss", "test_accuracy"} <= set(result.trial(0).metrics)


def test_a_diverging_member_fails_alone_as_its_own_fit_does(float64):
    # η = 1e200 makes the second batch's loss NaN: Keras's TerminateOnNaN stops
    # that fit in the middle of its first epoch. A decaying η shows that the
    # logged rate is the one at the step where the member stopped.
    keywords = {"initial_learning_rate": [0.1, 1e200], "decay_rate": 0.5, "decay_steps": 1}
    result = fit_image_population(TASK, "gd", {}, epochs=EPOCHS, batch_size=BATCH_SIZE,
                                  schedule="exponential", schedule_parameters=keywords)
    assert result.status == (COMPLETE, DIVERGED)
    for index in range(2):
        rate = gdbench.schedules.get("exponential", **_member_keywords(keywords, index))
        reference, weights = _single_fit("gd", {}, schedule=rate)
        _assert_member_matches(result, index, reference, weights)
    diverged = result.trial(1)
    assert not diverged.finite and diverged.epochs == 1
    assert diverged.history["learning_rate"] == [1e200 * 0.5**2]
    assert "test_loss" not in diverged.metrics


def test_models_without_a_population_form_are_refused_by_name():
    for name in ("digits_mlp", "fashion_mnist_mlp", "mnist_mlp"):
        options = {} if name == "digits_mlp" else {"download": False}
        assert supports_population(gdbench.tasks.get(name, **options))
    for name in ("fashion_mnist_2c2d", "cifar10_3c3d"):
        task = gdbench.tasks.get(name, download=False)
        assert not supports_population(task)
        with pytest.raises(ValueError, match=f"task: {name}"):
            fit_image_population(task, "gd", {"learning_rate": 0.1}, epochs=1)
    assert not supports_population(gdbench.tasks.get("sigmoid_neuron"))


@pytest.mark.parametrize(("arguments", "error", "field"), [
    ({"task": gdbench.tasks.get("sigmoid_neuron")}, ValueError, "task"),
    ({"optimizer": "adamm"}, KeyError, "optimizer"),
    ({"hyperparameters": {}}, ValueError, "learning_rate"),
    ({"hyperparameters": {"learning_rate": [0.1, 0.2], "momentum": [0.9, 0.8, 0.7]}},
     ValueError, "momentum"),
    ({"hyperparameters": {"learning_rate": 0.1, "momentum": [0.9, 1.5]}}, ValueError, "momentum"),
    ({"hyperparameters": {"learning_rate": 0.1, "beta_1": 0.9}}, ValueError, "beta_1"),
    ({"epochs": 0}, ValueError, "epochs"),
    ({"batch_size": 151}, ValueError, "batch_size"),
    ({"schedule_parameters": {"decay_steps": 5}}, ValueError, "schedule_parameters"),
    ({"on_epoch": "stop"}, ValueError, "on_epoch"),
    ({"on_epoch": lambda report: [True, False]}, ValueError, "on_epoch"),
    ({"on_epoch": lambda report: [1]}, ValueError, "on_epoch"),
])
def test_bad_inputs_name_the_field(arguments, error, field):
    call = {"task": TASK, "optimizer": "momentum", "hyperparameters": {"learning_rate": 0.1},
            "epochs": 1, "batch_size": BATCH_SIZE, **arguments}
    with pytest.raises(error, match=field):
        fit_image_population(call.pop("task"), call.pop("optimizer"),
                             call.pop("hyperparameters"), **call)


def test_a_population_of_the_same_configuration_reuses_the_compiled_program():
    def run(rates: list[float]) -> ImagePopulationResult:
        return fit_image_population(TASK, "rmsprop", {"learning_rate": rates}, epochs=1,
                                    batch_size=BATCH_SIZE)

    run([0.01, 0.001])
    program = next(reversed(_stacked_mlp._COMPILED.values()))
    traces = program.train_epoch.experimental_get_tracing_count()
    run([0.02, 0.003])
    assert next(reversed(_stacked_mlp._COMPILED.values())) is program
    assert program.train_epoch.experimental_get_tracing_count() == traces


def test_rules_with_and_without_xla_agree(float64):
    def run(jit_compile: bool) -> ImagePopulationResult:
        return fit_image_population(TASK, "nadam", {"learning_rate": [0.01, 0.002]}, epochs=2,
                                    batch_size=BATCH_SIZE, jit_compile=jit_compile)

    compiled, graph = run(True), run(False)
    for index in range(2):
        for key in HISTORY_KEYS:
            np.testing.assert_allclose(compiled.trial(index).history[key],
                                       graph.trial(index).history[key], rtol=RTOL, atol=0)
        for mine, theirs in zip(compiled.weights(index), graph.weights(index)):
            np.testing.assert_allclose(mine, theirs, rtol=RTOL, atol=ATOL)


def test_a_compacted_population_trains_its_members_as_the_full_one(float64):
    rates = [0.1, 0.05, 0.02, 0.2]

    def prune(report: EpochReport) -> np.ndarray:
        # Two of four stop after epoch 0, one of the two left after epoch 1:
        # the population shrinks to two rows, then to one.
        return np.array([False, report.epoch == 0, report.epoch == 0, report.epoch == 1])

    def run(compact: bool) -> ImagePopulationResult:
        return fit_image_population(TASK, "momentum", {"learning_rate": rates}, epochs=EPOCHS,
                                    batch_size=BATCH_SIZE, on_epoch=prune, compact=compact)

    compacted, full = run(True), run(False)
    assert not any(weight.flags.writeable for weight in compacted.final_weights)
    assert compacted.status == full.status == (COMPLETE, STOPPED, STOPPED, STOPPED)
    assert compacted.epochs_run.tolist() == full.epochs_run.tolist() == [3, 1, 1, 2]
    for index in range(len(rates)):
        trial, reference = compacted.trial(index), full.trial(index)
        assert trial.metrics == pytest.approx(reference.metrics, rel=RTOL)
        for key in HISTORY_KEYS:
            np.testing.assert_allclose(trial.history[key], reference.history[key], rtol=RTOL)
        for mine, theirs in zip(compacted.weights(index), full.weights(index)):
            np.testing.assert_allclose(mine, theirs, rtol=RTOL, atol=ATOL)
    for index, stop_after in ((0, None), (3, 2)):
        reference, weights = _single_fit("momentum", {"learning_rate": rates[index]},
                                         stop_after=stop_after)
        _assert_member_matches(compacted, index, reference, weights)


def test_one_step_moves_each_member_by_its_gradient_in_the_former_layout(float64):
    # One full batch, one step of gd: each member's weights move by −η times
    # the gradient of its own loss, taken here in one tape over the whole
    # stacked model with the first layer as an einsum, the layout the engine
    # had before its broadcast matmul.
    task = gdbench.tasks.get("digits_mlp", subset=64)
    rates = np.array([0.5, 0.05])
    result = fit_image_population(task, "gd", {"learning_rate": rates}, epochs=1, batch_size=64)
    splits = task.data()
    initial = [tf.constant(np.stack([weight] * len(rates)))
               for weight in task.build_model().get_weights()]
    images = tf.reshape(tf.constant(splits.x_train, tf.float64), [len(splits.y_train), -1])
    labels = tf.broadcast_to(tf.constant(splits.y_train, tf.int64), [len(rates), 64])
    with tf.GradientTape() as tape:
        tape.watch(initial)
        hidden = tf.nn.relu(tf.einsum("bi,kio->kbo", images, initial[0])
                            + initial[1][:, tf.newaxis, :])
        logits = tf.matmul(hidden, initial[2]) + initial[3][:, tf.newaxis, :]
        losses = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits),
                                axis=1)
        total = tf.reduce_sum(losses)
    gradients = tape.gradient(total, initial)
    np.testing.assert_allclose(result.history["loss"][:, 0], losses.numpy(), rtol=1e-12)
    for trained, start, gradient in zip(result.final_weights, initial, gradients):
        shaped = rates.reshape((-1,) + (1,) * (start.shape.rank - 1))
        np.testing.assert_allclose(trained, start.numpy() - shaped * gradient.numpy(),
                                   rtol=1e-12, atol=1e-15)


def test_the_final_weights_are_read_only_and_a_members_weights_its_own_copy():
    result = fit_image_population(TASK, "gd", {"learning_rate": [0.1, 0.05]}, epochs=1,
                                  batch_size=BATCH_SIZE)
    assert not any(weight.flags.writeable for weight in result.final_weights)
    with pytest.raises(ValueError, match="read-only"):
        result.final_weights[0][0] = 0.0
    copied = result.weights(0)
    copied[0][...] = 0.0
    assert result.final_weights[0][0].any()
