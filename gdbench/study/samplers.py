"""Optuna's samplers and pruners by the names a spec gives them.

| sampler  | Optuna class       | needs      |
|----------|--------------------|------------|
| `tpe`    | `TPESampler`       |            |
| `random` | `RandomSampler`    |            |
| `grid`   | `GridSampler`      |            |
| `cmaes`  | `CmaEsSampler`     | `cmaes`    |
| `gp`     | `GPSampler`        | `torch`    |

Pruners: `median`, `successive_halving`, `hyperband`, `none`.
"""

from __future__ import annotations

import math
import warnings
from types import MappingProxyType
from typing import Mapping, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from gdbench.study import build
from gdbench.study.spec import StudySpec
from gdbench.study.storage import replaced_trials

__all__ = ["PREPARE_FREE", "PRUNERS", "SAMPLERS", "ask", "capped_budget", "make_pruner", "make_sampler"]

#: Sampler name → (Optuna class, the package it needs beyond Optuna or None).
SAMPLERS: Mapping[str, tuple[type[optuna.samplers.BaseSampler], str | None]] = MappingProxyType({
    "tpe": (optuna.samplers.TPESampler, None),
    "random": (optuna.samplers.RandomSampler, None),
    "grid": (optuna.samplers.GridSampler, None),
    "cmaes": (optuna.samplers.CmaEsSampler, "cmaes"),
    "gp": (optuna.samplers.GPSampler, "torch"),
})

#: The samplers that prepare nothing when a trial is asked (their ``before_trial`` does
#: nothing), so that a batch's trials can be created without asking for each.
PREPARE_FREE = frozenset({"random", "tpe"})

#: Pruner name → Optuna class.
PRUNERS: Mapping[str, type[optuna.pruners.BasePruner]] = MappingProxyType({
    "median": optuna.pruners.MedianPruner,
    "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
    "hyperband": optuna.pruners.HyperbandPruner,
    "none": optuna.pruners.NopPruner,
})


class _GridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler, less its ``study.stop()`` once the grid is covered.

    That call is meant for ``study.optimize`` and raises under ask-and-tell;
    the budget is capped at the grid's size instead (:func:`capped_budget`).
    """

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        del study, trial, state, values


def make_sampler(spec: StudySpec, seed_offset: int = 0) -> optuna.samplers.BaseSampler:
    """The spec's sampler, its seed offset (several processes on one study sample apart).

    Args:
        spec: the study spec.
        seed_offset: added to the sampler's seed.
    """
    sampler_class, _ = SAMPLERS[spec.sampler.name]
    seed = spec.sampler.seed + seed_offset
    if spec.sampler.name == "grid":
        return _GridSampler(build.parameter_grid(spec), seed=seed)
    options = dict(spec.sampler.options)
    if spec.sampler.name == "tpe" and (spec.compares_optimizers or spec.compares_schedules):
        # Each optimizer (schedule) suggests its own keywords, under names the others share
        # (η of GD and of Adam are both `learning_rate`): TPE then models the choice and the
        # values of its branch together, as Optuna advises for such conditional spaces.
        options.setdefault("multivariate", True)
        if options["multivariate"]:
            options.setdefault("group", True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return sampler_class(seed=seed, **options)


def make_pruner(spec: StudySpec) -> optuna.pruners.BasePruner:
    """The spec's pruner."""
    return PRUNERS[spec.pruner.name](**spec.pruner.options)


def capped_budget(spec: StudySpec, budget: int) -> int:
    """The grid sampler has no more points than its grid; other samplers are not capped."""
    if spec.sampler.name != "grid":
        return budget
    size = math.prod(len(values) for values in build.parameter_grid(spec).values())
    return min(budget, size)


def ask(study: optuna.Study, spec: StudySpec, count: int) -> list[optuna.Trial]:
    """``count`` trials: the waiting ones first (retries), then new ones.

    When the spec balances (``balance = true``) and compares optimizers or
    schedules, the new trials are queued so that every combination takes its
    turn: the sampler then tunes each combination's own parameters.
    """
    combos = [(o.label, s.label if s else None) for o in spec.optimizers
              for s in (spec.schedules or (None,))]
    trials = study.get_trials(deepcopy=False)
    new = count - sum(trial.state == TrialState.WAITING for trial in trials)
    if new > 0 and spec.balance and len(combos) > 1 and spec.sampler.name != "grid":
        counts = dict.fromkeys(combos, 0)
        replaced = replaced_trials(trials)
        for trial in (t for t in trials if t.number not in replaced):
            fixed = trial.system_attrs.get("fixed_params", {})
            combo = (trial.params.get("optimizer", fixed.get("optimizer", combos[0][0])),
                     trial.params.get("schedule", fixed.get("schedule", combos[0][1])))
            if combo in counts:
                counts[combo] += 1
        for _ in range(new):
            combo = min(combos, key=lambda c: counts[c])
            counts[combo] += 1
            fixed_params = {}
            if spec.compares_optimizers:
                fixed_params["optimizer"] = combo[0]
            if spec.compares_schedules:
                fixed_params["schedule"] = combo[1]
            study.enqueue_trial(fixed_params)
    # study.ask() first looks for a waiting trial, reading back every unfinished trial
    # of the study: K new trials asked at once would read K²/2 trials. It is called
    # until no trial waits (its first call also gives the sampler the study's latest
    # trials); the others are created as it creates them.
    waiting = sum(trial.state == TrialState.WAITING for trial in study.get_trials(deepcopy=False))
    if spec.sampler.name not in PREPARE_FREE:
        # A sampler that prepares each trial as it is asked (the grid sampler picks its
        # point there) is asked for every one.
        waiting = count
    asked = [study.ask() for _ in range(min(count, waiting + 1))]
    return asked + [optuna.Trial(study, study._storage.create_new_trial(study._study_id))
                    for _ in range(count - len(asked))]
