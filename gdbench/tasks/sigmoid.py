"""The lectures' single sigmoid neuron, on two points and on sparse data."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

from gdbench import _validate
from gdbench.tasks._base import DATA_STREAM
from gdbench.tasks._toy import DatasetToyTask


def _sigmoid_squared_error(params: tf.Tensor, inputs: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
    """½ Σ_i (f(x_i) − y_i)², f(x) = σ(w x + b), for params [..., 2] = (w, b)."""
    w = params[..., 0:1]
    b = params[..., 1:2]
    prediction = tf.sigmoid(w * inputs + b)
    return 0.5 * tf.reduce_sum(tf.square(prediction - targets), axis=-1)


class SigmoidNeuron(DatasetToyTask):
    """One sigmoid neuron fitted to two points: the lectures' first GD example.

    Data: X = (0.5, 2.5), Y = (0.2, 0.9). Model: f(x) = 1 / (1 + e^−(w x + b)).
    Loss: L(w, b) = ½ Σ_i (f(x_i) − y_i)² (a sum, not a mean, so that its
    gradient is the lectures' loop: ∂L/∂w = Σ (f − y) f (1 − f) x,
    ∂L/∂b = Σ (f − y) f (1 − f)). Default: full batch, start (w, b) = (−2, −2);
    the lectures also start from (−4, 4) and (−4, −4).

    Why these data: two points and two parameters, so the neuron fits them
    exactly (loss 0 at w = 1.79, b = −2.28) and the whole error surface can
    be drawn over (w, b). From (−2, −2) both points sit on the flat tail of
    the sigmoid: the surface is a plateau, where GD at η = 1 crawls for
    about 150 epochs before the valley, the lectures' case for momentum.

    Source: the lectures' sigmoid-neuron example (two data points, the error
    surface over (w, b), and the numpy GD loop this task reproduces exactly).

    Args:
        seed: seeds the batch order when ``batch_size`` < 2.
        start: the initial (w, b).
        shuffle: reshuffle the two points every epoch in stochastic mode.
    """

    name = "sigmoid_neuron"
    default_epochs = 1000
    parameter_names = ("w", "b")
    surface_bounds = ((-6.0, 6.0), (-6.0, 6.0))

    def __init__(self, *, seed: int = 0, start: Sequence[float] = (-2.0, -2.0),
                 shuffle: bool = True) -> None:
        start = _validate.point("start", start, 2)
        super().__init__(seed=seed, start=start, shuffle=shuffle)
        self.inputs = np.array([0.5, 2.5])
        self.targets = np.array([0.2, 0.9])

    def initial_parameters(self) -> np.ndarray:
        return np.array(self.options["start"], dtype=np.float64)

    def loss_on(self, params: tf.Tensor, inputs: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
        return _sigmoid_squared_error(params, inputs, targets)


class SigmoidSparse(DatasetToyTask):
    """One sigmoid neuron on sparse inputs: the lectures' case for Adagrad.

    Data (seeded): 500 points; x_i ~ U(0, 1) except that a fraction
    ``sparsity`` of them (exactly round(sparsity · 500), chosen at random) is
    set to 0; y_i = σ(w* x_i + b*) with (w*, b*) = (2, −2), so the loss is 0
    at (2, −2). Loss: ½ Σ_i (f(x_i) − y_i)², as :class:`SigmoidNeuron`.
    Default: full batch, start (w, b) = (−4, −4).

    Why these data: ∂L/∂b sums over all 500 rows but ∂L/∂w only over the
    rows where x ≠ 0, each weighted by x. With 80 % zeros and x ≥ 0 (a sparse,
    non-negative feature such as a word count) the w gradient is about a
    thirtieth of the b gradient at the start, although w is 6 from its
    optimum and b only 2: GD, momentum and NAG first move almost only along b,
    while Adagrad, which divides each coordinate by its own gradient
    history, moves along w as fast as along b. The sum (not the mean) over
    500 points makes η = 0.1, the lectures' rate for every algorithm, a
    large step: momentum overshoots and RMSProp at η = 0.1 oscillates.

    Source: the lectures' Adagrad motivation (500 points, 80 % of x set to
    zero, η = 0.1 for every algorithm, momentum 0.9); the data here are this
    package's own seeded rendering of it.

    Args:
        seed: seeds the data and the batch order.
        sparsity: the fraction of inputs that are exactly 0, 0 ≤ sparsity < 1.
        start: the initial (w, b).
        shuffle: reshuffle the points every epoch for mini-batch and stochastic GD.
    """

    name = "sigmoid_sparse"
    default_epochs = 200
    parameter_names = ("w", "b")
    surface_bounds = ((-6.0, 6.0), (-6.0, 6.0))
    size = 500
    true_parameters = (2.0, -2.0)

    def __init__(self, *, seed: int = 0, sparsity: float = 0.8,
                 start: Sequence[float] = (-4.0, -4.0), shuffle: bool = True) -> None:
        sparsity = _validate.number("sparsity", sparsity, low=0.0, high=0.99)
        start = _validate.point("start", start, 2)
        super().__init__(seed=seed, sparsity=sparsity, start=start, shuffle=shuffle)
        rng = np.random.default_rng((self.seed, DATA_STREAM))
        inputs = rng.uniform(0.0, 1.0, self.size)
        inputs[rng.permutation(self.size)[: round(sparsity * self.size)]] = 0.0
        w, b = self.true_parameters
        self.inputs = inputs
        self.targets = 1.0 / (1.0 + np.exp(-(w * inputs + b)))

    def initial_parameters(self) -> np.ndarray:
        return np.array(self.options["start"], dtype=np.float64)

    def loss_on(self, params: tf.Tensor, inputs: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
        return _sigmoid_squared_error(params, inputs, targets)
