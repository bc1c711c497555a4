"""A sampler per branch of a balanced comparison, each learning from its branch's trials only.

A balanced comparison (``balance = true``, several optimizers or schedules)
fixes each new trial's optimizer (and schedule) so that every combination takes
its turn. Its hyperparameters share names across the branches (η of GD and
η of Adam are both ``learning_rate``), so one sampler over the whole study
would model GD's best η from Adam's trials too. :class:`BranchSampler` keeps
one sampler per branch and shows it the study's trials of that branch only:
each optimizer's η is tuned from that optimizer's trials, as if it were a
study of its own, while the three dashboards keep one name for one value.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

__all__ = ["BranchSampler"]


class BranchSampler(optuna.samplers.BaseSampler):
    """Delegates each trial to the sampler of its branch, on its branch's trials.

    Args:
        keys: the parameters that name a trial's branch (``optimizer``,
            ``schedule``), fixed for each new trial.
        make: ``make(index)`` → the sampler of the index-th branch met (its
            seed offset).
    """

    def __init__(self, keys: Sequence[str],
                 make: Callable[[int], optuna.samplers.BaseSampler]) -> None:
        self.keys = tuple(keys)
        self.make = make
        self.samplers: dict[tuple[Any, ...], optuna.samplers.BaseSampler] = {}

    def branch(self, trial: FrozenTrial) -> tuple[Any, ...]:
        """The trial's branch: its fixed (queued) values of :attr:`keys`, else its own."""
        fixed = trial.system_attrs.get("fixed_params", {})
        return tuple(fixed.get(key, trial.params.get(key)) for key in self.keys)

    def _sampler(self, trial: FrozenTrial) -> tuple[optuna.samplers.BaseSampler, Any]:
        branch = self.branch(trial)
        if branch not in self.samplers:
            self.samplers[branch] = self.make(len(self.samplers))
        return self.samplers[branch], _BranchStudy(self, branch)

    def infer_relative_search_space(self, study: optuna.Study,
                                    trial: FrozenTrial) -> dict[str, BaseDistribution]:
        sampler, view = self._sampler(trial)
        return sampler.infer_relative_search_space(view.of(study), trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        sampler, view = self._sampler(trial)
        return sampler.sample_relative(view.of(study), trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        sampler, view = self._sampler(trial)
        return sampler.sample_independent(view.of(study), trial, param_name,
                                          param_distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        sampler, view = self._sampler(trial)
        sampler.before_trial(view.of(study), trial)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        sampler, view = self._sampler(trial)
        sampler.after_trial(view.of(study), trial, state, values)


class _BranchStudy:
    """A study as one branch's sampler sees it: the same, with only the branch's trials."""

    def __init__(self, sampler: BranchSampler, branch: tuple[Any, ...]) -> None:
        self._branch_sampler = sampler
        self._branch = branch
        self._study: optuna.Study | None = None

    def of(self, study: optuna.Study) -> _BranchStudy:
        self._study = study
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def _get_trials(self, deepcopy: bool = True, states: Container[TrialState] | None = None,
                    use_cache: bool = False) -> list[FrozenTrial]:
        assert self._study is not None
        trials = self._study._get_trials(deepcopy=deepcopy, states=states, use_cache=use_cache)
        return [trial for trial in trials
                if self._branch_sampler.branch(trial) == self._branch]

    def get_trials(self, deepcopy: bool = True,
                   states: Container[TrialState] | None = None) -> list[FrozenTrial]:
        return self._get_trials(deepcopy=deepcopy, states=states)

    @property
    def trials(self) -> list[FrozenTrial]:
        return self.get_trials()
