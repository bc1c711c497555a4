"""Bringing your own Keras task on ``tf.data`` pipelines: single elements are shuffled by the
seed and batched by the batch size, batches are iterated as given (the seed then moves only
the initial weights, and the run and ``check-task`` say so); a pipeline trains one trial at
a time; a pipeline gdbench cannot use is refused naming the field.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from optuna.trial import TrialState

import gdbench.optimizers
import gdbench.tasks
from gdbench.study import SpecError, load_spec, run_study
from gdbench.study.plan.brought_task import task_notes
from gdbench.tasks.image_population import supports_population
from gdbench.tasks.task_checks import PASS, SKIP, check_task

PIPELINES = '''
import keras
import numpy as np
import tensorflow as tf
import gdbench.tasks

rng = np.random.default_rng(0)
X = rng.normal(size=(64, 4)).astype("float32")
Y = (X[:, 0] + X[:, 1] > 0).astype("int64")


def rows(x, y):
    return tf.data.Dataset.from_tensor_slices((x, y))


def model():
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                             keras.layers.Dense(2)])


def fixed_model():
    """Initial weights that no task seed moves."""
    glorot = keras.initializers.GlorotUniform(seed=7)
    return keras.Sequential([keras.Input((4,)),
                             keras.layers.Dense(8, activation="relu", kernel_initializer=glorot),
                             keras.layers.Dense(2, kernel_initializer=glorot)])


def elements():
    return {"train": rows(X[:48], Y[:48]), "validation": rows(X[48:], Y[48:])}


def batches():
    return {"train": rows(X[:48], Y[:48]).batch(16), "validation": rows(X[48:], Y[48:]).batch(8),
            "test": rows(X[48:], Y[48:])}


def dicts():
    return {"train": tf.data.Dataset.from_tensor_slices({"x": X, "y": Y}),
            "validation": rows(X, Y)}


def triples():
    return {"train": tf.data.Dataset.from_tensor_slices((X, Y, Y)), "validation": rows(X, Y)}


def no_validation():
    return {"train": rows(X, Y)}


def beside_arrays():
    return {"train": rows(X, Y), "validation": rows(X, Y), "test": (X, Y)}


def endless():
    return {"train": rows(X, Y).repeat(), "validation": rows(X, Y)}


def other_rows():
    return {"train": rows(X, Y), "validation": rows(X[:, :3], Y)}


def dropped():
    return {"train": rows(X[:48], Y[:48]).batch(16, drop_remainder=True),
            "validation": rows(X[48:], Y[48:]).batch(16, drop_remainder=True)}


Elements = gdbench.tasks.keras_task(model, elements, name="elements", epochs=2, batch_size=8)
Batches = gdbench.tasks.keras_task(model, batches, name="batches", epochs=2)
FixedElements = gdbench.tasks.keras_task(fixed_model, elements, name="fixed_elements", epochs=2,
                                         batch_size=8)
FixedBatches = gdbench.tasks.keras_task(fixed_model, batches, name="fixed_batches", epochs=2)
Dicts = gdbench.tasks.keras_task(model, dicts, name="dicts")
Triples = gdbench.tasks.keras_task(model, triples, name="triples")
NoValidation = gdbench.tasks.keras_task(model, no_validation, name="no_validation")
BesideArrays = gdbench.tasks.keras_task(model, beside_arrays, name="beside_arrays")
Endless = gdbench.tasks.keras_task(model, endless, name="endless")
OtherRows = gdbench.tasks.keras_task(model, other_rows, name="other_rows")
Dropped = gdbench.tasks.keras_task(model, dropped, name="dropped")
'''

UNTRACKED = "[tracking]\nmlflow = false\ntensorboard = false\n"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pipelines")
    (path / "pipelines.py").write_text(PIPELINES, encoding="utf-8")
    return path


def task(folder: Path, name: str, **options) -> gdbench.tasks.KerasTask:
    return gdbench.tasks.get(f"{folder / 'pipelines.py'}:{name}", **options)


def curves(folder: Path, name: str, seed: int) -> dict[str, list[float]]:
    fitted = task(folder, name, seed=seed).fit(gdbench.optimizers.get("adam",
                                                                      learning_rate=0.01))
    return fitted.history


def first_epoch_labels(brought: gdbench.tasks.KerasTask) -> list[int]:
    return [int(label) for _, y in brought.training_data() for label in y.numpy()]


# -- single elements: shuffled by the seed, batched by batch_size ---------------------------


def test_a_pipeline_of_elements_fits_and_its_seed_moves_weights_and_order(folder: Path) -> None:
    brought = task(folder, "Elements")
    assert brought.num_examples == 48 and brought.split_sizes() == {
        "train": 48, "validation": 16, "test": 0}
    assert brought.resolve_batch_size(None) == 8 and brought.steps_per_epoch() == 6
    assert [int(len(y)) for _, y in brought.training_data(16)] == [16, 16, 16]
    first = curves(folder, "Elements", 0)
    assert set(first) == {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"}
    assert len(first["val_loss"]) == 2 and all(np.isfinite(first["val_loss"]))
    assert curves(folder, "Elements", 0) == first
    assert curves(folder, "Elements", 1)["loss"] != first["loss"]

    order, again = first_epoch_labels(brought), first_epoch_labels(task(folder, "Elements"))
    moved = first_epoch_labels(task(folder, "Elements", seed=1))
    assert order == again and order != moved and sorted(order) == sorted(moved)
    # With initial weights no seed moves, the order alone still moves the curves.
    assert curves(folder, "FixedElements", 0)["loss"] != curves(folder, "FixedElements",
                                                                 1)["loss"]


# -- batches: iterated as given, the seed moving only the initial weights ------------------


def test_a_pipeline_of_batches_is_used_as_given_the_seed_moving_only_the_weights(
        folder: Path) -> None:
    brought = task(folder, "Batches")
    assert brought.resolve_batch_size(None) == 16 and brought.steps_per_epoch() == 3
    assert brought.training_data() is brought.pipelines["train"].dataset
    with pytest.raises(ValueError, match=r"^batch_size: batches's training pipeline yields "
                                         r"batches of its own \(16 rows\)"):
        brought.resolve_batch_size(8)
    assert first_epoch_labels(brought) == first_epoch_labels(task(folder, "Batches", seed=1))
    assert brought.pipeline_note() == ("its training pipeline yields batches, used as given: "
                                       "the seed moves only the initial weights")

    first = curves(folder, "Batches", 0)
    assert curves(folder, "Batches", 0) == first
    assert curves(folder, "Batches", 1)["loss"] != first["loss"]
    assert curves(folder, "FixedBatches", 0) == curves(folder, "FixedBatches", 1)
    fitted = brought.fit(gdbench.optimizers.get("adam"))
    assert fitted.steps_per_epoch == 3 and {"test_loss", "test_accuracy"} <= set(fitted.metrics)


def test_check_task_passes_a_pipeline_and_says_what_its_seed_moves(folder: Path) -> None:
    found = {result.check: result for result in check_task(
        f"{folder / 'pipelines.py'}:Batches")}
    assert [found[name].status for name in ("build", "fit", "seed", "objectives")] == [PASS] * 4
    assert found["build"].detail.startswith("Keras task: 48 training rows, 16 validation, "
                                            "16 test;")
    assert found["seed"].detail == ("the same seed gives the same curves, another seed other "
                                    "ones; its training pipeline yields batches, used as given: "
                                    "the seed moves only the initial weights")
    assert found["population"].status == SKIP
    assert found["population"].detail == ("trains one trial at a time: a tf.data pipeline feeds "
                                          "one fit at a time; the population engine stacks "
                                          "trials on arrays in memory")


# -- in a study: one trial at a time, and the run says so ----------------------------------


def test_a_pipeline_task_s_study_trains_one_trial_at_a_time_and_says_so(folder: Path) -> None:
    path = folder / "study.toml"
    path.write_text(f'task = "pipelines.py:Elements"\noptimizer = "adam"\ntrials = 2\n'
                    f"epochs = 1\n{UNTRACKED}", encoding="utf-8")
    spec = load_spec(path)
    assert not spec.population and not supports_population(spec.task.build())
    assert task_notes(spec)[0].endswith(
        "its trials train one at a time, not in populations: a tf.data pipeline feeds one fit "
        "at a time; the population engine stacks trials on arrays in memory; its training "
        "pipeline yields single elements: the seed shuffles them each epoch and moves the "
        "initial weights, and batch_size batches them")
    study = run_study(spec, home=folder / "home", quiet=True)
    finished = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(finished) == 2 and all(np.isfinite(t.value) for t in finished)


# -- refused, naming the field -------------------------------------------------------------


@pytest.mark.parametrize(("name", "options", "message"), [
    ("Dicts", {}, "data: train: a tf.data pipeline must yield (x, y) pairs or batches of them; "
                  "its elements are a dict of 'x', 'y'"),
    ("Triples", {}, "data: train: a tf.data pipeline must yield (x, y) pairs or batches of "
                    "them; its elements are tuples of 3"),
    ("NoValidation", {}, "data: validation: required beside a tf.data pipeline: gdbench cannot "
                         "draw a validation split out of a pipeline"),
    ("BesideArrays", {}, "data: test: arrays beside tf.data pipelines"),
    ("Endless", {}, "data: train: an endless tf.data pipeline"),
    ("OtherRows", {}, "data: validation: rows of float32 (3,), int64 (); train's are "
                      "float32 (4,), int64 ()"),
    ("Elements", {"validation_size": 8}, "validation_size: the data hold a validation split"),
    ("Elements", {"subset": 8}, "subset: gdbench cannot cut a tf.data pipeline"),
])
def test_a_pipeline_gdbench_cannot_use_is_refused_naming_the_field(
        folder: Path, name: str, options: dict, message: str) -> None:
    with pytest.raises(ValueError) as error:
        task(folder, name, **options)
    assert str(error.value).startswith(message)


@pytest.mark.parametrize(("entry", "field", "message"), [
    ('task = "pipelines.py:Triples"', "task", "data: train: a tf.data pipeline must yield"),
    ('task = {name = "pipelines.py:Elements", validation_size = 8}', "task.validation_size",
     "the data hold a validation split of their own"),
    ('task = "pipelines.py:Dropped"', "task",
     "data: train: read as single elements of x (16, 4), y (16,), it feeds inputs of rank 3 "
     "to a model that takes rank 2 (a pipeline batched with drop_remainder=True reads as "
     "single elements: batch it without)"),
    ('task = "pipelines.py:Batches"\nbatch_size = 8', "batch_size",
     "yields batches of its own (16 rows); leave batch_size out"),
])
def test_a_spec_asking_what_a_pipeline_cannot_give_names_its_field(
        folder: Path, entry: str, field: str, message: str) -> None:
    path = folder / "refused.toml"
    path.write_text(f'{entry}\noptimizer = "adam"\n', encoding="utf-8")
    with pytest.raises(SpecError) as error:
        load_spec(path)
    assert error.value.field in (field, f"{field}.name") and message in str(error.value)
