"""What gets trained: toy surfaces, regression and image classification.

Every task is built by name (a task of the user's by import path: see
:mod:`gdbench.tasks.registry`, :func:`toy_task` and :func:`keras_task`) and trained
with :meth:`Task.fit`, which takes a fresh Keras optimizer and returns a
:class:`FitResult` (per-epoch history, final metrics, and for toy tasks the
trajectory of every step).

    >>> import gdbench.optimizers, gdbench.tasks
    >>> task = gdbench.tasks.get("sigmoid_neuron", start=(-4.0, 4.0))
    >>> result = task.fit(gdbench.optimizers.get("gd", learning_rate=1.0), epochs=10)
    >>> result.trajectory.shape
    (11, 2)
"""

from __future__ import annotations

from gdbench.tasks._base import FitResult, Task
from gdbench.tasks._datasets import DatasetNotFoundError
from gdbench.tasks._toy import DatasetToyTask, ToyModel, ToyTask
from gdbench.tasks.function_task import FunctionTask, toy_task
from gdbench.tasks.images import (
    CIFAR10_3C3D,
    MNISTMLP,
    DigitsMLP,
    FashionMNIST2C2D,
    FashionMNISTMLP,
    ImageSplits,
    ImageTask,
)
from gdbench.tasks.keras_task import KerasTask, keras_task
from gdbench.tasks.registry import (
    ENTRY_POINT_GROUP,
    REGISTRY,
    TaskSource,
    get,
    names,
    plugin_names,
    plugins,
    source,
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
    "ENTRY_POINT_GROUP", "FashionMNIST2C2D", "FashionMNISTMLP", "FitResult", "FunctionTask",
    "ImageSplits", "ImageTask", "KerasTask", "LinearRegression", "LogisticRegression", "MNISTMLP",
    "Plateau", "QuadraticDeep", "REGISTRY", "Rastrigin", "Ravine", "Rosenbrock", "Saddle",
    "SigmoidNeuron", "SigmoidSparse", "SurfaceTask", "Task", "TaskSource", "ToyModel", "ToyTask",
    "get", "keras_task", "names", "plugin_names", "plugins", "source", "toy_task",
]
