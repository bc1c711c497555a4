"""Where an optimizer comes from: gdbench's own, a plugin, a Keras class, a file beside a spec.

An optimizer is named by an *identifier*, which :func:`source` turns into an
:class:`OptimizerSource` (its class, and what a study reads from its signature):

| identifier                        | what it finds                                         |
|-----------------------------------|-------------------------------------------------------|
| ``adam``                          | a gdbench optimizer (:data:`REGISTRY`)                |
| ``lion_plugin``                   | a plugin: an entry point of :data:`ENTRY_POINT_GROUP`  |
| ``keras.optimizers.Lion``         | a class by its dotted import path                     |
| ``package.module:Class``          | a class of an importable module                       |
| ``my_optimizers.py:SignSGD``      | a class of a Python file (relative to ``base``)       |

A class is any `keras.optimizers.Optimizer` subclass; a rule made a class by
:func:`~gdbench.optimizers.rule_optimizer` is one (and trains in the population
engines). A plugin is a distribution that declares, in ``pyproject.toml``,

    [project.entry-points."gdbench.optimizers"]
    signum = "my_package.optimizers:Signum"

so that ``pip install`` of it makes ``signum`` a name every spec may use. A name
that two sources claim (a plugin and gdbench, or two plugins) is refused,
naming both. How a path or an entry point is loaded is shared with the tasks'
registry (:mod:`gdbench._sources`).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras

from gdbench import _sources
from gdbench.optimizers._base import BASE_KEYWORDS, RuleOptimizer
from gdbench.optimizers.adadelta import Adadelta
from gdbench.optimizers.adagrad import Adagrad
from gdbench.optimizers.adam import Adam
from gdbench.optimizers.adamax import Adamax
from gdbench.optimizers.adamw import AdamW
from gdbench.optimizers.amsgrad import AMSGrad
from gdbench.optimizers.gd import GD
from gdbench.optimizers.maxprop import MaxProp
from gdbench.optimizers.momentum import Momentum
from gdbench.optimizers.nadam import Nadam
from gdbench.optimizers.nesterov import Nesterov
from gdbench.optimizers.rmsprop import RMSprop
from gdbench.optimizers.rprop import Rprop

__all__ = ["ENTRY_POINT_GROUP", "REGISTRY", "OptimizerSource", "get", "is_path", "names",
           "plugin_names", "plugins", "source"]

#: name → optimizer class, in the lectures' order.
REGISTRY: Mapping[str, type[RuleOptimizer]] = {
    "gd": GD,
    "momentum": Momentum,
    "nesterov": Nesterov,
    "adagrad": Adagrad,
    "rmsprop": RMSprop,
    "adadelta": Adadelta,
    "adam": Adam,
    "adamax": Adamax,
    "nadam": Nadam,
    "amsgrad": AMSGrad,
    "adamw": AdamW,
    "maxprop": MaxProp,
    "rprop": Rprop,
}

#: The entry-point group through which an installed distribution brings optimizers.
ENTRY_POINT_GROUP = "gdbench.optimizers"

#: Where gdbench's own optimizers come from, as a claim on a name says it.
BUILT_IN = _sources.BUILT_IN

#: Whether an identifier names a class by path rather than by a registered or plugin name.
is_path = _sources.is_path


@dataclasses.dataclass(frozen=True)
class OptimizerSource:
    """An optimizer class and where it comes from.

    Attributes:
        identifier: what :func:`source` and :func:`get` take to find it again
            (a file's path made absolute).
        name: its short name: a registered or plugin name, else the class's
            name in lower case (``lion``, ``signsgd``); a study's default label.
        optimizer_class: the class.
        origin: where it comes from, in words (``gdbench (built in)``,
            ``plugin gdbench-signum 0.1 (signum_pkg:Signum)``, the identifier).
    """

    identifier: str
    name: str
    optimizer_class: type[keras.optimizers.Optimizer]
    origin: str

    @property
    def built_in(self) -> bool:
        """Whether it is one of gdbench's own optimizers."""
        return self.origin == BUILT_IN

    @property
    def vectorizable(self) -> bool:
        """Whether it is a rule, which the population engines train many trials at once."""
        return issubclass(self.optimizer_class, RuleOptimizer)

    def keywords(self) -> list[str]:
        """Every keyword its constructor takes, besides ``name``: its own, then Keras's base ones."""
        if issubclass(self.optimizer_class, RuleOptimizer):
            return [k for k in self.optimizer_class.keywords() if k != "name"]
        parameters = inspect.signature(self.optimizer_class.__init__).parameters.values()
        own = [p.name for p in parameters
               if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
               and p.name not in ("self", "name")]
        if any(p.kind is p.VAR_KEYWORD for p in parameters):
            own += [k for k in BASE_KEYWORDS if k not in own]
        return own

    def defaults(self) -> dict[str, Any]:
        """Every keyword with a default → its default."""
        parameters = inspect.signature(self.optimizer_class.__init__).parameters
        keywords = self.keywords()
        return {k: parameters[k].default for k in keywords
                if k in parameters and parameters[k].default is not inspect.Parameter.empty}

    def hyperparameters(self) -> dict[str, Any]:
        """η and its own hyperparameters (not Keras's base keywords) at their defaults.

        A rule's are the keywords it passes to the rule; a class's, its own
        keywords whose default is a number, a string or a boolean.
        """
        return dict(_hyperparameters(self))

    def refusal(self, keyword: str) -> str | None:
        """Why it refuses a keyword its signature lists (``weight_decay`` of gdbench's
        optimizers other than ``adamw``); ``None`` when it takes it."""
        if issubclass(self.optimizer_class, RuleOptimizer):
            return self.optimizer_class.refusal(keyword)
        return None

    def build(self, **kwargs: Any) -> keras.optimizers.Optimizer:
        """An instance with ``kwargs``."""
        return self.optimizer_class(**kwargs)


@functools.cache
def _hyperparameters(source: OptimizerSource) -> dict[str, Any]:
    """:meth:`OptimizerSource.hyperparameters`, read from the signature once (a study asks
    them every trial)."""
    defaults = source.defaults()
    if issubclass(source.optimizer_class, RuleOptimizer):
        keywords = ("learning_rate",) + tuple(source.optimizer_class.hyperparameter_names)
        return {k: defaults[k] for k in keywords if k in defaults}
    return {k: value for k, value in defaults.items()
            if k not in BASE_KEYWORDS and isinstance(value, (bool, int, float, str))}


def names() -> list[str]:
    """Every gdbench optimizer's name, in the lectures' order (plugins: :func:`plugins`)."""
    return list(REGISTRY)


def source(identifier: str, base: str | Path | None = None) -> OptimizerSource:
    """The optimizer ``identifier`` names (see the module's table).

    Args:
        identifier: a registered name, a plugin name, or an import path.
        base: the folder a relative file path starts from (a spec's folder);
            the working directory when ``None``.

    Raises:
        KeyError: an unknown name; the message lists the names known.
        ValueError: a name two sources claim (naming both), a missing file or
            module, an import that fails, or an object that is not a
            `keras.optimizers.Optimizer` subclass; the message says which.
    """
    if not isinstance(identifier, str) or not identifier:
        raise TypeError(f"optimizer: expected a name or an import path, got {identifier!r}")
    if _sources.is_path(identifier):
        return _by_path(identifier, Path.cwd() if base is None else Path(base))
    return _by_name(identifier)


def plugins() -> dict[str, OptimizerSource]:
    """Every optimizer an installed distribution brings (:data:`ENTRY_POINT_GROUP`), by name.

    Raises:
        ValueError: a name two sources claim, or a plugin that cannot be loaded.
    """
    return {name: _by_name(name) for name in plugin_names()}


def plugin_names() -> list[str]:
    """The names installed plugins claim, without loading them."""
    return sorted(_sources.plugin_claims(ENTRY_POINT_GROUP))


def get(identifier: Any, **kwargs: Any) -> keras.optimizers.Optimizer:
    """Build an optimizer from a name, an import path, a config dict or an instance.

    Args:
        identifier: a registered name (``"adam"``), a plugin's name, an import
            path (``"keras.optimizers.Lion"``, ``"my_optimizers.py:SignSGD"``,
            see :func:`source`), a Keras config dict (``{"class_name": ...,
            "config": ...}``) or an optimizer instance, returned as is.
        **kwargs: the optimizer's keywords, with a name or a path only.

    Raises:
        KeyError: unknown name; the message lists the registered names.
        ValueError: a keyword the optimizer does not take, a bad value, or a
            path that gives no optimizer.
    """
    if isinstance(identifier, keras.optimizers.Optimizer):
        if kwargs:
            raise ValueError(f"keywords {sorted(kwargs)} given with an optimizer instance")
        return identifier
    if isinstance(identifier, dict):
        if kwargs:
            raise ValueError(f"keywords {sorted(kwargs)} given with a config dict")
        return keras.optimizers.deserialize(copy.deepcopy(identifier))
    if not isinstance(identifier, str):
        raise TypeError(
            f"optimizer: expected a name, a config dict or an Optimizer, got {identifier!r}"
        )
    return source(identifier).build(**kwargs)


# -- names and paths -----------------------------------------------------------


def _by_name(identifier: str) -> OptimizerSource:
    name = identifier.lower()
    entry = _sources.sole_claim(name, ENTRY_POINT_GROUP, name in REGISTRY, "optimizer")
    if name in REGISTRY:
        return OptimizerSource(name, name, REGISTRY[name], BUILT_IN)
    if entry is None:
        known = names() + plugin_names()
        raise KeyError(f"optimizer: unknown name {identifier!r}; registered: {', '.join(known)} "
                       "(or an import path: module.Class, module:Class, file.py:Class)")
    claim = _sources.claimant(entry)
    return OptimizerSource(name, name, _optimizer_class(_sources.load_entry(entry), claim), claim)


def _by_path(identifier: str, base: Path) -> OptimizerSource:
    identifier, attribute, found = _sources.locate(identifier, base)
    return OptimizerSource(identifier, attribute.lower(), _optimizer_class(found, identifier),
                           identifier)


def _optimizer_class(found: Any, where: str) -> type[keras.optimizers.Optimizer]:
    if inspect.isclass(found) and issubclass(found, keras.optimizers.Optimizer):
        if "learning_rate" not in inspect.signature(found.__init__).parameters:
            raise ValueError(f"{where}: {found.__name__} takes no learning_rate keyword, "
                             "which a study sets")
        return found
    if inspect.isfunction(found):
        raise ValueError(f"{where}: is a function, not a keras.optimizers.Optimizer subclass; "
                         "if it is an update rule, make it one with "
                         "gdbench.optimizers.rule_optimizer(rule, slots=..., **defaults)")
    raise ValueError(f"{where}: is {type(found).__name__} {found!r}, not a "
                     "keras.optimizers.Optimizer subclass")
