"""The TPE sampler a spec's ``tpe`` builds draws what Optuna's TPESampler draws with the same
seed, while fitting once per set of finished trials; its densities are Optuna's, value for value."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from gdbench.study.plan.fitted_tpe import Density, FittedTPESampler
from gdbench.study.plan.samplers import SAMPLERS

RATE = FloatDistribution(1e-3, 10.0, log=True)
SHARE = FloatDistribution(0.0, 1.0)


def study_of(sampler: optuna.samplers.BaseSampler, finished: int) -> optuna.Study:
    """An in-memory study holding ``finished`` trials (a few pruned), the same for every sampler."""
    study = optuna.create_study(sampler=sampler)
    draw = random.Random(0)
    trials = []
    for number in range(finished):
        params = {"learning_rate": 10 ** draw.uniform(-3, 1), "share": draw.random()}
        state = optuna.trial.TrialState.PRUNED if number % 7 == 3 else None
        trials.append(optuna.trial.create_trial(
            params=params, distributions={"learning_rate": RATE, "share": SHARE},
            value=draw.random(), **({"state": state} if state else {})))
    study.add_trials(trials)
    return study


def ask_batch(study: optuna.Study, count: int) -> list[tuple[float, float]]:
    """``count`` trials asked before any is told, as a population batch is."""
    drawn = []
    for _ in range(count):
        trial = study.ask()
        drawn.append((trial.suggest_float("learning_rate", 1e-3, 10.0, log=True),
                      trial.suggest_float("share", 0.0, 1.0)))
    return drawn


@pytest.mark.parametrize("options", [{}, {"multivariate": False}, {"constant_liar": False},
                                     {"constant_liar": False, "multivariate": False}],
                         ids=["defaults", "independent", "no_liar", "independent_no_liar"])
def test_draws_are_optunas(options: dict[str, bool]) -> None:
    ours = study_of(FittedTPESampler(seed=3, **options), 60)
    theirs = study_of(optuna.samplers.TPESampler(seed=3, **options), 60)
    assert ask_batch(ours, 12) == ask_batch(theirs, 12)
    for study in (ours, theirs):  # a batch told, the next one fitted on it
        for trial in study.get_trials(states=(optuna.trial.TrialState.RUNNING,)):
            study.tell(trial.number, trial.params["share"])
    assert ask_batch(ours, 12) == ask_batch(theirs, 12)


def test_fits_once_per_set_of_finished_trials(monkeypatch: pytest.MonkeyPatch) -> None:
    sampler = FittedTPESampler(seed=0, constant_liar=False)
    study = study_of(sampler, 40)
    fits = []
    original = FittedTPESampler._build_parzen_estimator

    def counted(self, *args, **kwargs):
        fits.append(kwargs.get("handle_below"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(FittedTPESampler, "_build_parzen_estimator", counted)
    ask_batch(study, 10)
    assert fits == [True]  # the better trials' estimator, once for the batch


def test_the_spec_tpe_is_the_fitted_one() -> None:
    assert SAMPLERS["tpe"] is FittedTPESampler


def estimator(observations: dict[str, list[float]], space: dict[str, Any]) -> Any:
    """Optuna's Parzen estimator of the worse trials on ``observations``, as TPE builds it."""
    sampler = optuna.samplers.TPESampler()
    return sampler._parzen_estimator_cls(
        {name: np.asarray(values) for name, values in observations.items()}, space,
        sampler._parzen_estimator_parameters)


def internal(distribution: Any, draw: np.random.RandomState) -> float:
    """A random value of ``distribution``, as Optuna keeps it (a choice by its index)."""
    if isinstance(distribution, CategoricalDistribution):
        return float(draw.randint(len(distribution.choices)))
    if isinstance(distribution, IntDistribution):
        return float(draw.randint(distribution.low, distribution.high + 1))
    if distribution.log:
        return float(np.exp(draw.uniform(np.log(distribution.low), np.log(distribution.high))))
    return float(draw.uniform(distribution.low, distribution.high))


@pytest.mark.parametrize("space", [
    {"learning_rate": RATE, "share": SHARE},
    {"learning_rate": RATE, "epochs": IntDistribution(1, 50)},
    {"learning_rate": RATE, "schedule": CategoricalDistribution(["cosine", "constant"])},
], ids=["continuous", "stepped", "categorical"])
def test_the_density_is_optunas_value_for_value(space: dict[str, Any]) -> None:
    draw = np.random.RandomState(0)
    values = {name: [internal(distribution, draw) for _ in range(300)]
              for name, distribution in space.items()}
    fitted = estimator(values, space)
    density = Density(fitted)
    # Categorical and stepped parameters are left to Optuna's own computation.
    assert density.continuous is all(isinstance(d, FloatDistribution) for d in space.values())
    candidates = fitted.sample(draw, 24)
    assert np.array_equal(density.log_pdf(candidates), fitted.log_pdf(candidates))
    outside = {name: column.copy() for name, column in candidates.items()}
    outside["learning_rate"][0] = 20.0  # beyond the bounds: Optuna's -inf
    assert np.array_equal(density.log_pdf(outside), fitted.log_pdf(outside))
    # One more observation (a running trial the liar adds): the masses kept from the
    # previous density where the bounds are unchanged are the ones computed afresh.
    grown = estimator({name: [*column, column[0]] for name, column in values.items()}, space)
    kept, fresh = Density(grown, density), Density(grown)
    assert np.array_equal(kept.log_pdf(candidates), fresh.log_pdf(candidates))
    assert np.array_equal(kept.log_pdf(candidates), grown.log_pdf(candidates))
