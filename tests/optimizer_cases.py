"""The one table of every optimizer under test.

Each row is an algorithm of DESIGN.md: its keywords with their documented
defaults, and the non-default hyperparameter sets every generic test also runs.
A new algorithm is one new row; every test parametrized over :data:`CASES` or
:data:`NAMES` then checks it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

import gdbench.optimizers


@dataclasses.dataclass(frozen=True)
class OptimizerRow:
    """One algorithm: DESIGN.md's keywords and defaults, and the variants tested.

    Args:
        defaults: every keyword of DESIGN.md's table with its default value.
        variants: keyword sets besides the defaults; each is merged over
            ``defaults``.
        averaged: the decay keywords ρ of moving averages ρ a + (1 − ρ) x.
        bias_corrected: the decay keywords β whose moments the rule divides by
            1 − βᵗ.

    ``averaged`` and ``bias_corrected`` say where float32 loses precision
    when a decay is close to 1: 1 − ρ and 1 − βᵗ cancel.
    """

    defaults: dict[str, Any]
    variants: tuple[dict[str, Any], ...]
    averaged: tuple[str, ...] = ()
    bias_corrected: tuple[str, ...] = ()


_ADAM_DEFAULTS = {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8}
# β close to 0 and close to 1, and an ε large enough to change the steps.
_ADAM_LIKE_VARIANTS = (
    {"learning_rate": 0.01, "beta_1": 0.5, "beta_2": 0.9},
    {"learning_rate": 0.005, "beta_1": 0.99, "beta_2": 0.9999, "epsilon": 1e-3},
)

#: name → row, in DESIGN.md's order.
OPTIMIZERS: dict[str, OptimizerRow] = {
    "gd": OptimizerRow(
        defaults={"learning_rate": 0.01},
        variants=({"learning_rate": 0.1}, {"learning_rate": 0.003}),
    ),
    "momentum": OptimizerRow(
        defaults={"learning_rate": 0.01, "momentum": 0.9},
        variants=(
            {"learning_rate": 0.002, "momentum": 0.99},
            {"learning_rate": 0.05, "momentum": 0.2},
        ),
    ),
    "nesterov": OptimizerRow(
        defaults={"learning_rate": 0.01, "momentum": 0.9},
        variants=(
            {"learning_rate": 0.002, "momentum": 0.99},
            {"learning_rate": 0.05, "momentum": 0.2},
        ),
    ),
    "adagrad": OptimizerRow(
        defaults={"learning_rate": 0.01, "epsilon": 1e-8, "initial_accumulator_value": 0.0},
        variants=(
            {"learning_rate": 0.1, "initial_accumulator_value": 0.1},
            {"learning_rate": 0.03, "epsilon": 1e-3},
        ),
    ),
    "rmsprop": OptimizerRow(
        defaults={"learning_rate": 0.001, "rho": 0.9, "epsilon": 1e-8},
        variants=(
            {"learning_rate": 0.01, "rho": 0.999, "epsilon": 1e-3},
            {"learning_rate": 0.003, "rho": 0.5},
        ),
        averaged=("rho",),
    ),
    "adadelta": OptimizerRow(
        defaults={"learning_rate": 1.0, "rho": 0.95, "epsilon": 1e-6},
        variants=(
            {"rho": 0.999, "epsilon": 1e-3},
            {"learning_rate": 0.5, "rho": 0.5, "epsilon": 1e-8},
        ),
        averaged=("rho",),
    ),
    "adam": OptimizerRow(
        defaults={**_ADAM_DEFAULTS, "bias_correction": True},
        variants=(
            {**_ADAM_LIKE_VARIANTS[0], "bias_correction": False},
            _ADAM_LIKE_VARIANTS[1],
        ),
        averaged=("beta_1", "beta_2"),
        bias_corrected=("beta_1", "beta_2"),
    ),
    "adamax": OptimizerRow(
        defaults={**_ADAM_DEFAULTS, "learning_rate": 0.002},
        variants=_ADAM_LIKE_VARIANTS,
        averaged=("beta_1",),
        bias_corrected=("beta_1",),
    ),
    "nadam": OptimizerRow(
        defaults=dict(_ADAM_DEFAULTS), variants=_ADAM_LIKE_VARIANTS,
        averaged=("beta_1", "beta_2"),
        bias_corrected=("beta_1", "beta_2"),
    ),
    "amsgrad": OptimizerRow(
        defaults=dict(_ADAM_DEFAULTS), variants=_ADAM_LIKE_VARIANTS, averaged=("beta_1", "beta_2")
    ),
    "adamw": OptimizerRow(
        defaults={**_ADAM_DEFAULTS, "weight_decay": 0.01},
        variants=(
            {**_ADAM_LIKE_VARIANTS[0], "weight_decay": 0.1},
            {**_ADAM_LIKE_VARIANTS[1], "weight_decay": 2.0},
        ),
        averaged=("beta_1", "beta_2"),
        bias_corrected=("beta_1", "beta_2"),
    ),
    "maxprop": OptimizerRow(
        defaults={"learning_rate": 0.001, "rho": 0.999, "epsilon": 1e-8},
        variants=(
            {"learning_rate": 0.01, "rho": 0.9},
            {"learning_rate": 0.003, "rho": 0.99999, "epsilon": 1e-3},
        ),
    ),
    "rprop": OptimizerRow(
        defaults={
            "learning_rate": 0.01, "eta_minus": 0.5, "eta_plus": 1.2,
            "min_step": 1e-6, "max_step": 50.0,
        },
        # The first variant reaches both clips within a few dozen steps.
        variants=(
            {
                "learning_rate": 0.02, "eta_minus": 0.3, "eta_plus": 1.5,
                "min_step": 1e-3, "max_step": 0.05,
            },
            {
                "learning_rate": 0.001, "eta_minus": 0.7, "eta_plus": 1.05,
                "min_step": 1e-8, "max_step": 1.0,
            },
        ),
    ),
}

#: Every registered optimizer, in the registry's order (DESIGN.md's): a new entry
#: of the registry is picked up by every generic test, and fails
#: ``test_every_registered_optimizer_has_its_row`` until its row is written.
NAMES: list[str] = gdbench.optimizers.names()


@dataclasses.dataclass(frozen=True)
class OptimizerCase:
    """One optimizer with one hyperparameter set.

    Args:
        name: the registered name.
        keywords: what the test passes to ``gdbench.optimizers.get``; empty
            for the defaults, so that the defaults themselves are exercised.
    """

    name: str
    keywords: dict[str, Any]

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """Every keyword's value: DESIGN.md's defaults overridden by ``keywords``."""
        return {**OPTIMIZERS[self.name].defaults, **self.keywords}

    @property
    def learning_rate(self) -> float:
        """η (the initial step size for rprop)."""
        return float(self.hyperparameters["learning_rate"])

    @property
    def rule_hyperparameters(self) -> dict[str, Any]:
        """The hyperparameters other than η, as the reference rules take them."""
        return {k: v for k, v in self.hyperparameters.items() if k != "learning_rate"}

    @property
    def averaged_decays(self) -> list[float]:
        """The values of the moving averages' decays ρ in this case."""
        return [float(self.hyperparameters[k]) for k in OPTIMIZERS[self.name].averaged]

    @property
    def bias_corrected_decays(self) -> list[float]:
        """The values of the β that the rule bias-corrects with, in this case."""
        if self.hyperparameters.get("bias_correction") is False:
            return []
        return [float(self.hyperparameters[k]) for k in OPTIMIZERS[self.name].bias_corrected]

    @property
    def id(self) -> str:
        """The pytest id: the name and the keywords given."""
        if not self.keywords:
            return f"{self.name}-defaults"
        return self.name + "-" + ",".join(f"{k}={v}" for k, v in self.keywords.items())


def _cases() -> list[OptimizerCase]:
    cases = []
    for name in NAMES:
        row = OPTIMIZERS.get(name, OptimizerRow(defaults={}, variants=()))
        cases.append(OptimizerCase(name, {}))
        cases.extend(OptimizerCase(name, dict(variant)) for variant in row.variants)
    return cases


#: Every registered optimizer × every hyperparameter set of its row (defaults first).
CASES: list[OptimizerCase] = _cases()


# float32: the reference rounds to float32 where gdbench does, but the two
# associate some products differently (η·m̂/(√v̂+ε) vs (η·m̂)/(√v̂+ε), ...), so
# each step's increment may differ by a few ulps, ~3e-7 of the increment. Over
# 40 steps of increments up to ~0.1 that stays below 1e-6 absolute; rtol 1e-5
# bounds the rest for parameters of order one. Decays close to 1 add their own
# budget, see `float32_bound`.
FLOAT32_RTOL, FLOAT32_ATOL = 1e-5, 1e-6
FLOAT32_ROUNDOFF = float(np.finfo(np.float32).eps) / 2


def float32_bound(case: OptimizerCase, initial: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Per step and element, how far a float32 run of ``case`` may be from the float32 reference.

    ``expected`` is the reference trajectory from ``initial``, shaped
    ``(steps, *initial.shape)``. The bound is FLOAT32_RTOL of the reference
    plus an absolute budget: FLOAT32_ATOL, and what two quantities that cancel
    in float32 when a decay is close to 1 add, since the same formula evaluated
    in two valid float32 ways (a constant rounded before or after a
    subtraction, a ``pow`` off by an ulp) may differ by more than a few ulps:

    - 1 − ρ of a moving average: from ρ rounded to float32 it is off by
      u ρ/(1 − ρ) relative (6e-5 for ρ = 0.999), and so is every later
      increment;
    - 1 − βᵗ of a bias correction: a float32 ``pow`` need not be correctly
      rounded (TensorFlow's is an ulp off for about a quarter of the steps
      with β = 0.9999), an error of 2u βᵗ/(1 − βᵗ) relative, 1e-3 at t = 1.

    Each step's increment Δw_t may be off by that fraction, and the errors add
    up along the trajectory.
    """
    start = initial[None].astype(expected.dtype)
    increments = np.abs(np.diff(expected, axis=0, prepend=start)).astype(np.float64)
    steps = np.arange(1, len(expected) + 1, dtype=np.float64).reshape(-1, *([1] * initial.ndim))
    condition = sum(rho / (1.0 - rho) for rho in case.averaged_decays) + sum(
        2 * beta**steps / (1.0 - beta**steps) for beta in case.bias_corrected_decays if beta > 0
    )
    atol = FLOAT32_ATOL + np.cumsum(increments * FLOAT32_ROUNDOFF * condition, axis=0)
    return atol + FLOAT32_RTOL * np.abs(expected.astype(np.float64))
