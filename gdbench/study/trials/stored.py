"""What a stored trial and study hold, read back for reports and comparisons: a trial's
hyperparameters and the reason it ended, and the task and size a study ran with."""

from __future__ import annotations

import json
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from gdbench.study.keys import (
    EPOCHS_RUN_ATTR,
    FAIL_REASON_ATTR,
    HYPERPARAMETERS_ATTR,
    PRUNE_REASON_ATTR,
    SPEC_ATTR,
    STALE_REASON,
)
from gdbench.study.trials.session import StudyContext
from gdbench.study.trials.storage import counted_trials

__all__ = ["stored_context", "trial_hyperparameters", "trial_reason"]


def trial_hyperparameters(trial: FrozenTrial) -> dict[str, Any]:
    """Every value of a trial, searched or fixed, as it recorded them; else its Optuna params.

    Both use the names the trackers show (a study stored before Optuna did
    so recorded them all the same).
    """
    recorded = trial.user_attrs.get(HYPERPARAMETERS_ATTR)
    return dict(recorded) if isinstance(recorded, dict) else dict(trial.params)


def trial_reason(trial: FrozenTrial) -> str:
    """Why a trial failed or was pruned; empty for a complete one.

    A trial that failed with no recorded reason was failed by the storage's
    heartbeat check: its process stopped.
    """
    reason = trial.user_attrs.get(FAIL_REASON_ATTR) or trial.user_attrs.get(PRUNE_REASON_ATTR)
    if not reason and trial.state == TrialState.FAIL:
        return STALE_REASON
    return str(reason or "")


def stored_context(study: optuna.Study, tracking_uri: str | None) -> StudyContext:
    """The task and size a stored study ran with, without its spec.

    The task is the one the study recorded (its ``spec`` attribute); epochs
    and batch size come from its MLflow parent run in ``tracking_uri``,
    else from its trials' epochs (0 when none completed) and the task's
    batch size.

    Raises:
        KeyError: the study recorded no task (it was not run by gdbench).
    """
    import gdbench.tasks  # keeps TensorFlow out of start-up

    recorded = json.loads(study.user_attrs[SPEC_ATTR])
    params = _stored_params(study.study_name, tracking_uri)
    task = gdbench.tasks.get(recorded["task"], **{
        key: _recorded_option(value) for key, value in recorded["task_options"].items()})
    ran = [trial.user_attrs.get(EPOCHS_RUN_ATTR) or 0 for trial in counted_trials(study)
           if trial.state == TrialState.COMPLETE]
    epochs = int(params["epochs"]) if "epochs" in params else max(ran, default=0)
    batch_size = (int(params["batch_size"]) if "batch_size" in params
                  else task.resolve_batch_size(None))
    return StudyContext(task=task, epochs=epochs, batch_size=batch_size,
                        steps_per_epoch=task.steps_per_epoch(batch_size), study_params={})


def _recorded_option(value: Any) -> Any:
    """A task option as the study recorded it (:func:`~gdbench.study.plan.build.trackable`): a list
    or a table was kept as its JSON text."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _stored_params(study_name: str, tracking_uri: str | None) -> dict[str, str]:
    if tracking_uri is None:
        return {}
    from gdbench.tracking import StoredStudy  # keeps TensorFlow out of start-up

    return StoredStudy(tracking_uri, study_name).params()
