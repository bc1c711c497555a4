"""Which optimizer contains which: the inclusion relations a fair comparison keeps.

An optimizer *contains* another when one of its keywords, at some value,
turns its update into the other's (Choi et al., 2019): momentum with γ = 0
is GD, Adam with β1 = 0 is RMSProp (with bias correction, and ε outside the
root), Adam with ε far above √v̂ takes momentum steps η m̂/ε. A tuned
comparison is fair only if the general optimizer's search space reaches that
value: otherwise it can lose to the special one for want of range, not of
merit. :data:`INCLUSIONS` lists every relation once; :func:`broken_inclusions`
names those a spec's spaces break, and :func:`warn_broken_inclusions` logs them.

| general            | contains   | through     | at                |
|--------------------|------------|-------------|-------------------|
| momentum, nesterov | gd         | `momentum`  | 0                 |
| adam               | rmsprop    | `beta_1`    | 0                 |
| adam, adamax, amsgrad | momentum | `epsilon` | reaching 1        |
| nadam              | nesterov   | `epsilon`   | reaching 1        |
| rmsprop, adagrad   | gd         | `epsilon`   | reaching 1        |

"Reaching 1" means ε ≥ 1: far above √v̂ for the gradients of most tasks, so
that the step no longer adapts. The relations through ε hold in the limit only.

References:
    Choi, Shallue, Nado, Lee, Maddison, Dahl (2019): On empirical comparisons of
    optimizers for deep learning, arXiv:1910.05446.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from optuna.distributions import CategoricalDistribution

from gdbench.study.spec.model import OptimizerSpec, StudySpec
from gdbench.study.spec.domains import Domain, Fixed

__all__ = ["INCLUSIONS", "Inclusion", "broken_inclusions", "holds", "largest",
           "warn_broken_inclusions"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Inclusion:
    """``general`` becomes ``special`` when its ``keyword`` is at (or reaches) ``value``.

    Attributes:
        general: the optimizer whose space must reach the value.
        special: the optimizer it then becomes.
        keyword: the general optimizer's keyword.
        value: the value that turns it into the special one.
        reaches: the space must reach ``value`` or beyond (a limit), not hold it exactly.
        why: the relation in one line.
    """

    general: str
    special: str
    keyword: str
    value: float
    reaches: bool
    why: str


_EPSILON_LIMIT = 1.0

#: Every inclusion relation between registered optimizers.
INCLUSIONS: tuple[Inclusion, ...] = (
    Inclusion("momentum", "gd", "momentum", 0.0, False, "momentum with γ = 0 is GD"),
    Inclusion("nesterov", "gd", "momentum", 0.0, False, "NAG with γ = 0 is GD"),
    Inclusion("adam", "rmsprop", "beta_1", 0.0, False,
              "Adam with β1 = 0 is RMSProp (bias-corrected, ε outside the root)"),
    *(Inclusion(name, "momentum", "epsilon", _EPSILON_LIMIT, True,
                f"{name} with ε ≫ √v takes momentum steps η m/ε")
      for name in ("adam", "adamax", "amsgrad")),
    Inclusion("nadam", "nesterov", "epsilon", _EPSILON_LIMIT, True,
              "NAdam with ε ≫ √v takes Nesterov steps"),
    *(Inclusion(name, "gd", "epsilon", _EPSILON_LIMIT, True,
                f"{name} with ε ≫ v takes GD steps η g/√ε")
      for name in ("rmsprop", "adagrad")),
)


def holds(domain: Domain, value: Any) -> bool:
    """Whether ``value`` is one of ``domain``'s values (a resolved domain)."""
    if isinstance(domain, Fixed):
        return domain.value == value
    distribution = domain.distribution()  # type: ignore[union-attr]
    if isinstance(distribution, CategoricalDistribution):
        return value in distribution.choices
    return distribution.low <= value <= distribution.high


def largest(domain: Domain) -> Any:
    """The largest value ``domain`` takes (a resolved domain of numbers)."""
    if isinstance(domain, Fixed):
        return domain.value
    distribution = domain.distribution()  # type: ignore[union-attr]
    if isinstance(distribution, CategoricalDistribution):
        return max(distribution.choices)
    return distribution.high


def _domain(optimizer: OptimizerSpec, keyword: str) -> Domain:
    if keyword in optimizer.space:
        return optimizer.space[keyword]
    from gdbench.study.plan.build import (
        optimizer_defaults,  # keeps TensorFlow out of start-up
    )

    return Fixed(optimizer_defaults(optimizer.name).get(keyword))


def broken_inclusions(spec: StudySpec) -> list[str]:
    """One line for every relation of :data:`INCLUSIONS` that ``spec``'s spaces break.

    A relation counts when the study compares both optimizers and tunes the
    special one (searches any of its keywords); it is broken when the
    general one's space (its default where it does not search the keyword)
    does not hold, or reach, the value.

    Args:
        spec: the study spec.
    """
    lines = []
    for relation in INCLUSIONS:
        specials = [o for o in spec.optimizers if o.name == relation.special
                    and any(domain.searched for domain in o.space.values())]
        generals = [o for o in spec.optimizers if o.name == relation.general]
        for general in generals if specials else ():
            domain = _domain(general, relation.keyword)
            if relation.reaches:
                fair = largest(domain) >= relation.value
                needs = f"reach {relation.keyword} = {relation.value:g}"
            else:
                fair = holds(domain, relation.value)
                needs = f"hold {relation.keyword} = {relation.value:g}"
            if fair:
                continue
            searched = domain.describe(relation.keyword)
            lines.append(
                f"{general.label} contains {', '.join(o.label for o in specials)} "
                f"({relation.why}), but its space does not {needs}: {searched}; it can lose "
                f"for want of range, not of merit (widen {general.label}'s {relation.keyword})")
    return lines


def warn_broken_inclusions(spec: StudySpec) -> list[str]:
    """Log a warning for every relation ``spec``'s spaces break; the lines logged."""
    lines = broken_inclusions(spec)
    for line in lines:
        logger.warning("study %s: unfair search spaces: %s", spec.name, line)
    return lines
