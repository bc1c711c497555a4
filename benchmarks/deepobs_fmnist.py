"""Fashion-MNIST 2c2d under DeepOBS's protocol against DeepOBS's published baselines.

Each of DeepOBS's three baseline optimizers (gd, momentum with γ = 0.99,
adam) trains ``fashion_mnist_2c2d`` with ``protocol = "deepobs"`` at the
setting of its shipped baseline (:mod:`gdbench.baselines`, its learning rate
and, for Adam, β1, β2, ε), batches of 128, for the first epochs, over a few
seeds. The table gives, per optimizer and epoch, gdbench's test accuracy
(mean ± std over the seeds, ddof = 1) beside DeepOBS's (mean ± std over its
seeds, ddof = 0, as the baseline file holds it), and whether gdbench's mean
lies within DeepOBS's mean ± 2 std. A benchmark, not a test: a full epoch
is 390 steps of a convolutional network.

    python benchmarks/deepobs_fmnist.py                    # the recorded table
    python benchmarks/deepobs_fmnist.py --epochs 1 --seeds 0 1
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import gdbench.optimizers  # noqa: E402
import gdbench.tasks  # noqa: E402
from gdbench import baselines  # noqa: E402

try:
    from _machine import cpu_model  # noqa: E402
except ImportError:  # run from elsewhere than benchmarks/
    from benchmarks._machine import cpu_model  # noqa: E402

TASK = "fashion_mnist_2c2d"
OPTIMIZERS = ("gd", "momentum", "adam")


def run(optimizer: str, seed: int, epochs: int, baseline: baselines.Baseline) -> list[float]:
    """The test accuracy after each epoch of one run at the baseline's setting."""
    keras.backend.clear_session()
    task = gdbench.tasks.get(TASK, protocol="deepobs", seed=seed)
    reason = baselines.mismatch(task, baseline.batch_size, epochs)
    if reason is not None:
        raise SystemExit(f"not DeepOBS's protocol: {reason}")
    hyperparameters = dict(baseline.curves[optimizer].hyperparameters)
    fit = task.fit(gdbench.optimizers.get(optimizer, **hyperparameters), epochs=epochs,
                   batch_size=baseline.batch_size)
    return fit.history["test_accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--optimizers", nargs="+", default=list(OPTIMIZERS))
    arguments = parser.parse_args()
    baseline = baselines.load(TASK)
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"Keras {keras.__version__} ({keras.backend.backend()})")
    print(f"command: python benchmarks/deepobs_fmnist.py --epochs {arguments.epochs} "
          f"--seeds {' '.join(map(str, arguments.seeds))}")
    print("| optimizer | setting | epoch | gdbench test accuracy (seeds) | "
          "DeepOBS test accuracy (seeds) | within DeepOBS ± 2 std | s per run |")
    print("|---|---|---|---|---|---|---|")
    for optimizer in arguments.optimizers:
        curve = baseline.curves[optimizer]
        started = time.perf_counter()
        runs = np.array([run(optimizer, seed, arguments.epochs, baseline)
                         for seed in arguments.seeds])
        seconds = (time.perf_counter() - started) / len(arguments.seeds)
        setting = ", ".join(f"{key}={value:g}" for key, value in curve.hyperparameters.items())
        for epoch in range(1, arguments.epochs + 1):
            mean = runs[:, epoch - 1].mean()
            std = runs[:, epoch - 1].std(ddof=1) if len(runs) > 1 else 0.0
            theirs, spread = curve.mean["test_accuracy"][epoch], curve.std["test_accuracy"][epoch]
            within = "yes" if abs(mean - theirs) <= 2 * spread else "no"
            print(f"| {optimizer} | {setting} | {epoch} | {mean:.4f} ± {std:.4f} "
                  f"({' '.join(map(str, arguments.seeds))}) | {theirs:.4f} ± {spread:.4f} "
                  f"({' '.join(map(str, curve.seeds))}) | {within} | {seconds:.0f} |",
                  flush=True)


if __name__ == "__main__":
    main()
