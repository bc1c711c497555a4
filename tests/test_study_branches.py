"""A balanced comparison's sampler: one per branch, each on its branch's trials only."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial

from gdbench.study import load_spec
from gdbench.study.plan import samplers
from gdbench.study.plan.branches import BranchSampler


class Recorder(optuna.samplers.RandomSampler):
    """A random sampler that notes which trials' optimizers it was shown."""

    def __init__(self, seen: list[set[str]], seed: int) -> None:
        super().__init__(seed=seed)
        self.seen = seen

    def sample_independent(self, study: Any, trial: FrozenTrial, param_name: str,
                           param_distribution: Any) -> Any:
        told = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        self.seen.append({t.params["optimizer"] for t in told})
        return super().sample_independent(study, trial, param_name, param_distribution)


def test_each_branch_sampler_sees_only_its_branchs_trials() -> None:
    seen: list[set[str]] = []
    made: list[int] = []

    def make(index: int) -> optuna.samplers.BaseSampler:
        made.append(index)
        return Recorder(seen, index)

    study = optuna.create_study(sampler=BranchSampler(["optimizer"], make))
    rate = FloatDistribution(1e-4, 1.0, log=True)
    for optimizer, value in (("gd", 0.5), ("adam", 0.001), ("gd", 0.4), ("adam", 0.002)):
        study.add_trial(optuna.trial.create_trial(
            params={"optimizer": optimizer, "learning_rate": value},
            distributions={"optimizer": optuna.distributions.CategoricalDistribution(
                ["gd", "adam"]), "learning_rate": rate}, value=value))
    for optimizer in ("adam", "gd", "adam"):
        study.enqueue_trial({"optimizer": optimizer})
        trial = study.ask()
        assert trial.suggest_categorical("optimizer", ["gd", "adam"]) == optimizer
        trial.suggest_float("learning_rate", 1e-4, 1.0, log=True)
        assert seen[-1] == {optimizer}
        study.tell(trial, 0.1)
    assert made == [0, 1]  # one sampler per branch, each made once


def test_a_balanced_comparison_gets_a_sampler_per_branch(tmp_path) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text('task = "sigmoid_neuron"\noptimizers = ["gd", "adam"]\nsampler = "tpe"\n')
    sampler = samplers.make_sampler(load_spec(spec))
    assert isinstance(sampler, BranchSampler) and sampler.keys == ("optimizer",)
    spec.write_text('task = "sigmoid_neuron"\noptimizers = ["gd", "adam"]\nsampler = "tpe"\n'
                    'balance = false\n')
    sampler = samplers.make_sampler(load_spec(spec))
    assert isinstance(sampler, optuna.samplers.TPESampler)
