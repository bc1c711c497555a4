"""Pruning a trial trained one at a time: a Keras callback that reports each epoch to Optuna."""

from __future__ import annotations

import math
from typing import Any

import keras
import optuna

from gdbench.study.keys import pruned_reason

__all__ = ["PruningCallback"]


class PruningCallback(keras.callbacks.Callback):
    """Reports the objective to Optuna after every epoch; raises `optuna.TrialPruned` on demand.

    A non-finite value is not reported: the task stops training on it, and
    the loop fails the trial.

    Args:
        trial: the Optuna trial.
        metric: the epoch-log key of the objective (``"val_loss"``).

    Attributes:
        epochs_seen: epochs that ended so far.
    """

    def __init__(self, trial: optuna.Trial, metric: str) -> None:
        super().__init__()
        self.trial = trial
        self.metric = metric
        self.epochs_seen = 0

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epochs_seen = epoch + 1
        value = (logs or {}).get(self.metric)
        if value is None or not math.isfinite(value):
            return
        self.trial.report(float(value), epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(pruned_reason(epoch, self.metric, value))
