"""Image classification: Keras models trained with ``model.fit`` in float32.

Every image task has explicit splits: the test set is fixed (the data set's
official test split; for the digits a fixed hold-out), the validation set is
drawn from the training images by the task's ``seed``, and ``subset`` keeps
only the first training images of that seeded order. Each epoch logs loss and
accuracy on the training batches (Keras's running means) and on the validation
set; the test set is evaluated once, after training.

``protocol = "deepobs"`` (on the tasks DeepOBS shares) follows DeepOBS's data
protocol instead (its ``deepobs.tensorflow.datasets``, version 1.2): the
validation set is the first ``validation_size`` (10000) training images in the
source's order, not a seeded draw; training batches drop the last short batch
(``drop_remainder=True``), so an epoch is ⌊N/B⌋ steps; and the test set is
evaluated at every epoch's end (``test_loss`` and ``test_accuracy`` join the
history). What still differs from DeepOBS: the training images are shuffled
whole every epoch (DeepOBS: a 20000-image shuffle buffer); the test set is
evaluated whole (DeepOBS's test batches drop their remainder too: 9984 of
10000 images at batches of 128); DeepOBS also evaluates before the first
epoch (its curves have one point more) and on 10000 training images
(``train_eval``) where gdbench logs the running mean over the epoch's
batches; and ``cifar10_3c3d`` trains without DeepOBS's data augmentation.

Loss: softmax cross-entropy over 10 classes (``SparseCategoricalCrossentropy``
on logits) plus, where a model has it, its L2 weight penalty.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from gdbench.tasks import _datasets
from gdbench.tasks._image_task import EVALUATION_BATCH_SIZE, PROTOCOLS, ImageSplits, ImageTask

# The base of the image tasks lives in gdbench.tasks._image_task; its names stay
# importable from here.
__all__ = [
    "CIFAR10_3C3D",
    "EVALUATION_BATCH_SIZE",
    "MNISTMLP",
    "PROTOCOLS",
    "DigitsMLP",
    "FashionMNIST2C2D",
    "FashionMNISTMLP",
    "ImageSplits",
    "ImageTask",
]


class DigitsMLP(ImageTask):
    """A small MLP on scikit-learn's 8×8 handwritten digits: the offline default.

    Data: ``sklearn.datasets.load_digits`` (1797 images, 8×8, 16 grey levels,
    shipped with scikit-learn, no download). Test: a fixed hold-out of 360
    images (the same for every seed); validation: 360 images drawn by the
    seed; training: the other 1077. Pixels scaled to [0, 1].
    Model: 64 inputs → 32 ReLU → 10 logits (Glorot-uniform weights, zero biases).
    Loss: softmax cross-entropy. Defaults: 20 epochs, batches of 128.

    Source: scikit-learn's digits data set (Alpaydin & Kaynak, UCI optdigits
    test set); the network is this package's own small baseline.
    """

    name = "digits_mlp"
    default_epochs = 20
    image_shape = (8, 8, 1)
    source_train_size = 1437
    source_test_size = 360
    default_validation_size = 360

    def load_arrays(self) -> _datasets.Arrays:
        images, labels = _datasets.digits()
        # A fixed permutation, not the task's seed: the test set must not move between trials.
        order = np.random.default_rng(0).permutation(len(labels))
        test, train = order[: self.source_test_size], order[self.source_test_size:]
        return (images[train], labels[train]), (images[test], labels[test])

    def scale(self, images: np.ndarray) -> np.ndarray:
        return (images.astype(np.float32) / 16.0).reshape((-1, *self.image_shape))

    def build_model(self) -> keras.Model:
        return keras.Sequential([
            keras.Input(self.image_shape),
            keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu", kernel_initializer=self.initializer(0)),
            keras.layers.Dense(self.num_classes, kernel_initializer=self.initializer(1)),
        ], name=self.name)


def _mlp_1000_500_100(task: ImageTask) -> keras.Model:
    """DeepOBS's MLP: 784 → 1000 → 500 → 100 (ReLU) → 10 logits, truncated N(0, 0.03²) weights."""
    layers: list[keras.layers.Layer] = [keras.Input(task.image_shape), keras.layers.Flatten()]
    for index, units in enumerate((1000, 500, 100)):
        layers.append(keras.layers.Dense(
            units, activation="relu",
            kernel_initializer=task.initializer(index, "TruncatedNormal", stddev=3e-2)))
    layers.append(keras.layers.Dense(
        task.num_classes, kernel_initializer=task.initializer(3, "TruncatedNormal", stddev=3e-2)))
    return keras.Sequential(layers, name=task.name)


class _FashionMNISTTask(ImageTask):
    """Fashion-MNIST: 60000 training and 10000 test images, 28×28 grey, 10 classes."""

    image_shape = (28, 28, 1)
    source_train_size = 60000
    source_test_size = 10000
    default_validation_size = 10000

    def load_arrays(self) -> _datasets.Arrays:
        return _datasets.fashion_mnist(download=self.options["download"])


class FashionMNISTMLP(_FashionMNISTTask):
    """DeepOBS's ``fmnist_mlp``: a four-layer MLP on Fashion-MNIST.

    Data: Fashion-MNIST, looked for in the Keras cache
    (``~/.keras/datasets/fashion-mnist/``), then in Debian's
    ``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist/``),
    then downloaded by Keras. Splits: the official 10000 test images;
    10000 validation images drawn from the 60000 training images by the seed;
    the remaining 50000 for training (or ``subset`` of them). Pixels / 255.
    Model: 784 → 1000 → 500 → 100 (ReLU) → 10 logits; weights from a normal
    N(0, 0.03²) truncated at 2σ, zero biases.
    Loss: softmax cross-entropy. Defaults: 100 epochs, batches of 128 (DeepOBS).

    Source: Xiao, Rasul & Vollgraf, "Fashion-MNIST", arXiv:1708.07747 (2017);
    DeepOBS (Schneider et al., ICLR 2019), ``fmnist_mlp``.
    """

    name = "fashion_mnist_mlp"
    deepobs_problem = "fmnist_mlp"
    default_epochs = 100

    def build_model(self) -> keras.Model:
        return _mlp_1000_500_100(self)


class FashionMNIST2C2D(_FashionMNISTTask):
    """DeepOBS's ``fmnist_2c2d``: two convolutional and two dense layers on Fashion-MNIST.

    Data and splits: as ``fashion_mnist_mlp``.
    Model: conv 5×5 with 32 filters (same padding, ReLU) → max-pool 2×2 →
    conv 5×5 with 64 filters → max-pool 2×2 → dense 1024 (ReLU) → 10 logits.
    Weights from N(0, 0.05²) truncated at 2σ, biases 0.05 (DeepOBS).
    Loss: softmax cross-entropy. Defaults: 100 epochs, batches of 128 (DeepOBS).

    Source: DeepOBS (Schneider et al., ICLR 2019), ``fmnist_2c2d``.
    """

    name = "fashion_mnist_2c2d"
    deepobs_problem = "fmnist_2c2d"
    default_epochs = 100

    def build_model(self) -> keras.Model:
        def weights(index: int) -> dict[str, Any]:
            return {"kernel_initializer": self.initializer(index, "TruncatedNormal", stddev=0.05),
                    "bias_initializer": keras.initializers.Constant(0.05)}

        return keras.Sequential([
            keras.Input(self.image_shape),
            keras.layers.Conv2D(32, 5, padding="same", activation="relu", **weights(0)),
            keras.layers.MaxPooling2D(2, strides=2, padding="same"),
            keras.layers.Conv2D(64, 5, padding="same", activation="relu", **weights(1)),
            keras.layers.MaxPooling2D(2, strides=2, padding="same"),
            keras.layers.Flatten(),
            keras.layers.Dense(1024, activation="relu", **weights(2)),
            keras.layers.Dense(self.num_classes, **weights(3)),
        ], name=self.name)


class MNISTMLP(ImageTask):
    """DeepOBS's ``mnist_mlp``: the four-layer MLP of ``fashion_mnist_mlp`` on MNIST.

    Data: ``keras.datasets.mnist.load_data()`` (downloaded once into the Keras
    cache, ``~/.keras/datasets/mnist.npz``). Splits: the official 10000 test
    images; 10000 validation images drawn from the 60000 training images by
    the seed; the other 50000 (or ``subset``) for training. Pixels / 255.
    Model and loss: as ``fashion_mnist_mlp``. Defaults: 100 epochs, batches of 128.

    Source: LeCun et al., "Gradient-based learning applied to document
    recognition", Proc. IEEE 86 (1998); DeepOBS, ``mnist_mlp``.
    """

    name = "mnist_mlp"
    deepobs_problem = "mnist_mlp"
    default_epochs = 100
    image_shape = (28, 28, 1)
    source_train_size = 60000
    source_test_size = 10000
    default_validation_size = 10000

    def load_arrays(self) -> _datasets.Arrays:
        return _datasets.mnist(download=self.options["download"])

    def build_model(self) -> keras.Model:
        return _mlp_1000_500_100(self)


class CIFAR10_3C3D(ImageTask):
    """DeepOBS's ``cifar10_3c3d``: three convolutional and three dense layers on CIFAR-10.

    Data: ``keras.datasets.cifar10.load_data()`` (downloaded once into the
    Keras cache). Splits: the official 10000 test images; 10000 validation
    images drawn from the 50000 training images by the seed; the other 40000
    (or ``subset``) for training. Each image is standardised to zero mean and
    unit variance (``tf.image.per_image_standardization``, as DeepOBS); unlike
    DeepOBS there is no data augmentation (random crops, flips, colour jitter).
    Model: conv 5×5/64 (valid) → max-pool 3×3 stride 2 → conv 3×3/96 (valid)
    → max-pool → conv 3×3/128 (same) → max-pool → dense 512 → dense 256 →
    10 logits; ReLU; Glorot-normal convolution and Glorot-uniform dense
    weights, zero biases; L2 penalty 0.002 · ½ Σ w² on every weight matrix.
    Loss: softmax cross-entropy + the L2 penalty. Defaults: 100 epochs,
    batches of 128 (DeepOBS).

    Source: Krizhevsky, "Learning multiple layers of features from tiny
    images" (2009); DeepOBS (Schneider et al., ICLR 2019), ``cifar10_3c3d``.
    """

    name = "cifar10_3c3d"
    deepobs_problem = "cifar10_3c3d"
    default_epochs = 100
    image_shape = (32, 32, 3)
    source_train_size = 50000
    source_test_size = 10000
    default_validation_size = 10000
    weight_decay = 0.002

    def load_arrays(self) -> _datasets.Arrays:
        return _datasets.cifar10(download=self.options["download"])

    def scale(self, images: np.ndarray) -> np.ndarray:
        return tf.image.per_image_standardization(images.astype(np.float32)).numpy()

    def build_model(self) -> keras.Model:
        penalty = keras.regularizers.L2(0.5 * self.weight_decay)

        def conv(index: int, filters: int, size: int, padding: str) -> keras.layers.Layer:
            return keras.layers.Conv2D(
                filters, size, padding=padding, activation="relu",
                kernel_initializer=self.initializer(index, "GlorotNormal"),
                kernel_regularizer=penalty)

        def dense(index: int, units: int, activation: str | None) -> keras.layers.Layer:
            return keras.layers.Dense(units, activation=activation,
                                      kernel_initializer=self.initializer(index, "GlorotUniform"),
                                      kernel_regularizer=penalty)

        def pool() -> keras.layers.Layer:
            return keras.layers.MaxPooling2D(3, strides=2, padding="same")

        return keras.Sequential([
            keras.Input(self.image_shape),
            conv(0, 64, 5, "valid"), pool(),
            conv(1, 96, 3, "valid"), pool(),
            conv(2, 128, 3, "same"), pool(),
            keras.layers.Flatten(),
            dense(3, 512, "relu"), dense(4, 256, "relu"), dense(5, self.num_classes, None),
        ], name=self.name)
