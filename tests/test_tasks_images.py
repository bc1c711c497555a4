"""Image tasks: Keras models, splits, data-set lookup; nothing downloads."""

from __future__ import annotations

import gzip
import math

import keras
import numpy as np
import pytest
import system_packages

import gdbench.optimizers
import gdbench.tasks
from gdbench.tasks import _datasets

FASHION_MNIST_SYSTEM = _datasets.FASHION_MNIST_SYSTEM_DIR


@pytest.fixture()
def debian_fashion_mnist() -> None:
    if not all((FASHION_MNIST_SYSTEM / name).is_file() for name in _datasets.FASHION_MNIST_FILES):
        system_packages.missing(f"Fashion-MNIST not installed in {FASHION_MNIST_SYSTEM} "
                                f"(apt-get install -y {_datasets.FASHION_MNIST_PACKAGE})")


class EpochLogs(keras.callbacks.Callback):
    def __init__(self, stop_after: int | None = None) -> None:
        super().__init__()
        self.logs: list[dict[str, float]] = []
        self.stop_after = stop_after

    def on_epoch_end(self, epoch, logs=None):
        self.logs.append(dict(logs))
        if self.stop_after is not None and epoch + 1 >= self.stop_after:
            self.model.stop_training = True


@pytest.fixture
def empty_keras_cache(tmp_path, monkeypatch):
    """A Keras home with no data sets, so that nothing is found in the user's cache."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    return tmp_path / "keras" / "datasets"


def test_digits_mlp_trains_with_validation_and_test_metrics():
    task = gdbench.tasks.get("digits_mlp", seed=1)
    recorder = EpochLogs()
    result = task.fit(gdbench.optimizers.get("adam", learning_rate=0.01), epochs=4,
                      callbacks=[recorder])
    assert set(result.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"}
    assert result.history["loss"][-1] < result.history["loss"][0]
    assert result.history["val_loss"][-1] < result.history["val_loss"][0]
    assert result.metrics["val_accuracy"] > 0.5
    assert {"test_loss", "test_accuracy"} <= set(result.metrics)
    assert "learning_rate" not in result.metrics
    assert result.steps_per_epoch == 9 and result.trajectory is None
    assert [logs["learning_rate"] for logs in recorder.logs] == pytest.approx([0.01] * 4)
    assert [logs["val_loss"] for logs in recorder.logs] == result.history["val_loss"]


def test_digits_splits_are_disjoint_float32_and_seeded():
    task = gdbench.tasks.get("digits_mlp", seed=3)
    splits = task.data()
    assert splits.x_train.shape == (1077, 8, 8, 1) and splits.x_train.dtype == np.float32
    assert len(splits.y_validation) == 360 and len(splits.y_test) == 360
    assert 0.0 <= splits.x_train.min() and splits.x_train.max() <= 1.0
    # Together the three splits are the whole data set, each image exactly once.
    together = sorted(image.tobytes() for image in (*splits.x_train, *splits.x_validation,
                                                     *splits.x_test))
    images, _ = _datasets.digits()
    assert together == sorted(task.scale(images).reshape(-1, 8, 8, 1)[i].tobytes()
                              for i in range(len(images)))
    other = gdbench.tasks.get("digits_mlp", seed=4).data()
    np.testing.assert_array_equal(splits.x_test, other.x_test)  # the test set never moves
    assert not np.array_equal(splits.y_validation, other.y_validation)
    small = gdbench.tasks.get("digits_mlp", subset=100, test_size=50).data()
    assert len(small.y_train) == 100 and len(small.y_test) == 50


def test_digits_fit_is_reproducible_and_stoppable():
    def run(seed: int, callbacks=()) -> gdbench.tasks.FitResult:
        keras.backend.clear_session(free_memory=False)
        return gdbench.tasks.get("digits_mlp", seed=seed).fit(
            gdbench.optimizers.get("gd", learning_rate=0.1), epochs=2, batch_size=64,
            callbacks=callbacks)

    first, second = run(0), run(0)
    assert first.history == second.history
    assert run(1).history["loss"] != first.history["loss"]
    assert run(0, callbacks=[EpochLogs(stop_after=1)]).epochs == 1


def test_a_diverging_image_task_stops_without_raising():
    result = gdbench.tasks.get("digits_mlp").fit(
        gdbench.optimizers.get("gd", learning_rate=1e12), epochs=5)
    assert not result.finite
    assert result.epochs < 5
    assert not math.isfinite(result.history["loss"][-1])


@pytest.mark.parametrize("name, parameters", [
    ("digits_mlp", 64 * 32 + 32 + 32 * 10 + 10),
    ("fashion_mnist_mlp", 1_336_610),
    ("fashion_mnist_2c2d", 3_274_634),  # DeepOBS's count
    ("mnist_mlp", 1_336_610),
    ("cifar10_3c3d", 895_210),  # DeepOBS's count
])
def test_models_build_offline_with_the_published_sizes(name, parameters):
    options = {} if name == "digits_mlp" else {"download": False}
    task = gdbench.tasks.get(name, **options)
    model = task.build_model()
    assert model.count_params() == parameters
    assert all(weight.dtype == "float32" for weight in model.weights)
    again = task.build_model()
    np.testing.assert_array_equal(model.weights[0].numpy(), again.weights[0].numpy())


@pytest.mark.parametrize("name, cached", [
    ("mnist_mlp", "mnist.npz"),
    ("cifar10_3c3d", "cifar-10-batches-py-target"),
])
def test_missing_keras_data_set_is_a_clear_error(name, cached, empty_keras_cache):
    task = gdbench.tasks.get(name, download=False)
    optimizer = gdbench.optimizers.get("gd")
    with pytest.raises(gdbench.tasks.DatasetNotFoundError, match=f"{cached}.*download=False"):
        task.fit(optimizer, epochs=1)
    assert not optimizer.built


def test_missing_fashion_mnist_names_every_place(empty_keras_cache, tmp_path, monkeypatch):
    monkeypatch.setattr(_datasets, "FASHION_MNIST_SYSTEM_DIR", tmp_path / "absent")
    task = gdbench.tasks.get("fashion_mnist_2c2d", download=False)
    with pytest.raises(gdbench.tasks.DatasetNotFoundError) as error:
        task.fit(gdbench.optimizers.get("gd"), epochs=1)
    message = str(error.value)
    assert str(empty_keras_cache / "fashion-mnist") in message
    assert str(tmp_path / "absent") in message
    assert "apt-get install -y dataset-fashion-mnist" in message
    assert "download=False" in message


def _write_idx_gz(directory, images: np.ndarray, labels: np.ndarray, prefix: str) -> None:
    with gzip.open(directory / f"{prefix}-images-idx3-ubyte.gz", "wb") as file:
        file.write(bytes(16) + images.astype(np.uint8).tobytes())
    with gzip.open(directory / f"{prefix}-labels-idx1-ubyte.gz", "wb") as file:
        file.write(bytes(8) + labels.astype(np.uint8).tobytes())


def test_fashion_mnist_prefers_the_keras_cache(empty_keras_cache):
    directory = empty_keras_cache / "fashion-mnist"
    directory.mkdir(parents=True)
    rng = np.random.default_rng(0)
    train_images, test_images = rng.integers(0, 256, (6, 28, 28)), rng.integers(0, 256, (3, 28, 28))
    _write_idx_gz(directory, train_images, np.arange(6), "train")
    _write_idx_gz(directory, test_images, np.array([7, 8, 9]), "t10k")
    (x_train, y_train), (x_test, y_test) = _datasets.fashion_mnist(download=False)
    np.testing.assert_array_equal(x_train, train_images)
    np.testing.assert_array_equal(y_train, np.arange(6))
    np.testing.assert_array_equal(x_test, test_images)
    np.testing.assert_array_equal(y_test, [7, 8, 9])


@pytest.mark.usefixtures("debian_fashion_mnist")
@pytest.mark.parametrize("name", ["fashion_mnist_mlp", "fashion_mnist_2c2d"])
def test_fashion_mnist_task_trains_on_the_debian_data_set(name, empty_keras_cache):
    task = gdbench.tasks.get(name, subset=256, validation_size=128, test_size=128, download=False)
    result = task.fit(gdbench.optimizers.get("adam", learning_rate=1e-3), epochs=2, batch_size=64)
    splits = task.data()
    assert splits.x_train.shape == (256, 28, 28, 1) and len(splits.y_test) == 128
    assert set(np.unique(splits.y_train)) == set(range(10))
    assert result.steps_per_epoch == 4
    assert result.history["loss"][-1] < result.history["loss"][0]
    assert {"test_loss", "test_accuracy", "val_loss", "val_accuracy"} <= set(result.metrics)
