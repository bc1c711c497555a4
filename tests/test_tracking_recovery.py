"""Closing what a dead process left open: StudyTracker.fail_trial and open_trial_numbers."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from test_tracking import event_values, run_dir

from gdbench.tracking import HParamDomain, StudyTracker

pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning")

DOMAINS = {"learning_rate": HParamDomain("float", 1e-4, 1.0, log=True)}


def started(tmp_path: Path, uri: str) -> StudyTracker:
    tracker = StudyTracker(study_name="recover", tracking_uri=uri,
                           tensorboard_dir=tmp_path / "tb")
    tracker.start(hparam_domains=DOMAINS, metrics=["loss"])
    return tracker


def test_a_run_left_running_and_a_trial_without_run_both_end_failed(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    dead = started(tmp_path, uri)
    left_open = dead.start_trial(0, {"learning_rate": 0.1})
    left_open.log_epoch(0, {"loss": 1.0})
    dead.flush()  # the run exists in the store, RUNNING: its process "dies" here

    survivor = started(tmp_path, uri)
    assert survivor.open_trial_numbers() == {0}
    survivor.fail_trial(0, {"learning_rate": 0.1}, "worker died (heartbeat lost)")
    survivor.fail_trial(1, {"learning_rate": 0.01}, "worker died (heartbeat lost)")
    survivor.flush()
    assert survivor.open_trial_numbers() == set()

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("recover")
    runs = [r for r in client.search_runs([experiment.experiment_id])
            if r.data.tags.get("gdbench.role") == "trial"]
    by_number = {int(r.data.tags["gdbench.trial_number"]): r for r in runs}
    assert sorted(by_number) == [0, 1] and len(runs) == 2  # no duplicate run for trial 0
    for run in runs:
        assert run.info.status == "FAILED"
        assert run.data.tags["gdbench.state"] == "FAIL"
        assert run.data.tags["gdbench.reason"] == "worker died (heartbeat lost)"
    # Trial 0's run is the one its dead process opened, not a new one.
    assert by_number[0].info.run_id == left_open.run_id

    # Both TensorBoard sessions end, as failures with a reason, in the folder each run names.
    for number, run in by_number.items():
        folder = run_dir(tmp_path / "tb", number)
        assert run.data.tags["gdbench.tensorboard_run"] == folder.name
        tags = {tag for _, tag, _ in event_values(folder)}
        assert {"reason", "_hparams_/session_end_info"} <= tags, folder
