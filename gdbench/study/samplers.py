"""Optuna's samplers and pruners by the names a spec gives them.

| sampler  | Optuna class       | needs (``pip install gdbench[EXTRA]``) |
|----------|--------------------|----------------------------------------|
| `tpe`    | `TPESampler`       |                                        |
| `random` | `RandomSampler`    |                                        |
| `grid`   | `GridSampler`      |                                        |
| `cmaes`  | `CmaEsSampler`     | `cmaes`: the `cmaes` package           |
| `gp`     | `GPSampler`        | `gp`: `torch` and `scipy`              |

Pruners: `median`, `successive_halving`, `hyperband`, `none`.

This module imports neither Keras nor TensorFlow (``gdbench list`` reads it).
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING

import optuna
from optuna.trial import FrozenTrial, TrialState

from gdbench.study.errors import StudyError
from gdbench.study.storage import replaced_trials

if TYPE_CHECKING:
    from gdbench.study.spec import StudySpec

__all__ = [
    "PREPARE_FREE", "PRUNERS", "SAMPLERS", "SAMPLER_EXTRAS", "ask", "capped_budget", "make_pruner",
    "make_sampler", "missing_modules", "sampler_unavailable",
]

#: Sampler name → Optuna class.
SAMPLERS: Mapping[str, type[optuna.samplers.BaseSampler]] = MappingProxyType({
    "tpe": optuna.samplers.TPESampler,
    "random": optuna.samplers.RandomSampler,
    "grid": optuna.samplers.GridSampler,
    "cmaes": optuna.samplers.CmaEsSampler,
    "gp": optuna.samplers.GPSampler,
})

#: Sampler name → (the gdbench extra that installs what it needs beyond Optuna, the
#: modules Optuna imports for it), for the samplers that need more than Optuna.
SAMPLER_EXTRAS: Mapping[str, tuple[str, tuple[str, ...]]] = MappingProxyType({
    "cmaes": ("cmaes", ("cmaes",)),
    "gp": ("gp", ("torch", "scipy")),
})


def missing_modules(name: str) -> list[str]:
    """The modules sampler ``name`` needs that are not installed here.

    Optuna imports them only when the sampler first samples, so they are
    looked for here, not imported.
    """
    _, modules = SAMPLER_EXTRAS.get(name, (None, ()))
    return [module for module in modules if importlib.util.find_spec(module) is None]


def sampler_unavailable(name: str) -> str | None:
    """Why sampler ``name`` cannot run here, in one line naming its extra; ``None`` if it can."""
    missing = missing_modules(name)
    if not missing:
        return None
    ready = ", ".join(other for other in SAMPLERS if other not in SAMPLER_EXTRAS)
    return (f"the {name} sampler needs {' and '.join(missing)}, not installed: "
            f"pip install gdbench[{SAMPLER_EXTRAS[name][0]}] (or use {ready})")


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

    Raises:
        StudyError: the sampler's extra is not installed.
    """
    # Imported here: building a trial imports Keras, which the sampler tables must not.
    from gdbench.study import build

    reason = sampler_unavailable(spec.sampler.name)
    if reason is not None:
        raise StudyError(f"sampler: {reason}")
    seed = spec.sampler.seed + seed_offset
    if spec.sampler.name == "grid":
        return _GridSampler(build.parameter_grid(spec), seed=seed)
    return SAMPLERS[spec.sampler.name](seed=seed, **spec.sampler.options)


def make_pruner(spec: StudySpec) -> optuna.pruners.BasePruner:
    """The spec's pruner."""
    return PRUNERS[spec.pruner.name](**spec.pruner.options)


def capped_budget(spec: StudySpec, budget: int) -> int:
    """The grid sampler has no more points than its grid; other samplers are not capped."""
    if spec.sampler.name != "grid":
        return budget
    from gdbench.study import build

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
