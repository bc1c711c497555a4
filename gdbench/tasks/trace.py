"""The effective learning rate of every parameter, step by step.

Adaptive optimizers scale the gradient (or its first moment) coordinate by
coordinate. :func:`effective_learning_rate_trace` trains a toy task one step at
a time and records, after each step, the factor that multiplied the gradient
at that step, read from the optimizer's own slots:

| optimizer                     | effective learning rate                |
|-------------------------------|----------------------------------------|
| gd, momentum, nesterov        | η                                      |
| adagrad, rmsprop              | η / √(v_t + ε)                         |
| adadelta                      | η √(u_{t−1} + ε) / √(v_t + ε)          |
| adam, nadam, adamw            | η / (√v̂_t + ε), v̂_t = v_t / (1 − β2ᵗ)  |
| amsgrad                       | η / (√v̂_t + ε), v̂_t = max_{s≤t} v_s    |
| adamax, maxprop               | η / (v_t + ε)                          |
| rprop                         | s_t, the step size                     |

(Adam with ``bias_correction=False`` uses v̂_t = v_t.)

η is the optimizer's learning rate at that step (a schedule is evaluated at
the step's iteration count), so a decaying schedule shows in the trace.
For GD, momentum and Nesterov the factor is η, the scale of each gradient's
contribution to the steps; for the Adam family it multiplies the
(bias-corrected) first moment.
This is the picture the lectures draw for Adagrad (the rate of a frequently
updated parameter decays fast) and RMSProp (it does not).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from gdbench import optimizers as gdbench_optimizers
from gdbench import _validate
from gdbench.tasks._base import check_optimizer, current_learning_rate
from gdbench.tasks._toy import ToyTask
from gdbench.tasks._gradients import custom_gradients_released

__all__ = ["EFFECTIVE_LEARNING_RATES", "StepState", "effective_learning_rate_trace",
           "effective_learning_rates", "schedule_learning_rates"]


@dataclasses.dataclass(frozen=True)
class StepState:
    """What one step leaves behind, for computing its effective learning rate.

    Attributes:
        slots: slot name → value after the step (``type(optimizer).slot_names``).
        previous_slots: slot name → value before the step (AdaDelta's u_{t−1}).
        step: t, counting from 1.
        learning_rate: η used at this step.
        optimizer: the optimizer, for its hyperparameters (ε, β2, ...).

    Evaluated for many steps at once (:func:`effective_learning_rates`), each
    value is an array with one row per step (``step`` a column of the counts)
    and the optimizer's values may be per-trial columns: every formula is
    NumPy arithmetic that broadcasts.
    """

    slots: Mapping[str, np.ndarray]
    previous_slots: Mapping[str, np.ndarray]
    step: Any
    learning_rate: Any
    optimizer: Any


def _learning_rate_only(state: StepState) -> Any:
    return state.learning_rate


def _root_mean_square(state: StepState) -> np.ndarray:
    return state.learning_rate / np.sqrt(state.slots["v"] + state.optimizer.epsilon)


def _adadelta(state: StepState) -> np.ndarray:
    epsilon = state.optimizer.epsilon
    # Δ_t = √(u_{t−1} + ε)/√(v_t + ε) g_t uses the update average before this
    # step's own Δ_t enters it.
    return (state.learning_rate * np.sqrt(state.previous_slots["u"] + epsilon)
            / np.sqrt(state.slots["v"] + epsilon))


def _adam(state: StepState) -> np.ndarray:
    optimizer = state.optimizer
    v = state.slots["v"]
    if getattr(optimizer, "bias_correction", True):
        v = v / (1.0 - optimizer.beta_2 ** state.step)
    return state.learning_rate / (np.sqrt(v) + optimizer.epsilon)


def _amsgrad(state: StepState) -> np.ndarray:
    return state.learning_rate / (np.sqrt(state.slots["v_hat"]) + state.optimizer.epsilon)


def _infinity_norm(state: StepState) -> np.ndarray:
    return state.learning_rate / (state.slots["v"] + state.optimizer.epsilon)


def _rprop(state: StepState) -> np.ndarray:
    return state.slots["step_size"]


#: Registered optimizer name → its effective learning rate after a step.
EFFECTIVE_LEARNING_RATES: dict[str, Callable[[StepState], Any]] = {
    "gd": _learning_rate_only,
    "momentum": _learning_rate_only,
    "nesterov": _learning_rate_only,
    "adagrad": _root_mean_square,
    "rmsprop": _root_mean_square,
    "adadelta": _adadelta,
    "adam": _adam,
    "adamax": _infinity_norm,
    "nadam": _adam,
    "amsgrad": _amsgrad,
    "adamw": _adam,
    "maxprop": _infinity_norm,
    "rprop": _rprop,
}


def effective_learning_rates(
    optimizer: Any,
    slots: Mapping[str, np.ndarray],
    learning_rates: np.ndarray,
    shape: tuple[int, ...],
    hyperparameters: Any = None,
) -> np.ndarray:
    """The effective learning rates of many steps at once, from the slots they left.

    Every formula of the module's table is NumPy arithmetic, so it is evaluated
    once for all steps (and, for a population, all trials): the slots stacked
    step by step, η of every step, and the step counts as a column broadcast
    against them.

    Args:
        optimizer: the optimizer or its class (its registered name picks the formula).
        slots: slot name → ``[steps + 1, ...]`` values, row 0 before the first
            step and row t after step t.
        learning_rates: η of every step, ``[steps, ...]`` broadcasting against
            ``shape``.
        shape: the parameters' shape (``[P]``, or a population's ``[K, P]``).
        hyperparameters: what the formulas read of the optimizer (ε, β2,
            ``bias_correction``), as attributes; ``None`` for ``optimizer``
            itself. Values may be arrays broadcasting against a slot's rows
            (a population's ``[K, 1]`` columns).

    Returns:
        ``[steps, *shape]`` float64: row t − 1 is step t's effective learning rate.

    Raises:
        ValueError: an optimizer with no formula.
    """
    formula = EFFECTIVE_LEARNING_RATES[_registered_name(optimizer)]
    values = {name: np.asarray(value, dtype=np.float64) for name, value in slots.items()}
    learning_rates = np.asarray(learning_rates, dtype=np.float64)
    steps, shape = len(learning_rates), tuple(shape)
    counts = np.arange(1, steps + 1, dtype=np.float64).reshape((steps,) + (1,) * len(shape))
    state = StepState(
        slots={name: value[1:] for name, value in values.items()},
        previous_slots={name: value[:-1] for name, value in values.items()},
        step=counts,
        learning_rate=learning_rates,
        optimizer=optimizer if hyperparameters is None else hyperparameters,
    )
    return np.broadcast_to(formula(state), (steps,) + shape).astype(np.float64)


def schedule_learning_rates(optimizer: keras.optimizers.Optimizer, steps: int) -> np.ndarray:
    """η of the optimizer's first ``steps`` steps, ``[steps]`` float64.

    A schedule is evaluated once, on the vector of the 0-based iteration
    counts 0 … steps − 1 (every gdbench schedule broadcasts over its step); a
    constant η is repeated.
    """
    # The optimizer's learning rate as given (a schedule or a variable): Keras
    # keeps it as ``_learning_rate``; the public property evaluates one step only.
    rate = optimizer._learning_rate
    if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
        values = keras.ops.convert_to_numpy(rate(np.arange(steps, dtype=np.int64)))
        return np.broadcast_to(np.asarray(values, dtype=np.float64), (steps,)).copy()
    return np.full(steps, current_learning_rate(optimizer), dtype=np.float64)


@custom_gradients_released()
def effective_learning_rate_trace(
    task: ToyTask,
    optimizer: keras.optimizers.Optimizer,
    *,
    epochs: int,
    batch_size: int | None = None,
) -> np.ndarray:
    """Train ``task`` step by step and record each parameter's effective learning rate.

    The loop is the toy tasks' own: a float64 variable starting at
    ``task.initial_parameters()``, for every batch of ``task.batches`` the
    gradient of ``task.loss`` by ``tf.GradientTape`` and
    ``optimizer.apply_gradients``. Each step returns the optimizer's slots;
    η of every step is the schedule evaluated once on all of them
    (:func:`schedule_learning_rates`), and the factors of the module's table
    are computed once for all steps (:func:`effective_learning_rates`).

    Args:
        task: a toy task (:class:`gdbench.tasks.ToyTask`).
        optimizer: a fresh gdbench optimizer whose name is in
            :data:`EFFECTIVE_LEARNING_RATES`.
        epochs: epochs to run, ≥ 1.
        batch_size: examples per step, as for ``task.fit``; ``None`` for the
            task's default.

    Returns:
        ``[steps, P]`` float64: row t − 1 is the effective learning rate of
        each parameter at step t.

    Raises:
        ValueError: a task that is not a toy task, bad ``epochs`` or
            ``batch_size``, an optimizer already built, one with gradient
            accumulation, or one with no effective-learning-rate formula.
    """
    if not isinstance(task, ToyTask):
        raise ValueError(
            f"task: effective learning rates are traced on toy tasks; got {type(task).__name__}"
        )
    epochs = _validate.integer("epochs", epochs, low=1)
    batch_size = task.resolve_batch_size(batch_size)
    check_optimizer(optimizer)
    _registered_name(optimizer)
    if optimizer.gradient_accumulation_steps:
        raise ValueError(
            "optimizer: gradient_accumulation_steps changes the slots only every few steps; "
            "trace an optimizer without it"
        )

    parameters = keras.Variable(task.initial_parameters(), dtype="float64", name="parameters")
    optimizer.build([parameters])
    slot_names = type(optimizer).slot_names
    slots = optimizer._slots[optimizer._get_variable_index(parameters)]

    @tf.function(reduce_retracing=True)
    def train_step(batch: Any) -> tuple[tf.Tensor, ...]:
        with tf.GradientTape() as tape:
            value = task.loss(parameters.value, batch)
        gradient = tape.gradient(value, parameters.value)
        optimizer.apply_gradients([(gradient, parameters)])
        return tuple(tf.identity(slot) for slot in slots)

    rows = [[np.array(slot.numpy(), dtype=np.float64) for slot in slots]]
    for epoch in range(epochs):
        for batch in task.batches(batch_size, epoch):
            rows.append([np.asarray(value, dtype=np.float64) for value in train_step(batch)])
    steps = len(rows) - 1
    stacked = {name: np.stack([row[index] for row in rows])
               for index, name in enumerate(slot_names)}
    shape = tuple(parameters.shape)
    learning_rates = schedule_learning_rates(optimizer, steps).reshape(
        (steps,) + (1,) * len(shape))
    return effective_learning_rates(optimizer, stacked, learning_rates, shape)


def _registered_name(optimizer: Any) -> str:
    """The registry name of ``optimizer``'s class (or of its nearest registered base)."""
    cls = optimizer if isinstance(optimizer, type) else type(optimizer)
    names_by_class = {cls: name for name, cls in gdbench_optimizers.REGISTRY.items()}
    for base in cls.__mro__:
        name = names_by_class.get(base)
        if name in EFFECTIVE_LEARNING_RATES:
            return name
    raise ValueError(
        f"optimizer: no effective-learning-rate formula for {cls.__name__}; "
        f"supported: {', '.join(EFFECTIVE_LEARNING_RATES)} (gdbench.optimizers.get(name))"
    )
