"""The population engine's compiled loop: a toy population's epochs × batches in one ``tf.function``.

:func:`batch_layout` stacks a task's batches as the loop takes them;
:func:`compiled_loop` builds the loop for one configuration (XLA by default)
and keeps the last ones built for reuse; :func:`as_tensors` hands it its inputs.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any, Callable, Mapping

import numpy as np
import tensorflow as tf

from gdbench.optimizers import RuleOptimizer
from gdbench.schedules import RateSchedule
from gdbench.tasks._toy import ToyTask

__all__ = ["BatchLayout", "EvaluationLayout", "as_tensors", "batch_layout", "compiled_loop",
           "evaluation_layout"]

#: Compiled training loops kept for reuse, so that a study evaluating one
#: population after another with the same shapes compiles only once.
_CACHE_SIZE = 16


@dataclasses.dataclass(frozen=True)
class BatchLayout:
    """How one epoch's batches reach the compiled loop; hashable, part of the cache key.

    Attributes:
        run_lengths: the epoch's batches as runs of consecutive batches of
            equal shapes (a short last mini-batch starts a run of its own).
        whole_set: every batch is ``None``, the whole training set.
        same_every_epoch: every epoch sees the same batches in the same
            order, so one copy serves them all.
    """

    run_lengths: tuple[int, ...]
    whole_set: bool
    same_every_epoch: bool

    @property
    def steps_per_epoch(self) -> int:
        return sum(self.run_lengths)


def batch_layout(
    task: ToyTask, batch_size: int, epochs: int
) -> tuple[BatchLayout, tuple[Any, ...]]:
    """The layout and, per run, the batches stacked as [epochs (or 1), run length, ...]."""
    per_epoch = [task.batches(batch_size, epoch) for epoch in range(epochs)]
    first = per_epoch[0]
    if all(batch is None for batches in per_epoch for batch in batches):
        return BatchLayout((len(first),), whole_set=True, same_every_epoch=True), ()
    shapes = [_shapes(batch) for batch in first]
    for epoch, batches in enumerate(per_epoch):
        if [_shapes(batch) for batch in batches] != shapes:
            raise ValueError(
                f"batch_size: epoch {epoch} of {task!r} has batches shaped unlike epoch 0's; "
                "the population engine needs the same batch shapes in every epoch"
            )
    runs: list[tuple[int, int]] = []
    for position, shape in enumerate(shapes):
        if runs and shapes[runs[-1][0]] == shape:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((position, 1))
    same = all(_same_batches(batches, first) for batches in per_epoch[1:])
    sources = [first] if same else per_epoch
    stacked = tuple(
        tf.nest.map_structure(
            lambda *leaves, length=length: np.stack(leaves).reshape(
                (len(sources), length) + np.shape(leaves[0])
            ),
            *[batch for batches in sources for batch in batches[start:start + length]],
        )
        for start, length in runs
    )
    return BatchLayout(tuple(length for _, length in runs), False, same), stacked


@dataclasses.dataclass(frozen=True)
class EvaluationLayout:
    """The losses a task's protocol evaluates on data of their own
    (:meth:`ToyTask.evaluation_batches`); hashable, part of the cache key.

    Attributes:
        keys: the history keys evaluated, in order.
        same_every_epoch: per key, whether every evaluation (epoch 0 … the
            last) uses the same batch, so that one copy serves them all.
    """

    keys: tuple[str, ...]
    same_every_epoch: tuple[bool, ...]


def evaluation_layout(
    task: ToyTask, batch_size: int, epochs: int
) -> tuple[EvaluationLayout, tuple[Any, ...]]:
    """The layout and, per key, its batches stacked as [epochs + 1 (or 1), ...]."""
    per_epoch = [task.evaluation_batches(batch_size, epoch) for epoch in range(epochs + 1)]
    keys = tuple(per_epoch[0])
    same = tuple(all(_same_batches([batches[key]], [per_epoch[0][key]])
                     for batches in per_epoch[1:]) for key in keys)
    stacked = tuple(
        tf.nest.map_structure(lambda *leaves: np.stack(leaves),
                              *[batches[key] for batches in (per_epoch[:1] if one else per_epoch)])
        for key, one in zip(keys, same)
    )
    return EvaluationLayout(keys, same), stacked


def _shapes(batch: Any) -> list[tuple[int, ...]] | None:
    return None if batch is None else [np.shape(leaf) for leaf in tf.nest.flatten(batch)]


def _same_batches(left: list[Any], right: list[Any]) -> bool:
    return all(
        np.array_equal(a, b)
        for x, y in zip(left, right)
        for a, b in zip(tf.nest.flatten(x), tf.nest.flatten(y))
    )


_COMPILED: collections.OrderedDict[tuple[Any, ...], tuple[ToyTask, Callable[..., Any]]] = (
    collections.OrderedDict()
)


def compiled_loop(
    task: ToyTask, optimizer_class: type[RuleOptimizer],
    schedule_class: type[RateSchedule] | None, rule_static: Mapping[str, Any],
    rate_static: Mapping[str, Any], layout: BatchLayout, evaluations: EvaluationLayout,
    epochs: int, record_trajectory: bool, jit_compile: bool, record_slots: bool = False,
) -> Callable[..., Any]:
    """The training loop for this configuration, built once and kept for reuse."""
    key = (
        id(task), optimizer_class, schedule_class, tuple(sorted(rule_static.items())),
        tuple(sorted(rate_static.items())), layout, evaluations, epochs, record_trajectory,
        jit_compile, record_slots,
    )
    entry = _COMPILED.get(key)
    if entry is not None and entry[0] is task:
        _COMPILED.move_to_end(key)
        return entry[1]
    train = _training_loop(
        task, optimizer_class, schedule_class, dict(rule_static), dict(rate_static), layout,
        evaluations, epochs, record_trajectory, jit_compile, record_slots,
    )
    _COMPILED[key] = (task, train)
    while len(_COMPILED) > _CACHE_SIZE:
        _COMPILED.popitem(last=False)
    return train


def _training_loop(
    task: ToyTask, optimizer_class: type[RuleOptimizer],
    schedule_class: type[RateSchedule] | None, rule_static: dict[str, Any],
    rate_static: dict[str, Any], layout: BatchLayout, evaluations: EvaluationLayout,
    epochs: int, record_trajectory: bool, jit_compile: bool, record_slots: bool,
) -> Callable[..., Any]:
    """``train(parameters, slots, rule_inputs, rate_inputs, stacked_batches, evaluation_batches)``.

    Returns a ``tf.function`` giving the losses and learning rates ([epochs,
    K] each), the evaluated losses (key → [epochs + 1, K], row 0 before
    training; a ``"loss"`` among them is also the losses), when recording,
    the trajectory [steps + 1, K, P], and, when recording slots, each slot
    after every step (a tuple of [steps + 1, K, P], row 0 the start) with η
    of every step ([steps, K, 1]); ``None`` for what is not recorded.
    """
    rule = optimizer_class.rule
    # As ToyTask.fit reports (tasks._base.reported_parameters): the iterate,
    # where the class's variable holds another point.
    iterate = getattr(optimizer_class, "iterate", None)
    total_steps = epochs * layout.steps_per_epoch

    def learning_rate_at(iteration: tf.Tensor, rate_inputs: dict[str, Any]) -> tf.Tensor:
        if schedule_class is None:
            return rate_inputs["learning_rate"]
        step = tf.cast(iteration, tf.float64)
        return schedule_class.rate_function(step, **rate_inputs, **rate_static)

    def optimizer_step(parameters, slots, iteration, batch, rule_inputs, rate_inputs):
        with tf.GradientTape() as tape:
            tape.watch(parameters)
            # Row k's loss depends on row k alone, so the gradient of the sum
            # is each trial's own gradient.
            total_loss = tf.reduce_sum(task.loss(parameters, batch))
        gradient = tape.gradient(total_loss, parameters)
        learning_rate = learning_rate_at(iteration, rate_inputs)
        parameters, slots = rule(
            parameters, gradient, slots, step=tf.cast(iteration + 1, tf.float64),
            learning_rate=learning_rate, **rule_inputs, **rule_static,
        )
        reported = parameters if iterate is None else iterate(
            parameters, slots, learning_rate=learning_rate, **rule_inputs, **rule_static)
        return parameters, tuple(slots), reported, learning_rate

    def steps_of(run_length: int) -> Any:
        # A run of one batch (full batch) stays unrolled: no inner loop to pay for.
        return range(run_length) if run_length == 1 else tf.range(run_length)

    def evaluate(reported, epoch, evaluation_batches):
        return {
            key: task.loss(reported, tf.nest.map_structure(
                lambda stacked, one=one: stacked[0 if one else epoch], batches))
            for key, one, batches in zip(evaluations.keys, evaluations.same_every_epoch,
                                         evaluation_batches)
        }

    @tf.function(jit_compile=jit_compile)
    def train(parameters, slots, rule_inputs, rate_inputs, stacked_batches, evaluation_batches):
        size = tf.shape(parameters)[0]
        # A tuple, reassigned whole: autograph carries it through the loop.
        evaluated = tuple(tf.TensorArray(tf.float64, size=epochs + 1).write(0, value)
                          for value in evaluate(parameters, 0, evaluation_batches).values())
        losses = tf.TensorArray(tf.float64, size=epochs)
        learning_rates = tf.TensorArray(tf.float64, size=epochs)
        path = tf.TensorArray(tf.float64, size=total_steps + 1 if record_trajectory else 1)
        path = path.write(0, parameters)
        recorded = total_steps + 1 if record_slots else 1
        slot_rows = tuple(tf.TensorArray(tf.float64, size=recorded).write(0, slot)
                          for slot in slots)
        step_rates = tf.TensorArray(tf.float64, size=max(recorded - 1, 1))
        reported = parameters
        iteration = tf.constant(0, tf.int64)
        runs = stacked_batches if not layout.whole_set else (None,) * len(layout.run_lengths)
        for epoch in tf.range(epochs):
            source = 0 if layout.same_every_epoch else epoch
            for run_length, run in zip(layout.run_lengths, runs):
                for position in steps_of(run_length):
                    batch = None if run is None else tf.nest.map_structure(
                        lambda stacked: stacked[source, position], run
                    )
                    parameters, slots, reported, rate = optimizer_step(
                        parameters, slots, iteration, batch, rule_inputs, rate_inputs
                    )
                    if record_slots:
                        step_rates = step_rates.write(tf.cast(iteration, tf.int32),
                                                      tf.broadcast_to(rate, [size, 1]))
                    iteration += 1
                    if record_trajectory:
                        path = path.write(tf.cast(iteration, tf.int32), reported)
                    if record_slots:
                        slot_rows = tuple(rows.write(tf.cast(iteration, tf.int32), slot)
                                          for rows, slot in zip(slot_rows, slots))
            values = evaluate(reported, epoch + 1, evaluation_batches)
            evaluated = tuple(array.write(epoch + 1, value)
                              for array, value in zip(evaluated, values.values()))
            losses = losses.write(epoch, values["loss"] if "loss" in values
                                  else task.loss(reported))
            rate = tf.broadcast_to(learning_rate_at(iteration, rate_inputs), [size, 1])
            learning_rates = learning_rates.write(epoch, rate[:, 0])
        trajectory = path.stack() if record_trajectory else None
        recorded_slots = ((tuple(rows.stack() for rows in slot_rows), step_rates.stack())
                          if record_slots else None)
        return (losses.stack(), learning_rates.stack(),
                {key: array.stack() for key, array in zip(evaluations.keys, evaluated)},
                trajectory, recorded_slots)

    return train


def as_tensors(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Each value as a tensor (a list of values, such as a schedule's boundaries, as a list)."""
    return {
        name: ([tf.constant(item) for item in value] if isinstance(value, list)
               else tf.constant(value))
        for name, value in inputs.items()
    }
