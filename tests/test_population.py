"""The population engine trains every trial exactly as ToyTask.fit trains it alone.

Each trial of a population (one row of hyperparameters) is compared with a
separate ToyTask.fit of the Keras class built with that row: per-epoch loss,
logged η and every step of the trajectory, to float64 rounding, under Keras's
default float32 floatx (gdbench keeps η and schedules in float64).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest
from optimizer_cases import OPTIMIZERS

import gdbench.optimizers
import gdbench.schedules
import gdbench.tasks
from gdbench.tasks import _population_loop
from gdbench.tasks.population import PopulationResult, fit_population
from gdbench.tasks.trace import EFFECTIVE_LEARNING_RATES, effective_learning_rate_trace

RTOL = 1e-9
#: Parameters near zero are compared with this absolute tolerance as well.
ATOL = 1e-12


def _rows(name: str, bias_correction: bool | None = None) -> list[dict[str, Any]]:
    """DESIGN.md's defaults, then the table's variants (other η, β, ε, ...)."""
    row = OPTIMIZERS[name]
    rows = [dict(row.defaults)] + [{**row.defaults, **variant} for variant in row.variants]
    if bias_correction is not None:
        rows = [{**r, "bias_correction": bias_correction} for r in rows]
    return rows


def _columns(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Rows of keywords as the population takes them: K values per number, flags shared."""
    columns: dict[str, Any] = {}
    for name in rows[0]:
        values = [row[name] for row in rows]
        columns[name] = values[0] if isinstance(values[0], bool) else np.array(values, dtype=float)
    return columns


def _assert_trial_matches(result: PopulationResult, index: int, reference: gdbench.tasks.FitResult,
                          rtol: float = RTOL) -> None:
    trial = result.trial(index)
    np.testing.assert_allclose(trial.history["loss"], reference.history["loss"], rtol=rtol, atol=0)
    np.testing.assert_allclose(
        trial.history["learning_rate"], reference.history["learning_rate"], rtol=rtol, atol=0
    )
    if result.trajectories is not None:
        np.testing.assert_allclose(trial.trajectory, reference.trajectory, rtol=rtol, atol=ATOL)


# A flag is shared by a population, so Adam's is fixed per population.
OPTIMIZER_POPULATIONS = [
    pytest.param(name, True if "bias_correction" in OPTIMIZERS[name].defaults else None, id=name)
    for name in gdbench.optimizers.names()
]
OPTIMIZER_POPULATIONS.append(pytest.param("adam", False, id="adam-without-bias-correction"))


@pytest.mark.parametrize(("name", "bias_correction"), OPTIMIZER_POPULATIONS)
def test_every_trial_matches_its_own_keras_fit(name, bias_correction):
    task = gdbench.tasks.get("sigmoid_neuron", start=(-4.0, 4.0))
    rows = _rows(name, bias_correction)[:2]
    # The graph loop compiles faster than XLA; the XLA loop is compared with
    # Keras below, and with the graph loop in test_xla_and_graph_loops_agree.
    result = fit_population(task, name, _columns(rows), epochs=12, record_trajectory=True,
                            jit_compile=False)
    assert result.losses.shape == (2, 12) and result.trajectories.shape == (2, 13, 2)
    assert result.finite.all()
    for index, row in enumerate(rows):
        reference = task.fit(gdbench.optimizers.get(name, **row), epochs=12)
        _assert_trial_matches(result, index, reference)


@pytest.mark.parametrize(("name", "bias_correction"), [
    ("gd", None), ("momentum", None), ("adagrad", None), ("rmsprop", None),
    ("adam", True), ("adam", False), ("rprop", None),
])
def test_stochastic_batches_with_a_schedule_match_keras(name, bias_correction):
    """Batch size 1 reshuffles the two points every epoch; η decays per step."""
    task = gdbench.tasks.get("sigmoid_neuron", seed=3)
    rows = [{k: v for k, v in row.items() if k != "learning_rate"}
            for row in _rows(name, bias_correction)[:2]]
    schedule_rows = [
        {"initial_learning_rate": 20 * OPTIMIZERS[name].defaults["learning_rate"],
         "decay_rate": 0.7, "decay_steps": 3},
        {"initial_learning_rate": 5 * OPTIMIZERS[name].defaults["learning_rate"],
         "decay_rate": 0.9, "decay_steps": 2},
    ]
    result = fit_population(
        task, name, _columns(rows), epochs=6, batch_size=1, schedule="exponential",
        schedule_parameters=_columns(schedule_rows), record_trajectory=True,
    )
    assert result.steps_per_epoch == 2
    for index, (row, schedule_row) in enumerate(zip(rows, schedule_rows)):
        schedule = gdbench.schedules.get("exponential", **schedule_row)
        optimizer = gdbench.optimizers.get(name, learning_rate=schedule, **row)
        _assert_trial_matches(result, index, task.fit(optimizer, epochs=6, batch_size=1))


def test_mini_batches_with_a_short_last_batch_match_keras():
    """500 examples in batches of 64: seven full batches and one of 52, reshuffled per epoch."""
    task = gdbench.tasks.get("sigmoid_sparse", sparsity=0.5)
    rows = [{"learning_rate": 0.05, "beta_1": 0.9}, {"learning_rate": 0.01, "beta_1": 0.5}]
    result = fit_population(task, "adam", _columns(rows), epochs=3, batch_size=64,
                            record_trajectory=True)
    assert result.steps_per_epoch == 8 and result.trajectories.shape == (2, 25, 2)
    for index, row in enumerate(rows):
        reference = task.fit(gdbench.optimizers.get("adam", **row), epochs=3, batch_size=64)
        _assert_trial_matches(result, index, reference)


TARGET = gdbench.schedules.get("cosine", initial_learning_rate=2.0, decay_steps=20)

#: schedule name → two trials' keywords (per-trial values as two-item arrays).
SCHEDULE_TRIALS: dict[str, dict[str, Any]] = {
    "constant": {"learning_rate": [0.5, 2.0]},
    "step_decay": {"initial_learning_rate": [1.0, 3.0], "drop": 0.5, "steps_per_drop": [3, 5]},
    "exponential": {"initial_learning_rate": [1.0, 3.0], "decay_rate": [0.9, 0.5],
                    "decay_steps": 4, "staircase": True},
    "inverse_time": {"initial_learning_rate": [1.0, 3.0], "decay_rate": [0.5, 2.0],
                     "decay_steps": 3},
    "inverse_sqrt": {"initial_learning_rate": [1.0, 3.0], "decay_steps": [2, 7]},
    "polynomial": {"initial_learning_rate": [1.0, 3.0], "decay_steps": 6,
                   "end_learning_rate": 0.1, "power": [2.0, 0.5], "cycle": True},
    "piecewise_constant": {"boundaries": [4, 9], "values": [[1.0, 3.0], 0.5, [0.2, 0.1]]},
    "cyclical": {"initial_learning_rate": [0.1, 0.5], "maximal_learning_rate": [3.0, 2.0],
                 "step_size": [3, 4], "mode": "exp_range", "gamma": 0.97},
    "cosine": {"initial_learning_rate": [1.0, 3.0], "decay_steps": 10, "alpha": [0.0, 0.2]},
    "cosine_restarts": {"maximal_learning_rate": [1.0, 3.0], "minimal_learning_rate": 0.1,
                        "period": [4, 6]},
    "warmup": {"target": TARGET, "warmup_steps": [3, 6], "initial_learning_rate": [0.0, 0.5]},
}


def test_the_schedule_table_covers_every_registered_schedule():
    assert set(SCHEDULE_TRIALS) == set(gdbench.schedules.names())


def _trial_keywords(keywords: dict[str, Any], index: int) -> dict[str, Any]:
    def pick(value: Any) -> Any:
        return value[index] if isinstance(value, list) and len(value) == 2 else value

    return {
        name: [pick(item) for item in value] if name in ("boundaries", "values") else pick(value)
        for name, value in keywords.items()
    }


@pytest.mark.parametrize("schedule", list(SCHEDULE_TRIALS) + ["warmup-to-a-rate"])
def test_every_schedule_matches_keras(schedule):
    keywords = ({"target": [1.5, 3.0], "warmup_steps": 4} if schedule == "warmup-to-a-rate"
                else SCHEDULE_TRIALS[schedule])
    name = schedule.split("-")[0]
    task = gdbench.tasks.get("sigmoid_neuron", start=(-4.0, 4.0))
    result = fit_population(task, "gd", {}, epochs=15, schedule=name,
                            schedule_parameters=keywords, record_trajectory=True,
                            jit_compile=False)
    for index in range(2):
        rate = gdbench.schedules.get(name, **_trial_keywords(keywords, index))
        reference = task.fit(gdbench.optimizers.get("gd", learning_rate=rate), epochs=15)
        _assert_trial_matches(result, index, reference)


def test_xla_and_graph_loops_agree():
    task = gdbench.tasks.get("sigmoid_neuron", start=(-4.0, 4.0))
    keywords = {"learning_rate": [0.1, 0.5, 2.0], "beta_1": [0.5, 0.8, 0.9]}
    compiled = fit_population(task, "nadam", keywords, epochs=40, jit_compile=True)
    graph = fit_population(task, "nadam", keywords, epochs=40, jit_compile=False)
    np.testing.assert_allclose(compiled.losses, graph.losses, rtol=1e-12, atol=0)


def test_under_float32_floatx_constant_and_scheduled_eta_stay_exact():
    """η is held in float64 and schedules evaluate an integer step in float64,
    so the default float32 floatx does not round a toy task's learning rate."""
    task = gdbench.tasks.get("sigmoid_neuron", start=(-4.0, 4.0))
    assert keras.config.floatx() == "float32"
    constant = fit_population(task, "gd", {"learning_rate": 0.3}, epochs=30)
    reference = task.fit(gdbench.optimizers.get("gd", learning_rate=0.3), epochs=30)
    np.testing.assert_allclose(constant.losses[0], reference.history["loss"], rtol=RTOL)

    keywords = {"initial_learning_rate": 0.3, "decay_steps": 20}
    scheduled = fit_population(task, "gd", {}, epochs=30, schedule="cosine",
                               schedule_parameters=keywords)
    rate = gdbench.schedules.get("cosine", **keywords)
    reference = task.fit(gdbench.optimizers.get("gd", learning_rate=rate), epochs=30)
    np.testing.assert_allclose(scheduled.losses[0], reference.history["loss"], rtol=RTOL)


def test_a_diverging_trial_leaves_the_others_untouched():
    task = gdbench.tasks.get("rosenbrock")
    together = fit_population(task, "gd", {"learning_rate": [1e-3, 0.5]}, epochs=30,
                              record_trajectory=True)
    alone = fit_population(task, "gd", {"learning_rate": [1e-3]}, epochs=30)
    assert together.finite.tolist() == [True, False]
    np.testing.assert_array_equal(together.losses[0], alone.losses[0])

    # The diverged trial is reported as ToyTask.fit reports it: up to the
    # first non-finite loss, then nothing.
    reference = task.fit(gdbench.optimizers.get("gd", learning_rate=0.5), epochs=30)
    diverged = together.trial(1)
    assert diverged.epochs == reference.epochs == together.epochs_run[1] < 30
    assert not np.isfinite(together.final_loss[1])
    np.testing.assert_allclose(diverged.history["loss"][:-1], reference.history["loss"][:-1],
                               rtol=RTOL)
    assert np.isnan(together.losses[1, together.epochs_run[1]:]).all()


def test_omitted_keywords_take_the_class_defaults():
    task = gdbench.tasks.get("sigmoid_neuron")
    explicit = fit_population(task, "adam", {"learning_rate": [0.1, 0.2], "beta_1": 0.9,
                                             "beta_2": 0.999, "epsilon": 1e-8,
                                             "bias_correction": True}, epochs=10,
                              jit_compile=False)
    implicit = fit_population(task, "adam", {"learning_rate": [0.1, 0.2]}, epochs=10,
                              jit_compile=False)
    np.testing.assert_array_equal(explicit.losses, implicit.losses)


def test_a_new_population_of_the_same_shape_reuses_the_compiled_loop():
    task = gdbench.tasks.get("sigmoid_neuron")
    _population_loop._COMPILED.clear()
    fit_population(task, "momentum", {"learning_rate": [0.1, 0.2], "momentum": 0.9}, epochs=5)
    fit_population(task, "momentum", {"learning_rate": [0.3, 0.4], "momentum": [0.5, 0.6]},
                   epochs=5)
    ((_, train),) = _population_loop._COMPILED.values()
    assert train.experimental_get_tracing_count() == 1


SIGMOID = gdbench.tasks.get("sigmoid_neuron")


@pytest.mark.parametrize(("call", "error", "field"), [
    (lambda: fit_population("sigmoid_neuron", "gd", {"learning_rate": 0.1}, epochs=2),
     ValueError, "task"),
    (lambda: fit_population(SIGMOID, "sgd", {"learning_rate": 0.1}, epochs=2),
     KeyError, "optimizer"),
    (lambda: fit_population(SIGMOID, "adam", {"learning_rate": 0.1, "beta1": 0.9}, epochs=2),
     ValueError, "beta1"),
    (lambda: fit_population(SIGMOID, "adam", {"beta_1": 0.9}, epochs=2),
     ValueError, "learning_rate"),
    (lambda: fit_population(SIGMOID, "adam", {"learning_rate": [0.1, 0.2], "beta_1": [0.9] * 3},
                            epochs=2),
     ValueError, "beta_1"),
    (lambda: fit_population(SIGMOID, "adam", {"learning_rate": [0.1, 0.2], "beta_1": [0.9, 1.5]},
                            epochs=2),
     ValueError, "beta_1"),
    (lambda: fit_population(SIGMOID, "adam", {"learning_rate": [0.1, -0.2]}, epochs=2),
     ValueError, "learning_rate"),
    (lambda: fit_population(SIGMOID, "adam", {"learning_rate": [0.1, 0.2],
                                              "bias_correction": [True, False]}, epochs=2),
     ValueError, "bias_correction"),
    (lambda: fit_population(SIGMOID, "gd", {"learning_rate": [[0.1, 0.2]]}, epochs=2),
     ValueError, "learning_rate"),
    (lambda: fit_population(SIGMOID, "gd", {"learning_rate": 0.1}, epochs=0),
     ValueError, "epochs"),
    (lambda: fit_population(SIGMOID, "gd", {"learning_rate": 0.1}, epochs=2, batch_size=3),
     ValueError, "batch_size"),
    (lambda: fit_population(SIGMOID, "gd", {"learning_rate": 0.1}, epochs=2, schedule="cosine",
                            schedule_parameters={"initial_learning_rate": 1.0, "decay_steps": 5}),
     ValueError, "learning_rate"),
    (lambda: fit_population(SIGMOID, "gd", {"learning_rate": 0.1}, epochs=2,
                            schedule_parameters={"decay_steps": 5}),
     ValueError, "schedule_parameters"),
    (lambda: fit_population(SIGMOID, "gd", {}, epochs=2, schedule="cosine_decay",
                            schedule_parameters={"decay_steps": 5}),
     KeyError, "schedule"),
    (lambda: fit_population(SIGMOID, "gd", {}, epochs=2, schedule="cosine",
                            schedule_parameters={"initial_learning_rate": 1.0}),
     ValueError, "decay_steps"),
    (lambda: fit_population(SIGMOID, "gd", {}, epochs=2, schedule="cosine",
                            schedule_parameters={"initial_learning_rate": 1.0, "decay_steps": 5,
                                                 "warmup_steps": 2}),
     ValueError, "warmup_steps"),
    (lambda: fit_population(SIGMOID, "gd", {}, epochs=2, schedule="cyclical",
                            schedule_parameters={"initial_learning_rate": [0.1, 0.5],
                                                 "maximal_learning_rate": [1.0, 0.2],
                                                 "step_size": 2}),
     ValueError, "maximal_learning_rate"),
    (lambda: fit_population(SIGMOID, "gd", {"learning_rate": [0.1, 0.2]}, epochs=2,
                            schedule=None, record_trajectory="yes"),
     ValueError, "record_trajectory"),
], ids=[
    "not-a-toy-task", "unknown-optimizer", "unknown-hyperparameter", "missing-learning-rate",
    "mismatched-K", "beta-out-of-range-in-one-trial", "negative-eta-in-one-trial",
    "discrete-keyword-varied", "two-dimensional-values", "zero-epochs", "batch-too-large",
    "learning-rate-and-schedule", "schedule-parameters-without-schedule", "unknown-schedule",
    "missing-schedule-keyword", "unknown-schedule-keyword", "schedule-row-invalid",
    "record-trajectory-not-a-flag",
])
def test_bad_input_raises_an_error_naming_the_field(call, error, field):
    with pytest.raises(error, match=field):
        call()


@pytest.mark.parametrize("name", sorted(EFFECTIVE_LEARNING_RATES))
def test_effective_learning_rates_recorded_by_the_engine_match_the_trace(name):
    """The report's traces: the engine's slots and η, every step at once, against
    effective_learning_rate_trace's Keras class stepped alone (its schedule evaluated
    on all steps at once), with a decaying schedule and two trials of other values."""
    task = gdbench.tasks.get("sigmoid_neuron", start=(-4.0, 4.0))
    # A flag is shared by a population: Adam's bias correction on for both.
    shared = True if "bias_correction" in OPTIMIZERS[name].defaults else None
    rows = [{k: v for k, v in row.items() if k != "learning_rate"}
            for row in _rows(name, shared)[:2]]
    rate = OPTIMIZERS[name].defaults["learning_rate"]
    schedule_rows = [{"initial_learning_rate": rate, "decay_steps": 15},
                     {"initial_learning_rate": 3 * rate, "decay_steps": 25}]
    result = fit_population(task, name, _columns(rows), epochs=30, schedule="cosine",
                            schedule_parameters=_columns(schedule_rows), jit_compile=False,
                            record_effective_learning_rates=True)
    assert result.effective_learning_rates.shape == (2, 30, 2)
    for index, (row, schedule_row) in enumerate(zip(rows, schedule_rows)):
        optimizer = gdbench.optimizers.get(
            name, learning_rate=gdbench.schedules.get("cosine", **schedule_row), **row)
        traced = effective_learning_rate_trace(task, optimizer, epochs=30)
        np.testing.assert_allclose(result.trial(index).effective_learning_rates, traced,
                                   rtol=1e-12, atol=1e-300)


def test_effective_learning_rates_are_none_unless_recorded_or_known():
    task = gdbench.tasks.get("sigmoid_neuron")
    plain = fit_population(task, "adam", {"learning_rate": [0.1, 0.2]}, epochs=3)
    assert plain.effective_learning_rates is None
    assert plain.trial(0).effective_learning_rates is None
    def plain_step(param, grad, slots, *, step, learning_rate):
        return param - learning_rate * grad, ()

    # A rule of the user's: no formula of its effective learning rate.
    unknown = fit_population(task, gdbench.optimizers.rule_optimizer(plain_step), {"learning_rate": [0.1, 0.2]}, epochs=3,
                             record_effective_learning_rates=True)
    assert unknown.effective_learning_rates is None
