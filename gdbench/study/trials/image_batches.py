"""Image trials trained as one population, each tracked, pruned and told as a trial of its own.

The image population engine
(:func:`~gdbench.tasks.image_population.fit_image_population`) trains the
members of a group in one stacked model and calls back after every epoch
with every member's logs. Each member stays one Optuna trial, one MLflow
child run and one TensorBoard HParams session, as if it had trained alone:

- every epoch, each active member's logs (loss, accuracy, val_loss,
  val_accuracy, learning_rate) go to its own run and session, as
  :class:`~gdbench.tracking.TrackingCallback` logs a single trial's; weight
  histograms are left out for members (a single trial has them);
- every epoch, each active member's objective is reported to Optuna, all
  members' reports in one write, and the pruner is asked about each; a
  pruned member stops after this epoch, ends PRUNED with the reason a single
  trial gives, and is told at once (the epoch's pruned members in one write);
- a member whose loss turns non-finite stops alone and fails with the
  reason a single trial gives (:func:`~gdbench.study.trials.outcomes.divergence_reason`);
- at the end, the other members are told together, each with its test metrics.

An interrupt leaves the loop's bookkeeping as a toy batch does: members told
(pruned) stay told, members recorded in the trackers are told as they ended,
the others fail with the signal named and are queued again.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import optuna
from optuna.trial import TrialState

from gdbench.study.keys import pruned_reason
from gdbench.study.plan.build import TrialSetup
from gdbench.study.spec import objectives
from gdbench.study.trials import batches, records
from gdbench.study.trials.outcomes import Outcome, divergence_reason

if TYPE_CHECKING:
    from gdbench.study.spec.model import StudySpec
    from gdbench.study.trials.session import StudyContext
    from gdbench.tasks.image_population import EpochReport, ImagePopulationResult

__all__ = ["ImagePopulation", "PopulationLoop", "train_image_group"]


class PopulationLoop(Protocol):
    """What an image population needs of the trial loop that claimed its members
    (:class:`gdbench.study.trials.loop.TrialLoop`)."""

    spec: StudySpec
    study: optuna.Study
    context: StudyContext
    metric: str
    callbacks: Sequence[Any]

    def start_tracking(self, trial: optuna.Trial, setup: TrialSetup | None, *,
                       record: bool = True) -> Any: ...

    def is_tracking(self, trial: optuna.Trial) -> bool: ...

    def log_epoch(self, trial: optuna.Trial, epoch: int, logs: dict[str, float]) -> None: ...

    def write_reports(self, reports: dict[optuna.Trial, dict[int, float]]) -> None: ...

    def end_tracking(self, outcome: Outcome, *, metrics: dict[str, float] | None = None) -> None: ...

    def finish(self, trial: optuna.Trial, state: str, *, reason: str | None = None) -> None: ...

    def tell_all(self, outcomes: Sequence[Outcome]) -> None: ...


def train_image_group(loop: PopulationLoop, members: Sequence[tuple[optuna.Trial, TrialSetup]]) -> None:
    """Train image trials sharing optimizer and schedule as one population; track, prune
    and tell each as a trial of its own.

    Args:
        loop: the trial loop the members were claimed by (their setups recorded).
        members: each member's trial and setup.
    """
    for trial, setup in members:
        loop.start_tracking(trial, setup, record=False)
    population = ImagePopulation(loop, members)
    try:
        result = batches.fit_image_group(loop.context, [setup for _, setup in members],
                                         population.on_epoch)
    except Exception as error:  # noqa: BLE001 - one broken batch must not end the study
        population.fail(f"{type(error).__name__}: {error}")
        return
    population.finish(result)


class ImagePopulation:
    """The bookkeeping of one image population: what each epoch tells the trackers and Optuna.

    Args:
        loop: the trial loop (its trackers, study and storage).
        members: each member's trial and setup, in the engine's order.
    """

    def __init__(self, loop: PopulationLoop, members: Sequence[tuple[optuna.Trial, TrialSetup]]) -> None:
        self.loop = loop
        self.trials = [trial for trial, _ in members]
        self.metric = loop.metric
        self.prunes = not isinstance(loop.study.pruner, optuna.pruners.NopPruner)

    def on_epoch(self, report: EpochReport) -> np.ndarray | None:
        """Log each active member's epoch, report its objective, prune those the pruner names.

        Returns:
            The members to stop after this epoch (bool [K]), ``None`` when none is pruned.
        """
        epoch = report.epoch
        reported: dict[int, float] = {}
        for index in np.flatnonzero(np.asarray(report.active)):
            trial = self.trials[index]
            logs = {key: float(values[index]) for key, values in report.logs.items()}
            self.loop.log_epoch(trial, epoch, logs)
            value = logs.get(self.metric)
            # A non-finite value is not reported: the member stops on it and fails.
            if value is not None and math.isfinite(value):
                reported[int(index)] = value
        if not reported:
            return None
        self.loop.write_reports({self.trials[index]: {epoch: value}
                                 for index, value in reported.items()})
        pruned = self.pruned(list(reported))
        if not pruned:
            return None
        outcomes = []
        for index in pruned:
            trial, value = self.trials[index], reported[index]
            # Optuna keeps a pruned trial's last report as its value.
            outcome = Outcome(trial, TrialState.PRUNED, value,
                              pruned_reason(epoch, self.metric, value), epoch + 1)
            self.loop.end_tracking(outcome)
            outcomes.append(outcome)
        self.tell(outcomes)
        stop = np.zeros(len(self.trials), dtype=bool)
        stop[pruned] = True
        return stop

    def pruned(self, indices: Sequence[int]) -> list[int]:
        """The members of ``indices`` the pruner stops, each judged on its reports as stored."""
        if not self.prunes:
            return []
        study = self.loop.study
        stored = records.told_trials(study, [records.trial_id(self.trials[index]) for index in indices])
        return [index for index, trial in zip(indices, stored)
                if trial.state == TrialState.RUNNING and study.pruner.prune(study, trial)]

    def finish(self, result: ImagePopulationResult) -> None:
        """Track and tell the members not pruned: complete, or failed where they diverged."""
        outcomes = []
        for index, trial in enumerate(self.trials):
            if not self.loop.is_tracking(trial):
                continue
            fit = result.trial(index)
            epochs_run = len(fit.history["loss"])
            reason = divergence_reason(fit.history, self.metric)
            if reason is None and result.status[index] != "complete":
                reason = f"training stopped ({result.status[index]}) at epoch {epochs_run}"
            objective = self.loop.spec.objective
            value = None if reason else objectives.objective_value(
                objective, fit.history, fit.steps_per_epoch, epochs=self.loop.context.epochs)
            outcome = Outcome(trial, TrialState.FAIL if reason else TrialState.COMPLETE,
                              value, reason, epochs_run, target_reached=None if reason else
                              objectives.target_reached(objective, fit.history))
            self.loop.end_tracking(outcome, metrics=None if reason else fit.metrics)
            outcomes.append(outcome)
        self.tell(outcomes)

    def fail(self, reason: str) -> None:
        """Fail every member not told yet for ``reason`` (the engine raised)."""
        for trial in self.trials:
            if self.loop.is_tracking(trial):
                self.loop.finish(trial, "FAIL", reason=reason)

    def tell(self, outcomes: Sequence[Outcome]) -> None:
        """Tell Optuna how members ended: in one write, or one at a time when the study has
        callbacks (a callback may stop the study between two trials)."""
        if not outcomes:
            return
        for group in ([[outcome] for outcome in outcomes] if self.loop.callbacks else [outcomes]):
            self.loop.tell_all(group)
