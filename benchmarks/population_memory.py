"""What one member of an image population costs in memory, the engine alone.

Each run trains one population with ``fit_image_population`` (Adam, every
member its own η, log-spaced over [1e-4, 1e-2]; batches of 128) in a fresh
interpreter, after the task's data are loaded, and reports the process's
peak resident set size (``ru_maxrss``) at the end of the fit and after its
last epoch (training and validation, before the test split and the
result's weights), and the fit's wall and CPU time. A member's cost is the
marginal one: (peak at K − peak at K = 1) / (K − 1),
both runs of the same round and the same source tree, so that what a
population costs once (TensorFlow's runtime, the data, the traced
programs) cancels. It is set beside the bytes of one member's weights and
Adam's slots (m and v), float32.

``--source NAME=PATH`` runs the engine of another checkout (its ``gdbench``
package put first on ``PYTHONPATH``), e.g. the main branch against this one;
a round runs every (source, K) once, the sources alternating and their order
flipping each round; the table gives medians over rounds.

    python benchmarks/population_memory.py                      # this checkout, K = 8, 16, 32
    python benchmarks/population_memory.py --source before=../main --source after=.
    python benchmarks/population_memory.py --task digits_mlp --sizes 8 --rounds 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _machine import cpu_model  # benchmarks/_machine.py

ROOT = Path(__file__).resolve().parent.parent


def child(args: argparse.Namespace) -> None:
    """One population in this fresh interpreter; print peak RSS and times as JSON."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np

    import gdbench.tasks
    from gdbench.tasks.image_population import fit_image_population

    task = gdbench.tasks.get(args.task, **task_options(args))
    task.data()  # loaded before the measured fit
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    rates = np.geomspace(1e-4, 1e-2, args.child_size) if args.child_size > 1 else [1e-3]
    epoch_peaks = []

    def record_peak(report: Any) -> None:
        epoch_peaks.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)

    wall, cpu = time.perf_counter(), time.process_time()
    result = fit_image_population(task, "adam", {"learning_rate": rates}, epochs=args.epochs,
                                  batch_size=128, on_epoch=record_peak)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"before": before, "peak": peak, "training_peak": max(epoch_peaks),
                      "wall": wall, "cpu": cpu,
                      "complete": result.status.count("complete"),
                      "source": str(Path(gdbench.__file__).resolve().parent.parent)}))


def task_options(args: argparse.Namespace) -> dict[str, int]:
    return {key: getattr(args, key) for key in ("subset", "validation_size", "test_size")
            if getattr(args, key) is not None}


def member_bytes(args: argparse.Namespace) -> int:
    """Bytes of one member's weights and Adam's slots, float32: three copies of the weights."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import gdbench.tasks

    return 3 * 4 * gdbench.tasks.get(args.task, **task_options(args)).build_model().count_params()


def run(source: Path, size: int, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child-size", str(size), "--task", args.task,
               "--epochs", str(args.epochs)]
    for key in ("subset", "validation_size", "test_size"):
        if getattr(args, key) is not None:
            command += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join([str(source), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{source}, K = {size} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if Path(result["source"]) != source.resolve():
        raise RuntimeError(f"K = {size} imported gdbench from {result['source']}, not {source}")
    return result


def load_average() -> tuple[float, ...]:
    return tuple(round(value, 2) for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="fashion_mnist_mlp")
    parser.add_argument("--subset", type=int, default=2000)
    parser.add_argument("--validation-size", dest="validation_size", type=int, default=1000)
    parser.add_argument("--test-size", dest="test_size", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--source", action="append", default=[],
                        help="NAME=PATH of a checkout whose engine to run (repeatable)")
    parser.add_argument("--child-size", dest="child_size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_size is not None:
        child(args)
        return
    sources = {}
    for item in args.source or [f"this={ROOT}"]:
        name, _, path = item.partition("=")
        if not path or not (Path(path) / "gdbench" / "__init__.py").is_file():
            parser.error(f"--source: expected NAME=PATH of a checkout with gdbench/, got {item!r}")
        sources[name] = Path(path)
    if any(size < 2 for size in args.sizes):
        parser.error("--sizes: each K ≥ 2 (K = 1 is the baseline every round runs)")
    sizes = [1, *args.sizes]
    started, load_before = time.time(), load_average()
    rounds: list[dict[tuple[str, int], dict[str, Any]]] = []
    for index in range(args.rounds):
        names = list(sources) if index % 2 == 0 else list(reversed(sources))
        results = {}
        for size in sizes:
            for name in names:
                results[name, size] = run(sources[name], size, args)
                print(f"round {index + 1}: {name}, K = {size}: peak "
                      f"{results[name, size]['peak'] / 2**20:.0f} MiB, fit "
                      f"{results[name, size]['wall']:.1f} s", file=sys.stderr)
        rounds.append(results)
    member = member_bytes(args)
    options = ", ".join(f"{key} = {value}" for key, value in task_options(args).items())
    print(f"{args.task} ({options}), Adam, {args.epochs} epochs, batches of 128; "
          f"{args.rounds} rounds, medians\n")
    print("| engine | K | peak RSS, MiB | fit: wall s | fit: CPU s | members/min (wall) | "
          "memory per member, MiB | × one member's weights + Adam slots | "
          "memory per member after the last epoch, MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in sources:
        for size in sizes:
            peak = statistics.median(r[name, size]["peak"] for r in rounds)
            wall = statistics.median(r[name, size]["wall"] for r in rounds)
            cpu = statistics.median(r[name, size]["cpu"] for r in rounds)
            grown = "" if size == 1 else statistics.median(
                (r[name, size]["peak"] - r[name, 1]["peak"]) / (size - 1) for r in rounds)
            trained = "" if size == 1 else statistics.median(
                (r[name, size]["training_peak"] - r[name, 1]["training_peak"]) / (size - 1)
                for r in rounds)
            cells = (["", "", ""] if grown == "" else
                     [f"{grown / 2**20:.1f}", f"{grown / member:.2f}", f"{trained / 2**20:.1f}"])
            print(f"| {name} | {size} | {peak / 2**20:.0f} | {wall:.1f} | {cpu:.1f} | "
                  f"{60 * size / wall:.1f} | " + " | ".join(cells) + " |")
    print(f"\n- one member's weights + Adam slots: {member / 2**20:.1f} MiB")
    print(f"- Machine: {cpu_model()}, {os.cpu_count()} cores; Python {platform.python_version()}")
    print(f"- load average (1, 5, 15 min): before {load_before}, after {load_average()}; "
          f"{(time.time() - started) / 60:.1f} min in all")


if __name__ == "__main__":
    main()
