"""A task a spec brings (a loss function, a Keras model and its data, a plugin's): reading
it, the checks that refuse it before anything runs, and the line ``gdbench run`` prints
about it."""

from __future__ import annotations

from typing import Any

import gdbench.tasks
from gdbench.study.plan.brought import found_entry
from gdbench.study.plan.first_look import Names
from gdbench.study.spec.fields import FieldReader
from gdbench.study.spec.model import StudySpec

__all__ = ["check_population", "check_task", "read_task_source", "task_notes"]


def read_task_source(reader: FieldReader, value: Any, field: str
                     ) -> tuple[gdbench.tasks.TaskSource, dict[str, Any], str]:
    """The spec's task, found by name or import path (:func:`gdbench.tasks.source`; a
    file's path is relative to the spec's folder), its options, and its name's field;
    ``reader`` (the spec's) names the field of a bad entry."""
    names = Names("task", gdbench.tasks.names(), gdbench.tasks.plugin_names(),
                  gdbench.tasks.registry.PATH_FORMS)
    source, options, name_field = found_entry(reader, value, field, names=names,
                                              find=gdbench.tasks.source)
    if not issubclass(source.task_class, (gdbench.tasks.ToyTask, gdbench.tasks.ImageTask)):
        raise reader.error(name_field, f"{source.name}: a study trains toy tasks (ToyTask, "
                                       "gdbench.tasks.toy_task) and Keras tasks (ImageTask, "
                                       "gdbench.tasks.keras_task); "
                                       f"{source.task_class.__name__} is neither")
    return source, options, name_field


def check_task(reader: FieldReader, task: gdbench.tasks.Task, field: str) -> None:
    """Refuse a brought Keras task whose builder raises, gives no model, or whose model,
    loss and metrics cannot take its data, naming ``field``."""
    if isinstance(task, gdbench.tasks.KerasTask):
        try:
            task.check()
        except ValueError as error:
            raise reader.error(field, f"{task.name}: {error}") from None


def check_population(reader: FieldReader, task: gdbench.tasks.Task, field: str) -> None:
    """Refuse a brought toy task whose loss the population engine cannot run (it does not
    broadcast over a leading population axis), naming ``field``."""
    from gdbench.tasks.function_task import (
        check_broadcasts,  # keeps TensorFlow out of start-up
    )

    if isinstance(task, gdbench.tasks.ToyTask):
        try:
            check_broadcasts(task)
        except ValueError as error:
            raise reader.error(field, f"{error}; or set population = false to train its "
                                      "trials one at a time") from None


def task_notes(spec: StudySpec) -> list[str]:
    """One line for a task gdbench does not ship: where it comes from and how its trials
    train (in populations, or one at a time and why)."""
    if spec.task.name in gdbench.tasks.REGISTRY:
        return []
    from gdbench.tasks.image_population import (
        population_obstacle,  # keeps TensorFlow out of start-up
    )

    source = gdbench.tasks.source(spec.task.name)
    line = f"task {source.name} ({source.origin}): "
    if spec.population:
        return [line + "its trials train in populations"]
    if spec.task.toy:
        return [line + "its trials train one at a time (population = false)"]
    task = spec.task.build()
    obstacle = population_obstacle(task)
    if obstacle is None:
        return [line + "its trials train one at a time (population = false)"]
    note = task.pipeline_note() if isinstance(task, gdbench.tasks.KerasTask) else None
    return [line + f"its trials train one at a time, not in populations: {obstacle}"
            + (f"; {note}" if note else "")]
