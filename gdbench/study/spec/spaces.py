"""Search spaces: the ranges a study samples, as data beside each algorithm.

A space maps a keyword (or a schedule's derived parameter, such as
``base_fraction``) to a *domain* of :mod:`gdbench.study.spec.domains`: a fixed
value, a range or a set of choices, each sampled on the scale that suits it.

`OneMinusLogUniform(1e-4, 1e-1)` searches β2 among 0.9, 0.95, 0.98, 0.99,
…, 0.9998, 0.9999, whose 1 − β2 are log-spaced, so that β2 = 0.999 and
β2 = 0.9999 are as far apart as 0.9 and 0.99: the Optuna parameter is
``beta_2``, and its value is β2 itself (see :mod:`gdbench.study.spec.domains`).

One keyword has one default domain wherever it appears (``rho`` of RMSProp,
AdaDelta and MaxProp alike): a study comparing them searches one Optuna
parameter ``rho``, which Optuna keeps as one set of choices.

Schedules are sized from the run: ``StepsRange(0.1, 0.5)`` is an integer
range from 10 % to 50 % of ``epochs × steps_per_epoch``, resolved when the
number of steps is known (:meth:`StepsRange.resolve`). A schedule's η is
the optimizer's ``learning_rate``, set on the keyword its
:class:`ScheduleSpace` names (the peak of a cyclical rate, the target of a
warm-up).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from gdbench.study.spec.domains import (
    Domain,
    LogUniform,
    OneMinusLogUniform,
    Steps,
    StepsList,
    StepsRange,
    Uniform,
)

__all__ = [
    "DECAY_KEYWORDS", "KEYWORD_SPACES", "OPTIMIZER_SPACES", "SCHEDULE_SPACES", "Derived",
    "ScheduleSpace", "signature_space",
]

#: Keywords that are decay rates β < 1, searched among β whose 1 − β are log-spaced.
DECAY_KEYWORDS = frozenset({"momentum", "rho", "beta_1", "beta_2"})

# Fair spaces (Choi et al., 2019): a general optimizer's space reaches the optimizers it
# contains (gdbench.study.plan.inclusions). ε up to 1 lets an Adam-family step η m̂/(√v̂ + ε)
# turn momentum-like (ε above √v̂), and RMSProp's and Adagrad's η g/√(v + ε) GD-like;
# γ and β1 down to 0 make momentum plain GD and Adam RMSProp. AdaDelta's ε is its step
# size (in the numerator too) and keeps its own range.
_EPSILON = LogUniform(1e-10, 1.0)
# β1 and γ in {0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99}: 1 − β log-spaced in [0.01, 1].
_BETA_1 = OneMinusLogUniform(1e-2, 1.0)
_BETA_2 = OneMinusLogUniform(1e-4, 1e-1)
_MOMENTUM = OneMinusLogUniform(1e-2, 1.0)
# ρ in [0.7, 0.9999]: RMSProp's and AdaDelta's (0.9, 0.95) and MaxProp's (0.999) defaults inside.
_RHO = OneMinusLogUniform(1e-4, 0.3)
_WEIGHT_DECAY = LogUniform(1e-5, 1e-1)


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
        "learning_rate": LogUniform(1e-4, 1.0), "momentum": _MOMENTUM,
    }),
    "nesterov": MappingProxyType({
        "learning_rate": LogUniform(1e-4, 1.0), "momentum": _MOMENTUM,
    }),
    "adagrad": MappingProxyType({
        "learning_rate": LogUniform(1e-3, 1.0), "epsilon": _EPSILON,
    }),
    "rmsprop": MappingProxyType({
        "learning_rate": LogUniform(1e-4, 1e-1), "rho": _RHO,
        "epsilon": _EPSILON,
    }),
    "adadelta": MappingProxyType({
        "learning_rate": LogUniform(1e-2, 10.0), "rho": _RHO,
        "epsilon": LogUniform(1e-8, 1e-3),
    }),
    "adam": _adam_family(LogUniform(1e-4, 1e-1)),
    "adamax": _adam_family(LogUniform(1e-4, 1e-1)),
    "nadam": _adam_family(LogUniform(1e-4, 1e-1)),
    "amsgrad": _adam_family(LogUniform(1e-4, 1e-1)),
    "adamw": _adam_family(LogUniform(1e-4, 1e-1), weight_decay=_WEIGHT_DECAY),
    "maxprop": MappingProxyType({
        "learning_rate": LogUniform(1e-4, 1e-1), "rho": _RHO,
        "epsilon": _EPSILON,
    }),
    "rprop": MappingProxyType({
        "learning_rate": LogUniform(1e-4, 1e-1), "eta_minus": Uniform(0.1, 0.9),
        "eta_plus": Uniform(1.05, 2.0),
    }),
})


#: The one default domain of a keyword wherever it appears, for the optimizers gdbench does
#: not ship too: a study comparing them with gdbench's searches one Optuna parameter.
KEYWORD_SPACES: Mapping[str, Domain] = MappingProxyType({
    "epsilon": _EPSILON, "beta_1": _BETA_1, "beta_2": _BETA_2, "momentum": _MOMENTUM,
    "rho": _RHO, "weight_decay": _WEIGHT_DECAY,
})

# Keywords of another optimizer searched by their name: η, ε and weight decay on a log
# scale, decay rates on the ladder of 1 − β.
_LOG_NAME = re.compile(r"(learning_rate|eps|epsilon\w*|\w*_epsilon|weight_decay)")
_DECAY_NAME = re.compile(r"(beta\w*|rho\w*|\w*momentum)")
# A log range around a default: two decades each side.
_DECADES = 100.0
_LADDER = OneMinusLogUniform(1e-4, 1.0)


def signature_space(defaults: Mapping[str, Any]) -> tuple[dict[str, Domain], list[str]]:
    """The default space of an optimizer gdbench does not ship, from its keywords' defaults.

    A keyword is searched by its name: ``learning_rate``, ε (``epsilon…``,
    ``eps``) and ``weight_decay`` on a log scale, decay rates (``beta…``,
    ``rho…``, ``…momentum``) among the β whose 1 − β are log-spaced. One with a
    domain of :data:`KEYWORD_SPACES` that holds its default takes that domain;
    another, two decades either side of its default (log), or the ladder
    0 … 0.9999 (decay rate). A default that does not fit (``weight_decay = None``,
    a decay rate outside [0, 1)) and every other keyword stay at the default.

    Args:
        defaults: the optimizer's own keywords (not Keras's base ones, but
            ``weight_decay``) → their defaults.

    Returns:
        The space, and the keywords left at their defaults, in signature order.
    """
    space: dict[str, Domain] = {}
    kept: list[str] = []
    for keyword, default in defaults.items():
        domain = _keyword_domain(keyword, default)
        if domain is None:
            kept.append(keyword)
        else:
            space[keyword] = domain
    return space, kept


def _keyword_domain(keyword: str, default: Any) -> Domain | None:
    if isinstance(default, bool) or not isinstance(default, (int, float)):
        return None
    shared = KEYWORD_SPACES.get(keyword)
    if shared is not None and shared.bounds()[0] <= default <= shared.bounds()[1]:
        return shared
    if _LOG_NAME.fullmatch(keyword) and default > 0:
        # Rounded so that 1e-30 · 100 reads 1e-28, not 1.0000000000000001e-28.
        return LogUniform(float(f"{default / _DECADES:.12g}"), float(f"{default * _DECADES:.12g}"))
    if _DECAY_NAME.fullmatch(keyword) and 0 <= default <= 0.9999:
        return _LADDER
    return None


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
