"""Study specs: a TOML file, checked field by field into frozen dataclasses.

The smallest spec is three lines; everything else has a default:

    task = "sigmoid_neuron"
    optimizer = "adam"
    trials = 50

Every key, with its default:

| key                 | meaning                                                               | default                  |
|---------------------|-----------------------------------------------------------------------|--------------------------|
| `name`              | the study's name (Optuna study, MLflow parent run, TensorBoard dir)   | the file's stem          |
| `description`       | one line shown with the study                                         | ""                       |
| `task`              | a task name, or a table `{name = "...", <option> = ...}`              | required                 |
| `epochs`            | epochs per trial                                                      | the task's default       |
| `batch_size`        | examples per step                                                     | the task's default       |
| `optimizer`         | one optimizer: a name or a table `{name = "...", <keyword> = ...}`    | one of the two required  |
| `optimizers`        | several to compare: a list of names or tables (with a `label` each)   |                          |
| `schedule`          | a learning-rate schedule: a name or a table `{name, <keyword> = ...}` | none (η constant)        |
| `schedules`         | several schedules to compare (each may carry a `label`)               |                          |
| `search`            | `<keyword> = value or range` for every optimizer that takes it        | the default spaces       |
| `tune`              | the only keywords the default spaces search; others keep defaults     | all of them              |
| `objective`         | a metric name, or `{metric = "...", direction = "..."}`               | the task's (see below)   |
| `trials`            | finished trials to reach                                              | 20                       |
| `sampler`           | `tpe`, `random`, `grid`, `cmaes`, `gp`, or a table with options       | `tpe`                    |
| `pruner`            | `median`, `successive_halving`, `hyperband`, `none`, or a table       | `median`                 |
| `storage`           | the Optuna storage URL                                                | sqlite:///HOME/optuna.db |
| `tracking`          | `mlflow`, `tracking_uri`, `tensorboard`, `tensorboard_dir`, `experiment_name` | on, under HOME   |
| `seed`              | seeds the sampler and the task (unless they set their own)            | 0                        |
| `population`        | evaluate toy-task trials as one vectorized batch                      | true for toy tasks       |
| `trials_per_batch`  | trials per population batch                                           | 32                       |
| `balance`           | give every optimizer × schedule the same number of trials             | true                     |

A hyperparameter value is either fixed (``beta_1 = 0.9``) or searched: a
range ``{low = ..., high = ..., log = ..., step = ...}`` or a set
``{choices = [...]}``. ``log`` defaults to the scale of the default space:
log for η, ε and weight decay, and for decay rates (β1, β2, ρ, momentum) a
range given on β is sampled as 1 − β on a log scale. Precedence: an
optimizer's own table, then ``[search]``, then its default space
(:data:`gdbench.study.spaces.OPTIMIZER_SPACES`).

A schedule's η is the optimizer's ``learning_rate``; its other keywords, and
the derived parameters of :data:`gdbench.study.spaces.SCHEDULE_SPACES` (such as
``base_fraction`` of ``cyclical``), are set in its table. ``warmup`` takes
``target = "<schedule>"`` (or a table) to ramp up into another schedule.

A file may hold several studies as an array of tables, ``[[study]]``, each
with its own ``name``; they run one after the other.

An entry of ``optimizers`` or ``schedules`` may carry a ``label`` to
compare variants of one algorithm (``adam`` and ``adam_no_bc``); the label
then names it in Optuna, the trackers and the report.

The objective is the metric's value at the last epoch run. By default it is
the task's own (``val_loss`` for image tasks, ``loss`` for toy tasks),
minimized; a metric with ``accuracy`` in its name is maximized.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib.util
import inspect
import math
import re
import tomllib
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping, Sequence

import optuna

import gdbench.optimizers
import gdbench.schedules
import gdbench.tasks
from gdbench.study import spaces
from gdbench.study.build import build_schedule, nominal
from gdbench.study.spaces import (
    Choice, Domain, Fixed, IntRange, LogUniform, OneMinusLogUniform, Steps, StepsRange, Uniform,
)

__all__ = [
    "ObjectiveSpec", "OptimizerSpec", "PRUNERS", "PrunerSpec", "SAMPLERS", "SamplerSpec",
    "ScheduleSpec", "SpecError", "StudySpec", "TaskSpec", "TrackingSpec", "load_spec",
    "load_specs",
]

#: Sampler name → (Optuna class, the package it needs beyond Optuna or None).
SAMPLERS: Mapping[str, tuple[type[optuna.samplers.BaseSampler], str | None]] = MappingProxyType({
    "tpe": (optuna.samplers.TPESampler, None),
    "random": (optuna.samplers.RandomSampler, None),
    "grid": (optuna.samplers.GridSampler, None),
    "cmaes": (optuna.samplers.CmaEsSampler, "cmaes"),
    "gp": (optuna.samplers.GPSampler, "torch"),
})

#: Pruner name → Optuna class.
PRUNERS: Mapping[str, type[optuna.pruners.BasePruner]] = MappingProxyType({
    "median": optuna.pruners.MedianPruner,
    "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
    "hyperband": optuna.pruners.HyperbandPruner,
    "none": optuna.pruners.NopPruner,
})

#: Objective metrics an image task logs every epoch (test metrics are final only,
#: and selecting on them would leak the test set into the search).
IMAGE_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")

DIRECTIONS = ("minimize", "maximize")

_STUDY_KEYS = (
    "name", "description", "task", "epochs", "batch_size", "optimizer", "optimizers",
    "schedule", "schedules", "search", "tune", "objective", "trials", "sampler", "pruner",
    "storage", "tracking", "seed", "population", "trials_per_batch", "balance",
)
_RANGE_KEYS = ("low", "high", "log", "step")
_TRACKING_KEYS = ("mlflow", "tracking_uri", "tensorboard", "tensorboard_dir", "experiment_name")
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
# Steps of a nominal run, to check schedule values before the real run is sized.
_NOMINAL_STEPS = 1000
_NOMINAL_LEARNING_RATE = 0.01


class SpecError(ValueError):
    """A study spec that cannot run: names the file, the field and what is accepted.

    Attributes:
        path: the spec file.
        field: the dotted path of the offending field (``search.beta_1.low``).
    """

    def __init__(self, path: Path | str, field: str, message: str) -> None:
        self.path = Path(path)
        self.field = field
        super().__init__(f"{path}: {field}: {message}")


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """The task every trial trains.

    Attributes:
        name: a registered task name.
        options: the task's options (``seed`` included).
        toy: whether it is a toy task (trainable by the population engine).
    """

    name: str
    options: Mapping[str, Any]
    toy: bool

    def build(self) -> gdbench.tasks.Task:
        """A fresh task object."""
        return gdbench.tasks.get(self.name, **self.options)


@dataclasses.dataclass(frozen=True)
class OptimizerSpec:
    """One optimizer and its space.

    Attributes:
        name: a registered optimizer name.
        space: keyword → domain (fixed or searched); keywords absent keep
            the optimizer's defaults.
        label: what the study calls it: the name, unless the spec compares
            variants of one algorithm (``label = "adam_no_bc"``).
    """

    name: str
    space: Mapping[str, Domain]
    label: str = ""

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", self.name)


@dataclasses.dataclass(frozen=True)
class ScheduleSpec:
    """One learning-rate schedule and its space.

    Attributes:
        name: a registered schedule name.
        space: parameter (keyword or derived) → domain; run-relative
            domains (`StepsRange`, ...) are sized when a trial runs.
        target: ``warmup`` only: the schedule ramped up into, ``None`` for a
            constant η.
        label: what the study calls it: the name, unless the spec compares
            variants of one schedule (``label = "warmup_cosine"``).
    """

    name: str
    space: Mapping[str, Domain]
    target: ScheduleSpec | None = None
    label: str = ""

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", self.name)


@dataclasses.dataclass(frozen=True)
class ObjectiveSpec:
    """The metric a study optimizes (its last epoch's value) and the direction."""

    metric: str
    direction: str


@dataclasses.dataclass(frozen=True)
class SamplerSpec:
    """An Optuna sampler by name, its seed and its other constructor options."""

    name: str
    seed: int
    options: Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class PrunerSpec:
    """An Optuna pruner by name and its constructor options."""

    name: str
    options: Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class TrackingSpec:
    """Where trials are tracked; ``None`` locations mean "under the run's home"."""

    mlflow: bool = True
    tracking_uri: str | None = None
    tensorboard: bool = True
    tensorboard_dir: str | None = None
    experiment_name: str | None = None


@dataclasses.dataclass(frozen=True)
class StudySpec:
    """A validated study spec; see the module docstring for every field."""

    name: str
    source: Path | None
    task: TaskSpec
    optimizers: tuple[OptimizerSpec, ...]
    schedules: tuple[ScheduleSpec, ...]
    objective: ObjectiveSpec
    sampler: SamplerSpec
    pruner: PrunerSpec
    tracking: TrackingSpec
    description: str = ""
    epochs: int | None = None
    batch_size: int | None = None
    trials: int = 20
    storage: str | None = None
    seed: int = 0
    population: bool = False
    trials_per_batch: int = 32
    balance: bool = True

    @property
    def compares_optimizers(self) -> bool:
        """Whether the optimizer is itself a searched (categorical) parameter."""
        return len(self.optimizers) > 1

    @property
    def compares_schedules(self) -> bool:
        """Whether the schedule is itself a searched (categorical) parameter."""
        return len(self.schedules) > 1


def load_specs(path: str | Path) -> list[StudySpec]:
    """Every study of a spec file (one, or several as ``[[study]]`` tables).

    Args:
        path: the TOML file.

    Raises:
        SpecError: the file is missing, not TOML, or any field is wrong; the
            message names the file, the field and what is accepted.
    """
    path = Path(path)
    if not path.is_file():
        raise SpecError(path, "(file)", "no such spec file")
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise SpecError(path, "(syntax)", f"not valid TOML: {error}") from None
    reader = _Reader(path)
    if "study" not in document:
        return [reader.study(document, "", default_name=path.stem)]
    others = sorted(set(document) - {"study"})
    if others:
        raise reader.error(others[0], "a file with [[study]] tables keeps every key inside them")
    tables = document["study"]
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise reader.error("study", "expected one or more [[study]] tables")
    specs = []
    for index, table in enumerate(tables):
        prefix = f"study[{index}]"
        if len(tables) > 1 and "name" not in table:
            raise reader.error(f"{prefix}.name", "required when a file holds several studies")
        specs.append(reader.study(table, prefix, default_name=path.stem))
    seen: set[str] = set()
    for index, spec in enumerate(specs):
        if spec.name in seen:
            raise reader.error(f"study[{index}].name", f"{spec.name!r} is used twice in this file")
        seen.add(spec.name)
    return specs


def load_spec(path: str | Path) -> StudySpec:
    """The one study of a spec file.

    Args:
        path: the TOML file.

    Raises:
        SpecError: as :func:`load_specs`, or the file holds several studies.
    """
    specs = load_specs(path)
    if len(specs) > 1:
        raise SpecError(path, "study", f"holds {len(specs)} studies; use load_specs")
    return specs[0]


def _join(prefix: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    return f"{prefix}.{key}" if prefix else key


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)


def _error_keyword(message: str) -> str:
    """The keyword a library error message starts with (``"beta_1: must ..."`` → ``beta_1``)."""
    head = message.split(":", 1)[0].strip()
    return head if re.fullmatch(r"[a-z_][a-z0-9_]*", head) else ""


def _signature_defaults(callable_: Any) -> dict[str, Any]:
    return {
        p.name: p.default for p in inspect.signature(callable_).parameters.values()
        if p.name not in ("self", "name") and p.kind is p.POSITIONAL_OR_KEYWORD
    }


class _Reader:
    """Parses one spec file; every error it raises names the file and the field."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, field: str, message: str) -> SpecError:
        return SpecError(self.path, field, message)

    # -- generic checks -----------------------------------------------------

    def check_keys(self, table: Mapping[str, Any], accepted: Sequence[str], prefix: str) -> None:
        for key in table:
            if key not in accepted:
                close = difflib.get_close_matches(key, accepted, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise self.error(_join(prefix, key),
                                 f"unknown key; {hint}accepted: {', '.join(accepted)}")

    def string(self, value: Any, field: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.error(field, f"expected a non-empty string, got {value!r}")
        return value

    def integer(self, value: Any, field: str, low: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(field, f"expected an integer >= {low}, "
                                    f"got {_type_name(value)} {value!r}")
        if value < low:
            raise self.error(field, f"expected an integer >= {low}, got {value}")
        return value

    def flag(self, value: Any, field: str) -> bool:
        if not isinstance(value, bool):
            raise self.error(field, f"expected true or false, got {value!r}")
        return value

    def table(self, value: Any, field: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(field, f"expected a table, got {_type_name(value)} {value!r}")
        return value

    def named(self, value: Any, field: str, registered: Sequence[str], what: str
              ) -> tuple[str, dict[str, Any], str]:
        """A ``"name"`` or ``{name = ..., ...}``: (name, the other keys, the name's field)."""
        if isinstance(value, str):
            name, rest, name_field = value, {}, field
        elif isinstance(value, dict):
            if "name" not in value:
                raise self.error(_join(field, "name"), f"required; one of: {', '.join(registered)}")
            rest = {key: item for key, item in value.items() if key != "name"}
            name, name_field = value["name"], _join(field, "name")
        else:
            raise self.error(field, f"expected a {what} name or a table with a name, "
                                    f"got {_type_name(value)} {value!r}")
        if not isinstance(name, str) or name.lower() not in registered:
            close = difflib.get_close_matches(str(name).lower(), registered, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise self.error(name_field, f"unknown {what} {name!r}; {hint}"
                                         f"accepted: {', '.join(registered)}")
        return name.lower(), rest, name_field

    def label(self, own: dict[str, Any], name: str, field: str) -> str:
        """The entry's ``label`` (popped from ``own``), its name when it has none."""
        label = own.pop("label", name)
        if not isinstance(label, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_\-]*", label):
            raise self.error(_join(field, "label"),
                             f"expected a name of letters, digits, '_' and '-', got {label!r}")
        return label

    # -- the study ----------------------------------------------------------

    def study(self, table: dict[str, Any], prefix: str, *, default_name: str) -> StudySpec:
        self.check_keys(table, _STUDY_KEYS, prefix)
        field = functools.partial(_join, prefix)

        name = self.string(table.get("name", default_name), field("name"))
        if not _NAME_PATTERN.match(name):
            raise self.error(field("name"), f"{name!r}: use letters, digits, '_', '-' and '.' only")
        description = table.get("description", "")
        if not isinstance(description, str):
            raise self.error(field("description"), f"expected a string, got {description!r}")
        seed = self.integer(table.get("seed", 0), field("seed"), 0)

        if "task" not in table:
            raise self.error(field("task"), f"required; one of: {', '.join(gdbench.tasks.names())}")
        task_spec, task = self.task(table["task"], field("task"), seed)

        epochs = table.get("epochs")
        if epochs is not None:
            epochs = self.integer(epochs, field("epochs"), 1)
        batch_size = table.get("batch_size")
        if batch_size is not None:
            self.integer(batch_size, field("batch_size"), 1)
            try:
                task.resolve_batch_size(batch_size)
            except ValueError as error:
                raise self.error(field("batch_size"), str(error)) from None

        tune = self.tune(table, field("tune"))
        search = self.table(table.get("search", {}), field("search"))
        optimizers = self.optimizers(table, prefix, search, tune)
        schedules = self.schedules(table, prefix, tune)
        self.check_search_keys(search, optimizers, field("search"))

        population = self.flag(table.get("population", task_spec.toy), field("population"))
        if population and not task_spec.toy:
            raise self.error(field("population"),
                             f"the population engine trains toy tasks only; {task_spec.name} "
                             "is not one (set population = false or leave it out)")
        trials_per_batch = self.integer(table.get("trials_per_batch", 32),
                                        field("trials_per_batch"), 1)
        objective = self.objective(table.get("objective"), field("objective"), task, population)
        trials = self.integer(table.get("trials", 20), field("trials"), 1)
        balance = self.flag(table.get("balance", True), field("balance"))
        sampler = self.sampler(table.get("sampler", "tpe"), field("sampler"), seed)
        pruner = self.pruner(table.get("pruner", "median"), field("pruner"),
                             epochs or task.default_epochs)
        storage = table.get("storage")
        if storage is not None:
            storage = self.string(storage, field("storage"))
            if "://" not in storage:
                raise self.error(field("storage"),
                                 "expected a database URL such as sqlite:///runs/optuna.db, "
                                 f"got {storage!r}")
        tracking = self.tracking(table.get("tracking", {}), field("tracking"))

        spec = StudySpec(
            name=name, source=self.path, description=description, task=task_spec,
            epochs=epochs, batch_size=batch_size, optimizers=optimizers, schedules=schedules,
            objective=objective, trials=trials, sampler=sampler, pruner=pruner,
            storage=storage, tracking=tracking, seed=seed, population=population,
            trials_per_batch=trials_per_batch, balance=balance,
        )
        if sampler.name == "grid":
            self.check_grid(spec, field("sampler"))
        return spec

    def task(self, value: Any, field: str, seed: int) -> tuple[TaskSpec, gdbench.tasks.Task]:
        name, options, name_field = self.named(value, field, gdbench.tasks.names(), "task")
        task_class = gdbench.tasks.REGISTRY[name]
        accepted = task_class.option_names()
        self.check_keys(options, accepted, field)
        options = {"seed": seed, **options}
        try:
            task = gdbench.tasks.get(name, **options)
        except ValueError as error:
            keyword = _error_keyword(str(error))
            where = _join(field, keyword) if keyword in options else name_field
            raise self.error(where, str(error)) from None
        toy = issubclass(task_class, gdbench.tasks.ToyTask)
        return TaskSpec(name=name, options=MappingProxyType(options), toy=toy), task

    def tune(self, table: dict[str, Any], field: str) -> frozenset[str] | None:
        if "tune" not in table:
            return None
        value = table["tune"]
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self.error(field, f"expected a list of keyword names, got {value!r}")
        known = sorted(
            {keyword for space in spaces.OPTIMIZER_SPACES.values() for keyword in space}
            | {key for space in spaces.SCHEDULE_SPACES.values() for key in space.parameters})
        for index, item in enumerate(value):
            if item not in known:
                close = difflib.get_close_matches(item, known, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise self.error(_join(field, index),
                                 f"{item!r} is in no default space; {hint}"
                                 f"accepted: {', '.join(known)}")
        return frozenset(value)

    # -- optimizers ---------------------------------------------------------

    def optimizers(self, table: dict[str, Any], prefix: str, search: dict[str, Any],
                   tune: frozenset[str] | None) -> tuple[OptimizerSpec, ...]:
        registered = gdbench.optimizers.names()
        if ("optimizer" in table) == ("optimizers" in table):
            raise self.error(_join(prefix, "optimizer"),
                             "give exactly one of 'optimizer' (one name) or 'optimizers' "
                             f"(a list to compare); accepted names: {', '.join(registered)}")
        if "optimizer" in table:
            entries = [(table["optimizer"], _join(prefix, "optimizer"))]
        else:
            listed = table["optimizers"]
            field = _join(prefix, "optimizers")
            if not isinstance(listed, list) or not listed:
                raise self.error(field, "expected a non-empty list of optimizer names, "
                                        f"got {listed!r}")
            entries = [(item, _join(field, index)) for index, item in enumerate(listed)]
        result: list[OptimizerSpec] = []
        for value, field in entries:
            name, own, _ = self.named(value, field, registered, "optimizer")
            label = self.label(own, name, field)
            if any(spec.label == label for spec in result):
                raise self.error(field, f"{label!r} is listed twice; to compare variants of one "
                                        "optimizer give each a distinct label = \"...\"")
            spec = self.optimizer(name, own, field, search, _join(prefix, "search"), tune)
            result.append(dataclasses.replace(spec, label=label))
        return tuple(result)

    def optimizer(self, name: str, own: dict[str, Any], field: str, search: dict[str, Any],
                  search_field: str, tune: frozenset[str] | None) -> OptimizerSpec:
        optimizer_class = gdbench.optimizers.REGISTRY[name]
        accepted = [keyword for keyword in optimizer_class.keywords() if keyword != "name"]
        defaults = _signature_defaults(optimizer_class.__init__)
        self.check_keys(own, accepted + ["label"], field)
        default_space = spaces.OPTIMIZER_SPACES.get(name, {})
        space: dict[str, Domain] = {
            keyword: domain for keyword, domain in default_space.items()
            if tune is None or keyword in tune
        }
        origins: dict[str, str] = {}
        # [search] sets weight_decay only where it is the optimizer's own keyword
        # (adamw); the Keras base keyword would make the others refuse it.
        shared = [k for k in accepted if k != "weight_decay" or k in defaults]
        for source, source_field, takes in ((search, search_field, shared), (own, field, accepted)):
            for keyword, value in source.items():
                if keyword not in takes:
                    continue
                where = _join(source_field, keyword)
                space[keyword] = self.domain(value, where, keyword, default_space.get(keyword),
                                             defaults.get(keyword))
                origins[keyword] = where
        for keyword, domain in space.items():
            where = origins.get(keyword, f"(default space of {name}).{keyword}")
            for candidate, candidate_field in _candidates(domain, where):
                try:
                    optimizer_class(**{keyword: candidate})
                except (ValueError, TypeError) as error:
                    raise self.error(candidate_field, f"{name}: {error}") from None
        return OptimizerSpec(name=name, space=MappingProxyType(space))

    def check_search_keys(self, search: dict[str, Any], optimizers: tuple[OptimizerSpec, ...],
                          field: str) -> None:
        taken: dict[str, list[str]] = {}
        for spec in optimizers:
            optimizer_class = gdbench.optimizers.REGISTRY[spec.name]
            own = _signature_defaults(optimizer_class.__init__)
            for keyword in optimizer_class.keywords():
                if keyword != "name" and (keyword != "weight_decay" or keyword in own):
                    taken.setdefault(keyword, []).append(spec.name)
        names = ", ".join(spec.name for spec in optimizers)
        for keyword in search:
            if keyword not in taken:
                close = difflib.get_close_matches(keyword, list(taken), n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise self.error(_join(field, keyword),
                                 f"no optimizer of this study ({names}) takes {keyword!r}; {hint}"
                                 f"accepted: {', '.join(taken)}")

    # -- domains ------------------------------------------------------------

    def domain(self, value: Any, field: str, keyword: str, default: Domain | None,
               reference: Any) -> Domain:
        """A fixed value, ``{low, high, log, step}`` or ``{choices}`` for ``keyword``."""
        if not isinstance(value, dict):
            if not isinstance(value, (bool, int, float, str, list)):
                raise self.error(field, f"expected a value, a range {{low, high}} or "
                                        f"{{choices = [...]}}, got {value!r}")
            return Fixed(value)
        if "choices" in value:
            extra = sorted(set(value) - {"choices"})
            if extra:
                raise self.error(_join(field, extra[0]),
                                 "a table with 'choices' takes nothing else")
            choices = value["choices"]
            if not isinstance(choices, list) or not choices:
                raise self.error(_join(field, "choices"),
                                 f"expected a non-empty list, got {choices!r}")
            for index, choice in enumerate(choices):
                if not isinstance(choice, (bool, int, float, str)):
                    raise self.error(_join(_join(field, "choices"), index),
                                     f"expected a number, a string or a boolean, got {choice!r}")
            if len(set(map(repr, choices))) != len(choices):
                raise self.error(_join(field, "choices"), f"lists a value twice: {choices!r}")
            return Choice(tuple(choices))
        self.check_keys(value, _RANGE_KEYS + ("choices",), field)
        for bound in ("low", "high"):
            if bound not in value:
                raise self.error(_join(field, bound), "required in a range {low, high}")
            if not _is_number(value[bound]) or not math.isfinite(value[bound]):
                raise self.error(_join(field, bound), "expected a finite number, "
                                 f"got {_type_name(value[bound])} {value[bound]!r}")
        low, high = value["low"], value["high"]
        if not low < high:
            raise self.error(_join(field, "low"),
                             f"empty or inverted range: low = {low!r} must be < high = {high!r}"
                             " (fix a value by writing it without a range)")
        default_log = isinstance(default, (LogUniform, OneMinusLogUniform, StepsRange)) or (
            default is None and keyword in spaces.DECAY_KEYWORDS)
        log = self.flag(value.get("log", default_log), _join(field, "log"))
        step = value.get("step")
        if step is not None and (not _is_number(step) or step <= 0):
            raise self.error(_join(field, "step"), f"expected a number > 0, got {step!r}")
        if step is not None and log:
            raise self.error(_join(field, "step"),
                             "a log-scale range takes no step; set log = false")

        integer = isinstance(default, (IntRange, StepsRange, Steps)) or (
            isinstance(reference, int) and not isinstance(reference, bool))
        if integer:
            for bound in ("low", "high") + (("step",) if step is not None else ()):
                if not isinstance(value[bound], int):
                    raise self.error(_join(field, bound), f"{keyword} is a whole number of steps; "
                                                          f"got {value[bound]!r}")
            if log and low < 1:
                raise self.error(_join(field, "low"), "a log-scale range needs low >= 1")
            return IntRange(low, high, log=log, step=step or 1)
        if log and keyword in spaces.DECAY_KEYWORDS:
            if not 0 <= low or not high < 1:
                raise self.error(_join(field, "high" if high >= 1 else "low"),
                                 f"{keyword} is a decay rate: a range needs 0 <= low < high < 1 "
                                 f"(sampled as 1 - {keyword} on a log scale); got [{low}, {high}]")
            # Rounded so that β = 0.9999 gives 1e-4, not 9.99999999999989e-05.
            return OneMinusLogUniform(round(1.0 - high, 12), round(1.0 - low, 12))
        if log:
            if low <= 0:
                raise self.error(_join(field, "low"),
                                 f"a log-scale range needs low > 0, got {low!r}; set log = false "
                                 "for a linear range")
            return LogUniform(float(low), float(high))
        return Uniform(float(low), float(high), None if step is None else float(step))

    # -- schedules ----------------------------------------------------------

    def schedules(self, table: dict[str, Any], prefix: str, tune: frozenset[str] | None
                  ) -> tuple[ScheduleSpec, ...]:
        if "schedule" in table and "schedules" in table:
            raise self.error(_join(prefix, "schedule"),
                             "give at most one of 'schedule' (one) or 'schedules' "
                             "(a list to compare)")
        if "schedule" in table:
            entries = [(table["schedule"], _join(prefix, "schedule"))]
        elif "schedules" in table:
            listed = table["schedules"]
            field = _join(prefix, "schedules")
            if not isinstance(listed, list) or not listed:
                raise self.error(field, "expected a non-empty list of schedule names, "
                                        f"got {listed!r}")
            entries = [(item, _join(field, index)) for index, item in enumerate(listed)]
        else:
            return ()
        result: list[ScheduleSpec] = []
        for value, field in entries:
            spec = self.schedule(value, field, tune)
            if any(other.label == spec.label for other in result):
                raise self.error(field, f"{spec.label!r} is listed twice; to compare variants of "
                                        "one schedule give each a distinct label = \"...\"")
            result.append(spec)
        return tuple(result)

    def schedule(self, value: Any, field: str, tune: frozenset[str] | None,
                 nested: bool = False) -> ScheduleSpec:
        name, own, _ = self.named(value, field, gdbench.schedules.names(), "schedule")
        label = name if nested else self.label(own, name, field)
        schedule_class = gdbench.schedules.REGISTRY[name]
        space_data = spaces.SCHEDULE_SPACES[name]
        keywords = schedule_class.keywords()
        defaults = _signature_defaults(schedule_class.__init__)
        accepted = [k for k in keywords if k != space_data.learning_rate_keyword]
        accepted += [k for k in space_data.derived if k not in accepted]
        if name == "warmup":
            accepted = [k for k in accepted if k != "target"] + ["target"]
        self.check_keys(own, accepted, field)
        if space_data.learning_rate_keyword in own and space_data.learning_rate_keyword != "target":
            raise self.error(_join(field, space_data.learning_rate_keyword),
                             "η comes from the optimizer's learning_rate (search.learning_rate)")

        target = None
        if "target" in own:
            if nested:
                raise self.error(_join(field, "target"),
                                 "a warm-up target cannot itself have a target")
            target = self.schedule(own["target"], _join(field, "target"), tune, nested=True)
            if target.name == "warmup":
                raise self.error(_join(field, "target"),
                                 "a warm-up cannot ramp into another warm-up")

        # A schedule has no defaults for most keywords: a parameter left out of
        # `tune` is held at the middle of its default range rather than dropped.
        space: dict[str, Domain] = {
            key: domain if tune is None or key in tune else _middle(domain)
            for key, domain in space_data.parameters.items()
        }
        origins: dict[str, str] = {}
        for key, item in own.items():
            if key == "target":
                continue
            for derived_name, derived in space_data.derived.items():
                if derived.keyword == key:
                    space.pop(derived_name, None)
            space[key] = self.domain(item, _join(field, key), key,
                                     space_data.parameters.get(key), defaults.get(key))
            origins[key] = _join(field, key)
        target_setup = None
        if target is not None:
            target_setup = (target.name, {key: nominal(spaces.resolve(domain, _NOMINAL_STEPS))
                                          for key, domain in target.space.items()})
        for key, domain in space.items():
            where = origins.get(key, f"(default space of {name}).{key}")
            resolved = spaces.resolve(domain, _NOMINAL_STEPS)
            for candidate, candidate_field in _candidates(resolved, where):
                values = {other: nominal(spaces.resolve(d, _NOMINAL_STEPS))
                          for other, d in space.items() if other != key}
                values[key] = candidate
                try:
                    build_schedule(name, _NOMINAL_LEARNING_RATE, values, target_setup)
                except (ValueError, TypeError, KeyError) as error:
                    raise self.error(candidate_field, f"{name}: {error}") from None
        return ScheduleSpec(name=name, space=MappingProxyType(space), target=target, label=label)

    # -- the rest -----------------------------------------------------------

    def objective(self, value: Any, field: str, task: gdbench.tasks.Task,
                  population: bool) -> ObjectiveSpec:
        if value is None:
            value = {}
        elif isinstance(value, str):
            value = {"metric": value}
        elif not isinstance(value, dict):
            raise self.error(field,
                             f"expected a metric name or {{metric, direction}}, got {value!r}")
        self.check_keys(value, ("metric", "direction"), field)
        if isinstance(task, gdbench.tasks.ToyTask):
            metrics = ["loss"] if population else sorted(task.metrics(task.initial_parameters()))
        else:
            metrics = list(IMAGE_METRICS)
        metric = value.get("metric", type(task).objective_metric)
        if metric not in metrics:
            why = " (the population engine records the loss only)" if population else ""
            raise self.error(_join(field, "metric") if "metric" in value else field,
                             f"{task.name} does not log {metric!r}{why}; "
                             f"accepted: {', '.join(metrics)}")
        direction = value.get("direction", "maximize" if "accuracy" in metric else "minimize")
        if direction not in DIRECTIONS:
            raise self.error(_join(field, "direction"),
                             f"expected one of {', '.join(DIRECTIONS)}, got {direction!r}")
        return ObjectiveSpec(metric=metric, direction=direction)

    def sampler(self, value: Any, field: str, seed: int) -> SamplerSpec:
        name, options, name_field = self.named(value, field, list(SAMPLERS), "sampler")
        sampler_class, package = SAMPLERS[name]
        if package is not None and importlib.util.find_spec(package) is None:
            ready = ", ".join(other for other, (_, needs) in SAMPLERS.items() if needs is None)
            raise self.error(name_field, f"the {name} sampler needs the {package!r} package, "
                                         f"which is not installed (pip install {package}); "
                                         f"or use {ready}")
        accepted = [k for k in _option_names(sampler_class)
                    if k not in ("search_space", "independent_sampler", "constraints_func",
                                 "gamma", "weights", "x0", "source_trials")]
        self.check_keys(options, accepted, field)
        sampler_seed = self.integer(options.pop("seed", seed), _join(field, "seed"), 0)
        if name != "grid":
            try:
                sampler_class(seed=sampler_seed, **options)
            except (ValueError, TypeError) as error:
                raise self.error(field, f"{name}: {error}") from None
        return SamplerSpec(name=name, seed=sampler_seed, options=MappingProxyType(options))

    def pruner(self, value: Any, field: str, epochs: int) -> PrunerSpec:
        name, options, _ = self.named(value, field, list(PRUNERS), "pruner")
        pruner_class = PRUNERS[name]
        self.check_keys(options, _option_names(pruner_class), field)
        if name == "hyperband":
            options.setdefault("max_resource", epochs)
        try:
            pruner_class(**options)
        except (ValueError, TypeError) as error:
            keyword = _error_keyword(str(error))
            raise self.error(_join(field, keyword) if keyword in options else field,
                             f"{name}: {error}") from None
        return PrunerSpec(name=name, options=MappingProxyType(options))

    def tracking(self, value: Any, field: str) -> TrackingSpec:
        table = self.table(value, field)
        self.check_keys(table, _TRACKING_KEYS, field)
        flags = {key: self.flag(table[key], _join(field, key))
                 for key in ("mlflow", "tensorboard") if key in table}
        texts = {key: self.string(table[key], _join(field, key))
                 for key in ("tracking_uri", "tensorboard_dir", "experiment_name") if key in table}
        return TrackingSpec(**flags, **texts)

    def check_grid(self, spec: StudySpec, field: str) -> None:
        for where, domain in _searched_domains(spec):
            if domain.grid() is None:
                raise self.error(where, "the grid sampler needs every searched value as "
                                        "{choices = [...]} or a linear range with a step; "
                                        f"this one is {type(domain).__name__}")


def _middle(domain: Domain) -> Domain:
    """``domain`` held at its middle (geometric on a log scale); fixed domains as they are."""
    if isinstance(domain, StepsRange):
        if domain.log:
            return Steps(math.sqrt(domain.low * domain.high))
        return Steps((domain.low + domain.high) / 2)
    if not domain.searched:
        return domain
    return Fixed(nominal(domain))


def _option_names(cls: type) -> list[str]:
    return [p.name for p in inspect.signature(cls).parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _candidates(domain: Domain, field: str) -> list[tuple[Any, str]]:
    """The values worth checking for ``domain``: the fixed value, both ends, or each choice."""
    if isinstance(domain, Fixed):
        return [(domain.value, field)]
    if isinstance(domain, Choice):
        return [(choice, _join(_join(field, "choices"), index))
                for index, choice in enumerate(domain.choices)]
    low, high = domain.bounds()
    return [(low, _join(field, "low")), (high, _join(field, "high"))]


def _searched_domains(spec: StudySpec) -> list[tuple[str, Domain]]:
    found: list[tuple[str, Domain]] = []
    for optimizer in spec.optimizers:
        found += [(f"{optimizer.label}.{k}", d) for k, d in optimizer.space.items() if d.searched]
    stack = list(spec.schedules)
    while stack:
        schedule = stack.pop()
        found += [(f"{schedule.label}.{k}", d) for k, d in schedule.space.items() if d.searched]
        if schedule.target is not None:
            stack.append(schedule.target)
    return found
