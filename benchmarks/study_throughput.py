"""Study-level trials per second on a toy task: what ``gdbench run`` gives, tracking on and off.

The study is the spec a user writes, with no performance setting: the
lectures' sigmoid neuron (its default 1000 epochs a trial), GD with η
searched, the sampler named or left to its default, on the default embedded
storage (``optuna.db`` and ``mlflow.db``, SQLite, in a fresh home folder per
study). ``trials_per_batch`` is the spec's default for the sampler (printed
with the table). The rate is the marginal one, (N2 − N1) / (t2 − t1),
between a study of N1 and one of N2 trials (wall time of ``run_study``,
quiet): what a study costs once started (imports, stores, first compilation,
report) cancels out.

Arms, each a pair of studies per round:

- ``random, tracked``: ``sampler = "random"``, MLflow (SQLite) and TensorBoard
  on, as by default;
- ``random, untracked``: ``tracking = {mlflow = false, tensorboard = false}``;
- ``tpe, tracked`` and ``tpe, untracked``: no ``sampler`` key (TPE, Optuna's
  defaults). The time spent asking (``asking.ask`` and the trials'
  suggestions) is reported per trial for both studies, since TPE's grows with
  the trials already told.

The bare-MLflow floor is measured in the same rounds on a fresh SQLite store
of its own: one run created, one ``log_batch`` of 2 parameters and 20 metric
points, terminated; runs per second. The tracked rate is reported against it.

Everything runs in one process, after one warm-up study per arm; the arms
rotate between rounds; the table gives medians over rounds.

    python benchmarks/study_throughput.py                  # the recorded table
    python benchmarks/study_throughput.py --quick          # a smoke run
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import optuna  # noqa: E402
from _machine import cpu_model  # noqa: E402  (benchmarks/_machine.py)

from gdbench.study import load_spec, run_study  # noqa: E402
from gdbench.study.trials import asking as study_asking  # noqa: E402
from gdbench.study.trials import loop as study_loop  # noqa: E402

SPEC = """
[[study]]
name = "throughput"
task = "sigmoid_neuron"
optimizer = "gd"
{sampler}
{tracking}
"""
TRACKING_OFF = "tracking = {mlflow = false, tensorboard = false}"
SAMPLERS = {"random": 'sampler = "random"', "tpe": ""}


class AskClock:
    """Times the trial loop's asking: the claim's ``asking.ask`` and each trial's suggestions."""

    def __init__(self) -> None:
        self.seconds = 0.0
        for owner, name in ((study_asking, "ask"), (study_loop.TrialLoop, "setup")):
            self._wrap(owner, name)

    def _wrap(self, owner: Any, name: str) -> None:
        original = getattr(owner, name)
        clock = self

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                clock.seconds += time.perf_counter() - start

        setattr(owner, name, timed)


def run_one(spec_path: Path, trials: int, clock: AskClock) -> tuple[float, float]:
    """One study of ``trials`` in a fresh home: (wall seconds, seconds spent asking)."""
    spec = load_spec(spec_path)
    home = Path(tempfile.mkdtemp(prefix="gdbench-throughput-"))
    clock.seconds = 0.0
    try:
        start = time.perf_counter()
        study = run_study(spec, home=home, trials=trials, quiet=True)
        wall = time.perf_counter() - start
        finished = sum(t.state.is_finished() for t in study.get_trials(deepcopy=False))
        if finished != trials:
            raise RuntimeError(f"{spec_path.stem}: {finished} trials finished, not {trials}")
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return wall, clock.seconds


def bare_mlflow_rate(runs: int) -> float:
    """Runs per second: create, one log_batch of 2 params and 20 metric points, terminate."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    home = Path(tempfile.mkdtemp(prefix="gdbench-bare-mlflow-"))
    try:
        client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
        experiment = client.create_experiment("bare", artifact_location=(home / "a").as_uri())
        start = time.perf_counter()
        for index in range(runs):
            run = client.create_run(experiment, run_name=f"run-{index}")
            now = int(time.time() * 1000)
            client.log_batch(run.info.run_id,
                             params=[Param("learning_rate", "0.1"), Param("optimizer", "gd")],
                             metrics=[Metric(key, 0.5, now, step) for key in ("loss", "lr")
                                      for step in range(10)])
            client.set_terminated(run.info.run_id)
        return runs / (time.perf_counter() - start)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n1", type=int, default=100)
    parser.add_argument("--n2", type=int, default=1100)
    parser.add_argument("--bare-runs", type=int, default=300)
    parser.add_argument("--arms", nargs="+", default=["random, tracked", "random, untracked",
                                                       "tpe, tracked", "tpe, untracked"])
    parser.add_argument("--quick", action="store_true", help="one round, 50 and 250 trials")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.n1, args.n2, args.bare_runs = 1, 50, 250, 100

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("gdbench").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    folder = Path(tempfile.mkdtemp(prefix="gdbench-throughput-specs-"))
    specs = {}
    for arm in args.arms:
        sampler, tracking = arm.split(", ")
        specs[arm] = folder / f"{sampler}-{tracking}.toml"
        specs[arm].write_text(SPEC.format(
            sampler=SAMPLERS[sampler], tracking=TRACKING_OFF if tracking == "untracked" else ""))
    defaults = {arm: load_spec(path) for arm, path in specs.items()}
    args.settings = "; ".join(f"{arm}: {spec.epochs or spec.task.build().default_epochs} "
                              f"epochs, trials_per_batch = {spec.trials_per_batch}"
                              for arm, spec in defaults.items())
    clock = AskClock()
    load_before = os.getloadavg()
    for arm in args.arms:
        run_one(specs[arm], args.n1, clock)
    rounds: list[dict[str, Any]] = []
    for index in range(args.rounds):
        order = args.arms[index % len(args.arms):] + args.arms[:index % len(args.arms)]
        result: dict[str, Any] = {"floor": bare_mlflow_rate(args.bare_runs)}
        for arm in order:
            t1, ask1 = run_one(specs[arm], args.n1, clock)
            t2, ask2 = run_one(specs[arm], args.n2, clock)
            result[arm] = {"t1": t1, "t2": t2, "rate": (args.n2 - args.n1) / (t2 - t1),
                           "ask1": ask1 / args.n1, "ask2": ask2 / args.n2,
                           "ask_marginal": (ask2 - ask1) / (args.n2 - args.n1)}
        result["load"] = os.getloadavg()[0]
        rounds.append(result)
        print(f"round {index + 1}/{args.rounds}: floor {result['floor']:.0f} runs/s; "
              + "; ".join(f"{arm} {result[arm]['rate']:.0f}/s" for arm in order)
              + f"; load {result['load']:.2f}", file=sys.stderr)
    load_after = os.getloadavg()
    shutil.rmtree(folder, ignore_errors=True)
    print(report(rounds, args, load_before, load_after))


def report(rounds: list[dict[str, Any]], args: argparse.Namespace,
           load_before: tuple[float, ...], load_after: tuple[float, ...]) -> str:
    def median(arm: str, key: str) -> float:
        return statistics.median(result[arm][key] for result in rounds)

    floor = statistics.median(result["floor"] for result in rounds)
    lines = [
        f"sigmoid_neuron, GD (η searched), the spec's defaults ({args.settings}), "
        f"embedded SQLite storage; N1 = {args.n1}, N2 = {args.n2}; {args.rounds} rounds, medians",
        "",
        "| arm | t(N1) s | t(N2) s | marginal trials/s (each round) | × bare-MLflow floor "
        "| asking, ms/trial at N1 | at N2 | marginal |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for arm in args.arms:
        each = ", ".join(f"{result[arm]['rate']:.0f}" for result in rounds)
        ratios = [result[arm]["rate"] / result["floor"] for result in rounds]
        against = f"{statistics.median(ratios):.2f}" if "untracked" not in arm else ""
        lines.append(
            f"| {arm} | {median(arm, 't1'):.1f} | {median(arm, 't2'):.1f} | "
            f"**{median(arm, 'rate'):.0f}** ({each}) | {against} | "
            f"{1e3 * median(arm, 'ask1'):.1f} | {1e3 * median(arm, 'ask2'):.1f} | "
            f"{1e3 * median(arm, 'ask_marginal'):.1f} |")
    each = ", ".join(f"{result['floor']:.0f}" for result in rounds)
    loads = ", ".join(f"{result['load']:.2f}" for result in rounds)
    lines += [
        "",
        f"- bare-MLflow floor (create a run, one log_batch of 2 params and 20 metric points, "
        f"terminate; fresh SQLite store): **{floor:.0f} runs/s** ({each})",
        f"- Machine: {cpu_model()}, {os.cpu_count()} cores; Python {platform.python_version()}, "
        f"Optuna {optuna.__version__}",
        f"- load average (1, 5, 15 min): before {tuple(round(x, 2) for x in load_before)}, "
        f"after {tuple(round(x, 2) for x in load_after)}; 1 min after each round: {loads}",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
