"""Toy-task trials per second: the population engine against one fit per trial.

The task is the lectures' sigmoid neuron (seed 0, full batch, start (−2, −2))
trained for 1000 epochs, each trial with its own random hyperparameters:

- ``gd``: η log-uniform in [0.01, 10];
- ``adam``: η log-uniform in [0.001, 1], β1 uniform in [0.5, 0.99],
  1 − β2 log-uniform in [1e-4, 0.1].

Three ways to run those trials are timed:

- the population engine (:func:`gdbench.tasks.population.fit_population`):
  K trials as one batch, XLA on and off; the first call with new shapes
  traces and compiles (reported apart), later ones reuse the compiled loop;
- the Keras class, one ``ToyTask.fit`` per trial (a handful of trials);
- the lectures' plain numpy loop, one trial at a time, the per-epoch loss
  recorded as the others record it.

Repetitions are interleaved (the order of the ways rotates every repetition)
so that the noise of a shared machine hits them alike; the table reports
medians. Before timing, one trial of each way is checked against the others.

    python benchmarks/toy_throughput.py                    # the recorded table
    python benchmarks/toy_throughput.py --quick            # a smoke run
    python benchmarks/toy_throughput.py --population-sizes 1000 10000
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
import tensorflow as tf  # noqa: E402

import gdbench.optimizers  # noqa: E402
import gdbench.tasks  # noqa: E402
from gdbench.tasks import _population_loop, population  # noqa: E402
from _machine import cpu_model  # noqa: E402  (benchmarks/_machine.py)

X = np.array([0.5, 2.5])
Y = np.array([0.2, 0.9])
START = (-2.0, -2.0)


# --- the lectures' numpy loops ---------------------------------------------------


def f(w: float, b: float, x: float) -> float:
    return 1.0 / (1.0 + np.exp(-(w * x + b)))


def error(w: float, b: float) -> float:
    err = 0.0
    for x, y in zip(X, Y):
        fx = f(w, b, x)
        err += 0.5 * (fx - y) ** 2
    return err


def grad_w(w: float, b: float, x: float, y: float) -> float:
    fx = f(w, b, x)
    return (fx - y) * fx * (1 - fx) * x


def grad_b(w: float, b: float, x: float, y: float) -> float:
    fx = f(w, b, x)
    return (fx - y) * fx * (1 - fx)


def numpy_gd(epochs: int, learning_rate: float) -> list[float]:
    """The lectures' ``do_gradient_descent``, returning the loss after each epoch."""
    w, b = START
    losses = []
    for _ in range(epochs):
        dw, db = 0.0, 0.0
        for x, y in zip(X, Y):
            dw += grad_w(w, b, x, y)
            db += grad_b(w, b, x, y)
        w = w - learning_rate * dw
        b = b - learning_rate * db
        losses.append(error(w, b))
    return losses


def numpy_adam(epochs: int, learning_rate: float, beta_1: float, beta_2: float,
               epsilon: float = 1e-8) -> list[float]:
    """The lectures' ``do_adam`` (bias-corrected, ε outside the root), losses per epoch."""
    w, b = START
    m_w, m_b, v_w, v_b = 0.0, 0.0, 0.0, 0.0
    losses = []
    for step in range(1, epochs + 1):
        dw, db = 0.0, 0.0
        for x, y in zip(X, Y):
            dw += grad_w(w, b, x, y)
            db += grad_b(w, b, x, y)
        m_w = beta_1 * m_w + (1 - beta_1) * dw
        m_b = beta_1 * m_b + (1 - beta_1) * db
        v_w = beta_2 * v_w + (1 - beta_2) * dw ** 2
        v_b = beta_2 * v_b + (1 - beta_2) * db ** 2
        m_w_hat, m_b_hat = m_w / (1 - beta_1 ** step), m_b / (1 - beta_1 ** step)
        v_w_hat, v_b_hat = v_w / (1 - beta_2 ** step), v_b / (1 - beta_2 ** step)
        w = w - learning_rate * m_w_hat / (np.sqrt(v_w_hat) + epsilon)
        b = b - learning_rate * m_b_hat / (np.sqrt(v_b_hat) + epsilon)
        losses.append(error(w, b))
    return losses


NUMPY_LOOPS: dict[str, Callable[..., list[float]]] = {"gd": numpy_gd, "adam": numpy_adam}


# --- hyperparameters -----------------------------------------------------------------


def sample(name: str, size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """``size`` random hyperparameter sets of optimizer ``name``, one column per keyword."""
    if name == "gd":
        return {"learning_rate": 10 ** rng.uniform(-2, 1, size)}
    return {
        "learning_rate": 10 ** rng.uniform(-3, 0, size),
        "beta_1": rng.uniform(0.5, 0.99, size),
        "beta_2": 1 - 10 ** rng.uniform(-4, -1, size),
    }


def row(columns: dict[str, np.ndarray], index: int) -> dict[str, float]:
    return {name: float(column[index]) for name, column in columns.items()}


# --- the timed ways ------------------------------------------------------------------


def run_population(task, name: str, columns: dict[str, np.ndarray], epochs: int,
                   jit: bool) -> population.PopulationResult:
    return population.fit_population(task, name, columns, epochs=epochs, jit_compile=jit)


def run_keras(task, name: str, columns: dict[str, np.ndarray], epochs: int) -> list[list[float]]:
    histories = []
    for index in range(len(next(iter(columns.values())))):
        keras.backend.clear_session(free_memory=False)
        optimizer = gdbench.optimizers.get(name, **row(columns, index))
        histories.append(task.fit(optimizer, epochs=epochs).history["loss"])
    return histories


def run_numpy(name: str, columns: dict[str, np.ndarray], epochs: int) -> list[list[float]]:
    loop = NUMPY_LOOPS[name]
    trials = len(next(iter(columns.values())))
    return [loop(epochs, **row(columns, index)) for index in range(trials)]


def timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def check_agreement(task, name: str, epochs: int, rng: np.random.Generator) -> float:
    """The largest absolute gap between the three ways' per-epoch losses on one trial.

    Absolute, since a converging trial reaches losses near 1e-32 where
    relative gaps mean nothing.
    """
    columns = sample(name, 1, rng)
    reference = np.array(run_keras(task, name, columns, epochs)[0])
    engine = run_population(task, name, columns, epochs, jit=True).losses[0]
    lectures = np.array(run_numpy(name, columns, epochs)[0])
    return float(max(np.max(np.abs(other - reference)) for other in (engine, lectures)))


def benchmark(name: str, args: argparse.Namespace, task) -> list[dict[str, object]]:
    rng = np.random.default_rng(0)
    gap = check_agreement(task, name, args.epochs, rng)
    rows: list[dict[str, object]] = []
    for size in args.population_sizes:
        # A first call finds nothing compiled: it traces and compiles the loop.
        # A second call right after it runs the same loop compiled, so their
        # difference is the tracing and compiling. The last loops compiled
        # stay cached for the timed calls below.
        cold: dict[bool, list[float]] = {True: [], False: []}
        compiling: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(args.cold_calls):
            _population_loop._COMPILED.clear()
            for jit in (True, False):
                first, second = (
                    timed(lambda: run_population(task, name, sample(name, size, rng),
                                                 args.epochs, jit))
                    for _ in range(2)
                )
                cold[jit].append(first)
                compiling[jit].append(first - second)
        first_call = {jit: statistics.median(values) for jit, values in cold.items()}
        compile_time = {jit: statistics.median(values) for jit, values in compiling.items()}
        times: dict[str, list[float]] = {"xla": [], "graph": [], "keras": [], "numpy": []}
        ways = {
            "xla": lambda: run_population(task, name, sample(name, size, rng), args.epochs, True),
            "graph": lambda: run_population(task, name, sample(name, size, rng), args.epochs,
                                            False),
            "keras": lambda: run_keras(task, name, sample(name, args.keras_trials, rng),
                                       args.epochs),
            "numpy": lambda: run_numpy(name, sample(name, args.numpy_trials, rng), args.epochs),
        }
        order = list(ways)
        for repetition in range(args.repetitions):
            shift = repetition % len(order)
            for way in order[shift:] + order[:shift]:
                times[way].append(timed(ways[way]))
        median = {way: statistics.median(values) for way, values in times.items()}
        per_trial = {
            "xla": median["xla"] / size,
            "graph": median["graph"] / size,
            "keras": median["keras"] / args.keras_trials,
            "numpy": median["numpy"] / args.numpy_trials,
        }
        for way, label in (("xla", "population, XLA"), ("graph", "population, graph (no XLA)"),
                           ("keras", "Keras class, one ToyTask.fit per trial"),
                           ("numpy", "lectures' numpy loop, one trial at a time")):
            population_way = way in ("xla", "graph")
            rows.append({
                "optimizer": name,
                "way": label,
                "K": size if population_way else (args.keras_trials if way == "keras"
                                                  else args.numpy_trials),
                "first": first_call[way == "xla"] if population_way else None,
                "compile": compile_time[way == "xla"] if population_way else None,
                "run": median[way],
                "trials_per_s": 1.0 / per_trial[way],
                "trials_per_s_first": size / first_call[way == "xla"] if population_way else None,
                "speedup": per_trial["keras"] / per_trial[way],
                "gap": gap,
            })
    return rows


def machine() -> list[str]:
    model = cpu_model()
    gpus = tf.config.list_physical_devices("GPU")
    return [
        f"- CPU: {model}, {os.cpu_count()} cores (nproc); GPU: "
        + (", ".join(gpu.name for gpu in gpus) if gpus else "none used"),
        f"- Python {platform.python_version()}, TensorFlow {tf.__version__}, "
        f"Keras {keras.__version__}, numpy {np.__version__}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population-sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--keras-trials", type=int, default=5,
                        help="trials per repetition for the Keras class")
    parser.add_argument("--numpy-trials", type=int, default=20,
                        help="trials per repetition for the numpy loop")
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--cold-calls", type=int, default=3,
                        help="first calls (trace and compile included) per population loop")
    parser.add_argument("--optimizers", nargs="+", default=["gd", "adam"],
                        choices=list(NUMPY_LOOPS))
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 100 epochs, K = 200, 2 repetitions")
    args = parser.parse_args()
    if args.quick:
        args.population_sizes, args.epochs, args.repetitions, args.cold_calls = [200], 100, 2, 1
        args.keras_trials, args.numpy_trials = 2, 5

    task = gdbench.tasks.get("sigmoid_neuron", seed=0)
    load_before = os.getloadavg()
    rows = [result for name in args.optimizers for result in benchmark(name, args, task)]
    load_after = os.getloadavg()

    print(f"sigmoid_neuron, full batch, {args.epochs} epochs; medians of {args.repetitions} "
          f"interleaved repetitions ({args.cold_calls} for first calls)\n")
    print("| optimizer | way | trials timed | first call (s) | of which trace + compile (s) "
          "| run (s) | trials/s | × Keras per trial | trials/s of the first call |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for result in rows:
        first = "" if result["first"] is None else f"{result['first']:.2f}"
        compile_time = "" if result["compile"] is None else f"{result['compile']:.2f}"
        first_rate = ("" if result["trials_per_s_first"] is None
                      else f"{result['trials_per_s_first']:,.0f}")
        print(f"| {result['optimizer']} | {result['way']} | {result['K']} | {first} | "
              f"{compile_time} | {result['run']:.3f} | {result['trials_per_s']:,.1f} | "
              f"{result['speedup']:,.0f} | {first_rate} |")
    print()
    start = float(task.loss(task.initial_parameters()))
    for name in args.optimizers:
        gap = next(result["gap"] for result in rows if result["optimizer"] == name)
        print(f"- {name}: on one trial, the three ways' {args.epochs} per-epoch losses differ by "
              f"at most {gap:.1e} (absolute; the loss starts at {start:.3f})")
    print("\n".join(machine()))
    print(f"- load average (1, 5, 15 min): before {tuple(round(x, 2) for x in load_before)}, "
          f"after {tuple(round(x, 2) for x in load_after)}")


if __name__ == "__main__":
    main()
