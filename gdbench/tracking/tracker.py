"""The study tracker: a study's MLflow parent run and TensorBoard HParams experiment.

A :class:`StudyTracker` is built with either backend switched off (``None``),
or both, in which case every method does nothing but check its arguments: the
study runner calls the same methods whatever is tracked. Each trial is tracked
by a :class:`~gdbench.tracking.trial_tracker.TrialTracker`; trials recorded at
once after they ran go through :class:`~gdbench.tracking._recorded_trials.RecordedTrials`.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from gdbench.tracking._checks import check_mapping, check_metrics, check_name, check_number
from gdbench.tracking._domain import HParamDomain
from gdbench.tracking._recorded_trials import (
    MLFLOW_CURVE_POINTS,
    MLFLOW_DENSE_EPOCHS,
    TENSORBOARD_RUN_TAG,
    RecordedTrials,
    curve_steps,
)
from gdbench.tracking._tensorboard import TensorBoardStudy
from gdbench.tracking.limits import MAX_DESCRIPTION_LENGTH, length_problem
from gdbench.tracking.names import LABEL_KEYS, trial_run_name
from gdbench.tracking.trial_tracker import (
    MAX_REASON_LENGTH,
    OBJECTIVE_METRIC,
    REASON_TAG,
    STATE_TAG,
    TRIAL_STATES,
    TrialTracker,
)

if TYPE_CHECKING:
    from gdbench.tracking._mlflow import MlflowStudy

# The trial tracker, its states and the recorded trials' curves live in modules of
# their own; they stay importable from here.
__all__ = [
    "MLFLOW_CURVE_POINTS",
    "MLFLOW_DENSE_EPOCHS",
    "OBJECTIVE_METRIC",
    "STUDY_STATUSES",
    "TENSORBOARD_RUN_TAG",
    "TRIAL_STATES",
    "StudyTracker",
    "TrialTracker",
    "curve_steps",
]

#: Accepted statuses of a study's parent run.
STUDY_STATUSES: tuple[str, ...] = ("FINISHED", "FAILED", "KILLED")


class StudyTracker(RecordedTrials):
    """Tracks one study: an MLflow parent run and a TensorBoard HParams experiment.

    Build one per study invocation (and per worker process). Resuming a study,
    or running several workers on it, reuses the same MLflow parent run.

    Args:
        study_name: the study's name; also the MLflow experiment's by default.
        tracking_uri: MLflow tracking URI (``sqlite:///…/mlflow.db``,
            ``http://host:5000``); ``None`` switches MLflow off.
        tensorboard_dir: the study's TensorBoard log directory; ``None``
            switches TensorBoard off.
        experiment_name: the MLflow experiment; defaults to ``study_name``, or to the
            experiment of ``nested_in``.
        artifact_location: where a newly created MLflow experiment stores
            artifacts; defaults to ``mlartifacts`` beside a SQLite database,
            or the tracking server's choice.
        flush_interval_s: MLflow metrics of a trial are buffered and sent at
            most this often (and at its end); TensorBoard is flushed every epoch.
        nested_in: the id of an MLflow run the study's parent run is nested in
            (a study's confirmation runs inside the study's own parent run).
        journal_dir: the folder of the study's journal of finished trials' runs not
            yet written (:mod:`gdbench.tracking._journal`): what a process that ended
            left there is written by :func:`~gdbench.tracking.restore_runs`. ``None``:
            no journal.

    Raises:
        ValueError: a bad argument; the message names it.
    """

    def __init__(
        self,
        *,
        study_name: str,
        tracking_uri: str | None,
        tensorboard_dir: str | Path | None,
        experiment_name: str | None = None,
        artifact_location: str | None = None,
        flush_interval_s: float = 5.0,
        nested_in: str | None = None,
        journal_dir: str | Path | None = None,
    ) -> None:
        check_name("study_name", study_name)
        if nested_in is not None:
            check_name("nested_in", nested_in)
        if experiment_name is not None:
            check_name("experiment_name", experiment_name)
        if tracking_uri is not None:
            check_name("tracking_uri", tracking_uri)
        if tensorboard_dir is not None and not isinstance(tensorboard_dir, (str, Path)):
            raise ValueError(f"tensorboard_dir: expected a path or None, got {tensorboard_dir!r}")
        if check_number("flush_interval_s", flush_interval_s) < 0:
            raise ValueError(f"flush_interval_s: expected a number >= 0, got {flush_interval_s!r}")
        self.study_name = study_name
        self._domains: dict[str, HParamDomain] | None = None
        self._varying: list[str] = []
        self._worked = False
        self._finished = False
        self._mlflow: MlflowStudy | None = None
        if tracking_uri is not None:
            # mlflow takes seconds to import; a study without MLflow does not pay for it.
            from gdbench.tracking._mlflow import MlflowStudy

            self._mlflow = MlflowStudy(
                tracking_uri=tracking_uri,
                experiment_name=experiment_name or (None if nested_in else study_name),
                study_name=study_name,
                artifact_location=artifact_location,
                flush_interval_s=float(flush_interval_s),
                nested_in=nested_in,
                journal=None if journal_dir is None else Path(journal_dir),
            )
        self._tensorboard = (
            TensorBoardStudy(Path(tensorboard_dir), study_name)
            if tensorboard_dir is not None
            else None
        )

    @property
    def parent_run_id(self) -> str | None:
        """The MLflow parent run's id once started; ``None`` without MLflow."""
        if self._mlflow is None or not self._mlflow.parent_run_id:
            return None
        return self._mlflow.parent_run_id

    def start(
        self,
        *,
        hparam_domains: Mapping[str, HParamDomain],
        metrics: Sequence[str],
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        description: str | None = None,
        spec_file: str | Path | None = None,
        direction: str = "minimize",
        objective: str | None = None,
    ) -> None:
        """Open the study's parent run and write TensorBoard's HParams config.

        Args:
            hparam_domains: every hyperparameter the trials carry, searched or
                fixed (:meth:`HParamDomain.fixed`), by name; the searched ones
                name the trials' runs (:meth:`run_name`).
            metrics: every metric shown in the HParams dashboard, by name
                (``"val_loss"``…), the one the objective is first;
                :data:`OBJECTIVE_METRIC` is added first.
            params: study-level parameters, logged on the parent run.
            tags: tags of the parent run.
            description: what the study is about: the MLflow experiment's
                description, and the parent run's.
            spec_file: the study's spec file: the runs' source
                (``mlflow.source.name``; the program when ``None``), and its
                text the parent run's artifact ``spec.toml``.
            direction: ``"minimize"`` or ``"maximize"`` the objective: the MLflow
                view of the trials (:mod:`gdbench.tracking.dashboards`) lists the best first.
            objective: what :data:`OBJECTIVE_METRIC` is in this study (``val_loss``,
                ``epochs to val_accuracy ≥ 0.9``), shown beside it in the HParams
                dashboard; the first of ``metrics`` when ``None``.

        Raises:
            ValueError: a bad argument; the message names it.
        """
        if direction not in ("minimize", "maximize"):
            raise ValueError(f"direction: expected 'minimize' or 'maximize', got {direction!r}")
        if objective is not None and not isinstance(objective, str):
            raise ValueError(f"objective: expected a string or None, got {objective!r}")
        for name, domain in check_mapping("hparam_domains", hparam_domains).items():
            if not isinstance(domain, HParamDomain):
                raise ValueError(
                    f"hparam_domains[{name!r}]: expected an HParamDomain, got {domain!r}"
                )
        if isinstance(metrics, str) or not isinstance(metrics, Sequence):
            raise ValueError(f"metrics: expected a list of metric names, got {metrics!r}")
        for metric in metrics:
            check_name("metrics", metric)
        params = check_mapping("params", params)
        tags = {key: str(value) for key, value in check_mapping("tags", tags).items()}
        if description is not None and not isinstance(description, str):
            raise ValueError(f"description: expected a string or None, got {description!r}")
        too_long = length_problem(description or "", MAX_DESCRIPTION_LENGTH)
        if too_long:
            raise ValueError(f"description: {too_long}")
        if spec_file is not None and not isinstance(spec_file, (str, Path)):
            raise ValueError(f"spec_file: expected a path or None, got {spec_file!r}")
        domains = dict(hparam_domains)
        varying = [name for name, domain in domains.items() if domain.varies]
        if self._mlflow is not None:
            # The view's columns: the optimizer, the schedule where several, the searched ones.
            columns = [key for key in LABEL_KEYS if key in domains
                       and (key == "optimizer" or key in varying)]
            columns += [name for name in varying if name not in LABEL_KEYS]
            self._mlflow.start(params, tags, description=description or "",
                               spec_file=Path(spec_file) if spec_file is not None else None,
                               view_columns=columns, maximize=direction == "maximize")
        if self._tensorboard is not None:
            others = [m for m in dict.fromkeys(metrics) if m != OBJECTIVE_METRIC]
            if objective is None:
                objective = metrics[0] if metrics and metrics[0] != OBJECTIVE_METRIC else ""
            self._tensorboard.start(domains, [OBJECTIVE_METRIC, *others],
                                    objective_metric=objective)
        self._domains = domains
        self._varying = varying

    def run_name(self, number: int, params: Mapping[str, Any]) -> str:
        """Trial ``number``'s run name (:func:`~gdbench.tracking.names.trial_run_name`).

        ``adam · η=0.0216 β1=0.7 · #6``: its optimizer and schedule, the values
        of its searched hyperparameters (those :meth:`start`'s domains do not
        fix), its number.

        Raises:
            RuntimeError: :meth:`start` was not called.
        """
        if self._domains is None:
            raise RuntimeError("StudyTracker.start() must be called before run_name()")
        return trial_run_name(number, params, self._varying)

    def start_trial(
        self, number: int, params: Mapping[str, Any], tags: Mapping[str, str] | None = None,
        run_name: str | None = None,
    ) -> TrialTracker:
        """Open trial ``number``: an MLflow child run and a TensorBoard session.

        The TensorBoard session is on disk when this returns; the MLflow run
        is created by the background writer, like every MLflow write of the
        trial, so that the trial does not wait for the store.

        Args:
            number: the trial's number in the study (Optuna's ``trial.number``).
            params: the trial's hyperparameters, searched and fixed, every one
                declared in :meth:`start`'s ``hparam_domains``.
            tags: extra tags of the MLflow child run.
            run_name: the name of its run and run directory; :meth:`run_name` when ``None``.

        Returns:
            The trial's tracker; use it as a context manager so that the trial
            is finished even when training raises.

        Raises:
            RuntimeError: :meth:`start` was not called.
            ValueError: a bad argument, or a hyperparameter not declared or
                outside its domain.
        """
        trial = self._open_trial("start_trial", number, params, tags, run_name)
        self._worked = True
        return trial

    def _open_trial(self, method: str, number: int, params: Mapping[str, Any],
                    tags: Mapping[str, str] | None, run_name: str | None = None) -> TrialTracker:
        params = self._check_trial(method, number, params)
        tags = {key: str(value) for key, value in check_mapping("tags", tags).items()}
        name = self._checked_run_name(number, params, run_name)
        tensorboard_trial = None
        if self._tensorboard is not None:
            tensorboard_trial = self._tensorboard.start_trial(number, params, name)
            tags[TENSORBOARD_RUN_TAG] = self._tensorboard.run_directory(number).name
        mlflow_trial = None
        if self._mlflow is not None:
            try:
                mlflow_trial = self._mlflow.start_trial(number, name, params, tags)
            except BaseException:
                if tensorboard_trial is not None:
                    tensorboard_trial.finish(0, {}, {"state": "FAIL"}, success=False)
                raise
        return TrialTracker(number, mlflow_trial, tensorboard_trial)

    def _checked_run_name(self, number: int, params: Mapping[str, Any],
                          run_name: str | None) -> str:
        if run_name is None:
            return self.run_name(number, params)
        check_name("run_name", run_name)
        return run_name

    def fail_trial(self, number: int, params: Mapping[str, Any], reason: str) -> None:
        """Close trial ``number`` as failed where a process that died left it open.

        Its MLflow runs still RUNNING end FAILED with ``reason``; a trial that
        has no run yet gets one, failed; its TensorBoard session ends as a
        failure with ``reason``. For a worker that finds a trial whose owner
        died, or a study resumed after a killed process.

        Args:
            number: the trial's number in the study.
            params: its hyperparameters (for a run or session created now).
            reason: why it failed (``gdbench.reason``, TensorBoard text ``reason``).
        """
        if self._domains is None:
            raise RuntimeError("StudyTracker.start() must be called before fail_trial()")
        texts = {"state": "FAIL", "reason": reason[:MAX_REASON_LENGTH]}
        if self._mlflow is None or not self._mlflow.fail_open_runs(
                number, {STATE_TAG: "FAIL", REASON_TAG: texts["reason"]}):
            self._open_trial("fail_trial", number, params, None).finish("FAIL", reason=reason)
            return
        if self._tensorboard is not None:
            self._tensorboard.start_trial(number, params, self.run_name(number, params)).finish(
                0, {}, texts, success=False)

    def end_open_runs(self, number: int, state: str, reason: str | None = None) -> None:
        """End trial ``number``'s MLflow runs still RUNNING as ``state`` says it ended.

        For a trial whose end the study recorded while its process died before
        its MLflow writer sent the run's end (its TensorBoard session, written
        at once, is complete).

        Args:
            number: the trial's number in the study.
            state: ``"COMPLETE"``, ``"PRUNED"`` or ``"FAIL"``.
            reason: why it was pruned or failed.
        """
        if state not in TRIAL_STATES:
            raise ValueError(f"state: expected one of {', '.join(TRIAL_STATES)}, got {state!r}")
        if self._mlflow is None:
            return
        tags = {STATE_TAG: state}
        if reason:
            tags[REASON_TAG] = reason[:MAX_REASON_LENGTH]
        self._mlflow.fail_open_runs(number, tags, TRIAL_STATES[state])

    def _check_trial(self, method: str, number: int, params: Mapping[str, Any]) -> dict[str, Any]:
        """``params`` of trial ``number`` checked against the declared domains."""
        if self._domains is None:
            raise RuntimeError(f"StudyTracker.start() must be called before {method}()")
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            raise ValueError(f"number: expected an integer >= 0, got {number!r}")
        params = check_mapping("params", params)
        undeclared = sorted(set(params) - set(self._domains))
        if undeclared:
            raise ValueError(
                f"params: {', '.join(undeclared)} not declared in hparam_domains; "
                f"declared: {', '.join(self._domains) or 'none'}"
            )
        for name, value in params.items():
            self._domains[name].check(f"params[{name!r}]", value)
        return params

    def open_trial_numbers(self) -> set[int]:
        """Numbers of the trials whose MLflow run is still RUNNING (none without MLflow)."""
        return set() if self._mlflow is None else self._mlflow.open_trial_numbers()

    def tracked_trial_numbers(self) -> set[int] | None:
        """Numbers of the trials that have an MLflow run; ``None`` without MLflow."""
        if self._mlflow is None:
            return None
        return self._mlflow.trial_numbers()

    def log_study_artifacts(
        self, paths: Sequence[str | Path], artifact_path: str = "report"
    ) -> None:
        """Attach files or folders (leaderboard, plots…) to the MLflow parent run.

        Args:
            paths: files or folders; a folder keeps its name under ``artifact_path``.
            artifact_path: the folder of the parent run's artifacts they go to.

        Raises:
            FileNotFoundError: a path that does not exist.
        """
        check_name("artifact_path", artifact_path)
        checked = [Path(path) for path in paths]
        for path in checked:
            if not path.exists():
                raise FileNotFoundError(f"paths: {path} does not exist")
        if self._mlflow is not None:
            self._mlflow.log_artifacts(checked, artifact_path)

    def flush(self) -> bool:
        """Wait until every MLflow write queued so far is in the tracking store.

        Trials' writes go through a background thread; read the store after
        this. The wait is bounded (:data:`~gdbench.tracking._mlflow.WAIT_BOUND_S`).

        Returns:
            Whether every write was done in time (``False``: they are deferred, and
            a warning says so).

        Raises:
            RuntimeError: some queued writes failed; the first failure is its cause.
        """
        return self._mlflow is None or self._mlflow.drain()

    def finish(
        self,
        status: str = "FINISHED",
        *,
        metrics: Mapping[str, float] | None = None,
        tags: Mapping[str, str] | None = None,
        interrupted: bool | None = None,
    ) -> bool:
        """Wait for the trials' writes, log study-level results, terminate the parent run.

        The parent run ends its working time after its start, kept as its
        metric ``working_time_s``: this invocation's time, from :meth:`start`
        to now, counts when it started or recorded a trial (trials it only
        closed, :meth:`fail_trial`, do not count), and only the part not
        counted already by another process of the study. A rerun that finds
        the budget spent does not move the run's end.

        The tracker is done afterwards: start no trial with it.

        Args:
            status: ``"FINISHED"``, ``"FAILED"`` or ``"KILLED"``.
            metrics: study-level metrics (best value, trial counts…).
            tags: tags of the parent run.
            interrupted: whether a signal stopped the study's process (the wait is then
                shorter, :data:`~gdbench.tracking._mlflow.INTERRUPTED_WAIT_BOUND_S`);
                ``None``: when ``status`` is ``"KILLED"``.

        Returns:
            Whether every MLflow write was done in time; if not, the rest is deferred
            (:meth:`flush`), finished trials' runs kept in the journal.

        Raises:
            RuntimeError: some trials' MLflow writes failed (the parent run is
                still terminated).
        """
        if self._finished:
            raise RuntimeError(f"study {self.study_name!r}: the tracker is already finished")
        if status not in STUDY_STATUSES:
            raise ValueError(f"status: expected one of {', '.join(STUDY_STATUSES)}, got {status!r}")
        values = check_metrics("metrics", metrics or {})
        tags = {key: str(value) for key, value in check_mapping("tags", tags).items()}
        self._finished = True
        # A study whose start() failed has no parent run to terminate.
        if self._mlflow is None or not self._mlflow.parent_run_id:
            return True
        return self._mlflow.finish(status, values, tags, worked=self._worked,
                                   interrupted=status == "KILLED" if interrupted is None
                                   else interrupted)

    def __enter__(self) -> StudyTracker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._finished:
            return
        if exc_type is None:
            self.finish("FINISHED")
        elif issubclass(exc_type, KeyboardInterrupt):
            self.finish("KILLED", interrupted=True)
        else:
            self.finish("FAILED")

