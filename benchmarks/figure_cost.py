"""What each of a study report's figures costs to write: process CPU seconds of ``savefig``.

The report of a study already run (``benchmarks/report_toy.toml`` by default, run
first in a fresh home unless ``--home`` names one) is written once per tree, in one
process, every figure's ``savefig`` replaced by a copy of the figure (pickled, with
the rcParams it is saved under): what the report's figure workers are handed. Then
each tree's figures are written again, ``--repeats`` times, trees alternating and
the order flipping each repeat, each figure's ``savefig`` timed in process CPU
seconds (PNG to memory, at the report's DPI). A figure's kind is its file name
without the optimizer it belongs to; medians over the repeats, summed over the
figures of a kind. Each tree's figures are written as its workers write them
(``gdbench._figure_pool.share_mathtext`` where the tree has it).

    python benchmarks/figure_cost.py --baseline /work/main --repeats 5
    python benchmarks/figure_cost.py --home HOME --study NAME
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pickle
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "benchmarks" / "report_toy.toml"


def _environment(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree), "TF_CPP_MIN_LOG_LEVEL": "2"}


def capture(home: Path, study: str, folder: Path) -> None:
    """In the child: write ``study``'s report in this process, each figure pickled into
    ``folder`` instead of saved."""
    import matplotlib

    from gdbench import _figure_pool
    from gdbench.cli import main

    def keep(figure, target, quiet, savefig):
        # The report writes at ``.<writer>.<name>`` (``written_whole``).
        name = Path(target).name.split(".", 2)[-1].removesuffix(".png")
        rc = {key: value for key, value in matplotlib.rcParams.items() if key != "backend"}
        (folder / f"{name}.pkl").write_bytes(pickle.dumps((figure, savefig, rc)))
        Path(target).write_bytes(b"")

    _figure_pool.default_workers = lambda: 0
    _figure_pool._savefig = keep
    with tempfile.TemporaryDirectory() as out:
        main(["report", study, "--home", str(home), "--out", out])


def write(folder: Path) -> None:
    """In the child: each pickled figure of ``folder`` saved; its CPU seconds (JSON)."""
    import matplotlib

    from gdbench import _figure_pool

    matplotlib.use("Agg")
    # As the report's workers write them (a tree without it: as its workers do).
    getattr(_figure_pool, "share_mathtext", lambda: None)()
    seconds = {}
    for path in sorted(folder.glob("*.pkl")):
        figure, savefig, rc = pickle.loads(path.read_bytes())
        with matplotlib.rc_context(rc):
            started = time.process_time()
            figure.savefig(io.BytesIO(), **savefig)
            seconds[path.stem] = time.process_time() - started
    print(json.dumps(seconds))


def kind_of(name: str) -> str:
    """A figure's kind: its name without the optimizer (or group) after its kind."""
    return re.sub(r"_(gd|momentum|nesterov|adagrad|rmsprop|adadelta|adam|adamax|nadam|"
                  r"amsgrad|adamw|maxprop|rprop)(?=_|$)", "", name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--baseline", type=Path, help="another checkout to time alongside")
    parser.add_argument("--home", type=Path, help="a home whose study is reported (default: "
                        "benchmarks/report_toy.toml run in a fresh one)")
    parser.add_argument("--study", default="report_toy")
    parser.add_argument("--capture", nargs=3, type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--write", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.capture is not None:
        capture(args.capture[0], str(args.capture[1]), args.capture[2])
        return
    if args.write is not None:
        write(args.write)
        return
    trees = {"this tree": ROOT}
    if args.baseline is not None:
        trees["baseline"] = args.baseline.resolve()
    with tempfile.TemporaryDirectory(prefix="figure_cost_") as scratch:
        home = args.home
        if home is None:
            home = Path(scratch) / "home"
            subprocess.run([sys.executable, "-m", "gdbench", "run", str(SPEC), "--home",
                            str(home), "--quiet"], check=True, env=_environment(ROOT), cwd=ROOT,
                           stdout=subprocess.DEVNULL)
        folders = {}
        for name, tree in trees.items():
            folders[name] = Path(scratch) / name.replace(" ", "_")
            folders[name].mkdir()
            subprocess.run([sys.executable, __file__, "--capture", str(home), args.study,
                            str(folders[name])], check=True, env=_environment(tree), cwd=tree,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        rows: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
        for repeat in range(args.repeats):
            for name in (list(trees) if repeat % 2 == 0 else list(reversed(trees))):
                done = subprocess.run([sys.executable, __file__, "--write", str(folders[name])],
                                      check=True, env=_environment(trees[name]), cwd=trees[name],
                                      capture_output=True, text=True)
                rows[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(f"{name:<10} repeat {repeat + 1}: {sum(rows[name][-1].values()):.2f} CPU s"
                      f"  (load average {os.getloadavg()[0]:.1f})", flush=True)
    print(f"\n{os.cpu_count()} CPUs; CPU seconds of savefig, median over {args.repeats} "
          "repeats, summed over a kind's figures (figures)\n")
    medians = {name: {figure: statistics.median(row[figure] for row in tree_rows)
                      for figure in tree_rows[0]} for name, tree_rows in rows.items()}
    kinds = sorted({kind_of(figure) for figures in medians.values() for figure in figures})
    names = list(trees)
    print("| kind | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for kind in kinds + ["all"]:
        cells = []
        for name in names:
            chosen = [value for figure, value in medians[name].items()
                      if kind == "all" or kind_of(figure) == kind]
            cells.append(f"{sum(chosen):.2f} ({len(chosen)})")
        print(f"| {kind} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
