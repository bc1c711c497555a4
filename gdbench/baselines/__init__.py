"""Published baselines: DeepOBS's runs of SGD, Momentum and Adam, per epoch, mean ± std over seeds.

DeepOBS (Schneider, Balles & Hennig, ICLR 2019) published, for each of its
test problems, the runs of its three baseline optimizers: the learning rate
tuned on a log grid for one seed, then the best setting rerun over ten seeds.
``scripts/deepobs_baselines.py`` reads a local checkout of
https://github.com/fsschneider/DeepOBS (its ``baselines/`` folder) and writes,
per problem, one compact file ``gdbench/baselines/deepobs/<problem>.json``: for
each optimizer its chosen setting, the seeds, and the per-epoch mean and
standard deviation of every metric over them. Only data is converted; the
files name their source (repository, commit, path pattern), its MIT license
and the paper (see ``deepobs/README.md``).

Metrics are named as gdbench's histories name them: ``loss`` and ``accuracy``
(DeepOBS's ``train_losses``, ``train_accuracies``: evaluated on 10000 training
images at each epoch's end, where gdbench logs the running mean over the
epoch's batches) and ``test_loss``, ``test_accuracy``. Epoch 0 is DeepOBS's
evaluation before training, so that epoch k of a baseline lines up with
gdbench's k-th epoch.

DeepOBS's optimizers are TensorFlow 1's: ``GradientDescentOptimizer`` is
gdbench's ``gd``; ``MomentumOptimizer`` (v ← γv + g, w ← w − ηv) is
``momentum`` (v ← γv + ηg, the same iterates for a constant η);
``AdamOptimizer`` is ``adam`` with ε added to √v before the bias correction
of the step (w ← w − η m̂/(√v̂ + ε/√(1 − β2ᵗ)) in gdbench's terms), a
difference only where √v̂ is of ε's size.

Each curve averages the seeds its file lists (:attr:`BaselineCurve.seeds`):
those of DeepOBS's ten reruns that the stored copy of DeepOBS's repository
holds, 3 to 7 of them, a subset of the ten.

The runs were made in February 2019 (DeepOBS 1.1), before DeepOBS held a
validation set out of the training images: they trained on every training
image and hold no validation curves. gdbench's ``protocol = "deepobs"`` follows
DeepOBS's later protocol (the first 10000 training images for validation), so
its runs train on 10000 images fewer than the baselines did; the test set is
the same.

A baseline is drawn behind a study's curves only when the study trains the
problem as DeepOBS did (:func:`mismatch`): the same problem, DeepOBS's data
protocol (``protocol = "deepobs"``), the whole training set, the baseline's
batch size, and no more epochs than it ran.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DEEPOBS_OPTIMIZERS", "DEEPOBS_TASKS", "FORMAT", "METRICS", "Baseline", "BaselineCurve",
    "data_directory", "load", "mismatch", "problem_for", "problems",
]

#: DeepOBS test problem → the gdbench task that reproduces it.
DEEPOBS_TASKS = {
    "fmnist_2c2d": "fashion_mnist_2c2d",
    "fmnist_mlp": "fashion_mnist_mlp",
    "mnist_mlp": "mnist_mlp",
    "cifar10_3c3d": "cifar10_3c3d",
    "quadratic_deep": "quadratic_deep",
}

#: DeepOBS's baseline optimizer (its folder name) → the gdbench optimizer.
DEEPOBS_OPTIMIZERS = {
    "GradientDescentOptimizer": "gd",
    "MomentumOptimizer": "momentum",
    "AdamOptimizer": "adam",
}

#: DeepOBS's per-epoch key → the gdbench history key.
METRICS = {
    "train_losses": "loss",
    "train_accuracies": "accuracy",
    "test_losses": "test_loss",
    "test_accuracies": "test_accuracy",
}

#: The version of the files' layout.
FORMAT = 1

#: Problems whose DeepOBS protocol differs from every gdbench task's, and why.
_UNMATCHED = {
    "cifar10_3c3d": "DeepOBS trains cifar10_3c3d on augmented images (random crops, flips and "
                    "colour jitter); gdbench's cifar10_3c3d has no augmentation",
}

#: What gdbench's own protocol does unlike DeepOBS's, per problem (the image tasks' otherwise).
_GDBENCH_PROTOCOL = {
    "quadratic_deep": "reports the loss on all 1000 training points, keeps the short last batch, "
                      "reshuffles every epoch and has no test set",
}
_IMAGE_PROTOCOL = ("uses a seeded validation draw, keeps the last short batch and evaluates the "
                   "test set once")


@dataclasses.dataclass(frozen=True)
class BaselineCurve:
    """One optimizer's baseline on one problem.

    Attributes:
        optimizer: the gdbench optimizer name (``"adam"``).
        deepobs_optimizer: DeepOBS's name (``"AdamOptimizer"``).
        setting: DeepOBS's folder name of the chosen setting.
        hyperparameters: the setting's values (``learning_rate``, ``momentum``, …).
        seeds: the seeds averaged.
        mean: metric → per-epoch mean over the seeds, epoch 0 (before training) first.
        std: metric → per-epoch standard deviation over the seeds (ddof = 0).
    """

    optimizer: str
    deepobs_optimizer: str
    setting: str
    hyperparameters: Mapping[str, Any]
    seeds: tuple[int, ...]
    mean: Mapping[str, np.ndarray]
    std: Mapping[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class Baseline:
    """DeepOBS's baselines on one test problem.

    Attributes:
        problem: DeepOBS's name (``"fmnist_2c2d"``).
        task: the gdbench task (``"fashion_mnist_2c2d"``).
        batch_size: the batch size of every run.
        num_epochs: the epochs of every run.
        source: where the data come from: repository, commit, path pattern,
            license, citation.
        curves: gdbench optimizer name → its curve.
    """

    problem: str
    task: str
    batch_size: int
    num_epochs: int
    source: Mapping[str, str]
    curves: Mapping[str, BaselineCurve]


def data_directory() -> Path:
    """The folder of the shipped baseline files."""
    return Path(str(resources.files(__name__))) / "deepobs"


def problems(directory: str | Path | None = None) -> list[str]:
    """The problems with a baseline file in ``directory`` (by default the shipped ones)."""
    folder = Path(directory) if directory is not None else data_directory()
    return sorted(path.stem for path in folder.glob("*.json"))


def load(problem: str, directory: str | Path | None = None) -> Baseline:
    """The baselines of ``problem`` (a DeepOBS name, or the gdbench task's name).

    Raises:
        KeyError: no baseline file for it; the message lists those there are.
    """
    name = problem_for(problem) or problem
    folder = Path(directory) if directory is not None else data_directory()
    path = folder / f"{name}.json"
    if not path.is_file():
        shipped = ", ".join(problems(folder)) or "none"
        raise KeyError(f"problem: no DeepOBS baseline for {problem!r} in {folder}; "
                       f"there are: {shipped} (scripts/deepobs_baselines.py converts them "
                       "from a DeepOBS checkout)")
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("format") != FORMAT:
        raise ValueError(f"{path}: format {data.get('format')!r}, expected {FORMAT}")
    curves = {
        optimizer: BaselineCurve(
            optimizer=optimizer, deepobs_optimizer=entry["deepobs_optimizer"],
            setting=entry["setting"], hyperparameters=dict(entry["hyperparameters"]),
            seeds=tuple(entry["seeds"]),
            mean={key: np.asarray(value["mean"], dtype=float)
                  for key, value in entry["metrics"].items()},
            std={key: np.asarray(value["std"], dtype=float)
                 for key, value in entry["metrics"].items()})
        for optimizer, entry in data["optimizers"].items()
    }
    return Baseline(problem=data["problem"], task=data["task"], batch_size=data["batch_size"],
                    num_epochs=data["num_epochs"], source=dict(data["source"]), curves=curves)


def problem_for(name: str) -> str | None:
    """The DeepOBS problem of a gdbench task name (or a DeepOBS name itself); ``None`` if none."""
    if name in DEEPOBS_TASKS:
        return name
    return next((problem for problem, task in DEEPOBS_TASKS.items() if task == name), None)


def mismatch(task: Any, batch_size: int, epochs: int,
             directory: str | Path | None = None) -> str | None:
    """Why a study's runs cannot be drawn over DeepOBS's baselines; ``None`` when they can.

    Args:
        task: the study's task (a :class:`gdbench.tasks.Task`).
        batch_size: the study's batch size.
        epochs: the study's epochs per trial.
        directory: where the baseline files are (by default the shipped ones).
    """
    problem = problem_for(task.name)
    if problem is None:
        return f"DeepOBS has no baseline for {task.name}"
    if problem in _UNMATCHED:
        return _UNMATCHED[problem]
    try:
        baseline = load(problem, directory)
    except KeyError as error:
        return str(error.args[0])
    options = getattr(task, "options", {})
    if options.get("protocol") != "deepobs":
        differs = _GDBENCH_PROTOCOL.get(problem, _IMAGE_PROTOCOL)
        return (f"{task.name} under gdbench's data protocol {differs}; DeepOBS's baselines "
                "need protocol = \"deepobs\"")
    held_out = getattr(type(task), "default_validation_size", None)
    if options.get("validation_size") != held_out:
        return (f"the task holds {options.get('validation_size')} images out for validation; "
                f"DeepOBS's protocol {held_out}")
    if options.get("subset") is not None:
        return f"the task trains on a subset ({options['subset']} images); DeepOBS on them all"
    if batch_size != baseline.batch_size:
        return f"batch size {batch_size}; DeepOBS's {problem} baselines ran at {baseline.batch_size}"
    if epochs > baseline.num_epochs:
        return f"{epochs} epochs; DeepOBS's {problem} baselines ran {baseline.num_epochs}"
    return None
