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

Scoring the candidates (:class:`Density`) computes Optuna's log densities value for value,
but what the candidates do not change is computed once per estimator rather than once per
trial: each kernel's log mass within the bounds (the truncated normal's normaliser) and the
log of its width; the constant liar's estimator, refitted for every trial, takes them from
the previous trial's estimator for every kernel whose bounds, in its own units, are
unchanged (adding a running trial changes the widths of its neighbours only). Optuna's
check of the candidates against the bounds, which selects among three arrays the size of
candidates × kernels, is a comparison of the candidates with the bounds, falling back to
Optuna's own computation where one lies outside (never for candidates TPE draws).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers._tpe import _truncnorm
from optuna.samplers._tpe.parzen_estimator import _ParzenEstimator
from optuna.samplers._tpe.probability_distributions import (
    _BatchedTruncLogNormDistributions,
    _BatchedTruncNormDistributions,
)
from optuna.samplers._tpe.sampler import _split_trials, default_gamma, default_gamma_multiobjective
from optuna.trial import FrozenTrial, TrialState

__all__ = ["Density", "FittedTPESampler"]

_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)

#: The kernels of a continuous parameter, whose log density :class:`Density` computes.
_CONTINUOUS = (_BatchedTruncNormDistributions, _BatchedTruncLogNormDistributions)


class Density:
    """A Parzen estimator's log density at candidates, as Optuna's
    ``_MixtureOfProductDistribution.log_pdf`` computes it (the same operations in the same
    order, so the same values), each kernel's log mass and log width computed once.

    Args:
        estimator: the estimator.
        previous: an estimator's density whose kernels' log masses are taken where a kernel
            at the same position has the same standardized bounds.
    """

    def __init__(self, estimator: _ParzenEstimator, previous: Density | None = None) -> None:
        self.estimator = estimator
        mixture = estimator._mixture_distribution
        kernels = mixture.distributions
        self.continuous = all(type(d) in _CONTINUOUS for d in kernels)
        if not self.continuous:  # categorical or stepped parameters: Optuna's computation
            return
        self.is_log = [d.is_log for d in kernels]
        self.mus = np.asarray([d.mu for d in kernels]).T
        self.sigmas = np.asarray([d.sigma for d in kernels]).T
        self.bounds = (np.asarray([d.adapted_low for d in kernels])[:, np.newaxis],
                       np.asarray([d.adapted_high for d in kernels])[:, np.newaxis])
        self.low = (self.bounds[0][:, 0] - self.mus) / self.sigmas
        self.high = (self.bounds[1][:, 0] - self.mus) / self.sigmas
        self.continuous = not np.any(self.low == self.high)
        self.mass = self._masses(previous)
        self.log_sigmas = np.log(self.sigmas)
        self.log_weights = np.log(mixture.weights[np.newaxis])

    def _masses(self, previous: Density | None) -> np.ndarray:
        """Each kernel's log mass within the bounds; ``previous``'s where its bounds are equal."""
        if previous is None or not previous.continuous or previous.low.shape[1:] != \
                self.low.shape[1:]:
            return _truncnorm._log_gauss_mass(self.low, self.high)
        shared = min(len(self.low), len(previous.low))
        same = np.zeros(self.low.shape, dtype=bool)
        same[:shared] = ((self.low[:shared] == previous.low[:shared])
                         & (self.high[:shared] == previous.high[:shared]))
        mass = np.empty_like(self.low)
        mass[same] = previous.mass[:shared][same[:shared]]
        mass[~same] = _truncnorm._log_gauss_mass(self.low[~same], self.high[~same])
        return mass

    def log_pdf(self, samples: dict[str, np.ndarray]) -> np.ndarray:
        """The log density at ``samples`` (parameter → values, Optuna's internal repr)."""
        if not self.continuous:
            return self.estimator.log_pdf(samples)
        x = self.estimator._transform(samples)
        columns = np.asarray([np.log(x[:, i]) if log else x[:, i]
                              for i, log in enumerate(self.is_log)])
        # Subtracting a kernel's centre and dividing by its width keep the order (rounding is
        # monotone): a candidate within the bounds is within every kernel's standardized ones.
        if np.any(columns < self.bounds[0]) or np.any(columns > self.bounds[1]):
            return self.estimator.log_pdf(samples)  # Optuna's -inf outside the bounds
        z = (columns.T[:, np.newaxis, :] - self.mus) / self.sigmas
        weighted = np.zeros((len(x), self.log_weights.shape[1]), dtype=np.float64)
        weighted += (_truncnorm._norm_logpdf(z) - self.mass - self.log_sigmas).sum(axis=-1)
        weighted += self.log_weights
        max_ = weighted.max(axis=1)
        max_[np.isneginf(max_)] = 0
        with np.errstate(divide="ignore"):
            return np.log(np.exp(weighted - max_[:, None]).sum(axis=1)) + max_


class _Fit:
    """The part of a TPE fit that only the finished trials decide: the estimator of the
    best ones, and the others' values (Optuna's internal representation) by trial number."""

    def __init__(self, sampler: FittedTPESampler, study: optuna.Study, trials: list[FrozenTrial],
                 search_space: dict[str, BaseDistribution]) -> None:
        below, above = _split_trials(study, trials, sampler.gamma(study)(len(trials)))
        self.below = sampler._build_parzen_estimator(study, search_space, below,
                                                     handle_below=True)
        self.below_density = Density(self.below)
        self.above_trials = above
        self.above = _observations(sampler, study, above, search_space)
        #: The worse trials' density: without the liar, fitted once; with it, the last one.
        self.above_density: Density | None = None


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
            if fit.above_density is None:
                fit.above_density = Density(self._estimator(*fit.above, search_space))
        else:
            # The running trials (this one aside) join the worse ones, as Optuna's constant
            # liar puts them; they are read afresh, as Optuna reads them.
            running = [t for t in study._get_trials(deepcopy=False, states=(TrialState.RUNNING,),
                                                    use_cache=False)
                       if t.number != trial.number]
            numbers, values = _observations(self, study, running, search_space)
            numbers = np.concatenate([fit.above[0], numbers])
            order = np.argsort(numbers, kind="stable")
            fit.above_density = Density(self._estimator(
                numbers[order], {name: np.concatenate([fit.above[1][name], values[name]])[order]
                                 for name in search_space}, search_space), fit.above_density)
        samples_below = fit.below.sample(self._rng.rng, self._n_ei_candidates)
        # Optuna's _compute_acquisition_func: log l(x) - log g(x).
        acquisition = (fit.below_density.log_pdf(samples_below)
                       - fit.above_density.log_pdf(samples_below))
        chosen = optuna.samplers.TPESampler._compare(samples_below, acquisition)
        for name, distribution in search_space.items():
            chosen[name] = distribution.to_external_repr(chosen[name])
        return chosen

    def _estimator(self, numbers: np.ndarray, values: dict[str, np.ndarray],
                   search_space: dict[str, BaseDistribution]) -> _ParzenEstimator:
        """The estimator of the worse trials, as ``_build_parzen_estimator`` makes it."""
        del numbers
        return self._parzen_estimator_cls(values, search_space, self._parzen_estimator_parameters)
