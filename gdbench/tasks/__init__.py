"""What gets trained: toy surfaces, regression and image classification.

Every task is built by name and trained with :meth:`Task.fit`, which takes a
fresh Keras optimizer and returns a :class:`FitResult` (per-epoch history,
final metrics, and for toy tasks the trajectory of every step).

    >>> import gdbench.optimizers, gdbench.tasks
    >>> task = gdbench.tasks.get("sigmoid_neuron", start=(-4.0, 4.0))
    >>> result = task.fit(gdbench.optimizers.get("gd", learning_rate=1.0), epochs=10)
    >>> result.trajectory.shape
    (11, 2)
"""

from __future__ import annotations

from typing import Any

from gdbench.tasks._base import FitResult, Task
from gdbench.tasks._datasets import DatasetNotFoundError
from gdbench.tasks._toy import DatasetToyTask, ToyModel, ToyTask
from gdbench.tasks.images import (
    CIFAR10_3C3D,
    MNISTMLP,
    DigitsMLP,
    FashionMNIST2C2D,
    FashionMNISTMLP,
    ImageSplits,
    ImageTask,
)
from gdbench.tasks.regression import LinearRegression, LogisticRegression, QuadraticDeep
from gdbench.tasks.sigmoid import SigmoidNeuron, SigmoidSparse
from gdbench.tasks.surfaces import (
    Beale,
    Branin,
    Plateau,
    Rastrigin,
    Ravine,
    Rosenbrock,
    Saddle,
    SurfaceTask,
)

__all__ = [
    "Beale", "Branin", "CIFAR10_3C3D", "DatasetNotFoundError", "DatasetToyTask", "DigitsMLP",
    "FashionMNIST2C2D", "FashionMNISTMLP", "FitResult", "ImageSplits", "ImageTask",
    "LinearRegression", "LogisticRegression", "MNISTMLP", "Plateau", "QuadraticDeep", "REGISTRY",
    "Rastrigin", "Ravine", "Rosenbrock", "Saddle", "SigmoidNeuron", "SigmoidSparse",
    "SurfaceTask", "Task", "ToyModel", "ToyTask", "get", "names",
]

#: name → task class: toy tasks first, then image tasks.
REGISTRY: dict[str, type[Task]] = {
    task.name: task
    for task in (
        SigmoidNeuron, SigmoidSparse,
        Saddle, Ravine, Plateau, Rosenbrock, Beale, Branin, Rastrigin,
        LinearRegression, LogisticRegression, QuadraticDeep,
        DigitsMLP, FashionMNISTMLP, FashionMNIST2C2D, MNISTMLP, CIFAR10_3C3D,
    )
}


def names() -> list[str]:
    """Every registered task name."""
    return list(REGISTRY)


def get(name: str, **options: Any) -> Task:
    """Build a task by name.

    Args:
        name: a registered name (see :func:`names`).
        **options: the task's options, ``seed`` included (see each task's docstring).

    Raises:
        KeyError: unknown name; the message lists the registered names.
        ValueError: an option the task does not take (the message lists those
            it does), or a bad value (the message names the option).
    """
    if not isinstance(name, str) or name.lower() not in REGISTRY:
        raise KeyError(f"task: unknown name {name!r}; registered: {', '.join(REGISTRY)}")
    task_class = REGISTRY[name.lower()]
    accepted = task_class.option_names()
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(
            f"{name}: unknown option(s) {', '.join(unknown)}; accepted: {', '.join(accepted)}"
        )
    return task_class(**options)
