"""Workers sharing one study across processes and machines.

``gdbench create`` (:func:`create_study`) creates a study in a shared storage,
once; then any number of ``gdbench worker`` processes (:func:`run_worker`) join
it, on this machine or others, and run trials until the study holds its budget.
They run the same trial loop as ``gdbench run`` (:mod:`gdbench.study.trials.loop`),
claim trials the same way (:mod:`gdbench.study.trials.storage`: the budget holds, a
dead worker's trial is run again, a live one's never taken), and can be mixed
with ``gdbench run`` processes of the same study.

A worker leaves once the budget is used up and no trial runs any more: until
then it waits, ready to take a retry. The last one to leave ends the study's
MLflow parent run.

The storage URL names the driver of PostgreSQL:
``postgresql+psycopg2://user:password@host:5432/optuna`` (SQLAlchemy 2.1
reads a bare ``postgresql://`` as psycopg 3).
"""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

from gdbench.study.defaults import (
    DEFAULT_GRACE_PERIOD_S,
    DEFAULT_HEARTBEAT_INTERVAL_S,
    DEFAULT_HOME,
)
from gdbench.study.errors import StudyError
from gdbench.study.keys import BUDGET_ATTR, SPEC_FILE_ATTR
from gdbench.study.plan import inclusions, samplers
from gdbench.study.plan.loading import load_specs
from gdbench.study.plan.tables import spec_text
from gdbench.study.report import leaderboard as report
from gdbench.study.spec.model import StudySpec
from gdbench.study.trials import loop, session
from gdbench.study.trials.progress import Progress
from gdbench.study.trials.session import Locations, StudyContext
from gdbench.study.trials.storage import (
    STORAGE_BACKENDS,
    StaleTrials,
    check_database_url,
)

__all__ = ["create_study", "load_study_spec", "run_local_workers", "run_worker"]


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
    are written now, before any worker starts.

    Args:
        spec: the study spec (:func:`~gdbench.study.load_spec`).
        storage_url: a ``postgresql+psycopg2://`` or ``sqlite:///`` URL.
        trials: the trial budget shared by the workers, overriding the spec's.
        home: the folder of the default MLflow store and TensorBoard logs.
        tracking_uri: the MLflow tracking URI, overriding the spec's.
        tensorboard_dir: the study's TensorBoard folder, overriding ``HOME/tensorboard/<study>``.

    Raises:
        StudyError: a bad argument or location, or an existing study of another spec.
    """
    budget = None if trials is None else session.positive_integer("trials", trials)
    where = session.locations(spec, home=home, storage_url=storage_url,
                              tracking_uri=tracking_uri, tensorboard_dir=tensorboard_dir)
    session.check_locations(where)
    inclusions.warn_broken_inclusions(spec)
    context = StudyContext.create(spec)
    session.create_home(where)
    study, _ = session.open_study(spec, where, create=True, stale=StaleTrials(), seed_offset=0)
    if budget is not None:
        study.set_user_attr(BUDGET_ATTR, budget)
    if spec.source is not None and SPEC_FILE_ATTR not in study.user_attrs:
        study.set_user_attr(SPEC_FILE_ATTR, {
            "name": spec.source.name, "path": str(spec.source),
            "text": spec_text(spec.source),
        })
    session.start_tracker(spec, where, context).flush()
    return study


def load_study_spec(study_name: str, storage_url: str) -> StudySpec:
    """The spec that :func:`create_study` kept in study ``study_name``.

    Args:
        study_name: the study's name.
        storage_url: the storage holding it.

    Raises:
        KeyError: no such study in the storage.
        StudyError: the study was not created by :func:`create_study`.
    """
    session.check_study_name(study_name)
    check_database_url(storage_url, "storage", STORAGE_BACKENDS)
    study = optuna.load_study(study_name=study_name, storage=storage_url)
    stored = study.user_attrs.get(SPEC_FILE_ATTR)
    if stored is None:
        raise StudyError(f"spec: study {study_name!r} keeps no spec (it was not created by "
                         "'gdbench create'); pass its spec file")
    with tempfile.TemporaryDirectory(prefix="gdbench-spec-") as folder:
        path = Path(folder) / stored["name"]
        path.write_text(stored["text"], encoding="utf-8")
        specs = {spec.name: spec for spec in load_specs(path)}
    if study_name not in specs:
        raise StudyError(f"spec: the spec kept in study {study_name!r} defines "
                         f"{', '.join(specs)}, not {study_name!r}")
    return dataclasses.replace(specs[study_name], source=Path(stored["path"]))


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
        tracking_uri: the MLflow tracking URI (``http://mlflow:5000``), overriding the spec's.
        tensorboard_dir: the study's TensorBoard folder, overriding ``HOME/tensorboard/<study>``.
        trials: the budget, overriding the one given to :func:`create_study` and the spec's.
        worker_index: offsets the sampler's seed; ``None`` for the number of
            processes that joined the study before this one.
        heartbeat_interval: seconds between heartbeats of a running trial.
        grace_period: seconds without a heartbeat after which a trial is taken
            for dead, more than ``heartbeat_interval``.
        poll_interval_s: seconds between two looks at the study while others'
            trials run and the budget is used up; ``None`` for ``heartbeat_interval``.
        quiet: no progress bar.

    Raises:
        KeyError: no study named ``study_name`` in the storage.
        StudyError: a bad argument, or a spec that is not the study's.
    """
    session.check_study_name(study_name)
    heartbeat_interval = session.positive_integer("heartbeat_interval", heartbeat_interval)
    grace_period = session.positive_integer("grace_period", grace_period)
    if grace_period <= heartbeat_interval:
        raise StudyError(f"grace_period: expected more than heartbeat_interval "
                         f"({heartbeat_interval} s), got {grace_period}")
    if poll_interval_s is None:
        poll_interval_s = float(heartbeat_interval)
    elif isinstance(poll_interval_s, bool) or not isinstance(poll_interval_s, (int, float)) \
            or poll_interval_s <= 0:
        raise StudyError(f"poll_interval_s: expected a number > 0, got {poll_interval_s!r}")
    if worker_index is not None and (isinstance(worker_index, bool)
                                     or not isinstance(worker_index, int) or worker_index < 0):
        raise StudyError(f"worker_index: expected an integer >= 0, got {worker_index!r}")
    if trials is not None:
        trials = session.positive_integer("trials", trials)
    if spec is None:
        spec = load_study_spec(study_name, storage_url)
    elif spec.name != study_name:
        raise StudyError(f"spec: describes study {spec.name!r}, not {study_name!r}")

    where = session.locations(spec, home=home, storage_url=storage_url,
                              tracking_uri=tracking_uri, tensorboard_dir=tensorboard_dir)
    session.check_locations(where)
    context = StudyContext.create(spec)
    session.create_home(where)
    stale = StaleTrials()
    study, rdb = session.open_study(spec, where, create=False, stale=stale,
                                    heartbeat_interval=heartbeat_interval,
                                    grace_period=grace_period, seed_offset=worker_index)
    stored_budget = study.user_attrs.get(BUDGET_ATTR)
    budget = trials if trials is not None else (
        stored_budget if stored_budget is not None else spec.trials)
    budget = samplers.capped_budget(spec, budget)
    tracker = session.start_tracker(spec, where, context)
    try:
        loop.run_trials(spec, study, rdb, stale, tracker, context, budget, quiet=quiet,
                        heartbeat_interval=heartbeat_interval,
                        poll_interval_s=poll_interval_s)
        # The first of the workers that end together draws the study's figures, and
        # attaches them to their trials' runs.
        if session.claim_figures(study, rdb):
            report.write_study_report(spec, study, where, context, tracker, quiet=quiet)
    except KeyboardInterrupt:
        # The study's parent run, shared by its processes: interrupted here.
        session.finish_tracker(tracker, study, "KILLED", interrupted=True)
        raise
    except BaseException:
        session.finish_tracker(tracker, study, "FAILED")
        raise
    tracker.finish("FINISHED", metrics=session.study_metrics(study))
    return study


def run_local_workers(spec: StudySpec, where: Locations, budget: int, workers: int, *,
                      quiet: bool, heartbeat_interval: int, grace_period: int) -> None:
    """Start ``workers`` ``gdbench worker`` processes on the study; wait, showing progress.

    Raises:
        RuntimeError: a worker exited with an error.
    """
    command = [sys.executable, "-m", "gdbench", "worker", str(spec.source), "--study", spec.name,
               "--storage", where.storage, "--home", str(where.home), "--trials", str(budget),
               "--heartbeat-interval", str(heartbeat_interval),
               "--grace-period", str(grace_period)]
    if where.tracking_uri is not None:
        command += ["--tracking-uri", where.tracking_uri]
    if where.tensorboard_dir is not None:
        command += ["--tensorboard-dir", str(where.tensorboard_dir)]
    # The workers write where this process writes its own errors and progress.
    processes = [subprocess.Popen(command + ["--worker-index", str(index + 1)], stderr=sys.stderr)
                 for index in range(workers)]
    study = optuna.load_study(study_name=spec.name, storage=where.storage)
    progress = Progress(study, budget, spec.name, quiet)
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

