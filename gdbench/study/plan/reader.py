"""Reads a spec file: TOML, checked field by field into :class:`~gdbench.study.spec.model.StudySpec`.

Users read a spec through :func:`~gdbench.study.load_specs`, which takes the first look
(:mod:`gdbench.study.plan.first_look`) before this module, and TensorFlow, is imported.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from types import MappingProxyType
from typing import Any

import gdbench.tasks
from gdbench.study.plan import brought_task, samplers
from gdbench.study.plan.build import optimizer_defaults
from gdbench.study.plan.first_look import TRACKING_KEYS
from gdbench.study.plan.inclusions import holds
from gdbench.study.plan.space_reader import Named, SpaceReader
from gdbench.study.plan.tables import STUDY_KEYS, study_tables
from gdbench.study.spec import objectives
from gdbench.study.spec.fields import error_keyword, join, option_names
from gdbench.study.spec.model import (
    DIRECTIONS,
    CompareSpec,
    ConfirmSpec,
    ObjectiveSpec,
    OptimizerSpec,
    PrunerSpec,
    SamplerSpec,
    ScheduleSpec,
    StudySpec,
    TaskSpec,
    TrackingSpec,
    default_trials_per_batch,
    name_problem,
)
from gdbench.tracking.limits import MAX_DESCRIPTION_LENGTH, MAX_EXPERIMENT_NAME_LENGTH

__all__ = ["STUDY_KEYS", "read_specs"]



def read_specs(path: Path) -> list[StudySpec]:
    """Every study of a spec file (one, or several as ``[[study]]`` tables).

    Args:
        path: the TOML file.

    Raises:
        SpecError: the file is missing, not TOML, or any field is wrong; the
            message names the file, the field and what is accepted.
    """
    tables = study_tables(path)
    reader = _Reader(path)
    specs = [reader.study(table, prefix, default_name=path.stem) for prefix, table in tables]
    seen: set[str] = set()
    for index, spec in enumerate(specs):
        if spec.name in seen:
            raise reader.error(f"study[{index}].name", f"{spec.name!r} is used twice in this file")
        seen.add(spec.name)
    return specs


def _image_population_supported(task: gdbench.tasks.Task) -> bool:
    """Whether the image population engine trains ``task``'s model."""
    from gdbench.tasks.image_population import (
        supports_population,  # keeps TensorFlow out of start-up
    )

    return supports_population(task)


class _Reader(SpaceReader):
    """Reads every field of one spec file."""

    def study(self, table: dict[str, Any], prefix: str, *, default_name: str) -> StudySpec:
        self.check_keys(table, STUDY_KEYS, prefix)
        field = functools.partial(join, prefix)

        name = self.string(table.get("name", default_name), field("name"))
        problem = name_problem(name)
        if problem:
            raise self.error(field("name"), problem)
        description = table.get("description", "")
        if not isinstance(description, str):
            raise self.error(field("description"), f"expected a string, got {description!r}")
        self.check_length(description, field("description"), MAX_DESCRIPTION_LENGTH)
        seed = self.integer(table.get("seed", StudySpec.seed), field("seed"), 0)

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
        optimizers, optimizer_domains = self.optimizers(table, prefix, search, tune)
        self.check_tune(table, field("tune"), optimizers)
        schedules, schedule_domains = self.schedules(table, prefix, tune)
        self.check_search_keys(search, optimizers, field("search"))

        stackable = task_spec.toy or _image_population_supported(task)
        population = self.flag(table.get("population", stackable), field("population"))
        if population and not stackable:
            raise self.error(field("population"),
                             "the population engines train toy tasks and image tasks whose "
                             "model is an MLP on the default loss, under gdbench's data "
                             f"protocol; {task.name} is not one (set population = false or "
                             "leave it out)")
        if population and task_spec.name not in gdbench.tasks.REGISTRY:
            brought_task.check_population(self, task, field("task"))
        objective = self.objective(table.get("objective"), field("objective"), task, population)
        compare = None
        if "compare" in table:
            compare = self.compare(table, prefix, optimizers, schedules, optimizer_domains)
        branches = len(optimizers) * max(1, len(schedules))
        trials = self.integer(table.get("trials", StudySpec.trials) if compare is None else
                              table.get("trials", max(compare.budgets) * branches),
                              field("trials"), 1)
        balance = self.flag(table.get("balance", StudySpec.balance), field("balance"))
        sampler = self.sampler(table.get("sampler", "tpe" if compare is None else "random"),
                               field("sampler"), seed)
        trials_per_batch = self.integer(
            table.get("trials_per_batch", default_trials_per_batch(task_spec.toy, sampler.name)),
            field("trials_per_batch"), 1)
        unpruned = compare is not None or objective.target is not None
        pruner = self.pruner(table.get("pruner", "none" if unpruned else "median"),
                             field("pruner"), epochs or task.default_epochs)
        if objective.target is not None and pruner.name != "none":
            raise self.error(field("pruner"),
                             "a time-to-target objective (objective.target) is known only when "
                             "a trial ends, so it cannot be pruned; set pruner = \"none\" or "
                             "leave it out")
        storage = table.get("storage")
        if storage is not None:
            storage = self.string(storage, field("storage"))
            if "://" not in storage:
                raise self.error(field("storage"),
                                 "expected a database URL such as sqlite:///runs/optuna.db, "
                                 f"got {storage!r}")
        tracking = self.tracking(table.get("tracking", {}), field("tracking"))
        confirm = self.confirm(table.get("confirm"), field("confirm"))
        for named in (optimizer_domains, schedule_domains):
            self.check_shared_names(named, grid=sampler.name == "grid")
            self.check_tracked_lengths(named)

        spec = StudySpec(
            name=name, source=self.path, description=description, task=task_spec,
            epochs=epochs, batch_size=batch_size, optimizers=optimizers, schedules=schedules,
            objective=objective, trials=trials, sampler=sampler, pruner=pruner,
            storage=storage, tracking=tracking, seed=seed, population=population,
            trials_per_batch=trials_per_batch, balance=balance, confirm=confirm,
            compare=compare,
        )
        if sampler.name == "grid":
            self.check_grid(spec, field("sampler"))
        return spec

    def compare(self, table: dict[str, Any], prefix: str, optimizers: tuple[OptimizerSpec, ...],
                schedules: tuple[ScheduleSpec, ...], named: list[Named]) -> CompareSpec:
        """``compare = {budgets = [...]}``, and what a budget-matched comparison requires.

        Every branch (optimizer × schedule) runs the largest budget's trials of one
        random search, its first at its defaults: ``trials`` is the largest budget
        × the branches (given, it must say so), the sampler ``random``, the pruner
        ``none``, ``balance`` true, and every optimizer's default inside its ranges.
        """
        field = join(prefix, "compare")
        value = self.table(table["compare"], field)
        self.check_keys(value, ("budgets",), field)
        budgets_field = join(field, "budgets")
        if "budgets" not in value:
            raise self.error(budgets_field, "required: a list of trial counts, such as [5, 25, 50]")
        listed = value["budgets"]
        if not isinstance(listed, list) or not listed:
            raise self.error(budgets_field, "expected a non-empty list of trial counts, "
                                            f"got {listed!r}")
        budgets = [self.integer(item, join(budgets_field, index), 1)
                   for index, item in enumerate(listed)]
        for index in range(1, len(budgets)):
            if budgets[index] <= budgets[index - 1]:
                raise self.error(join(budgets_field, index),
                                 f"budgets must increase: {budgets[index]} follows "
                                 f"{budgets[index - 1]}")
        branches = len(optimizers) * max(1, len(schedules))
        needed = max(budgets) * branches
        why = ("a budget-matched comparison (compare) gives every optimizer × schedule the "
               "same random search")
        if "trials" in table and table["trials"] != needed:
            raise self.error(join(prefix, "trials"),
                             f"{why}: {max(budgets)} trials (the largest budget) × {branches} "
                             f"branches = {needed}; got {table['trials']!r} (leave trials out)")
        for key, wanted, rule in (("sampler", "random", "the first trial of each at its defaults"),
                                  ("pruner", "none", "every trial run to its last epoch")):
            value = table.get(key, wanted)
            name = value.get("name") if isinstance(value, dict) else value
            if name != wanted:
                raise self.error(join(prefix, key),
                                 f"{why}, {rule}: the {key} is {wanted!r}, got {name!r} "
                                 f"(leave {key} out)")
        if table.get("balance", True) is not True:
            raise self.error(join(prefix, "balance"),
                             f"{why}: the branches take turns (balance = true; leave it out)")
        entries = [(o, key, domain) for o in optimizers for key, domain in o.space.items()]
        for (optimizer, key, domain), entry in zip(entries, named):
            default = optimizer_defaults(optimizer.name).get(key)
            if domain.searched and not holds(domain, default):
                raise self.error(entry.field,
                                 f"{optimizer.label}'s first trial runs at its default {key} = "
                                 f"{default!r}, outside {domain.describe(key)} (compare); "
                                 "widen the range to hold it")
        return CompareSpec(budgets=tuple(budgets))

    def task(self, value: Any, field: str, seed: int) -> tuple[TaskSpec, gdbench.tasks.Task]:
        source, options, name_field = brought_task.read_task_source(self, value, field)
        self.check_keys(options, source.option_names(), field)
        options = {"seed": seed, **options}
        try:
            task = source.build(**options)
        except ValueError as error:
            keyword = error_keyword(str(error))
            where = join(field, keyword) if keyword in options else name_field
            raise self.error(where, str(error)) from None
        except Exception as error:  # noqa: BLE001 - a user's task may raise anything
            raise self.error(name_field, f"{source.name}: building it raised "
                                         f"{type(error).__name__}: {error}") from None
        if not source.built_in:
            brought_task.check_task(self, task, name_field)
        toy = isinstance(task, gdbench.tasks.ToyTask)
        return TaskSpec(name=source.identifier, options=MappingProxyType(options), toy=toy), task

    def objective(self, value: Any, field: str, task: gdbench.tasks.Task,
                  population: bool) -> ObjectiveSpec:
        if value is None:
            value = {}
        elif isinstance(value, str):
            value = {"metric": value}
        elif not isinstance(value, dict):
            raise self.error(field,
                             f"expected a metric name or {{metric, direction}}, got {value!r}")
        self.check_keys(value, ("metric", "direction", "target", "measure"), field)
        if isinstance(task, gdbench.tasks.ToyTask):
            metrics = ["loss"] if population else sorted(task.metrics(task.initial_parameters()))
        else:
            metrics = task.logged_metrics()
        metric = value.get("metric", type(task).objective_metric)
        if metric not in metrics:
            why = " (the population engine records the loss only)" if population else ""
            raise self.error(join(field, "metric") if "metric" in value else field,
                             f"{task.name} does not log {metric!r}{why}; "
                             f"accepted: {', '.join(metrics)}")
        direction = value.get("direction", "maximize" if "accuracy" in metric else "minimize")
        if direction not in DIRECTIONS:
            raise self.error(join(field, "direction"),
                             f"expected one of {', '.join(DIRECTIONS)}, got {direction!r}")
        if "target" not in value:
            if "measure" in value:
                raise self.error(join(field, "measure"), "needs a target (objective.target)")
            return ObjectiveSpec(metric=metric, direction=direction)
        target = value["target"]
        if isinstance(target, bool) or not isinstance(target, (int, float)) \
                or not math.isfinite(target):
            raise self.error(join(field, "target"), f"expected a finite number, got {target!r}")
        measure = value.get("measure", "epochs")
        if measure not in objectives.MEASURES:
            raise self.error(join(field, "measure"),
                             f"expected one of {', '.join(objectives.MEASURES)}, got {measure!r}")
        if population and measure == "seconds":
            raise self.error(join(field, "measure"),
                             "a population's trials train together and have no time of their "
                             "own; use epochs or steps, or set population = false")
        return ObjectiveSpec(metric=metric, direction="minimize", target=float(target),
                             measure=measure, metric_direction=direction)

    def sampler(self, value: Any, field: str, seed: int) -> SamplerSpec:
        name, options, name_field = self.named(value, field, list(samplers.SAMPLERS), "sampler")
        sampler_class = samplers.SAMPLERS[name]
        unavailable = samplers.sampler_unavailable(name)
        if unavailable is not None:
            raise self.error(name_field, unavailable)
        accepted = [k for k in option_names(sampler_class)
                    if k not in ("search_space", "independent_sampler", "constraints_func",
                                 "gamma", "weights", "x0", "source_trials")]
        self.check_keys(options, accepted, field)
        sampler_seed = self.integer(options.pop("seed", seed), join(field, "seed"), 0)
        if name != "grid":
            try:
                sampler_class(seed=sampler_seed, **options)
            except (ValueError, TypeError) as error:
                raise self.error(field, f"{name}: {error}") from None
        return SamplerSpec(name=name, seed=sampler_seed, options=MappingProxyType(options))

    def pruner(self, value: Any, field: str, epochs: int) -> PrunerSpec:
        name, options, _ = self.named(value, field, list(samplers.PRUNERS), "pruner")
        pruner_class = samplers.PRUNERS[name]
        self.check_keys(options, option_names(pruner_class), field)
        if name == "hyperband":
            options.setdefault("max_resource", epochs)
        try:
            pruner_class(**options)
        except (ValueError, TypeError) as error:
            keyword = error_keyword(str(error))
            raise self.error(join(field, keyword) if keyword in options else field,
                             f"{name}: {error}") from None
        return PrunerSpec(name=name, options=MappingProxyType(options))

    def confirm(self, value: Any, field: str) -> ConfirmSpec | None:
        if value is None:
            return None
        table = self.table(value, field)
        self.check_keys(table, ("seeds",), field)
        seeds = self.integer(table.get("seeds", ConfirmSpec.seeds), join(field, "seeds"), 2)
        return ConfirmSpec(seeds=seeds)

    def tracking(self, value: Any, field: str) -> TrackingSpec:
        table = self.table(value, field)
        self.check_keys(table, TRACKING_KEYS, field)
        flags = {key: self.flag(table[key], join(field, key))
                 for key in ("mlflow", "tensorboard") if key in table}
        texts = {key: self.string(table[key], join(field, key))
                 for key in ("tracking_uri", "tensorboard_dir", "experiment_name") if key in table}
        if "experiment_name" in texts:
            self.check_length(texts["experiment_name"], join(field, "experiment_name"),
                              MAX_EXPERIMENT_NAME_LENGTH)
        return TrackingSpec(**flags, **texts)

