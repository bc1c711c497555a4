"""Image trials trained as populations: each member one trial in Optuna, MLflow and TensorBoard.

Every test trains the digits MLP on a small subset for a few epochs through
the real image population engine.
"""

from __future__ import annotations

import collections
from pathlib import Path

import optuna
import pytest
from board_files import session_status
from optuna.trial import FrozenTrial, TrialState

import gdbench.tasks
from gdbench.study import Interrupted, SpecError, load_spec, run_study
from gdbench.study.keys import (
    EPOCHS_RUN_ATTR,
    FAIL_REASON_ATTR,
    PRUNE_REASON_ATTR,
    interrupted_reason,
)
from gdbench.study.plan import samplers
from gdbench.study.trials import image_batches

EPOCHS = 3

#: Per-epoch metrics of an image trial, as a single trial's run logs them.
EPOCH_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")

DIGITS = f"""
task = {{name = "digits_mlp", subset = 256, validation_size = 64, test_size = 64}}
optimizer = "gd"
epochs = {EPOCHS}
batch_size = 64
"""

MLFLOW_STATUS = {TrialState.COMPLETE: "FINISHED", TrialState.PRUNED: "KILLED",
                 TrialState.FAIL: "FAILED"}


def write(tmp_path: Path, text: str, name: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(f'name = "{name}"\n' + text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One home for the module: the MLflow store is created (seconds) only once."""
    return tmp_path_factory.mktemp("home")


def child_runs(home: Path, study_name: str) -> dict[int, object]:
    """Trial number → its MLflow child run."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(study_name)
    runs = client.search_runs([experiment.experiment_id], max_results=10_000)
    children = [run for run in runs if "mlflow.parentRunId" in run.data.tags]
    numbers = collections.Counter(int(run.data.tags["gdbench.trial_number"]) for run in children)
    assert set(numbers.values()) == {1}, numbers
    return {int(run.data.tags["gdbench.trial_number"]): run for run in children}


def metric_steps(home: Path, run_id: str, key: str) -> list[int]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    return sorted(metric.step for metric in client.get_metric_history(run_id, key))


def scalar_steps(run_dir: Path) -> dict[str, list[int]]:
    """Tag → the steps of its scalar events in a trial's TensorBoard run."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    steps: dict[str, list[int]] = collections.defaultdict(list)
    for path in sorted(run_dir.glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                steps[value.tag].append(event.step)
    return steps


class EngineCalls:
    """Counts the image population engine's runs and the one-trial fits outside it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from gdbench.tasks import image_population

        self.populations: list[int] = []
        self.single = 0
        self.inside = False
        engine, fit = image_population.fit_image_population, gdbench.tasks.ImageTask.fit

        def counted_engine(task, optimizer, hyperparameters, **kwargs):
            self.populations.append(len(hyperparameters["learning_rate"]))
            self.inside = True
            try:
                return engine(task, optimizer, hyperparameters, **kwargs)
            finally:
                self.inside = False

        def counted_fit(task, *args, **kwargs):
            self.single += not self.inside
            return fit(task, *args, **kwargs)

        monkeypatch.setattr(image_population, "fit_image_population", counted_engine)
        monkeypatch.setattr(gdbench.tasks.ImageTask, "fit", counted_fit)


class PruneNumbers(optuna.pruners.BasePruner):
    """Prunes the trials of ``numbers`` once they reported ``after_step``."""

    def __init__(self, numbers: set[int], after_step: int) -> None:
        self.numbers = numbers
        self.after_step = after_step

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        return trial.number in self.numbers and (trial.last_step or 0) >= self.after_step


def check_tracked_as_told(home: Path, name: str, trials: list[FrozenTrial]) -> None:
    """Each trial's MLflow run and TensorBoard session end as Optuna has it, with one
    point of every per-epoch metric per epoch run."""
    runs = child_runs(home, name)
    assert sorted(runs) == sorted(trial.number for trial in trials)
    board = home / "tensorboard" / name
    for trial in trials:
        run = runs[trial.number]
        epochs = trial.user_attrs[EPOCHS_RUN_ATTR]
        assert run.info.status == MLFLOW_STATUS[trial.state]
        assert run.data.tags["gdbench.state"] == trial.state.name
        for key in EPOCH_METRICS:
            assert metric_steps(home, run.info.run_id, key) == list(range(epochs)), key
        run_dir = board / run.data.tags["gdbench.tensorboard_run"]
        expected = "STATUS_SUCCESS" if trial.state == TrialState.COMPLETE else "STATUS_FAILURE"
        assert session_status(run_dir) == expected
        assert scalar_steps(run_dir)["val_loss"] == list(range(epochs))
        # One report per epoch run; a diverged trial's last, not finite, is not reported.
        reported = sorted(trial.intermediate_values)
        assert reported == list(range(epochs - (trial.state == TrialState.FAIL))), reported
        if trial.state == TrialState.COMPLETE:
            assert epochs == EPOCHS
            assert trial.value == trial.intermediate_values[EPOCHS - 1]
            assert run.data.metrics["objective"] == pytest.approx(trial.value)
            assert "test_accuracy" in run.data.metrics
        else:
            reason = trial.user_attrs[PRUNE_REASON_ATTR if trial.state == TrialState.PRUNED
                                      else FAIL_REASON_ATTR]
            assert run.data.tags["gdbench.reason"] == reason
            assert "objective" not in run.data.metrics


def test_a_population_study_ends_every_trial_in_optuna_mlflow_and_tensorboard(
        tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = EngineCalls(monkeypatch)
    spec = load_spec(write(tmp_path, DIGITS + """
trials = 8
trials_per_batch = 4
sampler = {name = "random", seed = 3}
pruner = {name = "median", n_startup_trials = 2, n_warmup_steps = 0}
[search]
learning_rate = {low = 1e-4, high = 3.0}
""", "image_population"))
    assert spec.population  # the default for an MLP
    study = run_study(spec, home=home, quiet=True)
    assert calls.populations == [4, 4] and calls.single == 0
    states = collections.Counter(trial.state for trial in study.trials)
    assert len(study.trials) == 8 and states[TrialState.COMPLETE] >= 2, states
    # The first batch has nothing to be compared with; the median prunes in the second.
    assert all(trial.state == TrialState.COMPLETE for trial in study.trials[:4])
    assert states[TrialState.PRUNED] >= 1, states
    for trial in study.trials:
        if trial.state == TrialState.PRUNED:
            assert trial.user_attrs[EPOCHS_RUN_ATTR] < EPOCHS
            assert trial.value == trial.intermediate_values[trial.last_step]
    check_tracked_as_told(home, "image_population", study.trials)


def test_the_pruner_stops_exactly_the_members_it_names(
        tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(samplers, "make_pruner", lambda spec: PruneNumbers({1, 2}, after_step=1))
    spec = load_spec(write(tmp_path, DIGITS + """
trials = 4
trials_per_batch = 4
sampler = {name = "random", seed = 5}
[search]
learning_rate = {low = 0.01, high = 0.3}
""", "image_pruned"))
    study = run_study(spec, home=home, quiet=True)
    states = {trial.number: trial.state for trial in study.trials}
    assert states == {0: TrialState.COMPLETE, 1: TrialState.PRUNED, 2: TrialState.PRUNED,
                      3: TrialState.COMPLETE}
    for number in (1, 2):
        trial = study.trials[number]
        assert trial.user_attrs[EPOCHS_RUN_ATTR] == 2
        assert trial.user_attrs[PRUNE_REASON_ATTR] == (
            f"pruned after epoch 2: val_loss = {trial.intermediate_values[1]:.4g}")
    check_tracked_as_told(home, "image_pruned", study.trials)


def test_each_member_ends_as_its_own_single_trial_run_divergence_included(
        tmp_path: Path, home: Path) -> None:
    ends = {}
    for population in (True, False):
        name = f"image_alike_{'population' if population else 'single'}"
        spec = load_spec(write(tmp_path, DIGITS + f"""
population = {str(population).lower()}
trials = 3
trials_per_batch = 3
sampler = "grid"
pruner = "none"
[search]
learning_rate = {{choices = [0.05, 0.5, 1e30]}}
""", name))
        # η = 1e30 overflows float32 within two steps on any order of summation; a
        # merely huge η (1e8) may keep a finite loss on one path and not the other.
        study = run_study(spec, home=home, quiet=True)
        ends[population] = {trial.params["learning_rate"]: trial for trial in study.trials}
        check_tracked_as_told(home, name, study.trials)
    together, alone = ends[True], ends[False]
    assert sorted(together) == sorted(alone) == [0.05, 0.5, 1e30]
    diverged = together[1e30]
    assert diverged.state == alone[1e30].state == TrialState.FAIL
    assert diverged.user_attrs[FAIL_REASON_ATTR] == alone[1e30].user_attrs[FAIL_REASON_ATTR]
    assert diverged.user_attrs[FAIL_REASON_ATTR].startswith("loss diverged: ")
    for rate in (0.05, 0.5):
        assert together[rate].state == alone[rate].state == TrialState.COMPLETE
        assert together[rate].value == pytest.approx(alone[rate].value, rel=1e-5)
        assert list(together[rate].intermediate_values.values()) == pytest.approx(
            list(alone[rate].intermediate_values.values()), rel=1e-5)


def test_population_false_trains_image_trials_one_at_a_time(
        tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = EngineCalls(monkeypatch)
    spec = load_spec(write(tmp_path, DIGITS + """
population = false
trials = 2
sampler = {name = "random", seed = 1}
pruner = "none"
""", "image_single"))
    assert not spec.population
    study = run_study(spec, home=home, quiet=True)
    assert calls.populations == [] and calls.single == 2
    assert all(trial.state == TrialState.COMPLETE for trial in study.trials)
    runs = child_runs(home, "image_single")
    board = home / "tensorboard" / "image_single"
    for run in runs.values():
        # A single trial's session has its weight histograms; a member's has none.
        tags = scalar_steps(board / run.data.tags["gdbench.tensorboard_run"])
        assert any(tag.startswith("weights/") for tag in tags)


def test_an_interrupted_population_fails_its_members_not_told_and_queues_them_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setattr(samplers, "make_pruner", lambda spec: PruneNumbers({0}, after_step=0))
    original = image_batches.ImagePopulation.on_epoch

    def interrupt_at_the_second_epoch(population, report):
        if report.epoch == 1:
            raise Interrupted("SIGTERM")
        return original(population, report)

    monkeypatch.setattr(image_batches.ImagePopulation, "on_epoch", interrupt_at_the_second_epoch)
    path = write(tmp_path, DIGITS + """
trials = 4
trials_per_batch = 4
sampler = {name = "random", seed = 2}
""", "image_resume")
    with pytest.raises(KeyboardInterrupt):
        run_study(load_spec(path), home=home, quiet=True)
    first = optuna.load_study(study_name="image_resume",
                              storage=f"sqlite:///{home / 'optuna.db'}").trials
    # The member pruned after the first epoch stays pruned; the others are queued again.
    assert first[0].state == TrialState.PRUNED
    failed = [trial for trial in first if trial.state == TrialState.FAIL]
    assert [trial.number for trial in failed] == [1, 2, 3]
    assert all(t.user_attrs[FAIL_REASON_ATTR] == interrupted_reason("SIGTERM") for t in failed)
    waiting = [trial for trial in first if trial.state == TrialState.WAITING]
    assert [trial.params for trial in waiting] == [trial.params for trial in failed]
    runs = child_runs(home, "image_resume")
    assert runs[0].info.status == "KILLED"
    assert all(runs[trial.number].info.status == "FAILED" for trial in failed)

    monkeypatch.setattr(image_batches.ImagePopulation, "on_epoch", original)
    monkeypatch.setattr(samplers, "make_pruner", lambda spec: optuna.pruners.NopPruner())
    study = run_study(load_spec(path), home=home, quiet=True)
    retried = study.trials[4:]
    assert [trial.params for trial in retried] == [trial.params for trial in failed]
    assert all(trial.state == TrialState.COMPLETE for trial in retried)


def test_a_convolutional_model_is_refused_a_population(tmp_path: Path) -> None:
    cnn = 'task = "fashion_mnist_2c2d"\noptimizer = "gd"\n'
    assert not load_spec(write(tmp_path, cnn, "cnn_default")).population
    with pytest.raises(SpecError, match=r"population.*MLP.*fashion_mnist_2c2d"):
        load_spec(write(tmp_path, cnn + "population = true\n", "cnn_population"))
