"""How a claimed trial ended, as the trial loop tells Optuna (through :mod:`records`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from gdbench.study import keys
from gdbench.study.trials.records import TrialValues

__all__ = ["Outcome", "divergence_reason", "pruned_reason"]


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
        target_reached: whether a time-to-target trial reached the target.
    """

    trial: optuna.Trial
    state: TrialState
    value: float | None = None
    reason: str | None = None
    epochs_run: int | None = None
    intermediate_values: Mapping[int, float] = dataclasses.field(default_factory=dict)
    target_reached: bool | None = None

    def values(self) -> TrialValues:
        """What :func:`write_trials` writes of it, the end included."""
        return self.user_attrs(), self.intermediate_values, self.state, self.value

    def user_attrs(self) -> dict[str, Any]:
        attrs: dict[str, Any] = {}
        if self.epochs_run is not None:
            attrs[keys.EPOCHS_RUN_ATTR] = self.epochs_run
        if self.target_reached is not None:
            attrs[keys.TARGET_REACHED_ATTR] = self.target_reached
        if self.reason:
            pruned = self.state == TrialState.PRUNED
            attrs[keys.PRUNE_REASON_ATTR if pruned else keys.FAIL_REASON_ATTR] = self.reason
        return attrs


def divergence_reason(history: Mapping[str, Sequence[float]], metric: str) -> str | None:
    """Why a trial's history is unusable: its first non-finite loss or objective; else ``None``."""
    for key in dict.fromkeys(("loss", metric)):
        values = np.asarray(history.get(key, ()), dtype=float)
        unusable = np.flatnonzero(~np.isfinite(values))
        if unusable.size:
            epoch = int(unusable[0])
            return f"{key} diverged: {float(values[epoch])} at epoch {epoch + 1}"
    return None
