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
import warnings
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FrozenTrial, TrialState

from gdbench.study import budgets, records
from gdbench.study.branches import BranchSampler
from gdbench.study.errors import StudyError
from gdbench.study.storage import replaced_trials

if TYPE_CHECKING:
    from gdbench.study.spec import StudySpec

__all__ = [
    "DRAWN_AHEAD", "PREPARE_FREE", "PRUNERS", "SAMPLERS", "SAMPLER_EXTRAS", "DrawnTrial",
    "as_optuna_trial", "ask", "capped_budget", "make_pruner", "make_sampler", "missing_modules",
    "sampler_unavailable",
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

#: Seed offset between the samplers of two branches of a balanced comparison (the
#: processes sharing a study offset theirs by 1, 2, ...).
BRANCH_SEED_STRIDE = 1000

#: The samplers whose draws owe nothing to the study's trials: a population batch's
#: trials are drawn ahead and created with their parameters in one transaction.
DRAWN_AHEAD = frozenset({"random"})

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
    options = dict(spec.sampler.options)
    keys = [key for key, compared in (("optimizer", spec.compares_optimizers),
                                      ("schedule", spec.compares_schedules)) if compared]

    def sampler(offset: int = 0) -> optuna.samplers.BaseSampler:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return SAMPLERS[spec.sampler.name](seed=seed + offset, **options)

    if keys and spec.balance and spec.sampler.name != "random":
        # Each trial's branch is fixed: one sampler per branch, on that branch's trials
        # (the branches' keywords share names: η of GD and of Adam are `learning_rate`).
        return BranchSampler(keys, lambda index: sampler(BRANCH_SEED_STRIDE * index))
    if keys and spec.sampler.name == "tpe":
        # TPE chooses the branch too: it models the choice and the values of its branch
        # together, as Optuna advises for such conditional spaces.
        options.setdefault("multivariate", True)
        if options["multivariate"]:
            options.setdefault("group", True)
    return sampler()


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


class DrawnTrial:
    """A trial of a population batch drawn ahead by a sampler of :data:`DRAWN_AHEAD`.

    It answers ``suggest_*`` as `optuna.Trial` does: a parameter is drawn by
    the sampler the first time it is asked for, and the same value comes back
    after; a parameter of ``fixed_params`` takes its given value, as Optuna's
    queued trials do. Once created (:func:`records.create_trials`), it has the
    storage id and number of its trial in the study.
    """

    def __init__(self, study: optuna.Study, fixed_params: Mapping[str, Any] | None = None) -> None:
        self.study = study
        self.fixed_params = dict(fixed_params or {})
        self.params: dict[str, tuple[BaseDistribution, Any]] = {}
        self._trial_id = -1  # the storage id, named as Optuna's trials name it
        self.number = -1

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float:
        return float(self._draw(name, FloatDistribution(low, high, log=log, step=step)))

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1,
                    log: bool = False) -> int:
        return int(self._draw(name, IntDistribution(low, high, log=log, step=step)))

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return self._draw(name, CategoricalDistribution(choices))

    def _draw(self, name: str, distribution: BaseDistribution) -> Any:
        if name in self.fixed_params:
            self.params.setdefault(name, (distribution, self.fixed_params[name]))
        elif name not in self.params:
            # No draw of these samplers reads the study or the trial.
            value = self.study.sampler.sample_independent(self.study, None, name,  # type: ignore[arg-type]
                                                          distribution)
            self.params[name] = (distribution, value)
        return self.params[name][1]


def ask(study: optuna.Study, spec: StudySpec, count: int, total_steps: int = 0,
        storage: optuna.storages.RDBStorage | None = None) -> list[optuna.Trial | DrawnTrial]:
    """``count`` trials: the waiting ones first (retries), then new ones.

    When the spec balances (``balance = true``) and compares optimizers or
    schedules, every combination takes its turn among the new trials: the
    sampler then tunes each combination's own parameters. In a budget-matched
    comparison (``spec.compare``) each combination's first trial is fixed at its
    defaults (:func:`gdbench.study.budgets.first_trial_params`).

    A population study on a sampler of :data:`DRAWN_AHEAD` gets its new trials
    as :class:`DrawnTrial`, created in one transaction with their parameters,
    when the study's RDB ``storage`` is given; ``total_steps`` sizes the
    schedules they are drawn for.
    """
    trials = study.get_trials(deepcopy=False)
    waiting = sum(trial.state == TrialState.WAITING for trial in trials)
    turns = _turns(spec, trials, count - waiting, total_steps)
    if storage is not None and spec.population and spec.sampler.name in DRAWN_AHEAD:
        taken = _take_waiting(study, min(count, waiting))
        return taken + _drawn_ahead(study, storage, spec, turns[:count - len(taken)],
                                    total_steps)
    for fixed_params in turns:
        if fixed_params:
            study.enqueue_trial(fixed_params)
    if spec.sampler.name not in PREPARE_FREE:
        # A sampler that prepares each trial as it is asked (the grid sampler picks its
        # point there) is asked for every one.
        return [study.ask() for _ in range(count)]
    # study.ask() gives the sampler the study's latest trials, then looks for a waiting
    # trial, reading back every unfinished one: K trials asked at once would read K²/2
    # trials and drop the sampler's cache K times. It is asked once; the other waiting
    # trials are taken, and the new ones created, as it takes and creates them.
    asked = [study.ask()] if count else []
    asked += _take_waiting(study, count - len(asked))
    return asked + [optuna.Trial(study, study._storage.create_new_trial(study._study_id))
                    for _ in range(count - len(asked))]


def _turns(spec: StudySpec, trials: Sequence[FrozenTrial], new: int,
           total_steps: int = 0) -> list[dict[str, Any]]:
    """The fixed parameters of ``new`` trials that give every combination of a balanced
    comparison its turn (none when the spec does not balance); in a budget-matched
    comparison, a combination's first trial is also fixed at its defaults."""
    combos = [(o.label, s.label if s else None) for o in spec.optimizers
              for s in (spec.schedules or (None,))]
    if spec.compare is not None and len(combos) == 1 and new > 0:
        first = [] if trials else [budgets.first_trial_params(spec, *combos[0], total_steps)]
        return (first + [{} for _ in range(new)])[:new]
    if new <= 0 or not spec.balance or len(combos) < 2 or spec.sampler.name == "grid":
        return [{} for _ in range(max(new, 0))]
    counts = dict.fromkeys(combos, 0)
    replaced = replaced_trials(trials)
    for trial in (t for t in trials if t.number not in replaced):
        fixed = trial.system_attrs.get("fixed_params", {})
        combo = (trial.params.get("optimizer", fixed.get("optimizer", combos[0][0])),
                 trial.params.get("schedule", fixed.get("schedule", combos[0][1])))
        if combo in counts:
            counts[combo] += 1
    turns = []
    for _ in range(new):
        combo = min(combos, key=lambda c: counts[c])
        fixed_params = {}
        if spec.compare is not None and counts[combo] == 0:
            fixed_params.update(budgets.first_trial_params(spec, *combo, total_steps))
        counts[combo] += 1
        if spec.compares_optimizers:
            fixed_params["optimizer"] = combo[0]
        if spec.compares_schedules:
            fixed_params["schedule"] = combo[1]
        turns.append(fixed_params)
    return turns


def _take_waiting(study: optuna.Study, count: int) -> list[optuna.Trial]:
    """Up to ``count`` waiting trials, set running (as ``study.ask`` takes one)."""
    taken: list[optuna.Trial] = []
    if count <= 0:
        return taken
    for trial in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        if len(taken) == count:
            break
        if study._storage.set_trial_state_values(trial._trial_id, state=TrialState.RUNNING):
            taken.append(optuna.Trial(study, trial._trial_id))
    return taken


def as_optuna_trial(study: optuna.Study, trial: optuna.Trial | DrawnTrial) -> optuna.Trial:
    """``trial`` as an `optuna.Trial` (to report to and prune), drawn ahead or not."""
    return optuna.Trial(study, trial._trial_id) if isinstance(trial, DrawnTrial) else trial


def _drawn_ahead(study: optuna.Study, storage: optuna.storages.RDBStorage, spec: StudySpec,
                 turns: Sequence[Mapping[str, Any]], total_steps: int) -> list[DrawnTrial]:
    # Keras, imported here: `gdbench list` reads this module without it.
    from gdbench.study import build

    drawn = [DrawnTrial(study, fixed_params) for fixed_params in turns]
    for trial in drawn:
        build.suggest(trial, spec, total_steps)
    created = records.create_trials(storage, study._study_id,
                                    [records.NewTrial(trial.params) for trial in drawn])
    for trial, (trial_id, number) in zip(drawn, created):
        trial._trial_id, trial.number = trial_id, number
    return drawn
