"""The population engines' keyword checks: a population's optimizer and schedule keywords.

:func:`engine_inputs` checks what :func:`~gdbench.tasks.population.fit_population`
and the image population engine are given, with the optimizer's and the
schedule's own validation, and splits it into per-trial ``[K, 1]`` columns and
values shared by the population; :func:`initial_slots` starts every trial's
slots as the optimizer class does.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import inspect
import types
import typing
from typing import Any, Mapping, Sequence

import keras
import numpy as np

import gdbench.optimizers
import gdbench.schedules
from gdbench.optimizers import RuleOptimizer
from gdbench.schedules import RateSchedule

__all__ = ["EngineInputs", "engine_inputs", "initial_slots"]


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


def _optimizer_class(optimizer: Any) -> type[RuleOptimizer]:
    """The rule's class: given, or found by name or import path."""
    if inspect.isclass(optimizer):
        found = optimizer
    elif isinstance(optimizer, str):
        found = gdbench.optimizers.source(optimizer).optimizer_class
    else:
        raise KeyError(f"optimizer: expected a name, an import path or a class, got {optimizer!r}")
    if not issubclass(found, RuleOptimizer):
        raise ValueError(f"optimizer: {found.__name__} is not an update rule; the population "
                         "engines train rules (gdbench.optimizers.rule_optimizer), another "
                         "Keras optimizer trains one trial at a time (Task.fit)")
    return found


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
