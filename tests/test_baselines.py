"""DeepOBS baselines: the conversion of a DeepOBS-shaped checkout, the loader, the overlay's
refusals, the drawing, and the image tasks' DeepOBS data protocol."""

from __future__ import annotations

import importlib.util
import json
import tomllib
from pathlib import Path

import keras
import numpy as np
import pytest
from matplotlib.figure import Figure

import gdbench.optimizers
import gdbench.tasks
from gdbench import baselines, comparison_plots
from gdbench.tasks.images import MNISTMLP

ROOT = Path(__file__).resolve().parent.parent
ADAM_SETTING = ("num_epochs__2__batch_size__128__beta1__9.e-01__beta2__9.99e-01__"
                "epsilon__1.e-08__lr__{lr}")


def load_script():
    spec = importlib.util.spec_from_file_location("deepobs_baselines",
                                                  ROOT / "scripts" / "deepobs_baselines.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(seed: int, test_accuracies: list[float], *, shift: float = 0.0) -> dict:
    """One DeepOBS result file of 2 epochs (3 evaluations, the first before training)."""
    return {"train_losses": [2.3 + shift, 0.5 + shift, 0.3 + shift],
            "test_losses": [2.3, 0.6 + shift, 0.4 + shift],
            "minibatch_train_losses": [2.3] * 50,
            "train_accuracies": [0.1, 0.8, 0.9], "test_accuracies": test_accuracies,
            "optimizer": "AdamOptimizer", "testproblem": "fmnist_2c2d", "batch_size": 128,
            "num_epochs": 2, "random_seed": seed}


def write_run(folder: Path, content: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"random_seed__{content['random_seed']}__2019-02-15-16-58-28.json").write_text(
        json.dumps(content))


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A DeepOBS checkout in miniature: fmnist_2c2d, Adam on a grid of two learning rates with
    seed 42, the better one rerun with seeds 43 and 44; SGD with seed 42 only."""
    root = tmp_path / "DeepOBS"
    adam = root / "baselines" / "fmnist_2c2d" / "AdamOptimizer"
    write_run(adam / ADAM_SETTING.format(lr="1.e-02"), run(42, [0.1, 0.3, 0.4]))
    best = adam / ADAM_SETTING.format(lr="2.5118864315e-04")
    write_run(best, run(42, [0.1, 0.5, 0.8]))
    write_run(best, run(43, [0.1, 0.6, 0.9], shift=0.1))
    write_run(best, run(44, [0.1, 0.7, 0.7], shift=0.2))
    sgd = root / "baselines" / "fmnist_2c2d" / "GradientDescentOptimizer"
    write_run(sgd / "num_epochs__2__batch_size__128__lr__1.e-01", run(42, [0.1, 0.4, 0.5]))
    write_run(sgd / "num_epochs__2__batch_size__128__lr__1.5848931925e-01",
              run(42, [0.1, 0.5, 0.6]))
    write_run(sgd / "num_epochs__2__batch_size__128__lr__1.e+00", run(42, [0.1, 0.1, 0.1]))
    momentum = root / "baselines" / "fmnist_2c2d" / "MomentumOptimizer"
    write_run(momentum / ("num_epochs__2__batch_size__128__momentum__9.9e-01__"
                          "use_nesterov__False__lr__2.5118864315e-03"), run(42, [0.1, 0.5, 0.6]))
    return root


@pytest.fixture
def converted(checkout: Path, tmp_path: Path) -> Path:
    out = tmp_path / "converted"
    written = load_script().convert(checkout, out, commit="0" * 40)
    assert [path.name for path in written] == ["fmnist_2c2d.json"]
    return out


def test_the_conversion_takes_the_rerun_setting_and_averages_its_seeds(converted: Path) -> None:
    baseline = baselines.load("fmnist_2c2d", converted)
    assert baseline.task == "fashion_mnist_2c2d"
    assert (baseline.batch_size, baseline.num_epochs) == (128, 2)
    assert sorted(baseline.curves) == ["adam", "gd", "momentum"]
    assert baseline.curves["momentum"].hyperparameters == {"learning_rate": 2.5118864315e-03,
                                                           "momentum": 0.99}
    adam = baseline.curves["adam"]
    assert adam.seeds == (42, 43, 44)
    assert adam.hyperparameters == {"learning_rate": 2.5118864315e-04, "beta_1": 0.9,
                                    "beta_2": 0.999, "epsilon": 1e-08}
    # test_accuracies [0.1, 0.5, 0.8], [0.1, 0.6, 0.9], [0.1, 0.7, 0.7]:
    # means 0.1, 0.6, 0.8; std (ddof 0) 0, √(2/3)·0.1, √(2/3)·0.1.
    np.testing.assert_allclose(adam.mean["test_accuracy"], [0.1, 0.6, 0.8], rtol=1e-5)
    np.testing.assert_allclose(adam.std["test_accuracy"], [0.0, 0.0816497, 0.0816497],
                               rtol=1e-5, atol=1e-12)
    # train_losses shifted by 0, 0.1, 0.2: the mean moves by 0.1, the std is √(2/3)·0.1.
    np.testing.assert_allclose(adam.mean["loss"], [2.4, 0.6, 0.4], rtol=1e-5)
    assert set(adam.mean) == {"loss", "accuracy", "test_loss", "test_accuracy"}
    # No setting of SGD was rerun: the best final test accuracy of seed 42.
    gd = baseline.curves["gd"]
    assert gd.seeds == (42,) and gd.hyperparameters == {"learning_rate": 1.5848931925e-01}
    np.testing.assert_array_equal(gd.std["test_accuracy"], [0.0, 0.0, 0.0])


def test_a_converted_file_names_its_source_and_holds_numbers_only(converted: Path) -> None:
    data = json.loads((converted / "fmnist_2c2d.json").read_text())
    source = data["source"]
    assert source["repository"] == "https://github.com/fsschneider/DeepOBS"
    assert source["commit"] == "0" * 40
    assert source["path_pattern"].startswith("baselines/{problem}/{optimizer}/{setting}/")
    assert "MIT License" in source["license"] and "Hennig" in source["license"]
    assert "ICLR" in source["citation"]
    assert "minibatch" not in json.dumps(data)


@pytest.mark.parametrize("problem", baselines.problems())
def test_every_shipped_baseline_loads_with_a_curve_per_epoch(problem: str) -> None:
    baseline = baselines.load(problem)
    assert baseline.source["repository"] == "https://github.com/fsschneider/DeepOBS"
    for curve in baseline.curves.values():
        for metric, mean in curve.mean.items():
            assert mean.shape == (baseline.num_epochs + 1,) == curve.std[metric].shape


def test_the_baselines_travel_with_the_package() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    shipped = config["tool"]["setuptools"]["package-data"]["gdbench.baselines"]
    assert {"deepobs/*.json", "deepobs/README.md"} <= set(shipped)
    readme = (baselines.data_directory() / "README.md").read_text()
    assert "https://github.com/fsschneider/DeepOBS" in readme and "MIT License" in readme


def test_an_unknown_problem_names_what_there_is(converted: Path) -> None:
    with pytest.raises(KeyError, match="there are: fmnist_2c2d"):
        baselines.load("mnist_mlp", converted)
    assert baselines.problem_for("fashion_mnist_2c2d") == "fmnist_2c2d"
    assert baselines.problem_for("digits_mlp") is None


def test_the_overlay_refuses_another_protocol_size_or_problem_with_the_reason(
        converted: Path) -> None:
    deepobs = gdbench.tasks.get("fashion_mnist_2c2d", protocol="deepobs")
    assert baselines.mismatch(deepobs, 128, 2, converted) is None
    assert baselines.mismatch(deepobs, 128, 1, converted) is None
    cases = [
        (gdbench.tasks.get("fashion_mnist_2c2d"), 128, 2, 'protocol = "deepobs"'),
        (deepobs, 64, 2, "batch size 64"),
        (deepobs, 128, 3, "3 epochs"),
        (gdbench.tasks.get("fashion_mnist_2c2d", protocol="deepobs", subset=1000), 128, 2,
         "subset"),
        (gdbench.tasks.get("fashion_mnist_2c2d", protocol="deepobs", validation_size=5000), 128,
         2, "holds 5000 images out"),
        (gdbench.tasks.get("digits_mlp"), 128, 2, "no baseline for digits_mlp"),
        (gdbench.tasks.get("cifar10_3c3d", protocol="deepobs"), 128, 2, "augment"),
        (gdbench.tasks.get("fashion_mnist_mlp", protocol="deepobs"), 128, 2,
         "no DeepOBS baseline for 'fmnist_mlp'"),
    ]
    for task, batch_size, epochs, reason in cases:
        why = baselines.mismatch(task, batch_size, epochs, converted)
        assert why is not None and reason in why, (task, why)
    # The shipped quadratic_deep baselines: drawn under DeepOBS's protocol, refused otherwise.
    assert baselines.mismatch(gdbench.tasks.get("quadratic_deep", protocol="deepobs"), 128,
                              100) is None
    why = baselines.mismatch(gdbench.tasks.get("quadratic_deep"), 128, 100)
    assert "keeps the short last batch" in why and 'protocol = "deepobs"' in why


def test_draw_baselines_draws_each_mean_and_band_behind(converted: Path) -> None:
    axes = Figure().add_subplot()
    axes.plot([1, 2], [0.5, 0.6], label="study")
    labels = comparison_plots.draw_baselines(axes, "fashion_mnist_2c2d", "test_accuracy",
                                             optimizers=["gd", "adam"], directory=converted,
                                             epochs=1)
    assert labels == ["DeepOBS gd (η=0.158, seed 42)", "DeepOBS adam (η=0.000251, seeds 42 43 44)"]
    drawn = {line.get_label(): line for line in axes.get_lines()}
    np.testing.assert_allclose(drawn[labels[1]].get_ydata(), [0.1, 0.6], rtol=1e-5)
    np.testing.assert_array_equal(drawn[labels[1]].get_xdata(), [0, 1])
    assert all(line.get_zorder() < drawn["study"].get_zorder() for line in
               (drawn[label] for label in labels))
    assert len(axes.collections) == 2
    with pytest.raises(ValueError, match="not 'val_loss'"):
        comparison_plots.draw_baselines(axes, "fmnist_2c2d", "val_loss", directory=converted)
    with pytest.raises(ValueError, match="nadam"):
        comparison_plots.draw_baselines(axes, "fmnist_2c2d", "loss", optimizers=["nadam"],
                             directory=converted)


class TinyDeepOBSTask(MNISTMLP):
    """mnist_mlp's splits on 300 synthetic training and 40 test images, with a small model."""

    source_train_size = 300
    source_test_size = 40
    default_validation_size = 100

    def load_arrays(self):
        rng = np.random.default_rng(7)
        images = rng.integers(0, 256, size=(340, 28, 28), dtype=np.uint8)
        labels = np.arange(340) % 10
        return (images[:300], labels[:300]), (images[300:], labels[300:])

    def build_model(self) -> keras.Model:
        return keras.Sequential([keras.Input(self.image_shape), keras.layers.Flatten(),
                                 keras.layers.Dense(10, kernel_initializer=self.initializer(0))])


class StepCounter(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1


def test_the_deepobs_protocol_validates_on_the_first_images_and_drops_the_short_batch() -> None:
    (x_train, _), _ = TinyDeepOBSTask().load_arrays()
    deepobs = TinyDeepOBSTask(protocol="deepobs", seed=3)
    splits = deepobs.data()
    # The first 100 training images, in the source's order; the next 200 to train on.
    np.testing.assert_array_equal(splits.x_validation, deepobs.scale(x_train[:100]))
    np.testing.assert_array_equal(splits.x_train, deepobs.scale(x_train[100:]))
    # 200 images at batches of 64: 3 full batches (the 8 left over are dropped), not 4.
    assert deepobs.steps_per_epoch(64) == 3
    counter = StepCounter()
    result = deepobs.fit(gdbench.optimizers.get("adam"), epochs=2, batch_size=64,
                         callbacks=[counter])
    assert counter.steps == 2 * 3 and result.steps_per_epoch == 3
    assert len(result.history["test_loss"]) == len(result.history["test_accuracy"]) == 2
    assert result.history["test_loss"][-1] == pytest.approx(result.metrics["test_loss"])

    default = TinyDeepOBSTask(seed=3)
    assert default.steps_per_epoch(64) == 4
    assert not np.array_equal(default.data().x_validation, splits.x_validation)
    assert "test_loss" not in default.fit(gdbench.optimizers.get("adam"), epochs=1,
                                          batch_size=64).history


def test_a_task_deepobs_does_not_share_refuses_its_protocol() -> None:
    with pytest.raises(ValueError, match="protocol: DeepOBS has no digits_mlp"):
        gdbench.tasks.get("digits_mlp", protocol="deepobs")
    with pytest.raises(ValueError, match="protocol: expected one of gdbench, deepobs"):
        gdbench.tasks.get("mnist_mlp", protocol="pytorch")


def test_a_spec_names_the_task_protocol_field(tmp_path: Path) -> None:
    from gdbench.study import SpecError, load_spec

    path = tmp_path / "spec.toml"
    path.write_text('task = {name = "fashion_mnist_2c2d", protocol = "deepobs"}\n'
                    'optimizer = "adam"\n', encoding="utf-8")
    assert load_spec(path).task.build().deepobs
    path.write_text('task = {name = "fashion_mnist_2c2d", protocol = "deepob"}\n'
                    'optimizer = "adam"\n', encoding="utf-8")
    with pytest.raises(SpecError, match="task.protocol"):
        load_spec(path)


def test_quadratic_deep_under_deepobs_protocol_is_the_same_in_fit_and_the_population() -> None:
    from gdbench.tasks.population import fit_population

    task = gdbench.tasks.get("quadratic_deep", protocol="deepobs", seed=3)
    assert task.steps_per_epoch(128) == 7 and len(task.batches(128, 4)) == 7
    # One shuffle for every epoch, and the training evaluation on its 896 rows.
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(task.batches(128, 0),
                                                           task.batches(128, 5)))
    rows = np.concatenate([batch[0] for batch in task.batches(128, 0)])
    np.testing.assert_array_equal(task.evaluation_batches(128, 3)["loss"][0], rows)
    test = np.random.RandomState(43).normal(0.0, 0.6, (1000, 100))[:896]
    np.testing.assert_array_equal(task.evaluation_batches(128, 0)["test_loss"][0], test)

    hyperparameters = {"learning_rate": 0.0025, "momentum": 0.99}
    fit = task.fit(gdbench.optimizers.get("momentum", **hyperparameters), epochs=4,
                   batch_size=128)
    population = fit_population(task, "momentum", {"learning_rate": [0.0025, 0.001],
                                                   "momentum": 0.99}, epochs=4, batch_size=128)
    member = population.trial(0)
    assert set(fit.history) == set(member.history) == {"loss", "learning_rate", "test_loss"}
    assert set(fit.initial) == set(member.initial) == {"loss", "test_loss"}
    for key in ("loss", "test_loss"):
        np.testing.assert_allclose(member.history[key], fit.history[key], rtol=1e-12)
        assert member.initial[key] == pytest.approx(fit.initial[key], rel=1e-12)
    theta = np.ones(100)
    expected = np.mean([0.5 * (theta - x) @ task.hessian @ (theta - x) for x in test])
    assert fit.initial["test_loss"] == pytest.approx(expected, rel=1e-12)

    default = gdbench.tasks.get("quadratic_deep", seed=3)
    assert default.steps_per_epoch(128) == 8 and default.evaluation_batches(128, 0) == {}
    assert "test_loss" not in fit_population(default, "gd", {"learning_rate": 0.01},
                                             epochs=2).trial(0).history
    with pytest.raises(ValueError, match="protocol: expected one of gdbench, deepobs"):
        gdbench.tasks.get("quadratic_deep", protocol="pytorch")
