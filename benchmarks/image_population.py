"""Trials per minute of an image study, one trial at a time against populations of K trials.

The study: Adam on an image MLP (η, β1, β2, ε searched by TPE), 5 epochs a
trial, batches of 128, tracking on (MLflow on SQLite and TensorBoard, as by
default), no pruner (so that every arm trains every epoch of every trial;
with pruning, one at a time and populations would stop different trials),
the default embedded storage in a fresh home per study, or, with
``--existing-home``, in a home whose stores (Optuna's and MLflow's databases)
a one-trial study of another name created first, in an interpreter of its
own, as when a user runs many studies in one home.

Arms: ``population = false`` (K = 1, one trial at a time through
``model.fit``), then ``population = true`` with ``trials_per_batch = K``.
Each study runs in a fresh interpreter of its own, timed from just before
``run_study`` to its return (imports and TensorFlow's start-up left out), and
reports its peak resident set size (``ru_maxrss``). Beside the whole study's
rate, the trial loop's: the time in ``TrialLoop.run`` (claiming, training,
tracking and telling the trials), without what a study costs once whatever
its trials (opening the storage and the MLflow store, the report). A round runs every arm
once, the arms rotating between rounds; the table gives medians over rounds.

Memory per member is (peak RSS of the population arm − peak RSS of the
one-at-a-time arm of the same round) / K, beside the bytes of one member's
weights and Adam's slots (m and v), float32.

    python benchmarks/image_population.py --task digits_mlp --trials 64
    python benchmarks/image_population.py --task digits_mlp --trials 64 --existing-home
    python benchmarks/image_population.py --task fashion_mnist_mlp --subset 2000 --trials 32
    python benchmarks/image_population.py --quick      # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from _machine import cpu_model  # benchmarks/_machine.py

SPEC = """
name = "image_population"
task = {task}
optimizer = "adam"
epochs = {epochs}
batch_size = 128
trials = {trials}
sampler = {{name = "tpe", seed = 0}}
pruner = "none"
population = {population}
trials_per_batch = {batch}
"""

#: The study that creates the stores of an existing home: one trial of one epoch.
WARM_UP_SPEC = """
name = "image_population_warm_up"
task = {task}
optimizer = "adam"
epochs = 1
trials = 1
pruner = "none"
"""


def task_table(args: argparse.Namespace) -> str:
    options = [f'name = "{args.task}"']
    for key in ("subset", "validation_size", "test_size"):
        value = getattr(args, key)
        if value is not None:
            options.append(f"{key} = {value}")
    return "{" + ", ".join(options) + "}"


def child(spec_path: Path, home: Path | None) -> None:
    """Run one study in this fresh interpreter; print its wall time and peak RSS as JSON.

    ``home``: the study's home, kept; ``None`` for a fresh one, removed after.
    """
    import logging
    import warnings

    import optuna

    from gdbench.study import load_spec, run_study
    from gdbench.study.trials import loop

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("gdbench").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    spec = load_spec(spec_path)
    spec.task.build().data()  # the data set, loaded before the clock starts
    in_loop = []
    run_loop = loop.TrialLoop.run

    def timed_run(self: Any) -> None:
        start = time.perf_counter()
        try:
            run_loop(self)
        finally:
            in_loop.append(time.perf_counter() - start)

    loop.TrialLoop.run = timed_run
    fresh = home is None
    if home is None:
        home = Path(tempfile.mkdtemp(prefix="gdbench-image-population-"))
    try:
        start = time.perf_counter()
        study = run_study(spec, home=home, quiet=True)
        wall = time.perf_counter() - start
        states = [trial.state.name for trial in study.get_trials(deepcopy=False)]
    finally:
        if fresh:
            shutil.rmtree(home, ignore_errors=True)
    if states.count("COMPLETE") + states.count("FAIL") != spec.trials:
        raise RuntimeError(f"{spec_path.stem}: trials ended {states}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"wall": wall, "loop": sum(in_loop), "peak": peak,
                      "failed": states.count("FAIL")}))


def member_bytes(args: argparse.Namespace) -> int:
    """Bytes of one member's weights and Adam's slots (float32)."""
    import gdbench.optimizers
    import gdbench.tasks

    options = {key: getattr(args, key) for key in ("subset", "validation_size", "test_size")
               if getattr(args, key) is not None}
    model = gdbench.tasks.get(args.task, **options).build_model()
    optimizer = gdbench.optimizers.get("adam")
    optimizer.build(model.trainable_variables)
    slots = sum(int(v.numpy().size) for v in optimizer.variables if len(v.shape) > 0)
    return 4 * (model.count_params() + slots)


def run_child(spec_path: Path, home: Path | None) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", str(spec_path)]
    if home is not None:
        command += ["--home", str(home)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{spec_path.stem} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_arm(spec_path: Path, warm_up: Path | None) -> dict[str, Any]:
    """One arm's study: in a fresh home, or (``warm_up`` given) in one that study created."""
    if warm_up is None:
        return run_child(spec_path, None)
    home = Path(tempfile.mkdtemp(prefix="gdbench-image-population-"))
    try:
        run_child(warm_up, home)
        return run_child(spec_path, home)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="digits_mlp")
    parser.add_argument("--subset", type=int)
    parser.add_argument("--validation-size", dest="validation_size", type=int)
    parser.add_argument("--test-size", dest="test_size", type=int)
    parser.add_argument("--trials", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 8, 16, 32, 64],
                        help="population sizes; 1 is population = false")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="one round, 8 trials, K = 1 and 8")
    parser.add_argument("--existing-home", dest="existing_home", action="store_true",
                        help="run each study in a home whose stores a one-trial study created")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.home)
        return
    if args.quick:
        args.rounds, args.trials, args.sizes = 1, 8, [1, 8]
    folder = Path(tempfile.mkdtemp(prefix="gdbench-image-population-specs-"))
    specs = {}
    for size in args.sizes:
        specs[size] = folder / f"k{size}.toml"
        specs[size].write_text(SPEC.format(
            task=task_table(args), epochs=args.epochs, trials=args.trials,
            population=str(size > 1).lower(), batch=size))
    warm_up = None
    if args.existing_home:
        warm_up = folder / "warm_up.toml"
        warm_up.write_text(WARM_UP_SPEC.format(task=task_table(args)))
    load_before = os.getloadavg()
    started = time.time()
    rounds: list[dict[int, dict[str, Any]]] = []
    for index in range(args.rounds):
        order = args.sizes[index % len(args.sizes):] + args.sizes[:index % len(args.sizes)]
        result = {size: run_arm(specs[size], warm_up) for size in order}
        rounds.append(result)
        print(f"round {index + 1}/{args.rounds}: " + "; ".join(
            f"K={size} {60 * args.trials / result[size]['wall']:.0f} trials/min, "
            f"peak {result[size]['peak'] / 2**20:.0f} MiB" for size in order), file=sys.stderr)
    load_after = os.getloadavg()
    shutil.rmtree(folder, ignore_errors=True)
    print(report(rounds, args, member_bytes(args), load_before, load_after,
                 time.time() - started))


def report(rounds: list[dict[int, dict[str, Any]]], args: argparse.Namespace, member: int,
           load_before: tuple[float, ...], load_after: tuple[float, ...], seconds: float) -> str:
    rates = {size: [60 * args.trials / result[size]["wall"] for result in rounds]
             for size in args.sizes}
    loop_rates = {size: [60 * args.trials / result[size]["loop"] for result in rounds]
                  for size in args.sizes}
    base = statistics.median(rates[1]) if 1 in rates else None
    loop_base = statistics.median(loop_rates[1]) if 1 in rates else None
    lines = [
        (f"{task_table(args)}, Adam (TPE, seed 0), {args.epochs} epochs, batches of 128, "
         f"{args.trials} trials a study, tracking on, no pruner; "
         f"{'an existing' if args.existing_home else 'a fresh'} home; "
         f"{args.rounds} rounds, medians"),
        "",
        ("| K | study: trials/min (each round) | × one at a time | trial loop: trials/min | "
         "× one at a time | peak RSS, MiB | memory per member, KiB | "
         "× one member's weights + Adam slots |"),
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size in args.sizes:
        rate = statistics.median(rates[size])
        each = ", ".join(f"{value:.0f}" for value in rates[size])
        peak = statistics.median(result[size]["peak"] for result in rounds)
        speedup = f"{rate / base:.1f}" if base else ""
        loop_rate = statistics.median(loop_rates[size])
        loop_speedup = f"{loop_rate / loop_base:.1f}" if loop_base else ""
        per_member = ratio = ""
        if size > 1 and 1 in args.sizes:
            grown = statistics.median((result[size]["peak"] - result[1]["peak"]) / size
                                      for result in rounds)
            per_member, ratio = f"{grown / 1024:.0f}", f"{grown / member:.2f}"
        failed = max(result[size]["failed"] for result in rounds)
        note = f" ({failed} failed)" if failed else ""
        lines.append(f"| {'1 (population = false)' if size == 1 else size}{note} | "
                     f"**{rate:.0f}** ({each}) | {speedup} | {loop_rate:.0f} | {loop_speedup} | "
                     f"{peak / 2**20:.0f} | "
                     f"{per_member} | {ratio} |")
    lines += [
        "",
        f"- one member's weights + Adam slots: {member / 1024:.0f} KiB",
        f"- Machine: {cpu_model()}, {os.cpu_count()} cores; Python {platform.python_version()}",
        (f"- load average (1, 5, 15 min): before {tuple(round(x, 2) for x in load_before)}, "
         f"after {tuple(round(x, 2) for x in load_after)}; {seconds / 60:.1f} min in all"),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
