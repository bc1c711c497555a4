"""What tracking a study in MLflow and TensorBoard costs its trials.

A ``digits_mlp`` study (Adam, η and β1 searched by a seeded random sampler, no
pruner, batch 64, a few epochs per trial) runs with tracking ON (the
defaults: MLflow in a SQLite store under the study's home, TensorBoard) and
OFF (``tracking = {mlflow = false, tensorboard = false}``). Both arms train the
same trials: the benchmark checks that their hyperparameters agree.

Two numbers are measured:

1. The overhead on trial time: the time the study's trial loop takes ON
   against OFF (the runner's ``_Loop.run``: asking, training, telling and
   tracking every trial), and the whole ``run_study`` call beside it (which
   adds the per-study costs: a fresh MLflow store, the parent run, the report
   and its upload). Arms run in pairs, ON and OFF in alternating order, each
   in a fresh home folder, all in one process after one warm-up study of each
   arm, so that importing TensorFlow and MLflow is left out and the load of a
   shared machine hits both alike. The overhead is the median of the pairs'
   ON/OFF ratios.
2. The fixed cost of one tracked trial: every call the trial loop makes into
   the tracking layer (``start_trial``, each epoch's ``log_epoch``, the
   figures the runner draws for a trial ranking among the best three, and
   ``finish``) is timed by a thin wrapper and summed per trial; median and
   p90 over every ON trial. MLflow's writer thread works beside training; its
   busy time per trial is reported apart (it is off the trial's path but
   competes for the cores).

    python benchmarks/tracking_overhead.py                # the recorded table
    python benchmarks/tracking_overhead.py --quick        # a smoke run
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import matplotlib  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402
import tensorboard  # noqa: E402
import tensorflow as tf  # noqa: E402

from gdbench.study import load_spec, run_study  # noqa: E402
from gdbench.study import runner  # noqa: E402
from gdbench.tracking import StudyTracker, TrialTracker  # noqa: E402
from gdbench.tracking._mlflow import MlflowStudy  # noqa: E402

SPEC = """\
name = "tracking_overhead"
task = "digits_mlp"
optimizer = "adam"
epochs = {epochs}
batch_size = 64
trials = {trials}
seed = 0
tune = ["learning_rate", "beta_1"]
sampler = {{name = "random", seed = 7}}
pruner = "none"
{tracking}
"""
TRACKING_OFF = "tracking = {mlflow = false, tensorboard = false}"

#: The parts of a trial's tracking work, in the order of the table.
PARTS = ("start_trial", "log_epoch", "figures", "finish")


class TrackingClock:
    """Times the trial loop's calls into the tracking layer, per trial and per study.

    Only the outermost timed call counts, so a figure's ``log_figure`` inside
    the runner's ``log_figures`` is not counted twice.
    """

    def __init__(self) -> None:
        self.per_trial: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self.per_study: dict[str, float] = defaultdict(float)
        self.per_study_cpu: dict[str, float] = defaultdict(float)
        self.writer_busy = 0.0
        self._depth = 0
        self._current_trial = -1

    def reset(self) -> None:
        self.per_trial.clear()
        self.per_study.clear()
        self.per_study_cpu.clear()
        self.writer_busy = 0.0
        self._current_trial = -1

    def install(self) -> None:
        """Wrap the tracking calls of the runner (class attributes, for every study after)."""
        trial_of_tracker = lambda args: args[0].number  # noqa: E731
        self._wrap(StudyTracker, "start_trial", "start_trial", lambda args: args[1])
        self._wrap(TrialTracker, "log_epoch", "log_epoch", trial_of_tracker)
        self._wrap(TrialTracker, "log_histograms", "log_epoch", trial_of_tracker)
        self._wrap(TrialTracker, "finish", "finish", trial_of_tracker)
        self._wrap(TrialTracker, "__exit__", "finish", trial_of_tracker)
        # Drawn only when a tracker keeps them: the ranking query, the plot, the upload.
        self._wrap(runner._Loop, "figure_worthy", "figures", lambda args: self._current_trial)
        self._wrap(runner._Loop, "log_figures", "figures", lambda args: args[2])
        self._wrap(runner, "_start_tracker", "study start", None)
        self._wrap(StudyTracker, "log_study_artifacts", "study end", None)
        self._wrap(StudyTracker, "finish", "study end", None)
        self._wrap(runner._Loop, "run", "trial loop", None)
        original_submit = MlflowStudy.submit
        clock = self

        def submit(study: MlflowStudy, write: Callable[..., Any], *args: Any,
                   **kwargs: Any) -> None:
            @functools.wraps(write)
            def timed_write(*write_args: Any, **write_kwargs: Any) -> Any:
                start = time.perf_counter()
                try:
                    return write(*write_args, **write_kwargs)
                finally:
                    # One writer thread per study: no two writes add at once.
                    clock.writer_busy += time.perf_counter() - start

            original_submit(study, timed_write, *args, **kwargs)

        MlflowStudy.submit = submit  # type: ignore[method-assign]

    def _wrap(self, owner: Any, name: str, part: str,
              trial_of: Callable[[tuple[Any, ...]], int] | None) -> None:
        original = getattr(owner, name)
        clock = self

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if trial_of is None:
                return clock._timed_study_part(part, original, args, kwargs)
            if clock._depth:
                return original(*args, **kwargs)
            clock._depth += 1
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                clock._depth -= 1
                number = trial_of(args)
                if part == "start_trial":
                    clock._current_trial = number
                clock.per_trial[number][part] += elapsed

        setattr(owner, name, timed)

    def _timed_study_part(self, part: str, call: Callable[..., Any], args: tuple[Any, ...],
                          kwargs: dict[str, Any]) -> Any:
        """A study-level step (the trial loop, the tracker's start and end): wall and CPU time."""
        start, start_cpu = time.perf_counter(), time.process_time()
        try:
            return call(*args, **kwargs)
        finally:
            self.per_study[part] += time.perf_counter() - start
            self.per_study_cpu[part] += time.process_time() - start_cpu


def run_arm(spec_path: Path, clock: TrackingClock) -> dict[str, Any]:
    """One study in a fresh home folder: its times, its trials, its tracking costs."""
    spec = load_spec(spec_path)
    home = Path(tempfile.mkdtemp(prefix="gdbench-tracking-"))
    clock.reset()
    try:
        start = time.perf_counter()
        study = run_study(spec, home=home, quiet=True)
        wall = time.perf_counter() - start
    finally:
        shutil.rmtree(home, ignore_errors=True)
    trials = study.get_trials(deepcopy=False)
    return {
        "wall": wall,
        "loop": clock.per_study["trial loop"],
        "loop_cpu": clock.per_study_cpu["trial loop"],
        "study_start": clock.per_study["study start"],
        "study_end": clock.per_study["study end"],
        "writer_busy": clock.writer_busy,
        "per_trial": {number: dict(parts) for number, parts in clock.per_trial.items()},
        "params": [trial.params for trial in trials],
        "values": [trial.value for trial in trials],
        "states": [trial.state.name for trial in trials],
    }


def percentile(values: list[float], fraction: float) -> float:
    return float(np.percentile(values, 100 * fraction))


def machine() -> list[str]:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(line.split(":", 1)[1].strip() for line in cpuinfo
                         if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return [
        f"- CPU: {model}, {os.cpu_count()} cores (nproc); no GPU used",
        f"- Python {platform.python_version()}, TensorFlow {tf.__version__}, "
        f"Keras {keras.__version__}, Optuna {optuna.__version__}, MLflow {mlflow.__version__}, "
        f"TensorBoard {tensorboard.__version__}, matplotlib {matplotlib.__version__}, "
        f"numpy {np.__version__}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5, help="ON/OFF pairs timed")
    parser.add_argument("--trials", type=int, default=10, help="trials per study")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per trial")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 pairs of 4 trials")
    args = parser.parse_args()
    if args.quick:
        args.pairs, args.trials, args.epochs = 2, 4, 2

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="mlflow")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    folder = Path(tempfile.mkdtemp(prefix="gdbench-tracking-specs-"))
    specs = {}
    for arm, tracking in (("ON", ""), ("OFF", TRACKING_OFF)):
        specs[arm] = folder / f"{arm.lower()}.toml"
        specs[arm].write_text(SPEC.format(epochs=args.epochs, trials=args.trials,
                                          tracking=tracking))
    clock = TrackingClock()
    clock.install()

    load_before = os.getloadavg()
    for arm in ("ON", "OFF"):  # warm-up: first imports, first traces, first store schema
        run_arm(specs[arm], clock)
    pairs = []
    for index in range(args.pairs):
        order = ("ON", "OFF") if index % 2 == 0 else ("OFF", "ON")
        pair = {arm: run_arm(specs[arm], clock) for arm in order}
        if pair["ON"]["params"] != pair["OFF"]["params"]:
            raise RuntimeError(f"pair {index}: the two arms trained different trials")
        pair["load"] = os.getloadavg()[0]
        pairs.append(pair)
        print(f"pair {index + 1}/{args.pairs} ({order[0]} first): loop ON "
              f"{pair['ON']['loop']:.2f} s, OFF {pair['OFF']['loop']:.2f} s; "
              f"load {pair['load']:.2f}", file=sys.stderr)
    load_after = os.getloadavg()
    shutil.rmtree(folder, ignore_errors=True)

    def median_of(key: str, arm: str) -> float:
        return statistics.median(pair[arm][key] for pair in pairs)

    loop_ratios = [pair["ON"]["loop"] / pair["OFF"]["loop"] for pair in pairs]
    cpu_ratios = [pair["ON"]["loop_cpu"] / pair["OFF"]["loop_cpu"] for pair in pairs]
    wall_ratios = [pair["ON"]["wall"] / pair["OFF"]["wall"] for pair in pairs]
    loop_gaps = [(pair["ON"]["loop"] - pair["OFF"]["loop"]) / args.trials for pair in pairs]
    trial_costs = [parts for pair in pairs for parts in pair["ON"]["per_trial"].values()]
    totals = [1e3 * sum(parts.values()) for parts in trial_costs]
    off_totals = [1e3 * sum(parts.values()) for pair in pairs
                  for parts in pair["OFF"]["per_trial"].values()]
    figured = sum(1 for parts in trial_costs if parts.get("figures", 0) > 0.01)
    value_gap = max(abs(a - b) for pair in pairs
                    for a, b in zip(pair["ON"]["values"], pair["OFF"]["values"])
                    if a is not None and b is not None)

    print(f"digits_mlp, Adam, {args.trials} trials × {args.epochs} epochs, batch 64, random "
          f"sampler (seed 7), no pruner; {args.pairs} ON/OFF pairs, alternating order, after "
          f"one warm-up study of each arm\n")
    print("| measure | tracking ON | tracking OFF | ON / OFF, median of pairs | target |")
    print("|---|---:|---:|---:|---|")
    print(f"| trial loop, median (s) | {median_of('loop', 'ON'):.2f} | "
          f"{median_of('loop', 'OFF'):.2f} | {statistics.median(loop_ratios):.3f} "
          f"(overhead {100 * (statistics.median(loop_ratios) - 1):+.1f} %; pairs "
          f"{', '.join(f'{100 * (r - 1):+.1f}' for r in loop_ratios)} %) | ≤ +3 % |")
    print(f"| trial loop, process CPU time, median (s) | {median_of('loop_cpu', 'ON'):.2f} | "
          f"{median_of('loop_cpu', 'OFF'):.2f} | {statistics.median(cpu_ratios):.3f} "
          f"(overhead {100 * (statistics.median(cpu_ratios) - 1):+.1f} %; pairs "
          f"{', '.join(f'{100 * (r - 1):+.1f}' for r in cpu_ratios)} %) | |")
    print(f"| whole run_study, median (s) | {median_of('wall', 'ON'):.2f} | "
          f"{median_of('wall', 'OFF'):.2f} | {statistics.median(wall_ratios):.3f} "
          f"(overhead {100 * (statistics.median(wall_ratios) - 1):+.1f} %) | |")
    print(f"| trial time, median (s/trial) | {median_of('loop', 'ON') / args.trials:.3f} | "
          f"{median_of('loop', 'OFF') / args.trials:.3f} | | |")
    print()
    print("Per tracked trial (ON; milliseconds; median and p90 over "
          f"{len(trial_costs)} trials):\n")
    print("| tracking work of one trial | median (ms) | p90 (ms) | target |")
    print("|---|---:|---:|---|")
    print(f"| all calls of the trial loop into tracking | {statistics.median(totals):.1f} | "
          f"{percentile(totals, 0.9):.1f} | ≤ 50 ms |")
    for part in PARTS:
        values = [1e3 * parts.get(part, 0.0) for parts in trial_costs]
        print(f"| of which {part} | {statistics.median(values):.1f} | "
              f"{percentile(values, 0.9):.1f} | |")
    figure_times = [1e3 * parts["figures"] for parts in trial_costs
                    if parts.get("figures", 0) > 0.01]
    if figure_times:
        print(f"| figures, of the {figured} trials that drew them | "
              f"{statistics.median(figure_times):.1f} | {percentile(figure_times, 0.9):.1f} | |")
    print(f"| (loop ON − loop OFF) / trials, median of pairs | "
          f"{1e3 * statistics.median(loop_gaps):.1f} | | |")
    writer = [1e3 * pair["ON"]["writer_busy"] / args.trials for pair in pairs]
    print(f"| MLflow writer thread busy, per trial (beside training) | "
          f"{statistics.median(writer):.1f} | | |")
    print()
    print("Per study (ON; seconds; median of pairs): tracker start (fresh SQLite store, "
          f"experiment, parent run, HParams config) {median_of('study_start', 'ON'):.2f}; "
          f"report upload and finish {median_of('study_end', 'ON'):.2f}.")
    print(f"Tracker calls with tracking OFF: median {statistics.median(off_totals):.2f} ms "
          "per trial.")
    print(f"Both arms trained the same hyperparameters; objective values differ by at most "
          f"{value_gap:.1e}; trial states ON: {sorted(set(pairs[0]['ON']['states']))}.")
    print("\n".join(machine()))
    pair_loads = ", ".join(f"{pair['load']:.2f}" for pair in pairs)
    print(f"- load average (1, 5, 15 min): before {tuple(round(x, 2) for x in load_before)}, "
          f"after {tuple(round(x, 2) for x in load_after)}; 1 min after each pair: {pair_loads}")


if __name__ == "__main__":
    main()
