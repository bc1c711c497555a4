"""Where trials are kept, and how processes share them: storage, heartbeats, claims, retries.

Every study lives in an RDB storage (SQLite by default, PostgreSQL for many
machines), opened with Optuna's heartbeats. Whatever the number of processes
(``gdbench run`` or ``gdbench worker``) on one study:

* **A live process keeps its trials.** A running trial records a heartbeat
  every ``heartbeat_interval`` seconds; it is taken for dead, failed and
  queued again only once its heartbeat is ``grace_period`` seconds old.
* **The budget holds.** Trials are claimed under a lock kept by the storage's
  own machine (a PostgreSQL advisory lock; a file lock beside a SQLite
  database), counting the trials that use up the budget (:func:`budget_used`).
* **An interrupted trial is not a result.** A trial stopped by a signal or a
  lost heartbeat is failed with the reason and queued again with the same
  hyperparameters and no user attribute (:func:`queue_again`): the new trial's
  system attributes ``failed_trial`` and ``retry_history`` name the trials it
  replaces, which then use up no budget.
* **Schemas are created once.** The first process on a fresh storage creates
  its tables under a lock; the others wait for it.

The URL of PostgreSQL names its driver: ``postgresql+psycopg2://user:password@host/db``
(SQLAlchemy 2.1 reads a bare ``postgresql://`` as psycopg 3).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import optuna
import sqlalchemy
from optuna.trial import FrozenTrial, TrialState

from gdbench._files import file_lock
from gdbench.study import keys
from gdbench.study.defaults import DEFAULT_GRACE_PERIOD_S, DEFAULT_HEARTBEAT_INTERVAL_S
from gdbench.study.errors import StudyError
from gdbench.study.trials import records

__all__ = [
    "ClaimLock", "DEFAULT_GRACE_PERIOD_S", "DEFAULT_HEARTBEAT_INTERVAL_S", "FINISHED_STATES",
    "MAX_STALE_RETRIES", "StaleTrials", "budget_used", "check_database_url",
    "check_sqlite_file",
    "counted_trials", "file_lock", "open_storage", "read_only_url", "queue_again", "queue_all_again", "replaced_trials", "sqlite_path",
]

logger = logging.getLogger(__name__)

#: Trial states that end a trial.
FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)

#: Times a trial whose process died is queued again: a trial that kills its
#: process every time (by running out of memory, say) is not retried forever.
#: A trial stopped by a signal is always queued again: the signal is not its fault.
MAX_STALE_RETRIES = 1

#: Seconds to wait for a database server before calling it unreachable.
CONNECT_TIMEOUT_S = 10

#: Times a storage's schema creation is tried when another program creates it at the same moment.
SETUP_ATTEMPTS = 5

_SQLITE_PREFIX = "sqlite:///"


def sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL; ``None`` for any other URL."""
    return Path(url[len(_SQLITE_PREFIX):]) if url.startswith(_SQLITE_PREFIX) else None


def read_only_url(url: str) -> tuple[str, bool]:
    """``url`` to read a study from, and whether it is read only.

    A SQLite database in a folder this process cannot write (a read-only
    mount, an archive of another user's) cannot be opened as it is kept (in
    WAL mode, whose index file goes beside it): it is opened read only and as
    immutable, which SQLite may assume only while nothing writes it; nothing
    can, where its folder is read only. Any other URL is returned as given.
    """
    database = sqlite_path(url)
    if database is None or not database.is_file() or os.access(database.parent, os.W_OK):
        return url, False
    return f"{_SQLITE_PREFIX}file:{database}?mode=ro&immutable=1&uri=true", True


def check_sqlite_file(database: Path, field: str) -> None:
    """Refuse a SQLite file that this process could not write, before anything is written.

    A missing file is created later, in a folder this process must be able to write
    to; an existing one must be writable, in such a folder (SQLite keeps its journal
    beside it), and sound: its pages are read through (``PRAGMA quick_check``, about a
    second for 100 MB).

    Args:
        database: the file.
        field: the setting it comes from, for the message.

    Raises:
        StudyError: naming ``field``, the file and the cause: damaged, read-only or locked.
    """
    folder = database.parent
    if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
        raise StudyError(f"{field}: the folder of {database} is read-only; SQLite writes the "
                         "database and its journal there")
    if not database.exists():
        return
    if not os.access(database, os.W_OK):
        raise StudyError(f"{field}: {database} is read-only; make it writable or use another HOME")
    try:
        connection = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True,
                                     timeout=CONNECT_TIMEOUT_S)
        try:
            problem = connection.execute("PRAGMA quick_check(1)").fetchone()[0]
        finally:
            connection.close()
    except sqlite3.OperationalError as error:
        if "locked" not in str(error):
            raise StudyError(f"{field}: {database} cannot be read: {error}") from None
        raise StudyError(f"{field}: {database} is locked by another program for over "
                         f"{CONNECT_TIMEOUT_S} s") from None
    except sqlite3.DatabaseError as error:
        problem = str(error)
    if problem != "ok":
        raise StudyError(f"{field}: {database} is damaged ({' '.join(problem.split())}); "
                         "restore it from a copy, or move it away to start afresh")


#: The storages whose processes can share a claim lock.
STORAGE_BACKENDS = ("sqlite", "postgresql")


def check_database_url(url: str, field: str, backends: Sequence[str] | None = None) -> None:
    """Refuse a database URL that cannot work, before anything is created.

    An unknown dialect or a missing driver is named at once; a server is
    connected to (at most :data:`CONNECT_TIMEOUT_S` seconds); a SQLite file
    needs its folder to exist.

    Args:
        url: a SQLAlchemy URL (``sqlite:////abs/optuna.db``, ``postgresql+psycopg2://…``).
        field: the setting it comes from, for the message.
        backends: the database systems accepted; ``None`` for any.

    Raises:
        StudyError: the URL cannot work; the message says why and names ``field``.
    """
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except sqlalchemy.exc.ArgumentError:
        raise StudyError(f"{field}: {url!r} is not a database URL; expected sqlite:///PATH or "
                         "postgresql+psycopg2://USER:PASSWORD@HOST/DB") from None
    if parsed.drivername == "postgresql":
        raise StudyError(f"{field}: SQLAlchemy reads postgresql:// as the psycopg 3 driver; "
                         "write postgresql+psycopg2:// (pip install gdbench[postgres])")
    if backends is not None and parsed.get_backend_name() not in backends:
        raise StudyError(f"{field}: {parsed.get_backend_name()} is not supported here; use "
                         + " or ".join(backends))
    try:
        dialect = parsed.get_dialect()
        dialect.import_dbapi()
    except sqlalchemy.exc.NoSuchModuleError:
        raise StudyError(f"{field}: unknown database {parsed.drivername!r} in {url!r}; "
                         "expected sqlite:///PATH or postgresql+psycopg2://…") from None
    except ImportError as error:
        raise StudyError(f"{field}: the driver of {parsed.drivername!r} is not installed "
                         f"({error.name or error}); for PostgreSQL: pip install gdbench[postgres]"
                         ) from None
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:"):
            raise StudyError(f"{field}: an in-memory SQLite database keeps nothing; give a file, "
                             "sqlite:///PATH")
        if not Path(database).parent.is_dir():
            raise StudyError(f"{field}: the folder of {database} does not exist; create it first")
        return
    connect_args = {"connect_timeout": CONNECT_TIMEOUT_S} if parsed.get_backend_name() in (
        "postgresql", "mysql") else {}
    engine = sqlalchemy.create_engine(parsed, connect_args=connect_args, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect():
            pass
    except sqlalchemy.exc.SQLAlchemyError as error:
        reason = str(getattr(error, "orig", error)).strip().splitlines()[0]
        raise StudyError(f"{field}: cannot reach the database at "
                         f"{parsed.render_as_string(hide_password=True)}: {reason}") from None
    finally:
        engine.dispose()


@contextlib.contextmanager
def _advisory_lock(engine: sqlalchemy.engine.Engine, key: int) -> Iterator[None]:
    """A PostgreSQL session-level advisory lock; a holder that dies loses it with its connection."""
    with engine.connect() as connection:
        connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": key})
        connection.commit()
        try:
            yield
        finally:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            connection.commit()


def _lock_key(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)


@contextlib.contextmanager
def setup_lock(url: str) -> Iterator[None]:
    """Hold the lock under which a storage's schema is created (SQLite and PostgreSQL)."""
    database = sqlite_path(url)
    if database is not None:
        with file_lock(database.with_name(f".{database.name}.setup.lock")):
            yield
        return
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        if engine.dialect.name == "postgresql":
            with _advisory_lock(engine, _lock_key("gdbench setup")):
                yield
        else:
            yield
    finally:
        engine.dispose()


def _sqlite_pragmas(connection: Any, record: Any) -> None:
    """Write-ahead logging: readers (optuna-dashboard, other processes) never block the writer,
    and a commit costs no disk flush (a crash of the process loses nothing; a power cut may
    lose the last commits)."""
    del record
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def open_storage(url: str, *, heartbeat_interval: int = DEFAULT_HEARTBEAT_INTERVAL_S,
                 grace_period: int = DEFAULT_GRACE_PERIOD_S,
                 on_stale: Callable[[optuna.Study, FrozenTrial], None] | None = None,
                 ) -> optuna.storages.RDBStorage:
    """The RDB storage at ``url`` with heartbeats, its schema created once under a lock.

    Args:
        url: a checked database URL (:func:`check_database_url`).
        heartbeat_interval: seconds between two heartbeats of a running trial.
        grace_period: seconds without a heartbeat before a trial is taken for dead.
        on_stale: called with each trial found dead (:class:`StaleTrials`).
    """
    engine_kwargs: dict[str, Any] = {}
    if sqlite_path(url) is not None:
        # Processes share one SQLite file: wait for its lock rather than fail.
        engine_kwargs = {"connect_args": {"timeout": 60}}
    with setup_lock(url), warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        for attempt in range(SETUP_ATTEMPTS):
            try:
                storage = optuna.storages.RDBStorage(
                    url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat_interval,
                    grace_period=grace_period, heartbeat_stale_trial_callback=on_stale,
                )
                break
            except sqlalchemy.exc.SQLAlchemyError:
                # Something that does not take our lock (optuna-dashboard, a script's
                # optuna.load_study) created the same tables at the same moment; the
                # schema is there now, or will be at the next attempt.
                if attempt == SETUP_ATTEMPTS - 1:
                    raise
                time.sleep(0.5 * (attempt + 1))
    if sqlite_path(url) is not None:
        sqlalchemy.event.listen(storage.engine, "connect", _sqlite_pragmas)
        # Connections opened while creating the tables predate the pragmas.
        storage.engine.dispose()
    return storage


class ClaimLock:
    """One study's claims, one process at a time, across processes and machines.

    PostgreSQL keeps an advisory lock per session: a process that dies holding
    it loses its connection, and the lock with it. SQLite users share a
    file system: ``flock`` on a file beside the database, freed by the kernel
    when its holder dies.

    Args:
        storage: the study's storage.
        study_name: the study's name.
    """

    def __init__(self, storage: optuna.storages.RDBStorage, study_name: str) -> None:
        self.engine = storage.engine
        self.key = _lock_key(f"gdbench claim {study_name}")
        self.lock_file: Path | None = None
        if self.engine.dialect.name == "sqlite":
            database = Path(self.engine.url.database or "")
            self.lock_file = database.with_name(f".{database.name}.{self.key & 0xFFFFFFFF:08x}.lock")

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Hold the lock for the block."""
        if self.lock_file is not None:
            with file_lock(self.lock_file):
                yield
            return
        with _advisory_lock(self.engine, self.key):
            yield


def replaced_trials(trials: Sequence[FrozenTrial]) -> set[int]:
    """Numbers of the trials that a later trial runs again (named in its ``retry_history``)."""
    return {number for trial in trials for number in trial.system_attrs.get("retry_history", ())}


def counted_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The study's finished trials that count: those no retry replaces."""
    trials = study.get_trials(deepcopy=False)
    replaced = replaced_trials(trials)
    return [t for t in trials if t.state in FINISHED_STATES and t.number not in replaced]


def budget_used(trials: Sequence[FrozenTrial]) -> int:
    """How many of ``trials`` use up the study's budget.

    Finished and running trials do, except a failed trial that a retry
    replaces; waiting trials do not, until a process takes them.

    Args:
        trials: every trial of the study.
    """
    replaced = replaced_trials(trials)
    counted = FINISHED_STATES + (TrialState.RUNNING,)
    return sum(1 for trial in trials if trial.state in counted and trial.number not in replaced)


def queue_again(study: optuna.Study, trial: FrozenTrial) -> None:
    """Queue a failed ``trial`` once more with its hyperparameters.

    The copy is WAITING, so the next claim takes it before any new trial. It starts
    with no user attribute (what the failed trial recorded, its reason above all, is
    the failed trial's); its ``failed_trial`` and ``retry_history`` name the trials it
    replaces.
    """
    study.add_trial(optuna.trial.create_trial(
        state=TrialState.WAITING, params=trial.params, distributions=trial.distributions,
        system_attrs=_retry_attrs(trial)))


def queue_all_again(storage: optuna.storages.RDBStorage, study: optuna.Study,
                    trials: Sequence[FrozenTrial]) -> None:
    """:func:`queue_again` for several trials, in one transaction."""
    records.create_trials(storage, records.study_id(study), [records.NewTrial(
        {name: (trial.distributions[name], value) for name, value in trial.params.items()},
        TrialState.WAITING, system_attrs=_retry_attrs(trial)) for trial in trials])


def _retry_attrs(trial: FrozenTrial) -> dict[str, Any]:
    return {"failed_trial": trial.number,
            "retry_history": [*trial.system_attrs.get("retry_history", ()), trial.number]}


class StaleTrials:
    """Optuna's callback for a trial whose heartbeat stopped: give its reason, queue it
    again, remember it.

    Optuna has failed the trial; its ``fail_reason`` says why, and whether it is queued
    again, as every failed trial's does.

    Attributes:
        found: the stale trials seen since the last :meth:`take`, their reason given.
    """

    def __init__(self) -> None:
        self.found: list[FrozenTrial] = []

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        retried = len(trial.system_attrs.get("retry_history", ()))
        queued = retried < MAX_STALE_RETRIES
        reason = keys.stale_reason(retried + 1, queued)
        records.write_ended_attrs(study, records.trial_id(trial), {keys.FAIL_REASON_ATTR: reason})
        trial.set_user_attr(keys.FAIL_REASON_ATTR, reason)
        if queued:
            queue_again(study, trial)
        logger.warning("trial %d: %s", trial.number, reason)
        self.found.append(trial)

    def take(self) -> list[FrozenTrial]:
        """The stale trials found since the last call."""
        found, self.found = self.found, []
        return found
