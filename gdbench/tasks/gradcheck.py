"""Gradient checks: autodiff against centered finite differences, in float64.

Every optimizer in gdbench trusts the gradient ``tf.GradientTape`` returns. A
check compares it, coordinate by coordinate, with

    ĝ_i = (f(θ + ε e_i) − f(θ − ε e_i)) / 2ε

whose error is O(ε²) from truncation plus O(u |f| / ε) from rounding (u the
unit round-off). In float64 (u ≈ 1.1e-16) with ε = 1e-6 both are around
1e-10, far below any real mistake; in float32 the rounding term alone would be
around 1e-1, which is why every check here runs in float64. A coordinate
passes when |g_i − ĝ_i| ≤ atol + rtol |ĝ_i| (``numpy.allclose`` with ĝ as the
reference).

- :func:`check_gradients`: any function of one float64 tensor.
- :func:`check_task_gradients`: a toy task's ``loss`` at its initial parameters.
- :func:`check_model_gradients`: a Keras model's loss on ``(x, y)``, over a
  random subset of the coordinates of its trainable variables. The model is
  run in float64: a model whose variables are all float64 is used as it is
  (each perturbed coordinate is restored right after), any other one is cloned
  with every layer's dtype policy set to ``"float64"`` and the original's
  weights copied into the clone, so the model passed in is never touched. A
  ``keras.losses.Loss`` computes in its own dtype (float32 by default), so
  one of another dtype is rebuilt from its config with ``dtype="float64"``. Dropout
  and batch statistics are switched off (``training=False``) so that f is a
  deterministic function of the weights.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from gdbench import _validate
from gdbench.tasks._toy import ToyTask

__all__ = [
    "GradCheckResult",
    "check_gradients",
    "check_model_gradients",
    "check_task_gradients",
]


@dataclasses.dataclass(frozen=True)
class GradCheckResult:
    """The outcome of a gradient check.

    Attributes:
        max_abs_error: max_i |g_i − ĝ_i| over the coordinates checked.
        max_rel_error: max_i |g_i − ĝ_i| / max(|g_i|, |ĝ_i|) (0 where both are 0).
        passed: every coordinate within ``atol + rtol |ĝ_i|``, and all finite.
        worst_index: the coordinate furthest outside (or least inside) its
            tolerance, as an index into the parameter array (into the
            variable ``worst_variable`` for a model).
        coordinates_checked: how many coordinates were compared.
        worst_variable: a model check only: the path of the variable holding
            ``worst_index``.
    """

    max_abs_error: float
    max_rel_error: float
    passed: bool
    worst_index: tuple[int, ...]
    coordinates_checked: int
    worst_variable: str | None = None


def check_gradients(
    fn: Callable[[tf.Tensor], Any],
    params: Any,
    *,
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-8,
    max_coordinates: int | None = None,
    seed: int = 0,
) -> GradCheckResult:
    """Compare the autodiff gradient of ``fn`` at ``params`` with finite differences.

    Args:
        fn: maps a float64 tensor shaped like ``params`` to a scalar; it must
            be written in TensorFlow (or Keras ops) so that the tape sees it.
        params: the point θ, any array-like of finite numbers; cast to float64.
        eps: ε > 0, the finite-difference half step.
        rtol: relative tolerance ≥ 0.
        atol: absolute tolerance ≥ 0.
        max_coordinates: check this many coordinates drawn at random (without
            replacement); ``None`` checks them all.
        seed: seeds the draw of coordinates.

    Returns:
        A :class:`GradCheckResult`.

    Raises:
        ValueError: empty or non-finite ``params``, a bad tolerance, or an
            ``fn`` that does not return a float64 scalar.
    """
    point = np.array(params, dtype=np.float64)
    if point.size == 0 or not np.all(np.isfinite(point)):
        raise ValueError(f"params: expected a non-empty array of finite numbers, got {params!r}")
    eps, rtol, atol = _tolerances(eps, rtol, atol)
    coordinates = _chosen_coordinates(point.size, max_coordinates, seed)

    def value_at(array: np.ndarray) -> tf.Tensor:
        return _float64_scalar(fn(tf.constant(array, dtype=tf.float64)), field="fn")

    theta = tf.constant(point, dtype=tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(theta)
        value = _float64_scalar(fn(theta), field="fn")
    gradient = tape.gradient(value, theta, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    analytic = np.asarray(gradient, dtype=np.float64).reshape(-1)[coordinates]

    numeric = np.empty(len(coordinates))
    for row, flat_index in enumerate(coordinates):
        shifted = point.reshape(-1).copy()
        shifted[flat_index] += eps
        upper = float(value_at(shifted.reshape(point.shape)))
        shifted[flat_index] -= 2.0 * eps
        lower = float(value_at(shifted.reshape(point.shape)))
        numeric[row] = (upper - lower) / (2.0 * eps)

    summary = _compare(analytic, numeric, rtol=rtol, atol=atol)
    return GradCheckResult(
        max_abs_error=summary.max_abs_error,
        max_rel_error=summary.max_rel_error,
        passed=summary.passed,
        worst_index=_unraveled(coordinates[summary.worst], point.shape),
        coordinates_checked=len(coordinates),
    )


def check_task_gradients(task: Any, *, batch: Any = None, **kwargs: Any) -> GradCheckResult:
    """Check a toy task's ``loss`` gradient at its initial parameters.

    Args:
        task: a toy task (``initial_parameters()`` and ``loss(params, batch)``).
            For a task trained as a Keras model use :func:`check_model_gradients`
            on the model and a batch of its data.
        batch: the batch to evaluate the loss on; ``None`` for all data.
        **kwargs: the keywords of :func:`check_gradients` (``eps``, ``rtol``,
            ``atol``, ``max_coordinates``, ``seed``).

    Raises:
        ValueError: a task that is not a toy task, or as :func:`check_gradients`.
    """
    if not isinstance(task, ToyTask):
        raise ValueError(
            f"task: check_task_gradients checks toy tasks (a loss of a parameter vector); "
            f"{type(task).__name__} is not one: use check_model_gradients(model, x, y, loss_fn)"
        )
    return check_gradients(lambda params: task.loss(params, batch), task.initial_parameters(),
                           **kwargs)


def check_model_gradients(
    model: keras.Model,
    x: Any,
    y: Any,
    loss_fn: Callable[[Any, Any], Any],
    *,
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-8,
    max_coordinates: int | None = 64,
    seed: int = 0,
) -> GradCheckResult:
    """Check the gradient of a Keras model's loss with respect to its weights.

    The loss is ``loss_fn(y, model(x, training=False))`` in float64 (averaged
    when ``loss_fn`` returns one value per example). The coordinates are
    drawn at random from all trainable variables together; see the module's
    docstring for how the float64 model is obtained.

    Args:
        model: a built Keras model (Sequential or functional; a subclassed
            model must already have float64 variables, as cloning needs a
            config).
        x: the inputs of one batch.
        y: the targets of that batch.
        loss_fn: ``loss_fn(y_true, y_pred)``, e.g. a ``keras.losses.Loss``.
        eps: ε > 0, the finite-difference half step.
        rtol: relative tolerance ≥ 0.
        atol: absolute tolerance ≥ 0.
        max_coordinates: coordinates to check, drawn without replacement;
            ``None`` checks every one (two forward passes each).
        seed: seeds the draw of coordinates.

    Returns:
        A :class:`GradCheckResult` whose ``worst_variable`` names the variable.

    Raises:
        ValueError: a model that is not a built Keras model, that has no
            trainable variable or cannot be cloned in float64, or a bad tolerance.
    """
    if not isinstance(model, keras.Model) or not model.built:
        raise ValueError(f"model: expected a built keras.Model, got {model!r}")
    eps, rtol, atol = _tolerances(eps, rtol, atol)
    model64 = _float64_model(model, x)
    variables = list(model64.trainable_variables)
    if not variables:
        raise ValueError("model: it has no trainable variable to check")
    loss64 = _float64_loss(loss_fn)
    inputs = tf.nest.map_structure(_as_float64, x)
    targets = _as_float64(y)

    def loss_value() -> tf.Tensor:
        predictions = model64(inputs, training=False)
        return _float64_scalar(loss64(targets, predictions), field="loss_fn", reduce=True)

    with tf.GradientTape() as tape:
        value = loss_value()
    gradients = tape.gradient(value, variables,
                              unconnected_gradients=tf.UnconnectedGradients.ZERO)

    sizes = [int(np.prod(variable.shape)) for variable in variables]
    offsets = np.cumsum([0] + sizes)
    coordinates = _chosen_coordinates(int(offsets[-1]), max_coordinates, seed)
    owners = np.searchsorted(offsets, coordinates, side="right") - 1

    analytic = np.empty(len(coordinates))
    numeric = np.empty(len(coordinates))
    for row, (flat_index, owner) in enumerate(zip(coordinates, owners)):
        variable = variables[owner]
        local = int(flat_index - offsets[owner])
        analytic[row] = np.asarray(gradients[owner], dtype=np.float64).reshape(-1)[local]
        original = np.array(variable.numpy(), dtype=np.float64)
        shifted = original.reshape(-1).copy()
        try:
            shifted[local] += eps
            variable.assign(shifted.reshape(original.shape))
            upper = float(loss_value())
            shifted[local] -= 2.0 * eps
            variable.assign(shifted.reshape(original.shape))
            lower = float(loss_value())
        finally:
            variable.assign(original)
        numeric[row] = (upper - lower) / (2.0 * eps)

    summary = _compare(analytic, numeric, rtol=rtol, atol=atol)
    worst_owner = int(owners[summary.worst])
    worst_variable = variables[worst_owner]
    local = int(coordinates[summary.worst] - offsets[worst_owner])
    return GradCheckResult(
        max_abs_error=summary.max_abs_error,
        max_rel_error=summary.max_rel_error,
        passed=summary.passed,
        worst_index=_unraveled(local, tuple(worst_variable.shape)),
        coordinates_checked=len(coordinates),
        worst_variable=worst_variable.path,
    )


@dataclasses.dataclass(frozen=True)
class _Comparison:
    max_abs_error: float
    max_rel_error: float
    passed: bool
    worst: int


def _compare(analytic: np.ndarray, numeric: np.ndarray, *, rtol: float, atol: float) -> _Comparison:
    abs_error = np.abs(analytic - numeric)
    scale = np.maximum(np.abs(analytic), np.abs(numeric))
    rel_error = np.divide(abs_error, scale, out=np.zeros_like(abs_error), where=scale > 0)
    # How far each coordinate uses up its tolerance: > 1 fails; NaN (a
    # non-finite value) counts as the worst of all.
    usage = abs_error / (atol + rtol * np.abs(numeric))
    usage = np.where(np.isfinite(usage), usage, np.inf)
    return _Comparison(
        max_abs_error=float(np.max(abs_error)),
        max_rel_error=float(np.max(rel_error)),
        passed=bool(np.all(usage <= 1.0)),
        worst=int(np.argmax(usage)),
    )


def _unraveled(flat_index: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(index) for index in np.unravel_index(int(flat_index), shape))


def _tolerances(eps: float, rtol: float, atol: float) -> tuple[float, float, float]:
    return (
        _validate.number("eps", eps, low=0.0, low_open=True),
        _validate.number("rtol", rtol, low=0.0),
        _validate.number("atol", atol, low=0.0),
    )


def _chosen_coordinates(size: int, max_coordinates: int | None, seed: int) -> np.ndarray:
    seed = _validate.integer("seed", seed, low=0)
    if max_coordinates is None:
        return np.arange(size)
    count = _validate.integer("max_coordinates", max_coordinates, low=1)
    if count >= size:
        return np.arange(size)
    return np.sort(np.random.default_rng(seed).choice(size, size=count, replace=False))


def _float64_scalar(value: Any, *, field: str, reduce: bool = False) -> tf.Tensor:
    """``value`` as a float64 scalar tensor (its mean when ``reduce``), or a ValueError."""
    tensor = tf.convert_to_tensor(value)
    if tensor.dtype != tf.float64:
        raise ValueError(
            f"{field}: returned {tensor.dtype.name} on float64 input; finite differences "
            "need the loss computed in float64 (for a keras.losses.Loss, dtype='float64')"
        )
    if tensor.shape.rank != 0:
        if not reduce:
            raise ValueError(f"{field}: expected a scalar output, got shape {tensor.shape}")
        tensor = tf.reduce_mean(tensor)
    return tensor


def _as_float64(value: Any) -> Any:
    tensor = tf.convert_to_tensor(value)
    return tf.cast(tensor, tf.float64) if tensor.dtype.is_floating else tensor


def _float64_loss(loss_fn: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """``loss_fn``, rebuilt with ``dtype="float64"`` if it is a Keras ``Loss`` of another dtype."""
    if not isinstance(loss_fn, keras.losses.Loss) or loss_fn.dtype == "float64":
        return loss_fn
    try:
        return type(loss_fn).from_config({**loss_fn.get_config(), "dtype": "float64"})
    except Exception as error:
        raise ValueError(
            f"loss_fn: cannot rebuild {type(loss_fn).__name__} in float64 ({error}); pass one "
            "built with dtype='float64'"
        ) from error


def _float64_model(model: keras.Model, x: Any) -> keras.Model:
    """``model`` itself when all its variables are float64, else a float64 clone."""
    if all(variable.dtype == "float64" for variable in model.weights):
        return model

    def float64_layer(layer: keras.layers.Layer) -> keras.layers.Layer:
        return layer.__class__.from_config({**layer.get_config(), "dtype": "float64"})

    try:
        clone = keras.models.clone_model(model, clone_function=float64_layer)
    except Exception as error:
        raise ValueError(
            f"model: cannot clone {type(model).__name__} in float64 ({error}); build it with "
            "keras.config.set_dtype_policy('float64') set and check that one instead"
        ) from error
    if not clone.built:
        clone(tf.nest.map_structure(_as_float64, x), training=False)
    if len(clone.weights) != len(model.weights):
        raise ValueError(
            f"model: its float64 clone has {len(clone.weights)} weights, the model "
            f"{len(model.weights)}; build the model in float64 and check that one instead"
        )
    for copy, original in zip(clone.weights, model.weights):
        copy.assign(np.asarray(original.numpy()).astype(copy.dtype))
    return clone
