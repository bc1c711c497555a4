"""Running a study: the Optuna loop, the trackers, and the report at the end.

One invocation of :func:`run_study`:

1. creates (or resumes) the Optuna study named after the spec, and marks FAIL
   the trials a stopped process left RUNNING;
2. opens the study's MLflow parent run and TensorBoard HParams experiment;
3. runs trials until the study holds ``trials`` finished ones (complete,
   pruned or failed): a rerun of the same command runs only the rest;
4. writes the report (leaderboard, Optuna's plots, the best trials' loss
   curves and paths) and attaches it to the parent run.

Image tasks run one trial at a time through ``Task.fit``, with a Keras
callback that reports the objective to Optuna every epoch and raises
`optuna.TrialPruned` when the pruner says so. Toy tasks run by batches: Optuna
is asked for up to ``trials_per_batch`` trials at once, and the population
engine trains them all in one vectorized run. A trial whose loss becomes NaN
or infinite is told FAIL, with the reason in its ``fail_reason`` user
attribute and its MLflow run's ``gdbench.reason`` tag; the study goes on.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import math
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import keras
import numpy as np
import optuna
import sqlalchemy
from optuna.trial import FrozenTrial, TrialState

import gdbench.tasks
from gdbench import plots
from gdbench.study import build, report, spaces
from gdbench.study.build import TrialSetup
from gdbench.study.spec import PRUNERS, SAMPLERS, StudySpec
from gdbench.tracking import HParamDomain, StudyTracker, TrialTracker

__all__ = ["Locations", "PruningCallback", "divergence_reason", "locations", "run_study"]

logger = logging.getLogger(__name__)

#: Optuna callbacks: called with the study and each trial once it is told.
StudyCallback = Callable[[optuna.Study, FrozenTrial], None]

SETUP_ATTR = "setup"
TRACKED_ATTR = "tracked"
SPEC_ATTR = "spec"
STALE_REASON = "left RUNNING by a process that stopped before finishing it"

#: A toy trial's per-epoch objective is reported to Optuna at about this many
#: epochs (its MLflow and TensorBoard curves keep every epoch): one storage
#: write per report, and a population batch has thousands of epochs in all.
MAX_REPORTED_EPOCHS = 10

#: Heartbeat of the local workers of ``run_study(workers=N)``: seconds between two
#: beats, and of silence before a worker's trial is taken for dead (see gdbench.study.worker).
LOCAL_HEARTBEAT_INTERVAL_S = 5
LOCAL_GRACE_PERIOD_S = 30

#: A finished trial gets its figures (loss curve, path on the surface) when it
#: ranks among this many best complete trials at that moment.
FIGURE_RANK = 3


@dataclasses.dataclass(frozen=True)
class Locations:
    """Where a study keeps everything.

    Attributes:
        home: the folder of the default databases and logs.
        storage: the Optuna storage URL.
        tracking_uri: the MLflow tracking URI, ``None`` when MLflow is off.
        tensorboard_dir: the study's TensorBoard folder, ``None`` when off.
        report_dir: where the report is written.
    """

    home: Path
    storage: str
    tracking_uri: str | None
    tensorboard_dir: Path | None
    report_dir: Path


def locations(spec: StudySpec, *, home: str | Path = "runs", storage: str | None = None,
              tracking_uri: str | None = None) -> Locations:
    """Resolve where ``spec``'s study lives: arguments, then the spec, then defaults under ``home``.

    Args:
        spec: the study spec.
        home: the folder of ``optuna.db``, ``mlflow.db``, ``tensorboard/`` and ``reports/``.
        storage: the Optuna storage URL, overriding the spec's.
        tracking_uri: the MLflow tracking URI, overriding the spec's (and
            switching MLflow on when the spec switched it off).
    """
    home = Path(home).resolve()
    storage = storage or spec.storage or f"sqlite:///{home / 'optuna.db'}"
    if tracking_uri is None and spec.tracking.mlflow:
        tracking_uri = spec.tracking.tracking_uri or f"sqlite:///{home / 'mlflow.db'}"
    tensorboard_dir = None
    if spec.tracking.tensorboard:
        tensorboard_dir = (Path(spec.tracking.tensorboard_dir).resolve()
                           if spec.tracking.tensorboard_dir else home / "tensorboard" / spec.name)
    return Locations(home=home, storage=storage, tracking_uri=tracking_uri,
                     tensorboard_dir=tensorboard_dir, report_dir=home / "reports" / spec.name)


class PruningCallback(keras.callbacks.Callback):
    """Reports the objective to Optuna after every epoch; raises `optuna.TrialPruned` on demand.

    A non-finite value is not reported: the task stops training on it, and
    the runner fails the trial.

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
            raise optuna.TrialPruned(
                f"pruned after epoch {epoch + 1}: {self.metric} = {float(value):.4g}")


def run_study(
    spec: StudySpec,
    *,
    home: str | Path = Path("runs"),
    trials: int | None = None,
    storage: str | None = None,
    tracking_uri: str | None = None,
    quiet: bool = False,
    workers: int = 1,
    callbacks: Sequence[StudyCallback] = (),
) -> optuna.Study:
    """Run (or resume) ``spec``'s study until it holds ``trials`` finished trials.

    Args:
        spec: the study spec (:func:`~gdbench.study.load_spec`).
        home: the folder of the default storage (``optuna.db``), MLflow store
            (``mlflow.db``), TensorBoard logs and reports.
        trials: finished trials to reach, overriding the spec's.
        storage: the Optuna storage URL, overriding the spec's.
        tracking_uri: the MLflow tracking URI, overriding the spec's.
        quiet: no progress bar.
        workers: local worker processes sharing the study (``gdbench
            worker``, :mod:`gdbench.study.worker`), started once the study
            exists; with SQLite keep it small (a few), since every write
            locks the whole database.
        callbacks: called as ``callback(study, frozen_trial)`` after each
            trial is told (in this process; not with ``workers > 1``).

    Returns:
        The study.

    Raises:
        ValueError: a bad argument, or an existing study with another direction.
    """
    budget = spec.trials if trials is None else _positive_integer("trials", trials)
    workers = _positive_integer("workers", workers)
    if workers > 1 and spec.source is None:
        raise ValueError("workers: worker processes reload the spec from its file; "
                         "this spec has no source file")
    if workers > 1 and callbacks:
        raise ValueError("callbacks: run in this process only; not with workers > 1")
    where = locations(spec, home=home, storage=storage, tracking_uri=tracking_uri)
    context = _Context.create(spec)
    budget = _capped_budget(spec, budget)
    study = _open_study(spec, where, seed_offset=0, create=True)
    tracker = _start_tracker(spec, where, context)
    try:
        _fail_stale_trials(spec, study, tracker, context)
        if workers == 1:
            _Loop(spec, study, tracker, context, budget, callbacks,
                  _Progress(study, budget, spec.name, quiet), _draws_figures(where)).run()
        else:
            _run_workers(spec, study, where, home, tracking_uri, budget, workers, quiet)
        paths = _write_report(spec, study, where, context)
        tracker.log_study_artifacts(paths, "report")
    except KeyboardInterrupt:
        tracker.finish("KILLED", metrics=_study_metrics(study))
        raise
    except BaseException:
        tracker.finish("FAILED", metrics=_study_metrics(study))
        raise
    tracker.finish("FINISHED", metrics=_study_metrics(study))
    return study


def _draws_figures(where: Locations) -> bool:
    """Per-trial figures are drawn only for a tracker to keep them."""
    return where.tracking_uri is not None or where.tensorboard_dir is not None


def _positive_integer(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
    return value


@dataclasses.dataclass(frozen=True)
class _Context:
    """What every trial of a study shares: the task and the run's size."""

    task: gdbench.tasks.Task
    epochs: int
    batch_size: int
    steps_per_epoch: int
    study_params: Mapping[str, Any]

    @classmethod
    def create(cls, spec: StudySpec) -> _Context:
        task = spec.task.build()
        epochs = task.resolve_epochs(spec.epochs)
        batch_size = task.resolve_batch_size(spec.batch_size)
        study_params: dict[str, Any] = {
            "task": spec.task.name, "epochs": epochs, "batch_size": batch_size, "seed": spec.seed,
            "task.seed": task.seed,
        }
        study_params.update({f"task.{key}": build.trackable(value)
                             for key, value in task.options.items()})
        return cls(task=task, epochs=epochs, batch_size=batch_size,
                   steps_per_epoch=task.steps_per_epoch(batch_size),
                   study_params=study_params)

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    @property
    def draws_paths(self) -> bool:
        """Whether trials have a path to draw on a 2-D error surface."""
        return isinstance(self.task, gdbench.tasks.ToyTask) and len(self.task.parameter_names) == 2


def _capped_budget(spec: StudySpec, budget: int) -> int:
    """The grid sampler has no more points than its grid; other samplers are not capped."""
    if spec.sampler.name != "grid":
        return budget
    size = math.prod(len(values) for values in build.parameter_grid(spec).values())
    return min(budget, size)


def _sqlite_pragmas(connection: Any, record: Any) -> None:
    """Write-ahead logging: readers (optuna-dashboard, workers) never block the writer, and a
    commit costs no disk flush (a crash of the process loses nothing; a power cut may lose
    the last commits). A study writes thousands of small rows: per-epoch reports."""
    del record
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _storage(url: str) -> optuna.storages.BaseStorage:
    if not url.startswith("sqlite:///"):
        return optuna.storages.RDBStorage(url)
    Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    # Workers share one SQLite file: wait for its lock rather than fail.
    storage = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
    sqlalchemy.event.listen(storage.engine, "connect", _sqlite_pragmas)
    # Connections opened while creating the tables predate the pragmas.
    storage.engine.dispose()
    return storage


class _GridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler, less its ``study.stop()`` once the grid is covered.

    That call is meant for ``study.optimize`` and raises under ask-and-tell;
    the runner caps the budget at the grid's size instead.
    """

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        del study, trial, state, values


def _sampler(spec: StudySpec, seed_offset: int) -> optuna.samplers.BaseSampler:
    sampler_class, _ = SAMPLERS[spec.sampler.name]
    seed = spec.sampler.seed + seed_offset
    if spec.sampler.name == "grid":
        return _GridSampler(build.parameter_grid(spec), seed=seed)
    return sampler_class(seed=seed, **spec.sampler.options)


def _summary(spec: StudySpec) -> str:
    return json.dumps({
        "task": spec.task.name,
        "task_options": {key: build.trackable(value) for key, value in spec.task.options.items()},
        "metric": spec.objective.metric, "direction": spec.objective.direction,
        "optimizers": [o.label for o in spec.optimizers],
        "schedules": [s.label for s in spec.schedules],
        "source": str(spec.source) if spec.source else None,
    })


def _open_study(spec: StudySpec, where: Locations, *, seed_offset: int,
                create: bool) -> optuna.Study:
    storage = _storage(where.storage)
    sampler = _sampler(spec, seed_offset)
    pruner = PRUNERS[spec.pruner.name](**spec.pruner.options)
    if not create:
        return optuna.load_study(study_name=spec.name, storage=storage, sampler=sampler,
                                 pruner=pruner)
    study = optuna.create_study(
        study_name=spec.name, storage=storage, sampler=sampler, pruner=pruner,
        direction=spec.objective.direction, load_if_exists=True,
    )
    if study.direction.name.lower() != spec.objective.direction:
        raise ValueError(
            f"objective.direction: study {spec.name!r} in {where.storage} was created to "
            f"{study.direction.name.lower()}; rename the study or use another storage")
    if study.user_attrs.get(SPEC_ATTR) is None:
        study.set_user_attr(SPEC_ATTR, _summary(spec))
        # optuna-dashboard and Optuna's plots then label the axis "val_loss", not "Objective 0".
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([spec.objective.metric])
    return study


def _hparam_domain(domains: Sequence[spaces.Domain]) -> HParamDomain:
    """One HParams domain covering every domain a tracked name takes its values from."""
    intervals = (spaces.Uniform, spaces.LogUniform, spaces.OneMinusLogUniform, spaces.IntRange)

    def numeric(domain: spaces.Domain) -> bool:
        if isinstance(domain, spaces.Fixed):
            return isinstance(domain.value, (int, float)) and not isinstance(domain.value, bool)
        return isinstance(domain, intervals)

    if all(numeric(domain) for domain in domains) and any(d.searched for d in domains):
        bounds = [value for domain in domains for value in domain.bounds()]
        integer = all(isinstance(d, spaces.IntRange) or (isinstance(d, spaces.Fixed)
                      and isinstance(d.value, int)) for d in domains)
        log = min(bounds) > 0 and all(isinstance(d, spaces.LogUniform) or not d.searched
                                      for d in domains)
        return HParamDomain(kind="int" if integer else "float", low=min(bounds), high=max(bounds),
                            log=log)
    choices: dict[Any, None] = {}
    for domain in domains:
        for value in domain.bounds():
            choices[build.trackable(value)] = None
    return HParamDomain(kind="categorical", choices=tuple(choices))


def _tracked_metrics(spec: StudySpec, context: _Context) -> list[str]:
    """The metrics of the HParams table. The per-epoch η is logged as a scalar but
    left out here: beside the hyperparameter of the same name it would show twice."""
    if spec.population:
        return ["loss"]
    if isinstance(context.task, gdbench.tasks.ToyTask):
        return list(context.task.metrics(context.task.initial_parameters()))
    return ["loss", "accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy"]


def _start_tracker(spec: StudySpec, where: Locations, context: _Context) -> StudyTracker:
    tracker = StudyTracker(
        study_name=spec.name, tracking_uri=where.tracking_uri,
        tensorboard_dir=where.tensorboard_dir, experiment_name=spec.tracking.experiment_name,
    )
    domains = {name: HParamDomain.fixed(value) for name, value in context.study_params.items()}
    domains.update({name: _hparam_domain(found)
                    for name, found in build.tracked_domains(spec, context.total_steps).items()})
    tracker.start(
        hparam_domains=domains,
        metrics=[spec.objective.metric] + _tracked_metrics(spec, context),
        params={
            **context.study_params, "objective": spec.objective.metric,
            "direction": spec.objective.direction, "sampler": spec.sampler.name,
            "pruner": spec.pruner.name, "trials": spec.trials,
            "optimizers": ",".join(o.label for o in spec.optimizers),
            "schedules": ",".join(s.label for s in spec.schedules) or build.NO_SCHEDULE,
        },
        tags={"gdbench.spec": str(spec.source) if spec.source else "",
              "mlflow.note.content": spec.description},
    )
    return tracker


def _fail_stale_trials(spec: StudySpec, study: optuna.Study, tracker: StudyTracker,
                       context: _Context) -> None:
    """Mark FAIL the trials a stopped process left RUNNING, so that they count as finished.

    Their tracker runs end FAILED with the reason (a trial whose run was
    never opened gets one), so that every finished trial has exactly one.
    """
    declared = set(context.study_params) | set(build.tracked_domains(spec, context.total_steps))
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        # Optuna's public API sets attributes on live trials only; this one is rebuilt from its id.
        optuna.Trial(study, trial._trial_id).set_user_attr(report.FAIL_REASON_ATTR, STALE_REASON)
        study.tell(trial.number, state=TrialState.FAIL)
        recorded = trial.user_attrs.get(report.HYPERPARAMETERS_ATTR, {})
        params = {key: value for key, value in {**context.study_params, **recorded}.items()
                  if key in declared}
        tracker.fail_trial(trial.number, params, STALE_REASON)
        logger.warning("trial %d: %s; marked FAIL", trial.number, STALE_REASON)


def _study_metrics(study: optuna.Study) -> dict[str, float]:
    trials = study.get_trials(deepcopy=False)
    metrics = {
        f"trials_{state.name.lower()}": float(sum(t.state == state for t in trials))
        for state in report.FINISHED_STATES
    }
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if complete:
        metrics["best_value"] = float(study.best_value)
    return metrics


class _Progress:
    """A progress bar of finished trials (tqdm) with the best value so far; silent when quiet."""

    def __init__(self, study: optuna.Study, budget: int, name: str, quiet: bool) -> None:
        self.study = study
        self.budget = budget
        self.bar = None
        if quiet:
            return
        from tqdm import tqdm

        self.bar = tqdm(total=budget, initial=min(self.finished(), budget), desc=name,
                        unit="trial", file=sys.stderr, dynamic_ncols=True)
        self.refresh()

    def finished(self) -> int:
        return len(self.study.get_trials(deepcopy=False, states=report.FINISHED_STATES))

    def refresh(self) -> None:
        if self.bar is None:
            return
        done = min(self.finished(), self.budget)
        self.bar.update(done - self.bar.n)
        complete = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if complete:
            values = [t.value for t in complete]
            best = max(values) if self.study.direction.name == "MAXIMIZE" else min(values)
            self.bar.set_postfix_str(f"best={best:.4g}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def divergence_reason(history: Mapping[str, Sequence[float]], metric: str) -> str | None:
    """Why a trial's history is unusable: its first non-finite loss or objective; else ``None``."""
    for key in dict.fromkeys(("loss", metric)):
        for epoch, value in enumerate(history.get(key, ())):
            if not math.isfinite(value):
                return f"{key} diverged: {value} at epoch {epoch + 1}"
    return None


class _Loop:
    """Asks, trains, tells and tracks trials until the study holds its budget of finished ones."""

    def __init__(self, spec: StudySpec, study: optuna.Study, tracker: StudyTracker,
                 context: _Context, budget: int, callbacks: Sequence[StudyCallback],
                 progress: _Progress, draws_figures: bool) -> None:
        self.spec = spec
        self.study = study
        self.tracker = tracker
        self.context = context
        self.budget = budget
        self.callbacks = tuple(callbacks)
        self.progress = progress
        self.metric = spec.objective.metric
        self.maximize = spec.objective.direction == "maximize"
        self.draws_figures = draws_figures
        self.figure_dir = Path(tempfile.mkdtemp(prefix="gdbench-figures-"))
        self.tracked: set[int] = set()
        self.told: set[int] = set()

    # -- the loop -----------------------------------------------------------

    def run(self) -> None:
        # Objects alive now (TensorFlow, MLflow, the task's data) live as long as the study:
        # frozen, they are left out of the collections between trials, which then take
        # milliseconds instead of half a second.
        gc.collect()
        gc.freeze()
        try:
            while (free := self.free_slots()) > 0:
                if self.spec.population:
                    self.run_batch(min(free, self.spec.trials_per_batch))
                else:
                    self.run_single()
                # Keras's global state and TensorFlow's kernel cache, then every trial's
                # garbage (its model, optimizer and graphs).
                keras.backend.clear_session(free_memory=False)
                gc.collect()
        finally:
            gc.unfreeze()
            self.progress.close()
            shutil.rmtree(self.figure_dir, ignore_errors=True)

    def free_slots(self) -> int:
        """Trials still to start: the budget less finished trials and those running now."""
        states = report.FINISHED_STATES + (TrialState.RUNNING,)
        return self.budget - len(self.study.get_trials(deepcopy=False, states=states))

    def ask(self, count: int) -> list[optuna.Trial]:
        """``count`` new trials; the compared optimizers and schedules take turns when balanced."""
        combos = [(o.label, s.label if s else None) for o in self.spec.optimizers
                  for s in (self.spec.schedules or (None,))]
        if self.spec.balance and len(combos) > 1 and self.spec.sampler.name != "grid":
            counts = dict.fromkeys(combos, 0)
            for trial in self.study.get_trials(deepcopy=False):
                fixed = trial.system_attrs.get("fixed_params", {})
                combo = (trial.params.get("optimizer", fixed.get("optimizer", combos[0][0])),
                         trial.params.get("schedule", fixed.get("schedule", combos[0][1])))
                if combo in counts:
                    counts[combo] += 1
            for _ in range(count):
                combo = min(combos, key=lambda c: counts[c])
                counts[combo] += 1
                fixed_params = {}
                if self.spec.compares_optimizers:
                    fixed_params["optimizer"] = combo[0]
                if self.spec.compares_schedules:
                    fixed_params["schedule"] = combo[1]
                self.study.enqueue_trial(fixed_params)
        return [self.study.ask() for _ in range(count)]

    def tell(self, trial: optuna.Trial, state: TrialState, value: float | None = None,
             reason: str | None = None, epochs_run: int | None = None) -> None:
        if epochs_run is not None:
            trial.set_user_attr(report.EPOCHS_RUN_ATTR, epochs_run)
        if reason:
            pruned = state == TrialState.PRUNED
            trial.set_user_attr(report.PRUNE_REASON_ATTR if pruned else report.FAIL_REASON_ATTR,
                                reason)
        if state == TrialState.COMPLETE:
            frozen = self.study.tell(trial, value)
        else:
            frozen = self.study.tell(trial, state=state)
        self.told.add(trial.number)
        self.progress.refresh()
        if state == TrialState.FAIL:
            logger.warning("trial %d failed: %s", trial.number, reason)
        for callback in self.callbacks:
            callback(self.study, frozen)

    def start_tracking(self, trial: optuna.Trial, setup: TrialSetup) -> TrialTracker:
        trial.set_user_attr(report.HYPERPARAMETERS_ATTR, setup.hyperparameters())
        trial.set_user_attr(SETUP_ATTR, setup.to_json())
        trial.set_user_attr(TRACKED_ATTR, True)
        self.tracked.add(trial.number)
        return self.tracker.start_trial(
            trial.number, {**self.context.study_params, **setup.hyperparameters()})

    def fail_interrupted(self, trial: optuna.Trial, setup: TrialSetup | None) -> None:
        """Fail a trial that an interrupt stopped (or kept from starting), tracker run included."""
        reason = "interrupted (KeyboardInterrupt)"
        if trial.number not in self.tracked:
            params = dict(self.context.study_params)
            if setup is not None:
                trial.set_user_attr(report.HYPERPARAMETERS_ATTR, setup.hyperparameters())
                params.update(setup.hyperparameters())
            trial.set_user_attr(TRACKED_ATTR, True)
            self.tracked.add(trial.number)
            self.tracker.start_trial(trial.number, params).finish("FAIL", reason=reason)
        self.tell(trial, TrialState.FAIL, reason=reason)

    def figure_worthy(self, values: Sequence[float]) -> list[bool]:
        """Which of ``values`` (new trials' objectives) rank among the best
        :data:`FIGURE_RANK` of the study's complete trials and themselves."""
        if not self.draws_figures:
            return [False] * len(values)
        complete = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        known = [trial.value for trial in complete]
        ranked = sorted(known + [v for v in values if math.isfinite(v)], reverse=self.maximize)
        if len(ranked) <= FIGURE_RANK:
            return [math.isfinite(v) for v in values]
        threshold = ranked[FIGURE_RANK - 1]
        return [math.isfinite(v) and (v >= threshold if self.maximize else v <= threshold)
                for v in values]

    def log_figures(self, tracked: TrialTracker, number: int,
                    history: Mapping[str, Sequence[float]], trajectory: np.ndarray | None) -> None:
        label = f"trial {number}"
        curve = plots.plot_loss_curves({label: history},
                                       self.figure_dir / f"trial-{number}-loss.png")
        tracked.log_figure(curve, "loss_curve")
        if trajectory is not None and self.context.draws_paths:
            path = plots.plot_trajectories(self.context.task, {label: trajectory},
                                           self.figure_dir / f"trial-{number}-path.png")
            tracked.log_figure(path, "trajectory")

    # -- one trial at a time (image tasks, and toy tasks without population) --

    def run_single(self) -> None:
        (trial,) = self.ask(1)
        setup = None
        try:
            setup = build.suggest(trial, self.spec, self.context.total_steps)
            with self.start_tracking(trial, setup) as tracked:
                self.train_single(trial, setup, tracked)
        except KeyboardInterrupt:
            if trial.number not in self.told:
                self.fail_interrupted(trial, setup)
            raise

    def train_single(self, trial: optuna.Trial, setup: TrialSetup, tracked: TrialTracker) -> None:
        from gdbench.tracking import TrackingCallback

        pruning = PruningCallback(trial, self.metric)
        try:
            result = self.context.task.fit(
                setup.build_optimizer(), epochs=self.context.epochs,
                batch_size=self.context.batch_size, callbacks=[TrackingCallback(tracked), pruning],
            )
        except optuna.TrialPruned as pruned:
            tracked.finish("PRUNED", reason=str(pruned))
            self.tell(trial, TrialState.PRUNED, reason=str(pruned), epochs_run=pruning.epochs_seen)
            return
        except Exception as error:  # noqa: BLE001 - one broken trial must not end the study
            reason = f"{type(error).__name__}: {error}"
            tracked.finish("FAIL", reason=reason)
            self.tell(trial, TrialState.FAIL, reason=reason)
            return
        reason = divergence_reason(result.history, self.metric)
        epochs_run = len(result.history["loss"])
        if reason is not None:
            tracked.finish("FAIL", reason=reason)
            self.tell(trial, TrialState.FAIL, reason=reason, epochs_run=epochs_run)
            return
        value = float(result.history[self.metric][-1])
        if self.figure_worthy([value])[0]:
            self.log_figures(tracked, trial.number, result.history, result.trajectory)
        tracked.finish("COMPLETE", value=value, metrics=result.metrics)
        self.tell(trial, TrialState.COMPLETE, value, epochs_run=epochs_run)

    # -- batches through the population engine (toy tasks) --------------------

    def run_batch(self, count: int) -> None:
        trials = self.ask(count)
        setups: list[TrialSetup] = []
        try:
            for trial in trials:
                setups.append(build.suggest(trial, self.spec, self.context.total_steps))
            for group in _groups(setups):
                members = [(trials[index], setups[index]) for index in group]
                if setups[group[0]].target is not None:
                    # A warm-up's target schedule is an object, not per-trial numbers:
                    # these trials train one by one.
                    for trial, setup in members:
                        with self.start_tracking(trial, setup) as tracked:
                            self.train_single(trial, setup, tracked)
                    continue
                self.train_group(members)
        except KeyboardInterrupt:
            for index, trial in enumerate(trials):
                if trial.number not in self.told:
                    self.fail_interrupted(trial, setups[index] if index < len(setups) else None)
            raise

    def train_group(self, members: list[tuple[optuna.Trial, TrialSetup]]) -> None:
        """Train trials sharing optimizer and schedule as one population; tell and track each."""
        from gdbench.tasks.population import fit_population

        setups = [setup for _, setup in members]
        first = setups[0]
        hyperparameters = _stacked([s.optimizer_keywords() for s in setups])
        schedule_parameters = None
        if first.schedule is None:
            hyperparameters["learning_rate"] = np.array([s.learning_rate for s in setups])
        else:
            schedule_parameters = _stacked([s.schedule_keywords() for s in setups])
        record = self.context.draws_paths and self.draws_figures
        try:
            result = fit_population(
                self.context.task, first.optimizer, hyperparameters,
                epochs=self.context.epochs, batch_size=self.context.batch_size,
                schedule=first.schedule, schedule_parameters=schedule_parameters,
                record_trajectory=record,
            )
        except Exception as error:  # noqa: BLE001 - one broken batch must not end the study
            reason = f"{type(error).__name__}: {error}"
            for trial, setup in members:
                with self.start_tracking(trial, setup) as tracked:
                    tracked.finish("FAIL", reason=reason)
                self.tell(trial, TrialState.FAIL, reason=reason)
            return
        fits = [result.trial(index) for index in range(len(members))]
        worthy = self.figure_worthy([fit.history["loss"][-1] for fit in fits])
        for (trial, setup), fit, figures in zip(members, fits, worthy):
            self.finish_population_trial(trial, setup, fit, figures)

    def finish_population_trial(self, trial: optuna.Trial, setup: TrialSetup,
                                fit: gdbench.tasks.FitResult, figures: bool) -> None:
        """Report, track and tell one trial of a population (its history ends where it diverged)."""
        losses = fit.history["loss"]
        reason = divergence_reason(fit.history, "loss")
        for epoch in _reported_epochs(len(losses)):
            if math.isfinite(losses[epoch]):
                trial.report(losses[epoch], epoch)
        with self.start_tracking(trial, setup) as tracked:
            for epoch in range(len(losses)):
                tracked.log_epoch(epoch, {key: value[epoch] for key, value in fit.history.items()})
            if reason is not None:
                tracked.finish("FAIL", reason=reason)
            else:
                if figures:
                    self.log_figures(tracked, trial.number, fit.history, fit.trajectory)
                tracked.finish("COMPLETE", value=losses[-1], metrics=fit.metrics)
        if reason is not None:
            self.tell(trial, TrialState.FAIL, reason=reason, epochs_run=len(losses))
        else:
            self.tell(trial, TrialState.COMPLETE, losses[-1], epochs_run=len(losses))


def _reported_epochs(epochs: int) -> list[int]:
    """About :data:`MAX_REPORTED_EPOCHS` epochs spread over ``epochs``, the last one included."""
    if epochs <= MAX_REPORTED_EPOCHS:
        return list(range(epochs))
    chosen = np.unique(np.linspace(0, epochs - 1, MAX_REPORTED_EPOCHS).round().astype(int))
    return [int(epoch) for epoch in chosen]


def _group_key(setup: TrialSetup) -> tuple[Any, ...]:
    """Trials in one population share everything that cannot be a per-trial number."""
    def fixed_part(values: Mapping[str, Any]) -> tuple[Any, ...]:
        shared = [(key, json.dumps(value)) for key, value in values.items()
                  if isinstance(value, (bool, str)) or value is None]
        lengths = [(key, len(value)) for key, value in values.items() if isinstance(value, list)]
        return tuple(sorted(shared + lengths))

    return (setup.optimizer, setup.schedule, setup.target, fixed_part(setup.optimizer_values),
            fixed_part(setup.schedule_values))


def _groups(setups: Sequence[TrialSetup]) -> list[list[int]]:
    groups: dict[tuple[Any, ...], list[int]] = {}
    for index, setup in enumerate(setups):
        groups.setdefault(_group_key(setup), []).append(index)
    return list(groups.values())


def _stacked(keywords: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per-trial keyword dicts → the population engine's: numbers as arrays [K], a list
    (piecewise ``boundaries``, ``values``) as a list of arrays [K], shared values as they are."""
    stacked: dict[str, Any] = {}
    for key, first in keywords[0].items():
        values = [k[key] for k in keywords]
        if isinstance(first, (bool, str)) or first is None:
            stacked[key] = first
        elif isinstance(first, list):
            stacked[key] = [np.asarray([value[item] for value in values], dtype=np.float64)
                            for item in range(len(first))]
        else:
            stacked[key] = np.asarray(values, dtype=np.float64)
    return stacked


def _write_report(spec: StudySpec, study: optuna.Study, where: Locations,
                  context: _Context) -> list[Path]:
    """The report files, and the best trial of each compared optimizer or schedule side by side."""
    paths = report.write_report(study, where.report_dir)
    best = _best_by_label(spec, study)
    if not best:
        return paths
    if context.draws_paths:
        trajectories, histories = {}, {}
        for label, trial in best.items():
            setup = TrialSetup.from_json(trial.user_attrs[SETUP_ATTR])
            result = context.task.fit(setup.build_optimizer(), epochs=context.epochs,
                                      batch_size=context.batch_size)
            trajectories[label], histories[label] = result.trajectory, result.history
            keras.backend.clear_session(free_memory=False)
        paths.append(plots.plot_trajectories(
            context.task, trajectories, where.report_dir / "best_paths.png", kind="both",
            title=f"{spec.task.name}: the best trial of each"))
        paths.append(plots.plot_loss_curves(histories, where.report_dir / "best_loss_curves.png"))
    else:
        curves = {label: {spec.objective.metric: [trial.intermediate_values[e]
                                                  for e in sorted(trial.intermediate_values)]}
                  for label, trial in best.items() if trial.intermediate_values}
        if curves:
            paths.append(plots.plot_loss_curves(curves, where.report_dir / "best_loss_curves.png",
                                                metric=spec.objective.metric))
    return paths


def _best_by_label(spec: StudySpec, study: optuna.Study) -> dict[str, FrozenTrial]:
    """The best complete trial of each optimizer × schedule, labelled for the plots."""
    best: dict[str, FrozenTrial] = {}
    maximize = spec.objective.direction == "maximize"
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if SETUP_ATTR not in trial.user_attrs:
            continue
        setup = TrialSetup.from_json(trial.user_attrs[SETUP_ATTR])
        parts = []
        if spec.compares_optimizers or not spec.compares_schedules:
            parts.append(setup.optimizer_label)
        if spec.compares_schedules:
            parts.append(setup.tracked_schedule)
        label = " + ".join(parts)
        current = best.get(label)
        better = current is None or (
            trial.value > current.value if maximize else trial.value < current.value)
        if better:
            best[label] = trial
    return dict(sorted(best.items()))


def _run_workers(spec: StudySpec, study: optuna.Study, where: Locations, home: str | Path,
                 tracking_uri: str | None, budget: int, workers: int, quiet: bool) -> None:
    """Start ``workers`` ``gdbench worker`` processes on the study; wait, showing progress."""
    command = [sys.executable, "-m", "gdbench", "worker", str(spec.source), "--study", spec.name,
               "--storage", where.storage, "--home", str(home), "--trials", str(budget),
               # Local workers: a dead one is noticed (and its trial rerun) within seconds.
               "--heartbeat-interval", str(LOCAL_HEARTBEAT_INTERVAL_S),
               "--grace-period", str(LOCAL_GRACE_PERIOD_S)]
    if tracking_uri is not None:
        command += ["--tracking-uri", tracking_uri]
    processes = [
        subprocess.Popen(command + ["--worker-index", str(index + 1)])
        for index in range(workers)
    ]
    progress = _Progress(study, budget, spec.name, quiet)
    try:
        while any(process.poll() is None for process in processes):
            progress.refresh()
            time.sleep(1.0)
        progress.refresh()
    except KeyboardInterrupt:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.terminate()
                process.wait()
        raise
    finally:
        progress.close()
    failed = [(index + 1, p.returncode) for index, p in enumerate(processes) if p.returncode]
    if failed:
        raise RuntimeError("workers: " + ", ".join(
            f"worker {index} exited with status {code}" for index, code in failed))
