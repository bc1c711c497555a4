"""Confirming a study's winners over seeds: ``confirm = {seeds = N}`` and ``gdbench confirm``.

A study's leaderboard ranks trials of one seed each. A confirmation, as
DeepOBS and Schmidt, Schneider & Hennig ("Descending through a crowded
valley", ICML 2021) do, reruns the best configuration of each optimizer (of
each optimizer × schedule, when the study compares schedules) with the task's
``seed`` set to 0, 1, …, N − 1, and reports the mean, spread and bootstrap
interval of the results (:mod:`gdbench.study.compare.stats`, :mod:`gdbench.study.report.confirmed`).

The task's ``seed`` drives what it draws at random: for image tasks the
initial weights, the validation split and the batch order; for toy tasks on
data the data (``linear_regression``, ``logistic_regression``) or the batch
order (mini-batches only), and for noisy surfaces the gradient noise. A toy
task that draws nothing (the full-batch sigmoid neuron) gives the same run
for every seed: before any rerun, :func:`gdbench.tasks.seeds.same_runs`
compares the study's task with the task of each seed (start point, data,
batches, losses), and where every one is the same no rerun is trained: each
(trial, seed) is stored with the trial's own value (attribute
:data:`~gdbench.study.keys.REUSED_ATTR`), its curves from training the trial's
configuration once more, and a warning says so before the confirmation starts.

Each rerun is a trial of a companion Optuna study, ``<study>.confirm``, in the
same storage, with user attributes :data:`~gdbench.study.keys.SOURCE_ATTR` (the trial rerun),
:data:`~gdbench.study.keys.OPTIMIZER_ATTR`, :data:`~gdbench.study.keys.SCHEDULE_ATTR`, :data:`~gdbench.study.keys.SEED_ATTR`,
:data:`~gdbench.study.keys.CURVES_ATTR` (every per-epoch curve),
:data:`~gdbench.study.keys.INITIAL_ATTR` (the evaluation before training, epoch 0, where the
task's protocol gives one: :attr:`gdbench.tasks.FitResult.initial`) and
:data:`~gdbench.study.keys.METRICS_ATTR` (the final metrics). Reruns are claimed
under the companion's lock with heartbeats, as trials are: any number of
processes confirm one study together, an interrupted rerun is failed and run
again by the next ``gdbench confirm``, and a confirmation already done reruns
nothing. A rerun
whose loss diverged is a result (FAIL with its reason), not run again.

Tracking: the reruns' MLflow runs are nested in a parent run
``<study>.confirm``, itself nested in the study's parent run, each named as
its source trial's run plus ``· seed N`` and tagged :data:`~gdbench.study.keys.CONFIRM_TAG`,
:data:`~gdbench.study.keys.SEED_TAG`, :data:`~gdbench.study.keys.SOURCE_TAG`; in TensorBoard they are the sessions
of the study folder ``<study>.confirm`` beside the study's, with the
hyperparameters ``confirm`` (true; false for the study's trials) and
``task.seed``. Image reruns train with ``Task.fit``, toy reruns with the
population engine (:func:`gdbench.study.trials.batches.fit_group`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

import gdbench.tasks
from gdbench.study import keys
from gdbench.study.compare.confirm_target import (
    COMPANION_SUFFIX,
    Branch,
    ConfirmTarget,
    best_branches,
    companion_name,
    confirm_tensorboard_dir,
    open_companion,
    spec_target,
    stored_target,
)
from gdbench.study.defaults import DEFAULT_GRACE_PERIOD_S, DEFAULT_HEARTBEAT_INTERVAL_S
from gdbench.study.errors import StudyError
from gdbench.study.keys import (
    CONFIRM_TAG,
    CURVES_ATTR,
    INITIAL_ATTR,
    INTERRUPTED_ATTR,
    METRICS_ATTR,
    OPTIMIZER_ATTR,
    REUSED_ATTR,
    SCHEDULE_ATTR,
    SEED_ATTR,
    SEED_TAG,
    SEEDS_ATTR,
    SOURCE_ATTR,
    SOURCE_TAG,
)
from gdbench.study.trials import batches, claiming, cycle, records, session, storage
from gdbench.study.trials.outcomes import divergence_reason
from gdbench.study.trials.session import StudyContext
from gdbench.tasks.seeds import same_runs
from gdbench.tracking import HParamDomain, StoredStudy, StudyTracker
from gdbench.tracking.names import trial_run_name

__all__ = [
    "COMPANION_SUFFIX", "Branch", "ConfirmTarget", "best_branches", "companion_name",
    "confirm_study", "confirm_tensorboard_dir", "open_companion", "spec_target", "stored_target",
]

logger = logging.getLogger(__name__)


def _done(trial: FrozenTrial) -> bool:
    """Whether a rerun needs no other: it ran, runs, or failed for a reason of its own."""
    if trial.state in (TrialState.COMPLETE, TrialState.RUNNING):
        return True
    return (trial.state == TrialState.FAIL and keys.FAIL_REASON_ATTR in trial.user_attrs
            and not trial.user_attrs.get(INTERRUPTED_ATTR))


@dataclasses.dataclass
class _Rerun:
    trial: optuna.Trial
    branch: Branch
    seed: int


class _Confirmation:
    """Claims, trains, tells and tracks the reruns of one study until none is missing, in
    the trial cycle of a study's trials (:func:`gdbench.study.trials.cycle.run_cycle`)."""

    def __init__(self, target: ConfirmTarget, study: optuna.Study, companion: optuna.Study,
                 rdb: optuna.storages.RDBStorage, branches: Sequence[Branch], seeds: int,
                 tracker: StudyTracker, heartbeat_interval: int, toy: bool) -> None:
        self.target = target
        self.companion = companion
        self.rdb = rdb
        self.branches = list(branches)
        self.seeds = seeds
        self.tracker = tracker
        self.toy = toy
        self.claimer = claiming.Claimer(companion, rdb, self.take, heartbeat_interval)
        self.varying = sorted({name for trial in storage.counted_trials(study)
                               for name in trial.params})
        self.reruns: dict[int, _Rerun] = {}
        self.told: set[int] = set()

    def take(self, count: int) -> list[optuna.Trial] | None:
        """Under the claimer's lock: the missing reruns of the first seed that has any (one,
        for image tasks), started with their branch and seed; ``None`` when none is missing."""
        taken = {(t.user_attrs.get(SOURCE_ATTR), t.user_attrs.get(SEED_ATTR))
                 for t in self.companion.get_trials(deepcopy=False) if _done(t)}
        missing = [(branch, seed) for seed in range(self.seeds) for branch in self.branches
                   if (branch.trial.number, seed) not in taken]
        if not missing:
            return None
        first_seed = missing[0][1]
        chosen = [(b, s) for b, s in missing if s == first_seed][:count if self.toy else 1]
        reruns = [_Rerun(self.companion.ask(), branch, seed) for branch, seed in chosen]
        records.write_trials(self.companion, self.rdb, {records.trial_id(rerun.trial): ({
            SOURCE_ATTR: rerun.branch.trial.number, OPTIMIZER_ATTR: rerun.branch.optimizer,
            SCHEDULE_ATTR: rerun.branch.schedule, SEED_ATTR: rerun.seed,
            keys.SETUP_ATTR: rerun.branch.setup.to_json()}, {}, None, None)
            for rerun in reruns})
        self.reruns.update((rerun.trial.number, rerun) for rerun in reruns)
        return [rerun.trial for rerun in reruns]

    def run(self) -> None:
        """Run reruns until none is missing; an interrupt fails the claimed ones, to be run again."""
        cycle.run_cycle(self.claimer, len(self.branches), self.train_claimed,
                        interrupted=self.interrupted)

    def train_claimed(self, claimed: list[optuna.Trial]) -> None:
        self.train([self.reruns[trial.number] for trial in claimed])

    def train(self, reruns: Sequence[_Rerun]) -> None:
        seed = reruns[0].seed
        task = self.target.task(seed)
        setups = [rerun.branch.setup for rerun in reruns]
        if not (self.toy and self.target.population):
            for rerun in reruns:
                self.train_one(task, rerun)
            return
        context = StudyContext(task=task, epochs=self.target.epochs,
                               batch_size=self.target.batch_size,
                               steps_per_epoch=task.steps_per_epoch(self.target.batch_size),
                               study_params={})
        for group in batches.groups(setups):
            members = [reruns[index] for index in group]
            if batches.trains_alone(setups[group[0]]):
                for rerun in members:
                    self.train_one(task, rerun)
                continue
            try:
                fits = batches.fit_group(context, [setups[index] for index in group],
                                         record_trajectory=False)
            except Exception as error:  # noqa: BLE001 - one broken batch must not end the rest
                for rerun in members:
                    self.finish(rerun, None, f"{type(error).__name__}: {error}")
                continue
            for rerun, fit in zip(members, fits):
                self.finish(rerun, fit, None)

    def train_one(self, task: gdbench.tasks.Task, rerun: _Rerun) -> None:
        try:
            fit = task.fit(rerun.branch.setup.build_optimizer(), epochs=self.target.epochs,
                           batch_size=self.target.batch_size)
        except Exception as error:  # noqa: BLE001 - one broken rerun must not end the rest
            self.finish(rerun, None, f"{type(error).__name__}: {error}")
            return
        self.finish(rerun, fit, None)

    def tracked(self, rerun: _Rerun) -> tuple[dict[str, Any], str, dict[str, str]]:
        """A rerun's tracked values, run name and MLflow tags."""
        values = rerun.branch.setup.hyperparameters()
        name = (f"{trial_run_name(rerun.branch.trial.number, values, self.varying)}"
                f" · seed {rerun.seed}")
        params = {**values, "task.seed": rerun.seed, keys.CONFIRM_HPARAM: True}
        tags = {CONFIRM_TAG: "true", SEED_TAG: str(rerun.seed),
                SOURCE_TAG: str(rerun.branch.trial.number)}
        return params, name, tags

    def finish(self, rerun: _Rerun, fit: gdbench.tasks.FitResult | None,
               error: str | None) -> None:
        """Track a rerun whole, then tell the companion how it ended."""
        history = fit.history if fit is not None else {}
        reason = error or divergence_reason(history, self.target.metric)
        value = None if reason else float(history[self.target.metric][-1])
        metrics = dict(fit.metrics) if fit is not None else {}
        params, name, tags = self.tracked(rerun)
        self.tracker.record_trial(rerun.trial.number, params, history,
                                  "FAIL" if reason else "COMPLETE", value=value,
                                  metrics=None if reason else metrics, reason=reason,
                                  tags=tags, run_name=name)
        attrs: dict[str, Any] = {
            CURVES_ATTR: {key: [float(v) for v in curve] for key, curve in history.items()},
            METRICS_ATTR: {key: float(v) for key, v in metrics.items() if math.isfinite(v)},
        }
        if fit is not None and fit.initial:
            attrs[INITIAL_ATTR] = {key: float(v) for key, v in fit.initial.items()}
        if reason:
            attrs[keys.FAIL_REASON_ATTR] = reason
            logger.warning("rerun of trial %d, seed %d failed: %s", rerun.branch.trial.number,
                           rerun.seed, reason)
        cycle.tell(self.companion, self.rdb, rerun.trial,
                   TrialState.FAIL if reason else TrialState.COMPLETE, value, attrs)
        self.told.add(rerun.trial.number)

    def interrupted(self, claimed: Sequence[optuna.Trial], signal_name: str) -> None:
        """Fail the claimed reruns not yet told, the signal named: the next confirmation
        runs them again."""
        pending = [trial for trial in claimed if trial.number not in self.told]
        reason = keys.rerun_interrupted_reason(signal_name)
        records.write_trials(self.companion, self.rdb, {
            records.trial_id(trial): ({keys.FAIL_REASON_ATTR: reason, INTERRUPTED_ATTR: True},
                                      {}, TrialState.FAIL, None) for trial in pending})


def _start_tracker(target: ConfirmTarget, branches: Sequence[Branch],
                   seeds: int, direction: str) -> StudyTracker:
    name = companion_name(target.study_name)
    nested_in = target.nested_in
    if nested_in is None and target.tracking_uri is not None:
        parent = StoredStudy(target.tracking_uri, target.study_name).parent()
        nested_in = parent.info.run_id if parent is not None else None
    tracking_uri = target.tracking_uri if nested_in is not None else None
    if target.tracking_uri is not None and nested_in is None:
        logger.warning("study %s has no MLflow parent run in %s: its reruns are not tracked "
                       "in MLflow", target.study_name, target.tracking_uri)
    tracker = StudyTracker(study_name=name, tracking_uri=tracking_uri,
                           tensorboard_dir=target.tensorboard_dir, nested_in=nested_in)
    observed: dict[str, dict[Any, None]] = {}
    for branch in branches:
        for key, value in branch.setup.hyperparameters().items():
            observed.setdefault(key, {})[value] = None
    domains = {key: HParamDomain(kind="categorical", choices=tuple(values))
               for key, values in observed.items()}
    domains["task.seed"] = HParamDomain(kind="int", low=0, high=seeds - 1)
    domains[keys.CONFIRM_HPARAM] = HParamDomain.fixed(True)
    metrics = [target.metric] + [m for m in session.task_metrics(target.task(0), target.population)
                                 if m != target.metric]
    with session.tracker_setup(tracking_uri):
        tracker.start(hparam_domains=domains, metrics=metrics, params={
            "study": target.study_name, "task": target.task_name, "epochs": target.epochs,
            "batch_size": target.batch_size, "objective": target.metric,
        }, tags={CONFIRM_TAG: "true"}, direction=direction)
    return tracker


def confirm_study(target: ConfirmTarget, seeds: int, *,
                  heartbeat_interval: int = DEFAULT_HEARTBEAT_INTERVAL_S,
                  grace_period: int = DEFAULT_GRACE_PERIOD_S) -> optuna.Study:
    """Rerun the best configuration of each optimizer (× schedule) of a study over seeds
    0, …, ``seeds`` − 1: only the reruns not done yet.

    Args:
        target: the study and how its trials ran.
        seeds: how many seeds, ≥ 2.
        heartbeat_interval: seconds between two heartbeats of a running rerun.
        grace_period: seconds without a heartbeat before a rerun is taken for dead.

    Returns:
        The companion study holding the reruns.

    Raises:
        StudyError: ``seeds`` < 2, or the study has no complete trial to confirm.
        Interrupted: stopped by a signal; the reruns not finished run again next time.
    """
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 2:
        raise StudyError(f"confirm.seeds: expected an integer >= 2, got {seeds!r}")
    rdb = storage.open_storage(target.storage_url, heartbeat_interval=heartbeat_interval,
                               grace_period=grace_period)
    study = optuna.load_study(study_name=target.study_name, storage=rdb)
    branches = best_branches(study)
    if not branches:
        raise StudyError(f"confirm: study {target.study_name!r} has no complete trial to confirm")
    companion = open_companion(study, rdb, create=True)
    companion.set_user_attr(SEEDS_ATTR, seeds)
    toy = isinstance(target.task(0), gdbench.tasks.ToyTask)
    if toy and _seed_moves_nothing(target, seeds):
        logger.warning(
            "confirm %s: the seed moves nothing in task %s (seeds 0–%d give the study's start "
            "point, data and batches): the best trial's value of each of the %d optimizers "
            "stands for every seed; %d reruns skipped", target.study_name, target.task_name,
            seeds - 1, len(branches), len(branches) * seeds)
        _reuse_trials(target, companion, branches, seeds)
        return companion
    tracker = _start_tracker(target, branches, seeds, study.direction.name.lower())
    confirmation = _Confirmation(target, study, companion, rdb, branches, seeds, tracker,
                                 heartbeat_interval, toy)
    try:
        confirmation.run()
    except KeyboardInterrupt:
        tracker.finish("KILLED", interrupted=True)
        raise
    except BaseException:
        tracker.finish("FAILED")
        raise
    tracker.finish("FINISHED", metrics={"seeds": float(seeds), "branches": float(len(branches))})
    return companion


def _seed_moves_nothing(target: ConfirmTarget, seeds: int) -> bool:
    """Whether the task of every seed 0, …, ``seeds`` − 1 gives the study's task's runs."""
    own = gdbench.tasks.get(target.task_name, **target.task_options)
    return all(same_runs(own, target.task(seed), batch_size=target.batch_size,
                         epochs=target.epochs) for seed in range(seeds))


def _reuse_trials(target: ConfirmTarget, companion: optuna.Study, branches: Sequence[Branch],
                  seeds: int) -> None:
    """Store each missing (branch, seed) as complete with the trial's own value, nothing rerun.

    The curves are the branch's configuration trained once more, as the study trained
    it (by populations where it did): the task runs it the same for every seed.
    """
    taken = {(t.user_attrs.get(SOURCE_ATTR), t.user_attrs.get(SEED_ATTR))
             for t in companion.get_trials(deepcopy=False) if _done(t)}
    missing = [(branch, seed) for seed in range(seeds) for branch in branches
               if (branch.trial.number, seed) not in taken]
    needed = list({branch.trial.number: branch for branch, _ in missing}.values())
    if not needed:
        return
    task = target.task(0)
    setups = [branch.setup for branch in needed]
    fits: dict[int, gdbench.tasks.FitResult] = {}
    context = StudyContext(task=task, epochs=target.epochs, batch_size=target.batch_size,
                           steps_per_epoch=task.steps_per_epoch(target.batch_size),
                           study_params={})
    for group in batches.groups(setups):
        if target.population and not batches.trains_alone(setups[group[0]]):
            fits.update(zip(group, batches.fit_group(context, [setups[i] for i in group],
                                                     record_trajectory=False)))
            continue
        for index in group:
            fits[index] = task.fit(setups[index].build_optimizer(), epochs=target.epochs,
                                   batch_size=target.batch_size)
    by_trial = {branch.trial.number: fits[index] for index, branch in enumerate(needed)}
    trials = []
    for branch, seed in missing:
        fit = by_trial[branch.trial.number]
        attrs: dict[str, Any] = {
            SOURCE_ATTR: branch.trial.number, OPTIMIZER_ATTR: branch.optimizer,
            SCHEDULE_ATTR: branch.schedule, SEED_ATTR: seed, REUSED_ATTR: True,
            keys.SETUP_ATTR: branch.setup.to_json(),
            CURVES_ATTR: {key: [float(v) for v in curve] for key, curve in fit.history.items()},
            METRICS_ATTR: {key: float(v) for key, v in fit.metrics.items() if math.isfinite(v)},
        }
        if fit.initial:
            attrs[INITIAL_ATTR] = {key: float(v) for key, v in fit.initial.items()}
        trials.append(optuna.trial.create_trial(state=TrialState.COMPLETE,
                                                value=float(branch.trial.value),
                                                user_attrs=attrs))
    companion.add_trials(trials)
