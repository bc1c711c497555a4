"""A toy task of the user's: a loss function of a parameter vector, with or without data.

:func:`toy_task` makes a :class:`~gdbench.tasks.ToyTask` class of a function, so that a
spec trains it as the built-in surfaces (its paths, effective learning rates and pictures
included) and the toy population engine trains many trials of it at once::

    def himmelblau(params):
        x, y = params[..., 0], params[..., 1]
        return (x * x + y - 11.0) ** 2 + (x + y * y - 7.0) ** 2

    Himmelblau = gdbench.tasks.toy_task(himmelblau, start=(0.0, 0.0),
                                        bounds=((-5.0, 5.0), (-5.0, 5.0)))

The function is written with TensorFlow ops (or ``keras.ops``) that broadcast over leading
axes: parameters of shape ``[..., P]`` give losses of shape ``[...]``. The population engine
calls it once for K trials, with parameters ``[K, P]``; :func:`check_broadcasts` refuses a
function that does not (a spec's reader runs it). With ``data``, the function is
``loss(params, inputs, targets)``: ``inputs`` ``[n, ...]`` and ``targets`` ``[n]`` are the
rows of a batch, and the loss is reduced over the rows (the last axis once ``params``
broadcast against them, e.g. ``tf.reduce_mean(..., axis=-1)``).

Options: the function's keyword-only parameters (and a ``data`` function's, besides
``seed``) are the task's options, which a spec sets in its ``task`` table; ``start`` moves
the start point. Seed: a ``data`` function is called with the task's ``seed`` (the data of a
synthetic problem move with it) and mini-batches are shuffled by it; a task without data
draws nothing at random.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import tensorflow as tf

from gdbench import _validate
from gdbench.tasks._toy import DatasetToyTask, ToyTask

__all__ = ["FunctionTask", "check_broadcasts", "toy_task"]

#: The default of an option the function requires (a keyword-only parameter without default).
REQUIRED = inspect.Parameter.empty

#: Rows of the population :func:`check_broadcasts` evaluates.
_CHECK_ROWS = 3


class FunctionTask(ToyTask):
    """A toy task whose loss is a function of the user's (a class :func:`toy_task` makes).

    Args:
        seed: seeds a ``data`` function and the batch order.
        start: the initial parameters; ``None`` for the start :func:`toy_task` was given.
        **options: the function's keyword-only parameters.
    """

    loss_function: ClassVar[Callable[..., Any]]
    start: ClassVar[tuple[float, ...]]
    #: Each option → its default (:data:`REQUIRED` when it has none).
    function_options: ClassVar[Mapping[str, Any]] = {}
    #: The options the loss takes.
    loss_keywords: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, seed: int = 0, start: Sequence[float] | None = None,
                 **options: Any) -> None:
        start = (type(self).start if start is None
                 else _validate.point("start", start, len(type(self).start)))
        own = {k: options.pop(k) for k in list(options) if k in self.function_options}
        for key, default in self.function_options.items():
            if key not in own:
                if default is REQUIRED:
                    raise ValueError(f"{key}: required by {self.name} (a keyword of its function)")
                own[key] = default
        super().__init__(seed=seed, start=start, **options, **own)

    @classmethod
    def option_names(cls) -> list[str]:
        """``seed``, ``start``, ``shuffle`` (with data) and the function's options."""
        found = super().option_names()
        if issubclass(cls, DatasetToyTask) and "shuffle" not in found:
            found.append("shuffle")
        return found + [key for key in cls.function_options if key not in found]

    def initial_parameters(self) -> np.ndarray:
        return np.array(self.options["start"], dtype=np.float64)

    def call_loss(self, params: tf.Tensor, *data: tf.Tensor) -> tf.Tensor:
        """The user's loss at ``params`` (and on ``data``), as float64."""
        keywords = {key: self.options[key] for key in self.loss_keywords}
        value = type(self).loss_function(tf.convert_to_tensor(params, tf.float64), *data,
                                         **keywords)
        return tf.convert_to_tensor(value, tf.float64)


class _Surface(FunctionTask):
    """A loss of the parameters alone."""

    def loss(self, params: tf.Tensor, batch: Any = None) -> tf.Tensor:
        return self.call_loss(params)


class _OnData(FunctionTask, DatasetToyTask):
    """A loss of the parameters on rows of data."""

    data_source: ClassVar[Any]
    data_keywords: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, seed: int = 0, start: Sequence[float] | None = None,
                 **options: Any) -> None:
        super().__init__(seed=seed, start=start, **options)
        source = type(self).data_source
        if callable(source):
            keywords = {key: self.options[key] for key in self.data_keywords}
            source = source(seed=self.seed, **keywords)
        if not isinstance(source, (tuple, list)) or len(source) != 2:
            raise ValueError(f"data: expected a pair (inputs, targets), got {type(source).__name__}")
        inputs, targets = (np.asarray(part, dtype=np.float64) for part in source)
        if targets.ndim != 1 or inputs.ndim < 1 or len(inputs) != len(targets) or not len(targets):
            raise ValueError(f"data: expected inputs [n, ...] and targets [n] with n ≥ 1, got "
                             f"inputs of shape {inputs.shape} and targets of shape "
                             f"{targets.shape}")
        self.inputs, self.targets = inputs, targets

    def loss_on(self, params: tf.Tensor, inputs: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
        return self.call_loss(params, inputs, targets)


def toy_task(loss: Callable[..., Any], *, start: Sequence[float],
             bounds: Sequence[Sequence[float]] | None = None,
             parameter_names: Sequence[str] | None = None, data: Any = None,
             name: str | None = None, epochs: int = 200,
             batch_size: int | None = None) -> type[FunctionTask]:
    """A toy task class whose loss is ``loss``.

    Args:
        loss: ``loss(params, *, **options)``, or ``loss(params, inputs, targets, *,
            **options)`` with ``data``; TensorFlow ops that broadcast over leading axes
            (see the module's docstring). Its docstring becomes the task's.
        start: the start point, P numbers.
        bounds: ``((x_min, x_max), (y_min, y_max))``, the window the pictures draw a
            two-parameter loss over; ``None`` draws around the paths.
        parameter_names: a name for each parameter; ``("x", "y")`` for two, else
            ``w0``, ``w1``, ….
        data: ``(inputs, targets)`` arrays, or a function ``data(*, seed, **options)``
            returning them.
        name: the task's name; the function's by default.
        epochs: the default epochs.
        batch_size: the default batch size (with ``data``); ``None`` trains full batch.

    Raises:
        ValueError: an argument that does not fit, naming it.
    """
    if not callable(loss):
        raise ValueError(f"loss: expected a function, got {loss!r}")
    start = _validate.point("start", start, len(start) if hasattr(start, "__len__") else 0)
    if not start:
        raise ValueError("start: expected at least one number")
    size = len(start)
    positional, loss_options = _signature(loss, "loss")
    wanted = 3 if data is not None else 1
    if positional != wanted:
        forms = "(params, inputs, targets)" if data is not None else "(params)"
        raise ValueError(f"loss: {loss.__name__} takes {positional} positional parameter(s); "
                         f"expected {forms}{'' if data is not None else ' without data'}, the "
                         "options keyword-only")
    if parameter_names is None:
        parameter_names = ("x", "y") if size == 2 else tuple(f"w{i}" for i in range(size))
    parameter_names = tuple(str(item) for item in parameter_names)
    if len(parameter_names) != size:
        raise ValueError(f"parameter_names: expected {size} names, got {parameter_names!r}")
    if bounds is not None:
        if size != 2:
            raise ValueError("bounds: a window to draw is for two parameters only")
        bounds = tuple(_validate.point(f"bounds[{i}]", pair, 2) for i, pair in enumerate(bounds))
        if len(bounds) != 2 or any(low >= high for low, high in bounds):
            raise ValueError(f"bounds: expected ((x_min, x_max), (y_min, y_max)), got {bounds!r}")
    name = loss.__name__ if name is None else name
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
        raise ValueError(f"name: expected letters, digits and '_', got {name!r}")
    attributes: dict[str, Any] = {
        "name": name, "loss_function": staticmethod(loss), "start": start,
        "surface_bounds": bounds, "parameter_names": parameter_names,
        "default_epochs": _validate.integer("epochs", epochs, low=1),
        "default_batch_size": None if batch_size is None else _validate.integer(
            "batch_size", batch_size, low=1),
        "loss_keywords": tuple(loss_options), "__doc__": loss.__doc__ or f"The loss {name}.",
        "__module__": getattr(loss, "__module__", __name__),
    }
    base: type[FunctionTask] = _Surface
    options = dict(loss_options)
    if data is not None:
        base = _OnData
        data_options: dict[str, Any] = {}
        if callable(data):
            _, data_options = _signature(data, "data")
            if "seed" not in data_options:
                raise ValueError("data: a data function takes the task's seed as a keyword "
                                 "(def data(*, seed): ...)")
            del data_options["seed"]
        attributes.update(data_source=staticmethod(data) if callable(data) else data,
                          data_keywords=tuple(data_options))
        options.update(data_options)
    taken = {"seed", "start", "shuffle"} & set(options)
    if taken:
        raise ValueError(f"loss: keyword {sorted(taken)[0]!r} is one of the task's own options")
    attributes["function_options"] = options
    class_name = "".join(part.capitalize() for part in name.split("_")) or "FunctionTask"
    return type(class_name, (base,), attributes)


def _signature(function: Callable[..., Any], field: str) -> tuple[int, dict[str, Any]]:
    """(its positional parameters, its keyword-only ones → their defaults)."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError) as error:
        raise ValueError(f"{field}: its signature cannot be read: {error}") from None
    positional = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in parameters)
    options = {p.name: p.default for p in parameters if p.kind is p.KEYWORD_ONLY}
    return positional, options


def check_broadcasts(task: ToyTask) -> None:
    """Refuse a toy task's loss that the population engine cannot run.

    It is traced as a graph (no Python on tensor values) and evaluated at three
    distinct parameter rows ``[3, P]`` at once: it must give a loss per row, ``[3]``,
    each equal to that row's loss alone to 1e-12.

    Args:
        task: a toy task.

    Raises:
        ValueError: the loss cannot be traced, does not give one value per row, or
            gives other values together than alone; the message says which.
    """
    start = task.initial_parameters()
    steps = 0.1 * np.arange(1, _CHECK_ROWS + 1)[:, np.newaxis]
    rows = start + steps * (1.0 + np.arange(start.size)) * (1.0 + np.abs(start))
    where = f"task {task.name}"
    try:
        together = np.asarray(tf.function(task.loss)(tf.constant(rows, tf.float64)))
    except Exception as error:  # noqa: BLE001 - a user's function may raise anything
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ValueError(f"{where}: its loss cannot be traced as the population engine runs it "
                         "(TensorFlow ops or keras.ops that broadcast, no Python on tensor "
                         f"values): {type(error).__name__}: {message}") from None
    if together.shape != (_CHECK_ROWS,):
        raise ValueError(f"{where}: its loss does not broadcast over a leading population axis: "
                         f"parameters of shape {list(rows.shape)} gave a loss of shape "
                         f"{list(together.shape)}, not [{_CHECK_ROWS}] (index the parameters as "
                         "params[..., i] and reduce over the last axis only)")
    alone = np.array([float(task.loss(tf.constant(row, tf.float64))) for row in rows])
    if not np.allclose(together, alone, rtol=1e-12, atol=0.0, equal_nan=True):
        raise ValueError(f"{where}: its loss does not broadcast over a leading population axis: "
                         f"rows evaluated together gave {together.tolist()}, alone "
                         f"{alone.tolist()}")
