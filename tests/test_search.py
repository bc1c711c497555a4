"""The lectures' random search and line search, on the sigmoid neuron.

The loss and gradient used as references here are the lectures' numpy
formulas, written independently of the task's TensorFlow loss.
"""

from __future__ import annotations

import numpy as np
import pytest

import gdbench.tasks
from gdbench.tasks import search

X = np.array([0.5, 2.5])
Y = np.array([0.2, 0.9])


def numpy_loss(w: float, b: float) -> float:
    f = 1.0 / (1.0 + np.exp(-(w * X + b)))
    return float(0.5 * np.sum((f - Y) ** 2))


def numpy_gradient(w: float, b: float) -> np.ndarray:
    f = 1.0 / (1.0 + np.exp(-(w * X + b)))
    common = (f - Y) * f * (1.0 - f)
    return np.array([np.sum(common * X), np.sum(common)])


@pytest.fixture
def task() -> gdbench.tasks.ToyTask:
    return gdbench.tasks.get("sigmoid_neuron")


@pytest.mark.parametrize(("method", "options"), [
    ("random_search", {"epochs": 200}),
    ("line_search", {"epochs": 30}),
    ("line_search", {"epochs": 30, "batch_size": 1}),
])
def test_both_methods_reduce_the_sigmoid_neurons_loss(task, method, options):
    start = numpy_loss(*task.initial_parameters())
    result = search.fit(method, task, **options)
    assert result.epochs == options["epochs"]
    assert result.history["loss"][-1] < start / 20
    steps = options["epochs"] * task.steps_per_epoch(options.get("batch_size"))
    assert result.trajectory.shape == (steps + 1, 2)
    final = numpy_loss(*result.trajectory[-1])
    assert result.history["loss"][-1] == pytest.approx(final, rel=1e-12)


def test_a_line_search_step_is_never_worse_than_a_gd_step_with_any_eta_of_its_grid(task):
    grid = (0.01, 0.1, 0.5, 1.0, 5.0, 10.0, 50.0)
    result = search.line_search(task, epochs=15, learning_rates=grid)
    chosen = set()
    for before, after in zip(result.trajectory[:-1], result.trajectory[1:]):
        gd_losses = [numpy_loss(*(before - eta * numpy_gradient(*before))) for eta in grid]
        assert numpy_loss(*after) <= min(gd_losses) * (1 + 1e-9)
        best = grid[int(np.argmin(gd_losses))]
        np.testing.assert_allclose(after, before - best * numpy_gradient(*before), rtol=1e-10)
        chosen.add(best)
    # Several η are chosen along the way, so the comparison is not trivially one GD run.
    assert len(chosen) > 1


def test_random_search_steps_downhill_along_its_direction_as_the_lectures_write_it(task):
    alpha, delta, seed = 2.0, 0.3, 7
    result = search.random_search(task, epochs=3, alpha=alpha, delta=delta, seed=seed)
    directions = np.random.default_rng(seed)
    w = task.initial_parameters()
    for row in result.trajectory[1:]:
        dw = delta * directions.standard_normal(2)
        g_plus, g_minus = numpy_loss(*(w + dw)), numpy_loss(*(w - dw))
        np.testing.assert_allclose(row, w - alpha * (g_plus - g_minus) * dw, rtol=1e-12)
        # The move points toward the lower of the two probes W ± δW.
        assert np.dot(row - w, dw) * (g_plus - g_minus) < 0
        w = row


def test_random_search_is_determined_by_its_seed(task):
    first = search.random_search(task, epochs=20, seed=3)
    again = search.random_search(task, epochs=20, seed=3)
    other = search.random_search(task, epochs=20, seed=4)
    np.testing.assert_array_equal(first.trajectory, again.trajectory)
    assert first.history == again.history
    assert not np.array_equal(first.trajectory, other.trajectory)


def test_the_registry_runs_each_method_by_name(task):
    assert search.names() == ["random_search", "line_search"]
    by_name = search.fit("line_search", task, epochs=5, learning_rates=[0.5, 2.0])
    direct = search.line_search(task, epochs=5, learning_rates=[0.5, 2.0])
    np.testing.assert_array_equal(by_name.trajectory, direct.trajectory)
    assert set(by_name.history["learning_rate"]) <= {0.5, 2.0}
    random = search.fit("random_search", task, epochs=5, alpha=1.0)
    assert random.history["learning_rate"] == [1.0] * 5


def test_a_diverging_run_stops_after_the_first_non_finite_loss():
    task = gdbench.tasks.get("rosenbrock")
    result = search.line_search(task, epochs=50, learning_rates=[10.0])
    assert result.epochs < 50 and not result.finite


@pytest.mark.parametrize(("call", "error", "field"), [
    (lambda t: search.fit("hill_climbing", t), KeyError, "method"),
    (lambda t: search.fit("line_search", t, alpha=1.0), ValueError, "alpha"),
    (lambda t: search.random_search(t, alpha=0.0), ValueError, "alpha"),
    (lambda t: search.random_search(t, delta=-1.0), ValueError, "delta"),
    (lambda t: search.random_search(t, seed=-1), ValueError, "seed"),
    (lambda t: search.random_search(t, epochs=0), ValueError, "epochs"),
    (lambda t: search.line_search(t, learning_rates=[]), ValueError, "learning_rates"),
    (lambda t: search.line_search(t, learning_rates=[1.0, -0.5]), ValueError,
     r"learning_rates\[1\]"),
    (lambda t: search.line_search(t, batch_size=5), ValueError, "batch_size"),
    (lambda t: search.line_search("sigmoid_neuron"), ValueError, "task"),
])
def test_bad_options_raise_an_error_naming_the_field(task, call, error, field):
    with pytest.raises(error, match=field):
        call(task)
