"""Many trials of a toy task trained as one batch: one hyperparameter set per row.

A toy task's loss broadcasts over leading dimensions, and every gdbench update
rule broadcasts over per-trial hyperparameters. So K trials of the same task,
optimizer and schedule, differing only in their hyperparameter values, can be
trained together: the parameters become a ``[K, P]`` tensor, every numeric
hyperparameter a ``[K, 1]`` tensor, and the gradient of the summed loss gives
each row its own gradient (row k's loss depends on row k only). The whole
training loop, epochs × batches, runs inside one compiled ``tf.function``
(XLA by default), which is what makes hundreds of toy trials per second
possible.

Each trial computes what :meth:`ToyTask.fit` computes for it with the Keras
class: the same rule (the class's ``rule``: gdbench's own, or a user's made a
class by :func:`gdbench.optimizers.rule_optimizer`), the same
reported point (the class's ``iterate`` where it has one: Nesterov's lectures'
iterate rather than its look-ahead point), slots
initialised as the class initialises them, ``step`` counting from 1, the
schedule evaluated at the 0-based iteration count, the same batches in the same
order, the per-epoch loss on all data at the parameters reached, and the
losses the task's protocol evaluates on data of their own
(:meth:`ToyTask.evaluation_batches`, epoch 0 included).

Precision: everything here is float64, η included, as :meth:`ToyTask.fit`
computes with a constant η (gdbench optimizers hold it in float64). Keras
evaluates a schedule at the step cast to ``keras.config.floatx()``, though, so
under the default float32 a scheduled :meth:`ToyTask.fit` steps with η computed
in float32: the two then agree to about 1e-7 relative, and to float64 rounding
under ``keras.config.set_floatx("float64")``.

    >>> import gdbench.tasks
    >>> from gdbench.tasks.population import fit_population
    >>> task = gdbench.tasks.get("sigmoid_neuron")
    >>> result = fit_population(task, "adam", {"learning_rate": [0.01, 0.1, 1.0],
    ...                                        "beta_1": 0.9}, epochs=100)
    >>> result.losses.shape
    (3, 100)
"""

from __future__ import annotations

import types
from typing import Any, Mapping

import numpy as np
import tensorflow as tf
from numpy.typing import ArrayLike

from gdbench import _validate
from gdbench.optimizers import RuleOptimizer
from gdbench.tasks._toy import ToyTask
from gdbench.tasks._population_inputs import EngineInputs, engine_inputs, initial_slots
from gdbench.tasks._population_loop import (
    as_tensors,
    batch_layout,
    compiled_loop,
    evaluation_layout,
)
from gdbench.tasks._population_result import PopulationResult, population_result
from gdbench.tasks.trace import effective_learning_rates

# The result type, the keyword checks and the compiled loop live in modules of their
# own; these names stay importable from here.
__all__ = ["EngineInputs", "PopulationResult", "as_tensors", "check_rule", "engine_inputs",
           "fit_population", "initial_slots"]

#: Trials and parameters of the population :func:`check_rule` traces.
_CHECK_SHAPE = (2, 3)


def check_rule(optimizer: Any) -> None:
    """Trace an optimizer's rule once as the population engines run it.

    The rule is called inside a ``tf.function`` on a population of two trials
    of three parameters, every numeric keyword a per-trial column at its
    default: Python that cannot be traced (a tensor's truth value, NumPy on a
    tensor) fails here, as does a result that is not ``(new_param,
    new_slots)`` with one new slot of the parameter's shape per declared slot.

    Args:
        optimizer: a rule's optimizer class, or what ``optimizer`` of
            :func:`fit_population` takes.

    Raises:
        ValueError: the rule cannot be traced, or returns another structure;
            the message names the rule and what differed.
        KeyError: an unknown optimizer name.
    """
    # Two values of η make a population of two trials; every other keyword at its default.
    inputs = engine_inputs(optimizer, {"learning_rate": [0.01, 0.02]}, None, None)
    rule = inputs.optimizer_class.rule
    where = f"rule {getattr(rule, '__name__', rule)!r}"
    slots = initial_slots(inputs.optimizer_class, inputs.numbers, inputs.static, _CHECK_SHAPE)
    names = inputs.optimizer_class.slot_names

    def step(parameters: tf.Tensor, slots: tuple[tf.Tensor, ...],
             numbers: dict[str, tf.Tensor]) -> Any:
        return rule(parameters, parameters * 0.5, slots, step=tf.constant(1.0, tf.float64),
                    learning_rate=numbers["learning_rate"],
                    **{k: v for k, v in numbers.items() if k != "learning_rate"},
                    **inputs.rule_static)

    numbers = {"learning_rate": inputs.numbers["learning_rate"], **inputs.rule_numbers}
    try:
        result = tf.function(step, autograph=False).get_concrete_function(
            tf.TensorSpec(_CHECK_SHAPE, tf.float64),
            tuple(tf.TensorSpec(_CHECK_SHAPE, tf.float64) for _ in slots),
            {k: tf.TensorSpec(v.shape, tf.float64) for k, v in numbers.items()},
        ).structured_outputs
    except Exception as error:  # noqa: BLE001 - whatever the rule's Python does wrong
        message = str(error).strip().splitlines()[-1] if str(error).strip() else ""
        raise ValueError(f"{where} cannot be traced as the population engines run it "
                         f"(keras.ops or TensorFlow ops that broadcast, no Python on tensor "
                         f"values): {type(error).__name__}: {message}") from None
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise ValueError(f"{where} must return (new_param, new_slots), got {result!r}")
    new_parameters, new_slots = result
    if not isinstance(new_slots, (tuple, list)) or len(new_slots) != len(names):
        count = len(new_slots) if isinstance(new_slots, (tuple, list)) else "not a tuple"
        raise ValueError(f"{where} must return one new slot for each of its {len(names)} "
                         f"slots ({', '.join(names) or 'none'}), got {count}")
    for what, tensor in [("new_param", new_parameters)] + [
            (f"slot {name!r}", slot) for name, slot in zip(names, new_slots)]:
        shape = getattr(tensor, "shape", None)
        if shape is None or tuple(shape) != _CHECK_SHAPE:
            raise ValueError(f"{where}: {what} must keep the parameter's shape "
                             f"{list(_CHECK_SHAPE)}, got {shape}")


def fit_population(
    task: ToyTask,
    optimizer: str | type[RuleOptimizer],
    hyperparameters: Mapping[str, ArrayLike],
    *,
    epochs: int,
    batch_size: int | None = None,
    schedule: str | None = None,
    schedule_parameters: Mapping[str, Any] | None = None,
    record_trajectory: bool = False,
    jit_compile: bool = True,
    record_effective_learning_rates: bool = False,
) -> PopulationResult:
    """Train K trials of ``task`` at once, one hyperparameter set per row.

    K is the length of the per-trial values; a scalar is shared by every
    trial. Numeric keywords may vary per trial; a discrete one (Adam's
    ``bias_correction``, a schedule's ``mode``, ``staircase`` or schedule
    ``target``) is shared by the population. Keywords left out take the
    class's default.

    Values are checked by the classes' own validation: the schedule is built
    once per trial; the optimizer is built at the smallest and at the largest
    value of every keyword, which checks each keyword's range exactly but a
    constraint between two keywords (Rprop's ``min_step ≤ max_step``) only at
    those two points.

    Args:
        task: a :class:`ToyTask` (its loss must broadcast over ``[K, P]``).
        optimizer: a rule's optimizer: a name or import path that
            :func:`gdbench.optimizers.source` finds, or the class itself (a
            :class:`~gdbench.optimizers.RuleOptimizer`, such as one made by
            :func:`gdbench.optimizers.rule_optimizer`).
        hyperparameters: the optimizer's keywords, each a scalar or K values.
            ``learning_rate`` is required unless ``schedule`` gives η, and
            refused when it does.
        epochs: epochs to run, ≥ 1.
        batch_size: examples per step, 1 ≤ B ≤ N; ``None`` for the task's default.
        schedule: a name of ``gdbench.schedules.REGISTRY``, or ``None`` for a
            constant η.
        schedule_parameters: the schedule's keywords, each a scalar or K
            values; a sequence keyword (``boundaries``, ``values``) takes a
            sequence whose items are scalars or K values.
        record_trajectory: keep the parameters after every step.
        record_effective_learning_rates: keep every parameter's effective
            learning rate at every step, the factors of
            :mod:`gdbench.tasks.trace` computed at once from the slots and η
            the compiled loop records; for an optimizer with such a formula
            (a registered one), else ``None``.
        jit_compile: compile the loop with XLA (faster on CPU and GPU; the
            first call with new shapes pays the compilation).

    Returns:
        A :class:`PopulationResult` with one row per trial.

    Raises:
        KeyError: an unknown optimizer or schedule name.
        ValueError: an optimizer that is not a rule, a task that is not a toy task, an unknown or missing
            keyword, values whose count is not K, a value the class refuses,
            bad ``epochs`` or ``batch_size``.
    """
    if not isinstance(task, ToyTask):
        raise ValueError(
            f"task: expected a ToyTask (e.g. gdbench.tasks.get('sigmoid_neuron')), got {task!r}"
        )
    epochs = _validate.integer("epochs", epochs, low=1)
    batch_size = task.resolve_batch_size(batch_size)
    record_trajectory = _validate.flag("record_trajectory", record_trajectory)
    record_rates = _validate.flag("record_effective_learning_rates",
                                  record_effective_learning_rates)
    jit_compile = _validate.flag("jit_compile", jit_compile)
    inputs = engine_inputs(optimizer, hyperparameters, schedule, schedule_parameters)

    start = np.asarray(task.initial_parameters(), dtype=np.float64)
    parameters = np.broadcast_to(start, (inputs.size, start.shape[-1])).copy()
    slots = initial_slots(inputs.optimizer_class, inputs.numbers, inputs.static,
                          parameters.shape)
    layout, stacked_batches = batch_layout(task, batch_size, epochs)
    evaluations, evaluation_batches = evaluation_layout(task, batch_size, epochs)
    train = compiled_loop(
        task, inputs.optimizer_class, inputs.schedule_class, inputs.rule_static,
        inputs.rate_static, layout, evaluations, epochs, record_trajectory, jit_compile,
        record_rates,
    )
    losses, learning_rates, evaluated, path, recorded = train(
        tf.constant(parameters),
        tuple(tf.constant(slot) for slot in slots),
        as_tensors(inputs.rule_numbers),
        as_tensors(inputs.rate_inputs),
        stacked_batches,
        evaluation_batches,
    )
    return population_result(
        losses.numpy().T, learning_rates.numpy().T,
        None if path is None else np.transpose(path.numpy(), (1, 0, 2)),
        layout.steps_per_epoch, tuple(task.parameter_names),
        {key: values.numpy().T for key, values in evaluated.items()},
        None if recorded is None else _effective_rates(inputs, recorded, parameters.shape),
    )


def _effective_rates(inputs: EngineInputs, recorded: Any,
                     shape: tuple[int, ...]) -> np.ndarray | None:
    """``[K, steps, P]`` effective learning rates from the loop's slots and η, or ``None``
    for an optimizer with no formula."""
    slot_rows, step_rates = recorded
    names = inputs.optimizer_class.slot_names
    values = types.SimpleNamespace(**inputs.numbers, **inputs.static)
    try:
        rates = effective_learning_rates(
            inputs.optimizer_class, {name: rows.numpy() for name, rows in zip(names, slot_rows)},
            step_rates.numpy(), shape, values,
        )
    except ValueError:
        return None
    return np.transpose(rates, (1, 0, 2))
