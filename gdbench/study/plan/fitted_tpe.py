"""Optuna's TPE sampler, its Parzen estimators fitted once for the trials they are fitted on.

TPE draws a trial's values by fitting two Parzen estimators, one on the
finished trials that did best and one on the others, drawing
``n_ei_candidates`` values from the first and keeping the one whose ratio of
the two densities is highest. Optuna fits the two estimators again for every
trial it samples, at a cost that grows with the trials finished (3 ms a trial
at 100 trials, 15–30 ms at 1000 on two CPU cores), although the trials of one
population batch are all sampled before any of them is told, from the same
finished trials.

:class:`FittedTPESampler` keeps the last fit for each search space, keyed by
the study and the number of finished trials it was fitted on (a finished trial
never changes, and none leaves the finished states), and fits again once that
number changes. Every draw is then Optuna's: the same estimators, the same
candidates from the sampler's random generator, the same choice, so a study's
trials are the ones ``TPESampler`` with the same seed gives. Only with
``constant_liar = true`` (where the running trials enter the fit, and change
with every trial asked) does it sample as Optuna's does, fitting every time.
The fit reads Optuna's private ``_sample`` steps (``optuna.samplers._tpe``);
a test compares its draws with ``TPESampler``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers._tpe.parzen_estimator import _ParzenEstimator
from optuna.samplers._tpe.sampler import _split_trials, default_gamma, default_gamma_multiobjective
from optuna.trial import FrozenTrial, TrialState

__all__ = ["FittedTPESampler"]

_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


class _Fit:
    """The part of a TPE fit that only the finished trials decide: the estimator of the
    best ones, and the others' values (Optuna's internal representation) by trial number."""

    def __init__(self, sampler: FittedTPESampler, study: optuna.Study, trials: list[FrozenTrial],
                 search_space: dict[str, BaseDistribution]) -> None:
        below, above = _split_trials(study, trials, sampler.gamma(study)(len(trials)))
        self.below = sampler._build_parzen_estimator(study, search_space, below,
                                                     handle_below=True)
        self.above_trials = above
        self.above = _observations(sampler, study, above, search_space)
        self.fitted_above: _ParzenEstimator | None = None


def _observations(sampler: FittedTPESampler, study: optuna.Study, trials: list[FrozenTrial],
                  search_space: dict[str, BaseDistribution]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(numbers, parameter → values) of the trials that hold every parameter of the space, as
    Optuna's ``_get_internal_repr`` keeps them."""
    kept = [t for t in trials if search_space.keys() <= sampler._get_params(t, study).keys()]
    values = sampler._get_internal_repr(kept, search_space, study)
    return np.asarray([t.number for t in kept], dtype=np.int64), values


class FittedTPESampler(optuna.samplers.TPESampler):
    """:class:`optuna.samplers.TPESampler`, fitting what the finished trials decide once per
    set of finished trials and search space (see the module docstring); same arguments."""

    #: (study id, finished trials, search space) → the fit on those finished trials; set on
    #: each sampler when it first samples (Optuna's constructor, and its signature, unchanged).
    _fits: dict[tuple[Any, ...], _Fit]

    def gamma(self, study: optuna.Study) -> Callable[[int], int]:
        """The split's size function, Optuna's default for the study's objectives if none given."""
        if self._gamma is None:
            self._gamma = (default_gamma if len(study.directions) <= 1
                           else default_gamma_multiobjective)
        return self._gamma

    def _sample(self, study: optuna.Study, trial: FrozenTrial,
                search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        finished = study._get_trials(deepcopy=False, states=_FINISHED, use_cache=True)
        key = (study._study_id, len(finished), tuple(sorted(search_space.items())))
        fits = self.__dict__.get("_fits", {})
        fit = fits.get(key)
        if fit is None:
            fit = _Fit(self, study, finished, search_space)
            self._fits = {k: v for k, v in fits.items() if k[:2] == key[:2]}
            self._fits[key] = fit
        if not self._constant_liar:
            if fit.fitted_above is None:
                fit.fitted_above = self._estimator(*fit.above, search_space)
            mpe_above = fit.fitted_above
        else:
            # The running trials (this one aside) join the worse ones, as Optuna's constant
            # liar puts them; they are read afresh, as Optuna reads them.
            running = [t for t in study._get_trials(deepcopy=False, states=(TrialState.RUNNING,),
                                                    use_cache=False)
                       if t.number != trial.number]
            numbers, values = _observations(self, study, running, search_space)
            numbers = np.concatenate([fit.above[0], numbers])
            order = np.argsort(numbers, kind="stable")
            mpe_above = self._estimator(
                numbers[order], {name: np.concatenate([fit.above[1][name], values[name]])[order]
                                 for name in search_space}, search_space)
        samples_below = fit.below.sample(self._rng.rng, self._n_ei_candidates)
        acquisition = self._compute_acquisition_func(samples_below, fit.below, mpe_above)
        chosen = optuna.samplers.TPESampler._compare(samples_below, acquisition)
        for name, distribution in search_space.items():
            chosen[name] = distribution.to_external_repr(chosen[name])
        return chosen

    def _estimator(self, numbers: np.ndarray, values: dict[str, np.ndarray],
                   search_space: dict[str, BaseDistribution]) -> _ParzenEstimator:
        """The estimator of the worse trials, as ``_build_parzen_estimator`` makes it."""
        del numbers
        return self._parzen_estimator_cls(values, search_space, self._parzen_estimator_parameters)
