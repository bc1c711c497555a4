"""The tracking layer: one MLflow child run and one TensorBoard HParams session per trial.

MLflow runs against a SQLite store in a temporary folder and is read back with
``MlflowClient``; TensorBoard's files are read back by a real ``tensorboard``
server through the HTTP API its HParams dashboard uses.
"""

from __future__ import annotations

import json
import math
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mlflow.entities import Run, RunData, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.plugins.hparams import plugin_data_pb2

from gdbench.tracking import (
    HParamDomain,
    StudyTracker,
    TrialTracker,
    local_artifact_folder,
)
from gdbench.tracking._mlflow import MlflowStudy

# MLflow's own use of SQLAlchemy, not ours.
pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning")

#: Seven hyperparameters, more than the five the HParams dashboard shows at first.
DOMAINS = {
    "learning_rate": HParamDomain("float", 1e-4, 1e-1, log=True),
    "beta_1": HParamDomain("float", 0.5, 0.99),
    "decay_steps": HParamDomain("int", 10, 1000, log=True),
    "schedule": HParamDomain("categorical", choices=("constant", "cosine")),
    "amsgrad": HParamDomain("categorical", choices=(False, True)),
    "batch_size": HParamDomain("categorical", choices=(32, 64, 128)),
    "optimizer": HParamDomain.fixed("adam"),
}
METRICS = ["loss", "val_loss"]


def trial_params(number: int) -> dict[str, Any]:
    return {
        "learning_rate": 10.0 ** -(number + 2),
        "beta_1": 0.9,
        "decay_steps": 100 * (number + 1),
        "schedule": ("constant", "cosine")[number % 2],
        "amsgrad": number == 1,
        "batch_size": (32, 64, 128)[number],
        "optimizer": "adam",
    }


def run_three_trials(tracker: StudyTracker, figure: Path | None = None) -> list[TrialTracker]:
    """Trial 0 completes after 3 epochs, trial 1 is pruned after 2, trial 2 fails after 1.

    Trial 0 also logs a weight histogram and, when given, a figure.
    """
    trials = []
    for number, (state, epochs) in enumerate([("COMPLETE", 3), ("PRUNED", 2), ("FAIL", 1)]):
        trial = tracker.start_trial(number, trial_params(number), tags={"task": "digits"})
        for epoch in range(epochs):
            losses = {"loss": 1.0 / (epoch + 1 + number), "val_loss": 2.0 / (epoch + 1)}
            trial.log_epoch(epoch, losses)
        if number == 0:
            trial.log_histograms(epochs - 1, {"weights/dense/kernel": np.linspace(-1.0, 1.0, 50)})
            if figure is not None:
                trial.log_figure(figure, "loss_curve")
        if state == "COMPLETE":
            trial.finish(state, value=0.25, metrics={"test_accuracy": 0.75, **losses})
        else:
            trial.finish(state, reason=f"{state.lower()} at epoch {epochs - 1}")
        trials.append(trial)
    return trials


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One SQLite store for the module: creating its schema takes seconds."""
    home = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{home}/mlflow.db"
    MlflowClient(tracking_uri=uri).search_experiments()
    return uri


def artifact_folder(uri: str, run_id: str) -> Path:
    """The folder of run ``run_id``'s artifacts in the SQLite store ``uri``."""
    folder = local_artifact_folder(uri, MlflowClient(tracking_uri=uri).get_run(run_id).info.artifact_uri)
    assert folder is not None
    return folder


def study_runs(uri: str, study: str) -> tuple[Any, list[Any]]:
    """The study's parent run and its children, found through the store."""
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(study)
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("gdbench.role") == "parent"]
    assert len(parents) == 1
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(runs) == 1 + len(children)
    return parents[0], children


# MLflow ------------------------------------------------------------------------------


def test_trials_are_child_runs_of_one_parent(tracking_uri: str, tmp_path: Path) -> None:
    tracker = StudyTracker(
        study_name="three-trials", tracking_uri=tracking_uri, tensorboard_dir=None
    )
    tracker.start(hparam_domains=DOMAINS, metrics=METRICS, params={"task": "digits", "n_trials": 3})
    trials = run_three_trials(tracker)
    tracker.finish(metrics={"best_value": 0.25})

    parent, children = study_runs(tracking_uri, "three-trials")
    assert parent.info.run_id == tracker.parent_run_id
    assert parent.info.status == "FINISHED"
    assert parent.data.params == {"task": "digits", "n_trials": "3"}
    assert parent.data.metrics["best_value"] == 0.25
    assert set(parent.data.metrics) == {"best_value", "working_time_s", "gdbench.work_intervals_ms"}
    by_number = {int(run.data.tags["gdbench.trial_number"]): run for run in children}
    assert sorted(by_number) == [0, 1, 2]
    assert [by_number[n].info.run_id for n in range(3)] == [t.run_id for t in trials]

    client = MlflowClient(tracking_uri=tracking_uri)
    expected = {
        0: ("FINISHED", "COMPLETE", None, 3),
        1: ("KILLED", "PRUNED", "pruned at epoch 1", 2),
        2: ("FAILED", "FAIL", "fail at epoch 0", 1),
    }
    for number, (status, state, reason, epochs) in expected.items():
        run = by_number[number]
        assert run.info.run_name == tracker.run_name(number, trial_params(number))
        assert run.info.run_name.endswith(f" · #{number}")
        assert run.info.status == status
        assert run.data.tags["gdbench.state"] == state
        assert run.data.tags.get("gdbench.reason") == reason
        assert run.data.tags["task"] == "digits"
        assert run.data.params == {key: str(value) for key, value in trial_params(number).items()}
        history = sorted(client.get_metric_history(run.info.run_id, "loss"), key=lambda m: m.step)
        assert [m.step for m in history] == list(range(epochs))
        assert [m.value for m in history] == [1.0 / (e + 1 + number) for e in range(epochs)]
    assert by_number[0].data.metrics["objective"] == 0.25
    assert by_number[0].data.metrics["test_accuracy"] == 0.75
    assert "objective" not in by_number[1].data.metrics

    # Resuming the study: a new tracker finds the same parent and nests under it.
    with pytest.warns(UserWarning, match="n_trials"):
        resumed = StudyTracker(
            study_name="three-trials", tracking_uri=tracking_uri, tensorboard_dir=None
        )
        resumed.start(
            hparam_domains=DOMAINS, metrics=METRICS, params={"task": "digits", "n_trials": 5}
        )
    assert resumed.parent_run_id == tracker.parent_run_id
    with resumed.start_trial(3, trial_params(0)) as trial:
        trial.finish("COMPLETE", value=0.5)
    resumed.finish()
    parent, children = study_runs(tracking_uri, "three-trials")
    assert parent.info.run_id == tracker.parent_run_id
    assert parent.data.params["n_trials"] == "3"
    assert len(children) == 4


def test_workers_creating_the_parent_at_once_agree_on_the_oldest(
    tracking_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = StudyTracker(study_name="race", tracking_uri=tracking_uri, tensorboard_dir=None)
    first.start(hparam_domains=DOMAINS, metrics=METRICS)
    # The second worker looked before the first one's parent existed.
    lookups = iter([[]])
    original = MlflowStudy._parents
    monkeypatch.setattr(
        MlflowStudy, "_parents", lambda self: next(lookups, None) or original(self)
    )
    second = StudyTracker(study_name="race", tracking_uri=tracking_uri, tensorboard_dir=None)
    second.start(hparam_domains=DOMAINS, metrics=METRICS)
    assert second.parent_run_id == first.parent_run_id
    with second.start_trial(0, trial_params(0)) as trial:
        trial.finish("COMPLETE", value=1.0)
    second.finish()
    parent, children = study_runs(tracking_uri, "race")  # the second parent was deleted
    assert parent.info.run_id == first.parent_run_id
    assert len(children) == 1


def test_workers_logging_the_study_parameters_at_once_both_start(
    tracking_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = StudyTracker(study_name="params-race", tracking_uri=tracking_uri,
                         tensorboard_dir=None)
    first.start(hparam_domains=DOMAINS, metrics=METRICS, params={"task": "digits"})
    # The second worker read the parent with no parameters; the first one's insert
    # landed between its read and its own insert, which the store refuses, as
    # MLflow refuses a second row for a (run, key) pair that two sessions add at once.
    parent = MlflowClient(tracking_uri=tracking_uri).get_run(first.parent_run_id)
    stale = Run(parent.info, RunData(tags=[RunTag(k, v) for k, v in parent.data.tags.items()]))
    lookups = iter([[stale]])
    original = MlflowStudy._parents
    monkeypatch.setattr(
        MlflowStudy, "_parents", lambda self: next(lookups, None) or original(self)
    )
    refused = []
    log_batch = MlflowClient.log_batch

    def refuse_a_second_insert(self: MlflowClient, run_id: str, *args: Any, **kwargs: Any
                               ) -> Any:
        if kwargs.get("params") and not refused:
            refused.append(kwargs["params"])
            raise MlflowException('duplicate key value violates unique constraint "param_pk"')
        return log_batch(self, run_id, *args, **kwargs)

    monkeypatch.setattr(MlflowClient, "log_batch", refuse_a_second_insert)
    second = StudyTracker(study_name="params-race", tracking_uri=tracking_uri,
                          tensorboard_dir=None)
    second.start(hparam_domains=DOMAINS, metrics=METRICS,
                 params={"task": "digits", "trials": 8})
    assert [param.key for param in refused[0]] == ["task", "trials"]
    assert second.parent_run_id == first.parent_run_id
    second.finish()
    first.finish()
    parent, _ = study_runs(tracking_uri, "params-race")
    assert parent.data.params == {"task": "digits", "trials": "8"}


def test_trials_in_threads_keep_their_own_runs(tracking_uri: str) -> None:
    tracker = StudyTracker(study_name="threads", tracking_uri=tracking_uri, tensorboard_dir=None)
    tracker.start(hparam_domains=DOMAINS, metrics=METRICS)

    def trial(number: int) -> str:
        with tracker.start_trial(number, trial_params(number % 3)) as tracked:
            for epoch in range(5):
                tracked.log_epoch(epoch, {"loss": number + epoch / 10})
            tracked.finish("COMPLETE", value=float(number))
        return tracked.run_id  # type: ignore[return-value]

    with ThreadPoolExecutor(max_workers=3) as pool:
        run_ids = list(pool.map(trial, range(6)))
    tracker.finish()

    client = MlflowClient(tracking_uri=tracking_uri)
    _, children = study_runs(tracking_uri, "threads")
    assert sorted(run.info.run_id for run in children) == sorted(run_ids)
    for number, run_id in enumerate(run_ids):
        run = client.get_run(run_id)
        assert run.data.tags["gdbench.trial_number"] == str(number)
        assert run.data.metrics["objective"] == number
        history = sorted(client.get_metric_history(run_id, "loss"), key=lambda m: m.step)
        assert [m.value for m in history] == [number + epoch / 10 for epoch in range(5)]


def test_trial_block_that_raises_fails_the_run(tracking_uri: str) -> None:
    tracker = StudyTracker(study_name="raises", tracking_uri=tracking_uri, tensorboard_dir=None)
    tracker.start(hparam_domains=DOMAINS, metrics=METRICS)
    with pytest.raises(FloatingPointError, match="loss is NaN"):
        with tracker.start_trial(0, trial_params(0)) as failing:
            failing.log_epoch(0, {"loss": math.nan})
            raise FloatingPointError("loss is NaN")
    with tracker.start_trial(1, trial_params(1)) as completing:
        completing.log_epoch(0, {"loss": 1.0})
    tracker.flush()

    client = MlflowClient(tracking_uri=tracking_uri)
    failed = client.get_run(failing.run_id)
    assert failed.info.status == "FAILED"
    assert failed.data.tags["gdbench.state"] == "FAIL"
    assert failed.data.tags["gdbench.reason"] == "FloatingPointError: loss is NaN"
    assert math.isnan(failed.data.metrics["loss"])
    completed = client.get_run(completing.run_id)
    assert (completed.info.status, completed.data.tags["gdbench.state"]) == ("FINISHED", "COMPLETE")
    assert failing.state == "FAIL" and completing.state == "COMPLETE"
    tracker.finish()


def test_long_trial_sends_metrics_before_it_ends(tracking_uri: str) -> None:
    tracker = StudyTracker(
        study_name="flushes", tracking_uri=tracking_uri, tensorboard_dir=None, flush_interval_s=0.0
    )
    tracker.start(hparam_domains=DOMAINS, metrics=METRICS)
    trial = tracker.start_trial(0, trial_params(0))
    trial.log_epoch(0, {"loss": 3.0})
    trial.log_epoch(1, {"loss": 2.0})
    tracker.flush()
    run = MlflowClient(tracking_uri=tracking_uri).get_run(trial.run_id)
    assert run.info.status == "RUNNING"
    assert run.data.metrics == {"loss": 2.0}
    trial.finish("COMPLETE")
    tracker.finish()


def test_a_figure_is_kept_though_its_file_goes_at_once(tracking_uri: str, tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    figure_path = tmp_path / "trial-0-loss.png"
    figure, axes = plt.subplots(figsize=(2, 1.5), dpi=50)
    axes.plot([1.0, 0.5])
    figure.savefig(figure_path)
    plt.close(figure)
    content = figure_path.read_bytes()
    tracker = StudyTracker(study_name="figures", tracking_uri=tracking_uri, tensorboard_dir=None)
    tracker.start(hparam_domains=DOMAINS, metrics=METRICS)
    with tracker.start_trial(0, trial_params(0)) as trial:
        trial.log_figure(figure_path, "loss_curve")
        # The runner draws figures in a folder it removes when its loop ends.
        figure_path.unlink()
    tracker.finish()
    folder = artifact_folder(tracking_uri, trial.run_id)
    assert sorted(path.name for path in (folder / "figures").iterdir()) == ["trial-0-loss.png"]
    assert (folder / "figures" / "trial-0-loss.png").read_bytes() == content


def test_a_run_the_store_refuses_fails_the_flush_not_the_trial(
    tracking_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracker = StudyTracker(study_name="refused", tracking_uri=tracking_uri, tensorboard_dir=None)
    tracker.start(hparam_domains=DOMAINS, metrics=METRICS)

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise MlflowException("the store is read-only")

    monkeypatch.setattr(MlflowClient, "create_run", refuse)
    # The run is created by the writer thread: the trial itself goes on.
    with tracker.start_trial(0, trial_params(0)) as trial:
        trial.log_epoch(0, {"loss": 1.0})
    with pytest.raises(MlflowException, match="read-only"):
        trial.run_id  # noqa: B018 - the property raises
    failed = "MLflow write\\(s\\) of study 'refused' failed"
    with pytest.raises(RuntimeError, match=failed) as raised:
        tracker.flush()
    assert isinstance(raised.value.__cause__, MlflowException)
    monkeypatch.undo()
    tracker.finish()
    _, children = study_runs(tracking_uri, "refused")
    assert children == []


def test_study_artifacts_go_to_the_parent_run(tracking_uri: str, tmp_path: Path) -> None:
    leaderboard = tmp_path / "leaderboard.csv"
    leaderboard.write_text("trial,value\n0,0.25\n")
    with StudyTracker(
        study_name="artifacts", tracking_uri=tracking_uri, tensorboard_dir=None
    ) as tracker:
        tracker.start(hparam_domains=DOMAINS, metrics=METRICS)
        tracker.log_study_artifacts([leaderboard])
        with pytest.raises(FileNotFoundError, match="missing.png"):
            tracker.log_study_artifacts([tmp_path / "missing.png"])
    client = MlflowClient(tracking_uri=tracking_uri)
    folder = artifact_folder(tracking_uri, tracker.parent_run_id)
    assert [path.name for path in (folder / "report").iterdir()] == ["leaderboard.csv"]
    assert client.get_run(tracker.parent_run_id).info.status == "FINISHED"
    # Artifacts live beside the SQLite database, not in the current directory, under a
    # location relative to it.
    assert client.get_experiment_by_name("artifacts").artifact_location == "mlflow-artifacts:/"
    database = Path(tracking_uri.removeprefix("sqlite:///"))
    assert folder == database.parent / "mlartifacts" / tracker.parent_run_id / "artifacts"


# Arguments ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "uniform", "low": 0.0, "high": 1.0}, "kind: expected one of float, int, categ"),
        ({"kind": "float", "low": 1.0, "high": 0.5}, "low, high: expected low <= high"),
        ({"kind": "float", "low": 0.0, "high": 1.0, "log": True}, "low: a log-scale domain needs"),
        ({"kind": "int", "low": 1.5, "high": 3}, "low: expected an integer"),
        ({"kind": "float", "low": None, "high": 1.0}, "low: expected a number"),
        ({"kind": "categorical", "choices": ()}, "choices: a categorical domain needs at least"),
        ({"kind": "categorical", "choices": "abc"}, "choices: expected a list"),
        ({"kind": "categorical", "choices": ([1],)}, "choices: expected None, bool, int, float"),
        ({"kind": "categorical", "choices": (1,), "low": 0.0}, "low, high, log: only for kind"),
    ],
)
def test_bad_domain_names_its_field(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HParamDomain(**fields)


def test_tracker_without_backends_checks_arguments_and_writes_nothing(tmp_path: Path) -> None:
    tracker = StudyTracker(study_name="off", tracking_uri=None, tensorboard_dir=None)
    with pytest.raises(RuntimeError, match="start"):
        tracker.start_trial(0, {})
    with pytest.raises(ValueError, match="description: .* 8001 characters long; MLflow keeps"):
        tracker.start(hparam_domains=DOMAINS, metrics=METRICS, description="d" * 8001)
    tracker.start(hparam_domains=DOMAINS, metrics=METRICS)
    with pytest.raises(ValueError, match="params: momentum not declared in hparam_domains"):
        tracker.start_trial(0, {"momentum": 0.9})
    with pytest.raises(ValueError, match=r"params\['schedule'\]: 'linear' is not one of the"):
        tracker.start_trial(0, {**trial_params(0), "schedule": "linear"})
    with pytest.raises(ValueError, match=r"params\['amsgrad'\]: 1 is not one of the"):
        tracker.start_trial(0, {**trial_params(0), "amsgrad": 1})
    with pytest.raises(ValueError, match=r"params\['learning_rate'\]: expected a number"):
        tracker.start_trial(0, {**trial_params(0), "learning_rate": "0.1"})
    with pytest.raises(ValueError, match=r"params\['decay_steps'\]: expected an integer"):
        tracker.start_trial(0, {**trial_params(0), "decay_steps": 12.5})
    with pytest.raises(ValueError, match="number: expected an integer >= 0"):
        tracker.start_trial(-1, {})
    trial = tracker.start_trial(0, trial_params(0))
    assert trial.run_id is None
    with pytest.raises(ValueError, match=r"metrics\['loss'\]: expected a number"):
        trial.log_epoch(0, {"loss": "low"})
    with pytest.raises(ValueError, match="epoch: expected an integer >= 0"):
        trial.log_epoch(-1, {"loss": 1.0})
    with pytest.raises(ValueError, match="state: expected one of COMPLETE, PRUNED, FAIL"):
        trial.finish("DONE")
    trial.finish("COMPLETE", value=1.0)
    with pytest.raises(RuntimeError, match="trial 0 is already finished"):
        trial.finish("FAIL")
    with pytest.raises(ValueError, match="status: expected one of FINISHED, FAILED, KILLED"):
        tracker.finish("COMPLETE")
    tracker.finish()
    assert list(tmp_path.iterdir()) == []


# TensorBoard -------------------------------------------------------------------------


def event_values(run_dir: Path) -> list[tuple[int, str, str]]:
    """(step, tag, plugin) of every summary value in a run directory's event files."""
    found = []
    for path in sorted(run_dir.glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                found.append((event.step, value.tag, value.metadata.plugin_data.plugin_name))
    return found


def run_dir(study_dir: Path, number: int) -> Path:
    """Trial ``number``'s run directory: the one whose name ends with ``#<number>``."""
    (found,) = study_dir.glob(f"*#{number}")
    return found


def test_each_epoch_is_on_disk_before_the_trial_ends(tmp_path: Path) -> None:
    tracker = StudyTracker(study_name="flush", tracking_uri=None,
                           tensorboard_dir=tmp_path / "flush")
    tracker.start(hparam_domains=DOMAINS, metrics=METRICS)
    trial = tracker.start_trial(7, trial_params(0))
    trial.log_epoch(0, {"loss": 1.0})
    trial.log_epoch(1, {"loss": 0.5})
    scalars = event_values(run_dir(tmp_path / "flush", 7))
    assert [(s, t) for s, t, p in scalars if p == "scalars"] == [(0, "loss"), (1, "loss")]
    trial.finish("PRUNED", reason="below median")
    values = event_values(run_dir(tmp_path / "flush", 7))
    assert (1, "reason", "text") in values
    assert (1, "_hparams_/session_end_info", "hparams") in values


def session_group_name(run_dir: Path) -> str:
    """The HParams session group a run directory's session starts in."""
    for path in run_dir.glob("events.out.tfevents.*"):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if value.tag == "_hparams_/session_start_info":
                    content = value.metadata.plugin_data.content
                    data = plugin_data_pb2.HParamsPluginData.FromString(content)
                    return data.session_start_info.group_name
    raise AssertionError(f"no session start in {run_dir}")


def test_session_groups_of_two_studies_in_one_folder_differ(tmp_path: Path) -> None:
    # TensorBoard pointed at the folder merges sessions of one group name into one row.
    for study in ("first", "second"):
        tracker = StudyTracker(
            study_name=study, tracking_uri=None, tensorboard_dir=tmp_path / study
        )
        tracker.start(hparam_domains=DOMAINS, metrics=METRICS)
        tracker.start_trial(3, trial_params(0)).finish("COMPLETE", value=1.0)
        tracker.finish()
    name = "adam, constant · η=0.01 β1=0.9 decay_steps=100 amsgrad=False batch_size=32 · #3"
    assert run_dir(tmp_path / "first", 3).name == run_dir(tmp_path / "second", 3).name == name
    assert session_group_name(tmp_path / "first" / name) == f"{name} · first"
    assert session_group_name(tmp_path / "second" / name) == f"{name} · second"


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_a_loss_beyond_float32_is_written_as_infinity(tmp_path: Path) -> None:
    tracker = StudyTracker(study_name="huge", tracking_uri=None,
                           tensorboard_dir=tmp_path / "huge")
    tracker.start(hparam_domains=DOMAINS, metrics=METRICS)
    trial = tracker.start_trial(0, trial_params(0))
    trial.log_epoch(0, {"loss": 1e300, "val_loss": -1e300})
    trial.log_epoch(1, {"loss": math.inf, "val_loss": math.nan})
    trial.finish("FAIL", reason="diverged")
    tracker.finish()
    written = {}
    for path in run_dir(tmp_path / "huge", 0).glob("events.out.tfevents.*"):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "scalars":
                    written[(event.step, value.tag)] = value.tensor.float_val[0]
    assert written[(0, "loss")] == math.inf
    assert written[(0, "val_loss")] == -math.inf
    assert written[(1, "loss")] == math.inf
    assert math.isnan(written[(1, "val_loss")])


def test_resumed_study_replaces_the_hparams_config(tmp_path: Path) -> None:
    for domains in ({"learning_rate": DOMAINS["learning_rate"]}, DOMAINS):
        tracker = StudyTracker(study_name="config", tracking_uri=None,
                               tensorboard_dir=tmp_path / "config")
        tracker.start(hparam_domains=domains, metrics=METRICS)
    # One config, for the folder of the studies; the study keeps its own beside its runs.
    assert sorted(p.name for p in tmp_path.glob("**/*tfevents*")) == [
        "events.out.tfevents.hparams_config"]
    assert event_values(tmp_path) == [(0, "_hparams_/experiment", "hparams")]
    (event,) = [e for e in EventFileLoader(str(tmp_path / "events.out.tfevents.hparams_config"))
                .Load() if e.summary.value]
    content = event.summary.value[0].metadata.plugin_data.content
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content).experiment
    assert [info.name for info in experiment.hparam_infos] == ["study", *DOMAINS]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post_json(url: str, request: dict[str, Any]) -> Any:
    data = json.dumps(request).encode()
    headers = {"Content-Type": "application/json"}
    with urllib.request.urlopen(urllib.request.Request(url, data, headers), timeout=10) as reply:
        return json.load(reply)


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return json.load(reply)


@pytest.fixture
def tensorboard_server(tmp_path: Path):
    """Start ``tensorboard`` on ``tmp_path / "tb"``; yields its base URL."""
    logdir = tmp_path / "tb"
    logdir.mkdir()
    port = free_port()
    executable = Path(sys.executable).parent / "tensorboard"
    process = subprocess.Popen(
        [str(executable), "--logdir", str(logdir), "--host", "127.0.0.1", "--port", str(port),
         "--reload_interval", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                get_json(f"{url}/data/runs")
                break
            except (urllib.error.URLError, ConnectionError):
                if process.poll() is not None or time.monotonic() > deadline:
                    errors = process.stderr.read().decode()  # type: ignore[union-attr]
                    raise RuntimeError(f"tensorboard did not start: {errors[-2000:]}") from None
                time.sleep(0.25)
        yield url, logdir
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


ALL_STATUSES = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]


@pytest.mark.slow
def test_tensorboard_hparams_dashboard_shows_every_trial(
    tensorboard_server: tuple[str, Path], tmp_path: Path
) -> None:
    import matplotlib.pyplot as plt

    url, logdir = tensorboard_server
    figure_path = tmp_path / "loss.png"
    figure, axes = plt.subplots(figsize=(2, 1.5), dpi=50)
    axes.plot([1.0, 0.5, 0.25])
    figure.savefig(figure_path)
    plt.close(figure)

    tracker = StudyTracker(study_name="tb", tracking_uri=None, tensorboard_dir=logdir / "tb")
    tracker.start(hparam_domains=DOMAINS, metrics=METRICS)
    run_three_trials(tracker, figure=figure_path)
    runs = {number: f"tb/{run_dir(logdir / 'tb', number).name}" for number in range(3)}
    tracker.finish()

    query = {
        "experimentName": "",
        "allowedStatuses": ALL_STATUSES,
        "colParams": [],
        "startIndex": 0,
        "sliceSize": 100,
        "includeMetrics": True,
    }
    deadline = time.monotonic() + 60
    while True:
        reply = post_json(f"{url}/data/plugin/hparams/session_groups", query)
        groups = reply.get("sessionGroups", [])
        # TensorBoard loads runs in the background: wait until every metric is in.
        loaded = len(groups) == 3 and all(
            len(g["sessions"][0].get("metricValues", [])) >= 2 for g in groups
        )
        if loaded or time.monotonic() > deadline:
            break
        time.sleep(0.5)

    by_name = {group["sessions"][0]["name"]: group for group in groups}
    assert sorted(by_name) == sorted(runs.values())
    expected = {
        0: ("STATUS_SUCCESS", 2.0 / 3), 1: ("STATUS_FAILURE", 1.0), 2: ("STATUS_FAILURE", 2.0)
    }
    for number, (status, val_loss) in expected.items():
        group = by_name[runs[number]]
        assert group["name"] == f"{runs[number].removeprefix('tb/')} · tb"
        assert group["hparams"] == {"study": "tb", **trial_params(number)}
        (session,) = group["sessions"]
        assert session["status"] == status
        metrics = {m["name"]["tag"]: m["value"] for m in session["metricValues"]}
        assert metrics["val_loss"] == pytest.approx(val_loss)
        assert metrics["loss"] == pytest.approx(1.0 / 3)
        assert metrics.get("objective") == (pytest.approx(0.25) if number == 0 else None)

    experiment = post_json(
        f"{url}/data/plugin/hparams/experiment", {"experimentName": "", "includeMetrics": True}
    )
    infos = {info["name"]: info for info in experiment["hparamInfos"]}
    assert sorted(infos) == sorted(["study", *DOMAINS])
    interval = infos["learning_rate"]["domainInterval"]
    assert interval == pytest.approx({"minValue": 1e-4, "maxValue": 1e-1})
    assert infos["schedule"]["domainDiscrete"] == ["constant", "cosine"]
    assert infos["amsgrad"]["domainDiscrete"] == [False, True]
    assert infos["batch_size"]["domainDiscrete"] == [32, 64, 128]
    # The dashboard ticks its first five hyperparameters, those marked as differing.
    shown = sorted(name for name, info in infos.items() if info.get("differs"))
    assert shown == ["beta_1", "learning_rate", "optimizer", "schedule", "study"]
    assert [m["name"]["tag"] for m in experiment["metricInfos"]] == ["objective", *METRICS]

    assert "weights/dense/kernel" in get_json(f"{url}/data/plugin/histograms/tags")[runs[0]]
    assert "loss_curve" in get_json(f"{url}/data/plugin/images/tags")[runs[0]]
    assert "reason" in get_json(f"{url}/data/plugin/text/tags")[runs[1]]


# Keras --------------------------------------------------------------------------------


@pytest.mark.slow
def test_keras_callback_logs_epochs_and_histograms(tracking_uri: str, tmp_path: Path) -> None:
    import keras

    from gdbench.tracking import TrackingCallback

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x @ np.array([1.0, -2.0, 0.5, 0.0], dtype="float32"))[:, None]
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, activation="tanh"), keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")

    tracker = StudyTracker(study_name="keras", tracking_uri=tracking_uri,
                           tensorboard_dir=tmp_path / "keras")
    tracker.start(hparam_domains=DOMAINS, metrics=METRICS)
    with tracker.start_trial(0, trial_params(0)) as trial:
        callback = TrackingCallback(trial, histogram_every=1, gradient_batch=(x[:16], y[:16]))
        model.fit(
            x, y, epochs=2, batch_size=16, validation_split=0.25, callbacks=[callback], verbose=0
        )
        trial.finish("COMPLETE", value=1.0)
    tracker.finish()

    values = event_values(run_dir(tmp_path / "keras", 0))
    scalars = {(step, tag) for step, tag, plugin in values if plugin == "scalars"}
    assert {(0, "loss"), (1, "loss"), (0, "val_loss"), (1, "val_loss")} <= scalars
    histograms = {(step, tag) for step, tag, plugin in values if plugin == "histograms"}
    paths = [v.path for v in model.trainable_variables]
    assert len(paths) == 4
    for step in (0, 1):
        for path in paths:
            assert (step, f"weights/{path}") in histograms
            assert (step, f"gradients/{path}") in histograms
    history = MlflowClient(tracking_uri=tracking_uri).get_metric_history(trial.run_id, "val_loss")
    assert sorted(m.step for m in history) == [0, 1]


def test_keras_callback_rejects_bad_arguments() -> None:
    from gdbench.tracking import TrackingCallback

    tracker = StudyTracker(study_name="off", tracking_uri=None, tensorboard_dir=None)
    tracker.start(hparam_domains={}, metrics=[])
    trial = tracker.start_trial(0, {})
    with pytest.raises(ValueError, match="histogram_every: expected an integer >= 0"):
        TrackingCallback(trial, histogram_every=-1)
    with pytest.raises(ValueError, match="gradient_batch: expected a pair"):
        TrackingCallback(trial, histogram_every=1, gradient_batch=np.zeros(3))


def test_a_curve_written_in_one_block_reads_as_tensorboards_own_records(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing import event_file_loader
    from tensorboard.compat.proto import event_pb2
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c
    from tensorboard.util import tensor_util

    from gdbench.tracking import _tensorboard
    from gdbench.tracking._crc32c import masked_crc32c as masked_crc32c_of_table

    rows = np.random.default_rng(0).integers(0, 256, (40, 53), dtype=np.uint8)
    assert list(masked_crc32c_of_table(rows)) == [masked_crc32c(r.tobytes()) for r in rows]
    # Steps past 127 and 16383 take longer varints: records of three lengths.
    loss = np.linspace(2.0, 0.1, 17000)
    loss[[5, 300]] = np.nan, 1e300
    curves = {"loss": loss, "learning_rate": np.full(17000, 0.5)}
    path = tmp_path / "events.out.tfevents.curve"
    path.write_bytes(_tensorboard._scalar_events(curves, 12.5))
    # Each record's checksums are those of its own bytes (the rows' are computed at once).
    content, start, records = path.read_bytes(), 0, 0
    while start < len(content):
        (length,) = struct.unpack("<Q", content[start:start + 8])
        data = content[start + 12:start + 12 + length]
        assert struct.unpack("<II", content[start + 8:start + 12]
                             + content[start + 12 + length:start + 16 + length]) == (
            masked_crc32c(content[start:start + 8]), masked_crc32c(data)), records
        start, records = start + 16 + length, records + 1
    assert records == 17000
    read = {"loss": {}, "learning_rate": {}}
    for raw in event_file_loader.RawEventFileLoader(str(path)).Load():
        event = event_pb2.Event.FromString(raw)
        assert event.wall_time == 12.5
        for value in event.summary.value:
            assert value.metadata == _tensorboard._scalar_value(value.tag, 0.0).metadata
            read[value.tag][event.step] = tensor_util.make_ndarray(value.tensor)
    for tag, curve in curves.items():
        assert sorted(read[tag]) == list(range(17000))
        with np.errstate(over="ignore"):
            np.testing.assert_array_equal([read[tag][step] for step in range(17000)],
                                          curve.astype(np.float32))


def test_record_trial_checks_its_history() -> None:
    tracker = StudyTracker(study_name="s", tracking_uri=None, tensorboard_dir=None)
    tracker.start(hparam_domains={"learning_rate": HParamDomain("float", 0.0, 1.0)},
                  metrics=["loss"])
    with pytest.raises(ValueError, match="history: expected curves of one length"):
        tracker.record_trial(0, {"learning_rate": 0.1}, {"loss": [1.0, 0.5], "x": [1.0]},
                             "COMPLETE", value=0.5)
    with pytest.raises(ValueError, match=r"history\['loss'\]: expected a sequence of numbers"):
        tracker.record_trial(0, {"learning_rate": 0.1}, {"loss": ["a", {}]}, "COMPLETE")
    with pytest.raises(ValueError, match="state: expected one of"):
        tracker.record_trial(0, {"learning_rate": 0.1}, {"loss": [1.0]}, "DONE")
    with pytest.raises(ValueError, match="file_name: expected a file name ending in .npz"):
        tracker.log_curves({0: {"loss": [1.0]}}, "curves.csv")


def test_curve_steps_are_dense_early_then_spaced_and_end_at_the_last_epoch() -> None:
    from gdbench.tracking import MLFLOW_CURVE_POINTS, curve_steps

    assert curve_steps(5) == [0, 1, 2, 3, 4]
    for epochs in (25, 1000, 100_000):
        steps = curve_steps(epochs)
        assert steps[:8] == list(range(8)) and steps[-1] == epochs - 1
        assert len(steps) <= MLFLOW_CURVE_POINTS and steps == sorted(set(steps))
