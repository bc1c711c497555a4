"""The one table of every optimizer under test.

Each row is an algorithm of DESIGN.md: its keywords with their documented
defaults, and the non-default hyperparameter sets every generic test also runs.
A new algorithm is one new row; every test parametrized over :data:`CASES` or
:data:`NAMES` then checks it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

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
