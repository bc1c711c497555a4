"""gdbench's generic optimizer checks, for an optimizer of your own (``gdbench check-optimizer``).

What the test suite proves of every gdbench optimizer, run on any optimizer
:func:`gdbench.optimizers.source` finds (a Keras class, a file's class, a rule
made a class by :func:`gdbench.optimizers.rule_optimizer`, a plugin):

| check         | what passes                                                               |
|---------------|---------------------------------------------------------------------------|
| ``trace``     | a rule: traced as the population engines run it, one new slot per slot    |
| ``config``    | ``get_config()`` holds every keyword it was built with; ``from_config``   |
|               | gives the same config                                                     |
| ``keras file``| a model saved mid-training to ``.keras`` and loaded continues identically |
| ``xla``       | ``jit_compile=True`` trains as the eager run does (float32, 1e-4)         |
| ``float64``   | a float64 model keeps float64 weights and trains to finite values        |
| ``sparse``    | row-slice gradients (an embedding's, an index repeated) step as their     |
|               | dense sum does; a warning, not a failure, when they differ                |
| ``toy``       | every epoch of the sigmoid neuron at the defaults has a finite loss       |
| ``population``| a rule: a population of three η trains each trial as ``Task.fit`` does    |
|               | (1e-12 relative)                                                          |
| ``reference`` | with a NumPy reference step: ten steps equal to it (1e-10 relative)       |

Each check gives a :class:`CheckResult`; a failure says what differed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

import gdbench.optimizers
from gdbench.tasks import get as get_task
from gdbench.tasks.population import check_rule, fit_population

__all__ = ["CHECKS", "CheckResult", "check_optimizer", "format_results"]

#: Every check, in the order they run.
CHECKS = ("trace", "config", "keras file", "xla", "float64", "sparse", "toy", "population",
          "reference")

PASS, FAIL, WARN, SKIP = "pass", "fail", "warn", "skip"

_STEPS = 3
_TOY_EPOCHS = 20
_POPULATION_RATES = (0.01, 0.1, 0.5)
_REFERENCE_STEPS = 10

#: A reference step: the rule's form in NumPy (``slots`` start as the rule's, or as ``()``
#: for a class, and are whatever the reference returned before).
Reference = Callable[..., "tuple[np.ndarray, tuple[Any, ...]]"]


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """One check's outcome.

    Attributes:
        check: its name (one of :data:`CHECKS`).
        status: ``pass``, ``fail``, ``warn`` or ``skip``.
        detail: what differed, or why it was skipped.
    """

    check: str
    status: str
    detail: str = ""


def check_optimizer(optimizer: str | type[keras.optimizers.Optimizer], *,
                    reference: Reference | None = None,
                    base: str | Path | None = None) -> list[CheckResult]:
    """Run every check of :data:`CHECKS` on ``optimizer``.

    Args:
        optimizer: what :func:`gdbench.optimizers.source` takes, or the class.
        reference: a NumPy step ``reference(param, grad, slots, *, step,
            learning_rate, **hyperparameters) -> (new_param, new_slots)`` to
            compare ten steps with; ``None`` skips the check.
        base: the folder a relative file path starts from.

    Returns:
        One result per check, in the order of :data:`CHECKS`.

    Raises:
        KeyError, ValueError: ``optimizer`` names nothing gdbench can build.
    """
    if isinstance(optimizer, type):
        source = gdbench.optimizers.OptimizerSource(
            optimizer.__name__, optimizer.__name__.lower(), optimizer, optimizer.__name__)
    else:
        source = gdbench.optimizers.source(optimizer, base=base)
    checker = _Checker(source, reference)
    results = []
    for name in CHECKS:
        try:
            results.append(getattr(checker, name.replace(" ", "_"))())
        except Exception as error:  # noqa: BLE001 - a check fails on whatever the optimizer raises
            results.append(CheckResult(name, FAIL, f"raised {type(error).__name__}: "
                                                   f"{_first_line(error)}"))
    return results


def format_results(results: list[CheckResult]) -> str:
    """One line per check: ``PASS config``, ``FAIL keras file: …``."""
    return "\n".join(f"{result.status.upper():<4} {result.check}"
                     + (f": {result.detail}" if result.detail else "") for result in results)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[-1] if text else ""


class _Checker:
    """The checks of one optimizer."""

    def __init__(self, source: gdbench.optimizers.OptimizerSource,
                 reference: Reference | None) -> None:
        self.source = source
        self.reference_step = reference
        self.values = self.non_default_values()

    def non_default_values(self) -> dict[str, Any]:
        """A value away from its default for each numeric hyperparameter the class takes."""
        values: dict[str, Any] = {}
        for keyword, default in self.source.hyperparameters().items():
            if isinstance(default, bool) or not isinstance(default, (int, float)):
                continue
            candidate = default * 0.5 if default else 0.5
            try:
                self.source.build(**values, **{keyword: candidate})
            except Exception:  # noqa: BLE001 - a value the class refuses is left at its default
                continue
            values[keyword] = candidate
        return values

    def build(self, **kwargs: Any) -> keras.optimizers.Optimizer:
        return self.source.build(**{**self.values, **kwargs})

    # -- the checks --------------------------------------------------------------

    def trace(self) -> CheckResult:
        if not self.source.vectorizable:
            return CheckResult("trace", SKIP, "a Keras class, not a rule")
        check_rule(self.source.optimizer_class)
        return CheckResult("trace", PASS)

    def config(self) -> CheckResult:
        optimizer = self.build()
        config = optimizer.get_config()
        for keyword, value in self.values.items():
            if keyword not in config:
                return CheckResult("config", FAIL, f"get_config() lacks {keyword!r}, "
                                                   f"built with {keyword} = {value!r}")
            if not _same(config[keyword], value):
                return CheckResult("config", FAIL, f"get_config() gives {keyword} = "
                                                   f"{config[keyword]!r}, built with {value!r}")
        again = type(optimizer).from_config(config).get_config()
        differing = sorted(k for k in config.keys() | again.keys()
                           if not _same(config.get(k), again.get(k)))
        if differing:
            return CheckResult("config", FAIL, "from_config(get_config()) gives another config "
                                               f"(differs in {', '.join(differing)})")
        return CheckResult("config", PASS)

    def keras_file(self) -> CheckResult:
        x, y = _data(np.float32)
        model = _model("float32")
        model.compile(optimizer=self.build(), loss="mse", run_eagerly=True)
        for _ in range(_STEPS):
            model.train_on_batch(x, y)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "model.keras"
            model.save(path)
            cls = self.source.optimizer_class
            with _registered(cls):
                loaded = keras.saving.load_model(path)
        if type(loaded.optimizer) is not cls:
            return CheckResult("keras file", FAIL, f"reloaded as {type(loaded.optimizer).__name__}")
        for _ in range(_STEPS):
            model.train_on_batch(x, y)
            loaded.train_on_batch(x, y)
        difference = _largest_difference(model.get_weights(), loaded.get_weights())
        if difference != 0:
            return CheckResult("keras file", FAIL, "the reloaded model continues differently "
                                                   f"(largest weight difference {difference:.3g})")
        return CheckResult("keras file", PASS)

    def xla(self) -> CheckResult:
        eager = self.train("float32", run_eagerly=True)
        compiled = self.train("float32", jit_compile=True)
        if not all(np.all(np.isfinite(w)) for w in compiled):
            return CheckResult("xla", FAIL, "non-finite weights after XLA steps")
        if not all(np.allclose(a, b, rtol=1e-4, atol=1e-6) for a, b in zip(eager, compiled)):
            return CheckResult("xla", FAIL, "XLA steps differ from eager ones (largest weight "
                                            f"difference {_largest_difference(eager, compiled):.3g})")
        return CheckResult("xla", PASS)

    def float64(self) -> CheckResult:
        weights = self.train("float64", run_eagerly=True)
        kinds = sorted({str(w.dtype) for w in weights})
        if kinds != ["float64"]:
            return CheckResult("float64", FAIL, f"a float64 model's weights became {kinds}")
        if not all(np.all(np.isfinite(w)) for w in weights):
            return CheckResult("float64", FAIL, "non-finite weights after float64 steps")
        return CheckResult("float64", PASS)

    def sparse(self) -> CheckResult:
        rng = np.random.default_rng(1)
        start = rng.normal(size=(6, 3)).astype(np.float32)
        indices = tf.constant([0, 2, 2, 5])
        values = [tf.constant(rng.normal(size=(4, 3)).astype(np.float32))
                  for _ in range(_STEPS)]
        sliced, summed = keras.Variable(start), keras.Variable(start)
        sliced_optimizer, summed_optimizer = self.build(), self.build()
        for value in values:
            sliced_optimizer.apply_gradients(
                [(tf.IndexedSlices(value, indices, dense_shape=tf.constant([6, 3])), sliced)])
            summed_optimizer.apply_gradients(
                [(tf.math.unsorted_segment_sum(value, indices, 6), summed)])
        difference = _largest_difference([sliced.numpy()], [summed.numpy()])
        if not np.allclose(sliced.numpy(), summed.numpy(), rtol=1e-5, atol=1e-6):
            return CheckResult("sparse", WARN, "row-slice gradients with a repeated index step "
                                               "otherwise than their dense sum (largest "
                                               f"difference {difference:.3g})")
        return CheckResult("sparse", PASS)

    def toy(self) -> CheckResult:
        result = get_task("sigmoid_neuron").fit(self.source.build(), epochs=_TOY_EPOCHS)
        losses = result.history["loss"]
        if not all(math.isfinite(loss) for loss in losses):
            first = next(i for i, loss in enumerate(losses) if not math.isfinite(loss))
            return CheckResult("toy", FAIL, f"the sigmoid neuron's loss is {losses[first]} at "
                                            f"epoch {first + 1} (defaults)")
        return CheckResult("toy", PASS)

    def population(self) -> CheckResult:
        if not self.source.vectorizable:
            return CheckResult("population", SKIP, "a Keras class, not a rule: it trains one "
                                                   "trial at a time")
        task = get_task("sigmoid_neuron")
        cls = self.source.optimizer_class
        together = fit_population(task, cls, {"learning_rate": list(_POPULATION_RATES)},
                                  epochs=_TOY_EPOCHS, jit_compile=False)
        for row, rate in enumerate(_POPULATION_RATES):
            alone = np.asarray(task.fit(cls(learning_rate=rate), epochs=_TOY_EPOCHS)
                               .history["loss"])
            if not np.allclose(together.losses[row], alone, rtol=1e-12, atol=0, equal_nan=True):
                return CheckResult("population", FAIL, f"η = {rate}: the population's losses "
                                                       "differ from Task.fit's (largest relative "
                                                       f"difference {_relative(together.losses[row], alone):.3g})")
        return CheckResult("population", PASS)

    def reference(self) -> CheckResult:
        if self.reference_step is None:
            return CheckResult("reference", SKIP, "no reference step given")
        rng = np.random.default_rng(2)
        start = rng.normal(size=5)
        variable = keras.Variable(start, dtype="float64")
        optimizer = self.build()
        cls = self.source.optimizer_class
        slots: tuple[Any, ...] = ()
        if self.source.vectorizable:
            slots = tuple(np.full(5, cls.slot_initial_value(optimizer, name))
                          for name in cls.slot_names)
        hyperparameters = {**self.source.hyperparameters(), **self.values}
        rate = hyperparameters.pop("learning_rate")
        expected = start.copy()
        for step in range(1, _REFERENCE_STEPS + 1):
            gradient = rng.normal(size=5)
            optimizer.apply_gradients([(tf.constant(gradient), variable)])
            expected, slots = self.reference_step(expected, gradient, slots, step=step,
                                             learning_rate=rate, **hyperparameters)
            got = variable.numpy()
            if not np.allclose(got, expected, rtol=1e-10, atol=1e-14):
                return CheckResult("reference", FAIL, f"step {step}: the optimizer gives "
                                                      f"{got.tolist()}, the reference "
                                                      f"{np.asarray(expected).tolist()}")
        return CheckResult("reference", PASS)

    def train(self, dtype: str, **compile_options: Any) -> list[np.ndarray]:
        x, y = _data(np.dtype(dtype))
        model = _model(dtype)
        model.compile(optimizer=self.build(), loss="mse", **compile_options)
        for _ in range(_STEPS):
            model.train_on_batch(x, y)
        return model.get_weights()


@contextlib.contextmanager
def _registered(cls: type) -> Iterator[None]:
    """``cls`` under its registered name in Keras's registry while a file loads.

    Another class of that name (two files' ``Signum``) may have been registered
    last, and Keras restores a model's optimizer from the registry, not from the
    ``custom_objects`` given to ``load_model``.
    """
    registry = keras.saving.get_custom_objects()
    name = keras.saving.get_registered_name(cls)
    previous = registry.get(name)
    registry[name] = cls
    try:
        yield
    finally:
        if previous is None:
            del registry[name]
        else:
            registry[name] = previous


def _model(dtype: str) -> keras.Model:
    """A small MLP, the same initial weights every time."""
    initial = keras.initializers.GlorotUniform(seed=0)
    inputs = keras.Input((4,), dtype=dtype)
    hidden = keras.layers.Dense(5, activation="tanh", dtype=dtype,
                                kernel_initializer=initial)(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, dtype=dtype,
                                                  kernel_initializer=initial)(hidden))


def _data(dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(32, 4)).astype(dtype), rng.normal(size=(32, 3)).astype(dtype)


def _same(first: Any, second: Any) -> bool:
    if isinstance(first, float) and isinstance(second, float):
        return math.isclose(first, second, rel_tol=1e-6)
    return first == second


def _largest_difference(first: list[np.ndarray], second: list[np.ndarray]) -> float:
    return max(float(np.max(np.abs(a - b))) if a.size else 0.0 for a, b in zip(first, second))


def _relative(first: np.ndarray, second: np.ndarray) -> float:
    return float(np.nanmax(np.abs(first - second) / np.maximum(np.abs(second), 1e-300)))
