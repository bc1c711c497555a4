"""Step time of gdbench's optimizers against Keras's built-ins of the same algorithm.

For every algorithm Keras also ships, two identical MLPs are compiled, one with
gdbench's class and one with Keras's, and their ``model.fit`` step times are
measured in alternating order (paired and interleaved, so that the noise of a
shared machine hits both alike). The table reports the median ratio
gdbench / Keras over the repetitions, for each model size, XLA on and off.

    python benchmarks/optimizer_step.py                 # full table
    python benchmarks/optimizer_step.py --quick         # a smoke run
    python benchmarks/optimizer_step.py --only adam gd  # some algorithms
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from typing import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from _machine import cpu_model  # noqa: E402  (benchmarks/_machine.py)

import gdbench.optimizers  # noqa: E402

#: gdbench name → (gdbench keywords, Keras built-in of the same algorithm).
PAIRS: dict[str, tuple[dict, Callable[[], keras.optimizers.Optimizer]]] = {
    "gd": ({}, lambda: keras.optimizers.SGD(learning_rate=0.01)),
    "momentum": ({}, lambda: keras.optimizers.SGD(learning_rate=0.01, momentum=0.9)),
    "nesterov": ({}, lambda: keras.optimizers.SGD(learning_rate=0.01, momentum=0.9, nesterov=True)),
    "adagrad": ({}, lambda: keras.optimizers.Adagrad(
        learning_rate=0.01, initial_accumulator_value=0.0, epsilon=1e-8)),
    "rmsprop": ({}, lambda: keras.optimizers.RMSprop(learning_rate=0.001, rho=0.9, epsilon=1e-8)),
    "adadelta": ({}, lambda: keras.optimizers.Adadelta(learning_rate=1.0, rho=0.95, epsilon=1e-6)),
    "adam": ({}, lambda: keras.optimizers.Adam(learning_rate=0.001, epsilon=1e-8)),
    "adamax": ({}, lambda: keras.optimizers.Adamax(learning_rate=0.002, epsilon=1e-8)),
    "nadam": ({}, lambda: keras.optimizers.Nadam(learning_rate=0.001, epsilon=1e-8)),
    "amsgrad": ({}, lambda: keras.optimizers.Adam(learning_rate=0.001, epsilon=1e-8, amsgrad=True)),
    "adamw": ({}, lambda: keras.optimizers.AdamW(learning_rate=0.001, epsilon=1e-8, weight_decay=0.01)),
}

#: label → hidden layer widths of an MLP on 784 inputs and 10 classes.
SIZES = {
    "1M": (1024, 256),   # 784·1024 + 1024·256 + 256·10 + biases ≈ 1.07 M
    "6M": (2048, 2048),  # 784·2048 + 2048·2048 + 2048·10 + biases ≈ 5.84 M
}


def build_model(hidden: tuple[int, ...]) -> keras.Model:
    keras.utils.set_random_seed(0)
    layers = [keras.Input((784,))]
    layers += [keras.layers.Dense(width, activation="relu") for width in hidden]
    layers += [keras.layers.Dense(10)]
    return keras.Sequential(layers)


def compiled(hidden, optimizer, jit: bool) -> keras.Model:
    model = build_model(hidden)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit,
    )
    return model


class _StepClock(keras.callbacks.Callback):
    """Times the steps of one fit from the end of its first batch to the end of its last.

    Leaving the first step out leaves out ``fit``'s own set-up, which is the
    same for both optimizers and would only dilute the ratio.
    """

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if batch == 0:
            self.start, self.steps = now, 0
        else:
            self.end, self.steps = now, batch


def step_time(model: keras.Model, x: np.ndarray, y: np.ndarray, batch_size: int) -> float:
    """Seconds per step of one ``model.fit`` epoch over (x, y)."""
    clock = _StepClock()
    model.fit(x, y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0, callbacks=[clock])
    return (clock.end - clock.start) / clock.steps


def paired_times(
    ours: keras.Model, theirs: keras.Model, x: np.ndarray, y: np.ndarray, *,
    repeats: int, batch_size: int,
) -> dict:
    """Median step times of two compiled models and the median of their paired ratios.

    Each model first fits once untimed (compilation, warm-up); then the two
    alternate, their order flipping each repetition, so that the noise of a
    shared machine hits both alike.
    """
    for model in (ours, theirs):
        step_time(model, x, y, batch_size)
    ratios, ours_times, theirs_times = [], [], []
    for repeat in range(repeats):
        order = (ours, theirs) if repeat % 2 == 0 else (theirs, ours)
        times = {id(model): step_time(model, x, y, batch_size) for model in order}
        ours_times.append(times[id(ours)])
        theirs_times.append(times[id(theirs)])
        ratios.append(times[id(ours)] / times[id(theirs)])
    return {
        "ours_ms": 1e3 * statistics.median(ours_times),
        "keras_ms": 1e3 * statistics.median(theirs_times),
        "ratio": statistics.median(ratios),
    }


def measure(name: str, hidden, jit: bool, *, steps: int, repeats: int, batch_size: int) -> dict:
    kwargs, keras_factory = PAIRS[name]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((steps * batch_size, 784)).astype("float32")
    y = rng.integers(0, 10, steps * batch_size)
    ours = compiled(hidden, gdbench.optimizers.get(name, **kwargs), jit)
    theirs = compiled(hidden, keras_factory(), jit)
    row = paired_times(ours, theirs, x, y, repeats=repeats, batch_size=batch_size)
    keras.backend.clear_session()
    return row


def machine() -> str:
    import tensorflow as tf

    cpu = cpu_model()
    gpus = tf.config.list_physical_devices("GPU")
    device = f"{len(gpus)} GPU(s)" if gpus else "CPU only"
    return (f"{cpu}, {os.cpu_count()} cores, {device}; Python {platform.python_version()}, "
            f"TensorFlow {tf.__version__}, Keras {keras.__version__}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=list(PAIRS), choices=list(PAIRS), metavar="NAME")
    parser.add_argument("--sizes", nargs="*", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--steps", type=int, default=20, help="steps per timed fit")
    parser.add_argument("--repeats", type=int, default=7, help="paired repetitions")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--xla", nargs="*", default=["on", "off"], choices=["on", "off"])
    parser.add_argument("--quick", action="store_true", help="3 repeats of 5 steps, 1M model")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.repeats, args.sizes = 5, 3, ["1M"]

    print(f"Machine: {machine()}")
    print(f"Batch {args.batch_size}, {args.steps} steps per fit, {args.repeats} paired repeats; "
          "ratio = median over repeats of gdbench step time / Keras step time.\n")
    print("| algorithm | model | XLA | gdbench ms/step | Keras ms/step | ratio |")
    print("|---|---|---|---:|---:|---:|")
    for size in args.sizes:
        for jit in [setting == "on" for setting in args.xla]:
            for name in args.only:
                row = measure(name, SIZES[size], jit, steps=args.steps, repeats=args.repeats,
                              batch_size=args.batch_size)
                print(f"| {name} | {size} | {'on' if jit else 'off'} | {row['ours_ms']:.2f} | "
                      f"{row['keras_ms']:.2f} | {row['ratio']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
