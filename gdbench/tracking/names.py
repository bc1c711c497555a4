"""The one name of a trial, the same in MLflow and TensorBoard.

A trial's run is named after what sets it apart, so that a table of runs reads
as a comparison: the optimizer (and its schedule), the searched values in the
lectures' symbols, then the trial's number in the study::

    >>> trial_run_name(6, {"optimizer": "adam", "schedule": "none",
    ...                    "learning_rate": 0.021634, "beta_1": 0.7}, ["learning_rate", "beta_1"])
    'adam · η=0.0216 β1=0.7 · #6'
    >>> trial_run_name(12, {"optimizer": "gd", "schedule": "cosine", "learning_rate": 0.5},
    ...                ["learning_rate"])
    'gd, cosine · η=0.5 · #12'
    >>> format_value(0.9995), format_value(0.99987), format_value(0.761), format_value(0.95)
    ('0.9995', '0.99987', '0.761', '0.95')
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import Any

#: A hyperparameter's symbol in a run name; other names are written as they are.
SYMBOLS = {
    "learning_rate": "η",
    "beta_1": "β1",
    "beta_2": "β2",
    "epsilon": "ε",
    "rho": "ρ",
    "momentum": "γ",
    "weight_decay": "λ",
    "initial_accumulator_value": "G0",
    "eta_plus": "η+",
    "eta_minus": "η−",
}

#: The tracked values that name the trial's algorithm rather than tune it.
LABEL_KEYS = ("optimizer", "schedule")

#: The ``schedule`` value of a trial whose η is constant.
NO_SCHEDULE = "none"


def format_value(value: Any) -> str:
    """A hyperparameter value as a run name shows it: numbers to 3 significant digits."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    short = f"{value:.3g}"
    if short == "1" and 0 < value < 1:
        # A decay rate close to 1: as many decimals as show 1 − β to two digits
        # (0.9995, not 1).
        decimals = 1 - math.floor(math.log10(1 - value))
        return f"{value:.{decimals}f}".rstrip("0")
    return short


def trial_run_name(number: int, params: Mapping[str, Any], varying: Collection[str]) -> str:
    """``adam · η=0.0216 β1=0.7 · #6``: trial ``number``'s run name.

    Args:
        number: the trial's number in the study.
        params: the trial's tracked values (``optimizer``, ``schedule`` and
            hyperparameters, as the trackers get them).
        varying: the names whose values differ between trials of the study
            (the searched ones); only these are written, in the order of ``params``.
    """
    label = branch_label(*(str(params.get(key, "")) for key in LABEL_KEYS))
    values = " ".join(f"{SYMBOLS.get(key, key)}={format_value(value)}"
                      for key, value in params.items()
                      if key in varying and key not in LABEL_KEYS)
    return " · ".join(part for part in (label, values, f"#{number}") if part)


def branch_label(optimizer: str, schedule: str) -> str:
    """``adam, cosine``: an optimizer and its schedule as every table, legend and run name
    writes them; the optimizer alone when η is constant (``schedule`` empty or
    :data:`NO_SCHEDULE`)."""
    return ", ".join(part for part in (optimizer, "" if schedule == NO_SCHEDULE else schedule) if part)
