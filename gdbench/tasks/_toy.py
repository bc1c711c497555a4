"""Toy tasks: a few parameters, a pure TensorFlow loss, and the loop that trains them.

:class:`ToyTask` trains in float64 with the trajectory of every step recorded,
each epoch's steps compiled into one ``tf.function``; :class:`DatasetToyTask`
adds a fixed data set drawn from the task's seed, shuffled each epoch.
:class:`ToyModel` is what a callback sees as ``model`` meanwhile.
"""

from __future__ import annotations

import abc
import math
from typing import Any, Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from gdbench import _validate
from gdbench.tasks._base import (
    SHUFFLE_STREAM,
    FitResult,
    Task,
    check_optimizer,
    final_metrics,
    reported_parameters,
)
from gdbench.tasks._gradients import custom_gradients_released

__all__ = ["DatasetToyTask", "ToyModel", "ToyTask"]


class ToyModel:
    """What a callback sees as ``model`` while a toy task trains.

    Attributes:
        optimizer: the optimizer being run.
        stop_training: set it to ``True`` to end training after this epoch.
        parameters: the float64 variable of shape [P] being trained (for
            Nesterov the look-ahead point, not the iterate the task reports;
            see :func:`reported_parameters`).
    """

    def __init__(self, optimizer: keras.optimizers.Optimizer, parameters: keras.Variable) -> None:
        self.optimizer = optimizer
        self.parameters = parameters
        self.stop_training = False

    def get_weights(self) -> list[np.ndarray]:
        """The parameters, as Keras models return weights (for e.g. ``EarlyStopping``)."""
        return [keras.ops.convert_to_numpy(self.parameters)]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        """Overwrite the parameters with ``weights[0]``."""
        self.parameters.assign(np.asarray(weights[0], dtype=np.float64))


class ToyTask(Task):
    """A task of a few parameters whose loss is pure TensorFlow (float64).

    Subclasses implement :meth:`initial_parameters`, :meth:`loss` and, when
    they have data, :meth:`batches`. The loss broadcasts: parameters of shape
    ``[..., P]`` give losses of shape ``[...]``, so one call can evaluate a
    whole population of trials or a grid over the surface.

    Attributes:
        parameter_names: the name of each of the P parameters.
        surface_bounds: ``((x_min, x_max), (y_min, y_max))``, the window in
            which to draw a two-parameter task's loss surface; ``None`` otherwise.
    """

    parameter_names: tuple[str, ...]
    surface_bounds: tuple[tuple[float, float], tuple[float, float]] | None = None
    num_examples: int = 1

    @abc.abstractmethod
    def initial_parameters(self) -> np.ndarray:
        """The start point, shape [P], float64."""

    @abc.abstractmethod
    def loss(self, params: tf.Tensor, batch: Any = None) -> tf.Tensor:
        """The loss at ``params`` ([..., P]) on ``batch`` (``None``: all data), shape [...]."""

    def batches(self, batch_size: int | None, epoch: int) -> list[Any]:
        """The batches of one epoch, in the order the optimizer sees them.

        Deterministic in (seed, options, batch_size, epoch): every trial with
        the same seed sees the same batches. Each item can be passed to
        :meth:`loss`; ``None`` stands for the whole training set.

        Args:
            batch_size: as for :meth:`fit`.
            epoch: 0-based epoch number.
        """
        self.resolve_batch_size(batch_size)
        _validate.integer("epoch", epoch, low=0)
        return [None]

    def metrics(self, params: tf.Tensor) -> dict[str, tf.Tensor]:
        """The metrics logged each epoch, on all data: ``"loss"`` and any the task adds.

        Broadcasts as :meth:`loss`: params [..., P] give metrics of shape [...].
        """
        return {"loss": self.loss(params)}

    def evaluation_batches(self, batch_size: int | None, epoch: int) -> dict[str, Any]:
        """Losses a task's protocol evaluates on data of their own: history key → batch.

        Evaluated at the end of epoch ``epoch`` (1-based here; 0 is before
        training, kept in :attr:`FitResult.initial`), each as :meth:`loss` on
        its batch, the same for every trial of a seed. A key that
        :meth:`metrics` also gives (``"loss"``) replaces that metric. The base
        class evaluates nothing of the kind: ``{}``.

        Args:
            batch_size: as for :meth:`fit`.
            epoch: 0 (before training) … the epochs run.
        """
        self.resolve_batch_size(batch_size)
        _validate.integer("epoch", epoch, low=0)
        return {}

    def evaluate(self, params: tf.Tensor, batch_size: int | None, epoch: int
                 ) -> dict[str, tf.Tensor]:
        """The losses of :meth:`evaluation_batches` at ``params`` ([..., P] → [...] each).

        Args:
            params: the parameters reached.
            batch_size: as for :meth:`fit`.
            epoch: as for :meth:`evaluation_batches`.
        """
        params = tf.convert_to_tensor(params, tf.float64)
        return {key: self.loss(params, batch)
                for key, batch in self.evaluation_batches(batch_size, epoch).items()}

    @custom_gradients_released()
    def fit(
        self,
        optimizer: keras.optimizers.Optimizer,
        *,
        epochs: int | None = None,
        batch_size: int | None = None,
        callbacks: Sequence[keras.callbacks.Callback] = (),
        verbose: int = 0,
    ) -> FitResult:
        """Train the parameters from :meth:`initial_parameters`; see :meth:`Task.fit`.

        Each epoch runs its batches through one compiled loop (gradient by
        ``tf.GradientTape``, ``optimizer.apply_gradients``), then logs the
        metrics on all data at the parameters reached, and the optimizer's η;
        the losses of :meth:`evaluation_batches` are evaluated there too, and
        before training (:attr:`FitResult.initial`).
        The parameters reached, recorded and scored are the optimizer's
        iterate (:func:`reported_parameters`): for Nesterov the lectures' w.
        Callbacks get the epoch-level hooks only; their ``model`` is a
        :class:`ToyModel`. As for image tasks, the gradient functions
        TensorFlow registers while tracing are dropped when the fit ends
        (:mod:`gdbench.tasks._gradients`).
        """
        epochs = self.resolve_epochs(epochs)
        batch_size = self.resolve_batch_size(batch_size)
        check_optimizer(optimizer)
        callbacks = list(callbacks)
        steps_per_epoch = self.steps_per_epoch(batch_size)

        parameters = keras.Variable(self.initial_parameters(), dtype="float64", name="parameters")
        optimizer.build([parameters])
        model = ToyModel(optimizer, parameters)
        run_steps = _compile_steps(self.loss, self.metrics, optimizer, parameters)

        for callback in callbacks:
            callback.set_model(model)
            callback.set_params({"epochs": epochs, "steps": steps_per_epoch, "verbose": verbose})
        for callback in callbacks:
            callback.on_train_begin()

        rows = [np.array(parameters.numpy(), copy=True)[np.newaxis]]
        initial = {key: float(value) for key, value in
                   self.evaluate(rows[0][0], batch_size, 0).items()}
        history: dict[str, list[float]] = {}
        for epoch in range(epochs):
            for callback in callbacks:
                callback.on_epoch_begin(epoch)
            for group in _equal_shape_runs(self.batches(batch_size, epoch)):
                steps, outcome = run_steps(_stack(group), len(group))
                rows.append(steps.numpy())
            logs = {key: float(value) for key, value in outcome.items()}
            logs.update({key: float(value) for key, value in
                         self.evaluate(rows[-1][-1], batch_size, epoch + 1).items()})
            for key, value in logs.items():
                history.setdefault(key, []).append(value)
            if verbose:
                print(f"epoch {epoch + 1}/{epochs} - "
                      + " - ".join(f"{key}: {value:.6g}" for key, value in logs.items()))
            for callback in callbacks:
                callback.on_epoch_end(epoch, logs)
            if not math.isfinite(logs["loss"]) or model.stop_training:
                break
        for callback in callbacks:
            callback.on_train_end()

        return FitResult(
            history=history,
            metrics=final_metrics(history),
            steps_per_epoch=steps_per_epoch,
            trajectory=np.concatenate(rows),
            parameter_names=tuple(self.parameter_names),
            initial=initial,
        )


def _compile_steps(loss: Callable[..., tf.Tensor], metrics: Callable[..., dict[str, tf.Tensor]],
                   optimizer: keras.optimizers.Optimizer, parameters: keras.Variable
                   ) -> Callable[..., tuple[tf.Tensor, dict[str, tf.Tensor]]]:
    """A compiled loop running one optimizer step per row of stacked batches.

    Returns ``run(stacked, num_steps)`` → (the parameters after each step,
    shape [num_steps, P]; the metrics on all data at the last of them, and
    the optimizer's η there as ``"learning_rate"``). ``stacked`` is the
    batches' structure with a leading step axis (``None`` when every batch is
    the full data set). One call instead of three per epoch keeps the
    per-epoch overhead of a toy task small.
    """

    def step(stacked: Any, index: Any) -> tf.Tensor:
        batch = None if stacked is None else tf.nest.map_structure(lambda t: t[index], stacked)
        with tf.GradientTape() as tape:
            value = loss(parameters.value, batch)
        gradient = tape.gradient(value, parameters.value)
        # Read before the step counts, η is the rate this step applies.
        learning_rate = optimizer.learning_rate
        optimizer.apply_gradients([(gradient, parameters)])
        return tf.identity(reported_parameters(optimizer, parameters, learning_rate))

    @tf.function
    def run(stacked: Any, num_steps: int) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        if num_steps == 1:
            # A graph loop costs more than a full-batch step itself.
            trajectory = step(stacked, 0)[tf.newaxis]
        else:
            rows = tf.TensorArray(tf.float64, size=num_steps)
            for index in tf.range(num_steps):
                rows = rows.write(index, step(stacked, index))
            trajectory = rows.stack()
        outcome = dict(metrics(trajectory[-1]))
        outcome["learning_rate"] = optimizer.learning_rate
        return trajectory, outcome

    return run


def _equal_shape_runs(batches: list[Any]) -> list[list[Any]]:
    """Consecutive batches split into runs of equal shapes (the last mini-batch may be short)."""
    runs: list[list[Any]] = []
    for batch in batches:
        if runs and _shapes(runs[-1][0]) == _shapes(batch):
            runs[-1].append(batch)
        else:
            runs.append([batch])
    return runs


def _shapes(batch: Any) -> list[tuple[int, ...]]:
    return [np.shape(leaf) for leaf in tf.nest.flatten(batch)]


def _stack(batches: list[Any]) -> Any:
    if batches[0] is None:
        return None
    return tf.nest.map_structure(lambda *leaves: tf.constant(np.stack(leaves)), *batches)


class DatasetToyTask(ToyTask):
    """A toy task with a training set of (input, target) rows, batched and shuffled per epoch.

    Subclasses fill :attr:`inputs` ([N, ...]) and :attr:`targets` ([N]) in
    float64 and implement :meth:`loss_on`. A batch is an ``(inputs, targets)``
    pair; ``None`` is the whole set.
    """

    inputs: np.ndarray
    targets: np.ndarray

    def __init__(self, *, seed: int = 0, shuffle: bool = True, **options: Any) -> None:
        super().__init__(seed=seed, shuffle=_validate.flag("shuffle", shuffle), **options)
        self.shuffle = shuffle

    @property
    def num_examples(self) -> int:  # type: ignore[override]
        return len(self.targets)

    @abc.abstractmethod
    def loss_on(self, params: tf.Tensor, inputs: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
        """The loss at ``params`` ([..., P]) on the rows given, shape [...]."""

    def loss(self, params: tf.Tensor, batch: Any = None) -> tf.Tensor:
        inputs, targets = (self.inputs, self.targets) if batch is None else batch
        params = tf.convert_to_tensor(params, dtype=tf.float64)
        return self.loss_on(params, tf.convert_to_tensor(inputs, tf.float64),
                            tf.convert_to_tensor(targets, tf.float64))

    #: Whether an epoch drops its last, short batch instead of keeping it, and every epoch
    #: takes the first epoch's order (DeepOBS's protocol: see :class:`QuadraticDeep
    #: <gdbench.tasks.regression.QuadraticDeep>`).
    drops_short_batch: bool = False

    def steps_per_epoch(self, batch_size: int | None = None) -> int:
        """Optimizer steps per epoch: ⌈N/B⌉, or ⌊N/B⌋ when the short batch is dropped.

        Args:
            batch_size: as for :meth:`fit`.
        """
        if self.drops_short_batch:
            return self.num_examples // self.resolve_batch_size(batch_size)
        return super().steps_per_epoch(batch_size)

    def row_order(self, batch_size: int | None, epoch: int) -> np.ndarray:
        """The rows epoch ``epoch`` trains on, in the order it takes them.

        A permutation drawn from (seed, epoch), or the rows in order when the
        task does not shuffle; when it drops the short batch, the first
        epoch's permutation every epoch, cut to its full batches.

        Args:
            batch_size: as for :meth:`fit`.
            epoch: 0-based epoch number.
        """
        batch_size = self.resolve_batch_size(batch_size)
        if self.drops_short_batch:
            epoch = 0
        order = np.arange(self.num_examples)
        if self.shuffle:
            rng = np.random.default_rng((self.seed, SHUFFLE_STREAM, epoch))
            order = rng.permutation(self.num_examples)
        if self.drops_short_batch:
            order = order[: self.steps_per_epoch(batch_size) * batch_size]
        return order

    def batches(self, batch_size: int | None, epoch: int) -> list[Any]:
        batch_size = self.resolve_batch_size(batch_size)
        epoch = _validate.integer("epoch", epoch, low=0)
        if batch_size == self.num_examples:
            return [None]
        order = self.row_order(batch_size, epoch)
        return [
            (self.inputs[rows], self.targets[rows])
            for rows in np.array_split(order, range(batch_size, len(order), batch_size))
        ]
