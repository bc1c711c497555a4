"""What a confirmation reruns, and how: the study's best of each branch, its task and size.

Built from a spec (:func:`spec_target`, ``gdbench run``) or from what a stored
study recorded (:func:`stored_target`, ``gdbench confirm``): the task and
objective of its ``spec`` attribute, epochs and batch size from its MLflow
parent run. The reruns live in the companion study ``<study>.confirm``
(:func:`open_companion`); see :mod:`gdbench.study.compare.confirm`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

import gdbench.tasks
from gdbench.study import keys
from gdbench.study.errors import StudyError
from gdbench.study.plan.build import TrialSetup
from gdbench.study.spec.model import StudySpec
from gdbench.study.trials import session, storage
from gdbench.study.trials.session import StudyContext
from gdbench.study.trials.stored import stored_context

__all__ = [
    "COMPANION_SUFFIX",
    "Branch",
    "ConfirmTarget",
    "best_branches",
    "companion_name",
    "confirm_tensorboard_dir",
    "open_companion",
    "spec_target",
    "stored_target",
]

#: The companion study of ``<study>``'s reruns is ``<study>.confirm``.
COMPANION_SUFFIX = ".confirm"


def companion_name(study_name: str) -> str:
    """The name of the companion study holding ``study_name``'s reruns."""
    return f"{study_name}{COMPANION_SUFFIX}"


@dataclasses.dataclass(frozen=True)
class Branch:
    """The best complete trial of one optimizer (× schedule) of a study.

    Attributes:
        optimizer: the optimizer's label.
        schedule: the schedule's label (``"none"`` for a constant η).
        trial: the trial.
        setup: its setup, rebuilt from its ``setup`` attribute.
    """

    optimizer: str
    schedule: str
    trial: FrozenTrial
    setup: TrialSetup


def best_branches(study: optuna.Study) -> list[Branch]:
    """The best complete trial of each optimizer × schedule of ``study``, in the order
    their labels first appear."""
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    best: dict[tuple[str, str], Branch] = {}
    for trial in storage.counted_trials(study):
        if trial.state != TrialState.COMPLETE or keys.SETUP_ATTR not in trial.user_attrs:
            continue
        setup = TrialSetup.from_json(trial.user_attrs[keys.SETUP_ATTR])
        key = (setup.optimizer_label, setup.tracked_schedule)
        held = best.get(key)
        if held is None or (trial.value > held.trial.value if maximize
                            else trial.value < held.trial.value):
            best[key] = Branch(key[0], key[1], trial, setup)
    return list(best.values())


@dataclasses.dataclass(frozen=True)
class ConfirmTarget:
    """What confirming a study needs, from its spec or from what the study stored.

    Attributes:
        study_name: the study.
        storage_url: its Optuna storage.
        task_name: its task.
        task_options: the task's options (``seed`` is set per rerun).
        epochs: epochs per rerun.
        batch_size: examples per step.
        metric: the objective metric.
        population: toy reruns through the population engine.
        tracking_uri: the MLflow store, ``None`` when off.
        tensorboard_dir: the reruns' TensorBoard folder, ``None`` when off.
        nested_in: the study's MLflow parent run id, ``None`` to find it in the store.
    """

    study_name: str
    storage_url: str
    task_name: str
    task_options: Mapping[str, Any]
    epochs: int
    batch_size: int
    metric: str
    population: bool
    tracking_uri: str | None = None
    tensorboard_dir: Path | None = None
    nested_in: str | None = None

    def task(self, seed: int) -> gdbench.tasks.Task:
        """The study's task with its ``seed`` option set to ``seed``."""
        return gdbench.tasks.get(self.task_name, **{**self.task_options, "seed": seed})


def confirm_tensorboard_dir(study_folder: Path) -> Path:
    """The reruns' TensorBoard folder: ``<study>.confirm`` beside the study's folder."""
    return study_folder.with_name(companion_name(study_folder.name))


def open_companion(study: optuna.Study, rdb: optuna.storages.BaseStorage, *,
                   create: bool) -> optuna.Study | None:
    """The companion study of ``study``'s reruns; ``None`` when there is none and not ``create``."""
    name = companion_name(study.study_name)
    if create:
        return optuna.create_study(study_name=name, storage=rdb, direction=study.direction,
                                   load_if_exists=True)
    try:
        return optuna.load_study(study_name=name, storage=rdb)
    except KeyError:
        return None


def spec_target(spec: StudySpec, where: session.Locations, context: StudyContext,
                nested_in: str | None) -> ConfirmTarget:
    """The :class:`ConfirmTarget` of a study this process runs from ``spec``.

    Args:
        spec: the study's spec.
        where: its locations.
        context: its task and size.
        nested_in: its MLflow parent run id (``None`` without MLflow).
    """
    return ConfirmTarget(
        study_name=spec.name, storage_url=where.storage, task_name=spec.task.name,
        task_options=dict(spec.task.options), epochs=context.epochs,
        batch_size=context.batch_size, metric=spec.objective.metric, population=spec.population,
        tracking_uri=where.tracking_uri if nested_in is not None else None,
        tensorboard_dir=(confirm_tensorboard_dir(where.tensorboard_dir)
                         if where.tensorboard_dir is not None else None),
        nested_in=nested_in)


def stored_target(study: optuna.Study, storage_url: str, *, tracking_uri: str | None,
                  tensorboard_root: Path | None) -> ConfirmTarget:
    """A stored study's :class:`ConfirmTarget`, without its spec: the task and objective it
    recorded, epochs and batch size from its MLflow parent run (else from its trials and
    the task's default).

    Args:
        study: the study.
        storage_url: its storage.
        tracking_uri: its MLflow store, ``None`` if none.
        tensorboard_root: the folder of the studies' TensorBoard folders, ``None`` for none.

    Raises:
        StudyError: the study recorded no task (it was not run by gdbench).
    """
    if keys.SPEC_ATTR not in study.user_attrs:
        raise StudyError(f"STUDY: study {study.study_name!r} recorded no task; it was not "
                         "run by gdbench")
    recorded = json.loads(study.user_attrs[keys.SPEC_ATTR])
    context = stored_context(study, tracking_uri)
    task, epochs, batch_size = context.task, context.epochs, context.batch_size
    options = dict(task.options)
    toy = isinstance(task, gdbench.tasks.ToyTask)
    board = None
    if tensorboard_root is not None and (tensorboard_root / study.study_name).is_dir():
        board = confirm_tensorboard_dir(tensorboard_root / study.study_name)
    return ConfirmTarget(
        study_name=study.study_name, storage_url=storage_url, task_name=recorded["task"],
        task_options=options, epochs=max(epochs, 1), batch_size=batch_size,
        metric=recorded["metric"], population=toy and recorded["metric"] == "loss",
        tracking_uri=tracking_uri, tensorboard_dir=board)
