"""How much a long study's memory grows per trial.

Two studies, each run by ``run_study`` in a fresh Python process, as
``gdbench run`` would, with tracking on as by default (MLflow in a SQLite
store under the study's home, TensorBoard):

- ``digits_mlp``: Adam, η and β1 searched by a seeded random sampler, no
  pruner, 2 epochs per trial, 300 trials trained one at a time;
- ``sigmoid_neuron``: the lectures' seven optimizers (GD, Momentum, NAG,
  Adagrad, RMSProp, AdaDelta, Adam), η searched by a seeded random sampler,
  50 epochs, 5000 trials trained 32 at a time by the population engine.

After each trial is told, a study callback reads the process's resident set
size (RSS). The growth per trial is the slope of RSS against the trial
number over a window that leaves out the first sixth of the study, where
imports, caches and compiled loops settle: trials 50 to 300, and 833 to 5000.
Two fits are given: least squares, and Theil–Sen (the median of the slopes
between every pair of samples), which a stray spike of a shared machine
does not move. Beside them: the median RSS of the first and of the last ten
trials of the window, and the mean wall time of a trial over the window.

    python benchmarks/memory.py                  # the recorded table
    python benchmarks/memory.py --quick          # 100 image trials, 1000 toy trials
    python benchmarks/memory.py --tracking off   # the same, MLflow and TensorBoard off
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _machine import cpu_model  # benchmarks/_machine.py

#: The bound the issue sets on growth per trial, MB.
TARGET_MB_PER_TRIAL = 0.3

#: The window starts after this share of the study's trials (trial 50 of 300).
SETTLING_FRACTION = 1 / 6

#: Trials whose RSS is taken as the median at each end of the window.
END_TRIALS = 10

SPECS = {
    "digits_mlp": """\
name = "memory_digits_mlp"
task = "digits_mlp"
optimizer = "adam"
tune = ["learning_rate", "beta_1"]
epochs = 2
trials = {trials}
seed = 0
sampler = {{name = "random", seed = 7}}
pruner = "none"
{tracking}
""",
    "sigmoid_neuron": """\
name = "memory_sigmoid_neuron"
task = "sigmoid_neuron"
optimizers = ["gd", "momentum", "nesterov", "adagrad", "rmsprop", "adadelta", "adam"]
epochs = 50
trials = {trials}
trials_per_batch = 32
seed = 0
sampler = {{name = "random", seed = 7}}
pruner = "none"
{tracking}
""",
}
TRACKING_OFF = "tracking = {mlflow = false, tensorboard = false}"


def run_child(task: str, trials: int, tracking: bool, output: Path) -> None:
    """Run one study in this process and write its samples to ``output`` (JSON)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import psutil

    from gdbench.study import load_specs, run_study

    home = Path(tempfile.mkdtemp(prefix="gdbench-memory-"))
    try:
        spec_path = home / "study.toml"
        spec_path.write_text(SPECS[task].format(trials=trials,
                                                tracking="" if tracking else TRACKING_OFF))
        (spec,) = load_specs(spec_path)
        process = psutil.Process()
        samples: list[tuple[int, float, float]] = []
        start = time.perf_counter()

        def sample(study: Any, trial: Any) -> None:
            del study
            samples.append((trial.number, process.memory_info().rss / 2**20,
                            time.perf_counter() - start))

        run_study(spec, home=home, trials=trials, quiet=True, callbacks=[sample])
        output.write_text(json.dumps({"samples": samples}))
    finally:
        shutil.rmtree(home, ignore_errors=True)


def measure(task: str, trials: int, tracking: bool) -> dict[str, Any]:
    """One study in a fresh interpreter: its RSS samples, summarised over the window."""
    with tempfile.TemporaryDirectory(prefix="gdbench-memory-") as folder:
        output = Path(folder) / "samples.json"
        command = [sys.executable, __file__, "--child", task, "--trials", str(trials),
                   "--tracking", "on" if tracking else "off", "--output", str(output)]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
        samples = json.loads(output.read_text())["samples"]
    return summarise(task, trials, samples)


def summarise(task: str, trials: int, samples: list[list[float]]) -> dict[str, Any]:
    numbers = np.array([row[0] for row in samples], dtype=np.float64)
    rss = np.array([row[1] for row in samples])
    clock = np.array([row[2] for row in samples])
    first = round(trials * SETTLING_FRACTION)
    window = (numbers >= first) & (numbers <= trials)
    order = np.argsort(numbers[window], kind="stable")
    x, y = numbers[window][order], rss[window][order]
    return {
        "task": task, "trials": trials, "window": (first, trials),
        "rss_start": float(np.median(y[:END_TRIALS])),
        "rss_end": float(np.median(y[-END_TRIALS:])),
        "least_squares": float(np.polyfit(x, y, 1)[0]),
        "theil_sen": theil_sen(x, y),
        # Population trials are told a batch at a time: the mean over the window, not a median.
        "seconds_per_trial": float(np.ptp(clock[window]) / max(window.sum() - 1, 1)),
        "rss_peak": float(rss.max()),
    }


def theil_sen(x: np.ndarray, y: np.ndarray, max_points: int = 1000) -> float:
    """The median slope between every pair of points (on at most ``max_points``, evenly kept)."""
    keep = np.unique(np.linspace(0, len(x) - 1, min(len(x), max_points)).round().astype(int))
    x, y = x[keep], y[keep]
    left, right = np.triu_indices(len(x), k=1)
    distinct = x[right] != x[left]
    return float(np.median((y[right] - y[left])[distinct] / (x[right] - x[left])[distinct]))


def machine() -> str:
    import keras
    import mlflow
    import optuna
    import tensorflow as tf

    return (f"Machine: {cpu_model()}, {os.cpu_count()} cores, CPU only; "
            f"Python {platform.python_version()}, TensorFlow {tf.__version__}, "
            f"Keras {keras.__version__}, Optuna {optuna.__version__}, MLflow {mlflow.__version__}")


def report(results: list[dict[str, Any]], tracking: bool, loads: tuple[str, str]) -> str:
    lines = [
        machine(),
        (f"Tracking {'on (MLflow SQLite + TensorBoard)' if tracking else 'off'}; "
         f"load average before {loads[0]}, after {loads[1]}."),
        "",
        ("| study | trials | window | RSS at window start, MB | RSS at end, MB | "
         "growth, MB/trial (least squares) | growth, MB/trial (Theil–Sen) | s/trial | "
         f"≤ {TARGET_MB_PER_TRIAL} MB/trial |"),
        "|---|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for result in results:
        worst = max(result["least_squares"], result["theil_sen"])
        lines.append(
            f"| {result['task']} | {result['trials']} | {result['window'][0]}–"
            f"{result['window'][1]} | {result['rss_start']:.0f} | {result['rss_end']:.0f} | "
            f"{result['least_squares']:.4f} | {result['theil_sen']:.4f} | "
            f"{result['seconds_per_trial']:.3f} | "
            f"{'yes' if worst <= TARGET_MB_PER_TRIAL else 'no'} |")
    return "\n".join(lines)


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-trials", type=int, default=300)
    parser.add_argument("--toy-trials", type=int, default=5000)
    parser.add_argument("--tracking", choices=("on", "off"), default="on")
    parser.add_argument("--studies", default=",".join(SPECS),
                        help=f"comma-separated, among {', '.join(SPECS)}")
    parser.add_argument("--quick", action="store_true",
                        help="100 image trials and 1000 toy trials")
    parser.add_argument("--child", choices=tuple(SPECS), help=argparse.SUPPRESS)
    parser.add_argument("--trials", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    tracking = args.tracking == "on"
    if args.child:
        run_child(args.child, args.trials, tracking, args.output)
        return
    if args.quick:
        args.image_trials, args.toy_trials = 100, 1000
    trials = {"digits_mlp": args.image_trials, "sigmoid_neuron": args.toy_trials}
    chosen = [name.strip() for name in args.studies.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(SPECS))
    if unknown:
        parser.error(f"--studies: unknown {', '.join(unknown)}; known: {', '.join(SPECS)}")
    load_before = load_average()
    results = []
    for task in chosen:
        result = measure(task, trials[task], tracking)
        print(f"{task}: {result['least_squares']:.4f} MB/trial (least squares), "
              f"{result['theil_sen']:.4f} (Theil–Sen)", file=sys.stderr)
        results.append(result)
    print(report(results, tracking, (load_before, load_average())))


if __name__ == "__main__":
    main()
