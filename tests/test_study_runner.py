"""The study runner: failed trials, resuming, trackers, memory."""

from __future__ import annotations

import collections
import math
import time
from pathlib import Path

import optuna
import pytest
from board_files import session_hparams, session_status
from optuna.trial import TrialState

from gdbench.study import Interrupted, leaderboard, load_spec, run_study
from gdbench.study.keys import FAIL_REASON_ATTR, STALE_REASON, interrupted_reason
from gdbench.study.trials.storage import (
    DEFAULT_GRACE_PERIOD_S,
    DEFAULT_HEARTBEAT_INTERVAL_S,
    StaleTrials,
    open_storage,
)
from gdbench.study.trials.claiming import Claimer
from gdbench.tracking import StudyTracker, TrialTracker


def write(tmp_path: Path, text: str, name: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def mlflow_runs(home: Path, study_name: str) -> tuple[list, list]:
    """(parent runs, child runs) of ``study_name`` in ``home``'s MLflow store."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(study_name)
    runs = client.search_runs([experiment.experiment_id], max_results=10_000)
    parents = [run for run in runs if run.data.tags.get("gdbench.role") == "parent"]
    children = [run for run in runs if "mlflow.parentRunId" in run.data.tags]
    return parents, children


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One home for the module: the MLflow store is created (seconds) only once."""
    return tmp_path_factory.mktemp("home")


@pytest.mark.parametrize("population", [True, False], ids=["population", "one_by_one"])
def test_diverging_trial_fails_with_a_reason_and_the_study_goes_on(
    tmp_path: Path, home: Path, population: bool
) -> None:
    name = f"diverge_{'population' if population else 'single'}"
    spec = load_spec(write(tmp_path, f"""
task = "rosenbrock"
optimizer = "gd"
epochs = 30
trials = 2
sampler = "grid"
population = {str(population).lower()}
[search]
learning_rate = {{choices = [1e-4, 100.0]}}
""", name))
    study = run_study(spec, home=home, quiet=True)

    trials = {trial.params["learning_rate"]: trial for trial in study.trials}
    assert sorted(trials) == [1e-4, 100.0]
    failed, complete = trials[100.0], trials[1e-4]
    assert failed.state == TrialState.FAIL
    assert failed.value is None
    assert "diverged" in failed.user_attrs[FAIL_REASON_ATTR]
    assert complete.state == TrialState.COMPLETE and math.isfinite(complete.value)

    rows = leaderboard(study)
    assert [row["state"] for row in rows] == ["COMPLETE", "FAIL"]
    assert "diverged" in rows[1]["reason"]

    parents, children = mlflow_runs(home, name)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    by_number = {int(run.data.tags["gdbench.trial_number"]): run for run in children}
    assert sorted(by_number) == [0, 1]
    failed_run = by_number[failed.number]
    assert failed_run.info.status == "FAILED"
    assert "diverged" in failed_run.data.tags["gdbench.reason"]
    assert failed_run.data.tags["gdbench.state"] == "FAIL"
    assert "objective" not in failed_run.data.metrics
    assert by_number[complete.number].info.status == "FINISHED"
    assert by_number[complete.number].data.metrics["objective"] == pytest.approx(complete.value)


@pytest.mark.parametrize("population", [True, False], ids=["population", "one_by_one"])
def test_interrupted_trials_are_queued_again_and_the_budget_is_met(
        tmp_path: Path, population: bool) -> None:
    home = tmp_path / "home"
    spec = load_spec(write(tmp_path, f"""
task = "sigmoid_neuron"
optimizers = ["gd", "adam"]
epochs = 20
trials = 12
trials_per_batch = 4
population = {str(population).lower()}
""", "resume"))
    told = []

    def interrupt_after_five(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        told.append(trial.number)
        if len(told) == 5:
            raise Interrupted("SIGTERM")

    with pytest.raises(KeyboardInterrupt):
        run_study(spec, home=home, quiet=True, callbacks=[interrupt_after_five])
    storage = f"sqlite:///{home / 'optuna.db'}"
    first = optuna.load_study(study_name="resume", storage=storage).trials
    # A batch: five told, the three claimed with the fifth failed and queued again.
    # One by one: the interrupt comes as the fifth is told, so nothing else was claimed.
    interrupted = [t for t in first if t.state == TrialState.FAIL]
    assert len(interrupted) == (3 if population else 0)
    reason = interrupted_reason("SIGTERM")
    assert all(t.user_attrs[FAIL_REASON_ATTR] == reason for t in interrupted)
    waiting = [t for t in first if t.state == TrialState.WAITING]
    assert sorted(t.system_attrs["retry_history"][-1] for t in waiting) == [
        t.number for t in interrupted]
    assert [t.params for t in waiting] == [t.params for t in interrupted]
    # A retry starts clean, linked to the trial it replaces.
    assert all(t.user_attrs == {} for t in waiting)
    assert sorted(t.system_attrs["failed_trial"] for t in waiting) == [
        t.number for t in interrupted]
    assert run_study_parent_status(home, "resume") == "KILLED"

    study = run_study(spec, home=home, quiet=True)
    counted = [row["trial"] for row in leaderboard(study)]
    assert len(counted) == 12
    # One by one, the median pruner may prune a trial; none fails.
    ends = {TrialState.COMPLETE} if population else {TrialState.COMPLETE, TrialState.PRUNED}
    assert {study.trials[n].state for n in counted} <= ends
    assert not {t.number for t in interrupted} & set(counted)
    # The comparison stays balanced: both optimizers got their half.
    assert collections.Counter(study.trials[n].params["optimizer"] for n in counted) == {
        "gd": 6, "adam": 6}
    # Every trial with intermediate values, as reported to Optuna.
    assert all(study.trials[n].intermediate_values for n in counted)
    # A retry that finished says nothing of the trial it replaces but the link.
    retries = [t for t in study.trials if "failed_trial" in t.system_attrs]
    assert len(retries) == len(interrupted)
    assert not [t for t in retries if FAIL_REASON_ATTR in t.user_attrs]

    parents, children = mlflow_runs(home, "resume")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    by_trial = {int(run.data.tags["gdbench.trial_number"]): run for run in children}
    assert len(by_trial) == len(children) == len(study.trials)
    mlflow_status = {TrialState.COMPLETE: "FINISHED", TrialState.PRUNED: "KILLED"}
    for number in counted:
        trial, run = study.trials[number], by_trial[number]
        assert run.info.status == mlflow_status[trial.state]
        assert run.data.tags["gdbench.state"] == trial.state.name
    for trial in interrupted:
        run = by_trial[trial.number]
        assert run.info.status == "FAILED"
        assert run.data.tags["gdbench.reason"] == reason
        assert run.data.tags["gdbench.state"] == "FAIL"


@pytest.mark.parametrize("population", [True, False], ids=["population", "one_by_one"])
def test_an_interrupt_as_a_trial_ends_in_the_trackers_tells_optuna_what_they_were_told(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, population: bool) -> None:
    home = tmp_path / "home"
    spec = load_spec(write(tmp_path, f"""
task = "sigmoid_neuron"
optimizer = "gd"
epochs = 20
trials = 6
trials_per_batch = 6
sampler = "random"
pruner = "none"
population = {str(population).lower()}
""", "ending"))
    # The third trial's run is ended (journaled, queued) in the trackers, then the
    # signal lands, before Optuna is told.
    owner, name = (StudyTracker, "record_trial") if population else (TrialTracker, "finish")
    original = getattr(owner, name)
    ended = []

    def end_then_interrupt(self: object, *args: object, **kwargs: object) -> object:
        result = original(self, *args, **kwargs)
        ended.append(True)
        if len(ended) == 3:
            raise Interrupted("SIGINT")
        return result

    monkeypatch.setattr(owner, name, end_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_study(spec, home=home, quiet=True)
    monkeypatch.undo()
    trials = optuna.load_study(study_name="ending", storage=f"sqlite:///{home / 'optuna.db'}"
                               ).trials
    _, children = mlflow_runs(home, "ending")
    runs = {int(run.data.tags["gdbench.trial_number"]): run for run in children}
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 3
    for trial in trials:
        if trial.state.is_finished():
            assert runs[trial.number].data.tags["gdbench.state"] == trial.state.name


def run_study_parent_status(home: Path, name: str) -> str:
    parents, _ = mlflow_runs(home, name)
    (parent,) = parents
    return parent.info.status


@pytest.mark.timeout(120)
@pytest.mark.parametrize("beat", [True, False], ids=["heartbeat_stopped", "never_beat"])
def test_a_trial_whose_heartbeat_expired_is_failed_and_run_again(tmp_path: Path,
                                                                 beat: bool) -> None:
    home = tmp_path / "home"
    spec = load_spec(write(tmp_path, """
task = "sigmoid_neuron"
optimizer = "gd"
epochs = 5
trials = 3
""", "stale"))
    run_study(spec, home=home, quiet=True, trials=1)
    storage = optuna.storages.RDBStorage(f"sqlite:///{home / 'optuna.db'}",
                                         heartbeat_interval=1, grace_period=2)
    study = optuna.load_study(study_name="stale", storage=storage)
    dead = study.ask()  # as a killed process leaves it: RUNNING, its heartbeat stopped
    dead.suggest_float("learning_rate", 1e-3, 10.0, log=True)
    if beat:
        storage.record_heartbeat(dead._trial_id)
        time.sleep(2.5)
    # Else its process ended before its first heartbeat (a full disk): with none at
    # all, Optuna would never take it for dead, and the run would wait for it for ever.

    study = run_study(spec, home=home, quiet=True, heartbeat_interval=1, grace_period=2)
    rows = leaderboard(study)
    assert len(rows) == 3 and all(row["state"] == "COMPLETE" for row in rows)
    failed = study.trials[dead.number]
    assert failed.state == TrialState.FAIL
    assert failed.user_attrs[FAIL_REASON_ATTR] == STALE_REASON
    retry = [t for t in study.trials if dead.number in t.system_attrs.get("retry_history", ())]
    assert len(retry) == 1 and retry[0].params == failed.params
    assert FAIL_REASON_ATTR not in retry[0].user_attrs
    _, children = mlflow_runs(home, "stale")
    by_trial = {int(run.data.tags["gdbench.trial_number"]): run for run in children}
    assert by_trial[dead.number].info.status == "FAILED"
    assert by_trial[dead.number].data.tags["gdbench.reason"] == STALE_REASON
    assert not [run for run in children if run.info.status == "RUNNING"]


@pytest.mark.slow
def test_workers_share_one_study_parent_run_and_budget(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, """
task = "sigmoid_neuron"
optimizers = ["gd", "adam"]
epochs = 10
trials = 8
trials_per_batch = 2
""", "workers"))
    home = tmp_path / "home"
    study = run_study(spec, home=home, quiet=True, workers=2)

    assert len(study.trials) == 8
    assert all(trial.state.is_finished() for trial in study.trials)
    parents, children = mlflow_runs(home, "workers")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    per_trial = collections.Counter(int(run.data.tags["gdbench.trial_number"]) for run in children)
    assert per_trial == {number: 1 for number in range(8)}
    assert (home / "reports" / "workers" / "leaderboard.csv").is_file()


@pytest.mark.parametrize("population", [True, False], ids=["population", "one_by_one"])
def test_every_end_of_an_image_trial_reads_the_same_in_optuna_mlflow_and_tensorboard(
        tmp_path: Path, population: bool) -> None:
    home = tmp_path / "home"
    # A population's trials are compared with those of the batches before: batches of two.
    spec = load_spec(write(tmp_path, f"""
task = {{name = "digits_mlp", subset = 256, validation_size = 64, test_size = 64}}
optimizer = "gd"
epochs = 4
batch_size = 64
trials = 8
population = {str(population).lower()}
trials_per_batch = 2
sampler = {{name = "random", seed = 3}}
pruner = {{name = "median", n_startup_trials = 2, n_warmup_steps = 0}}

[search]
learning_rate = {{low = 1e-4, high = 3.0}}
""", "ends"))
    study = run_study(spec, home=home, quiet=True)
    states = collections.Counter(t.state for t in study.trials)
    assert states[TrialState.PRUNED] >= 1 and states[TrialState.COMPLETE] >= 2, states
    _, children = mlflow_runs(home, "ends")
    runs = {int(run.data.tags["gdbench.trial_number"]): run for run in children}
    mlflow_status = {TrialState.COMPLETE: "FINISHED", TrialState.PRUNED: "KILLED",
                     TrialState.FAIL: "FAILED"}
    board = home / "tensorboard" / "ends"
    for trial in study.trials:
        run = runs[trial.number]
        assert run.info.status == mlflow_status[trial.state]
        assert run.data.tags["gdbench.state"] == trial.state.name
        expected = "STATUS_SUCCESS" if trial.state == TrialState.COMPLETE else "STATUS_FAILURE"
        assert session_status(board / run.data.tags["gdbench.tensorboard_run"]) == expected
        # One intermediate value per epoch run, as MLflow's curve of the objective.
        epochs = trial.user_attrs["epochs_run"]
        assert sorted(trial.intermediate_values) == list(range(epochs))
        if trial.state == TrialState.PRUNED:
            assert epochs < 4
            assert run.data.tags["gdbench.reason"] == trial.user_attrs["prune_reason"]
        if trial.state == TrialState.COMPLETE:
            assert trial.value == trial.intermediate_values[3]
            assert run.data.metrics["objective"] == pytest.approx(trial.value)


@pytest.mark.parametrize("population", [True, False], ids=["population", "one_by_one"])
def test_a_trial_shows_one_name_per_value_in_optuna_mlflow_and_tensorboard(
        tmp_path: Path, home: Path, population: bool) -> None:
    from gdbench.study.plan.build import parameter_spaces

    name = f"names_{'population' if population else 'single'}"
    spec = load_spec(write(tmp_path, f"""
task = "sigmoid_neuron"
epochs = 5
trials = 12
population = {str(population).lower()}
trials_per_batch = 6
sampler = {{name = "tpe", n_startup_trials = 6}}
schedules = ["step_decay", "exponential"]
[[optimizers]]
name = "adam"
beta_2 = {{low = 0.99, high = 0.9999}}
[[optimizers]]
name = "gd"
[[optimizers]]
name = "adadelta"
rho = {{low = 0.8, high = 0.99}}
""", name))
    study = run_study(spec, home=home, quiet=True)
    searched = {label: {prefix + key for key, domain in space.items() if domain.searched}
                for label, prefix, space in parameter_spaces(spec)}
    _, children = mlflow_runs(home, name)
    runs = {int(run.data.tags["gdbench.trial_number"]): run.data.params for run in children}
    sessions = {int(run.data.tags["gdbench.trial_number"]): run.data.tags["gdbench.tensorboard_run"]
                for run in children}
    board = home / "tensorboard" / name
    assert len(study.trials) == 12
    for trial in study.trials:
        params = trial.params
        optimizer, schedule = params["optimizer"], params["schedule"]
        assert set(params) == {"optimizer", "schedule"} | searched[optimizer] | searched[schedule]
        mlflow = runs[trial.number]
        tensorboard = session_hparams(board / sessions[trial.number])
        # TensorBoard also has the study, and a value for every hyperparameter of the
        # experiment (the one that switches it off where this trial's optimizer has none).
        assert set(tensorboard) >= set(mlflow) >= set(params)
        assert tensorboard["study"] == name
        # What only the trackers show is what this trial did not search: the task, fixed values.
        for extra in set(mlflow) - set(params):
            assert all(extra not in names for names in searched.values()), extra
        for key, value in params.items():
            if isinstance(value, str):
                assert mlflow[key] == tensorboard[key] == value, key
            else:
                assert float(mlflow[key]) == pytest.approx(value) == tensorboard[key], key
        assert "beta_2" in params if optimizer == "adam" else "beta_2" not in params
        if optimizer == "adam":
            assert 0.99 <= params["beta_2"] <= 0.9999
            assert 0.5 <= params["beta_1"] <= 0.99
        if optimizer == "adadelta":
            assert 0.8 <= params["rho"] <= 0.99
    assert {key for trial in study.trials for key in trial.params} == {
        "optimizer", "schedule", "learning_rate", "beta_1", "beta_2", "epsilon", "rho",
        "schedule.drop", "schedule.steps_per_drop", "schedule.decay_rate"}


def test_a_study_stored_under_the_older_prefixed_names_still_reports(tmp_path: Path) -> None:
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    from gdbench.study import write_report
    from gdbench.study.keys import HYPERPARAMETERS_ATTR

    # Before Optuna shared the trackers' names it stored adam.learning_rate and
    # adam.one_minus_beta_2 (1 − β); the trials' own record held the tracked names.
    study = optuna.create_study()
    for number, (rate, one_minus) in enumerate([(1e-3, 1e-3), (1e-2, 1e-2), (3e-2, 5e-2)]):
        study.add_trial(optuna.trial.create_trial(
            params={"optimizer": "adam", "adam.learning_rate": rate,
                    "adam.one_minus_beta_2": one_minus},
            distributions={"optimizer": CategoricalDistribution(["adam", "gd"]),
                           "adam.learning_rate": FloatDistribution(1e-4, 0.1, log=True),
                           "adam.one_minus_beta_2": FloatDistribution(1e-4, 0.1, log=True)},
            value=float(number), intermediate_values={0: float(number)},
            user_attrs={HYPERPARAMETERS_ATTR: {"optimizer": "adam", "learning_rate": rate,
                                               "beta_2": 1 - one_minus, "schedule": "none"}}))
    rows = leaderboard(study)
    assert [row["beta_2"] for row in rows] == pytest.approx([0.999, 0.99, 0.95])
    assert not any(key.startswith(("adam.", "one_minus")) for row in rows for key in row)
    written = write_report(study, tmp_path / "report")
    assert tmp_path / "report" / "leaderboard.csv" in written


def test_a_trial_found_dead_gets_its_reason_and_is_queued_again_once(tmp_path: Path) -> None:
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}")
    study = optuna.create_study(study_name="dead", storage=storage)
    stale = StaleTrials()
    first = study.ask()
    first.suggest_float("learning_rate", 1e-3, 1.0, log=True)
    storage.set_trial_state_values(first._trial_id, TrialState.FAIL)
    stale(study, storage.get_trial(first._trial_id))
    retry = study.trials[-1]
    assert study.trials[first.number].user_attrs == {FAIL_REASON_ATTR: STALE_REASON}
    assert retry.state == TrialState.WAITING and retry.user_attrs == {}
    assert retry.system_attrs["failed_trial"] == first.number
    assert retry.params == first.params

    again = study.ask({"learning_rate": optuna.distributions.FloatDistribution(1e-3, 1.0, log=True)})
    storage.set_trial_system_attr(again._trial_id, "retry_history", [first.number])
    storage.set_trial_state_values(again._trial_id, TrialState.FAIL)
    stale(study, storage.get_trial(again._trial_id))
    assert study.trials[again.number].user_attrs[FAIL_REASON_ATTR] == (
        "its process stopped (heartbeat lost) 2 times; not queued again")
    assert len(study.trials) == again.number + 1  # nothing queued
    assert [t.number for t in stale.take()] == [first.number, again.number]


def test_a_trial_is_taken_for_dead_only_once_its_heartbeat_is_older_than_the_grace_period(
        tmp_path: Path) -> None:
    stale = StaleTrials()
    rdb = open_storage(f"sqlite:///{tmp_path / 'optuna.db'}", heartbeat_interval=1,
                       grace_period=3, on_stale=stale)
    study = optuna.create_study(study_name="beats", storage=rdb)
    claimer = Claimer(study, rdb, lambda count: [], heartbeat_interval=1)
    trial = study.ask()
    rdb.record_heartbeat(trial._trial_id)
    # SQLite keeps a heartbeat to the second: the ages below are known to within one.
    time.sleep(1.2)
    claimer.claim(1)
    assert study.trials[trial.number].state == TrialState.RUNNING and not stale.take()
    time.sleep(3.3)
    claimer.claim(1)
    assert study.trials[trial.number].state == TrialState.FAIL
    assert [t.number for t in stale.take()] == [trial.number]


def test_the_default_grace_period_is_the_documented_one_and_outlasts_missed_beats() -> None:
    running = (Path(__file__).resolve().parent.parent / "docs" / "running.md").read_text(
        encoding="utf-8")
    assert f"every {DEFAULT_HEARTBEAT_INTERVAL_S} s" in running
    assert f"once a heartbeat is {DEFAULT_GRACE_PERIOD_S} s old" in running
    # A process busy for a few beats (a long epoch, a slow storage) is not taken for dead.
    assert DEFAULT_GRACE_PERIOD_S >= 5 * DEFAULT_HEARTBEAT_INTERVAL_S
