"""Every update rule runs a population of trials as one batch.

The vectorized population engine calls a rule with parameters stacked as
[K, P] and each hyperparameter (η included) as a [K, 1] tensor. That call must
equal K separate calls made the way the Keras class makes them (one [P]
parameter, Python-float hyperparameters, a scalar η tensor).
"""

from __future__ import annotations

import inspect
import itertools
from typing import Any

import numpy as np
import pytest
from keras import ops

import gdbench.optimizers

#: Three valid values of each keyword, one per trial: each trial differs from
#: the others in every hyperparameter at once.
TRIAL_VALUES: dict[str, tuple[float, float, float]] = {
    "learning_rate": (0.3, 0.01, 1e-3),
    "momentum": (0.0, 0.5, 0.95),
    "beta_1": (0.0, 0.8, 0.95),
    "beta_2": (0.9, 0.99, 0.999),
    "rho": (0.5, 0.9, 0.999),
    "epsilon": (1e-8, 1e-3, 0.1),
    "initial_accumulator_value": (0.0, 0.1, 2.0),
    "weight_decay": (0.0, 0.01, 0.3),
    "eta_minus": (0.3, 0.5, 0.7),
    "eta_plus": (1.1, 1.2, 2.0),
    "min_step": (1e-6, 1e-3, 0.01),
    "max_step": (0.05, 1.0, 50.0),
}
TRIALS = 3
PARAMETERS = 5
STEPS = 6


def _trial_optimizers(cls: type, flags: dict[str, bool]) -> list[Any]:
    """One optimizer per trial, built (hence validated) from `TRIAL_VALUES`."""
    own_keywords = inspect.signature(cls.__init__).parameters
    return [
        cls(**flags, **{k: v[trial] for k, v in TRIAL_VALUES.items() if k in own_keywords})
        for trial in range(TRIALS)
    ]


def _flag_settings(cls: type) -> list[dict[str, bool]]:
    """Every combination of the rule's discrete switches (such as `bias_correction`)."""
    default = cls()
    flags = [n for n in cls.hyperparameter_names if isinstance(getattr(default, n), bool)]
    combinations = itertools.product((True, False), repeat=len(flags))
    return [dict(zip(flags, values)) for values in combinations]


def _learning_rate(optimizer: Any) -> float:
    return float(ops.convert_to_numpy(optimizer.learning_rate))


@pytest.mark.parametrize("name", gdbench.optimizers.names())
def test_stacked_population_equals_separate_trials(name: str) -> None:
    cls = gdbench.optimizers.REGISTRY[name]
    for flags in _flag_settings(cls):
        optimizers = _trial_optimizers(cls, flags)
        continuous = [n for n in cls.hyperparameter_names if n not in flags]
        rng = np.random.default_rng(0)
        initial = rng.normal(size=(TRIALS, PARAMETERS))
        # Random signs make sign-driven rules (Rprop) take every branch.
        grads = rng.normal(size=(STEPS, TRIALS, PARAMETERS))
        grads[2, :, 0] = 0.0
        initial_slots = np.array(
            [[opt.slot_initial_value(s) for s in cls.slot_names] for opt in optimizers]
        ).reshape(TRIALS, len(cls.slot_names), 1) * np.ones(PARAMETERS)

        stacked_param = ops.convert_to_tensor(initial)
        stacked_slots = tuple(
            ops.convert_to_tensor(initial_slots[:, i]) for i in range(len(cls.slot_names))
        )
        stacked_hyper = {
            n: ops.convert_to_tensor([[getattr(opt, n)] for opt in optimizers], "float64")
            for n in continuous
        }
        stacked_lr = ops.convert_to_tensor([[_learning_rate(opt)] for opt in optimizers], "float64")

        separate_params = [ops.convert_to_tensor(initial[k]) for k in range(TRIALS)]
        separate_slots = [
            tuple(ops.convert_to_tensor(slot) for slot in initial_slots[k]) for k in range(TRIALS)
        ]

        for t in range(STEPS):
            step = ops.convert_to_tensor(t + 1, "float64")
            stacked_param, stacked_slots = cls.rule(
                stacked_param, ops.convert_to_tensor(grads[t]), stacked_slots,
                step=step, learning_rate=stacked_lr, **stacked_hyper, **flags,
            )
            for k, opt in enumerate(optimizers):
                separate_params[k], separate_slots[k] = cls.rule(
                    separate_params[k], ops.convert_to_tensor(grads[t, k]), separate_slots[k],
                    step=step,
                    learning_rate=ops.convert_to_tensor(_learning_rate(opt), "float64"),
                    **{n: getattr(opt, n) for n in continuous}, **flags,
                )

        np.testing.assert_allclose(
            ops.convert_to_numpy(stacked_param),
            np.stack([ops.convert_to_numpy(p) for p in separate_params]),
            rtol=1e-12, atol=0, err_msg=f"{name} {flags}: parameters",
        )
        for i, slot_name in enumerate(cls.slot_names):
            np.testing.assert_allclose(
                ops.convert_to_numpy(stacked_slots[i]),
                np.stack([ops.convert_to_numpy(s[i]) for s in separate_slots]),
                rtol=1e-12, atol=0, err_msg=f"{name} {flags}: slot {slot_name}",
            )
        moved = not np.allclose(ops.convert_to_numpy(stacked_param), initial)
        assert moved, f"{name} {flags}: no step taken"
