"""Study and trial trackers: one MLflow child run and one TensorBoard session per trial.

A :class:`StudyTracker` is built with either backend switched off (``None``),
or both, in which case every method does nothing but check its arguments: the
study runner calls the same methods whatever is tracked.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from gdbench.tracking._domain import HParamDomain
from gdbench.tracking._tensorboard import TensorBoardStudy, TensorBoardTrial
from gdbench.tracking.names import trial_run_name

if TYPE_CHECKING:
    from gdbench.tracking._mlflow import MlflowStudy, MlflowTrial

#: The metric holding the value a trial returns to the study.
OBJECTIVE_METRIC = "objective"

#: A trial's final state → the status of its MLflow run.
TRIAL_STATES: dict[str, str] = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}

#: Accepted statuses of a study's parent run.
STUDY_STATUSES: tuple[str, ...] = ("FINISHED", "FAILED", "KILLED")

STATE_TAG = "gdbench.state"
REASON_TAG = "gdbench.reason"
TENSORBOARD_RUN_TAG = "gdbench.tensorboard_run"

#: A curve of more epochs than this goes to MLflow at about this many of them
#: (:func:`curve_steps`); TensorBoard keeps every epoch.
MLFLOW_CURVE_POINTS = 24

#: The first epochs, where a curve changes fastest, all go to MLflow.
MLFLOW_DENSE_EPOCHS = 8

#: MLflow caps tag values at 8000 characters; a long traceback is cut to this.
MAX_REASON_LENGTH = 5000

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def curve_steps(epochs: int) -> list[int]:
    """The epochs of a curve of ``epochs`` that MLflow gets.

    Every one up to :data:`MLFLOW_CURVE_POINTS`; beyond, the first
    :data:`MLFLOW_DENSE_EPOCHS`, then epochs spaced evenly on a log scale up to
    the last, which is always there. Each point costs MLflow a row (about
    0.3 ms on SQLite): a thousand-epoch curve at every epoch would cost a
    trial a third of a second.
    """
    if epochs <= MLFLOW_CURVE_POINTS:
        return list(range(epochs))
    spaced = np.geomspace(MLFLOW_DENSE_EPOCHS, epochs - 1,
                          MLFLOW_CURVE_POINTS - MLFLOW_DENSE_EPOCHS).round().astype(int)
    return sorted({*range(MLFLOW_DENSE_EPOCHS), *spaced.tolist(), epochs - 1})


class StudyTracker:
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
    ) -> None:
        _check_name("study_name", study_name)
        if nested_in is not None:
            _check_name("nested_in", nested_in)
        if experiment_name is not None:
            _check_name("experiment_name", experiment_name)
        if tracking_uri is not None:
            _check_name("tracking_uri", tracking_uri)
        if tensorboard_dir is not None and not isinstance(tensorboard_dir, (str, Path)):
            raise ValueError(f"tensorboard_dir: expected a path or None, got {tensorboard_dir!r}")
        if _number("flush_interval_s", flush_interval_s) < 0:
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
    ) -> None:
        """Open the study's parent run and write TensorBoard's HParams config.

        Args:
            hparam_domains: every hyperparameter the trials carry, searched or
                fixed (:meth:`HParamDomain.fixed`), by name; the searched ones
                name the trials' runs (:meth:`run_name`).
            metrics: every metric shown in the HParams dashboard, by name
                (``"val_loss"``…); :data:`OBJECTIVE_METRIC` is added first.
            params: study-level parameters, logged on the parent run.
            tags: tags of the parent run.
            description: what the study is about: the MLflow experiment's
                description, and the parent run's.
            spec_file: the study's spec file: the runs' source
                (``mlflow.source.name``; the program when ``None``), and its
                text the parent run's artifact ``spec.toml``.

        Raises:
            ValueError: a bad argument; the message names it.
        """
        for name, domain in _check_mapping("hparam_domains", hparam_domains).items():
            if not isinstance(domain, HParamDomain):
                raise ValueError(
                    f"hparam_domains[{name!r}]: expected an HParamDomain, got {domain!r}"
                )
        if isinstance(metrics, str) or not isinstance(metrics, Sequence):
            raise ValueError(f"metrics: expected a list of metric names, got {metrics!r}")
        for metric in metrics:
            _check_name("metrics", metric)
        params = _check_mapping("params", params)
        tags = {key: str(value) for key, value in _check_mapping("tags", tags).items()}
        if description is not None and not isinstance(description, str):
            raise ValueError(f"description: expected a string or None, got {description!r}")
        if spec_file is not None and not isinstance(spec_file, (str, Path)):
            raise ValueError(f"spec_file: expected a path or None, got {spec_file!r}")
        domains = dict(hparam_domains)
        if self._mlflow is not None:
            self._mlflow.start(params, tags, description=description or "",
                               spec_file=Path(spec_file) if spec_file is not None else None)
        if self._tensorboard is not None:
            others = [m for m in dict.fromkeys(metrics) if m != OBJECTIVE_METRIC]
            self._tensorboard.start(domains, [OBJECTIVE_METRIC, *others])
        self._domains = domains
        self._varying = [name for name, domain in domains.items() if domain.varies]

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
        tags = {key: str(value) for key, value in _check_mapping("tags", tags).items()}
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
        _check_name("run_name", run_name)
        return run_name

    def record_trial(
        self,
        number: int,
        params: Mapping[str, Any],
        history: Mapping[str, Sequence[float]],
        state: str,
        *,
        value: float | None = None,
        metrics: Mapping[str, float] | None = None,
        reason: str | None = None,
        tags: Mapping[str, str] | None = None,
        run_name: str | None = None,
    ) -> None:
        """Record a finished trial at once: its run, its whole per-epoch history, its end.

        For trials whose history is known before anything is tracked (a
        population's): TensorBoard gets every epoch, written in one block;
        MLflow gets each curve at the epochs of :func:`curve_steps` (a constant
        curve at its first and last), in one batch, through the writer thread.
        The arguments are those of :meth:`start_trial` and
        :meth:`TrialTracker.finish`, ``history`` as ``FitResult.history``;
        ``tags`` are extra tags of the MLflow run.

        Raises:
            RuntimeError: :meth:`start` was not called.
            ValueError: a bad argument; the message names it.
        """
        params = self._check_trial("record_trial", number, params)
        curves = _check_history(history)
        epochs = len(next(iter(curves.values()))) if curves else 0
        last = {key: float(curve[-1]) for key, curve in curves.items()}
        values, texts = _final_values(state, value, metrics, reason, last)
        name = self._checked_run_name(number, params, run_name)
        tags = {**{key: str(value) for key, value in _check_mapping("tags", tags).items()},
                STATE_TAG: state}
        if "reason" in texts:
            tags[REASON_TAG] = texts["reason"]
        if self._tensorboard is not None:
            tensorboard_trial = self._tensorboard.start_trial(number, params, name)
            tags[TENSORBOARD_RUN_TAG] = self._tensorboard.run_directory(number).name
            if epochs:
                tensorboard_trial.log_curves(curves)
            tensorboard_trial.finish(max(epochs - 1, 0), values, texts,
                                     success=state == "COMPLETE")
        if self._mlflow is not None:
            steps = curve_steps(epochs)
            points = {key: [(step, float(curve[step])) for step in
                            (sorted({0, epochs - 1}) if np.all(curve == curve[0]) else steps)]
                      for key, curve in curves.items() if epochs}
            for key, number_value in values.items():
                points.setdefault(key, []).append((max(epochs - 1, 0), number_value))
            self._mlflow.record_trial(number, name, params, tags, points, TRIAL_STATES[state])
        self._worked = True

    def log_curves(self, histories: Mapping[int, Mapping[str, Sequence[float]]],
                   file_name: str) -> None:
        """Every epoch of some trials' curves, as one artifact of the parent run.

        The file is ``curves/<file_name>`` (a ``.npz`` name), holding one array
        per trial and metric, ``"<trial number>/<metric>"``; read it with
        ``numpy.load``. MLflow's own curves of a trial recorded with
        :meth:`record_trial` hold only some epochs; this holds them all.

        Args:
            histories: trial number → its per-epoch history.
            file_name: the artifact's name, ending in ``.npz``.

        Raises:
            ValueError: a bad argument; the message names it.
        """
        if not isinstance(file_name, str) or not file_name.endswith(".npz") or "/" in file_name:
            raise ValueError(f"file_name: expected a file name ending in .npz, got {file_name!r}")
        arrays = {f"{_check_step('histories', number)}/{key}": curve
                  for number, history in _check_mapping_of_numbers(histories).items()
                  for key, curve in _check_history(history).items()}
        if self._mlflow is None:
            return
        content = io.BytesIO()
        np.savez_compressed(content, **arrays)
        self._mlflow.log_parent_artifact(content.getvalue(), file_name, "curves")

    def log_trial_figure(self, number: int, path: str | Path, name: str, step: int) -> None:
        """A PNG figure of a finished trial: an MLflow artifact of its run under ``figures/``,
        and a TensorBoard image at ``step`` in its run directory.

        Raises:
            ValueError: ``path`` is not a PNG file, or a bad argument.
        """
        _check_step("number", number)
        _check_name("name", name)
        step = _check_step("step", step)
        path = Path(path)
        png, width, height = _read_png(path)
        if self._tensorboard is not None:
            self._tensorboard.log_png(number, step, name, png, width, height)
        if self._mlflow is not None:
            self._mlflow.log_trial_artifact(number, png, path.name, "figures")

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
        params = _check_mapping("params", params)
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
        _check_name("artifact_path", artifact_path)
        checked = [Path(path) for path in paths]
        for path in checked:
            if not path.exists():
                raise FileNotFoundError(f"paths: {path} does not exist")
        if self._mlflow is not None:
            self._mlflow.log_artifacts(checked, artifact_path)

    def flush(self) -> None:
        """Wait until every MLflow write queued so far is in the tracking store.

        Trials' writes go through a background thread; read the store after this.

        Raises:
            RuntimeError: some queued writes failed; the first failure is its cause.
        """
        if self._mlflow is not None:
            self._mlflow.drain()

    def finish(
        self,
        status: str = "FINISHED",
        *,
        metrics: Mapping[str, float] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
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

        Raises:
            RuntimeError: some trials' MLflow writes failed (the parent run is
                still terminated).
        """
        if self._finished:
            raise RuntimeError(f"study {self.study_name!r}: the tracker is already finished")
        if status not in STUDY_STATUSES:
            raise ValueError(f"status: expected one of {', '.join(STUDY_STATUSES)}, got {status!r}")
        values = _check_metrics("metrics", metrics or {})
        tags = {key: str(value) for key, value in _check_mapping("tags", tags).items()}
        self._finished = True
        # A study whose start() failed has no parent run to terminate.
        if self._mlflow is not None and self._mlflow.parent_run_id:
            self._mlflow.finish(status, values, tags, worked=self._worked)

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
            self.finish("KILLED")
        else:
            self.finish("FAILED")


class TrialTracker:
    """Tracks one trial; build it with :meth:`StudyTracker.start_trial`.

    As a context manager it finishes the trial when the block ends: as
    ``"FAIL"`` with the exception's text when the block raises, as
    ``"COMPLETE"`` when it ends normally, unless :meth:`finish` was called.

    Attributes:
        number: the trial's number.
        state: the final state once finished, else ``None``.
    """

    def __init__(
        self,
        number: int,
        mlflow_trial: MlflowTrial | None,
        tensorboard_trial: TensorBoardTrial | None,
    ) -> None:
        self.number = number
        self.state: str | None = None
        self._mlflow = mlflow_trial
        self._tensorboard = tensorboard_trial
        self._last_epoch = 0
        self._last_epoch_metrics: dict[str, float] = {}

    @property
    def run_id(self) -> str | None:
        """The MLflow child run's id; ``None`` without MLflow.

        The run is created in the background: asking for its id waits until
        it exists.

        Raises:
            Exception: the MLflow error that kept the run from being created.
        """
        return self._mlflow.run_id if self._mlflow is not None else None

    def log_epoch(self, epoch: int, metrics: Mapping[str, float]) -> None:
        """Record one epoch's metrics (loss, accuracy, learning rate…).

        TensorBoard gets them at once (flushed); MLflow gets them in batches.

        Args:
            epoch: the epoch, used as the step in both backends.
            metrics: metric name → value; NaN and infinities are kept, they
                are what a diverging trial looks like.
        """
        self._check_open()
        epoch = _check_step("epoch", epoch)
        values = _check_metrics("metrics", metrics)
        self._last_epoch = epoch
        self._last_epoch_metrics = values
        if self._tensorboard is not None:
            self._tensorboard.log_scalars(epoch, values)
        if self._mlflow is not None:
            self._mlflow.log_metrics(epoch, values)

    def log_histograms(self, epoch: int, tensors: Mapping[str, np.ndarray]) -> None:
        """TensorBoard histograms at ``epoch``, e.g. ``weights/dense/kernel``.

        Args:
            epoch: the step of the histograms.
            tensors: histogram name → array of any shape.
        """
        self._check_open()
        epoch = _check_step("epoch", epoch)
        if not isinstance(tensors, Mapping):
            raise ValueError(f"tensors: expected a mapping of name to array, got {tensors!r}")
        for name in tensors:
            _check_name("tensors", name)
        if self._tensorboard is not None:
            self._tensorboard.log_histograms(epoch, tensors)

    def log_figure(self, path: str | Path, name: str) -> None:
        """A PNG figure: an MLflow artifact under ``figures/`` and a TensorBoard image.

        Args:
            path: the PNG file.
            name: the image's tag in TensorBoard.

        Raises:
            ValueError: ``path`` is not a PNG file.
        """
        self._check_open()
        _check_name("name", name)
        path = Path(path)
        png, width, height = _read_png(path)
        if self._tensorboard is not None:
            self._tensorboard.log_png(self._last_epoch, name, png, width, height)
        if self._mlflow is not None:
            self._mlflow.log_artifact(png, path.name, "figures")

    def finish(
        self,
        state: str,
        *,
        value: float | None = None,
        metrics: Mapping[str, float] | None = None,
        reason: str | None = None,
    ) -> None:
        """End the trial in both backends.

        Args:
            state: ``"COMPLETE"``, ``"PRUNED"`` or ``"FAIL"``; the MLflow run
                ends ``FINISHED``, ``KILLED`` or ``FAILED``, the TensorBoard
                session as a success (complete) or a failure (the others).
            value: the objective value returned to the study, logged as
                :data:`OBJECTIVE_METRIC`.
            metrics: final metrics (test accuracy, best validation loss…),
                logged at the last epoch's step; one equal to that epoch's
                value of the same name is not logged twice.
            reason: why the trial was pruned or failed (tag ``gdbench.reason``
                in MLflow, text ``reason`` in TensorBoard).

        Raises:
            RuntimeError: the trial is already finished.
            ValueError: a bad argument; the message names it.
        """
        self._check_open()
        values, texts = _final_values(state, value, metrics, reason, self._last_epoch_metrics)
        self.state = state
        try:
            if self._mlflow is not None:
                tags = {STATE_TAG: state}
                if reason:
                    tags[REASON_TAG] = texts["reason"]
                self._mlflow.finish(TRIAL_STATES[state], self._last_epoch, values, tags)
        finally:
            if self._tensorboard is not None:
                self._tensorboard.finish(
                    self._last_epoch, values, texts, success=state == "COMPLETE"
                )

    def __enter__(self) -> TrialTracker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.state is not None:
            return
        if exc is None:
            self.finish("COMPLETE")
        else:
            self.finish("FAIL", reason=f"{type(exc).__name__}: {exc}")

    def _check_open(self) -> None:
        if self.state is not None:
            raise RuntimeError(f"trial {self.number} is already finished ({self.state})")


def _final_values(state: str, value: float | None, metrics: Mapping[str, float] | None,
                  reason: str | None, last_epoch: Mapping[str, float],
                  ) -> tuple[dict[str, float], dict[str, str]]:
    """A trial's final metrics (the objective among them) and texts (state, reason), checked.

    A final metric equal to the last epoch's of the same name is left out: it
    is already logged at that step.
    """
    if state not in TRIAL_STATES:
        raise ValueError(f"state: expected one of {', '.join(TRIAL_STATES)}, got {state!r}")
    values = _check_metrics("metrics", metrics or {})
    if value is not None:
        values[OBJECTIVE_METRIC] = _number("value", value)
    values = {key: number for key, number in values.items() if last_epoch.get(key) != number}
    if reason is not None and not isinstance(reason, str):
        raise ValueError(f"reason: expected a string or None, got {reason!r}")
    texts = {"state": state}
    if reason:
        texts["reason"] = reason[:MAX_REASON_LENGTH]
    return values, texts


def _read_png(path: Path) -> tuple[bytes, int, int]:
    """A PNG file's bytes, width and height."""
    png = path.read_bytes()
    if png[:8] != _PNG_SIGNATURE or len(png) < 24:
        raise ValueError(f"path: expected a PNG file, got {path}")
    width, height = struct.unpack(">II", png[16:24])
    return png, width, height


def _check_mapping_of_numbers(value: Any) -> dict[int, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"histories: expected a mapping of trial number to history, got {value!r}")
    return dict(value)


def _check_history(history: Mapping[str, Sequence[float]]) -> dict[str, np.ndarray]:
    """Per-epoch curves as float arrays of one length (NaN and infinities pass)."""
    curves: dict[str, np.ndarray] = {}
    for key, curve in _check_mapping("history", history).items():
        try:
            curves[key] = np.asarray(curve, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise ValueError(f"history[{key!r}]: expected a sequence of numbers, "
                             f"got {curve!r}") from None
    lengths = {len(curve) for curve in curves.values()}
    if len(lengths) > 1:
        raise ValueError(f"history: expected curves of one length, got lengths {sorted(lengths)}")
    return curves


def _check_name(field: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{field}: expected a non-empty string, got {value!r}")
    return value


def _check_mapping(field: str, value: Mapping[str, Any] | None) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{field}: expected a mapping of name to value, got {value!r}")
    for key in value:
        _check_name(field, key)
    return dict(value)


def _check_step(field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{field}: expected an integer >= 0, got {value!r}")
    return int(value)


def _check_metrics(field: str, metrics: Mapping[str, Any]) -> dict[str, float]:
    """``metrics`` with float values; NaN and infinities pass, non-numbers do not."""
    return {
        key: _number(f"{field}[{key!r}]", value)
        for key, value in _check_mapping(field, metrics).items()
    }


def _number(field: str, value: Any) -> float:
    """``float(value)`` for a number (NaN and infinities included), else a ``ValueError``."""
    if isinstance(value, (bool, str, bytes)):
        raise ValueError(f"{field}: expected a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{field}: expected a number, got {value!r}") from None
