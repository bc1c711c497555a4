"""What the population engine returns: one row per trial, cut where each trial stopped.

:class:`PopulationResult` holds a toy population's per-epoch arrays;
:func:`population_result` builds it from the compiled loop's raw arrays, each
trial cut where :meth:`ToyTask.fit <gdbench.tasks.ToyTask.fit>` would have stopped.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from gdbench import _validate
from gdbench.tasks._base import FitResult

__all__ = ["PopulationResult", "population_result"]


@dataclasses.dataclass
class PopulationResult:
    """What :func:`fit_population` returns: one row per trial.

    A trial whose loss becomes non-finite is reported as :meth:`ToyTask.fit`
    reports it: its history ends with the epoch of that loss. Here the
    arrays keep their shape and hold NaN after that epoch.

    Attributes:
        losses: ``[K, epochs]``, the loss on all data after each epoch.
        learning_rates: ``[K, epochs]``, η at the end of each epoch (the
            schedule at the iteration count reached), as ``history["learning_rate"]``.
        final_loss: ``[K]``, the last loss reported (the first non-finite one
            for a diverged trial).
        finite: ``[K]``, whether every loss of the trial is finite.
        epochs_run: ``[K]``, the epochs :meth:`ToyTask.fit` would have run
            (all of them unless the loss became non-finite).
        trajectories: ``[K, steps + 1, P]``, the parameters after every step,
            row 0 the start; ``None`` unless recorded.
        effective_learning_rates: ``[K, steps, P]``, each parameter's
            effective learning rate at every step
            (:mod:`gdbench.tasks.trace`); ``None`` unless recorded.
        steps_per_epoch: optimizer steps in one epoch.
        parameter_names: the name of each of the P parameters.
        evaluations: key → ``[K, epochs + 1]``, the losses the task's
            protocol evaluates on data of their own
            (:meth:`ToyTask.evaluation_batches`), column 0 before training;
            NaN after a trial stopped. ``"loss"`` among them is ``losses``
            with its column 0.
    """

    losses: np.ndarray
    learning_rates: np.ndarray
    final_loss: np.ndarray
    finite: np.ndarray
    epochs_run: np.ndarray
    trajectories: np.ndarray | None
    steps_per_epoch: int
    parameter_names: tuple[str, ...]
    evaluations: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    effective_learning_rates: np.ndarray | None = None

    @property
    def size(self) -> int:
        """K, the number of trials."""
        return len(self.final_loss)

    def trial(self, index: int) -> FitResult:
        """Trial ``index`` as the :class:`FitResult` that :meth:`ToyTask.fit` returns.

        The history holds ``"loss"``, ``"learning_rate"`` and the evaluated
        losses (metrics a task adds besides its loss are not computed by the
        population engine); :attr:`FitResult.initial` the evaluations before
        training.

        Args:
            index: the row, 0 ≤ index < K.
        """
        index = _validate.integer("index", index, low=0, high=self.size - 1)
        reported = int(self.epochs_run[index])
        history = {
            "loss": self.losses[index, :reported].tolist(),
            "learning_rate": self.learning_rates[index, :reported].tolist(),
        }
        for key, values in self.evaluations.items():
            if key != "loss":
                history[key] = values[index, 1:reported + 1].tolist()
        trajectory = None
        if self.trajectories is not None:
            trajectory = self.trajectories[index, : reported * self.steps_per_epoch + 1]
        rates = None
        if self.effective_learning_rates is not None:
            rates = self.effective_learning_rates[index, : reported * self.steps_per_epoch]
        return FitResult(
            history=history,
            metrics={"loss": float(self.final_loss[index])},
            steps_per_epoch=self.steps_per_epoch,
            trajectory=trajectory,
            parameter_names=self.parameter_names,
            initial={key: float(values[index, 0]) for key, values in self.evaluations.items()},
            effective_learning_rates=rates,
        )


def population_result(
    losses: np.ndarray, learning_rates: np.ndarray, trajectories: np.ndarray | None,
    steps_per_epoch: int, parameter_names: tuple[str, ...],
    evaluations: dict[str, np.ndarray] | None = None,
    effective_learning_rates: np.ndarray | None = None,
) -> PopulationResult:
    """The raw per-epoch arrays cut, per trial, where ToyTask.fit would have stopped.

    Args:
        losses: ``[K, epochs]``.
        learning_rates: ``[K, epochs]``.
        trajectories: ``[K, steps + 1, P]`` or ``None``.
        steps_per_epoch: optimizer steps in one epoch.
        parameter_names: the name of each of the P parameters.
        evaluations: key → ``[K, epochs + 1]``, column 0 before training.
        effective_learning_rates: ``[K, steps, P]`` or ``None``.
    """
    size, epochs = losses.shape
    finite_epochs = np.isfinite(losses)
    finite = finite_epochs.all(axis=1)
    # ToyTask.fit stops after the first epoch with a non-finite loss.
    epochs_run = np.where(finite, epochs, np.argmin(finite_epochs, axis=1) + 1)
    unreported = np.arange(epochs)[np.newaxis, :] >= epochs_run[:, np.newaxis]
    losses = np.where(unreported, np.nan, losses)
    learning_rates = np.where(unreported, np.nan, learning_rates)
    evaluated = {key: np.where(np.column_stack([np.zeros(size, bool), unreported]), np.nan,
                               values) for key, values in (evaluations or {}).items()}
    if trajectories is not None:
        steps = np.arange(trajectories.shape[1])[np.newaxis, :]
        unreported_steps = steps > (epochs_run * steps_per_epoch)[:, np.newaxis]
        trajectories = np.where(unreported_steps[..., np.newaxis], np.nan, trajectories)
    return PopulationResult(
        losses=losses,
        learning_rates=learning_rates,
        final_loss=losses[np.arange(size), epochs_run - 1],
        finite=finite,
        epochs_run=epochs_run,
        trajectories=trajectories,
        steps_per_epoch=steps_per_epoch,
        parameter_names=parameter_names,
        evaluations=evaluated,
        effective_learning_rates=effective_learning_rates,
    )
