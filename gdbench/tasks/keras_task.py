"""A Keras task of the user's: a model builder and its data, trained as gdbench's image tasks.

:func:`keras_task` makes an :class:`~gdbench.tasks.ImageTask` class of a function that
builds an uncompiled ``keras.Model`` and of the data, so that a spec trains it as
``digits_mlp``::

    def build_model(*, hidden=16):
        return keras.Sequential([keras.Input((30,)), keras.layers.Dense(hidden, "relu"),
                                 keras.layers.Dense(2)])

    def data():
        x, y = sklearn.datasets.load_breast_cancer(return_X_y=True)
        return {"train": (x[:469], y[:469]), "test": (x[469:], y[469:])}

    BreastCancer = gdbench.tasks.keras_task(build_model, data)

Data: a mapping (or a function of the options returning one) with ``"train"`` and
optionally ``"validation"`` and ``"test"``, each a pair ``(x, y)`` of arrays of the same
length, or each a ``tf.data.Dataset`` of ``(x, y)`` elements or batches
(:mod:`gdbench.tasks._keras_data`). Arrays: inputs are cast to Keras's float type, integer
targets kept as class indices; without ``"validation"``, gdbench draws ``validation_size``
rows (a fifth by default) out of the training rows by the seed. Pipelines: used as they
yield, ``"validation"`` required (gdbench cannot split a pipeline), no ``subset``.

Loss: by default the image tasks' softmax cross-entropy over logits, with ``accuracy``: the
model ends in one logit per class. ``loss`` (any Keras loss) and ``metrics`` (Keras's
names or objects) replace them; each epoch then logs ``loss`` and those metrics, on the
training batches and the validation split (``val_``), and the test split gives ``test_``
ones after training.

Seed: it moves the initial weights (Keras's random seed is set from it before the builder
runs, and a builder that takes ``seed`` is given it), the validation split where gdbench
draws it, and the batch order; the same seed gives the same curves. A training pipeline of
batches is iterated as given: the seed then moves only the initial weights
(:meth:`KerasTask.pipeline_note`).

Populations: a model of ``Flatten`` and ``Dense`` layers on the default loss, on arrays,
trains in populations, as ``digits_mlp``
(:func:`~gdbench.tasks.image_population.population_obstacle`); any other one trial at a time.

Options: the builder's and the data function's keyword-only parameters (the builder's
``seed`` aside) are the task's options, beside ``seed``, ``subset`` and ``validation_size``.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import keras
import numpy as np

from gdbench import _validate
from gdbench.tasks import _datasets
from gdbench.tasks._base import INIT_STREAM, SHUFFLE_STREAM, Task
from gdbench.tasks._image_task import EVALUATION_BATCH_SIZE, ImageSplits, ImageTask, derived_seed
from gdbench.tasks._keras_data import SPLITS, Pipeline, read_splits

__all__ = ["SPLITS", "KerasTask", "keras_task"]

#: The share of the training rows drawn for validation when the data hold no validation split.
VALIDATION_SHARE = 0.2

#: Metric names ``model.compile`` reads itself rather than through ``keras.metrics.get``.
_COMPILE_NAMES = ("accuracy", "acc", "crossentropy", "ce")

#: A task class's data (arrays or pipelines), loaded once per class and options.
_LOADED: dict[tuple[type, str], dict[str, Any]] = {}


class KerasTask(ImageTask):
    """A Keras model of the user's on the user's data (a class :func:`keras_task` makes).

    Args:
        seed: seeds the initial weights, the validation split gdbench draws and the
            batch order (not that of a pipeline of batches).
        subset: training rows to keep (1 … all); ``None`` keeps all; arrays only.
        validation_size: rows drawn out of the training rows for validation, when the
            data hold no validation split; a fifth of them by default.
        **options: the builder's and the data function's keyword-only parameters.
    """

    build_function: ClassVar[Callable[..., Any]]
    data_source: ClassVar[Any]
    loss_identifier: ClassVar[Any] = None
    metric_identifiers: ClassVar[tuple[Any, ...]] = ()
    #: Each option → its default (``inspect.Parameter.empty`` when required).
    function_options: ClassVar[Mapping[str, Any]] = {}
    builder_keywords: ClassVar[tuple[str, ...]] = ()
    data_keywords: ClassVar[tuple[str, ...]] = ()
    builder_takes_seed: ClassVar[bool] = False

    def __init__(self, *, seed: int = 0, subset: int | None = None,
                 validation_size: int | None = None, **options: Any) -> None:
        unknown = sorted(set(options) - set(self.function_options))
        if unknown:
            raise ValueError(f"{self.name}: unknown option(s) {', '.join(unknown)}")
        for key, default in self.function_options.items():
            if key not in options:
                if default is inspect.Parameter.empty:
                    raise ValueError(f"{key}: required by {self.name} (a keyword of its "
                                     "builder or data)")
                options[key] = default
        loaded = _load(type(self), options)
        self.pipelines: dict[str, Pipeline] = {
            split: value for split, value in loaded.items() if isinstance(value, Pipeline)}
        self.splits_given = {split: value for split, value in loaded.items()
                             if split not in self.pipelines}
        if self.pipelines:
            train = self.pipelines["train"].rows
            if subset is not None:
                raise ValueError("subset: gdbench cannot cut a tf.data pipeline; take() the "
                                 "rows in it")
        else:
            train = len(self.splits_given["train"][1])
        if "validation" in loaded:
            if validation_size is not None:
                raise ValueError("validation_size: the data hold a validation split of their own")
            available = train
        else:
            if validation_size is None:
                validation_size = max(1, round(VALIDATION_SHARE * train))
            validation_size = _validate.integer("validation_size", validation_size, low=1,
                                                high=train - 1)
            available = train - validation_size
        if subset is not None:
            subset = _validate.integer("subset", subset, low=1, high=available)
        # ImageTask's sizes are a data set's constants; these are the user's data's.
        Task.__init__(self, seed=seed, subset=subset, validation_size=validation_size, **options)
        self.source_train_size = train
        self.num_examples = available if subset is None else subset
        self._splits: ImageSplits | None = None
        self._metric_names: tuple[str, ...] | None = None

    @classmethod
    def option_names(cls) -> list[str]:
        """``seed``, ``subset``, ``validation_size`` and the functions' options."""
        return ["seed", "subset", "validation_size", *cls.function_options]

    @property
    def deepobs(self) -> bool:
        """A task of the user's follows gdbench's data protocol."""
        return False

    @property
    def in_memory(self) -> bool:  # type: ignore[override]
        """Whether its splits are arrays rather than ``tf.data`` pipelines."""
        return not self.pipelines

    @property
    def engine_loss(self) -> bool:  # type: ignore[override]
        """Whether it trains on the default loss, the one the population engine computes."""
        return self.loss_identifier is None

    def load_arrays(self) -> _datasets.Arrays:
        train, test = self.splits_given["train"], self.splits_given.get("test")
        if test is None:
            test = (train[0][:0], train[1][:0])
        return train, test

    def scale(self, images: np.ndarray) -> np.ndarray:
        """Inputs as Keras's float type."""
        return np.asarray(images, dtype=keras.config.floatx())

    def labels(self, values: np.ndarray) -> np.ndarray:
        """Integer targets as class indices (int64), others as Keras's float type."""
        if np.issubdtype(values.dtype, np.integer):
            return values.astype(np.int64)
        return np.asarray(values, dtype=keras.config.floatx())

    def data(self) -> ImageSplits:
        """The splits: the data's validation split where they hold one, else one drawn by
        the seed (:meth:`~gdbench.tasks.ImageTask.split_rows`).

        Raises:
            ValueError: the data are ``tf.data`` pipelines, not arrays.
        """
        if self.pipelines:
            raise ValueError(f"data: {self.name}'s splits are tf.data pipelines, not arrays")
        if self._splits is None:
            (x_train, y_train), (x_test, y_test) = self.load_arrays()
            if "validation" in self.splits_given:
                x_validation, y_validation = self.splits_given["validation"]
                train = np.arange(self.num_examples)
            else:
                validation, train = self.split_rows(len(y_train))
                x_validation, y_validation = x_train[validation], y_train[validation]
            self._splits = ImageSplits(
                x_train=self.scale(x_train[train]), y_train=self.labels(y_train[train]),
                x_validation=self.scale(x_validation), y_validation=self.labels(y_validation),
                x_test=self.scale(x_test), y_test=self.labels(y_test))
        return self._splits

    def pipeline_note(self) -> str | None:
        """What gdbench does with a training pipeline and what the seed moves then, in
        words; ``None`` for arrays."""
        if not self.pipelines:
            return None
        train = self.pipelines["train"]
        if train.batched:
            return ("its training pipeline yields batches, used as given: the seed moves only "
                    "the initial weights")
        return ("its training pipeline yields single elements: the seed shuffles them each "
                "epoch and moves the initial weights, and batch_size batches them")

    def split_sizes(self) -> dict[str, int]:
        if not self.pipelines:
            return super().split_sizes()
        return {split: self.pipelines[split].rows if split in self.pipelines else 0
                for split in SPLITS}

    def resolve_batch_size(self, batch_size: int | None) -> int:
        """As :meth:`Task.resolve_batch_size`; a training pipeline of batches has its own.

        Raises:
            ValueError: as :meth:`Task.resolve_batch_size`, or a batch size asked of a
                pipeline of batches.
        """
        train = self.pipelines.get("train")
        if train is None or not train.batched:
            return super().resolve_batch_size(batch_size)
        if batch_size is not None and batch_size != train.largest:
            raise ValueError(f"batch_size: {self.name}'s training pipeline yields batches of "
                             f"its own ({train.largest} rows); leave batch_size out")
        return train.largest

    def steps_per_epoch(self, batch_size: int | None = None) -> int:
        """As :meth:`ImageTask.steps_per_epoch`; a training pipeline of batches: its batches."""
        train = self.pipelines.get("train")
        if train is None or not train.batched:
            return super().steps_per_epoch(batch_size)
        self.resolve_batch_size(batch_size)
        return train.batches

    def training_data(self, batch_size: int | None = None) -> Any:
        """As :meth:`ImageTask.training_data`; a training pipeline as
        :meth:`~gdbench.tasks._keras_data.Pipeline.training` feeds it."""
        if not self.pipelines:
            return super().training_data(batch_size)
        return self.pipelines["train"].training(self.resolve_batch_size(batch_size),
                                                derived_seed(self.seed, SHUFFLE_STREAM))

    def validation_inputs(self) -> dict[str, Any]:
        if not self.pipelines:
            return super().validation_inputs()
        return {"validation_data": self.pipelines["validation"].evaluation(
            EVALUATION_BATCH_SIZE)}

    def test_inputs(self) -> dict[str, Any] | None:
        if not self.pipelines:
            return super().test_inputs()
        test = self.pipelines.get("test")
        return None if test is None else {"x": test.evaluation(EVALUATION_BATCH_SIZE)}

    def build_model(self) -> keras.Model:
        """The builder's model, its initial weights drawn from the seed.

        Raises:
            ValueError: the builder raised, or returned something other than a model.
        """
        init_seed = derived_seed(self.seed, INIT_STREAM)
        keras.utils.set_random_seed(init_seed)
        keywords = {key: self.options[key] for key in self.builder_keywords}
        if self.builder_takes_seed:
            keywords["seed"] = init_seed
        builder = type(self).build_function
        try:
            model = builder(**keywords)
        except Exception as error:  # noqa: BLE001 - a user's builder may raise anything
            raise ValueError(f"build_model: {builder.__name__} raised {type(error).__name__}: "
                             f"{_first_line(error)}") from None
        if not isinstance(model, keras.Model):
            raise ValueError(f"build_model: {builder.__name__} returned "
                             f"{type(model).__name__}, not a keras.Model")
        return model

    def compile_arguments(self) -> dict[str, Any]:
        if self.loss_identifier is None:
            return super().compile_arguments()
        return {"loss": _fresh(self.loss_identifier, keras.losses),
                "metrics": [_fresh(metric, keras.metrics) for metric in self.metric_identifiers]}

    def metric_names(self) -> tuple[str, ...]:
        """``loss`` and the metrics, as Keras logs them (found by :meth:`check`).

        Raises:
            ValueError: as :meth:`check`.
        """
        if self.loss_identifier is None:
            return super().metric_names()
        if self._metric_names is None:
            self._metric_names = self.check()
        return self._metric_names

    def tested_metrics(self) -> list[str]:
        """The ``test_`` metrics; none when the data hold no test split."""
        given = "test" in self.splits_given or "test" in self.pipelines
        return super().tested_metrics() if given else []

    def check(self) -> tuple[str, ...]:
        """Build the model and evaluate it on two training rows with the loss and metrics;
        the names of what it logs.

        Raises:
            ValueError: the builder raises or gives no model, or the model, loss and
                metrics cannot take the data; the message says which.
        """
        if self.pipelines:
            rows = {"x": self.pipelines["train"].first_rows()}
            form = f" (its training pipeline yields {self.pipelines['train'].form()})"
        else:
            splits = self.data()
            rows, form = {"x": splits.x_train[:2], "y": splits.y_train[:2]}, ""
        model = self.build_model()
        problem = self.pipelines and self.pipelines["train"].rank_problem(model)
        if problem:
            raise ValueError(f"data: train: {problem}")
        try:
            model.compile(**self.compile_arguments())
            logs = model.evaluate(**rows, verbose=0, return_dict=True)
        except Exception as error:  # noqa: BLE001 - a user's model may raise anything
            raise ValueError(f"data: {self.name}'s model, loss and metrics cannot take its "
                             f"training rows{form}: {type(error).__name__}: "
                             f"{_first_line(error)}") from None
        return ("loss", *(name for name in logs if name != "loss"))


def keras_task(build_model: Callable[..., Any], data: Any, *, loss: Any = None,
               metrics: Sequence[Any] | None = None, name: str | None = None,
               epochs: int = 20, batch_size: int = 32,
               objective: str = "val_loss") -> type[KerasTask]:
    """A task class that trains ``build_model``'s model on ``data``.

    Args:
        build_model: ``build_model(*, **options)`` → an uncompiled ``keras.Model``; a
            ``seed`` keyword, if it takes one, gets the task's initial-weights seed.
        data: a mapping of :data:`SPLITS` to ``(x, y)`` pairs of arrays or to ``tf.data``
            pipelines of ``(x, y)``, or a function ``data(*, **options)`` returning one.
        loss: a Keras loss (name or object); ``None`` for softmax cross-entropy over
            logits with ``accuracy``.
        metrics: Keras metrics (names or objects), with ``loss`` only.
        name: the task's name; the builder's module's by default.
        epochs: the default epochs.
        batch_size: the default batch size.
        objective: the metric a study optimizes by default.

    Raises:
        ValueError: an argument that does not fit (a metric Keras does not know, …),
            naming it.
    """
    if not callable(build_model):
        raise ValueError(f"build_model: expected a function, got {build_model!r}")
    if metrics is not None and loss is None:
        raise ValueError("metrics: given without a loss; the default loss comes with accuracy")
    metrics = tuple(metrics or ())
    for index, metric in enumerate(metrics):
        if isinstance(metric, str) and metric not in _COMPILE_NAMES:
            try:
                keras.metrics.get(metric)
            except ValueError:
                raise ValueError(f"metrics[{index}]: Keras has no metric {metric!r}") from None
    if isinstance(loss, str):
        try:
            keras.losses.get(loss)
        except ValueError:
            raise ValueError(f"loss: Keras has no loss {loss!r}") from None
    builder_options = _keywords(build_model, "build_model")
    takes_seed = "seed" in inspect.signature(build_model).parameters
    builder_options.pop("seed", None)
    data_options = _keywords(data, "data") if callable(data) else {}
    name = name or str(getattr(build_model, "__module__", "keras_task")).rsplit(".", 1)[-1]
    name = re.sub(r"^gdbench_user_file_[0-9a-f]+_", "", name)
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
        raise ValueError(f"name: expected letters, digits and '_', got {name!r}")
    taken = {"seed", "subset", "validation_size"} & (set(builder_options) | set(data_options))
    if taken:
        raise ValueError(f"build_model: keyword {sorted(taken)[0]!r} is one of the task's own "
                         "options")
    attributes = {
        "name": name, "build_function": staticmethod(build_model),
        "data_source": staticmethod(data) if callable(data) else data,
        "loss_identifier": loss, "metric_identifiers": metrics,
        "function_options": {**data_options, **builder_options},
        "builder_keywords": tuple(builder_options), "data_keywords": tuple(data_options),
        "builder_takes_seed": takes_seed,
        "default_epochs": _validate.integer("epochs", epochs, low=1),
        "default_batch_size": _validate.integer("batch_size", batch_size, low=1),
        "objective_metric": objective, "image_shape": (),
        "__doc__": build_model.__doc__ or f"The Keras model {name}.",
        "__module__": getattr(build_model, "__module__", __name__),
    }
    class_name = "".join(part.capitalize() for part in name.split("_"))
    return type(class_name, (KerasTask,), attributes)


def _keywords(function: Callable[..., Any], field: str) -> dict[str, Any]:
    """A function's keyword-only parameters → their defaults; it must take no positional one
    without a default."""
    parameters = inspect.signature(function).parameters.values()
    positional = [p.name for p in parameters if p.default is p.empty
                  and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if positional:
        raise ValueError(f"{field}: {function.__name__} takes positional parameter(s) "
                         f"{', '.join(positional)}; its options are keyword-only")
    return {p.name: p.default for p in parameters if p.kind is p.KEYWORD_ONLY}


def _load(task_class: type[KerasTask], options: Mapping[str, Any]) -> dict[str, Any]:
    """The task's splits, checked (arrays, or :class:`Pipeline` s): loaded once per class
    and options."""
    key = (task_class, repr(sorted(options.items())))
    if key in _LOADED:
        return _LOADED[key]
    source = task_class.data_source
    if callable(source):
        keywords = {k: options[k] for k in task_class.data_keywords}
        try:
            source = source(**keywords)
        except Exception as error:  # noqa: BLE001 - a user's data function may raise anything
            raise ValueError(f"data: {task_class.data_source.__name__} raised "
                             f"{type(error).__name__}: {_first_line(error)}") from None
    _LOADED[key] = read_splits(source)
    return _LOADED[key]


def _fresh(identifier: Any, module: Any) -> Any:
    """A new loss or metric object for each compile (a metric object holds its state)."""
    if isinstance(identifier, str) or callable(identifier) and not hasattr(identifier,
                                                                           "get_config"):
        return identifier
    return module.deserialize(module.serialize(identifier))


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""
