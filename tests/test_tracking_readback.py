"""A tracked study read back from MLflow: parameters, every epoch of every curve."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gdbench.tracking import HParamDomain, StoredStudy, StudyTracker, curve_steps

EPOCHS = 40


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[int, dict]]:
    """A study of one trial tracked epoch by epoch, two recorded whole, and their curves."""
    folder = tmp_path_factory.mktemp("readback")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    tracker = StudyTracker(study_name="readback", tracking_uri=uri, tensorboard_dir=None,
                           experiment_name="readback-experiment")
    tracker.start(hparam_domains={"learning_rate": HParamDomain("float", 1e-3, 1.0, log=True)},
                  metrics=["loss", "val_loss"], params={"epochs": EPOCHS, "batch_size": 8})
    epochs = np.arange(EPOCHS)
    curves = {
        0: {"loss": 1.0 / (epochs[:5] + 1), "val_loss": 1.5 / (epochs[:5] + 1)},
        1: {"loss": np.exp(-epochs / 7.0), "learning_rate": np.full(EPOCHS, 0.1)},
        2: {"loss": np.exp(-epochs / 9.0), "learning_rate": np.full(EPOCHS, 0.2)},
    }
    with tracker.start_trial(0, {"learning_rate": 0.01}) as trial:
        for epoch in range(5):
            trial.log_epoch(epoch, {key: float(values[epoch]) for key, values in curves[0].items()})
        trial.finish("COMPLETE", value=float(curves[0]["val_loss"][-1]))
    for number in (1, 2):
        tracker.record_trial(number, {"learning_rate": 0.1 * number}, curves[number], "COMPLETE",
                             value=float(curves[number]["loss"][-1]))
    tracker.log_curves({number: curves[number] for number in (1, 2)}, "trials-00001-00002.npz")
    tracker.finish()
    return uri, curves


def test_every_epoch_of_every_curve_comes_back(tracked) -> None:
    uri, curves = tracked
    # A population trial's MLflow metrics hold only some epochs: the artifact holds them all.
    assert len(curve_steps(EPOCHS)) < EPOCHS
    stored = StoredStudy(uri, "readback").curves([0, 1, 2, 7])
    assert sorted(stored) == [0, 1, 2]
    for number, history in curves.items():
        assert sorted(stored[number]) == sorted(history)
        for key, values in history.items():
            np.testing.assert_allclose(stored[number][key], values)


def test_only_the_trials_asked_for_are_read(tracked) -> None:
    uri, _ = tracked
    assert sorted(StoredStudy(uri, "readback").curves([2])) == [2]
    assert StoredStudy(uri, "readback").curves([]) == {}


def test_the_parent_runs_parameters_come_back(tracked) -> None:
    uri, _ = tracked
    params = StoredStudy(uri, "readback").params()
    assert params["epochs"] == str(EPOCHS)
    assert params["batch_size"] == "8"


def test_a_study_mlflow_never_saw_reads_as_empty(tracked, tmp_path: Path) -> None:
    uri, _ = tracked
    assert StoredStudy(uri, "another").params() == {}
    assert StoredStudy(uri, "another").curves([0, 1]) == {}
    with pytest.raises(ValueError, match="study_name"):
        StoredStudy(uri, "")
