"""A study's trials recorded at once, after they ran: a population's finished trials.

:class:`RecordedTrials` is a base of :class:`~gdbench.tracking.StudyTracker`:
it sends a trial's whole history, its curves in full and its figures to both
backends in one go, and shares the tracker's backends and declared domains.
MLflow gets each curve at the epochs of :func:`curve_steps`.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

import numpy as np

from gdbench.tracking._checks import (
    check_history,
    check_mapping,
    check_mapping_of_numbers,
    check_name,
    check_step,
    read_png,
)
from gdbench.tracking._tensorboard import TensorBoardStudy
from gdbench.tracking.artifacts import CURVES_FOLDER
from gdbench.tracking.trial_tracker import REASON_TAG, STATE_TAG, TRIAL_STATES, final_values

if TYPE_CHECKING:
    from gdbench.tracking._mlflow import MlflowStudy

__all__ = [
    "MLFLOW_CURVE_POINTS",
    "MLFLOW_DENSE_EPOCHS",
    "TENSORBOARD_RUN_TAG",
    "RecordedTrials",
    "curve_steps",
]

TENSORBOARD_RUN_TAG = "gdbench.tensorboard_run"

#: A curve of more epochs than this goes to MLflow at about this many of them
#: (:func:`curve_steps`); TensorBoard keeps every epoch.
MLFLOW_CURVE_POINTS = 24

#: The first epochs, where a curve changes fastest, all go to MLflow.
MLFLOW_DENSE_EPOCHS = 8


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


class RecordedTrials:
    """The :class:`~gdbench.tracking.StudyTracker` methods that record finished trials.

    They use the tracker's backends (``_mlflow``, ``_tensorboard``), its
    checks of a trial (``_check_trial``, ``_checked_run_name``), and mark it
    as having worked (``_worked``).
    """

    _mlflow: MlflowStudy | None
    _tensorboard: TensorBoardStudy | None
    _worked: bool

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
        curves = check_history(history)
        epochs = len(next(iter(curves.values()))) if curves else 0
        last = {key: float(curve[-1]) for key, curve in curves.items()}
        values, texts = final_values(state, value, metrics, reason, last)
        name = self._checked_run_name(number, params, run_name)
        tags = {**{key: str(value) for key, value in check_mapping("tags", tags).items()},
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

    @contextlib.contextmanager
    def recording(self) -> Iterator[None]:
        """Trials recorded inside (:meth:`record_trial`) are made durable together when it ends.

        Their MLflow runs go to the study's journal in one file, with one
        write and one ``fsync``, rather than one a trial; end it before Optuna
        is told of them, so that a process killed then leaves their runs to
        the next one. It ends so even when what it holds raises.
        """
        if self._mlflow is None:
            yield
            return
        with self._mlflow.recording():
            yield

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
        arrays = {f"{check_step('histories', number)}/{key}": curve
                  for number, history in check_mapping_of_numbers(histories).items()
                  for key, curve in check_history(history).items()}
        if self._mlflow is None:
            return
        content = io.BytesIO()
        np.savez_compressed(content, **arrays)
        self._mlflow.log_parent_artifact(content.getvalue(), file_name, CURVES_FOLDER)

    def log_trial_figure(self, number: int, path: str | Path, name: str, step: int) -> None:
        """A PNG figure of a finished trial: an MLflow artifact of its run under ``figures/``,
        and a TensorBoard image at ``step`` in its run directory.

        Raises:
            ValueError: ``path`` is not a PNG file, or a bad argument.
        """
        check_step("number", number)
        check_name("name", name)
        step = check_step("step", step)
        path = Path(path)
        png, width, height = read_png(path)
        if self._tensorboard is not None:
            self._tensorboard.log_png(number, step, name, png, width, height)
        if self._mlflow is not None:
            self._mlflow.log_trial_artifact(number, png, path.name, "figures")
