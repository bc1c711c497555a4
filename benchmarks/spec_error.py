"""How long ``gdbench run``, ``create`` and ``worker`` take to refuse a malformed spec: wall
time of the whole command.

Each malformed spec (an unknown key, an unknown optimizer, an unknown task,
TOML that does not parse) is given to each command (``python -m gdbench run SPEC``,
``create SPEC --storage URL``, ``worker SPEC``) in a fresh process, ``--repeats``
times, the specs and commands taking turns; the table gives
the median wall time of each, from the process's start to its exit, its
median CPU time (user + system, less disturbed by other jobs than the wall
time on a shared machine), and whether it exited with status 2. Start-up of
the interpreter is included: it is what a user waits. ``--trees`` times
other checkouts of gdbench in the same rounds, interleaved (``PYTHONPATH``
set to each).

    python benchmarks/spec_error.py                            # the recorded table
    python benchmarks/spec_error.py --commands run             # gdbench run alone
    python benchmarks/spec_error.py --trees . /path/to/other   # against another checkout
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import print_machine  # benchmarks/_machine.py

GOOD = 'task = "sigmoid_neuron"\noptimizer = "adam"\n'
MALFORMED = {
    "unknown key (trails)": GOOD + "trails = 3\n",
    "unknown optimizer (adamx)": 'task = "sigmoid_neuron"\noptimizer = "adamx"\n',
    "unknown task (sigmoid_neuronx)": 'task = "sigmoid_neuronx"\noptimizer = "adam"\n',
    "TOML that does not parse": GOOD + "trials = [\n",
}

#: Each command timed: its arguments after ``python -m gdbench`` (SPEC, HOME: the spec, a home).
COMMANDS = {
    "run": ["run", "SPEC", "--home", "HOME"],
    "create": ["create", "SPEC", "--storage", "sqlite:///HOME/optuna.db", "--home", "HOME"],
    "worker": ["worker", "SPEC", "--home", "HOME"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--commands", nargs="+", choices=list(COMMANDS), default=list(COMMANDS))
    parser.add_argument("--trees", nargs="+", type=Path,
                        default=[Path(__file__).resolve().parents[1]])
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="gdbench-spec-error-"))
    paths = {}
    for index, (name, text) in enumerate(MALFORMED.items()):
        paths[name] = folder / f"broken{index}.toml"
        paths[name].write_text(text)
    runs = [(command, name, tree.resolve()) for command in args.commands for name in MALFORMED
            for tree in args.trees]
    walls: dict[tuple[str, str, Path], list[float]] = {run: [] for run in runs}
    cpus: dict[tuple[str, str, Path], list[float]] = {run: [] for run in runs}
    statuses: dict[tuple[str, str, Path], set[int]] = {run: set() for run in runs}
    load_before = os.getloadavg()
    for _ in range(args.repeats):
        for command, name, tree in runs:
            environment = {**os.environ, "PYTHONPATH": str(tree)}
            words = {"SPEC": str(paths[name]), "HOME": str(folder / "home")}
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "gdbench",
                                   *(words.get(word, word) for word in COMMANDS[command])],
                                  capture_output=True, env=environment)
            walls[command, name, tree].append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus[command, name, tree].append(after.ru_utime + after.ru_stime
                                             - before.ru_utime - before.ru_stime)
            statuses[command, name, tree].add(done.returncode)
    load_after = os.getloadavg()
    print(f"`gdbench {'`, `'.join(args.commands)}` on a malformed spec, {args.repeats} runs "
          "each, medians")
    print()
    print("| command | malformed spec | tree | wall s | CPU s | each run's wall s | exit status |")
    print("|---|---|---|---:|---:|---|---|")
    for run in runs:
        each = ", ".join(f"{wall:.2f}" for wall in walls[run])
        print(f"| {run[0]} | {run[1]} | {run[2]} | **{statistics.median(walls[run]):.2f}** | "
              f"{statistics.median(cpus[run]):.2f} | {each} | "
              f"{', '.join(map(str, sorted(statuses[run])))} |")
    print()
    print_machine(load_before, load_after)

if __name__ == "__main__":
    main()
