"""Workers sharing one study across processes and machines.

``gdbench create`` (:func:`create_study`) creates a study in a shared storage,
once; then any number of ``gdbench worker`` processes (:func:`run_worker`) join
it, on this machine or others, and run trials until the study holds its budget.

Whatever the number of workers:

* **The budget holds.** A worker claims trials under a lock kept by the
  storage's own machine (a PostgreSQL advisory lock; a file lock beside a
  SQLite database): it counts the trials that use up the budget and asks for
  a new one only while the count is below it. N workers on a budget of M
  trials run M trials, not one more.
* **A dead worker's trial is run again.** A running trial records a heartbeat
  in the storage every ``heartbeat_interval`` seconds. The next worker that
  claims after ``grace_period`` seconds of silence marks the trial FAIL and
  queues it once more with the same hyperparameters (Optuna's
  ``RetryHeartbeatStaleTrialCallback``: the new trial's system attribute
  ``failed_trial`` holds the dead one's number). A failed trial that a retry
  replaces does not use up the budget; its retry does.
* **No run stays RUNNING.** The same worker ends the dead trial's MLflow
  child run as FAILED, tagged ``gdbench.reason`` = :data:`STALE_REASON`, and
  its TensorBoard session as a failure. The last worker to leave ends the
  study's MLflow parent run.

A worker leaves once the budget is used up and no trial runs any more: until
then it waits, ready to take a retry.

The storage URL names the driver of PostgreSQL:
``postgresql+psycopg2://user:password@host:5432/optuna`` (SQLAlchemy 2.1
reads a bare ``postgresql://`` as psycopg 3).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
import warnings
import zlib
from pathlib import Path
from typing import Any, Iterator, Sequence

import keras
import optuna
import sqlalchemy
from optuna.trial import FrozenTrial, TrialState

from gdbench.cli import DEFAULT_HOME, CommandError
from gdbench.study import build, report, runner
from gdbench.study.spec import SpecError, StudySpec, load_specs
from gdbench.tracking import StudyTracker

__all__ = [
    "DEFAULT_GRACE_PERIOD_S", "DEFAULT_HEARTBEAT_INTERVAL_S", "STALE_REASON", "add_worker_commands",
    "budget_used", "create_study", "load_study_spec", "run_worker",
]

logger = logging.getLogger(__name__)

#: Seconds between two heartbeats of a running trial.
DEFAULT_HEARTBEAT_INTERVAL_S = 20

#: Seconds without a heartbeat after which a running trial is taken for dead:
#: a few missed heartbeats, so that a busy storage is not mistaken for a death.
DEFAULT_GRACE_PERIOD_S = 90

#: The reason given to a trial whose worker stopped beating.
STALE_REASON = "worker died (heartbeat lost)"

#: Study user attributes written by :func:`create_study`.
BUDGET_ATTR = "trials_budget"
SPEC_FILE_ATTR = "spec_file"

#: Times a dead worker's trial is run again (a trial that kills its worker
#: every time, by running out of memory say, is not retried forever).
MAX_RETRY = 1


# -- creating a study ------------------------------------------------------------


def create_study(
    spec: StudySpec,
    storage_url: str,
    *,
    trials: int | None = None,
    home: str | Path = DEFAULT_HOME,
    tracking_uri: str | None = None,
    tensorboard_dir: str | Path | None = None,
) -> optuna.Study:
    """Create ``spec``'s study in ``storage_url`` for workers to join, and its trackers' study.

    Nothing is created twice: a study that exists is checked against the
    spec and kept. The spec file's text is kept in the study, so that a
    worker on another machine needs only the storage URL and the study's name.
    The MLflow experiment and parent run and the TensorBoard HParams config
    are written now, before any worker starts, so that workers never race to
    create them; the last worker to leave ends the parent run.

    Args:
        spec: the study spec (:func:`~gdbench.study.load_spec`).
        storage_url: a ``postgresql+psycopg2://`` or ``sqlite:///`` URL.
        trials: the trial budget shared by the workers, overriding the spec's.
        home: the folder of the default MLflow store and TensorBoard logs.
        tracking_uri: the MLflow tracking URI, overriding the spec's.
        tensorboard_dir: the study's TensorBoard folder, overriding
            ``HOME/tensorboard/<study>``.

    Returns:
        The study.

    Raises:
        ValueError: a bad argument, or an existing study with another direction
            or another spec.
    """
    _check_storage_url(storage_url)
    budget = None if trials is None else _positive_integer("trials", trials)
    where = _locations(spec, storage_url, home, tracking_uri, tensorboard_dir)
    study = runner._open_study(spec, where, seed_offset=0, create=True)
    _check_same_spec(spec, study)
    if budget is not None:
        study.set_user_attr(BUDGET_ATTR, budget)
    if spec.source is not None and SPEC_FILE_ATTR not in study.user_attrs:
        study.set_user_attr(SPEC_FILE_ATTR, {
            "name": spec.source.name, "path": str(spec.source),
            "text": spec.source.read_text(encoding="utf-8"),
        })
    runner._start_tracker(spec, where, runner._Context.create(spec)).flush()
    return study


def _locations(spec: StudySpec, storage_url: str, home: str | Path, tracking_uri: str | None,
               tensorboard_dir: str | Path | None) -> runner.Locations:
    where = runner.locations(spec, home=home, storage=storage_url, tracking_uri=tracking_uri)
    if tensorboard_dir is None:
        return where
    return dataclasses.replace(where, tensorboard_dir=Path(tensorboard_dir).resolve())


def load_study_spec(study_name: str, storage_url: str) -> StudySpec:
    """The spec that :func:`create_study` kept in study ``study_name``.

    Args:
        study_name: the study's name.
        storage_url: the storage holding it.

    Raises:
        KeyError: no such study in the storage.
        ValueError: the study was not created by :func:`create_study`.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=study_name, storage=storage_url)
    stored = study.user_attrs.get(SPEC_FILE_ATTR)
    if stored is None:
        raise ValueError(f"spec: study {study_name!r} keeps no spec (it was not created by "
                         "'gdbench create'); pass its spec file")
    with tempfile.TemporaryDirectory(prefix="gdbench-spec-") as folder:
        path = Path(folder) / stored["name"]
        path.write_text(stored["text"], encoding="utf-8")
        specs = {spec.name: spec for spec in load_specs(path)}
    if study_name not in specs:
        raise ValueError(f"spec: the spec kept in study {study_name!r} defines "
                         f"{', '.join(specs)}, not {study_name!r}")
    return dataclasses.replace(specs[study_name], source=Path(stored["path"]))


def _check_same_spec(spec: StudySpec, study: optuna.Study) -> None:
    """Trials of one study must come from one spec: compare what the study recorded."""
    recorded = study.user_attrs.get(runner.SPEC_ATTR)
    if recorded is None:
        return
    ours, theirs = json.loads(runner._summary(spec)), json.loads(recorded)
    # The file may sit elsewhere on another machine.
    ours.pop("source", None)
    theirs.pop("source", None)
    if ours != theirs:
        differing = sorted(key for key in ours.keys() | theirs.keys() if ours.get(key) != theirs.get(key))
        raise ValueError(f"spec: study {spec.name!r} was created from another spec "
                         f"(differs in {', '.join(differing)}); rename the study or use its spec")


# -- the budget ------------------------------------------------------------------


def budget_used(trials: Sequence[FrozenTrial]) -> int:
    """How many of ``trials`` use up the study's budget.

    Finished and running trials do, except a failed trial that a retry
    replaces (one named in a later trial's ``retry_history``); waiting trials
    do not, until a worker takes them.

    Args:
        trials: every trial of the study.
    """
    replaced = {number for trial in trials for number in trial.system_attrs.get("retry_history", ())}
    counted = report.FINISHED_STATES + (TrialState.RUNNING,)
    return sum(1 for trial in trials if trial.state in counted and trial.number not in replaced)


class _ClaimLock:
    """One study's claims, one worker at a time, across processes and machines.

    PostgreSQL keeps an advisory lock per session: a worker that dies holding
    it loses its connection, and the lock with it. SQLite workers share a
    file system: ``flock`` on a file beside the database, released by the
    kernel when its holder dies.
    """

    def __init__(self, storage: optuna.storages.RDBStorage, study_name: str) -> None:
        self.engine = storage.engine
        digest = hashlib.sha256(f"gdbench claim {study_name}".encode()).digest()
        self.key = int.from_bytes(digest[:8], "big", signed=True)
        self.lock_file: Path | None = None
        if self.engine.dialect.name == "sqlite":
            database = Path(self.engine.url.database or "")
            self.lock_file = database.with_name(f"{database.name}.{self.key & 0xFFFFFFFF:08x}.lock")

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        if self.lock_file is not None:
            import fcntl

            with open(self.lock_file, "a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)
            return
        with self.engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": self.key})
            connection.commit()
            try:
                yield
            finally:
                connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
                connection.commit()


class _StaleTrials:
    """Optuna's callback for a trial whose heartbeat stopped: queue a retry, remember the trial."""

    def __init__(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)
        self.found: list[FrozenTrial] = []

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.retry(study, trial)
        self.found.append(trial)
        logger.warning("trial %d: %s; marked FAIL, %s", trial.number, STALE_REASON,
                       "queued again" if not trial.system_attrs.get("retry_history") else
                       "not queued again (retried already)")


class _Heartbeat:
    """Records the heartbeat of some trials every interval, in a thread, until the block ends."""

    def __init__(self, storage: optuna.storages.RDBStorage, trial_ids: Sequence[int],
                 interval_s: float) -> None:
        self.storage = storage
        self.trial_ids = tuple(trial_ids)
        self.interval_s = interval_s
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.beat, name="gdbench-heartbeat", daemon=True)

    def beat(self) -> None:
        while not self.stop.wait(self.interval_s):
            for trial_id in self.trial_ids:
                try:
                    self.storage.record_heartbeat(trial_id)
                except sqlalchemy.exc.SQLAlchemyError as error:
                    # A storage that is briefly away must not end the trial; a long
                    # absence makes it stale, and it is run again.
                    logger.warning("heartbeat of trial id %d not recorded: %s", trial_id, error)

    def __enter__(self) -> _Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self.thread.join()


# -- the worker ------------------------------------------------------------------


def run_worker(
    study_name: str,
    storage_url: str,
    *,
    spec: StudySpec | None = None,
    home: str | Path = DEFAULT_HOME,
    tracking_uri: str | None = None,
    tensorboard_dir: str | Path | None = None,
    trials: int | None = None,
    worker_index: int | None = None,
    heartbeat_interval: int = DEFAULT_HEARTBEAT_INTERVAL_S,
    grace_period: int = DEFAULT_GRACE_PERIOD_S,
    poll_interval_s: float | None = None,
    quiet: bool = True,
) -> optuna.Study:
    """Join the existing study ``study_name`` and run its trials until its budget is used up.

    Args:
        study_name: the study's name.
        storage_url: its storage: ``postgresql+psycopg2://…`` or ``sqlite:///…``.
        spec: its spec; ``None`` for the one :func:`create_study` kept.
        home: the folder of the default MLflow store and TensorBoard logs.
        tracking_uri: the MLflow tracking URI (``http://mlflow:5000``),
            overriding the spec's.
        tensorboard_dir: the study's TensorBoard folder, overriding
            ``HOME/tensorboard/<study>``.
        trials: the budget, overriding the one given to :func:`create_study`
            and the spec's.
        worker_index: offsets the sampler's seed; ``None`` for one drawn
            from the host name and process id, so that workers started alike
            (``docker compose up --scale``) sample different points.
        heartbeat_interval: seconds between heartbeats of a running trial.
        grace_period: seconds without a heartbeat after which a trial is taken
            for dead, more than ``heartbeat_interval``.
        poll_interval_s: seconds between two looks at the study while others'
            trials run and the budget is used up; ``None`` for ``heartbeat_interval``.
        quiet: no progress bar.

    Returns:
        The study.

    Raises:
        KeyError: no study named ``study_name`` in the storage.
        ValueError: a bad argument, or a spec that is not the study's.
    """
    _check_storage_url(storage_url)
    heartbeat_interval = _positive_integer("heartbeat_interval", heartbeat_interval)
    grace_period = _positive_integer("grace_period", grace_period)
    if grace_period <= heartbeat_interval:
        raise ValueError(f"grace_period: expected more than heartbeat_interval "
                         f"({heartbeat_interval} s), got {grace_period}")
    if poll_interval_s is None:
        poll_interval_s = float(heartbeat_interval)
    elif isinstance(poll_interval_s, bool) or not isinstance(poll_interval_s, (int, float)) \
            or poll_interval_s <= 0:
        raise ValueError(f"poll_interval_s: expected a number > 0, got {poll_interval_s!r}")
    if worker_index is None:
        worker_index = zlib.crc32(f"{socket.gethostname()}:{os.getpid()}".encode()) % 1_000_000
    elif isinstance(worker_index, bool) or not isinstance(worker_index, int) or worker_index < 0:
        raise ValueError(f"worker_index: expected an integer >= 0, got {worker_index!r}")
    if trials is not None:
        trials = _positive_integer("trials", trials)
    if spec is None:
        spec = load_study_spec(study_name, storage_url)
    elif spec.name != study_name:
        raise ValueError(f"spec: describes study {spec.name!r}, not {study_name!r}")

    where = _locations(spec, storage_url, home, tracking_uri, tensorboard_dir)
    stale = _StaleTrials()
    storage = _heartbeat_storage(storage_url, heartbeat_interval, grace_period, stale)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pruner = runner.PRUNERS[spec.pruner.name](**spec.pruner.options)
    study = optuna.load_study(study_name=study_name, storage=storage,
                              sampler=runner._sampler(spec, worker_index), pruner=pruner)
    _check_same_spec(spec, study)
    stored_budget = study.user_attrs.get(BUDGET_ATTR)
    if trials is not None:
        budget = trials
    else:
        budget = stored_budget if stored_budget is not None else spec.trials
    budget = runner._capped_budget(spec, budget)

    context = runner._Context.create(spec)
    tracker = runner._start_tracker(spec, where, context)
    loop = _WorkerLoop(spec, study, tracker, context, budget,
                       runner._Progress(study, budget, spec.name, quiet),
                       runner._draws_figures(where),
                       storage=storage, stale=stale, where=where,
                       heartbeat_interval=heartbeat_interval, poll_interval_s=poll_interval_s)
    done = False
    try:
        done = loop.run_until_done()
    finally:
        if done:
            loop.close_orphan_runs()
            tracker.finish("FINISHED", metrics=runner._study_metrics(study))
        else:
            tracker.flush()
    return study


def _heartbeat_storage(url: str, heartbeat_interval: int, grace_period: int,
                       stale: _StaleTrials) -> optuna.storages.RDBStorage:
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite:///"):
        # Workers share one SQLite file: wait for its lock rather than fail.
        engine_kwargs = {"connect_args": {"timeout": 60}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = optuna.storages.RDBStorage(
            url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat_interval,
            grace_period=grace_period, heartbeat_stale_trial_callback=stale,
        )
    if url.startswith("sqlite:///"):
        sqlalchemy.event.listen(storage.engine, "connect", runner._sqlite_pragmas)
        storage.engine.dispose()
    return storage


class _WorkerLoop(runner._Loop):
    """The runner's loop, claiming trials under the study's lock and beating while they run."""

    def __init__(self, spec: StudySpec, study: optuna.Study, tracker: StudyTracker,
                 context: runner._Context, budget: int, progress: runner._Progress,
                 draws_figures: bool, *, storage: optuna.storages.RDBStorage,
                 stale: _StaleTrials, where: runner.Locations, heartbeat_interval: int,
                 poll_interval_s: float) -> None:
        super().__init__(spec, study, tracker, context, budget, (), progress, draws_figures)
        self.storage = storage
        self.lock = _ClaimLock(storage, spec.name)
        self.stale = stale
        self.where = where
        self.heartbeat_interval = heartbeat_interval
        self.poll_interval_s = poll_interval_s
        self.claimed: list[optuna.Trial] = []
        self.declared = set(context.study_params) | set(
            build.tracked_domains(spec, context.total_steps))

    def run_until_done(self) -> bool:
        """Claim and run trials until the budget is used up and nothing runs; ``True`` then."""
        try:
            while True:
                claimed = self.claim()
                self.close_stale_trials()
                if claimed is None:
                    return True
                if not claimed:
                    time.sleep(self.poll_interval_s)
                    continue
                self.claimed = claimed
                with _Heartbeat(self.storage, [t._trial_id for t in claimed], self.heartbeat_interval):
                    if self.spec.population:
                        self.run_batch(len(claimed))
                    else:
                        self.run_single()
                keras.backend.clear_session()
                gc.collect()
        finally:
            self.progress.close()
            shutil.rmtree(self.figure_dir, ignore_errors=True)

    def claim(self) -> list[optuna.Trial] | None:
        """Under the lock: fail stale trials, then take as many trials as the budget allows.

        Returns:
            The trials taken, their first heartbeat recorded; ``[]`` when the
            budget is used up but others' trials still run; ``None`` when the
            study is done.
        """
        with self.lock.held():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(self.study)
            trials = self.study.get_trials(deepcopy=False)
            free = self.budget - budget_used(trials)
            if free <= 0:
                running = any(trial.state == TrialState.RUNNING for trial in trials)
                return [] if running else None
            count = min(free, self.spec.trials_per_batch) if self.spec.population else 1
            waiting = sum(trial.state == TrialState.WAITING for trial in trials)
            with warnings.catch_warnings():
                # Optuna expects heartbeats with Study.optimize; this loop records its own.
                warnings.filterwarnings("ignore", message="Heartbeat of storage")
                # Retries first: Optuna hands out waiting trials before new ones.
                claimed = [self.study.ask() for _ in range(min(count, waiting))]
                if count > len(claimed):
                    claimed += super().ask(count - len(claimed))
            for trial in claimed:
                # Before the lock is released: a trial without any heartbeat is never stale.
                self.storage.record_heartbeat(trial._trial_id)
        return claimed

    def ask(self, count: int) -> list[optuna.Trial]:
        """The trials :meth:`claim` took (the runner's loop asks for them)."""
        claimed, self.claimed = self.claimed, []
        if len(claimed) != count:
            raise RuntimeError(f"asked for {count} trials, {len(claimed)} claimed")
        return claimed

    # -- closing what a dead worker left open --------------------------------

    def close_stale_trials(self) -> None:
        """End the MLflow run and TensorBoard session of every trial found stale since last time."""
        found, self.stale.found = self.stale.found, []
        for trial in found:
            self.close_trial_tracking(trial)

    def close_orphan_runs(self) -> None:
        """End the MLflow runs still RUNNING of trials that Optuna failed for a lost heartbeat.

        A worker that found a stale trial and died before closing its run
        leaves this to the last worker.
        """
        failed = {trial.number: trial for trial in self.study.get_trials(
            deepcopy=False, states=(TrialState.FAIL,))
            if report.FAIL_REASON_ATTR not in trial.user_attrs}
        for number in self.tracker.open_trial_numbers() & set(failed):
            self.close_trial_tracking(failed[number])

    def close_trial_tracking(self, trial: FrozenTrial) -> None:
        """End trial ``trial``'s MLflow run (FAILED, with :data:`STALE_REASON`) and TensorBoard session.

        A trial whose worker died before opening its MLflow run gets one, failed.
        """
        params = {key: value for key, value in {
            **self.context.study_params, **trial.user_attrs.get(report.HYPERPARAMETERS_ATTR, {}),
        }.items() if key in self.declared}
        self.tracker.fail_trial(trial.number, params, STALE_REASON)



def _check_storage_url(url: Any) -> None:
    """Workers share a claim lock only on PostgreSQL and SQLite; name the driver of PostgreSQL."""
    if not isinstance(url, str) or not url.startswith(("postgresql", "sqlite:///")):
        raise ValueError(f"storage: expected a postgresql+psycopg2:// or sqlite:/// URL "
                         f"(the storages whose workers share a claim lock), got {url!r}")
    if url.startswith("postgresql://") and importlib.util.find_spec("psycopg") is None:
        raise ValueError("storage: SQLAlchemy reads postgresql:// as the psycopg 3 driver, "
                         "which is not installed; write postgresql+psycopg2:// instead")


def _positive_integer(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
    return value


# -- the command line ------------------------------------------------------------


def add_worker_commands(commands: Any) -> None:
    """Add ``gdbench create`` and ``gdbench worker`` to the ``gdbench`` command line.

    Args:
        commands: the ``argparse`` sub-parsers of the ``gdbench`` parser.
    """
    create = commands.add_parser(
        "create", help="create a study in a shared storage, for workers to join",
        description="Create the studies of SPEC in the storage (nothing more when they exist), "
                    "keeping the spec in each, so that 'gdbench worker --study NAME' needs "
                    "nothing else.",
    )
    create.add_argument("spec", type=Path, metavar="SPEC", help="a study spec (TOML)")
    create.add_argument("--storage", required=True, metavar="URL",
                        help="the shared Optuna storage: postgresql+psycopg2://USER:PASSWORD@HOST/DB")
    create.add_argument("--study", metavar="NAME", help="only this study of SPEC")
    create.add_argument("--trials", type=int, metavar="N",
                        help="the study's trial budget, counted across workers (overrides the spec)")
    _add_tracking_arguments(create)
    create.set_defaults(handler=_create_command)

    worker = commands.add_parser(
        "worker", help="join a study as one more worker, until its budget is used up",
        description="Run trials of an existing study until it holds its budget of trials, counted "
                    "across every worker. A trial whose worker dies (no heartbeat for "
                    "--grace-period seconds) is failed and run again once.",
    )
    worker.add_argument("spec", type=Path, nargs="?", metavar="SPEC",
                        help="the study's spec file (default: the spec kept by 'gdbench create')")
    worker.add_argument("--study", metavar="NAME", help="the study's name (needed without SPEC, "
                                                        "or when SPEC holds several)")
    worker.add_argument("--storage", metavar="URL",
                        help="the shared Optuna storage (default: the spec's, or "
                             "sqlite:///HOME/optuna.db)")
    _add_tracking_arguments(worker)
    worker.add_argument("--trials", type=int, metavar="N", help="the budget (overrides the study's)")
    worker.add_argument("--worker-index", type=int, metavar="I",
                        help="offsets the sampler's seed (default: drawn from host and process)")
    worker.add_argument("--heartbeat-interval", type=int, default=DEFAULT_HEARTBEAT_INTERVAL_S,
                        metavar="S", help=f"seconds between heartbeats (default "
                                          f"{DEFAULT_HEARTBEAT_INTERVAL_S})")
    worker.add_argument("--grace-period", type=int, default=DEFAULT_GRACE_PERIOD_S, metavar="S",
                        help=f"seconds without a heartbeat before a trial is taken for dead "
                             f"(default {DEFAULT_GRACE_PERIOD_S})")
    worker.add_argument("--progress", action="store_true", help="show a progress bar")
    worker.set_defaults(handler=_worker_command)


def _add_tracking_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME, metavar="DIR",
                        help=f"folder of the default MLflow store and TensorBoard logs "
                             f"(default: {DEFAULT_HOME})")
    parser.add_argument("--tracking-uri", metavar="URI",
                        help="MLflow tracking URI, e.g. http://mlflow:5000 "
                             "(default: the spec's, or sqlite:///HOME/mlflow.db)")
    parser.add_argument("--tensorboard-dir", type=Path, metavar="DIR",
                        help="the study's TensorBoard folder (default: HOME/tensorboard/STUDY)")


def _chosen_specs(path: Path, study: str | None) -> list[StudySpec]:
    specs = load_specs(path)
    if study is None:
        return specs
    chosen = [spec for spec in specs if spec.name == study]
    if not chosen:
        raise CommandError(f"--study: {path} holds no study named {study!r}; it holds "
                           + ", ".join(spec.name for spec in specs))
    return chosen


def _create_command(arguments: argparse.Namespace) -> int:
    for spec in _chosen_specs(arguments.spec, arguments.study):
        try:
            study = create_study(spec, arguments.storage, trials=arguments.trials,
                                 home=arguments.home, tracking_uri=arguments.tracking_uri,
                                 tensorboard_dir=arguments.tensorboard_dir)
        except ValueError as error:
            raise CommandError(str(error)) from None
        budget = study.user_attrs.get(BUDGET_ATTR, spec.trials)
        print(f"study {spec.name}: {len(study.trials)} trials so far, budget {budget}")
    return 0


def _worker_command(arguments: argparse.Namespace) -> int:
    spec = None
    if arguments.spec is not None:
        specs = _chosen_specs(arguments.spec, arguments.study)
        if len(specs) > 1:
            raise CommandError(f"--study: {arguments.spec} holds several studies; name one of "
                               + ", ".join(s.name for s in specs))
        spec = specs[0]
    elif arguments.study is None or arguments.storage is None:
        raise CommandError("give SPEC, or --study NAME with --storage URL")
    name = spec.name if spec is not None else arguments.study
    storage = arguments.storage
    if storage is None:
        storage = runner.locations(spec, home=arguments.home).storage  # type: ignore[arg-type]
    try:
        run_worker(name, storage, spec=spec, home=arguments.home,
                   tracking_uri=arguments.tracking_uri, tensorboard_dir=arguments.tensorboard_dir,
                   trials=arguments.trials, worker_index=arguments.worker_index,
                   heartbeat_interval=arguments.heartbeat_interval,
                   grace_period=arguments.grace_period, quiet=not arguments.progress)
    except KeyError:
        raise CommandError(f"no study named {name!r} in {storage}; create it with "
                           f"'gdbench create SPEC --storage URL'") from None
    except ValueError as error:
        if isinstance(error, SpecError):
            raise
        raise CommandError(str(error)) from None
    return 0
