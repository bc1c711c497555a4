"""Hyperparameter domains, described without Optuna.

The study layer converts each Optuna distribution into an :class:`HParamDomain`;
the tracking layer shows it in TensorBoard's HParams dashboard (an interval as
its bounds, a categorical as its list of choices).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Union

#: A value a hyperparameter may take.
HParamValue = Union[None, bool, int, float, str]

#: Accepted values of :attr:`HParamDomain.kind`.
DOMAIN_KINDS: tuple[str, ...] = ("float", "int", "categorical")


@dataclass(frozen=True)
class HParamDomain:
    """The set of values a hyperparameter is searched over.

    Args:
        kind: ``"float"`` (a real interval), ``"int"`` (an integer interval) or
            ``"categorical"`` (a finite list of choices).
        low: lower bound of an interval, inclusive.
        high: upper bound of an interval, inclusive, ``high >= low``.
        log: whether the interval is sampled on a log scale (needs ``low > 0``).
        choices: the values of a categorical hyperparameter: ``None``, bools,
            ints, floats or strings.

    Raises:
        ValueError: a field that does not fit ``kind``; the message names it.
    """

    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[HParamValue, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in DOMAIN_KINDS:
            raise ValueError(f"kind: expected one of {', '.join(DOMAIN_KINDS)}, got {self.kind!r}")
        if not isinstance(self.log, bool):
            raise ValueError(f"log: expected True or False, got {self.log!r}")
        if self.kind == "categorical":
            self._check_categorical()
        else:
            self._check_interval()

    @classmethod
    def fixed(cls, value: HParamValue) -> HParamDomain:
        """A hyperparameter held at one value in the whole study (task, seed, …)."""
        return cls(kind="categorical", choices=(value,))

    @property
    def varies(self) -> bool:
        """Whether the domain holds more than one value."""
        if self.kind == "categorical":
            return len(self.choices) > 1
        return self.low != self.high

    def check(self, name: str, value: HParamValue) -> None:
        """Refuse a value that does not fit the domain.

        A categorical value must be one of the choices: TensorBoard's HParams
        dashboard hides a session whose value is not among them. An interval
        takes any number (a value a rounding away from a bound is no error);
        an ``"int"`` interval takes only integral ones.

        Args:
            name: the hyperparameter's name, for the message.
            value: the trial's value.

        Raises:
            ValueError: ``value`` does not fit; the message names ``name`` and
                the domain.
        """
        if self.kind == "categorical":
            if not any(_same_choice(value, choice) for choice in self.choices):
                raise ValueError(
                    f"{name}: {value!r} is not one of the declared choices {list(self.choices)}"
                )
            return
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(
                f"{name}: expected a number in [{self.low}, {self.high}], got {value!r}"
            )
        if self.kind == "int" and value != int(value):
            raise ValueError(f"{name}: expected an integer, got {value!r}")

    def _check_categorical(self) -> None:
        if self.low is not None or self.high is not None or self.log:
            raise ValueError("low, high, log: only for kind 'float' or 'int', not 'categorical'")
        if not isinstance(self.choices, (list, tuple)):
            raise ValueError(f"choices: expected a list of values, got {self.choices!r}")
        choices = tuple(self.choices)
        if not choices:
            raise ValueError("choices: a categorical domain needs at least one choice")
        for choice in choices:
            if choice is not None and not isinstance(choice, (bool, int, float, str)):
                raise ValueError(
                    f"choices: expected None, bool, int, float or str values, got {choice!r}"
                )
        object.__setattr__(self, "choices", choices)

    def _check_interval(self) -> None:
        if self.choices:
            raise ValueError(f"choices: only for kind 'categorical', not {self.kind!r}")
        low = _bound("low", self.low, self.kind)
        high = _bound("high", self.high, self.kind)
        if low > high:
            raise ValueError(f"low, high: expected low <= high, got low={low!r} > high={high!r}")
        if self.log and low <= 0:
            raise ValueError(f"low: a log-scale domain needs low > 0, got {low!r}")


def _same_choice(value: HParamValue, choice: HParamValue) -> bool:
    """Equal, and not merely as ``True == 1``."""
    return value == choice and isinstance(value, bool) == isinstance(choice, bool)


def _bound(name: str, value: object, kind: str) -> float:
    """An interval bound: a finite number, an integer for kind ``"int"``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name}: expected a number for kind {kind!r}, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    if kind == "int" and value != int(value):
        raise ValueError(f"{name}: expected an integer for kind 'int', got {value!r}")
    return float(value)
