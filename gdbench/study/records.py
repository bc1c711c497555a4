"""Trials' results written to Optuna in bulk: one transaction for a whole population batch.

Through ``trial.set_user_attr``, ``trial.report`` and ``study.tell``, Optuna
writes each attribute, each report and each end in a transaction of its own,
and reads the whole trial back three times to tell it: about 20 ms a trial on
SQLite, where a population trains a trial in a few microseconds. A batch knows
every value of its trials at once, and none of them is pruned mid-run: its
attributes, reports, values and ends are written together here, in Optuna's
own rows (its table models), as those calls write them, and the sampler sees
each trial's end first (``after_trial``), as ``study.tell`` shows it.

A trial that is no longer running when its batch is written (another process
took it for dead) is left as it is.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from typing import Any, Mapping, Sequence

import optuna
import sqlalchemy
from optuna.trial import FrozenTrial, TrialState

from gdbench.study import session

__all__ = ["Outcome", "TrialValues", "told_trials", "write_trials"]

#: A trial's values: its user attributes, its reports by step, and, to end it, its
#: final state and objective (``None`` keeps it running).
TrialValues = tuple[Mapping[str, Any], Mapping[int, float], TrialState | None, float | None]


@dataclasses.dataclass
class Outcome:
    """How a trial ended, with what Optuna keeps of it beyond its state and value.

    Attributes:
        trial: the trial.
        state: its final state.
        value: its objective, for a complete trial.
        reason: why it failed or was pruned.
        epochs_run: the epochs it trained.
        intermediate_values: its reports by step, not yet written (a population's).
    """

    trial: optuna.Trial
    state: TrialState
    value: float | None = None
    reason: str | None = None
    epochs_run: int | None = None
    intermediate_values: Mapping[int, float] = dataclasses.field(default_factory=dict)

    def values(self) -> TrialValues:
        """What :func:`write_trials` writes of it, the end included."""
        return self.user_attrs(), self.intermediate_values, self.state, self.value

    def user_attrs(self) -> dict[str, Any]:
        attrs: dict[str, Any] = {}
        if self.epochs_run is not None:
            attrs[session.EPOCHS_RUN_ATTR] = self.epochs_run
        if self.reason:
            pruned = self.state == TrialState.PRUNED
            attrs[session.PRUNE_REASON_ATTR if pruned else session.FAIL_REASON_ATTR] = self.reason
        return attrs


def write_trials(study: optuna.Study, storage: optuna.storages.RDBStorage,
                 values: Mapping[int, TrialValues]) -> set[int]:
    """Write running trials' values, and end those given a state, in one transaction.

    Args:
        study: the trials' study (whose sampler sees each end first).
        storage: its storage.
        values: trial id → its values (:data:`TrialValues`).

    Returns:
        The ids of the trials written; the others were no longer running.
    """
    from optuna.storages._rdb import models

    ending = {trial_id for trial_id, value in values.items() if value[2] is not None}
    if ending:
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if trial._trial_id in ending:
                _, _, state, objective = values[trial._trial_id]
                study.sampler.after_trial(study, trial, state,
                                          None if objective is None else [objective])
    session = storage.scoped_session()
    try:
        running = {row[0] for row in session.query(models.TrialModel.trial_id).filter(
            models.TrialModel.trial_id.in_(list(values)),
            models.TrialModel.state == TrialState.RUNNING).with_for_update()}
        attributes, reports, objectives = [], [], []
        for trial_id in running:
            user_attrs, intermediate, state, objective = values[trial_id]
            attributes += [{"trial_id": trial_id, "key": key, "value_json": json.dumps(value)}
                           for key, value in user_attrs.items()]
            for step, value in intermediate.items():
                stored, kind = models.TrialIntermediateValueModel.intermediate_value_to_stored_repr(
                    value)
                reports.append({"trial_id": trial_id, "step": step, "intermediate_value": stored,
                                "intermediate_value_type": kind})
            if objective is not None:
                stored, kind = models.TrialValueModel.value_to_stored_repr(objective)
                objectives.append({"trial_id": trial_id, "objective": 0, "value": stored,
                                   "value_type": kind})
        # A retry starts with its failed trial's attributes: they are replaced.
        session.query(models.TrialUserAttributeModel).filter(
            models.TrialUserAttributeModel.trial_id.in_(running),
            models.TrialUserAttributeModel.key.in_({row["key"] for row in attributes}),
        ).delete(synchronize_session=False)
        for model, rows in ((models.TrialUserAttributeModel, attributes),
                            (models.TrialIntermediateValueModel, reports),
                            (models.TrialValueModel, objectives)):
            if rows:
                session.execute(sqlalchemy.insert(model), rows)
        now = datetime.datetime.now()
        for state in {values[trial_id][2] for trial_id in running & ending}:
            session.query(models.TrialModel).filter(
                models.TrialModel.trial_id.in_(
                    [trial_id for trial_id in running & ending if values[trial_id][2] == state]),
            ).update({"state": state, "datetime_complete": now}, synchronize_session=False)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
    return running


def told_trials(study: optuna.Study, trial_ids: Sequence[int]) -> list[FrozenTrial]:
    """The frozen trials of ``trial_ids``, read in one go, in their order."""
    wanted = set(trial_ids)
    found = {trial._trial_id: trial for trial in study.get_trials(deepcopy=False)
             if trial._trial_id in wanted}
    return [found[trial_id] for trial_id in trial_ids]
