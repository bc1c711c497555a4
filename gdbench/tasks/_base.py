"""What every task shares: the fit contract, batch sizing, the helpers of every fit loop.

A task owns its data, its model and its loss; an optimizer is handed to
:meth:`Task.fit`, which trains and returns a :class:`FitResult`. Two families:

- toy tasks (:mod:`gdbench.tasks._toy`): a handful of parameters written as
  a pure TensorFlow loss ``loss(params, batch)`` that broadcasts over leading
  dimensions, trained in float64 with the trajectory of every step recorded.
- image tasks (:mod:`gdbench.tasks.images`): Keras models trained with
  ``model.fit`` in float32.

Batch size, as in the lectures:

| batch_size            | regime                 | steps per epoch |
|-----------------------|------------------------|-----------------|
| ``N`` (all examples)  | batch gradient descent | 1               |
| ``1``                 | stochastic             | N               |
| ``B`` with 1 < B < N  | mini-batch             | ⌈N / B⌉         |
| ``None``              | the task's default     | (as above)      |

A task whose ``default_batch_size`` is ``None`` trains full batch by default.
"""

from __future__ import annotations

import abc
import dataclasses
import inspect
import math
from typing import Any, ClassVar, Sequence

import keras
import numpy as np

from gdbench import _validate

#: Tags that keep a task's random streams apart: (seed, stream, ...) seeds each generator.
DATA_STREAM, SHUFFLE_STREAM, NOISE_STREAM, INIT_STREAM = 1, 2, 3, 4

#: Data protocols of the tasks DeepOBS shares: gdbench's own, or DeepOBS's (see
#: :mod:`gdbench.tasks.images` and :class:`gdbench.tasks.regression.QuadraticDeep`).
PROTOCOLS = ("gdbench", "deepobs")


@dataclasses.dataclass
class FitResult:
    """What :meth:`Task.fit` returns.

    Attributes:
        history: per-epoch metrics, keyed as Keras logs them (``"loss"``,
            ``"accuracy"``, ``"val_loss"``, ...) plus ``"learning_rate"``, the
            optimizer's η at the end of each epoch.
        metrics: the final value of every metric of ``history`` except the
            learning rate; image tasks add ``"test_loss"`` and ``"test_accuracy"``.
        steps_per_epoch: optimizer steps in one epoch.
        trajectory: toy tasks only: the parameters after every step, shape
            ``[steps + 1, P]``, row 0 the start; for Nesterov the lectures'
            iterate w, not the look-ahead point the variable holds
            (:func:`reported_parameters`).
        parameter_names: toy tasks only: the name of each trajectory column.
        initial: the metrics a task's protocol evaluates before training
            (epoch 0, as DeepOBS does), keyed as ``history``; empty for a task
            that evaluates after each epoch only.
        effective_learning_rates: toy tasks trained by the population engine
            with it asked for only: ``[steps, P]``, each parameter's effective
            learning rate at every step (:mod:`gdbench.tasks.trace`).
    """

    history: dict[str, list[float]]
    metrics: dict[str, float]
    steps_per_epoch: int
    trajectory: np.ndarray | None = None
    parameter_names: tuple[str, ...] = ()
    initial: dict[str, float] = dataclasses.field(default_factory=dict)
    effective_learning_rates: np.ndarray | None = None

    @property
    def epochs(self) -> int:
        """Epochs actually run (fewer than asked when training stopped early)."""
        return len(self.history.get("loss", ()))

    @property
    def finite(self) -> bool:
        """Whether every recorded loss is finite (a diverged run is not)."""
        return all(math.isfinite(value) for value in self.history.get("loss", ()))


class Task(abc.ABC):
    """Something an optimizer trains: data, model (or loss surface) and loss.

    Subclasses declare their options as keyword-only arguments of ``__init__``
    (besides ``seed``), validate them, and pass the validated values on to
    ``super().__init__``, which keeps them in :attr:`options`.

    Attributes:
        name: the registry name.
        seed: drives every random choice of the task (data, splits, shuffling,
            initial weights); two tasks with the same seed and options train
            identically.
        options: the validated options (without ``seed``), for logging.
        num_examples: N, the training-set size.
        default_epochs: epochs when :meth:`fit` is not told.
        default_batch_size: batch size when :meth:`fit` is not told; ``None``
            means full batch.
        objective_metric: the history key a study minimizes by default.
    """

    name: ClassVar[str]
    default_epochs: ClassVar[int]
    default_batch_size: ClassVar[int | None] = None
    objective_metric: ClassVar[str] = "loss"
    num_examples: int

    def __init__(self, *, seed: int = 0, **options: Any) -> None:
        self.seed = _validate.integer("seed", seed, low=0)
        self.options = dict(options)

    @classmethod
    def option_names(cls) -> list[str]:
        """The options ``__init__`` accepts, ``seed`` first."""
        parameters = inspect.signature(cls.__init__).parameters.values()
        names = [p.name for p in parameters if p.kind is p.KEYWORD_ONLY]
        return ["seed"] + [name for name in names if name != "seed"]

    def resolve_batch_size(self, batch_size: int | None) -> int:
        """The concrete batch size B that ``batch_size`` asks for.

        Args:
            batch_size: ``None`` for the task's default (capped at N), else 1 ≤ B ≤ N.

        Raises:
            ValueError: not an integer, or outside 1 … N.
        """
        if batch_size is None:
            if self.default_batch_size is None:
                return self.num_examples
            return min(self.default_batch_size, self.num_examples)
        return _validate.integer("batch_size", batch_size, low=1, high=self.num_examples)

    def steps_per_epoch(self, batch_size: int | None = None) -> int:
        """Optimizer steps per epoch: 1 full batch, N stochastic, ⌈N/B⌉ mini-batch.

        Args:
            batch_size: as for :meth:`fit`.
        """
        return math.ceil(self.num_examples / self.resolve_batch_size(batch_size))

    def resolve_epochs(self, epochs: int | None) -> int:
        """``epochs`` checked (an integer ≥ 1), or the task's default when ``None``."""
        if epochs is None:
            return self.default_epochs
        return _validate.integer("epochs", epochs, low=1)

    @abc.abstractmethod
    def fit(
        self,
        optimizer: keras.optimizers.Optimizer,
        *,
        epochs: int | None = None,
        batch_size: int | None = None,
        callbacks: Sequence[keras.callbacks.Callback] = (),
        verbose: int = 0,
    ) -> FitResult:
        """Train from the task's initial state with ``optimizer``.

        Callbacks get ``set_model``, ``on_train_begin``, ``on_epoch_begin``,
        ``on_epoch_end(epoch, logs)`` with ``logs`` holding every metric and
        ``"learning_rate"``, and ``on_train_end``. A callback may stop training
        (``model.stop_training = True``) or raise (the exception propagates).
        A non-finite loss ends training after that epoch without raising; the
        history shows the NaN or infinity.

        Args:
            optimizer: a fresh Keras optimizer (one never used before).
            epochs: epochs to run, ≥ 1; ``None`` for :attr:`default_epochs`.
            batch_size: examples per step, 1 ≤ B ≤ N; ``None`` for
                :attr:`default_batch_size`.
            callbacks: Keras callbacks.
            verbose: 0 silent, 1 or more: one line per epoch.

        Raises:
            ValueError: bad ``epochs``, ``batch_size`` or an optimizer already used.
            DatasetNotFoundError: (image tasks) the data set is nowhere to be had.
        """

    def __repr__(self) -> str:
        options = ", ".join(f"{key}={value!r}" for key, value in self.options.items())
        return f"{type(self).__name__}(seed={self.seed}{', ' if options else ''}{options})"


def check_optimizer(optimizer: Any) -> None:
    """Refuse anything but a Keras optimizer that has not been built for other variables."""
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        raise ValueError(f"optimizer: expected a keras.optimizers.Optimizer, got {optimizer!r}")
    if optimizer.built:
        raise ValueError(
            "optimizer: already built for other variables; pass a fresh optimizer to every fit "
            "(e.g. gdbench.optimizers.get(name, **hyperparameters))"
        )


def current_learning_rate(optimizer: keras.optimizers.Optimizer) -> float:
    """η at the optimizer's current step (a schedule is evaluated there)."""
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


def reported_parameters(optimizer: keras.optimizers.Optimizer, variable: keras.Variable,
                        learning_rate: Any) -> Any:
    """The point a toy task reports after a step: the optimizer's iterate.

    That is the variable itself, except for an optimizer whose variable holds
    another point (Nesterov's look-ahead, see
    :class:`gdbench.optimizers.Nesterov`): it gives its iterate through
    ``iterate_of(variable, learning_rate)``.

    Args:
        optimizer: the optimizer that just stepped ``variable``.
        variable: the trained variable.
        learning_rate: η of that step.
    """
    iterate_of = getattr(optimizer, "iterate_of", None)
    return variable.value if iterate_of is None else iterate_of(variable, learning_rate)


def final_metrics(history: dict[str, list[float]]) -> dict[str, float]:
    """The last value of every history key but the learning rate."""
    return {key: values[-1] for key, values in history.items() if key != "learning_rate" and values}
