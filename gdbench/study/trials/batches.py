"""Population batches: which trials train together, and the engines' view of their values.

Trials of one batch that share an optimizer, a schedule and every value that
cannot be a per-trial number (a flag, a mode, the length of a list of
boundaries) form one population, trained in one vectorized run of
:func:`gdbench.tasks.population.fit_population` (toy tasks) or
:func:`gdbench.tasks.image_population.fit_image_population` (image tasks
whose model can be stacked); both engines take the values in one form.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

import gdbench.optimizers
import gdbench.tasks
from gdbench.study.plan.build import TrialSetup
from gdbench.study.trials.session import StudyContext

if TYPE_CHECKING:
    from gdbench.tasks.image_population import EpochReport, ImagePopulationResult

__all__ = ["MAX_REPORTED_EPOCHS", "XLA_MIN_STEPS", "fit_group", "fit_image_group", "groups",
           "reported_epochs", "trains_alone"]

#: Trials of at least this many optimizer steps are trained by an XLA-compiled loop.
XLA_MIN_STEPS = 1000

#: A toy trial's per-epoch objective is reported to Optuna at about this many
#: epochs (its MLflow and TensorBoard curves keep every epoch): one storage
#: write per report, and a population batch has thousands of epochs in all.
MAX_REPORTED_EPOCHS = 10


def reported_epochs(epochs: int) -> list[int]:
    """About :data:`MAX_REPORTED_EPOCHS` epochs spread over ``epochs``, the last one included."""
    if epochs <= MAX_REPORTED_EPOCHS:
        return list(range(epochs))
    chosen = np.unique(np.linspace(0, epochs - 1, MAX_REPORTED_EPOCHS).round().astype(int))
    return [int(epoch) for epoch in chosen]


def _group_key(setup: TrialSetup) -> tuple[Any, ...]:
    """Trials in one population share everything that cannot be a per-trial number."""
    def fixed_part(values: Mapping[str, Any]) -> tuple[Any, ...]:
        shared = [(key, json.dumps(value)) for key, value in values.items()
                  if isinstance(value, (bool, str)) or value is None]
        lengths = [(key, len(value)) for key, value in values.items() if isinstance(value, list)]
        return tuple(sorted(shared + lengths))

    return (setup.optimizer, setup.schedule, setup.target, fixed_part(setup.optimizer_values),
            fixed_part(setup.schedule_values))


def trains_alone(setup: TrialSetup) -> bool:
    """Whether a trial trains one by one even in a population batch: a warm-up's target
    schedule is an object, not per-trial numbers, and an optimizer that is a Keras class,
    not an update rule, has no rule to vectorize."""
    return (setup.target is not None
            or not gdbench.optimizers.source(setup.optimizer).vectorizable)


def groups(setups: Sequence[TrialSetup]) -> list[list[int]]:
    """The indices of ``setups``, grouped into populations."""
    found: dict[tuple[Any, ...], list[int]] = {}
    for index, setup in enumerate(setups):
        found.setdefault(_group_key(setup), []).append(index)
    return list(found.values())


def _stacked(keywords: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per-trial keyword dicts → the population engine's: numbers as arrays [K], a list
    (piecewise ``boundaries``, ``values``) as a list of arrays [K], shared values as they are."""
    stacked: dict[str, Any] = {}
    for key, first in keywords[0].items():
        values = [k[key] for k in keywords]
        if isinstance(first, (bool, str)) or first is None:
            stacked[key] = first
        elif isinstance(first, list):
            stacked[key] = [np.asarray([value[item] for value in values], dtype=np.float64)
                            for item in range(len(first))]
        else:
            stacked[key] = np.asarray(values, dtype=np.float64)
    return stacked


def _engine_values(setups: Sequence[TrialSetup]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The optimizer's and the schedule's per-trial values of one group, as the engines take them
    (η among the optimizer's when there is no schedule)."""
    hyperparameters = _stacked([s.optimizer_keywords() for s in setups])
    if setups[0].schedule is None:
        hyperparameters["learning_rate"] = np.array([s.learning_rate for s in setups])
        return hyperparameters, None
    return hyperparameters, _stacked([s.schedule_keywords() for s in setups])


def fit_group(context: StudyContext, setups: Sequence[TrialSetup],
              record_trajectory: bool,
              record_effective_learning_rates: bool = False,
              once: bool = False, size: int | None = None) -> list[gdbench.tasks.FitResult]:
    """Train one population of a toy task (setups of one group) and split the result into
    each trial's fit (with each step's parameters and effective learning rates where asked).

    ``size`` trains a smaller group as a population of that many, the missing members
    copies of the first whose results are dropped: the training loop is compiled once
    for each population size (a few tenths of a second), while a toy member costs
    about 0.1 ms of a 1000-epoch loop, so a study's groups padded to its
    ``trials_per_batch`` share one compiled loop per optimizer and schedule, whatever
    their sizes.

    The training loop is compiled with XLA for trials of :data:`XLA_MIN_STEPS`
    steps or more: XLA's compilation (a few tenths of a second for each
    optimizer and population size) then pays for itself, running each step
    several times faster; shorter trials run without it, and so does a
    population trained ``once`` (a report's few best trials), which would not
    run the loop again to repay it.
    """
    from gdbench.tasks.population import (
        fit_population,  # keeps TensorFlow out of start-up
    )

    padded = list(setups) + [setups[0]] * max(0, (size or 0) - len(setups))
    hyperparameters, schedule_parameters = _engine_values(padded)
    result = fit_population(
        context.task, setups[0].optimizer, hyperparameters, epochs=context.epochs,
        batch_size=context.batch_size, schedule=setups[0].schedule,
        schedule_parameters=schedule_parameters, record_trajectory=record_trajectory,
        jit_compile=not once and context.total_steps >= XLA_MIN_STEPS,
        record_effective_learning_rates=record_effective_learning_rates,
    )
    return [result.trial(index) for index in range(len(setups))]


def fit_image_group(context: StudyContext, setups: Sequence[TrialSetup],
                    on_epoch: Callable[[EpochReport], Any]) -> ImagePopulationResult:
    """Train one population of an image task (setups of one group); ``on_epoch`` sees every
    epoch's logs and names the members to stop
    (:func:`~gdbench.tasks.image_population.fit_image_population`)."""
    from gdbench.tasks.image_population import (
        fit_image_population,  # keeps TensorFlow out of start-up
    )

    hyperparameters, schedule_parameters = _engine_values(setups)
    return fit_image_population(
        context.task, setups[0].optimizer, hyperparameters, epochs=context.epochs,
        batch_size=context.batch_size, schedule=setups[0].schedule,
        schedule_parameters=schedule_parameters, on_epoch=on_epoch,
    )
