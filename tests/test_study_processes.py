"""Real ``gdbench`` processes on one study: concurrent runs, SIGKILL, SIGINT, on SQLite and PostgreSQL.

What must hold whatever happens: every process exits 0 (130 when interrupted),
the study ends with exactly its budget of counted trials, none of which failed
because another process existed or was stopped, and no MLflow run is left
RUNNING.
"""

from __future__ import annotations

import collections
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import optuna
import pytest
import servers
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from gdbench.study.keys import FAIL_REASON_ATTR, STALE_REASON, interrupted_reason
from gdbench.study.trials.storage import counted_trials

pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning")]

#: Trials of a second or so each, trained one by one: long enough to be caught mid-trial.
SINGLE_SPEC = """\
name = "{name}"
task = "sigmoid_neuron"
optimizer = "gd"
epochs = 150
trials = {trials}
sampler = "random"
pruner = "none"
population = false
"""

#: Population batches of several seconds: long enough to be interrupted mid-batch.
BATCH_SPEC = """\
name = "{name}"
task = "sigmoid_neuron"
optimizers = ["gd", "adam"]
epochs = 20000
trials = {trials}
trials_per_batch = 24
sampler = "random"
"""

HEARTBEAT = ["--heartbeat-interval", "1", "--grace-period", "4"]


class Place:
    """A study's storage and MLflow store: a fresh SQLite HOME, or the PostgreSQL stack."""

    def __init__(self, kind: str, root: Path, stack: servers.Stack | None) -> None:
        self.kind = kind
        self.root = root
        self.home = root / "home"
        self._storage: optuna.storages.RDBStorage | None = None
        if stack is None:
            self.storage = f"sqlite:///{self.home / 'optuna.db'}"
            self.tracking_uri = f"sqlite:///{self.home / 'mlflow.db'}"
            self.extra: list[str] = []
        else:
            self.storage, self.tracking_uri = stack.postgres_url, stack.mlflow_uri
            self.extra = ["--storage", stack.postgres_url, "--tracking-uri", stack.mlflow_uri]

    def spec(self, template: str, name: str, trials: int) -> Path:
        path = self.root / f"{name}.toml"
        path.write_text(template.format(name=f"{name}_{self.kind}", trials=trials))
        return path

    def start(self, arguments: list[str], log: str) -> subprocess.Popen[bytes]:
        with open(self.root / log, "wb") as output:
            return subprocess.Popen(
                [sys.executable, "-m", "gdbench", *arguments, "--home", str(self.home),
                 *self.extra, *(HEARTBEAT if arguments[0] != "create" else [])],
                stdout=output, stderr=subprocess.STDOUT, cwd=self.root,
                env=servers.worker_environment())

    def run(self, spec: Path, log: str) -> subprocess.Popen[bytes]:
        return self.start(["run", str(spec), "--quiet"], log)

    def log(self, name: str) -> str:
        return (self.root / name).read_text(errors="replace")

    def study(self, spec: Path) -> optuna.Study | None:
        name = spec.read_text().split('"')[1]
        # One PostgreSQL storage for every look: a storage per look would keep a connection
        # pool each, and a long test session would use up the server's connections.
        if self._storage is None and not self.storage.startswith("sqlite"):
            self._storage = optuna.storages.RDBStorage(self.storage)
        try:
            return optuna.load_study(study_name=name, storage=self._storage or self.storage)
        except KeyError:
            return None

    def wait_for(self, spec: Path, what: str, ready: Callable[[optuna.Study], bool],
                 timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                study = self.study(spec)
                if study is not None and ready(study):
                    return
            except Exception:  # noqa: BLE001 - a database still being created
                pass
            time.sleep(0.1)
        logs = "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
                         for path in sorted(self.root.iterdir())
                         if path.is_file() and path.suffix == "")
        raise AssertionError(f"timed out waiting for {what}; the processes' output:\n{logs}")

    def finish(self, processes: dict[str, subprocess.Popen[bytes]], timeout_s: float = 300
               ) -> None:
        for log, process in processes.items():
            try:
                status = process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                raise AssertionError(f"{log} hung:\n{self.log(log)}") from None
            assert status == 0, f"{log} exited {status}:\n{self.log(log)}"

    def check(self, spec: Path, budget: int) -> optuna.Study:
        """The study holds its budget, no counted trial failed, no run is left RUNNING."""
        study = self.study(spec)
        assert study is not None
        counted = counted_trials(study)
        assert len(counted) == budget
        assert [t.number for t in counted if t.state == TrialState.FAIL] == []
        assert not [t for t in study.trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
        client = MlflowClient(self.tracking_uri)
        experiment = client.get_experiment_by_name(study.study_name)
        runs = client.search_runs([experiment.experiment_id], max_results=5000)
        children = [run for run in runs if "mlflow.parentRunId" in run.data.tags]
        per_trial = collections.Counter(int(run.data.tags["gdbench.trial_number"])
                                        for run in children)
        assert per_trial == {trial.number: 1 for trial in study.trials
                             if trial.state.is_finished()}
        assert [run.info.run_id for run in runs if run.info.status == "RUNNING"] == []
        return study


@pytest.fixture(params=["sqlite", "postgresql"])
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Place:
    stack = servers.shared_stack(request) if request.param == "postgresql" else None
    return Place(request.param, tmp_path, stack)


def running(study: optuna.Study) -> bool:
    return any(t.state == TrialState.RUNNING for t in study.get_trials(deepcopy=False))


def kill_mid_trial(place: Place, spec: Path, process: subprocess.Popen[bytes],
                   timeout_s: float = 120) -> None:
    """SIGKILL ``process`` while the store holds its second (or later) trial as running.

    A trial can end between a look at the store and the kill, so the process
    is frozen first (SIGSTOP) and killed only where the store, which a frozen
    process cannot change, still shows a trial running; otherwise it goes on
    (SIGCONT) and the test looks again.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        place.wait_for(spec, "a second trial running",
                       lambda study: running(study) and len(study.trials) >= 2)
        process.send_signal(signal.SIGSTOP)
        study = place.study(spec)
        if study is not None and running(study):
            process.kill()
            process.wait()
            return
        process.send_signal(signal.SIGCONT)
    raise AssertionError(f"no trial was caught running:\n{place.log('first')}")


def test_two_runs_started_together_share_the_budget(place: Place) -> None:
    spec = place.spec(SINGLE_SPEC, "together", 8)
    place.finish({"first": place.run(spec, "first"), "second": place.run(spec, "second")})
    study = place.check(spec, 8)
    assert not [t for t in study.trials if t.state == TrialState.FAIL]


def test_a_second_run_started_mid_trial_takes_nothing_from_the_first(place: Place) -> None:
    spec = place.spec(SINGLE_SPEC, "staggered", 8)
    first = place.run(spec, "first")
    place.wait_for(spec, "a running trial", running)
    second = place.run(spec, "second")
    place.finish({"first": first, "second": second})
    study = place.check(spec, 8)
    assert not [t for t in study.trials if t.state == TrialState.FAIL]


def test_a_killed_run_leaves_its_trial_to_be_run_again(place: Place) -> None:
    spec = place.spec(SINGLE_SPEC, "killed", 5)
    first = place.run(spec, "first")
    kill_mid_trial(place, spec, first)
    place.finish({"rerun": place.run(spec, "rerun")})
    study = place.check(spec, 5)
    (dead,) = [t for t in study.trials if t.state == TrialState.FAIL]
    assert dead.user_attrs[FAIL_REASON_ATTR] == STALE_REASON  # failed by the heartbeat check
    (retry,) = [t for t in study.trials if dead.number in t.system_attrs.get("retry_history", ())]
    assert retry.params == dead.params and retry.state == TrialState.COMPLETE
    assert sum(t.state == TrialState.COMPLETE for t in study.trials) == 5


def test_ctrl_c_during_a_batch_queues_it_again(place: Place) -> None:
    spec = place.spec(BATCH_SPEC, "batch", 48)
    first = place.run(spec, "first")
    # At once: a batch's trials are created running, and train within a second.
    place.wait_for(spec, "a batch running", running, timeout_s=180)
    first.send_signal(signal.SIGINT)
    started = time.monotonic()
    status = first.wait(timeout=60)
    assert time.monotonic() - started < 5, place.log("first")
    assert status == 130, place.log("first")
    lines = [line for line in place.log("first").splitlines() if line.startswith("gdbench:")]
    assert lines[-1].endswith("rerun the same command to resume") and "queued" in lines[-1]
    study = place.study(spec)
    interrupted = [t for t in study.trials if t.state == TrialState.FAIL]
    assert interrupted, "the interrupt came after the batch"
    assert {t.user_attrs[FAIL_REASON_ATTR] for t in interrupted} == {interrupted_reason("SIGINT")}
    place.finish({"rerun": place.run(spec, "rerun")})
    study = place.check(spec, 48)
    assert all(t.state == TrialState.COMPLETE for t in counted_trials(study))


def test_a_worker_stopped_by_sigterm_mid_batch_leaves_its_trials_to_the_next(
        request: pytest.FixtureRequest, tmp_path: Path) -> None:
    place = Place("postgresql", tmp_path, servers.shared_stack(request))
    spec = place.spec(BATCH_SPEC, "worker_batch", 48)
    place.finish({"create": place.start(["create", str(spec)], "create")})
    worker = place.start(["worker", str(spec)], "worker")
    # At once: a batch's trials are created running, and train within a second.
    place.wait_for(spec, "a batch running", running, timeout_s=180)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 130, place.log("worker")
    study = place.study(spec)
    reasons = {t.user_attrs.get(FAIL_REASON_ATTR) for t in study.trials
               if t.state == TrialState.FAIL}
    assert reasons == {interrupted_reason("SIGTERM")}
    place.finish({"again": place.start(["worker", str(spec)], "again")})
    place.check(spec, 48)

