"""Domains: the sets of values a hyperparameter is searched over, each sampled on its own scale.

| domain               | sampled                        | typical use                      |
|----------------------|--------------------------------|----------------------------------|
| `LogUniform`         | log-uniform in [low, high]     | η, ε, weight decay               |
| `OneMinusLogUniform` | β, 1 − β log-spaced (a ladder) | β1, β2, ρ, γ close to 1          |
| `Uniform`            | uniform (or on a grid of step) | drop factors, Rprop's η₋ and η₊  |
| `IntRange`           | integers (log or linear)       | step counts given by the user    |
| `StepsRange`         | integers, fractions of the run | decay steps, periods, warm-up    |
| `Steps`              | a fixed fraction of the run    | ``decay_steps`` = the whole run  |
| `Choice`             | one of a few values            | a flag, a cyclical mode          |
| `Fixed`              | never: the value is set        | anything the spec pins           |

Each domain carries everything that is said of it, so that no other module
switches on its class: ``suggest`` (sample it from an Optuna trial, under the
name the user wrote), ``distribution`` (the Optuna distribution ``suggest``
records), ``bounds``, ``grid`` (for the grid sampler), ``nominal`` (a
representative value), ``middle`` (the domain held at that value),
``candidates`` (the values a spec check tries), ``describe`` (a line of
``gdbench list``) and ``kind``/``log_scale`` (how the HParams dashboard shows
it). The run-relative domains (`StepsRange`, `Steps`, `StepsList`) become
concrete ones through :func:`resolve` once the run's steps are known.

A value is sampled, stored and shown as itself: Optuna's ``trial.params``,
optuna-dashboard, MLflow and TensorBoard all hold ``beta_2 = 0.999``. Optuna's
distributions cannot transform a value, so a decay rate is not sampled as a
float at all: `OneMinusLogUniform` is a categorical choice among readable β
whose 1 − β are log-spaced, 1-2-5 per decade (1 − β = 0.1, 0.05, 0.02, 0.01,
0.005, …, that is β = 0.9, 0.95, 0.98, 0.99, 0.995, …), the range's ends
included. The random sampler draws each value alike, so that 1 − β is as
likely in one decade as in the next, as with a log-uniform float, and the grid
sampler walks them all; TPE models the choice as a category (it does not know
that 0.99 lies between 0.98 and 0.995). A range too narrow for five such values takes a finer
ladder: every digit (1 − β = 0.01, 0.02, …, 0.09), then two significant digits.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Protocol, Sequence, Union

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

__all__ = [
    "Choice", "Domain", "Fixed", "IntRange", "LogUniform", "OneMinusLogUniform", "Steps",
    "StepsList", "StepsRange", "Suggester", "Uniform", "resolve",
]

class Suggester(Protocol):
    """The part of `optuna.Trial` a domain uses to sample itself."""

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float: ...

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1,
                    log: bool = False) -> int: ...

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any: ...


class _Domain:
    """What most domains share: held, they stay as they are."""

    def middle(self) -> Domain:
        return self  # type: ignore[return-value]


@dataclasses.dataclass(frozen=True)
class Fixed(_Domain):
    """A value that is set, not searched."""

    value: Any

    searched = False
    log_scale = False

    @property
    def kind(self) -> str:
        """``"int"`` or ``"float"`` for a number, else ``"categorical"``."""
        if isinstance(self.value, bool) or not isinstance(self.value, (int, float)):
            return "categorical"
        return "int" if isinstance(self.value, int) else "float"

    def bounds(self) -> tuple[Any, ...]:
        return (self.value,)

    def nominal(self) -> Any:
        return self.value

    def candidates(self) -> list[tuple[Any, str]]:
        return [(self.value, "")]

    def describe(self, key: str) -> str:
        return f"{key} = {self.value!r}"


class _Interval(_Domain):
    """What every searched interval shares: held at its middle, checked at both ends."""

    def middle(self) -> Domain:
        return Fixed(self.nominal())  # type: ignore[attr-defined]

    def candidates(self) -> list[tuple[Any, str]]:
        low, high = self.bounds()  # type: ignore[attr-defined]
        return [(low, "low"), (high, "high")]


@dataclasses.dataclass(frozen=True)
class Uniform(_Interval):
    """A float, uniform in [low, high]; on the grid low, low + step, ... when ``step`` is set."""

    low: float
    high: float
    step: float | None = None

    searched = True
    kind = "float"
    log_scale = False

    def suggest(self, trial: Suggester, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, step=self.step)

    def distribution(self) -> BaseDistribution:
        return FloatDistribution(self.low, self.high, step=self.step)

    def nominal(self) -> float:
        return (self.low + self.high) / 2

    def describe(self, key: str) -> str:
        step = f" step {self.step:g}" if self.step is not None else ""
        return f"{key}: uniform in [{self.low:g}, {self.high:g}]{step}"


    def bounds(self) -> tuple[float, float]:
        return (self.low, self.high)

    def grid(self) -> list[float] | None:
        if self.step is None:
            return None
        count = int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1
        return [self.low + index * self.step for index in range(count)]


@dataclasses.dataclass(frozen=True)
class LogUniform(_Interval):
    """A float > 0, log-uniform in [low, high]."""

    low: float
    high: float

    searched = True
    kind = "float"
    log_scale = True

    def suggest(self, trial: Suggester, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=True)

    def distribution(self) -> BaseDistribution:
        return FloatDistribution(self.low, self.high, log=True)

    def nominal(self) -> float:
        return math.sqrt(self.low * self.high)

    def describe(self, key: str) -> str:
        return f"{key}: log-uniform in [{self.low:g}, {self.high:g}]"


    def bounds(self) -> tuple[float, float]:
        return (self.low, self.high)

    def grid(self) -> None:
        return None


@dataclasses.dataclass(frozen=True)
class OneMinusLogUniform(_Interval):
    """A decay rate β < 1, one of the readable β whose 1 − β are log-spaced in [low, high].

    ``low`` and ``high`` bound 1 − β, not β: `OneMinusLogUniform(1e-4, 1e-1)`
    gives β in [0.9, 0.9999], one of 0.9, 0.95, 0.98, 0.99, …, 0.9995, 0.9998,
    0.9999 (see the module docstring). Optuna samples β itself, as a category.
    """

    low: float
    high: float
    values: tuple[float, ...] = dataclasses.field(init=False, repr=False, compare=False)

    searched = True
    kind = "float"
    log_scale = False

    def __post_init__(self) -> None:
        if not 0 < self.low < self.high <= 1:
            raise ValueError(f"low, high: 1 - beta needs 0 < low < high <= 1, "
                             f"got [{self.low!r}, {self.high!r}]")
        ladder = _ladder(self.low, self.high)
        object.__setattr__(self, "values", tuple(_one_minus(x) for x in reversed(ladder)))

    def nominal(self) -> float:
        """The value whose 1 − β lies nearest the log-midpoint of [low, high]."""
        middle = math.log(self.low * self.high) / 2
        return min(self.values, key=lambda beta: abs(math.log(1.0 - beta) - middle))

    def describe(self, key: str) -> str:
        shown = ", ".join(f"{beta:.15g}" for beta in self.values)
        return f"{key}: one of {shown} (1-{key} log-spaced in [{self.low:g}, {self.high:g}])"

    def suggest(self, trial: Suggester, name: str) -> float:
        return trial.suggest_categorical(name, list(self.values))

    def distribution(self) -> BaseDistribution:
        return CategoricalDistribution(list(self.values))

    def bounds(self) -> tuple[float, float]:
        return (self.values[0], self.values[-1])

    def grid(self) -> list[float]:
        return list(self.values)


# Mantissas of the ladders of 1 − β, coarsest first; the first to give a range
# _LADDER_SIZE values (its ends included) is taken.
_LADDERS = ((1, 2, 5), tuple(range(1, 10)), tuple(range(10, 100)))
_LADDER_SIZE = 5


def _ladder(low: float, high: float) -> list[float]:
    """The readable values m·10^k in [low, high], both ends included, ascending."""
    points: set[float] = set()
    for mantissas in _LADDERS:
        points = {low, high}
        for exponent in range(math.floor(math.log10(low)) - 2, math.ceil(math.log10(high)) + 1):
            for mantissa in mantissas:
                # Parsed from its decimal text: 5e-4 is the float nearest 0.0005.
                point = float(f"{mantissa}e{exponent}")
                if low < point < high:
                    points.add(point)
        if len(points) >= _LADDER_SIZE:
            break
    return sorted(points)


def _one_minus(x: float) -> float:
    """1 − x as the shortest decimal it reads as (1 − 0.7 is 0.3, not 0.30000000000000004)."""
    return float(f"{1.0 - x:.15g}")


@dataclasses.dataclass(frozen=True)
class IntRange(_Interval):
    """An integer in [low, high], log-uniform when ``log``."""

    low: int
    high: int
    log: bool = False
    step: int = 1

    searched = True
    kind = "int"
    log_scale = False

    def nominal(self) -> int:
        return (self.low + self.high) // 2

    def describe(self, key: str) -> str:
        return f"{key}: integer in [{self.low}, {self.high}]"

    def suggest(self, trial: Suggester, name: str) -> int:
        return trial.suggest_int(name, self.low, self.high, step=self.step, log=self.log)

    def distribution(self) -> BaseDistribution:
        return IntDistribution(self.low, self.high, step=self.step, log=self.log)


    def bounds(self) -> tuple[int, int]:
        return (self.low, self.high)

    def grid(self) -> list[int] | None:
        return None if self.log else list(range(self.low, self.high + 1, self.step))


@dataclasses.dataclass(frozen=True)
class Choice(_Domain):
    """One of a few values (numbers, strings or booleans)."""

    choices: tuple[Any, ...]

    searched = True
    kind = "categorical"
    log_scale = False

    def nominal(self) -> Any:
        return self.choices[0]

    def middle(self) -> Domain:
        return Fixed(self.nominal())

    def candidates(self) -> list[tuple[Any, str]]:
        return [(choice, f"choices[{index}]") for index, choice in enumerate(self.choices)]

    def describe(self, key: str) -> str:
        return f"{key}: one of {list(self.choices)}"

    def suggest(self, trial: Suggester, name: str) -> Any:
        return trial.suggest_categorical(name, list(self.choices))

    def distribution(self) -> BaseDistribution:
        return CategoricalDistribution(list(self.choices))


    def bounds(self) -> tuple[Any, ...]:
        return self.choices

    def grid(self) -> list[Any]:
        return list(self.choices)


@dataclasses.dataclass(frozen=True)
class StepsRange(_Domain):
    """An integer number of steps, a fraction ``low`` … ``high`` of the run's steps."""

    low: float
    high: float
    log: bool = True

    searched = True

    def middle(self) -> Steps:
        if self.log:
            return Steps(math.sqrt(self.low * self.high))
        return Steps((self.low + self.high) / 2)

    def describe(self, key: str) -> str:
        return f"{key}: {self.low:.0%}-{self.high:.0%} of the run's steps"

    def resolve(self, total_steps: int) -> IntRange | Fixed:
        low = max(1, round(self.low * total_steps))
        high = max(low, round(self.high * total_steps))
        return Fixed(low) if low == high else IntRange(low, high, log=self.log)


@dataclasses.dataclass(frozen=True)
class Steps(_Domain):
    """A fixed number of steps, ``fraction`` of the run's steps (at least 1)."""

    fraction: float

    searched = False

    def describe(self, key: str) -> str:
        return f"{key}: {self.fraction:.0%} of the run's steps"

    def resolve(self, total_steps: int) -> Fixed:
        return Fixed(max(1, round(self.fraction * total_steps)))


@dataclasses.dataclass(frozen=True)
class StepsList(_Domain):
    """Fixed step boundaries at the given fractions of the run (strictly increasing, ≥ 1)."""

    fractions: tuple[float, ...]

    searched = False

    def describe(self, key: str) -> str:
        return f"{key}: at " + ", ".join(f"{f:.0%}" for f in self.fractions) + " of the run"

    def resolve(self, total_steps: int) -> Fixed:
        boundaries: list[int] = []
        for fraction in self.fractions:
            lowest = boundaries[-1] + 1 if boundaries else 1
            boundaries.append(max(round(fraction * total_steps), lowest))
        return Fixed(boundaries)


Domain = Union[Fixed, Uniform, LogUniform, OneMinusLogUniform, IntRange, Choice,
               StepsRange, Steps, StepsList]


def resolve(domain: Domain, total_steps: int) -> Domain:
    """``domain`` with run-relative sizes (`StepsRange`, `Steps`, `StepsList`) made concrete.

    Args:
        domain: any domain.
        total_steps: the optimizer steps of one trial, epochs × steps per epoch.
    """
    if isinstance(domain, (StepsRange, Steps, StepsList)):
        return domain.resolve(total_steps)
    return domain

