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

__all__ = ["EFFECTIVE_LEARNING_RATES", "StepState", "effective_learning_rate_trace"]


@dataclasses.dataclass(frozen=True)
class StepState:
    """What one step leaves behind, for computing its effective learning rate.

    Attributes:
        slots: slot name → value after the step (``type(optimizer).slot_names``).
        previous_slots: slot name → value before the step (AdaDelta's u_{t−1}).
        step: t, counting from 1.
        learning_rate: η used at this step.
        optimizer: the optimizer, for its hyperparameters (ε, β2, ...).
    """

    slots: Mapping[str, np.ndarray]
    previous_slots: Mapping[str, np.ndarray]
    step: int
    learning_rate: float
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
    ``optimizer.apply_gradients``. After each step the optimizer's slots are
    read and turned into the factor of the module's table.

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
    effective_learning_rate = EFFECTIVE_LEARNING_RATES[_registered_name(optimizer)]
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
    def train_step(batch: Any) -> None:
        with tf.GradientTape() as tape:
            value = task.loss(parameters.value, batch)
        gradient = tape.gradient(value, parameters.value)
        optimizer.apply_gradients([(gradient, parameters)])

    def read_slots() -> dict[str, np.ndarray]:
        return {name: np.array(slot.numpy(), dtype=np.float64)
                for name, slot in zip(slot_names, slots)}

    rows = []
    shape = parameters.shape
    for epoch in range(epochs):
        for batch in task.batches(batch_size, epoch):
            previous_slots = read_slots()
            learning_rate = current_learning_rate(optimizer)
            train_step(batch)
            state = StepState(
                slots=read_slots(), previous_slots=previous_slots,
                step=int(optimizer.iterations.numpy()), learning_rate=learning_rate,
                optimizer=optimizer,
            )
            rows.append(np.broadcast_to(effective_learning_rate(state), shape).astype(np.float64))
    return np.stack(rows)


def _registered_name(optimizer: keras.optimizers.Optimizer) -> str:
    """The registry name of ``optimizer``'s class (or of its nearest registered base)."""
    names_by_class = {cls: name for name, cls in gdbench_optimizers.REGISTRY.items()}
    for cls in type(optimizer).__mro__:
        name = names_by_class.get(cls)
        if name in EFFECTIVE_LEARNING_RATES:
            return name
    raise ValueError(
        f"optimizer: no effective-learning-rate formula for {type(optimizer).__name__}; "
        f"supported: {', '.join(EFFECTIVE_LEARNING_RATES)} (gdbench.optimizers.get(name))"
    )
