"""Regression problems with a few to a hundred parameters, on seeded synthetic data."""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from gdbench import _validate
from gdbench.tasks._base import DATA_STREAM, PROTOCOLS
from gdbench.tasks._toy import DatasetToyTask

BASES = ("polynomial", "gaussian")


class LinearRegression(DatasetToyTask):
    """Least squares on basis-function features of one input.

    Data (seeded): N = 100 points, x ~ U(−1, 1), y = sin(π x) + ε with
    ε ~ N(0, 0.1²). Features φ(x), with d = ``degree``:

    - ``polynomial``: (1, x, x², …, x^d);
    - ``gaussian``: (1, φ₁(x), …, φ_d(x)), φ_j(x) = exp(−(x − c_j)² / (2 s²)),
      centres c_j evenly spaced on [−1, 1], width s their spacing (1 when d = 1).

    Model: ŷ = θᵀ φ(x), θ of P = d + 1 weights starting at 0.
    Loss: mean squared error (1/B) Σ (ŷ − y)² over the batch.
    Default: full batch. With ``degree=1`` the task has two parameters and a
    surface to draw.

    Source: the lectures' linear regression with basis functions (Bishop,
    "Pattern Recognition and Machine Learning", §3.1).

    Args:
        seed: seeds the data and the batch order.
        basis: ``"polynomial"`` or ``"gaussian"``.
        degree: d ≥ 1, the polynomial degree or the number of Gaussian bumps.
        shuffle: reshuffle the points every epoch for mini-batch and stochastic GD.
    """

    name = "linear_regression"
    default_epochs = 200
    size = 100
    noise = 0.1

    def __init__(self, *, seed: int = 0, basis: str = "polynomial", degree: int = 3,
                 shuffle: bool = True) -> None:
        basis = _validate.choice("basis", basis, BASES)
        degree = _validate.integer("degree", degree, low=1, high=20)
        super().__init__(seed=seed, basis=basis, degree=degree, shuffle=shuffle)
        rng = np.random.default_rng((self.seed, DATA_STREAM))
        x = rng.uniform(-1.0, 1.0, self.size)
        self.x = x
        self.inputs = self.features(x)
        self.targets = np.sin(np.pi * x) + rng.normal(0.0, self.noise, self.size)
        self.parameter_names = tuple(f"w{index}" for index in range(degree + 1))
        self.surface_bounds = ((-3.0, 3.0), (-3.0, 3.0)) if degree == 1 else None

    def features(self, x: np.ndarray) -> np.ndarray:
        """φ(x) for every element of ``x``: shape [len(x), P], constant feature first."""
        degree = self.options["degree"]
        if self.options["basis"] == "polynomial":
            return np.stack([x ** power for power in range(degree + 1)], axis=-1)
        centres = np.linspace(-1.0, 1.0, degree) if degree > 1 else np.zeros(1)
        width = centres[1] - centres[0] if degree > 1 else 1.0
        bumps = np.exp(-np.square(x[:, np.newaxis] - centres) / (2.0 * width ** 2))
        return np.concatenate([np.ones((len(x), 1)), bumps], axis=-1)

    def initial_parameters(self) -> np.ndarray:
        return np.zeros(len(self.parameter_names))

    def loss_on(self, params: tf.Tensor, inputs: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
        prediction = tf.linalg.matvec(inputs, params)
        return tf.reduce_mean(tf.square(prediction - targets), axis=-1)


class LogisticRegression(DatasetToyTask):
    """Logistic regression on two features: the lectures' mini-batch example.

    Data (seeded): N = 1000 points, half of class 0 drawn from
    N((−1, −0.5), I), half of class 1 from N((1, 0.5), I) (the classes
    overlap: the best accuracy is about 86 %).
    Model: p = σ(w₁ x₁ + w₂ x₂ + b), parameters (w₁, w₂, b) starting at 0.
    Loss: binary cross-entropy, mean over the batch. Metric: accuracy
    (p > ½). Default: mini-batches of 128 rows (8 steps per epoch).

    Source: the lectures' logistic regression trained with mini-batch GD.

    Args:
        seed: seeds the data and the batch order.
        shuffle: reshuffle the rows every epoch.
    """

    name = "logistic_regression"
    default_epochs = 20
    default_batch_size = 128
    parameter_names = ("w1", "w2", "b")
    size = 1000
    centres = ((-1.0, -0.5), (1.0, 0.5))

    def __init__(self, *, seed: int = 0, shuffle: bool = True) -> None:
        super().__init__(seed=seed, shuffle=shuffle)
        rng = np.random.default_rng((self.seed, DATA_STREAM))
        labels = rng.permutation(np.arange(self.size) % 2).astype(np.float64)
        means = np.asarray(self.centres)[labels.astype(int)]
        self.inputs = means + rng.standard_normal((self.size, 2))
        self.targets = labels

    def initial_parameters(self) -> np.ndarray:
        return np.zeros(3)

    def logits(self, params: tf.Tensor, inputs: tf.Tensor) -> tf.Tensor:
        """w₁ x₁ + w₂ x₂ + b for every row: params [..., 3], inputs [B, 2] → [..., B]."""
        return tf.linalg.matvec(inputs, params[..., :2]) + params[..., 2:3]

    def loss_on(self, params: tf.Tensor, inputs: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
        logits = self.logits(params, inputs)
        # softplus(z) − y z is −[y log σ(z) + (1 − y) log(1 − σ(z))], without overflow.
        return tf.reduce_mean(tf.nn.softplus(logits) - targets * logits, axis=-1)

    def metrics(self, params: tf.Tensor) -> dict[str, tf.Tensor]:
        params = tf.convert_to_tensor(params, tf.float64)
        predicted = tf.cast(self.logits(params, tf.constant(self.inputs)) > 0, tf.float64)
        accuracy = tf.reduce_mean(tf.cast(tf.equal(predicted, self.targets), tf.float64), axis=-1)
        return {"loss": self.loss(params), "accuracy": accuracy}


def random_rotation(dimension: int, rng: np.random.RandomState) -> np.ndarray:
    """A rotation in SO(dimension) drawn from the Haar measure by the subgroup algorithm.

    Diaconis & Shahshahani, "The subgroup algorithm for generating uniform
    random variables", Prob. Eng. Inf. Sci. 1 (1987): start from a random 2-D
    rotation and grow it one dimension at a time with a Householder
    reflection that maps e₁ to a uniform point of the sphere. The draws from
    ``rng`` are made in the same order as DeepOBS's ``random_rotation``, so the
    same generator state gives the same matrix.
    """
    angle = 2 * np.pi * rng.uniform()
    rotation = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    for size in range(2, dimension):
        direction = rng.normal(size=(size + 1, 1))
        direction /= np.sqrt(direction.T @ direction)
        first_axis = np.zeros((size + 1, 1))
        first_axis[0, 0] = 1.0
        difference = first_axis - direction
        mirror = difference / np.sqrt(difference.T @ difference)
        embedded = np.eye(size + 1)
        embedded[1:, 1:] = rotation
        rotation = embedded - 2 * np.outer(mirror, mirror.T @ embedded)
    # The final sign flip follows DeepOBS; it changes no eigenvalue of Qᵀ D Q.
    return -rotation


class QuadraticDeep(DatasetToyTask):
    """DeepOBS's ``quadratic_deep``: a noisy 100-D quadratic with a deep-learning-like spectrum.

    Loss per example: ½ (θ − x)ᵀ H (θ − x), averaged over the batch, with
    H = Qᵀ D Q. D holds 90 eigenvalues drawn from U(0, 1) and 10 from
    U(30, 60) (the spectrum Chaudhari et al., 2017, report for deep networks),
    Q is a random rotation (Diaconis–Shahshahani subgroup algorithm). As in
    DeepOBS, the eigenvalues, Q and the data are fixed properties of the
    problem, drawn from ``numpy.random.RandomState(42)``: eigenvalues first,
    then Q (this reproduces the Hessian of DeepOBS's first ``quadratic_deep``
    instance); the training data, x ~ N(0, σ² I) with σ = ``noise_level`` =
    0.6, N = 1000, from a fresh ``RandomState(42)``. θ starts at (1, …, 1).
    The task's ``seed`` only drives the batch order. Default: mini-batches of
    128, 100 epochs, as DeepOBS.

    Protocols. Under gdbench's (``protocol = "gdbench"``, the default) an
    epoch keeps its last, short batch and ``loss`` is the loss on all N
    points after each epoch; there is no test set. Under DeepOBS's
    (``protocol = "deepobs"``, as ``deepobs.tensorflow.datasets.quadratic``
    and its runner do under TensorFlow 1): the training set is shuffled once
    from the seed and every epoch takes that order (DeepOBS re-initializes
    its ``tf.data`` iterator each epoch under a fixed graph seed, which
    restarts the shuffle where it began), in its ⌊N/B⌋ full batches, the
    rest dropped; the test set is 1000 points drawn from ``RandomState(43)``
    as the training set is from ``RandomState(42)``; and at each epoch's end,
    and before training (:attr:`FitResult.initial`), ``test_loss`` is the
    mean loss over the test set's first ⌊1000/B⌋ full batches of B (in
    order) and ``loss`` DeepOBS's training evaluation, the mean loss over the
    training batches (the same shuffle, the same rows). The one difference
    left: float64 instead of float32.

    Evaluated as ½ θᵀHθ − θᵀH x̄ + ½ mean(xᵀHx), the same value as the
    per-example form but cheap for a population of θ.

    Source: Schneider, Balles & Hennig, "DeepOBS: A Deep Learning Optimizer
    Benchmark Suite", ICLR 2019 (``deepobs.tensorflow.testproblems.quadratic_deep``).

    Args:
        seed: seeds the batch order (and, under DeepOBS's protocol, the
            training evaluation's draw).
        noise_level: σ > 0, the standard deviation of the data around 0.
        shuffle: reshuffle the data every epoch.
        protocol: ``"gdbench"`` or ``"deepobs"``, as above.
    """

    name = "quadratic_deep"
    default_epochs = 100
    default_batch_size = 128
    dimension = 100
    size = 1000

    #: The seed of DeepOBS's test draw (its training draw's is 42).
    test_seed = 43

    def __init__(self, *, seed: int = 0, noise_level: float = 0.6, shuffle: bool = True,
                 protocol: str = "gdbench") -> None:
        noise_level = _validate.number("noise_level", noise_level, low=0.0, low_open=True)
        protocol = _validate.choice("protocol", protocol, PROTOCOLS)
        super().__init__(seed=seed, noise_level=noise_level, shuffle=shuffle, protocol=protocol)
        self.drops_short_batch = protocol == "deepobs"
        rng = np.random.RandomState(42)
        eigenvalues = np.concatenate([rng.uniform(0.0, 1.0, 90), rng.uniform(30.0, 60.0, 10)])
        rotation = random_rotation(self.dimension, rng)
        self.eigenvalues = eigenvalues
        self.hessian = rotation.T @ np.diag(eigenvalues) @ rotation
        self.inputs = np.random.RandomState(42).normal(
            0.0, noise_level, (self.size, self.dimension))
        # Each row's target is unused: the data enter the loss through x alone.
        self.targets = np.zeros(self.size)
        self.test_inputs = np.random.RandomState(self.test_seed).normal(
            0.0, noise_level, (self.size, self.dimension))
        self.parameter_names = tuple(f"theta{index}" for index in range(self.dimension))

    def initial_parameters(self) -> np.ndarray:
        return np.ones(self.dimension)

    def evaluation_batches(self, batch_size: int | None, epoch: int) -> dict[str, Any]:
        """Under DeepOBS's protocol, ``loss`` and ``test_loss`` on their full batches (see above).

        One batch of all the full batches' rows stands for them: every batch
        holds B rows, so the mean of the batches' means is the mean over the rows.

        Args:
            batch_size: as for :meth:`fit`.
            epoch: 0 (before training) … the epochs run.
        """
        batch_size = self.resolve_batch_size(batch_size)
        epoch = _validate.integer("epoch", epoch, low=0)
        if self.options["protocol"] != "deepobs":
            return {}
        train_rows = self.row_order(batch_size, epoch)
        kept = self.size // batch_size * batch_size
        return {"loss": (self.inputs[train_rows], self.targets[train_rows]),
                "test_loss": (self.test_inputs[:kept], np.zeros(kept))}

    def loss_on(self, params: tf.Tensor, inputs: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
        del targets
        hessian = tf.constant(self.hessian)
        h_theta = tf.linalg.matvec(hessian, params)
        mean_x = tf.reduce_mean(inputs, axis=0)
        data_term = 0.5 * tf.reduce_mean(
            tf.reduce_sum(inputs * tf.linalg.matvec(hessian, inputs), axis=-1))
        return (0.5 * tf.reduce_sum(params * h_theta, -1)
                - tf.reduce_sum(h_theta * mean_x, -1) + data_term)
