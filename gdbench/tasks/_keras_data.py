"""A Keras task's data, read and checked: ``(x, y)`` arrays, or ``tf.data`` pipelines whose
structure is checked, whose rows are counted, and which say what each fit iterates.

A pipeline yields single elements ``(x, y)`` or batches of them, and tf.data says which:
``Dataset.batch`` (without ``drop_remainder``), ``padded_batch`` and ``ragged_batch`` give
every component an unknown leading dimension. A pipeline whose every component has one is
read as batches, any other as single elements (a pipeline batched with
``drop_remainder=True`` has a known leading dimension: it reads as elements, and the model
then refuses its doubled batch axis).

The seed, for a training pipeline of single elements: gdbench shuffles them all anew each
epoch, in an order drawn from the seed, and batches them by the batch size, as it does
arrays. For one of batches: gdbench cannot reshuffle what is already batched, so it
iterates the batches as given, and the seed moves only the initial weights. Either way the
pipeline itself must be deterministic (no unseeded ``shuffle``, no ``deterministic=False``
map) for the same seed to give the same curves.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf

__all__ = ["SPLITS", "Pipeline", "read_splits"]

#: The splits a task's data may hold; ``train`` is required.
SPLITS = ("train", "validation", "test")


@dataclasses.dataclass(frozen=True)
class Pipeline:
    """One split of a task's data as the user's ``tf.data`` pipeline.

    Attributes:
        dataset: the pipeline, as given.
        batched: whether it yields batches (iterated as given) rather than single elements.
        rows: the ``(x, y)`` rows one pass yields.
        batches: the batches one pass yields; 0 for single elements.
        largest: the rows of its largest batch; 1 for single elements.
    """

    dataset: tf.data.Dataset
    batched: bool
    rows: int
    batches: int
    largest: int

    def training(self, batch_size: int, seed: int) -> tf.data.Dataset:
        """What a fit trains on: the batches as given, or the elements shuffled anew each
        epoch by ``seed`` and batched by ``batch_size``."""
        if self.batched:
            return self.dataset
        return (self.dataset.shuffle(self.rows, seed=seed, reshuffle_each_iteration=True)
                .batch(batch_size))

    def evaluation(self, batch_size: int) -> tf.data.Dataset:
        """What an evaluation iterates: the batches as given, or the elements in batches of
        ``batch_size``."""
        return self.dataset if self.batched else self.dataset.batch(batch_size)

    def first_rows(self) -> tf.data.Dataset:
        """Its first batch, or its first two elements as one."""
        return self.dataset.take(1) if self.batched else self.dataset.take(2).batch(2)

    def rank_problem(self, model: Any) -> str | None:
        """Why ``model``, of one input of known shape, cannot take the batches this pipeline
        feeds it, going by their rank; ``None`` when it can or the shapes do not say."""
        try:
            inputs = model.inputs
        except (AttributeError, ValueError):
            return None
        x = tf.nest.flatten(self.dataset.element_spec[0])
        if not inputs or len(inputs) != 1 or len(x) != 1 or x[0].shape.rank is None:
            return None
        fed, taken = x[0].shape.rank + (0 if self.batched else 1), len(inputs[0].shape)
        if fed == taken:
            return None
        return (f"read as {self.form()}, it feeds inputs of rank {fed} to a model that takes "
                f"rank {taken} (a pipeline batched with drop_remainder=True reads as single "
                "elements: batch it without)")

    def form(self) -> str:
        """What it yields, in words: ``batches of x (None, 30), y (None,)``."""
        x, y = (tf.nest.map_structure(lambda spec: tuple(spec.shape), part)
                for part in self.dataset.element_spec)
        kind = "batches" if self.batched else "single elements"
        return f"{kind} of x {x}, y {y}"


def read_splits(source: Any) -> dict[str, Any]:
    """The splits of a task's data, checked: each ``(x, y)`` as arrays, or each a
    :class:`Pipeline`.

    Raises:
        ValueError: anything but a mapping of :data:`SPLITS` to ``(x, y)`` pairs of arrays of
            the same rows, or to pipelines (:func:`_read_pipelines`); naming the split.
    """
    if not isinstance(source, Mapping) or "train" not in source:
        raise ValueError(f"data: expected a mapping with 'train' (and optionally 'validation', "
                         f"'test'), each (x, y) arrays or a tf.data pipeline; got "
                         f"{type(source).__name__}")
    extra = sorted(set(source) - set(SPLITS))
    if extra:
        raise ValueError(f"data: unknown split(s) {', '.join(map(str, extra))}; accepted: "
                         f"{', '.join(SPLITS)}")
    if any(isinstance(value, tf.data.Dataset) for value in source.values()):
        return _read_pipelines({split: source[split] for split in SPLITS if split in source})
    splits: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for split in SPLITS:
        if split not in source:
            continue
        pair = source[split]
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"data: {split}: expected a pair (x, y), got {type(pair).__name__}")
        x, y = np.asarray(pair[0]), np.asarray(pair[1])
        if x.ndim < 1 or y.ndim < 1 or len(x) != len(y) or not len(y):
            raise ValueError(f"data: {split}: x has {len(x) if x.ndim else 0} rows and y "
                             f"{len(y) if y.ndim else 0}; expected the same number, at least 1")
        if splits and (x.shape[1:] != splits["train"][0].shape[1:]
                       or y.shape[1:] != splits["train"][1].shape[1:]):
            raise ValueError(f"data: {split}: rows of shape x {x.shape[1:]}, y {y.shape[1:]}; "
                             f"train's are x {splits['train'][0].shape[1:]}, "
                             f"y {splits['train'][1].shape[1:]}")
        splits[split] = (x, y)
    if len(splits["train"][1]) < 2:
        raise ValueError("data: train: expected at least 2 rows")
    return splits


def _read_pipelines(splits: Mapping[str, Any]) -> dict[str, Pipeline]:
    """The splits of a task's data given as pipelines, checked and counted.

    Raises:
        ValueError: a split given as arrays beside pipelines, no validation split (gdbench
            cannot split a pipeline), elements that are not ``(x, y)``, an endless or empty
            pipeline, or splits whose rows disagree; naming the split.
    """
    arrays = [split for split, value in splits.items()
              if not isinstance(value, tf.data.Dataset)]
    if arrays:
        raise ValueError(f"data: {arrays[0]}: arrays beside tf.data pipelines; give every "
                         "split as a pipeline (tf.data.Dataset.from_tensor_slices((x, y)))")
    if "validation" not in splits:
        raise ValueError("data: validation: required beside a tf.data pipeline: gdbench "
                         "cannot draw a validation split out of a pipeline")
    read = {split: _read(split, dataset) for split, dataset in splits.items()}
    train = _row_specs(read["train"])
    for split, pipeline in read.items():
        rows = _row_specs(pipeline)
        try:
            tf.nest.assert_same_structure(train, rows)
            fits = all(a.dtype == b.dtype and a.shape.is_compatible_with(b.shape)
                       for a, b in zip(tf.nest.flatten(train), tf.nest.flatten(rows)))
        except (TypeError, ValueError):
            fits = False
        if not fits:
            raise ValueError(f"data: {split}: rows of {_describe(rows)}; train's are "
                             f"{_describe(train)}")
    return read


def _read(split: str, dataset: tf.data.Dataset) -> Pipeline:
    spec = dataset.element_spec
    if not isinstance(spec, tuple) or len(spec) != 2:
        raise ValueError(f"data: {split}: a tf.data pipeline must yield (x, y) pairs or "
                         f"batches of them; its elements are {_structure(spec)}")
    components = tf.nest.flatten(spec)
    batched = all(c.shape.rank and c.shape[0] is None for c in components)
    cardinality = int(dataset.cardinality())
    if cardinality == tf.data.INFINITE_CARDINALITY:
        raise ValueError(f"data: {split}: an endless tf.data pipeline (repeat()); gdbench "
                         "iterates it once an epoch")
    if batched:
        zero = np.int64(0)
        batches, rows, largest = (int(n) for n in dataset.reduce(
            (zero, zero, zero), _tally))
    else:
        rows = cardinality if cardinality >= 0 else int(
            dataset.reduce(np.int64(0), lambda count, _: count + 1))
        batches, largest = 0, 1
    if not rows:
        raise ValueError(f"data: {split}: the tf.data pipeline yields no rows")
    return Pipeline(dataset=dataset, batched=batched, rows=rows, batches=batches,
                    largest=largest)


def _tally(state: tuple[tf.Tensor, ...], element: Any) -> tuple[tf.Tensor, ...]:
    """One batch counted: (batches, rows, largest batch)."""
    size = tf.shape(tf.nest.flatten(element)[0], out_type=tf.int64)[0]
    return state[0] + 1, state[1] + size, tf.maximum(state[2], size)


def _row_specs(pipeline: Pipeline) -> Any:
    """Its element spec for one row: a batch's without the leading dimension."""
    if not pipeline.batched:
        return pipeline.dataset.element_spec
    return tf.nest.map_structure(lambda spec: tf.TensorSpec(spec.shape[1:], spec.dtype),
                                 pipeline.dataset.element_spec)


def _describe(rows: Any) -> str:
    return ", ".join(f"{spec.dtype.name} {tuple(spec.shape)}" for spec in tf.nest.flatten(rows))


def _structure(spec: Any) -> str:
    if isinstance(spec, Mapping):
        return (f"a dict of {', '.join(map(repr, spec))} (map it to pairs: "
                ".map(lambda e: (e[x_key], e[y_key])))")
    if isinstance(spec, tuple):
        return f"tuples of {len(spec)}"
    return f"single {type(spec).__name__}s"
