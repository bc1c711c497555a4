"""Time-to-target objectives: the value, each measure, the spec's fields and a study's trials."""

from __future__ import annotations

from pathlib import Path

import pytest
from optuna.trial import TrialState

import gdbench.optimizers
import gdbench.tasks
from gdbench.study import SpecError, load_spec, run_study
from gdbench.study.compare import profiles
from gdbench.study.spec import objectives
from gdbench.study.spec.model import ObjectiveSpec
from gdbench.study.spec.objectives import epochs_to_target, objective_value

ACCURACY = [0.5, 0.7, 0.85, 0.92, 0.95]
LOSSES = [2.0, 1.0, 0.4, 0.3]


def target(metric: str, value: float, measure: str, direction: str) -> ObjectiveSpec:
    return ObjectiveSpec(metric=metric, direction="minimize", target=value, measure=measure,
                         metric_direction=direction)


def test_without_a_target_the_value_is_the_last_epoch() -> None:
    objective = ObjectiveSpec(metric="val_accuracy", direction="maximize")
    assert objective_value(objective, {"val_accuracy": ACCURACY}, 10) == 0.95


@pytest.mark.parametrize(("measure", "expected"), [
    # 0.92 ≥ 0.9 first at epoch 4: 4 epochs, 4 · 25 steps, 4 · 1.5 s.
    ("epochs", 4.0), ("steps", 100.0), ("seconds", 6.0)])
def test_a_maximized_metric_reaches_its_target_at_the_first_epoch_at_or_above(
        measure: str, expected: float) -> None:
    objective = target("val_accuracy", 0.9, measure, "maximize")
    assert objective_value(objective, {"val_accuracy": ACCURACY}, 25, 1.5) == expected


@pytest.mark.parametrize(("measure", "expected"), [
    # Never ≥ 0.99: the budget of 8 epochs, 8 · 25 steps, 8 · 1.5 s (not the 5 epochs logged).
    ("epochs", 8.0), ("steps", 200.0), ("seconds", 12.0)])
def test_a_target_never_reached_costs_the_whole_budget(measure: str, expected: float) -> None:
    objective = target("val_accuracy", 0.99, measure, "maximize")
    assert objective_value(objective, {"val_accuracy": ACCURACY}, 25, 1.5, epochs=8) == expected


def test_a_loss_reaches_its_target_at_or_below_and_seconds_add_up_epoch_by_epoch() -> None:
    objective = target("val_loss", 0.4, "seconds", "minimize")
    # 0.4 ≤ 0.4 first at epoch 3: 3.0 + 1.0 + 1.0 seconds.
    assert objective_value(objective, {"val_loss": LOSSES}, 5, [3.0, 1.0, 1.0, 1.0]) == 5.0
    never = target("val_loss", 0.1, "seconds", "minimize")
    assert objective_value(never, {"val_loss": LOSSES}, 5, [3.0, 1.0, 1.0, 1.0]) == 6.0
    assert epochs_to_target([float("nan"), 0.2], 0.3, "minimize") == 2
    with pytest.raises(ValueError, match="objective.measure"):
        objective_value(objective, {"val_loss": LOSSES}, 5)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_spec_reads_a_target_and_runs_without_a_pruner(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, 'task = "digits_mlp"\noptimizer = "adam"\n'
                                     'objective = {metric = "val_accuracy", target = 0.9}\n'))
    assert spec.objective == ObjectiveSpec(metric="val_accuracy", direction="minimize",
                                           target=0.9, measure="epochs",
                                           metric_direction="maximize")
    assert spec.pruner.name == "none"
    assert spec.objective.label == "epochs to val_accuracy ≥ 0.9"


@pytest.mark.parametrize(("text", "field", "word"), [
    ('objective = {metric = "val_accuracy", target = "high"}\n', "objective.target", "number"),
    ('objective = {metric = "val_accuracy", target = 0.9, measure = "hours"}\n',
     "objective.measure", "epochs, steps, seconds"),
    ('objective = {metric = "val_accuracy", measure = "steps"}\n', "objective.measure", "target"),
    ('objective = {metric = "val_accuracy", target = 0.9}\npruner = "median"\n', "pruner",
     "cannot be pruned"),
])
def test_a_broken_target_names_its_field(tmp_path: Path, text: str, field: str, word: str) -> None:
    with pytest.raises(SpecError) as error:
        load_spec(write(tmp_path, 'task = "digits_mlp"\noptimizer = "adam"\n' + text))
    assert field in str(error.value) and word in str(error.value)


def test_a_population_has_no_seconds_of_its_own(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="objective.measure"):
        load_spec(write(tmp_path, 'task = "rosenbrock"\noptimizer = "gd"\n'
                                  'objective = {metric = "loss", target = 1.0, '
                                  'measure = "seconds"}\n'))


@pytest.mark.parametrize("population", [True, False], ids=["population", "one_by_one"])
def test_a_study_values_each_trial_by_its_steps_to_the_target(
        tmp_path: Path, population: bool) -> None:
    # The reference: the same task trained by hand, its losses read off directly.
    rates = (1e-3, 1e-5)
    task = gdbench.tasks.get("rosenbrock")
    fast = task.fit(gdbench.optimizers.get("gd", learning_rate=rates[0]), epochs=20)
    losses = fast.history["loss"]
    # Half-way between the 6th and 7th epochs' losses: reached at epoch 7.
    goal = (losses[5] + losses[6]) / 2
    assert losses[5] > goal > losses[6]
    spec = load_spec(write(tmp_path, f"""
task = "rosenbrock"
optimizer = "gd"
epochs = 20
trials = 2
sampler = "grid"
population = {str(population).lower()}
objective = {{metric = "loss", target = {goal!r}, measure = "steps"}}
tracking = {{mlflow = false, tensorboard = false}}
[search]
learning_rate = {{choices = [{rates[0]}, {rates[1]}]}}
"""))
    study = run_study(spec, home=tmp_path / "home", quiet=True)
    assert study.metric_names == [f"steps to loss ≤ {goal:g}"]
    values = {trial.params["learning_rate"]: trial.value for trial in study.trials
              if trial.state == TrialState.COMPLETE}
    steps = fast.steps_per_epoch
    # η = 1e-5 crawls: it never gets there and costs all 20 epochs' steps.
    assert values == {rates[0]: 7 * steps, rates[1]: 20 * steps}
    # Each epoch reported the loss itself: the profile's cost is the one that got there.
    assert profiles.study_costs(study) == {"gd": 7 * steps}
    # Each trial records whether it got there.
    reached = {trial.params["learning_rate"]: trial.user_attrs["target_reached"]
               for trial in study.trials if trial.state == TrialState.COMPLETE}
    assert reached == {rates[0]: True, rates[1]: False}


def test_a_target_reached_then_left_was_reached() -> None:
    objective = ObjectiveSpec(metric="loss", direction="minimize", target=0.5, measure="epochs",
                              metric_direction="minimize")
    history = {"loss": [2.0, 0.4, 0.9, 1.5]}
    assert objectives.target_reached(objective, history) is True
    assert objectives.objective_value(objective, history, 1) == 2.0
    assert objectives.target_reached(objective, {"loss": [2.0, 0.9]}) is False
    assert objectives.target_reached(ObjectiveSpec("loss", "minimize"), history) is None
