"""Start-up of small studies: a 100-trial untracked study and ``make demo``, whole commands.

Two commands, each in a fresh process and a fresh home every run:

- **small**: the 100-trial untracked sigmoid study a user writes (``task =
  "sigmoid_neuron"``, ``optimizer = "gd"``, ``trials = 100``, both trackers
  off; every other setting the default: TPE, 1000 epochs, batches of 32), as
  ``python -m gdbench run s.toml --home HOME --quiet``;
- **demo**: what ``make demo`` runs, ``python -m gdbench run
  studies/quickstart.toml --jobs 2 --home HOME --quiet`` (the quickstart's two
  tracked studies, each in a process of its own).

The table gives each command's median wall time, from the process's start to
its exit (what a user waits: the interpreter's start-up, the imports, the
trials and the report), and its median CPU time (user + system, the study
processes of ``--jobs`` included), which a shared machine disturbs less than
the wall time. ``--trees`` times other checkouts of gdbench in the same rounds,
interleaved (``PYTHONPATH`` set to each; the demo reads each tree's own
``studies/quickstart.toml``).

    python benchmarks/startup.py                               # the recorded table
    python benchmarks/startup.py --trees . /path/to/other      # against another checkout
    python benchmarks/startup.py --commands small --repeats 5
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import print_machine  # benchmarks/_machine.py

SMALL_SPEC = """name = "s"
task = "sigmoid_neuron"
optimizer = "gd"
trials = 100

[tracking]
mlflow = false
tensorboard = false
"""

COMMANDS = ("small", "demo")


def arguments_of(command: str, tree: Path, spec: Path) -> list[str]:
    if command == "small":
        return [str(spec)]
    return [str(tree / "studies" / "quickstart.toml"), "--jobs", "2"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--commands", nargs="+", choices=COMMANDS, default=list(COMMANDS))
    parser.add_argument("--trees", nargs="+", type=Path,
                        default=[Path(__file__).resolve().parents[1]])
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="gdbench-startup-"))
    spec = folder / "s.toml"
    spec.write_text(SMALL_SPEC, encoding="utf-8")
    runs = [(command, tree.resolve()) for command in args.commands for tree in args.trees]
    walls: dict[tuple[str, Path], list[float]] = {run: [] for run in runs}
    cpus: dict[tuple[str, Path], list[float]] = {run: [] for run in runs}
    statuses: dict[tuple[str, Path], set[int]] = {run: set() for run in runs}
    load_before = os.getloadavg()
    for _ in range(args.repeats):
        for command, tree in runs:
            home = folder / "home"
            shutil.rmtree(home, ignore_errors=True)
            environment = {**os.environ, "PYTHONPATH": str(tree)}
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "gdbench", "run", *arguments_of(command, tree, spec),
                 "--home", str(home), "--quiet"],
                capture_output=True, env=environment, cwd=tree)
            walls[command, tree].append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus[command, tree].append(after.ru_utime + after.ru_stime
                                       - before.ru_utime - before.ru_stime)
            statuses[command, tree].add(done.returncode)
    load_after = os.getloadavg()
    shutil.rmtree(folder, ignore_errors=True)
    print(f"Small studies' start-up, whole commands, {args.repeats} runs each "
          "(interleaved), medians")
    print()
    print("| command | tree | wall s | CPU s | each run's wall s | each run's CPU s | "
          "exit status |")
    print("|---|---|---:|---:|---|---|---|")
    for run in runs:
        each_wall = ", ".join(f"{wall:.1f}" for wall in walls[run])
        each_cpu = ", ".join(f"{cpu:.1f}" for cpu in cpus[run])
        print(f"| {run[0]} | {run[1]} | **{statistics.median(walls[run]):.1f}** | "
              f"{statistics.median(cpus[run]):.1f} | {each_wall} | {each_cpu} | "
              f"{', '.join(map(str, sorted(statuses[run])))} |")
    print()
    print_machine(load_before, load_after)


if __name__ == "__main__":
    main()
