"""What a study's processes share: its locations under HOME, its keys, its context, its trackers.

Locations: everything a study writes lives under HOME (``runs/`` by default)
unless the spec or the command line names an absolute path:

| what               | default                         | a relative path resolves against |
|--------------------|---------------------------------|----------------------------------|
| Optuna storage     | ``sqlite:///HOME/optuna.db``    | HOME (``sqlite:///studies.db``)  |
| MLflow store       | ``sqlite:///HOME/mlflow.db``    | HOME                             |
| TensorBoard folder | ``HOME/tensorboard/<study>``    | HOME                             |
| report             | ``HOME/reports/<study>``        | HOME                             |

A relative path must stay inside HOME; an absolute one is used as given, but
its folder must exist already. Every location is checked (and a server
connected to) by :func:`check_locations` before anything is created.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

import gdbench.tasks
from gdbench import _validate, tracking
from gdbench.study.defaults import (
    DEFAULT_HOME,
    JOURNAL_FOLDER,
    MLFLOW_FILE,
    OPTUNA_FILE,
    REPORTS_FOLDER,
    TENSORBOARD_FOLDER,
)
from gdbench.study.errors import StudyError
from gdbench.study.keys import (
    COMPARE_BUDGETS_ATTR,
    CONFIRM_HPARAM,
    FIGURES_ATTR,
    PROCESSES_ATTR,
    SPEC_ATTR,
    SPEC_TAG,
)
from gdbench.study.plan import build, samplers
from gdbench.study.spec.domains import Domain
from gdbench.study.spec.model import ObjectiveSpec, StudySpec, name_problem
from gdbench.study.trials import storage
from gdbench.study.trials.spec_record import check_same_spec, summary
from gdbench.tracking import HParamDomain, StudyTracker
from gdbench.tracking.names import NO_SCHEDULE

__all__ = [
    "DEFAULT_HOME", "Locations", "StudyContext", "check_locations",
    "check_study_name", "claim_figures", "create_home", "finish_tracker", "in_home", "locations", "open_study",
    "positive_integer", "restore_tracking", "start_tracker", "study_metrics", "task_metrics",
    "tracker_setup",
]

logger = logging.getLogger(__name__)


def positive_integer(name: str, value: Any) -> int:
    """An integer >= 1 given as argument ``name``.

    Raises:
        StudyError: anything else; the message names ``name``.
    """
    try:
        return _validate.integer(name, value, low=1)
    except ValueError as error:
        raise StudyError(str(error)) from None


def check_study_name(name: str, field: str = "study") -> str:
    """A study name as a spec's ``name`` is checked (characters and length).

    Raises:
        StudyError: a name that is not one; the message names ``field``.
    """
    problem = name_problem(name) if isinstance(name, str) and name else f"{name!r}: empty"
    if problem:
        raise StudyError(f"{field}: {problem}")
    return name


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


def in_home(home: Path, path: str | Path, field: str) -> Path:
    """``path`` resolved against ``home``: a relative path must stay inside it.

    Raises:
        StudyError: a relative path leading out of HOME.
    """
    given = Path(path).expanduser()
    if given.is_absolute():
        return Path(os.path.abspath(given))
    resolved = Path(os.path.abspath(home / given))
    if not resolved.is_relative_to(home):
        raise StudyError(f"{field}: {str(path)!r} leads out of HOME ({home}); give a path inside "
                         "it, or an absolute path")
    return resolved


def _database_in_home(home: Path, url: str, field: str) -> str:
    database = storage.sqlite_path(url)
    if database is None or str(database) in ("", ":memory:"):
        return url
    return f"sqlite:///{in_home(home, database, field)}"


def locations(spec: StudySpec, *, home: str | Path = DEFAULT_HOME, storage_url: str | None = None,
              tracking_uri: str | None = None, tensorboard_dir: str | Path | None = None,
              report_dir: str | Path | None = None) -> Locations:
    """Where ``spec``'s study lives: the arguments, then the spec, then the defaults under ``home``.

    Nothing is created or checked beyond the paths themselves (:func:`check_locations`).

    Args:
        spec: the study spec.
        home: the folder of ``optuna.db``, ``mlflow.db``, ``tensorboard/`` and ``reports/``.
        storage_url: the Optuna storage URL, overriding the spec's.
        tracking_uri: the MLflow tracking URI, overriding the spec's (and switching
            MLflow on when the spec switched it off).
        tensorboard_dir: the study's TensorBoard folder, overriding the spec's.
        report_dir: the report's folder.

    Raises:
        StudyError: a relative path leading out of HOME.
    """
    home = Path(os.path.abspath(Path(home).expanduser()))
    url = _database_in_home(home, storage_url or spec.storage or f"sqlite:///{OPTUNA_FILE}",
                            "storage")
    if tracking_uri is None and spec.tracking.mlflow:
        tracking_uri = spec.tracking.tracking_uri or f"sqlite:///{MLFLOW_FILE}"
    if tracking_uri is not None:
        tracking_uri = _database_in_home(home, tracking_uri, "tracking_uri")
    board = None
    if spec.tracking.tensorboard or tensorboard_dir is not None:
        chosen = tensorboard_dir or spec.tracking.tensorboard_dir
        board = (in_home(home, chosen, "tensorboard_dir") if chosen is not None
                 else home / TENSORBOARD_FOLDER / spec.name)
    report = (in_home(home, report_dir, "report_dir") if report_dir is not None
              else home / REPORTS_FOLDER / spec.name)
    return Locations(home=home, storage=url, tracking_uri=tracking_uri, tensorboard_dir=board,
                     report_dir=report)


def check_locations(where: Locations) -> None:
    """Refuse locations that cannot work, before anything is created.

    HOME itself may be missing (it is created); a folder named outside it must
    exist; a storage or tracking server must answer; a SQLite file must be sound and
    writable (:func:`~gdbench.study.trials.storage.check_sqlite_file`).

    Raises:
        StudyError: the first location that cannot work, named.
    """
    for field, folder in (("tensorboard_dir", where.tensorboard_dir),
                          ("report_dir", where.report_dir)):
        if folder is not None and not folder.is_relative_to(where.home) \
                and not folder.parent.is_dir():
            raise StudyError(f"{field}: the folder of {folder} does not exist; create it first")
    for field, url in (("storage", where.storage), ("tracking_uri", where.tracking_uri)):
        if url is None:
            continue
        database = storage.sqlite_path(url)
        if database is not None and database.is_relative_to(where.home):
            # HOME's own files: HOME is created when missing.
            storage.check_sqlite_file(database, field)
            continue
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        if field == "tracking_uri" and scheme in ("http", "https"):
            try:
                tracking.check_tracking_server(url)
            except ValueError as error:
                raise StudyError(str(error)) from None
        elif field == "tracking_uri" and scheme in ("", "file"):
            raise StudyError(f"tracking_uri: {url!r}: expected a database (sqlite:///PATH, "
                             "postgresql+psycopg2://…) or a tracking server (http://HOST:PORT)")
        else:
            storage.check_database_url(
                url, field, storage.STORAGE_BACKENDS if field == "storage" else None)
            if database is not None:
                storage.check_sqlite_file(database, field)


def create_home(where: Locations) -> None:
    """Create HOME and the folders of its own files."""
    where.home.mkdir(parents=True, exist_ok=True)
    for url in (where.storage, where.tracking_uri):
        database = storage.sqlite_path(url or "")
        if database is not None and database.is_relative_to(where.home):
            database.parent.mkdir(parents=True, exist_ok=True)


@dataclasses.dataclass(frozen=True)
class StudyContext:
    """What every trial of a study shares: the task and the run's size."""

    task: gdbench.tasks.Task
    epochs: int
    batch_size: int
    steps_per_epoch: int
    study_params: Mapping[str, Any]

    @classmethod
    def create(cls, spec: StudySpec) -> StudyContext:
        """The context of ``spec``'s trials (the task is built: its data loaded)."""
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
                   steps_per_epoch=task.steps_per_epoch(batch_size), study_params=study_params)

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    @property
    def draws_paths(self) -> bool:
        """Whether trials have a path to draw on a 2-D error surface."""
        return isinstance(self.task, gdbench.tasks.ToyTask) and len(self.task.parameter_names) == 2

    def tracked_params(self, spec: StudySpec, values: Mapping[str, Any]) -> dict[str, Any]:
        """The study's and a trial's values that the trackers declared (see :func:`start_tracker`)."""
        declared = set(self.study_params) | set(build.tracked_domains(spec, self.total_steps))
        return {key: value for key, value in {**self.study_params, **values}.items()
                if key in declared}


def open_study(spec: StudySpec, where: Locations, *, create: bool, stale: storage.StaleTrials,
               heartbeat_interval: int = storage.DEFAULT_HEARTBEAT_INTERVAL_S,
               grace_period: int = storage.DEFAULT_GRACE_PERIOD_S,
               seed_offset: int | None = None) -> tuple[optuna.Study, optuna.storages.RDBStorage]:
    """Open (or create) ``spec``'s study on its storage, with heartbeats, as one more process.

    Args:
        spec: the study spec.
        where: its locations, checked.
        create: create the study when it does not exist (else ``KeyError``).
        stale: called with each trial found dead.
        heartbeat_interval: seconds between two heartbeats of a running trial.
        grace_period: seconds without a heartbeat before a trial is taken for dead.
        seed_offset: added to the sampler's seed; ``None`` for the number of
            processes that joined the study before this one (0 for the first), so that
            processes started together sample different points.

    Raises:
        KeyError: no such study, and ``create`` is false.
        StudyError: the study exists with another spec (one with more
            optimizers grows it, see :func:`check_same_spec`).
    """
    rdb = storage.open_storage(where.storage, heartbeat_interval=heartbeat_interval,
                               grace_period=grace_period, on_stale=stale)
    if create:
        study = optuna.create_study(study_name=spec.name, storage=rdb,
                                    direction=spec.objective.direction, load_if_exists=True)
    else:
        study = optuna.load_study(study_name=spec.name, storage=rdb)
    added = check_same_spec(spec, study)
    with storage.ClaimLock(rdb, spec.name).held():
        if added:
            # The grown spec is the study's from now on.
            study.set_user_attr(SPEC_ATTR, summary(spec))
        joined = int(study.user_attrs.get(PROCESSES_ATTR, 0))
        study.set_user_attr(PROCESSES_ATTR, joined + 1)
        if spec.compare is not None:
            study.set_user_attr(COMPARE_BUDGETS_ATTR, list(spec.compare.budgets))
        if study.user_attrs.get(SPEC_ATTR) is None:
            study.set_user_attr(SPEC_ATTR, summary(spec))
            # optuna-dashboard and Optuna's plots then label the axis "val_loss", not "Objective 0".
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names([spec.objective.label])
    sampler = samplers.make_sampler(spec, joined if seed_offset is None else seed_offset)
    study = optuna.load_study(study_name=spec.name, storage=rdb, sampler=sampler,
                              pruner=samplers.make_pruner(spec))
    return study, rdb


def _hparam_domain(domains: Sequence[Domain]) -> HParamDomain:
    """One HParams domain covering every domain a tracked name takes its values from."""
    numeric = all(domain.kind != "categorical" for domain in domains)
    if numeric and any(domain.searched for domain in domains):
        bounds = [value for domain in domains for value in domain.bounds()]
        integer = all(domain.kind == "int" for domain in domains)
        log = min(bounds) > 0 and all(domain.log_scale or not domain.searched for domain in domains)
        return HParamDomain(kind="int" if integer else "float", low=min(bounds), high=max(bounds),
                            log=log)
    choices: dict[Any, None] = {}
    for domain in domains:
        for value in domain.bounds():
            choices[build.trackable(value)] = None
    return HParamDomain(kind="categorical", choices=tuple(choices))


def task_metrics(task: gdbench.tasks.Task, population: bool) -> list[str]:
    """The metrics of a study's (or a confirmation's) HParams table, besides its objective.

    The per-epoch η is logged as a scalar but left out here: beside the
    hyperparameter of the same name it would show twice.
    """
    if isinstance(task, gdbench.tasks.ToyTask):
        if population:
            return ["loss"]
        return list(task.metrics(task.initial_parameters()))
    return [*task.logged_metrics(), *task.tested_metrics()]


def tracked_metrics(spec: StudySpec, context: StudyContext) -> list[str]:
    """The metrics of the study's HParams table (:func:`task_metrics`)."""
    return task_metrics(context.task, spec.population)


@contextlib.contextmanager
def tracker_setup(tracking_uri: str | None) -> Iterator[None]:
    """Held while a tracker starts: two processes starting on a fresh HOME would both
    migrate its new MLflow database."""
    database = storage.sqlite_path(tracking_uri or "")
    if database is None:
        yield
        return
    with storage.file_lock(database.with_name(f".{database.name}.setup.lock")):
        yield


def start_tracker(spec: StudySpec, where: Locations, context: StudyContext) -> StudyTracker:
    """Open the study's MLflow parent run and write its HParams config (stores created once)."""
    with tracker_setup(where.tracking_uri):
        return _start_tracker(spec, where, context)


def _start_tracker(spec: StudySpec, where: Locations, context: StudyContext) -> StudyTracker:
    restore_tracking(where.home, spec.name)
    tracker = StudyTracker(
        study_name=spec.name, tracking_uri=where.tracking_uri,
        tensorboard_dir=where.tensorboard_dir, experiment_name=spec.tracking.experiment_name,
        journal_dir=where.home / JOURNAL_FOLDER / spec.name,
    )
    domains = {name: HParamDomain.fixed(value) for name, value in context.study_params.items()}
    domains.update({name: _hparam_domain(found)
                    for name, found in build.tracked_domains(spec, context.total_steps).items()})
    domains[CONFIRM_HPARAM] = HParamDomain.fixed(False)
    tracker.start(
        hparam_domains=domains,
        metrics=[spec.objective.metric] + tracked_metrics(spec, context),
        params={
            **context.study_params, "objective": spec.objective.metric,
            "direction": spec.objective.direction, "sampler": spec.sampler.name,
            "pruner": spec.pruner.name, "trials": spec.trials,
            "optimizers": ",".join(o.label for o in spec.optimizers),
            "schedules": ",".join(s.label for s in spec.schedules) or NO_SCHEDULE,
        },
        tags={SPEC_TAG: str(spec.source) if spec.source else ""},
        description=spec.description, spec_file=spec.source,
        direction=spec.objective.direction, objective=objective_text(spec.objective),
    )
    return tracker


def objective_text(objective: ObjectiveSpec) -> str:
    """What a study's objective is: its metric, or the time its metric takes to reach
    the target (``epochs to val_accuracy ≥ 0.9``)."""
    if objective.target is None:
        return objective.metric
    direction = objective.metric_direction or objective.direction
    return (f"{objective.measure} to {objective.metric} "
            f"{'≥' if direction == 'maximize' else '≤'} {objective.target:g}")


def restore_tracking(home: Path, name: str) -> int:
    """Write the MLflow runs of finished trials of study ``name`` that processes which ended
    first left in HOME's journal (:func:`gdbench.tracking.restore_runs`); say how many."""
    folder = home / JOURNAL_FOLDER / name
    try:
        restored = tracking.restore_runs(folder)
    except OSError as error:
        logger.warning("study %s: the MLflow runs of finished trials waiting in %s are not "
                       "written: %s", name, folder, error.strerror or error)
        return 0
    if restored:
        logger.warning("study %s: restored %d MLflow run(s) of finished trials that a process "
                       "which ended first had left unwritten (from %s)", name, restored, folder)
    return restored


def finish_tracker(tracker: StudyTracker, study: optuna.Study, status: str, *,
                   interrupted: bool = False) -> None:
    """End the study's tracker as ``status`` while an error or interrupt ends the study: a
    failure of its own (a full disk) is logged at info level, and the error being handled
    goes on to be told."""
    try:
        tracker.finish(status, metrics=study_metrics(study), interrupted=interrupted)
    except Exception as error:  # noqa: BLE001 - the study's own error is the one to tell
        # The next run of the study ends it (it finds it RUNNING, as a killed process leaves it).
        logger.info("study %s: its MLflow parent run was not ended %s: %s",
                       tracker.study_name, status, str(error).splitlines()[0])


def study_metrics(study: optuna.Study) -> dict[str, float]:
    """The parent run's metrics: trials by final state (retried ones left out), the best value."""
    trials = storage.counted_trials(study)
    metrics = {f"trials_{state.name.lower()}": float(sum(t.state == state for t in trials))
               for state in storage.FINISHED_STATES}
    if any(t.state == TrialState.COMPLETE for t in trials):
        metrics["best_value"] = float(study.best_value)
    return metrics



def claim_figures(study: optuna.Study, rdb: optuna.storages.RDBStorage) -> bool:
    """Whether this process attaches the study's figures to their runs: the first of the
    processes that end together (workers sharing a study) to ask, for these trials."""
    finished = len(storage.counted_trials(study))
    with storage.ClaimLock(rdb, study.study_name).held():
        if study.user_attrs.get(FIGURES_ATTR) == finished:
            return False
        study.set_user_attr(FIGURES_ATTR, finished)
    return True
