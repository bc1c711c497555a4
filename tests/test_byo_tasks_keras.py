"""Bringing your own Keras task: a model builder and its data, in a study and in populations.

The breast-cancer example (``studies/breast_cancer.py``) runs in a study confirmed over
seeds and lands in every store; a user Dense model trains in populations equal to its single
fits; the seed moves initial weights, validation split and batch order; a model the engine
does not stack trains one trial at a time and the run says so; bad input is one line.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import keras
import numpy as np
import optuna
import pytest
from board_files import session_hparams
from optuna.trial import TrialState

import gdbench.optimizers
import gdbench.tasks
from gdbench import cli
from gdbench.study import SpecError, load_spec, run_study
from gdbench.study.plan.brought_task import task_notes
from gdbench.study.report.leaderboard import leaderboard
from gdbench.tasks.image_population import fit_image_population, supports_population

STUDIES = Path(__file__).resolve().parents[1] / "studies"
BREAST_CANCER = f"{STUDIES / 'breast_cancer.py'}:BreastCancer"
SEEDS = 2

OTHERS = '''
import keras
import numpy as np
import gdbench.tasks

rng = np.random.default_rng(0)
X, Y = rng.normal(size=(60, 4)), (rng.uniform(size=60) > 0.5).astype("int64")


def dropout_model(*, rate=0.2):
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                             keras.layers.Dropout(rate), keras.layers.Dense(2)])


def sigmoid_model():
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])


def raises():
    raise RuntimeError("no model today")


def wrong_width():
    return keras.Sequential([keras.Input((5,)), keras.layers.Dense(2)])


def data():
    return {"train": (X, Y), "validation": (X[:10], Y[:10])}


def ragged():
    return {"train": (X, Y[:-1])}


Dropout = gdbench.tasks.keras_task(dropout_model, data, name="dropout", epochs=2)
Binary = gdbench.tasks.keras_task(sigmoid_model, data, loss="binary_crossentropy",
                                  metrics=["binary_accuracy"], name="binary", epochs=2)
Raises = gdbench.tasks.keras_task(raises, data, name="raises")
WrongWidth = gdbench.tasks.keras_task(wrong_width, data, name="wrong_width")
Ragged = gdbench.tasks.keras_task(sigmoid_model, ragged, name="ragged")
'''

UNKNOWN_METRIC = '''
import keras
import gdbench.tasks

Nope = gdbench.tasks.keras_task(lambda: keras.Sequential([keras.layers.Dense(1)]),
                                {"train": ([[0.0]] * 4, [0.0] * 4)}, loss="mse",
                                metrics=["no_such_metric"], name="nope")
'''


def write_spec(folder: Path, text: str, name: str = "byo_keras") -> Path:
    path = folder / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def float64():
    previous = keras.config.floatx()
    keras.config.set_floatx("float64")
    yield
    keras.config.set_floatx(previous)


# -- the example in a study ----------------------------------------------------------------


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, optuna.Study]:
    folder = tmp_path_factory.mktemp("spec")
    shutil.copy(STUDIES / "breast_cancer.py", folder / "breast_cancer.py")
    spec = load_spec(write_spec(folder, f"""
task = {{name = "breast_cancer.py:BreastCancer", hidden = 8}}
epochs = 2
optimizers = ["adam", "momentum"]
trials = 4
trials_per_batch = 2
confirm = {{seeds = {SEEDS}}}
"""))
    assert spec.population and not spec.task.toy
    home = folder / "home"
    return home, run_study(spec, home=home, quiet=True)


def test_the_example_lands_in_optuna_mlflow_tensorboard_and_the_report(study) -> None:
    from mlflow.tracking import MlflowClient

    home, found = study
    assert sum(t.state == TrialState.COMPLETE for t in found.trials) == 4
    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(found.study_name)
    runs = [r for r in client.search_runs([experiment.experiment_id], max_results=1000)
            if r.data.tags.get("gdbench.role") == "trial"
            and r.data.tags.get("gdbench.study") == found.study_name]
    assert len(runs) >= 4 and all("val_accuracy" in r.data.metrics for r in runs)
    sessions = [session_hparams(path) for path in (home / "tensorboard" / found.study_name)
                .iterdir() if path.is_dir()]
    assert {hparams["optimizer"] for hparams in sessions} == {"adam", "momentum"}
    assert {row["optimizer"] for row in leaderboard(found)} == {"adam", "momentum"}
    assert (home / "reports" / found.study_name).is_dir()
    companion = optuna.load_study(study_name=f"{found.study_name}.confirm",
                                  storage=f"sqlite:///{home / 'optuna.db'}")
    reruns = companion.get_trials()
    assert len(reruns) == 2 * SEEDS and all(t.state == TrialState.COMPLETE for t in reruns)


def test_the_example_spec_trains_in_populations() -> None:
    spec = load_spec(STUDIES / "byo_breast_cancer.toml")
    assert spec.population and spec.task.name == BREAST_CANCER
    assert task_notes(spec) == [f"task breast_cancer ({BREAST_CANCER}): its trials train in "
                                "populations"]


# -- populations and the seed ---------------------------------------------------------------


def test_a_user_dense_model_s_population_equals_its_single_fits(float64) -> None:
    task = gdbench.tasks.get(BREAST_CANCER, hidden=8, subset=120)
    assert supports_population(task)
    values = {"learning_rate": [0.01, 0.05], "momentum": [0.5, 0.9]}
    together = fit_image_population(task, "momentum", values, epochs=2, batch_size=32)
    for index in range(2):
        alone = gdbench.tasks.get(BREAST_CANCER, hidden=8, subset=120).fit(
            gdbench.optimizers.get("momentum", learning_rate=values["learning_rate"][index],
                                   momentum=values["momentum"][index]),
            epochs=2, batch_size=32)
        member = together.trial(index)
        assert set(member.history) == set(alone.history)
        for key, curve in alone.history.items():
            np.testing.assert_allclose(member.history[key], curve, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(member.metrics["test_loss"], alone.metrics["test_loss"],
                                   rtol=1e-9)


def test_the_seed_moves_weights_split_and_batches_and_the_same_seed_repeats() -> None:
    def fit(seed: int) -> gdbench.tasks.FitResult:
        task = gdbench.tasks.get(BREAST_CANCER, seed=seed)
        return task.fit(gdbench.optimizers.get("adam", learning_rate=0.01), epochs=2)

    first, again, other = fit(0), fit(0), fit(1)
    assert first.history == again.history
    assert first.history["loss"] != other.history["loss"]
    task, moved = gdbench.tasks.get(BREAST_CANCER, seed=0), gdbench.tasks.get(BREAST_CANCER,
                                                                              seed=1)
    for same, changed in zip(task.build_model().get_weights(), moved.build_model().get_weights()):
        assert same.shape == changed.shape
    assert not np.array_equal(task.build_model().get_weights()[0],
                              moved.build_model().get_weights()[0])
    np.testing.assert_array_equal(task.build_model().get_weights()[0],
                                  gdbench.tasks.get(BREAST_CANCER).build_model().get_weights()[0])
    assert not np.array_equal(task.data().y_validation, moved.data().y_validation)
    np.testing.assert_array_equal(task.data().x_test, moved.data().x_test)


def test_a_model_the_engine_does_not_stack_trains_one_at_a_time_and_says_so(
        tmp_path: Path) -> None:
    (tmp_path / "others.py").write_text(OTHERS, encoding="utf-8")
    spec = load_spec(write_spec(tmp_path, 'task = "others.py:Dropout"\noptimizer = "adam"\n'
                                          "trials = 2\n"))
    assert not spec.population
    assert task_notes(spec)[0].endswith("its trials train one at a time, not in populations: "
                                        "the population engine stacks Sequential models of "
                                        "Flatten and Dense layers on the default loss only")
    study = run_study(spec, home=tmp_path / "home", quiet=True)
    assert sum(t.state == TrialState.COMPLETE for t in study.trials) == 2


def test_a_loss_and_metrics_of_the_user_s_are_logged_and_serve_as_objectives(
        tmp_path: Path) -> None:
    (tmp_path / "others.py").write_text(OTHERS, encoding="utf-8")
    spec = load_spec(write_spec(tmp_path, 'task = "others.py:Binary"\noptimizer = "adam"\n'
                                          'objective = {metric = "val_binary_accuracy", '
                                          'target = 0.5}\n'))
    assert not spec.population and spec.objective.metric == "val_binary_accuracy"
    assert spec.objective.metric_direction == "maximize"
    task = spec.task.build()
    assert task.logged_metrics() == ["loss", "binary_accuracy", "val_loss",
                                     "val_binary_accuracy"]
    assert task.tested_metrics() == []
    result = task.fit(gdbench.optimizers.get("adam"), epochs=2)
    assert set(task.logged_metrics()) < set(result.history)


# -- bad input: one line naming the field, exit 2, nothing created -------------------------


@pytest.mark.parametrize(("entry", "field", "message"), [
    ('"missing.py:Nothing"', "task", "no such file: "),
    ('"others.py:Raises"', "task", "build_model: raises raised RuntimeError: no model today"),
    ('"others.py:Ragged"', "task", "data: train: x has 60 rows and y 59"),
    ('"others.py:WrongWidth"', "task", "wrong_width's model, loss and metrics cannot take its "
                                       "training rows"),
    ('"unknown_metric.py:Nope"', "task", "metrics[0]: Keras has no metric 'no_such_metric'"),
    ('{name = "others.py:Dropout", rat = 0.5}', "task.rat", "did you mean 'rate'?"),
    ('"others.py:Dropout"\nobjective = "val_auc"', "objective.metric",
     "does not log 'val_auc'; accepted: loss, accuracy, val_loss, val_accuracy"),
])
def test_a_bad_keras_task_is_one_line_naming_its_field(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], entry: str, field: str,
        message: str) -> None:
    (tmp_path / "others.py").write_text(OTHERS, encoding="utf-8")
    (tmp_path / "unknown_metric.py").write_text(UNKNOWN_METRIC, encoding="utf-8")
    spec = write_spec(tmp_path, f'task = {entry}\noptimizer = "adam"\n')
    with pytest.raises(SpecError) as error:
        load_spec(spec)
    assert error.value.field in (field, f"{field}.name")
    assert message in str(error.value)
    home = tmp_path / "home"
    assert cli.main(["run", str(spec), "--home", str(home), "--quiet"]) == cli.USAGE_ERROR
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert err.startswith(f"gdbench: error: {spec}: {error.value.field}: ")
    assert not home.exists()


def test_a_time_to_a_target_on_the_user_s_metric_runs_in_a_study(tmp_path: Path) -> None:
    (tmp_path / "others.py").write_text(OTHERS, encoding="utf-8")
    spec = load_spec(write_spec(tmp_path, 'task = "others.py:Binary"\noptimizer = "adam"\n'
                                          "trials = 2\nepochs = 3\n"
                                          'objective = {metric = "val_binary_accuracy", '
                                          'target = 0.01}\n'))
    study = run_study(spec, home=tmp_path / "home", quiet=True)
    finished = [t for t in study.trials if t.state == TrialState.COMPLETE]
    # Any accuracy reaches 0.01 after its first epoch: every trial's time to it is 1.
    assert len(finished) == 2 and all(t.value == 1.0 for t in finished)
