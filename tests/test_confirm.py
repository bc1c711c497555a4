"""Confirming a study's winners over seeds: reruns, their tracking, statistics, the report."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import optuna
import pytest
from board_files import session_hparams
from optuna.trial import TrialState

from gdbench import cli
from gdbench.study import SpecError, load_spec, run_study
from gdbench.study.compare import confirm as confirming
from gdbench.study.compare.stats import summarize
from gdbench.study.keys import REUSED_ATTR, SETUP_ATTR
from gdbench.study.plan.build import TrialSetup
from gdbench.study.report.confirmed import confirmed, format_confirmed
from gdbench.study.spec.model import ConfirmSpec

SEEDS = 3


def write(tmp_path: Path, text: str, name: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def mlflow_runs(home: Path, experiment_name: str) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(experiment_name)
    return client.search_runs([experiment.experiment_id], max_results=10_000)


def expected_best(study: optuna.Study) -> dict[tuple[str, str], optuna.trial.FrozenTrial]:
    """The best complete trial of each optimizer × schedule, found from the trials' setups."""
    best: dict[tuple[str, str], optuna.trial.FrozenTrial] = {}
    for trial in study.get_trials(states=(TrialState.COMPLETE,)):
        setup = TrialSetup.from_json(trial.user_attrs[SETUP_ATTR])
        key = (setup.optimizer_label, setup.tracked_schedule)
        if key not in best or trial.value < best[key].value:
            best[key] = trial
    return best


def bootstrap(values: np.ndarray) -> tuple[float, float]:
    """The documented interval, computed here again: 10 000 resamples, seed 0, 2.5–97.5 %."""
    draws = np.random.default_rng(0).integers(0, len(values), size=(10_000, len(values)))
    means = values[draws].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


# -- the spec key ----------------------------------------------------------------------


@pytest.mark.parametrize(("text", "field", "word"), [
    ("confirm = {seeds = 1}", "confirm.seeds", ">= 2"),
    ("confirm = {seeds = 2.5}", "confirm.seeds", "integer"),
    ("confirm = {seed = 3}", "confirm.seed", "did you mean 'seeds'"),
    ("confirm = 3", "confirm", "table"),
], ids=["one_seed", "float", "misspelt", "not_a_table"])
def test_a_bad_confirm_key_names_its_field(tmp_path: Path, text: str, field: str,
                                           word: str) -> None:
    path = write(tmp_path, f'task = "sigmoid_neuron"\noptimizer = "gd"\n{text}\n', "broken")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{path}: {field}: ")
    assert word in str(caught.value)


def test_the_confirm_key_reads_its_seeds(tmp_path: Path) -> None:
    base = 'task = "sigmoid_neuron"\noptimizer = "gd"\n'
    assert load_spec(write(tmp_path, base, "none")).confirm is None
    assert load_spec(write(tmp_path, base + "confirm = {}\n", "empty")).confirm == ConfirmSpec(10)
    assert load_spec(write(tmp_path, base + "confirm = {seeds = 4}\n", "four")).confirm == \
        ConfirmSpec(4)


# -- a toy study on seeded data --------------------------------------------------------------


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, optuna.Study]:
    """A study of 2 optimizers × 2 schedules on seeded data, confirmed over 3 seeds."""
    home = tmp_path_factory.mktemp("home")
    name = "confirm_toy"
    spec = load_spec(write(home, f"""
task = "linear_regression"
batch_size = 10
epochs = 15
trials = 8
optimizers = ["gd", "adam"]
schedules = ["constant", "exponential"]
confirm = {{seeds = {SEEDS}}}
""", name))
    return home, name, run_study(spec, home=home, quiet=True)


def test_confirm_reruns_each_branch_best_over_every_seed(toy) -> None:
    home, name, study = toy
    best = expected_best(study)
    assert len(best) == 4
    companion = optuna.load_study(study_name=f"{name}.confirm",
                                  storage=f"sqlite:///{home / 'optuna.db'}")
    reruns = companion.get_trials()
    assert all(trial.state == TrialState.COMPLETE for trial in reruns)
    pairs = sorted((t.user_attrs["source_trial"], t.user_attrs["seed"]) for t in reruns)
    assert pairs == sorted((trial.number, seed) for trial in best.values()
                           for seed in range(SEEDS))
    for trial in reruns:
        source = best[(trial.user_attrs["optimizer"], trial.user_attrs["schedule"])]
        assert trial.user_attrs["source_trial"] == source.number
        assert trial.value == trial.user_attrs["curves"]["loss"][-1]
        assert len(trial.user_attrs["curves"]["loss"]) == 15
        assert "initial" not in trial.user_attrs  # linear_regression evaluates after epochs only
        if trial.user_attrs["seed"] == 0:
            # The study's own seed: the rerun is the trial again, to the last bit.
            assert trial.value == pytest.approx(source.value, rel=1e-12)
    for source in best.values():
        values = {t.value for t in reruns if t.user_attrs["source_trial"] == source.number}
        assert len(values) == SEEDS  # the data differ from seed to seed


def test_confirm_runs_are_tracked_under_the_confirm_run(toy) -> None:
    home, name, _ = toy
    runs = mlflow_runs(home, name)
    (parent,) = [r for r in runs if r.data.tags.get("gdbench.study") == name
                 and r.data.tags.get("gdbench.role") == "parent"]
    (confirm_run,) = [r for r in runs if r.data.tags.get("gdbench.study") == f"{name}.confirm"
                      and r.data.tags.get("gdbench.role") == "parent"]
    assert confirm_run.data.tags["mlflow.parentRunId"] == parent.info.run_id
    trial_names = {int(r.data.tags["gdbench.trial_number"]): r.info.run_name for r in runs
                   if r.data.tags.get("gdbench.study") == name
                   and r.data.tags.get("gdbench.role") == "trial"}
    reruns = [r for r in runs if r.data.tags.get("gdbench.study") == f"{name}.confirm"
              and r.data.tags.get("gdbench.role") == "trial"]
    assert len(reruns) == 4 * SEEDS
    companion = {t.number: t for t in optuna.load_study(
        study_name=f"{name}.confirm", storage=f"sqlite:///{home / 'optuna.db'}").trials}
    for run in reruns:
        tags = run.data.tags
        trial = companion[int(tags["gdbench.trial_number"])]
        assert tags["mlflow.parentRunId"] == confirm_run.info.run_id
        assert tags["gdbench.confirm"] == "true"
        assert int(tags["gdbench.seed"]) == trial.user_attrs["seed"]
        assert int(tags["gdbench.source_trial"]) == trial.user_attrs["source_trial"]
        assert run.info.run_name == (f"{trial_names[trial.user_attrs['source_trial']]}"
                                     f" · seed {trial.user_attrs['seed']}")
        assert run.info.status == "FINISHED"
        assert run.data.metrics["objective"] == pytest.approx(trial.value)

    board = home / "tensorboard"
    sessions = {path.name: session_hparams(path)
                for path in (board / f"{name}.confirm").iterdir() if path.is_dir()}
    assert len(sessions) == 4 * SEEDS
    assert {run.info.run_name for run in reruns} == set(sessions)
    for run in reruns:
        hparams = sessions[run.info.run_name]
        assert hparams["confirm"] is True
        assert hparams["task.seed"] == float(run.data.tags["gdbench.seed"])
        assert hparams["study"] == f"{name}.confirm"
    trial_sessions = [session_hparams(path) for path in (board / name).iterdir() if path.is_dir()]
    assert trial_sessions and all(hparams["confirm"] is False for hparams in trial_sessions)


def test_confirmed_statistics_equal_numpy_on_the_stored_curves(toy) -> None:
    home, name, study = toy
    companion = optuna.load_study(study_name=f"{name}.confirm",
                                  storage=f"sqlite:///{home / 'optuna.db'}")
    branches = confirmed(study)
    assert len(branches) == 4
    means = [branch.objective.mean for branch in branches]
    assert means == sorted(means)
    with open(home / "reports" / name / "confirmed.csv", encoding="utf-8") as file:
        table = {(row["optimizer"], row["schedule"]): row for row in csv.DictReader(file)}
    for branch in branches:
        curves = [np.asarray(t.user_attrs["curves"]["loss"]) for t in sorted(
            companion.trials, key=lambda t: t.user_attrs["seed"])
            if t.user_attrs["source_trial"] == branch.trial]
        final = np.array([curve[-1] for curve in curves])
        lowest = np.array([curve.min() for curve in curves])
        for summary, values in ((branch.objective, final), (branch.final["loss"], final),
                                (branch.best["loss"], lowest)):
            assert summary.n == SEEDS
            assert summary.mean == pytest.approx(values.mean(), rel=1e-12)
            assert summary.std == pytest.approx(values.std(ddof=1), rel=1e-12)
            assert (summary.low, summary.high) == pytest.approx(bootstrap(values), rel=1e-12)
        row = table[(branch.optimizer, branch.schedule)]
        assert float(row["objective_mean"]) == pytest.approx(final.mean(), rel=1e-12)
        assert float(row["objective_std"]) == pytest.approx(final.std(ddof=1), rel=1e-12)
        assert float(row["best_loss_ci_low"]) == pytest.approx(bootstrap(lowest)[0], rel=1e-12)
        assert row["seed_varies"] == "True"
    assert (home / "reports" / name / "confirmed_loss.png").is_file()


def test_a_second_confirm_reruns_nothing_and_more_seeds_run_only_the_new(toy, capsys) -> None:
    home, name, _ = toy
    storage = f"sqlite:///{home / 'optuna.db'}"
    before = len(optuna.load_study(study_name=f"{name}.confirm", storage=storage).trials)
    runs_before = len(mlflow_runs(home, name))
    assert cli.main(["confirm", name, "--home", str(home)]) == 0
    assert len(optuna.load_study(study_name=f"{name}.confirm", storage=storage).trials) == before
    # The confirm run is reopened; no rerun is added.
    assert len(mlflow_runs(home, name)) == runs_before
    out = capsys.readouterr().out
    assert f"confirmed over {SEEDS} seeds" in out and "± " in out
    # Its report: the confirmation, and the best trial of each optimizer with its η sensitivity.
    assert "best trial of each optimizer" in out
    for file in ("confirmed.csv", "best_of_each.md", "lr_sensitivity.png"):
        assert f"wrote {home / 'reports' / name / file}" in out
    assert cli.main(["report", name, "--home", str(home)]) == 0
    report = capsys.readouterr().out
    # The confirmed leaderboard comes first, then the single-seed trials.
    assert report.index("confirmed over") < report.index("COMPLETE")
    assert "wrote " + str(home / "reports" / name / "confirmed.csv") in report

    assert cli.main(["confirm", name, "--home", str(home), "--seeds", str(SEEDS + 1)]) == 0
    reruns = optuna.load_study(study_name=f"{name}.confirm", storage=storage).trials
    added = reruns[before:]
    assert len(added) == 4 and {t.user_attrs["seed"] for t in added} == {SEEDS}
    assert all(branch.objective.n == SEEDS + 1 for branch in confirmed(
        optuna.load_study(study_name=name, storage=storage)))


def test_confirm_refuses_too_few_seeds(toy, capsys) -> None:
    home, name, _ = toy
    assert cli.main(["confirm", name, "--home", str(home), "--seeds", "1"]) == cli.USAGE_ERROR
    assert "--seeds" in capsys.readouterr().err
    assert cli.main(["confirm", "no_such", "--home", str(home)]) == cli.USAGE_ERROR
    assert "no study named 'no_such'" in capsys.readouterr().err


def test_an_interrupted_confirm_runs_only_the_missing_reruns_next_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gdbench.study.trials import batches

    spec = load_spec(write(tmp_path, """
task = "linear_regression"
batch_size = 10
epochs = 5
trials = 4
optimizers = ["gd", "momentum"]
[tracking]
mlflow = false
tensorboard = false
""", "interrupted"))
    home = tmp_path / "home"
    study = run_study(spec, home=home, quiet=True)
    fit_group = batches.fit_group
    calls = []

    def interrupted_on_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return fit_group(*args, **kwargs)

    monkeypatch.setattr(batches, "fit_group", interrupted_on_third)
    where = tmp_path / "home" / "optuna.db"
    target = confirming.ConfirmTarget(
        study_name=spec.name, storage_url=f"sqlite:///{where}", task_name=spec.task.name,
        task_options=dict(spec.task.options), epochs=5, batch_size=10, metric="loss",
        population=True)
    with pytest.raises(KeyboardInterrupt):
        confirming.confirm_study(target, 3)
    companion = optuna.load_study(study_name=f"{spec.name}.confirm", storage=f"sqlite:///{where}")
    states = [t.state for t in companion.trials]
    # Seed 1's two reruns were claimed together; the first of them was interrupted.
    assert states.count(TrialState.COMPLETE) == 2 and states.count(TrialState.FAIL) == 2
    assert companion.trials[-1].user_attrs["fail_reason"] == (
        "interrupted (SIGINT); run again by the next confirmation")

    monkeypatch.setattr(batches, "fit_group", fit_group)
    confirming.confirm_study(target, 3)
    complete = [t for t in companion.get_trials() if t.state == TrialState.COMPLETE]
    pairs = [(t.user_attrs["source_trial"], t.user_attrs["seed"]) for t in complete]
    assert len(pairs) == len(set(pairs)) == 2 * 3
    assert len(companion.get_trials()) == 8  # the interrupted ones, run once more
    assert all(branch.objective.n == 3 for branch in confirmed(study))


def test_a_seed_that_moves_nothing_is_said_before_and_no_rerun_is_trained(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spec = load_spec(write(tmp_path, """
task = "sigmoid_neuron"
epochs = 20
trials = 4
optimizers = ["gd", "adam"]
confirm = {seeds = 3}
[tracking]
mlflow = false
tensorboard = false
""", "same_seed"))
    with caplog.at_level("WARNING", logger="gdbench.study.compare.confirm"):
        study = run_study(spec, home=tmp_path / "home", quiet=True)
    (said,) = [r.getMessage() for r in caplog.records if "moves nothing" in r.getMessage()]
    assert "task sigmoid_neuron" in said and "6 reruns skipped" in said
    best = expected_best(study)
    companion = optuna.load_study(study_name="same_seed.confirm",
                                  storage=f"sqlite:///{tmp_path / 'home' / 'optuna.db'}")
    reruns = companion.get_trials()
    assert len(reruns) == 2 * 3
    for rerun in reruns:
        source = best[(rerun.user_attrs["optimizer"], rerun.user_attrs["schedule"])]
        assert rerun.user_attrs[REUSED_ATTR] is True
        assert rerun.user_attrs["source_trial"] == source.number
        assert rerun.value == source.value  # the trial's own value, not a rerun's
        # The curves: the configuration trained once more, the same run as the trial's.
        assert rerun.user_attrs["curves"]["loss"][-1] == pytest.approx(source.value, rel=1e-9)
    branches = confirmed(study)
    assert {branch.reused for branch in branches} == {3}
    assert all(branch.objective.std == 0.0 and branch.objective.n == 3 for branch in branches)
    text = format_confirmed(branches)
    assert "the seed moves nothing in this task" in text and "nothing was rerun for" in text
    caplog.clear()
    with caplog.at_level("WARNING", logger="gdbench.study.compare.confirm"):
        url = f"sqlite:///{tmp_path / 'home' / 'optuna.db'}"
        confirming.confirm_study(confirming.stored_target(study, url, tracking_uri=None,
                                                          tensorboard_root=None), 3)
    assert len(companion.get_trials()) == 6  # done already: nothing stored twice


@pytest.mark.parametrize(("name", "options", "batch_size", "same"), [
    ("sigmoid_neuron", {}, None, True),
    ("sigmoid_neuron", {}, 1, False),  # stochastic: the order of the points is drawn
    ("linear_regression", {}, None, False),  # the data are drawn
    ("saddle", {}, None, True),
    ("saddle", {"noise": 0.1}, None, False),  # the gradient noise is drawn
], ids=["full_batch", "stochastic", "seeded_data", "surface", "noisy_surface"])
def test_same_runs_tells_a_seed_that_moves_nothing(name: str, options: dict, batch_size,
                                                   same: bool) -> None:
    import gdbench.tasks
    from gdbench.tasks.seeds import same_runs

    first, second = (gdbench.tasks.get(name, **options, seed=seed) for seed in (0, 1))
    assert same_runs(first, second, batch_size=batch_size, epochs=4) is same
    assert same_runs(first, gdbench.tasks.get(name, **options, seed=0), batch_size=batch_size,
                     epochs=4)


@pytest.mark.parametrize("population", [True, False])
def test_reruns_store_the_evaluation_before_training_where_the_task_gives_one(
        tmp_path: Path, population: bool) -> None:
    import gdbench.optimizers
    import gdbench.tasks

    spec = load_spec(write(tmp_path, f"""
task = {{name = "quadratic_deep", protocol = "deepobs"}}
epochs = 2
batch_size = 128
trials = 1
population = {str(population).lower()}
confirm = {{seeds = 2}}
[[optimizers]]
name = "gd"
learning_rate = 0.01
[tracking]
mlflow = false
tensorboard = false
""", "before_training"))
    study = run_study(spec, home=tmp_path / "home", quiet=True)
    companion = optuna.load_study(study_name="before_training.confirm",
                                  storage=f"sqlite:///{tmp_path / 'home' / 'optuna.db'}")
    stored = {t.user_attrs["seed"]: t.user_attrs["initial"] for t in companion.trials}
    assert sorted(stored) == [0, 1]
    for seed, initial in stored.items():
        fit = gdbench.tasks.get("quadratic_deep", protocol="deepobs", seed=seed).fit(
            gdbench.optimizers.get("gd", learning_rate=0.01), epochs=1, batch_size=128)
        assert set(initial) == set(fit.initial) == {"loss", "test_loss"}
        for key, value in fit.initial.items():
            assert initial[key] == pytest.approx(value, rel=1e-9), (seed, key)
    (branch,) = confirmed(study)
    assert branch.initial == {key: [stored[seed][key] for seed in (0, 1)]
                              for key in ("loss", "test_loss")}
    assert len(branch.curves["test_loss"]) == 2


def test_an_image_task_confirms_with_keras(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, """
task = {name = "digits_mlp", subset = 200}
epochs = 2
trials = 1
optimizer = "adam"
confirm = {seeds = 2}
[tracking]
tensorboard = false
""", "confirm_digits"))
    home = tmp_path / "home"
    study = run_study(spec, home=home, quiet=True)
    companion = optuna.load_study(study_name="confirm_digits.confirm",
                                  storage=f"sqlite:///{home / 'optuna.db'}")
    reruns = companion.trials
    assert [t.state for t in reruns] == [TrialState.COMPLETE] * 2
    assert sorted(t.user_attrs["seed"] for t in reruns) == [0, 1]
    for trial in reruns:
        assert len(trial.user_attrs["curves"]["val_loss"]) == 2
        assert trial.value == trial.user_attrs["curves"]["val_loss"][-1]
        assert "test_accuracy" in trial.user_attrs["metrics"]
        assert "initial" not in trial.user_attrs  # image tasks evaluate after epochs only
    seed_zero = next(t for t in reruns if t.user_attrs["seed"] == 0)
    assert seed_zero.value == pytest.approx(study.best_value, rel=1e-5)
    assert reruns[0].value != reruns[1].value  # other weights, split and order
    (branch,) = confirmed(study)
    assert branch.final["test_accuracy"].n == 2
    assert math.isfinite(branch.objective.std) and branch.objective.std > 0
    values = np.array([t.value for t in sorted(reruns, key=lambda t: t.user_attrs["seed"])])
    assert branch.objective == summarize(values)
    confirm_runs = [r for r in mlflow_runs(home, "confirm_digits")
                    if r.data.tags.get("gdbench.study") == "confirm_digits.confirm"
                    and r.data.tags.get("gdbench.role") == "trial"]
    assert sorted(r.data.tags["gdbench.seed"] for r in confirm_runs) == ["0", "1"]
    assert {"val_loss", "test_accuracy"} <= set(confirm_runs[0].data.metrics)


def test_a_rerun_whose_process_died_is_run_again(tmp_path: Path) -> None:
    import time

    from gdbench.study.trials import records, storage

    spec = load_spec(write(tmp_path, """
task = "linear_regression"
batch_size = 10
epochs = 3
trials = 2
optimizer = "gd"
[tracking]
mlflow = false
tensorboard = false
""", "stale"))
    url = f"sqlite:///{tmp_path / 'home' / 'optuna.db'}"
    study = run_study(spec, home=tmp_path / "home", quiet=True)
    (branch,) = confirming.best_branches(study)
    # A process claimed seed 1's rerun, beat once, and died.
    rdb = storage.open_storage(url, heartbeat_interval=1, grace_period=2)
    companion = confirming.open_companion(study, rdb, create=True)
    dead = companion.ask()
    dead.set_user_attr("source_trial", branch.trial.number)
    dead.set_user_attr("seed", 1)
    records.record_heartbeats(rdb, [dead._trial_id])
    time.sleep(3)
    target = confirming.ConfirmTarget(
        study_name=spec.name, storage_url=url, task_name=spec.task.name,
        task_options=dict(spec.task.options), epochs=3, batch_size=10, metric="loss",
        population=True)
    confirming.confirm_study(target, 2, heartbeat_interval=1, grace_period=2)
    trials = companion.get_trials()
    assert trials[0].state == TrialState.FAIL
    complete = sorted(t.user_attrs["seed"] for t in trials if t.state == TrialState.COMPLETE)
    assert complete == [0, 1]


def test_the_confirmed_figures_say_why_deepobs_baselines_are_not_drawn(
        toy, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    import gdbench.tasks
    from gdbench.study.report.confirmed import write_confirm_report
    from gdbench.study.trials.session import StudyContext

    _, _, study = toy

    def context(task: gdbench.tasks.Task) -> StudyContext:
        return StudyContext(task=task, epochs=3, batch_size=128, steps_per_epoch=1,
                            study_params={})

    with caplog.at_level(logging.INFO, logger="gdbench.study.report.confirmed"):
        write_confirm_report(study, tmp_path / "own", context(gdbench.tasks.get("linear_regression")))
    assert "baselines" not in caplog.text
    fashion = gdbench.tasks.get("fashion_mnist_2c2d", subset=1024)
    with caplog.at_level(logging.INFO, logger="gdbench.study.report.confirmed"):
        written = write_confirm_report(study, tmp_path / "fashion", context(fashion))
    assert "DeepOBS baselines not drawn behind the confirmed curves" in caplog.text
    from gdbench import baselines

    assert baselines.mismatch(fashion, 128, 3) in caplog.text
    assert tmp_path / "fashion" / "confirmed_loss.png" in written
