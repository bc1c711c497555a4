"""Every classic gradient-descent algorithm as a Keras 3 optimizer.

Each algorithm lives in its own module as a pure update rule (``*_update``)
and a thin :class:`keras.optimizers.Optimizer` subclass that owns the slots.

    >>> import gdbench.optimizers
    >>> gdbench.optimizers.get("adam", learning_rate=1e-3)
    Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-08, bias_correction=True)
    >>> gdbench.optimizers.names()[:3]
    ['gd', 'momentum', 'nesterov']

Beside them, any Keras optimizer class, an update rule of your own
(:func:`rule_optimizer`) and the optimizers of installed plugins are found by
:func:`source` and :func:`get` (see :mod:`gdbench.optimizers.registry`):

    >>> gdbench.optimizers.get("keras.optimizers.Lion", learning_rate=1e-4).name
    'lion'

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
from gdbench.optimizers.registry import (
    ENTRY_POINT_GROUP,
    REGISTRY,
    OptimizerSource,
    get,
    names,
    plugin_names,
    plugins,
    source,
)
from gdbench.optimizers.rmsprop import RMSprop
from gdbench.optimizers.rprop import Rprop
from gdbench.optimizers.rules import rule_optimizer

__all__ = [
    "ENTRY_POINT_GROUP",
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
    "OptimizerSource",
    "RMSprop",
    "Rprop",
    "RuleOptimizer",
    "get",
    "names",
    "plugin_names",
    "plugins",
    "rule_optimizer",
    "source",
]
