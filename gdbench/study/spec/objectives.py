"""A trial's objective value from its per-epoch history: the last epoch's metric, or the time
it took to reach a target.

A time-to-target objective (``objective = {metric = "val_accuracy", target = 0.9,
measure = "epochs"}``) is the time until the metric first reaches ``target``:
≥ for a maximized metric (accuracy), ≤ for a minimized one (a loss). The time
is counted in

| measure   | reached at epoch k (1-based)               | never reached                  |
|-----------|--------------------------------------------|--------------------------------|
| `epochs`  | k                                          | every epoch of the budget      |
| `steps`   | k · steps per epoch                        | every step of the budget       |
| `seconds` | k · the trial's seconds per epoch          | the trial's whole duration     |

(a trial's seconds per epoch are its fit's wall time, model building and
tracing included, over the epochs it ran; a population's trials train
together and have no time of their own). A trial that never reaches the
target costs the whole budget and is still ranked, behind every trial that
reached it (AlgoPerf counts it as the budget too, and its performance ratio as
infinite: :mod:`gdbench.study.compare.profiles`). The value is minimized. Each epoch
still reports the metric itself (to Optuna, the trackers), so that the curves
show how a trial approached the target, and a profile tells a trial that
reached it at the last epoch from one that never did.

Pruning compares the reports of a trial with those of the others in the
study's direction; the time to a target is only known at the end, and the
metric reported per epoch improves in its own direction, so a time-to-target
study runs without a pruner (the spec refuses any other).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from gdbench.study.spec.model import ObjectiveSpec

__all__ = ["MEASURES", "epochs_to_target", "objective_value", "reached", "target_reached"]

#: How a time-to-target objective counts time.
MEASURES = ("epochs", "steps", "seconds")


def reached(value: float, target: float, direction: str) -> bool:
    """Whether ``value`` reaches ``target`` for a metric improving in ``direction``."""
    if not math.isfinite(value):
        return False
    return value >= target if direction == "maximize" else value <= target


def epochs_to_target(values: Sequence[float], target: float, direction: str) -> int | None:
    """The 1-based epoch at which ``values`` first reach ``target``; ``None`` when never."""
    for epoch, value in enumerate(values, start=1):
        if reached(float(value), target, direction):
            return epoch
    return None


def objective_value(objective: ObjectiveSpec, history: Mapping[str, Sequence[float]],
                    steps_per_epoch: int, seconds_per_epoch: float | Sequence[float] | None = None,
                    *, epochs: int | None = None) -> float:
    """A trial's value: its metric at the last epoch, or its time to the target.

    Args:
        objective: the study's objective.
        history: the trial's per-epoch metrics (``objective.metric`` among them).
        steps_per_epoch: optimizer steps in one epoch.
        seconds_per_epoch: wall seconds of each epoch, or one mean for all
            (``measure = "seconds"`` only).
        epochs: the budget in epochs; ``None`` takes the epochs the history holds.

    Raises:
        ValueError: ``measure = "seconds"`` without ``seconds_per_epoch``.
    """
    values = [float(value) for value in history[objective.metric]]
    if objective.target is None:
        return values[-1]
    budget = len(values) if epochs is None else epochs
    epoch = epochs_to_target(values, objective.target, objective.metric_direction)
    spent = budget if epoch is None else epoch
    if objective.measure == "epochs":
        return float(spent)
    if objective.measure == "steps":
        return float(spent * steps_per_epoch)
    if seconds_per_epoch is None:
        raise ValueError("objective.measure: 'seconds' needs the wall time of each epoch")
    if isinstance(seconds_per_epoch, (int, float)):
        return float(spent * seconds_per_epoch)
    seconds = [float(value) for value in seconds_per_epoch]
    return float(sum(seconds if epoch is None else seconds[:epoch]))


def target_reached(objective: ObjectiveSpec, history: Mapping[str, Sequence[float]]
                   ) -> bool | None:
    """Whether the trial's metric ever reached the objective's target (``None`` without one).

    A trial that reached it at the last epoch and one that never did have the
    same value, the whole budget; this tells them apart, and so does a trial
    that reached it and then left it again (kept as
    :data:`gdbench.study.trials.keys.TARGET_REACHED_ATTR`).
    """
    if objective.target is None:
        return None
    return epochs_to_target(history[objective.metric], objective.target,
                            objective.metric_direction) is not None
