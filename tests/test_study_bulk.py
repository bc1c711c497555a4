"""A population study recorded in bulk loses nothing: Optuna, MLflow, TensorBoard, full curves."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from optuna.trial import TrialState

import gdbench.tasks
from gdbench.study import load_spec, run_study
from gdbench.study.keys import EPOCHS_RUN_ATTR, HYPERPARAMETERS_ATTR
from gdbench.study.trials import batches
from gdbench.tasks.population import fit_population
from gdbench.tracking import curve_steps, local_artifact_folder

TRIALS = 300
EPOCHS = 120


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("bulk")
    spec_path = folder / "bulk.toml"
    spec_path.write_text(f"""
name = "bulk"
task = "sigmoid_neuron"
optimizer = "gd"
epochs = {EPOCHS}
trials = {TRIALS}
trials_per_batch = 128
sampler = {{name = "random", seed = 3}}
[search]
learning_rate = {{low = 0.01, high = 30.0, log = true}}
""", encoding="utf-8")
    spec = load_spec(spec_path)
    home = folder / "home"
    sizes = []

    def counted(task, optimizer, hyperparameters, **kwargs):
        sizes.append(len(hyperparameters["learning_rate"]))
        return fit_population(task, optimizer, hyperparameters, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gdbench.tasks.population, "fit_population", counted)
        study = run_study(spec, home=home, quiet=True)
    return spec, home, study, sizes


def test_a_smaller_last_batch_trains_as_a_population_of_the_batch_size(finished) -> None:
    # 300 trials by batches of 128: the last 44 are padded to 128 (one compiled loop);
    # the report trains its best trials again, alone, after them.
    *_, sizes = finished
    assert sizes[:3] == [128, 128, 128] and all(size < 128 for size in sizes[3:])


def child_runs(home: Path) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("bulk")
    runs = client.search_runs([experiment.experiment_id], max_results=10_000)
    return client, [run for run in runs if "mlflow.parentRunId" in run.data.tags], runs


def full_curves(client, runs: list) -> dict[str, np.ndarray]:
    """The parent run's per-batch curve artifacts, merged."""
    parent = next(run for run in runs if run.data.tags.get("gdbench.role") == "parent")
    folder = local_artifact_folder(client.tracking_uri, parent.info.artifact_uri)
    curves: dict[str, np.ndarray] = {}
    for local in sorted((folder / "curves").iterdir()):
        with np.load(local) as arrays:
            curves.update({key: arrays[key] for key in arrays.files})
    return curves


def test_every_trial_has_its_optuna_record(finished) -> None:
    _, _, study, _ = finished
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == TRIALS
    for trial in trials:
        assert trial.state in (TrialState.COMPLETE, TrialState.FAIL)
        assert set(trial.params) == {"learning_rate"}
        assert trial.user_attrs[HYPERPARAMETERS_ATTR]["learning_rate"] == trial.params[
            "learning_rate"]
        epochs = trial.user_attrs[EPOCHS_RUN_ATTR]
        assert trial.intermediate_values
        assert set(trial.intermediate_values) <= set(batches.reported_epochs(epochs))
        if trial.state == TrialState.COMPLETE:
            assert epochs == EPOCHS
            assert trial.value == trial.intermediate_values[EPOCHS - 1]
    assert sum(t.state == TrialState.COMPLETE for t in trials) > TRIALS // 2


def test_every_trial_has_one_mlflow_run_with_its_curve(finished) -> None:
    _, home, study, _ = finished
    client, children, runs = child_runs(home)
    by_number = {}
    for run in children:
        by_number.setdefault(int(run.data.tags["gdbench.trial_number"]), []).append(run)
    assert sorted(by_number) == list(range(TRIALS))
    assert all(len(found) == 1 for found in by_number.values())
    curves = full_curves(client, runs)
    for trial in study.get_trials(deepcopy=False):
        run = by_number[trial.number][0]
        assert float(run.data.params["learning_rate"]) == pytest.approx(
            trial.params["learning_rate"], rel=1e-12)
        assert run.data.tags["gdbench.state"] == trial.state.name
        full = curves[f"{trial.number}/loss"]
        history = client.get_metric_history(run.info.run_id, "loss")
        steps = [point.step for point in history]
        assert steps == curve_steps(len(full)) or len(full) < EPOCHS
        assert history[0].step == 0 and history[-1].step == len(full) - 1
        for point in (history[0], history[-1]):
            assert point.value == full[point.step] or (
                math.isnan(point.value) and math.isnan(full[point.step]))
        if trial.state == TrialState.COMPLETE:
            assert run.info.status == "FINISHED"
            assert run.data.metrics["objective"] == trial.value
        else:
            assert run.info.status == "FAILED"
            assert run.data.tags["gdbench.reason"] == trial.user_attrs["fail_reason"]


def test_the_full_curves_equal_the_engines(finished) -> None:
    spec, home, study, _ = finished
    client, _, runs = child_runs(home)
    curves = full_curves(client, runs)
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    rates = np.array([t.params["learning_rate"] for t in trials])
    task = gdbench.tasks.get("sigmoid_neuron", **{k: v for k, v in spec.task.options.items()})
    # Trained as the study trains it: XLA-compiled or not by the trials' length.
    result = fit_population(task, "gd", {"learning_rate": rates}, epochs=EPOCHS,
                            jit_compile=EPOCHS * task.steps_per_epoch() >= batches.XLA_MIN_STEPS)
    for index, trial in enumerate(trials):
        expected = np.asarray(result.trial(index).history["loss"])
        np.testing.assert_allclose(curves[f"{trial.number}/loss"], expected, rtol=1e-9)
        reported = trial.intermediate_values
        np.testing.assert_allclose([reported[e] for e in sorted(reported)],
                                   expected[sorted(reported)], rtol=1e-9)


def test_every_trial_has_one_hparams_session_with_every_epoch(finished) -> None:
    from tensorboard.backend.event_processing import event_file_loader
    from tensorboard.compat.proto import event_pb2
    from tensorboard.util import tensor_util

    _, home, study, _ = finished
    client, children, runs = child_runs(home)
    curves = full_curves(client, runs)
    folder = home / "tensorboard" / "bulk"
    # Each trial's run directory is the one its MLflow run names.
    named = {int(run.data.tags["gdbench.trial_number"]): run.data.tags["gdbench.tensorboard_run"]
             for run in children}
    sessions = sorted(path.name for path in folder.iterdir() if path.is_dir())
    assert sessions == sorted(named.values()) and sorted(named) == list(range(TRIALS))
    for number in (0, TRIALS // 2, TRIALS - 1):
        assert named[number].endswith(f" · #{number}")
        starts, losses = 0, {}
        for event_file in (folder / named[number]).iterdir():
            for raw in event_file_loader.RawEventFileLoader(str(event_file)).Load():
                event = event_pb2.Event.FromString(raw)
                for value in event.summary.value:
                    starts += value.tag == "_hparams_/session_start_info"
                    if value.tag == "loss":
                        losses[event.step] = float(tensor_util.make_ndarray(value.tensor))
        assert starts == 1
        full = curves[f"{number}/loss"]
        assert sorted(losses) == list(range(len(full)))
        np.testing.assert_array_equal([losses[e] for e in range(len(full))],
                                      full.astype(np.float32))
