"""K image classifiers trained as one: the members' weights stacked on a leading axis.

An image task whose model is a plain MLP (``Flatten`` and ``Dense`` layers:
``digits_mlp``, ``fashion_mnist_mlp``, ``mnist_mlp``) computes the same way
for every member of a population. With the K members' kernels stacked as
``[K, in, out]`` and their biases as ``[K, out]``, one batched matmul gives
all K members' logits on the same batch, and the gradient of the SUM of the
members' losses gives each member its own gradient (member k's loss depends
on member k's weights alone). Each variable is then updated by the optimizer
class's own rule (its ``rule``, gdbench's or a user's) with every
per-member hyperparameter, η included, reshaped to ``[K, 1, …]`` to broadcast
against it; a scheduled η is the schedule's ``rate_function`` evaluated with
``[K, 1]`` parameters. The keyword checks are :mod:`gdbench.tasks.population`'s.

Each member computes what :meth:`ImageTask.fit` computes with the Keras class
built from its hyperparameters:

- the same initial weights (the task's :meth:`~ImageTask.build_model`, tiled K
  times) and the same batches in the same order (:meth:`ImageTask.training_data`);
- the rule's ``step`` counting from 1, η evaluated in float64 at the 0-based
  iteration count and cast to the weights' dtype, slots starting as the class
  starts them; the weights are the variables' values (for Nesterov the
  look-ahead point, as a Keras model holds it, not the lectures' iterate);
- the logs of every epoch: ``loss`` and ``accuracy`` as Keras's running means
  over the epoch's training batches, ``val_loss`` and ``val_accuracy`` on the
  validation split, ``learning_rate`` at the iteration count reached;
- Keras's ``TerminateOnNaN``: a member whose running loss becomes non-finite
  stops after that batch (its update included), is evaluated on the
  validation split, and its history ends with that epoch; the others go on.

The training loop is not a Keras ``model.fit`` around a Keras optimizer: its
per-member logs, running means and stopping (one member at a time, in the
middle of an epoch) would each need a custom train step and metric anyway, and
``fit`` drives every batch from Python. Instead one ``tf.function`` per epoch
loops over the epoch's batches, the update rules compiled with XLA (the
matmuls stay TensorFlow's: on a CPU XLA's batched ones are slower); functions
are kept for reuse across populations of the same configuration. The stacked
weights and slots are variables that each step updates in place (XLA writes
the new values into their buffers), so that a step holds one copy of them
and the gradients rather than the old values beside the new; the first layer
broadcasts the batch against the kernels rather than copying them transposed;
the result's final weights are read-only views of the trained buffers, not a
copy. Stopped members stay in the population with their updates masked (their
weights frozen) until half of the members or more have stopped; the others are
then trained as a smaller population. That costs one compilation for the new
size (about a second on a CPU) and pays for the larger MLPs, whose compute
grows with K: on ``fashion_mnist_mlp`` with 8 members of which 6 stop after
the first of three epochs, it halves the time or better.

Precision: under ``keras.config.set_floatx("float64")`` every member agrees
with its own :meth:`ImageTask.fit` to rounding. Under float32 the rule sees the
hyperparameters as float32 tensors where the Keras class passes Python floats
(so 1 − β is rounded from float32 rather than from float64), and batched
matmuls sum in another order: members then agree to float32 rounding, amplified
by training (after three epochs of ``digits_mlp`` with Adam: losses to about
2e-6 relative, weights to 1e-5 of their largest).

    >>> import gdbench.tasks
    >>> from gdbench.tasks.image_population import fit_image_population
    >>> task = gdbench.tasks.get("digits_mlp", subset=200)
    >>> result = fit_image_population(task, "adam", {"learning_rate": [1e-3, 1e-2]}, epochs=2)
    >>> result.status, result.epochs_run.tolist()
    (('complete', 'complete'), [2, 2])
    >>> sorted(result.trial(1).history)
    ['accuracy', 'learning_rate', 'loss', 'val_accuracy', 'val_loss']
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from numpy.typing import ArrayLike

from gdbench import _validate
from gdbench.optimizers import RuleOptimizer
from gdbench.tasks._base import FitResult, final_metrics
from gdbench.tasks._stacked_mlp import architecture_of, compiled_program
from gdbench.tasks.images import EVALUATION_BATCH_SIZE, ImageTask
from gdbench.tasks.population import as_tensors, engine_inputs, initial_slots

__all__ = [
    "COMPLETE", "DIVERGED", "HISTORY_KEYS", "STOPPED", "EpochReport", "ImagePopulationResult",
    "fit_image_population", "population_obstacle", "supports_population",
]

#: The per-epoch logs of every member, in the order :meth:`ImageTask.fit`'s history has them.
HISTORY_KEYS = ("accuracy", "loss", "val_accuracy", "val_loss", "learning_rate")
#: A member's status: trained every epoch; stopped by ``on_epoch``; stopped by a non-finite loss.
COMPLETE, STOPPED, DIVERGED = "complete", "stopped", "diverged"



@dataclasses.dataclass
class EpochReport:
    """What ``on_epoch`` is shown after each epoch.

    Attributes:
        epoch: the 0-based epoch just run.
        active: bool ``[K]``, the members that trained during this epoch
            (a member that diverged in it included).
        logs: each of :data:`HISTORY_KEYS` → float ``[K]``, NaN for members
            not active.
    """

    epoch: int
    active: np.ndarray
    logs: dict[str, np.ndarray]


@dataclasses.dataclass
class ImagePopulationResult:
    """What :func:`fit_image_population` returns: one row per member.

    Attributes:
        status: per member :data:`COMPLETE`, :data:`STOPPED` or :data:`DIVERGED`.
        epochs_run: ``[K]``, the epochs in each member's history.
        steps_per_epoch: optimizer steps in one epoch.
        history: each of :data:`HISTORY_KEYS` → ``[K, epochs]``, NaN after a
            member's last epoch.
        test_metrics: ``"test_loss"``, ``"test_accuracy"`` → ``[K]``, NaN for
            members that did not complete.
        final_weights: the weights as ``model.get_weights()`` orders them,
            each with the member axis first; read-only (without compaction,
            the trained buffers themselves); :meth:`weights` copies a member's.
    """

    status: tuple[str, ...]
    epochs_run: np.ndarray
    steps_per_epoch: int
    history: dict[str, np.ndarray]
    test_metrics: dict[str, np.ndarray]
    final_weights: list[np.ndarray]

    @property
    def size(self) -> int:
        """K, the number of members."""
        return len(self.status)

    def trial(self, index: int) -> FitResult:
        """Member ``index`` as the :class:`FitResult` that :meth:`ImageTask.fit` returns.

        Its metrics are the last epoch's logs and, for a complete member only,
        ``test_loss`` and ``test_accuracy``.

        Args:
            index: the member, 0 ≤ index < K.
        """
        index = _validate.integer("index", index, low=0, high=self.size - 1)
        reported = int(self.epochs_run[index])
        history = {key: self.history[key][index, :reported].tolist() for key in HISTORY_KEYS}
        metrics = final_metrics(history)
        if self.status[index] == COMPLETE:
            metrics.update({key: float(values[index]) for key, values in self.test_metrics.items()})
        return FitResult(history=history, metrics=metrics, steps_per_epoch=self.steps_per_epoch)

    def weights(self, index: int) -> list[np.ndarray]:
        """Member ``index``'s final weights, in ``model.get_weights()`` order.

        Args:
            index: the member, 0 ≤ index < K.
        """
        index = _validate.integer("index", index, low=0, high=self.size - 1)
        return [weight[index].copy() for weight in self.final_weights]


def population_obstacle(task: Any) -> str | None:
    """Why :func:`fit_image_population` cannot train ``task``, in words; ``None`` when it can.

    It trains ``digits_mlp``, ``fashion_mnist_mlp`` and ``mnist_mlp`` (a ``Sequential`` of
    ``Flatten`` and ``Dense`` layers without regularizers); not the convolutional tasks, a
    task on a loss of its own (a :func:`~gdbench.tasks.keras_task` given ``loss``), a task
    fed by a ``tf.data`` pipeline, a task under ``protocol = "deepobs"`` (its per-epoch test
    evaluation is ``Task.fit``'s alone), nor anything that is not an :class:`ImageTask`.
    """
    if not isinstance(task, ImageTask):
        return "the image population engine trains image tasks only"
    if not task.in_memory:
        return ("a tf.data pipeline feeds one fit at a time; the population engine stacks "
                "trials on arrays in memory")
    if task.deepobs:
        return "under DeepOBS's protocol the test set is evaluated each epoch, by Task.fit alone"
    if not task.engine_loss or architecture_of(task.build_model()) is None:
        return ("the population engine stacks Sequential models of Flatten and Dense layers "
                "on the default loss only")
    return None


def supports_population(task: Any) -> bool:
    """Whether :func:`fit_image_population` can train ``task`` (:func:`population_obstacle`)."""
    return population_obstacle(task) is None


def fit_image_population(
    task: ImageTask,
    optimizer: str | type[RuleOptimizer],
    hyperparameters: Mapping[str, ArrayLike],
    *,
    epochs: int | None = None,
    batch_size: int | None = None,
    schedule: str | None = None,
    schedule_parameters: Mapping[str, Any] | None = None,
    on_epoch: Callable[[EpochReport], ArrayLike | None] | None = None,
    jit_compile: bool = True,
    compact: bool = True,
) -> ImagePopulationResult:
    """Train K members of an image task at once, one hyperparameter set per member.

    The inputs are :func:`gdbench.tasks.population.fit_population`'s: every
    numeric keyword of the optimizer and of the schedule is a scalar (shared)
    or K values; a discrete one is shared; keywords left out take the class's
    default. See the module docstring for what each member computes.

    Args:
        task: an image task with an MLP (see :func:`supports_population`).
        optimizer: a rule's optimizer, as :func:`~gdbench.tasks.population.fit_population`
            takes it (a name, an import path or a rule's class).
        hyperparameters: the optimizer's keywords, each a scalar or K values.
            ``learning_rate`` is required unless ``schedule`` gives η, and
            refused when it does.
        epochs: epochs to run, ≥ 1; ``None`` for the task's default.
        batch_size: examples per step, 1 ≤ B ≤ N; ``None`` for the task's default.
        schedule: a name of ``gdbench.schedules.REGISTRY``, or ``None`` for a
            constant η.
        schedule_parameters: the schedule's keywords, each a scalar or K values.
        on_epoch: called after each epoch with an :class:`EpochReport`; returns
            ``None`` or a bool ``[K]`` mask of members to stop after this epoch
            (their history ends with it, their weights stay as they are).
        jit_compile: compile the update rules with XLA.
        compact: once half the members or more have stopped, train the others
            as a smaller population (one more compilation for the new size).

    Returns:
        An :class:`ImagePopulationResult`, one row per member.

    Raises:
        KeyError: an unknown optimizer or schedule name.
        ValueError: a task the engine cannot train (named), an unknown or
            missing keyword, values whose count is not K, a value the class
            refuses, bad ``epochs`` or ``batch_size``, an ``on_epoch`` that is
            not callable or returns something other than a bool [K] mask.
    """
    if not isinstance(task, ImageTask):
        raise ValueError(f"task: expected an image task (e.g. gdbench.tasks.get('digits_mlp')), "
                         f"got {task!r}")
    if task.deepobs:
        raise ValueError(f"task: {task.name} follows DeepOBS's protocol (protocol = \"deepobs\"), "
                         "whose per-epoch test evaluation only Task.fit gives")
    if not task.engine_loss:
        raise ValueError(f"task: {task.name} trains on a loss of its own; the population engine "
                         "computes softmax cross-entropy over logits with accuracy only")
    model = task.build_model()
    architecture = architecture_of(model)
    if architecture is None:
        raise ValueError(f"task: {task.name} has a model the population engine cannot train "
                         "(it trains Sequential models of Flatten and Dense layers only)")
    epochs = task.resolve_epochs(epochs)
    batch_size = task.resolve_batch_size(batch_size)
    jit_compile = _validate.flag("jit_compile", jit_compile)
    compact = _validate.flag("compact", compact)
    if on_epoch is not None and not callable(on_epoch):
        raise ValueError(f"on_epoch: expected a callable or None, got {on_epoch!r}")
    inputs = engine_inputs(optimizer, hyperparameters, schedule, schedule_parameters)
    optimizer_class, schedule_class, size = (inputs.optimizer_class, inputs.schedule_class,
                                             inputs.size)
    numbers, static = inputs.numbers, inputs.static

    dtype = keras.config.floatx()
    # Variables, updated in place by the program; tiled and broadcast by
    # TensorFlow, so that no [K, …] array is built in NumPy first.
    weights = tuple(_variable(tf.constant(weight, dtype), (size, *weight.shape))
                    for weight in model.get_weights())
    slots = tuple(
        tuple(_variable(tf.constant(start, dtype), weight.shape) for start in initial_slots(
            optimizer_class, {name: _member_shaped(column, weight.shape.rank)
                              for name, column in numbers.items()},
            static, (size,) + (1,) * (weight.shape.rank - 1)))
        for weight in weights
    )
    program = compiled_program(
        architecture, optimizer_class, schedule_class,
        inputs.rule_static, inputs.rate_static, dtype, jit_compile,
    )
    rule_inputs = as_tensors(inputs.rule_numbers)
    rate_inputs = as_tensors(inputs.rate_inputs)

    splits = task.data()
    training = task.training_data(batch_size)
    steps_per_epoch = task.steps_per_epoch(batch_size)
    validation = _evaluation_data(splits.x_validation, splits.y_validation)
    history = {key: np.full((size, epochs), np.nan) for key in HISTORY_KEYS}
    status = np.full(size, COMPLETE, dtype=object)
    epochs_run = np.zeros(size, dtype=np.int64)
    active = np.ones(size, dtype=bool)
    iterations = tf.zeros([size], tf.int64)
    # rows[r] is the member that row r of the tensors holds.
    rows = np.arange(size)
    final_weights = [np.empty(weight.shape, dtype) for weight in weights]
    epoch_batches = _keras_epoch_order(training)
    for epoch in range(epochs):
        if not active.any():
            break
        if compact and 2 * active.sum() <= len(rows):
            # Half the rows or more only hold frozen members: drop their compute.
            _store(final_weights, weights, rows)
            kept = np.flatnonzero(active[rows])
            weights, slots = tf.nest.map_structure(
                lambda variable, kept=kept: _variable(tf.gather(variable, kept)),
                (weights, slots))
            iterations, rule_inputs, rate_inputs = tf.nest.map_structure(
                lambda tensor, kept=kept: tf.gather(tensor, kept),
                (iterations, rule_inputs, rate_inputs))
            rows = rows[kept]
        iterations, row_active, row_logs = program.train_epoch(
            weights, slots, iterations, tf.constant(active[rows]),
            tf.constant(epoch * steps_per_epoch, tf.int64), rule_inputs, rate_inputs,
            next(epoch_batches), tf.constant(steps_per_epoch),
        )
        row_logs.update(program.evaluate(weights, *validation, prefix="val_"))
        logs = {key: np.full(size, np.nan) for key in HISTORY_KEYS}
        for key in HISTORY_KEYS:
            logs[key][rows] = row_logs[key].numpy()
            logs[key][~active] = np.nan
            history[key][active, epoch] = logs[key][active]
        epochs_run[active] = epoch + 1
        still_active = np.zeros(size, dtype=bool)
        still_active[rows] = row_active.numpy()
        status[active & ~still_active] = DIVERGED
        stop = _stop_mask(on_epoch, EpochReport(epoch, active.copy(), logs), size)
        status[still_active & stop] = STOPPED
        active = still_active & ~stop
    # The slots are done with: freed before the test split.
    del slots
    test = (program.evaluate(weights, *_evaluation_data(splits.x_test, splits.y_test),
                             prefix="test_") if len(splits.y_test) else {})
    if len(rows) == size:
        # Never compacted: the arrays are views of the variables' buffers, not a
        # copy (a copy would take new memory from the system while the buffers
        # the slots held stay with TensorFlow's allocator).
        final_weights = [np.asarray(weight.read_value()) for weight in weights]
    else:
        _store(final_weights, weights, rows)
        for weight in final_weights:
            weight.flags.writeable = False
    del weights
    complete = status == COMPLETE
    test_metrics = {key: np.full(size, np.nan) for key in test}
    for key, values in test.items():
        # Every complete member trained to the end, so its row is still held.
        test_metrics[key][rows] = values.numpy()
        test_metrics[key][~complete] = np.nan
    return ImagePopulationResult(
        status=tuple(status.tolist()),
        epochs_run=epochs_run,
        steps_per_epoch=steps_per_epoch,
        history=history,
        test_metrics=test_metrics,
        final_weights=final_weights,
    )


def _variable(value: tf.Tensor, shape: tuple[int, ...] | None = None) -> tf.Variable:
    """A variable holding ``value``, broadcast to ``shape`` when given."""
    if shape is not None:
        value = tf.broadcast_to(value, shape)
    return tf.Variable(value, trainable=False)


def _store(final_weights: list[np.ndarray], weights: tuple[tf.Variable, ...],
           rows: np.ndarray) -> None:
    """Copy the weights of the members the rows hold into the population's arrays."""
    for target, weight in zip(final_weights, weights):
        target[rows] = weight.numpy()


def _member_shaped(column: np.ndarray, rank: int) -> np.ndarray:
    """A per-member [K, 1] column as [K, 1, …] of ``rank`` dimensions."""
    return np.reshape(column, (-1,) + (1,) * (rank - 1))


def _keras_epoch_order(batches: tf.data.Dataset) -> Iterator[Any]:
    """The iterators of ``batches`` that ``model.fit`` trains on, one per epoch.

    Every iterator of a reshuffling data set draws a new order. Keras's epoch
    iterator (for a data set of known length) makes one at the end of each
    epoch for the next, and then, not being told ``steps_per_epoch``, another
    at the start of that epoch: epoch e trains on the (2e)-th order.
    """
    yield iter(batches)
    while True:
        iter(batches)
        yield iter(batches)


def _stop_mask(on_epoch: Callable[[EpochReport], Any] | None, report: EpochReport,
               size: int) -> np.ndarray:
    """The members ``on_epoch`` stops after this epoch (none without one)."""
    answer = None if on_epoch is None else on_epoch(report)
    if answer is None:
        return np.zeros(size, dtype=bool)
    mask = np.asarray(answer)
    if mask.dtype != np.bool_ or mask.shape != (size,):
        raise ValueError(f"on_epoch: expected None or a bool mask of shape [{size}], "
                         f"got {answer!r}")
    return mask


def _evaluation_data(images: np.ndarray, labels: np.ndarray) -> tuple[tf.data.Dataset, int]:
    """A split as Keras's ``evaluate`` batches it, and its number of batches."""
    batches = tf.data.Dataset.from_tensor_slices((images, labels)).batch(EVALUATION_BATCH_SIZE)
    return batches, -(-len(labels) // EVALUATION_BATCH_SIZE)
