"""Per-trial figures (loss curve, path on the error surface), drawn once the trial loop is done.

A figure takes matplotlib a tenth of a second or more: drawn while trials
wait, the figures of the trials that ranked among the best so far cost a
batch of toy trials more than training it, and an image trial a tenth of its
time. The loop offers every complete trial instead; the best
:data:`FIGURE_RANK` that this process ran are kept (their history and path,
a few kilobytes), and drawn when its loop ends, each attached to its trial's
MLflow run and TensorBoard session.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from gdbench.study.session import StudyContext
from gdbench.tracking import StudyTracker

__all__ = ["BestTrials", "FIGURE_RANK"]

#: The best this many complete trials of a process get their figures.
FIGURE_RANK = 3


class BestTrials:
    """The best :data:`FIGURE_RANK` complete trials offered so far, with what their figures need.

    Args:
        maximize: whether a higher objective is better.
    """

    def __init__(self, maximize: bool) -> None:
        self.maximize = maximize
        self.kept: list[tuple[float, int, Mapping[str, Sequence[float]], np.ndarray | None]] = []

    def offer(self, number: int, value: float, history: Mapping[str, Sequence[float]],
              trajectory: np.ndarray | None) -> None:
        """Keep trial ``number`` if it ranks among the best so far."""
        self.kept.append((-value if self.maximize else value, number, history, trajectory))
        self.kept.sort(key=lambda kept: kept[:2])
        del self.kept[FIGURE_RANK:]

    def draw(self, tracker: StudyTracker, context: StudyContext) -> None:
        """Draw the kept trials' figures and attach them to their trials."""
        from gdbench import plots

        with tempfile.TemporaryDirectory(prefix="gdbench-figures-") as folder:
            for _, number, history, trajectory in self.kept:
                label = f"trial {number}"
                step = max(len(history.get("loss", ())) - 1, 0)
                curve = plots.plot_loss_curves({label: history},
                                               Path(folder) / f"trial-{number}-loss.png")
                tracker.log_trial_figure(number, curve, "loss_curve", step)
                if trajectory is not None and context.draws_paths:
                    path = plots.plot_trajectories(context.task, {label: trajectory},
                                                   Path(folder) / f"trial-{number}-path.png")
                    tracker.log_trial_figure(number, path, "trajectory", step)
        self.kept = []
