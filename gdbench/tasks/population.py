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
class: the same rule (``gdbench.optimizers.REGISTRY[name].rule``), the same
reported point (the class's ``iterate`` where it has one: Nesterov's lectures'
iterate rather than its look-ahead point), slots
initialised as the class initialises them, ``step`` counting from 1, the
schedule evaluated at the 0-based iteration count, the same batches in the same
order, and the per-epoch loss on all data at the parameters reached.

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

import collections
import collections.abc
import dataclasses
import inspect
import types
import typing
from typing import Any, Callable, Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf
from numpy.typing import ArrayLike

import gdbench.optimizers
import gdbench.schedules
from gdbench import _validate
from gdbench.optimizers import RuleOptimizer
from gdbench.schedules import RateSchedule
from gdbench.tasks._base import FitResult, ToyTask

__all__ = ["EngineInputs", "PopulationResult", "as_tensors", "engine_inputs", "fit_population",
           "initial_slots"]

#: Compiled training loops kept for reuse, so that a study evaluating one
#: population after another with the same shapes compiles only once.
_CACHE_SIZE = 16


@dataclasses.dataclass
class PopulationResult:
    """What :func:`fit_population` returns: one row per trial.

    A trial whose loss becomes non-finite is reported as :meth:`ToyTask.fit`
    reports it: its history ends with the epoch of that loss. Here the
    arrays keep their shape and hold NaN after that epoch.

    Attributes:
        losses: ``[K, epochs]``, the loss on all data after each epoch.
        learning_rates: ``[K, epochs]``, η at the end of each epoch (the
            schedule at the iteration count reached), as ``history["learning_rate"]``.
        final_loss: ``[K]``, the last loss reported (the first non-finite one
            for a diverged trial).
        finite: ``[K]``, whether every loss of the trial is finite.
        epochs_run: ``[K]``, the epochs :meth:`ToyTask.fit` would have run
            (all of them unless the loss became non-finite).
        trajectories: ``[K, steps + 1, P]``, the parameters after every step,
            row 0 the start; ``None`` unless recorded.
        steps_per_epoch: optimizer steps in one epoch.
        parameter_names: the name of each of the P parameters.
    """

    losses: np.ndarray
    learning_rates: np.ndarray
    final_loss: np.ndarray
    finite: np.ndarray
    epochs_run: np.ndarray
    trajectories: np.ndarray | None
    steps_per_epoch: int
    parameter_names: tuple[str, ...]

    @property
    def size(self) -> int:
        """K, the number of trials."""
        return len(self.final_loss)

    def trial(self, index: int) -> FitResult:
        """Trial ``index`` as the :class:`FitResult` that :meth:`ToyTask.fit` returns.

        The history holds ``"loss"`` and ``"learning_rate"`` (metrics a task
        adds besides its loss are not computed by the population engine).

        Args:
            index: the row, 0 ≤ index < K.
        """
        index = _validate.integer("index", index, low=0, high=self.size - 1)
        reported = int(self.epochs_run[index])
        history = {
            "loss": self.losses[index, :reported].tolist(),
            "learning_rate": self.learning_rates[index, :reported].tolist(),
        }
        trajectory = None
        if self.trajectories is not None:
            trajectory = self.trajectories[index, : reported * self.steps_per_epoch + 1]
        return FitResult(
            history=history,
            metrics={"loss": float(self.final_loss[index])},
            steps_per_epoch=self.steps_per_epoch,
            trajectory=trajectory,
            parameter_names=self.parameter_names,
        )


def fit_population(
    task: ToyTask,
    optimizer: str,
    hyperparameters: Mapping[str, ArrayLike],
    *,
    epochs: int,
    batch_size: int | None = None,
    schedule: str | None = None,
    schedule_parameters: Mapping[str, Any] | None = None,
    record_trajectory: bool = False,
    jit_compile: bool = True,
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
        optimizer: a name of ``gdbench.optimizers.REGISTRY``.
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
        jit_compile: compile the loop with XLA (faster on CPU and GPU; the
            first call with new shapes pays the compilation).

    Returns:
        A :class:`PopulationResult` with one row per trial.

    Raises:
        KeyError: an unknown optimizer or schedule name.
        ValueError: a task that is not a toy task, an unknown or missing
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
    jit_compile = _validate.flag("jit_compile", jit_compile)
    inputs = engine_inputs(optimizer, hyperparameters, schedule, schedule_parameters)

    start = np.asarray(task.initial_parameters(), dtype=np.float64)
    parameters = np.broadcast_to(start, (inputs.size, start.shape[-1])).copy()
    slots = initial_slots(inputs.optimizer_class, inputs.numbers, inputs.static,
                          parameters.shape)
    layout, stacked_batches = _batch_layout(task, batch_size, epochs)
    train = _compiled_loop(
        task, inputs.optimizer_class, inputs.schedule_class, inputs.rule_static,
        inputs.rate_static, layout, epochs, record_trajectory, jit_compile,
    )
    losses, learning_rates, path = train(
        tf.constant(parameters),
        tuple(tf.constant(slot) for slot in slots),
        as_tensors(inputs.rule_numbers),
        as_tensors(inputs.rate_inputs),
        stacked_batches,
    )
    return _result(
        losses.numpy().T, learning_rates.numpy().T,
        None if path is None else np.transpose(path.numpy(), (1, 0, 2)),
        layout.steps_per_epoch, tuple(task.parameter_names),
    )


# --- keyword checks ---------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class EngineInputs:
    """A population's optimizer and schedule keywords, checked, as the engines take them.

    Attributes:
        optimizer_class: the optimizer's class.
        schedule_class: the schedule's class, ``None`` for a constant η.
        size: K, the number of trials.
        numbers: every numeric optimizer keyword as a ``[K, 1]`` float64 column
            (``learning_rate`` among them without a schedule).
        static: the keywords shared by the population (flags, modes).
        rate_inputs: the schedule's per-trial numbers (or ``learning_rate``).
        rate_static: the schedule's shared keywords.
    """

    optimizer_class: type[RuleOptimizer]
    schedule_class: type[RateSchedule] | None
    size: int
    numbers: dict[str, np.ndarray]
    static: dict[str, Any]
    rate_inputs: dict[str, Any]
    rate_static: dict[str, Any]

    @property
    def rule_numbers(self) -> dict[str, np.ndarray]:
        """The per-trial keywords the rule takes."""
        names = self.optimizer_class.hyperparameter_names
        return {name: value for name, value in self.numbers.items() if name in names}

    @property
    def rule_static(self) -> dict[str, Any]:
        """The shared keywords the rule takes."""
        names = self.optimizer_class.hyperparameter_names
        return {name: value for name, value in self.static.items() if name in names}


def engine_inputs(optimizer: Any, hyperparameters: Any, schedule: Any,
                  schedule_parameters: Any) -> EngineInputs:
    """Check a population's keywords as :func:`fit_population` takes them (see its
    arguments and errors); the image population engine takes them alike."""
    optimizer_class = _optimizer_class(optimizer)
    schedule_class = _schedule_class(schedule, schedule_parameters)
    hyperparameters = dict(_mapping("hyperparameters", hyperparameters))
    schedule_parameters = dict(_mapping("schedule_parameters", schedule_parameters or {}))

    _check_learning_rate_source(hyperparameters, schedule_class)
    sequences = _sequence_keywords(schedule_class) if schedule_class is not None else set()
    size = _population_size({
        **hyperparameters,
        **{f"schedule_parameters.{field}": item
           for name, value in schedule_parameters.items()
           for field, item in _leaves(name, value, name in sequences)},
    })
    numbers, static = _optimizer_inputs(
        optimizer_class, hyperparameters, size, has_schedule=schedule_class is not None
    )
    if schedule_class is None:
        rate_inputs, rate_static = {"learning_rate": numbers["learning_rate"]}, {}
    else:
        rate_inputs, rate_static = _schedule_inputs(schedule_class, schedule_parameters, size)
    return EngineInputs(optimizer_class, schedule_class, size, dict(numbers), dict(static),
                        dict(rate_inputs), dict(rate_static))


def _optimizer_class(name: Any) -> type[RuleOptimizer]:
    registry = gdbench.optimizers.REGISTRY
    if not isinstance(name, str) or name.lower() not in registry:
        raise KeyError(f"optimizer: unknown name {name!r}; registered: {', '.join(registry)}")
    return registry[name.lower()]


def _schedule_class(name: Any, parameters: Any) -> type[RateSchedule] | None:
    if name is None:
        if parameters:
            raise ValueError(
                "schedule_parameters: given without a schedule; name one with schedule="
                f"(one of {', '.join(gdbench.schedules.REGISTRY)})"
            )
        return None
    registry = gdbench.schedules.REGISTRY
    if not isinstance(name, str) or name.lower() not in registry:
        raise KeyError(f"schedule: unknown name {name!r}; registered: {', '.join(registry)}")
    return registry[name.lower()]


def _mapping(field: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise ValueError(f"{field}: expected a mapping of keyword names to values, got {value!r}")
    return value


def _check_learning_rate_source(
    hyperparameters: dict[str, Any], schedule_class: type[RateSchedule] | None
) -> None:
    if schedule_class is None and "learning_rate" not in hyperparameters:
        raise ValueError(
            "hyperparameters: 'learning_rate' is required (a scalar or K values) "
            "unless a schedule gives η"
        )
    if schedule_class is not None and "learning_rate" in hyperparameters:
        raise ValueError(
            "hyperparameters: 'learning_rate' given together with a schedule; "
            "pass η through schedule_parameters instead"
        )


def _is_discrete(value: Any) -> bool:
    """A value that selects a variant (a flag, a mode, a target schedule), shared by all trials."""
    return value is None or isinstance(value, (bool, np.bool_, str)) or callable(value)


def _numeric(field: str, value: Any) -> np.ndarray:
    """``value`` as float64 of shape [] or [K]."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{field}: expected a number or K numbers, got {value!r}") from None
    if array.ndim > 1:
        raise ValueError(
            f"{field}: expected a number or K numbers (shape [K]), got shape {array.shape}"
        )
    return array


def _sequence_keywords(cls: type) -> set[str]:
    """Keywords annotated as sequences (``boundaries``, ``values``): each item is one number."""
    parameters = inspect.signature(cls.__init__, eval_str=True).parameters.values()
    return {
        p.name for p in parameters
        if typing.get_origin(p.annotation) in (collections.abc.Sequence, list, tuple)
    }


def _leaves(name: str, value: Any, is_sequence: bool) -> list[tuple[str, Any]]:
    """(field, value) for each number a keyword holds: itself, or each item of a sequence."""
    if not is_sequence:
        return [(name, value)]
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
        raise ValueError(f"{name}: expected a sequence of numbers, got {value!r}")
    return [(f"{name}[{index}]", item) for index, item in enumerate(value)]


def _population_size(fields: Mapping[str, Any]) -> int:
    """K: the common length of every value given per trial (1 when all are scalars)."""
    lengths = {
        field: len(value) for field, value in fields.items()
        if not _is_discrete(value) and np.ndim(value) == 1
    }
    if not lengths:
        return 1
    first_field, size = next(iter(lengths.items()))
    for field, length in lengths.items():
        if length != size:
            raise ValueError(
                f"{field}: expected a scalar or K = {size} values (K set by {first_field}), "
                f"got {length} values"
            )
    if size == 0:
        raise ValueError(f"{first_field}: expected at least one trial, got no values")
    return size


def _constructor_defaults(cls: type) -> dict[str, Any]:
    """Every keyword of ``cls.__init__`` besides ``self``, ``name`` and ``**kwargs`` → default."""
    return {
        p.name: p.default
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.kind is p.POSITIONAL_OR_KEYWORD and p.name not in ("self", "name")
    }


def _optimizer_inputs(
    optimizer_class: type[RuleOptimizer], hyperparameters: Mapping[str, Any], size: int,
    has_schedule: bool,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The optimizer's keywords: numbers as float64 [K, 1] arrays, discrete values shared."""
    defaults = _constructor_defaults(optimizer_class)
    accepted = list(defaults)
    unknown = sorted(set(hyperparameters) - set(accepted))
    if unknown:
        raise ValueError(
            f"hyperparameters: unknown keyword(s) {', '.join(unknown)} for "
            f"{optimizer_class.__name__}; accepted: {', '.join(accepted)}"
        )
    numbers: dict[str, np.ndarray] = {}
    static: dict[str, Any] = {}
    for name in accepted:
        if name == "learning_rate" and has_schedule:
            continue
        value = hyperparameters.get(name, defaults[name])
        if isinstance(defaults[name], bool):
            static[name] = value
        elif _is_discrete(value):
            raise ValueError(f"{name}: expected a number or K numbers, got {value!r}")
        else:
            numbers[name] = np.broadcast_to(_numeric(name, value), (size,)).reshape(size, 1)

    # Every range check of the class is an interval, so building it at each
    # keyword's smallest and largest value checks every trial of that keyword
    # without building K Keras optimizers (each creates variables).
    schedule_stand_in = {"learning_rate": _ConstantStandIn()} if has_schedule else {}
    for pick in (np.min, np.max):
        optimizer_class(
            **{name: float(pick(column)) for name, column in numbers.items()},
            **static, **schedule_stand_in,
        )
    return numbers, static


class _ConstantStandIn(keras.optimizers.schedules.LearningRateSchedule):
    """Stands for the schedule while the optimizer's other keywords are checked."""

    def __call__(self, step: Any) -> Any:
        return 1.0


def _schedule_inputs(
    schedule_class: type[RateSchedule], parameters: Mapping[str, Any], size: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The schedule's keywords, validated row by row by the class itself.

    Returns numbers as float64 [K, 1] arrays (a list of them for a sequence
    keyword) and the discrete values shared by the population.
    """
    accepted = schedule_class.keywords()
    unknown = sorted(set(parameters) - set(accepted))
    if unknown:
        raise ValueError(
            f"schedule_parameters: unknown keyword(s) {', '.join(unknown)} for "
            f"{schedule_class.__name__}; accepted: {', '.join(accepted)}"
        )
    defaults = _constructor_defaults(schedule_class)
    missing = [name for name in accepted
               if name not in parameters and defaults[name] is inspect.Parameter.empty]
    if missing:
        raise ValueError(
            f"schedule_parameters: missing keyword(s) {', '.join(missing)} for "
            f"{schedule_class.__name__}"
        )
    sequences = _sequence_keywords(schedule_class)
    varies = any(
        not _is_discrete(item) and np.ndim(item) == 1
        for name, value in parameters.items()
        for _, item in _leaves(name, value, name in sequences)
    )
    # A schedule is a plain Python object, so building one per trial is cheap
    # and checks constraints between keywords (η_max ≥ η_base) row by row.
    schedules = [
        schedule_class(**{
            name: _schedule_value(name, value, name in sequences, index)
            for name, value in parameters.items()
        })
        for index in range(size if varies else 1)
    ]
    rows = [schedule.rate_keywords() for schedule in schedules]
    numbers: dict[str, Any] = {}
    static: dict[str, Any] = {}
    for name, value in rows[0].items():
        if _is_discrete(value):
            static[name] = value
        elif isinstance(value, (list, tuple)):
            numbers[name] = [
                _column([row[name][item] for row in rows], size) for item in range(len(value))
            ]
        else:
            numbers[name] = _column([row[name] for row in rows], size)
    return numbers, static


def _schedule_value(name: str, value: Any, is_sequence: bool, index: int) -> Any:
    """Trial ``index``'s value of one schedule keyword, as the class takes it."""
    def pick(item: Any) -> Any:
        if _is_discrete(item) or np.ndim(item) == 0:
            return item
        return np.asarray(item)[index].item()

    if is_sequence:
        return [pick(item) for _, item in _leaves(name, value, True)]
    return pick(value)


def _column(values: Sequence[Any], size: int) -> np.ndarray:
    """One number per row as a float64 [K, 1] array (a single row is shared by all)."""
    column = np.asarray(values, dtype=np.float64).reshape(-1, 1)
    return np.broadcast_to(column, (size, 1)).copy()


def initial_slots(
    optimizer_class: type[RuleOptimizer], numbers: Mapping[str, np.ndarray],
    static: Mapping[str, Any], shape: tuple[int, int],
) -> list[np.ndarray]:
    """Each slot's start, [K, P], from the class's own ``slot_initial_value``.

    The method reads the optimizer's keywords as attributes (Adagrad's
    ``initial_accumulator_value``); called with the per-trial [K, 1] columns
    as those attributes, it gives every trial its own start at once.
    """
    keywords = types.SimpleNamespace(**numbers, **static)
    return [
        np.broadcast_to(
            np.asarray(optimizer_class.slot_initial_value(keywords, slot_name), dtype=np.float64),
            shape,
        ).copy()
        for slot_name in optimizer_class.slot_names
    ]


# --- batches ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _BatchLayout:
    """How one epoch's batches reach the compiled loop; hashable, part of the cache key.

    Attributes:
        run_lengths: the epoch's batches as runs of consecutive batches of
            equal shapes (a short last mini-batch starts a run of its own).
        whole_set: every batch is ``None``, the whole training set.
        same_every_epoch: every epoch sees the same batches in the same
            order, so one copy serves them all.
    """

    run_lengths: tuple[int, ...]
    whole_set: bool
    same_every_epoch: bool

    @property
    def steps_per_epoch(self) -> int:
        return sum(self.run_lengths)


def _batch_layout(
    task: ToyTask, batch_size: int, epochs: int
) -> tuple[_BatchLayout, tuple[Any, ...]]:
    """The layout and, per run, the batches stacked as [epochs (or 1), run length, ...]."""
    per_epoch = [task.batches(batch_size, epoch) for epoch in range(epochs)]
    first = per_epoch[0]
    if all(batch is None for batches in per_epoch for batch in batches):
        return _BatchLayout((len(first),), whole_set=True, same_every_epoch=True), ()
    shapes = [_shapes(batch) for batch in first]
    for epoch, batches in enumerate(per_epoch):
        if [_shapes(batch) for batch in batches] != shapes:
            raise ValueError(
                f"batch_size: epoch {epoch} of {task!r} has batches shaped unlike epoch 0's; "
                "the population engine needs the same batch shapes in every epoch"
            )
    runs: list[tuple[int, int]] = []
    for position, shape in enumerate(shapes):
        if runs and shapes[runs[-1][0]] == shape:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((position, 1))
    same = all(_same_batches(batches, first) for batches in per_epoch[1:])
    sources = [first] if same else per_epoch
    stacked = tuple(
        tf.nest.map_structure(
            lambda *leaves, length=length: np.stack(leaves).reshape(
                (len(sources), length) + np.shape(leaves[0])
            ),
            *[batch for batches in sources for batch in batches[start:start + length]],
        )
        for start, length in runs
    )
    return _BatchLayout(tuple(length for _, length in runs), False, same), stacked


def _shapes(batch: Any) -> list[tuple[int, ...]] | None:
    return None if batch is None else [np.shape(leaf) for leaf in tf.nest.flatten(batch)]


def _same_batches(left: list[Any], right: list[Any]) -> bool:
    return all(
        np.array_equal(a, b)
        for x, y in zip(left, right)
        for a, b in zip(tf.nest.flatten(x), tf.nest.flatten(y))
    )


# --- the compiled loop ----------------------------------------------------------


_COMPILED: collections.OrderedDict[tuple[Any, ...], tuple[ToyTask, Callable[..., Any]]] = (
    collections.OrderedDict()
)


def _compiled_loop(
    task: ToyTask, optimizer_class: type[RuleOptimizer],
    schedule_class: type[RateSchedule] | None, rule_static: Mapping[str, Any],
    rate_static: Mapping[str, Any], layout: _BatchLayout, epochs: int,
    record_trajectory: bool, jit_compile: bool,
) -> Callable[..., Any]:
    """The training loop for this configuration, built once and kept for reuse."""
    key = (
        id(task), optimizer_class, schedule_class, tuple(sorted(rule_static.items())),
        tuple(sorted(rate_static.items())), layout, epochs, record_trajectory, jit_compile,
    )
    entry = _COMPILED.get(key)
    if entry is not None and entry[0] is task:
        _COMPILED.move_to_end(key)
        return entry[1]
    train = _training_loop(
        task, optimizer_class, schedule_class, dict(rule_static), dict(rate_static), layout,
        epochs, record_trajectory, jit_compile,
    )
    _COMPILED[key] = (task, train)
    while len(_COMPILED) > _CACHE_SIZE:
        _COMPILED.popitem(last=False)
    return train


def _training_loop(
    task: ToyTask, optimizer_class: type[RuleOptimizer],
    schedule_class: type[RateSchedule] | None, rule_static: dict[str, Any],
    rate_static: dict[str, Any], layout: _BatchLayout, epochs: int,
    record_trajectory: bool, jit_compile: bool,
) -> Callable[..., Any]:
    """``train(parameters, slots, rule_inputs, rate_inputs, stacked_batches)``.

    Returns a ``tf.function`` giving the losses and learning rates ([epochs,
    K] each) and, when recording, the trajectory [steps + 1, K, P].
    """
    rule = optimizer_class.rule
    # As ToyTask.fit reports (tasks._base.reported_parameters): the iterate,
    # where the class's variable holds another point.
    iterate = getattr(optimizer_class, "iterate", None)
    total_steps = epochs * layout.steps_per_epoch

    def learning_rate_at(iteration: tf.Tensor, rate_inputs: dict[str, Any]) -> tf.Tensor:
        if schedule_class is None:
            return rate_inputs["learning_rate"]
        step = tf.cast(iteration, tf.float64)
        return schedule_class.rate_function(step, **rate_inputs, **rate_static)

    def optimizer_step(parameters, slots, iteration, batch, rule_inputs, rate_inputs):
        with tf.GradientTape() as tape:
            tape.watch(parameters)
            # Row k's loss depends on row k alone, so the gradient of the sum
            # is each trial's own gradient.
            total_loss = tf.reduce_sum(task.loss(parameters, batch))
        gradient = tape.gradient(total_loss, parameters)
        learning_rate = learning_rate_at(iteration, rate_inputs)
        parameters, slots = rule(
            parameters, gradient, slots, step=tf.cast(iteration + 1, tf.float64),
            learning_rate=learning_rate, **rule_inputs, **rule_static,
        )
        reported = parameters if iterate is None else iterate(
            parameters, slots, learning_rate=learning_rate, **rule_inputs, **rule_static)
        return parameters, slots, reported

    def steps_of(run_length: int) -> Any:
        # A run of one batch (full batch) stays unrolled: no inner loop to pay for.
        return range(run_length) if run_length == 1 else tf.range(run_length)

    @tf.function(jit_compile=jit_compile)
    def train(parameters, slots, rule_inputs, rate_inputs, stacked_batches):
        size = tf.shape(parameters)[0]
        losses = tf.TensorArray(tf.float64, size=epochs)
        learning_rates = tf.TensorArray(tf.float64, size=epochs)
        path = tf.TensorArray(tf.float64, size=total_steps + 1 if record_trajectory else 1)
        path = path.write(0, parameters)
        reported = parameters
        iteration = tf.constant(0, tf.int64)
        runs = stacked_batches if not layout.whole_set else (None,) * len(layout.run_lengths)
        for epoch in tf.range(epochs):
            source = 0 if layout.same_every_epoch else epoch
            for run_length, run in zip(layout.run_lengths, runs):
                for position in steps_of(run_length):
                    batch = None if run is None else tf.nest.map_structure(
                        lambda stacked: stacked[source, position], run
                    )
                    parameters, slots, reported = optimizer_step(
                        parameters, slots, iteration, batch, rule_inputs, rate_inputs
                    )
                    iteration += 1
                    if record_trajectory:
                        path = path.write(tf.cast(iteration, tf.int32), reported)
            losses = losses.write(epoch, task.loss(reported))
            rate = tf.broadcast_to(learning_rate_at(iteration, rate_inputs), [size, 1])
            learning_rates = learning_rates.write(epoch, rate[:, 0])
        trajectory = path.stack() if record_trajectory else None
        return losses.stack(), learning_rates.stack(), trajectory

    return train


def as_tensors(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Each value as a tensor (a list of values, such as a schedule's boundaries, as a list)."""
    return {
        name: ([tf.constant(item) for item in value] if isinstance(value, list)
               else tf.constant(value))
        for name, value in inputs.items()
    }


def _result(
    losses: np.ndarray, learning_rates: np.ndarray, trajectories: np.ndarray | None,
    steps_per_epoch: int, parameter_names: tuple[str, ...],
) -> PopulationResult:
    """The raw per-epoch arrays cut, per trial, where ToyTask.fit would have stopped."""
    size, epochs = losses.shape
    finite_epochs = np.isfinite(losses)
    finite = finite_epochs.all(axis=1)
    # ToyTask.fit stops after the first epoch with a non-finite loss.
    epochs_run = np.where(finite, epochs, np.argmin(finite_epochs, axis=1) + 1)
    unreported = np.arange(epochs)[np.newaxis, :] >= epochs_run[:, np.newaxis]
    losses = np.where(unreported, np.nan, losses)
    learning_rates = np.where(unreported, np.nan, learning_rates)
    if trajectories is not None:
        steps = np.arange(trajectories.shape[1])[np.newaxis, :]
        unreported_steps = steps > (epochs_run * steps_per_epoch)[:, np.newaxis]
        trajectories = np.where(unreported_steps[..., np.newaxis], np.nan, trajectories)
    return PopulationResult(
        losses=losses,
        learning_rates=learning_rates,
        final_loss=losses[np.arange(size), epochs_run - 1],
        finite=finite,
        epochs_run=epochs_run,
        trajectories=trajectories,
        steps_per_epoch=steps_per_epoch,
        parameter_names=parameter_names,
    )
