"""The one cycle of claimed trials, for a study's trials and a confirmation's reruns alike.

Claim under the study's lock (stale trials failed first, the claimed ones given their
first heartbeat before the lock is released), keep their heartbeat while they train,
tell Optuna how each ended, and, on an interrupt, end every claimed trial not told
yet with the signal named before the interrupt goes on. What is claimed, how it
trains and what an interrupted trial becomes are the caller's.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Mapping
from typing import Any

import keras
import optuna
from optuna.trial import FrozenTrial, TrialState

from gdbench.study.errors import Interrupted
from gdbench.study.trials import claiming, records

__all__ = ["run_cycle", "signal_name", "tell"]


def signal_name(interrupt: KeyboardInterrupt) -> str:
    """The signal an interrupt stands for: its own, or SIGINT (Ctrl-C)."""
    return interrupt.signal_name if isinstance(interrupt, Interrupted) else "SIGINT"


def run_cycle(claimer: claiming.Claimer, count: int,
              train: Callable[[list[optuna.Trial]], None], *,
              interrupted: Callable[[list[optuna.Trial], str], None],
              after_claim: Callable[[], None] = lambda: None,
              idle: Callable[[], None] = lambda: None, poll_interval_s: float = 1.0) -> None:
    """Claim up to ``count`` trials and train them, until the claimer says the work is done.

    Args:
        claimer: claims trials under the study's lock and keeps their heartbeat.
        count: trials claimed at once.
        train: trains and tells the claimed trials.
        interrupted: called with the claimed trials and the signal's name (``SIGTERM``)
            when an interrupt stops them, to fail them with the caller's reason; the
            interrupt is raised again after it.
        after_claim: called after every claim (stale trials were failed in it).
        idle: called before waiting while other processes' trials run.
        poll_interval_s: seconds between two claims while other processes' trials run.
    """
    while True:
        claimed = claimer.claim(count)
        after_claim()
        if claimed is None:
            return
        if not claimed:
            idle()
            time.sleep(poll_interval_s)
            continue
        try:
            with claimer.beating(claimed):
                train(claimed)
        except KeyboardInterrupt as interrupt:
            interrupted(claimed, signal_name(interrupt))
            raise
        # Keras's global state and TensorFlow's kernel cache, then every trial's
        # garbage (its model, optimizer and graphs).
        keras.backend.clear_session(free_memory=False)
        gc.collect()


def tell(study: optuna.Study, rdb: optuna.storages.RDBStorage, trial: optuna.Trial | Any,
         state: TrialState, value: float | None, user_attrs: Mapping[str, Any]
         ) -> FrozenTrial | None:
    """Record ``trial``'s attributes, then tell Optuna how it ended.

    Returns:
        The trial as told; ``None`` when another process took it for dead meanwhile
        (it is no longer running, and the result is dropped).
    """
    records.write_trials(study, rdb, {records.trial_id(trial): (user_attrs, {}, None, None)})
    try:
        # By number: a population's trials may be drawn ahead (asking.DrawnTrial).
        return (study.tell(trial.number, value) if state == TrialState.COMPLETE
                else study.tell(trial.number, state=state))
    except (optuna.exceptions.UpdateFinishedTrialError, ValueError) as error:
        if "finished" not in str(error).lower():
            raise
        return None
