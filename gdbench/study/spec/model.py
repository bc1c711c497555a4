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
| `objective`         | a metric name, or `{metric, direction, target, measure}`              | the task's (see below)   |
| `trials`            | finished trials to reach                                              | 20                       |
| `sampler`           | `tpe`, `random`, `grid`, `cmaes`, `gp`, or a table with options       | `tpe`                    |
| `pruner`            | `median`, `successive_halving`, `hyperband`, `none`, or a table       | `median`                 |
| `storage`           | the Optuna storage URL                                                | sqlite:///HOME/optuna.db |
| `tracking`          | `mlflow`, `tracking_uri`, `tensorboard`, `tensorboard_dir`, `experiment_name` | on, under HOME   |
| `seed`              | seeds the sampler and the task (unless they set their own)            | 0                        |
| `population`        | train a batch's trials together, as one population (see below)        | true where supported     |
| `trials_per_batch`  | trials per population batch                                           | see below                |
| `balance`           | give every optimizer × schedule the same number of trials             | true                     |
| `confirm`           | `{seeds = N}`, N ≥ 2: rerun each optimizer × schedule's best N times  | none                     |
| `compare`           | `{budgets = [...]}`: a budget-matched comparison (`budgets` module)   | none                     |

A hyperparameter value is either fixed (``beta_1 = 0.9``) or searched: a
range ``{low = ..., high = ..., log = ..., step = ...}`` or a set
``{choices = [...]}``. ``log`` defaults to the scale of the default space:
log for η, ε and weight decay, and for decay rates (β1, β2, ρ, momentum) a
range given on β is searched among readable β whose 1 − β are log-spaced
(``{low = 0.9, high = 0.9999}``: 0.9, 0.95, 0.98, 0.99, …, 0.9999; see
:mod:`gdbench.study.spec.domains`). Precedence: an optimizer's own table, then
``[search]``, then its default space
(:data:`gdbench.study.spec.spaces.OPTIMIZER_SPACES`).

A value is called what the spec calls it, in Optuna, MLflow and TensorBoard
alike: ``learning_rate``, ``beta_2`` (β2 itself), ``schedule.drop``; the
compared ``optimizer`` and ``schedule`` say which branch a trial took. Two
optimizers (or schedules) of one study may search one keyword over different
ranges, but not in kinds Optuna cannot keep under one name (a float and a set
of choices, a log and a linear range, two different sets of choices); such a
spec is refused, naming both fields.

A schedule's η is the optimizer's ``learning_rate``; its other keywords, and
the derived parameters of :data:`gdbench.study.spec.spaces.SCHEDULE_SPACES` (such as
``base_fraction`` of ``cyclical``), are set in its table. ``warmup`` takes
``target = "<schedule>"`` (or a table) to ramp up into another schedule.

With ``population = true`` (the default for toy tasks and for image tasks
whose model is an MLP: ``digits_mlp``, ``fashion_mnist_mlp``,
``mnist_mlp``), up to ``trials_per_batch`` trials are trained together:
those sharing an optimizer and a schedule form one population, a toy task's
in one vectorized run, an image task's in one stacked model. Each member is
still one trial, pruned and tracked epoch by epoch as it would be alone; the
pruner compares it with the trials that finished before its batch started.
A convolutional model cannot be stacked: ``population = true`` is refused
for it. ``population = false`` trains one trial at a time.

``trials_per_batch`` defaults by the kind of task and the sampler
(:data:`TRIALS_PER_BATCH`): a toy task searched by a sampler that does not
learn from finished trials (``random``, ``grid``) trains 200 trials a batch,
so that a batch's cost (one vectorized run, one transaction each way) is
shared by many trials; a toy task under a sampler that learns (``tpe``,
``cmaes``, ``gp``) and an image task train 32, so that the sampler sees
results between batches and an image population keeps within memory.

A file may hold several studies as an array of tables, ``[[study]]``, each
with its own ``name``; they run one after the other.

An entry of ``optimizers`` or ``schedules`` may carry a ``label`` to
compare variants of one algorithm (``adam`` and ``adam_no_bc``); the label
then names it in Optuna, the trackers and the report.

With ``confirm``, the best trial of each optimizer × schedule is rerun with the
task's ``seed`` set to 0, …, N − 1, and the leaderboard ranks by the mean
(:mod:`gdbench.study.compare.confirm`).

The objective is the metric's value at the last epoch run. By default it is
the task's own (``val_loss`` for image tasks, ``loss`` for toy tasks),
minimized; a metric with ``accuracy`` in its name is maximized.

With a ``target``, the objective is the time the metric takes to reach it,
minimized: ``objective = {metric = "val_accuracy", target = 0.9, measure =
"epochs"}`` (``measure``: ``epochs``, the default, ``steps`` or ``seconds``).
The target is reached when the metric is ≥ it for a maximized metric, ≤ for a
minimized one (``direction`` then says which the metric is); a trial that
never reaches it counts the whole budget (every epoch, every step, its whole
duration). Such a study runs without a pruner (``pruner = "none"``, the
default then): see :mod:`gdbench.study.spec.objectives`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import gdbench.tasks
from gdbench.study.errors import SpecError
from gdbench.study.spec.domains import Domain

__all__ = [
    "DIRECTIONS", "MAX_NAME_LENGTH", "NAME_PATTERN", "NON_LEARNING_SAMPLERS", "TRIALS_PER_BATCH",
    "CompareSpec", "ConfirmSpec", "ObjectiveSpec", "OptimizerSpec", "PrunerSpec", "SamplerSpec", "ScheduleSpec",
    "SpecError", "StudySpec", "TaskSpec", "TrackingSpec",
    "default_trials_per_batch", "name_problem", "searched_domains",
]

DIRECTIONS = ("minimize", "maximize")

#: A study's name: it names files and folders (TensorBoard, reports), an MLflow
#: experiment and an Optuna study, so it is kept to characters every one of them takes.
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.\-]*"

#: ``trials_per_batch`` when a spec leaves it out: (toy task, sampler that does not learn
#: from finished trials) → trials. The one place these defaults are written; the module
#: docstring and docs/spec.md state them, and a test compares.
TRIALS_PER_BATCH: Mapping[tuple[bool, bool], int] = MappingProxyType({
    (True, True): 200,
    (True, False): 32,
    (False, True): 32,
    (False, False): 32,
})

#: The samplers that draw a trial without reading the trials before it.
NON_LEARNING_SAMPLERS = ("random", "grid")


def default_trials_per_batch(toy: bool, sampler: str) -> int:
    """``trials_per_batch`` for a spec that leaves it out (:data:`TRIALS_PER_BATCH`).

    Args:
        toy: whether the task is a toy task.
        sampler: the sampler's name.
    """
    return TRIALS_PER_BATCH[toy, sampler in NON_LEARNING_SAMPLERS]


#: The longest study name: a folder name of every file system, with room for suffixes.
MAX_NAME_LENGTH = 120

@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """The task every trial trains.

    Attributes:
        name: a registered task name, a plugin's, or a task class's import path (a file's
            made absolute).
        options: the task's options (``seed`` included).
        toy: whether it is a toy task (trained by the toy population engine).
    """

    name: str
    options: Mapping[str, Any]
    toy: bool

    def build(self) -> gdbench.tasks.Task:
        """A fresh task object."""
        return gdbench.tasks.get(self.name, **self.options)


class _Labelled:
    """A named thing of a spec whose label defaults to its name."""

    name: str
    label: str

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", self.name)


@dataclasses.dataclass(frozen=True)
class OptimizerSpec(_Labelled):
    """One optimizer and its space.

    Attributes:
        name: what :func:`gdbench.optimizers.source` finds it by: a registered
            or plugin name, or an import path (a file's path made absolute).
        space: keyword → domain (fixed or searched); keywords absent keep
            the optimizer's defaults.
        label: what the study calls it: the name (a class's name in lower case
            for an import path), unless the spec compares variants of one
            algorithm (``label = "adam_no_bc"``).
    """

    name: str
    space: Mapping[str, Domain]
    label: str = ""


@dataclasses.dataclass(frozen=True)
class ScheduleSpec(_Labelled):
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


@dataclasses.dataclass(frozen=True)
class ObjectiveSpec:
    """The metric a study optimizes and the direction (:mod:`gdbench.study.spec.objectives`).

    Attributes:
        metric: the epoch-log key (``"val_loss"``).
        direction: the study's direction: the metric's own, or ``"minimize"``
            for a time-to-target objective.
        target: the value to reach, ``None`` for the last epoch's metric.
        measure: ``epochs``, ``steps`` or ``seconds``: how the time to the
            target is counted (``None`` without a target).
        metric_direction: the direction in which the metric improves (the
            target is reached at ≥ for ``maximize``, ≤ for ``minimize``);
            ``direction`` when not given.
    """

    metric: str
    direction: str
    target: float | None = None
    measure: str | None = None
    metric_direction: str = ""

    def __post_init__(self) -> None:
        if not self.metric_direction:
            object.__setattr__(self, "metric_direction", self.direction)

    @property
    def label(self) -> str:
        """What the objective's value is: ``"val_loss"``, ``"epochs to val_accuracy ≥ 0.9"``."""
        if self.target is None:
            return self.metric
        reached = "≥" if self.metric_direction == "maximize" else "≤"
        return f"{self.measure} to {self.metric} {reached} {self.target:g}"


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
class ConfirmSpec:
    """Reruns of each optimizer's (and schedule's) best configuration over ``seeds`` seeds."""

    seeds: int = 10


@dataclasses.dataclass(frozen=True)
class CompareSpec:
    """A budget-matched comparison: every optimizer × schedule gets the same random-search
    budget, its first trial at the defaults, and the best found is reported after each
    of ``budgets`` trials."""

    budgets: tuple[int, ...]


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
    trials_per_batch: int = TRIALS_PER_BATCH[False, False]
    balance: bool = True
    confirm: ConfirmSpec | None = None
    compare: CompareSpec | None = None

    @property
    def compares_optimizers(self) -> bool:
        """Whether the optimizer is itself a searched (categorical) parameter."""
        return len(self.optimizers) > 1

    @property
    def compares_schedules(self) -> bool:
        """Whether the schedule is itself a searched (categorical) parameter."""
        return len(self.schedules) > 1


def name_problem(name: str) -> str:
    """What is wrong with a study name, or ``""``: the check of a spec's ``name`` and of a
    name given on the command line."""
    if len(name) > MAX_NAME_LENGTH:
        return f"{name[:40]!r}... is {len(name)} characters long; at most {MAX_NAME_LENGTH}"
    if not re.fullmatch(NAME_PATTERN, name):
        return f"{name!r}: use letters, digits, '_', '-' and '.' only, starting with a letter or digit"
    return ""


def searched_domains(spec: StudySpec) -> list[tuple[str, Domain]]:
    """(``label.keyword``, domain) of every searched domain of ``spec``'s optimizers and schedules."""
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
