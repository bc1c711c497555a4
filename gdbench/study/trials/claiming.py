"""Claiming a study's trials: under the study's lock, within a rule of what to take (a
study's budget, a confirmation's missing reruns), each claimed trial beating while it runs.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable, Sequence

import optuna
import sqlalchemy
from optuna.trial import TrialState

from gdbench.study.trials import records
from gdbench.study.trials.storage import ClaimLock, budget_used

__all__ = ["Claimer", "Heartbeat", "budgeted"]

logger = logging.getLogger(__name__)


def budgeted(study: optuna.Study, budget: int,
             ask: Callable[[int], list[optuna.Trial]]) -> Callable[[int], list[optuna.Trial] | None]:
    """A :class:`Claimer`'s ``take`` for a study's trials: ``ask(count)`` within ``budget``
    (the trials that use it up, counted across processes); ``[]`` when the budget is used
    up but trials still run (a retry may come), ``None`` once none runs."""

    def take(count: int) -> list[optuna.Trial] | None:
        trials = study.get_trials(deepcopy=False)
        free = budget - budget_used(trials)
        if free <= 0:
            running = any(trial.state == TrialState.RUNNING for trial in trials)
            return [] if running else None
        return ask(min(free, count))

    return take


class Claimer:
    """Claims a study's trials under its lock, so that processes together take each once.

    Args:
        study: the study, opened on a heartbeat storage (:func:`open_storage`).
        storage: that storage.
        take: ``take(count)`` → up to that many trials to run, or ``[]`` when none is
            free now but trials still run, or ``None`` when the work is done; called
            under the lock (a study's trials within their budget: :func:`budgeted`).
        heartbeat_interval: seconds between two heartbeats of a claimed trial.
    """

    def __init__(self, study: optuna.Study, storage: optuna.storages.RDBStorage,
                 take: Callable[[int], list[optuna.Trial] | None],
                 heartbeat_interval: float) -> None:
        self.study = study
        self.storage = storage
        self.take = take
        self.heartbeat_interval = heartbeat_interval
        self.lock = ClaimLock(storage, study.study_name)

    def claim(self, count: int) -> list[optuna.Trial] | None:
        """Under the lock: fail the stale trials, then take up to ``count`` trials.

        Returns:
            The trials taken, their first heartbeat recorded; ``[]`` or ``None`` as
            ``take`` says.
        """
        with self.lock.held():
            # A claim writes its trials' first heartbeat before it lets the lock go, so
            # a running trial with none lost its process before that write: it gets
            # one now, and is taken for dead once it is ``grace_period`` old.
            records.record_heartbeats(self.storage, records.running_without_heartbeat(
                self.storage, records.study_id(self.study)))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(self.study)
            with warnings.catch_warnings():
                # Optuna expects heartbeats with Study.optimize; this loop records its own.
                warnings.filterwarnings("ignore", message="Heartbeat of storage")
                claimed = self.take(count)
            if claimed:
                # Before the lock is released: a trial without any heartbeat is never stale.
                records.record_heartbeats(self.storage,
                                          [records.trial_id(trial) for trial in claimed])
        return claimed

    def beating(self, trials: Sequence[optuna.Trial]) -> Heartbeat:
        """The heartbeat of ``trials`` while the block runs."""
        return Heartbeat(self.storage, [records.trial_id(trial) for trial in trials],
                         self.heartbeat_interval)


class Heartbeat:
    """Records the heartbeat of some trials every interval, in a thread, until the block ends.

    Args:
        storage: the trials' storage.
        trial_ids: their storage ids.
        interval_s: seconds between two beats.
    """

    def __init__(self, storage: optuna.storages.RDBStorage, trial_ids: Sequence[int],
                 interval_s: float) -> None:
        self.storage = storage
        self.trial_ids = tuple(trial_ids)
        self.interval_s = interval_s
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.beat, name="gdbench-heartbeat", daemon=True)

    def beat(self) -> None:
        while not self.stop.wait(self.interval_s):
            try:
                records.record_heartbeats(self.storage, self.trial_ids)
            except sqlalchemy.exc.SQLAlchemyError as error:
                # A storage that is briefly away must not end the trials; a long
                # absence makes them stale, and they are run again.
                logger.warning("heartbeat of %d trials not recorded: %s", len(self.trial_ids),
                               error)

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self.thread.join()
