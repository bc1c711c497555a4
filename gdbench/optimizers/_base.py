"""The Keras shell that every gdbench optimizer shares.

An algorithm is a pure update rule plus a declaration of its slots and
hyperparameters. :class:`RuleOptimizer` owns the slot variables, feeds the rule
with the step counter and the (possibly scheduled) learning rate, and writes the
results back. The rule itself never touches a variable, so the vectorized
population engine can call it on stacked tensors of many trials at once.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, ClassVar

import keras
from keras import ops

from gdbench import _validate
from gdbench._precision import exact_float

#: Keywords of `keras.optimizers.Optimizer` that every gdbench optimizer passes on.
BASE_KEYWORDS = (
    "weight_decay", "clipnorm", "clipvalue", "global_clipnorm", "use_ema",
    "ema_momentum", "ema_overwrite_frequency", "loss_scale_factor",
    "gradient_accumulation_steps",
)

Rule = Callable[..., "tuple[Any, tuple[Any, ...]]"]


@functools.cache
def _keras_base_defaults() -> dict[str, Any]:
    """The defaults of :data:`BASE_KEYWORDS`, read from the Keras base optimizer's signature."""
    for cls in keras.optimizers.Optimizer.__mro__:
        parameters = inspect.signature(cls.__init__).parameters
        if all(keyword in parameters for keyword in BASE_KEYWORDS):
            return {keyword: parameters[keyword].default for keyword in BASE_KEYWORDS}
    raise RuntimeError("no Keras base optimizer takes every one of BASE_KEYWORDS")


def dense_gradient(gradient: Any, variable: Any) -> Any:
    """``gradient`` as a dense tensor shaped like ``variable``.

    TensorFlow hands an embedding's gradient over as row slices
    (`tf.IndexedSlices`: row indices, possibly repeated, and one value per
    index). They are summed per row before any nonlinear slot update, with the
    segment sum TensorFlow itself densifies them with, which is the dense
    gradient of the same loss; squaring each slice instead, as Keras's
    built-ins do, would not give the dense formula. JAX and PyTorch
    differentiate embeddings densely; a sparse tensor (`tf.SparseTensor`,
    JAX's `BCOO`) is densified by Keras.
    """
    if _is_row_slices(gradient):
        return ops.segment_sum(gradient.values, gradient.indices, num_segments=variable.shape[0])
    return ops.convert_to_tensor(gradient, sparse=False)


def _is_row_slices(gradient: Any) -> bool:
    """Whether ``gradient`` is a `tf.IndexedSlices`, told without importing TensorFlow.

    A `tf.SparseTensor` also has ``values`` and ``dense_shape``, but its
    ``indices`` hold one row per coordinate, not one number per slice.
    """
    indices = getattr(gradient, "indices", None)
    return hasattr(gradient, "dense_shape") and indices is not None and len(indices.shape) == 1


class _Fill(keras.initializers.Initializer):
    """Fills a slot with one value, exactly in any float type.

    `keras.initializers.Constant` converts its value to float32 before casting,
    so a float64 slot would start at 0.10000000149 instead of 0.1.
    """

    def __init__(self, value: float) -> None:
        self.value = value

    def __call__(self, shape: Any, dtype: Any = None) -> Any:
        return ops.full(shape, self.value, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        return {"value": self.value}


class RuleOptimizer(keras.optimizers.Optimizer):
    """Base class of gdbench optimizers: a Keras optimizer around a pure rule.

    Subclasses set three class attributes and write ``__init__`` with their
    keywords:

    - ``rule``: ``rule(param, grad, slots, *, step, learning_rate, **hyper)``
      returning ``(new_param, new_slots)``. ``step`` counts from 1.
    - ``slot_names``: names of the per-variable slots, in the order the rule
      takes them.
    - ``hyperparameter_names``: keywords passed to the rule besides the
      learning rate, stored as attributes of the same name.

    Weight decay: the Keras base class would silently apply decoupled decay to
    any optimizer given ``weight_decay``. gdbench makes the choice explicit:
    only ``adamw`` decays weights (inside its rule); the others refuse the
    keyword and point to ``adamw`` or to an L2 regularizer on the model.
    """

    rule: ClassVar[Rule]
    slot_names: ClassVar[tuple[str, ...]] = ()
    hyperparameter_names: ClassVar[tuple[str, ...]] = ()
    decouples_weight_decay: ClassVar[bool] = False

    def __init__(self, learning_rate: Any, name: str, **kwargs: Any) -> None:
        unknown = sorted(set(kwargs) - set(BASE_KEYWORDS))
        if unknown:
            raise ValueError(
                f"{type(self).__name__}: unknown keyword(s) {', '.join(unknown)}; "
                f"accepted: {', '.join(self.keywords())}"
            )
        _validate.learning_rate(learning_rate)
        weight_decay = kwargs.get("weight_decay")
        refusal = self.refusal("weight_decay")
        if weight_decay is not None and refusal is not None:
            raise ValueError(f"weight_decay: {refusal} (got weight_decay={weight_decay!r})")
        if isinstance(learning_rate, (int, float)):
            learning_rate = float(learning_rate)
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if isinstance(learning_rate, float) and exact_float() == "float64":
            self._keep_learning_rate_in_float64(learning_rate)

    def _keep_learning_rate_in_float64(self, value: float) -> None:
        """Hold a constant η in float64 rather than Keras's float32.

        A float32 η of 0.1 is 0.10000000149: float64 training (the toy tasks)
        would then not follow the textbook recursion it documents. The rule
        casts η to each variable's dtype, so float32 models see no change.
        Where the backend has no float64 (JAX without x64, see
        :mod:`gdbench._precision`), η stays Keras's float32 variable.
        """
        self._untrack_variable(self._learning_rate)
        with keras.name_scope(self.name, caller=self):
            variable = keras.Variable(
                value, name="learning_rate", dtype="float64", trainable=False,
                aggregation="only_first_replica",
            )
        self._track_variable(variable)
        self._learning_rate = variable

    @classmethod
    def keywords(cls) -> list[str]:
        """Every keyword the constructor accepts: its own, then the Keras base's.

        ``weight_decay`` is among them only for an optimizer that decouples it
        (``adamw``): the others refuse it.
        """
        own = [
            p.name for p in inspect.signature(cls.__init__).parameters.values()
            if p.kind is p.POSITIONAL_OR_KEYWORD and p.name != "self"
        ]
        base = [k for k in BASE_KEYWORDS
                if k not in own and (k != "weight_decay" or cls.decouples_weight_decay)]
        return own + base

    @classmethod
    def refusal(cls, keyword: str) -> str | None:
        """Why the optimizer refuses a Keras base keyword it does not list; ``None`` otherwise.

        ``None`` is still taken for it, as Keras's ``from_config`` passes it.
        """
        if keyword == "weight_decay" and not cls.decouples_weight_decay:
            return (f"{cls.__name__} applies no weight decay; use 'adamw' for decoupled decay, "
                    "or an L2 kernel_regularizer on the model for coupled decay")
        return None

    def __repr__(self) -> str:
        """``Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-08, ...)``.

        The learning rate and the algorithm's own keywords from :meth:`get_config`,
        then the name and the Keras base keywords set away from their defaults.
        Evaluated among :mod:`gdbench.optimizers` (and the schedules of its
        learning rate), it builds the same optimizer.
        """
        config = self.get_config()
        parameters = inspect.signature(type(self).__init__).parameters
        shown = {"learning_rate": self._learning_rate_for_repr()}
        shown.update({k: config[k] for k in self.keywords() if k in parameters and k != "name"
                      and k not in shown})
        if config["name"] != parameters["name"].default:
            shown["name"] = config["name"]
        defaults = _keras_base_defaults()
        shown.update({k: config[k] for k in BASE_KEYWORDS
                      if k not in shown and config.get(k, defaults[k]) != defaults[k]})
        arguments = ", ".join(f"{name}={value!r}" for name, value in shown.items())
        return f"{type(self).__name__}({arguments})"

    def _learning_rate_for_repr(self) -> Any:
        """The schedule, or the constant η as short as its variable's precision allows."""
        if isinstance(self._learning_rate, keras.optimizers.schedules.LearningRateSchedule):
            return self._learning_rate
        value = ops.convert_to_numpy(self._learning_rate)
        # A float32 η of 0.001 is 0.0010000000474974513 as a Python float: print the
        # shortest decimal that gives back the same float32.
        return float(str(value)) if value.dtype == "float32" else float(value)

    def slot_initial_value(self, slot_name: str) -> float:
        """The value a slot starts at (zero unless the algorithm says otherwise)."""
        return 0.0

    def build(self, variables: list[Any]) -> None:
        if self.built:
            return
        super().build(variables)
        self._slots = [
            tuple(
                self.add_variable_from_reference(
                    variable,
                    name=slot_name,
                    initializer=_Fill(self.slot_initial_value(slot_name)),
                )
                for slot_name in self.slot_names
            )
            for variable in variables
        ]

    def rule_hyperparameters(self, variable: Any) -> dict[str, Any]:
        """The keywords this optimizer passes to its rule for ``variable``."""
        return {name: getattr(self, name) for name in self.hyperparameter_names}

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        dtype = variable.dtype
        gradient = ops.cast(dense_gradient(gradient, variable), dtype)
        slots = self._slots[self._get_variable_index(variable)]
        new_value, new_slots = type(self).rule(
            variable,
            gradient,
            tuple(slot.value for slot in slots),
            step=ops.cast(self.iterations + 1, dtype),
            learning_rate=ops.cast(learning_rate, dtype),
            **self.rule_hyperparameters(variable),
        )
        for slot, value in zip(slots, new_slots):
            self.assign(slot, value)
        self.assign(variable, new_value)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({name: getattr(self, name) for name in self.hyperparameter_names})
        return config

