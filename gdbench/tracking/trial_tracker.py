"""The trial tracker, and what a trial's end records: its state, its reason, its objective.

A :class:`TrialTracker` is built by :meth:`StudyTracker.start_trial
<gdbench.tracking.StudyTracker.start_trial>`; :func:`final_values` checks a
trial's end for it and for :meth:`StudyTracker.record_trial
<gdbench.tracking.StudyTracker.record_trial>` alike.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Mapping

import numpy as np

from gdbench.tracking._checks import (
    check_metrics,
    check_name,
    check_number,
    check_step,
    read_png,
)
from gdbench.tracking._tensorboard import TensorBoardTrial

if TYPE_CHECKING:
    from gdbench.tracking._mlflow import MlflowTrial

__all__ = [
    "MAX_REASON_LENGTH",
    "OBJECTIVE_METRIC",
    "REASON_TAG",
    "STATE_TAG",
    "TRIAL_STATES",
    "TrialTracker",
    "final_values",
]

#: The metric holding the value a trial returns to the study.
OBJECTIVE_METRIC = "objective"

#: A trial's final state → the status of its MLflow run.
TRIAL_STATES: dict[str, str] = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}

STATE_TAG = "gdbench.state"
REASON_TAG = "gdbench.reason"

#: MLflow caps tag values at 8000 characters; a long traceback is cut to this.
MAX_REASON_LENGTH = 5000


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
        epoch = check_step("epoch", epoch)
        values = check_metrics("metrics", metrics)
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
        epoch = check_step("epoch", epoch)
        if not isinstance(tensors, Mapping):
            raise ValueError(f"tensors: expected a mapping of name to array, got {tensors!r}")
        for name in tensors:
            check_name("tensors", name)
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
        check_name("name", name)
        path = Path(path)
        png, width, height = read_png(path)
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
        values, texts = final_values(state, value, metrics, reason, self._last_epoch_metrics)
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


def final_values(state: str, value: float | None, metrics: Mapping[str, float] | None,
                  reason: str | None, last_epoch: Mapping[str, float],
                  ) -> tuple[dict[str, float], dict[str, str]]:
    """A trial's final metrics (the objective among them) and texts (state, reason), checked.

    A final metric equal to the last epoch's of the same name is left out: it
    is already logged at that step.
    """
    if state not in TRIAL_STATES:
        raise ValueError(f"state: expected one of {', '.join(TRIAL_STATES)}, got {state!r}")
    values = check_metrics("metrics", metrics or {})
    if value is not None:
        values[OBJECTIVE_METRIC] = check_number("value", value)
    values = {key: number for key, number in values.items() if last_epoch.get(key) != number}
    if reason is not None and not isinstance(reason, str):
        raise ValueError(f"reason: expected a string or None, got {reason!r}")
    texts = {"state": state}
    if reason:
        texts["reason"] = reason[:MAX_REASON_LENGTH]
    return values, texts


