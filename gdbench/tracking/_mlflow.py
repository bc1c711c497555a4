"""MLflow side of a study: one parent run per study, one nested child run per trial.

Everything goes through one explicit :class:`~mlflow.tracking.MlflowClient`,
never through MLflow's global active run, so trials running in threads of one
process do not step on each other.

A trial costs five store transactions: create the run, log its parameters, its
metrics, its final tags, terminate it (plus one metrics batch every
``flush_interval_s`` seconds of a long trial, and one per figure). Trials
recorded whole (:meth:`MlflowStudy.record_trial`, a population's) are written
together: on a database store, a batch's runs in one transaction
(:mod:`gdbench.tracking._run_rows`); elsewhere three a run, create the run with
its tags, one batch of parameters and metrics, terminate it. Each takes
milliseconds of CPU, and on SQLite each commit waits for the disk and for the
database lock, so none is made while the trial waits: they go, in order, to
one writer thread (:mod:`gdbench.tracking._writer`) and overlap with training.
A trial's run id is known once the writer has created its run.

Nothing finished is only in memory: with a journal folder, a trial's whole
run goes to the journal (:mod:`gdbench.tracking._journal`) when it finishes
(the trials recorded together in :meth:`MlflowStudy.recording`, a population
batch's, in one file), and the next process of the study replays what a
process that ended left there (:func:`~gdbench.tracking._journal.restore_runs`).
Waits are bounded: :meth:`MlflowStudy.finish` waits for the writer
:data:`WAIT_BOUND_S` seconds at most (:data:`INTERRUPTED_WAIT_BOUND_S` for a
study stopped by a signal, and a signal ends the wait); what is left is
deferred, kept in the journal, and said so.

Every run carries the system tags of MLflow's fluent API and
``gdbench.version`` (:mod:`gdbench.tracking._mlflow_context`); the parent run
lasts the study's working time. MLflow's client prints a "View run" line at
the end of each run written to a tracking server: gdbench shows its own
progress, so :class:`MlflowStudy` switches that off
(``MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT``, unless already set).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from mlflow.entities import Param, Run, RunTag
from mlflow.environment_variables import MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from gdbench.tracking._journal import (
    MAX_BATCH_METRICS,
    RECORD_TAG,
    Journal,
    JournalFile,
)
from gdbench.tracking._mlflow_context import end_parent_run, now_ms, system_tags
from gdbench.tracking._mlflow_experiment import (
    DESCRIPTION_TAG,
    ROLE_TAG,
    STUDY_TAG,
    TRIAL_NUMBER_TAG,
    default_artifact_location,
    get_or_create_experiment,
    params_to_add,
)
from gdbench.tracking._mlflow_trial import MlflowTrial
from gdbench.tracking._run_rows import write_runs
from gdbench.tracking.dashboards import (
    EXPERIMENT_KIND_TAG,
    MODEL_TRAINING_KIND,
    VIEW_TAG_PREFIX,
    experiment_kind_to_set,
    run_color_tags,
    study_view,
    view_key,
)
from gdbench.tracking.trial_tracker import OBJECTIVE_METRIC
from gdbench.tracking._writer import Writer
from gdbench.tracking.artifacts import local_artifact_folder

# The experiment's look-up and the tags of a study's runs live in
# gdbench.tracking._mlflow_experiment; they stay importable from here.
__all__ = [
    "DESCRIPTION_TAG",
    "INTERRUPTED_WAIT_BOUND_S",
    "MAX_BATCH_METRICS",
    "ROLE_TAG",
    "SPEC_ARTIFACT",
    "STUDY_TAG",
    "TRIAL_NUMBER_TAG",
    "WAIT_BOUND_S",
    "MlflowStudy",
    "default_artifact_location",
]

#: The spec file's name among the parent run's artifacts.
SPEC_ARTIFACT = "spec.toml"

#: The longest :meth:`MlflowStudy.finish` and :meth:`MlflowStudy.drain` wait for the writer.
WAIT_BOUND_S = 60.0

#: The longest :meth:`MlflowStudy.finish` waits for the writer when the study was interrupted.
INTERRUPTED_WAIT_BOUND_S = 5.0

#: Runs searched when looking for a study's parent run (MLflow's maximum page).
_MAX_PARENTS = 50_000

_logger = logging.getLogger(__name__)


class MlflowStudy:
    """The study's experiment and parent run in an MLflow tracking store.

    Args:
        tracking_uri: the MLflow tracking URI.
        experiment_name: the MLflow experiment holding the study's runs; ``None``
            for the experiment of ``nested_in``.
        study_name: the study, recorded in the ``gdbench.study`` tag.
        artifact_location: where a new experiment keeps its artifacts;
            ``None`` for :func:`default_artifact_location`.
        flush_interval_s: a trial's buffered metrics are sent at most this
            often (and always at its end).
        nested_in: the run the parent run is nested in (``mlflow.parentRunId``), or ``None``.
        journal: the study's journal folder (:mod:`gdbench.tracking._journal`), or ``None``
            for none: then what the writer has not written when the process ends is lost.
    """

    def __init__(
        self,
        *,
        tracking_uri: str,
        experiment_name: str | None,
        study_name: str,
        artifact_location: str | None,
        flush_interval_s: float,
        nested_in: str | None = None,
        journal: Path | None = None,
    ) -> None:
        os.environ.setdefault(MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT.name, "true")
        self.client = MlflowClient(tracking_uri=tracking_uri)
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment_name
        self.nested_in = nested_in
        self.study_name = study_name
        self._artifact_location = artifact_location or default_artifact_location(tracking_uri)
        self._flush_interval_s = flush_interval_s
        self._writer = Writer("gdbench-mlflow")
        self.journal = Journal(journal) if journal is not None else None
        # The runs recorded inside recording(), journaled together when it ends.
        self._recorded: list[dict[str, Any]] | None = None
        self._failures: list[BaseException] = []
        self._system_tags: dict[str, str] = {}
        self._artifact_uris: dict[str, str] = {}
        self._started_ms = 0
        self.experiment_id = ""
        self.parent_run_id = ""

    def start(self, params: Mapping[str, object], tags: Mapping[str, str], *,
              description: str = "", spec_file: Path | None = None,
              view_columns: Sequence[str] = (), maximize: bool = False) -> None:
        """Find or create the experiment and the parent run; log the study's parameters.

        Args:
            params: the study's parameters.
            tags: the parent run's tags.
            description: the experiment's and the parent run's description.
            spec_file: the spec file: the runs' ``mlflow.source.name``, and
                its text the parent run's artifact ``spec.toml`` (where the file is here).
            view_columns: the parameters the study's view in the UI shows
                (:mod:`gdbench.tracking.dashboards`).
            maximize: the view lists the highest objective first.
        """
        self._started_ms = now_ms()
        self._system_tags = system_tags(str(spec_file) if spec_file is not None else None)
        self.experiment_id, self.experiment_name = get_or_create_experiment(
            self.client, self.experiment_name, self.nested_in, self._artifact_location)
        if description:
            self.client.set_experiment_tag(self.experiment_id, DESCRIPTION_TAG, description)
        self._set_view(view_columns, maximize)
        parent = self._get_or_create_parent()
        self.parent_run_id = parent.info.run_id
        self._artifact_uris[self.parent_run_id] = parent.info.artifact_uri
        if parent.info.status != "RUNNING":
            self.client.update_run(self.parent_run_id, status="RUNNING")
        run_tags = {**self._system_tags, **tags}
        if description:
            run_tags[DESCRIPTION_TAG] = description
        self.client.log_batch(self.parent_run_id,
                              tags=[RunTag(key, value) for key, value in run_tags.items()])
        self._log_parent_params(parent, params)
        if spec_file is not None and spec_file.is_file():
            self.log_parent_artifact(spec_file.read_bytes(), SPEC_ARTIFACT, None)

    def start_trial(
        self, number: int, run_name: str, params: Mapping[str, object], tags: Mapping[str, str]
    ) -> MlflowTrial:
        """Queue the creation of trial ``number``'s child run ``run_name``; its parameters go with
        its first metrics (:class:`MlflowTrial`).

        The run starts now (its start time), whenever the writer creates it.
        """
        start_time = now_ms()
        run_tags = {**self._system_tags, **tags, **self._trial_tags(number, params)}
        run_params = [Param(key, str(value)) for key, value in params.items()]
        entry = None
        if self.journal is not None:
            run_tags[RECORD_TAG] = Journal.new_id()
            entry = {"id": run_tags[RECORD_TAG], "number": number, "run_name": run_name,
                     "start_time": start_time, "tags": run_tags,
                     "tracking_uri": self.tracking_uri, "experiment_id": self.experiment_id,
                     "params": {param.key: param.value for param in run_params}}

        def create_run() -> str:
            run = self.client.create_run(
                self.experiment_id, start_time=start_time, run_name=run_name, tags=run_tags,
            )
            self._artifact_uris[run.info.run_id] = run.info.artifact_uri
            return run.info.run_id

        return MlflowTrial(self, self.submit(create_run), self._flush_interval_s, run_params,
                           entry)

    def record_trial(self, number: int, run_name: str, params: Mapping[str, object],
                     tags: Mapping[str, str], curves: Mapping[str, Sequence[tuple[int, float]]],
                     status: str) -> None:
        """Queue a finished trial's whole run ``run_name``: created with ``tags``, its parameters
        and metrics (``name → [(step, value)…]``) in one batch, terminated with ``status``."""
        start_time = now_ms()
        run_tags = {**self._system_tags, **self._trial_tags(number, params), **tags}
        entry = {"number": number, "run_name": run_name, "start_time": start_time,
                 "tracking_uri": self.tracking_uri, "experiment_id": self.experiment_id,
                 "tags": run_tags, "params": {key: str(value) for key, value in params.items()},
                 "metrics": [(key, value, start_time, step)
                             for key, points in curves.items() for step, value in points],
                 "status": status}
        if self._recorded is not None:
            self._recorded.append(entry)
        else:
            self.queue_runs([entry])

    @contextlib.contextmanager
    def recording(self) -> Iterator[None]:
        """The trials recorded inside (:meth:`record_trial`) are journaled together when it
        ends (:meth:`queue_runs`), even when what it holds raises."""
        if self._recorded is not None:  # already inside one
            yield
            return
        self._recorded = []
        try:
            yield
        finally:
            entries, self._recorded = self._recorded, None
            if entries:
                self.queue_runs(entries)

    def queue_runs(self, entries: list[dict[str, Any]]) -> None:
        """Journal whole runs in one file (one write, one ``fsync``), then queue their writes.

        An entry holds ``number``, ``run_name``, ``start_time``, ``tags``, ``params``,
        ``metrics`` as ``(key, value, timestamp, step)`` and ``status``. The writes are
        queued even when the journal could not be written (that error is raised after).
        """
        file = None
        try:
            if self.journal is not None:
                file = self.journal.write_batch(entries)
        finally:
            self.submit(self.write_runs, entries, file)

    def journaled(self, entry: dict[str, Any]) -> dict[str, Any]:
        """``entry``, a whole run (:meth:`queue_runs`), written alone to the journal when
        there is one (:meth:`Journal.write`), with its file's ``path``."""
        if self.journal is None:
            return entry
        path = self.journal.write(entry)
        return {**entry, "path": str(path)}

    def write_runs(self, entries: list[dict[str, Any]],
                   file: JournalFile | None = None) -> list[str]:
        """Write whole runs now, together where the store allows it (:mod:`._run_rows`); tell
        their journal ``file``, where there is one. Their ids."""
        return write_runs(self.client, self.tracking_uri, entries, file)

    def log_parent_artifact(self, content: bytes, file_name: str,
                            artifact_path: str | None) -> None:
        """Queue ``content`` as the parent run's artifact ``<artifact_path>/<file_name>``."""
        self.submit(self.write_artifact, self.parent_run_id, content, file_name, artifact_path)

    def log_trial_artifact(self, number: int, content: bytes, file_name: str,
                           artifact_path: str) -> None:
        """Queue ``content`` as an artifact of trial ``number``'s latest run (finished or not)."""
        def write() -> None:
            runs = sorted(self.trial_runs(number=number), key=lambda run: run.info.start_time)
            if runs:
                self._artifact_uris[runs[-1].info.run_id] = runs[-1].info.artifact_uri
                self.write_artifact(runs[-1].info.run_id, content, file_name, artifact_path)

        self.submit(write)

    def write_artifact(self, run_id: str, content: bytes, file_name: str,
                       artifact_path: str | None) -> None:
        """Store ``content`` as run ``run_id``'s artifact ``<artifact_path>/<file_name>`` now."""
        with tempfile.TemporaryDirectory(prefix="gdbench-artifact-") as folder:
            path = Path(folder) / file_name
            path.write_bytes(content)
            self.copy_artifact(run_id, path, artifact_path)

    def copy_artifact(self, run_id: str, path: Path, artifact_path: str | None) -> None:
        """Copy a file, or a folder's files, into run ``run_id``'s artifacts now.

        MLflow's client cannot write a ``mlflow-artifacts:/`` location without a
        tracking server: in a SQLite store's home, the files go straight to
        the folder that location names (``mlartifacts/<run id>/artifacts``).
        """
        folder = local_artifact_folder(self.tracking_uri, self._artifact_uri(run_id))
        if folder is None:
            if path.is_dir():
                self.client.log_artifacts(run_id, str(path), artifact_path)
            else:
                self.client.log_artifact(run_id, str(path), artifact_path)
            return
        repository = LocalArtifactRepository(folder.as_uri())
        if path.is_dir():
            repository.log_artifacts(str(path), artifact_path)
        else:
            repository.log_artifact(str(path), artifact_path)

    def trial_runs(self, *, number: int | None = None, status: str | None = None) -> list[Run]:
        """The study's trial runs, of trial ``number`` and in ``status`` where given."""
        conditions = [f"tags.`{ROLE_TAG}` = 'trial'"]
        if number is not None:
            conditions.append(f"tags.`{TRIAL_NUMBER_TAG}` = '{number}'")
        if status is not None:
            conditions.append(f"attributes.status = '{status}'")
        runs: list[Run] = []
        page_token = None
        while True:
            page = self.client.search_runs([self.experiment_id], " AND ".join(conditions),
                                           max_results=1000, page_token=page_token)
            # The study name is compared here rather than in the filter string,
            # which would need it quoted and escaped.
            runs += [run for run in page if run.data.tags.get(STUDY_TAG) == self.study_name]
            page_token = page.token
            if not page_token:
                return runs

    def trial_numbers(self) -> set[int]:
        """Numbers of the trials that have a run."""
        return {int(run.data.tags[TRIAL_NUMBER_TAG]) for run in self.trial_runs()}

    def open_trial_numbers(self) -> set[int]:
        """Numbers of the trials whose run is still RUNNING."""
        return {int(run.data.tags[TRIAL_NUMBER_TAG]) for run in self.trial_runs(status="RUNNING")}

    def fail_open_runs(self, number: int, tags: Mapping[str, str],
                       status: str = "FAILED") -> bool:
        """Terminate trial ``number``'s runs left RUNNING as ``status``, with ``tags``.

        Returns:
            Whether the trial has any run at all.
        """
        runs = self.trial_runs(number=number)
        for run in runs:
            if run.info.status == "RUNNING":
                self.client.log_batch(run.info.run_id,
                                      tags=[RunTag(key, value) for key, value in tags.items()])
                self.client.set_terminated(run.info.run_id, status)
        return bool(runs)

    def submit(self, write: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        """Queue a write for the writer thread; writes run one at a time, in order.

        Returns:
            The write's future; a failure is also logged, and raised by :meth:`drain`.
        """
        future = self._writer.submit(write, *args, **kwargs)
        future.add_done_callback(self._record_failure)
        return future

    def drain(self, timeout_s: float | None = WAIT_BOUND_S) -> bool:
        """Wait for every queued write, ``timeout_s`` at most (``None``: no bound).

        Returns:
            Whether they were all written in time; if not, they are deferred
            (:meth:`tell_deferred`).

        Raises:
            RuntimeError: some writes failed; the first failure is its cause.
        """
        written = self._writer.wait(timeout_s)
        if self._failures:
            failures, self._failures = self._failures, []
            raise RuntimeError(
                f"{len(failures)} MLflow write(s) of study {self.study_name!r} failed; "
                f"the first: {failures[0]!r}"
            ) from failures[0]
        if not written:
            self.tell_deferred(f"not written after {timeout_s:g} s")
        return written

    def tell_deferred(self, why: str) -> None:
        """Warn of the writes not yet done, and where the finished trials' runs are kept."""
        waiting = self._writer.unfinished
        if not waiting:
            return
        kept = self.journal.pending() if self.journal is not None else 0
        _logger.warning(
            "study %s: %d MLflow write(s) to %s %s; %s", self.study_name, waiting,
            self.tracking_uri, why,
            f"the runs of {kept} finished trial(s) among them are kept in "
            f"{self.journal.folder} and the next gdbench run, worker or report of the study "
            "writes them" if self.journal is not None
            else "they are lost if this process ends first")

    def log_artifacts(self, paths: Sequence[Path], artifact_path: str) -> None:
        """Copy files and folders into the parent run's artifacts."""
        for path in paths:
            folder = f"{artifact_path}/{path.name}" if path.is_dir() else artifact_path
            self.copy_artifact(self.parent_run_id, path, folder)

    def finish(self, status: str, metrics: Mapping[str, float], tags: Mapping[str, str], *,
               worked: bool, interrupted: bool = False) -> bool:
        """Queue the study's results and the parent run's end after the trials' writes; wait.

        The wait lasts :data:`WAIT_BOUND_S` at most, :data:`INTERRUPTED_WAIT_BOUND_S`
        when the study was ``interrupted``, and a signal whose handler raises ends
        it: what is left is deferred (the writer goes on while the process
        lives) and said so; finished trials' runs are in the journal.

        The parent run ends its working time after its start
        (:mod:`gdbench.tracking._mlflow_context`): this invocation's time,
        from :meth:`start` to now, counts when it ``worked`` (ran trials).

        Returns:
            Whether everything was written in time.

        Raises:
            RuntimeError: some writes failed (the parent run is still
                terminated where it could be).
        """
        self.submit(self._finish_parent, status, metrics, tags, worked, now_ms())
        bound = INTERRUPTED_WAIT_BOUND_S if interrupted else WAIT_BOUND_S
        try:
            return self.drain(bound)
        except KeyboardInterrupt:
            self.tell_deferred("not written: interrupted while waiting")
            raise

    def _finish_parent(self, status: str, metrics: Mapping[str, float],
                       tags: Mapping[str, str], worked: bool, timestamp: int) -> None:
        try:
            end_parent_run(self.client, self.parent_run_id, status, metrics, tags,
                           self._started_ms if worked else None, timestamp)
        finally:
            if self.journal is not None:
                self.journal.tidy()

    def _set_view(self, columns: Sequence[str], maximize: bool) -> None:
        """Open the experiment in the UI's model-training mode, and save the study's view."""
        experiment_tags = self.client.get_experiment(self.experiment_id).tags
        if experiment_kind_to_set(experiment_tags):
            self.client.set_experiment_tag(self.experiment_id, EXPERIMENT_KIND_TAG,
                                           MODEL_TRAINING_KIND)
        view = study_view(self.study_name, OBJECTIVE_METRIC, columns, role_tag=ROLE_TAG,
                          study_tag=STUDY_TAG, maximize=maximize)
        key = VIEW_TAG_PREFIX + view_key(self.study_name)
        if experiment_tags.get(key) != view:
            self.client.set_experiment_tag(self.experiment_id, key, view)

    def _artifact_uri(self, run_id: str) -> str:
        if run_id not in self._artifact_uris:
            self._artifact_uris[run_id] = self.client.get_run(run_id).info.artifact_uri
        return self._artifact_uris[run_id]

    def _trial_tags(self, number: int, params: Mapping[str, object]) -> dict[str, str]:
        return {MLFLOW_PARENT_RUN_ID: self.parent_run_id, STUDY_TAG: self.study_name,
                ROLE_TAG: "trial", TRIAL_NUMBER_TAG: str(number), **run_color_tags(params)}

    def _record_failure(self, future: Future[Any]) -> None:
        error = future.exception()
        if error is not None:
            self._failures.append(error)
            if len(self._failures) == 1:  # the others are counted by drain()
                _logger.error("MLflow write of study %r to %s failed: %s", self.study_name,
                              self.tracking_uri,
                              str(error).splitlines()[0] if str(error) else repr(error))

    def _log_parent_params(self, parent: Run, params: Mapping[str, object]) -> None:
        """Log the study parameters the parent run lacks.

        Two workers starting at once may both find a parameter missing and
        both insert it; MLflow then refuses the second insert (a unique key),
        although the values agree. The loser reads the run again and logs
        what is still missing: nothing, where the values agree.
        """
        try:
            self.client.log_batch(self.parent_run_id,
                                  params=params_to_add(parent, params, self.study_name))
        except MlflowException:
            fresh = self.client.get_run(self.parent_run_id)
            self.client.log_batch(self.parent_run_id,
                                  params=params_to_add(fresh, params, self.study_name))

    def _get_or_create_parent(self) -> Run:
        """The study's parent run: the oldest one, created when there is none.

        Two workers starting at once may both find none and both create one.
        Each then sees both and keeps the oldest (start time, then run id), so
        they agree; the younger one is deleted by the worker that created it.
        """
        parents = self._parents()
        if parents:
            return parents[0]
        created = self.client.create_run(
            self.experiment_id,
            run_name=self.study_name,
            tags={STUDY_TAG: self.study_name, ROLE_TAG: "parent",
                  **({MLFLOW_PARENT_RUN_ID: self.nested_in} if self.nested_in else {})},
        )
        parents = self._parents()
        if parents[0].info.run_id != created.info.run_id:
            self.client.delete_run(created.info.run_id)
        return parents[0]

    def _parents(self) -> list[Run]:
        # The study name is compared here rather than in the filter string,
        # which would need it quoted and escaped.
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`{ROLE_TAG}` = 'parent'",
            max_results=_MAX_PARENTS,
        )
        mine = [run for run in runs if run.data.tags.get(STUDY_TAG) == self.study_name]
        return sorted(mine, key=lambda run: (run.info.start_time, run.info.run_id))
