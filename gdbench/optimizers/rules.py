"""An update rule of your own, made a Keras optimizer like gdbench's.

A rule has the form of gdbench's own rules (``momentum_update``, ``adam_update``):

    def signum(param, grad, slots, *, step, learning_rate, beta):
        (m,) = slots
        m = beta * m + (1 - beta) * grad
        return param - learning_rate * keras.ops.sign(m), (m,)

    Signum = gdbench.optimizers.rule_optimizer(signum, slots=("m",),
                                               learning_rate=1e-4, beta=0.9)

:func:`rule_optimizer` declares its slots and its keywords' defaults and returns
a :class:`~gdbench.optimizers.RuleOptimizer` subclass: a real Keras optimizer,
registered for ``.keras`` files as ``gdbench.rule>Signum``, whose constructor
takes ``learning_rate``, every declared keyword and the Keras base keywords.
Because it is a rule, the population engines train it too, many trials at once
(:func:`gdbench.tasks.population.fit_population`). ``gdbench check-optimizer``
checks it as gdbench's own optimizers are checked.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping, Sequence
from typing import Any

import keras

from gdbench import _validate
from gdbench.optimizers._base import Rule, RuleOptimizer

__all__ = ["RULE_PACKAGE", "rule_optimizer"]

#: The Keras package a rule-made optimizer is registered under (``gdbench.rule>Signum``).
RULE_PACKAGE = "gdbench.rule"

#: η when a rule declares no default of its own (GD's default).
DEFAULT_LEARNING_RATE = 0.01

# Keywords checked as decay rates (0 ≤ β < 1) and as positive numbers, by their name.
_DECAY_NAME = re.compile(r"(beta\w*|rho\w*|\w*momentum|gamma)")
_POSITIVE_NAME = re.compile(r"(eps|epsilon\w*|\w*_epsilon)")
_RULE_KEYWORDS = ("step", "learning_rate")


def rule_optimizer(rule: Rule, *, slots: Sequence[str] | Mapping[str, float] = (),
                   name: str | None = None, **defaults: Any) -> type[RuleOptimizer]:
    """A Keras optimizer class around ``rule``.

    Args:
        rule: ``rule(param, grad, slots, *, step, learning_rate, **hyperparameters)``
            returning ``(new_param, new_slots)``: pure, written with ``keras.ops``
            (or TensorFlow ops) that broadcast, so that a hyperparameter may be
            a per-trial column of a population. ``step`` counts from 1.
        slots: the per-variable slots, in the order the rule takes and returns
            them: names (each starts at 0) or name → starting value.
        name: the class's name; the rule's name in CamelCase by default
            (``sign_sgd`` → ``SignSgd``). The optimizer's Keras ``name`` defaults
            to the rule's name.
        **defaults: ``learning_rate`` (0.01 unless given) and every keyword the
            rule takes besides ``step`` and ``learning_rate``, with its default.
            A keyword named like a decay rate (``beta…``, ``rho…``, ``…momentum``,
            ``gamma``) is checked to lie in [0, 1), one named like ε (``eps``,
            ``epsilon…``) to be > 0, any other number to be finite.

    Returns:
        A :class:`RuleOptimizer` subclass, registered with Keras under
        :data:`RULE_PACKAGE`.

    Raises:
        TypeError: ``rule`` is not a function of that form, or its keywords and
            ``defaults`` do not match; the message names the keyword.
        ValueError: a default the check of its keyword refuses, or a bad slot name.
    """
    if not callable(rule) or not hasattr(rule, "__name__"):
        raise TypeError(f"rule: expected a function, got {rule!r}")
    initial = _slot_starts(slots)
    defaults = dict(defaults)
    learning_rate = defaults.pop("learning_rate", DEFAULT_LEARNING_RATE)
    _validate.learning_rate(learning_rate)
    _check_signature(rule, list(defaults))
    for keyword, value in defaults.items():
        _checked(keyword, value, value)
    class_name = name or "".join(part.capitalize() for part in rule.__name__.split("_") if part)
    if not class_name.isidentifier():
        raise ValueError(f"name: expected a Python identifier, got {class_name!r}")

    parameters = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
                  inspect.Parameter("learning_rate", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                    default=learning_rate)]
    parameters += [inspect.Parameter(keyword, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                     default=value) for keyword, value in defaults.items()]
    parameters += [inspect.Parameter("name", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                     default=rule.__name__),
                   inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD)]
    signature = inspect.Signature(parameters)

    def __init__(self: RuleOptimizer, *args: Any, **kwargs: Any) -> None:
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        values = dict(bound.arguments)
        del values["self"]
        base = values.pop("kwargs")
        RuleOptimizer.__init__(self, learning_rate=values.pop("learning_rate"),
                               name=values.pop("name"), **base)
        for keyword, value in values.items():
            setattr(self, keyword, _checked(keyword, value, defaults[keyword]))

    __init__.__signature__ = signature  # type: ignore[attr-defined]

    def slot_initial_value(self: Any, slot_name: str) -> float:
        del self
        return initial[slot_name]

    keywords = "\n".join(f"    {keyword} = {value!r}" for keyword, value in
                         {"learning_rate": learning_rate, **defaults}.items())
    namespace = {
        "rule": staticmethod(rule),
        "slot_names": tuple(initial),
        "hyperparameter_names": tuple(defaults),
        "__init__": __init__,
        "slot_initial_value": slot_initial_value,
        "__module__": getattr(rule, "__module__", __name__),
        "__qualname__": class_name,
        "__doc__": (f"The optimizer of the update rule ``{rule.__name__}`` "
                    f"(gdbench.optimizers.rule_optimizer); slots {', '.join(initial) or 'none'}; "
                    f"keywords and defaults:\n\n{keywords}\n\n{inspect.getdoc(rule) or ''}"),
    }
    optimizer_class = type(class_name, (RuleOptimizer,), namespace)
    return keras.saving.register_keras_serializable(package=RULE_PACKAGE)(optimizer_class)


def _slot_starts(slots: Sequence[str] | Mapping[str, float]) -> dict[str, float]:
    if isinstance(slots, str):
        raise ValueError(f"slots: expected a sequence of names, got the string {slots!r}; "
                         f"write slots=({slots!r},)")
    starts = (dict(slots) if isinstance(slots, Mapping)
              else {slot: 0.0 for slot in slots})
    for slot, value in starts.items():
        if not isinstance(slot, str) or not slot.isidentifier():
            raise ValueError(f"slots: expected identifiers as slot names, got {slot!r}")
        _validate.number(f"slots.{slot}", value)
    if len(starts) != len(list(slots)):
        raise ValueError(f"slots: a name is listed twice in {list(slots)!r}")
    return {slot: float(value) for slot, value in starts.items()}


def _check_signature(rule: Rule, declared: list[str]) -> None:
    """The rule takes (param, grad, slots) and, by keyword, step, η and every declared keyword."""
    where = f"rule {rule.__name__}"
    try:
        parameters = list(inspect.signature(rule).parameters.values())
    except (TypeError, ValueError):
        raise TypeError(f"{where}: its signature cannot be read") from None
    positional = [p for p in parameters
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                  and p.name not in _RULE_KEYWORDS + tuple(declared)]
    if len(positional) != 3:
        raise TypeError(f"{where}: expected three positional parameters (param, grad, slots), "
                        f"got {len(positional)}: {', '.join(p.name for p in positional) or 'none'}")
    by_name = {p.name: p for p in parameters}
    takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters)
    for keyword in _RULE_KEYWORDS + tuple(declared):
        if keyword not in by_name and not takes_any:
            what = "every rule takes" if keyword in _RULE_KEYWORDS else "declared with a default"
            raise TypeError(f"{where}: takes no keyword {keyword!r} ({what})")
    for parameter in parameters[3:]:
        if (parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
                and parameter.name not in _RULE_KEYWORDS + tuple(declared)
                and parameter.default is parameter.empty):
            raise TypeError(f"{where}: keyword {parameter.name!r} has no declared default; "
                            f"give it as rule_optimizer(..., {parameter.name}=...)")


def _checked(keyword: str, value: Any, default: Any) -> Any:
    """``value`` for ``keyword``, checked as its default's kind and its name say."""
    if isinstance(default, bool):
        return _validate.flag(keyword, value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ValueError(f"{keyword}: expected a string, got {value!r}")
        return value
    if isinstance(default, int):
        return _validate.integer(keyword, value)
    if not isinstance(default, float):
        raise TypeError(f"{keyword}: a default must be a number, a string or a boolean, "
                        f"got {default!r}")
    if _DECAY_NAME.fullmatch(keyword):
        return _validate.decay_rate(keyword, value)
    if _POSITIVE_NAME.fullmatch(keyword):
        return _validate.positive(keyword, value)
    return _validate.number(keyword, value)
