"""What tracking a study in MLflow and TensorBoard costs its trials.

A ``digits_mlp`` study (Adam, η and β1 searched by a seeded random sampler, no
pruner, batch 64, a few epochs per trial) runs in three arms:

- ``ON``: tracking as by default, MLflow in a SQLite store under the study's
  home and TensorBoard; once the trials are done, the study also draws
  a loss-curve figure for each of the best three trials, and logs it;
- ``ON, no per-trial figures``: the same, with those figures left out, to
  tell the tracking layer's cost from the drawing's;
- ``OFF``: ``tracking = {mlflow = false, tensorboard = false}``.

Every arm trains the same trials: the benchmark checks that their
hyperparameters agree.

Two numbers are measured:

1. The overhead on trial time: the time the study's trial loop takes (the
   trial loop's ``TrialLoop.run``: asking, training, telling and tracking every trial)
   against OFF's, in wall and in process CPU time, and the whole
   ``run_study`` call beside it (which adds the per-study costs: a fresh
   MLflow store, the parent run, the report and its upload). The arms run in
   rounds, in rotating order, each study in a fresh home folder, all in one
   process after one warm-up study ON and one OFF, so that importing TensorFlow
   and MLflow is left out and the load of a shared machine hits the arms
   alike. The overhead is the median over rounds of the ratio to OFF.
2. The fixed cost of one tracked trial: every call the trial loop makes into
   the tracking layer (``start_trial``, each epoch's ``log_epoch``,
   ``finish``) is timed by a thin wrapper and summed per trial; the figures,
   drawn once per study at the end of the trial loop, are shared out over its
   trials; median and p90 over every trial. MLflow's writer
   thread works beside training; its busy time per trial is reported apart
   (off the trial's path, but it competes for the cores).

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
from concurrent.futures import Future
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
from _machine import cpu_model  # noqa: E402  (benchmarks/_machine.py)

from gdbench.study import load_spec, run_study  # noqa: E402
from gdbench.study.report import figures as study_figures  # noqa: E402
from gdbench.study.trials import loop, session  # noqa: E402
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
PARTS = ("start_trial", "log_epoch", "finish")

#: The arms: tracking on as by default; on, without the runner's per-trial figures; off.
ON, ON_NO_FIGURES, OFF = "ON", "ON, no per-trial figures", "OFF"


class TrackingClock:
    """Times the trial loop's calls into the tracking layer, per trial and per study.

    Only the outermost timed call counts.
    """

    def __init__(self) -> None:
        self.per_trial: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self.per_study: dict[str, float] = defaultdict(float)
        self.per_study_cpu: dict[str, float] = defaultdict(float)
        self.writer_busy = 0.0
        self.writer_cpu = 0.0
        self._depth = 0

    def reset(self) -> None:
        self.per_trial.clear()
        self.per_study.clear()
        self.per_study_cpu.clear()
        self.writer_busy = 0.0
        self.writer_cpu = 0.0

    def install(self) -> None:
        """Wrap the tracking calls of the runner (class attributes, for every study after)."""
        trial_of_tracker = lambda args: args[0].number  # noqa: E731
        self._wrap(StudyTracker, "start_trial", "start_trial", lambda args: args[1])
        self._wrap(TrialTracker, "log_epoch", "log_epoch", trial_of_tracker)
        self._wrap(TrialTracker, "log_histograms", "log_epoch", trial_of_tracker)
        self._wrap(TrialTracker, "finish", "finish", trial_of_tracker)
        self._wrap(TrialTracker, "__exit__", "finish", trial_of_tracker)
        # Drawn only when a tracker keeps them, once the trials are done: the plots, the upload.
        self._wrap(study_figures, "write_figures", "figures", None)
        self._wrap(session, "start_tracker", "study start", None)
        self._wrap(StudyTracker, "log_study_artifacts", "study end", None)
        self._wrap(StudyTracker, "finish", "study end", None)
        self._wrap(loop.TrialLoop, "run", "trial loop", None)
        original_submit = MlflowStudy.submit
        clock = self

        def submit(study: MlflowStudy, write: Callable[..., Any], *args: Any,
                   **kwargs: Any) -> Future[Any]:
            @functools.wraps(write)
            def timed_write(*write_args: Any, **write_kwargs: Any) -> Any:
                start, start_cpu = time.perf_counter(), time.thread_time()
                try:
                    return write(*write_args, **write_kwargs)
                finally:
                    # One writer thread per study: no two writes add at once.
                    clock.writer_busy += time.perf_counter() - start
                    clock.writer_cpu += time.thread_time() - start_cpu

            return original_submit(study, timed_write, *args, **kwargs)

        MlflowStudy.submit = submit  # type: ignore[method-assign]

    def _wrap(self, owner: Any, name: str, part: str,
              trial_of: Callable[[tuple[Any, ...]], int] | None) -> None:
        """Time ``owner.name`` into ``part``: per study when ``trial_of`` is ``None``, else per
        trial, outermost calls only."""
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
                clock.per_trial[trial_of(args)][part] += elapsed

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


def run_arm(spec_path: Path, clock: TrackingClock, figures: bool) -> dict[str, Any]:
    """One study in a fresh home folder: its times, its trials, its tracking costs.

    Args:
        spec_path: the study's spec.
        clock: the installed clock.
        figures: whether the runner draws its per-trial figures (it does
            whenever a tracker is on); ``False`` shows tracking's cost
            without them.
    """
    spec = load_spec(spec_path)
    home = Path(tempfile.mkdtemp(prefix="gdbench-tracking-"))
    clock.reset()
    draw = study_figures.write_figures
    if not figures:
        study_figures.write_figures = lambda *args, **kwargs: []
    try:
        start = time.perf_counter()
        study = run_study(spec, home=home, quiet=True)
        wall = time.perf_counter() - start
        trials = study.get_trials(deepcopy=False)
    finally:
        study_figures.write_figures = draw
        shutil.rmtree(home, ignore_errors=True)
    return {
        "wall": wall,
        "loop": clock.per_study["trial loop"],
        "loop_cpu": clock.per_study_cpu["trial loop"],
        "study_start": clock.per_study["study start"],
        "study_end": clock.per_study["study end"],
        "figures": clock.per_study["figures"],
        "writer_busy": clock.writer_busy,
        "writer_cpu": clock.writer_cpu,
        "per_trial": {number: dict(parts) for number, parts in clock.per_trial.items()},
        "params": [trial.params for trial in trials],
        "values": [trial.value for trial in trials],
    }


def percentile(values: list[float], fraction: float) -> float:
    return float(np.percentile(values, 100 * fraction))


def machine() -> list[str]:
    model = cpu_model()
    return [
        f"- CPU: {model}, {os.cpu_count()} cores (nproc); no GPU used",
        f"- Python {platform.python_version()}, TensorFlow {tf.__version__}, "
        f"Keras {keras.__version__}, Optuna {optuna.__version__}, MLflow {mlflow.__version__}, "
        f"TensorBoard {tensorboard.__version__}, matplotlib {matplotlib.__version__}, "
        f"numpy {np.__version__}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=5,
                        help="rounds of the three arms timed")
    parser.add_argument("--trials", type=int, default=10, help="trials per study")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per trial")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 2 rounds of 4 trials of 2 epochs")
    args = parser.parse_args()
    if args.quick:
        args.repetitions, args.trials, args.epochs = 2, 4, 2

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="mlflow")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    folder = Path(tempfile.mkdtemp(prefix="gdbench-tracking-specs-"))
    spec_on, spec_off = folder / "on.toml", folder / "off.toml"
    spec_on.write_text(SPEC.format(epochs=args.epochs, trials=args.trials, tracking=""))
    spec_off.write_text(SPEC.format(epochs=args.epochs, trials=args.trials,
                                    tracking=TRACKING_OFF))
    arms = {ON: (spec_on, True), ON_NO_FIGURES: (spec_on, False), OFF: (spec_off, False)}
    clock = TrackingClock()
    clock.install()

    load_before = os.getloadavg()
    # Warm-up: first imports, first traces, the store's first schema; the arm
    # without figures runs the same code as ON, less some.
    for arm in (ON, OFF):
        run_arm(arms[arm][0], clock, arms[arm][1])
    rounds = []
    for index in range(args.repetitions):
        order = list(arms)[index % 3:] + list(arms)[:index % 3]
        results = {arm: run_arm(arms[arm][0], clock, arms[arm][1]) for arm in order}
        for arm in (ON, ON_NO_FIGURES):
            if results[arm]["params"] != results[OFF]["params"]:
                raise RuntimeError(f"round {index + 1}: {arm} and {OFF} trained other trials")
        results["load"] = os.getloadavg()[0]
        rounds.append(results)
        print(f"round {index + 1}/{args.repetitions} ({', '.join(order)}): trial loop "
              + ", ".join(f"{arm} {results[arm]['loop']:.2f} s" for arm in arms)
              + f"; load {results['load']:.2f}", file=sys.stderr)
    load_after = os.getloadavg()
    shutil.rmtree(folder, ignore_errors=True)
    print(report(rounds, args, load_before, load_after))


def report(rounds: list[dict[str, Any]], args: argparse.Namespace,
           load_before: tuple[float, float, float],
           load_after: tuple[float, float, float]) -> str:
    """The markdown tables and notes of the measurement."""
    def median_of(key: str, arm: str) -> float:
        return statistics.median(results[arm][key] for results in rounds)

    def overhead(key: str, arm: str) -> str:
        ratios = [results[arm][key] / results[OFF][key] for results in rounds]
        each = ", ".join(f"{100 * (ratio - 1):+.1f}" for ratio in ratios)
        return f"**{100 * (statistics.median(ratios) - 1):+.1f} %** ({each})"

    lines = [
        f"digits_mlp, Adam (η, β1 searched), {args.trials} trials × {args.epochs} epochs, "
        f"batch 64, random sampler (seed 7), no pruner; {args.repetitions} rounds of the three "
        f"arms in rotating order, each study in a fresh home folder, after one warm-up study "
        f"ON and one OFF",
        "",
        f"| measure (median of rounds) | {ON} | {ON_NO_FIGURES} | {OFF} |",
        "|---|---:|---:|---:|",
    ]
    for key, label, digits in (("loop", "trial loop, wall (s)", 2),
                               ("loop_cpu", "trial loop, process CPU (s)", 2),
                               ("wall", "whole run_study, wall (s)", 2)):
        lines.append(f"| {label} | " + " | ".join(
            f"{median_of(key, arm):.{digits}f}" for arm in (ON, ON_NO_FIGURES, OFF)) + " |")
    lines.append(f"| trial time, wall (s per trial) | " + " | ".join(
        f"{median_of('loop', arm) / args.trials:.3f}" for arm in (ON, ON_NO_FIGURES, OFF))
        + " |")
    for key, label in (("loop", "overhead on trial time, wall: median of rounds (each round)"),
                       ("loop_cpu", "overhead on trial time, process CPU"),
                       ("wall", "overhead on the whole run_study, wall")):
        lines.append(f"| {label} | {overhead(key, ON)} | {overhead(key, ON_NO_FIGURES)} | |")
    gaps = {arm: [1e3 * (results[arm]["loop"] - results[OFF]["loop"]) / args.trials
                  for results in rounds] for arm in (ON, ON_NO_FIGURES)}
    lines.append("| (trial loop − OFF's) / trials (ms per trial) | "
                 f"{statistics.median(gaps[ON]):.0f} | "
                 f"{statistics.median(gaps[ON_NO_FIGURES]):.0f} | |")
    lines += ["", "Target: overhead ≤ 3 % of trial time.", ""]

    costs = {arm: [parts for results in rounds for parts in results[arm]["per_trial"].values()]
             for arm in (ON, ON_NO_FIGURES, OFF)}

    def row(label: str, arm: str, measure: Callable[[dict[str, float]], float],
            only: Callable[[dict[str, float]], bool] = lambda parts: True) -> str:
        values = [1e3 * measure(parts) for parts in costs[arm] if only(parts)]
        if not values:
            return f"| {label} | 0 | | |"
        return (f"| {label} | {len(values)} | {statistics.median(values):.1f} | "
                f"{percentile(values, 0.9):.1f} |")

    def calls(parts: dict[str, float]) -> float:
        return sum(parts.get(part, 0.0) for part in PARTS)

    drawn = [1e3 * results[ON]["figures"] / args.trials for results in rounds]
    lines += [
        "Time the trial loop spends in tracking, per trial (milliseconds, over every trial of "
        "the timed rounds):",
        "",
        "| tracking work of one trial | trials | median (ms) | p90 (ms) |",
        "|---|---:|---:|---:|",
        row(f"{ON}: every call (start_trial, log_epoch, finish)", ON, calls),
        *[row(f"… {part}", ON, lambda parts, part=part: parts.get(part, 0.0)) for part in PARTS],
        f"| {ON}: the best trials' figures, drawn and logged once the trials are done, "
        f"per trial of the study | {args.trials} | {statistics.median(drawn):.1f} | |",
        f"| {ON}: every call and the figures' share | {args.trials} | "
        f"{1e3 * statistics.median(calls(p) for p in costs[ON]) + statistics.median(drawn):.1f} | |",
        row(f"{ON_NO_FIGURES}: every call", ON_NO_FIGURES, calls),
        row(f"{OFF}: every call (the tracker's argument checks)", OFF, calls),
        "",
        "Target: ≤ 50 ms per trial.",
        "",
    ]
    writer = [1e3 * results[ON]["writer_busy"] / args.trials for results in rounds]
    writer_cpu = [1e3 * results[ON]["writer_cpu"] / args.trials for results in rounds]
    value_gap = max(abs(a - b) for results in rounds for arm in (ON, ON_NO_FIGURES)
                    for a, b in zip(results[arm]["values"], results[OFF]["values"])
                    if a is not None and b is not None)
    loads = ", ".join(f"{results['load']:.2f}" for results in rounds)
    lines += [
        f"- MLflow writer thread, beside training ({ON}): busy {statistics.median(writer):.0f} "
        f"ms per trial, of which {statistics.median(writer_cpu):.0f} ms on its CPU clock",
        f"- per study ({ON}): tracker start (new SQLite store, experiment, parent run, HParams "
        f"config) {median_of('study_start', ON):.2f} s; report upload and finish "
        f"{median_of('study_end', ON):.2f} s",
        f"- the arms trained the same hyperparameters; objective values differ by at most "
        f"{value_gap:.1e}",
        *machine(),
        f"- load average (1, 5, 15 min): before {tuple(round(x, 2) for x in load_before)}, "
        f"after {tuple(round(x, 2) for x in load_after)}; 1 min after each round: {loads}",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
