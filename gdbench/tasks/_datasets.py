"""Where the image data sets come from: scikit-learn, local copies, or Keras's download cache.

Every loader returns ``((x_train, y_train), (x_test, y_test))`` as uint8
images and integer labels, and raises :class:`DatasetNotFoundError` naming
every place it looked when the data are nowhere to be had.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import socket
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

Arrays = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

#: The Debian/Ubuntu package that ships Fashion-MNIST, and where it puts it.
FASHION_MNIST_PACKAGE = "dataset-fashion-mnist"
FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = (
    "train-labels-idx1-ubyte.gz",
    "train-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
)

#: Seconds a download may wait on the network before giving up.
DOWNLOAD_TIMEOUT_S = 30.0


class DatasetNotFoundError(FileNotFoundError):
    """An image data set is neither on disk nor downloadable."""


def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded data sets: ``$KERAS_HOME/datasets`` or ``~/.keras/datasets``."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "datasets"


def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8×8 digits (1797 images, pixels 0 … 16), shipped with scikit-learn."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images.astype(np.uint8), bunch.target.astype(np.int64)


def fashion_mnist(*, download: bool) -> Arrays:
    """Fashion-MNIST (60000 + 10000 images, 28×28), from the first place that has it.

    Looked for, in this order: the Keras cache (``<keras cache>/fashion-mnist/``,
    the four ``*-ubyte.gz`` files), the Debian package ``dataset-fashion-mnist``
    (``/usr/share/datasets/fashion-mnist/``), then a Keras download (when
    ``download`` is true).
    """
    places = [keras_cache_dir() / "fashion-mnist", FASHION_MNIST_SYSTEM_DIR]
    for place in places:
        if all((place / name).is_file() for name in FASHION_MNIST_FILES):
            return _read_idx_gz(place)
    failure = "downloading was switched off (download=False)"
    if download:
        import keras

        try:
            with _network_timeout():
                return keras.datasets.fashion_mnist.load_data()
        except Exception as error:
            failure = f"the Keras download failed: {error}"
    raise DatasetNotFoundError(
        "Fashion-MNIST not found. Looked for the files "
        f"{', '.join(FASHION_MNIST_FILES)} in (1) the Keras cache {places[0]}, "
        f"(2) {places[1]} (install: apt-get install -y {FASHION_MNIST_PACKAGE}); "
        f"(3) {failure}."
    )


def mnist(*, download: bool) -> Arrays:
    """MNIST through ``keras.datasets.mnist.load_data()``, cached as ``<keras cache>/mnist.npz``."""
    import keras

    return _through_keras("MNIST", keras.datasets.mnist.load_data,
                          keras_cache_dir() / "mnist.npz", download)


def cifar10(*, download: bool) -> Arrays:
    """CIFAR-10 through ``keras.datasets.cifar10.load_data()`` (cached under ``<keras cache>``)."""
    import keras

    (x_train, y_train), (x_test, y_test) = _through_keras(
        "CIFAR-10", keras.datasets.cifar10.load_data,
        keras_cache_dir() / "cifar-10-batches-py-target", download)
    return (x_train, y_train.reshape(-1)), (x_test, y_test.reshape(-1))


def _through_keras(title: str, load: Callable[[], Arrays], cached: Path, download: bool) -> Arrays:
    if cached.exists() or download:
        try:
            with _network_timeout():
                return load()
        except Exception as error:
            raise DatasetNotFoundError(
                f"{title}: not in the Keras cache ({cached}) and the Keras download failed: {error}"
            ) from error
    raise DatasetNotFoundError(
        f"{title}: not in the Keras cache ({cached}) and downloading was switched off "
        "(download=False); run once online to fill the cache"
    )


@contextlib.contextmanager
def _network_timeout() -> Iterator[None]:
    """Bound every socket wait during a download, so that an offline machine fails fast."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S if previous is None else previous)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _read_idx_gz(directory: Path) -> Arrays:
    contents = []
    for name in FASHION_MNIST_FILES:
        with gzip.open(directory / name, "rb") as file:
            contents.append(file.read())
    labels_train, images_train, labels_test, images_test = contents
    y_train = np.frombuffer(labels_train, np.uint8, offset=8).astype(np.int64)
    y_test = np.frombuffer(labels_test, np.uint8, offset=8).astype(np.int64)
    x_train = np.frombuffer(images_train, np.uint8, offset=16).reshape(len(y_train), 28, 28)
    x_test = np.frombuffer(images_test, np.uint8, offset=16).reshape(len(y_test), 28, 28)
    return (x_train, y_train), (x_test, y_test)
