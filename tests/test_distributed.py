"""Workers sharing a study, proven against real servers: PostgreSQL, an MLflow server, TensorBoard.

The servers run natively on 127.0.0.1 (``servers.py``), as the docker-compose
stack runs them in containers. Every check reads what a user would: the
Optuna storage, the MLflow server's REST API, TensorBoard's HParams API.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

import optuna
import pytest
import servers
from optuna.trial import TrialState

from gdbench.study import load_spec
from gdbench.study.keys import STALE_REASON
from gdbench.study.trials.storage import ClaimLock, budget_used
from gdbench.study.worker import create_study, load_study_spec, run_worker

ALL_STATUSES = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest) -> servers.Stack:
    return servers.shared_stack(request)


@pytest.fixture(scope="module")
def three_workers(stack: servers.Stack) -> servers.StudyRun:
    return servers.cached("three_workers", lambda: servers.three_worker_study(stack))


# -- reading the servers ---------------------------------------------------------


def experiment_id(stack: servers.Stack, name: str) -> str:
    query = urllib.parse.urlencode({"experiment_name": name})
    reply = servers.get_json(f"{stack.mlflow_uri}/api/2.0/mlflow/experiments/get-by-name?{query}")
    return reply["experiment"]["experiment_id"]


def search_runs(stack: servers.Stack, study: str) -> list[dict[str, Any]]:
    """Every run of the study's experiment, through the server's REST API."""
    body = {"experiment_ids": [experiment_id(stack, study)], "max_results": 1000}
    runs: list[dict[str, Any]] = []
    while True:
        reply = servers.post_json(f"{stack.mlflow_uri}/api/2.0/mlflow/runs/search", body)
        runs += reply.get("runs", [])
        if not reply.get("next_page_token"):
            return runs
        body["page_token"] = reply["next_page_token"]


def tags(run: dict[str, Any]) -> dict[str, str]:
    return {tag["key"]: tag["value"] for tag in run["data"].get("tags", [])}


def metrics(run: dict[str, Any]) -> dict[str, float]:
    return {metric["key"]: metric["value"] for metric in run["data"].get("metrics", [])}


def params(run: dict[str, Any]) -> dict[str, str]:
    return {param["key"]: param["value"] for param in run["data"].get("params", [])}


def artifact_paths(stack: servers.Stack, run_id: str, path: str = "") -> list[str]:
    """Every file of a run's artifacts, through the server's artifact listing."""
    query = urllib.parse.urlencode({"run_id": run_id, "path": path})
    reply = servers.get_json(f"{stack.mlflow_uri}/api/2.0/mlflow/artifacts/list?{query}")
    found = []
    for item in reply.get("files", []):
        if item.get("is_dir"):
            found += artifact_paths(stack, run_id, item["path"])
        else:
            found.append(item["path"])
    return found


def hparams_sessions(stack: servers.Stack, study: str, expected: int) -> dict[int, dict[str, Any]]:
    """The HParams dashboard's sessions of a study by trial number (their names end with
    ``#<number>``), each with its group's hyperparameters, once TensorBoard has loaded
    ``expected`` finished ones."""
    query = {"experimentName": "", "allowedStatuses": ALL_STATUSES, "colParams": [],
             "startIndex": 0, "sliceSize": 1000, "includeMetrics": True}
    url = f"{stack.tensorboard_url}/data/plugin/hparams/session_groups"
    deadline = time.monotonic() + 90
    while True:
        sessions = {}
        for group in servers.post_json(url, query).get("sessionGroups", []):
            for session in group["sessions"]:
                study_name, _, session_name = session["name"].partition("/")
                if study_name == study:
                    number = int(session_name.rpartition("#")[2])
                    sessions[number] = {**session, "group": group}
        finished = [s for s in sessions.values() if s.get("status") in
                    ("STATUS_SUCCESS", "STATUS_FAILURE")]
        if len(finished) >= expected or time.monotonic() > deadline:
            return sessions
        time.sleep(0.5)


def session_pids(stack: servers.Stack, study: str) -> dict[str, set[int]]:
    """Trial session → ids of the processes that wrote its event files (the name ends host.pid.n)."""
    found: dict[str, set[int]] = {}
    for folder in sorted((stack.tensorboard_logdir / study).glob("*#*")):
        found[folder.name] = {int(path.name.split(".")[-2]) for path in folder.glob("events.out.tfevents.*")}
    return found


def load(stack: servers.Stack, study: str) -> optuna.Study:
    return optuna.load_study(study_name=study, storage=stack.postgres_url)


# -- three workers, one budget ---------------------------------------------------


@pytest.mark.slow
def test_three_workers_run_exactly_the_budget(stack: servers.Stack,
                                              three_workers: servers.StudyRun) -> None:
    study = load(stack, three_workers.name)
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == three_workers.budget == 30
    assert {trial.state for trial in trials} == {TrialState.COMPLETE}
    assert sorted(trial.number for trial in trials) == list(range(30))
    # Every worker ran trials: TensorBoard's event files are named after their process.
    writers = session_pids(stack, three_workers.name)
    assert set().union(*writers.values()) == set(three_workers.workers)


@pytest.mark.slow
def test_every_trial_is_one_mlflow_child_run_with_metrics_and_artifacts(
        stack: servers.Stack, three_workers: servers.StudyRun) -> None:
    study = load(stack, three_workers.name)
    values = {trial.number: trial.value for trial in study.trials}
    runs = search_runs(stack, three_workers.name)
    parents = [run for run in runs if tags(run).get("gdbench.role") == "parent"]
    children = [run for run in runs if tags(run).get("gdbench.role") == "trial"]
    assert len(parents) == 1 and len(children) == 30
    (parent,) = parents
    assert parent["info"]["status"] == "FINISHED"
    assert metrics(parent)["trials_complete"] == 30
    by_number = {int(tags(run)["gdbench.trial_number"]): run for run in children}
    assert sorted(by_number) == list(range(30))
    for number, run in by_number.items():
        assert tags(run)["mlflow.parentRunId"] == parent["info"]["run_id"]
        assert run["info"]["status"] == "FINISHED"
        assert run["info"]["run_name"].startswith("adam · η=")
        assert run["info"]["run_name"].endswith(f" · #{number}")
        assert metrics(run)["objective"] == pytest.approx(values[number])
        assert "loss" in metrics(run) and "learning_rate" in params(run)
        assert float(params(run)["learning_rate"]) == pytest.approx(
            study.trials[number].params["learning_rate"])

    # Figures of the trials that ranked among the best when they finished: the
    # first three always did. They reach the server's own folder through its proxy.
    with_figures = {number for number, run in by_number.items()
                    if artifact_paths(stack, run["info"]["run_id"])}
    assert {0, 1, 2} <= with_figures or len(with_figures) >= 3
    first = min(with_figures)
    listed = artifact_paths(stack, by_number[first]["info"]["run_id"])
    assert any(path.startswith("figures/") and path.endswith(".png") for path in listed)
    stored = {path.name for path in stack.artifacts.rglob("*.png")}
    assert {Path(path).name for path in listed} <= stored
    assert not (stack.home / "mlartifacts").exists()


@pytest.mark.slow
def test_every_trial_is_one_hparams_session(stack: servers.Stack,
                                            three_workers: servers.StudyRun) -> None:
    study = load(stack, three_workers.name)
    sessions = hparams_sessions(stack, three_workers.name, expected=30)
    assert sorted(sessions) == list(range(30))
    for trial in study.trials:
        session = sessions[trial.number]
        assert session["status"] == "STATUS_SUCCESS"
        values = {m["name"]["tag"]: m["value"] for m in session["metricValues"]}
        assert values["objective"] == pytest.approx(trial.value, rel=1e-6)
        assert session["group"]["hparams"]["learning_rate"] == pytest.approx(
            trial.params["learning_rate"])


@pytest.mark.slow
def test_a_worker_elsewhere_needs_only_the_storage_and_the_study_name(
        stack: servers.Stack, three_workers: servers.StudyRun) -> None:
    spec = load_study_spec(three_workers.name, stack.postgres_url)
    assert spec.name == three_workers.name and spec.trials == 30
    assert spec.task.name == "rosenbrock"
    assert spec.source == stack.root / f"{three_workers.name}.toml"
    # A spec that is not the study's is refused, naming what differs.
    other = servers.write_toy_spec(stack, three_workers.name, 30)
    other.write_text(other.read_text().replace('"adam"', '"rmsprop"'))
    with pytest.raises(ValueError, match=r"spec: study 'three_workers' was created from another "
                                         r"spec \(differs in optimizers\)"):
        create_study(load_spec(other), stack.postgres_url, tracking_uri=stack.mlflow_uri,
                     home=stack.home)


# -- a worker killed in the middle of a trial ------------------------------------


@pytest.mark.slow
def test_a_killed_workers_trial_is_failed_and_run_again(stack: servers.Stack) -> None:
    name, budget = "killed_worker", 8
    spec_path = servers.write_toy_spec(stack, name, budget)
    create_study(load_spec(spec_path), stack.postgres_url, home=stack.home,
                 tracking_uri=stack.mlflow_uri)
    stall_file = stack.root / f"{name}.stalled"
    stalling_log = stack.root / f"{name}-stalling.log"
    stalling = servers.start_worker(
        stack, ["--stall-at", "2", "--stall-file", str(stall_file), "--",
                *servers.worker_command(stack, spec_path)],
        stalling_log, runner=(str(Path(servers.__file__)),))
    try:
        servers.wait_until("the stalling worker's second trial", stall_file.exists, stalling,
                           stalling_log, timeout_s=180)
        stalled = int(stall_file.read_text())
        study = load(stack, name)
        assert study.trials[stalled].state == TrialState.RUNNING
        finished_by_the_dead = [t.number for t in study.trials if t.state == TrialState.COMPLETE]
        assert finished_by_the_dead

        def mlflow_caught_up() -> bool:
            # The worker's MLflow writes go through a background thread: let it send
            # what it has (the stalled trial's run, the earlier trial's end) before the kill.
            status = {int(tags(r)["gdbench.trial_number"]): r["info"]["status"]
                      for r in search_runs(stack, name) if tags(r).get("gdbench.role") == "trial"}
            return status.get(stalled) == "RUNNING" and all(
                status.get(number) == "FINISHED" for number in finished_by_the_dead)

        servers.wait_until("the stalled worker's MLflow writes", mlflow_caught_up, stalling,
                           stalling_log, timeout_s=60)
    finally:
        stalling.send_signal(signal.SIGKILL)
        stalling.wait()
    logs = [stack.root / f"{name}-worker-{index}.log" for index in range(2)]
    processes = [servers.start_worker(stack, servers.worker_command(stack, spec_path), log)
                 for log in logs]
    servers.wait_for_workers(processes, logs, timeout_s=240)

    study = load(stack, name)
    trials = study.get_trials(deepcopy=False)
    dead = trials[stalled]
    assert dead.state == TrialState.FAIL
    (retry,) = [t for t in trials if t.system_attrs.get("failed_trial") == stalled]
    assert retry.state == TrialState.COMPLETE and retry.params == dead.params
    assert retry.number > stalled
    # The budget holds: the dead trial's retry took its place.
    assert len(trials) == budget + 1 and budget_used(trials) == budget
    complete = [t.number for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == budget
    assert set(finished_by_the_dead) <= set(complete)

    runs = search_runs(stack, name)
    assert [r for r in runs if r["info"]["status"] == "RUNNING"] == []
    by_number = {int(tags(r)["gdbench.trial_number"]): r for r in runs
                 if tags(r).get("gdbench.role") == "trial"}
    assert sorted(by_number) == sorted(t.number for t in trials)
    assert by_number[stalled]["info"]["status"] == "FAILED"
    assert tags(by_number[stalled])["gdbench.reason"] == STALE_REASON
    assert tags(by_number[stalled])["gdbench.state"] == "FAIL"
    for number in complete:
        assert by_number[number]["info"]["status"] == "FINISHED"
        assert "objective" in metrics(by_number[number])

    sessions = hparams_sessions(stack, name, expected=budget + 1)
    assert sessions[stalled]["status"] == "STATUS_FAILURE"
    for number in complete:
        assert sessions[number]["status"] == "STATUS_SUCCESS"


# -- the claim lock and the budget ------------------------------------------------


@pytest.mark.slow
def test_the_claim_lock_excludes_other_sessions(stack: servers.Stack) -> None:
    # Two storages, two PostgreSQL sessions: as two workers are.
    holder = ClaimLock(optuna.storages.RDBStorage(stack.postgres_url), "lock_probe")
    waiter = ClaimLock(optuna.storages.RDBStorage(stack.postgres_url), "lock_probe")
    other_study = ClaimLock(optuna.storages.RDBStorage(stack.postgres_url), "another_study")
    held = threading.Event()

    def hold() -> None:
        with holder.held():
            held.set()
            time.sleep(2.0)

    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(30)
    started = time.monotonic()
    with other_study.held():
        assert time.monotonic() - started < 1.0
    with waiter.held():
        waited = time.monotonic() - started
    thread.join()
    assert waited > 1.5


@pytest.mark.slow
def test_the_claim_lock_dies_with_its_holder(stack: servers.Stack) -> None:
    lock = ClaimLock(optuna.storages.RDBStorage(stack.postgres_url), "lock_probe")
    # A process that takes the same advisory lock, then is killed holding it.
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time, psycopg2\n"
         "connection = psycopg2.connect(sys.argv[1])\n"
         "connection.cursor().execute('SELECT pg_advisory_lock(%s)', (int(sys.argv[2]),))\n"
         "print('held', flush=True)\n"
         "time.sleep(600)\n",
         stack.postgres_url.replace("+psycopg2", ""), str(lock.key)],
        stdout=subprocess.PIPE)
    assert holder.stdout is not None and holder.stdout.readline().strip() == b"held"
    killer = threading.Timer(1.0, os.kill, (holder.pid, signal.SIGKILL))
    killer.start()
    started = time.monotonic()
    with lock.held():
        waited = time.monotonic() - started
    killer.join()
    holder.wait(timeout=30)
    assert 0.5 < waited < 30


@pytest.mark.slow
def test_the_compose_files_allowed_hosts_reach_the_real_server(stack: servers.Stack) -> None:
    url = f"{stack.mlflow_uri}/api/2.0/mlflow/experiments/search?max_results=1"
    # Workers call the server by its service name, browsers through the published port.
    assert servers.http_ok(url, host="mlflow:5000")
    assert servers.http_ok(url, host="localhost:5000")
    assert servers.http_ok(url, host="127.0.0.1:5001")
    assert not servers.http_ok(url, host="mlflow.example.com")


def frozen(number: int, state: TrialState, **system_attrs: Any) -> optuna.trial.FrozenTrial:
    trial = optuna.trial.create_trial(state=state, value=1.0 if state == TrialState.COMPLETE else None,
                                      system_attrs=system_attrs)
    trial.number = number
    return trial


def test_budget_counts_a_retried_trial_once() -> None:
    trials = [
        frozen(0, TrialState.COMPLETE), frozen(1, TrialState.PRUNED), frozen(2, TrialState.FAIL),
        frozen(3, TrialState.FAIL),  # its worker died; trial 5 runs it again
        frozen(4, TrialState.RUNNING),
        frozen(5, TrialState.WAITING, failed_trial=3, retry_history=[3]),
    ]
    assert budget_used(trials) == 4
    trials[5] = frozen(5, TrialState.RUNNING, failed_trial=3, retry_history=[3])
    assert budget_used(trials) == 5
    # A retry that died too is not run a third time: it counts.
    trials[5] = frozen(5, TrialState.FAIL, failed_trial=3, retry_history=[3])
    assert budget_used(trials) == 5


@pytest.mark.parametrize(("keywords", "message"), [
    ({"storage_url": "mysql://db/optuna"}, "storage: mysql is not supported"),
    ({"heartbeat_interval": 0}, "heartbeat_interval: expected an integer >= 1, got 0"),
    ({"heartbeat_interval": 10, "grace_period": 10},
     r"grace_period: expected more than heartbeat_interval \(10 s\), got 10"),
    ({"trials": 0}, "trials: expected an integer >= 1, got 0"),
    ({"worker_index": -1}, "worker_index: expected an integer >= 0, got -1"),
    ({"poll_interval_s": 0}, "poll_interval_s: expected a number > 0, got 0"),
])
def test_run_worker_names_a_bad_argument(keywords: dict[str, Any], message: str,
                                         tmp_path: Path) -> None:
    arguments = {"storage_url": f"sqlite:///{tmp_path / 'optuna.db'}", **keywords}
    storage_url = arguments.pop("storage_url")
    spec_path = tmp_path / "probe.toml"
    spec_path.write_text(servers.TOY_SPEC.format(name="probe", trials=2))
    with pytest.raises(ValueError, match=message):
        run_worker("probe", storage_url, spec=load_spec(spec_path), home=tmp_path, **arguments)


def test_a_worker_needs_an_existing_study(tmp_path: Path) -> None:
    spec_path = tmp_path / "absent.toml"
    spec_path.write_text(servers.TOY_SPEC.format(name="absent", trials=2))
    with pytest.raises(KeyError):
        run_worker("absent", f"sqlite:///{tmp_path / 'optuna.db'}", spec=load_spec(spec_path),
                   home=tmp_path)
