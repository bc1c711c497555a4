"""Asking Optuna for trials: the waiting ones first, then new ones, each combination of a
balanced comparison in its turn; a population's trials drawn ahead in one transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FrozenTrial, TrialState

from gdbench.study.plan import build
from gdbench.study.plan.samplers import DRAWN_AHEAD, PREPARE_FREE
from gdbench.study.trials import records
from gdbench.study.trials.storage import replaced_trials

if TYPE_CHECKING:
    from gdbench.study.spec.model import StudySpec

__all__ = ["DrawnTrial", "as_optuna_trial", "ask"]


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
    defaults (:func:`gdbench.study.plan.build.first_trial_params`).

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
    grown = _recorded_choices(trials) not in (None, tuple(o.label for o in spec.optimizers))
    if grown and storage is not None:
        _queue_in_turn(study, storage, spec, [t for t in turns if "optimizer" in t])
        turns = [t for t in turns if "optimizer" not in t]
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
    return asked + [records.new_trial(study)
                    for _ in range(count - len(asked))]


def _recorded_choices(trials: Sequence[FrozenTrial]) -> tuple[Any, ...] | None:
    """The optimizers the study's ``optimizer`` parameter was first recorded with, if any."""
    for trial in trials:
        distribution = trial.distributions.get("optimizer")
        if isinstance(distribution, CategoricalDistribution):
            return tuple(distribution.choices)
    return None


def _queue_in_turn(study: optuna.Study, storage: optuna.storages.RDBStorage, spec: StudySpec,
                   turns: Sequence[Mapping[str, Any]]) -> None:
    """Queue the new trials of a study grown by optimizers, each with its optimizer set.

    Optuna keeps one set of choices per categorical parameter across a study and
    refuses ``optimizer`` with the grown list; a new trial holding its
    ``optimizer`` already (as a retried trial holds its parameters) is asked for
    it against its own distribution. The finished trials keep theirs.
    """
    choices = CategoricalDistribution([optimizer.label for optimizer in spec.optimizers])
    records.create_trials(storage, records.study_id(study), [records.NewTrial(
        {"optimizer": (choices, fixed["optimizer"])}, TrialState.WAITING,
        system_attrs={"fixed_params": dict(fixed)}) for fixed in turns])


def _turns(spec: StudySpec, trials: Sequence[FrozenTrial], new: int,
           total_steps: int = 0) -> list[dict[str, Any]]:
    """The fixed parameters of ``new`` trials that give every combination of a balanced
    comparison its turn (none when the spec does not balance); in a budget-matched
    comparison, a combination's first trial is also fixed at its defaults."""
    combos = [(o.label, s.label if s else None) for o in spec.optimizers
              for s in (spec.schedules or (None,))]
    if spec.compare is not None and len(combos) == 1 and new > 0:
        first = [] if trials else [build.first_trial_params(spec, *combos[0], total_steps)]
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
            fixed_params.update(build.first_trial_params(spec, *combo, total_steps))
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
        if records.set_running(study, trial):
            taken.append(records.trial_by_id(study, records.trial_id(trial)))
    return taken


def as_optuna_trial(study: optuna.Study, trial: optuna.Trial | DrawnTrial) -> optuna.Trial:
    """``trial`` as an `optuna.Trial` (to report to and prune), drawn ahead or not."""
    return records.trial_by_id(study, records.trial_id(trial)) if isinstance(trial, DrawnTrial) else trial


def _drawn_ahead(study: optuna.Study, storage: optuna.storages.RDBStorage, spec: StudySpec,
                 turns: Sequence[Mapping[str, Any]], total_steps: int) -> list[DrawnTrial]:
    drawn = [DrawnTrial(study, fixed_params) for fixed_params in turns]
    for trial in drawn:
        build.suggest(trial, spec, total_steps)
    created = records.create_trials(storage, records.study_id(study),
                                    [records.NewTrial(trial.params) for trial in drawn])
    for trial, (trial_id, number) in zip(drawn, created):
        trial._trial_id, trial.number = trial_id, number
    return drawn
