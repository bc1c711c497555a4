"""The lectures' optimizer loops in plain numpy, for the sigmoid neuron and its sparse cousin.

Written from the lectures' code (``do_gradient_descent``,
``do_momentum_gradient_descent``, ``do_nag_gradient_descent``, ...), not from
gdbench: nothing here imports gdbench. A loop takes the data (x, y), the
batches as row indices, and returns the iterates (w, b) after every step,
row 0 the start. ε sits where DESIGN.md's optimizer table puts it.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import numpy as np

#: The lectures' two points.
XS, YS = np.array([0.5, 2.5]), np.array([0.2, 0.9])

Gradient = Callable[[np.ndarray, np.ndarray], np.ndarray]


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def loss(params: np.ndarray, xs: np.ndarray = XS, ys: np.ndarray = YS) -> np.ndarray:
    """½ Σ (σ(w x + b) − y)² at params [..., 2]."""
    params = np.asarray(params, dtype=float)
    f = sigmoid(params[..., :1] * xs + params[..., 1:2])
    return 0.5 * np.sum((f - ys) ** 2, axis=-1)


def gradient(params: np.ndarray, rows: np.ndarray, xs: np.ndarray = XS,
             ys: np.ndarray = YS) -> np.ndarray:
    """(∂L/∂w, ∂L/∂b) summed over ``rows``: the lectures' grad_w and grad_b."""
    w, b = params
    x, y = xs[rows], ys[rows]
    f = sigmoid(w * x + b)
    common = (f - y) * f * (1 - f)
    return np.array([np.sum(common * x), np.sum(common)])


def full_batches(size: int, epochs: int) -> list[np.ndarray]:
    return [np.arange(size)] * epochs


def in_order_batches(size: int, batch_size: int, epochs: int) -> list[np.ndarray]:
    """Unshuffled batches of ``batch_size`` rows (the last may be short), epoch after epoch."""
    per_epoch = [np.arange(start, min(start + batch_size, size))
                 for start in range(0, size, batch_size)]
    return per_epoch * epochs


def _run(start: Sequence[float], batches: Iterable[np.ndarray], grad: Gradient,
         step: Callable[[np.ndarray, Callable[[np.ndarray], np.ndarray], int], np.ndarray]
         ) -> np.ndarray:
    params = np.array(start, dtype=float)
    rows = [params.copy()]
    for t, batch in enumerate(batches, start=1):
        params = step(params, lambda p, batch=batch: grad(p, batch), t)
        rows.append(params.copy())
    return np.array(rows)


def gd(start, batches, grad, *, eta):
    return _run(start, batches, grad, lambda p, g, t: p - eta * g(p))


def gd_scheduled(start, batches, grad, *, etas):
    """GD with η_t = etas[t − 1] at step t."""
    return _run(start, batches, grad, lambda p, g, t: p - etas[t - 1] * g(p))


def momentum(start, batches, grad, *, eta, gamma):
    u = np.zeros(2)

    def step(p, g, t):
        nonlocal u
        u = gamma * u + eta * g(p)
        return p - u
    return _run(start, batches, grad, step)


def nag(start, batches, grad, *, eta, gamma):
    """do_nag_gradient_descent: the gradient at the look-ahead w − γu, then u ← γu + η∇, w ← w − u."""
    u = np.zeros(2)

    def step(p, g, t):
        nonlocal u
        look_ahead = p - gamma * u
        u = gamma * u + eta * g(look_ahead)
        return p - u
    return _run(start, batches, grad, step)


def adagrad(start, batches, grad, *, eta, eps):
    v = np.zeros(2)

    def step(p, g, t):
        nonlocal v
        d = g(p)
        v = v + d ** 2
        return p - eta / np.sqrt(v + eps) * d
    return _run(start, batches, grad, step)


def rmsprop(start, batches, grad, *, eta, beta, eps):
    v = np.zeros(2)

    def step(p, g, t):
        nonlocal v
        d = g(p)
        v = beta * v + (1 - beta) * d ** 2
        return p - eta / np.sqrt(v + eps) * d
    return _run(start, batches, grad, step)


def adadelta(start, batches, grad, *, eta, beta, eps):
    v, u = np.zeros(2), np.zeros(2)

    def step(p, g, t):
        nonlocal v, u
        d = g(p)
        v = beta * v + (1 - beta) * d ** 2
        delta = np.sqrt(u + eps) / np.sqrt(v + eps) * d
        u = beta * u + (1 - beta) * delta ** 2
        return p - eta * delta
    return _run(start, batches, grad, step)


def adam(start, batches, grad, *, eta, beta1, beta2, eps, bias_correction=True):
    m, v = np.zeros(2), np.zeros(2)

    def step(p, g, t):
        nonlocal m, v
        d = g(p)
        m = beta1 * m + (1 - beta1) * d
        v = beta2 * v + (1 - beta2) * d ** 2
        m_hat, v_hat = (m / (1 - beta1 ** t), v / (1 - beta2 ** t)) if bias_correction else (m, v)
        return p - eta * m_hat / (np.sqrt(v_hat) + eps)
    return _run(start, batches, grad, step)


def adamax(start, batches, grad, *, eta, beta1, beta2, eps):
    m, v = np.zeros(2), np.zeros(2)

    def step(p, g, t):
        nonlocal m, v
        d = g(p)
        m = beta1 * m + (1 - beta1) * d
        v = np.maximum(beta2 * v, np.abs(d))
        return p - eta * (m / (1 - beta1 ** t)) / (v + eps)
    return _run(start, batches, grad, step)


def line_search(start, batches, grad, loss_on, *, etas):
    """At every step, the gradient step of lowest loss among the η of ``etas``; and the η chosen."""
    params = np.array(start, dtype=float)
    rows, chosen = [params.copy()], []
    for batch in batches:
        g = grad(params, batch)
        candidates = [params - eta * g for eta in etas]
        best = int(np.argmin([loss_on(c, batch) for c in candidates]))
        params = candidates[best]
        rows.append(params.copy())
        chosen.append(etas[best])
    return np.array(rows), chosen


def random_search(start, batches, loss_on, *, alpha, delta, seed):
    """Finite differences along a random δW ~ N(0, δ² I): W ← W − α (L(W + δW) − L(W − δW)) δW."""
    rng = np.random.default_rng(seed)
    params = np.array(start, dtype=float)
    rows = [params.copy()]
    for batch in batches:
        direction = delta * rng.standard_normal(params.shape)
        params = params - alpha * (loss_on(params + direction, batch)
                                   - loss_on(params - direction, batch)) * direction
        rows.append(params.copy())
    return np.array(rows)
