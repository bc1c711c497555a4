"""A rule of your own against the built-in it re-implements, and in populations against one
trial at a time.

1. Step time: gdbench's ``momentum`` against the same algorithm written as a ten-line
   rule and made a class by :func:`gdbench.optimizers.rule_optimizer`, ``model.fit`` on a
   1.07 M-parameter MLP (784-1024-256-10, batch 32) with XLA. Each fit is timed in process
   CPU time after a warm-up fit; the two alternate, their order flipping each repeat, and
   the ratio is the median of the paired ratios (target ≤ 1.05).
2. Trials per second: the same rule trained by the population engines (toy: the sigmoid
   neuron; image: ``digits_mlp``, one stacked model) against the rule's class trained one
   trial at a time by ``Task.fit``; paired and interleaved, medians, process CPU time.

    python benchmarks/byo_optimizer.py
    python benchmarks/byo_optimizer.py --quick     # a smoke run
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
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


def heavy_ball(param, grad, slots, *, step, learning_rate, momentum):
    """gdbench's momentum, written again: v ← γ v + η g ; w ← w − v."""
    del step
    (velocity,) = slots
    velocity = momentum * velocity + learning_rate * grad
    return param - velocity, (velocity,)


HeavyBall = gdbench.optimizers.rule_optimizer(heavy_ball, slots=("v",), learning_rate=0.01,
                                              momentum=0.9)


def step_ratio(repeats: int, steps: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32 * steps, 784)).astype("float32")
    y = rng.integers(0, 10, size=32 * steps)

    def fitter(optimizer: keras.optimizers.Optimizer) -> Callable[[], object]:
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(1024, activation="relu"),
                                  keras.layers.Dense(256, activation="relu"), keras.layers.Dense(10)])
        model.compile(optimizer=optimizer, jit_compile=True,
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(x, y, batch_size=32, epochs=1, verbose=0)  # compiles
        return lambda: model.fit(x, y, batch_size=32, epochs=1, verbose=0)

    built_in = fitter(gdbench.optimizers.get("momentum"))
    rule = fitter(HeavyBall())
    rule_times, built_in_times = paired(rule, built_in, repeats)
    ratios = [r / b for r, b in zip(rule_times, built_in_times)]
    print(f"\nStep time, model.fit with XLA, MLP 784-1024-256-10 (1.07 M parameters), batch 32, "
          f"{steps} steps per fit, {repeats} paired repeats, process CPU time\n")
    print("| optimizer | ms/step (median) |\n|---|---:|")
    print(f"| rule_optimizer(heavy_ball) | {1e3 * statistics.median(rule_times) / steps:.2f} |")
    print(f"| gdbench momentum | {1e3 * statistics.median(built_in_times) / steps:.2f} |")
    print(f"\nratio rule / built-in: median {statistics.median(ratios):.3f} "
          f"(min {min(ratios):.3f}, max {max(ratios):.3f})")


def throughput(repeats: int, toy_trials: int, toy_alone: int, image_trials: int,
               image_alone: int) -> None:
    rows = []
    sigmoid = gdbench.tasks.get("sigmoid_neuron")
    rates = np.geomspace(0.01, 2.0, toy_trials)
    toy_epochs = 100

    def toy_population() -> object:
        return fit_population(sigmoid, HeavyBall, {"learning_rate": rates, "momentum": 0.9},
                              epochs=toy_epochs)

    def toy_one_at_a_time() -> object:
        for rate in rates[:toy_alone]:
            sigmoid.fit(HeavyBall(learning_rate=float(rate)), epochs=toy_epochs)

    toy_population()  # compiles
    together, alone = paired(toy_population, toy_one_at_a_time, repeats)
    rows.append(("toy: sigmoid_neuron, 100 epochs", toy_trials, together, toy_alone, alone))

    digits = gdbench.tasks.get("digits_mlp")
    image_rates = np.geomspace(1e-3, 0.1, image_trials)
    image_epochs = 2

    def image_population() -> object:
        return fit_image_population(digits, HeavyBall, {"learning_rate": image_rates},
                                    epochs=image_epochs, batch_size=64)

    def image_one_at_a_time() -> object:
        for rate in image_rates[:image_alone]:
            digits.fit(HeavyBall(learning_rate=float(rate)), epochs=image_epochs, batch_size=64)

    image_population()  # compiles
    together, alone = paired(image_population, image_one_at_a_time, repeats)
    rows.append(("digits_mlp, 2 epochs, batch 64", image_trials, together, image_alone, alone))

    print(f"\nTrials per second of the rule: populations against one trial at a time "
          f"({repeats} paired repeats, medians, process CPU time)\n")
    print("| task | population: trials | trials/s | one at a time: trials | trials/s | speed-up |")
    print("|---|---:|---:|---:|---:|---:|")
    for task, k, together, alone_count, alone in rows:
        fast = k / statistics.median(together)
        slow = alone_count / statistics.median(alone)
        print(f"| {task} | {k} | {fast:.1f} | {alone_count} | {slow:.2f} | {fast / slow:.0f}× |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    arguments = parser.parse_args()
    print(f"Machine: {cpu_model()}, {os.cpu_count()} cores; Python {platform.python_version()}, "
          f"TensorFlow {tf.__version__}, Keras {keras.__version__}")
    if arguments.quick:
        step_ratio(repeats=2, steps=5)
        throughput(repeats=2, toy_trials=8, toy_alone=1, image_trials=2, image_alone=1)
    else:
        step_ratio(repeats=11, steps=40)
        throughput(repeats=3, toy_trials=256, toy_alone=4, image_trials=16, image_alone=2)


if __name__ == "__main__":
    main()
