"""A task of your own: its trials per second in populations against one trial at a time.

The user surface is ``studies/himmelblau.py`` (a loss function made a task by
:func:`gdbench.tasks.toy_task`), trained with Adam for 100 epochs: the toy population engine
trains 256 trials as one batch, ``Task.fit`` four trials one after the other. The user Keras
model is ``studies/breast_cancer.py`` (an MLP made a task by :func:`gdbench.tasks.keras_task`),
2 epochs at batch 32: the image population engine trains 16 trials as one stacked model,
``Task.fit`` two. Each pair runs alternately, the order flipping each repeat, timed in process
CPU time after a warm-up (compiling) run; the table gives medians.

    python benchmarks/byo_task.py
    python benchmarks/byo_task.py --quick     # a smoke run
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
from pathlib import Path
from typing import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _machine import cpu_model, paired  # noqa: E402  (benchmarks/_machine.py)

import gdbench.optimizers  # noqa: E402
import gdbench.tasks  # noqa: E402
from gdbench.tasks.image_population import fit_image_population  # noqa: E402
from gdbench.tasks.population import fit_population  # noqa: E402

STUDIES = Path(__file__).resolve().parents[1] / "studies"


def toy_pair(trials: int, alone: int) -> tuple[Callable[[], object], Callable[[], object]]:
    surface = gdbench.tasks.get(f"{STUDIES / 'himmelblau.py'}:Himmelblau")
    rates = np.geomspace(1e-3, 0.5, trials)

    def population() -> object:
        return fit_population(surface, "adam", {"learning_rate": rates}, epochs=100)

    def one_at_a_time() -> object:
        for rate in rates[:alone]:
            surface.fit(gdbench.optimizers.get("adam", learning_rate=float(rate)), epochs=100)

    return population, one_at_a_time


def keras_pair(trials: int, alone: int) -> tuple[Callable[[], object], Callable[[], object]]:
    task = gdbench.tasks.get(f"{STUDIES / 'breast_cancer.py'}:BreastCancer")
    rates = np.geomspace(1e-3, 0.1, trials)

    def population() -> object:
        return fit_image_population(task, "adam", {"learning_rate": rates}, epochs=2,
                                    batch_size=32)

    def one_at_a_time() -> object:
        for rate in rates[:alone]:
            task.fit(gdbench.optimizers.get("adam", learning_rate=float(rate)), epochs=2,
                     batch_size=32)

    return population, one_at_a_time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    arguments = parser.parse_args()
    repeats = 1 if arguments.quick else 3
    sizes = ((16, 1), (4, 1)) if arguments.quick else ((256, 4), (16, 2))
    print(f"Machine: {cpu_model()}, {os.cpu_count()} cores; Python {platform.python_version()}, "
          f"TensorFlow {tf.__version__}, Keras {keras.__version__}")
    rows = []
    for label, make, (trials, alone) in (
            ("himmelblau.py (toy_task), adam, 100 epochs", toy_pair, sizes[0]),
            ("breast_cancer.py (keras_task), adam, 2 epochs, batch 32", keras_pair, sizes[1])):
        population, one_at_a_time = make(trials, alone)
        population()  # compiles
        one_at_a_time()
        together, apart = paired(population, one_at_a_time, repeats)
        rows.append((label, trials, together, alone, apart))
    print(f"\nTrials per second of a task of your own: populations against one trial at a time "
          f"({repeats} paired repeats, medians, process CPU time)\n")
    print("| task | population: trials | trials/s | one at a time: trials | trials/s | speed-up |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, trials, together, alone, apart in rows:
        fast = trials / statistics.median(together)
        slow = alone / statistics.median(apart)
        print(f"| {label} | {trials} | {fast:.1f} | {alone} | {slow:.2f} | {fast / slow:.0f}× |")


if __name__ == "__main__":
    main()
