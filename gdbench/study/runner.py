"""Running a study on this machine: ``gdbench run``.

One invocation of :func:`run_study`:

1. checks every location (storage, tracking server, folders) before anything
   is created, warns of search spaces that break an inclusion between the
   optimizers compared (:mod:`gdbench.study.plan.inclusions`), then creates (or
   resumes) the Optuna study named after the spec;
2. opens the study's MLflow parent run and TensorBoard HParams experiment;
3. claims and runs trials until the study holds ``trials`` counted ones
   (:mod:`gdbench.study.trials.loop`): a rerun of the same command runs only the
   rest, and any number of ``gdbench run`` or ``gdbench worker`` processes on
   the same study share the budget;
4. when the spec asks (``confirm = {seeds = N}``), reruns each optimizer's best
   over N seeds (:mod:`gdbench.study.compare.confirm`);
5. writes the report (leaderboard, Optuna's plots, the best trials' paths and
   curves, the confirmation) and attaches it to the parent run.

Ctrl-C (or SIGTERM through the command line) stops within seconds: the
interrupted trials are failed with the signal named and queued again, and the
next run takes them first.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import optuna

from gdbench.study import worker
from gdbench.study.compare import confirm
from gdbench.study.defaults import (
    DEFAULT_GRACE_PERIOD_S,
    DEFAULT_HEARTBEAT_INTERVAL_S,
    DEFAULT_HOME,
)
from gdbench.study.errors import StudyError
from gdbench.study.plan import brought, brought_task, inclusions, samplers
from gdbench.study.report import leaderboard as report
from gdbench.study.spec.model import StudySpec
from gdbench.study.trials import loop, session
from gdbench.study.trials.loop import StudyCallback
from gdbench.study.trials.session import StudyContext
from gdbench.study.trials.storage import StaleTrials

logger = logging.getLogger(__name__)

__all__ = ["run_study"]

#: The loggers whose information lines a quiet study holds back (beside Optuna's own, set
#: through its API): MLflow's and its migrations' ("Creating initial MLflow database tables").
_CHATTY_LOGGERS = ("mlflow", "alembic")


@contextlib.contextmanager
def _quiet_logs(quiet: bool) -> Iterator[None]:
    """With ``quiet``, Optuna's verbosity and the chatty loggers at WARNING for the call, and
    ``MLFLOW_LOGGING_LEVEL`` too (MLflow sets its logger's level when first imported); all
    restored after."""
    if not quiet:
        yield
        return
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(max(verbosity, optuna.logging.WARNING))
    loggers = [logging.getLogger(name) for name in _CHATTY_LOGGERS]
    levels = [each.level for each in loggers]
    for each in loggers:
        each.setLevel(max(each.getEffectiveLevel(), logging.WARNING))
    variable = os.environ.get("MLFLOW_LOGGING_LEVEL")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    try:
        yield
    finally:
        optuna.logging.set_verbosity(verbosity)
        for each, level in zip(loggers, levels):
            each.setLevel(level)
        if variable is None:
            os.environ.pop("MLFLOW_LOGGING_LEVEL", None)


def run_study(
    spec: StudySpec,
    *,
    home: str | Path = DEFAULT_HOME,
    trials: int | None = None,
    storage: str | None = None,
    tracking_uri: str | None = None,
    quiet: bool = False,
    workers: int = 1,
    callbacks: Sequence[StudyCallback] = (),
    heartbeat_interval: int = DEFAULT_HEARTBEAT_INTERVAL_S,
    grace_period: int = DEFAULT_GRACE_PERIOD_S,
) -> optuna.Study:
    """Run (or resume) ``spec``'s study until it holds ``trials`` counted trials.

    Args:
        spec: the study spec (:func:`~gdbench.study.load_spec`).
        home: the folder of the default storage (``optuna.db``), MLflow store
            (``mlflow.db``), TensorBoard logs and reports.
        trials: counted trials to reach, overriding the spec's.
        storage: the Optuna storage URL, overriding the spec's.
        tracking_uri: the MLflow tracking URI, overriding the spec's.
        quiet: no progress bar, and no information lines of Optuna's or MLflow's (their
            loggers are set to WARNING for the call and restored after); warnings still show.
        workers: local ``gdbench worker`` processes sharing the study
            (:mod:`gdbench.study.worker`), started once the study exists.
        callbacks: called as ``callback(study, frozen_trial)`` after each
            trial is told (in this process; not with ``workers > 1``).
        heartbeat_interval: seconds between two heartbeats of a running trial.
        grace_period: seconds without a heartbeat before a trial is taken for dead.

    Returns:
        The study.

    Raises:
        StudyError: a bad argument or location, an unreachable server, or an
            existing study of another spec; nothing is created then.
        Interrupted: the study was stopped by a signal (``KeyboardInterrupt``).
    """
    with _quiet_logs(quiet), loop.objects_frozen():
        return _run_study(spec, home=home, trials=trials, storage=storage,
                          tracking_uri=tracking_uri, quiet=quiet, workers=workers,
                          callbacks=callbacks, heartbeat_interval=heartbeat_interval,
                          grace_period=grace_period)


def _run_study(spec: StudySpec, *, home: str | Path, trials: int | None, storage: str | None,
               tracking_uri: str | None, quiet: bool, workers: int,
               callbacks: Sequence[StudyCallback], heartbeat_interval: int,
               grace_period: int) -> optuna.Study:
    budget = spec.trials if trials is None else session.positive_integer("trials", trials)
    workers = session.positive_integer("workers", workers)
    heartbeat_interval = session.positive_integer("heartbeat_interval", heartbeat_interval)
    grace_period = session.positive_integer("grace_period", grace_period)
    if workers > 1 and spec.source is None:
        raise StudyError("workers: worker processes reload the spec from its file; "
                         "this spec has no source file")
    if workers > 1 and callbacks:
        raise StudyError("callbacks: run in this process only; not with workers > 1")
    where = session.locations(spec, home=home, storage_url=storage, tracking_uri=tracking_uri)
    session.check_locations(where)
    inclusions.warn_broken_inclusions(spec)
    for line in [*brought_task.task_notes(spec), *brought.optimizer_notes(spec)]:
        logger.warning("study %s: %s", spec.name, line)
    budget = samplers.capped_budget(spec, budget)
    context = StudyContext.create(spec)
    session.create_home(where)
    stale = StaleTrials()
    study, rdb = session.open_study(spec, where, create=True, stale=stale,
                                    heartbeat_interval=heartbeat_interval,
                                    grace_period=grace_period)
    tracker = session.start_tracker(spec, where, context)
    # The parent run says what happened to the study: an interrupt after its trials are all
    # done (in the confirmation, which has a run of its own, or the report) leaves it FINISHED.
    trials_done = False
    try:
        if workers == 1:
            loop.run_trials(spec, study, rdb, stale, tracker, context, budget, quiet=quiet,
                            callbacks=callbacks,
                            heartbeat_interval=heartbeat_interval)
        else:
            worker.run_local_workers(spec, where, budget, workers, quiet=quiet,
                                     heartbeat_interval=heartbeat_interval,
                                     grace_period=grace_period)
        trials_done = True
        if spec.confirm is not None:
            confirm.confirm_study(
                confirm.spec_target(spec, where, context, tracker.parent_run_id),
                spec.confirm.seeds, heartbeat_interval=heartbeat_interval,
                grace_period=grace_period)
        # Local workers that ended together may have attached the figures already.
        attaches = workers == 1 or session.claim_figures(study, rdb)
        paths = report.write_study_report(spec, study, where, context,
                                          tracker if attaches else None, quiet=quiet)
        tracker.log_study_artifacts(paths, "report")
    except KeyboardInterrupt:
        session.finish_tracker(tracker, study, "FINISHED" if trials_done else "KILLED",
                               interrupted=True)
        raise
    except BaseException:
        session.finish_tracker(tracker, study, "FAILED")
        raise
    tracker.finish("FINISHED", metrics=session.study_metrics(study))
    return study

