"""MLflow runs that say what they are: names, system tags, the spec, working time,
artifacts that travel with HOME, and no chatter under ``--quiet``.

The tracker writes to SQLite stores in temporary folders, read back with
``MlflowClient``; the slow tests start a real ``mlflow server`` as ``gdbench ui``
does, on a copied HOME.
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pytest
import servers
from mlflow.tracking import MlflowClient

import gdbench
from gdbench import cli
from gdbench.study import load_spec, run_study
from gdbench.tracking import HParamDomain, StudyTracker, local_artifact_folder
from gdbench.tracking._mlflow_context import working_seconds

pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning")

DOMAINS = {
    "optimizer": HParamDomain.fixed("adam"),
    "schedule": HParamDomain("categorical", choices=("none", "cosine")),
    "learning_rate": HParamDomain("float", 1e-4, 1e-1, log=True),
    "beta_1": HParamDomain.fixed(0.9),
    "epochs": HParamDomain.fixed(5),
}

SPEC = """\
name = "{name}"
description = "Adam's η on Rosenbrock's valley"
task = "rosenbrock"
optimizer = "adam"
epochs = 20
trials = {trials}
sampler = "random"
pruner = "none"
population = false

[search]
learning_rate = {{low = 0.001, high = 0.1}}
"""


def params(learning_rate: float, schedule: str = "none") -> dict[str, Any]:
    return {"optimizer": "adam", "schedule": schedule, "learning_rate": learning_rate,
            "beta_1": 0.9, "epochs": 5}


def store(folder: Path) -> str:
    """A fresh SQLite store in ``folder``, its schema created."""
    folder.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    MlflowClient(tracking_uri=uri).search_experiments()
    return uri


def started(uri: str, name: str = "study", **start: Any) -> StudyTracker:
    tracker = StudyTracker(study_name=name, tracking_uri=uri, tensorboard_dir=None,
                           flush_interval_s=0.0)
    tracker.start(hparam_domains=DOMAINS, metrics=["loss"], **start)
    return tracker


def runs(uri: str, name: str = "study") -> tuple[Any, dict[int, Any]]:
    """The study's parent run and its trial runs by number."""
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(name)
    found = client.search_runs([experiment.experiment_id])
    (parent,) = [run for run in found if run.data.tags.get("gdbench.role") == "parent"]
    trials = {int(run.data.tags["gdbench.trial_number"]): run for run in found
              if run.data.tags.get("gdbench.role") == "trial"}
    return parent, trials


def duration_ms(run: Any) -> int:
    return run.info.end_time - run.info.start_time


# Names ------------------------------------------------------------------------------


def test_trial_runs_are_named_after_what_sets_them_apart(tmp_path: Path) -> None:
    uri = store(tmp_path)
    tracker = started(uri)
    with tracker.start_trial(6, params(0.021634)) as trial:
        trial.log_epoch(0, {"loss": 1.0})
    tracker.record_trial(7, params(0.5e-3, "cosine"), {"loss": [1.0, 0.5]}, "COMPLETE", value=0.5)
    tracker.finish()
    _, trials = runs(uri)
    # The fixed values (optimizer aside) are left out: every run of the study has them.
    assert trials[6].info.run_name == "adam · η=0.0216 · #6"
    assert trials[7].info.run_name == "adam, cosine · η=0.0005 · #7"
    assert tracker.run_name(7, params(0.5e-3, "cosine")) == trials[7].info.run_name
    with pytest.raises(RuntimeError, match="start"):
        StudyTracker(study_name="s", tracking_uri=None, tensorboard_dir=None).run_name(0, {})


# Tags, spec, description --------------------------------------------------------------


def test_runs_carry_the_system_tags_of_mlflows_fluent_api(tmp_path: Path) -> None:
    uri = store(tmp_path)
    spec_file = tmp_path / "study.toml"
    spec_file.write_text("# the study\n")
    tracker = started(uri, spec_file=spec_file)
    with tracker.start_trial(0, params(0.01)):
        pass
    tracker.record_trial(1, params(0.02), {"loss": [1.0]}, "COMPLETE", value=1.0)
    tracker.finish()
    # What MLflow's fluent API gives a run started in this process.
    mlflow.set_tracking_uri(uri)
    try:
        with mlflow.start_run(experiment_id=MlflowClient(uri).get_experiment_by_name(
                "study").experiment_id, run_name="fluent") as fluent:
            pass
    finally:
        mlflow.set_tracking_uri(None)
    fluent_tags = MlflowClient(uri).get_run(fluent.info.run_id).data.tags
    system = {key: value for key, value in fluent_tags.items()
              if key.startswith("mlflow.") and key not in ("mlflow.runName",)}
    assert {"mlflow.user", "mlflow.source.name", "mlflow.source.type"} <= set(system)
    parent, trials = runs(uri)
    for run in (parent, trials[0], trials[1]):
        tags = run.data.tags
        for key, value in system.items():
            if key != "mlflow.source.name":
                assert tags[key] == value, key
        assert tags["mlflow.source.name"] == str(spec_file)
        assert tags["mlflow.source.type"] == "LOCAL"
        assert tags["mlflow.user"] == getpass.getuser()
        assert tags["gdbench.version"] == gdbench.__version__


def test_without_a_spec_file_the_source_is_the_program(tmp_path: Path) -> None:
    uri = store(tmp_path)
    started(uri).finish()
    parent, _ = runs(uri)
    assert parent.data.tags["mlflow.source.name"] == sys.argv[0]


def test_the_spec_file_is_an_artifact_and_its_description_the_experiments(tmp_path: Path) -> None:
    uri = store(tmp_path)
    spec_file = tmp_path / "my-study.toml"
    spec_file.write_text('name = "study"\ndescription = "η on the valley"\n', encoding="utf-8")
    started(uri, spec_file=spec_file, description="η on the valley").finish()
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("study")
    assert experiment.tags["mlflow.note.content"] == "η on the valley"
    parent, _ = runs(uri)
    assert parent.data.tags["mlflow.note.content"] == "η on the valley"
    folder = local_artifact_folder(uri, parent.info.artifact_uri)
    assert (folder / "spec.toml").read_bytes() == spec_file.read_bytes()


# Working time ---------------------------------------------------------------------------


def test_the_parent_run_lasts_the_studys_working_time(tmp_path: Path) -> None:
    uri = store(tmp_path)
    first = started(uri)
    with first.start_trial(0, params(0.01)):
        time.sleep(0.3)
    first.finish()
    parent, _ = runs(uri)
    worked = duration_ms(parent)
    assert worked >= 300
    assert parent.data.metrics["working_time_s"] == pytest.approx(worked / 1000, abs=1e-3)
    end = parent.info.end_time

    # A rerun that runs no trial (the budget is spent), or only closes a dead one's.
    time.sleep(0.5)
    idle = started(uri)
    idle.fail_trial(1, params(0.02), "its process stopped")
    time.sleep(0.3)
    idle.finish()
    parent, _ = runs(uri)
    assert parent.info.end_time == end
    assert parent.data.metrics["working_time_s"] == pytest.approx(worked / 1000, abs=1e-3)

    # A resumed study adds its own time, not the time since the first run.
    time.sleep(0.5)
    resumed = started(uri)
    began = time.time()
    resumed.record_trial(2, params(0.03), {"loss": [1.0]}, "COMPLETE", value=1.0)
    time.sleep(0.2)
    resumed.finish()
    took_ms = (time.time() - began) * 1000
    parent, _ = runs(uri)
    assert parent.info.status == "FINISHED"
    assert worked + 200 <= duration_ms(parent) <= worked + took_ms + 1000
    assert parent.info.end_time < end + 1000 + took_ms


def test_a_parent_run_of_an_earlier_version_keeps_its_duration(tmp_path: Path) -> None:
    uri = store(tmp_path)
    client = MlflowClient(uri)
    experiment = client.create_experiment("study")
    old = client.create_run(experiment, start_time=1_000_000, run_name="study",
                            tags={"gdbench.study": "study", "gdbench.role": "parent"})
    client.set_terminated(old.info.run_id, "FINISHED", end_time=1_018_000)
    started(uri).finish()
    parent, _ = runs(uri)
    assert duration_ms(parent) == 18_000
    resumed = started(uri)
    with resumed.start_trial(0, params(0.01)):
        time.sleep(0.2)
    resumed.finish()
    parent, _ = runs(uri)
    assert 18_200 <= duration_ms(parent) < 30_000


def test_processes_working_at_once_count_their_common_time_once(tmp_path: Path) -> None:
    assert working_seconds([]) == 0
    assert working_seconds([(0, 1000), (5000, 6000)]) == 2.0
    assert working_seconds([(0, 10_000), (2000, 8000)]) == 10.0
    assert working_seconds([(2000, 8000), (0, 3000), (7000, 12_000)]) == 12.0

    uri = store(tmp_path)
    began = time.time()
    outer = started(uri)
    time.sleep(0.3)
    inner = started(uri)
    with inner.start_trial(0, params(0.01)):
        time.sleep(0.2)
    inner.finish()
    with outer.start_trial(1, params(0.02)):
        time.sleep(0.2)
    outer.finish()
    took_ms = (time.time() - began) * 1000
    parent, _ = runs(uri)
    # The outer process's whole time, which holds the inner one's: counted once.
    assert duration_ms(parent) == pytest.approx(
        parent.data.metrics["working_time_s"] * 1000, abs=1)
    assert 700 <= duration_ms(parent) <= took_ms


def test_a_rerun_of_a_finished_study_does_not_move_its_end(tmp_path: Path) -> None:
    path = tmp_path / "study.toml"
    path.write_text(SPEC.format(name="rerun", trials=2), encoding="utf-8")
    spec = load_spec(path)
    home = tmp_path / "home"
    run_study(spec, home=home, quiet=True)
    uri = f"sqlite:///{home / 'mlflow.db'}"
    first, trials = runs(uri, "rerun")
    assert sorted(trials) == [0, 1]
    run_study(spec, home=home, quiet=True)
    again, trials = runs(uri, "rerun")
    assert sorted(trials) == [0, 1]
    assert again.info.end_time == first.info.end_time
    assert (folder := local_artifact_folder(uri, again.info.artifact_uri)) is not None
    assert (folder / "spec.toml").read_text(encoding="utf-8") == path.read_text(encoding="utf-8")
    assert MlflowClient(uri).get_experiment_by_name("rerun").tags["mlflow.note.content"] == \
        "Adam's η on Rosenbrock's valley"


# Artifacts that travel with HOME ------------------------------------------------------------


def write_home(home: Path) -> tuple[str, str, str]:
    """A home with a study whose artifacts are relative to it, and one of an earlier
    version's, at an absolute location; (relative run, absolute run, figure's name)."""
    uri = store(home)
    spec_file = home / "spec-source.toml"
    spec_file.write_text("# the original\n")
    tracker = started(uri, spec_file=spec_file)
    tracker.finish()
    legacy = StudyTracker(study_name="legacy", tracking_uri=uri, tensorboard_dir=None,
                          artifact_location=(home / "mlartifacts").as_uri())
    legacy.start(hparam_domains=DOMAINS, metrics=["loss"], spec_file=spec_file)
    legacy.finish()
    return tracker.parent_run_id or "", legacy.parent_run_id or "", "spec.toml"


def test_a_copied_home_reads_its_own_artifacts(tmp_path: Path) -> None:
    original, copy = tmp_path / "original", tmp_path / "copy"
    relative, absolute, name = write_home(original)
    shutil.copytree(original, copy)
    shutil.rmtree(original / "mlartifacts" / relative)

    uri = f"sqlite:///{copy / 'mlflow.db'}"
    client = MlflowClient(uri)
    run = client.get_run(relative)
    assert run.info.artifact_uri == f"mlflow-artifacts:/{relative}/artifacts"
    folder = local_artifact_folder(uri, run.info.artifact_uri)
    assert folder == copy.resolve() / "mlartifacts" / relative / "artifacts"
    assert (folder / name).read_text() == "# the original\n"
    # A location of an earlier version is absolute: MLflow's client reads it, as before.
    legacy = client.get_run(absolute)
    assert local_artifact_folder(uri, legacy.info.artifact_uri) is None
    downloaded = client.download_artifacts(absolute, name, str(tmp_path))
    assert Path(downloaded).read_text() == "# the original\n"
    with pytest.raises(ValueError, match="artifact_uri"):
        local_artifact_folder(uri, "mlflow-artifacts:/../../elsewhere")


@pytest.fixture(scope="module")
def copied_home_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """``gdbench ui``'s MLflow server on a copy of a home whose original has changed."""
    root = tmp_path_factory.mktemp("homes")
    original, copy = root / "original", root / "copy"
    relative, absolute, name = write_home(original)
    shutil.copytree(original, copy)
    for run_id in (relative, absolute):
        (original / "mlartifacts" / run_id / "artifacts" / name).write_text("# changed\n")
    port = servers.free_port()
    ((_, _, command),) = [tool for tool in cli.ui_commands(copy, port) if tool[0] == "mlflow"]
    log = root / "mlflow.log"
    with open(log, "wb") as output:
        process = subprocess.Popen([str(servers.VENV_BIN / "mlflow"), *command[1:]],
                                   stdout=output, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        servers.wait_until("mlflow server", lambda: servers.http_ok(
            f"{uri}/api/2.0/mlflow/experiments/search?max_results=1"), process, log)
        yield {"uri": uri, "relative": relative, "absolute": absolute, "name": name,
               "root": root}
    finally:
        servers.stop_process(process)


def served(uri: str, run_id: str, path: str) -> str:
    """An artifact as the MLflow UI gets it from the server."""
    query = urllib.parse.urlencode({"run_uuid": run_id, "path": path})
    with urllib.request.urlopen(f"{uri}/get-artifact?{query}", timeout=30) as reply:
        return reply.read().decode()


@pytest.mark.slow
def test_mlflow_server_on_a_copied_home_serves_the_copys_files(
        copied_home_server: dict[str, Any], tmp_path: Path) -> None:
    uri, name = copied_home_server["uri"], copied_home_server["name"]
    relative, absolute = copied_home_server["relative"], copied_home_server["absolute"]
    assert served(uri, relative, name) == "# the original\n"
    downloaded = MlflowClient(uri).download_artifacts(relative, name, str(tmp_path))
    assert Path(downloaded).read_text() == "# the original\n"
    # An absolute location still works: it names the original's file, as it always did.
    assert served(uri, absolute, name) == "# changed\n"


# --quiet ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_quiet_run_on_a_tracking_server_prints_no_mlflow_links(
        copied_home_server: dict[str, Any]) -> None:
    uri, root = copied_home_server["uri"], copied_home_server["root"]
    environment = {key: value for key, value in os.environ.items()
                   if key != "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"}
    environment["TF_CPP_MIN_LOG_LEVEL"] = "3"
    # MLflow's client prints its links here unless told not to.
    plain = subprocess.run(
        [sys.executable, "-c",
         ("import sys; from mlflow import MlflowClient; client = MlflowClient(sys.argv[1]); "
          "client.set_terminated(client.create_run('0').info.run_id)"), uri],
        capture_output=True, text=True, env=environment, timeout=300, check=True)
    assert "View run" in plain.stdout

    spec = root / "quiet.toml"
    spec.write_text(SPEC.format(name="quiet", trials=2), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "gdbench", "run", str(spec), "--home", str(root / "quiet-home"),
         "--tracking-uri", uri, "--quiet"],
        capture_output=True, text=True, env=environment, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    for stream in (done.stdout, done.stderr):
        assert "View run" not in stream and "View experiment" not in stream
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("quiet")
    assert len(client.search_runs([experiment.experiment_id])) == 3
