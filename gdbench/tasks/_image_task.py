"""The image tasks' base: :class:`ImageTask`, its splits and its ``model.fit`` loop.

Each concrete task (:mod:`gdbench.tasks.images`) names its data set and builds
its model; :class:`ImageTask` draws the splits from the task's seed, trains
with ``model.fit`` in float32 and evaluates the test set, as the
:mod:`gdbench.tasks.images` docstring describes (protocols included).
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, ClassVar, Sequence

import keras
import numpy as np
import tensorflow as tf

from gdbench import _validate
from gdbench.tasks import _datasets
from gdbench.tasks._base import (
    DATA_STREAM, INIT_STREAM, PROTOCOLS, SHUFFLE_STREAM, FitResult, Task, check_optimizer,
    current_learning_rate, final_metrics,
)
from gdbench.tasks._gradients import custom_gradients_released

__all__ = ["EVALUATION_BATCH_SIZE", "PROTOCOLS", "ImageSplits", "ImageTask", "derived_seed"]

#: Batch size for validation and test evaluation (no effect on the result, only on speed).
EVALUATION_BATCH_SIZE = 1024


@dataclasses.dataclass(frozen=True)
class ImageSplits:
    """Training, validation and test images (float32, [n, H, W, C]) with integer labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_validation: np.ndarray
    y_validation: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


class ImageTask(Task):
    """A Keras classifier on an image data set; see :mod:`gdbench.tasks.images` for the splits.

    Subclasses set the sizes and shape, and implement :meth:`load_arrays`
    and :meth:`build_model`.

    Args:
        seed: seeds the validation split, the per-epoch shuffling and the
            initial weights.
        subset: training images to keep (1 … all); ``None`` keeps all.
        validation_size: images held out of the training set for validation.
        test_size: test images to evaluate (the first of a fixed order);
            ``None`` evaluates all.
        download: whether a data set missing locally may be downloaded.
        protocol: ``"gdbench"`` or, for a task with a :attr:`deepobs_problem`,
            ``"deepobs"`` (see :mod:`gdbench.tasks.images`).
    """

    default_batch_size: ClassVar[int | None] = 128
    objective_metric: ClassVar[str] = "val_loss"
    num_classes: ClassVar[int] = 10
    image_shape: ClassVar[tuple[int, int, int]]
    #: Images in the source's training and test splits.
    source_train_size: ClassVar[int]
    source_test_size: ClassVar[int]
    default_validation_size: ClassVar[int]
    #: The DeepOBS test problem this task reproduces; ``None`` where DeepOBS has none.
    deepobs_problem: ClassVar[str | None] = None
    #: Whether it trains on softmax cross-entropy over logits with accuracy as its metric,
    #: the loss the image population engine computes.
    engine_loss: ClassVar[bool] = True
    #: Whether its splits are arrays in memory, which the image population engine stacks.
    in_memory: ClassVar[bool] = True

    def __init__(self, *, seed: int = 0, subset: int | None = None,
                 validation_size: int | None = None, test_size: int | None = None,
                 download: bool = True, protocol: str = "gdbench") -> None:
        if validation_size is None:
            validation_size = self.default_validation_size
        validation_size = _validate.integer("validation_size", validation_size, low=1,
                                           high=self.source_train_size - 1)
        available = self.source_train_size - validation_size
        if subset is not None:
            subset = _validate.integer("subset", subset, low=1, high=available)
        if test_size is not None:
            test_size = _validate.integer("test_size", test_size, low=1, high=self.source_test_size)
        protocol = _validate.choice("protocol", protocol, PROTOCOLS)
        if protocol == "deepobs" and self.deepobs_problem is None:
            raise ValueError(f"protocol: DeepOBS has no {self.name}; accepted: gdbench")
        super().__init__(seed=seed, subset=subset, validation_size=validation_size,
                         test_size=test_size, download=_validate.flag("download", download),
                         protocol=protocol)
        self.num_examples = available if subset is None else subset
        self._splits: ImageSplits | None = None

    @abc.abstractmethod
    def load_arrays(self) -> _datasets.Arrays:
        """The source's ``((x_train, y_train), (x_test, y_test))``, images as stored (uint8)."""

    @abc.abstractmethod
    def build_model(self) -> keras.Model:
        """A fresh, uncompiled model whose initial weights depend on :attr:`seed` only."""

    def compile_arguments(self) -> dict[str, Any]:
        """The loss and metrics each fit's ``model.compile`` takes (fresh objects)."""
        return {"loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                "metrics": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]}

    def metric_names(self) -> tuple[str, ...]:
        """What each epoch logs on the training batches, ``loss`` first, as Keras names it."""
        return ("loss", "accuracy")

    def logged_metrics(self) -> list[str]:
        """Every metric of a fit's history but η: the training batches', then the
        validation split's (``val_``). A study's objective is one of them: the test
        metrics come after training only, and selecting on them would leak the test
        set into the search."""
        names = self.metric_names()
        return [*names, *(f"val_{name}" for name in names)]

    def tested_metrics(self) -> list[str]:
        """The metrics the test set gives after training (``test_``)."""
        return [f"test_{name}" for name in self.metric_names()]

    def labels(self, values: np.ndarray) -> np.ndarray:
        """Stored labels → the targets the loss takes (class indices, int64)."""
        return values.astype(np.int64)

    def scale(self, images: np.ndarray) -> np.ndarray:
        """Raw images → float32 inputs of :attr:`image_shape` (by default pixels / 255)."""
        return (images.astype(np.float32) / 255.0).reshape((-1, *self.image_shape))

    def data(self) -> ImageSplits:
        """The splits, loaded once per task (see :mod:`gdbench.tasks.images`)."""
        if self._splits is None:
            (x_train, y_train), (x_test, y_test) = self.load_arrays()
            validation, train = self.split_rows(len(y_train))
            test = slice(None, self.options["test_size"])
            self._splits = ImageSplits(
                x_train=self.scale(x_train[train]), y_train=self.labels(y_train[train]),
                x_validation=self.scale(x_train[validation]),
                y_validation=self.labels(y_train[validation]),
                x_test=self.scale(x_test[test]), y_test=self.labels(y_test[test]),
            )
        return self._splits

    def split_sizes(self) -> dict[str, int]:
        """The rows of each split: ``train``, ``validation``, ``test``."""
        splits = self.data()
        return {"train": len(splits.y_train), "validation": len(splits.y_validation),
                "test": len(splits.y_test)}

    def split_rows(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """The validation rows and the training rows of a training set of ``size`` images.

        The validation rows are the first ``validation_size`` of an order drawn from the
        seed (the source's order under DeepOBS's protocol), the training rows the rest of
        it, cut to ``subset``.
        """
        order = (np.arange(size) if self.deepobs else
                 np.random.default_rng((self.seed, DATA_STREAM)).permutation(size))
        validation_size = self.options["validation_size"]
        return order[:validation_size], order[validation_size:][: self.num_examples]

    @property
    def deepobs(self) -> bool:
        """Whether the task follows DeepOBS's data protocol."""
        return self.options["protocol"] == "deepobs"

    def steps_per_epoch(self, batch_size: int | None = None) -> int:
        """Optimizer steps per epoch: ⌈N/B⌉, or ⌊N/B⌋ under DeepOBS's protocol."""
        if self.deepobs:
            return self.num_examples // self.resolve_batch_size(batch_size)
        return super().steps_per_epoch(batch_size)

    def initializer(self, index: int, kind: str = "GlorotUniform", **arguments: Any
                    ) -> keras.initializers.Initializer:
        """The initializer of layer ``index``, seeded from the task's seed and the index."""
        layer_seed = derived_seed(self.seed, INIT_STREAM, index)
        return keras.initializers.get({"class_name": kind,
                                       "config": {"seed": layer_seed, **arguments}})

    def training_data(self, batch_size: int | None = None) -> tf.data.Dataset:
        """The training split in batches, shuffled anew each time it is iterated.

        :meth:`fit` trains on it; the last batch is short when B does not
        divide N (dropped under ``protocol = "deepobs"``). Each iterator draws the next order of a sequence fixed by
        the seed (``model.fit`` trains epoch e on the (2e)-th, see
        :mod:`gdbench.tasks.image_population`).

        Args:
            batch_size: as for :meth:`fit`.
        """
        batch_size = self.resolve_batch_size(batch_size)
        splits = self.data()
        # Shuffling through tf.data with an explicit seed keeps every run
        # reproducible without touching the global random state.
        return (
            tf.data.Dataset.from_tensor_slices((splits.x_train, splits.y_train))
            .shuffle(len(splits.y_train), seed=derived_seed(self.seed, SHUFFLE_STREAM),
                     reshuffle_each_iteration=True)
            .batch(batch_size, drop_remainder=self.deepobs)
        )

    def validation_inputs(self) -> dict[str, Any]:
        """The validation split as ``model.fit``'s keyword arguments."""
        splits = self.data()
        return {"validation_data": (splits.x_validation, splits.y_validation),
                "validation_batch_size": EVALUATION_BATCH_SIZE}

    def test_inputs(self) -> dict[str, Any] | None:
        """The test split as ``model.evaluate``'s keyword arguments; ``None`` when empty."""
        splits = self.data()
        if not len(splits.y_test):
            return None
        return {"x": splits.x_test, "y": splits.y_test, "batch_size": EVALUATION_BATCH_SIZE}

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
        """Build the model, compile it with ``optimizer`` and ``model.fit``; see :meth:`Task.fit`.

        The callbacks are passed to ``model.fit`` as they are, after one that
        adds ``"learning_rate"`` to the epoch logs and Keras's
        ``TerminateOnNaN``. ``keras.backend.clear_session()`` between fits is
        the caller's business; the gradient functions TensorFlow registers
        while tracing the steps are dropped when the fit returns or raises
        (:mod:`gdbench.tasks._gradients`), so that the model and its graphs
        can be collected.
        """
        epochs = self.resolve_epochs(epochs)
        batch_size = self.resolve_batch_size(batch_size)
        check_optimizer(optimizer)

        model = self.build_model()
        model.compile(optimizer=optimizer, **self.compile_arguments())
        tested = [_TestEvaluator(self.data())] if self.deepobs else []
        fitted = model.fit(
            self.training_data(batch_size),
            epochs=epochs,
            **self.validation_inputs(),
            shuffle=False,
            callbacks=[_LearningRateLogger(), *tested, keras.callbacks.TerminateOnNaN(),
                       *callbacks],
            verbose=2 if verbose else 0,
        )
        history = {key: [float(value) for value in values]
                   for key, values in fitted.history.items()}
        metrics = final_metrics(history)
        test_inputs = self.test_inputs()
        if test_inputs is not None:
            test = model.evaluate(**test_inputs, verbose=0, return_dict=True)
            metrics.update({f"test_{key}": float(value) for key, value in test.items()})
        return FitResult(history=history, metrics=metrics,
                         steps_per_epoch=self.steps_per_epoch(batch_size))


class _LearningRateLogger(keras.callbacks.Callback):
    """Adds the optimizer's η at the end of each epoch to the logs every later callback sees."""

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is not None:
            logs["learning_rate"] = current_learning_rate(self.model.optimizer)


class _TestEvaluator(keras.callbacks.Callback):
    """DeepOBS's protocol: the test set evaluated at each epoch's end, into the logs."""

    def __init__(self, splits: ImageSplits) -> None:
        super().__init__()
        self.splits = splits

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is not None:
            test = self.model.evaluate(self.splits.x_test, self.splits.y_test,
                                       batch_size=EVALUATION_BATCH_SIZE, verbose=0,
                                       return_dict=True)
            logs.update({f"test_{key}": float(value) for key, value in test.items()})


def derived_seed(*entropy: int) -> int:
    """A 31-bit seed for TensorFlow and Keras, drawn from the task's seed and a stream tag."""
    return int(np.random.SeedSequence(entropy).generate_state(1)[0] >> 1)
