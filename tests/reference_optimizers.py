"""An independent numpy reference of every update rule in DESIGN.md.

Written from the DESIGN.md table alone and sharing no code with gdbench, so
that a test comparing the two checks gdbench against the documented equations
rather than against itself.

Every function has the same shape::

    rule(param, grads, *, lr, dtype, **hyperparameters) -> params

- ``param``: the initial parameter array.
- ``grads``: a sequence of gradient arrays, one per step (step t = 1, 2, ...).
- ``lr``: the learning rate as a function of the 0-based iteration count: step
  t of the formulas uses ``lr(t - 1)``, as a Keras optimizer calls its
  schedule with ``iterations`` before incrementing it.
- ``dtype``: the floating type every quantity is computed in (``np.float32``
  gives a float32 reference, rounding where float32 code would round).
- returns an array of shape ``(len(grads), *param.shape)``: the parameters
  after each step.

Slots start at zero unless the table says otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

LearningRate = Callable[[int], float]


def _setup(
    param: Any, grads: Sequence[Any], dtype: Any, **hyper: float
) -> tuple[np.ndarray, list[np.ndarray], dict[str, Any]]:
    """The parameter, gradients and hyperparameters, all as ``dtype``.

    Hyperparameters become ``dtype`` scalars: under NumPy 2 promotion a float64
    scalar would silently lift a float32 computation to float64.
    """
    dtype = np.dtype(dtype).type
    return (
        np.array(param, dtype=dtype),
        [np.asarray(g, dtype=dtype) for g in grads],
        {key: dtype(value) for key, value in hyper.items()},
    )


def _rate(lr: LearningRate, step0: int, dtype: Any) -> Any:
    return np.dtype(dtype).type(lr(step0))


def gd(
    param: Any, grads: Sequence[Any], *, lr: LearningRate, dtype: Any = np.float64
) -> np.ndarray:
    """w ← w − η g."""
    w, grads, _ = _setup(param, grads, dtype)
    out = []
    for t0, g in enumerate(grads):
        w = w - _rate(lr, t0, dtype) * g
        out.append(w)
    return np.stack(out)


def momentum(
    param: Any, grads: Sequence[Any], *, lr: LearningRate, momentum: float,
    dtype: Any = np.float64,
) -> np.ndarray:
    """v ← γ v + η g ; w ← w − v (η inside the velocity)."""
    w, grads, h = _setup(param, grads, dtype, momentum=momentum)
    v = np.zeros_like(w)
    out = []
    for t0, g in enumerate(grads):
        v = h["momentum"] * v + _rate(lr, t0, dtype) * g
        w = w - v
        out.append(w)
    return np.stack(out)


def nesterov(
    param: Any, grads: Sequence[Any], *, lr: LearningRate, momentum: float,
    dtype: Any = np.float64,
) -> np.ndarray:
    """v ← γ v + g ; w ← w − η (γ v + g) with the new v (η outside the velocity)."""
    w, grads, h = _setup(param, grads, dtype, momentum=momentum)
    gamma = h["momentum"]
    v = np.zeros_like(w)
    out = []
    for t0, g in enumerate(grads):
        v = gamma * v + g
        w = w - _rate(lr, t0, dtype) * (gamma * v + g)
        out.append(w)
    return np.stack(out)


def adagrad(
    param: Any, grads: Sequence[Any], *, lr: LearningRate, epsilon: float,
    initial_accumulator_value: float, dtype: Any = np.float64,
) -> np.ndarray:
    """v ← v + g² ; w ← w − η g / √(v + ε), v from ``initial_accumulator_value``."""
    w, grads, h = _setup(
        param, grads, dtype, epsilon=epsilon, initial_accumulator_value=initial_accumulator_value
    )
    v = np.full_like(w, h["initial_accumulator_value"])
    out = []
    for t0, g in enumerate(grads):
        v = v + g * g
        w = w - _rate(lr, t0, dtype) * g / np.sqrt(v + h["epsilon"])
        out.append(w)
    return np.stack(out)


def rmsprop(
    param: Any, grads: Sequence[Any], *, lr: LearningRate, rho: float, epsilon: float,
    dtype: Any = np.float64,
) -> np.ndarray:
    """v ← ρ v + (1−ρ) g² ; w ← w − η g / √(v + ε) (ε inside the root)."""
    w, grads, h = _setup(param, grads, dtype, rho=rho, epsilon=epsilon)
    one = np.dtype(dtype).type(1)
    v = np.zeros_like(w)
    out = []
    for t0, g in enumerate(grads):
        v = h["rho"] * v + (one - h["rho"]) * g * g
        w = w - _rate(lr, t0, dtype) * g / np.sqrt(v + h["epsilon"])
        out.append(w)
    return np.stack(out)


def adadelta(
    param: Any, grads: Sequence[Any], *, lr: LearningRate, rho: float, epsilon: float,
    dtype: Any = np.float64,
) -> np.ndarray:
    """v ← ρv + (1−ρ)g² ; Δ ← √(u+ε)/√(v+ε)·g ; u ← ρu + (1−ρ)Δ² ; w ← w − ηΔ."""
    w, grads, h = _setup(param, grads, dtype, rho=rho, epsilon=epsilon)
    one = np.dtype(dtype).type(1)
    rho, eps = h["rho"], h["epsilon"]
    v = np.zeros_like(w)
    u = np.zeros_like(w)
    out = []
    for t0, g in enumerate(grads):
        v = rho * v + (one - rho) * g * g
        delta = np.sqrt(u + eps) / np.sqrt(v + eps) * g
        u = rho * u + (one - rho) * delta * delta
        w = w - _rate(lr, t0, dtype) * delta
        out.append(w)
    return np.stack(out)


def adam(
    param: Any, grads: Sequence[Any], *, lr: LearningRate, beta_1: float, beta_2: float,
    epsilon: float, bias_correction: bool = True, dtype: Any = np.float64,
) -> np.ndarray:
    """m ← β1 m + (1−β1) g ; v ← β2 v + (1−β2) g² ; w ← w − η m̂/(√v̂ + ε).

    m̂ = m/(1−β1ᵗ), v̂ = v/(1−β2ᵗ); m̂, v̂ = m, v when ``bias_correction`` is False.
    """
    w, grads, h = _setup(param, grads, dtype, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)
    one = np.dtype(dtype).type(1)
    b1, b2, eps = h["beta_1"], h["beta_2"], h["epsilon"]
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    out = []
    for t0, g in enumerate(grads):
        t = t0 + 1
        m = b1 * m + (one - b1) * g
        v = b2 * v + (one - b2) * g * g
        m_hat, v_hat = m, v
        if bias_correction:
            m_hat = m / (one - b1**t)
            v_hat = v / (one - b2**t)
        w = w - _rate(lr, t0, dtype) * m_hat / (np.sqrt(v_hat) + eps)
        out.append(w)
    return np.stack(out)


def adamax(
    param: Any, grads: Sequence[Any], *, lr: LearningRate, beta_1: float, beta_2: float,
    epsilon: float, dtype: Any = np.float64,
) -> np.ndarray:
    """m as Adam ; v ← max(β2 v, |g|) ; w ← w − η m̂/(v + ε)."""
    w, grads, h = _setup(param, grads, dtype, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)
    one = np.dtype(dtype).type(1)
    b1, b2, eps = h["beta_1"], h["beta_2"], h["epsilon"]
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    out = []
    for t0, g in enumerate(grads):
        t = t0 + 1
        m = b1 * m + (one - b1) * g
        v = np.maximum(b2 * v, np.abs(g))
        w = w - _rate(lr, t0, dtype) * (m / (one - b1**t)) / (v + eps)
        out.append(w)
    return np.stack(out)


def nadam(
    param: Any, grads: Sequence[Any], *, lr: LearningRate, beta_1: float, beta_2: float,
    epsilon: float, dtype: Any = np.float64,
) -> np.ndarray:
    """m, v, m̂, v̂ as Adam ; w ← w − η/(√v̂ + ε)·(β1 m̂ + (1−β1) g/(1−β1ᵗ))."""
    w, grads, h = _setup(param, grads, dtype, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)
    one = np.dtype(dtype).type(1)
    b1, b2, eps = h["beta_1"], h["beta_2"], h["epsilon"]
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    out = []
    for t0, g in enumerate(grads):
        t = t0 + 1
        m = b1 * m + (one - b1) * g
        v = b2 * v + (one - b2) * g * g
        m_hat = m / (one - b1**t)
        v_hat = v / (one - b2**t)
        lookahead = b1 * m_hat + (one - b1) * g / (one - b1**t)
        w = w - _rate(lr, t0, dtype) / (np.sqrt(v_hat) + eps) * lookahead
        out.append(w)
    return np.stack(out)


def amsgrad(
    param: Any, grads: Sequence[Any], *, lr: LearningRate, beta_1: float, beta_2: float,
    epsilon: float, dtype: Any = np.float64,
) -> np.ndarray:
    """m, v as Adam ; v̂ ← max(v̂, v) ; w ← w − η m/(√v̂ + ε) (no bias correction)."""
    w, grads, h = _setup(param, grads, dtype, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)
    one = np.dtype(dtype).type(1)
    b1, b2, eps = h["beta_1"], h["beta_2"], h["epsilon"]
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    v_max = np.zeros_like(w)
    out = []
    for t0, g in enumerate(grads):
        m = b1 * m + (one - b1) * g
        v = b2 * v + (one - b2) * g * g
        v_max = np.maximum(v_max, v)
        w = w - _rate(lr, t0, dtype) * m / (np.sqrt(v_max) + eps)
        out.append(w)
    return np.stack(out)


def adamw(
    param: Any, grads: Sequence[Any], *, lr: LearningRate, beta_1: float, beta_2: float,
    epsilon: float, weight_decay: float, dtype: Any = np.float64,
) -> np.ndarray:
    """Adam's step, then w ← w − η λ w_old on the pre-step weights (decoupled decay)."""
    w, grads, h = _setup(param, grads, dtype, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)
    lam = np.dtype(dtype).type(weight_decay)
    one = np.dtype(dtype).type(1)
    b1, b2, eps = h["beta_1"], h["beta_2"], h["epsilon"]
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    out = []
    for t0, g in enumerate(grads):
        t = t0 + 1
        eta = _rate(lr, t0, dtype)
        m = b1 * m + (one - b1) * g
        v = b2 * v + (one - b2) * g * g
        m_hat = m / (one - b1**t)
        v_hat = v / (one - b2**t)
        w = w - eta * m_hat / (np.sqrt(v_hat) + eps) - eta * lam * w
        out.append(w)
    return np.stack(out)


def maxprop(
    param: Any, grads: Sequence[Any], *, lr: LearningRate, rho: float, epsilon: float,
    dtype: Any = np.float64,
) -> np.ndarray:
    """v ← max(ρ v, |g|) ; w ← w − η g/(v + ε)."""
    w, grads, h = _setup(param, grads, dtype, rho=rho, epsilon=epsilon)
    v = np.zeros_like(w)
    out = []
    for t0, g in enumerate(grads):
        v = np.maximum(h["rho"] * v, np.abs(g))
        w = w - _rate(lr, t0, dtype) * g / (v + h["epsilon"])
        out.append(w)
    return np.stack(out)


def rprop(
    param: Any, grads: Sequence[Any], *, lr: LearningRate, eta_minus: float, eta_plus: float,
    min_step: float, max_step: float, dtype: Any = np.float64,
) -> np.ndarray:
    """Resilient propagation, per element, with the step size s and g_prev as slots.

    s is η(0) at step 1 (both slots start at zero, so step 1 always takes the
    ``g·g_prev = 0`` branch with s = η(0)); the learning rate is not read again.
    Then: s ← min(s η₊, max_step) if g·g_prev > 0 ; s ← max(s η₋, min_step) and
    g ← 0 if g·g_prev < 0 ; w ← w − sign(g) s ; g_prev ← g (the zeroed g).
    """
    w, grads, h = _setup(
        param, grads, dtype, eta_minus=eta_minus, eta_plus=eta_plus,
        min_step=min_step, max_step=max_step,
    )
    step_size = np.full_like(w, _rate(lr, 0, dtype))
    g_prev = np.zeros_like(w)
    out = []
    for g in grads:
        agreement = g * g_prev
        grown = np.minimum(step_size * h["eta_plus"], h["max_step"])
        shrunk = np.maximum(step_size * h["eta_minus"], h["min_step"])
        step_size = np.where(agreement > 0, grown, np.where(agreement < 0, shrunk, step_size))
        g = np.where(agreement < 0, np.zeros_like(g), g)
        w = w - np.sign(g) * step_size
        g_prev = g
        out.append(w)
    return np.stack(out)


#: name → reference rule, in DESIGN.md's order.
REFERENCES: dict[str, Callable[..., np.ndarray]] = {
    "gd": gd,
    "momentum": momentum,
    "nesterov": nesterov,
    "adagrad": adagrad,
    "rmsprop": rmsprop,
    "adadelta": adadelta,
    "adam": adam,
    "adamax": adamax,
    "nadam": nadam,
    "amsgrad": amsgrad,
    "adamw": adamw,
    "maxprop": maxprop,
    "rprop": rprop,
}


def run(
    name: str, param: Any, grads: Sequence[Any], *, lr: LearningRate,
    dtype: Any = np.float64, **hyperparameters: Any,
) -> np.ndarray:
    """The reference rule ``name`` applied to ``grads``; see the module docstring.

    Args:
        name: a DESIGN.md optimizer name.
        param: the initial parameter array.
        grads: one gradient array per step.
        lr: η as a function of the 0-based iteration count.
        dtype: the floating type of the computation.
        **hyperparameters: the rule's keywords other than ``learning_rate``.
    """
    return REFERENCES[name](param, grads, lr=lr, dtype=dtype, **hyperparameters)
