"""Nothing finished is lost, and an unreachable tracking server holds nothing: real processes.

A finished trial's whole MLflow run is in HOME's journal until the writer has
written it (a population batch's runs in one file, written and fsynced once);
a process that ends first (SIGKILL, or Ctrl-C while the server is gone) leaves
it there, and the next ``gdbench run`` or ``gdbench report`` of the study
writes it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from servers import (
    HEARTBEAT_ARGS,
    TOY_SPEC,
    VENV_BIN,
    free_port,
    http_ok,
    stop_process,
    wait_until,
    worker_environment,
)

from gdbench.study.defaults import JOURNAL_FOLDER
from gdbench.study.trials.storage import FINISHED_STATES

pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning")

CHILD = r"""
import os, sys, threading
from pathlib import Path
from gdbench.tracking import HParamDomain, StudyTracker

home = Path(sys.argv[1])
tracker = StudyTracker(study_name="durable", tracking_uri=f"sqlite:///{home}/mlflow.db",
                       tensorboard_dir=home / "tb", journal_dir=home / "journal")
tracker.start(hparam_domains={"learning_rate": HParamDomain("float", 1e-4, 1.0, log=True)},
              metrics=["loss"])
tracker.flush()
# The writer is held: every write after this one is still queued when the process dies.
tracker._mlflow.submit(threading.Event().wait)
for number in range(3):
    trial = tracker.start_trial(number, {"learning_rate": 0.1 * (number + 1)})
    for epoch in range(5):
        trial.log_epoch(epoch, {"loss": 1.0 / (epoch + 1 + number)})
    trial.finish("COMPLETE", value=0.5 + number)
tracker.record_trial(3, {"learning_rate": 0.01}, {"loss": [3.0, 2.0, 1.0]}, "FAIL",
                     reason="loss diverged")
with tracker.recording():  # a population batch's runs: one file
    for number in range(4, 7):
        tracker.record_trial(number, {"learning_rate": 0.001 * number},
                             {"loss": [2.0, 1.0 / number]}, "COMPLETE", value=1.0 / number)
os._exit(0)
"""


def trial_runs(uri: str, experiment_name: str) -> dict[int, list]:
    """Trial number → its MLflow runs (not deleted) in ``experiment_name``."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(experiment_name)
    runs: dict[int, list] = {}
    for run in client.search_runs([experiment.experiment_id], max_results=10_000):
        if run.data.tags.get("gdbench.role") == "trial":
            runs.setdefault(int(run.data.tags["gdbench.trial_number"]), []).append(run)
    return runs


def test_a_process_dead_with_queued_writes_leaves_whole_runs_the_next_one_writes(
        tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    from gdbench.tracking import restore_runs

    subprocess.run([sys.executable, "-c", CHILD, str(tmp_path)], check=True,
                   env=worker_environment(), capture_output=True, timeout=120)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    assert trial_runs(uri, "durable") == {}  # nothing reached the store
    entries = list((tmp_path / "journal").glob("*/*.json"))
    assert len(entries) == 5  # a file a trial, and one for the batch recorded together

    assert restore_runs(tmp_path / "journal") == 7
    assert restore_runs(tmp_path / "journal") == 0  # written once, forgotten
    assert not list((tmp_path / "journal").glob("*/*.json"))
    runs = trial_runs(uri, "durable")
    assert sorted(runs) == list(range(7)) and all(len(found) == 1 for found in runs.values())
    client = MlflowClient(tracking_uri=uri)
    parent = [run for run in client.search_runs(
        [client.get_experiment_by_name("durable").experiment_id])
        if run.data.tags.get("gdbench.role") == "parent"][0]
    for number in range(3):
        run = runs[number][0]
        assert run.info.status == "FINISHED"
        assert run.data.tags["gdbench.state"] == "COMPLETE"
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.params == {"learning_rate": str(0.1 * (number + 1))}
        assert run.data.metrics["objective"] == 0.5 + number
        history = client.get_metric_history(run.info.run_id, "loss")
        assert [(m.step, m.value) for m in history] == [
            (epoch, 1.0 / (epoch + 1 + number)) for epoch in range(5)]
    failed = runs[3][0]
    assert failed.info.status == "FAILED"
    assert failed.data.tags["gdbench.reason"] == "loss diverged"
    assert len(client.get_metric_history(failed.info.run_id, "loss")) == 3
    for number in range(4, 7):
        run = runs[number][0]
        assert run.info.status == "FINISHED" and run.data.metrics["objective"] == 1.0 / number
        assert [(m.step, m.value) for m in client.get_metric_history(
            run.info.run_id, "loss")] == [(0, 2.0), (1, 1.0 / number)]


BATCH_CHILD = r"""
import os, signal, sys, threading, time
from pathlib import Path
from gdbench.tracking import HParamDomain, StudyTracker

home = Path(sys.argv[1])
synced = []
fsync = os.fsync
def counted(fd):
    synced.append(os.readlink(f"/proc/self/fd/{fd}"))
    fsync(fd)
os.fsync = counted
tracker = StudyTracker(study_name="batch", tracking_uri=f"sqlite:///{home}/mlflow.db",
                       tensorboard_dir=home / "tb", journal_dir=home / "journal")
tracker.start(hparam_domains={"learning_rate": HParamDomain("float", 1e-4, 1.0, log=True)},
              metrics=["loss"])
tracker.flush()
# The writer writes the batch's first run, then is held before the others.
mlflow, written = tracker._mlflow, []
write_runs = mlflow.write_runs
def held(entries, file=None):
    written.extend(write_runs(entries[:1], file))
    threading.Event().wait()
mlflow.write_runs = held
with tracker.recording():
    for number in range(5):
        tracker.record_trial(number, {"learning_rate": 0.01 * (number + 1)},
                             {"loss": [1.0, 0.5 / (number + 1)]}, "COMPLETE", value=number)
while not written:
    time.sleep(0.01)
print(sum(str(home / "journal") in path for path in synced), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_batch_is_journaled_once_and_a_kill_while_its_runs_are_written_loses_none(
        tmp_path: Path) -> None:
    from gdbench.tracking import restore_runs

    child = subprocess.run([sys.executable, "-c", BATCH_CHILD, str(tmp_path)],
                           env=worker_environment(), capture_output=True, timeout=120, text=True)
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert child.stdout.split() == ["1"]  # one fsync in the journal for the five runs
    files = list((tmp_path / "journal").glob("*/*.json"))
    assert len(files) == 1 and len(json.loads(files[0].read_text())) == 5
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    assert sorted(trial_runs(uri, "batch")) == [0]  # the first run was written

    assert restore_runs(tmp_path / "journal") == 5
    assert not list((tmp_path / "journal").glob("*/*.json"))
    runs = trial_runs(uri, "batch")
    assert sorted(runs) == list(range(5)) and all(len(found) == 1 for found in runs.values())
    for number, (run,) in runs.items():
        assert run.info.status == "FINISHED" and run.data.metrics["objective"] == number
        assert run.data.params == {"learning_rate": str(0.01 * (number + 1))}


# -- gdbench run against a tracking server that stops ------------------------------------


def start_server(root: Path, port: int) -> subprocess.Popen[bytes]:
    """``mlflow server`` on a SQLite store in ``root``, at ``port``."""
    log = root / f"mlflow-{time.monotonic_ns()}.log"
    with open(log, "wb") as log_file:
        process = subprocess.Popen(
            [str(VENV_BIN / "mlflow"), "server", "--backend-store-uri",
             f"sqlite:///{root / 'server.db'}", "--artifacts-destination", str(root / "art"),
             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            stdout=log_file, stderr=subprocess.STDOUT, cwd=root, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    wait_until("mlflow server", lambda: http_ok(
        f"{uri}/api/2.0/mlflow/experiments/search?max_results=1"), process, log, timeout_s=120)
    return process


def finished_trials(home: Path, name: str) -> list[int]:
    """The numbers of the study's finished trials, read as the run writes them (none yet
    where it has not created them)."""
    states = ", ".join(f"'{state.name}'" for state in FINISHED_STATES)
    try:
        with contextlib.closing(sqlite3.connect(
                f"file:{home / 'optuna.db'}?mode=ro", uri=True, timeout=30)) as database:
            return [number for (number,) in database.execute(
                "SELECT trials.number FROM trials JOIN studies USING (study_id) "
                f"WHERE studies.study_name = ? AND trials.state IN ({states})", (name,))]
    except sqlite3.OperationalError:
        return []


def wait_for_trials(home: Path, name: str, count: int, run: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 300
    while len(finished_trials(home, name)) < count:
        assert run.poll() is None, "the run ended before its trials"
        assert time.monotonic() < deadline, f"fewer than {count} trials finished in 300 s"
        time.sleep(0.2)


def gdbench(arguments: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as log_file:
        return subprocess.Popen([sys.executable, "-m", "gdbench", *arguments],
                                stdout=log_file, stderr=subprocess.STDOUT,
                                env=worker_environment())


@pytest.mark.slow
@pytest.mark.parametrize("outage", ["paused_then_run_killed", "killed_then_ctrl_c"])
def test_finished_trials_keep_their_runs_whatever_ends_the_run(tmp_path: Path,
                                                               outage: str) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name = "durable_run"
    spec = tmp_path / "spec.toml"
    spec.write_text(TOY_SPEC.format(name=name, trials=40))
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    home = tmp_path / "home"
    arguments = ["run", str(spec), "--home", str(home), "--tracking-uri", uri, "--quiet",
                 *HEARTBEAT_ARGS]
    server = start_server(tmp_path, port)
    run = gdbench(arguments, tmp_path / "first.log")
    try:
        wait_for_trials(home, name, 2, run)
        if outage == "paused_then_run_killed":
            # Writes hang on the stopped server while trials go on; then the run dies.
            # The whole group: the server answers from a child process.
            os.killpg(server.pid, signal.SIGSTOP)
            before = len(finished_trials(home, name))
            wait_for_trials(home, name, before + 4, run)
            run.kill()
            run.wait()
            os.killpg(server.pid, signal.SIGCONT)
        else:
            # The server is gone for good: its writes retry for minutes; Ctrl-C ends the run.
            stop_process(server, signal.SIGKILL)
            before = len(finished_trials(home, name))
            wait_for_trials(home, name, before + 4, run)
            interrupted = time.monotonic()
            run.send_signal(signal.SIGINT)
            run.wait(timeout=60)
            seconds = time.monotonic() - interrupted
            output = (tmp_path / "first.log").read_text()
            assert seconds < 10, f"the run took {seconds:.1f} s to end after Ctrl-C:\n{output}"
            assert "kept in" in output and JOURNAL_FOLDER in output, output
            server = start_server(tmp_path, port)
        finished = set(finished_trials(home, name))
        missing = finished - {number for number, runs in trial_runs(uri, name).items()
                              if any(run.info.status != "RUNNING" for run in runs)}
        assert missing, "every run was written before the end: nothing tested"

        rerun = gdbench(arguments, tmp_path / "rerun.log")
        assert rerun.wait(timeout=600) == 0, (tmp_path / "rerun.log").read_text()
        output = (tmp_path / "rerun.log").read_text()
        assert "restored" in output, output
        study = optuna.load_study(study_name=name, storage=f"sqlite:///{home / 'optuna.db'}")
        runs = trial_runs(uri, name)
        for trial in study.get_trials(deepcopy=False, states=FINISHED_STATES):
            ended = [run for run in runs.get(trial.number, []) if run.info.status != "RUNNING"]
            assert len(ended) == 1, (trial.number, trial.state, runs.get(trial.number))
            assert ended[0].data.tags["gdbench.state"] == trial.state.name
            if trial.value is not None:
                assert ended[0].data.metrics["objective"] == pytest.approx(trial.value)
        assert not [run for found in runs.values() for run in found
                    if run.info.status == "RUNNING"]
        assert not list((home / JOURNAL_FOLDER).glob("*/*/*.json"))
    finally:
        for process in (run, server):
            if process.poll() is None:
                stop_process(process, signal.SIGKILL)


# -- a population batch killed after it was told, before any run was written ------------

BATCH_SPEC = """\
name = "{name}"
task = "rosenbrock"
optimizer = "gd"
epochs = 30
trials = 8
trials_per_batch = 8
sampler = "random"
pruner = "none"

[search]
learning_rate = {{low = 0.0001, high = 0.001}}
"""

KILLED_AFTER_TELLING = r"""
import json, os, signal, sys, threading
from pathlib import Path
from mlflow.tracking import MlflowClient
from gdbench.study import load_spec, run_study
from gdbench.study.trials.loop import TrialLoop

spec, home, journal = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
create_run = MlflowClient.create_run
def held(self, *args, tags=None, **kwargs):  # no trial's run reaches the store
    if (tags or {}).get("gdbench.role") == "trial":
        threading.Event().wait()
    return create_run(self, *args, tags=tags, **kwargs)
MlflowClient.create_run = held
tell_all = TrialLoop.tell_all
def tell_then_die(self, outcomes):
    files = sorted(journal.glob("*/*.json"))
    print(json.dumps([len(json.loads(path.read_text())) for path in files]), flush=True)
    tell_all(self, outcomes)
    os.kill(os.getpid(), signal.SIGKILL)
TrialLoop.tell_all = tell_then_die
run_study(load_spec(spec), home=home, quiet=True)
"""


@pytest.mark.slow
def test_a_population_batch_told_then_killed_keeps_its_runs(tmp_path: Path) -> None:
    from gdbench.tracking import restore_runs

    name = "killed_batch"
    spec = tmp_path / "spec.toml"
    spec.write_text(BATCH_SPEC.format(name=name))
    home = tmp_path / "home"
    journal = home / JOURNAL_FOLDER / name
    child = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_TELLING, str(spec), str(home), str(journal)],
        env=worker_environment(), capture_output=True, timeout=300, text=True)
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert json.loads(child.stdout.splitlines()[-1]) == [8]  # one file, before the telling
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{home / 'optuna.db'}")
    finished = study.get_trials(deepcopy=False, states=FINISHED_STATES)
    assert len(finished) == 8
    uri = f"sqlite:///{home / 'mlflow.db'}"
    assert trial_runs(uri, name) == {}

    assert restore_runs(journal) == 8
    runs = trial_runs(uri, name)
    for trial in finished:
        (run,) = runs[trial.number]
        assert run.info.status != "RUNNING"
        assert run.data.tags["gdbench.state"] == trial.state.name
        if trial.value is not None:
            assert run.data.metrics["objective"] == pytest.approx(trial.value)
    assert not list(journal.glob("*/*.json"))
