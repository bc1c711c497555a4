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

This is the one module that reads Optuna's private names (a trial's storage id, a study's
storage and id, the RDB table models): the rest of gdbench goes through the small
functions below, so that an Optuna upgrade changes this module alone.

New trials are created the same way (:func:`create_trials`): a batch's trials,
their parameters and first heartbeats in one transaction, where ``study.ask``
and ``trial.suggest_*`` take one for each trial and one for each parameter and
read each trial back.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
from collections.abc import Iterator
from typing import Any, Mapping, Sequence

import optuna
import sqlalchemy
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

__all__ = [
    "NewTrial", "TrialValues", "create_trials", "new_trial", "record_heartbeats",
    "running_without_heartbeat", "set_running", "storage_of", "study_id", "told_trials",
    "trial_by_id", "trial_id", "write_ended_attrs", "write_trials",
]

#: A trial's values: its user attributes, its reports by step, and, to end it, its
#: final state and objective (``None`` keeps it running).
TrialValues = tuple[Mapping[str, Any], Mapping[int, float], TrialState | None, float | None]


def trial_id(trial: optuna.Trial | FrozenTrial | Any) -> int:
    """A trial's id in its storage (unique across studies, unlike its number)."""
    return trial._trial_id


def storage_of(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage ``study`` reads and writes."""
    return study._storage


def study_id(study: optuna.Study) -> int:
    """``study``'s id in its storage."""
    return study._study_id


def trial_by_id(study: optuna.Study, trial_id: int) -> optuna.Trial:
    """The trial of ``study`` stored as ``trial_id``, to report to, prune and tell."""
    return optuna.Trial(study, trial_id)


def new_trial(study: optuna.Study) -> optuna.Trial:
    """A new running trial of ``study``, created without asking its sampler."""
    return optuna.Trial(study, study._storage.create_new_trial(study._study_id))


def set_running(study: optuna.Study, trial: FrozenTrial) -> bool:
    """Take a waiting trial (set it running); false when another process took it first."""
    return study._storage.set_trial_state_values(trial._trial_id, state=TrialState.RUNNING)


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
    # The sampler's ``after_trial`` takes the running trials, read back: only for a sampler
    # that has one.
    if ending and type(study.sampler).after_trial is not optuna.samplers.BaseSampler.after_trial:
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if trial._trial_id in ending:
                _, _, state, objective = values[trial._trial_id]
                study.sampler.after_trial(study, trial, state,
                                          None if objective is None else [objective])
    with _transaction(storage) as session:
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
        # A key written before (the setup, at the trial's start) is replaced.
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
    return running


def write_ended_attrs(study: optuna.Study, trial_id: int, user_attrs: Mapping[str, Any]) -> None:
    """Write user attributes of a trial of ``study`` (on an RDB storage) that has ended,
    replacing those of the same keys.

    Optuna writes none once a trial is finished; a trial that its storage failed for a
    lost heartbeat gets its reason so.
    """
    from optuna.storages._rdb import models

    # Optuna wraps an RDB storage in a cache, which holds it as its backend.
    storage = getattr(study._storage, "_backend", study._storage)
    with _transaction(storage) as session:
        session.query(models.TrialUserAttributeModel).filter(
            models.TrialUserAttributeModel.trial_id == trial_id,
            models.TrialUserAttributeModel.key.in_(list(user_attrs)),
        ).delete(synchronize_session=False)
        session.execute(sqlalchemy.insert(models.TrialUserAttributeModel), [
            {"trial_id": trial_id, "key": key, "value_json": json.dumps(value)}
            for key, value in user_attrs.items()])


@dataclasses.dataclass
class NewTrial:
    """A trial to create: its parameters (name → (distribution, value)), its state
    (RUNNING, with a first heartbeat, or WAITING) and its attributes."""

    params: Mapping[str, tuple[BaseDistribution, Any]]
    state: TrialState = TrialState.RUNNING
    user_attrs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    system_attrs: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def create_trials(storage: optuna.storages.RDBStorage, study_id: int,
                  new: Sequence[NewTrial]) -> list[tuple[int, int]]:
    """Create trials with their parameters, attributes and heartbeats, in one transaction.

    Args:
        storage: the study's storage.
        study_id: the study's storage id.
        new: the trials.

    Returns:
        Each new trial's (storage id, number), in the order of ``new``.
    """
    from optuna.storages._rdb import models

    with _transaction(storage) as session:
        # As Optuna creates a trial: the study's row held, so that numbers stay unique.
        models.StudyModel.find_or_raise_by_id(study_id, session, for_update=True)
        first = session.query(sqlalchemy.func.count(models.TrialModel.trial_id)).filter(
            models.TrialModel.study_id == study_id).scalar()
        now = datetime.datetime.now()
        trials = [models.TrialModel(
            study_id=study_id, number=first + index, state=trial.state,
            datetime_start=now if trial.state == TrialState.RUNNING else None)
            for index, trial in enumerate(new)]
        session.add_all(trials)
        session.flush()
        params = [{"trial_id": row.trial_id, "param_name": name,
                   "param_value": distribution.to_internal_repr(value),
                   "distribution_json": optuna.distributions.distribution_to_json(distribution)}
                  for row, trial in zip(trials, new)
                  for name, (distribution, value) in trial.params.items()]
        user_attrs = [{"trial_id": row.trial_id, "key": key, "value_json": json.dumps(value)}
                      for row, trial in zip(trials, new) for key, value in trial.user_attrs.items()]
        system_attrs = [{"trial_id": row.trial_id, "key": key, "value_json": json.dumps(value)}
                        for row, trial in zip(trials, new)
                        for key, value in trial.system_attrs.items()]
        heartbeats = [{"trial_id": row.trial_id} for row in trials
                      if row.state == TrialState.RUNNING]
        for model, rows in ((models.TrialParamModel, params),
                            (models.TrialUserAttributeModel, user_attrs),
                            (models.TrialSystemAttributeModel, system_attrs),
                            (models.TrialHeartbeatModel, heartbeats)):
            if rows:
                session.execute(sqlalchemy.insert(model), rows)
        created = [(row.trial_id, row.number) for row in trials]
    return created


def record_heartbeats(storage: optuna.storages.RDBStorage, trial_ids: Sequence[int]) -> None:
    """Record the heartbeat of trials, now, in one transaction (as ``record_heartbeat`` does
    for one trial)."""
    from optuna.storages._rdb import models

    if not trial_ids:
        return
    with _transaction(storage) as session:
        beating = {row[0] for row in session.query(models.TrialHeartbeatModel.trial_id).filter(
            models.TrialHeartbeatModel.trial_id.in_(trial_ids))}
        if beating:
            session.query(models.TrialHeartbeatModel).filter(
                models.TrialHeartbeatModel.trial_id.in_(beating),
            ).update({"heartbeat": sqlalchemy.func.now()}, synchronize_session=False)
        new = [{"trial_id": trial_id} for trial_id in trial_ids if trial_id not in beating]
        if new:
            session.execute(sqlalchemy.insert(models.TrialHeartbeatModel), new)


def running_without_heartbeat(storage: optuna.storages.RDBStorage, study_id: int) -> list[int]:
    """The ids of the study's running trials that have no heartbeat at all.

    Optuna takes a trial for dead only by its heartbeat's age, so such a
    trial would stay running for ever: one whose process ended after creating
    it and before its first heartbeat was written (a full disk, a kill).
    """
    from optuna.storages._rdb import models

    with _transaction(storage) as session:
        rows = session.query(models.TrialModel.trial_id).outerjoin(
            models.TrialHeartbeatModel,
            models.TrialHeartbeatModel.trial_id == models.TrialModel.trial_id,
        ).filter(models.TrialModel.study_id == study_id,
                 models.TrialModel.state == TrialState.RUNNING,
                 models.TrialHeartbeatModel.trial_id.is_(None))
        return [row[0] for row in rows]


def told_trials(study: optuna.Study, trial_ids: Sequence[int]) -> list[FrozenTrial]:
    """The frozen trials of ``trial_ids``, read in one go, in their order."""
    wanted = set(trial_ids)
    found = {trial._trial_id: trial for trial in study.get_trials(deepcopy=False)
             if trial._trial_id in wanted}
    return [found[trial_id] for trial_id in trial_ids]


@contextlib.contextmanager
def _transaction(storage: optuna.storages.RDBStorage) -> Iterator[sqlalchemy.orm.Session]:
    """A session of ``storage``, committed at the end of the block, rolled back on error."""
    session = storage.scoped_session()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
