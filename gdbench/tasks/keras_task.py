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
length; inputs are cast to Keras's float type, integer targets kept as class indices.
Without ``"validation"``, gdbench draws ``validation_size`` rows (a fifth by default) out
of the training rows by the seed.

Loss: by default the image tasks' softmax cross-entropy over logits, with ``accuracy``: the
model ends in one logit per class. ``loss`` (any Keras loss) and ``metrics`` (Keras's
names or objects) replace them; each epoch then logs ``loss`` and those metrics, on the
training batches and the validation split (``val_``), and the test split gives ``test_``
ones after training.

Seed: it moves the initial weights (Keras's random seed is set from it before the builder
runs, and a builder that takes ``seed`` is given it), the validation split where gdbench
draws it, and the batch order; the same seed gives the same curves.

Populations: a model of ``Flatten`` and ``Dense`` layers on the default loss trains in
populations, as ``digits_mlp`` (:func:`~gdbench.tasks.image_population.supports_population`);
any other one trial at a time.

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
from gdbench.tasks._base import INIT_STREAM, Task
from gdbench.tasks._image_task import ImageSplits, ImageTask, derived_seed

__all__ = ["SPLITS", "KerasTask", "keras_task"]

#: The splits a task's data may hold; ``train`` is required.
SPLITS = ("train", "validation", "test")

#: The share of the training rows drawn for validation when the data hold no validation split.
VALIDATION_SHARE = 0.2

#: Metric names ``model.compile`` reads itself rather than through ``keras.metrics.get``.
_COMPILE_NAMES = ("accuracy", "acc", "crossentropy", "ce")

#: A task class's data, loaded once per class and options.
_LOADED: dict[tuple[type, str], dict[str, tuple[np.ndarray, np.ndarray]]] = {}


class KerasTask(ImageTask):
    """A Keras model of the user's on the user's data (a class :func:`keras_task` makes).

    Args:
        seed: seeds the initial weights, the validation split gdbench draws and the
            batch order.
        subset: training rows to keep (1 … all); ``None`` keeps all.
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
        self.splits_given = _load(type(self), options)
        train = len(self.splits_given["train"][1])
        if "validation" in self.splits_given:
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
        the seed (:meth:`~gdbench.tasks.ImageTask.split_rows`)."""
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
        return super().tested_metrics() if "test" in self.splits_given else []

    def check(self) -> tuple[str, ...]:
        """Build the model and evaluate it on two training rows with the loss and metrics;
        the names of what it logs.

        Raises:
            ValueError: the builder raises or gives no model, or the model, loss and
                metrics cannot take the data; the message says which.
        """
        splits = self.data()
        model = self.build_model()
        try:
            model.compile(**self.compile_arguments())
            logs = model.evaluate(splits.x_train[:2], splits.y_train[:2], verbose=0,
                                  return_dict=True)
        except Exception as error:  # noqa: BLE001 - a user's model may raise anything
            raise ValueError(f"data: {self.name}'s model, loss and metrics cannot take its "
                             f"training rows: {type(error).__name__}: {_first_line(error)}"
                             ) from None
        return ("loss", *(name for name in logs if name != "loss"))


def keras_task(build_model: Callable[..., Any], data: Any, *, loss: Any = None,
               metrics: Sequence[Any] | None = None, name: str | None = None,
               epochs: int = 20, batch_size: int = 32,
               objective: str = "val_loss") -> type[KerasTask]:
    """A task class that trains ``build_model``'s model on ``data``.

    Args:
        build_model: ``build_model(*, **options)`` → an uncompiled ``keras.Model``; a
            ``seed`` keyword, if it takes one, gets the task's initial-weights seed.
        data: a mapping of :data:`SPLITS` to ``(x, y)`` pairs, or a function
            ``data(*, **options)`` returning one.
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


def _load(task_class: type[KerasTask], options: Mapping[str, Any]
          ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The task's splits, checked: loaded once per class and options."""
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
    if not isinstance(source, Mapping) or "train" not in source:
        raise ValueError(f"data: expected a mapping with 'train' (and optionally 'validation', "
                         f"'test'), each (x, y); got {type(source).__name__}")
    extra = sorted(set(source) - set(SPLITS))
    if extra:
        raise ValueError(f"data: unknown split(s) {', '.join(map(str, extra))}; accepted: "
                         f"{', '.join(SPLITS)}")
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
    _LOADED[key] = splits
    return splits


def _fresh(identifier: Any, module: Any) -> Any:
    """A new loss or metric object for each compile (a metric object holds its state)."""
    if isinstance(identifier, str) or callable(identifier) and not hasattr(identifier,
                                                                           "get_config"):
        return identifier
    return module.deserialize(module.serialize(identifier))


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""
