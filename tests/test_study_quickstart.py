"""The demo end to end: ``gdbench run studies/quickstart.toml``, then ``gdbench ui``.

Every trial must be in the three places a user looks: the Optuna storage
(optuna-dashboard), the MLflow store (one parent run per study, one child run
per trial) and TensorBoard's HParams dashboard (one session per trial).
"""

from __future__ import annotations

import collections
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import optuna
import pytest

from gdbench.study import load_specs

QUICKSTART = Path(__file__).resolve().parent.parent / "studies" / "quickstart.toml"
ALL_STATUSES = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]


def _free_port_base() -> int:
    for base in range(20000, 60000, 97):
        probes = []
        try:
            for port in range(base, base + 3):
                probe = socket.socket()
                probes.append(probe)
                probe.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for probe in probes:
                probe.close()
    raise RuntimeError("no three consecutive free ports")


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return json.load(reply)


def _post(url: str, request: dict[str, Any]) -> Any:
    data = json.dumps(request).encode()
    headers = {"Content-Type": "application/json"}
    with urllib.request.urlopen(urllib.request.Request(url, data, headers), timeout=30) as reply:
        return json.load(reply)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@pytest.fixture(scope="module")
def quickstart_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("quickstart") / "runs"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "gdbench", "run", str(QUICKSTART), "--home", str(home), "--quiet"],
        capture_output=True, text=True, timeout=600,
    )
    print(f"quickstart: {time.monotonic() - started:.0f} s")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.rstrip().endswith(f"Next: gdbench ui --home {home}")
    return home


@pytest.mark.slow
def test_quickstart_shows_every_trial_in_optuna_mlflow_and_tensorboard(
    quickstart_home: Path,
) -> None:
    from mlflow.tracking import MlflowClient

    home = quickstart_home
    expected = {spec.name: spec.trials for spec in load_specs(QUICKSTART)}
    storage = f"sqlite:///{home / 'optuna.db'}"
    for name, trials in expected.items():
        study = optuna.load_study(study_name=name, storage=storage)
        assert len(study.trials) == trials
        assert all(trial.state.is_finished() for trial in study.trials)
        assert (home / "reports" / name / "leaderboard.csv").is_file()
    assert (home / "reports" / "quickstart_sigmoid" / "best_paths.png").is_file()
    # The comparison of seven optimizers: the best of each and the η sensitivity plot.
    for name in ("best_of_each.md", "lr_sensitivity.png"):
        assert (home / "reports" / "quickstart_sigmoid" / name).is_file()

    base = _free_port_base()
    ui = subprocess.Popen(
        [sys.executable, "-m", "gdbench", "ui", "--home", str(home), "--port-base", str(base)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True,
    )
    mlflow_url, tensorboard_url, dashboard_url = (f"http://127.0.0.1:{base + i}" for i in range(3))
    try:
        lines: list[str] = []
        while not lines or not lines[-1].startswith("Ctrl-C"):
            lines.append(ui.stdout.readline())  # type: ignore[union-attr]
        # Each dashboard's address, then (indented) its studies' links.
        assert [line.split() for line in lines[:-1] if not line.startswith(" ")] == [
            ["MLflow", mlflow_url], ["TensorBoard", f"{tensorboard_url}/#hparams"],
            ["optuna-dashboard", dashboard_url]]
        printed = [line.split() for line in lines if line.startswith(" ")]
        study_links = {line[0]: line[1] for line in printed
                       if len(line) == 2 and line[1].startswith(mlflow_url + "/#/experiments/")}
        assert sorted(study_links) == sorted(expected)
        waiting = {mlflow_url: f"{mlflow_url}/health",
                   tensorboard_url: f"{tensorboard_url}/data/runs",
                   dashboard_url: f"{dashboard_url}/api/studies"}
        deadline = time.monotonic() + 120
        while waiting and time.monotonic() < deadline:
            waiting = {key: url for key, url in waiting.items() if not _answers(url)}
            time.sleep(0.5)
        assert not waiting, f"not answering: {sorted(waiting)}"

        # optuna-dashboard lists both studies.
        studies = _get(f"{dashboard_url}/api/studies")["study_summaries"]
        assert {study["study_name"] for study in studies} == set(expected)

        # MLflow, through the server the UI runs on: one parent, one child per trial.
        client = MlflowClient(mlflow_url)
        for name, trials in expected.items():
            experiment = client.get_experiment_by_name(name)
            runs = client.search_runs([experiment.experiment_id], max_results=1000)
            parents = [run for run in runs if run.data.tags.get("gdbench.role") == "parent"]
            assert len(parents) == 1 and parents[0].info.status == "FINISHED"
            children = [run for run in runs
                        if run.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
            assert len(children) == len(runs) - 1
            numbers = collections.Counter(
                int(run.data.tags["gdbench.trial_number"]) for run in children)
            assert numbers == {number: 1 for number in range(trials)}
            assert all("learning_rate" in run.data.params for run in children)

        # TensorBoard's HParams dashboard: one session per trial of each study.
        query = {"experimentName": "", "allowedStatuses": ALL_STATUSES, "colParams": [],
                 "startIndex": 0, "sliceSize": 1000, "includeMetrics": False}
        # A session is named STUDY/RUN, its run named as the trial's MLflow run: "… · #7".
        wanted = {(name, number) for name, trials in expected.items() for number in range(trials)}
        deadline = time.monotonic() + 120
        while True:
            groups = _post(f"{tensorboard_url}/data/plugin/hparams/session_groups", query)
            sessions = [(s["name"].partition("/")[0], int(s["name"].rpartition("#")[2]))
                        for g in groups.get("sessionGroups", []) for s in g["sessions"]]
            if set(sessions) >= wanted or time.monotonic() > deadline:
                break
            time.sleep(1.0)
        assert sorted(sessions) == sorted(wanted)
    finally:
        if ui.poll() is None:
            ui.send_signal(signal.SIGINT)
        try:
            status = ui.wait(timeout=60)
        except subprocess.TimeoutExpired:
            import os

            os.killpg(ui.pid, signal.SIGKILL)
            ui.wait()
            raise
    assert status == 0
    assert not any(_answers(url) for url in (f"{dashboard_url}/api/studies",
                                             f"{tensorboard_url}/data/runs"))
