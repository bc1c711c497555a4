"""How long a study's report takes: after its last trial in ``gdbench run``, and ``gdbench report``.

The study is ``benchmarks/report_toy.toml``: 60 trials of four optimizers
(GD, momentum, Adagrad, Adam) on the sigmoid neuron, 1000 epochs, η decayed
by a cosine schedule, tracked as by default (MLflow and TensorBoard in the
home). Its report draws Optuna's plots and, for each optimizer, the loss
curves, paths and effective learning rates of its three best trials (twelve
trials trained again, 1000 steps each), then the comparison of the four best.

Each repeat, in a fresh home:

1. The study run as ``gdbench run SPEC --home H --quiet`` runs it
   (``run_study``, in a process of its own), a callback noting the wall and
   process CPU time as each trial is told; the figures are the wall and CPU
   seconds from the last trial to ``run_study``'s return: the report (Optuna's
   plots, the trials trained again, the figures, attaching them to the
   trials' runs) and the tracking's last writes. Its CPU time counts the
   processes that write the figures (``gdbench/_figure_pool.py``) with the
   study's own; ``own CPU`` is the study's process alone.
2. ``gdbench report report_toy --home H``: its wall time, and its CPU time
   (the child's user + system, its figure workers' included), start-up and
   imports included.

With ``--baseline DIR`` (another checkout, e.g. the main branch), its
``gdbench`` runs the same two steps in a home of its own, alternating with
this tree's and the order flipping each repeat; medians are quoted.

    python benchmarks/report_time.py                      # 3 repeats
    python benchmarks/report_time.py --baseline /work/main --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "benchmarks" / "report_toy.toml"
STUDY = "report_toy"


def _environment(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree), "TF_CPP_MIN_LOG_LEVEL": "2"}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_child(home: Path) -> None:
    """In the child process: run the study; print the seconds after its last trial (JSON)."""
    from gdbench.study import load_spec, run_study

    last: dict[str, float] = {}

    def told(study: object, trial: object) -> None:
        last.update(wall=time.monotonic(), cpu=time.process_time(), children=_children_cpu())

    run_study(load_spec(SPEC), home=home, quiet=True, callbacks=[told])
    own = time.process_time() - last["cpu"]
    print(json.dumps({"after last trial s": time.monotonic() - last["wall"],
                      "after last trial CPU s": own + _children_cpu() - last["children"],
                      "after last trial own CPU s": own}))


def one_repeat(tree: Path, home: Path) -> dict[str, float]:
    """Run the study, then report it; the seconds each phase took."""
    done = subprocess.run([sys.executable, __file__, "--child", str(home)], check=True,
                          env=_environment(tree), cwd=tree, capture_output=True, text=True)
    after_trials = json.loads(done.stdout.strip().splitlines()[-1])
    cpu = _children_cpu()
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "gdbench", "report", STUDY, "--home", str(home)],
                   check=True, env=_environment(tree), cwd=tree,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return {**after_trials,
            "report wall s": time.monotonic() - started,
            "report CPU s": _children_cpu() - cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="another checkout to time alongside")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        run_child(args.child)
        return
    trees = {"this tree": ROOT}
    if args.baseline is not None:
        trees["baseline"] = args.baseline.resolve()
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    with tempfile.TemporaryDirectory(prefix="report_time_") as scratch:
        for repeat in range(args.repeats):
            order = list(trees) if repeat % 2 == 0 else list(reversed(trees))
            for name in order:
                home = Path(scratch) / f"{name.replace(' ', '_')}_{repeat}"
                row = one_repeat(trees[name], home)
                rows[name].append(row)
                print(f"{name:<10} " + "  ".join(f"{key} {value:.1f}" for key, value in row.items())
                      + f"  (load average {os.getloadavg()[0]:.1f})", flush=True)
    print(f"\n{os.cpu_count()} CPUs; median over {args.repeats} repeats\n")
    keys = list(next(iter(rows.values()))[0])
    print("| tree | " + " | ".join(keys) + " |")
    print("|---|" + "---:|" * len(keys))
    for name, tree_rows in rows.items():
        print(f"| {name} ({trees[name]}) | "
              + " | ".join(f"{statistics.median(row[key] for row in tree_rows):.1f}"
                           for key in keys) + " |")


if __name__ == "__main__":
    main()
