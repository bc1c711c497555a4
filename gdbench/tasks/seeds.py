"""Whether a task's seed moves anything: two seeds, the same run for every optimizer.

A toy task's run is a function of what the task gives its training loop and
nothing else: the start point (:meth:`~gdbench.tasks.ToyTask.initial_parameters`),
the batches of each epoch in their order (:meth:`~gdbench.tasks.ToyTask.batches`:
the data, the shuffling, a surface's gradient noise), the losses and metrics it
computes (on all data, and on each batch) and the batches its protocol
evaluates on (:meth:`~gdbench.tasks.ToyTask.evaluation_batches`). Where two
seeds' tasks give the same of each, every optimizer runs the same with either
seed: :func:`same_runs` compares them, value for value, for the epochs a
study runs. An image task draws its initial weights from its seed: never the
same.

    >>> from gdbench import tasks
    >>> same_runs(tasks.get("sigmoid_neuron", seed=0), tasks.get("sigmoid_neuron", seed=1),
    ...           batch_size=None, epochs=5)
    True
    >>> same_runs(tasks.get("linear_regression", seed=0),
    ...           tasks.get("linear_regression", seed=1), batch_size=None, epochs=5)
    False
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from gdbench.tasks._base import Task
from gdbench.tasks._toy import ToyTask

__all__ = ["same_runs"]

#: Points, around the start point, at which the two tasks' losses and metrics are compared.
_PROBES = 8


def same_runs(first: Task, second: Task, *, batch_size: int | None, epochs: int) -> bool:
    """Whether ``first`` and ``second`` (one task, two seeds) give every optimizer the same run.

    Compared: the start points, the losses and metrics at the start and at
    points around it (on all data and on every batch), each epoch's batches and
    evaluation batches, for ``epochs`` epochs of ``batch_size``. Anything
    but two toy tasks of one class is not the same.

    Args:
        first: a task.
        second: the same task with another seed.
        batch_size: as for ``fit``.
        epochs: the epochs run.
    """
    if not (isinstance(first, ToyTask) and type(first) is type(second)):
        return False
    start = np.asarray(first.initial_parameters(), dtype=np.float64)
    if not _equal(start, second.initial_parameters()):
        return False
    # The start and points around it, drawn the same for both tasks.
    probes = start + np.random.default_rng(0).normal(0.0, 1.0, size=(_PROBES, start.size))
    points = tf.constant(np.vstack([start[None, :], probes]), tf.float64)
    if not _equal(first.metrics(points), second.metrics(points)):
        return False
    for epoch in range(epochs + 1):
        if epoch < epochs:
            ours, theirs = first.batches(batch_size, epoch), second.batches(batch_size, epoch)
            if not _equal(ours, theirs):
                return False
            # A batch's loss is the same function every epoch: the first epoch's tell.
            if epoch == 0 and not all(_equal(first.loss(points, batch),
                                             second.loss(points, batch)) for batch in ours):
                return False
        if not _equal(first.evaluation_batches(batch_size, epoch),
                      second.evaluation_batches(batch_size, epoch)):
            return False
    return True


def _equal(ours: Any, theirs: Any) -> bool:
    """Equal value for value: arrays, tensors, and lists, tuples and dicts of them."""
    if isinstance(ours, dict) or isinstance(theirs, dict):
        return (isinstance(ours, dict) and isinstance(theirs, dict) and ours.keys() == theirs.keys()
                and all(_equal(ours[key], theirs[key]) for key in ours))
    if isinstance(ours, (list, tuple)) or isinstance(theirs, (list, tuple)):
        return (isinstance(ours, (list, tuple)) and isinstance(theirs, (list, tuple))
                and len(ours) == len(theirs) and all(map(_equal, ours, theirs)))
    if ours is None or theirs is None:
        return ours is None and theirs is None
    return bool(np.array_equal(np.asarray(ours), np.asarray(theirs), equal_nan=True))
