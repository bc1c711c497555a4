"""The checks of ``gdbench check-task``: a task of the user's built, fitted briefly, its seed
contract and its objectives shown, and its way into the population engines.

    >>> from gdbench.tasks.task_checks import check_task, format_results
    >>> print(format_results(check_task("studies/himmelblau.py:Himmelblau")))  # doctest: +SKIP
    PASS build: toy task of 2 parameters (x, y), full batch, 100 epochs by default
    PASS fit: 20 epochs with adam (η = 0.001) in 0.4 s of CPU: loss 170 → 169.3
    PASS seed: the same seed gives the same curves; the seed moves nothing (every seed gives these)
    PASS objectives: loss
    PASS population: trains in populations, equal to its single fits (1e-9)
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

import gdbench.optimizers
import gdbench.tasks
from gdbench.tasks.function_task import check_broadcasts
from gdbench.tasks.image_population import population_obstacle
from gdbench.tasks.optimizer_checks import FAIL, PASS, SKIP, CheckResult, format_results
from gdbench.tasks.population import fit_population

__all__ = ["CHECKS", "check_task", "format_results"]

#: Every check, in the order they run.
CHECKS = ("build", "fit", "seed", "objectives", "population")

#: The optimizer of the short fits, and its step sizes.
_OPTIMIZER, _RATES = "adam", (1e-3, 1e-2)
#: Epochs of a short fit: a toy task's, a Keras task's.
_TOY_EPOCHS, _KERAS_EPOCHS = 20, 2


def check_task(task: str | type[gdbench.tasks.Task], *, options: dict[str, Any] | None = None,
               base: str | Path | None = None) -> list[CheckResult]:
    """Run every check of :data:`CHECKS` on ``task``.

    Args:
        task: what :func:`gdbench.tasks.source` takes, or the class.
        options: the task's options (``seed`` aside, which the checks set).
        base: the folder a relative file path starts from.

    Returns:
        One result per check, in the order of :data:`CHECKS`; after a failed ``build``
        the others are skipped.

    Raises:
        KeyError, ValueError: ``task`` names nothing gdbench can load.
    """
    if isinstance(task, type):
        task_class = task
    else:
        task_class = gdbench.tasks.source(task, base=base).task_class
    checker = _Checker(task_class, {k: v for k, v in (options or {}).items() if k != "seed"})
    results: list[CheckResult] = []
    for name in CHECKS:
        if results and results[0].status == FAIL:
            results.append(CheckResult(name, SKIP, "the task cannot be built"))
            continue
        try:
            results.append(getattr(checker, name)())
        except Exception as error:  # noqa: BLE001 - a check fails on whatever the task raises
            text = str(error).strip()
            results.append(CheckResult(name, FAIL, f"raised {type(error).__name__}: "
                                                   f"{text.splitlines()[0] if text else ''}"))
    return results


class _Checker:
    def __init__(self, task_class: type[gdbench.tasks.Task], options: dict[str, Any]) -> None:
        self.task_class = task_class
        self.options = options
        self.toy = issubclass(task_class, gdbench.tasks.ToyTask)
        self.epochs = _TOY_EPOCHS if self.toy else _KERAS_EPOCHS
        self.first: gdbench.tasks.FitResult | None = None

    def task(self, seed: int = 0) -> gdbench.tasks.Task:
        return self.task_class(seed=seed, **self.options)

    def trained(self, seed: int = 0, rate: float = _RATES[0]) -> gdbench.tasks.FitResult:
        return self.task(seed).fit(gdbench.optimizers.get(_OPTIMIZER, learning_rate=rate),
                                   epochs=self.epochs)

    def build(self) -> CheckResult:
        task = self.task()
        batch = task.resolve_batch_size(None)
        feeding = "full batch" if batch == task.num_examples else f"batches of {batch}"
        if isinstance(task, gdbench.tasks.ToyTask):
            names = ", ".join(task.parameter_names)
            return CheckResult("build", PASS, f"toy task of {len(task.parameter_names)} "
                                              f"parameters ({names}), {feeding}, "
                                              f"{task.default_epochs} epochs by default")
        note = ""
        if isinstance(task, gdbench.tasks.KerasTask):
            task.check()
            note = f"; {task.pipeline_note()}" if task.pipeline_note() else ""
        rows = task.split_sizes()
        weights = sum(int(np.prod(w.shape)) for w in task.build_model().get_weights())
        return CheckResult("build", PASS, f"Keras task: {rows['train']} training rows, "
                                          f"{rows['validation']} validation, "
                                          f"{rows['test']} test; a model of {weights} "
                                          f"weights, {feeding}{note}")

    def fit(self) -> CheckResult:
        start = time.process_time()
        self.first = self.trained()
        seconds = time.process_time() - start
        losses = self.first.history["loss"]
        summary = (f"{len(losses)} epochs with {_OPTIMIZER} (η = {_RATES[0]:g}) in "
                   f"{seconds:.1f} s of CPU: loss {losses[0]:.4g} → {losses[-1]:.4g}")
        if not self.first.finite:
            return CheckResult("fit", FAIL, f"{summary}: not finite")
        return CheckResult("fit", PASS, summary)

    def seed(self) -> CheckResult:
        task = self.task()
        note = task.pipeline_note() if isinstance(task, gdbench.tasks.KerasTask) else None
        first = self.first or self.trained()
        again, other = self.trained(), self.trained(seed=1)
        for key, curve in first.history.items():
            if again.history.get(key) != curve:
                hint = " (a tf.data pipeline must be deterministic itself)" if note else ""
                return CheckResult("seed", FAIL, f"the same seed gave other curves{hint}: "
                                                 f"{key} {curve} then {again.history.get(key)}")
        suffix = f"; {note}" if note else ""
        if other.history == first.history:
            return CheckResult("seed", PASS, "the same seed gives the same curves; the seed "
                                             f"moves nothing (every seed gives these){suffix}")
        return CheckResult("seed", PASS, "the same seed gives the same curves, another seed "
                                         f"other ones{suffix}")

    def objectives(self) -> CheckResult:
        task = self.task()
        first = self.first or self.trained()
        if isinstance(task, gdbench.tasks.ToyTask):
            names = sorted(task.metrics(task.initial_parameters()))
        else:
            names = task.logged_metrics()
        missing = [n for n in names if n not in first.history]
        broken = [n for n in names if n in first.history
                  and not all(math.isfinite(v) for v in first.history[n])]
        if missing or broken:
            return CheckResult("objectives", FAIL, f"not logged: {', '.join(missing) or '-'}; "
                                                   f"not finite: {', '.join(broken) or '-'}")
        return CheckResult("objectives", PASS, ", ".join(names))

    def population(self) -> CheckResult:
        task = self.task()
        if isinstance(task, gdbench.tasks.ToyTask):
            check_broadcasts(task)
            together = fit_population(task, _OPTIMIZER, {"learning_rate": list(_RATES)},
                                      epochs=self.epochs)
            for row, rate in enumerate(_RATES):
                alone = self.trained(rate=rate).history["loss"]
                if not np.allclose(together.losses[row, :len(alone)], alone, rtol=1e-9,
                                   atol=1e-12, equal_nan=True):
                    return CheckResult("population", FAIL, f"η = {rate:g}: the population's "
                                                           f"losses differ from the single fit's")
            return CheckResult("population", PASS, "trains in populations, equal to its "
                                                   "single fits (1e-9)")
        obstacle = population_obstacle(task)
        if obstacle is None:
            return CheckResult("population", PASS, "trains in populations (Flatten and Dense "
                                                   "layers on the default loss)")
        return CheckResult("population", SKIP, f"trains one trial at a time: {obstacle}")
