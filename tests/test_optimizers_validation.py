"""Bad hyperparameters are refused at construction, with the keyword named.

The bad values are data, by kind of keyword; every keyword of every row of the
optimizer table is tried with every bad value of its kind.
"""

from __future__ import annotations

import math
import re
from typing import Any

import keras
import pytest
from optimizer_cases import NAMES, OPTIMIZERS

import gdbench.optimizers

DESIGN_NAMES = [
    "gd", "momentum", "nesterov", "adagrad", "rmsprop", "adadelta", "adam",
    "adamax", "nadam", "amsgrad", "adamw", "maxprop", "rprop",
]

DECAY_BAD = [1.0, 1.5, -0.1, math.nan]
BAD_VALUES: dict[str, list[Any]] = {
    "learning_rate": [0.0, -0.01, math.nan, math.inf, "fast"],
    "momentum": DECAY_BAD,
    "rho": DECAY_BAD,
    "beta_1": DECAY_BAD,
    "beta_2": DECAY_BAD,
    "epsilon": [0.0, -1e-8, math.nan, math.inf],
    "initial_accumulator_value": [-0.1, math.nan],
    "weight_decay": [-0.01, math.nan],
    "bias_correction": ["yes", None],
    # Rprop shrinks by η₋ on a sign change and grows by η₊ on agreement.
    "eta_minus": [0.0, -0.5, 1.5, math.nan],
    "eta_plus": [0.5, -1.0, math.nan],
    "min_step": [0.0, -1e-6, math.nan],
    "max_step": [-1.0, math.nan],
}

BAD_CASES = [
    (name, keyword, value)
    for name, row in OPTIMIZERS.items()
    for keyword in row.defaults
    for value in BAD_VALUES[keyword]
]


def test_every_design_keyword_has_bad_values() -> None:
    assert {keyword for row in OPTIMIZERS.values() for keyword in row.defaults} == set(BAD_VALUES)


def test_names_are_designs_in_order() -> None:
    assert gdbench.optimizers.names() == DESIGN_NAMES
    assert NAMES == DESIGN_NAMES


@pytest.mark.parametrize(
    ("name", "keyword", "value"), BAD_CASES,
    ids=[f"{name}-{keyword}={value!r}" for name, keyword, value in BAD_CASES],
)
def test_bad_value_is_refused_naming_the_keyword(name: str, keyword: str, value: Any) -> None:
    with pytest.raises(ValueError, match=re.escape(keyword)):
        gdbench.optimizers.get(name, **{keyword: value})


@pytest.mark.parametrize("name", NAMES)
def test_valid_extremes_are_accepted(name: str) -> None:
    """The closed ends of the documented ranges: β = 0, and a schedule for η."""
    may_be_zero = {
        "momentum", "rho", "beta_1", "beta_2", "initial_accumulator_value", "weight_decay"
    }
    keywords: dict[str, Any] = {
        keyword: 0.0 for keyword in OPTIMIZERS[name].defaults if keyword in may_be_zero
    }
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.9)
    optimizer = gdbench.optimizers.get(name, learning_rate=schedule, **keywords)
    config = optimizer.get_config()
    assert all(config[keyword] == 0.0 for keyword in keywords)


@pytest.mark.parametrize("name", NAMES)
def test_integer_learning_rate_is_a_float(name: str) -> None:
    """``learning_rate=1`` (AdaDelta's customary η) works; Keras's base would refuse an int."""
    assert gdbench.optimizers.get(name, learning_rate=1).get_config()["learning_rate"] == 1.0


def test_rprop_refuses_max_step_below_min_step() -> None:
    with pytest.raises(ValueError, match="max_step"):
        gdbench.optimizers.get("rprop", min_step=0.1, max_step=0.01)


@pytest.mark.parametrize("name", NAMES)
def test_unknown_keyword_is_refused_naming_it(name: str) -> None:
    with pytest.raises(ValueError, match="step_size_typo"):
        gdbench.optimizers.get(name, step_size_typo=0.1)


@pytest.mark.parametrize("name", [name for name in NAMES if name != "adamw"])
def test_weight_decay_is_refused_outside_adamw(name: str) -> None:
    """Keras's base would silently decay any optimizer given ``weight_decay``."""
    with pytest.raises(ValueError, match="weight_decay"):
        gdbench.optimizers.get(name, weight_decay=0.01)


def test_unknown_name_lists_the_registered_names() -> None:
    with pytest.raises(KeyError) as raised:
        gdbench.optimizers.get("adamm")
    message = str(raised.value)
    assert "adamm" in message
    assert all(name in message for name in DESIGN_NAMES)


def test_keywords_with_an_instance_are_refused() -> None:
    optimizer = gdbench.optimizers.get("adam")
    assert gdbench.optimizers.get(optimizer) is optimizer
    with pytest.raises(ValueError, match="learning_rate"):
        gdbench.optimizers.get(optimizer, learning_rate=0.1)


def test_names_are_case_insensitive() -> None:
    assert type(gdbench.optimizers.get("AdamW")) is type(gdbench.optimizers.get("adamw"))
