"""The one trial loop: claim trials, train them, tell Optuna, track them; until the study is done.

``gdbench run`` and ``gdbench worker`` run the same :class:`TrialLoop`; how
trials are claimed (under the study's lock, within the budget, with
heartbeats) is passed in as a :class:`~gdbench.study.trials.claiming.Claimer`.

A study with ``population = true`` runs by batches: up to
``trials_per_batch`` trials are claimed at once, grouped by optimizer and
schedule (:mod:`gdbench.study.trials.batches`), and each group trains as one
population: a toy task's in one vectorized run, recorded whole at its end;
an image task's in one stacked model, each member tracked, reported to
Optuna and pruned epoch by epoch as a trial of its own
(:mod:`gdbench.study.trials.image_batches`). Otherwise trials run one at a time
through ``Task.fit``, with a Keras callback that reports the objective to
Optuna every epoch and raises `optuna.TrialPruned` when the pruner says so.

A trial ends COMPLETE, PRUNED, or FAIL for a reason of its own (its loss
diverged, training raised); the reason is the same text in Optuna (user
attribute ``fail_reason``), MLflow (tag ``gdbench.reason``) and TensorBoard
(text ``reason``). A trial stopped by an interrupt is no result: it fails with
the signal named and is queued again with the same hyperparameters.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

import gdbench.tasks
from gdbench.study import keys
from gdbench.study.plan import build
from gdbench.study.plan.build import TrialSetup
from gdbench.study.spec import objectives
from gdbench.study.spec.model import StudySpec
from gdbench.study.trials import asking, batches, claiming, cycle, image_batches, records, storage
from gdbench.study.trials.outcomes import Outcome, divergence_reason
from gdbench.study.trials.progress import Progress
from gdbench.study.trials.pruning import PruningCallback
from gdbench.study.trials.session import StudyContext
from gdbench.study.trials.stored import trial_reason
from gdbench.tracking import StudyTracker, TrialTracker

__all__ = ["StudyCallback", "TrialLoop", "objects_frozen", "run_trials"]

logger = logging.getLogger(__name__)

#: Optuna callbacks: called with the study and each trial once it is told.
StudyCallback = Callable[[optuna.Study, FrozenTrial], None]


class TrialLoop:
    """Claims, trains, tells and tracks trials until the study holds its budget of finished ones.

    Args:
        spec: the study spec.
        study: the Optuna study.
        tracker: the study's tracker.
        context: the task and run size every trial shares.
        claimer: how trials are claimed (:class:`~gdbench.study.trials.claiming.Claimer`).
        stale: the trials the storage found dead, whose tracking this loop closes.
        progress: the progress bar.
        callbacks: called as ``callback(study, frozen_trial)`` after each trial is told.
        poll_interval_s: seconds between two looks while other processes' trials run.
    """

    def __init__(self, spec: StudySpec, study: optuna.Study, tracker: StudyTracker,
                 context: StudyContext, claimer: claiming.Claimer, stale: storage.StaleTrials,
                 progress: Progress, *, callbacks: Sequence[StudyCallback] = (),
                 poll_interval_s: float = 1.0) -> None:
        self.spec = spec
        self.study = study
        self.tracker = tracker
        self.context = context
        self.claimer = claimer
        self.stale = stale
        self.progress = progress
        self.callbacks = tuple(callbacks)
        self.poll_interval_s = poll_interval_s
        self.metric = spec.objective.metric
        self.setups: dict[int, TrialSetup] = {}
        self.open: dict[int, TrialTracker] = {}
        self.tracked: set[int] = set()
        self.told: set[int] = set()
        # Trials recorded whole in the trackers (a population's), not yet told.
        self.recorded: dict[int, Outcome] = {}

    # -- the loop -----------------------------------------------------------

    def run(self) -> None:
        """Run trials until the budget is used up and no trial of the study runs any more."""
        try:
            cycle.run_cycle(self.claimer, self.spec.trials_per_batch if self.spec.population else 1,
                            self.train_claimed, interrupted=self.interrupted,
                            after_claim=self.close_stale_trials, idle=self.progress.refresh,
                            poll_interval_s=self.poll_interval_s)
        finally:
            self.progress.close()

    def train_claimed(self, claimed: list[optuna.Trial]) -> None:
        if self.spec.population:
            self.run_batch(claimed)
        else:
            self.run_single(claimed[0])

    def interrupted(self, claimed: Sequence[optuna.Trial], signal_name: str) -> None:
        """Fail the claimed trials not yet told, with the signal named, and queue them again
        (Optuna's writes in one transaction each, so that the process ends at once)."""
        reason = keys.interrupted_reason(signal_name)
        pending = [trial for trial in claimed if trial.number not in self.told]
        values = {}
        for trial in pending:
            setup = self.setups.get(trial.number)
            attrs = {} if setup is None else {keys.HYPERPARAMETERS_ATTR: setup.hyperparameters(),
                                              keys.SETUP_ATTR: setup.to_json()}
            if trial.number in self.recorded:
                # Trained and recorded before the interrupt: told as it ended.
                user_attrs, reports, state, value = self.recorded[trial.number].values()
                values[records.trial_id(trial)] = ({**attrs, **user_attrs}, reports, state, value)
                continue
            if trial.number in self.open:
                self.open.pop(trial.number).finish("FAIL", reason=reason)
            elif trial.number not in self.tracked:
                self.tracker.record_trial(
                    trial.number, self.context.tracked_params(self.spec, attrs.get(
                        keys.HYPERPARAMETERS_ATTR, {})), {}, "FAIL", reason=reason)
            user_attrs, reports, state, value = Outcome(trial, TrialState.FAIL,
                                                        reason=reason).values()
            values[records.trial_id(trial)] = ({**attrs, **user_attrs}, reports, state, value)
        written = records.write_trials(self.study, self.claimer.storage, values)
        self.told.update(trial.number for trial in pending)
        queued = [records.trial_id(trial) for trial in pending
                  if records.trial_id(trial) in written and trial.number not in self.recorded]
        storage.queue_all_again(self.claimer.storage, self.study,
                                records.told_trials(self.study, queued))

    def close_stale_trials(self) -> None:
        """End the MLflow run and TensorBoard session of every trial found dead since last time."""
        self.close_tracking(self.stale.take())

    def close_tracking(self, trials: Sequence[FrozenTrial]) -> None:
        """End the MLflow runs and TensorBoard sessions of dead trials as failed, with the
        reason Optuna holds (:func:`~gdbench.study.trials.stored.trial_reason`)."""
        for trial in trials:
            recorded = trial.user_attrs.get(keys.HYPERPARAMETERS_ATTR, {})
            self.tracker.fail_trial(trial.number, self.context.tracked_params(self.spec, recorded),
                                    trial_reason(trial))

    def close_orphan_runs(self) -> None:
        """End the MLflow runs still RUNNING of finished trials, as the study recorded them.

        A process killed after a trial was told, but before its MLflow writer
        sent the run's end, leaves that run RUNNING; a process that found a
        trial dead, and died before closing its run, leaves that one. The next
        process to end its loop closes both; not this one when the tracking
        store did not take the writes in time (they are deferred, and said so).
        """
        if not self.tracker.flush():
            return
        open_numbers = self.tracker.open_trial_numbers()
        finished = [trial for trial in self.study.get_trials(
            deepcopy=False, states=storage.FINISHED_STATES) if trial.number in open_numbers]
        self.close_tracking([trial for trial in finished if trial.state == TrialState.FAIL
                             and keys.FAIL_REASON_ATTR not in trial.user_attrs])
        for trial in finished:
            if trial.state != TrialState.FAIL or keys.FAIL_REASON_ATTR in trial.user_attrs:
                reason = (trial.user_attrs.get(keys.FAIL_REASON_ATTR)
                          or trial.user_attrs.get(keys.PRUNE_REASON_ATTR))
                self.tracker.end_open_runs(trial.number, trial.state.name, reason)
        self.track_untracked()

    def track_untracked(self) -> None:
        """Give every finished trial without any MLflow run one, from what Optuna holds.

        The journal (:mod:`gdbench.tracking`) keeps the runs of trials that
        finished; a trial whose end was recorded in Optuna while its tracking
        could not be written at all (a full disk failed both) gets a run here:
        its hyperparameters, state, objective value and reason, no curves.
        """
        tracked = self.tracker.tracked_trial_numbers()
        if tracked is None:
            return
        for trial in self.study.get_trials(deepcopy=False, states=storage.FINISHED_STATES):
            if trial.number in tracked:
                continue
            params = self.context.tracked_params(
                self.spec, trial.user_attrs.get(keys.HYPERPARAMETERS_ATTR, {}))
            self.tracker.record_trial(
                trial.number, params, {}, trial.state.name,
                value=trial.value if trial.state == TrialState.COMPLETE else None,
                reason=trial_reason(trial) if trial.state != TrialState.COMPLETE else None)
        self.tracker.flush()

    def tell(self, trial: optuna.Trial, state: TrialState, value: float | None = None,
             reason: str | None = None, epochs_run: int | None = None,
             target_reached: bool | None = None) -> FrozenTrial | None:
        """Tell Optuna how ``trial`` ended; ``None`` when another process took it for dead."""
        outcome = Outcome(trial, state, value, reason, epochs_run, target_reached=target_reached)
        frozen = cycle.tell(self.study, self.claimer.storage, trial, state, value,
                            outcome.user_attrs())
        self.told_one(outcome, frozen is not None, frozen)
        self.progress.refresh()
        return frozen

    def tell_all(self, outcomes: Sequence[Outcome]) -> None:
        """Tell Optuna how trials ended: every value in one write (:mod:`records`)."""
        written = records.write_trials(self.study, self.claimer.storage, {
            records.trial_id(outcome.trial): outcome.values() for outcome in outcomes})
        self.told.update(outcome.trial.number for outcome in outcomes)
        # Read back only for the callbacks: a batch's trials, read, cost more than training.
        frozen = {records.trial_id(trial): trial for trial in
                  records.told_trials(self.study, list(written))} if self.callbacks else {}
        for outcome in outcomes:
            trial_id = records.trial_id(outcome.trial)
            self.told_one(outcome, trial_id in written, frozen.get(trial_id))
        self.progress.refresh()

    def told_one(self, outcome: Outcome, written: bool, frozen: FrozenTrial | None) -> None:
        """After ``outcome`` is told (``written``, else dropped): a warning when it failed or
        was dropped, then the callbacks with the trial as told (``frozen``)."""
        self.told.add(outcome.trial.number)
        if not written:
            logger.warning("trial %d was taken for dead while it ran (its heartbeat was late) "
                           "and queued again; this result is dropped", outcome.trial.number)
            return
        if outcome.state == TrialState.FAIL:
            logger.warning("trial %d failed: %s", outcome.trial.number, outcome.reason)
        for callback in self.callbacks:
            callback(self.study, frozen)

    def record_setups(self, members: Sequence[tuple[optuna.Trial, TrialSetup]]) -> None:
        """Record trials' values and setups in Optuna (one write): a trial found dead
        later is closed, and run again, with them."""
        records.write_trials(self.study, self.claimer.storage, {
            records.trial_id(trial): ({keys.HYPERPARAMETERS_ATTR: setup.hyperparameters(),
                               keys.SETUP_ATTR: setup.to_json()}, {}, None, None)
            for trial, setup in members})

    def start_tracking(self, trial: optuna.Trial, setup: TrialSetup | None, *,
                       record: bool = True) -> TrialTracker:
        """Open ``trial``'s MLflow run and TensorBoard session, its values recorded in Optuna
        (unless ``record`` is false: a batch records its trials' setups together)."""
        values: dict[str, Any] = {}
        if setup is not None:
            values = setup.hyperparameters()
            if record:
                self.record_setups([(trial, setup)])
        tracked = self.tracker.start_trial(
            trial.number, self.context.tracked_params(self.spec, values))
        self.open[trial.number] = tracked
        self.tracked.add(trial.number)
        return tracked

    def is_tracking(self, trial: optuna.Trial) -> bool:
        """Whether ``trial``'s run and session are open (it has not ended in the trackers)."""
        return trial.number in self.open

    def log_epoch(self, trial: optuna.Trial, epoch: int, logs: dict[str, float]) -> None:
        """Log one epoch of an open trial in its run and session."""
        self.open[trial.number].log_epoch(epoch, logs)

    def write_reports(self, reports: Mapping[optuna.Trial, Mapping[int, float]]) -> None:
        """Report trials' objective values by epoch to Optuna, in one write."""
        records.write_trials(self.study, self.claimer.storage, {
            records.trial_id(trial): ({}, dict(values), None, None) for trial, values in reports.items()})

    def end_tracking(self, outcome: Outcome, *, metrics: Mapping[str, float] | None = None) -> None:
        """End an open trial in the trackers as ``outcome`` says; Optuna is told later
        (:meth:`tell_all`), and an interrupt before then tells it from this record."""
        trial = outcome.trial
        value = outcome.value if outcome.state == TrialState.COMPLETE else None
        # Recorded first: an interrupt inside the trackers' end (after the run is
        # journaled, say) still tells Optuna what the trackers were told; a run
        # the interrupt left unwritten is then ended from Optuna's record.
        self.recorded[trial.number] = outcome
        self.open.pop(trial.number).finish(outcome.state.name, value=value, metrics=metrics,
                                           reason=outcome.reason)

    def finish(self, trial: optuna.Trial, state: str, *, value: float | None = None,
               metrics: Mapping[str, float] | None = None, reason: str | None = None,
               epochs_run: int | None = None, target_reached: bool | None = None) -> None:
        """End ``trial`` in the trackers, then in Optuna."""
        # Recorded first, as in end_tracking: an interrupt inside the trackers' end
        # tells Optuna what the trackers were told, not "interrupted".
        self.recorded[trial.number] = Outcome(trial, TrialState[state], value, reason, epochs_run,
                                              target_reached=target_reached)
        self.open.pop(trial.number).finish(state, value=value, metrics=metrics, reason=reason)
        self.tell(trial, TrialState[state], value, reason=reason, epochs_run=epochs_run,
                  target_reached=target_reached)

    # -- one trial at a time (population = false, a warm-up's trials) ---------

    def setup(self, trial: optuna.Trial) -> TrialSetup:
        setup = build.suggest(trial, self.spec, self.context.total_steps)
        self.setups[trial.number] = setup
        return setup

    def run_single(self, trial: optuna.Trial) -> None:
        setup = self.setup(trial)
        self.start_tracking(trial, setup)
        self.train_single(trial, setup)

    def train_single(self, trial: optuna.Trial, setup: TrialSetup) -> None:
        from gdbench.tracking import (
            TrackingCallback,  # keeps TensorFlow out of start-up
        )

        pruning = PruningCallback(trial, self.metric)
        tracked = self.open[trial.number]
        started = time.perf_counter()
        try:
            result = self.context.task.fit(
                setup.build_optimizer(), epochs=self.context.epochs,
                batch_size=self.context.batch_size, callbacks=[TrackingCallback(tracked), pruning],
            )
        except optuna.TrialPruned as pruned:
            self.finish(trial, "PRUNED", reason=str(pruned), epochs_run=pruning.epochs_seen)
            return
        except Exception as error:  # noqa: BLE001 - one broken trial must not end the study
            self.finish(trial, "FAIL", reason=f"{type(error).__name__}: {error}",
                        epochs_run=pruning.epochs_seen)
            return
        reason = divergence_reason(result.history, self.metric)
        epochs_run = len(result.history["loss"])
        if reason is not None:
            self.finish(trial, "FAIL", reason=reason, epochs_run=epochs_run)
            return
        value = objectives.objective_value(
            self.spec.objective, result.history, result.steps_per_epoch,
            (time.perf_counter() - started) / epochs_run, epochs=self.context.epochs)
        self.finish(trial, "COMPLETE", value=value, metrics=result.metrics, epochs_run=epochs_run,
                    target_reached=objectives.target_reached(self.spec.objective, result.history))

    # -- batches through the population engines --------------------------------

    def run_batch(self, trials: Sequence[optuna.Trial | asking.DrawnTrial]) -> None:
        setups = [self.setup(trial) for trial in trials]
        self.record_setups(list(zip(trials, setups)))
        for group in batches.groups(setups):
            members = [(trials[index], setups[index]) for index in group]
            if batches.trains_alone(setups[group[0]]):
                for trial, setup in members:
                    trial = asking.as_optuna_trial(self.study, trial)
                    self.start_tracking(trial, setup)
                    self.train_single(trial, setup)
                continue
            self.train_group(members)

    def train_group(self, members: list[tuple[optuna.Trial, TrialSetup]]) -> None:
        """Train trials sharing optimizer and schedule as one population; tell and track each."""
        if not self.spec.task.toy:
            image_batches.train_image_group(self, members)
            return
        try:
            fits = batches.fit_group(self.context, [setup for _, setup in members],
                                     record_trajectory=False, size=self.spec.trials_per_batch)
        except Exception as error:  # noqa: BLE001 - one broken batch must not end the study
            reason = f"{type(error).__name__}: {error}"
            for trial, setup in members:
                self.start_tracking(trial, setup)
                self.finish(trial, "FAIL", reason=reason)
            return
        self.finish_population(members, fits)

    def finish_population(self, members: Sequence[tuple[optuna.Trial, TrialSetup]],
                          fits: Sequence[gdbench.tasks.FitResult]) -> None:
        """Track and tell a population's trials, together (each history ends where it diverged).

        Each trial is recorded whole in the trackers, their MLflow runs
        journaled together (one file, one ``fsync``), the batch's full curves
        go to one artifact, and Optuna gets every trial's attributes and
        reports in one transaction, then each trial's end.
        """
        outcomes = []
        for (trial, _), fit in zip(members, fits):
            losses = fit.history["loss"]
            reason = divergence_reason(fit.history, "loss")
            reports = {epoch: losses[epoch] for epoch in batches.reported_epochs(len(losses))
                       if math.isfinite(losses[epoch])}
            value = None if reason else objectives.objective_value(
                self.spec.objective, fit.history, fit.steps_per_epoch, epochs=self.context.epochs)
            outcomes.append(Outcome(
                trial, TrialState.FAIL if reason else TrialState.COMPLETE, value, reason,
                len(losses), reports,
                target_reached=None if reason else objectives.target_reached(
                    self.spec.objective, fit.history)))
        numbers = [trial.number for trial, _ in members]
        self.tracker.log_curves({number: fit.history for number, fit in zip(numbers, fits)},
                                f"trials-{min(numbers):05d}-{max(numbers):05d}.npz")
        # With callbacks, trials are tracked and told one at a time, as Optuna tells
        # them: a callback may stop the study between two trials.
        indices = range(len(members))
        for group in ([[index] for index in indices] if self.callbacks else [indices]):
            # The group's MLflow runs are journaled together (one fsync) before it is told.
            with self.tracker.recording():
                for index in group:
                    (trial, setup), fit, outcome = members[index], fits[index], outcomes[index]
                    self.recorded[trial.number] = outcome  # first: as in end_tracking
                    self.tracker.record_trial(
                        trial.number,
                        self.context.tracked_params(self.spec, setup.hyperparameters()),
                        fit.history, outcome.state.name, value=outcome.value,
                        metrics=fit.metrics if outcome.value is not None else None,
                        reason=outcome.reason)
            self.tell_all([outcomes[index] for index in group])


@contextlib.contextmanager
def objects_frozen() -> Iterator[None]:
    """Collect, then freeze what is alive (:func:`gc.freeze`) for the block.

    Objects alive at a study's start (TensorFlow, MLflow, the task's data) live as long
    as the study: frozen, they are left out of the collections the study's work triggers
    (each batch's, the report's), which then take milliseconds instead of a third of a
    second each. Where the caller froze its own (the command line freezes what its
    imports left, an outer block what it found), they stay frozen after the block.
    """
    frozen_before = gc.get_freeze_count() > 0
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        if not frozen_before:
            gc.unfreeze()


def run_trials(spec: StudySpec, study: optuna.Study, rdb: optuna.storages.RDBStorage,
               stale: storage.StaleTrials, tracker: StudyTracker, context: StudyContext,
               budget: int, *, quiet: bool,
               callbacks: Sequence[StudyCallback] = (),
               heartbeat_interval: float = storage.DEFAULT_HEARTBEAT_INTERVAL_S,
               poll_interval_s: float = 1.0) -> None:
    """Claim and run ``study``'s trials until ``budget`` is used up and none runs any more.

    Args:
        spec: the study spec.
        study: the study, opened by :func:`~gdbench.study.trials.session.open_study`.
        rdb: its storage.
        stale: the callback the storage calls with each dead trial.
        tracker: the study's tracker, started.
        context: the trials' task and size.
        budget: the trials that use up the budget, across every process.
        quiet: no progress bar.
        callbacks: called as ``callback(study, frozen_trial)`` after each trial is told.
        heartbeat_interval: seconds between two heartbeats of a running trial.
        poll_interval_s: seconds between two looks while other processes' trials run.
    """
    claimer = claiming.Claimer(study, rdb, claiming.budgeted(
        study, budget, lambda count: asking.ask(study, spec, count, context.total_steps, rdb)),
        heartbeat_interval)
    loop = TrialLoop(spec, study, tracker, context, claimer, stale,
                     Progress(study, budget, spec.name, quiet), callbacks=callbacks,
                     poll_interval_s=poll_interval_s)
    with objects_frozen():
        loop.run()
    loop.close_orphan_runs()
