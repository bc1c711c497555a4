"""Search spaces: the ranges a study samples, as data beside each algorithm.

A space maps a keyword (or a schedule's derived parameter, such as
``base_fraction``) to a *domain*: a fixed value, a range or a set of choices.
Each domain is sampled on the scale that suits it:

| domain               | sampled                        | typical use                      |
|----------------------|--------------------------------|----------------------------------|
| `LogUniform`         | log-uniform in [low, high]     | η, ε, weight decay               |
| `OneMinusLogUniform` | 1 − β, log-uniform             | β1, β2, ρ, γ close to 1          |
| `Uniform`            | uniform (or on a grid of step) | drop factors, Rprop's η₋ and η₊  |
| `IntRange`           | integers (log or linear)       | step counts given by the user    |
| `StepsRange`         | integers, fractions of the run | decay steps, periods, warm-up    |
| `Steps`              | a fixed fraction of the run    | ``decay_steps`` = the whole run  |
| `Choice`             | one of a few values            | a flag, a cyclical mode          |
| `Fixed`              | never: the value is set        | anything the spec pins           |

`OneMinusLogUniform(1e-4, 1e-1)` samples x = 1 − β2 log-uniformly, so that
β2 = 0.999 and β2 = 0.9999 are as far apart as 0.9 and 0.99: the Optuna
parameter is then ``one_minus_beta_2``, the optimizer gets β2 = 1 − x.

Schedules are sized from the run: ``StepsRange(0.1, 0.5)`` is an integer
range from 10 % to 50 % of ``epochs × steps_per_epoch``, resolved when the
number of steps is known (:meth:`StepsRange.resolve`). A schedule's η is
the optimizer's ``learning_rate``, set on the keyword its
:class:`ScheduleSpace` names (the peak of a cyclical rate, the target of a
warm-up).
"""

from __future__ import annotations

import dataclasses
import math
from types import MappingProxyType
from typing import Any, Callable, Mapping, Protocol, Sequence, Union

__all__ = [
    "Choice",
    "DECAY_KEYWORDS",
    "Derived",
    "Domain",
    "Fixed",
    "IntRange",
    "LogUniform",
    "OPTIMIZER_SPACES",
    "OneMinusLogUniform",
    "SCHEDULE_SPACES",
    "ScheduleSpace",
    "Steps",
    "StepsList",
    "StepsRange",
    "Suggester",
    "Uniform",
    "resolve",
]


class Suggester(Protocol):
    """The part of `optuna.Trial` a domain uses to sample itself."""

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float: ...

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1,
                    log: bool = False) -> int: ...

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any: ...


@dataclasses.dataclass(frozen=True)
class Fixed:
    """A value that is set, not searched."""

    value: Any

    searched = False

    def parameter_name(self, name: str) -> str:
        return name

    def bounds(self) -> tuple[Any, ...]:
        return (self.value,)


@dataclasses.dataclass(frozen=True)
class Uniform:
    """A float, uniform in [low, high]; on the grid low, low + step, ... when ``step`` is set."""

    low: float
    high: float
    step: float | None = None

    searched = True

    def parameter_name(self, name: str) -> str:
        return name

    def suggest(self, trial: Suggester, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, step=self.step)

    def to_value(self, sample: Any) -> float:
        return float(sample)

    def bounds(self) -> tuple[float, float]:
        return (self.low, self.high)

    def grid(self) -> list[float] | None:
        if self.step is None:
            return None
        count = int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1
        return [self.low + index * self.step for index in range(count)]


@dataclasses.dataclass(frozen=True)
class LogUniform:
    """A float > 0, log-uniform in [low, high]."""

    low: float
    high: float

    searched = True

    def parameter_name(self, name: str) -> str:
        return name

    def suggest(self, trial: Suggester, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=True)

    def to_value(self, sample: Any) -> float:
        return float(sample)

    def bounds(self) -> tuple[float, float]:
        return (self.low, self.high)

    def grid(self) -> None:
        return None


@dataclasses.dataclass(frozen=True)
class OneMinusLogUniform:
    """A decay rate β < 1 sampled as x = 1 − β, log-uniform in [low, high].

    ``low`` and ``high`` bound x, not β: `OneMinusLogUniform(1e-4, 1e-1)`
    gives β in [0.9, 0.9999].
    """

    low: float
    high: float

    searched = True

    def parameter_name(self, name: str) -> str:
        return f"one_minus_{name}"

    def suggest(self, trial: Suggester, name: str) -> float:
        return self.to_value(trial.suggest_float(name, self.low, self.high, log=True))

    def to_value(self, sample: Any) -> float:
        return 1.0 - float(sample)

    def bounds(self) -> tuple[float, float]:
        return (1.0 - self.high, 1.0 - self.low)

    def grid(self) -> None:
        return None


@dataclasses.dataclass(frozen=True)
class IntRange:
    """An integer in [low, high], log-uniform when ``log``."""

    low: int
    high: int
    log: bool = False
    step: int = 1

    searched = True

    def parameter_name(self, name: str) -> str:
        return name

    def suggest(self, trial: Suggester, name: str) -> int:
        return trial.suggest_int(name, self.low, self.high, step=self.step, log=self.log)

    def to_value(self, sample: Any) -> int:
        return int(sample)

    def bounds(self) -> tuple[int, int]:
        return (self.low, self.high)

    def grid(self) -> list[int] | None:
        return None if self.log else list(range(self.low, self.high + 1, self.step))


@dataclasses.dataclass(frozen=True)
class Choice:
    """One of a few values (numbers, strings or booleans)."""

    choices: tuple[Any, ...]

    searched = True

    def parameter_name(self, name: str) -> str:
        return name

    def suggest(self, trial: Suggester, name: str) -> Any:
        return trial.suggest_categorical(name, list(self.choices))

    def to_value(self, sample: Any) -> Any:
        return sample

    def bounds(self) -> tuple[Any, ...]:
        return self.choices

    def grid(self) -> list[Any]:
        return list(self.choices)


@dataclasses.dataclass(frozen=True)
class StepsRange:
    """An integer number of steps, a fraction ``low`` … ``high`` of the run's steps."""

    low: float
    high: float
    log: bool = True

    searched = True

    def parameter_name(self, name: str) -> str:
        return name

    def resolve(self, total_steps: int) -> IntRange | Fixed:
        low = max(1, round(self.low * total_steps))
        high = max(low, round(self.high * total_steps))
        return Fixed(low) if low == high else IntRange(low, high, log=self.log)


@dataclasses.dataclass(frozen=True)
class Steps:
    """A fixed number of steps, ``fraction`` of the run's steps (at least 1)."""

    fraction: float

    searched = False

    def parameter_name(self, name: str) -> str:
        return name

    def resolve(self, total_steps: int) -> Fixed:
        return Fixed(max(1, round(self.fraction * total_steps)))


@dataclasses.dataclass(frozen=True)
class StepsList:
    """Fixed step boundaries at the given fractions of the run (strictly increasing, ≥ 1)."""

    fractions: tuple[float, ...]

    searched = False

    def parameter_name(self, name: str) -> str:
        return name

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


#: Keywords that are decay rates β < 1, searched as 1 − β on a log scale.
DECAY_KEYWORDS = frozenset({"momentum", "rho", "beta_1", "beta_2"})

_EPSILON = LogUniform(1e-10, 1e-4)
_BETA_1 = OneMinusLogUniform(1e-2, 0.5)
_BETA_2 = OneMinusLogUniform(1e-4, 1e-1)


def _adam_family(learning_rate: LogUniform, **extra: Domain) -> Mapping[str, Domain]:
    return MappingProxyType({
        "learning_rate": learning_rate, "beta_1": _BETA_1, "beta_2": _BETA_2,
        "epsilon": _EPSILON, **extra,
    })


#: The default space of every optimizer: what a spec searches unless it says otherwise.
#: η ranges are wide enough for the toy surfaces (where plain GD wants η ≈ 1)
#: and the image tasks alike; adaptive methods normalise the step, hence
#: their smaller η. Keywords left out (Adagrad's initial accumulator,
#: Rprop's step bounds, Adam's bias correction) keep their defaults.
OPTIMIZER_SPACES: Mapping[str, Mapping[str, Domain]] = MappingProxyType({
    "gd": MappingProxyType({"learning_rate": LogUniform(1e-3, 10.0)}),
    "momentum": MappingProxyType({
        "learning_rate": LogUniform(1e-4, 1.0), "momentum": OneMinusLogUniform(1e-2, 0.5),
    }),
    "nesterov": MappingProxyType({
        "learning_rate": LogUniform(1e-4, 1.0), "momentum": OneMinusLogUniform(1e-2, 0.5),
    }),
    "adagrad": MappingProxyType({
        "learning_rate": LogUniform(1e-3, 1.0), "epsilon": _EPSILON,
    }),
    "rmsprop": MappingProxyType({
        "learning_rate": LogUniform(1e-4, 1e-1), "rho": OneMinusLogUniform(1e-3, 0.3),
        "epsilon": _EPSILON,
    }),
    "adadelta": MappingProxyType({
        "learning_rate": LogUniform(1e-2, 10.0), "rho": OneMinusLogUniform(1e-3, 0.3),
        "epsilon": LogUniform(1e-8, 1e-3),
    }),
    "adam": _adam_family(LogUniform(1e-4, 1e-1)),
    "adamax": _adam_family(LogUniform(1e-4, 1e-1)),
    "nadam": _adam_family(LogUniform(1e-4, 1e-1)),
    "amsgrad": _adam_family(LogUniform(1e-4, 1e-1)),
    "adamw": _adam_family(LogUniform(1e-4, 1e-1), weight_decay=LogUniform(1e-5, 1e-1)),
    "maxprop": MappingProxyType({
        "learning_rate": LogUniform(1e-4, 1e-1), "rho": OneMinusLogUniform(1e-4, 1e-1),
        "epsilon": _EPSILON,
    }),
    "rprop": MappingProxyType({
        "learning_rate": LogUniform(1e-4, 1e-1), "eta_minus": Uniform(0.1, 0.9),
        "eta_plus": Uniform(1.05, 2.0),
    }),
})


@dataclasses.dataclass(frozen=True)
class Derived:
    """A schedule parameter that is not a keyword: it sets ``keyword`` from η and itself.

    Attributes:
        keyword: the schedule keyword it sets.
        compute: ``compute(eta, value, keywords)`` → the keyword's value;
            ``keywords`` holds the schedule's other keywords already set.
        description: one line for ``gdbench list``.
    """

    keyword: str
    compute: Callable[[float, Any, Mapping[str, Any]], Any]
    description: str


@dataclasses.dataclass(frozen=True)
class ScheduleSpace:
    """How a study sets one schedule's keywords.

    Attributes:
        learning_rate_keyword: the keyword η (the optimizer's searched
            ``learning_rate``) sets; ``None`` when η enters through a
            derived parameter only.
        parameters: the default domain of every other parameter: schedule
            keywords and the derived parameters.
        derived: the parameters that are not keywords, and how each sets one.
    """

    learning_rate_keyword: str | None
    parameters: Mapping[str, Domain]
    derived: Mapping[str, Derived] = dataclasses.field(
        default_factory=lambda: MappingProxyType({}))


def _fraction_of_eta(eta: float, fraction: Any, keywords: Mapping[str, Any]) -> float:
    del keywords
    return eta * float(fraction)


def _piecewise_values(eta: float, drop: Any, keywords: Mapping[str, Any]) -> list[float]:
    return [eta * float(drop) ** index for index in range(len(keywords["boundaries"]) + 1)]


#: The default space of every schedule, sized from the run's steps T.
SCHEDULE_SPACES: Mapping[str, ScheduleSpace] = MappingProxyType({
    "constant": ScheduleSpace("learning_rate", MappingProxyType({})),
    "step_decay": ScheduleSpace("initial_learning_rate", MappingProxyType({
        "drop": Uniform(0.1, 0.9), "steps_per_drop": StepsRange(0.1, 0.5),
    })),
    # decay_steps = T: η ends at decay_rate · η₀.
    "exponential": ScheduleSpace("initial_learning_rate", MappingProxyType({
        "decay_rate": LogUniform(0.01, 0.5), "decay_steps": Steps(1.0),
    })),
    # decay_steps = T: η ends at η₀ / (1 + decay_rate).
    "inverse_time": ScheduleSpace("initial_learning_rate", MappingProxyType({
        "decay_rate": LogUniform(0.3, 30.0), "decay_steps": Steps(1.0),
    })),
    "inverse_sqrt": ScheduleSpace("initial_learning_rate", MappingProxyType({
        "decay_steps": StepsRange(0.001, 0.1),
    })),
    "polynomial": ScheduleSpace(
        "initial_learning_rate",
        MappingProxyType({
            "decay_steps": Steps(1.0), "end_fraction": LogUniform(1e-3, 0.1),
            "power": Uniform(0.5, 3.0),
        }),
        MappingProxyType({"end_fraction": Derived(
            "end_learning_rate", _fraction_of_eta, "end_learning_rate = η · end_fraction")}),
    ),
    "piecewise_constant": ScheduleSpace(
        None,
        MappingProxyType({"boundaries": StepsList((1 / 3, 2 / 3)), "drop": Uniform(0.05, 0.5)}),
        MappingProxyType({"drop": Derived(
            "values", _piecewise_values,
            "values = η, η·drop, η·drop², … (one per interval)")}),
    ),
    # η is the peak; two cycles at least.
    "cyclical": ScheduleSpace(
        "maximal_learning_rate",
        MappingProxyType({
            "base_fraction": LogUniform(0.01, 0.3), "step_size": StepsRange(0.05, 0.25),
        }),
        MappingProxyType({"base_fraction": Derived(
            "initial_learning_rate", _fraction_of_eta,
            "initial_learning_rate (the base) = η · base_fraction")}),
    ),
    "cosine": ScheduleSpace("initial_learning_rate", MappingProxyType({
        "decay_steps": Steps(1.0),
    })),
    "cosine_restarts": ScheduleSpace(
        "maximal_learning_rate",
        MappingProxyType({
            "minimal_fraction": LogUniform(1e-3, 0.1), "period": StepsRange(0.1, 0.5),
        }),
        MappingProxyType({"minimal_fraction": Derived(
            "minimal_learning_rate", _fraction_of_eta,
            "minimal_learning_rate = η · minimal_fraction")}),
    ),
    # η is the rate reached after the ramp (the target, or the target schedule's own η).
    "warmup": ScheduleSpace("target", MappingProxyType({
        "warmup_steps": StepsRange(0.01, 0.2),
    })),
})
