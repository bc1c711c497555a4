"""Every classic gradient-descent algorithm as a Keras 3 optimizer.

Each algorithm lives in its own module as a pure update rule (``*_update``)
and a thin :class:`keras.optimizers.Optimizer` subclass that owns the slots.

    >>> import gdbench.optimizers
    >>> gdbench.optimizers.get("adam", learning_rate=1e-3)
    Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-08, bias_correction=True)
    >>> gdbench.optimizers.names()[:3]
    ['gd', 'momentum', 'nesterov']

Importing this package registers every optimizer, and every schedule of
:mod:`gdbench.schedules`, with Keras as ``gdbench>ClassName``
(``gdbench>Adam``, ``gdbench>RMSprop``, ``gdbench>CosineDecay``), so that
``keras.optimizers.get``, ``keras.optimizers.deserialize`` and
``keras.saving.load_model`` find them:

    >>> import keras
    >>> keras.optimizers.get("gdbench>AMSGrad")
    AMSGrad(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-08)
"""

from __future__ import annotations

import copy
from typing import Any

import keras

# A gdbench optimizer's learning rate may be a gdbench schedule: registering the
# schedules here lets a model compiled with both be loaded after this one import.
import gdbench.schedules  # noqa: F401
from gdbench.optimizers._base import RuleOptimizer
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

__all__ = [
    "GD",
    "REGISTRY",
    "AMSGrad",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "MaxProp",
    "Momentum",
    "Nadam",
    "Nesterov",
    "RMSprop",
    "Rprop",
    "RuleOptimizer",
    "get",
    "names",
]

#: name → optimizer class, in the lectures' order.
REGISTRY: dict[str, type[RuleOptimizer]] = {
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


def names() -> list[str]:
    """Every registered optimizer name, in the lectures' order."""
    return list(REGISTRY)


def get(identifier: Any, **kwargs: Any) -> keras.optimizers.Optimizer:
    """Build an optimizer from a name, a config dict or an instance.

    Args:
        identifier: a registered name (``"adam"``), a Keras config dict
            (``{"class_name": ..., "config": ...}``) or an optimizer instance,
            returned as is.
        **kwargs: the optimizer's keywords, with a name only.

    Raises:
        KeyError: unknown name; the message lists the registered names.
        ValueError: a keyword the optimizer does not take, or a bad value.
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
    key = identifier.lower()
    if key not in REGISTRY:
        raise KeyError(f"optimizer: unknown name {identifier!r}; registered: {', '.join(REGISTRY)}")
    return REGISTRY[key](**kwargs)
