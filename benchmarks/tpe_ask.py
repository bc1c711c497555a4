"""TPE's cost per trial asked, as a study grows: Optuna's ``TPESampler`` against gdbench's
``FittedTPESampler`` (the spec's ``tpe``), paired in one process.

A study holds N finished trials (two parameters, η log-scaled and one linear,
random values and objectives, a seventh of them pruned); a population batch
of K trials is then asked, as gdbench asks one: every trial of the batch
before any is told. The cost per trial is the process CPU time of asking the
batch and drawing its parameters, over K. Both samplers run with Optuna's
defaults (``constant_liar = True``, multivariate) and the same seed, on
copies of the same study; they alternate, their order flipping each repeat,
and the table gives medians. The draws are checked equal.

    python benchmarks/tpe_ask.py
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import time

import optuna
from _machine import cpu_model  # benchmarks/_machine.py
from optuna.distributions import FloatDistribution

from gdbench.study.plan.fitted_tpe import FittedTPESampler

RATE = FloatDistribution(1e-3, 10.0, log=True)
SHARE = FloatDistribution(0.0, 1.0)


def study_of(sampler: optuna.samplers.BaseSampler, finished: int) -> optuna.Study:
    study = optuna.create_study(sampler=sampler)
    draw = random.Random(0)
    trials = []
    for number in range(finished):
        state = {"state": optuna.trial.TrialState.PRUNED} if number % 7 == 3 else {}
        trials.append(optuna.trial.create_trial(
            params={"learning_rate": 10 ** draw.uniform(-3, 1), "share": draw.random()},
            distributions={"learning_rate": RATE, "share": SHARE}, value=draw.random(), **state))
    study.add_trials(trials)
    return study


def ask_batch(study: optuna.Study, count: int) -> tuple[float, list[tuple[float, float]]]:
    """(CPU seconds per trial, the draws) of ``count`` trials asked before any is told."""
    drawn = []
    start = time.process_time()
    for _ in range(count):
        trial = study.ask()
        drawn.append((trial.suggest_float("learning_rate", 1e-3, 10.0, log=True),
                      trial.suggest_float("share", 0.0, 1.0)))
    return (time.process_time() - start) / count, drawn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--finished", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    samplers = {"Optuna TPESampler": optuna.samplers.TPESampler,
                "gdbench FittedTPESampler": FittedTPESampler}
    load_before = os.getloadavg()
    costs: dict[tuple[str, int], list[float]] = {}
    for finished in args.finished:
        for repeat in range(args.repeats):
            names = list(samplers) if repeat % 2 == 0 else list(reversed(samplers))
            draws = {}
            for name in names:
                study = study_of(samplers[name](seed=repeat), finished)
                cost, draws[name] = ask_batch(study, args.batch)
                costs.setdefault((name, finished), []).append(cost)
            if len({tuple(d) for d in draws.values()}) != 1:
                raise RuntimeError(f"the samplers drew differently at {finished} trials")
    load_after = os.getloadavg()
    print(f"TPE, Optuna's defaults (constant_liar = True, multivariate), a batch of "
          f"{args.batch} asked before any is told; process CPU ms per trial, median of "
          f"{args.repeats} paired repeats (the draws equal in every repeat)")
    print()
    print("| sampler | " + " | ".join(f"{n} finished trials" for n in args.finished) + " |")
    print("|---|" + "---:|" * len(args.finished))
    for name in samplers:
        cells = " | ".join(f"**{1e3 * statistics.median(costs[name, n]):.2f}**"
                           for n in args.finished)
        print(f"| {name} | {cells} |")
    print()
    print(f"- Machine: {cpu_model()}, {os.cpu_count()} cores; Python {platform.python_version()}, "
          f"Optuna {optuna.__version__}")
    print(f"- load average (1, 5, 15 min): before {tuple(round(x, 2) for x in load_before)}, "
          f"after {tuple(round(x, 2) for x in load_after)}")


if __name__ == "__main__":
    main()
