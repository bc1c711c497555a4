"""Trials per minute of one study with 1 and with 2 workers sharing it on PostgreSQL.

The study is CPU-bound: 30 epochs of Adam on Rosenbrock's valley, one
``ToyTask.fit`` per trial (no population batches), random sampler, no pruner,
no MLflow or TensorBoard (the servers would compete for the same cores).
Each worker runs TensorFlow on one thread (``TF_NUM_INTRAOP_THREADS=1``,
``TF_NUM_INTEROP_THREADS=1``): one worker per core, as on a GPU host one
worker per GPU.

A PostgreSQL server is started in a temporary folder (as in the tests), and
for every measurement a fresh study is created with ``gdbench create`` and
run to its budget by N ``gdbench worker`` processes. The rate counts the
trials finished between the first trial's start and the last trial's end,
as the storage recorded them: the workers' start-up (importing TensorFlow,
seconds) is left out. Measurements with 1 and 2 workers alternate (1, 2, then
2, 1, ...) so that the load of a shared machine hits both alike; the table
reports medians, and how many cores other processes kept busy during each
measurement (``/proc/stat`` less the workers' own CPU time).

    python benchmarks/workers_scaling.py                 # the recorded table
    python benchmarks/workers_scaling.py --repetitions 1 --trials 16   # a smoke run
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import optuna  # noqa: E402
import servers  # noqa: E402  (tests/servers.py: PostgreSQL in a temporary folder)

SPEC = """\
name = "{name}"
task = "rosenbrock"
optimizer = "adam"
epochs = 30
trials = {trials}
sampler = "random"
pruner = "none"
population = false
tracking = {{mlflow = false, tensorboard = false}}

[search]
learning_rate = {{low = 0.001, high = 0.1}}
"""


def busy_seconds() -> float:
    """CPU seconds every process of the machine spent so far (``/proc/stat``), all cores together."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def measure(stack: servers.Stack, name: str, workers: int, trials: int) -> dict[str, float]:
    """Run a fresh study of ``trials`` trials with ``workers`` workers.

    Returns:
        ``rate`` (trials per minute), ``seconds`` (first start to last end),
        ``others`` (cores busy with other processes than the workers while
        they ran, PostgreSQL included: the load of a shared machine).
    """
    spec_path = stack.root / f"{name}.toml"
    spec_path.write_text(SPEC.format(name=name, trials=trials))
    environment = {**servers.worker_environment(), "TF_NUM_INTRAOP_THREADS": "1",
                   "TF_NUM_INTEROP_THREADS": "1"}
    module = [sys.executable, "-m", "gdbench"]
    subprocess.run([*module, "create", str(spec_path), "--storage", stack.postgres_url,
                    "--home", str(stack.home)], check=True, capture_output=True, env=environment)
    logs = [stack.root / f"{name}-{index}.log" for index in range(workers)]
    busy_before, wall_before = busy_seconds(), time.monotonic()
    processes = []
    for index, log in enumerate(logs):
        with open(log, "wb") as output:
            processes.append(subprocess.Popen(
                [*module, "worker", str(spec_path), "--storage", stack.postgres_url,
                 "--home", str(stack.home), "--worker-index", str(index)],
                stdout=output, stderr=subprocess.STDOUT, env=environment))
    workers_cpu = 0.0
    for process, log in zip(processes, logs):
        # wait4, not Popen.wait: the worker's own CPU time comes with its status.
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        workers_cpu += usage.ru_utime + usage.ru_stime
        if process.returncode:
            raise RuntimeError(f"a worker exited with {process.returncode}: "
                               f"{log.read_text(errors='replace')[-2000:]}")
    others = (busy_seconds() - busy_before - workers_cpu) / (time.monotonic() - wall_before)
    study = optuna.load_study(study_name=name, storage=stack.postgres_url)
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(finished) != trials:
        raise RuntimeError(f"{name}: {len(finished)} complete trials, expected {trials}")
    start = min(t.datetime_start for t in finished)
    end = max(t.datetime_complete for t in finished)
    seconds = (end - start).total_seconds()
    return {"rate": 60.0 * trials / seconds, "seconds": seconds, "others": max(others, 0.0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repetitions", type=int, default=5, help="pairs of measurements")
    parser.add_argument("--trials", type=int, default=60, help="trials per measurement")
    arguments = parser.parse_args()
    reason = servers.missing_prerequisite()
    if reason is not None:
        raise SystemExit(reason)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    stack = servers.Stack(root=Path(tempfile.mkdtemp(prefix="gdbench-scaling-")))
    os.chmod(stack.root, 0o755)
    stack.home = stack.root / "home"
    stack.home.mkdir()
    results: dict[int, list[dict[str, float]]] = {1: [], 2: []}
    try:
        servers.start_postgres(stack, servers.postgres_bin())  # type: ignore[arg-type]
        for repetition in range(arguments.repetitions):
            order = (1, 2) if repetition % 2 == 0 else (2, 1)
            for workers in order:
                result = measure(stack, f"scaling_{repetition}_{workers}", workers, arguments.trials)
                results[workers].append(result)
                print(f"repetition {repetition + 1}, {workers} worker(s): "
                      f"{result['rate']:.1f} trials/min over {result['seconds']:.1f} s, "
                      f"other processes {result['others']:.2f} cores", flush=True)
    finally:
        stack.stop()

    one = statistics.median(r["rate"] for r in results[1])
    two = statistics.median(r["rate"] for r in results[2])
    ratios = [b["rate"] / a["rate"] for a, b in zip(results[1], results[2])]
    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, optuna {optuna.__version__}; "
          f"{arguments.trials} trials per measurement, medians of {arguments.repetitions}\n")
    print("| workers | trials/min (median) | runs (trials/min) | cores busy with other processes |")
    print("|---|---|---|---|")
    for workers, median in ((1, one), (2, two)):
        runs = ", ".join(f"{r['rate']:.1f}" for r in results[workers])
        loads = ", ".join(f"{r['others']:.2f}" for r in results[workers])
        print(f"| {workers} | {median:.1f} | {runs} | {loads} |")
    print(f"\nspeed-up with 2 workers: {two / one:.2f}x (median of pairs: "
          f"{statistics.median(ratios):.2f}x; pairs: {', '.join(f'{r:.2f}' for r in ratios)})")


if __name__ == "__main__":
    main()
