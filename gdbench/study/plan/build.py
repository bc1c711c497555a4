"""From a trial's suggestions to the optimizer and schedule it trains with.

A value has one name, the one a spec gives it, in Optuna (``trial.params``,
optuna-dashboard), MLflow and TensorBoard alike:

| what                         | name                                          |
|------------------------------|-----------------------------------------------|
| the optimizer (compared)     | ``optimizer``                                 |
| an optimizer keyword         | ``learning_rate``, ``beta_2`` (β itself)      |
| the schedule (compared)      | ``schedule``                                  |
| a schedule parameter         | ``schedule.drop``                             |
| a warm-up target's parameter | ``schedule.target.alpha``                     |

When several optimizers are compared, ``optimizer`` chooses the branch and
each branch suggests its own keywords under their own names: η of GD and η of
Adam are both ``learning_rate``, each from its own range, so that they line
up in one column of every tool. Optuna keeps one distribution kind per name
across a study; the spec reader refuses a spec whose optimizers (or
schedules) search one name in two kinds (see :func:`parameter_spaces`).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Mapping

import keras
from optuna.distributions import CategoricalDistribution

import gdbench.optimizers
import gdbench.schedules
from gdbench.study.spec import spaces
from gdbench.study.spec.model import StudySpec
from gdbench.study.spec.domains import Choice, Domain, Fixed, Suggester, resolve
from gdbench.tracking.names import NO_SCHEDULE

__all__ = [
    "SCHEDULE_PREFIX", "TARGET_PREFIX", "TrialSetup", "build_schedule", "first_trial_params",
    "optimizer_defaults", "parameter_grid", "parameter_spaces", "schedule_keywords", "suggest",
    "trackable", "tracked_domains",
]

#: What a schedule's parameters are called: ``schedule.drop``.
SCHEDULE_PREFIX = "schedule."

#: What a warm-up target's parameters are called: ``schedule.target.alpha``.
TARGET_PREFIX = "schedule.target."


def optimizer_defaults(name: str) -> dict[str, Any]:
    """η and every hyperparameter of optimizer ``name`` at its default value.

    Args:
        name: what :func:`gdbench.optimizers.source` takes (an optimizer spec's
            ``name``): a registered or plugin name, or an import path.
    """
    return gdbench.optimizers.source(name).hyperparameters()


def schedule_keywords(name: str, learning_rate: float, values: Mapping[str, Any],
                      target: Any = None) -> dict[str, Any]:
    """The keywords of schedule ``name`` from η and its parameters' values.

    Args:
        name: a registered schedule name.
        learning_rate: η, set on the keyword the schedule's space names.
        values: parameter → value (keywords and derived parameters, such as
            ``base_fraction``), run-relative sizes already resolved.
        target: ``warmup`` only: the built target schedule, or ``None`` for η.
    """
    space = spaces.SCHEDULE_SPACES[name]
    keywords: dict[str, Any] = {}
    if space.learning_rate_keyword is not None:
        keywords[space.learning_rate_keyword] = learning_rate
    if target is not None:
        keywords["target"] = target
    keywords.update({key: value for key, value in values.items() if key not in space.derived})
    for key, value in values.items():
        if key in space.derived:
            rule = space.derived[key]
            keywords[rule.keyword] = rule.compute(learning_rate, value, keywords)
    return keywords


def build_schedule(name: str, learning_rate: float, values: Mapping[str, Any],
                   target: tuple[str, Mapping[str, Any]] | None = None
                   ) -> keras.optimizers.schedules.LearningRateSchedule:
    """The schedule ``name`` for η and its parameters' values.

    Args:
        name: a registered schedule name.
        learning_rate: η.
        values: its parameters' values, resolved.
        target: ``warmup`` only: (target name, target values), or ``None``.

    Raises:
        ValueError: a value the schedule refuses; the message names the keyword.
    """
    built_target = None
    if target is not None:
        built_target = gdbench.schedules.get(
            target[0], **schedule_keywords(target[0], learning_rate, target[1]))
    keywords = schedule_keywords(name, learning_rate, values, built_target)
    return gdbench.schedules.get(name, **keywords)


@dataclasses.dataclass(frozen=True)
class TrialSetup:
    """One trial's optimizer and schedule, every value set.

    Attributes:
        optimizer: the optimizer's name or import path
            (:func:`gdbench.optimizers.source`).
        optimizer_values: η (``learning_rate``) and every hyperparameter of
            the optimizer, searched, fixed or at its default.
        schedule: the schedule's name, or ``None`` for a constant η.
        schedule_values: the schedule's parameter values (keywords and
            derived parameters), resolved.
        target: ``warmup`` only: the target schedule's name, or ``None``.
        target_values: the target's parameter values.
        label: the optimizer's label in the study (its name unless the spec
            compares variants of one algorithm).
        schedule_label: the schedule's label in the study.
    """

    optimizer: str
    optimizer_values: Mapping[str, Any]
    schedule: str | None = None
    schedule_values: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    target: str | None = None
    target_values: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    label: str = ""
    schedule_label: str = ""

    @property
    def optimizer_label(self) -> str:
        """The optimizer's label in the study."""
        return self.label or self.optimizer

    @property
    def tracked_schedule(self) -> str:
        """The schedule's label in the study; :data:`NO_SCHEDULE` without one."""
        return self.schedule_label or self.schedule or NO_SCHEDULE

    @property
    def learning_rate(self) -> float:
        """η: the constant rate, or the one the schedule is built around."""
        return float(self.optimizer_values["learning_rate"])

    def optimizer_keywords(self) -> dict[str, Any]:
        """The optimizer's keywords other than η."""
        return {k: v for k, v in self.optimizer_values.items() if k != "learning_rate"}

    def schedule_keywords(self) -> dict[str, Any]:
        """The schedule's keywords (η included); empty without a schedule.

        A warm-up's target is left out (see :meth:`build_schedule`).
        """
        if self.schedule is None:
            return {}
        return schedule_keywords(self.schedule, self.learning_rate, self.schedule_values)

    def build_schedule(self) -> keras.optimizers.schedules.LearningRateSchedule | None:
        """The schedule, or ``None`` for a constant η."""
        if self.schedule is None:
            return None
        target = (self.target, self.target_values) if self.target is not None else None
        return build_schedule(self.schedule, self.learning_rate, self.schedule_values, target)

    def build_optimizer(self) -> keras.optimizers.Optimizer:
        """A fresh optimizer with η or the schedule."""
        schedule = self.build_schedule()
        learning_rate = schedule if schedule is not None else self.learning_rate
        return gdbench.optimizers.get(self.optimizer, learning_rate=learning_rate,
                                      **self.optimizer_keywords())

    def hyperparameters(self) -> dict[str, Any]:
        """Every value of the trial, searched or not, by its name (see the module docstring)."""
        values: dict[str, Any] = {"optimizer": self.optimizer_label, **self.optimizer_values,
                                  "schedule": self.tracked_schedule}
        values.update({SCHEDULE_PREFIX + k: v for k, v in self.schedule_values.items()})
        if self.target is not None:
            values[SCHEDULE_PREFIX + "target"] = self.target
            values.update({TARGET_PREFIX + k: v for k, v in self.target_values.items()})
        return {key: trackable(value) for key, value in values.items()}

    def to_json(self) -> str:
        """The setup as JSON (kept in the trial's user attributes to rebuild it later)."""
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> TrialSetup:
        """The setup :meth:`to_json` wrote."""
        return cls(**json.loads(text))


def trackable(value: Any) -> Any:
    """Numbers, strings and booleans as they are; a list (piecewise boundaries) as its text."""
    return value if isinstance(value, (bool, int, float, str)) else json.dumps(value)


def _sample(space: Mapping[str, Domain], trial: Suggester, prefix: str,
            total_steps: int) -> dict[str, Any]:
    values = {}
    for key, domain in space.items():
        domain = resolve(domain, total_steps)
        values[key] = domain.value if isinstance(domain, Fixed) else domain.suggest(
            trial, prefix + key)
    return values


def _held_choices(trial: Suggester, name: str, choices: list[str]) -> list[str]:
    """The choices to ask ``name`` with. A trial that holds ``name`` already, with a value
    of ``choices`` (a trial queued again before its study grew by optimizers), is asked
    with the choices it holds it with: Optuna refuses to ask a parameter again with
    another set."""
    held = getattr(trial, "distributions", {}).get(name)
    value = getattr(trial, "params", {}).get(name)
    if isinstance(held, CategoricalDistribution) and value in choices:
        return list(held.choices)
    return choices


def suggest(trial: Suggester, spec: StudySpec, total_steps: int) -> TrialSetup:
    """Sample one trial's setup from ``spec``'s spaces.

    Args:
        trial: an `optuna.Trial` (asked, or handed to an objective).
        spec: the :class:`~gdbench.study.spec.model.StudySpec`.
        total_steps: the trial's optimizer steps, epochs × steps per epoch
            (sizes the schedules).
    """
    labels = [optimizer.label for optimizer in spec.optimizers]
    label = (trial.suggest_categorical("optimizer", _held_choices(trial, "optimizer", labels))
             if len(labels) > 1 else labels[0])
    optimizer = spec.optimizers[labels.index(label)]
    optimizer_values = {**optimizer_defaults(optimizer.name),
                        **_sample(optimizer.space, trial, "", total_steps)}
    if not spec.schedules:
        return TrialSetup(optimizer=optimizer.name, optimizer_values=optimizer_values, label=label)

    schedule_labels = [schedule.label for schedule in spec.schedules]
    schedule_label = (trial.suggest_categorical("schedule", schedule_labels)
                      if len(schedule_labels) > 1 else schedule_labels[0])
    schedule = spec.schedules[schedule_labels.index(schedule_label)]
    schedule_values = _sample(schedule.space, trial, SCHEDULE_PREFIX, total_steps)
    target, target_values = None, {}
    if schedule.target is not None:
        target = schedule.target.name
        target_values = _sample(schedule.target.space, trial, TARGET_PREFIX, total_steps)
    return TrialSetup(optimizer=optimizer.name, optimizer_values=optimizer_values,
                      schedule=schedule.name, schedule_values=schedule_values, target=target,
                      target_values=target_values, label=label, schedule_label=schedule_label)


def parameter_spaces(spec: StudySpec) -> list[tuple[str, str, Mapping[str, Domain]]]:
    """(label, name prefix, space) of every optimizer, schedule and warm-up target of ``spec``.

    A domain's name, in Optuna and the trackers, is its prefix and its key:
    ``""`` for an optimizer's keywords, :data:`SCHEDULE_PREFIX` and
    :data:`TARGET_PREFIX` for a schedule's and its target's. The label says
    whose space it is (the target's is its schedule's label and ``.target``).
    """
    found: list[tuple[str, str, Mapping[str, Domain]]] = [
        (optimizer.label, "", optimizer.space) for optimizer in spec.optimizers]
    for schedule in spec.schedules:
        found.append((schedule.label, SCHEDULE_PREFIX, schedule.space))
        if schedule.target is not None:
            found.append((f"{schedule.label}.target", TARGET_PREFIX, schedule.target.space))
    return found


def parameter_grid(spec: StudySpec) -> dict[str, list[Any]]:
    """Every Optuna parameter of ``spec`` with its grid values (for the grid sampler).

    Args:
        spec: a spec whose searched domains all have a grid, one grid per
            name (checked when loaded).
    """
    grid: dict[str, list[Any]] = {}
    if len(spec.optimizers) > 1:
        grid["optimizer"] = [optimizer.label for optimizer in spec.optimizers]
    if len(spec.schedules) > 1:
        grid["schedule"] = [schedule.label for schedule in spec.schedules]
    for _, prefix, space in parameter_spaces(spec):
        for key, domain in space.items():
            if domain.searched:
                grid.setdefault(prefix + key, domain.grid())
    return grid


def tracked_domains(spec: StudySpec, total_steps: int) -> dict[str, list[Domain]]:
    """Every tracked hyperparameter name → the domains its values come from.

    Each optimizer contributes η and its hyperparameters (a keyword left
    out of its space as a `Fixed` default); names shared by several
    optimizers or schedules list several domains, which the trackers merge.

    Args:
        spec: the study spec.
        total_steps: the trial's optimizer steps (sizes the schedules).
    """
    domains: dict[str, list[Domain]] = {
        "optimizer": [Choice(tuple(o.label for o in spec.optimizers))],
        "schedule": [Choice(tuple(s.label for s in spec.schedules) or (NO_SCHEDULE,))],
    }
    for optimizer in spec.optimizers:
        values = {key: Fixed(value) for key, value in optimizer_defaults(optimizer.name).items()}
        values.update(optimizer.space)
        for key, domain in values.items():
            domains.setdefault(key, []).append(resolve(domain, total_steps))
    for schedule in spec.schedules:
        for key, domain in schedule.space.items():
            domains.setdefault(SCHEDULE_PREFIX + key, []).append(
                resolve(domain, total_steps))
        if schedule.target is not None:
            domains.setdefault(SCHEDULE_PREFIX + "target", []).append(Fixed(schedule.target.name))
            for key, domain in schedule.target.space.items():
                domains.setdefault(TARGET_PREFIX + key, []).append(
                    resolve(domain, total_steps))
    return domains


def first_trial_params(spec: StudySpec, optimizer_label: str, schedule_label: str | None,
                       total_steps: int) -> dict[str, Any]:
    """A branch's first trial: every searched parameter of its spaces at its default.

    An optimizer keyword takes the optimizer's default (its Keras default); a
    schedule parameter (which has none) the middle of its range, sized for
    ``total_steps``. Names are the trial's parameter names (``schedule.drop``).

    Args:
        spec: the study spec.
        optimizer_label: the branch's optimizer.
        schedule_label: the branch's schedule, ``None`` without one.
        total_steps: a trial's optimizer steps (sizes the schedules).
    """
    optimizer = next(o for o in spec.optimizers if o.label == optimizer_label)
    defaults = optimizer_defaults(optimizer.name)
    params = {key: defaults[key] for key, domain in optimizer.space.items() if domain.searched}
    schedule = next((s for s in spec.schedules if s.label == schedule_label), None)
    parts = [] if schedule is None else [(SCHEDULE_PREFIX, schedule.space)]
    if schedule is not None and schedule.target is not None:
        parts.append((TARGET_PREFIX, schedule.target.space))
    for prefix, space in parts:
        for key, domain in space.items():
            if resolve(domain, total_steps).searched:
                params[prefix + key] = resolve(domain.middle(), total_steps).nominal()
    return params
