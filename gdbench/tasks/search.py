"""Two of the lectures' methods that are not Keras optimizers, run on toy tasks.

- :func:`random_search`: finite-difference random search, derivative-free.
  Each step draws a random direction δW, evaluates the loss on either side of
  the current point and moves along δW downhill, by the difference.
- :func:`line_search`: gradient descent that picks its learning rate at every
  step, trying several η and keeping the one of lowest loss.

Both take a :class:`~gdbench.tasks.ToyTask` and return the
:class:`~gdbench.tasks.FitResult` that :meth:`ToyTask.fit` returns for an
optimizer (per-epoch loss on all data, the trajectory of every step, the same
batches in the same order), so that they can be listed and plotted beside the
gradient methods. :data:`METHODS` maps their names to them.

    >>> import gdbench.tasks
    >>> from gdbench.tasks import search
    >>> task = gdbench.tasks.get("sigmoid_neuron")
    >>> result = search.fit("line_search", task, epochs=50)
    >>> result.trajectory.shape
    (51, 2)
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Callable, Sequence

import numpy as np
import tensorflow as tf

from gdbench import _validate
from gdbench.tasks._base import FitResult, final_metrics
from gdbench.tasks._toy import ToyTask

__all__ = ["LINE_SEARCH_LEARNING_RATES", "METHODS", "fit", "line_search", "names", "random_search"]

#: The learning rates the lectures' line search tries at every step.
LINE_SEARCH_LEARNING_RATES = (0.1, 0.5, 1.0, 5.0, 10.0)


def random_search(
    task: ToyTask,
    *,
    epochs: int | None = None,
    alpha: float = 1.0,
    delta: float = 0.5,
    batch_size: int | None = None,
    seed: int = 0,
) -> FitResult:
    """Finite-difference random search: move along a random direction, downhill.

    At every step (one per batch, as an optimizer), with L the loss on the batch:

        δW ~ N(0, δ² I)                  (seeded)
        G₊ = L(W + δW) ,  G₋ = L(W − δW)
        W ← W − α (G₊ − G₋) δW

    G₊ − G₋ ≈ 2 ∇L · δW, so the step goes downhill along δW, and on average
    it is a gradient step of η ≈ 2 α δ² without any gradient being computed.

    ``history["learning_rate"]`` holds α every epoch.

    Args:
        task: a toy task.
        epochs: epochs to run, ≥ 1; ``None`` for the task's default.
        alpha: α > 0, the step factor.
        delta: δ > 0, the standard deviation of each coordinate of δW.
        batch_size: examples per step, 1 ≤ B ≤ N; ``None`` for the task's default.
        seed: seeds the directions; the same seed gives the same run.

    Raises:
        ValueError: a task that is not a toy task, or a bad option (named).
    """
    task = _toy_task(task)
    epochs = task.resolve_epochs(epochs)
    batch_size = task.resolve_batch_size(batch_size)
    alpha = _validate.number("alpha", alpha, low=0.0, low_open=True)
    delta = _validate.number("delta", delta, low=0.0, low_open=True)
    seed = _validate.integer("seed", seed, low=0)
    loss = tf.function(task.loss)
    directions = np.random.default_rng(seed)

    def step(parameters: np.ndarray, batch: Any) -> tuple[np.ndarray, float]:
        direction = delta * directions.standard_normal(parameters.shape)
        probes = np.stack([parameters + direction, parameters - direction])
        plus, minus = loss(probes, batch).numpy()
        return parameters - alpha * (plus - minus) * direction, alpha

    return _train(task, step, loss, epochs, batch_size)


def line_search(
    task: ToyTask,
    *,
    epochs: int | None = None,
    learning_rates: Sequence[float] = LINE_SEARCH_LEARNING_RATES,
    batch_size: int | None = None,
) -> FitResult:
    """Gradient descent that tries several η at every step and keeps the best.

    At every step, with g = ∇L(W) on the batch:

        W ← argmin over η in ``learning_rates`` of L(W − η g)

    (the loss on the same batch; the first η wins a tie). So no step is worse,
    on its batch, than a gradient step from the same point with any one η of
    the grid; but the grid has no η = 0, so a step may still raise the loss
    when every η overshoots. ``history["learning_rate"]`` holds the η chosen
    at each epoch's last step.

    Args:
        task: a toy task.
        epochs: epochs to run, ≥ 1; ``None`` for the task's default.
        learning_rates: the η to try, each > 0; the lectures' grid by default.
        batch_size: examples per step, 1 ≤ B ≤ N; ``None`` for the task's default.

    Raises:
        ValueError: a task that is not a toy task, or a bad option (named).
    """
    task = _toy_task(task)
    epochs = task.resolve_epochs(epochs)
    batch_size = task.resolve_batch_size(batch_size)
    if isinstance(learning_rates, (str, bytes)) or not hasattr(learning_rates, "__len__") or not (
        len(learning_rates)
    ):
        raise ValueError(
            f"learning_rates: expected a non-empty sequence of η > 0, got {learning_rates!r}"
        )
    rates = np.array([
        _validate.number(f"learning_rates[{index}]", rate, low=0.0, low_open=True)
        for index, rate in enumerate(learning_rates)
    ])
    loss = tf.function(task.loss)

    @tf.function
    def candidates_and_losses(parameters: tf.Tensor, batch: Any) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            tape.watch(parameters)
            value = task.loss(parameters, batch)
        gradient = tape.gradient(value, parameters)
        candidates = parameters[tf.newaxis, :] - rates[:, np.newaxis] * gradient[tf.newaxis, :]
        return candidates, task.loss(candidates, batch)

    def step(parameters: np.ndarray, batch: Any) -> tuple[np.ndarray, float]:
        candidates, losses = candidates_and_losses(tf.constant(parameters), batch)
        losses = np.where(np.isnan(losses.numpy()), np.inf, losses.numpy())
        best = int(np.argmin(losses))
        return candidates.numpy()[best], float(rates[best])

    return _train(task, step, loss, epochs, batch_size)


#: name → method, each called as ``method(task, epochs=..., batch_size=..., **options)``.
METHODS: dict[str, Callable[..., FitResult]] = {
    "random_search": random_search,
    "line_search": line_search,
}


def names() -> list[str]:
    """Every registered method name."""
    return list(METHODS)


def fit(name: str, task: ToyTask, **options: Any) -> FitResult:
    """Run the method ``name`` on ``task``, as ``task.fit`` runs an optimizer.

    Args:
        name: a registered name (see :func:`names`).
        task: a toy task.
        **options: the method's keywords (``epochs``, ``batch_size`` and its own).

    Raises:
        KeyError: unknown name; the message lists the registered names.
        ValueError: an option the method does not take (the message lists
            those it does), or a bad value.
    """
    if not isinstance(name, str) or name.lower() not in METHODS:
        raise KeyError(f"method: unknown name {name!r}; registered: {', '.join(METHODS)}")
    method = METHODS[name.lower()]
    accepted = [
        parameter.name for parameter in inspect.signature(method).parameters.values()
        if parameter.kind is parameter.KEYWORD_ONLY
    ]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(
            f"{name}: unknown option(s) {', '.join(unknown)}; accepted: {', '.join(accepted)}"
        )
    return method(task, **options)


def _toy_task(task: Any) -> ToyTask:
    if not isinstance(task, ToyTask):
        raise ValueError(
            f"task: expected a ToyTask (e.g. gdbench.tasks.get('sigmoid_neuron')), got {task!r}"
        )
    return task


def _train(
    task: ToyTask,
    step: Callable[[np.ndarray, Any], tuple[np.ndarray, float]],
    loss: Callable[..., tf.Tensor],
    epochs: int,
    batch_size: int,
) -> FitResult:
    """The epochs and batches of :meth:`ToyTask.fit`, with ``step`` in place of the optimizer.

    ``step(parameters, batch)`` returns the next parameters and the rate to log.
    As :meth:`ToyTask.fit`, the loss on all data is logged after every epoch,
    and a non-finite loss ends training after that epoch.
    """
    parameters = np.asarray(task.initial_parameters(), dtype=np.float64)
    rows = [parameters]
    history: dict[str, list[float]] = {"loss": [], "learning_rate": []}
    for epoch in range(epochs):
        for batch in task.batches(batch_size, epoch):
            parameters, rate = step(parameters, batch)
            rows.append(parameters)
        history["loss"].append(float(loss(parameters)))
        history["learning_rate"].append(rate)
        if not math.isfinite(history["loss"][-1]):
            break
    return FitResult(
        history=history,
        metrics=final_metrics(history),
        steps_per_epoch=task.steps_per_epoch(batch_size),
        trajectory=np.stack(rows),
        parameter_names=tuple(task.parameter_names),
    )
